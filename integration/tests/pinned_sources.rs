//! The path judged is the object mounted (issue 12, class 5): a bind source whose name is swapped between
//! a granted directory and a symlink to /etc while containers are created, against the real gate
//! (`strictctl gate`, speaking the shim's protocol) and the real runc. The gate opens each source once,
//! judges that open file and pins it in the bundle (`.strict-pins/<n>`), which runc mounts: /etc never
//! gets in. The pins are released as the shim releases them, once runc has created the container.
//!
//! A control run mounts the name itself (as before pinning) under the same swapper, and must catch /etc at
//! least once: the detector can fail.
//!
//! Rounds: `STRICT_RACE_ROUNDS` (default 1000; docs/security.md gives a run of thousands).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use serde_json::json;
use strict_integration::text;

const RACE: &str = "/home/strict-race";

/// A bundle for runc: Debian's static busybox as the root, and one bind mount of `source` at /d.
fn bundle(dir: &Path, source: &str) -> PathBuf {
    let bundle = dir.join("bundle");
    let rootfs = bundle.join("rootfs");
    std::fs::create_dir_all(rootfs.join("bin")).unwrap();
    std::fs::create_dir_all(rootfs.join("d")).unwrap();
    if !rootfs.join("bin/busybox").exists() {
        std::fs::copy("/bin/busybox", rootfs.join("bin/busybox")).unwrap();
    }
    let out = Command::new("runc")
        .args(["spec", "--bundle"])
        .arg(&bundle)
        .output()
        .unwrap();
    assert!(out.status.success(), "runc spec: {}", text(&out.stderr));
    let path = bundle.join("config.json");
    let mut spec: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    spec["process"]["terminal"] = json!(false);
    spec["process"]["args"] = json!(["/bin/busybox", "sleep", "60"]);
    spec["mounts"].as_array_mut().unwrap().push(
        json!({"destination": "/d", "type": "bind", "source": source, "options": ["rbind", "ro"]}),
    );
    std::fs::write(&path, serde_json::to_vec_pretty(&spec).unwrap()).unwrap();
    bundle
}

/// What is mounted at /d in the container whose init is `pid`: the path inside its filesystem.
fn mounted_at_d(pid: u32) -> String {
    let table = std::fs::read_to_string(format!("/proc/{pid}/mountinfo")).unwrap();
    table
        .lines()
        .find_map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            (fields.get(4) == Some(&"/d")).then(|| fields[3].to_string())
        })
        .unwrap_or_else(|| panic!("nothing at /d: {table}"))
}

struct Runc {
    root: PathBuf,
}

impl Runc {
    fn run(&self, args: &[&str]) -> std::process::Output {
        Command::new("runc")
            .arg("--root")
            .arg(&self.root)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    /// `runc create`: the mounts are made; returns the init's pid.
    fn create(&self, bundle: &Path, id: &str) -> Option<u32> {
        let pid_file = bundle.join("init.pid");
        let _ = std::fs::remove_file(&pid_file);
        let out = Command::new("runc")
            .arg("--root")
            .arg(&self.root)
            .args(["create", "--bundle"])
            .arg(bundle)
            .arg("--pid-file")
            .arg(&pid_file)
            .arg(id)
            // The container's init inherits runc's stdio: none of it may be a pipe read to its end.
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(bundle.join("runc.log")).unwrap())
            .status()
            .unwrap();
        if !out.success() {
            // The named source was a dangling or swapped path at mount time: runc itself failed.
            eprintln!(
                "runc create {id}: {}",
                std::fs::read_to_string(bundle.join("runc.log")).unwrap_or_default()
            );
            return None;
        }
        Some(
            std::fs::read_to_string(&pid_file)
                .unwrap()
                .trim()
                .parse()
                .unwrap(),
        )
    }

    fn delete(&self, id: &str) {
        let _ = self.run(&["delete", "--force", id]);
    }
}

/// Swaps `RACE/data` (a directory) and `RACE/other` (a symlink to /etc) with renameat2(RENAME_EXCHANGE)
/// until `stop`.
fn swapper(stop: Arc<AtomicBool>) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        let mut swaps = 0;
        while !stop.load(Ordering::Relaxed) {
            nix::fcntl::renameat2(
                nix::fcntl::AT_FDCWD,
                &Path::new(RACE).join("data"),
                nix::fcntl::AT_FDCWD,
                &Path::new(RACE).join("other"),
                nix::fcntl::RenameFlags::RENAME_EXCHANGE,
            )
            .unwrap();
            swaps += 1;
        }
        swaps
    })
}

fn prepare_race_dir() {
    let _ = std::fs::remove_dir_all(RACE);
    std::fs::create_dir_all(Path::new(RACE).join("data")).unwrap();
    std::fs::write(Path::new(RACE).join("data/marker"), "granted").unwrap();
    std::os::unix::fs::symlink("/etc", Path::new(RACE).join("other")).unwrap();
}

/// The gate's configuration: the snap's embedded connections, runc with its state under `runc_root`, the
/// audit trail in `dir`.
fn gate_config(dir: &Path, runc_root: &Path) -> PathBuf {
    let config = dir.join("strict.toml");
    std::fs::write(
        &config,
        format!(
            "source = \"embedded\"\n[runtime]\nbinary = \"/usr/sbin/runc\"\nroot = \"{}\"\n\
             [audit]\npath = \"{}\"\n",
            runc_root.display(),
            dir.join("audit.log").display()
        ),
    )
    .unwrap();
    config
}

/// One Create through the gate, as the shim asks it: the answer.
fn gate_create(strictctl: &Path, config: &Path, bundle: &Path, id: &str) -> serde_json::Value {
    let mut gate = Command::new(strictctl)
        .args(["gate", "--namespace", "race"])
        .env("STRICT_CONFIG", config)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let request = json!({"protocol": strict_protocol::PROTOCOL, "op": "create", "id": id,
                         "bundle": bundle, "pods": []});
    let mut stdin = gate.stdin.take().unwrap();
    stdin.write_all(request.to_string().as_bytes()).unwrap();
    drop(stdin);
    let mut answer = String::new();
    gate.stdout
        .take()
        .unwrap()
        .read_to_string(&mut answer)
        .unwrap();
    gate.wait().unwrap();
    serde_json::from_str(&answer).unwrap()
}

/// What the shim does once the runtime has created the container: the pins go.
fn release_pins(bundle: &Path) {
    let dir = bundle.join(strict_protocol::gate::PINS_DIR);
    for entry in std::fs::read_dir(&dir).unwrap().flatten() {
        nix::mount::umount2(&entry.path(), nix::mount::MntFlags::MNT_DETACH).unwrap();
    }
    nix::mount::umount2(&dir, nix::mount::MntFlags::MNT_DETACH).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_swapped_bind_source_never_mounts_what_the_gate_refused() {
    let dist = strict_integration::dist_dir();
    strict_integration::require_fresh(&dist);
    let strictctl = dist.join("strictctl");
    let dir = tempfile::tempdir().unwrap();
    let runc = Runc {
        root: dir.path().join("runc"),
    };
    let config = gate_config(dir.path(), &runc.root);
    let rounds: usize = std::env::var("STRICT_RACE_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(1000);
    prepare_race_dir();
    let pristine =
        std::fs::read(bundle(dir.path(), &format!("{RACE}/data")).join("config.json")).unwrap();
    let bundle = dir.path().join("bundle");

    // Control: runc mounts the name, as judged a moment before; the swapper gets /etc in.
    let stop = Arc::new(AtomicBool::new(false));
    let swaps = swapper(stop.clone());
    let (mut control_escapes, mut control_rounds) = (0, 0);
    for round in 0..200 {
        control_rounds += 1;
        std::fs::write(bundle.join("config.json"), &pristine).unwrap();
        let id = format!("race-control-{round}");
        if let Some(pid) = runc.create(&bundle, &id) {
            if !mounted_at_d(pid).contains("strict-race") {
                control_escapes += 1;
            }
        }
        runc.delete(&id);
        if control_escapes >= 3 {
            break;
        }
    }
    assert!(
        control_escapes > 0,
        "the swapper never reached runc's mount: the test cannot fail"
    );

    // Pinned: the gate's answer names the open file; whatever the name is meanwhile, /etc never gets in.
    let (mut admitted, mut refused, mut escapes) = (0, 0, Vec::new());
    for round in 0..rounds {
        std::fs::write(bundle.join("config.json"), &pristine).unwrap();
        let id = format!("race-{round}");
        let answer = gate_create(&strictctl, &config, &bundle, &id);
        if answer.get("refused").is_some() {
            refused += 1;
            continue;
        }
        assert!(answer.get("ok").is_some(), "{answer}");
        let written: serde_json::Value =
            serde_json::from_slice(&std::fs::read(bundle.join("config.json")).unwrap()).unwrap();
        let mounts = written["mounts"].as_array().unwrap();
        let index = mounts
            .iter()
            .position(|m| m["destination"] == "/d")
            .unwrap();
        let pin = bundle.join(format!(".strict-pins/{index}"));
        assert_eq!(
            mounts[index]["source"],
            json!(pin),
            "the spec names the pin"
        );
        let pid = runc.create(&bundle, &id);
        release_pins(&bundle);
        let pid =
            pid.unwrap_or_else(|| panic!("runc create of an admitted spec failed (round {round})"));
        let seen = mounted_at_d(pid);
        runc.delete(&id);
        admitted += 1;
        if !seen.contains("strict-race") {
            escapes.push((round, seen));
        }
    }
    stop.store(true, Ordering::Relaxed);
    let swaps = swaps.join().unwrap();
    eprintln!(
        "race: {rounds} creates under {swaps} swaps: {admitted} admitted, {refused} refused (the \
         symlink), {} escapes; control (the name mounted): {control_escapes} escapes in {control_rounds} \
         creates",
        escapes.len()
    );
    assert!(escapes.is_empty(), "mounted outside the grant: {escapes:?}");
    assert!(admitted > 0 && refused > 0, "the race never went both ways");
    let _ = std::fs::remove_dir_all(RACE);
}

/// Absent is not empty (issue 12, class 1), as runc shows it: a spec without a capability list, which runc
/// would run with every capability of its own, runs with none once the gate has filled it.
#[test]
fn a_spec_without_capabilities_runs_with_none_under_runc() {
    let dist = strict_integration::dist_dir();
    strict_integration::require_fresh(&dist);
    let dir = tempfile::tempdir().unwrap();
    let runc = Runc {
        root: dir.path().join("runc"),
    };
    let config = gate_config(dir.path(), &runc.root);
    let bundle = bundle(dir.path(), "/nonexistent-unused");
    let path = bundle.join("config.json");
    let mut spec: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    spec["process"]
        .as_object_mut()
        .unwrap()
        .remove("capabilities");
    spec["mounts"]
        .as_array_mut()
        .unwrap()
        .retain(|m| m["destination"] != "/d");
    std::fs::write(&path, serde_json::to_vec(&spec).unwrap()).unwrap();
    let answer = gate_create(&dist.join("strictctl"), &config, &bundle, "caps");
    assert!(answer.get("ok").is_some(), "{answer}");
    let pid = runc.create(&bundle, "caps").expect("runc create");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    runc.delete("caps");
    for set in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] {
        let line = status.lines().find(|l| l.starts_with(set)).unwrap();
        assert!(line.ends_with("0000000000000000"), "{line}");
    }
}
