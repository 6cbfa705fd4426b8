//! The pods this shim serves (one shim per pod, grouped by sandbox id): the namespaces of each sandbox and
//! of its containers, recorded once they passed the gate and runc created them. An app container may join
//! these namespaces and no others; the sandbox's own decision (host network allowed or not) covers them.
//!
//! The registry lives in the long-running shim, which sends it with each Create to its gate process; the
//! gate process reads the container's role from its spec (`role`) and picks its pod (`namespaces_for`).

use std::collections::HashMap;
use std::sync::Mutex;

use oci_spec::runtime::Spec;
use serde::{Deserialize, Serialize};
use strict_policy::{PodNamespaces, RealHost};

use crate::annotations::{CONTAINER_TYPE, SANDBOX_ID};

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

/// The role of the container whose spec this is (the gate's side).
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

/// The namespaces an app container of `spec`'s pod may join, out of the shim's registry (the gate's side);
/// None for sandboxes and containers outside a pod. A sandbox this shim does not serve gives an empty set:
/// nothing to join.
pub fn namespaces_for(spec: &Spec, pods: &[PodNamespaces]) -> Option<PodNamespaces> {
    let PodRole::Container { sandbox_id } = role(spec) else {
        return None;
    };
    let known = pods.iter().find(|pod| pod.sandbox_id == sandbox_id);
    Some(known.cloned().unwrap_or(PodNamespaces {
        sandbox_id,
        ids: Vec::new(),
    }))
}

/// One pod: the namespaces of each of its members (the sandbox and the containers), kept apart so that a
/// deleted container's namespaces stop counting (the kernel reuses namespace inode numbers).
#[derive(Debug, Default)]
struct Pod {
    members: HashMap<String, PodNamespaces>,
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
                    ids: Vec::new(),
                };
                for entry in pod.members.values().flat_map(|member| &member.ids) {
                    if !joined.ids.contains(entry) {
                        joined.ids.push(*entry);
                    }
                }
                joined
            })
            .collect()
    }

    /// Container `id`, of this role, was created with init process `pid`: its namespaces now belong to
    /// its pod.
    pub fn created(&self, id: &str, role: &PodRole, pid: u32) {
        let sandbox_id = match role {
            PodRole::Sandbox => id.to_string(),
            PodRole::Container { sandbox_id } => sandbox_id.clone(),
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
        let of = |spec: &Spec| namespaces_for(spec, &pods.snapshot());
        assert_eq!(of(&sandbox), None);
        assert_eq!(of(&spec(serde_json::json!({}))), None);
        // Before the sandbox exists here: an empty set, so every non-host path is refused.
        assert!(of(&app).unwrap().ids.is_empty());
        pods.created("s1", &role(&sandbox), std::process::id());
        let known = of(&app).unwrap();
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
        pods.created("c1", &role(&app), own_net.id());
        assert_eq!(of(&app).unwrap().ids.len(), 7);
        pods.deleted("c1");
        assert_eq!(of(&app).unwrap().ids.len(), 6);
        let _ = own_net.kill();
        let _ = own_net.wait();
        pods.deleted("s1");
        assert!(of(&app).unwrap().ids.is_empty());
    }
}
