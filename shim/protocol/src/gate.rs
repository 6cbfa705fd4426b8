//! The gate's wire: the shim writes one [`Envelope`] as JSON on a `strictctl gate` process's stdin, and
//! the gate writes one [`Answer`] on its stdout and exits. `tests/golden.rs` pins the JSON of every
//! request and answer, so a shim and a strictctl of one release always agree; a change of the JSON
//! changes [`PROTOCOL`].

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::pods::{PodNamespaces, PodRole};
use crate::runtime::AdmittedRuntime;

/// Where in a bundle the gate pins the bind sources it judged (one bind mount each, which the spec then
/// names): the runtime mounts the very files judged, whatever happens to their names. The shim unmounts
/// them once the runtime has created the container.
pub const PINS_DIR: &str = ".strict-pins";

/// The version of the JSON between shim and gate. A gate refuses a request of another version, which
/// happens when strictctl was upgraded under running shims of an older release.
pub const PROTOCOL: u32 = 3;

/// The gate binary, when it is not `strictctl` next to the shim's own executable.
pub const GATE_ENV: &str = "STRICT_GATE";

/// Set in a gate process's environment when the shim runs with `-debug`.
pub const DEBUG_ENV: &str = "STRICT_GATE_DEBUG";

/// `strictctl gate`'s subcommand and flags, as the shim runs it.
pub const GATE_SUBCOMMAND: &str = "gate";
pub const NAMESPACE_FLAG: &str = "--namespace";
/// The request will be an exec: the gate loads the configuration only.
pub const EXEC_FLAG: &str = "--exec";

/// How long a gate process waits for its question before it exits unused. The shim starts one ahead
/// (with itself, and after each Create of a pod, for the next container) and takes it only while it is
/// well within this limit; an older one is dropped for a new one.
pub const IDLE_LIMIT: std::time::Duration = std::time::Duration::from_secs(4);

/// How long the policy a gate loaded stays current: a question that comes later is answered with the
/// configuration, profiles and connections read again, so a `snap disconnect` reaches the next
/// container within this time even through a gate started ahead.
pub const CURRENT_FOR: std::time::Duration = std::time::Duration::from_secs(1);

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
        /// The root filesystem's mounts from containerd's CreateTaskRequest, which the shim mounts at
        /// the bundle's `rootfs` once they are allowed.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        rootfs: Vec<RootfsMount>,
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

/// One mount of a container's root filesystem, as containerd's snapshotter describes it.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct RootfsMount {
    #[serde(rename = "type")]
    pub typ: String,
    pub source: String,
    /// Where below the rootfs it goes (containerd 2's nested mounts); empty: the rootfs itself.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub target: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
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
    /// A sandbox's pod uid (CRI's annotation), which the shim records for the pod: its app containers'
    /// pod-owned files are this pod's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_uid: Option<String>,
    /// Execs the shim may allow without asking a gate (see [`ExecBaseline`]); none: every exec is asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exec_baseline: Option<ExecBaseline>,
}

/// The container's own process as containerd sent it, which the gate judged as an exec and found to ask
/// for nothing the container does not hold. An exec whose process is this one but for `free_fields` (what
/// the command is, its environment, its terminal: fields no rule reads) asks for nothing either, so the
/// shim allows it without a gate process: exec probes cost no process of their own. Any other exec is
/// asked of a gate, as before.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ExecBaseline {
    /// The process's top-level fields an exec may set as it likes.
    pub free_fields: Vec<String>,
    /// The process (JSON object) without those fields.
    pub process: String,
}

/// The answer to an Exec.
pub type ExecAnswer = Answer<()>;
/// The answer to an Update: the resources to apply (containerd's JSON), as the gate let them through.
pub type UpdateAnswer = Answer<String>;
/// The answer to a Create.
pub type CreateAnswer = Answer<Admitted>;
