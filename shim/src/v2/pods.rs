//! The pods this shim serves (one shim per pod, grouped by sandbox id): the namespaces of each sandbox and
//! of its containers, recorded once they passed the gate and runc created them. An app container may join
//! these namespaces and no others; the sandbox's own decision (host network allowed or not) covers them.

use std::collections::HashMap;
use std::sync::Mutex;

use oci_spec::runtime::Spec;
use strict_policy::{PodNamespaces, RealHost};

use crate::annotations::{CONTAINER_TYPE, SANDBOX_ID};

/// What CRI's annotations say a spec is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PodRole {
    /// A pod's sandbox (pause) container; its id is the sandbox id.
    Sandbox,
    /// An app container of the pod with this sandbox id.
    Container { sandbox_id: String },
    /// Not started through CRI (e.g. `ctr run`).
    None,
}

pub fn role(spec: &Spec) -> PodRole {
    let annotations = spec.annotations().as_ref();
    let get = |key: &str| annotations.and_then(|a| a.get(key)).map(String::as_str);
    match (get(CONTAINER_TYPE), get(SANDBOX_ID)) {
        (Some("sandbox"), _) => PodRole::Sandbox,
        (Some("container"), Some(sandbox)) if !sandbox.is_empty() => PodRole::Container {
            sandbox_id: sandbox.to_string(),
        },
        _ => PodRole::None,
    }
}

/// One pod: the namespaces of each of its members (the sandbox and the containers), kept apart so that a
/// deleted container's namespaces stop counting (the kernel reuses namespace inode numbers).
#[derive(Debug, Default)]
struct Pod {
    members: HashMap<String, PodNamespaces>,
}

#[derive(Debug, Default)]
pub struct Pods {
    pods: Mutex<HashMap<String, Pod>>,
}

impl Pods {
    /// The namespaces an app container of `spec`'s pod may join; None for sandboxes and containers
    /// outside a pod. A sandbox this shim does not serve gives an empty set: nothing to join.
    pub fn namespaces_for(&self, spec: &Spec) -> Option<PodNamespaces> {
        let PodRole::Container { sandbox_id } = role(spec) else {
            return None;
        };
        let pods = self.lock();
        let mut joined = PodNamespaces {
            sandbox_id: sandbox_id.clone(),
            ids: Vec::new(),
        };
        for member in pods
            .get(&sandbox_id)
            .into_iter()
            .flat_map(|p| p.members.values())
        {
            for entry in &member.ids {
                if !joined.ids.contains(entry) {
                    joined.ids.push(*entry);
                }
            }
        }
        Some(joined)
    }

    /// Container `id` was created with init process `pid`: its namespaces now belong to its pod.
    pub fn created(&self, id: &str, spec: &Spec, pid: u32) {
        let sandbox_id = match role(spec) {
            PodRole::Sandbox => id.to_string(),
            PodRole::Container { sandbox_id } => sandbox_id,
            PodRole::None => return,
        };
        let mut namespaces = PodNamespaces {
            sandbox_id: sandbox_id.clone(),
            ids: Vec::new(),
        };
        namespaces.add_process(&RealHost, pid);
        self.lock()
            .entry(sandbox_id)
            .or_default()
            .members
            .insert(id.to_string(), namespaces);
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

    fn spec(annotations: serde_json::Value) -> Spec {
        serde_json::from_value(serde_json::json!({
            "ociVersion": "1.2.0", "root": {"path": "rootfs"}, "annotations": annotations
        }))
        .unwrap()
    }

    #[test]
    fn a_pods_containers_may_join_what_its_sandbox_and_containers_have() {
        let pods = Pods::default();
        let sandbox = spec(serde_json::json!({
            "io.kubernetes.cri.container-type": "sandbox", "io.kubernetes.cri.sandbox-id": "s1"}));
        let app = spec(serde_json::json!({
            "io.kubernetes.cri.container-type": "container", "io.kubernetes.cri.sandbox-id": "s1"}));
        assert_eq!(pods.namespaces_for(&sandbox), None);
        assert_eq!(pods.namespaces_for(&spec(serde_json::json!({}))), None);
        // Before the sandbox exists here: an empty set, so every non-host path is refused.
        assert!(pods.namespaces_for(&app).unwrap().ids.is_empty());
        pods.created("s1", &sandbox, std::process::id());
        let known = pods.namespaces_for(&app).unwrap();
        assert_eq!(known.sandbox_id, "s1");
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
        pods.created("c1", &app, own_net.id());
        assert_eq!(pods.namespaces_for(&app).unwrap().ids.len(), 7);
        pods.deleted("c1");
        assert_eq!(pods.namespaces_for(&app).unwrap().ids.len(), 6);
        let _ = own_net.kill();
        let _ = own_net.wait();
        pods.deleted("s1");
        assert!(pods.namespaces_for(&app).unwrap().ids.is_empty());
    }
}
