//! Device nodes (`linux.devices`) and device cgroup rules (`linux.resources.devices`).

use std::path::Path;

use oci_spec::runtime::{LinuxDeviceType, Spec};

use super::evaluation::Evaluation;
use crate::permissions::Need;
use crate::profile::schema::{DeviceAccess, DeviceType};
use crate::verdict::Violation;

fn device_type(t: LinuxDeviceType) -> Option<DeviceType> {
    match t {
        LinuxDeviceType::C | LinuxDeviceType::U => Some(DeviceType::Char),
        LinuxDeviceType::B => Some(DeviceType::Block),
        LinuxDeviceType::P | LinuxDeviceType::A => None,
    }
}

pub(crate) fn check(spec: &Spec, ev: &mut Evaluation, skip_privileged_effects: bool) {
    if skip_privileged_effects {
        return;
    }
    let Some(linux) = spec.linux() else { return };
    // Nodes allowed by a grant, with the access that grant gives: cgroup rules for them are allowed too.
    let mut allowed_nodes: Vec<(DeviceType, i64, i64, DeviceAccess)> = Vec::new();

    for (index, device) in linux.devices().iter().flatten().enumerate() {
        let Some(kind) = device_type(device.typ()) else {
            continue;
        }; // a FIFO is no device
        let path = device.path();
        let (major, minor) = (device.major(), device.minor());
        let need = Need::Device {
            path: Some(path),
            kind,
            major: Some(major),
            minor: Some(minor),
            access: DeviceAccess::default(),
        };
        let Some((grant, _)) = ev.perms.device_grant(&need) else {
            let field = format!("linux.devices[{index}]");
            let value = format!("{} ({kind} {major}:{minor})", path.display());
            let violation = Violation::new(
                "device.node",
                field.clone(),
                value.clone(),
                format!("{field} device {value} is outside the connected interfaces"),
            );
            ev.refuse_needing(violation, &need);
            continue;
        };
        let access = grant.access;
        if grant.major.is_none() && !host_node_matches(ev, index, path, kind, major, minor) {
            continue;
        }
        allowed_nodes.push((kind, major, minor, access));
    }

    let rules = linux
        .resources()
        .as_ref()
        .and_then(|r| r.devices().as_ref());
    for (index, rule) in rules.into_iter().flatten().enumerate() {
        if !rule.allow() {
            continue;
        }
        let field = || format!("linux.resources.devices[{index}]");
        let wanted = match rule.access().as_deref() {
            None | Some("") => DeviceAccess::ALL,
            Some(text) => match DeviceAccess::parse(text) {
                Ok(access) => access,
                Err(e) => {
                    ev.refuse(Violation::new(
                        "device.cgroup",
                        format!("{}.access", field()),
                        text.into(),
                        format!("{} {e}", field()),
                    ));
                    continue;
                }
            },
        };
        let value = || {
            let number = |n: Option<i64>| n.map_or("*".to_string(), |n| n.to_string());
            let kind_text = rule
                .typ()
                .map_or("a".to_string(), |t| t.as_str().to_string());
            format!(
                "{kind_text} {}:{} {wanted}",
                number(rule.major()),
                number(rule.minor())
            )
        };
        let both = [DeviceType::Char, DeviceType::Block];
        let one;
        let kinds: &[DeviceType] = match rule.typ().and_then(device_type) {
            Some(kind) => {
                one = [kind];
                &one
            }
            None if rule.typ() == Some(LinuxDeviceType::P) => continue,
            None => &both,
        };
        for &kind in kinds {
            let need = Need::Device {
                path: None,
                kind,
                major: rule.major(),
                minor: rule.minor(),
                access: wanted,
            };
            if covered(ev, &need, &allowed_nodes) {
                continue;
            }
            let field = field();
            let violation = Violation::new(
                "device.cgroup",
                field.clone(),
                value(),
                format!(
                    "{field} allows device access {}, outside the connected interfaces",
                    value()
                ),
            );
            let need = if rule.major().is_none() {
                Need::Privileged
            } else {
                need
            };
            ev.refuse_needing(violation, &need);
            break;
        }
    }
}

/// Every bit of the rule's access must come from some grant: a device grant matching the numbers, or a node
/// of this spec that a grant allowed.
fn covered(
    ev: &Evaluation,
    need: &Need,
    allowed_nodes: &[(DeviceType, i64, i64, DeviceAccess)],
) -> bool {
    let Need::Device {
        kind,
        major,
        minor,
        access,
        ..
    } = need
    else {
        return false;
    };
    let mut bits = DeviceAccess::default();
    for (single, bit) in [
        ("r", DeviceAccess::READ),
        ("w", DeviceAccess::WRITE),
        ("m", DeviceAccess::MKNOD),
    ] {
        if !access.covers(bit) {
            continue;
        }
        let by_grant = ev.perms.device_grant(&Need::Device {
            path: None,
            kind: *kind,
            major: *major,
            minor: *minor,
            access: bit,
        });
        let by_node = allowed_nodes.iter().any(|(k, ma, mi, acc)| {
            k == kind
                && Some(*ma) == *major
                && Some(*mi) == *minor
                && (acc.covers(bit) || single == "m")
        });
        if by_grant.is_some() || by_node {
            bits = bits.union(bit);
        }
    }
    bits.covers(*access)
}

/// A grant that names a device by path only: the spec's numbers must be those of the host's node there,
/// or the path would become a different device inside the container.
fn host_node_matches(
    ev: &mut Evaluation,
    index: usize,
    path: &Path,
    kind: DeviceType,
    major: i64,
    minor: i64,
) -> bool {
    let problem = match ev.host.device_node(path) {
        Ok(Some(node)) if node.kind == kind && node.major == major && node.minor == minor => {
            return true
        }
        Ok(Some(node)) => format!(
            "is {kind} {major}:{minor} in the spec but {} {}:{} on the host",
            node.kind, node.major, node.minor
        ),
        Ok(None) => "is not a device node on the host".to_string(),
        Err(e) => format!("cannot be examined on the host ({e})"),
    };
    let field = format!("linux.devices[{index}]");
    let value = format!("{} ({kind} {major}:{minor})", path.display());
    ev.refuse(
        Violation::new(
            "device.node",
            field.clone(),
            value,
            format!("{field} device {} {problem}", path.display()),
        )
        .remedy("the granted path must name the same device on the host"),
    );
    false
}
