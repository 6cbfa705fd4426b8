//! Namespaces: a missing namespace, or a path to one of the host's, means sharing the host's.

use oci_spec::runtime::{LinuxNamespace, LinuxNamespaceBuilder, LinuxNamespaceType, Spec};

use super::evaluation::Evaluation;
use crate::permissions::Need;
use crate::profile::schema::HostNamespace;
use crate::verdict::Violation;

fn oci_type(namespace: HostNamespace) -> LinuxNamespaceType {
    match namespace {
        HostNamespace::Network => LinuxNamespaceType::Network,
        HostNamespace::Pid => LinuxNamespaceType::Pid,
        HostNamespace::Ipc => LinuxNamespaceType::Ipc,
        HostNamespace::Uts => LinuxNamespaceType::Uts,
        HostNamespace::Mount => LinuxNamespaceType::Mount,
        HostNamespace::Cgroup => LinuxNamespaceType::Cgroup,
    }
}

pub(crate) fn check(spec: &mut Spec, ev: &mut Evaluation, skip_privileged_effects: bool) {
    let Some(linux) = spec.linux_mut() else {
        ev.refuse(
            Violation::new(
                "namespace.host",
                "linux".into(),
                "(missing)".into(),
                "the spec has no linux section: the container would share every host namespace"
                    .into(),
            )
            .remedy("containerd always writes one; this spec is not from a container runtime"),
        );
        return;
    };
    let namespaces: &[LinuxNamespace] = linux.namespaces().as_deref().unwrap_or(&[]);
    let mut add_cgroup = false;
    for namespace in HostNamespace::ALL {
        let mut entries = namespaces
            .iter()
            .enumerate()
            .filter(|(_, n)| n.typ() == oci_type(namespace));
        let found = entries.next();
        // One entry per type: which of two the runtime honours is its own business, not the gate's.
        for (index, _) in entries {
            ev.refuse(
                Violation::new(
                    "namespace.duplicate",
                    format!("linux.namespaces[{index}]"),
                    namespace.to_string(),
                    format!("linux.namespaces[{index}] is a second {namespace} namespace"),
                )
                .remedy("list each namespace type once"),
            );
        }
        let (field, how) = match found {
            None => (
                "linux.namespaces".to_string(),
                format!("has no {namespace} namespace: the container would share the host's"),
            ),
            Some((index, entry)) => {
                let Some(path) = entry.path() else { continue }; // a new namespace of its own
                let field = || format!("linux.namespaces[{index}].path");
                match ev.host.namespace_id(path) {
                    // The pod's own: its sandbox passed the gate with it.
                    Ok(id) if ev.pod.is_some_and(|pod| pod.contains(namespace, id)) => continue,
                    Ok(id) if ev.host.host_namespace_ids(namespace).contains(&id) => (
                        field(),
                        format!("{} is the host's {namespace} namespace", path.display()),
                    ),
                    Ok(_) => {
                        // Inside a pod, only the pod's own; outside one, never another process's
                        // mount namespace (its files, whatever grants its mounts had).
                        let why = match ev.pod {
                            Some(pod) => Some((
                                format!(
                                    "is not a {namespace} namespace of this pod (sandbox {})",
                                    pod.sandbox_id
                                ),
                                "a container may join only its own pod's namespaces",
                            )),
                            None if namespace == HostNamespace::Mount => Some((
                                "is another process's mount namespace".to_string(),
                                "a container's mount namespace is its own; only a pod's containers share",
                            )),
                            None => None,
                        };
                        if let Some((why, remedy)) = why {
                            let field = field();
                            ev.refuse(
                                Violation::new(
                                    "namespace.foreign",
                                    field.clone(),
                                    path.display().to_string(),
                                    format!("{field} {} {why}", path.display()),
                                )
                                .remedy(remedy),
                            );
                        }
                        continue;
                    }
                    Err(e) => {
                        let field = field();
                        ev.refuse(
                            Violation::new(
                                "namespace.path",
                                field.clone(),
                                path.display().to_string(),
                                format!("{field} {} cannot be examined ({e})", path.display()),
                            )
                            .remedy("the gate cannot decide on a namespace it cannot examine"),
                        );
                        continue;
                    }
                }
            }
        };
        if ev.perms.host_namespace(namespace).is_some() {
            continue;
        }
        // The cgroup namespace only hides the host's cgroup paths; adding one is safe, so narrow instead.
        if namespace == HostNamespace::Cgroup && found.is_none() {
            if !skip_privileged_effects {
                add_cgroup = true;
            }
            continue;
        }
        let summary = format!("{field} {how}");
        let violation = Violation::new(
            "namespace.host",
            field,
            format!("host {namespace}"),
            summary,
        );
        ev.refuse_needing(violation, &Need::HostNamespace(namespace));
    }
    if add_cgroup {
        let mut namespaces = namespaces.to_vec();
        namespaces.push(
            LinuxNamespaceBuilder::default()
                .typ(LinuxNamespaceType::Cgroup)
                .build()
                .expect("type is set"),
        );
        ev.narrow(
            "namespace.cgroup",
            "linux.namespaces".into(),
            "no cgroup namespace (the host's)".into(),
            "a new cgroup namespace".into(),
        );
        linux.set_namespaces(Some(namespaces));
    }
    if let Some(devices) = linux.net_devices() {
        if !devices.is_empty() && ev.perms.host_namespace(HostNamespace::Network).is_none() {
            let mut names: Vec<&String> = devices.keys().collect();
            names.sort();
            let value = names
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ");
            let violation = Violation::new(
                "namespace.net-devices",
                "linux.netDevices".into(),
                value.clone(),
                format!("linux.netDevices moves host network devices ({value}) into the container"),
            );
            ev.refuse_needing(violation, &Need::HostNamespace(HostNamespace::Network));
        }
    }
}
