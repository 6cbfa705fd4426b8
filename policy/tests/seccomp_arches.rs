//! Seccomp across architectures: one OCI filter (one rule list) serves every architecture it lists, so the
//! grants must hold on each of them. Two things differ between architectures and are checked here, on the
//! narrowed JSON and on the filter the system's libseccomp compiles from it the way runc does (its BPF run
//! by a small interpreter; its pseudo filter code for big-endian s390x):
//! - socketcall(2) (and ipc(2)) carry other syscalls with their arguments behind a pointer: on 32-bit x86,
//!   s390, s390x and ppc64le, socket's family filter must not be bypassed through socketcall(SYS_SOCKET);
//! - clone's flags are argument 1 on s390 and s390x (clone(newsp, flags, ...)), 0 elsewhere.

mod common;

use std::io::{Read, Seek};
use std::sync::Arc;

use common::*;
use libseccomp::{
    ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall,
};
use serde_json::{json, Value};
use strict_policy::{Catalog, Outcome, Permissions, PolicyConfig, Verdict};

// ---------------------------------------------------------------------------------------------------------
// A filter compiled as runc compiles it (libcontainer/seccomp/seccomp_linux.go), and what it answers.

/// The kernel's architecture tokens (AUDIT_ARCH_*), as seccomp_data.arch carries them.
const AUDIT_X86_64: u32 = 0xC000_003E;
const AUDIT_I386: u32 = 0x4000_0003;
const AUDIT_S390X: u32 = 0x8000_0016;
const AUDIT_AARCH64: u32 = 0xC000_00B7;

const ALLOW: u32 = 0x7fff_0000;
const SYS_SOCKET: u64 = 1;
const SYS_CONNECT: u64 = 3;
const SYS_SOCKETPAIR: u64 = 8;
const AF_INET: u64 = 2;
const AF_UNIX: u64 = 1;
const AF_ALG: u64 = 38;
const AF_VSOCK: u64 = 40;
const SIGCHLD: u64 = 17;
const CLONE_NEWUSER: u64 = 0x1000_0000;
const CLONE_NEWNS: u64 = 0x0002_0000;

/// A compiled filter: its BPF, and libseccomp's pseudo filter code (PFC) of the same database, which the
/// answers for big-endian architectures come from (libseccomp 2.5 converts some of the program's values to
/// the target's byte order twice when it generates BPF for a byte order other than the build machine's).
struct Compiled {
    bpf: Vec<(u16, u8, u8, u32)>,
    pfc: Vec<Pfc>,
}

fn action(name: &str, errno: Option<u64>) -> ScmpAction {
    let errno = errno.unwrap_or(1) as i32;
    match name {
        "SCMP_ACT_ALLOW" => ScmpAction::Allow,
        "SCMP_ACT_ERRNO" => ScmpAction::Errno(errno),
        "SCMP_ACT_LOG" => ScmpAction::Log,
        "SCMP_ACT_KILL" | "SCMP_ACT_KILL_THREAD" => ScmpAction::KillThread,
        "SCMP_ACT_KILL_PROCESS" => ScmpAction::KillProcess,
        "SCMP_ACT_TRAP" => ScmpAction::Trap,
        other => panic!("action {other}"),
    }
}

fn arch(name: &str) -> ScmpArch {
    match name {
        "SCMP_ARCH_X86_64" => ScmpArch::X8664,
        "SCMP_ARCH_X86" => ScmpArch::X86,
        "SCMP_ARCH_X32" => ScmpArch::X32,
        "SCMP_ARCH_AARCH64" => ScmpArch::Aarch64,
        "SCMP_ARCH_ARM" => ScmpArch::Arm,
        "SCMP_ARCH_S390X" => ScmpArch::S390X,
        "SCMP_ARCH_S390" => ScmpArch::S390,
        "SCMP_ARCH_PPC64LE" => ScmpArch::Ppc64Le,
        other => panic!("arch {other}"),
    }
}

fn condition(arg: &Value) -> ScmpArgCompare {
    let index = arg["index"].as_u64().unwrap() as u32;
    let value = arg["value"].as_u64().unwrap();
    let two = arg["valueTwo"].as_u64().unwrap_or(0);
    let op = match arg["op"].as_str().unwrap() {
        "SCMP_CMP_NE" => ScmpCompareOp::NotEqual,
        "SCMP_CMP_LT" => ScmpCompareOp::Less,
        "SCMP_CMP_LE" => ScmpCompareOp::LessOrEqual,
        "SCMP_CMP_EQ" => ScmpCompareOp::Equal,
        "SCMP_CMP_GE" => ScmpCompareOp::GreaterEqual,
        "SCMP_CMP_GT" => ScmpCompareOp::Greater,
        // runc: MakeCondition(index, op, value, valueTwo): the mask, then the value compared.
        "SCMP_CMP_MASKED_EQ" => {
            return ScmpArgCompare::new(index, ScmpCompareOp::MaskedEqual(value), two)
        }
        other => panic!("op {other}"),
    };
    ScmpArgCompare::new(index, op, value)
}

/// The filter runc would load for `seccomp` (the spec's `linux.seccomp`); Err where runc would fail to start
/// the container.
fn compile(seccomp: &Value) -> Result<Compiled, String> {
    let default = action(
        seccomp["defaultAction"].as_str().unwrap(),
        seccomp["defaultErrnoRet"].as_u64(),
    );
    let mut ctx = ScmpFilterContext::new(default).map_err(|e| e.to_string())?;
    let arches: Vec<ScmpArch> = seccomp["architectures"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| arch(a.as_str().unwrap()))
        .collect();
    // runc runs on one of them, whose filter starts with that architecture (libseccomp refuses to mix
    // byte orders in one filter): the build machine's is left out when not listed.
    if !arches.contains(&ScmpArch::native()) {
        ctx.remove_arch(ScmpArch::native())
            .map_err(|e| e.to_string())?;
    }
    for a in &arches {
        ctx.add_arch(*a).map_err(|e| e.to_string())?;
    }
    for r in seccomp["syscalls"].as_array().into_iter().flatten() {
        let act = action(r["action"].as_str().unwrap(), r["errnoRet"].as_u64());
        // A rule with the default's action is skipped (and libseccomp would refuse it).
        if act == default {
            continue;
        }
        let args: Vec<&Value> = r["args"].as_array().into_iter().flatten().collect();
        for name in r["names"].as_array().unwrap() {
            // Resolved for the native architecture; unknown names are skipped.
            let Ok(call) = ScmpSyscall::from_name(name.as_str().unwrap()) else {
                continue;
            };
            let result = if args.is_empty() {
                ctx.add_rule(act, call)
            } else {
                let mut indexes: Vec<u64> =
                    args.iter().map(|a| a["index"].as_u64().unwrap()).collect();
                indexes.sort_unstable();
                let repeated = indexes.windows(2).any(|w| w[0] == w[1]);
                let conditions: Vec<ScmpArgCompare> = args.iter().map(|a| condition(a)).collect();
                if repeated {
                    // Two comparisons on one argument: one rule each (either one allows).
                    conditions
                        .iter()
                        .try_for_each(|c| ctx.add_rule_conditional(act, call, &[*c]).map(|_| ()))
                        .map(|_| &mut ctx)
                } else {
                    ctx.add_rule_conditional(act, call, &conditions)
                }
            };
            result.map_err(|e| format!("rule for {name}: {e}"))?;
        }
    }
    let mut file = tempfile::tempfile().unwrap();
    ctx.export_pfc(&file).map_err(|e| e.to_string())?;
    file.rewind().unwrap();
    let mut pfc = String::new();
    file.read_to_string(&mut pfc).unwrap();
    let pfc = parse_pfc(&pfc);
    let mut file = tempfile::tempfile().unwrap();
    ctx.export_bpf(&file).map_err(|e| e.to_string())?;
    file.rewind().unwrap();
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).unwrap();
    // The program comes in its architectures' byte order.
    let big = arches
        .iter()
        .any(|a| matches!(a, ScmpArch::S390X | ScmpArch::S390));
    let bpf = bytes
        .chunks(8)
        .map(|c| {
            let (code, k) = ([c[0], c[1]], [c[4], c[5], c[6], c[7]]);
            if big {
                (u16::from_be_bytes(code), c[2], c[3], u32::from_be_bytes(k))
            } else {
                (u16::from_le_bytes(code), c[2], c[3], u32::from_le_bytes(k))
            }
        })
        .collect();
    Ok(Compiled { bpf, pfc })
}

/// What the filter answers the call `nr` with `args` on the architecture `arch` (an AUDIT_ARCH_* token): the
/// BPF run as that architecture's kernel lays out seccomp_data for little-endian ones, the PFC for others;
/// both for little-endian ones, which must agree.
fn answer(filter: &Compiled, arch: u32, nr: i32, args: [u64; 6]) -> u32 {
    let from_pfc = pfc_answer(&filter.pfc, arch, nr, args);
    if arch & 0x4000_0000 == 0 {
        return from_pfc;
    }
    let from_bpf = bpf_answer(&filter.bpf, arch, nr, args);
    assert_eq!(from_bpf, from_pfc, "BPF and PFC disagree on {nr} {args:?}");
    from_bpf
}

fn bpf_answer(bpf: &[(u16, u8, u8, u32)], arch: u32, nr: i32, args: [u64; 6]) -> u32 {
    let little = arch & 0x4000_0000 != 0;
    let mut data = [0u8; 64];
    let (nr, arch) = (nr as u32, arch);
    if little {
        data[0..4].copy_from_slice(&nr.to_le_bytes());
        data[4..8].copy_from_slice(&arch.to_le_bytes());
    } else {
        data[0..4].copy_from_slice(&nr.to_be_bytes());
        data[4..8].copy_from_slice(&arch.to_be_bytes());
    }
    for (i, a) in args.iter().enumerate() {
        let bytes = if little {
            a.to_le_bytes()
        } else {
            a.to_be_bytes()
        };
        data[16 + 8 * i..24 + 8 * i].copy_from_slice(&bytes);
    }
    let word = |k: u32| {
        let bytes: [u8; 4] = data[k as usize..k as usize + 4].try_into().unwrap();
        if little {
            u32::from_le_bytes(bytes)
        } else {
            u32::from_be_bytes(bytes)
        }
    };
    let (mut a, mut x, mut mem, mut pc) = (0u32, 0u32, [0u32; 16], 0usize);
    loop {
        let (code, jt, jf, k) = bpf[pc];
        pc += 1;
        let jump = |taken: bool| usize::from(if taken { jt } else { jf });
        match code {
            0x20 => a = word(k),            // ld [k]
            0x00 => a = k,                  // ld #k
            0x01 => x = k,                  // ldx #k
            0x60 => a = mem[k as usize],    // ld M[k]
            0x61 => x = mem[k as usize],    // ldx M[k]
            0x02 => mem[k as usize] = a,    // st M[k]
            0x03 => mem[k as usize] = x,    // stx M[k]
            0x54 => a &= k,                 // and #k
            0x44 => a |= k,                 // or #k
            0x07 => x = a,                  // tax
            0x87 => a = x,                  // txa
            0x05 => pc += k as usize,       // ja
            0x15 => pc += jump(a == k),     // jeq #k
            0x25 => pc += jump(a > k),      // jgt #k
            0x35 => pc += jump(a >= k),     // jge #k
            0x45 => pc += jump(a & k != 0), // jset #k
            0x06 => return k,               // ret #k
            other => panic!("BPF opcode {other:#x} at {}", pc - 1),
        }
    }
}

/// A statement of libseccomp's pseudo filter code.
enum Pfc {
    If(String, Vec<Pfc>, Vec<Pfc>),
    Action(u32),
}

fn parse_pfc(text: &str) -> Vec<Pfc> {
    let lines: Vec<(usize, &str)> = text
        .lines()
        .filter(|l| !l.trim_start().starts_with('#') && !l.trim().is_empty())
        .map(|l| (l.len() - l.trim_start().len(), l.trim()))
        .collect();
    let mut i = 0;
    let block = pfc_block(&lines, &mut i, 0);
    assert_eq!(i, lines.len(), "PFC not understood at {:?}", lines.get(i));
    block
}

fn pfc_block(lines: &[(usize, &str)], i: &mut usize, indent: usize) -> Vec<Pfc> {
    let mut block = Vec::new();
    while let Some((at, line)) = lines.get(*i).copied() {
        if at != indent || line == "else" {
            break;
        }
        *i += 1;
        if let Some(cond) = line.strip_prefix("if (").and_then(|c| c.strip_suffix(')')) {
            let then = pfc_block(lines, i, indent + 2);
            let otherwise = if lines.get(*i) == Some(&(indent, "else")) {
                *i += 1;
                pfc_block(lines, i, indent + 2)
            } else {
                Vec::new()
            };
            block.push(Pfc::If(cond.to_string(), then, otherwise));
        } else {
            let action = line.strip_prefix("action ").unwrap().trim_end_matches(';');
            block.push(Pfc::Action(match action {
                "ALLOW" => ALLOW,
                "KILL" => 0,
                "KILL_PROCESS" => 0x8000_0000,
                "LOG" => 0x7ffc_0000,
                "TRAP" => 0x0003_0000,
                errno => {
                    let n = errno.strip_prefix("ERRNO(").unwrap().trim_end_matches(')');
                    0x0005_0000 | n.parse::<u32>().unwrap()
                }
            }));
        }
    }
    block
}

fn number(text: &str) -> u64 {
    match text.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).unwrap(),
        None => text.parse().unwrap(),
    }
}

fn pfc_holds(cond: &str, arch: u32, nr: i32, args: [u64; 6]) -> bool {
    let parts: Vec<&str> = cond.split_whitespace().collect();
    let (operand, mask, op, value) = match parts[..] {
        [operand, op, value] => (operand, u64::MAX, op, number(value)),
        [operand, "&", mask, op, value] => (operand, number(mask), op, number(value)),
        _ => panic!("PFC condition {cond}"),
    };
    let x = match operand {
        "$arch" => u64::from(arch),
        "$syscall" => u64::from(nr as u32),
        arg => {
            let (n, half) = match arg.split_once('.') {
                Some((n, half)) => (n, Some(half)),
                None => (arg, None),
            };
            let a = args[n.strip_prefix("$a").unwrap().parse::<usize>().unwrap()];
            match half {
                Some("hi32") => a >> 32,
                Some("lo32") => a & 0xffff_ffff,
                // A 32-bit architecture: its registers hold 32 bits.
                None => a & 0xffff_ffff,
                Some(other) => panic!("PFC operand {other}"),
            }
        }
    } & mask;
    match op {
        "==" => x == value,
        "!=" => x != value,
        ">" => x > value,
        ">=" => x >= value,
        "<" => x < value,
        "<=" => x <= value,
        other => panic!("PFC operator {other}"),
    }
}

fn pfc_run(block: &[Pfc], arch: u32, nr: i32, args: [u64; 6]) -> Option<u32> {
    for statement in block {
        let taken = match statement {
            Pfc::Action(action) => return Some(*action),
            Pfc::If(cond, then, otherwise) => {
                if pfc_holds(cond, arch, nr, args) {
                    then
                } else {
                    otherwise
                }
            }
        };
        if let Some(action) = pfc_run(taken, arch, nr, args) {
            return Some(action);
        }
    }
    None
}

fn pfc_answer(pfc: &[Pfc], arch: u32, nr: i32, args: [u64; 6]) -> u32 {
    pfc_run(pfc, arch, nr, args).expect("the PFC ends with an action")
}

fn nr(name: &str, arch: ScmpArch) -> i32 {
    // libseccomp names the multiplexed form for these on 32-bit x86 and s390x; the direct calls (Linux
    // 4.3) are 359 and 360 on both (arch/x86/entry/syscalls/syscall_32.tbl, arch/s390/kernel/syscalls).
    match (name, arch) {
        ("socket", ScmpArch::X86 | ScmpArch::S390X) => 359,
        ("socketpair", ScmpArch::X86 | ScmpArch::S390X) => 360,
        _ => i32::from(ScmpSyscall::from_name_by_arch(name, arch).unwrap()),
    }
}

/// What the filter answers 32-bit x86's `socketcall(SYS_SOCKET, ...)`.
fn x86_socketcall_socket(filter: &Compiled) -> String {
    let socketcall = nr("socketcall", ScmpArch::X86);
    show(answer(
        filter,
        AUDIT_I386,
        socketcall,
        [SYS_SOCKET, 0, 0, 0, 0, 0],
    ))
}

fn show(answer: u32) -> String {
    match answer & 0xffff_0000 {
        ALLOW => "ALLOW".into(),
        0x0005_0000 => format!("ERRNO({})", answer & 0xffff),
        _ => format!("{answer:#x}"),
    }
}

// ---------------------------------------------------------------------------------------------------------
// Specs and permissions.

/// The real profiles with MicroK8s' default connections.
fn real_perms() -> Permissions {
    let catalog = Catalog::embedded().unwrap();
    let plugs = catalog.default_connections("microk8s").unwrap();
    Permissions::new(Arc::new(catalog), PolicyConfig::default(), plugs, "test").unwrap()
}

/// The test catalog of tests/common, its base's syscalls extended by `syscalls` and its filters by `filters`
/// (TOML array elements).
fn perms_with_base(syscalls: &str, filters: &str) -> Permissions {
    let base = BASE
        .replacen(
            "syscalls = [\"read\",",
            &format!("syscalls = [{syscalls} \"read\","),
            1,
        )
        .replacen(
            "syscall_filters = [\n",
            &format!("syscall_filters = [\n{filters}\n"),
            1,
        );
    assert_ne!(base, BASE, "the test base changed shape");
    // Without the host namespaces, which name interfaces this catalog leaves out.
    let base = format!(
        "{}[host_namespaces]\n",
        &base[..base.find("[host_namespaces]").unwrap()]
    );
    let files = vec![("base.toml".to_string(), base)];
    let catalog = Catalog::from_files(files).unwrap();
    Permissions::new(
        Arc::new(catalog),
        PolicyConfig::default(),
        Vec::new(),
        "test",
    )
    .unwrap()
}

fn fixture(path: &str) -> Value {
    let path = format!("{}/tests/fixtures/{path}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// An x86_64 spec as containerd writes it: its RuntimeDefault profile lists x86_64, x86 and x32, allows
/// socketcall with everything else, and socket for every family but AF_ALG and AF_VSOCK.
fn runtime_default() -> Value {
    fixture("containerd/seccomp-default.json")
}

fn narrowed(verdict: &Verdict, rule: &str) -> Vec<String> {
    verdict
        .narrowed
        .iter()
        .filter(|n| n.rule == rule)
        .map(|n| format!("{} | {} | {}", n.field, n.from, n.to))
        .collect()
}

fn rules_naming<'v>(seccomp: &'v Value, name: &str) -> Vec<&'v Value> {
    seccomp["syscalls"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["names"].as_array().unwrap().iter().any(|n| n == name))
        .collect()
}

fn allowing(r: &Value) -> bool {
    matches!(
        r["action"].as_str(),
        Some("SCMP_ACT_ALLOW" | "SCMP_ACT_LOG")
    )
}

fn assert_idempotent(spec: &Value, perms: &Permissions) {
    let (_, once) = run(spec, perms);
    let (second, twice) = run(&once, perms);
    assert_eq!(second.outcome(), Outcome::Allowed, "{:#?}", second.narrowed);
    assert_eq!(once, twice);
}

// ---------------------------------------------------------------------------------------------------------
// socketcall

/// The hole this file is about, in the filters containerd writes: libseccomp turns each socket rule into a
/// socketcall(SYS_SOCKET) rule on 32-bit x86 that cannot check the family, and socketcall is allowed anyway.
#[test]
fn containerds_own_filter_lets_32_bit_x86_reach_af_alg_through_socketcall() {
    let seccomp = &runtime_default()["linux"]["seccomp"];
    let filter = compile(seccomp).unwrap();
    assert_eq!(x86_socketcall_socket(&filter), "ALLOW");
    let socket = nr("socket", ScmpArch::X8664);
    assert_eq!(
        show(answer(
            &filter,
            AUDIT_X86_64,
            socket,
            [AF_VSOCK, 0, 0, 0, 0, 0]
        )),
        "ERRNO(1)"
    );

    // Even with socketcall left out of the allowed names, the socket rules alone allow SYS_SOCKET there.
    let mut without = seccomp.clone();
    for r in without["syscalls"].as_array_mut().unwrap() {
        r["names"]
            .as_array_mut()
            .unwrap()
            .retain(|n| n != "socketcall");
    }
    let filter = compile(&without).unwrap();
    assert_eq!(x86_socketcall_socket(&filter), "ALLOW");
}

/// After the gate, the same filter keeps AF_ALG and AF_VSOCK out on every architecture it lists, and
/// ordinary sockets work on x86_64 and through the direct socket call on x86.
#[test]
fn a_filter_listing_x86_gets_no_socketcall_that_bypasses_the_family_filter() {
    let perms = real_perms();
    for (what, spec) in [
        ("containerd's RuntimeDefault", runtime_default()),
        ("CRI's RuntimeDefault", fixture("cri/container.json")),
        ("unconfined", {
            let mut s = runtime_default();
            s["linux"].as_object_mut().unwrap().remove("seccomp");
            s
        }),
    ] {
        let (verdict, out) = run(&spec, &perms);
        assert_ne!(verdict.outcome(), Outcome::Refused, "{what}: {verdict:#?}");
        let seccomp = &out["linux"]["seccomp"];
        assert!(
            rules_naming(seccomp, "socketcall")
                .iter()
                .all(|r| !allowing(r)),
            "{what}: socketcall still allowed"
        );
        assert_eq!(
            rules_naming(seccomp, "socketcall"),
            [&json!({"names": ["socketcall"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38})],
            "{what}"
        );
        let reasons = narrowed(&verdict, "seccomp.multiplexer");
        assert!(
            reasons.iter().any(
                |r| r.contains("socketcall denied with errno 38 on SCMP_ARCH_X86")
                    && r.contains("socket (granted only with argument filters)")
                    && r.contains("no interface grants socket with any arguments")
            ),
            "{what}: {reasons:#?}"
        );

        let filter = compile(seccomp).unwrap_or_else(|e| panic!("{what}: runc would fail: {e}"));
        let socketcall = nr("socketcall", ScmpArch::X86);
        for call in [SYS_SOCKET, SYS_SOCKETPAIR, SYS_CONNECT] {
            assert_eq!(
                show(answer(
                    &filter,
                    AUDIT_I386,
                    socketcall,
                    [call, 0, 0, 0, 0, 0]
                )),
                "ERRNO(38)",
                "{what}: socketcall({call})"
            );
        }
        for (arch, audit) in [(ScmpArch::X86, AUDIT_I386), (ScmpArch::X8664, AUDIT_X86_64)] {
            let socket = nr("socket", arch);
            for family in [AF_ALG, AF_VSOCK] {
                assert_ne!(
                    answer(&filter, audit, socket, [family, 0, 0, 0, 0, 0]),
                    ALLOW,
                    "{what}: socket({family}) on {arch:?}"
                );
            }
            assert_eq!(
                answer(&filter, audit, socket, [AF_INET, 1, 0, 0, 0, 0]),
                ALLOW,
                "{what}: socket(AF_INET) on {arch:?}"
            );
            let socketpair = nr("socketpair", arch);
            assert_eq!(
                answer(&filter, audit, socketpair, [AF_UNIX, 1, 0, 0, 0, 0]),
                ALLOW
            );
        }
        assert_idempotent(&spec, &perms);
    }
}

/// kernel-crypto-api grants AF_ALG, but still only through socket's argument: socketcall stays denied.
#[test]
fn socketcall_stays_denied_while_socket_is_granted_only_by_family() {
    let catalog = Arc::new(Catalog::embedded().unwrap());
    let mut plugs = catalog.default_connections("microk8s").unwrap();
    plugs.push(strict_policy::Plug::parse("kernel-crypto-api").unwrap());
    let perms = Permissions::new(catalog, PolicyConfig::default(), plugs, "test").unwrap();
    let (_, out) = run(&runtime_default(), &perms);
    let seccomp = &out["linux"]["seccomp"];
    let filter = compile(seccomp).unwrap();
    let socket = nr("socket", ScmpArch::X8664);
    assert_eq!(
        answer(&filter, AUDIT_X86_64, socket, [AF_ALG, 5, 0, 0, 0, 0]),
        ALLOW
    );
    assert_eq!(x86_socketcall_socket(&filter), "ERRNO(38)");
}

/// Architectures without socketcall (x86_64 alone, aarch64 and arm EABI) keep their filter as it was.
#[test]
fn filters_without_a_multiplexing_architecture_are_left_alone() {
    let perms = real_perms();
    for arches in [
        json!(["SCMP_ARCH_X86_64"]),
        json!(["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]),
    ] {
        let mut spec = runtime_default();
        spec["linux"]["seccomp"]["architectures"] = arches.clone();
        let (verdict, out) = run(&spec, &perms);
        assert!(
            narrowed(&verdict, "seccomp.multiplexer").is_empty(),
            "{arches}"
        );
        assert!(rules_naming(&out["linux"]["seccomp"], "socketcall")
            .iter()
            .all(|r| r["action"] != "SCMP_ACT_ERRNO"));
    }
    let mut spec = runtime_default();
    spec["linux"]["seccomp"]["architectures"] = json!(["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]);
    let (_, out) = run(&spec, &perms);
    let filter = compile(&out["linux"]["seccomp"]).unwrap();
    let socket = nr("socket", ScmpArch::Aarch64);
    assert_eq!(
        answer(&filter, AUDIT_AARCH64, socket, [AF_INET, 1, 0, 0, 0, 0]),
        ALLOW
    );
    assert_ne!(
        answer(&filter, AUDIT_AARCH64, socket, [AF_ALG, 5, 0, 0, 0, 0]),
        ALLOW
    );
}

/// s390x has socketcall too (and glibc uses it there): the same narrowing, on SCMP_ARCH_S390X and S390.
#[test]
fn an_s390x_filter_gets_socketcall_denied_too() {
    let perms = real_perms();
    let mut spec = runtime_default();
    spec["linux"]["seccomp"]["architectures"] = json!(["SCMP_ARCH_S390X", "SCMP_ARCH_S390"]);
    let (verdict, out) = run(&spec, &perms);
    let reasons = narrowed(&verdict, "seccomp.multiplexer");
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("on SCMP_ARCH_S390X, SCMP_ARCH_S390")),
        "{reasons:#?}"
    );
    let filter = compile(&out["linux"]["seccomp"]).unwrap();
    let socketcall = nr("socketcall", ScmpArch::S390X);
    assert_eq!(
        show(answer(
            &filter,
            AUDIT_S390X,
            socketcall,
            [SYS_SOCKET, 0, 0, 0, 0, 0]
        )),
        "ERRNO(38)"
    );
    let socket = nr("socket", ScmpArch::S390X);
    assert_eq!(
        answer(&filter, AUDIT_S390X, socket, [AF_INET, 1, 0, 0, 0, 0]),
        ALLOW
    );
    assert_ne!(
        answer(&filter, AUDIT_S390X, socket, [AF_VSOCK, 1, 0, 0, 0, 0]),
        ALLOW
    );
}

/// The deny must differ from the default's answer, or runc skips it and libseccomp's socketcall rules for
/// socket stay: with a default of ENOSYS it answers EPERM.
#[test]
fn the_socketcall_answer_differs_from_the_default() {
    let perms = real_perms();
    let mut spec = runtime_default();
    spec["linux"]["seccomp"]["defaultErrnoRet"] = json!(38);
    let (_, out) = run(&spec, &perms);
    let seccomp = &out["linux"]["seccomp"];
    assert_eq!(
        rules_naming(seccomp, "socketcall"),
        [&json!({"names": ["socketcall"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1})]
    );
    let filter = compile(seccomp).unwrap();
    assert_eq!(x86_socketcall_socket(&filter), "ERRNO(1)");
    assert_idempotent(&spec, &perms);
}

/// A spec that already denies socketcall as a whole, with an answer runc keeps, is left as it is.
#[test]
fn a_spec_that_denies_socketcall_itself_is_kept() {
    let perms = real_perms();
    let (_, once) = run(&runtime_default(), &perms);
    let (verdict, twice) = run(&once, &perms);
    assert_eq!(
        verdict.outcome(),
        Outcome::Allowed,
        "{:#?}",
        verdict.narrowed
    );
    assert_eq!(once, twice);

    // Denied with the default's own answer: runc drops that rule, so the gate adds one it keeps.
    let mut spec = once.clone();
    for r in spec["linux"]["seccomp"]["syscalls"].as_array_mut().unwrap() {
        if r["names"] == json!(["socketcall"]) {
            r["errnoRet"] = json!(1);
        }
    }
    let (verdict, out) = run(&spec, &perms);
    assert_eq!(
        narrowed(&verdict, "seccomp.multiplexer").len(),
        1,
        "{verdict:#?}"
    );
    let filter = compile(&out["linux"]["seccomp"]).unwrap();
    assert_eq!(x86_socketcall_socket(&filter), "ERRNO(38)");
}

/// The principle, not socket alone: any multiplexer whose carried calls are not all granted with any
/// arguments is not allowed as a whole. ipc with a filtered shmctl is denied like socketcall; socketcall
/// carrying a call that is not granted at all is only dropped (libseccomp carries the granted calls' rules
/// through it, each checking its call number).
#[test]
fn every_multiplexer_follows_the_grants_of_the_calls_it_carries() {
    let ipc_calls = r#""ipc", "semop", "semget", "semctl", "semtimedop", "msgsnd", "msgrcv", "msgget", "msgctl", "shmat", "shmdt", "shmget","#;
    let perms = perms_with_base(
        ipc_calls,
        r#"  { names = ["shmctl"], args = [{ index = 1, op = "SCMP_CMP_NE", value = 2 }] },"#,
    );
    let mut spec = spec();
    spec["linux"]["seccomp"]["syscalls"][0]["names"]
        .as_array_mut()
        .unwrap()
        .extend([json!("ipc"), json!("shmctl"), json!("shmget")]);
    let (verdict, out) = run(&spec, &perms);
    let seccomp = &out["linux"]["seccomp"];
    assert_eq!(
        rules_naming(seccomp, "ipc"),
        [&json!({"names": ["ipc"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38})]
    );
    let reasons = narrowed(&verdict, "seccomp.multiplexer");
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("allow ipc") && r.contains("shmctl")),
        "{reasons:#?}"
    );
    let filter = compile(seccomp).unwrap();
    let ipc = nr("ipc", ScmpArch::X86);
    assert_eq!(
        show(answer(&filter, AUDIT_I386, ipc, [24, 0, 2, 0, 0, 0])),
        "ERRNO(38)"
    );
    assert_idempotent(&spec, &perms);

    // socketcall granted, but it would carry socket calls the base does not grant (connect, sendto...):
    // dropped from the allowed names, no deny added (no carried call has filters to lose).
    let perms = perms_with_base(r#""socketcall", "socket","#, "");
    let mut spec = common::spec();
    spec["linux"]["seccomp"]["syscalls"][0]["names"]
        .as_array_mut()
        .unwrap()
        .extend([json!("socketcall"), json!("socket"), json!("bind")]);
    let (verdict, out) = run(&spec, &perms);
    let seccomp = &out["linux"]["seccomp"];
    assert!(
        rules_naming(seccomp, "socketcall").is_empty(),
        "{seccomp:#}"
    );
    let reasons = narrowed(&verdict, "seccomp.multiplexer");
    assert!(
        reasons.iter().any(|r| r.contains("allow socketcall")
            && r.contains("not granted by the connected interfaces")
            && r.contains("connect")),
        "{reasons:#?}"
    );
    let filter = compile(seccomp).unwrap();
    let socketcall = nr("socketcall", ScmpArch::X86);
    // socket and bind through socketcall, each by its call number; connect is not granted.
    assert_eq!(
        answer(&filter, AUDIT_I386, socketcall, [SYS_SOCKET, 0, 0, 0, 0, 0]),
        ALLOW
    );
    assert_eq!(
        answer(&filter, AUDIT_I386, socketcall, [2, 0, 0, 0, 0, 0]),
        ALLOW
    );
    assert_ne!(
        answer(
            &filter,
            AUDIT_I386,
            socketcall,
            [SYS_CONNECT, 0, 0, 0, 0, 0]
        ),
        ALLOW
    );
    assert_idempotent(&spec, &perms);
}

// ---------------------------------------------------------------------------------------------------------
// clone's flags

fn clone_rules(seccomp: &Value) -> Vec<&Value> {
    rules_naming(seccomp, "clone")
        .into_iter()
        .filter(|r| allowing(r))
        .collect()
}

fn s390x_spec() -> Value {
    let mut s = spec();
    s["linux"]["seccomp"]["architectures"] = json!(["SCMP_ARCH_S390X", "SCMP_ARCH_S390"]);
    s
}

/// An s390x spec that allows clone with any arguments (containerd's profile does with CAP_SYS_ADMIN) gets
/// the grant on index 1, where s390x passes the flags; index 0 is the new stack pointer there, and a grant
/// checked on it would let every namespace flag through.
#[test]
fn an_s390x_spec_checks_clone_flags_at_index_1() {
    for perms in [perms(&[]), real_perms()] {
        let mut s = s390x_spec();
        s["linux"]["seccomp"]["syscalls"][1] =
            json!({"names": ["clone"], "action": "SCMP_ACT_ALLOW"});
        let (verdict, out) = run(&s, &perms);
        let seccomp = &out["linux"]["seccomp"];
        let rules = clone_rules(seccomp);
        assert_eq!(rules.len(), 1, "{seccomp:#}");
        assert_eq!(
            rules[0]["args"],
            json!([{"index": 1, "value": 2114060288u64, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}])
        );
        assert!(
            narrowed(&verdict, "seccomp.arguments")
                .iter()
                .any(|n| n.contains("clone with any arguments")),
            "{:#?}",
            verdict.narrowed
        );
        assert!(narrowed(&verdict, "seccomp.arch-arguments").is_empty());

        let filter = compile(seccomp).unwrap();
        let clone = nr("clone", ScmpArch::S390X);
        let stack = 0x3ff_f7ff_e000;
        // clone(newsp, flags, ...): a thread or a fork passes, a new user or mount namespace does not.
        assert_eq!(
            answer(&filter, AUDIT_S390X, clone, [0, SIGCHLD, 0, 0, 0, 0]),
            ALLOW
        );
        assert_eq!(
            answer(
                &filter,
                AUDIT_S390X,
                clone,
                [stack, 0x003d_0f00, 0, 0, 0, 0]
            ),
            ALLOW
        );
        for flags in [CLONE_NEWUSER, CLONE_NEWNS | SIGCHLD] {
            assert_ne!(
                answer(&filter, AUDIT_S390X, clone, [stack, flags, 0, 0, 0, 0]),
                ALLOW,
                "flags {flags:#x}"
            );
        }
        assert_idempotent(&s, &perms);
    }
}

/// A clone rule written as for x86_64 (index 0) in an s390x spec stays as the spec asked (it compares the
/// stack pointer there), and the grant is added on index 1.
#[test]
fn an_x86_shaped_clone_rule_in_an_s390x_spec_gains_the_flags_check() {
    let (_, out) = run(&s390x_spec(), &perms(&[]));
    let seccomp = &out["linux"]["seccomp"];
    let rules = clone_rules(seccomp);
    assert_eq!(rules.len(), 1, "{seccomp:#}");
    let mut indexes: Vec<u64> = rules[0]["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["index"].as_u64().unwrap())
        .collect();
    indexes.sort_unstable();
    assert_eq!(indexes, [0, 1]);
    let filter = compile(seccomp).unwrap();
    let clone = nr("clone", ScmpArch::S390X);
    assert_ne!(
        answer(&filter, AUDIT_S390X, clone, [0, CLONE_NEWUSER, 0, 0, 0, 0]),
        ALLOW
    );
    assert_eq!(
        answer(&filter, AUDIT_S390X, clone, [0, SIGCHLD, 0, 0, 0, 0]),
        ALLOW
    );
    assert_idempotent(&s390x_spec(), &perms(&[]));
}

/// containerd's own s390x rule (index 1) is already the grant: kept as it is.
#[test]
fn an_s390x_clone_rule_on_index_1_is_kept() {
    let mut s = s390x_spec();
    s["linux"]["seccomp"]["syscalls"][1]["args"][0]["index"] = json!(1);
    let (verdict, out) = run(&s, &perms(&[]));
    assert!(
        !verdict.narrowed.iter().any(|n| n.from.contains("clone")),
        "{:#?}",
        verdict.narrowed
    );
    assert_eq!(
        out["linux"]["seccomp"]["syscalls"][1],
        s["linux"]["seccomp"]["syscalls"][1]
    );
}

/// With no filter, an s390x spec gets the grant written for s390x.
#[test]
fn an_unconfined_s390x_spec_gets_clone_granted_on_index_1() {
    let mut s = spec();
    s["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_S390X", "SCMP_ARCH_S390"]});
    let (_, out) = run(&s, &perms(&[]));
    let rules = clone_rules(&out["linux"]["seccomp"]);
    assert_eq!(rules.len(), 1);
    assert_eq!(rules[0]["args"][0]["index"], 1);
    assert_eq!(rules[0]["args"].as_array().unwrap().len(), 1);
}

/// A filter mixing layouts (x86_64 reads the flags at 0, s390x at 1) cannot say "index 0 here, 1 there":
/// the comparison is made at both, which holds the grant on each architecture (and grants less, never
/// more: a thread's stack pointer must pass the flags mask too).
#[test]
fn a_filter_mixing_clone_layouts_compares_the_flags_at_both_indexes() {
    let mut s = spec();
    s["linux"]["seccomp"]["architectures"] = json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_S390X"]);
    let (verdict, out) = run(&s, &perms(&[]));
    let seccomp = &out["linux"]["seccomp"];
    let rules = clone_rules(seccomp);
    assert_eq!(rules.len(), 1, "{seccomp:#}");
    let mut indexes: Vec<u64> = rules[0]["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["index"].as_u64().unwrap())
        .collect();
    indexes.sort_unstable();
    assert_eq!(indexes, [0, 1]);
    assert_eq!(
        narrowed(&verdict, "seccomp.arch-arguments").len(),
        1,
        "{verdict:#?}"
    );

    // libseccomp cannot put both byte orders in one filter: what each architecture's runc would load.
    for (name, arch, audit, user_ns) in [
        (
            "SCMP_ARCH_X86_64",
            ScmpArch::X8664,
            AUDIT_X86_64,
            [CLONE_NEWUSER, 0, 0, 0, 0, 0],
        ),
        (
            "SCMP_ARCH_S390X",
            ScmpArch::S390X,
            AUDIT_S390X,
            [0, CLONE_NEWUSER, 0, 0, 0, 0],
        ),
    ] {
        let mut one = seccomp.clone();
        one["architectures"] = json!([name]);
        let filter = compile(&one).unwrap();
        let clone = nr("clone", arch);
        assert_ne!(answer(&filter, audit, clone, user_ns), ALLOW, "{arch:?}");
        assert_eq!(
            answer(&filter, audit, clone, [SIGCHLD, 0, 0, 0, 0, 0]),
            ALLOW,
            "{arch:?}"
        );
    }
    assert_idempotent(&s, &perms(&[]));
}

/// x86_64 filters (x86_64, x86, x32: flags first everywhere) are untouched by any of this.
#[test]
fn x86_64_clone_rules_are_unchanged() {
    let (verdict, out) = run(&spec(), &perms(&[]));
    assert!(!verdict.narrowed.iter().any(|n| n.from.contains("clone")));
    assert_eq!(
        out["linux"]["seccomp"]["syscalls"][1],
        spec()["linux"]["seccomp"]["syscalls"][1]
    );
    let filter = compile(&out["linux"]["seccomp"]).unwrap();
    for (arch, audit) in [(ScmpArch::X8664, AUDIT_X86_64), (ScmpArch::X86, AUDIT_I386)] {
        let clone = nr("clone", arch);
        assert_ne!(
            answer(&filter, audit, clone, [CLONE_NEWUSER, 0, 0, 0, 0, 0]),
            ALLOW
        );
        assert_eq!(
            answer(
                &filter,
                audit,
                clone,
                [SIGCHLD, 0x7fff_0000_1000, 0, 0, 0, 0]
            ),
            ALLOW
        );
    }
}
