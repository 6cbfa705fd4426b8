//! Properties of the intersection over generated specs: it never grants more than the spec asked for nor
//! more than the permissions, narrowing is idempotent, and no input makes it panic.

mod common;

use std::collections::BTreeSet;

use common::*;
use proptest::prelude::*;
use serde_json::{json, Value};
use strict_policy::{evaluate, parse_spec, Outcome, Permissions};

const CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_NET_RAW",
    "CAP_NET_ADMIN",
    "CAP_KILL",
    "CAP_SYS_NICE",
    "CAP_SETUID",
];
const RISKY_CAPS: &[&str] = &["CAP_SYS_ADMIN", "CAP_BPF", "CAP_SYS_PTRACE"];
const ALL_NAMESPACES: &[&str] = &["pid", "ipc", "uts", "mount", "network", "cgroup"];
const SYSCALLS: &[&str] = &[
    "read",
    "write",
    "openat",
    "ptrace",
    "unshare",
    "mount",
    "bind",
    "listen",
    "accept4",
    "clone",
    "clone3",
    "sched_setattr",
    "bpf",
    "keyctl",
    "made_up_call",
    "getpid",
];
const SOURCES: &[&str] = &[
    "/etc",
    "/home/alice/Music",
    "/home/alice/.ssh",
    "/srv/data",
    "/srv/database",
    "/media/usb",
    "/dev/kvm",
    "/var/lib/kubelet/pods/1/volumes/kubernetes.io~secret/s",
    "/var/lib/kubelet",
    "/proc/1/root",
    "/",
    "/links/to-etc",
    "/home/alice/../../etc",
];
const PLUGS: &[&str] = &[
    "network-control",
    "home:read=all",
    "system-files:write=/srv/data",
    "kvm",
    "removable-media",
    "process-control",
    "system-observe",
];

fn subset<'a>(pool: &'static [&'a str]) -> impl Strategy<Value = Vec<&'a str>> {
    proptest::sample::subsequence(pool, 0..=pool.len())
}

fn spec_strategy() -> impl Strategy<Value = Value> {
    let caps = (
        subset(CAPS),
        proptest::option::weighted(0.1, proptest::sample::select(RISKY_CAPS)),
    )
        .prop_map(|(mut caps, risky)| {
            caps.extend(risky);
            caps
        });
    let namespaces = prop_oneof![
        4 => Just(ALL_NAMESPACES.to_vec()),
        1 => Just(ALL_NAMESPACES[..5].to_vec()),
        1 => subset(ALL_NAMESPACES),
    ];
    (
        caps,
        subset(SYSCALLS),
        prop_oneof![Just("SCMP_ACT_ERRNO"), Just("SCMP_ACT_ALLOW"), Just("none")],
        proptest::collection::vec(
            (
                proptest::sample::select(SOURCES),
                any::<bool>(),
                any::<bool>(),
            ),
            0..3,
        ),
        namespaces,
        any::<bool>(),
    )
        .prop_map(|(caps, syscalls, default, mounts, namespaces, masked)| {
            let mut s = spec();
            s["process"]["capabilities"] =
                json!({"bounding": caps, "effective": caps, "permitted": caps});
            match default {
                "none" => {
                    s["linux"].as_object_mut().unwrap().remove("seccomp");
                }
                action => {
                    s["linux"]["seccomp"] = json!({"defaultAction": action,
                        "syscalls": [{"names": syscalls, "action": "SCMP_ACT_ALLOW"}]});
                }
            }
            for (source, rw, shared) in mounts {
                let mut options = vec!["rbind", if rw { "rw" } else { "ro" }];
                if shared {
                    options.push("rshared");
                }
                add_mount(&mut s, source, &options);
            }
            let ns: Vec<Value> = namespaces.iter().map(|t| json!({"type": t})).collect();
            s["linux"]["namespaces"] = json!(ns);
            if !masked {
                s["linux"]["maskedPaths"] = json!([]);
            }
            s
        })
}

fn perms_strategy() -> impl Strategy<Value = Permissions> {
    subset(PLUGS).prop_map(|plugs| perms(&plugs))
}

fn test_host() -> strict_policy::FakeHost {
    host().symlink("/links/to-etc", "/etc")
}

fn strings(v: &Value) -> BTreeSet<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// Names an allowing rule of the filter lets through.
fn allowed_names(seccomp: &Value) -> BTreeSet<String> {
    seccomp["syscalls"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| {
            matches!(
                r["action"].as_str(),
                Some("SCMP_ACT_ALLOW" | "SCMP_ACT_LOG" | "SCMP_ACT_NOTIFY")
            )
        })
        .flat_map(|r| strings(&r["names"]))
        .collect()
}

fn evaluate_json(spec: &Value, perms: &Permissions) -> (strict_policy::Verdict, Value) {
    let bytes = serde_json::to_vec(spec).unwrap();
    let mut document = parse_spec(&bytes).unwrap();
    let verdict = evaluate(&mut document.spec, perms, &test_host());
    (
        verdict,
        sorted_capabilities(serde_json::to_value(&document.spec).unwrap()),
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, max_global_rejects: 8192, ..ProptestConfig::default() })]

    #[test]
    fn never_more_than_asked_nor_more_than_granted(input in spec_strategy(), perms in perms_strategy()) {
        let (verdict, out) = evaluate_json(&input, &perms);
        prop_assume!(verdict.runs());
        let granted: BTreeSet<String> = perms.syscall_names().iter().map(|s| s.to_string()).collect();

        // Capabilities: a subset of the input's, and each one granted.
        for set in ["bounding", "effective", "permitted"] {
            let before = strings(&input["process"]["capabilities"][set]);
            let after = strings(&out["process"]["capabilities"][set]);
            prop_assert!(after.is_subset(&before), "{set}: {after:?} ⊄ {before:?}");
            for cap in &after {
                let cap: oci_spec::runtime::Capability = serde_json::from_value(json!(cap)).unwrap();
                prop_assert!(perms.capability(cap).is_some(), "{cap:?} not granted");
            }
        }
        // Seccomp: always a filter whose default denies; allowed names granted, and when the input's own
        // filter denied by default, also allowed by it.
        let seccomp = &out["linux"]["seccomp"];
        prop_assert!(seccomp["defaultAction"] != "SCMP_ACT_ALLOW");
        let after = allowed_names(seccomp);
        prop_assert!(after.is_subset(&granted), "{:?}", after.difference(&granted).collect::<Vec<_>>());
        if input["linux"]["seccomp"]["defaultAction"] == "SCMP_ACT_ERRNO" {
            let before = allowed_names(&input["linux"]["seccomp"]);
            prop_assert!(after.is_subset(&before));
        }
        // Mount sources are never changed, only judged; namespaces only ever added.
        let sources = |v: &Value| -> Vec<Value> {
            v["mounts"].as_array().unwrap().iter().map(|m| m["source"].clone()).collect()
        };
        prop_assert_eq!(sources(&input), sources(&out));
        let ns_before: BTreeSet<String> = input["linux"]["namespaces"].as_array().unwrap().iter().map(|n| n["type"].to_string()).collect();
        let ns_after: BTreeSet<String> = out["linux"]["namespaces"].as_array().unwrap().iter().map(|n| n["type"].to_string()).collect();
        prop_assert!(ns_before.is_subset(&ns_after));
    }

    #[test]
    fn narrowing_is_idempotent(input in spec_strategy(), perms in perms_strategy()) {
        let (verdict, once) = evaluate_json(&input, &perms);
        prop_assume!(verdict.runs());
        let (again, twice) = evaluate_json(&once, &perms);
        prop_assert_eq!(again.outcome(), Outcome::Allowed, "{:?}", again.narrowed);
        prop_assert_eq!(once, twice);
    }

    #[test]
    fn refusals_always_fit_in_an_event(input in spec_strategy(), perms in perms_strategy()) {
        let (verdict, _) = evaluate_json(&input, &perms);
        if let Some(message) = verdict.refusal_message() {
            prop_assert!(message.len() <= strict_policy::MESSAGE_LIMIT);
            prop_assert!(message.starts_with("strict: refused: "));
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        if let Ok(mut document) = parse_spec(&bytes) {
            let _ = strict_policy::evaluate_document(&mut document, &perms(&["network-control"]), &test_host());
        }
    }

    #[test]
    fn mutated_specs_never_panic(input in spec_strategy(), cut in 0usize..4000, byte in any::<u8>()) {
        let mut bytes = serde_json::to_vec(&input).unwrap();
        let at = cut % bytes.len();
        bytes[at] = byte;
        if let Ok(mut document) = parse_spec(&bytes) {
            let _ = strict_policy::evaluate_document(&mut document, &perms(&["kvm"]), &test_host());
        }
    }
}
