//! `strictctl install` on a node with a real containerd: the drop-in it writes loads, a CRI pod runs
//! through the installed shim, and `strictctl uninstall` leaves containerd's configuration as it was.

mod cri_client;

use std::path::Path;
use std::process::Command;

use cri_client::*;
use strict_integration::{repo, testbed, text};

fn strictctl(args: &[&str]) -> std::process::Output {
    let out = Command::new(strict_integration::dist_dir().join("strictctl"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "strictctl {args:?}: {} {}",
        text(&out.stdout),
        text(&out.stderr)
    );
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pod_runs_through_the_installed_drop_in_and_uninstall_restores_the_configuration() {
    let tb = testbed();
    let root = tb.run_dir.join("node");
    let main = tb.run_dir.join("config.toml");
    let containerd = repo().join(".testbed/containerd/usr/bin/containerd");
    let before = std::fs::read(&main).unwrap();
    // The operator's policy for this node (install keeps an existing one): the test bed's layout.
    std::fs::create_dir_all(root.join("etc/containerd")).unwrap();
    std::fs::copy(tb.strict_config(), root.join("etc/containerd/strict.toml")).unwrap();
    let common = [
        "--root",
        root.to_str().unwrap(),
        "--containerd-config",
        main.to_str().unwrap(),
        "--containerd",
        containerd.to_str().unwrap(),
        "--no-restart",
    ];
    let dist = strict_integration::dist_dir();
    let mut install = vec!["install", "--from", dist.to_str().unwrap()];
    install.extend_from_slice(&common);
    strictctl(&install);

    let installed_shim = root.join("usr/local/bin/containerd-shim-strict-v2");
    let dump = Command::new(&containerd)
        .args(["--config", main.to_str().unwrap(), "config", "dump"])
        .output()
        .unwrap();
    let dump = text(&dump.stdout);
    assert!(
        dump.contains(&format!("runtime_path = '{}'", installed_shim.display()))
            || dump.contains(&format!("runtime_path = \"{}\"", installed_shim.display())),
        "{dump}"
    );

    tb.restart_containerd();
    let mut cri = Cri::connect().await;
    let pod = cri
        .run_pod("installed", STRICT_HANDLER, |_| {})
        .await
        .unwrap_or_else(|e| panic!("{} {}", e.message(), tb.log()));
    let app = cri.start_container(&pod, "app", |_| {}).await.unwrap();
    let shim = parent_of(cri_pid(tb, &app));
    assert_eq!(
        std::fs::read_link(format!("/proc/{shim}/exe")).unwrap(),
        installed_shim,
        "the pod is served by the installed shim"
    );
    cri.remove_pod(&pod.id).await;

    // Uninstall needs only the root: install's manifest says what it did.
    strictctl(&[
        "uninstall",
        "--root",
        root.to_str().unwrap(),
        "--no-restart",
    ]);
    assert_eq!(
        std::fs::read(&main).unwrap(),
        before,
        "uninstall restores containerd's configuration byte for byte"
    );
    assert!(!installed_shim.exists());
    assert!(
        Path::new(&root.join("etc/containerd/strict.toml")).exists(),
        "the operator's policy stays"
    );
    tb.restart_containerd();
}
