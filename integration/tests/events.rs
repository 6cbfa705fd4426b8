//! Task events and the Tasks service through containerd's gRPC API (containerd-client), not ctr.
//!
//! How the containers are made: `ctr containers create` writes the container record (runtime
//! io.containerd.strict.v2, the OCI spec ctr generates from the image) and prepares its snapshot; everything
//! after that is gRPC — Snapshots.Mounts for the rootfs, then Tasks.Create/Start/Exec/Pause/Resume/Kill/
//! Wait/Delete, with an Events subscription filtered to the container. Building the spec and unpacking the
//! image into a snapshot through gRPC would re-implement ctr's image and spec code in the test without
//! testing anything of the shim; every request the shim answers still goes through gRPC here, including
//! the Create that carries the gated spec.

mod grpc;

use std::time::Duration;

use containerd_client::events::{TaskCreate, TaskDelete, TaskExecStarted, TaskStart};
use containerd_client::services::v1::{
    DeleteProcessRequest, DeleteTaskRequest, ExecProcessRequest, GetRequest, KillRequest,
    PauseTaskRequest, ResumeTaskRequest, StartRequest, WaitRequest,
};
use containerd_client::tonic::Code;
use containerd_client::types::v1::Status;
use serde_json::json;
use strict_integration::{testbed, text, unique, IMAGE, STRICT};

use grpc::{connect, container_spec, create_task, json_any, ns, subscribe, tasks, within, PROCESS};

/// Removes the container (task included) however the test ends.
struct Cleanup(String);

impl Drop for Cleanup {
    fn drop(&mut self) {
        testbed().remove(&self.0);
    }
}

fn create_container(id: &str, flags: &[&str]) -> Cleanup {
    let mut args = vec!["containers", "create", "--runtime", STRICT];
    args.extend_from_slice(flags);
    args.extend_from_slice(&[IMAGE, id, "sleep", "300"]);
    let out = testbed().ctr(&args);
    assert!(out.status.success(), "ctr {args:?}: {}", text(&out.stderr));
    Cleanup(id.to_string())
}

async fn status(channel: &containerd_client::tonic::transport::Channel, id: &str) -> Status {
    let process = tasks(channel)
        .get(ns(GetRequest {
            container_id: id.into(),
            exec_id: String::new(),
        }))
        .await
        .unwrap_or_else(|e| panic!("Tasks.Get {id}: {e}"))
        .into_inner()
        .process
        .expect("a process");
    Status::try_from(process.status).unwrap_or(Status::Unknown)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn task_events_follow_the_lifecycle_an_exec_and_a_pause_in_order() {
    let tb = testbed();
    let id = unique("events");
    let _cleanup = create_container(&id, &[]);
    let channel = connect(tb).await;
    let mut events = subscribe(&channel, &id).await;
    let mut client = tasks(&channel);

    let pid = within("Tasks.Create", create_task(&channel, &id, false))
        .await
        .unwrap_or_else(|e| panic!("Tasks.Create: {e:?}; containerd: {}", tb.log()));
    assert!(pid > 0);
    assert_eq!(status(&channel, &id).await, Status::Created);
    let started = within(
        "Tasks.Start",
        client.start(ns(StartRequest {
            container_id: id.clone(),
            exec_id: String::new(),
        })),
    )
    .await
    .expect("Tasks.Start")
    .into_inner()
    .pid;
    assert_eq!(started, pid, "Start answers the pid Create did");
    assert_eq!(status(&channel, &id).await, Status::Running);

    // An exec with the container's own process, as ctr makes it, but another command.
    let spec = container_spec(&channel, &id).await;
    let mut process = spec["process"].clone();
    process["args"] = json!(["sh", "-c", "exit 4"]);
    process["terminal"] = json!(false);
    // First one the gate refuses: a capability the container was not given. No exec-added for it.
    let mut greedy = process.clone();
    for set in ["bounding", "effective", "permitted"] {
        greedy["capabilities"][set] = json!(["CAP_SYS_ADMIN"]);
    }
    let refused = within(
        "Tasks.Exec",
        client.exec(ns(ExecProcessRequest {
            container_id: id.clone(),
            exec_id: "greedy".into(),
            spec: Some(json_any(PROCESS, &greedy)),
            ..Default::default()
        })),
    )
    .await
    .expect_err("an exec gaining CAP_SYS_ADMIN was let through");
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    assert!(
        refused.message().contains("strict: refused:"),
        "{refused:?}"
    );

    within(
        "Tasks.Exec",
        client.exec(ns(ExecProcessRequest {
            container_id: id.clone(),
            exec_id: "x1".into(),
            spec: Some(json_any(PROCESS, &process)),
            ..Default::default()
        })),
    )
    .await
    .unwrap_or_else(|e| panic!("Tasks.Exec: {e:?}"));
    let exec_pid = within(
        "Tasks.Start (exec)",
        client.start(ns(StartRequest {
            container_id: id.clone(),
            exec_id: "x1".into(),
        })),
    )
    .await
    .expect("Tasks.Start of the exec")
    .into_inner()
    .pid;
    assert!(exec_pid > 0 && exec_pid != pid);
    let waited = within(
        "Tasks.Wait (exec)",
        client.wait(ns(WaitRequest {
            container_id: id.clone(),
            exec_id: "x1".into(),
        })),
    )
    .await
    .expect("Tasks.Wait of the exec")
    .into_inner();
    assert_eq!(waited.exit_status, 4);
    let deleted = within(
        "Tasks.DeleteProcess",
        client.delete_process(ns(DeleteProcessRequest {
            container_id: id.clone(),
            exec_id: "x1".into(),
        })),
    )
    .await
    .expect("Tasks.DeleteProcess")
    .into_inner();
    assert_eq!((deleted.pid, deleted.exit_status), (exec_pid, 4));

    within(
        "Tasks.Pause",
        client.pause(ns(PauseTaskRequest {
            container_id: id.clone(),
        })),
    )
    .await
    .expect("Tasks.Pause");
    assert_eq!(status(&channel, &id).await, Status::Paused);
    within(
        "Tasks.Resume",
        client.resume(ns(ResumeTaskRequest {
            container_id: id.clone(),
        })),
    )
    .await
    .expect("Tasks.Resume");
    assert_eq!(status(&channel, &id).await, Status::Running);

    within(
        "Tasks.Kill",
        client.kill(ns(KillRequest {
            container_id: id.clone(),
            exec_id: String::new(),
            signal: 9,
            all: false,
        })),
    )
    .await
    .expect("Tasks.Kill");
    let waited = within(
        "Tasks.Wait",
        client.wait(ns(WaitRequest {
            container_id: id.clone(),
            exec_id: String::new(),
        })),
    )
    .await
    .expect("Tasks.Wait")
    .into_inner();
    assert_eq!(waited.exit_status, 137);
    assert_eq!(status(&channel, &id).await, Status::Stopped);
    let deleted = within(
        "Tasks.Delete",
        client.delete(ns(DeleteTaskRequest {
            container_id: id.clone(),
        })),
    )
    .await
    .expect("Tasks.Delete")
    .into_inner();
    assert_eq!((deleted.pid, deleted.exit_status), (pid, 137));

    events
        .wait_for("/tasks/delete", Duration::from_secs(10), |e| {
            e.topic == "/tasks/delete"
        })
        .await;
    events.settle().await;
    let seen = events.events();
    let described: Vec<String> = seen
        .iter()
        .map(|e| match e.topic.as_str() {
            "/tasks/exit" => {
                let (process, code) = e.exit();
                format!("/tasks/exit {process} {code}")
            }
            topic => topic.to_string(),
        })
        .collect();
    assert_eq!(
        described,
        [
            "/tasks/create".to_string(),
            "/tasks/start".into(),
            "/tasks/exec-added".into(),
            "/tasks/exec-started".into(),
            "/tasks/exit x1 4".into(),
            "/tasks/paused".into(),
            "/tasks/resumed".into(),
            format!("/tasks/exit {id} 137"),
            "/tasks/delete".into(),
        ],
        "the task events of {id}, in order"
    );
    // The payloads carry the pids the API answered.
    assert_eq!(seen[0].decode::<TaskCreate>().pid, pid);
    assert_eq!(seen[1].decode::<TaskStart>().pid, pid);
    let exec_started: TaskExecStarted = seen[3].decode();
    assert_eq!(
        (exec_started.exec_id.as_str(), exec_started.pid),
        ("x1", exec_pid)
    );
    let delete: TaskDelete = seen[8].decode();
    assert_eq!((delete.pid, delete.exit_status), (pid, 137));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_create_is_a_grpc_permission_denied_with_the_strict_message() {
    let tb = testbed();
    let id = unique("events-refused");
    let _cleanup = create_container(&id, &["--privileged"]);
    let channel = connect(tb).await;
    let mut events = subscribe(&channel, &id).await;

    let status = within("Tasks.Create", create_task(&channel, &id, false))
        .await
        .expect_err("a privileged container was created under the strict runtime");
    // What containerd 2.1 returns: the shim answers ttrpc PERMISSION_DENIED with the refusal as its
    // message; containerd maps the code through (errgrpc) and keeps the message.
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    assert!(
        status.message().contains("strict: refused:"),
        "{:?}",
        status.message()
    );
    eprintln!("containerd's answer to the refused Create: {status:?}");

    // Nothing was created: no task, no task event.
    let get = tasks(&channel)
        .get(ns(GetRequest {
            container_id: id.clone(),
            exec_id: String::new(),
        }))
        .await
        .expect_err("a task exists after the refused Create");
    assert_eq!(get.code(), Code::NotFound, "{get:?}");
    events.settle().await;
    assert_eq!(events.topics(), Vec::<String>::new());
}
