//! What `strictctl reconcile` does about each container whose admission no longer holds, as `on_revoke`
//! says: `report` records it in the audit trail; `narrow` takes revoked devices out of its device cgroup
//! when devices are all it holds (and stops it otherwise); `stop` kills it, so that its pod restarts
//! under the grants now. A container admitted in complain mode is only reported, as every other decision
//! of that mode. Every action is recorded in the audit trail (decision `revoked`); a container that
//! cannot be judged now is only listed (there is nothing known to record).

use oci_spec::runtime::{LinuxDeviceType, Spec};
use strict_policy::{Mode, OnRevoke, Verdict};

use super::admission::Admission;
use super::node::{DeviceRule, Node};
use super::{Held, Judge};
use crate::audit::record::{Decision, Identity, Subject};
use crate::gate::record::{Recorded, Trail};

/// What was done about one container.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Reported,
    Narrowed,
    Stopped,
    /// The action failed (the container may still hold what it should not): see the detail.
    Failed,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Reported => "reported",
            Action::Narrowed => "narrowed",
            Action::Stopped => "stopped",
            Action::Failed => "failed",
        }
    }
}

#[derive(Debug)]
pub struct Done {
    pub namespace: String,
    pub id: String,
    pub action: Action,
    pub detail: String,
}

/// Acts on one drifted container. `choice` overrides the configuration's `on_revoke`.
pub fn reconcile(
    held: &Held,
    choice: Option<OnRevoke>,
    judge: &mut Judge,
    node: &dyn Node,
) -> Done {
    let admission = &held.admission;
    let done = |action, detail: String| Done {
        namespace: admission.namespace.clone(),
        id: admission.id.clone(),
        action,
        detail,
    };
    let judged = match &held.now {
        Ok(judged) => judged,
        // Undecided: nothing is known to be revoked, and stopping on a snapd outage would turn an outage
        // into a node-wide restart. Reported, never acted on.
        Err(error) => return done(Action::Failed, format!("cannot judge it now: {error}")),
    };
    let on_revoke = if admission.mode == Mode::Complain {
        OnRevoke::Report
    } else {
        choice.unwrap_or(judged.permissions.config.on_revoke)
    };
    let trail = Trail::new(
        &judged.permissions.config,
        &admission
            .config_file
            .as_ref()
            .map_or("the configuration of strictctl reconcile".into(), |p| {
                p.display().to_string()
            }),
        &admission.namespace,
        Some(&judged.permissions),
    );
    let identity = Identity::of_spec(&admission.spec);
    let subject = identity.subject.unwrap_or(Subject::Container);
    let record = |action: Action, verdict: &Verdict, detail: &str| {
        trail.record(
            Decision::Revoked,
            subject,
            Recorded {
                verdict: Some(verdict),
                action: Some(action.as_str()),
                error: (!detail.is_empty()).then_some(detail),
                ..Recorded::new(&admission.id, None, &identity)
            },
        );
    };
    let stop = |why: String| match node.stop(&admission.runtime, &admission.id) {
        Ok(()) => {
            record(Action::Stopped, &judged.verdict, &why);
            done(Action::Stopped, why)
        }
        Err(error) => {
            let detail = format!("{why}; stopping it failed: {error}");
            record(Action::Failed, &judged.verdict, &detail);
            done(Action::Failed, detail)
        }
    };
    match on_revoke {
        OnRevoke::Report => {
            record(Action::Reported, &judged.verdict, "");
            done(Action::Reported, "recorded in the audit trail".into())
        }
        OnRevoke::Stop => stop("on_revoke = \"stop\"".into()),
        OnRevoke::Narrow => {
            let Some((rules, narrowed)) = device_narrowing(&admission.spec, &judged.verdict) else {
                return stop("it holds more than devices, which only a restart takes back".into());
            };
            let Some(cgroups_path) = admission
                .spec
                .linux()
                .as_ref()
                .and_then(|l| l.cgroups_path().as_ref())
                .and_then(|p| p.to_str())
            else {
                return stop("its spec names no cgroup to narrow".into());
            };
            if let Err(error) =
                node.deny_devices(&admission.runtime, held.state.pid, cgroups_path, &rules)
            {
                return stop(format!("the device cgroup cannot be narrowed: {error}"));
            }
            // The same process still runs the container: the rules went to its cgroup.
            match node.state(&admission.runtime, &admission.id) {
                Ok(Some(state)) if state.pid == held.state.pid && state.is_live() => {}
                _ => return stop("it changed while it was narrowed".into()),
            }
            let mut after = Admission {
                spec: narrowed,
                ..admission.clone()
            };
            after
                .revoked
                .extend(rules.iter().map(|rule| format!("device {rule}")));
            match judge.judge(&after) {
                Ok(again) if again.verdict.violations.is_empty() => {}
                Ok(_) | Err(_) => {
                    return stop("narrowed, yet it still holds what is not granted".into())
                }
            }
            if let Err(error) = after.write(&held.bundle) {
                // The cgroup is narrowed; only the record is stale, and the next status says so again.
                tracing::warn!(%error, "the narrowed admission cannot be recorded");
            }
            let detail = format!(
                "denied in its device cgroup: {}",
                rules
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            record(Action::Narrowed, &judged.verdict, &detail);
            done(Action::Narrowed, detail)
        }
    }
}

/// When every violation is a device (`linux.devices[i]`, `linux.resources.devices[i]` naming one device):
/// the device cgroup rules that take them back, and the spec without them.
fn device_narrowing(spec: &Spec, verdict: &Verdict) -> Option<(Vec<DeviceRule>, Spec)> {
    if verdict.violations.is_empty() || !verdict.narrowed.is_empty() {
        return None;
    }
    let linux = spec.linux().as_ref()?;
    let nodes = linux.devices().clone().unwrap_or_default();
    let allows = linux
        .resources()
        .as_ref()
        .and_then(|r| r.devices().clone())
        .unwrap_or_default();
    let mut rules = Vec::new();
    let (mut drop_nodes, mut drop_allows) = (Vec::new(), Vec::new());
    for violation in &verdict.violations {
        let field = violation.field.as_str();
        if let Some(index) = indexed(field, "linux.devices") {
            let node = nodes.get(index)?;
            let typ = cgroup_letter(node.typ())?;
            rules.push(DeviceRule {
                typ,
                major: node.major(),
                minor: node.minor(),
                access: "rwm".into(),
            });
            drop_nodes.push(index);
        } else if let Some(index) = indexed(field, "linux.resources.devices") {
            let allow = allows.get(index)?;
            let typ = cgroup_letter(allow.typ()?)?;
            rules.push(DeviceRule {
                typ,
                major: allow.major()?,
                minor: allow.minor()?,
                access: "rwm".into(),
            });
            drop_allows.push(index);
        } else {
            return None;
        }
    }
    rules.dedup();
    let mut narrowed = spec.clone();
    let linux = narrowed.linux_mut().as_mut()?;
    linux.set_devices(Some(without(nodes, &drop_nodes)));
    if let Some(resources) = linux.resources_mut().as_mut() {
        resources.set_devices(Some(without(allows, &drop_allows)));
    }
    Some((rules, narrowed))
}

/// `items` less those at `indices`.
fn without<T>(items: Vec<T>, indices: &[usize]) -> Vec<T> {
    items
        .into_iter()
        .enumerate()
        .filter(|(i, _)| !indices.contains(i))
        .map(|(_, item)| item)
        .collect()
}

/// A device cgroup's letter for a spec's device type; None for FIFOs and wildcards.
fn cgroup_letter(typ: LinuxDeviceType) -> Option<char> {
    match typ {
        LinuxDeviceType::C | LinuxDeviceType::U => Some('c'),
        LinuxDeviceType::B => Some('b'),
        _ => None,
    }
}

/// `linux.devices[3]` (or a field below it) → 3.
fn indexed(field: &str, array: &str) -> Option<usize> {
    let rest = field.strip_prefix(array)?.strip_prefix('[')?;
    rest[..rest.find(']')?].parse().ok()
}
