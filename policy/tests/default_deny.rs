//! Issue 12's first classes: an absent capability list is filled, process settings that need a capability
//! need it granted, the annotations runtimes act on are refused, cgroup paths and files stay the
//! container's own, user-namespace mappings keep the host's root out, seccomp listeners stay off; and an
//! exec may not have more than its container. Ordinary values keep running.

mod common;

use common::{perms, rules, run, spec};
use serde_json::{json, Value};
use strict_policy::evaluate_exec;

/// The rules a spec changed by `change` is refused by (empty: it runs).
fn refused_by(change: impl FnOnce(&mut Value)) -> Vec<&'static str> {
    let mut s = spec();
    change(&mut s);
    rules(&run(&s, &perms(&[])).0)
}

#[test]
fn an_absent_capability_list_is_filled_with_none() {
    let mut s = spec();
    s["process"].as_object_mut().unwrap().remove("capabilities");
    let (verdict, out) = run(&s, &perms(&[]));
    assert!(verdict.runs(), "{:?}", verdict.violations);
    let narrowing = verdict
        .narrowed
        .iter()
        .find(|n| n.rule == "capability.absent")
        .expect("narrowed");
    assert_eq!(narrowing.to, "none");
    for set in [
        "bounding",
        "effective",
        "inheritable",
        "permitted",
        "ambient",
    ] {
        assert_eq!(out["process"]["capabilities"][set], json!([]), "{set}");
    }
    let mut s = spec();
    s.as_object_mut().unwrap().remove("process");
    assert_eq!(rules(&run(&s, &perms(&[])).0), ["process.absent"]);
}

#[test]
fn process_settings_that_need_a_capability_are_refused_without_it() {
    let cases: [(Value, &str); 7] = [
        (
            json!({"scheduler": {"policy": "SCHED_FIFO", "priority": 50}}),
            "process.scheduler",
        ),
        (
            json!({"scheduler": {"policy": "SCHED_OTHER", "nice": -5}}),
            "process.scheduler",
        ),
        (
            json!({"ioPriority": {"class": "IOPRIO_CLASS_RT", "priority": 0}}),
            "process.io-priority",
        ),
        (
            json!({"rlimits": [{"type": "RLIMIT_RTPRIO", "hard": 99, "soft": 99}]}),
            "process.rlimit",
        ),
        (
            json!({"rlimits": [{"type": "RLIMIT_NICE", "hard": 40, "soft": 40}]}),
            "process.rlimit",
        ),
        (
            json!({"rlimits": [{"type": "RLIMIT_MEMLOCK", "hard": u64::MAX, "soft": u64::MAX}]}),
            "process.rlimit",
        ),
        (json!({"oomScoreAdj": -999}), "process.oom-score"),
    ];
    for (fields, rule) in cases {
        let found = refused_by(|s| {
            for (key, value) in fields.as_object().unwrap() {
                s["process"][key] = value.clone();
            }
        });
        assert_eq!(found, [rule], "{fields}");
    }
    // What kubelet, containerd and ordinary images set keeps running.
    let ordinary = refused_by(|s| {
        s["process"]["oomScoreAdj"] = json!(-997);
        s["process"]["scheduler"] = json!({"policy": "SCHED_BATCH", "nice": 5});
        s["process"]["ioPriority"] = json!({"class": "IOPRIO_CLASS_BE", "priority": 4});
        s["process"]["rlimits"] = json!([
            {"type": "RLIMIT_NOFILE", "hard": 1048576, "soft": 1048576},
            {"type": "RLIMIT_MEMLOCK", "hard": 65536, "soft": 65536},
            {"type": "RLIMIT_CORE", "hard": u64::MAX, "soft": 0}
        ]);
    });
    assert_eq!(ordinary, Vec::<&str>::new());
}

#[test]
fn a_refusal_names_the_interface_that_grants_the_capability() {
    let mut s = spec();
    s["process"]["scheduler"] = json!({"policy": "SCHED_RR", "priority": 10});
    let (verdict, _) = run(&s, &perms(&[]));
    let violation = &verdict.violations[0];
    assert_eq!(violation.field, "process.scheduler.policy");
    let sentence = violation.sentence();
    assert!(sentence.contains("real-time"), "{sentence}");
    assert!(
        sentence.contains("connect") || sentence.contains("no snap interface grants it"),
        "{sentence}"
    );
}

#[test]
fn apparmor_unconfined_and_selinux_labels_are_refused() {
    assert_eq!(
        refused_by(|s| s["process"]["apparmorProfile"] = json!("unconfined")),
        ["process.apparmor"]
    );
    assert_eq!(
        refused_by(|s| s["process"]["apparmorProfile"] = json!("cri-containerd.apparmor.d")),
        Vec::<&str>::new()
    );
    assert_eq!(
        refused_by(|s| s["process"]["selinuxLabel"] = json!("system_u:system_r:spc_t:s0")),
        ["process.selinux-label"]
    );
}

#[test]
fn annotations_the_runtimes_act_on_are_refused() {
    for key in [
        "run.oci.seccomp_bpf_data",
        "run.oci.seccomp.plugins",
        "org.systemd.property.DeviceAllow",
        "module.wasm.image/variant",
    ] {
        let found = refused_by(|s| s["annotations"][key] = json!("x"));
        assert_eq!(found, ["annotation.runtime"], "{key}");
    }
    let metadata = refused_by(|s| {
        s["annotations"]["org.opencontainers.image.title"] = json!("web");
        s["annotations"]["nerdctl/name"] = json!("web");
    });
    assert_eq!(metadata, Vec::<&str>::new());
}

#[test]
fn cgroups_stay_the_containers_own() {
    for path in ["/", "/kubepods/../../system.slice", "system.slice:..:x"] {
        assert_eq!(
            refused_by(|s| s["linux"]["cgroupsPath"] = json!(path)),
            ["cgroup.path"],
            "{path}"
        );
    }
    for path in [
        "/k8s.io/abc",
        "kubepods-besteffort.slice:cri-containerd:abc",
    ] {
        assert_eq!(
            refused_by(|s| s["linux"]["cgroupsPath"] = json!(path)),
            Vec::<&str>::new(),
            "{path}"
        );
    }
    for key in [
        "cgroup.procs",
        "cgroup.subtree_control",
        "memory",
        "../memory.max",
    ] {
        let found = refused_by(|s| s["linux"]["resources"]["unified"] = json!({ key: "1" }));
        assert_eq!(found, ["cgroup.unified"], "{key}");
    }
    let limits = refused_by(|s| {
        s["linux"]["resources"]["unified"] = json!({"memory.high": "1G", "cpu.weight": "100"})
    });
    assert_eq!(limits, Vec::<&str>::new());
}

#[test]
fn mappings_onto_the_hosts_root_and_accounts_are_refused() {
    let root = json!([{"containerID": 0, "hostID": 0, "size": 65536}]);
    let plain = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    let kubelet = json!([{"containerID": 0, "hostID": 65536, "size": 65536}]);
    let alice = json!([{"containerID": 0, "hostID": 1000, "size": 1}]);
    let straddling = json!([{"containerID": 0, "hostID": 60000, "size": 65536}]);
    let empty = json!([{"containerID": 0, "hostID": 100000, "size": 0}]);
    let overflowing = json!([{"containerID": 0, "hostID": 4294967295u64, "size": 2}]);
    let with = |mappings: &Value| {
        let mappings = mappings.clone();
        refused_by(move |s| {
            s["linux"]["uidMappings"] = mappings.clone();
            s["linux"]["gidMappings"] = mappings;
            s["linux"]["namespaces"]
                .as_array_mut()
                .unwrap()
                .push(json!({"type": "user"}));
        })
    };
    assert_eq!(with(&root), ["userns.host-root", "userns.host-root"]);
    assert_eq!(with(&plain), Vec::<&str>::new());
    assert_eq!(with(&kubelet), Vec::<&str>::new());
    assert_eq!(with(&alice), ["userns.host-account", "userns.host-account"]);
    assert_eq!(
        with(&straddling),
        ["userns.host-account", "userns.host-account"]
    );
    assert_eq!(with(&empty), ["userns.mapping", "userns.mapping"]);
    assert_eq!(with(&overflowing), ["userns.mapping", "userns.mapping"]);
    // An idmapped mount is judged the same way.
    let idmapped = refused_by(|s| {
        s["mounts"][4]["uidMappings"] = json!([{"containerID": 0, "hostID": 1000, "size": 1}]);
        s["mounts"][4]["gidMappings"] =
            json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        s["mounts"][4]["options"]
            .as_array_mut()
            .unwrap()
            .push(json!("idmap"));
    });
    assert_eq!(idmapped, ["userns.host-account"]);
}

#[test]
fn seccomp_listeners_and_spec_allow_are_refused() {
    assert_eq!(
        refused_by(|s| s["linux"]["seccomp"]["listenerPath"] = json!("/run/agent.sock")),
        ["seccomp.listener"]
    );
    assert_eq!(
        refused_by(|s| s["linux"]["seccomp"]["flags"] = json!(["SECCOMP_FILTER_FLAG_SPEC_ALLOW"])),
        ["seccomp.flags"]
    );
}

fn container() -> oci_spec::runtime::Spec {
    let mut s = spec();
    s["process"]["user"] = json!({"uid": 1000, "gid": 1000, "additionalGids": [1000, 44]});
    s["process"]["rlimits"] =
        json!([{"type": "RLIMIT_MEMLOCK", "hard": 67108864, "soft": 67108864}]);
    s["process"]["oomScoreAdj"] = json!(-997);
    serde_json::from_value(s).unwrap()
}

fn exec_rules(change: impl FnOnce(&mut Value)) -> Vec<&'static str> {
    let mut exec = serde_json::to_value(container().process().clone().unwrap()).unwrap();
    change(&mut exec);
    let exec = serde_json::from_value(exec).unwrap();
    let verdict = evaluate_exec(&container(), &exec);
    verdict.violations.iter().map(|v| v.rule).collect()
}

#[test]
fn an_exec_may_not_have_more_than_its_container() {
    assert_eq!(exec_rules(|_| {}), Vec::<&str>::new());
    assert_eq!(
        exec_rules(|e| {
            e.as_object_mut().unwrap().remove("capabilities");
        }),
        ["exec.capabilities-absent"]
    );
    assert_eq!(exec_rules(|e| e["user"]["gid"] = json!(6)), ["exec.user"]);
    assert_eq!(
        exec_rules(|e| e["user"]["additionalGids"] = json!([44, 108])),
        ["exec.user"]
    );
    assert_eq!(
        exec_rules(|e| e["scheduler"] = json!({"policy": "SCHED_FIFO", "priority": 1})),
        ["exec.process"]
    );
    assert_eq!(
        exec_rules(|e| e["ioPriority"] = json!({"class": "IOPRIO_CLASS_RT", "priority": 0})),
        ["exec.process"]
    );
    assert_eq!(
        exec_rules(|e| e["oomScoreAdj"] = json!(-998)),
        ["exec.process"]
    );
    assert_eq!(
        exec_rules(|e| e["rlimits"] = json!([{"type": "RLIMIT_RTPRIO", "hard": 1, "soft": 1}])),
        ["exec.process"]
    );
    // The container's own memlock limit, and a lower one, are fine.
    assert_eq!(
        exec_rules(|e| e["rlimits"] =
            json!([{"type": "RLIMIT_MEMLOCK", "hard": 1048576, "soft": 1048576}])),
        Vec::<&str>::new()
    );
}

#[test]
fn every_namespace_entry_counts_and_a_mount_namespace_is_the_containers_own() {
    // Namespaces: pid, ipc, uts, mount, network, cgroup (common::spec()).
    let duplicate = refused_by(|s| {
        s["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "network", "path": "/proc/1/ns/net"}))
    });
    assert_eq!(duplicate, ["namespace.duplicate"]);
    // Outside a pod, another process's mount namespace is refused; its network namespace is not the
    // host's and may be joined (ctr --with-ns), as before.
    assert_eq!(
        refused_by(
            |s| s["linux"]["namespaces"][3] = json!({"type": "mount", "path": "/proc/4242/ns/mnt"})
        ),
        ["namespace.foreign"]
    );
    assert_eq!(
        refused_by(|s| s["linux"]["namespaces"][4] =
            json!({"type": "network", "path": "/proc/4242/ns/net"})),
        Vec::<&str>::new()
    );
}

#[test]
fn kernel_filesystems_belong_at_their_place_and_nothing_is_remounted() {
    // A second procfs outside /proc escapes its masks and read-only paths.
    let second_proc = refused_by(|s| {
        s["mounts"].as_array_mut().unwrap().push(
            json!({"destination": "/host-proc", "type": "proc", "source": "proc", "options": ["nosuid"]}),
        )
    });
    assert_eq!(second_proc, ["mount.place"]);
    let sysfs_elsewhere = refused_by(|s| {
        s["mounts"].as_array_mut().unwrap().push(
            json!({"destination": "/mnt/sys", "type": "sysfs", "source": "sysfs", "options": ["ro"]}),
        )
    });
    assert_eq!(sysfs_elsewhere, ["mount.place"]);
    let host_ptys = refused_by(|s| {
        s["mounts"].as_array_mut().unwrap().push(
            json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec"]}),
        )
    });
    assert_eq!(host_ptys, ["mount.place"]);
    let remount = refused_by(|s| {
        s["mounts"][1]["options"]
            .as_array_mut()
            .unwrap()
            .push(json!("remount"))
    });
    assert_eq!(remount, ["mount.remount"]);
    // What containerd writes runs: devpts with newinstance, mqueue, a tmpfs anywhere, cgroup.
    let ordinary = refused_by(|s| {
        let mounts = s["mounts"].as_array_mut().unwrap();
        mounts.push(
            json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts",
            "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]}),
        );
        mounts.push(
            json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
            "options": ["nosuid", "noexec", "nodev"]}),
        );
        mounts.push(
            json!({"destination": "/run/cache", "type": "tmpfs", "source": "tmpfs",
            "options": ["nosuid", "size=65536k"]}),
        );
        mounts.push(
            json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
            "options": ["ro", "nosuid", "noexec", "nodev"]}),
        );
    });
    assert_eq!(ordinary, Vec::<&str>::new());
}
