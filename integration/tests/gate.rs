//! The policy gate in the shim, through containerd: escape routes refused with their message before
//! anything starts, ordinary containers narrowed and running.

use strict_integration::{repo, testbed, text, unique, IMAGE, RUNC, STRICT};

#[test]
fn an_ordinary_container_runs_with_its_syscalls_narrowed() {
    let tb = testbed();
    let out = tb.run(
        STRICT,
        &[],
        &[
            "sh",
            "-c",
            "echo hello; grep Seccomp: /proc/self/status; unshare -U true; echo unshare=$?",
        ],
    );
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout} {}", text(&out.stderr));
    assert!(stdout.contains("hello"), "{stdout}");
    // The filter is installed before the workload's first instruction...
    assert!(stdout.contains("Seccomp:\t2"), "{stdout}");
    // ...and keeps user namespaces (unshare) out, as snapd does.
    assert!(stdout.contains("unshare=1"), "{stdout}");
    assert!(
        text(&out.stderr).contains("Operation not permitted"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn a_runtime_default_container_keeps_what_both_allow() {
    // RuntimeDefault reaches the shim through containerd's Go types; its argument filters (clone's flags,
    // socket's families) must survive the intersection, or nothing could fork.
    let out = testbed().run(
        STRICT,
        &["--seccomp"],
        &["sh", "-c", "echo forked=$(echo yes); grep Seccomp: /proc/self/status; unshare -U true; echo unshare=$?"],
    );
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout} {}", text(&out.stderr));
    assert!(stdout.contains("forked=yes"), "{stdout}");
    assert!(stdout.contains("Seccomp:\t2"), "{stdout}");
    assert!(stdout.contains("unshare=1"), "{stdout}");
}

#[test]
fn the_same_container_under_runc_is_not_narrowed() {
    // The comparison that shows the narrowing is the strict runtime's doing.
    let out = testbed().run(RUNC, &[], &["sh", "-c", "grep Seccomp: /proc/self/status"]);
    assert!(
        text(&out.stdout).contains("Seccomp:\t0"),
        "{}",
        text(&out.stdout)
    );
}

fn assert_refused(flags: &[&str], expected: &str) {
    let tb = testbed();
    let out = tb.run(STRICT, flags, &["true"]);
    let stderr = text(&out.stderr);
    assert!(!out.status.success(), "{flags:?} ran");
    assert!(stderr.contains("strict: refused: "), "{flags:?}: {stderr}");
    assert!(stderr.contains(expected), "{flags:?}: {stderr}");
}

#[test]
fn a_host_path_no_interface_grants_is_refused_with_the_interface_that_would() {
    assert_refused(
        &["--mount", "type=bind,src=/srv,dst=/srv,options=rbind:ro"],
        "mounts[7] host path /srv (read-only) is outside the connected interfaces; connect system-files (read: /srv) to allow it",
    );
}

#[test]
fn privileged_containers_are_refused_without_the_operators_consent() {
    assert_refused(&["--privileged"], "the container is privileged");
}

#[test]
fn a_device_without_its_interface_is_refused() {
    assert_refused(&["--device", "/dev/kvm"], "connect kvm to allow it");
}

#[test]
fn an_explicit_capability_no_interface_grants_is_refused() {
    assert_refused(&["--cap-add", "CAP_SYS_ADMIN"], "CAP_SYS_ADMIN");
}

#[test]
fn the_hosts_ipc_namespace_is_refused() {
    let mut host = std::process::Command::new("sleep")
        .arg("60")
        .spawn()
        .unwrap();
    let ns = format!("ipc:/proc/{}/ns/ipc", host.id());
    assert_refused(&["--with-ns", &ns], "the host's ipc namespace");
    let _ = host.kill();
    let _ = host.wait();
}

#[test]
fn a_shared_mount_is_refused() {
    std::fs::create_dir_all("/tmp/strict-it-shared").unwrap();
    assert_refused(
        &[
            "--mount",
            "type=bind,src=/tmp/strict-it-shared,dst=/s,options=rbind:rw:rshared",
        ],
        "mounts[7]",
    );
}

#[test]
fn a_refused_container_leaves_nothing_behind() {
    let tb = testbed();
    let id = unique("refused");
    let out = tb.ctr(&[
        "run",
        "--runtime",
        STRICT,
        "--privileged",
        IMAGE,
        &id,
        "true",
    ]);
    assert!(!out.status.success());
    assert!(text(&tb.ctr(&["tasks", "list", "-q"]).stdout)
        .lines()
        .all(|t| t != id));
    let bundle = tb.bundle(&id);
    let rootfs_mounted = std::fs::read_to_string("/proc/self/mounts")
        .unwrap()
        .contains(bundle.join("rootfs").to_str().unwrap());
    assert!(!rootfs_mounted, "the rootfs is still mounted");
    let runc_state = tb
        .run_dir
        .join("runc")
        .join(strict_integration::NAMESPACE)
        .join(&id);
    assert!(
        !runc_state.exists(),
        "runc state left at {}",
        runc_state.display()
    );
    tb.remove(&id);
}

#[test]
fn the_narrowed_spec_is_what_runc_got() {
    // The bundle's config.json after create is the narrowed one: default action errno, log flag or not.
    let tb = testbed();
    let id = unique("spec");
    let out = tb.ctr(&["run", "-d", "--runtime", STRICT, IMAGE, &id, "sleep", "60"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let spec: serde_json::Value =
        serde_json::from_slice(&std::fs::read(tb.bundle(&id).join("config.json")).unwrap())
            .unwrap();
    tb.remove(&id);
    assert_eq!(spec["linux"]["seccomp"]["defaultAction"], "SCMP_ACT_ERRNO");
    let namespaces: Vec<&str> = spec["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["type"].as_str().unwrap())
        .collect();
    assert!(namespaces.contains(&"cgroup"), "{namespaces:?}");
}

/// An app container of a pod may join its own pod's namespaces only. Through CRI containerd already
/// refuses a TARGET in another pod; a spec that reaches the shim anyway (NRI, a direct task API client)
/// is refused by the gate. The same path outside any pod (plain `ctr`) keeps the old rule: only the
/// host's namespaces need a grant.
#[test]
fn a_pods_container_may_not_join_another_processs_namespace() {
    let mut other = std::process::Command::new("unshare")
        .args(["--net", "sleep", "60"])
        .spawn()
        .expect("unshare (util-linux) runs; the tests run as root");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while std::fs::read_link(format!("/proc/{}/ns/net", other.id())).ok()
        == std::fs::read_link("/proc/self/ns/net").ok()
    {
        assert!(
            std::time::Instant::now() < deadline,
            "unshare --net did not take"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let ns = format!("network:/proc/{}/ns/net", other.id());
    assert_refused(
        &[
            "--annotation",
            "io.kubernetes.cri.container-type=container",
            "--annotation",
            "io.kubernetes.cri.sandbox-id=pod-x",
            "--with-ns",
            &ns,
        ],
        &format!(
            "/proc/{}/ns/net is not a network namespace of this pod (sandbox pod-x); a container may \
             join only its own pod's namespaces",
            other.id()
        ),
    );
    let out = testbed().run(STRICT, &["--with-ns", &ns], &["true"]);
    assert!(out.status.success(), "outside a pod: {}", text(&out.stderr));
    let _ = other.kill();
    let _ = other.wait();
}

#[test]
fn an_image_carrying_a_runc_breakout_precondition_is_refused_under_the_test_beds_runc() {
    // Debian 12's runc 1.1.5 has no fix for CVE-2025-31133: an image whose /dev/null is a symlink.
    let tb = testbed();
    let status = std::process::Command::new(repo().join("integration/testbed/images.sh"))
        .args(["build", "devnull-link"])
        .status()
        .unwrap();
    assert!(status.success(), "building the devnull-link image");
    let tar = repo().join(".testbed/images/devnull-link.tar");
    let out = tb.ctr(&["images", "import", tar.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let id = unique("breakout");
    let out = tb.ctr(&[
        "run",
        "--rm",
        "--runtime",
        STRICT,
        "localhost/strict/devnull-link:1",
        &id,
        "true",
    ]);
    let stderr = text(&out.stderr);
    assert!(!out.status.success(), "the breakout image ran");
    assert!(stderr.contains("strict: refused: "), "{stderr}");
    assert!(stderr.contains("CVE-2025-31133"), "{stderr}");
    assert!(stderr.contains("/dev/null"), "{stderr}");
    tb.remove(&id);
    // The same command with the ordinary image runs.
    let out = tb.run(STRICT, &[], &["true"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
}
