//! The edges of the device, privileged, mount and AppArmor rules that mutation testing found untested
//! (`cargo mutants -p strict-policy`, docs/benchmarks.md): each test here fails if one comparison or one
//! condition of a rule is turned around.

mod common;

use common::{add_mount, host, perms, perms_with, rules, run, run_on, spec};
use serde_json::{json, Value};
use strict_policy::PolicyConfig;

const SERIAL: &str = "serial-port:path=/dev/ttyUSB0";

fn with_node(s: &mut Value, typ: &str, major: i64, minor: i64) {
    s["linux"]["devices"] =
        json!([{"path": "/dev/ttyUSB0", "type": typ, "major": major, "minor": minor}]);
}

#[test]
fn a_node_granted_by_path_must_be_the_hosts_node_there() {
    // The host's /dev/ttyUSB0 is c 188:0 (common::host).
    let mut s = spec();
    with_node(&mut s, "c", 188, 0);
    assert!(run(&s, &perms(&[SERIAL])).0.runs());
    for (typ, major, minor) in [("b", 188, 0), ("c", 189, 0), ("c", 188, 1)] {
        let mut s = spec();
        with_node(&mut s, typ, major, minor);
        assert_eq!(
            rules(&run(&s, &perms(&[SERIAL])).0),
            ["device.node"],
            "{typ} {major}:{minor}"
        );
    }
}

#[test]
fn a_cgroup_rule_is_covered_by_a_granted_node_with_the_same_numbers_only() {
    let with_rule = |typ: &str, major: i64, minor: i64| {
        let mut s = spec();
        with_node(&mut s, "c", 188, 0);
        s["linux"]["resources"]["devices"] = json!([
            {"allow": false, "access": "rwm"},
            {"allow": true, "type": typ, "major": major, "minor": minor, "access": "rw"}
        ]);
        rules(&run(&s, &perms(&[SERIAL])).0)
    };
    assert_eq!(with_rule("c", 188, 0), Vec::<&str>::new());
    assert_eq!(with_rule("b", 188, 0), ["device.cgroup"]);
    assert_eq!(with_rule("c", 189, 0), ["device.cgroup"]);
    assert_eq!(with_rule("c", 188, 1), ["device.cgroup"]);
}

#[test]
fn a_fifo_cgroup_rule_is_no_device() {
    let mut s = spec();
    s["linux"]["resources"]["devices"] =
        json!([{"allow": false, "access": "rwm"}, {"allow": true, "type": "p", "access": "rwm"}]);
    assert!(run(&s, &perms(&[])).0.runs());
}

/// A spec with every capability and no seccomp filter: two of the effects of privileged mode, not enough
/// to be it.
fn nearly_privileged() -> Value {
    let mut s = spec();
    let all: Vec<&str> = vec![
        "CAP_SYS_ADMIN",
        "CAP_SYS_MODULE",
        "CAP_SYS_RAWIO",
        "CAP_SYS_PTRACE",
        "CAP_NET_ADMIN",
        "CAP_SYS_BOOT",
        "CAP_MAC_ADMIN",
        "CAP_SYS_TIME",
        "CAP_BPF",
        "CAP_PERFMON",
        "CAP_DAC_READ_SEARCH",
        "CAP_SYSLOG",
        "CAP_MAC_OVERRIDE",
        "CAP_LINUX_IMMUTABLE",
        "CAP_IPC_LOCK",
        "CAP_SYS_NICE",
        "CAP_SYS_RESOURCE",
        "CAP_SYS_TTY_CONFIG",
        "CAP_LEASE",
        "CAP_AUDIT_CONTROL",
        "CAP_WAKE_ALARM",
        "CAP_BLOCK_SUSPEND",
        "CAP_AUDIT_READ",
        "CAP_CHECKPOINT_RESTORE",
        "CAP_SYS_PACCT",
        "CAP_NET_BROADCAST",
        "CAP_IPC_OWNER",
        "CAP_CHOWN",
        "CAP_DAC_OVERRIDE",
        "CAP_FSETID",
        "CAP_FOWNER",
        "CAP_MKNOD",
        "CAP_NET_RAW",
        "CAP_SETGID",
        "CAP_SETUID",
        "CAP_SETFCAP",
        "CAP_SETPCAP",
        "CAP_NET_BIND_SERVICE",
        "CAP_SYS_CHROOT",
        "CAP_KILL",
        "CAP_AUDIT_WRITE",
    ];
    for set in ["bounding", "effective", "permitted"] {
        s["process"]["capabilities"][set] = json!(all);
    }
    s["linux"].as_object_mut().unwrap().remove("seccomp");
    s
}

fn is_refused_as_privileged(s: &Value) -> bool {
    rules(&run(s, &perms(&[])).0).contains(&"privileged")
}

#[test]
fn privileged_needs_all_capabilities_and_two_more_of_its_effects() {
    assert!(!is_refused_as_privileged(&nearly_privileged()));
    // A third effect makes it privileged: no masked or read-only paths at all.
    let mut s = nearly_privileged();
    s["linux"]["maskedPaths"] = json!([]);
    s["linux"]["readonlyPaths"] = json!([]);
    assert!(is_refused_as_privileged(&s));
    // Only one of the two lists empty is not that effect.
    let mut s = nearly_privileged();
    s["linux"]["maskedPaths"] = json!([]);
    assert!(!is_refused_as_privileged(&s));
    // A writable mount that is not sysfs is not a writable /sys.
    let mut s = nearly_privileged();
    add_mount(&mut s, "/home/alice/data", &["rbind", "rw"]);
    s["mounts"][2]["options"] = json!(["nosuid", "ro"]);
    assert!(!is_refused_as_privileged(&s));
    let mut s = nearly_privileged();
    s["mounts"][2]["options"] = json!(["nosuid", "rw"]);
    assert!(is_refused_as_privileged(&s));
    // Every host device is a rule allowing all types and numbers; one type, one major or a denial is not.
    for rule in [
        json!({"allow": true, "type": "c", "access": "rwm"}),
        json!({"allow": true, "major": 1, "access": "rwm"}),
        json!({"allow": true, "minor": 1, "access": "rwm"}),
        json!({"allow": false, "access": "rwm"}),
    ] {
        let mut s = nearly_privileged();
        s["linux"]["resources"]["devices"] = json!([rule.clone()]);
        assert!(!is_refused_as_privileged(&s), "{rule}");
    }
    let mut s = nearly_privileged();
    s["linux"]["resources"]["devices"] = json!([{"allow": true, "access": "rwm"}]);
    assert!(is_refused_as_privileged(&s));
    // Three effects without all capabilities, or all capabilities with a filter and masks, are not it.
    let mut s = spec();
    s["linux"]["maskedPaths"] = json!([]);
    s["linux"]["readonlyPaths"] = json!([]);
    s["mounts"][2]["options"] = json!(["nosuid", "rw"]);
    s["linux"].as_object_mut().unwrap().remove("seccomp");
    assert!(!is_refused_as_privileged(&s));
    let mut s = nearly_privileged();
    s["linux"]["seccomp"] = spec()["linux"]["seccomp"].clone();
    assert!(!is_refused_as_privileged(&s));
}

#[test]
fn a_bind_is_a_bind_by_its_type_or_by_its_options() {
    // Type bind without a bind option, and type none with rbind: both bind mounts of a granted path.
    let mut s = spec();
    add_mount(&mut s, "/home/alice/data", &["ro"]);
    assert!(run(&s, &perms(&["home:read=all"])).0.runs());
    let mut s = spec();
    add_mount(&mut s, "/home/alice/data", &["rbind", "ro"]);
    s["mounts"][5]["type"] = json!("none");
    assert!(run(&s, &perms(&["home:read=all"])).0.runs());
}

#[test]
fn the_last_of_ro_and_rw_wins() {
    let mut s = spec();
    add_mount(&mut s, "/home/alice/data", &["rbind", "ro", "rw"]);
    assert_eq!(
        rules(&run(&s, &perms(&["home:read=all"])).0),
        ["mount.host-path"]
    );
    let mut s = spec();
    add_mount(&mut s, "/home/alice/data", &["rbind", "rw", "ro"]);
    assert!(run(&s, &perms(&["home:read=all"])).0.runs());
}

#[test]
fn an_absolute_root_is_judged_with_its_readonly_flag() {
    let mut s = spec();
    s["root"] = json!({"path": "/home/alice/rootfs", "readonly": true});
    assert!(run(&s, &perms(&["home:read=all"])).0.runs());
    s["root"]["readonly"] = json!(false);
    assert_eq!(
        rules(&run(&s, &perms(&["home:read=all"])).0),
        ["mount.host-path"]
    );
}

#[test]
fn a_relative_bind_source_is_refused_even_where_its_absolute_twin_is_granted() {
    let mut s = spec();
    add_mount(&mut s, "home/alice/data", &["rbind", "ro"]);
    let (verdict, _) = run(&s, &perms(&["home:read=all"]));
    assert_eq!(rules(&verdict), ["mount.host-path"]);
    assert!(
        verdict.violations[0].summary.contains("not absolute"),
        "{verdict:?}"
    );
}

#[test]
fn a_subpath_exposing_another_subpath_is_refused() {
    const SUBPATHS: &str = "/var/lib/kubelet/pods/0a1b/volume-subpaths";
    let host = host().bind_mount(
        &format!("{SUBPATHS}/a/app/0"),
        &format!("{SUBPATHS}/b/app/1"),
    );
    let mut s = spec();
    add_mount(&mut s, &format!("{SUBPATHS}/a/app/0"), &["rbind", "ro"]);
    let (verdict, _) = run_on(&s, &perms(&[]), &host);
    assert_eq!(rules(&verdict), ["mount.subpath"]);
    assert!(
        verdict.violations[0].summary.contains("another subPath"),
        "{verdict:?}"
    );
}

#[test]
fn the_configured_apparmor_profile_fills_an_empty_one_only() {
    let config = PolicyConfig {
        apparmor_profile: Some("cri-containerd.apparmor.d".into()),
        ..PolicyConfig::default()
    };
    let perms = perms_with(&[], config);
    let narrowed = |profile: Option<&str>| {
        let mut s = spec();
        if let Some(profile) = profile {
            s["process"]["apparmorProfile"] = json!(profile);
        }
        let (verdict, out) = run(&s, &perms);
        assert!(verdict.runs(), "{verdict:?}");
        (
            verdict
                .narrowed
                .iter()
                .any(|n| n.rule == "hardening.apparmor"),
            out["process"]["apparmorProfile"].clone(),
        )
    };
    assert_eq!(narrowed(None), (true, json!("cri-containerd.apparmor.d")));
    assert_eq!(narrowed(Some("my-own")), (false, json!("my-own")));
}

#[test]
fn only_a_missing_cgroup_namespace_is_added_every_other_missing_one_is_the_hosts() {
    let without = |kind: &str| {
        let mut s = spec();
        s["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .retain(|n| n["type"] != kind);
        run(&s, &perms(&[]))
    };
    let (verdict, out) = without("cgroup");
    assert!(verdict.runs(), "{verdict:?}");
    assert!(out["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .any(|n| n["type"] == "cgroup"));
    assert_eq!(rules(&without("ipc").0), ["namespace.host"]);
}

/// The process rules' thresholds, exactly: the last value that runs and the first that does not.
#[test]
fn process_settings_run_up_to_the_kernels_defaults_and_no_further() {
    let refused = |change: &dyn Fn(&mut Value)| {
        let mut s = spec();
        change(&mut s);
        run(&s, &perms(&[])).0.violations
    };
    let rlimit = |typ: &'static str, value: u64| {
        move |s: &mut Value| {
            s["process"]["rlimits"] = json!([{"type": typ, "hard": value, "soft": value}]);
        }
    };
    for (typ, last, first) in [
        ("RLIMIT_RTPRIO", 0u64, 1u64),
        ("RLIMIT_NICE", 20, 21),
        ("RLIMIT_MEMLOCK", 8 * 1024 * 1024, 8 * 1024 * 1024 + 1),
    ] {
        assert!(refused(&rlimit(typ, last)).is_empty(), "{typ} {last}");
        let violations = refused(&rlimit(typ, first));
        assert_eq!(violations.len(), 1, "{typ} {first}");
        // The message names the limit as the spec spells it.
        assert_eq!(violations[0].value, format!("{typ} {first}"));
    }
    assert!(refused(&|s| s["process"]["oomScoreAdj"] = json!(-998)).is_empty());
    assert_eq!(
        refused(&|s| s["process"]["oomScoreAdj"] = json!(-999)).len(),
        1
    );
    assert!(
        refused(&|s| s["process"]["scheduler"] = json!({"policy": "SCHED_OTHER", "nice": 0}))
            .is_empty()
    );
    assert_eq!(
        refused(&|s| s["process"]["scheduler"] = json!({"policy": "SCHED_OTHER", "nice": -1}))
            .len(),
        1
    );
}

#[test]
fn mappings_run_to_the_last_id_and_no_further_and_unified_keys_name_a_file() {
    let with_mapping = |host: u64, size: u64| {
        let mut s = spec();
        let mapping = json!([{"containerID": 0, "hostID": host, "size": size}]);
        s["linux"]["uidMappings"] = mapping.clone();
        s["linux"]["gidMappings"] = mapping;
        s["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "user"}));
        rules(&run(&s, &perms(&[])).0)
    };
    assert_eq!(with_mapping(4294967295, 1), Vec::<&str>::new());
    assert_eq!(
        with_mapping(4294967295, 2),
        ["userns.mapping", "userns.mapping"]
    );
    assert_eq!(with_mapping(4294901760, 65536), Vec::<&str>::new());
    let unified = |key: &str| {
        let mut s = spec();
        s["linux"]["resources"]["unified"] = json!({ key: "1" });
        rules(&run(&s, &perms(&[])).0)
    };
    assert_eq!(unified("memory.high"), Vec::<&str>::new());
    assert_eq!(unified("memory."), ["cgroup.unified"]);
}
