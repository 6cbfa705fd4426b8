//! The snapctl source through the real shim and containerd. In a strictly confined MicroK8s, containerd
//! runs as one of the snap's daemons: `SNAP_NAME` and `SNAP_COOKIE` are in its environment, which its
//! shims and their gates inherit, and snapctl is on PATH. This binary's containerd runs so, against the
//! test bed's snapd 2.57 (no `--list`: one snapctl per plug, the harder path), and the gate's source is
//! `snapctl`. (integration/tests/snapd_live.rs covers both versions through strictctl and `snap run`.)

use std::path::{Path, PathBuf};
use std::process::Output;

use strict_integration::snapd::Snapd;
use strict_integration::{audit_records, testbed, text, Testbed, PATH_PREFIX_ENV};

/// The test bed's configuration with the snapctl source and its own audit trail.
fn snapctl_config(tb: &Testbed) -> (PathBuf, PathBuf) {
    let base = std::fs::read_to_string(tb.strict_config()).unwrap();
    let trail = tb.run_dir.join("snapctl-audit.log");
    let path = tb.run_dir.join("snapctl.toml");
    let body = base.replace("source = \"embedded\"\n", "").replace(
        &tb.audit_log().display().to_string(),
        &trail.display().to_string(),
    );
    std::fs::write(
        &path,
        format!("source = \"snapctl\"\nsource_timeout = \"5s\"\n{body}"),
    )
    .unwrap();
    (path, trail)
}

/// `ctr run --rm --device /dev/fuse` through the strict shim with `config`: prints "opened" when the
/// device opens.
fn run_with_fuse(tb: &Testbed, config: &Path) -> (String, Output) {
    tb.run_with_config(
        config,
        &["--device", "/dev/fuse"],
        &["sh", "-c", "exec 3</dev/fuse && echo opened"],
    )
}

#[test]
fn the_gate_asks_snapctl_in_the_snaps_environment() {
    let mut snapd = Snapd::start("stable");
    snapd.install_snap(&[]);
    for plug in ["network", "network-control", "fuse-support"] {
        let out = snapd.snap(&["connect", &format!("microk8s:{plug}")]);
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
    // SAFETY: set before the first thread of this binary that reads the environment (containerd is
    // spawned from `testbed()` below, after this); this binary has this one test.
    std::env::set_var("SNAP_NAME", "microk8s");
    std::env::set_var("SNAP_COOKIE", &snapd.cookie);
    std::env::set_var(PATH_PREFIX_ENV, &snapd.snapctl_dir);
    let tb = testbed();
    let (config, trail) = snapctl_config(tb);

    let (id, out) = run_with_fuse(tb, &config);
    assert!(out.status.success(), "{}: {}", text(&out.stderr), tb.log());
    assert_eq!(text(&out.stdout), "opened");
    let record = &audit_records(&trail, &id)[0];
    assert_eq!(
        record["permissions_source"].as_str().unwrap(),
        "snapctl is-connected (snap microk8s)",
        "{record}"
    );

    let out = snapd.snap(&["disconnect", "microk8s:fuse-support"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let (id, out) = run_with_fuse(tb, &config);
    assert!(!out.status.success(), "a disconnected device ran");
    assert!(
        text(&out.stderr).contains("connect fuse-support"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(audit_records(&trail, &id)[0]["decision"], "refused");

    // snapd stopped: snapctl cannot answer, the gate refuses with its words.
    snapd.daemon("stop");
    let (id, out) = run_with_fuse(tb, &config);
    snapd.daemon("start");
    assert!(!out.status.success(), "ran with snapd stopped");
    assert!(
        text(&out.stderr).contains("snapctl"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(audit_records(&trail, &id)[0]["decision"], "undecided");
}
