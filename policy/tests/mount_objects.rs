//! Issue 12's mount classes: unknown options, the object judged is the one opened (magic links and
//! missing components refused), read-only stays read-only below, sockets and FIFOs need a grant to write,
//! host device nodes are judged as the host's, pod-owned files are this pod's only, and the runtime's
//! known breakouts are refused where it has them.

mod common;

use common::{add_mount, host, perms, rules, run, run_on, spec};
use serde_json::json;
use strict_policy::{evaluate_in, Context, FakeHost, PodOwner};

#[test]
fn unknown_mount_options_are_refused_on_every_type() {
    // A tmpfs key on a bind, a made-up flag on a tmpfs, a cgroup v1 hierarchy by name.
    let mut s = spec();
    add_mount(&mut s, "/home/alice/data", &["rbind", "ro", "size=1g"]);
    assert_eq!(
        rules(&run(&s, &perms(&["home:read=all"])).0),
        ["mount.option"]
    );
    let mut s = spec();
    s["mounts"][1]["options"]
        .as_array_mut()
        .unwrap()
        .push(json!("x-strict-made-up"));
    assert_eq!(rules(&run(&s, &perms(&[])).0), ["mount.option"]);
    let mut s = spec();
    s["mounts"].as_array_mut().unwrap().push(json!({
        "destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
        "options": ["ro", "name=systemd"]}));
    assert_eq!(rules(&run(&s, &perms(&[])).0), ["mount.option"]);
    // What runc and containerd write runs.
    let mut s = spec();
    add_mount(
        &mut s,
        "/home/alice/data",
        &["rbind", "rprivate", "ro", "nosuid", "nodev", "noexec"],
    );
    assert!(run(&s, &perms(&["home:read=all"])).0.runs());
}

#[test]
fn magic_links_and_missing_sources_are_refused() {
    // /proc/PID/root and /dev/fd/N lead into another process's files, whose names look granted: as
    // written they are in /proc (protected); reached through a granted symlink they are magic links.
    let mut s = spec();
    add_mount(&mut s, "/proc/4242/root/home/alice/data", &["rbind", "ro"]);
    assert_eq!(
        rules(&run(&s, &perms(&["home:read=all"])).0),
        ["mount.protected"]
    );
    for target in ["/proc/4242/root/home/alice/data", "/proc/self/fd/3"] {
        let linked = host().symlink("/home/alice/link", target);
        let mut s = spec();
        add_mount(&mut s, "/home/alice/link", &["rbind", "ro"]);
        let (verdict, _) = run_on(&s, &perms(&["home:read=all"]), &linked);
        assert_eq!(rules(&verdict), ["mount.host-path"], "{target}");
        assert!(
            verdict.violations[0].summary.contains("magic link"),
            "{:?}",
            verdict.violations
        );
    }
    // A tail that does not exist yet could become a symlink to /etc after the check.
    let later = host().missing("/home/alice/later");
    let mut s = spec();
    add_mount(&mut s, "/home/alice/later/x", &["rbind", "ro"]);
    let (verdict, _) = run_on(&s, &perms(&["home:read=all"]), &later);
    assert_eq!(rules(&verdict), ["mount.host-path"]);
    assert!(verdict.violations[0].summary.contains("does not exist"));
}

#[test]
fn a_read_only_rbind_over_submounts_becomes_recursive_or_is_refused() {
    let host = host().bind_mount("/home/alice/media/usb", "/srv/usb");
    let mut s = spec();
    add_mount(&mut s, "/home/alice/media", &["rbind", "rprivate", "ro"]);
    let (verdict, out) = run_on(&s, &perms(&["home:read=all"]), &host);
    assert!(verdict.runs(), "{:?}", verdict.violations);
    assert!(verdict.narrowed.iter().any(|n| n.rule == "mount.read-only"));
    assert_eq!(
        out["mounts"][5]["options"],
        json!(["rbind", "rprivate", "ro", "rro"])
    );
    // A runtime without rro: refused.
    let mut no_rro = perms(&["home:read=all"]);
    no_rro.recursive_read_only = false;
    assert_eq!(rules(&run_on(&s, &no_rro, &host).0), ["mount.read-only"]);
    // Nothing below, or a plain bind: unchanged.
    let mut s = spec();
    add_mount(&mut s, "/home/alice/docs", &["rbind", "ro"]);
    let read_only_narrowed =
        |v: &strict_policy::Verdict| v.narrowed.iter().any(|n| n.rule == "mount.read-only");
    let (verdict, _) = run_on(&s, &no_rro, &host);
    assert!(
        verdict.runs() && !read_only_narrowed(&verdict),
        "{verdict:?}"
    );
    let mut s = spec();
    add_mount(&mut s, "/home/alice/media", &["bind", "ro"]);
    let (verdict, _) = run_on(&s, &no_rro, &host);
    assert!(
        verdict.runs() && !read_only_narrowed(&verdict),
        "{verdict:?}"
    );
}

#[test]
fn sockets_and_fifos_need_a_grant_to_write() {
    let host = host()
        .socket("/home/alice/agent.sock")
        .fifo("/home/alice/pipe");
    for source in ["/home/alice/agent.sock", "/home/alice/pipe"] {
        let mut s = spec();
        add_mount(&mut s, source, &["rbind", "ro"]);
        let (verdict, _) = run_on(&s, &perms(&["home:read=all"]), &host);
        assert_eq!(rules(&verdict), ["mount.socket"], "{source}");
    }
    // A directory under the same read grant is fine.
    let mut s = spec();
    add_mount(&mut s, "/home/alice/docs", &["rbind", "ro"]);
    assert!(run_on(&s, &perms(&["home:read=all"]), &host).0.runs());
}

#[test]
fn host_device_nodes_are_the_hosts_and_never_shared() {
    use strict_policy::profile::schema::DeviceType;
    let host = host()
        .device("/dev/pts/3", DeviceType::Char, 136, 3)
        .device("/dev/console", DeviceType::Char, 5, 1)
        .device("/dev/null", DeviceType::Char, 1, 3)
        .device("/home/alice/kvm", DeviceType::Char, 10, 232);
    // The host's terminals: the base's grants are for the container's own ptys and console.
    for source in ["/dev/pts/3", "/dev/console"] {
        let mut s = spec();
        add_mount(&mut s, source, &["bind", "rw"]);
        assert_eq!(
            rules(&run_on(&s, &perms(&[]), &host).0),
            ["mount.device"],
            "{source}"
        );
    }
    // /dev/null is the same device for every container.
    let mut s = spec();
    add_mount(&mut s, "/dev/null", &["bind", "rw"]);
    assert!(run_on(&s, &perms(&[]), &host).0.runs());
    // A device node inside a granted directory is still the device.
    let mut s = spec();
    add_mount(&mut s, "/home/alice/kvm", &["bind", "ro"]);
    assert_eq!(
        rules(&run_on(&s, &perms(&["home:read=all"]), &host).0),
        ["mount.device"]
    );
    // A granted device bound rshared would unlock shared rootfs propagation.
    let mut s = spec();
    add_mount(&mut s, "/dev/kvm", &["bind", "rw", "rshared"]);
    s["linux"]["rootfsPropagation"] = json!("rshared");
    let found = rules(&run_on(&s, &perms(&["kvm"]), &host).0);
    assert_eq!(found, ["mount.propagation", "mount.propagation"]);
}

#[test]
fn pod_owned_files_are_this_pods_only() {
    let eval = |s: &serde_json::Value, owner: Option<&PodOwner>| {
        let mut spec: oci_spec::runtime::Spec = serde_json::from_value(s.clone()).unwrap();
        let context = Context {
            owner,
            ..Context::default()
        };
        evaluate_in(&mut spec, &perms(&[]), &host(), &context)
    };
    let s = spec();
    let own = PodOwner {
        sandbox_id: "abc".into(),
        pod_uid: Some("0a1b".into()),
    };
    assert!(eval(&s, Some(&own)).runs());
    // Another pod's sandbox files and volumes (its secrets, its service-account token).
    let other = PodOwner {
        sandbox_id: "def".into(),
        pod_uid: Some("9z9z".into()),
    };
    let found = rules(&eval(&s, Some(&other)));
    assert_eq!(found, ["mount.protected", "mount.protected"]);
    // Outside CRI nothing is a pod's own.
    assert_eq!(
        rules(&eval(&s, None)),
        ["mount.protected", "mount.protected"]
    );
    // Without annotations `evaluate` has no pod either.
    let mut s = spec();
    s.as_object_mut().unwrap().remove("annotations");
    assert_eq!(rules(&run(&s, &perms(&[])).0).len(), 2);
}

#[test]
fn the_runtimes_known_breakouts_are_refused_where_it_has_them() {
    let rootfs = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(rootfs.path().join("dev")).unwrap();
    std::os::unix::fs::symlink(
        "/proc/sys/kernel/core_pattern",
        rootfs.path().join("dev/null"),
    )
    .unwrap();
    let layers = [rootfs.path().to_owned()];
    let eval = |perms: &strict_policy::Permissions| {
        let mut spec: oci_spec::runtime::Spec = serde_json::from_value(spec()).unwrap();
        let context = Context {
            rootfs_layers: &layers,
            ..Context::default()
        };
        evaluate_in(&mut spec, perms, &FakeHost::default(), &context)
    };
    let mut old_runc = perms(&[]);
    old_runc.unfixed_breakouts =
        strict_policy::runtime_advisories::unfixed("runc", Some("1.1.5+ds1"));
    let verdict = eval(&old_runc);
    let breakouts: Vec<_> = verdict
        .violations
        .iter()
        .filter(|v| v.rule == "runtime.breakout")
        .collect();
    assert_eq!(breakouts.len(), 1, "{:?}", verdict.violations);
    assert!(
        breakouts[0].summary.contains("CVE-2025-31133"),
        "{}",
        breakouts[0].summary
    );
    // A fixed runtime runs the same image.
    let mut new_runc = perms(&[]);
    new_runc.unfixed_breakouts = strict_policy::runtime_advisories::unfixed("runc", Some("1.3.3"));
    assert!(!eval(&new_runc)
        .violations
        .iter()
        .any(|v| v.rule == "runtime.breakout"));
}
