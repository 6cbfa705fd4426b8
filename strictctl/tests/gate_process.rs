//! The shim's side of the policy gate against real processes: `strictctl gate` itself (admit, narrow,
//! refuse, exec, update, and the runtime it names), and gates that die or answer nonsense, each a refusal
//! that says why. One test: the gate reads `STRICT_CONFIG` from this process's environment.

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use strict_protocol::PodRole;
use strict_shim::error::Error;
use strict_shim::exits::Exits;
use strict_shim::gate_client::{GateProcesses, Gatekeeper};

const DEFAULT_SPEC: &str = include_str!("../../policy/tests/fixtures/containerd/default.json");
const SYS_ADMIN_SPEC: &str =
    include_str!("../../policy/tests/fixtures/containerd/cap-add-sys-admin.json");

fn bundle(dir: &Path, id: &str, spec: &str) -> PathBuf {
    let bundle = dir.join(id);
    std::fs::create_dir_all(bundle.join("rootfs")).unwrap();
    std::fs::write(bundle.join("config.json"), spec).unwrap();
    bundle
}

fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// The shim's reaper, as containerd-shim runs it: every child's exit goes to the hub.
fn reaper() -> Arc<Exits> {
    use nix::sys::wait::{waitpid, WaitStatus};
    let exits = Arc::new(Exits::default());
    let hub = exits.clone();
    std::thread::spawn(move || loop {
        match waitpid(None, None) {
            Ok(WaitStatus::Exited(pid, code)) => hub.exited(pid.as_raw(), code),
            Ok(WaitStatus::Signaled(pid, signal, _)) => {
                hub.exited(pid.as_raw(), 128 + signal as i32)
            }
            Ok(_) => {}
            Err(_) => std::thread::sleep(std::time::Duration::from_millis(5)),
        }
    });
    exits
}

fn undecided(error: Error) -> String {
    match error {
        Error::Undecided(message) => message,
        other => panic!("expected a refusal for want of a decision, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shim_asks_strictctl_gate_and_fails_closed_without_an_answer() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("strict.toml");
    std::fs::write(
        &config,
        format!(
            "source = \"embedded\"\n[runtime]\nbinary = \"/nonexistent/runc\"\nroot = \"{}\"\n[audit]\npath = \"{}\"\n",
            dir.path().join("runc").display(),
            dir.path().join("audit.log").display()
        ),
    )
    .unwrap();
    // The only test in this binary: nothing else reads the environment meanwhile.
    std::env::set_var("STRICT_CONFIG", &config);
    let exits = reaper();
    let strictctl = PathBuf::from(env!("CARGO_BIN_EXE_strictctl"));
    let gates = GateProcesses::new(strictctl, "k8s.io", false, exits.clone());
    let gate: &dyn Gatekeeper = &gates;

    // Admitted and narrowed: the spec in the bundle is the narrowed one, and the answer names the runtime.
    let narrowed = bundle(dir.path(), "c1", DEFAULT_SPEC);
    let admitted = gate
        .create("c1", &narrowed, Vec::new(), Vec::new())
        .await
        .unwrap();
    assert_eq!(admitted.role, PodRole::None);
    assert!(admitted.own_pid_namespace);
    // Its process ran as containerd sent it: execs like it need no gate (exec probes).
    let baseline = admitted.exec_baseline.as_ref().expect("an exec baseline");
    assert!(baseline.free_fields.iter().any(|f| f == "args"));
    assert!(
        !baseline.process.contains("\"args\""),
        "{}",
        baseline.process
    );
    assert_eq!(admitted.runtime.binary, Path::new("/nonexistent/runc"));
    assert_eq!(admitted.runtime.root, dir.path().join("runc/k8s.io"));
    let written = std::fs::read_to_string(narrowed.join("config.json")).unwrap();
    assert!(written.contains("\"seccomp\""), "{written}");

    // Refused, with the strict message; the bundle is left as it came.
    let refused = bundle(dir.path(), "c2", SYS_ADMIN_SPEC);
    match gate.create("c2", &refused, Vec::new(), Vec::new()).await {
        Err(Error::Refused(message)) => {
            assert!(message.starts_with("strict: refused:"), "{message}");
            assert!(message.contains("CAP_SYS_ADMIN"), "{message}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(
        std::fs::read_to_string(refused.join("config.json")).unwrap(),
        SYS_ADMIN_SPEC
    );

    // An exec may not gain a capability its container lacks; one that gains nothing runs.
    let process = serde_json::json!({
        "args": ["sh"], "cwd": "/", "user": {"uid": 0, "gid": 0},
        "capabilities": {"bounding": ["CAP_SYS_ADMIN"], "effective": ["CAP_SYS_ADMIN"],
                         "permitted": ["CAP_SYS_ADMIN"]}
    });
    let error = gate
        .exec("c1", "e1", &narrowed, process.to_string().as_bytes())
        .await
        .unwrap_err();
    assert!(
        matches!(&error, Error::Refused(m) if m.contains("CAP_SYS_ADMIN")),
        "{error:?}"
    );
    // One that lists no capabilities would get all of runc's: refused (absent is not empty).
    let absent = serde_json::json!({"args": ["true"], "cwd": "/", "user": {"uid": 0, "gid": 0}, "noNewPrivileges": true});
    let error = gate
        .exec("c1", "e2", &narrowed, absent.to_string().as_bytes())
        .await
        .unwrap_err();
    assert!(
        matches!(&error, Error::Refused(m) if m.contains("lists no capabilities")),
        "{error:?}"
    );
    let plain = serde_json::json!({"args": ["true"], "cwd": "/", "user": {"uid": 0, "gid": 0}, "noNewPrivileges": true,
                                   "capabilities": {"bounding": [], "effective": [], "permitted": []}});
    gate.exec("c1", "e3", &narrowed, plain.to_string().as_bytes())
        .await
        .unwrap();
    // A key runc would read (Go matches keys case-insensitively) and the gate does not know: refused.
    let mut sneaky = plain.clone();
    sneaky["Capabilities"] = serde_json::json!({"bounding": ["CAP_SYS_ADMIN"]});
    let error = gate
        .exec("c1", "e4", &narrowed, sneaky.to_string().as_bytes())
        .await
        .unwrap_err();
    assert!(
        matches!(&error, Error::Refused(m) if m.contains("process.Capabilities") && m.contains("does not know")),
        "{error:?}"
    );

    // An update may not open a device; a memory limit passes through as JSON for the runtime.
    let device = serde_json::json!({"devices": [{"allow": true, "type": "c", "major": 10, "minor": 232, "access": "rwm"}]});
    let error = gate
        .update("c1", &narrowed, device.to_string().as_bytes())
        .await
        .unwrap_err();
    assert!(matches!(error, Error::Refused(_)), "{error:?}");
    let memory = serde_json::json!({"memory": {"limit": 67108864}});
    let applied = gate
        .update("c1", &narrowed, memory.to_string().as_bytes())
        .await
        .unwrap();
    assert!(applied.contains("67108864"), "{applied}");

    // Every decision reached the audit trail, written by the gate processes.
    let trail = std::fs::read_to_string(dir.path().join("audit.log")).unwrap();
    assert_eq!(trail.lines().count(), 8, "{trail}");

    // A gate that dies without answering, answers nonsense or hangs (killed at the deadline) is a
    // refusal that says so.
    let cases = [
        ("dies", "exit 3", "exited with status 3 without an answer"),
        ("babbles", "cat >/dev/null; echo hello", "answered nonsense"),
        (
            "hangs",
            "exec sleep 60",
            "did not answer within 500ms and was killed",
        ),
    ];
    for (name, body, expected) in cases {
        let gates = GateProcesses::new(
            script(dir.path(), name, body),
            "k8s.io",
            false,
            exits.clone(),
        )
        .with_deadline(Duration::from_millis(500));
        let started = Instant::now();
        let error = (&gates as &dyn Gatekeeper)
            .create("c3", &narrowed, Vec::new(), Vec::new())
            .await
            .unwrap_err();
        let message = undecided(error);
        assert!(message.contains(expected), "{name}: {message}");
        assert!(started.elapsed() < Duration::from_secs(5), "{name}");
    }

    // A shim of another release: strictctl refuses its protocol, saying so.
    // The reaper above takes the child's exit: read its answer, never wait for it.
    #[allow(clippy::zombie_processes)]
    let mut child = Command::new(env!("CARGO_BIN_EXE_strictctl"))
        .args(["gate", "--namespace", "k8s.io"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let request = r#"{"protocol": 99, "op": "exec", "id": "c1", "exec_id": "e", "bundle": "/", "process": "{}"}"#;
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(request.as_bytes()).unwrap();
    drop(stdin);
    let mut answer = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut answer)
        .unwrap();
    assert!(
        answer.contains(&format!(
            "gate protocol 99, this strictctl {}",
            strict_protocol::PROTOCOL
        )),
        "{answer}"
    );

    // The host's connections cannot be read (no snapd): Creates are refused, but an exec, judged against
    // its container's spec only, still runs (exec probes do not depend on snapd).
    std::fs::write(
        &config,
        format!(
            "source = \"snapd\"\nsnapd_socket = \"{}\"\n[runtime]\nbinary = \"/nonexistent/runc\"\nroot = \"{}\"\n[audit]\npath = \"{}\"\n",
            dir.path().join("no-snapd.socket").display(),
            dir.path().join("runc").display(),
            dir.path().join("audit.log").display()
        ),
    )
    .unwrap();
    let strictctl = PathBuf::from(env!("CARGO_BIN_EXE_strictctl"));
    let gates = GateProcesses::new(strictctl, "k8s.io", false, exits.clone());
    let gate: &dyn Gatekeeper = &gates;
    let again = bundle(dir.path(), "c4", DEFAULT_SPEC);
    let message = undecided(
        gate.create("c4", &again, Vec::new(), Vec::new())
            .await
            .unwrap_err(),
    );
    assert!(message.contains("snapd"), "{message}");
    gate.exec("c1", "e3", &narrowed, plain.to_string().as_bytes())
        .await
        .unwrap();

    // A gate started ahead that is asked after CURRENT_FOR reads the configuration again: the file as it
    // is when the question comes decides (here: complain mode admits what enforce refused).
    let embedded = |mode: &str| {
        format!(
            "mode = \"{mode}\"\nsource = \"embedded\"\n[runtime]\nbinary = \"/nonexistent/runc\"\nroot = \"{}\"\n[audit]\npath = \"{}\"\n",
            dir.path().join("runc").display(),
            dir.path().join("audit.log").display()
        )
    };
    std::fs::write(&config, embedded("enforce")).unwrap();
    let strictctl = PathBuf::from(env!("CARGO_BIN_EXE_strictctl"));
    let gates = GateProcesses::new(strictctl, "k8s.io", false, exits.clone());
    let gate: &dyn Gatekeeper = &gates;
    tokio::time::sleep(strict_protocol::gate::CURRENT_FOR + Duration::from_millis(300)).await;
    assert!(
        strict_protocol::gate::CURRENT_FOR + Duration::from_millis(300)
            < strict_protocol::gate::IDLE_LIMIT / 2
    );
    std::fs::write(&config, embedded("complain")).unwrap();
    let later = bundle(dir.path(), "c5", SYS_ADMIN_SPEC);
    gate.create("c5", &later, Vec::new(), Vec::new())
        .await
        .expect("admitted under the configuration as it is now (complain)");
}
