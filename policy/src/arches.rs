//! The architectures seccomp filters are checked for, and which of them libseccomp knows a syscall name on.
//!
//! A leaf module: the permissions record each granted name's mask when they are built, and the seccomp rule
//! compares those masks with a spec's architectures.

use std::sync::{Mutex, OnceLock};

use libseccomp::{ScmpArch, ScmpSyscall};
use oci_spec::runtime::Arch;
use rustc_hash::FxHashMap;

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
pub(crate) fn native_arches() -> &'static [Arch] {
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

/// [`arch_mask`] for names that carry no mask of their own (deny rules, drops): looked up once per
/// process.
pub(crate) fn arch_mask_memoized(name: &str) -> u16 {
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

/// The spec's architectures as mask bits; None when one of them is outside [`ARCHES`] (names are then kept
/// as they are, since they cannot be checked).
pub(crate) fn spec_mask(arches: &[Arch]) -> Option<u16> {
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
