//! The architectures seccomp filters are checked for, which of them libseccomp knows a syscall name on, and
//! what differs between them for the grants: the order of a syscall's arguments, and the multiplexers
//! (socketcall, ipc) that carry other syscalls.
//!
//! A leaf module: the permissions record each granted name's mask when they are built, and the seccomp rule
//! compares those masks with a spec's architectures.

use std::sync::{Mutex, OnceLock};

use libseccomp::{ScmpArch, ScmpSyscall};
use oci_spec::runtime::Arch;
use rustc_hash::FxHashMap;

/// The architectures names are checked for; a name's mask has bit `i` for `ARCHES[i]` (the constants below).
const ARCHES: [(Arch, ScmpArch); 10] = [
    (Arch::ScmpArchX86_64, ScmpArch::X8664),
    (Arch::ScmpArchX86, ScmpArch::X86),
    (Arch::ScmpArchX32, ScmpArch::X32),
    (Arch::ScmpArchAarch64, ScmpArch::Aarch64),
    (Arch::ScmpArchArm, ScmpArch::Arm),
    (Arch::ScmpArchRiscv64, ScmpArch::Riscv64),
    (Arch::ScmpArchS390x, ScmpArch::S390X),
    (Arch::ScmpArchPpc64le, ScmpArch::Ppc64Le),
    (Arch::ScmpArchLoongarch64, ScmpArch::Loongarch64),
    // s390x's compat mode: containerd's and moby's filters for s390x list both.
    (Arch::ScmpArchS390, ScmpArch::S390),
];

const X86: u16 = 1 << 1;
const ARM: u16 = 1 << 4;
const S390X: u16 = 1 << 6;
const PPC64LE: u16 = 1 << 7;
const S390: u16 = 1 << 9;

/// The architectures of a filter generated for this machine: the native one and its compat modes, as
/// containerd's and moby's default profiles list them, less x32 (see [`UNGRANTED_ARCHES`]).
pub(crate) fn native_arches() -> &'static [Arch] {
    if cfg!(target_arch = "x86_64") {
        &[Arch::ScmpArchX86_64, Arch::ScmpArchX86]
    } else if cfg!(target_arch = "aarch64") {
        &[Arch::ScmpArchAarch64, Arch::ScmpArchArm]
    } else if cfg!(target_arch = "s390x") {
        &[Arch::ScmpArchS390x, Arch::ScmpArchS390]
    } else if cfg!(all(target_arch = "powerpc64", target_endian = "little")) {
        &[Arch::ScmpArchPpc64le]
    } else if cfg!(target_arch = "riscv64") {
        &[Arch::ScmpArchRiscv64]
    } else if cfg!(target_arch = "loongarch64") {
        &[Arch::ScmpArchLoongarch64]
    } else {
        &[Arch::ScmpArchNative]
    }
}

/// ABIs no interface grants: snapd's snap-seccomp gives an amd64 snap the amd64 and i386 ABIs, never
/// x32, so a container's filter keeps no x32 either (the kernel then meets x32 syscalls with the
/// filter's bad-architecture action). Each architecture a filter lists also costs the runtime its share
/// of compiling it, at every start and every exec.
pub(crate) const UNGRANTED_ARCHES: [Arch; 1] = [Arch::ScmpArchX32];

/// The architectures (as mask bits) where libseccomp knows `name`.
pub(crate) fn arch_mask(name: &str) -> u16 {
    ARCHES
        .iter()
        .enumerate()
        .filter(|(_, (_, arch))| {
            ScmpSyscall::from_name_by_arch(name, *arch).is_ok_and(|n| present(i32::from(n), *arch))
        })
        .fold(0, |mask, (bit, _)| mask | 1 << bit)
}

/// Whether libseccomp's number `n` for a name on `arch` makes a rule there. Other architectures' names
/// resolve to negative pseudo numbers: not present. Except the calls a multiplexer carries, which resolve
/// to their pseudo numbers (socket calls -100 to -120, ipc calls -200 to -224: src/syscalls.c) on the architectures
/// that have the multiplexer even where a direct call exists too (s390x's socket is 359): a rule for them
/// becomes a rule for the multiplexer and one for the direct call (`abi_rule_add`), so they are present.
fn present(n: i32, arch: ScmpArch) -> bool {
    let has = |multiplexer: &str| {
        ScmpSyscall::from_name_by_arch(multiplexer, arch).is_ok_and(|m| i32::from(m) >= 0)
    };
    n >= 0
        || (-120..=-100).contains(&n) && has("socketcall")
        || (-224..=-200).contains(&n) && has("ipc")
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

/// The architectures of `mask`, as specs name them.
pub(crate) fn arch_names(mask: u16) -> Vec<String> {
    ARCHES
        .iter()
        .enumerate()
        .filter(|(bit, _)| mask & 1 << bit != 0)
        .map(|(_, (arch, _))| arch.to_string())
        .collect()
}

/// Syscalls whose arguments some architectures take in another order than the kernel's generic prototype,
/// the order grants (and x86_64's and aarch64's filters) are written in: those architectures, and for each
/// position the generic index of the argument the kernel reads there.
const ARGUMENT_ORDERS: [(&str, u16, [u8; 6]); 2] = [
    // CONFIG_CLONE_BACKWARDS2 (arch/s390/Kconfig; glibc sysdeps/unix/sysv/linux/s390/kernel-features.h):
    // clone(newsp, flags, ptid, ctid, tls). The flags are argument 1: moby's default profile
    // (profiles/seccomp/default_linux.go) has an s390/s390x-only clone rule on index 1 for this.
    ("clone", S390X | S390, [1, 0, 2, 3, 4, 5]),
    // CONFIG_CLONE_BACKWARDS (glibc's i386, arm and powerpc kernel-features.h): clone(flags, newsp, ptid,
    // tls, ctid).
    ("clone", X86 | ARM | PPC64LE, [0, 1, 2, 4, 3, 5]),
];

/// Whether an architecture of `mask` orders `name`'s arguments otherwise than grants are written.
pub(crate) fn reorders_arguments(name: &str, mask: Option<u16>) -> bool {
    let Some(mask) = mask else {
        return false;
    };
    ARGUMENT_ORDERS
        .iter()
        .any(|(n, arches, _)| *n == name && arches & mask != 0)
}

/// The positions (a bit each) where the kernel reads argument `index` of `name`, as grants write it, on the
/// architectures of `mask`: one position when they all agree, several when the spec mixes layouts. Unknown
/// architectures (`None`) take the generic order: outside the table, every Linux architecture passes clone's
/// flags first.
pub(crate) fn argument_positions(name: &str, index: usize, mask: Option<u16>) -> u8 {
    let generic = 1u8 << index.min(7);
    let Some(mask) = mask else {
        return generic;
    };
    let mut positions = 0;
    let mut generic_arches = mask;
    for (n, arches, order) in &ARGUMENT_ORDERS {
        if *n == name && arches & mask != 0 {
            if let Some(position) = order.iter().position(|g| usize::from(*g) == index) {
                positions |= 1 << position;
            }
            generic_arches &= !arches;
        }
    }
    if generic_arches != 0 {
        positions |= generic;
    }
    positions
}

/// The multiplexers and the syscalls they carry (the call number, their first argument: 1 = socket,
/// 2 = bind, ...). libseccomp routes a rule for a carried syscall through the multiplexer on every
/// architecture that has one (`abi_rule_add` in src/syscalls.c: x86, s390, s390x, ppc, ppc64, mips): the
/// added rule checks the call number only, since the carried call's own arguments sit behind a pointer that
/// seccomp cannot read.
pub(crate) const MULTIPLEXERS: [(&str, &[&str]); 2] = [
    (
        "socketcall",
        &[
            "socket",
            "bind",
            "connect",
            "listen",
            "accept",
            "getsockname",
            "getpeername",
            "socketpair",
            "send",
            "recv",
            "sendto",
            "recvfrom",
            "shutdown",
            "setsockopt",
            "getsockopt",
            "sendmsg",
            "recvmsg",
            "accept4",
            "recvmmsg",
            "sendmmsg",
        ],
    ),
    (
        "ipc",
        &[
            "semop",
            "semget",
            "semctl",
            "semtimedop",
            "msgsnd",
            "msgrcv",
            "msgget",
            "msgctl",
            "shmat",
            "shmdt",
            "shmget",
            "shmctl",
        ],
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bit_constants_name_their_architectures() {
        let bit = |arch: Arch| 1u16 << ARCHES.iter().position(|(a, _)| *a == arch).unwrap();
        assert_eq!(X86, bit(Arch::ScmpArchX86));
        assert_eq!(ARM, bit(Arch::ScmpArchArm));
        assert_eq!(S390X, bit(Arch::ScmpArchS390x));
        assert_eq!(PPC64LE, bit(Arch::ScmpArchPpc64le));
        assert_eq!(S390, bit(Arch::ScmpArchS390));
    }

    #[test]
    fn the_multiplexers_exist_where_libseccomp_routes_through_them() {
        // socketcall and ipc: 32-bit x86, s390, s390x and ppc64le among the checked architectures; never
        // x86_64, x32, aarch64, arm (EABI), riscv64 or loongarch64.
        for (multiplexer, _) in MULTIPLEXERS {
            assert_eq!(
                arch_mask(multiplexer),
                X86 | S390X | PPC64LE | S390,
                "{multiplexer}"
            );
        }
    }

    #[test]
    fn carried_calls_are_present_where_their_multiplexer_is() {
        // libseccomp names socket -101 on s390x and 32-bit x86, which route it through socketcall.
        // (Where this libseccomp knows any syscall: 2.5 has no loongarch64.)
        let everywhere = arch_mask("read");
        assert_eq!(arch_mask("socket"), everywhere);
        assert_eq!(arch_mask("shmctl"), everywhere);
        // send and recv exist only through socketcall (x86, s390) or as calls of their own (arm, ppc).
        assert_eq!(arch_mask("send") & (X86 | S390X | S390), X86 | S390X | S390);
        assert_eq!(arch_mask("send") & 1, 0, "not on x86_64");
    }

    #[test]
    fn clone_flags_are_the_second_argument_on_s390() {
        let only = |arch: Arch| spec_mask(&[arch]);
        assert_eq!(
            argument_positions("clone", 0, only(Arch::ScmpArchS390x)),
            0b10
        );
        assert_eq!(
            argument_positions("clone", 0, only(Arch::ScmpArchS390)),
            0b10
        );
        assert_eq!(
            argument_positions("clone", 1, only(Arch::ScmpArchS390x)),
            0b01
        );
        assert_eq!(
            argument_positions("clone", 0, only(Arch::ScmpArchX86_64)),
            0b01
        );
        assert_eq!(
            argument_positions("clone", 0, only(Arch::ScmpArchX86)),
            0b01
        );
        // tls and ctid trade places on the CLONE_BACKWARDS architectures.
        assert_eq!(
            argument_positions("clone", 3, only(Arch::ScmpArchX86)),
            1 << 4
        );
        assert_eq!(
            argument_positions("clone", 3, only(Arch::ScmpArchX86_64)),
            1 << 3
        );
        let mixed = spec_mask(&[Arch::ScmpArchX86_64, Arch::ScmpArchS390x]);
        assert_eq!(argument_positions("clone", 0, mixed), 0b11);
        assert_eq!(argument_positions("socket", 0, mixed), 0b01);
        assert!(reorders_arguments("clone", mixed));
        assert!(!reorders_arguments("clone", only(Arch::ScmpArchAarch64)));
        assert!(!reorders_arguments("clone", None));
    }
}
