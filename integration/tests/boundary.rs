//! Issue 12's classes that only the runtime shows, through containerd, the real shim and runc: bind
//! sources are pinned (the spec names the pin, the pins are gone once the container exists, and the
//! container sees the judged directory), a read-only rbind stays read-only below, kernel filesystems stay
//! at their place and nothing is remounted.

use std::path::Path;

use strict_integration::{testbed, text, unique, IMAGE, STRICT};

/// A directory the test bed's connections grant read-only (home, read: all: not a home itself, which
/// would contain the protected ~/snap), with a marker file.
fn granted_dir(name: &str) -> String {
    let _ = std::fs::remove_dir_all(format!("/home/strict-it-{name}"));
    let dir = format!("/home/strict-it-{name}/data");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(Path::new(&dir).join("marker"), "granted").unwrap();
    dir
}

#[test]
fn a_bind_source_is_pinned_for_runc_and_released_once_the_container_exists() {
    let tb = testbed();
    let dir = granted_dir("pins");
    let id = unique("pinned");
    let mount = format!("type=bind,src={dir},dst=/d,options=rbind:ro");
    let out = tb.ctr(&[
        "run",
        "-d",
        "--runtime",
        STRICT,
        "--mount",
        &mount,
        IMAGE,
        &id,
        "sleep",
        "60",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let bundle = tb.bundle(&id);
    let spec: serde_json::Value =
        serde_json::from_slice(&std::fs::read(bundle.join("config.json")).unwrap()).unwrap();
    let mounts = spec["mounts"].as_array().unwrap();
    let index = mounts
        .iter()
        .position(|m| m["destination"] == "/d")
        .unwrap();
    assert_eq!(
        mounts[index]["source"],
        serde_json::json!(bundle.join(format!(".strict-pins/{index}"))),
        "the spec names the pin, not the host path"
    );
    assert!(
        !bundle.join(".strict-pins").exists(),
        "the pins outlived the runtime's create"
    );
    let out = tb.ctr(&["tasks", "exec", "--exec-id", "cat", &id, "cat", "/d/marker"]);
    assert_eq!(text(&out.stdout).trim(), "granted", "{}", text(&out.stderr));
    tb.remove(&id);
    let _ = std::fs::remove_dir_all("/home/strict-it-pins");
}

#[test]
fn a_read_only_rbind_stays_read_only_below() {
    let tb = testbed();
    let dir = granted_dir("submounts");
    let inner = Path::new(&dir).join("inner");
    std::fs::create_dir_all(&inner).unwrap();
    let none: Option<&str> = None;
    nix::mount::mount(
        Some("tmpfs"),
        &inner,
        Some("tmpfs"),
        nix::mount::MsFlags::empty(),
        none,
    )
    .unwrap();
    let mount = format!("type=bind,src={dir},dst=/d,options=rbind:ro");
    let out = tb.run(
        STRICT,
        &["--mount", &mount],
        &["sh", "-c", "touch /d/inner/x 2>&1; echo status=$?"],
    );
    let _ = nix::mount::umount2(&inner, nix::mount::MntFlags::MNT_DETACH);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(stdout.contains("Read-only file system"), "{stdout}");
    assert!(stdout.contains("status=1"), "{stdout}");
    let _ = std::fs::remove_dir_all("/home/strict-it-submounts");
}

#[test]
fn kernel_filesystems_stay_at_their_place_and_nothing_is_remounted() {
    let tb = testbed();
    for (flags, expected) in [
        (
            "type=proc,src=proc,dst=/host-proc,options=nosuid",
            "proc belongs at /proc only",
        ),
        (
            "type=bind,src=/home,dst=/h,options=rbind:ro:remount",
            "remounts /h",
        ),
        (
            "type=tmpfs,src=tmpfs,dst=/t,options=size=1m:x-strict-made-up",
            "x-strict-made-up",
        ),
    ] {
        let out = tb.run(STRICT, &["--mount", flags], &["true"]);
        let stderr = text(&out.stderr);
        assert!(!out.status.success(), "{flags} ran");
        assert!(stderr.contains("strict: refused: "), "{flags}: {stderr}");
        assert!(stderr.contains(expected), "{flags}: {stderr}");
    }
}

#[test]
fn ordinary_user_namespaces_and_recursive_read_only_mounts_keep_running() {
    let tb = testbed();
    // A user namespace mapped onto a subordinate range (ctr chowns a copy of the snapshot for it).
    let out = tb.run(
        STRICT,
        &["--uidmap", "0:100000:65536", "--gidmap", "0:100000:65536"],
        &["sh", "-c", "cat /proc/self/uid_map"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("100000"),
        "{}",
        text(&out.stdout)
    );
    // One onto a host account is refused.
    let out = tb.run(
        STRICT,
        &["--uidmap", "0:1000:1", "--gidmap", "0:100000:65536"],
        &["true"],
    );
    assert!(!out.status.success(), "a mapping onto uid 1000 ran");
    assert!(
        text(&out.stderr).contains("the host's own accounts"),
        "{}",
        text(&out.stderr)
    );
    // An explicit rro bind.
    let dir = granted_dir("rro");
    let mount = format!("type=bind,src={dir},dst=/d,options=rbind:rro");
    let out = tb.run(STRICT, &["--mount", &mount], &["cat", "/d/marker"]);
    assert_eq!(text(&out.stdout).trim(), "granted", "{}", text(&out.stderr));
    let _ = std::fs::remove_dir_all("/home/strict-it-rro");
}
