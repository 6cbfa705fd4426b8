//! The task API through containerd: what containerd-shim-runc-v2 does, the strict shim does.

use std::time::Duration;

use strict_integration::{testbed, text, unique, IMAGE, STRICT};

#[test]
fn run_rm_passes_stdout_and_the_exit_code() {
    let out = testbed().run(STRICT, &[], &["sh", "-c", "echo out; echo err >&2; exit 3"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "out");
    assert!(text(&out.stderr).contains("err"));
}

#[test]
fn detached_exec_pause_resume_metrics_kill_delete() {
    let tb = testbed();
    let id = unique("life");
    let out = tb.ctr(&["run", "-d", "--runtime", STRICT, IMAGE, &id, "sleep", "300"]);
    assert!(out.status.success(), "{}", text(&out.stderr));

    let exec = tb.ctr(&[
        "tasks",
        "exec",
        "--exec-id",
        "e1",
        &id,
        "sh",
        "-c",
        "echo in-exec; exit 7",
    ]);
    assert_eq!(exec.status.code(), Some(7));
    assert_eq!(text(&exec.stdout), "in-exec");

    assert!(tb.ctr(&["tasks", "pause", &id]).status.success());
    assert!(text(&tb.ctr(&["tasks", "list"]).stdout)
        .lines()
        .any(|l| l.contains(&id) && l.contains("PAUSED")));
    assert!(tb.ctr(&["tasks", "resume", &id]).status.success());
    assert!(text(&tb.ctr(&["tasks", "list"]).stdout)
        .lines()
        .any(|l| l.contains(&id) && l.contains("RUNNING")));

    let ps = tb.ctr(&["tasks", "ps", &id]);
    assert!(
        ps.status.success() && text(&ps.stdout).lines().count() >= 2,
        "{}",
        text(&ps.stdout)
    );

    let metrics = tb.ctr(&["tasks", "metrics", &id]);
    assert!(metrics.status.success(), "{}", text(&metrics.stderr));
    assert!(
        text(&metrics.stdout).contains("memory"),
        "{}",
        text(&metrics.stdout)
    );

    assert!(tb
        .ctr(&["tasks", "kill", "-s", "SIGKILL", &id])
        .status
        .success());
    let mut stopped = false;
    for _ in 0..100 {
        if text(&tb.ctr(&["tasks", "list"]).stdout)
            .lines()
            .any(|l| l.contains(&id) && l.contains("STOPPED"))
        {
            stopped = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(stopped, "the task did not stop");
    assert!(tb.ctr(&["tasks", "delete", &id]).status.success());
    assert!(tb.ctr(&["containers", "delete", &id]).status.success());
}

#[test]
fn an_exec_that_would_gain_a_capability_is_refused() {
    let tb = testbed();
    let id = unique("exec");
    assert!(tb
        .ctr(&["run", "-d", "--runtime", STRICT, IMAGE, &id, "sleep", "300"])
        .status
        .success());
    let exec = tb.ctr(&[
        "tasks",
        "exec",
        "--exec-id",
        "e1",
        "--cap-add",
        "CAP_SYS_ADMIN",
        &id,
        "true",
    ]);
    let stderr = text(&exec.stderr);
    tb.remove(&id);
    if exec.status.success() {
        // Some ctr builds have no --cap-add for exec: then nothing was asked for.
        assert!(!stderr.contains("strict: refused"));
    } else {
        assert!(
            stderr.contains("strict: refused") || stderr.contains("flag provided but not defined"),
            "{stderr}"
        );
    }
}

#[test]
fn stdin_reaches_the_container_and_eof_ends_it() {
    let tb = testbed();
    let id = unique("stdin");
    let mut child = tb
        .ctr_command()
        .args([
            "run",
            "--rm",
            "--runtime",
            STRICT,
            IMAGE,
            &id,
            "sh",
            "-c",
            "wc -c",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"twelve bytes")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "12");
}

#[test]
fn the_shim_answers_version() {
    let shim = strict_integration::dist_dir().join("containerd-shim-strict-v2");
    let out = std::process::Command::new(shim).arg("-v").output().unwrap();
    assert!(text(&out.stdout).contains("io.containerd.strict.v2"));
}

#[test]
fn an_exec_like_its_container_is_allowed_without_a_gate_and_any_other_is_judged() {
    let tb = testbed();
    let id = unique("probe");
    let out = tb.ctr(&["run", "-d", "--runtime", STRICT, IMAGE, &id, "sleep", "300"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    // An exec probe: the container's own process with another command, answered by the shim from the
    // Create answer (no gate process, no record).
    let probe = tb.ctr(&[
        "tasks",
        "exec",
        "--exec-id",
        "p1",
        &id,
        "sh",
        "-c",
        "echo probed",
    ]);
    assert!(probe.status.success(), "{}", text(&probe.stderr));
    assert_eq!(text(&probe.stdout), "probed");
    // Another user: it differs from the container's process beyond the command, so a gate judges it
    // (allowed: it asks for nothing the container lacks) and the trail records it.
    let other = tb.ctr(&[
        "tasks",
        "exec",
        "--exec-id",
        "u1",
        "--user",
        "1000",
        &id,
        "id",
        "-u",
    ]);
    assert!(other.status.success(), "{}", text(&other.stderr));
    assert_eq!(text(&other.stdout), "1000");
    let execs: Vec<String> = strict_integration::audit_records(&tb.audit_log(), &id)
        .iter()
        .filter(|r| r["subject"] == "exec")
        .map(|r| format!("{} {}", r["exec_id"], r["decision"]))
        .collect();
    tb.remove(&id);
    assert_eq!(execs, ["\"u1\" \"allowed\""], "the exec records of {id}");
}
