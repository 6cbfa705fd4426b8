//! Seccomp: the container's filter becomes its own profile ∩ the syscalls the interfaces allow.
//!
//! Rules that allow (ALLOW, LOG, NOTIFY) lose the names that are not granted and gain the granted argument
//! filters; rules that deny are kept as they are; a filter whose default allows is turned around so that
//! only granted names are allowed; no filter at all becomes the granted set. The default action of the
//! result always denies (errno EPERM unless the spec's own default is stricter) and the kernel logs the
//! denials (SECCOMP_FILTER_FLAG_LOG), as snapd does for snaps.
//!
//! One OCI filter serves all of its architectures with one rule list, so a grant is written for the spec's
//! architectures: an argument some of them take at another position (clone's flags on s390) is compared
//! where each reads it, and a multiplexer (socketcall, ipc) is allowed only as far as the calls it carries
//! are granted, since seccomp cannot read their arguments through it.

use std::borrow::Cow;
use std::sync::{Arc, Mutex, OnceLock};

use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompArgBuilder,
    LinuxSeccompBuilder, LinuxSeccompFilterFlag, LinuxSeccompOperator, LinuxSyscall,
    LinuxSyscallBuilder, Spec,
};
use rustc_hash::{FxHashMap, FxHashSet};

use super::evaluation::Evaluation;
use crate::arches::{
    arch_mask_memoized, arch_names, argument_positions, native_arches, reorders_arguments,
    spec_mask, MULTIPLEXERS, UNGRANTED_ARCHES,
};
use crate::permissions::{Need, Permissions, SyscallGrant};

const EPERM: u32 = 1;
const ENOSYS: u32 = 38;

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

/// Adds comparison `c` to the comparisons of one rule. libseccomp takes one comparison per argument in a
/// rule (runc turns two into separate rules, i.e. either one): two on one argument become the stronger one,
/// or, when neither implies the other, false (the set is dropped: granting less, never more).
fn merge_comparison(all: &mut Vec<LinuxSeccompArg>, c: LinuxSeccompArg) -> bool {
    match all.iter().position(|a| a.index() == c.index()) {
        None => all.push(c),
        Some(i) if implies(&all[i], &c) => {}
        Some(i) if implies(&c, &all[i]) => all[i] = c,
        Some(_) => return false,
    }
    true
}

fn at_index(c: &LinuxSeccompArg, index: usize) -> LinuxSeccompArg {
    let mut builder = LinuxSeccompArgBuilder::default()
        .index(index)
        .op(c.op())
        .value(c.value());
    if let Some(two) = c.value_two() {
        builder = builder.value_two(two);
    }
    builder.build().expect("every field is set")
}

/// `name`'s granted argument sets as the spec's architectures read them (see
/// [`crate::arches::argument_positions`]), and whether one argument sits at different positions among them:
/// the comparison is then made at each of those positions, which holds on every architecture of the filter
/// wherever the kernel reads the argument (and grants less elsewhere, never more).
fn placed_sets<'s>(
    name: &str,
    sets: &'s [Vec<LinuxSeccompArg>],
    mask: Option<u16>,
) -> (Cow<'s, [Vec<LinuxSeccompArg>]>, bool) {
    if !reorders_arguments(name, mask) {
        return (Cow::Borrowed(sets), false);
    }
    let mut spread = false;
    let placed = sets
        .iter()
        .filter_map(|set| {
            let mut placed = Vec::with_capacity(set.len());
            for c in set {
                let positions = argument_positions(name, c.index(), mask);
                spread |= positions.count_ones() > 1;
                for position in (0..8).filter(|p| positions & 1 << p != 0) {
                    if !merge_comparison(&mut placed, at_index(c, position)) {
                        return None;
                    }
                }
            }
            Some(placed)
        })
        .collect();
    (Cow::Owned(placed), spread)
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
    drop_ungranted_arches(&mut filter, ev);
    let default_action = filter.default_action();
    let default_allows = allows(default_action);
    // The errno of the result's default, as runc applies it (EPERM when a spec's ERRNO default has none).
    let default_errno = if default_allows {
        EPERM
    } else {
        filter.default_errno_ret().unwrap_or(EPERM)
    };
    let (out, changed) = {
        let arches: &[Arch] = filter.architectures().as_deref().unwrap_or(&[]);
        let rules: &[LinuxSyscall] = filter.syscalls().as_deref().unwrap_or(&[]);
        let (out, changed) =
            intersect(ev, arches, rules, default_action, default_errno, unconfined);
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

/// A spec's architectures whose ABI no interface grants (x32): they leave the filter, and the kernel
/// meets their syscalls with the filter's bad-architecture action.
fn drop_ungranted_arches(filter: &mut LinuxSeccomp, ev: &mut Evaluation) {
    let Some(arches) = filter.architectures().as_ref() else {
        return;
    };
    let (dropped, kept): (Vec<Arch>, Vec<Arch>) = arches
        .iter()
        .partition(|arch| UNGRANTED_ARCHES.contains(arch));
    if dropped.is_empty() {
        return;
    }
    let dropped: Vec<String> = dropped.iter().map(|a| a.to_string()).collect();
    ev.narrow(
        "seccomp.architectures",
        "linux.seccomp.architectures".into(),
        dropped.join(", "),
        "dropped: no interface grants this ABI (snapd's filters on amd64 cover amd64 and i386, not x32)"
            .into(),
    );
    filter.set_architectures(Some(kept));
}

/// The rules of the result and whether they differ from the spec's.
fn intersect<'a>(
    ev: &mut Evaluation,
    arches: &'a [Arch],
    rules: &'a [LinuxSyscall],
    default_action: LinuxSeccompAction,
    default_errno: u32,
    unconfined: bool,
) -> (Vec<Out<'a>>, bool) {
    let mask = spec_mask(arches);
    let multiplexers = unexpressible_multiplexers(ev.perms, mask);
    let multiplexer_lengths = multiplexers
        .iter()
        .fold(0, |bits, m| bits | 1 << m.name.len().min(63));
    let mut result = Intersection {
        perms: ev.perms,
        arches,
        mask,
        multiplexers,
        multiplexer_lengths,
        out: Vec::with_capacity(rules.len() + 4),
        changed: false,
        present_denied: Vec::new(),
        present: Vec::new(),
        spread: Vec::new(),
    };
    let mut names = RuleNames::default();
    for (index, r) in rules.iter().enumerate() {
        if allows(r.action()) {
            result.narrow_allowing_rule(ev, index, r, &mut names);
        } else {
            result.keep_denying_rule(ev, index, r, &mut names.unknown);
        }
    }
    // A default that allows becomes a deny; the granted names not mentioned are then allowed explicitly.
    if allows(default_action) {
        result.allow_unmentioned_grants(ev, default_action, unconfined);
    }
    result.record_spread_arguments(ev);
    result.deny_multiplexers(ev, rules, default_action, default_errno);
    result.answer_errno_names(ev);
    (result.out, result.changed)
}

/// A multiplexer present on the spec's architectures that carries a syscall not granted with any
/// arguments: allowing it would allow that syscall with any arguments (or at all), so it is not allowed as
/// a whole.
struct Multiplexer {
    name: &'static str,
    /// The spec's architectures that have it, as messages name them (None: they cannot be checked, so it
    /// is assumed present on all of them).
    arches: Option<String>,
    /// Carried syscalls granted only with argument filters (libseccomp would carry them without).
    filtered: Vec<&'static str>,
    /// Why it is not allowed, and what would allow it.
    reason: String,
    /// The narrowings' texts, written once with the rest (for known architectures and the usual answer).
    not_allowed: Option<String>,
    carried_filtered: String,
    denied_enosys: Option<String>,
}

/// The multiplexers not allowed as a whole under `perms` on the architectures of `mask`: worked out once
/// per policy (its digest) and architectures, since neither the grants nor the interfaces that would widen
/// them change with the spec.
fn unexpressible_multiplexers(perms: &Permissions, mask: Option<u16>) -> Arc<[Multiplexer]> {
    type Cache = FxHashMap<String, Vec<(Option<u16>, Arc<[Multiplexer]>)>>;
    static BY_POLICY: OnceLock<Mutex<Cache>> = OnceLock::new();
    let mut cache = BY_POLICY
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some((_, found)) = cache
        .get(perms.digest.as_str())
        .and_then(|by_mask| by_mask.iter().find(|(m, _)| *m == mask))
    {
        return found.clone();
    }
    let found: Arc<[Multiplexer]> = unexpressible_under(perms, mask).into();
    // Bounded: a long-running process sees few policies and architectures; past the bound it starts over.
    if cache.len() >= 64 {
        cache.clear();
    }
    cache
        .entry(perms.digest.clone())
        .or_default()
        .push((mask, found.clone()));
    found
}

fn unexpressible_under(perms: &Permissions, mask: Option<u16>) -> Vec<Multiplexer> {
    let mut out = Vec::new();
    for (name, carried) in MULTIPLEXERS {
        let arches = match mask {
            Some(mask) => match arch_mask_memoized(name) & mask {
                0 => continue,
                arches => Some(arch_names(arches).join(", ")),
            },
            None => None,
        };
        let (mut filtered, mut ungranted) = (Vec::new(), Vec::new());
        for call in carried {
            match perms.syscalls.get(*call).map(|g| &g.grant) {
                Some(SyscallGrant::Any) => {}
                Some(SyscallGrant::Filtered(_)) => filtered.push(*call),
                None => ungranted.push(*call),
            }
        }
        if filtered.is_empty() && ungranted.is_empty() {
            continue;
        }
        let mut why = Vec::new();
        if !filtered.is_empty() {
            let grantors: Vec<String> = filtered
                .iter()
                .flat_map(|call| unfiltered_grantors(perms, call))
                .collect();
            why.push(format!(
                "it carries {} (granted only with argument filters) with the arguments behind a pointer \
                 seccomp cannot read; {}",
                filtered.join(", "),
                if grantors.is_empty() {
                    format!(
                        "no interface grants {} with any arguments",
                        filtered.join(", ")
                    )
                } else {
                    format!("granted with any arguments by {}", grantors.join(", "))
                }
            ));
        }
        if !ungranted.is_empty() {
            why.push(format!(
                "it carries {}, not granted by the connected interfaces",
                ungranted.join(", ")
            ));
        }
        let mut m = Multiplexer {
            name,
            arches,
            carried_filtered: String::new(),
            filtered,
            reason: why.join("; "),
            not_allowed: None,
            denied_enosys: None,
        };
        m.carried_filtered = m.carried(&m.filtered);
        if m.arches.is_some() {
            m.not_allowed = Some(m.not_allowed(&[]));
            m.denied_enosys = Some(m.denied(ENOSYS, &[]));
        }
        out.push(m);
    }
    out
}

impl Multiplexer {
    fn arches(&self, spec_arches: &[Arch]) -> String {
        match &self.arches {
            Some(arches) => arches.clone(),
            None => spec_arches
                .iter()
                .map(|a| a.to_string())
                .collect::<Vec<_>>()
                .join(", "),
        }
    }

    /// Why an allowing rule loses it.
    fn not_allowed(&self, spec_arches: &[Arch]) -> String {
        if let Some(text) = &self.not_allowed {
            return text.clone();
        }
        format!(
            "{} not allowed as a whole on {}: {}",
            self.name,
            self.arches(spec_arches),
            self.reason
        )
    }

    /// What it would let through for the rules of `carried`.
    fn carried(&self, carried: &[&str]) -> String {
        if carried == self.filtered.as_slice() && !self.carried_filtered.is_empty() {
            return self.carried_filtered.clone();
        }
        format!(
            "{carried} with any arguments through {m}: libseccomp adds a {m} rule for each rule of \
             {carried}, checking only the call number",
            carried = carried.join(", "),
            m = self.name,
        )
    }

    /// Why it is denied with `errno`.
    fn denied(&self, errno: u32, spec_arches: &[Arch]) -> String {
        match &self.denied_enosys {
            Some(text) if errno == ENOSYS => text.clone(),
            _ => format!(
                "{} denied with errno {errno} on {} (programs must make the direct calls): {}",
                self.name,
                self.arches(spec_arches),
                self.reason
            ),
        }
    }
}

/// The plugs whose grant allows `call` with any arguments.
fn unfiltered_grantors(perms: &Permissions, call: &str) -> Vec<String> {
    perms
        .suggest(&Need::Syscall(call))
        .into_iter()
        .filter_map(|plugs| {
            let all = plugs.iter().all(|plug| {
                perms
                    .catalog
                    .interface_grant(plug)
                    .is_ok_and(|g| g.syscalls.iter().any(|s| s.0 == call))
            });
            all.then(|| {
                plugs
                    .iter()
                    .map(|p| p.to_string())
                    .collect::<Vec<_>>()
                    .join(" + ")
            })
        })
        .collect()
}

/// The intersection in progress: the rules of the result so far and the names they mention.
struct Intersection<'a, 'n> {
    perms: &'n Permissions,
    /// The spec's architectures, and the same as mask bits (see [`spec_mask`]).
    arches: &'a [Arch],
    mask: Option<u16>,
    /// Multiplexers not allowed as a whole on the spec's architectures, and a bit per length of their names.
    multiplexers: Arc<[Multiplexer]>,
    multiplexer_lengths: u64,
    out: Vec<Out<'a>>,
    /// Whether `out` differs from the spec's rules.
    changed: bool,
    // The names the result mentions, looked up only for the few names the base answers with an errno (and
    // through a set when a default that allows is turned around): those of denying rules, and the granted
    // names kept in allowing rules (never a name that is not granted).
    present_denied: Vec<&'n str>,
    present: Vec<&'n str>,
    /// Granted names with an argument the spec's architectures read at different positions.
    spread: Vec<&'n str>,
}

/// The names of one rule, sorted by how they fit the grants. The buffers are reused from rule to rule.
#[derive(Default)]
struct RuleNames<'a> {
    kept: Vec<&'a str>,
    removed: Vec<&'a str>,
    unknown: Vec<&'a String>,
    split: Vec<(&'a str, Vec<Vec<LinuxSeccompArg>>)>,
    multiplexed: Vec<&'a str>,
}

impl RuleNames<'_> {
    fn clear(&mut self) {
        self.kept.clear();
        self.removed.clear();
        self.unknown.clear();
        self.split.clear();
        self.multiplexed.clear();
    }
}

impl<'a: 'n, 'n> Intersection<'a, 'n> {
    /// Whether libseccomp knows `name` on one of the spec's architectures (always, when they cannot be
    /// checked).
    fn known(&self, name: &str) -> bool {
        self.mask
            .is_none_or(|m| arch_mask_cached(self.perms, name) & m != 0)
    }

    fn multiplexer(&self, name: &str) -> Option<&Multiplexer> {
        // Most names are not one: their length rules them out before any comparison.
        if self.multiplexer_lengths & 1 << name.len().min(63) == 0 {
            return None;
        }
        self.multiplexers.iter().find(|m| m.name == name)
    }

    /// How one granted name fits an allowing rule with `args`, the grant written for the spec's
    /// architectures.
    fn fit(&mut self, name: &'n str, args: &[LinuxSeccompArg]) -> Fit {
        let perms = self.perms;
        let Some(granted) = perms.syscalls.get(name) else {
            return Fit::NotGranted;
        };
        if self.mask.is_some_and(|m| granted.arches & m == 0) {
            return Fit::Unknown;
        }
        let SyscallGrant::Filtered(sets) = &granted.grant else {
            return Fit::Keep;
        };
        let (sets, spread) = placed_sets(name, sets, self.mask);
        let implied = |c: &LinuxSeccompArg| args.iter().any(|a| implies(a, c));
        if sets.iter().any(|set| set.iter().all(implied)) {
            return Fit::Keep;
        }
        if spread && !self.spread.contains(&name) {
            self.spread.push(name);
        }
        let combined: Vec<Vec<LinuxSeccompArg>> = sets
            .iter()
            .filter_map(|set| {
                let mut all = args.to_vec();
                set.iter()
                    .all(|c| merge_comparison(&mut all, *c))
                    .then_some(all)
            })
            .collect();
        if combined.is_empty() {
            Fit::NotGranted
        } else {
            Fit::Combine(combined)
        }
    }

    /// A denying rule is kept as it is, less the names libseccomp does not know on the spec's
    /// architectures.
    fn keep_denying_rule(
        &mut self,
        ev: &mut Evaluation,
        index: usize,
        r: &'a LinuxSyscall,
        unknown: &mut Vec<&'a String>,
    ) {
        let before = self.present_denied.len();
        unknown.clear();
        for name in r.names() {
            if self.known(name) {
                self.present_denied.push(name);
            } else {
                unknown.push(name);
            }
        }
        if unknown.is_empty() {
            self.out.push(Out::Same(r));
            return;
        }
        self.changed = true;
        record_unknown(ev, index, unknown, self.arches);
        if self.present_denied.len() > before {
            self.out.push(Out::New(rule(
                self.present_denied[before..]
                    .iter()
                    .map(|s| s.to_string())
                    .collect(),
                r.action(),
                r.errno_ret(),
                r.args().clone(),
            )));
        }
    }

    /// An allowing rule keeps the names granted with its arguments, becomes one rule per granted argument
    /// set for each name granted only with arguments it lacks, and loses the other names.
    fn narrow_allowing_rule(
        &mut self,
        ev: &mut Evaluation,
        index: usize,
        r: &'a LinuxSyscall,
        names: &mut RuleNames<'a>,
    ) {
        self.sort_by_fit(r, names);
        self.present.extend_from_slice(&names.kept);
        if names.removed.is_empty()
            && names.unknown.is_empty()
            && names.split.is_empty()
            && names.multiplexed.is_empty()
        {
            self.out.push(Out::Same(r));
            return;
        }
        self.changed = true;
        if !names.kept.is_empty() {
            self.out.push(Out::New(rule(
                names.kept.iter().map(|s| s.to_string()).collect(),
                r.action(),
                r.errno_ret(),
                r.args().clone(),
            )));
        }
        for (name, sets) in &names.split {
            self.allow_with_granted_arguments(ev, index, r, name, sets);
        }
        if !names.removed.is_empty() {
            ev.narrow(
                "seccomp.syscalls",
                format!("linux.seccomp.syscalls[{index}].names"),
                format!("allow {}", names.removed.join(", ")),
                "denied: not granted by the connected interfaces".into(),
            );
        }
        for name in &names.multiplexed {
            let m = self.multiplexer(name).expect("sorted as a multiplexer");
            ev.narrow(
                "seccomp.multiplexer",
                format!("linux.seccomp.syscalls[{index}].names"),
                format!("allow {name}"),
                m.not_allowed(self.arches),
            );
        }
        if !names.unknown.is_empty() {
            record_unknown(ev, index, &names.unknown, self.arches);
        }
    }

    /// Sorts the names of allowing rule `r` by how each fits the grants, given the rule's arguments.
    fn sort_by_fit(&mut self, r: &'a LinuxSyscall, names: &mut RuleNames<'a>) {
        let args: &[LinuxSeccompArg] = r.args().as_deref().unwrap_or(&[]);
        names.clear();
        for name in r.names() {
            match self.fit(name, args) {
                Fit::Keep | Fit::Combine(_) if self.multiplexer(name).is_some() => {
                    names.multiplexed.push(name)
                }
                Fit::Keep => names.kept.push(name),
                Fit::Combine(sets) => names.split.push((name, sets)),
                Fit::NotGranted if self.known(name) => names.removed.push(name),
                Fit::NotGranted => names.unknown.push(name),
                Fit::Unknown => names.unknown.push(name),
            }
        }
    }

    /// `name` of allowing rule `r`, granted only under argument sets the rule lacks: one rule per set, each
    /// the rule's arguments ∧ the set.
    fn allow_with_granted_arguments(
        &mut self,
        ev: &mut Evaluation,
        index: usize,
        r: &LinuxSyscall,
        name: &'n str,
        sets: &[Vec<LinuxSeccompArg>],
    ) {
        self.present.push(name);
        for set in sets {
            self.out.push(Out::New(rule(
                vec![name.to_string()],
                r.action(),
                r.errno_ret(),
                Some(set.clone()),
            )));
        }
        let any_arguments = r.args().as_deref().unwrap_or(&[]).is_empty();
        ev.narrow(
            "seccomp.arguments",
            format!("linux.seccomp.syscalls[{index}].names"),
            if any_arguments {
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

    /// Turns a default that allows around: the granted names the rules do not mention are allowed
    /// explicitly, the rest is left to the denying default.
    fn allow_unmentioned_grants(
        &mut self,
        ev: &mut Evaluation,
        default_action: LinuxSeccompAction,
        unconfined: bool,
    ) {
        self.changed = true;
        let Unmentioned { names, filtered } = self.unmentioned_grants();
        let count = names.len() + filtered.len();
        if !names.is_empty() {
            self.out.push(Out::New(rule(
                names.iter().map(|s| s.to_string()).collect(),
                LinuxSeccompAction::ScmpActAllow,
                None,
                None,
            )));
        }
        self.present.extend_from_slice(&names);
        for (name, sets) in filtered {
            self.present.push(name);
            for set in sets.iter() {
                self.out.push(Out::New(rule(
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

    /// The granted names, known on the spec's architectures, that no rule of the result mentions yet (less
    /// the multiplexers not allowed as a whole), each filtered one with its sets as the spec's
    /// architectures read them.
    fn unmentioned_grants(&mut self) -> Unmentioned<'n> {
        let perms = self.perms;
        let mentioned: FxHashSet<&str> = self
            .present_denied
            .iter()
            .chain(&self.present)
            .copied()
            .collect();
        let mut unmentioned = Unmentioned {
            names: Vec::new(),
            filtered: Vec::new(),
        };
        for (name, granted) in perms.syscalls_sorted.iter() {
            let name = name.as_str();
            if mentioned.contains(name) || !self.known(name) || self.multiplexer(name).is_some() {
                continue;
            }
            match &granted.grant {
                SyscallGrant::Any => unmentioned.names.push(name),
                SyscallGrant::Filtered(sets) => {
                    let (sets, spread) = placed_sets(name, sets, self.mask);
                    if spread && !self.spread.contains(&name) {
                        self.spread.push(name);
                    }
                    if !sets.is_empty() {
                        unmentioned.filtered.push((name, sets));
                    }
                }
            }
        }
        unmentioned
    }

    /// Names whose grant restricts an argument the spec's architectures read at different positions: the
    /// comparison is made at each (see [`placed_sets`]), which one rule list for all of them can express.
    fn record_spread_arguments(&mut self, ev: &mut Evaluation) {
        for name in &self.spread {
            ev.narrow(
                "seccomp.arch-arguments",
                "linux.seccomp.architectures".into(),
                format!(
                    "{} (one rule list for all): {name} takes its arguments in different orders",
                    self.arches
                        .iter()
                        .map(|a| a.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                format!(
                    "{name}'s granted argument filters compared at each index the architectures read them at"
                ),
            );
        }
    }

    /// A multiplexer that carries a syscall the result allows with argument filters: libseccomp adds, for
    /// each rule of that syscall, a rule for the multiplexer that checks only the call number (the filters
    /// are lost behind the pointer), so the multiplexer is denied as a whole. Only a rule without arguments
    /// overrides those added rules (libseccomp, src/db.c db_rule_add: a catch-all rule replaces a syscall's
    /// argument chains and outlasts later ones; a rule for one call number that contradicts an added one
    /// fails with EEXIST), so the calls that carry no filtered argument cannot stay allowed through it.
    ///
    /// The answer is ENOSYS, as from a kernel without the multiplexer: no libc falls back from socketcall to
    /// the direct calls on any errno (glibc picks one or the other when it is built, by its minimum kernel:
    /// sysdeps/unix/sysv/linux/socket.c and the i386 and s390 kernel-features.h; Go's 386 and s390x ports
    /// always use socketcall; musl tries the direct call first and falls back to socketcall only on ENOSYS
    /// from it). It must differ from the default's errno, or runc drops the rule (libcontainer/seccomp
    /// matchCall skips a rule whose action equals the default) and the added rules stay.
    fn deny_multiplexers(
        &mut self,
        ev: &mut Evaluation,
        rules: &[LinuxSyscall],
        default_action: LinuxSeccompAction,
        default_errno: u32,
    ) {
        // The result's default: a default that allows becomes ERRNO(EPERM).
        let default = if allows(default_action) {
            (LinuxSeccompAction::ScmpActErrno, EPERM)
        } else {
            (default_action, default_errno)
        };
        let errno = if same_action(LinuxSeccompAction::ScmpActErrno, ENOSYS, default) {
            EPERM
        } else {
            ENOSYS
        };
        for m in self.multiplexers.iter() {
            let carried: Vec<&str> = m
                .filtered
                .iter()
                .copied()
                .filter(|call| self.present.contains(call))
                .collect();
            if carried.is_empty() {
                continue;
            }
            // A rule of the spec that already denies it as a whole, with an answer runc keeps.
            let denied = rules.iter().any(|r| {
                !allows(r.action())
                    && r.args().as_ref().is_none_or(|a| a.is_empty())
                    && r.names().iter().any(|n| n == m.name)
                    && !same_action(r.action(), r.errno_ret().unwrap_or(EPERM), default)
            });
            if denied {
                continue;
            }
            self.changed = true;
            ev.narrow(
                "seccomp.multiplexer",
                "linux.seccomp.syscalls".into(),
                m.carried(&carried),
                m.denied(errno, self.arches),
            );
            self.out.push(Out::New(rule(
                vec![m.name.to_string()],
                LinuxSeccompAction::ScmpActErrno,
                Some(errno),
                None,
            )));
        }
    }

    /// Names the base answers with a fixed errno (clone3 → ENOSYS, so glibc falls back to clone): those
    /// the result does not mention get a rule, one per errno.
    fn answer_errno_names(&mut self, ev: &mut Evaluation) {
        for (errno, names) in self.unanswered_errno_names() {
            self.changed = true;
            ev.narrow(
                "seccomp.errno",
                "linux.seccomp.syscalls".into(),
                format!("{} not answered", names.join(", ")),
                format!("errno {errno}"),
            );
            self.out.push(Out::New(rule(
                names,
                LinuxSeccompAction::ScmpActErrno,
                Some(errno),
                None,
            )));
        }
    }

    /// The base's errno names, known on the spec's architectures, that the result does not mention, grouped
    /// by errno in the base's order.
    fn unanswered_errno_names(&self) -> Vec<(u32, Vec<String>)> {
        let perms = self.perms;
        let mut errno_rules: Vec<(u32, Vec<String>)> = Vec::new();
        for (name, errno) in &perms.syscall_errno {
            let mentioned = self.present_denied.contains(&name.as_str())
                || (perms.syscalls.contains_key(name) && self.present.contains(&name.as_str()));
            if !mentioned && self.known(name) {
                match errno_rules.iter_mut().find(|(e, _)| e == errno) {
                    Some((_, names)) => names.push(name.clone()),
                    None => errno_rules.push((*errno, vec![name.clone()])),
                }
            }
        }
        errno_rules
    }
}

/// Granted names the rules do not mention, in name order: those granted with any arguments, and those
/// granted only with argument sets.
struct Unmentioned<'n> {
    names: Vec<&'n str>,
    filtered: Vec<(&'n str, Cow<'n, [Vec<LinuxSeccompArg>]>)>,
}

/// Whether runc takes action `action` with `errno` for the default `(action, errno)` (libcontainer/seccomp:
/// the errno is part of an ERRNO or TRACE action, absent it is EPERM) and so drops a rule that has it.
fn same_action(action: LinuxSeccompAction, errno: u32, default: (LinuxSeccompAction, u32)) -> bool {
    action == default.0
        && (!matches!(
            action,
            LinuxSeccompAction::ScmpActErrno | LinuxSeccompAction::ScmpActTrace
        ) || errno == default.1)
}

/// Granted names carry their mask; others (deny rules, drops) are looked up once per process.
fn arch_mask_cached(perms: &Permissions, name: &str) -> u16 {
    match perms.syscalls.get(name) {
        Some(granted) => granted.arches,
        None => arch_mask_memoized(name),
    }
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
