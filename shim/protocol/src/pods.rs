//! Pods as the shim sees them: what CRI's annotations say a container is, and the namespaces of each pod
//! the shim serves, which an app container of that pod may join.

use serde::{Deserialize, Serialize};

/// What CRI's annotations say a spec is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PodRole {
    /// A pod's sandbox (pause) container; its id is the sandbox id.
    Sandbox,
    /// An app container of the pod with this sandbox id.
    Container { sandbox_id: String },
    /// Not started through CRI (e.g. `ctr run`).
    None,
}

/// The kinds of namespace a container may share with the host or its pod, as `/proc/PID/ns/` names them
/// (JSON and the vendor profiles: lowercase). The policy calls it `HostNamespace`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NamespaceKind {
    Network,
    Pid,
    Ipc,
    Uts,
    Mount,
    Cgroup,
}

impl NamespaceKind {
    pub const ALL: [NamespaceKind; 6] = [
        NamespaceKind::Pid,
        NamespaceKind::Network,
        NamespaceKind::Ipc,
        NamespaceKind::Uts,
        NamespaceKind::Mount,
        NamespaceKind::Cgroup,
    ];

    /// The name of the namespace file under /proc/<pid>/ns/.
    pub fn proc_name(self) -> &'static str {
        match self {
            NamespaceKind::Network => "net",
            NamespaceKind::Pid => "pid",
            NamespaceKind::Ipc => "ipc",
            NamespaceKind::Uts => "uts",
            NamespaceKind::Mount => "mnt",
            NamespaceKind::Cgroup => "cgroup",
        }
    }
}

impl std::fmt::Display for NamespaceKind {
    /// The name in JSON and in the vendor profiles.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            NamespaceKind::Network => "network",
            NamespaceKind::Pid => "pid",
            NamespaceKind::Ipc => "ipc",
            NamespaceKind::Uts => "uts",
            NamespaceKind::Mount => "mount",
            NamespaceKind::Cgroup => "cgroup",
        })
    }
}

/// A namespace's identity: the device and inode of its `/proc/PID/ns/` file.
pub type NamespaceId = (u64, u64);

/// The namespaces of one pod, as the shim recorded them when its sandbox (and its other containers)
/// passed the gate and the runtime created them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodNamespaces {
    /// The pod's sandbox id (`io.kubernetes.cri.sandbox-id`).
    pub sandbox_id: String,
    /// The pod's uid, as its sandbox was created with (`io.kubernetes.cri.sandbox-uid`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_uid: Option<String>,
    pub ids: Vec<(NamespaceKind, NamespaceId)>,
}

impl PodNamespaces {
    pub fn contains(&self, kind: NamespaceKind, id: NamespaceId) -> bool {
        self.ids.contains(&(kind, id))
    }

    /// Adds a namespace unless it is there already.
    pub fn add(&mut self, kind: NamespaceKind, id: NamespaceId) {
        if !self.contains(kind, id) {
            self.ids.push((kind, id));
        }
    }
}
