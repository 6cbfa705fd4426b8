//! Seccomp: the container's filter becomes its own profile ∩ the syscalls the interfaces allow.
//!
//! Rules that allow (ALLOW, LOG, NOTIFY) lose the names that are not granted and gain the granted argument
//! filters; rules that deny are kept as they are; a filter whose default allows is turned around so that
//! only granted names are allowed; no filter at all becomes the granted set. The default action of the
//! result always denies (errno EPERM unless the spec's own default is stricter) and the kernel logs the
//! denials (SECCOMP_FILTER_FLAG_LOG), as snapd does for snaps.

use libseccomp::{ScmpArch, ScmpSyscall};
use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompBuilder,
    LinuxSeccompFilterFlag, LinuxSeccompOperator, LinuxSyscall, LinuxSyscallBuilder, Spec,
};
use std::sync::{Mutex, OnceLock};

use rustc_hash::{FxHashMap, FxHashSet};

use super::Evaluation;
use crate::permissions::{Permissions, SyscallGrant};

const EPERM: u32 = 1;

/// The architectures names are checked for, with their bit in a name's mask.
const ARCHES: [(Arch, ScmpArch); 9] = [
    (Arch::ScmpArchX86_64, ScmpArch::X8664),
    (Arch::ScmpArchX86, ScmpArch::X86),
    (Arch::ScmpArchX32, ScmpArch::X32),
    (Arch::ScmpArchAarch64, ScmpArch::Aarch64),
    (Arch::ScmpArchArm, ScmpArch::Arm),
    (Arch::ScmpArchRiscv64, ScmpArch::Riscv64),
    (Arch::ScmpArchS390x, ScmpArch::S390X),
    (Arch::ScmpArchPpc64le, ScmpArch::Ppc64Le),
    (Arch::ScmpArchLoongarch64, ScmpArch::Loongarch64),
];

/// The architectures of a filter generated for this machine (the native one and its compat modes).
fn native_arches() -> &'static [Arch] {
    if cfg!(target_arch = "x86_64") {
        &[Arch::ScmpArchX86_64, Arch::ScmpArchX86, Arch::ScmpArchX32]
    } else if cfg!(target_arch = "aarch64") {
        &[Arch::ScmpArchAarch64, Arch::ScmpArchArm]
    } else {
        &[Arch::ScmpArchNative]
    }
}

/// The architectures (as mask bits) where libseccomp knows `name`.
pub(crate) fn arch_mask(name: &str) -> u16 {
    ARCHES
        .iter()
        .enumerate()
        // libseccomp resolves other architectures' names to negative pseudo numbers: not present here.
        .filter(|(_, (_, arch))| {
            ScmpSyscall::from_name_by_arch(name, *arch).is_ok_and(|n| i32::from(n) >= 0)
        })
        .fold(0, |mask, (bit, _)| mask | 1 << bit)
}

/// The spec's architectures as mask bits; None when one of them is outside [`ARCHES`] (names are then kept
/// as they are, since they cannot be checked).
fn spec_mask(arches: &[Arch]) -> Option<u16> {
    let native = native_arches();
    let arches = if arches.is_empty() { native } else { arches };
    let mut mask = 0;
    for arch in arches {
        let arch = if *arch == Arch::ScmpArchNative {
            native[0]
        } else {
            *arch
        };
        let bit = ARCHES.iter().position(|(a, _)| *a == arch)?;
        mask |= 1 << bit;
    }
    Some(mask)
}

fn allows(action: LinuxSeccompAction) -> bool {
    matches!(
        action,
        LinuxSeccompAction::ScmpActAllow
            | LinuxSeccompAction::ScmpActLog
            | LinuxSeccompAction::ScmpActNotify
    )
}

/// How one granted name fits an allowing rule with `args`.
enum Fit {
    /// Granted with these arguments (or the rule is at least as strict as a granted set).
    Keep,
    /// Granted only under argument sets the rule lacks: one rule per set, each the rule's args ∧ the set.
    Combine(Vec<Vec<LinuxSeccompArg>>),
    NotGranted,
    Unknown,
}

/// Whether comparison `a` on an argument implies comparison `b` on the same argument (values are u64).
fn implies(a: &LinuxSeccompArg, b: &LinuxSeccompArg) -> bool {
    use LinuxSeccompOperator::*;
    if a.index() != b.index() {
        return false;
    }
    // `valueTwo` absent and 0 are the same comparison (Go's runtime-spec omits a zero valueTwo, so a spec
    // that went through containerd never carries one).
    if a.op() == b.op()
        && a.value() == b.value()
        && a.value_two().unwrap_or(0) == b.value_two().unwrap_or(0)
    {
        return true;
    }
    let (v, w) = (a.value(), b.value());
    let holds_at = |x: u64| match b.op() {
        ScmpCmpEq => x == w,
        ScmpCmpNe => x != w,
        ScmpCmpLt => x < w,
        ScmpCmpLe => x <= w,
        ScmpCmpGt => x > w,
        ScmpCmpGe => x >= w,
        ScmpCmpMaskedEq => x & w == b.value_two().unwrap_or(0),
    };
    match (a.op(), b.op()) {
        (ScmpCmpEq, _) => holds_at(v),
        // a: x < v, i.e. x in [0, v-1] (empty when v == 0)
        (ScmpCmpLt, ScmpCmpLt) => v <= w,
        (ScmpCmpLt, ScmpCmpLe) => v == 0 || v - 1 <= w,
        (ScmpCmpLt, ScmpCmpNe) => w >= v,
        // a: x in [0, v]
        (ScmpCmpLe, ScmpCmpLt) => v < w,
        (ScmpCmpLe, ScmpCmpLe) => v <= w,
        (ScmpCmpLe, ScmpCmpNe) => w > v,
        // a: x in [v+1, max]
        (ScmpCmpGt, ScmpCmpGt) => v >= w,
        (ScmpCmpGt, ScmpCmpGe) => v >= w.saturating_sub(1),
        (ScmpCmpGt, ScmpCmpNe) => w <= v,
        // a: x in [v, max]
        (ScmpCmpGe, ScmpCmpGt) => v > w,
        (ScmpCmpGe, ScmpCmpGe) => v >= w,
        (ScmpCmpGe, ScmpCmpNe) => w < v,
        _ => false,
    }
}

fn fit(perms: &Permissions, name: &str, args: &[LinuxSeccompArg], mask: Option<u16>) -> Fit {
    let Some(granted) = perms.syscalls.get(name) else {
        return Fit::NotGranted;
    };
    if mask.is_some_and(|m| granted.arches & m == 0) {
        return Fit::Unknown;
    }
    match &granted.grant {
        SyscallGrant::Any => Fit::Keep,
        SyscallGrant::Filtered(sets) => {
            let implied = |c: &LinuxSeccompArg| args.iter().any(|a| implies(a, c));
            if sets.iter().any(|set| set.iter().all(implied)) {
                return Fit::Keep;
            }
            let combined: Vec<Vec<LinuxSeccompArg>> = sets
                .iter()
                .filter_map(|set| {
                    let mut all = args.to_vec();
                    for c in set {
                        // libseccomp takes one comparison per argument in a rule: two on one argument
                        // become the stronger one, or, when neither implies the other, this set is dropped
                        // (granting less, never more).
                        match all.iter().position(|a| a.index() == c.index()) {
                            None => all.push(*c),
                            Some(i) if implies(&all[i], c) => {}
                            Some(i) if implies(c, &all[i]) => all[i] = *c,
                            Some(_) => return None,
                        }
                    }
                    Some(all)
                })
                .collect();
            if combined.is_empty() {
                Fit::NotGranted
            } else {
                Fit::Combine(combined)
            }
        }
    }
}

fn rule(
    names: Vec<String>,
    action: LinuxSeccompAction,
    errno: Option<u32>,
    args: Option<Vec<LinuxSeccompArg>>,
) -> LinuxSyscall {
    let mut builder = LinuxSyscallBuilder::default().names(names).action(action);
    if let Some(errno) = errno {
        builder = builder.errno_ret(errno);
    }
    if let Some(args) = args.filter(|a| !a.is_empty()) {
        builder = builder.args(args);
    }
    builder.build().expect("names and action are set")
}

pub(crate) fn check(spec: &mut Spec, ev: &mut Evaluation, skip_privileged_effects: bool) {
    if skip_privileged_effects {
        return;
    }
    let Some(linux) = spec.linux_mut() else {
        return;
    };
    let (filter, unconfined) = match linux.seccomp_mut().take() {
        Some(filter) => (filter, false),
        None => {
            let empty = LinuxSeccompBuilder::default()
                .default_action(LinuxSeccompAction::ScmpActAllow)
                .architectures(native_arches().to_vec())
                .build()
                .expect("valid");
            (empty, true)
        }
    };
    let narrowed = narrow(filter, ev, unconfined);
    *linux.seccomp_mut() = Some(narrowed);
}

/// One rule of the result: the spec's own, unchanged (cloned only if the filter changes), or a new one.
enum Out<'a> {
    Same(&'a LinuxSyscall),
    New(LinuxSyscall),
}

fn narrow(mut filter: LinuxSeccomp, ev: &mut Evaluation, unconfined: bool) -> LinuxSeccomp {
    let default_action = filter.default_action();
    let default_allows = allows(default_action);
    let (out, changed) = {
        let arches: &[Arch] = filter.architectures().as_deref().unwrap_or(&[]);
        let rules: &[LinuxSyscall] = filter.syscalls().as_deref().unwrap_or(&[]);
        let (out, changed) = intersect(ev, arches, rules, default_action, unconfined);
        let out: Vec<LinuxSyscall> = if changed {
            out.into_iter()
                .map(|r| match r {
                    Out::Same(r) => r.clone(),
                    Out::New(r) => r,
                })
                .collect()
        } else {
            Vec::new()
        };
        (out, changed)
    };

    if default_allows {
        filter.set_default_action(LinuxSeccompAction::ScmpActErrno);
        filter.set_default_errno_ret(Some(EPERM));
    }
    let logged = filter
        .flags()
        .as_ref()
        .is_some_and(|f| f.contains(&LinuxSeccompFilterFlag::SeccompFilterFlagLog));
    if ev.perms.seccomp_log_flag && !logged {
        let mut flags = filter.flags().clone().unwrap_or_default();
        flags.push(LinuxSeccompFilterFlag::SeccompFilterFlagLog);
        ev.narrow(
            "seccomp.log",
            "linux.seccomp.flags".into(),
            "denials not logged".into(),
            "SECCOMP_FILTER_FLAG_LOG".into(),
        );
        filter.set_flags(Some(flags));
    }
    if changed {
        filter.set_syscalls(Some(out));
    }
    filter
}

/// The rules of the result and whether they differ from the spec's.
fn intersect<'a>(
    ev: &mut Evaluation,
    arches: &[Arch],
    rules: &'a [LinuxSyscall],
    default_action: LinuxSeccompAction,
    unconfined: bool,
) -> (Vec<Out<'a>>, bool) {
    let perms = ev.perms;
    let mask = spec_mask(arches);
    let known = |name: &str| mask.is_none_or(|m| arch_mask_cached(perms, name) & m != 0);
    let default_allows = allows(default_action);

    let mut out: Vec<Out<'a>> = Vec::with_capacity(rules.len() + 4);
    let mut changed = false;
    // The names the result mentions, looked up only for the few names the base answers with an errno (and
    // through a set when a default that allows is turned around): those of denying rules, and the granted
    // names kept in allowing rules (never a name that is not granted).
    let mut present_denied: Vec<&str> = Vec::new();
    let mut present: Vec<&str> = Vec::new();
    let mut kept: Vec<&'a str> = Vec::new();
    let mut removed: Vec<&'a str> = Vec::new();
    let mut unknown: Vec<&'a String> = Vec::new();
    let mut split: Vec<(&'a str, Vec<Vec<LinuxSeccompArg>>)> = Vec::new();
    for (index, r) in rules.iter().enumerate() {
        let args: &[LinuxSeccompArg] = r.args().as_deref().unwrap_or(&[]);
        if !allows(r.action()) {
            let before = present_denied.len();
            unknown.clear();
            for name in r.names() {
                if known(name) {
                    present_denied.push(name);
                } else {
                    unknown.push(name);
                }
            }
            if unknown.is_empty() {
                out.push(Out::Same(r));
            } else {
                changed = true;
                record_unknown(ev, index, &unknown, arches);
                if present_denied.len() > before {
                    out.push(Out::New(rule(
                        present_denied[before..]
                            .iter()
                            .map(|s| s.to_string())
                            .collect(),
                        r.action(),
                        r.errno_ret(),
                        r.args().clone(),
                    )));
                }
            }
            continue;
        }
        kept.clear();
        removed.clear();
        unknown.clear();
        split.clear();
        for name in r.names() {
            match fit(perms, name, args, mask) {
                Fit::Keep => kept.push(name),
                Fit::Combine(sets) => split.push((name, sets)),
                Fit::NotGranted if known(name) => removed.push(name),
                Fit::NotGranted => unknown.push(name),
                Fit::Unknown => unknown.push(name),
            }
        }
        present.extend_from_slice(&kept);
        if removed.is_empty() && unknown.is_empty() && split.is_empty() {
            out.push(Out::Same(r));
            continue;
        }
        changed = true;
        if !kept.is_empty() {
            out.push(Out::New(rule(
                kept.iter().map(|s| s.to_string()).collect(),
                r.action(),
                r.errno_ret(),
                r.args().clone(),
            )));
        }
        for (name, sets) in &split {
            present.push(name);
            for set in sets {
                out.push(Out::New(rule(
                    vec![name.to_string()],
                    r.action(),
                    r.errno_ret(),
                    Some(set.clone()),
                )));
            }
            ev.narrow(
                "seccomp.arguments",
                format!("linux.seccomp.syscalls[{index}].names"),
                if args.is_empty() {
                    format!("{name} with any arguments")
                } else {
                    format!("{name} with the rule's arguments")
                },
                format!(
                    "{name} only with the granted arguments ({} rules)",
                    sets.len()
                ),
            );
        }
        if !removed.is_empty() {
            ev.narrow(
                "seccomp.syscalls",
                format!("linux.seccomp.syscalls[{index}].names"),
                format!("allow {}", removed.join(", ")),
                "denied: not granted by the connected interfaces".into(),
            );
        }
        if !unknown.is_empty() {
            record_unknown(ev, index, &unknown, arches);
        }
    }

    // A default that allows becomes a deny; the granted names not mentioned are then allowed explicitly.
    if default_allows {
        changed = true;
        let mentioned: FxHashSet<&str> = present_denied.iter().chain(&present).copied().collect();
        let mut names: Vec<&str> = Vec::new();
        let mut filtered: Vec<(&str, &Vec<Vec<LinuxSeccompArg>>)> = Vec::new();
        for (name, granted) in perms.syscalls_sorted.iter() {
            let name = name.as_str();
            if mentioned.contains(name) || !known(name) {
                continue;
            }
            match &granted.grant {
                SyscallGrant::Any => names.push(name),
                SyscallGrant::Filtered(sets) => filtered.push((name, sets)),
            }
        }
        drop(mentioned);
        let count = names.len() + filtered.len();
        if !names.is_empty() {
            out.push(Out::New(rule(
                names.iter().map(|s| s.to_string()).collect(),
                LinuxSeccompAction::ScmpActAllow,
                None,
                None,
            )));
        }
        present.extend_from_slice(&names);
        for (name, sets) in filtered {
            present.push(name);
            for set in sets {
                out.push(Out::New(rule(
                    vec![name.to_string()],
                    LinuxSeccompAction::ScmpActAllow,
                    None,
                    Some(set.clone()),
                )));
            }
        }
        let from = if unconfined {
            "(none: unconfined)".to_string()
        } else {
            format!("default action {default_action}")
        };
        ev.narrow(
            if unconfined {
                "seccomp.unconfined"
            } else {
                "seccomp.default-action"
            },
            "linux.seccomp".into(),
            from,
            format!("{count} granted syscalls allowed, the rest denied with EPERM"),
        );
    }

    // Names the base answers with a fixed errno (clone3 → ENOSYS, so glibc falls back to clone).
    let mut errno_rules: Vec<(u32, Vec<String>)> = Vec::new();
    for (name, errno) in &perms.syscall_errno {
        let mentioned = present_denied.contains(&name.as_str())
            || (perms.syscalls.contains_key(name) && present.contains(&name.as_str()));
        if !mentioned && known(name) {
            match errno_rules.iter_mut().find(|(e, _)| e == errno) {
                Some((_, names)) => names.push(name.clone()),
                None => errno_rules.push((*errno, vec![name.clone()])),
            }
        }
    }
    for (errno, names) in errno_rules {
        changed = true;
        ev.narrow(
            "seccomp.errno",
            "linux.seccomp.syscalls".into(),
            format!("{} not answered", names.join(", ")),
            format!("errno {errno}"),
        );
        out.push(Out::New(rule(
            names,
            LinuxSeccompAction::ScmpActErrno,
            Some(errno),
            None,
        )));
    }
    (out, changed)
}

/// Granted names carry their mask; others (deny rules, drops) are looked up once per process.
fn arch_mask_cached(perms: &Permissions, name: &str) -> u16 {
    if let Some(granted) = perms.syscalls.get(name) {
        return granted.arches;
    }
    static OTHERS: OnceLock<Mutex<FxHashMap<String, u16>>> = OnceLock::new();
    let mut others = OTHERS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(mask) = others.get(name) {
        return *mask;
    }
    let mask = arch_mask(name);
    // Bounded: a spec could carry many made-up names; past the bound they are simply looked up again.
    if others.len() < 4096 {
        others.insert(name.to_string(), mask);
    }
    mask
}

fn record_unknown(ev: &mut Evaluation, index: usize, names: &[&String], arches: &[Arch]) {
    let arches: Vec<String> = if arches.is_empty() {
        native_arches().iter().map(|a| a.to_string()).collect()
    } else {
        arches.iter().map(|a| a.to_string()).collect()
    };
    ev.narrow(
        "seccomp.unknown-syscall",
        format!("linux.seccomp.syscalls[{index}].names"),
        names
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        format!("dropped: unknown to libseccomp on {}", arches.join(", ")),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::LinuxSeccompArgBuilder;

    fn arg(op: LinuxSeccompOperator, value: u64) -> LinuxSeccompArg {
        LinuxSeccompArgBuilder::default()
            .index(0usize)
            .op(op)
            .value(value)
            .build()
            .unwrap()
    }

    #[test]
    fn comparisons_on_one_argument_combine_into_the_stronger() {
        use LinuxSeccompOperator::*;
        let not_vsock = arg(ScmpCmpNe, 40);
        assert!(implies(&arg(ScmpCmpLt, 38), &not_vsock));
        assert!(implies(&arg(ScmpCmpEq, 39), &not_vsock));
        assert!(implies(&arg(ScmpCmpGt, 40), &not_vsock));
        assert!(!implies(&arg(ScmpCmpGt, 39), &not_vsock));
        assert!(!implies(&not_vsock, &arg(ScmpCmpLt, 38)));
        assert!(implies(&arg(ScmpCmpLe, 5), &arg(ScmpCmpLt, 6)));
        assert!(!implies(&arg(ScmpCmpLe, 6), &arg(ScmpCmpLt, 6)));
        assert!(implies(&arg(ScmpCmpGe, 7), &arg(ScmpCmpGt, 6)));
        assert!(!implies(&arg(ScmpCmpMaskedEq, 1), &arg(ScmpCmpEq, 1)));
    }

    #[test]
    fn an_absent_value_two_is_zero() {
        use LinuxSeccompOperator::*;
        let masked = |two: Option<u64>| {
            let mut builder = LinuxSeccompArgBuilder::default()
                .index(0usize)
                .op(ScmpCmpMaskedEq)
                .value(0x7e02_0000u64);
            if let Some(two) = two {
                builder = builder.value_two(two);
            }
            builder.build().unwrap()
        };
        assert!(implies(&masked(None), &masked(Some(0))));
        assert!(implies(&masked(Some(0)), &masked(None)));
        assert!(!implies(&masked(None), &masked(Some(1))));
    }
}
