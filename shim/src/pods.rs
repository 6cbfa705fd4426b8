//! The pods this shim serves (one shim per pod, grouped by sandbox id): the namespaces of each sandbox and
//! of its containers, recorded once they passed the gate and the runtime created them. The registry is
//! sent with each Create to the gate process, which lets an app container join these namespaces and no
//! others (the sandbox's own decision, host network allowed or not, covers them).

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::sync::Mutex;

use strict_protocol::{NamespaceKind, PodNamespaces, PodRole};

/// The namespaces process `pid` is in, as `/proc/PID/ns/` shows them (those it cannot read are left out).
pub fn namespaces_of(pid: u32, sandbox_id: &str) -> PodNamespaces {
    let mut namespaces = PodNamespaces {
        sandbox_id: sandbox_id.to_string(),
        ..PodNamespaces::default()
    };
    for kind in NamespaceKind::ALL {
        if let Ok(meta) = std::fs::metadata(format!("/proc/{pid}/ns/{}", kind.proc_name())) {
            namespaces.add(kind, (meta.dev(), meta.ino()));
        }
    }
    namespaces
}

/// One pod: the namespaces of each of its members (the sandbox and the containers), kept apart so that a
/// deleted container's namespaces stop counting (the kernel reuses namespace inode numbers).
#[derive(Debug, Default)]
struct Pod {
    members: HashMap<String, PodNamespaces>,
    /// The pod's uid, as its sandbox was admitted with: the kubelet files its containers may mount.
    pod_uid: Option<String>,
}

/// The registry (the long-running shim's side).
#[derive(Debug, Default)]
pub struct Pods {
    pods: Mutex<HashMap<String, Pod>>,
}

impl Pods {
    /// Every pod's namespaces, each pod's members merged: what the gate process is told.
    pub fn snapshot(&self) -> Vec<PodNamespaces> {
        let pods = self.lock();
        pods.iter()
            .map(|(sandbox_id, pod)| {
                let mut joined = PodNamespaces {
                    sandbox_id: sandbox_id.clone(),
                    pod_uid: pod.pod_uid.clone(),
                    ids: Vec::new(),
                };
                for (kind, id) in pod.members.values().flat_map(|member| &member.ids) {
                    joined.add(*kind, *id);
                }
                joined
            })
            .collect()
    }

    /// Container `id`, of this role, was created with init process `pid`: its namespaces now belong to
    /// its pod. A sandbox also names its pod's uid.
    pub fn created(&self, id: &str, role: &PodRole, pod_uid: Option<&str>, pid: u32) {
        let sandbox_id = match role {
            PodRole::Sandbox => id.to_string(),
            PodRole::Container { sandbox_id } => sandbox_id.clone(),
            PodRole::None => return,
        };
        let namespaces = namespaces_of(pid, &sandbox_id);
        let mut pods = self.lock();
        let pod = pods.entry(sandbox_id).or_default();
        if *role == PodRole::Sandbox {
            pod.pod_uid = pod_uid.map(String::from);
        }
        pod.members.insert(id.to_string(), namespaces);
    }

    /// Container `id` was deleted: its namespaces stop counting; a sandbox takes its pod with it.
    pub fn deleted(&self, id: &str) {
        let mut pods = self.lock();
        pods.remove(id);
        for pod in pods.values_mut() {
            pod.members.remove(id);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Pod>> {
        self.pods.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod_of(pods: &Pods, sandbox_id: &str) -> Option<PodNamespaces> {
        pods.snapshot()
            .into_iter()
            .find(|pod| pod.sandbox_id == sandbox_id)
    }

    #[test]
    fn a_pod_holds_what_its_sandbox_and_containers_have() {
        let pods = Pods::default();
        let app = PodRole::Container {
            sandbox_id: "s1".into(),
        };
        // Outside CRI nothing is recorded.
        pods.created("c0", &PodRole::None, None, std::process::id());
        assert!(pods.snapshot().is_empty());
        pods.created("s1", &PodRole::Sandbox, None, std::process::id());
        let known = pod_of(&pods, "s1").unwrap();
        assert_eq!(known.ids.len(), 6, "this process's six namespaces");
        // A container of the pod with a network namespace of its own adds it; deleting the container
        // takes it away again (the kernel may reuse the number for another pod's namespace).
        let mut own_net = std::process::Command::new("unshare")
            .args(["--net", "sleep", "30"])
            .spawn()
            .expect("unshare (util-linux) runs; the tests run as root");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while std::fs::read_link(format!("/proc/{}/ns/net", own_net.id()))
            .ok()
            .zip(std::fs::read_link("/proc/self/ns/net").ok())
            .is_none_or(|(theirs, ours)| theirs == ours)
        {
            assert!(
                std::time::Instant::now() < deadline,
                "unshare --net did not take"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        pods.created("c1", &app, None, own_net.id());
        assert_eq!(pod_of(&pods, "s1").unwrap().ids.len(), 7);
        pods.deleted("c1");
        assert_eq!(pod_of(&pods, "s1").unwrap().ids.len(), 6);
        let _ = own_net.kill();
        let _ = own_net.wait();
        pods.deleted("s1");
        assert!(pod_of(&pods, "s1").is_none());
    }
}
