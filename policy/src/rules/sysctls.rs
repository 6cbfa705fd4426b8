//! Sysctls: Kubernetes' safe list, containerd's two, and what the connected interfaces add.

use oci_spec::runtime::Spec;

use super::evaluation::Evaluation;
use crate::permissions::Need;
use crate::verdict::Violation;

/// Sysctl names may use `/` as the separator (`net/ipv4/ip_forward`); then a `.` is part of a component
/// (`net/ipv4/conf/eth0.100/rp_filter`). Returns the dotted form with the two swapped, as Kubernetes does.
pub(crate) fn dotted(name: &str) -> String {
    if !name.contains('/') {
        return name.to_string();
    }
    name.chars()
        .map(|c| match c {
            '/' => '.',
            '.' => '/',
            other => other,
        })
        .collect()
}

pub(crate) fn check(spec: &Spec, ev: &mut Evaluation) {
    let Some(sysctls) = spec.linux().as_ref().and_then(|l| l.sysctl().as_ref()) else {
        return;
    };
    let mut names: Vec<&String> = sysctls.keys().collect();
    names.sort();
    for name in names {
        let dotted = dotted(name);
        if ev.perms.sysctl(&dotted).is_some() {
            continue;
        }
        let field = format!("linux.sysctl.{name}");
        let violation = Violation::new(
            "sysctl",
            field.clone(),
            format!("{name}={}", sysctls[name]),
            format!("{field} is not a safe sysctl and the connected interfaces do not grant it"),
        );
        ev.refuse_needing(violation, &Need::Sysctl(&dotted));
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn slash_form_is_dotted() {
        assert_eq!(
            super::dotted("net/ipv4/conf/eth0.100/rp_filter"),
            "net.ipv4.conf.eth0/100.rp_filter"
        );
        assert_eq!(
            super::dotted("kernel.shm_rmid_forced"),
            "kernel.shm_rmid_forced"
        );
    }
}
