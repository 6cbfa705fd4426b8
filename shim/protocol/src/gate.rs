//! The gate's wire: the shim writes one [`Envelope`] as JSON on a `strictctl gate` process's stdin, and
//! the gate writes one [`Answer`] on its stdout and exits. `tests/golden.rs` pins the JSON of every
//! request and answer, so a shim and a strictctl of one release always agree; a change of the JSON
//! changes [`PROTOCOL`].

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::pods::{PodNamespaces, PodRole};
use crate::runtime::AdmittedRuntime;

/// The version of the JSON between shim and gate. A gate refuses a request of another version, which
/// happens when strictctl was upgraded under running shims of an older release.
pub const PROTOCOL: u32 = 1;

/// The gate binary, when it is not `strictctl` next to the shim's own executable.
pub const GATE_ENV: &str = "STRICT_GATE";

/// Set in a gate process's environment when the shim runs with `-debug`.
pub const DEBUG_ENV: &str = "STRICT_GATE_DEBUG";

/// `strictctl gate`'s subcommand and flags, as the shim runs it.
pub const GATE_SUBCOMMAND: &str = "gate";
pub const NAMESPACE_FLAG: &str = "--namespace";
/// The request will be an exec: the gate loads the configuration only.
pub const EXEC_FLAG: &str = "--exec";

/// What the shim writes on a gate process's stdin.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Envelope {
    pub protocol: u32,
    #[serde(flatten)]
    pub request: Request,
}

impl Envelope {
    /// A request in this release's protocol.
    pub fn new(request: Request) -> Envelope {
        Envelope {
            protocol: PROTOCOL,
            request,
        }
    }
}

/// What the shim asks a gate process: one request per process.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// Gate the bundle's config.json (and write back the narrowed spec).
    Create {
        id: String,
        bundle: PathBuf,
        /// The namespaces of the pods this shim serves, which an app container may join.
        pods: Vec<PodNamespaces>,
    },
    /// Gate an exec process (containerd's JSON) against the container's spec in its bundle.
    Exec {
        id: String,
        exec_id: String,
        bundle: PathBuf,
        process: String,
    },
    /// Gate new resources (containerd's JSON) against the container's spec in its bundle.
    Update {
        id: String,
        bundle: PathBuf,
        resources: String,
    },
}

impl Request {
    /// Whether a gate for this request needs only the configuration (an exec is judged against its
    /// container's spec, never against the host's connections).
    pub fn is_exec(&self) -> bool {
        matches!(self, Request::Exec { .. })
    }
}

/// The gate's answer: the value, or the error the shim returns to containerd.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum Answer<T> {
    Ok(T),
    /// The policy refused: the user-facing `strict: refused: ...` message (PERMISSION_DENIED).
    Refused(String),
    /// The gate could not decide (a configuration, profile or connection that does not load): it fails
    /// closed.
    Undecided(String),
    /// The request itself is malformed.
    InvalidArgument(String),
}

/// The answer to a Create: what the shim needs to know of an admitted container (it never parses the
/// spec itself).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Admitted {
    pub role: PodRole,
    /// A pid namespace of its own: when the init exits, the kernel kills the rest (else the shim must).
    pub own_pid_namespace: bool,
    /// The runtime the configuration names, for this container's namespace.
    pub runtime: AdmittedRuntime,
}

/// The answer to an Exec.
pub type ExecAnswer = Answer<()>;
/// The answer to an Update: the resources to apply (containerd's JSON), as the gate let them through.
pub type UpdateAnswer = Answer<String>;
/// The answer to a Create.
pub type CreateAnswer = Answer<Admitted>;
