//! Resources of strict containers: Update (through containerd's gRPC Tasks API: ctr 2.1 has no
//! `tasks update`), the gate on updates, OOM kills reported as TaskOOM before TaskExit, and metrics.
//!
//! cgroup files are read where /proc/<init pid>/cgroup says the container is, on v1 (this host's hybrid
//! layout) or v2.

mod grpc;

use std::path::Path;
use std::time::Duration;

use containerd_client::events::TaskOom;
use containerd_client::services::v1::UpdateTaskRequest;
use containerd_client::tonic::Code;
use serde_json::json;
use strict_integration::{cgroup_dir, testbed, text, unique, IMAGE, STRICT};

use grpc::{connect, json_any, ns, subscribe, tasks, within, LINUX_RESOURCES};

fn read(path: &Path) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
        .trim()
        .to_string()
}

/// The memory limit of `pid`'s cgroup, in bytes, on either hierarchy.
fn memory_limit(pid: u32) -> u64 {
    let dir = cgroup_dir(pid, "memory");
    let v1 = dir.join("memory.limit_in_bytes");
    let value = if v1.exists() {
        read(&v1)
    } else {
        read(&dir.join("memory.max"))
    };
    value.parse().unwrap_or(u64::MAX)
}

/// The CFS quota of `pid`'s cgroup in µs per period (-1: none), and the period.
fn cpu_quota(pid: u32) -> (i64, u64) {
    let dir = cgroup_dir(pid, "cpu");
    let v1 = dir.join("cpu.cfs_quota_us");
    if v1.exists() {
        return (
            read(&v1).parse().unwrap(),
            read(&dir.join("cpu.cfs_period_us")).parse().unwrap(),
        );
    }
    let max = read(&dir.join("cpu.max"));
    let (quota, period) = max.split_once(' ').unwrap();
    (quota.parse().unwrap_or(-1), period.parse().unwrap())
}

fn run_detached(id: &str, flags: &[&str], cmd: &[&str]) {
    let tb = testbed();
    let mut args = vec!["run", "-d", "--runtime", STRICT];
    args.extend_from_slice(flags);
    args.extend_from_slice(&[IMAGE, id]);
    args.extend_from_slice(cmd);
    let out = tb.ctr(&args);
    assert!(out.status.success(), "ctr {args:?}: {}", text(&out.stderr));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_changes_the_memory_and_cpu_limits_of_a_running_container() {
    let tb = testbed();
    let id = unique("update");
    run_detached(&id, &["--memory-limit", "67108864"], &["sleep", "300"]);
    let pid = tb.task_pid(&id);
    assert_eq!(memory_limit(pid), 67108864, "the limit ctr asked for");

    let channel = connect(tb).await;
    let update = UpdateTaskRequest {
        container_id: id.clone(),
        resources: Some(json_any(
            LINUX_RESOURCES,
            &json!({
                "memory": {"limit": 134217728},
                "cpu": {"quota": 50000, "period": 100000}
            }),
        )),
        ..Default::default()
    };
    let result = within("Tasks.Update", tasks(&channel).update(ns(update))).await;
    let (memory, cpu) = (memory_limit(pid), cpu_quota(pid));
    tb.remove(&id);
    result.unwrap_or_else(|status| {
        panic!(
            "Update was refused: {status:?}; containerd: {}",
            testbed().log()
        )
    });
    assert_eq!(memory, 134217728, "memory limit after the update");
    assert_eq!(
        cpu,
        (50000, 100000),
        "CFS quota and period after the update"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_that_opens_devices_is_refused_with_the_strict_message() {
    let tb = testbed();
    let id = unique("update-dev");
    run_detached(&id, &[], &["sleep", "300"]);
    let pid = tb.task_pid(&id);
    let devices = cgroup_dir(pid, "devices");
    let before = std::fs::read_to_string(devices.join("devices.list")).ok();

    let channel = connect(tb).await;
    // Every device, read-write-mknod: what `--privileged` would have had at create.
    let update = UpdateTaskRequest {
        container_id: id.clone(),
        resources: Some(json_any(
            LINUX_RESOURCES,
            &json!({"devices": [{"allow": true, "access": "rwm"}]}),
        )),
        ..Default::default()
    };
    let result = within("Tasks.Update", tasks(&channel).update(ns(update))).await;
    let after = std::fs::read_to_string(devices.join("devices.list")).ok();
    let running = text(&tb.ctr(&["tasks", "list"]).stdout);
    tb.remove(&id);

    let status = match result {
        Ok(_) => panic!("an update opening every device was let through"),
        Err(status) => status,
    };
    eprintln!("containerd's answer to the widening update: {status:?}");
    assert_eq!(
        status.code(),
        Code::PermissionDenied,
        "containerd passes the shim's PERMISSION_DENIED on: {status:?}"
    );
    assert!(
        status.message().contains("strict: refused:"),
        "{:?}",
        status.message()
    );
    // The cgroup was not touched, and the container runs on.
    assert_eq!(before, after, "devices.list changed");
    if let Some(after) = after {
        assert!(!after.contains("a *:* rwm"), "{after}");
    }
    assert!(
        running
            .lines()
            .any(|l| l.starts_with(&id) && l.contains("RUNNING")),
        "{running}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oom_kill_is_reported_before_the_exit_and_the_status_is_137() {
    let tb = testbed();
    let id = unique("oom");
    let channel = connect(tb).await;
    // dd's 64 MiB buffer, filled by one read from /dev/zero, is charged to a 32 MiB memory cgroup (no
    // swap): the cgroup's OOM killer kills dd, the container's init.
    let events = subscribe(&channel, &id).await;
    let name = id.clone();
    let out = tokio::task::spawn_blocking(move || {
        testbed().ctr(&[
            "run",
            "--rm",
            "--runtime",
            STRICT,
            "--memory-limit",
            "33554432",
            IMAGE,
            &name,
            "dd",
            "if=/dev/zero",
            "of=/dev/null",
            "bs=64M",
            "count=1",
        ])
    })
    .await
    .unwrap();
    let _ = tb.ctr(&["containers", "delete", &id]);
    assert_eq!(
        out.status.code(),
        Some(137),
        "the OOM-killed init's status; stderr: {}",
        text(&out.stderr)
    );
    events
        .wait_for("/tasks/delete", Duration::from_secs(10), |e| {
            e.topic == "/tasks/delete"
        })
        .await;
    let seen = events.events();
    let topics = events.topics();
    let oom = topics
        .iter()
        .position(|t| t == "/tasks/oom")
        .unwrap_or_else(|| panic!("no /tasks/oom event: {topics:?}"));
    let exit = seen
        .iter()
        .position(|e| e.topic == "/tasks/exit" && e.exit().0 == id)
        .unwrap_or_else(|| panic!("no /tasks/exit event for the init: {topics:?}"));
    assert!(oom < exit, "TaskOOM must come before TaskExit: {topics:?}");
    assert_eq!(seen[exit].exit().1, 137, "TaskExit's status");
    let payload: TaskOom = seen[oom].decode();
    assert_eq!(payload.container_id, id);
}

/// `ctr tasks metrics` rows: `name value`.
fn metric(table: &str, name: &str) -> u64 {
    table
        .lines()
        .find_map(|line| {
            let mut fields = line.split_whitespace();
            (fields.next() == Some(name)).then(|| fields.next()?.parse().ok())?
        })
        .unwrap_or_else(|| panic!("no {name} in the metrics:\n{table}"))
}

#[test]
fn metrics_show_the_memory_a_strict_container_uses() {
    let tb = testbed();
    let id = unique("metrics");
    // The shell holds ~8 MB of text while it waits for sleep (a last command would be exec'd, ending the
    // shell and freeing its memory: hence the echo after it).
    run_detached(
        &id,
        &["--memory-limit", "67108864"],
        &[
            "sh",
            "-c",
            "x=$(head -c 8000000 /dev/zero | tr '\\000' a); touch /tmp/ready; sleep 300; echo ${#x}",
        ],
    );
    let pid = tb.task_pid(&id);
    let mut ready = false;
    for _ in 0..100 {
        let out = tb.ctr(&[
            "tasks",
            "exec",
            "--exec-id",
            "probe",
            &id,
            "test",
            "-e",
            "/tmp/ready",
        ]);
        if out.status.success() {
            ready = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let table = tb.ctr(&["tasks", "metrics", &id]);
    let json = tb.ctr(&["tasks", "metrics", "--format", "json", &id]);
    let cgroup_usage: u64 = {
        let dir = cgroup_dir(pid, "memory");
        let v1 = dir.join("memory.usage_in_bytes");
        let file = if v1.exists() {
            v1
        } else {
            dir.join("memory.current")
        };
        read(&file).parse().unwrap()
    };
    tb.remove(&id);
    assert!(ready, "the container never allocated its memory");
    assert!(table.status.success(), "{}", text(&table.stderr));
    let table = text(&table.stdout);
    let usage = metric(&table, "memory.usage_in_bytes");
    assert!(
        usage >= 8_000_000,
        "usage {usage} does not count the 8 MB the shell holds:\n{table}"
    );
    assert!(
        usage.abs_diff(cgroup_usage) < 4 << 20,
        "metrics say {usage}, the cgroup {cgroup_usage}"
    );
    assert_eq!(metric(&table, "memory.limit_in_bytes"), 67108864, "{table}");
    assert!(metric(&table, "pids.current") >= 2, "{table}");
    assert!(metric(&table, "cpuacct.usage") > 0, "{table}");
    assert!(json.status.success(), "{}", text(&json.stderr));
    let json: serde_json::Value = serde_json::from_slice(&json.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", text(&json.stdout)));
    assert!(
        json.to_string().contains("usage") && json.to_string().contains("67108864"),
        "{json}"
    );
}
