//! The host's connections from a real snapd (Debian 12's 2.57 and unstable's 2.77, `integration/testbed/
//! snapd.sh`), with a test snap `microk8s` generated from `vendor-profiles/snaps/microk8s.toml`: the
//! snapd source from the host, the snapctl source from the host with the snap's cookie and from inside the
//! snap (`snap run`), through strictctl and through the real shim and containerd; `snap connect` and
//! `snap disconnect` changing the next decision; snapd stopped or stalled; running containers after a
//! disconnect (`strictctl status`, `reconcile`). Each snapd version is one namespace shared by this
//! binary's tests, which take its lock: connections are global state.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use serde_json::Value;
use strict_integration::snapd::Snapd;
use strict_integration::{
    audit_records, dist_dir, repo, testbed, text, unique, Testbed, IMAGE, STRICT,
};

const FIXTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../policy/tests/fixtures/containerd"
);

/// The snapd of `version`, started once for this binary, and its lock.
fn snapd(version: &'static str) -> MutexGuard<'static, Snapd> {
    static STABLE: OnceLock<Mutex<Snapd>> = OnceLock::new();
    static UNSTABLE: OnceLock<Mutex<Snapd>> = OnceLock::new();
    let cell = match version {
        "stable" => &STABLE,
        _ => &UNSTABLE,
    };
    let mut guard = cell
        .get_or_init(|| Mutex::new(Snapd::start(version)))
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    // A test that failed midway may have left snapd held.
    guard.daemon("start");
    guard
}

fn snap_ok(snapd: &Snapd, args: &[&str]) {
    let out = snapd.snap(args);
    assert!(
        out.status.success(),
        "snap {args:?}: {} {}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// Connects exactly these of the test snap's plugs (the others disconnected).
fn connect_only(snapd: &Snapd, plugs: &[&str]) {
    for plug in connected_names(snapd) {
        if !plugs.contains(&plug.as_str()) {
            snap_ok(snapd, &["disconnect", &format!("microk8s:{plug}")]);
        }
    }
    let now = connected_names(snapd);
    for plug in plugs {
        if !now.iter().any(|p| p == plug) {
            snap_ok(snapd, &["connect", &format!("microk8s:{plug}")]);
        }
    }
}

/// The test snap's connected plugs as snapd's REST API lists them.
fn connected_names(snapd: &Snapd) -> Vec<String> {
    let reply = rest(snapd, "/v2/connections?snap=microk8s");
    let mut names: Vec<String> = reply["result"]["established"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter(|c| c["plug"]["snap"] == "microk8s")
        .map(|c| c["plug"]["plug"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    names
}

/// One GET on snapd's socket, the body as JSON.
fn rest(snapd: &Snapd, path: &str) -> Value {
    let (status, body) =
        strictctl::sources::snapd::get(&snapd.socket, path, Duration::from_secs(10))
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
    assert!(status < 500, "GET {path}: HTTP {status}");
    serde_json::from_slice(&body).unwrap()
}

/// A configuration for strictctl and the shim: the test bed's (runtime, node layout) with this source.
fn config(tb: &Testbed, name: &str, source: &str) -> PathBuf {
    let base = std::fs::read_to_string(tb.strict_config()).unwrap();
    let path = tb.run_dir.join(format!("{name}.toml"));
    let trail = tb.run_dir.join(format!("{name}-audit.log"));
    let body = base.replace("source = \"embedded\"\n", "").replace(
        &tb.audit_log().display().to_string(),
        &trail.display().to_string(),
    );
    std::fs::write(&path, format!("{source}\nsource_timeout = \"2s\"\n{body}")).unwrap();
    path
}

fn snapd_source(tb: &Testbed, snapd: &Snapd, name: &str) -> PathBuf {
    config(
        tb,
        name,
        &format!(
            "source = \"snapd\"\nsnapd_socket = \"{}\"",
            snapd.socket.display()
        ),
    )
}

fn trail_of(config: &Path) -> PathBuf {
    config.with_file_name(format!(
        "{}-audit.log",
        config.file_stem().unwrap().to_str().unwrap()
    ))
}

/// `strictctl ARGS` from the host, as the snap's apps would run it when `inside` (SNAP_NAME, the snap's
/// cookie, snapctl on PATH).
fn strictctl(snapd: Option<&Snapd>, args: &[&str]) -> Output {
    let mut command = Command::new(dist_dir().join("strictctl"));
    command.args(args).env_remove("SNAP_NAME");
    if let Some(snapd) = snapd {
        let path = format!(
            "{}:{}",
            snapd.snapctl_dir.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        command
            .env("SNAP_NAME", "microk8s")
            .env("SNAP_COOKIE", &snapd.cookie)
            .env("PATH", path);
    }
    command.output().unwrap()
}

/// The plugs `strictctl interfaces` reports connected, from its JSON.
fn plugs_of(out: &Output) -> Vec<String> {
    assert!(
        out.status.success(),
        "strictctl interfaces: {} {}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let list: Vec<Value> = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", text(&out.stdout)));
    let mut names: Vec<String> = list
        .iter()
        .map(|p| p["plug"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    names
}

/// The three live sources' connected plugs: snapd from the host, snapctl from the host with the snap's
/// cookie, snapctl from inside the snap (`snap run microk8s.strictctl`).
fn every_source(tb: &Testbed, snapd: &Snapd) -> [Vec<String>; 3] {
    let rest_config = snapd_source(tb, snapd, &format!("rest-{}", snapd.version));
    let snapctl_config = config(
        tb,
        &format!("snapctl-{}", snapd.version),
        "source = \"snapctl\"",
    );
    let from_rest = plugs_of(&strictctl(
        None,
        &[
            "interfaces",
            "--format",
            "json",
            "--config",
            rest_config.to_str().unwrap(),
        ],
    ));
    let from_host = plugs_of(&strictctl(
        Some(snapd),
        &[
            "interfaces",
            "--format",
            "json",
            "--config",
            snapctl_config.to_str().unwrap(),
        ],
    ));
    // Inside the snap: its own environment, the built-in defaults (source auto → snapctl).
    let from_snap = plugs_of(&snapd.exec(&[
        "snap",
        "run",
        "microk8s.strictctl",
        "interfaces",
        "--format",
        "json",
    ]));
    [from_rest, from_host, from_snap]
}

/// `strictctl check` of a fixture with this configuration (and the snap's context when `inside`).
fn check(snapd: Option<&Snapd>, config: &Path, fixture: &str) -> Output {
    strictctl(
        snapd,
        &[
            "check",
            &format!("{FIXTURES}/{fixture}.json"),
            "--config",
            config.to_str().unwrap(),
        ],
    )
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

fn sources_agree_and_follow_connect_and_disconnect(version: &'static str) {
    let tb = testbed();
    let mut snapd = snapd(version);
    snapd.install_snap(&[]);
    connect_only(
        &snapd,
        &["network", "network-control", "fuse-support", "home"],
    );

    // The three sources give the same plugs, which are what snapd lists.
    let [from_rest, from_host, from_snap] = every_source(tb, &snapd);
    assert_eq!(from_rest, connected_names(&snapd), "{version}: REST");
    assert_eq!(from_host, from_rest, "{version}: snapctl from the host");
    assert_eq!(from_snap, from_rest, "{version}: snapctl inside the snap");

    // Connected: /dev/fuse runs, by each source; disconnected: refused naming fuse-support, no restart.
    let rest_config = snapd_source(tb, &snapd, &format!("rest-{version}"));
    let snapctl_config = config(tb, &format!("snapctl-{version}"), "source = \"snapctl\"");
    for (inside, config) in [(None, &rest_config), (Some(&*snapd), &snapctl_config)] {
        let out = check(inside, config, "device-fuse");
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    }
    let (_, out) = run_with_fuse(tb, &rest_config);
    assert!(out.status.success(), "{}: {}", text(&out.stderr), tb.log());
    assert_eq!(text(&out.stdout), "opened");

    snap_ok(&snapd, &["disconnect", "microk8s:fuse-support"]);
    // The test snap's disconnect-plug-fuse-support hook ran while snapd still reported the plug
    // connected: a hook's reconcile must be told (`--disconnecting fuse-support`). 2.77 runs hooks only
    // in a cgroup systemd tracks, which this test bed has not (its log: "cannot track application
    // process", and snapd ignores a failing disconnect hook), so 2.57 shows it.
    if version == "stable" {
        let log = snapd.exec(&["cat", "/var/snap/microk8s/common/hooks.log"]);
        assert_eq!(
            text(&log.stdout).lines().last(),
            Some("disconnect-plug-fuse-support: is-connected fuse-support exits 0"),
            "{}",
            text(&log.stderr)
        );
    }
    for (inside, config) in [(None, &rest_config), (Some(&*snapd), &snapctl_config)] {
        let out = check(inside, config, "device-fuse");
        assert_eq!(
            out.status.code(),
            Some(1),
            "{}: {} {}",
            config.display(),
            text(&out.stdout),
            text(&out.stderr)
        );
        assert!(
            text(&out.stdout).contains("fuse-support"),
            "{}",
            text(&out.stdout)
        );
    }
    let (id, out) = run_with_fuse(tb, &rest_config);
    assert!(!out.status.success(), "a disconnected device ran");
    assert!(
        text(&out.stderr).contains("connect fuse-support"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(
        audit_records(&trail_of(&rest_config), &id)[0]["decision"],
        "refused"
    );

    // The command `strictctl audit` suggests, run as printed, lets the next container run.
    let audit = strictctl(None, &["audit", "--config", rest_config.to_str().unwrap()]);
    let report = text(&audit.stdout);
    let line = report
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("snap connect "))
        .unwrap_or_else(|| panic!("no snap connect line in: {report}"));
    assert_eq!(line, "snap connect microk8s:fuse-support", "{report}");
    let words: Vec<&str> = line.split_whitespace().skip(1).collect();
    snap_ok(&snapd, &words);
    let (_, out) = run_with_fuse(tb, &rest_config);
    assert!(out.status.success(), "{}: {}", text(&out.stderr), tb.log());
}

#[test]
fn stable_sources_agree_and_follow_connect_and_disconnect() {
    sources_agree_and_follow_connect_and_disconnect("stable");
}

#[test]
fn unstable_sources_agree_and_follow_connect_and_disconnect() {
    sources_agree_and_follow_connect_and_disconnect("unstable");
}

/// The installed snap declares only some of the profile's plugs: the others are not connected, by every
/// source (2.57 answers plug by plug, "has no plug or slot named" for the missing ones).
fn a_snap_with_fewer_plugs(version: &'static str) {
    let tb = testbed();
    let mut snapd = snapd(version);
    snapd.install_snap(&["network", "home", "fuse-support"]);
    connect_only(&snapd, &["network", "fuse-support"]);
    // snapctl's own words for a plug the snap lacks.
    let out = Command::new(snapd.snapctl_dir.join("snapctl"))
        .args(["is-connected", "account-control"])
        .env("SNAP_COOKIE", &snapd.cookie)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr)
            .contains("snap \"microk8s\" has no plug or slot named \"account-control\""),
        "{}",
        text(&out.stderr)
    );
    let [from_rest, from_host, from_snap] = every_source(tb, &snapd);
    assert_eq!(from_rest, ["fuse-support", "network"], "{version}");
    assert_eq!(from_host, from_rest, "{version}");
    assert_eq!(from_snap, from_rest, "{version}");
    let snapctl_config = config(tb, &format!("snapctl-{version}"), "source = \"snapctl\"");
    let out = check(Some(&snapd), &snapctl_config, "device-fuse");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{} {}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let rest_config = snapd_source(tb, &snapd, &format!("rest-{version}"));
    let out = strictctl(
        None,
        &["interfaces", "--config", rest_config.to_str().unwrap()],
    );
    assert!(
        text(&out.stdout)
            .contains("not declared by the installed snap (not connected): account-control"),
        "{}",
        text(&out.stdout)
    );
    snapd.install_snap(&[]);
}

#[test]
fn stable_a_snap_with_fewer_plugs_is_not_an_error() {
    a_snap_with_fewer_plugs("stable");
}

#[test]
fn unstable_a_snap_with_fewer_plugs_is_not_an_error() {
    a_snap_with_fewer_plugs("unstable");
}

/// snapd stopped, or stalled mid-request: every container is refused with the cause, never let through;
/// back, it decides again.
#[test]
fn snapd_stopped_or_stalled_refuses_with_the_cause() {
    let tb = testbed();
    let mut snapd = snapd("stable");
    connect_only(&snapd, &["network", "fuse-support"]);
    let rest_config = snapd_source(tb, &snapd, "rest-failures");

    snapd.daemon("stop");
    assert!(!snapd.socket.exists(), "snapd's socket outlived it");
    let (id, out) = run_with_fuse(tb, &rest_config);
    assert!(!out.status.success(), "ran with snapd stopped");
    let stderr = text(&out.stderr);
    assert!(stderr.contains("cannot connect"), "{stderr}");
    assert_eq!(
        audit_records(&trail_of(&rest_config), &id)[0]["decision"],
        "undecided"
    );
    // Plain containers too: the gate cannot know what is granted.
    let out = tb.run(
        STRICT,
        &["--runtime-config-path", rest_config.to_str().unwrap()],
        &["true"],
    );
    assert!(!out.status.success());

    snapd.daemon("start");
    let (_, out) = run_with_fuse(tb, &rest_config);
    assert!(out.status.success(), "{}", text(&out.stderr));

    // Stalled: the gate's deadline (source_timeout = 2s) refuses; the container is not left waiting.
    // SAFETY: signals to snapd's pid, from snapd.sh env.
    unsafe { libc::kill(snapd.snapd_pid as i32, libc::SIGSTOP) };
    let started = Instant::now();
    let (_, out) = run_with_fuse(tb, &rest_config);
    unsafe { libc::kill(snapd.snapd_pid as i32, libc::SIGCONT) };
    assert!(!out.status.success(), "ran with snapd stalled");
    assert!(
        text(&out.stderr).contains("no complete answer within 2s"),
        "{}",
        text(&out.stderr)
    );
    assert!(started.elapsed() < Duration::from_secs(30));
    let (_, out) = run_with_fuse(tb, &rest_config);
    assert!(out.status.success(), "{}", text(&out.stderr));
}

/// The recorded replies the fast tests use (strictctl/tests/fixtures/snapd) have the shape of the live
/// ones: the same keys where the live reply has them, so they cannot drift from snapd.
#[test]
fn recorded_replies_match_the_live_ones() {
    let snapd = snapd("stable");
    connect_only(&snapd, &["network", "fuse-support", "docker-privileged"]);
    let fixtures = repo().join("strictctl/tests/fixtures/snapd");
    let recorded = |name: &str| -> Value {
        let raw = std::fs::read_to_string(fixtures.join(name)).unwrap();
        let body = &raw[raw.find("\r\n\r\n").expect("headers end") + 4..];
        serde_json::from_str(body).unwrap()
    };
    let live = rest(&snapd, "/v2/connections?snap=microk8s&select=all");
    let old = recorded("connections-microk8s.http");
    assert_same_shape(&live, &old, "connections");
    let live_error = rest(&snapd, "/v2/connections?snap=no-such-snap&select=all");
    let old_error = recorded("snap-not-found.http");
    assert_same_shape(&live_error, &old_error, "snap-not-found");
    assert_eq!(live_error["result"]["kind"], old_error["result"]["kind"]);
    assert_eq!(live_error["status-code"], old_error["status-code"]);
    // The snap socket refuses REST to a snap without snapd-control.
    let (status, body) = strictctl::sources::snapd::get(
        &snapd.snap_socket,
        "/v2/connections?snap=microk8s&select=all",
        Duration::from_secs(10),
    )
    .unwrap();
    let live_denied: Value = serde_json::from_slice(&body).unwrap();
    let old_denied = recorded("access-denied.http");
    assert_eq!(status, 403);
    assert_same_shape(&live_denied, &old_denied, "access-denied");
    assert_eq!(live_denied["result"], old_denied["result"]);
}

/// Every key of an object in `recorded` is one snapd sends in the same place (`live`), with a value of the
/// same JSON type; arrays are compared element by element against the live array's first element.
fn assert_same_shape(live: &Value, recorded: &Value, at: &str) {
    match (live, recorded) {
        (Value::Object(live), Value::Object(recorded)) => {
            for (key, value) in recorded {
                let Some(live_value) = live.get(key) else {
                    // Keys snapd omits when empty (omitempty) may be absent from one live reply.
                    assert!(
                        matches!(
                            key.as_str(),
                            "manual"
                                | "plug-attrs"
                                | "slot-attrs"
                                | "attrs"
                                | "apps"
                                | "connections"
                                | "undesired"
                                | "gadget"
                                | "label"
                        ),
                        "{at}.{key}: recorded but snapd does not send it"
                    );
                    continue;
                };
                // Attributes are each interface's own: their presence and type only.
                if matches!(key.as_str(), "plug-attrs" | "slot-attrs" | "attrs") {
                    assert!(live_value.is_object() && value.is_object(), "{at}.{key}");
                    continue;
                }
                assert_same_shape(live_value, value, &format!("{at}.{key}"));
            }
        }
        (Value::Array(live), Value::Array(recorded)) => {
            if let Some(first) = live.first() {
                for item in recorded {
                    if item.is_object() && first.is_object() {
                        assert_same_shape(first, item, &format!("{at}[]"));
                    }
                }
            }
        }
        (live, recorded) => assert_eq!(
            std::mem::discriminant(live),
            std::mem::discriminant(recorded),
            "{at}: live {live} recorded {recorded}"
        ),
    }
}

/// A container holding /dev/fuse when fuse-support is disconnected: `status` lists it with what it
/// holds; `reconcile` reports it, takes the device out of its device cgroup, or stops it.
#[test]
fn a_disconnect_while_a_container_holds_the_device() {
    let tb = testbed();
    let snapd = snapd("stable");
    // network-control too: the exec probes below ask for the default capabilities (CAP_NET_RAW).
    connect_only(&snapd, &["network", "network-control", "fuse-support"]);
    let config = snapd_source(tb, &snapd, "rest-drift");
    let config_arg = config.to_str().unwrap().to_string();
    let start = |id: &str, script: &str| {
        let out = tb.ctr(&[
            "run",
            "-d",
            "--runtime",
            STRICT,
            "--runtime-config-path",
            &config_arg,
            "--device",
            "/dev/fuse",
            IMAGE,
            id,
            "sh",
            "-c",
            script,
        ]);
        assert!(out.status.success(), "{}: {}", text(&out.stderr), tb.log());
    };
    const IDLE: &str = "exec sleep 600";
    // A process that keeps the device open, as a FUSE daemon does.
    const HOLDS_IT: &str = "exec 3</dev/fuse && exec sleep 600";
    let opens = |id: &str| {
        let out = tb.ctr(&[
            "task",
            "exec",
            "--exec-id",
            &unique("open"),
            id,
            "sh",
            "-c",
            "exec 3</dev/fuse && echo opened",
        ]);
        (
            out.status.success() && text(&out.stdout) == "opened",
            text(&out.stderr),
        )
    };
    let status = || strictctl(None, &["status", "--config", &config_arg]);
    let reconcile = |how: &str| {
        strictctl(
            None,
            &["reconcile", "--config", &config_arg, "--on-revoke", how],
        )
    };
    let narrowed = unique("holds");
    let holding = unique("holds");
    start(&narrowed, IDLE);
    start(&holding, HOLDS_IT);
    let (open, why) = opens(&narrowed);
    assert!(open, "{why}");
    let out = status();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));

    snap_ok(&snapd, &["disconnect", "microk8s:fuse-support"]);
    let out = status();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    let listing = text(&out.stdout);
    assert!(
        listing.contains(narrowed.as_str()) && listing.contains(holding.as_str()),
        "{listing}"
    );
    assert!(
        listing.contains("/dev/fuse") && listing.contains("fuse-support"),
        "{listing}"
    );

    // report: recorded; the device still opens.
    let out = reconcile("report");
    assert!(out.status.success(), "{}", text(&out.stdout));
    let records = audit_records(&trail_of(&config), &narrowed);
    let revoked = records
        .iter()
        .find(|r| r["decision"] == "revoked")
        .expect("a revoked record");
    assert_eq!(revoked["action"], "reported");
    assert!(opens(&narrowed).0);

    // narrow: the device no longer opens, the container runs on, and status is clean; the container
    // that holds it open is stopped (a denial stops new opens only).
    let out = reconcile("narrow");
    let done = text(&out.stdout);
    assert!(out.status.success(), "{done} {}", text(&out.stderr));
    assert!(
        done.contains("narrowed: denied in its device cgroup: c 10:229 rwm"),
        "{done}"
    );
    assert!(done.contains("holds c 10:229 open"), "{done}");
    wait_stopped(tb, &holding);
    let (open, why) = opens(&narrowed);
    assert!(!open, "the revoked device still opens");
    assert!(why.contains("Operation not permitted"), "{why}");
    let out = status();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));

    // stop: the container is killed (its pod would restart it under the grants now).
    snap_ok(&snapd, &["connect", "microk8s:fuse-support"]);
    let third = unique("holds");
    start(&third, IDLE);
    snap_ok(&snapd, &["disconnect", "microk8s:fuse-support"]);
    let out = reconcile("stop");
    assert!(out.status.success(), "{}", text(&out.stdout));
    wait_stopped(tb, &third);
    for id in [&narrowed, &holding, &third] {
        tb.remove(id);
    }
}

fn wait_stopped(tb: &Testbed, id: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let tasks = text(&tb.ctr(&["task", "ls"]).stdout);
        let line = tasks.lines().find(|l| l.starts_with(id)).unwrap_or("");
        if line.contains("STOPPED") {
            return;
        }
        assert!(Instant::now() < deadline, "{id} not stopped: {tasks}");
        std::thread::sleep(Duration::from_millis(100));
    }
}
