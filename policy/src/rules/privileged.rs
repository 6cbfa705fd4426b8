//! `privileged: true` has no flag in OCI: it is recognised by its effects.

use oci_spec::runtime::{Capability, LinuxDeviceType, Spec};

use super::evaluation::Evaluation;
use crate::permissions::Need;
use crate::verdict::Violation;

/// Capabilities only a privileged (or deliberately over-capable) spec holds all of.
const TELLTALE_CAPABILITIES: [Capability; 4] = [
    Capability::SysAdmin,
    Capability::SysModule,
    Capability::SysRawio,
    Capability::MacAdmin,
];

/// The effects of `privileged: true` present in the spec.
pub(crate) fn effects(spec: &Spec) -> Vec<&'static str> {
    let mut effects = Vec::new();
    let all_caps = spec
        .process()
        .as_ref()
        .and_then(|p| p.capabilities().as_ref())
        .and_then(|c| c.bounding().as_ref())
        .is_some_and(|set| TELLTALE_CAPABILITIES.iter().all(|c| set.contains(c)));
    if all_caps {
        effects.push("all capabilities");
    }
    let linux = spec.linux().as_ref();
    let unmasked = linux.is_none_or(|l| {
        l.masked_paths().as_ref().is_none_or(|m| m.is_empty())
            && l.readonly_paths().as_ref().is_none_or(|r| r.is_empty())
    });
    if unmasked {
        effects.push("no masked or read-only paths");
    }
    let writable_sysfs = spec.mounts().as_ref().is_some_and(|mounts| {
        mounts.iter().any(|m| {
            m.typ().as_deref() == Some("sysfs")
                && !m
                    .options()
                    .as_ref()
                    .is_some_and(|o| o.iter().any(|x| x == "ro"))
        })
    });
    if writable_sysfs {
        effects.push("writable /sys");
    }
    if linux.is_none_or(|l| l.seccomp().is_none()) {
        effects.push("no seccomp filter");
    }
    let all_devices = linux
        .and_then(|l| l.resources().as_ref())
        .and_then(|r| r.devices().as_ref())
        .is_some_and(|rules| {
            rules.iter().any(|r| {
                r.allow()
                    && r.typ().is_none_or(|t| t == LinuxDeviceType::A)
                    && r.major().is_none()
                    && r.minor().is_none()
            })
        });
    if all_devices {
        effects.push("every host device");
    }
    effects
}

/// Returns true when the spec is privileged and privileged containers are allowed here: the other rules
/// then leave the privileged effects alone. A privileged spec that is not allowed is refused once, here.
pub(crate) fn check(spec: &Spec, ev: &mut Evaluation) -> bool {
    let effects = effects(spec);
    // All capabilities plus two more effects: a spec that only lacks seccomp (plain `ctr run`) is not one.
    let privileged = effects.first() == Some(&"all capabilities") && effects.len() >= 3;
    if !privileged {
        return false;
    }
    if ev.perms.privileged_allowed() {
        return true;
    }
    let value = effects.join(", ");
    let summary = format!("the container is privileged ({value})");
    let remedy = if ev.perms.privileged_plug.is_some() {
        "docker-support (privileged-containers: true) is connected, but allow_privileged is off in the \
         configuration"
    } else {
        "and set allow_privileged = true in the configuration"
    };
    let violation =
        Violation::new("privileged", "process.capabilities".into(), value, summary).remedy(remedy);
    if ev.perms.privileged_plug.is_some() {
        ev.refuse(violation);
    } else {
        ev.refuse_needing(violation, &Need::Privileged);
    }
    // Refused: the effects are reported as this one violation, not once per capability and device.
    true
}
