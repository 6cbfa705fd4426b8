//! A real snapd for end-to-end tests: `integration/testbed/snapd.sh` runs Debian's snapd (`stable`: 2.57.x,
//! `unstable`: 2.77.x) in a private PID + mount namespace with the test snap `microk8s` installed (plugs
//! from `vendor-profiles/snaps/microk8s.toml`, apps running target/static/strictctl). The namespace is
//! shared by every test of a version (and kept running between test binaries); `Snapd::start` is
//! idempotent. Nothing is skipped: a test bed that cannot start fails the test with the script's output.
//!
//! From the host: `socket` and `snap_socket` answer like snapd's own (relayed into the namespace, so snapd
//! sees a peer it can identify); `snap_bin` is the matching `snap` client; `snapctl_dir` holds a `snapctl`
//! that, with `SNAP_COOKIE=cookie`, asks about the microk8s snap. Inside the snap's real context:
//! `exec(&["snap", "run", "microk8s.strictctl", ...])`.

use std::path::PathBuf;
use std::process::{Command, Output};

pub struct Snapd {
    /// `stable` or `unstable`.
    pub version: String,
    /// snapd.socket, as reachable from the host.
    pub socket: PathBuf,
    /// snapd-snap.socket (snapctl's), as reachable from the host.
    pub snap_socket: PathBuf,
    /// The directory whose `run/` holds the two sockets (`SNAPPY_GLOBAL_ROOT` for snapd's clients).
    pub root: PathBuf,
    /// A `snap` client for this snapd, run on the host.
    pub snap_bin: PathBuf,
    /// A directory with an executable `snapctl` for this snapd (needs `SNAP_COOKIE` in its environment).
    pub snapctl_dir: PathBuf,
    /// The microk8s snap's cookie. It changes when the snap is reinstalled: `refresh` after `install_snap`.
    pub cookie: String,
    /// Host PID of the snapd daemon (changes when it restarts; `daemon("start")` reads it again).
    pub snapd_pid: u32,
    /// Host PID of the namespace's init.
    pub ns_pid: u32,
    /// snapd's version without the Debian revision, e.g. `2.57.6`.
    pub snapd_version: String,
}

fn script() -> PathBuf {
    crate::repo().join("integration/testbed/snapd.sh")
}

fn describe(args: &[&str], out: &Output) -> String {
    format!(
        "snapd.sh {} failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Runs snapd.sh ARGS, panicking with its output when it fails.
fn run_script(args: &[&str]) -> Output {
    let out = Command::new("bash")
        .arg(script())
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script().display()));
    assert!(out.status.success(), "{}", describe(args, &out));
    out
}

impl Snapd {
    /// Starts (or finds running) the test bed's snapd of `version` ("stable" or "unstable").
    pub fn start(version: &str) -> Snapd {
        run_script(&["start", version]);
        let mut snapd = Snapd {
            version: version.to_owned(),
            socket: PathBuf::new(),
            snap_socket: PathBuf::new(),
            root: PathBuf::new(),
            snap_bin: PathBuf::new(),
            snapctl_dir: PathBuf::new(),
            cookie: String::new(),
            snapd_pid: 0,
            ns_pid: 0,
            snapd_version: String::new(),
        };
        snapd.refresh();
        snapd
    }

    /// Re-reads `snapd.sh env` (the cookie after `install_snap`, snapd's PID after a restart).
    pub fn refresh(&mut self) {
        let args = ["env", self.version.as_str()];
        let out = run_script(&args);
        let text = String::from_utf8_lossy(&out.stdout);
        let mut seen = 0;
        for line in text.lines() {
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            let value = value.trim_matches('"');
            let pid = |v: &str| -> u32 {
                v.parse()
                    .unwrap_or_else(|_| panic!("snapd.sh env: {key}={v:?} is not a PID:\n{text}"))
            };
            match key {
                "SNAPD_SOCKET" => self.socket = value.into(),
                "SNAPD_SNAP_SOCKET" => self.snap_socket = value.into(),
                "SNAPD_ROOT" => self.root = value.into(),
                "SNAP_BIN" => self.snap_bin = value.into(),
                "SNAPCTL_DIR" => self.snapctl_dir = value.into(),
                "SNAP_COOKIE" => self.cookie = value.to_owned(),
                "SNAPD_PID" => self.snapd_pid = pid(value),
                "NS_PID" => self.ns_pid = pid(value),
                "SNAPD_VERSION" => self.snapd_version = value.to_owned(),
                _ => continue,
            }
            seen += 1;
        }
        assert_eq!(seen, 9, "snapd.sh env {} printed:\n{text}", self.version);
        assert!(
            !self.cookie.is_empty(),
            "snapd.sh env {}: no SNAP_COOKIE:\n{text}",
            self.version
        );
    }

    /// Runs this snapd's `snap` client on the host (`snap connect microk8s:fuse-support`, ...).
    pub fn snap(&self, args: &[&str]) -> Output {
        Command::new(&self.snap_bin)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", self.snap_bin.display()))
    }

    /// Reinstalls microk8s declaring only `plugs` (all of the profile's when empty), with the current
    /// strictctl. Connections are then snapd's auto-connections only; the new cookie is read.
    pub fn install_snap(&mut self, plugs: &[&str]) {
        let version = self.version.clone();
        let mut args = vec!["install-snap", version.as_str()];
        args.extend_from_slice(plugs);
        run_script(&args);
        self.refresh();
    }

    /// `stop`: stop snapd and hold it stopped (its sockets vanish); `start`: let it run again and wait for
    /// its API (its new PID is read).
    pub fn daemon(&mut self, action: &str) {
        run_script(&["daemon", self.version.as_str(), action]);
        if action == "start" {
            self.refresh();
        }
    }

    /// Runs a command inside the namespace, e.g. `["snap", "run", "microk8s.strictctl", "interfaces"]`.
    /// Host paths under /work and /tmp are visible there; a failing command is returned, not a panic.
    pub fn exec(&self, args: &[&str]) -> Output {
        Command::new("bash")
            .arg(script())
            .args(["exec", self.version.as_str()])
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", script().display()))
    }

    /// A `snapctl` command on the host for the microk8s snap (SNAP_COOKIE set), for tests that run it
    /// directly; the gate finds it by putting `snapctl_dir` first on its PATH.
    pub fn snapctl(&self) -> Command {
        let mut cmd = Command::new(self.snapctl_dir.join("snapctl"));
        cmd.env("SNAP_COOKIE", &self.cookie);
        cmd
    }
}
