//! Capabilities, all five sets.

use std::collections::BTreeMap;

use oci_spec::runtime::{Capabilities, Capability, Spec};

use super::evaluation::Evaluation;
use crate::permissions::Need;
use crate::profile::schema::capability_name;
use crate::verdict::Violation;

fn sets_of(
    caps: &oci_spec::runtime::LinuxCapabilities,
) -> [(&'static str, Option<Capabilities>); 5] {
    [
        ("bounding", caps.bounding().clone()),
        ("effective", caps.effective().clone()),
        ("inheritable", caps.inheritable().clone()),
        ("permitted", caps.permitted().clone()),
        ("ambient", caps.ambient().clone()),
    ]
}

pub(crate) fn check(spec: &mut Spec, ev: &mut Evaluation, skip_privileged_effects: bool) {
    if skip_privileged_effects {
        return;
    }
    let Some(process) = spec.process_mut() else {
        return;
    };
    let Some(current) = process.capabilities() else {
        return;
    };
    // The usual case, every capability granted: nothing to report or change.
    let all_granted = [
        current.bounding(),
        current.effective(),
        current.inheritable(),
        current.permitted(),
        current.ambient(),
    ]
    .into_iter()
    .flatten()
    .flatten()
    .all(|cap| ev.perms.capability(*cap).is_some());
    if all_granted {
        return;
    }
    let mut caps = current.clone();
    let sets = sets_of(&caps);

    // Each capability once, with the first set that holds it; sorted by name for a stable order.
    let mut wanted: BTreeMap<String, (Capability, &'static str)> = BTreeMap::new();
    for (name, set) in &sets {
        for cap in set.iter().flatten() {
            wanted.entry(capability_name(*cap)).or_insert((*cap, name));
        }
    }
    let mut dropped = Vec::new();
    for (cap_name, (cap, set_name)) in &wanted {
        if ev.perms.capability(*cap).is_some() {
            continue;
        }
        if ev.perms.runtime_default_capabilities.contains(cap) {
            dropped.push(*cap);
            continue;
        }
        let field = format!("process.capabilities.{set_name}");
        let summary =
            format!("{field} holds {cap_name}, which the connected interfaces do not grant");
        let mut violation = Violation::new("capability", field, cap_name.clone(), summary);
        let withheld_by: Vec<&str> = ev
            .perms
            .catalog
            .interfaces
            .values()
            .filter(|i| i.withheld.contains_key(cap_name.as_str()))
            .map(|i| i.interface.as_str())
            .collect();
        if !withheld_by.is_empty() {
            violation = violation.remedy(format!(
                "snapd gives it to snaps only together with AppArmor rules a container lacks ({}); drop it",
                withheld_by.join(", ")
            ));
        } else {
            violation = violation.remedy("drop it from the container's capabilities");
        }
        ev.refuse_needing(violation, &Need::Capability(*cap));
    }
    if dropped.is_empty() {
        return;
    }
    // Containerd's defaults the grants lack are dropped from every set: the container still runs.
    for cap in &dropped {
        let holders: Vec<&str> = sets
            .iter()
            .filter(|(_, set)| set.as_ref().is_some_and(|s| s.contains(cap)))
            .map(|(name, _)| *name)
            .collect();
        ev.narrow(
            "capability.dropped",
            "process.capabilities".into(),
            format!("{} in {}", capability_name(*cap), holders.join(", ")),
            "dropped (not granted by the connected interfaces)".into(),
        );
    }
    let strip = |set: Option<Capabilities>| {
        set.map(|mut s| {
            for cap in &dropped {
                s.remove(cap);
            }
            s
        })
    };
    let [(_, b), (_, e), (_, i), (_, p), (_, a)] = sets;
    caps.set_bounding(strip(b));
    caps.set_effective(strip(e));
    caps.set_inheritable(strip(i));
    caps.set_permitted(strip(p));
    caps.set_ambient(strip(a));
    process.set_capabilities(Some(caps));
}
