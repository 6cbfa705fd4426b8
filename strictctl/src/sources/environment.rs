//! What the process's environment offers the sources.

use std::path::PathBuf;

/// What the environment offers; read once from the process, replaceable in tests.
#[derive(Clone, Debug)]
pub struct Environment {
    /// `SNAP_NAME`: set when the shim runs inside a snap.
    pub snap_name: Option<String>,
    /// The snapctl binary (looked up in PATH when bare).
    pub snapctl: PathBuf,
}

impl Environment {
    pub fn from_process() -> Environment {
        Environment {
            snap_name: std::env::var("SNAP_NAME").ok().filter(|s| !s.is_empty()),
            snapctl: PathBuf::from("snapctl"),
        }
    }
}
