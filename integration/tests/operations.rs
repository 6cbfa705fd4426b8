//! What an operator configures (issue 4), through a real containerd: the configuration named by
//! containerd's runtime options (`ctr run --runtime-config-path`, CRI's `ConfigPath`), complain mode, a
//! configuration that does not load, the host's connections from snapd, and the audit trail of it all.

use std::io::{Read, Write};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use serde_json::Value;
use strict_integration::{audit_records, testbed, text, Testbed, NAMESPACE, STRICT};

/// The harness's configuration with `extra` top-level keys and `[audit]` moved to `trail`.
fn variant(tb: &Testbed, name: &str, extra: &str, trail: &Path) -> PathBuf {
    let base = std::fs::read_to_string(tb.strict_config()).unwrap();
    let base = base.replace("source = \"embedded\"\n", "").replace(
        &tb.audit_log().display().to_string(),
        &trail.display().to_string(),
    );
    let path = tb.run_dir.join(format!("{name}.toml"));
    std::fs::write(&path, format!("{extra}\n{base}")).unwrap();
    path
}

#[test]
fn complain_mode_runs_what_enforce_refuses_and_records_it() {
    let tb = testbed();
    let trail = tb.run_dir.join("complain-audit.log");
    let complain = variant(
        tb,
        "complain",
        "mode = \"complain\"\nhandler = \"strict-complain\"\nsource = \"embedded\"",
        &trail,
    );
    let flags = [
        "--mount",
        "type=bind,src=/etc,dst=/host-etc,options=rbind:ro",
    ];
    let (id, out) = tb.run_with_config(&complain, &flags, &["cat", "/host-etc/hostname"]);
    assert!(
        out.status.success(),
        "complain mode refused: {} {}",
        text(&out.stderr),
        tb.log()
    );
    let hostname = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
    assert_eq!(text(&out.stdout).trim(), hostname.trim());
    let found = audit_records(&trail, &id);
    assert_eq!(found.len(), 1, "{found:?}");
    let record = &found[0];
    assert_eq!(record["decision"], "would-refuse");
    assert_eq!(record["mode"], "complain");
    assert_eq!(record["handler"], "strict-complain");
    assert_eq!(record["namespace"], NAMESPACE);
    assert_eq!(record["config"], complain.display().to_string());
    assert_eq!(record["violations"][0]["rule"], "mount.host-path");
    assert_eq!(record["policy_digest"].as_str().unwrap().len(), 64);

    // The same container under the default handler's configuration (enforce) is refused, and recorded.
    let out = tb.run(STRICT, &flags, &["cat", "/host-etc/hostname"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("strict: refused: mounts["),
        "{}",
        text(&out.stderr)
    );
    let trail = std::fs::read_to_string(tb.audit_log()).unwrap();
    let last: Value = serde_json::from_str(trail.lines().last().unwrap()).unwrap();
    assert_eq!(last["decision"], "refused");
    assert_eq!(last["mode"], "enforce");
    assert_eq!(last["handler"], "strict");
}

#[test]
fn a_configuration_that_does_not_load_refuses_naming_file_and_key() {
    let tb = testbed();
    let trail = tb.run_dir.join("broken-audit.log");
    let broken = variant(tb, "broken", "audti = true", &trail);
    let (_, out) = tb.run_with_config(&broken, &[], &["true"]);
    assert!(!out.status.success(), "a broken configuration must refuse");
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("strict: cannot decide, refusing"),
        "{stderr}"
    );
    assert!(stderr.contains(&broken.display().to_string()), "{stderr}");
    assert!(stderr.contains("audti"), "{stderr}");

    let missing = tb.run_dir.join("no-such-config.toml");
    let (_, out) = tb.run_with_config(&missing, &[], &["true"]);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("no-such-config.toml") && stderr.contains("No such file"),
        "{stderr}"
    );
}

/// A server on a unix socket answering `GET /v2/connections` as snapd does, connecting `plugs` of the
/// snap microk8s to snapd's slots. Stops when dropped.
struct FakeSnapd {
    socket: PathBuf,
    stop: Arc<AtomicBool>,
}

impl FakeSnapd {
    fn start(socket: PathBuf, plugs: &[(&str, &str)]) -> FakeSnapd {
        let established: Vec<Value> = plugs
            .iter()
            .map(|(plug, interface)| {
                serde_json::json!({
                    "slot": {"snap": "snapd", "slot": interface},
                    "plug": {"snap": "microk8s", "plug": plug},
                    "interface": interface, "manual": true
                })
            })
            .collect();
        let body = serde_json::json!({
            "type": "sync", "status-code": 200, "status": "OK",
            "result": {"established": established, "plugs": [], "slots": []}
        })
        .to_string();
        let reply = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let _ = std::fs::remove_file(&socket);
        let listener = UnixListener::bind(&socket).unwrap();
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        std::thread::spawn(move || {
            while !stopped.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((mut stream, _)) => {
                        stream.set_nonblocking(false).unwrap();
                        let mut request = Vec::new();
                        let mut buf = [0u8; 1024];
                        while !request.ends_with(b"\r\n\r\n") {
                            match stream.read(&mut buf) {
                                Ok(0) | Err(_) => break,
                                Ok(n) => request.extend_from_slice(&buf[..n]),
                            }
                        }
                        let _ = stream.write_all(reply.as_bytes());
                    }
                    Err(_) => std::thread::sleep(std::time::Duration::from_millis(5)),
                }
            }
        });
        FakeSnapd { socket, stop }
    }
}

impl Drop for FakeSnapd {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = std::fs::remove_file(&self.socket);
    }
}

#[test]
fn connections_from_snapd_decide_and_an_unreachable_snapd_refuses() {
    if !Path::new("/dev/fuse").exists() {
        panic!("this test needs /dev/fuse on the host (connected.rs needs it too)");
    }
    let tb = testbed();
    let socket = tb.run_dir.join("snapd.socket");
    let trail = tb.run_dir.join("snapd-audit.log");
    let config = variant(
        tb,
        "snapd",
        &format!(
            "source = \"snapd\"\nsnapd_socket = \"{}\"\nsource_timeout = \"2s\"",
            socket.display()
        ),
        &trail,
    );
    // Plugs of the MicroK8s snap file: a plug it does not declare would count nowhere.
    let fuse = ["--device", "/dev/fuse"];
    let check = ["sh", "-c", "test -c /dev/fuse && echo fuse"];
    {
        let _snapd = FakeSnapd::start(
            socket.clone(),
            &[("network", "network"), ("fuse-support", "fuse-support")],
        );
        let (id, out) = tb.run_with_config(&config, &fuse, &check);
        assert!(
            out.status.success(),
            "fuse-support connected through snapd: {} {}",
            text(&out.stderr),
            tb.log()
        );
        assert_eq!(text(&out.stdout).trim(), "fuse");
        let record = &audit_records(&trail, &id)[0];
        // Runs: allowed, or narrowed (ctr gives no seccomp filter; the gate installs the granted one).
        assert_ne!(record["decision"], "refused", "{record}");
        assert!(record["violations"].as_array().unwrap().is_empty());
        assert!(
            record["permissions_source"]
                .as_str()
                .unwrap()
                .starts_with(&format!("snapd ({}", socket.display())),
            "{record}"
        );
    }
    {
        // snapd answers, but fuse-support is no longer connected: refused with the interface to connect.
        let _snapd = FakeSnapd::start(socket.clone(), &[("network", "network")]);
        let (_, out) = tb.run_with_config(&config, &fuse, &check);
        assert!(!out.status.success());
        assert!(
            text(&out.stderr).contains("connect fuse-support"),
            "{}",
            text(&out.stderr)
        );
    }
    // No snapd at all: the container is refused with the cause, never run unconfined.
    let (id, out) = tb.run_with_config(&config, &[], &["true"]);
    assert!(!out.status.success(), "an unreachable snapd must refuse");
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("strict: cannot decide, refusing"),
        "{stderr}"
    );
    assert!(
        stderr.contains("snapd at") && stderr.contains("cannot connect"),
        "{stderr}"
    );
    let record = &audit_records(&trail, &id)[0];
    assert_eq!(record["decision"], "undecided");
    assert!(record["error"].as_str().unwrap().contains("cannot connect"));
}
