//! The intersection, area by area, against the small test catalog.

mod common;

use common::*;
use serde_json::json;
use strict_policy::host::add_process_namespaces;
use strict_policy::{Outcome, PolicyConfig};

#[test]
fn an_ordinary_container_is_allowed_unchanged_when_its_grants_are_connected() {
    let perms = perms(&["network-control"]); // grants CAP_NET_RAW, the 14th default
    let (verdict, out) = run(&spec(), &perms);
    assert_eq!(verdict.outcome(), Outcome::Allowed, "{:#?}", verdict);
    assert_eq!(out, sorted_capabilities(spec()));
}

#[test]
fn a_default_capability_outside_the_grants_is_dropped_not_refused() {
    let (verdict, out) = run(&spec(), &perms(&[]));
    assert_eq!(verdict.outcome(), Outcome::Narrowed, "{:#?}", verdict);
    assert_eq!(verdict.narrowed[0].rule, "capability.dropped");
    assert!(verdict.narrowed[0]
        .from
        .starts_with("CAP_NET_RAW in bounding, effective, permitted"));
    for set in ["bounding", "effective", "permitted"] {
        let caps = out["process"]["capabilities"][set].as_array().unwrap();
        assert!(!caps.contains(&json!("CAP_NET_RAW")), "{set}");
        assert_eq!(caps.len(), 13);
    }
}

#[test]
fn an_explicitly_added_capability_is_refused_with_the_interfaces_that_withhold_it() {
    let mut s = spec();
    s["process"]["capabilities"]["bounding"]
        .as_array_mut()
        .unwrap()
        .push(json!("CAP_SYS_ADMIN"));
    s["process"]["capabilities"]["ambient"] = json!(["CAP_SYS_NICE"]);
    let (verdict, _) = run(&s, &perms(&["network-control"]));
    assert_eq!(rules(&verdict), ["capability", "capability"]);
    let admin = &verdict.violations[0];
    assert_eq!(admin.field, "process.capabilities.bounding");
    assert_eq!(admin.value, "CAP_SYS_ADMIN");
    assert!(admin.interfaces.is_empty());
    assert!(
        admin
            .sentence()
            .contains("AppArmor rules a container lacks (network-control)"),
        "{}",
        admin.sentence()
    );
    let nice = &verdict.violations[1];
    assert_eq!(nice.field, "process.capabilities.ambient");
    assert_eq!(nice.interfaces, ["process-control"]);
}

#[test]
fn host_bind_mounts_need_a_path_grant_and_the_message_names_the_fix() {
    let mut s = spec();
    add_mount(&mut s, "/etc", &["rbind", "ro"]);
    let (verdict, _) = run(&s, &perms(&["network-control"]));
    assert_eq!(rules(&verdict), ["mount.host-path"]);
    let message = verdict.refusal_message().unwrap();
    assert_eq!(
        message,
        "strict: refused: mounts[5] host path /etc (read-only) is outside the connected interfaces; \
         connect system-files (read: /etc) to allow it"
    );
    assert_eq!(verdict.violations[0].field, "mounts[5].source");
    assert_eq!(verdict.violations[0].interfaces, ["system-files:read=/etc"]);

    // Read-only granted: a read-only mount passes, a writable one is refused and offered write access.
    let perms = perms(&["network-control", "system-files:read=/etc"]);
    let (verdict, _) = run(&s, &perms);
    assert_eq!(
        verdict.outcome(),
        Outcome::Allowed,
        "{:#?}",
        verdict.violations
    );
    let mut rw = spec();
    add_mount(&mut rw, "/etc", &["rbind", "rw"]);
    let (verdict, _) = run(&rw, &perms);
    assert_eq!(
        verdict.violations[0].interfaces,
        ["system-files:write=/etc"]
    );
}

/// personal-files' `$HOME` is root's home for the snap's daemons (snapd's rule is `owner @{HOME}/...`):
/// a path in another user's home is neither granted by it nor answered with it.
#[test]
fn personal_files_grants_and_suggests_roots_home_only() {
    let mut own = spec();
    add_mount(&mut own, "/root/.kube", &["rbind", "rw"]);
    let (verdict, _) = run(&own, &perms(&["network-control"]));
    assert_eq!(
        verdict.violations[0].interfaces,
        [
            "personal-files:write=$HOME/.kube",
            "system-files:write=/root/.kube"
        ]
    );
    let granted = perms(&["network-control", "personal-files:write=$HOME/.kube"]);
    let (verdict, _) = run(&own, &granted);
    assert_eq!(
        verdict.outcome(),
        Outcome::Allowed,
        "{:#?}",
        verdict.violations
    );

    let mut other = spec();
    add_mount(&mut other, "/home/alice/.kube", &["rbind", "rw"]);
    let (verdict, _) = run(&other, &perms(&["network-control"]));
    assert_eq!(rules(&verdict), ["mount.host-path"]);
    assert!(
        verdict.violations[0]
            .interfaces
            .iter()
            .all(|plug| !plug.starts_with("personal-files")),
        "{:?}",
        verdict.violations[0].interfaces
    );
    let (verdict, _) = run(&other, &granted);
    assert_eq!(rules(&verdict), ["mount.host-path"]);
}

#[test]
fn path_edge_cases_are_resolved_on_the_host_and_compared_by_component() {
    let perms = perms(&[
        "network-control",
        "home:read=all",
        "system-files:write=/srv/data",
    ]);
    let cases: &[(&str, bool)] = &[
        ("/home/alice/Music", true),
        ("/home/alice/Music/", true),
        ("//home/alice//Music", true),
        ("/home/alice", false),           // contains hidden files
        ("/home/alice/.ssh", false),      // hidden
        ("/home/alice/../../etc", false), // resolves to /etc
        ("/srv/data", true),
        ("/srv/data/sub", true),
        ("/srv/database", false), // a sibling sharing a prefix
        ("/srv/data/../../etc", false),
        ("/dev/../etc", false),
        ("/proc/1/root", false),
        ("/links/to-etc", false),    // symlink to /etc
        ("/links/to-root", false),   // symlink to /
        ("/links/into-data", true),  // symlink into a granted path
        ("/srv/data/escape", false), // symlink out of a granted path
    ];
    for (source, allowed) in cases {
        let mut s = spec();
        add_mount(&mut s, source, &["rbind", "ro"]);
        let bytes = serde_json::to_vec(&s).unwrap();
        let mut document = strict_policy::parse_spec(&bytes).unwrap();
        let host = host()
            .symlink("/links/to-etc", "/etc")
            .symlink("/links/to-root", "/")
            .symlink("/links/into-data", "/srv/data/x")
            .symlink("/srv/data/escape", "/etc");
        let verdict = strict_policy::evaluate(&mut document.spec, &perms, &host);
        assert_eq!(
            verdict.runs(),
            *allowed,
            "{source}: {:#?}",
            verdict.violations
        );
    }
}

#[test]
fn protected_paths_are_refused_whatever_is_connected_and_so_is_what_contains_them() {
    let perms = perms(&[
        "network-control",
        "system-files:read=/etc,read=/var/lib/kubelet,read=/proc",
    ]);
    let host = host()
        .file("/etc/kubernetes/admin.conf")
        .symlink("/proc/self/root", "/");
    for (source, expected) in [
        ("/var/lib/kubelet/pki", "is protected: the kubelet's state"),
        ("/proc/1/root", "is protected: the host's processes"),
        // Through a magic link, on a host where it resolves to a granted path: judged as written.
        ("/proc/self/root/etc", "is protected: the host's processes"),
        ("/etc", "contains /etc/kubernetes, which is protected"),
        ("/", "contains /etc/kubernetes, which is protected"),
        (
            "/run/containerd/containerd.sock",
            "is protected: containerd's state and sockets",
        ),
    ] {
        let mut s = spec();
        add_mount(&mut s, source, &["rbind", "ro"]);
        let (verdict, _) = run_on(&s, &perms, &host);
        assert_eq!(rules(&verdict), ["mount.protected"], "{source}");
        let sentence = verdict.violations[0].sentence();
        assert!(sentence.contains(expected), "{source}: {sentence}");
        assert!(
            sentence.ends_with("no interface can grant it"),
            "{sentence}"
        );
    }
}

#[test]
fn pod_owned_sources_follow_the_configured_node_layout() {
    let microk8s =
        "/var/snap/microk8s/common/var/lib/kubelet/pods/0a1b/volumes/kubernetes.io~secret/token";
    let mut s = spec();
    add_mount(&mut s, microk8s, &["rbind", "ro"]);
    let (verdict, _) = run(&s, &perms(&["network-control"]));
    assert!(verdict.runs(), "{:#?}", verdict.violations);

    let mut config = PolicyConfig::default();
    config.node.kubelet_roots = vec!["/data/kubelet".into()];
    let perms = perms_with(&["network-control"], config);
    let (verdict, _) = run(&s, &perms);
    // /var/lib/kubelet is no kubelet root any more: its volume is now an ordinary host path.
    assert_eq!(
        rules(&verdict),
        ["mount.host-path", "mount.protected"],
        "the snap's data is protected"
    );
    let mut s = spec();
    s["mounts"].as_array_mut().unwrap().truncate(4);
    add_mount(
        &mut s,
        "/data/kubelet/pods/0a1b/etc-hosts",
        &["rbind", "rw"],
    );
    assert!(run(&s, &perms).0.runs());
    let mut s = spec();
    s["mounts"].as_array_mut().unwrap().truncate(4);
    add_mount(
        &mut s,
        "/data/kubelet/pods/0a/volume-subpaths/v/c/0",
        &["rbind", "rw"],
    );
    // A subPath is judged by what it exposes; nothing is mounted there on this fake host.
    assert_eq!(rules(&run(&s, &perms).0), ["mount.subpath"]);
}

#[test]
fn shared_propagation_needs_a_grant_that_permits_it() {
    let mut s = spec();
    add_mount(&mut s, "/media/usb", &["rbind", "rshared", "rw"]);
    s["linux"]["rootfsPropagation"] = json!("rshared");
    let (verdict, _) = run(&s, &perms(&["network-control", "removable-media"]));
    assert!(verdict.runs(), "{:#?}", verdict.violations);

    let mut s = spec();
    add_mount(&mut s, "/mnt/disk", &["rbind", "rshared", "rw"]);
    s["linux"]["rootfsPropagation"] = json!("rshared");
    let (verdict, _) = run(&s, &perms(&["network-control", "removable-media"]));
    assert_eq!(rules(&verdict), ["mount.propagation", "mount.propagation"]);
    assert_eq!(verdict.violations[1].field, "linux.rootfsPropagation");

    let mut s = spec();
    add_mount(&mut s, "/mnt/disk", &["rbind", "rslave", "rw"]);
    assert!(run(&s, &perms(&["network-control", "removable-media"]))
        .0
        .runs());
}

#[test]
fn mount_types_and_writable_kernel_filesystems() {
    let mut s = spec();
    s["mounts"]
        .as_array_mut()
        .unwrap()
        .push(json!({"destination": "/nfs", "type": "nfs", "source": "srv:/x"}));
    s["mounts"][2]["options"] = json!(["nosuid", "rw"]);
    s["mounts"]
        .as_array_mut()
        .unwrap()
        .push(json!({"destination": "/sys/fs/cgroup", "type": "cgroup2", "source": "cgroup"}));
    let (verdict, out) = run(&s, &perms(&["network-control"]));
    assert_eq!(rules(&verdict), ["mount.type"]);
    assert!(verdict.violations[0]
        .sentence()
        .contains("mounts[5] mounts a nfs filesystem at /nfs"));
    assert_eq!(out["mounts"][2]["options"], json!(["nosuid", "ro"]));
    let narrowed: Vec<&str> = verdict.narrowed.iter().map(|n| n.rule).collect();
    assert_eq!(narrowed, ["mount.read-only", "mount.read-only"]);
}

#[test]
fn devices_nodes_and_cgroup_rules() {
    let mut s = spec();
    s["linux"]["devices"] = json!([{"path": "/dev/kvm", "type": "c", "major": 10, "minor": 232}]);
    s["linux"]["resources"]["devices"]
        .as_array_mut()
        .unwrap()
        .push(json!({"allow": true, "type": "c", "major": 10, "minor": 232, "access": "rwm"}));
    let (verdict, _) = run(&s, &perms(&["network-control"]));
    assert_eq!(rules(&verdict), ["device.node", "device.cgroup"]);
    assert_eq!(verdict.violations[0].interfaces, ["kvm"]);
    assert_eq!(verdict.violations[1].interfaces, ["kvm"]);
    assert!(run(&s, &perms(&["network-control", "kvm"])).0.runs());

    // A node named by path only is checked against the host's numbers.
    let perms = perms(&["network-control", "serial-port:path=/dev/ttyUSB0"]);
    let mut s = spec();
    s["linux"]["devices"] =
        json!([{"path": "/dev/ttyUSB0", "type": "c", "major": 188, "minor": 0}]);
    s["linux"]["resources"]["devices"]
        .as_array_mut()
        .unwrap()
        .push(json!({"allow": true, "type": "c", "major": 188, "minor": 0, "access": "rwm"}));
    assert!(
        run(&s, &perms).0.runs(),
        "{:#?}",
        run(&s, &perms).0.violations
    );
    s["linux"]["devices"] = json!([{"path": "/dev/ttyUSB0", "type": "b", "major": 8, "minor": 0}]);
    let (verdict, _) = run(&s, &perms);
    assert!(!verdict.runs());

    // Allow-all is privileged territory; mknod-only wildcards are harmless.
    let mut s = spec();
    s["linux"]["resources"]["devices"] = json!([{"allow": true, "access": "rwm"}]);
    let (verdict, _) = run(&s, &perms);
    assert_eq!(rules(&verdict), ["device.cgroup"]);
    assert_eq!(
        verdict.violations[0].interfaces,
        ["docker-support:privileged-containers=true"]
    );
    s["linux"]["resources"]["devices"] = json!([{"allow": true, "type": "c", "access": "m"}]);
    assert!(run(&s, &perms).0.runs());
}

#[test]
fn a_device_reached_through_a_bind_mount_is_judged_as_a_device() {
    let mut s = spec();
    add_mount(&mut s, "/dev/kvm", &["rbind", "rw"]);
    let (verdict, _) = run(&s, &perms(&["network-control"]));
    assert_eq!(rules(&verdict), ["mount.device"]);
    assert!(verdict.violations[0]
        .sentence()
        .contains("is the host's device c 10:232"));
    assert!(run(&s, &perms(&["network-control", "kvm"])).0.runs());
    let mut s = spec();
    add_mount(&mut s, "/dev", &["rbind", "rw"]);
    assert!(!run(&s, &perms(&["network-control", "kvm"])).0.runs());
}

#[test]
fn privileged_is_recognised_by_its_effects() {
    let mut s = spec();
    let all = json!([
        "CAP_SYS_ADMIN",
        "CAP_SYS_MODULE",
        "CAP_SYS_RAWIO",
        "CAP_MAC_ADMIN",
        "CAP_CHOWN"
    ]);
    s["process"]["capabilities"] = json!({"bounding": all, "effective": all, "permitted": all});
    s["linux"]["maskedPaths"] = json!([]);
    s["linux"]["readonlyPaths"] = json!([]);
    s["linux"].as_object_mut().unwrap().remove("seccomp");
    s["mounts"][2]["options"] = json!(["nosuid", "rw"]);
    s["linux"]["resources"]["devices"] = json!([{"allow": true, "access": "rwm"}]);
    let (verdict, _) = run(&s, &perms(&["network-control"]));
    assert_eq!(
        rules(&verdict),
        ["privileged"],
        "one violation, not one per effect"
    );
    let sentence = verdict.violations[0].sentence();
    assert!(sentence.starts_with("the container is privileged (all capabilities, no masked or read-only paths, writable /sys, no seccomp filter, every host device)"), "{sentence}");
    assert!(
        sentence.contains("docker-support (privileged-containers: true)"),
        "{sentence}"
    );

    // The plug alone is not enough; with the operator's consent the effects pass untouched.
    let plugged = perms(&[
        "network-control",
        "docker-support:privileged-containers=true",
    ]);
    let (verdict, _) = run(&s, &plugged);
    assert!(verdict.violations[0]
        .sentence()
        .contains("allow_privileged is off"));
    let config = PolicyConfig {
        allow_privileged: true,
        ..PolicyConfig::default()
    };
    let consenting = perms_with(
        &[
            "network-control",
            "docker-support:privileged-containers=true",
        ],
        config,
    );
    let (verdict, out) = run(&s, &consenting);
    assert_eq!(verdict.outcome(), Outcome::Allowed, "{:#?}", verdict);
    assert!(out["linux"].get("seccomp").is_none());
    // Mounts are still judged.
    add_mount(&mut s, "/var/lib/kubelet", &["rbind", "rw"]);
    assert_eq!(rules(&run(&s, &consenting).0), ["mount.protected"]);
}

#[test]
fn namespaces_missing_or_pointing_at_the_host_need_grants() {
    let mut s = spec();
    s["linux"]["namespaces"] =
        json!([{"type": "pid"}, {"type": "ipc"}, {"type": "mount"}, {"type": "cgroup"}]);
    let (verdict, _) = run(&s, &perms(&[]));
    assert_eq!(rules(&verdict), ["namespace.host", "namespace.host"]);
    assert_eq!(verdict.violations[0].value, "host network");
    assert_eq!(verdict.violations[0].interfaces, ["network-control"]);
    assert_eq!(verdict.violations[1].value, "host uts");
    assert!(run(&s, &perms(&["network-control"])).0.runs());

    let mut s = spec();
    s["linux"]["namespaces"][0] = json!({"type": "pid", "path": "/proc/1/ns/pid"});
    s["linux"]["namespaces"][1] = json!({"type": "ipc", "path": "/proc/1/ns/ipc"});
    s["linux"]["namespaces"][4] = json!({"type": "network", "path": "/proc/4242/ns/net"});
    let (verdict, _) = run(&s, &perms(&["network-control"]));
    assert_eq!(rules(&verdict), ["namespace.host", "namespace.host"]);
    assert_eq!(verdict.violations[0].field, "linux.namespaces[0].path");
    assert_eq!(
        verdict.violations[0].interfaces,
        ["system-observe + process-control"]
    );
    assert!(verdict.violations[0]
        .sentence()
        .contains("connect system-observe and process-control"));
    assert!(verdict.violations[1]
        .sentence()
        .ends_with("no snap interface grants it"));

    let mut s = spec();
    s["linux"]["namespaces"][4] = json!({"type": "network", "path": "/proc/9999/ns/net"});
    assert_eq!(
        rules(&run(&s, &perms(&["network-control"])).0),
        ["namespace.path"]
    );
}

#[test]
fn an_app_container_joins_only_its_own_pods_namespaces() {
    use strict_policy::{evaluate_in, Context, PodNamespaces};
    let host = common::host();
    // Pod A's sandbox is process 4242; process 1 is the host.
    let mut pod = PodNamespaces {
        sandbox_id: "pod-a".into(),
        ..PodNamespaces::default()
    };
    add_process_namespaces(&mut pod, &host, 4242);
    assert_eq!(
        pod.ids.len(),
        strict_policy::profile::schema::HostNamespace::ALL.len()
    );
    let eval = |s: &serde_json::Value, pod: Option<&PodNamespaces>| {
        let mut spec: oci_spec::runtime::Spec = serde_json::from_value(s.clone()).unwrap();
        let owner = strict_policy::PodOwner::claimed(&spec);
        let context = Context {
            pod,
            owner: owner.as_ref(),
            ..Context::default()
        };
        evaluate_in(&mut spec, &perms(&[]), &host, &context)
    };
    let mut s = spec();
    for (index, kind) in [(0, "pid"), (1, "ipc"), (2, "uts"), (4, "net")] {
        let typ = if kind == "net" { "network" } else { kind };
        s["linux"]["namespaces"][index] =
            json!({"type": typ, "path": format!("/proc/4242/ns/{kind}")});
    }
    assert!(eval(&s, Some(&pod)).runs(), "its own sandbox's namespaces");

    // Another pod's sandbox (not the host's namespaces either) is refused for a pod's container, and
    // left alone for a container outside any pod (ctr --with-ns), as before.
    let other = PodNamespaces {
        sandbox_id: "pod-b".into(),
        ..PodNamespaces::default()
    };
    let verdict = eval(&s, Some(&other));
    assert_eq!(
        rules(&verdict),
        [
            "namespace.foreign",
            "namespace.foreign",
            "namespace.foreign",
            "namespace.foreign"
        ]
    );
    assert_eq!(
        verdict.violations[0].sentence(),
        "linux.namespaces[0].path /proc/4242/ns/pid is not a pid namespace of this pod (sandbox \
         pod-b); a container may join only its own pod's namespaces"
    );
    assert!(eval(&s, None).runs());

    // The host's namespaces stay the host's: a pod whose sandbox has them (a hostNetwork pod that was
    // allowed) passes its containers; any other pod needs the grant.
    let mut host_pod = PodNamespaces {
        sandbox_id: "pod-h".into(),
        ..PodNamespaces::default()
    };
    add_process_namespaces(&mut host_pod, &host, 1);
    let mut s = spec();
    s["linux"]["namespaces"][4] = json!({"type": "network", "path": "/proc/1/ns/net"});
    assert!(eval(&s, Some(&host_pod)).runs());
    assert_eq!(rules(&eval(&s, Some(&other))), ["namespace.host"]);
}

#[test]
fn a_subpath_is_judged_by_the_host_path_it_exposes() {
    const SUBPATHS: &str = "/var/lib/kubelet/pods/0a1b/volume-subpaths";
    let host = common::host()
        .file("/etc/hostname")
        .bind_mount(&format!("{SUBPATHS}/etc/app/0"), "/etc")
        .bind_mount(
            &format!("{SUBPATHS}/cfg/app/1"),
            "/var/lib/kubelet/pods/0a1b/volumes/kubernetes.io~configmap/cfg/..data/app.conf",
        )
        .file("/var/lib/kubelet/pods/0a1b/volumes/kubernetes.io~configmap/cfg/..data/app.conf");
    let run_here = |source: &str| {
        let mut s = spec();
        add_mount(&mut s, source, &["rbind", "ro"]);
        common::run_on(&s, &perms(&[]), &host).0
    };
    let verdict = run_here(&format!("{SUBPATHS}/etc/app/0"));
    assert_eq!(rules(&verdict), ["mount.host-path"]);
    assert!(
        verdict.violations[0].sentence().starts_with(
            "mounts[5] host path /etc (read-only) is outside the connected interfaces"
        ),
        "{}",
        verdict.violations[0].sentence()
    );
    assert!(
        run_here(&format!("{SUBPATHS}/cfg/app/1")).runs(),
        "a configMap subPath is the pod's"
    );
    let verdict = run_here(&format!("{SUBPATHS}/gone/app/2"));
    assert_eq!(rules(&verdict), ["mount.subpath"]);
    assert!(verdict.violations[0]
        .sentence()
        .contains("nothing is mounted there"));
}

#[test]
fn a_missing_cgroup_namespace_is_added() {
    let mut s = spec();
    s["linux"]["namespaces"].as_array_mut().unwrap().pop();
    let (verdict, out) = run(&s, &perms(&["network-control"]));
    assert_eq!(verdict.outcome(), Outcome::Narrowed);
    assert_eq!(out["linux"]["namespaces"][5], json!({"type": "cgroup"}));
}

#[test]
fn hooks_only_when_configured() {
    let mut s = spec();
    s["hooks"] =
        json!({"createRuntime": [{"path": "/usr/bin/nvidia-ctk", "args": ["nvidia-ctk", "hook"]}]});
    let (verdict, _) = run(&s, &perms(&["network-control"]));
    assert_eq!(rules(&verdict), ["hook"]);
    assert_eq!(verdict.violations[0].field, "hooks.createRuntime[0].path");
    let config = PolicyConfig {
        allowed_hooks: vec!["/usr/bin/nvidia-ctk".into()],
        ..PolicyConfig::default()
    };
    assert!(run(&s, &perms_with(&["network-control"], config)).0.runs());
}

#[test]
fn sysctls_safe_list_plus_grants() {
    let mut s = spec();
    s["linux"]["sysctl"] = json!({"net.ipv4.ping_group_range": "0 2147483647", "net/ipv4/ip_forward": "1",
                                  "kernel.msgmax": "65536"});
    let (verdict, _) = run(&s, &perms(&[]));
    assert_eq!(rules(&verdict), ["sysctl", "sysctl"]);
    assert_eq!(verdict.violations[0].field, "linux.sysctl.kernel.msgmax");
    assert_eq!(verdict.violations[1].interfaces, ["network-control"]);
    let (verdict, _) = run(&s, &perms(&["network-control"]));
    assert_eq!(rules(&verdict), ["sysctl"]);
}

#[test]
fn masked_paths_and_apparmor_are_restored() {
    let mut s = spec();
    s["linux"]["maskedPaths"] = json!([]);
    s["linux"]["readonlyPaths"] = json!(["/proc/sys"]);
    let config = PolicyConfig {
        apparmor_profile: Some("cri-containerd.apparmor.d".into()),
        ..PolicyConfig::default()
    };
    let (verdict, out) = run(&s, &perms_with(&["network-control"], config));
    assert_eq!(verdict.outcome(), Outcome::Narrowed);
    assert_eq!(
        out["linux"]["maskedPaths"],
        json!(["/proc/kcore", "/proc/keys"])
    );
    assert_eq!(
        out["linux"]["readonlyPaths"],
        json!(["/proc/sys", "/proc/bus"])
    );
    assert_eq!(
        out["process"]["apparmorProfile"],
        "cri-containerd.apparmor.d"
    );
}

#[test]
fn seccomp_is_intersected_keeping_arguments_and_denials() {
    let mut s = spec();
    let rules_json = s["linux"]["seccomp"]["syscalls"].as_array_mut().unwrap();
    rules_json[0]["names"].as_array_mut().unwrap().extend([
        json!("ptrace"),
        json!("unshare"),
        json!("no_such_call"),
    ]);
    rules_json.push(json!({"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}));
    s["linux"]["seccomp"]["flags"] = json!([]);
    let (verdict, out) = run(&s, &perms(&["network-control"]));
    assert_eq!(verdict.outcome(), Outcome::Narrowed);
    let seccomp = &out["linux"]["seccomp"];
    let allowed: Vec<&str> = seccomp["syscalls"][0]["names"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(
        allowed,
        [
            "read",
            "write",
            "openat",
            "close",
            "exit_group",
            "futex",
            "mmap",
            "execve"
        ]
    );
    assert_eq!(
        seccomp["syscalls"][1]["args"][0]["op"], "SCMP_CMP_MASKED_EQ",
        "argument filters kept"
    );
    assert_eq!(
        seccomp["syscalls"][3]["names"],
        json!(["personality"]),
        "explicit denials kept"
    );
    assert_eq!(seccomp["flags"], json!(["SECCOMP_FILTER_FLAG_LOG"]));
    let narrowed: Vec<(&str, &str)> = verdict
        .narrowed
        .iter()
        .map(|n| (n.rule, n.from.as_str()))
        .collect();
    assert!(
        narrowed.contains(&("seccomp.syscalls", "allow ptrace, unshare")),
        "{narrowed:?}"
    );
    assert_eq!(
        verdict
            .narrowed
            .iter()
            .filter(|n| n.rule == "seccomp.unknown-syscall")
            .count(),
        1
    );
    assert!(
        narrowed.contains(&("seccomp.unknown-syscall", "no_such_call")),
        "{narrowed:?}"
    );
}

#[test]
fn no_seccomp_filter_becomes_the_granted_set() {
    let mut s = spec();
    s["linux"].as_object_mut().unwrap().remove("seccomp");
    let (verdict, out) = run(&s, &perms(&["network-control"]));
    assert_eq!(verdict.narrowed[0].rule, "seccomp.unconfined");
    let seccomp = &out["linux"]["seccomp"];
    assert_eq!(seccomp["defaultAction"], "SCMP_ACT_ERRNO");
    assert_eq!(seccomp["defaultErrnoRet"], 1);
    let names: Vec<&str> = seccomp["syscalls"][0]["names"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(names.contains(&"accept4") && names.contains(&"read"));
    assert!(
        !names.contains(&"arm_fadvise64_64"),
        "unknown on x86 is left out"
    );
    assert_eq!(seccomp["syscalls"][1]["names"], json!(["clone"]));
    assert_eq!(seccomp["syscalls"][1]["args"][0]["value"], 2114060288u64);
    assert_eq!(
        seccomp["syscalls"][2],
        json!({"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38})
    );
}

#[test]
fn an_allow_by_default_filter_is_turned_around_keeping_its_denials() {
    let mut s = spec();
    s["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["write"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]});
    let (verdict, out) = run(&s, &perms(&["network-control"]));
    assert_eq!(verdict.outcome(), Outcome::Narrowed);
    let seccomp = &out["linux"]["seccomp"];
    assert_eq!(seccomp["defaultAction"], "SCMP_ACT_ERRNO");
    assert_eq!(seccomp["syscalls"][0]["names"], json!(["write"]));
    let allowed = seccomp["syscalls"][1]["names"].as_array().unwrap();
    assert!(
        !allowed.contains(&json!("write")),
        "a denial is never turned into an allow"
    );
    assert!(allowed.contains(&json!("read")));
}

#[test]
fn a_stricter_default_action_is_kept() {
    let mut s = spec();
    s["linux"]["seccomp"]["defaultAction"] = json!("SCMP_ACT_KILL_PROCESS");
    s["linux"]["seccomp"]
        .as_object_mut()
        .unwrap()
        .remove("defaultErrnoRet");
    let (verdict, out) = run(&s, &perms(&["network-control"]));
    assert_eq!(
        verdict.outcome(),
        Outcome::Allowed,
        "{:#?}",
        verdict.narrowed
    );
    assert_eq!(
        out["linux"]["seccomp"]["defaultAction"],
        "SCMP_ACT_KILL_PROCESS"
    );
}

#[test]
fn filtered_grants_combine_with_the_rule_arguments() {
    let mut s = spec();
    // clone allowed unconditionally by the spec (containerd does that with CAP_SYS_ADMIN).
    s["linux"]["seccomp"]["syscalls"][1] =
        json!({"names": ["clone", "getpid"], "action": "SCMP_ACT_ALLOW"});
    let (verdict, out) = run(&s, &perms(&["network-control"]));
    assert_eq!(verdict.outcome(), Outcome::Narrowed);
    let rules_out = out["linux"]["seccomp"]["syscalls"].as_array().unwrap();
    assert_eq!(rules_out[1]["names"], json!(["getpid"]));
    assert_eq!(rules_out[2]["names"], json!(["clone"]));
    assert_eq!(rules_out[2]["args"][0]["value"], 2114060288u64);
}

#[test]
fn narrowing_is_idempotent() {
    let mut s = spec();
    s["linux"]["seccomp"]["syscalls"][0]["names"]
        .as_array_mut()
        .unwrap()
        .push(json!("ptrace"));
    s["linux"]["maskedPaths"] = json!([]);
    s["linux"]["namespaces"].as_array_mut().unwrap().pop();
    s["mounts"][2]["options"] = json!(["rw"]);
    let perms = perms(&[]);
    let (first, once) = run(&s, &perms);
    assert_eq!(first.outcome(), Outcome::Narrowed);
    let (second, twice) = run(&once, &perms);
    assert_eq!(second.outcome(), Outcome::Allowed, "{:#?}", second.narrowed);
    assert_eq!(once, twice);

    let mut unconfined = spec();
    unconfined["linux"]
        .as_object_mut()
        .unwrap()
        .remove("seccomp");
    let (_, once) = run(&unconfined, &perms);
    let (second, twice) = run(&once, &perms);
    assert_eq!(second.outcome(), Outcome::Allowed, "{:#?}", second.narrowed);
    assert_eq!(once, twice);
}

#[test]
fn every_violation_is_listed_in_a_stable_order() {
    let mut s = spec();
    add_mount(&mut s, "/etc", &["rbind", "ro"]);
    s["hooks"] = json!({"prestart": [{"path": "/bin/true"}]});
    s["linux"]["sysctl"] = json!({"kernel.msgmax": "1", "kernel.sem": "1"});
    s["process"]["capabilities"]["bounding"]
        .as_array_mut()
        .unwrap()
        .push(json!("CAP_BPF"));
    let (first, _) = run(&s, &perms(&["network-control"]));
    let expected = ["hook", "mount.host-path", "capability", "sysctl", "sysctl"];
    assert_eq!(rules(&first), expected);
    for _ in 0..5 {
        assert_eq!(rules(&run(&s, &perms(&["network-control"])).0), expected);
    }
    let message = first.refusal_message().unwrap();
    assert!(
        message.lines().next().unwrap().ends_with("(+4 more)"),
        "{message}"
    );
    assert_eq!(message.lines().count(), 5);
}

#[test]
fn unknown_fields_are_refused() {
    let mut s = spec();
    s["linux"]["futureEscape"] = json!(true);
    let bytes = serde_json::to_vec(&s).unwrap();
    let mut document = strict_policy::parse_spec(&bytes).unwrap();
    let verdict =
        strict_policy::evaluate_document(&mut document, &perms(&["network-control"]), &host());
    assert_eq!(rules(&verdict), ["spec.unknown-field"]);
    assert_eq!(verdict.violations[0].field, "linux.futureEscape");
}

#[test]
fn rootfs_outside_the_bundle_is_judged_as_a_host_path() {
    let mut s = spec();
    s["root"] = json!({"path": "/", "readonly": true});
    assert_eq!(
        rules(&run(&s, &perms(&["network-control"])).0),
        ["mount.protected"]
    );
    s["root"] = json!({"path": "../../etc"});
    assert_eq!(
        rules(&run(&s, &perms(&["network-control"])).0),
        ["mount.rootfs"]
    );
}

#[test]
fn bad_plugs_are_errors_not_verdicts() {
    let catalog = std::sync::Arc::new(catalog());
    for bad in [
        "nope",
        "home:read=some",
        "home:colour=red",
        "serial-port",
        "serial-port:path=/dev/sda",
        "system-files:read=relative",
        "system-files:read=/etc/../root",
        "personal-files:write=/etc",
    ] {
        let plug = strict_policy::Plug::parse(bad).unwrap();
        let result = strict_policy::Permissions::new(
            catalog.clone(),
            PolicyConfig::default(),
            vec![plug],
            "t",
        );
        assert!(result.is_err(), "{bad} should be refused");
    }
}

#[test]
fn x32_leaves_the_filter_no_interface_grants_it() {
    // containerd's RuntimeDefault lists x32; snapd's filters on amd64 never do.
    let mut asked = spec();
    asked["linux"]["seccomp"]["architectures"] =
        json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]);
    let (verdict, out) = run(&asked, &perms(&["network-control"]));
    assert_eq!(verdict.outcome(), Outcome::Narrowed, "{verdict:#?}");
    assert_eq!(verdict.narrowed.len(), 1, "{verdict:#?}");
    assert_eq!(verdict.narrowed[0].rule, "seccomp.architectures");
    assert_eq!(verdict.narrowed[0].from, "SCMP_ARCH_X32");
    assert_eq!(
        out["linux"]["seccomp"]["architectures"],
        json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"])
    );
    // A container without a filter gets one without x32 either.
    let mut unconfined = spec();
    unconfined["linux"]
        .as_object_mut()
        .unwrap()
        .remove("seccomp");
    let (_, out) = run(&unconfined, &perms(&["network-control"]));
    let arches = out["linux"]["seccomp"]["architectures"].as_array().unwrap();
    assert!(!arches.contains(&json!("SCMP_ARCH_X32")), "{arches:?}");
}
