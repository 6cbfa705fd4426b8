//! Exec processes: runc starts them from outside the container, so nothing the container's own process
//! gave up limits them. An exec may not gain what the (already gated) container process does not have.

use std::collections::BTreeSet;

use oci_spec::runtime::{Capability, LinuxCapabilities, Process, Spec};

use super::process::{privileged_rlimit, spec_name, LOWEST_OOM_SCORE_ADJ};
use crate::profile::schema::capability_name;
use crate::verdict::{Verdict, Violation};

fn all_of(caps: &Option<LinuxCapabilities>) -> BTreeSet<String> {
    let Some(caps) = caps else {
        return BTreeSet::new();
    };
    [
        caps.bounding(),
        caps.effective(),
        caps.inheritable(),
        caps.permitted(),
        caps.ambient(),
    ]
    .into_iter()
    .flatten()
    .flatten()
    .map(|cap: &Capability| capability_name(*cap))
    .collect()
}

/// Checks `exec` against the process of `container` (the spec the gate let run).
pub fn evaluate_exec(container: &Spec, exec: &Process) -> Verdict {
    let mut verdict = Verdict::default();
    let Some(own) = container.process() else {
        verdict.violations.push(Violation::new(
            "exec.container",
            "process".into(),
            String::new(),
            "the container has no process to compare the exec with".into(),
        ));
        return verdict;
    };
    if exec.capabilities().is_none() {
        verdict.violations.push(
            Violation::new(
                "exec.capabilities-absent",
                "process.capabilities".into(),
                "(absent)".into(),
                "the exec process lists no capabilities, so runc would give it all of its own"
                    .into(),
            )
            .remedy("exec with the container's capabilities"),
        );
    }
    let allowed = all_of(own.capabilities());
    let mut extra: Vec<String> = all_of(exec.capabilities())
        .difference(&allowed)
        .cloned()
        .collect();
    extra.sort();
    for cap in extra {
        verdict.violations.push(
            Violation::new(
                "exec.capability",
                "process.capabilities".into(),
                cap.clone(),
                format!(
                    "the exec process asks for {cap}, which the container's process does not hold"
                ),
            )
            .remedy("exec with the container's capabilities"),
        );
    }
    if own.no_new_privileges() == Some(true) && exec.no_new_privileges() != Some(true) {
        verdict.violations.push(
            Violation::new(
                "exec.no-new-privileges",
                "process.noNewPrivileges".into(),
                "false".into(),
                "the exec process drops noNewPrivileges, which the container's process has".into(),
            )
            .remedy("keep allowPrivilegeEscalation: false for exec"),
        );
    }
    if own.user().uid() != 0 && exec.user().uid() == 0 {
        verdict.violations.push(
            Violation::new(
                "exec.user",
                "process.user.uid".into(),
                "0".into(),
                format!(
                    "the exec process runs as root, the container's process as uid {}",
                    own.user().uid()
                ),
            )
            .remedy("exec as the container's user"),
        );
    }
    if own.apparmor_profile() != exec.apparmor_profile() {
        let shown = |p: &Option<String>| p.clone().unwrap_or_else(|| "unconfined".into());
        verdict.violations.push(
            Violation::new(
                "exec.apparmor",
                "process.apparmorProfile".into(),
                shown(exec.apparmor_profile()),
                format!(
                    "the exec process asks for AppArmor profile {}, the container runs under {}",
                    shown(exec.apparmor_profile()),
                    shown(own.apparmor_profile())
                ),
            )
            .remedy("exec under the container's AppArmor profile"),
        );
    }
    judge_groups(own, exec, &mut verdict);
    judge_process_settings(own, exec, &mut verdict);
    verdict
}

/// An exec's groups are the container's own: a group the container does not have (`disk`, `kvm`...) opens
/// what is group-owned below its mounts.
fn judge_groups(own: &Process, exec: &Process, verdict: &mut Verdict) {
    let mut held: BTreeSet<u32> = own
        .user()
        .additional_gids()
        .iter()
        .flatten()
        .copied()
        .collect();
    held.insert(own.user().gid());
    let asked = std::iter::once(("process.user.gid".to_string(), exec.user().gid())).chain(
        exec.user()
            .additional_gids()
            .iter()
            .flatten()
            .enumerate()
            .map(|(i, gid)| (format!("process.user.additionalGids[{i}]"), *gid)),
    );
    for (field, gid) in asked.filter(|(_, gid)| !held.contains(gid)) {
        verdict.violations.push(
            Violation::new(
                "exec.user",
                field,
                gid.to_string(),
                format!("the exec process asks for group {gid}, which the container's process does not have"),
            )
            .remedy("exec with the container's groups"),
        );
    }
}

/// Scheduling, I/O priority, OOM score and resource limits: an exec may not have more than the container.
fn judge_process_settings(own: &Process, exec: &Process, verdict: &mut Verdict) {
    let mut differs = |field: &str, value: String, summary: String| {
        verdict.violations.push(
            Violation::new("exec.process", field.into(), value, summary)
                .remedy("exec with the container's own settings"),
        );
    };
    if let Some(scheduler) = exec
        .scheduler()
        .as_ref()
        .filter(|s| Some(*s) != own.scheduler().as_ref())
    {
        let policy = spec_name(&scheduler.policy());
        differs(
            "process.scheduler",
            policy.clone(),
            format!("the exec process asks for scheduler {policy}, which is not the container's"),
        );
    }
    if let Some(io) = exec
        .io_priority()
        .as_ref()
        .filter(|io| Some(*io) != own.io_priority().as_ref())
    {
        let class = spec_name(&io.class());
        differs(
            "process.ioPriority",
            format!("{class} {}", io.priority()),
            format!(
                "the exec process asks for I/O priority {class} {}, which is not the container's",
                io.priority()
            ),
        );
    }
    let floor = own.oom_score_adj().unwrap_or(LOWEST_OOM_SCORE_ADJ);
    if let Some(adj) = exec.oom_score_adj().filter(|adj| *adj < floor) {
        differs(
            "process.oomScoreAdj",
            adj.to_string(),
            format!("the exec process asks for OOM score adjustment {adj}, below the container's {floor}"),
        );
    }
    for (index, rlimit) in exec.rlimits().iter().flatten().enumerate() {
        let Some((violation, _)) = privileged_rlimit(index, rlimit) else {
            continue;
        };
        let within = own.rlimits().iter().flatten().any(|theirs| {
            theirs.typ() == rlimit.typ()
                && theirs.hard() >= rlimit.hard()
                && theirs.soft() >= rlimit.soft()
        });
        if !within {
            differs(
                &violation.field,
                violation.value.clone(),
                format!(
                    "the exec process asks for {}, more than the container's",
                    violation.value
                ),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn process(value: serde_json::Value) -> Process {
        serde_json::from_value(value).unwrap()
    }

    fn container() -> Spec {
        serde_json::from_value(json!({
            "ociVersion": "1.1.0",
            "process": {
                "user": {"uid": 1000, "gid": 1000}, "cwd": "/", "args": ["sh"], "noNewPrivileges": true,
                "apparmorProfile": "cri-containerd.apparmor.d",
                "capabilities": {"bounding": ["CAP_CHOWN", "CAP_KILL"], "effective": ["CAP_CHOWN"],
                                 "permitted": ["CAP_CHOWN", "CAP_KILL"]}
            },
            "root": {"path": "rootfs"}
        }))
        .unwrap()
    }

    #[test]
    fn an_exec_like_the_container_is_allowed() {
        let exec = process(json!({
            "user": {"uid": 1000, "gid": 1000}, "cwd": "/", "args": ["ls"], "noNewPrivileges": true,
            "apparmorProfile": "cri-containerd.apparmor.d",
            "capabilities": {"bounding": ["CAP_KILL"], "effective": ["CAP_CHOWN"]}
        }));
        assert!(evaluate_exec(&container(), &exec).runs());
    }

    #[test]
    fn an_exec_that_gains_anything_is_refused_for_each() {
        let exec = process(json!({
            "user": {"uid": 0, "gid": 0}, "cwd": "/", "args": ["sh"],
            "capabilities": {"bounding": ["CAP_SYS_ADMIN", "CAP_CHOWN", "CAP_NET_ADMIN"]}
        }));
        let verdict = evaluate_exec(&container(), &exec);
        let rules: Vec<(&str, &str)> = verdict
            .violations
            .iter()
            .map(|v| (v.rule, v.value.as_str()))
            .collect();
        assert_eq!(
            rules,
            [
                ("exec.capability", "CAP_NET_ADMIN"),
                ("exec.capability", "CAP_SYS_ADMIN"),
                ("exec.no-new-privileges", "false"),
                ("exec.user", "0"),
                ("exec.apparmor", "unconfined"),
                // gid 0, which the container's process (gid 1000) does not have.
                ("exec.user", "0"),
            ]
        );
        assert!(verdict
            .refusal_message()
            .unwrap()
            .starts_with("strict: refused: the exec process asks for CAP_NET_ADMIN"));
    }
}
