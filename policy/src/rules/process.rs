//! The container's process: what the runtime sets up for it as root, before it drops to the container's
//! capabilities. A field that only a privileged process could set for itself (real-time scheduling, a
//! lower OOM score, a higher memlock limit) needs the capability the kernel would ask for; an absent
//! capability list, which runc reads as "keep all of mine", is filled with the narrow value: none.

use oci_spec::runtime::{
    Capability, IOPriorityClass, LinuxCapabilities, LinuxSchedulerPolicy, PosixRlimit,
    PosixRlimitType, Process, Spec,
};

use super::evaluation::Evaluation;
use crate::permissions::Need;
use crate::verdict::Violation;

/// The lowest OOM score adjustment kubelet or containerd ever set (containerd's for a sandbox; kubelet
/// gives Guaranteed pods -997): anything lower protects the container over the node's own daemons.
pub const LOWEST_OOM_SCORE_ADJ: i32 = -998;

/// The kernel's default `RLIMIT_MEMLOCK` (since Linux 5.16): more lets the container pin host memory.
pub const DEFAULT_MEMLOCK: u64 = 8 * 1024 * 1024;

/// `RLIMIT_NICE` is `20 - nice`: above 20 the process may raise its priority above the default.
const DEFAULT_NICE_LIMIT: u64 = 20;

/// `privileged`: the spec is privileged and that is allowed; it holds every capability these need.
pub(crate) fn check(spec: &mut Spec, ev: &mut Evaluation, privileged: bool) {
    let Some(process) = spec.process_mut() else {
        ev.refuse(
            Violation::new(
                "process.absent",
                "process".into(),
                "(absent)".into(),
                "the spec has no process".into(),
            )
            .remedy(
                "a container needs its process; the gate does not know what the runtime would run",
            ),
        );
        return;
    };
    fill_absent_capabilities(process, ev);
    if process.apparmor_profile().as_deref() == Some("unconfined") {
        ev.refuse(Violation::new(
            "process.apparmor",
            "process.apparmorProfile".into(),
            "unconfined".into(),
            "process.apparmorProfile unconfined runs the container outside AppArmor".into(),
        ));
    }
    if let Some(label) = process.selinux_label().as_deref().filter(|l| !l.is_empty()) {
        ev.refuse(Violation::new(
            "process.selinux-label",
            "process.selinuxLabel".into(),
            label.to_string(),
            format!("process.selinuxLabel {label} labels the container for SELinux"),
        ));
    }
    if privileged {
        return;
    }
    for (violation, capability) in privileged_settings(process) {
        if ev.perms.capability(capability).is_none() {
            ev.refuse_needing(violation, &Need::Capability(capability));
        }
    }
}

/// runc keeps every capability of its own for a process that lists none (crun drops them all): the
/// narrow reading is crun's.
fn fill_absent_capabilities(process: &mut Process, ev: &mut Evaluation) {
    if process.capabilities().is_some() {
        return;
    }
    // oci-spec's default holds the runtime's default set: every set is emptied explicitly.
    let mut empty = LinuxCapabilities::default();
    empty.set_bounding(Some(Default::default()));
    empty.set_effective(Some(Default::default()));
    empty.set_inheritable(Some(Default::default()));
    empty.set_permitted(Some(Default::default()));
    empty.set_ambient(Some(Default::default()));
    process.set_capabilities(Some(empty));
    ev.narrow(
        "capability.absent",
        "process.capabilities".into(),
        "(absent: runc keeps all of its own)".into(),
        "none".into(),
    );
}

/// The process settings that need a capability, each with the violation it makes and that capability.
fn privileged_settings(process: &Process) -> Vec<(Violation, Capability)> {
    let mut found = Vec::new();
    if let Some(scheduler) = process.scheduler() {
        let policy = scheduler.policy();
        let real_time = matches!(
            policy,
            LinuxSchedulerPolicy::SchedFifo
                | LinuxSchedulerPolicy::SchedRr
                | LinuxSchedulerPolicy::SchedDeadline
                | LinuxSchedulerPolicy::SchedIso
        );
        if real_time {
            let name = spec_name(&policy);
            found.push((
                Violation::new(
                    "process.scheduler",
                    "process.scheduler.policy".into(),
                    name.clone(),
                    format!("process.scheduler.policy {name} is real-time scheduling, which can starve the node"),
                ),
                Capability::SysNice,
            ));
        }
        if let Some(nice) = scheduler.nice().filter(|nice| *nice < 0) {
            found.push((
                Violation::new(
                    "process.scheduler",
                    "process.scheduler.nice".into(),
                    nice.to_string(),
                    format!("process.scheduler.nice {nice} raises the container's priority above the node's default"),
                ),
                Capability::SysNice,
            ));
        }
    }
    if let Some(io) = process.io_priority() {
        if io.class() == IOPriorityClass::IoprioClassRt {
            found.push((
                Violation::new(
                    "process.io-priority",
                    "process.ioPriority.class".into(),
                    "IOPRIO_CLASS_RT".into(),
                    "process.ioPriority.class IOPRIO_CLASS_RT puts the container's I/O before the node's"
                        .into(),
                ),
                Capability::SysNice,
            ));
        }
    }
    for (index, rlimit) in process.rlimits().iter().flatten().enumerate() {
        if let Some(found_one) = privileged_rlimit(index, rlimit) {
            found.push(found_one);
        }
    }
    if let Some(adj) = process
        .oom_score_adj()
        .filter(|adj| *adj < LOWEST_OOM_SCORE_ADJ)
    {
        found.push((
            Violation::new(
                "process.oom-score",
                "process.oomScoreAdj".into(),
                adj.to_string(),
                format!(
                    "process.oomScoreAdj {adj} is below {LOWEST_OOM_SCORE_ADJ}, protecting the container over the node's own daemons"
                ),
            ),
            Capability::SysResource,
        ));
    }
    found
}

/// A resource limit that hands the container what a capability guards; the others only limit it.
pub(crate) fn privileged_rlimit(
    index: usize,
    rlimit: &PosixRlimit,
) -> Option<(Violation, Capability)> {
    let highest = rlimit.hard().max(rlimit.soft());
    let (capability, what) = match rlimit.typ() {
        PosixRlimitType::RlimitRtprio if highest > 0 => (
            Capability::SysNice,
            "lets the container schedule itself in real time",
        ),
        PosixRlimitType::RlimitNice if highest > DEFAULT_NICE_LIMIT => (
            Capability::SysNice,
            "lets the container raise its priority above the node's default",
        ),
        PosixRlimitType::RlimitMemlock if highest > DEFAULT_MEMLOCK => (
            Capability::IpcLock,
            "lets the container lock more memory than the kernel's default (8 MiB)",
        ),
        _ => return None,
    };
    let name = spec_name(&rlimit.typ());
    Some((
        Violation::new(
            "process.rlimit",
            format!("process.rlimits[{index}]"),
            format!("{name} {highest}"),
            format!("process.rlimits[{index}] {name} {highest} {what}"),
        ),
        capability,
    ))
}

/// An enum value as the spec spells it (`SCHED_FIFO`, `RLIMIT_RTPRIO`).
pub(crate) fn spec_name(value: &impl serde::Serialize) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}
