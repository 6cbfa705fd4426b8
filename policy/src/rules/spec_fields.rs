//! The fields outside the other rules' areas that reach past the container: its cgroup, cgroup files written for it, user-namespace mappings, a personality, the annotations the
//! runtimes act on, and what no interface grants at all (`fields::SPEC`'s `Refused` entries).

use std::path::Path;

use oci_spec::runtime::{LinuxIdMapping, LinuxSeccompFilterFlag, Spec};

use super::evaluation::Evaluation;
use crate::verdict::Violation;

/// Annotation namespaces runc or crun act on: raw seccomp programs and plugins, hooks, cgroup delegation,
/// handlers (crun's `run.oci.*`, `module.wasm.image/*`); systemd unit properties (runc and crun with the
/// systemd driver); CRIU's configuration; runc's own.
pub const RUNTIME_ANNOTATIONS: [&str; 5] = [
    "run.oci.",
    "org.systemd.property.",
    "module.wasm.image/",
    "org.criu.",
    "org.opencontainers.runc.",
];

/// The cgroup v2 files a container's limits may be written to (`linux.resources.unified`): the
/// controllers' own, never `cgroup.*` (which moves processes and delegates controllers).
pub const UNIFIED_CONTROLLERS: [&str; 8] = [
    "cpu.", "cpuset.", "memory.", "io.", "pids.", "hugetlb.", "rdma.", "misc.",
];

pub(crate) fn check(spec: &Spec, ev: &mut Evaluation) {
    check_annotations(spec, ev);
    check_unknown_platforms(spec, ev);
    let Some(linux) = spec.linux() else {
        return;
    };
    if let Some(path) = linux.cgroups_path() {
        check_cgroups_path(path, ev);
    }
    if let Some(unified) = linux
        .resources()
        .as_ref()
        .and_then(|r| r.unified().as_ref())
    {
        check_unified(unified.keys(), "linux.resources.unified", ev);
    }
    check_mappings(linux.uid_mappings(), "linux.uidMappings", ev);
    check_mappings(linux.gid_mappings(), "linux.gidMappings", ev);
    for (index, mount) in spec.mounts().iter().flatten().enumerate() {
        check_mappings(
            mount.uid_mappings(),
            &format!("mounts[{index}].uidMappings"),
            ev,
        );
        check_mappings(
            mount.gid_mappings(),
            &format!("mounts[{index}].gidMappings"),
            ev,
        );
    }
    if let Some(personality) = linux.personality() {
        if let Some(flags) = personality.flags().as_ref().filter(|f| !f.is_empty()) {
            ev.refuse(Violation::new(
                "linux.personality",
                "linux.personality.flags".into(),
                flags.join(","),
                format!(
                    "linux.personality.flags {} change how the kernel runs the container's programs",
                    flags.join(",")
                ),
            ));
        }
    }
    if let Some(label) = linux.mount_label().as_deref().filter(|l| !l.is_empty()) {
        refuse_set(ev, "linux.mount-label", "linux.mountLabel", label);
    }
    if linux.intel_rdt().is_some() {
        refuse_set(ev, "linux.intel-rdt", "linux.intelRdt", "(set)");
    }
    if let Some(seccomp) = linux.seccomp() {
        if let Some(path) = seccomp.listener_path() {
            refuse_set(
                ev,
                "seccomp.listener",
                "linux.seccomp.listenerPath",
                &path.display().to_string(),
            );
        }
        if let Some(metadata) = seccomp.listener_metadata() {
            refuse_set(
                ev,
                "seccomp.listener",
                "linux.seccomp.listenerMetadata",
                metadata,
            );
        }
        for flag in seccomp.flags().iter().flatten() {
            if *flag == LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow {
                ev.refuse(Violation::new(
                    "seccomp.flags",
                    "linux.seccomp.flags".into(),
                    "SECCOMP_FILTER_FLAG_SPEC_ALLOW".into(),
                    "linux.seccomp.flags SECCOMP_FILTER_FLAG_SPEC_ALLOW turns off the kernel's speculative store bypass mitigation for the container".into(),
                ));
            }
        }
    }
}

/// A field no interface grants, set.
fn refuse_set(ev: &mut Evaluation, rule: &'static str, field: &str, value: &str) {
    ev.refuse(Violation::new(
        rule,
        field.into(),
        value.into(),
        format!("{field} {value} is set"),
    ));
}

fn check_annotations(spec: &Spec, ev: &mut Evaluation) {
    let Some(annotations) = spec.annotations() else {
        return;
    };
    let mut keys: Vec<&String> = annotations
        .keys()
        .filter(|key| RUNTIME_ANNOTATIONS.iter().any(|p| key.starts_with(p)))
        .collect();
    keys.sort();
    for key in keys {
        ev.refuse(Violation::new(
            "annotation.runtime",
            format!("annotations.{key}"),
            annotations[key].clone(),
            format!("annotation {key} is read by the OCI runtime, which would act on it unjudged"),
        ));
    }
}

fn check_unknown_platforms(spec: &Spec, ev: &mut Evaluation) {
    #[allow(deprecated)] // the top-level mappings oci-spec reads, and the runtime spec never had
    let present = [
        ("solaris", spec.solaris().is_some()),
        ("windows", spec.windows().is_some()),
        ("vm", spec.vm().is_some()),
        ("zos", spec.zos().is_some()),
        ("uidMappings", spec.uid_mappings().is_some()),
        ("gidMappings", spec.gid_mappings().is_some()),
    ];
    for (field, _) in present.iter().filter(|(_, set)| *set) {
        ev.refuse(
            Violation::new(
                "spec.platform",
                (*field).into(),
                "(set)".into(),
                format!("{field} is not part of a Linux container's spec"),
            )
            .remedy("the gate judges Linux containers only; remove the field"),
        );
    }
}

/// The cgroup the runtime creates: below the runtime's parent, never a path that climbs out of it or the
/// hierarchy's root. The systemd driver's `slice:prefix:name` is judged part by part.
fn check_cgroups_path(path: &Path, ev: &mut Evaluation) {
    let text = path.to_string_lossy();
    let climbs = text
        .split([':', '/'])
        .any(|part| part == ".." || part == ".");
    let root = text.trim_matches('/').is_empty();
    if climbs || root {
        ev.refuse(
            Violation::new(
                "cgroup.path",
                "linux.cgroupsPath".into(),
                text.to_string(),
                format!(
                    "linux.cgroupsPath {text} {}",
                    if root {
                        "is the root of the cgroup hierarchy"
                    } else {
                        "climbs out of the runtime's cgroup"
                    }
                ),
            )
            .remedy("the container's cgroup must be its own, below the runtime's"),
        );
    }
}

/// Keys of `resources.unified` (the spec's, or an update's): controller files only.
pub(crate) fn check_unified<'a>(
    keys: impl Iterator<Item = &'a String>,
    field: &str,
    ev: &mut Evaluation,
) {
    let mut refused: Vec<&String> = keys.filter(|key| !unified_key_allowed(key)).collect();
    refused.sort();
    for key in refused {
        ev.refuse(
            Violation::new(
                "cgroup.unified",
                format!("{field}.{key}"),
                key.clone(),
                format!("{field} writes {key}, which is not a resource limit of the container's own cgroup"),
            )
            .remedy("only the controllers' files (cpu., memory., io., pids., hugetlb., cpuset., rdma., misc.) may be set"),
        );
    }
}

fn unified_key_allowed(key: &str) -> bool {
    !key.contains('/')
        && !key.contains("..")
        && UNIFIED_CONTROLLERS
            .iter()
            .any(|controller| key.starts_with(controller) && key.len() > controller.len())
}

/// Host IDs below this belong to the host's accounts (system users, people, nobody): subordinate ranges
/// for user namespaces (useradd's /etc/subuid, the kubelet's) start at or above it.
const HOST_ACCOUNTS_END: u64 = 65536;

/// A user namespace (or an idmapped mount) makes the container's IDs some host IDs: the host's root would
/// make the container's root the host's again, and another account's ID would make the container that
/// account for every file outside it (a granted home included). Only IDs nobody on the host has are the
/// container's own.
fn check_mappings(mappings: &Option<Vec<LinuxIdMapping>>, field: &str, ev: &mut Evaluation) {
    for (index, mapping) in mappings.iter().flatten().enumerate() {
        let first = u64::from(mapping.host_id());
        let end = first + u64::from(mapping.size());
        let shown = || {
            format!(
                "{} -> {} ({})",
                mapping.container_id(),
                mapping.host_id(),
                mapping.size()
            )
        };
        let (rule, why) = if mapping.size() == 0 || end > u64::from(u32::MAX) + 1 {
            (
                "userns.mapping",
                "is empty or runs past the last ID".to_string(),
            )
        } else if first == 0 {
            (
                "userns.host-root",
                "maps the container's IDs onto the host's root".to_string(),
            )
        } else if first < HOST_ACCOUNTS_END {
            (
                "userns.host-account",
                format!(
                    "maps the container's IDs onto host IDs {first}..{}, the host's own accounts",
                    end.min(HOST_ACCOUNTS_END) - 1
                ),
            )
        } else {
            continue;
        };
        ev.refuse(
            Violation::new(rule, format!("{field}[{index}]"), shown(), format!("{field}[{index}] {why}"))
                .remedy(format!(
                    "map onto a subordinate range (host IDs from {HOST_ACCOUNTS_END}, as /etc/subuid and the kubelet allocate)"
                )),
        );
    }
}
