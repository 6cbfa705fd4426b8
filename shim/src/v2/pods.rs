//! The pods this shim serves (one shim per pod, grouped by sandbox id): the namespaces of each sandbox and
//! of its containers, recorded once they passed the gate and runc created them. An app container may join
//! these namespaces and no others; the sandbox's own decision (host network allowed or not) covers them.

use std::collections::HashMap;
use std::sync::Mutex;

use oci_spec::runtime::Spec;
use strict_policy::{PodNamespaces, RealHost};

const CONTAINER_TYPE: &str = "io.kubernetes.cri.container-type";
const SANDBOX_ID: &str = "io.kubernetes.cri.sandbox-id";

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

#[derive(Debug, Default)]
pub struct Pods(Mutex<HashMap<String, PodNamespaces>>);

impl Pods {
    /// The namespaces an app container of `spec`'s pod may join; None for sandboxes and containers
    /// outside a pod. A sandbox this shim does not serve gives an empty set: nothing to join.
    pub fn namespaces_for(&self, spec: &Spec) -> Option<PodNamespaces> {
        match role(spec) {
            PodRole::Container { sandbox_id } => Some(
                self.lock()
                    .get(&sandbox_id)
                    .cloned()
                    .unwrap_or(PodNamespaces {
                        sandbox_id,
                        ids: Vec::new(),
                    }),
            ),
            PodRole::Sandbox | PodRole::None => None,
        }
    }

    /// A container was created with init process `pid`: its namespaces now belong to its pod.
    pub fn created(&self, id: &str, spec: &Spec, pid: u32) {
        let sandbox_id = match role(spec) {
            PodRole::Sandbox => id.to_string(),
            PodRole::Container { sandbox_id } => sandbox_id,
            PodRole::None => return,
        };
        let mut pods = self.lock();
        let pod = pods.entry(sandbox_id.clone()).or_insert(PodNamespaces {
            sandbox_id,
            ids: Vec::new(),
        });
        pod.add_process(&RealHost, pid);
    }

    /// The sandbox `id` was deleted: its pod is gone.
    pub fn deleted(&self, id: &str) {
        self.lock().remove(id);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, PodNamespaces>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
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
        pods.deleted("s1");
        assert!(pods.namespaces_for(&app).unwrap().ids.is_empty());
    }
}
