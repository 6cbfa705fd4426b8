//! The OCI runtime a container runs with, as the gate names it from the configuration. The shim keeps a
//! copy in the bundle (`strict-runtime.json`) so that the `delete` action cleans up with the runtime the
//! container was created with.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The runtime binary when the configuration names none (a bare name is looked up in `PATH`).
pub const DEFAULT_BINARY: &str = "runc";
/// The runtime's state directory when the configuration names none; one subdirectory per containerd
/// namespace, as containerd-shim-runc-v2 lays it out.
pub const DEFAULT_ROOT: &str = "/run/containerd/runc";

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct AdmittedRuntime {
    pub binary: PathBuf,
    /// `--root`, the namespace's directory included.
    pub root: PathBuf,
    pub systemd_cgroup: bool,
}

impl AdmittedRuntime {
    /// The defaults for a containerd namespace.
    pub fn default_for(namespace: &str) -> AdmittedRuntime {
        AdmittedRuntime {
            binary: PathBuf::from(DEFAULT_BINARY),
            root: PathBuf::from(DEFAULT_ROOT).join(namespace),
            systemd_cgroup: false,
        }
    }
}
