//! Masked and read-only /proc and /sys paths, and the AppArmor profile: restored when a spec drops them.

use oci_spec::runtime::Spec;

use super::evaluation::Evaluation;

pub(crate) fn check(spec: &mut Spec, ev: &mut Evaluation, skip_privileged_effects: bool) {
    if skip_privileged_effects {
        return;
    }
    let base = &ev.perms.catalog.base;
    if let Some(linux) = spec.linux_mut() {
        let masked: &[String] = linux.masked_paths().as_deref().unwrap_or(&[]);
        let missing: Vec<String> = base
            .masked_paths
            .iter()
            .filter(|p| !masked.contains(p))
            .cloned()
            .collect();
        if !missing.is_empty() {
            ev.narrow(
                "hardening.masked-paths",
                "linux.maskedPaths".into(),
                format!("{} paths", masked.len()),
                format!("added {}", missing.join(", ")),
            );
            let mut masked = masked.to_vec();
            masked.extend(missing);
            linux.set_masked_paths(Some(masked));
        }
        // A masked path is stronger than a read-only one, so it satisfies the read-only list too.
        let masked: &[String] = linux.masked_paths().as_deref().unwrap_or(&[]);
        let readonly: &[String] = linux.readonly_paths().as_deref().unwrap_or(&[]);
        let missing: Vec<String> = base
            .readonly_paths
            .iter()
            .filter(|p| !readonly.contains(p) && !masked.contains(p))
            .cloned()
            .collect();
        if !missing.is_empty() {
            ev.narrow(
                "hardening.readonly-paths",
                "linux.readonlyPaths".into(),
                format!("{} paths", readonly.len()),
                format!("added {}", missing.join(", ")),
            );
            let mut readonly = readonly.to_vec();
            readonly.extend(missing);
            linux.set_readonly_paths(Some(readonly));
        }
    }
    let Some(profile) = &ev.perms.config.apparmor_profile else {
        return;
    };
    let Some(process) = spec.process_mut() else {
        return;
    };
    let current = process.apparmor_profile().as_deref().unwrap_or_default();
    if current.is_empty() || current == "unconfined" {
        let current = current.to_string();
        ev.narrow(
            "hardening.apparmor",
            "process.apparmorProfile".into(),
            if current.is_empty() {
                "(none)".into()
            } else {
                current
            },
            profile.clone(),
        );
        process.set_apparmor_profile(Some(profile.clone()));
    }
}
