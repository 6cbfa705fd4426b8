//! Pods as the gate sees them: a container's role from CRI's annotations, and the namespaces of its pod
//! (from the shim's registry) that an app container may join.

use oci_spec::runtime::{LinuxNamespaceType, Spec};
use strict_policy::PodOwner;
use strict_protocol::annotations::{CONTAINER_TYPE, POD_UID, SANDBOX_ID};
use strict_protocol::{PodNamespaces, PodRole};

/// The role of the container whose spec this is.
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

/// The namespaces an app container of `spec`'s pod may join, out of the shim's registry; None for
/// sandboxes and containers outside a pod. A sandbox the shim does not serve gives an empty set: nothing
/// to join.
pub fn namespaces_for(spec: &Spec, pods: &[PodNamespaces]) -> Option<PodNamespaces> {
    let PodRole::Container { sandbox_id } = role(spec) else {
        return None;
    };
    let known = pods.iter().find(|pod| pod.sandbox_id == sandbox_id);
    Some(known.cloned().unwrap_or(PodNamespaces {
        sandbox_id,
        ..PodNamespaces::default()
    }))
}

/// The pod whose files the container may mount as its own: a sandbox's own (its sandbox id must be the
/// container's id), an app container's pod as the shim's registry recorded it when its sandbox was
/// created (a pod this shim does not serve has none); None outside CRI.
pub fn owner_for(id: &str, spec: &Spec, pods: &[PodNamespaces]) -> Option<PodOwner> {
    match role(spec) {
        PodRole::Sandbox => {
            let annotations = spec.annotations().as_ref()?;
            let claimed = annotations.get(SANDBOX_ID).map(String::as_str);
            (claimed.is_none() || claimed == Some(id)).then(|| PodOwner {
                sandbox_id: id.to_string(),
                pod_uid: pod_uid(spec),
            })
        }
        PodRole::Container { sandbox_id } => {
            let pod = pods.iter().find(|pod| pod.sandbox_id == sandbox_id)?;
            Some(PodOwner {
                sandbox_id,
                pod_uid: pod.pod_uid.clone(),
            })
        }
        PodRole::None => None,
    }
}

/// The pod uid CRI's annotations give a spec.
pub fn pod_uid(spec: &Spec) -> Option<String> {
    spec.annotations()
        .as_ref()?
        .get(POD_UID)
        .filter(|uid| !uid.is_empty())
        .cloned()
}

/// Whether the spec gives the container a pid namespace of its own (a new one, not a path to another's).
pub fn has_own_pid_namespace(spec: &Spec) -> bool {
    spec.linux()
        .as_ref()
        .and_then(|linux| linux.namespaces().as_ref())
        .is_some_and(|namespaces| {
            namespaces
                .iter()
                .any(|ns| ns.typ() == LinuxNamespaceType::Pid && ns.path().is_none())
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use strict_protocol::NamespaceKind;

    fn spec(annotations: serde_json::Value) -> Spec {
        serde_json::from_value(serde_json::json!({
            "ociVersion": "1.2.0", "root": {"path": "rootfs"}, "annotations": annotations
        }))
        .unwrap()
    }

    #[test]
    fn an_app_container_may_join_its_own_pods_namespaces_only() {
        let sandbox = spec(serde_json::json!({
            "io.kubernetes.cri.container-type": "sandbox", "io.kubernetes.cri.sandbox-id": "s1"}));
        let app = spec(serde_json::json!({
            "io.kubernetes.cri.container-type": "container", "io.kubernetes.cri.sandbox-id": "s1"}));
        assert_eq!(role(&sandbox), PodRole::Sandbox);
        assert_eq!(
            role(&app),
            PodRole::Container {
                sandbox_id: "s1".into()
            }
        );
        let pods = vec![
            PodNamespaces {
                sandbox_id: "s0".into(),
                pod_uid: Some("u0".into()),
                ids: vec![(NamespaceKind::Network, (4, 1))],
            },
            PodNamespaces {
                sandbox_id: "s1".into(),
                pod_uid: Some("u1".into()),
                ids: vec![
                    (NamespaceKind::Network, (4, 2)),
                    (NamespaceKind::Mount, (4, 3)),
                ],
            },
        ];
        assert_eq!(namespaces_for(&sandbox, &pods), None);
        assert_eq!(namespaces_for(&spec(serde_json::json!({})), &pods), None);
        let joinable = namespaces_for(&app, &pods).unwrap();
        assert_eq!(joinable.sandbox_id, "s1");
        assert!(joinable.contains(NamespaceKind::Network, (4, 2)));
        assert!(joinable.contains(NamespaceKind::Mount, (4, 3)));
        assert!(!joinable.contains(NamespaceKind::Network, (4, 1)));
        // Before the shim knows the sandbox: an empty set, so every non-host path is refused.
        assert!(namespaces_for(&app, &[]).unwrap().ids.is_empty());
    }

    #[test]
    fn a_containers_own_files_are_its_pods_as_the_registry_knows_it() {
        let sandbox = spec(serde_json::json!({
            "io.kubernetes.cri.container-type": "sandbox", "io.kubernetes.cri.sandbox-id": "s1",
            "io.kubernetes.cri.sandbox-uid": "u1"}));
        let owner = owner_for("s1", &sandbox, &[]).unwrap();
        assert_eq!(
            (owner.sandbox_id.as_str(), owner.pod_uid.as_deref()),
            ("s1", Some("u1"))
        );
        // A sandbox claiming another sandbox's id owns nothing.
        assert_eq!(owner_for("s2", &sandbox, &[]), None);
        // An app container's pod uid is the registry's, whatever its own annotation claims.
        let app = spec(serde_json::json!({
            "io.kubernetes.cri.container-type": "container", "io.kubernetes.cri.sandbox-id": "s1",
            "io.kubernetes.cri.sandbox-uid": "someone-else"}));
        let pods = vec![PodNamespaces {
            sandbox_id: "s1".into(),
            pod_uid: Some("u1".into()),
            ids: Vec::new(),
        }];
        assert_eq!(
            owner_for("c1", &app, &pods).unwrap().pod_uid.as_deref(),
            Some("u1")
        );
        // A pod this shim does not serve, or no pod at all: nothing is the container's own.
        assert_eq!(owner_for("c1", &app, &[]), None);
        assert_eq!(owner_for("c1", &spec(serde_json::json!({})), &pods), None);
    }
}
