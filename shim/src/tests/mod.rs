//! The lifecycle through the task service itself, as containerd drives it over ttrpc, on a `FakeRuntime`
//! and an event `Recorder`, without root: the real gate (embedded profiles, the MicroK8s default
//! connections), the real exit hub, container and process logic; only runc is replaced.

mod fake;

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use containerd_shim::api::*;
use containerd_shim::protos::events::task::{
    TaskCreate, TaskDelete, TaskExecAdded, TaskExecStarted, TaskExit, TaskOOM, TaskPaused,
    TaskResumed, TaskStart,
};
use containerd_shim::protos::protobuf::well_known_types::any::Any;
use containerd_shim::protos::protobuf::MessageField;
use containerd_shim::protos::ttrpc::{self, Code};
use containerd_shim::protos::types::task::Status;
use containerd_shim::{ExitSignal, Task, TtrpcContext, TtrpcResult};
use strict_policy::{Permissions, PolicyConfig};
use strict_protocol::{AdmittedRuntime, Request};
use strictctl::gate::Gate;
use strictctl::setup;

use crate::container::Context;
use crate::error::Result;
use crate::events::{topics, Recorder};
use crate::exits::Exits;
use crate::gate_client::Gatekeeper;
use crate::task::TaskService;

use fake::FakeRuntime;

const DEFAULT_SPEC: &str = include_str!("../../../policy/tests/fixtures/containerd/default.json");
const SYS_ADMIN_SPEC: &str =
    include_str!("../../../policy/tests/fixtures/containerd/cap-add-sys-admin.json");

const SIGKILL: u32 = 9;
const SIGTERM: u32 = 15;

/// The policy as the shim loads it with no configuration file: loaded once for all tests.
fn permissions() -> Arc<Permissions> {
    static PERMISSIONS: OnceLock<Arc<Permissions>> = OnceLock::new();
    PERMISSIONS
        .get_or_init(|| {
            // The embedded connections whatever the machine has, and a trail of the tests' own.
            let mut config = PolicyConfig {
                source: strict_policy::Source::Embedded,
                ..PolicyConfig::default()
            };
            config.audit.path = std::env::temp_dir()
                .join(format!("strict-shim-tests-{}", std::process::id()))
                .join("audit.log");
            let catalog = setup::load_catalog(&config, None).unwrap();
            Arc::new(setup::load_permissions(config, catalog, &[]).unwrap())
        })
        .clone()
}

struct Shim {
    service: Arc<TaskService>,
    runtime: Arc<FakeRuntime>,
    events: Arc<Recorder>,
    exit: Arc<ExitSignal>,
    dir: tempfile::TempDir,
}

fn ctx() -> TtrpcContext {
    TtrpcContext::default()
}

/// The status code and message of a failed request.
fn refusal<T: std::fmt::Debug>(result: TtrpcResult<T>) -> (Code, String) {
    match result {
        Err(ttrpc::Error::RpcStatus(status)) => (status.code(), status.message().to_string()),
        other => panic!("expected an error status, got {other:?}"),
    }
}

fn exec_request(id: &str, exec_id: &str, process: &serde_json::Value) -> ExecProcessRequest {
    ExecProcessRequest {
        id: id.into(),
        exec_id: exec_id.into(),
        spec: MessageField::some(Any {
            type_url: "types.containerd.io/opencontainers/runtime-spec/1/Process".into(),
            value: serde_json::to_vec(process).unwrap(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The gate process's answers, given in process: the same requests and JSON, without the process.
struct InProcessGate(Gate);

#[async_trait::async_trait]
impl Gatekeeper for InProcessGate {
    async fn answer(&self, request: Request) -> Result<Vec<u8>> {
        // The fake runtime ignores the runtime settings the gate names.
        let runtime = AdmittedRuntime {
            binary: "/nonexistent/runc".into(),
            root: "/nonexistent".into(),
            systemd_cgroup: false,
        };
        Ok(strictctl::gate::answer(&self.0, &runtime, request))
    }
}

impl Shim {
    fn new() -> Shim {
        let exits = Arc::new(Exits::default());
        let runtime = Arc::new(FakeRuntime::new(exits.clone()));
        let events = Arc::new(Recorder::default());
        let gate = InProcessGate(Gate::from_permissions(permissions(), "default"));
        let ctx = Context {
            namespace: "k8s.io".into(),
            runtime: runtime.clone(),
            exits,
            events: events.clone(),
            gate: Arc::new(gate),
            serving: Default::default(),
            pods: Arc::default(),
        };
        let exit = Arc::new(ExitSignal::default());
        Shim {
            service: Arc::new(TaskService::new(ctx, exit.clone())),
            runtime,
            events,
            exit,
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// A bundle whose config.json is `spec` (a capture from containerd) running `args`.
    fn bundle_of(&self, id: &str, spec: &str, args: &[&str]) -> PathBuf {
        let bundle = self.dir.path().join(id);
        std::fs::create_dir_all(&bundle).unwrap();
        let mut spec: serde_json::Value = serde_json::from_str(spec).unwrap();
        spec["process"]["args"] = serde_json::json!(args);
        std::fs::write(bundle.join("config.json"), spec.to_string()).unwrap();
        bundle
    }

    async fn create(&self, id: &str, args: &[&str]) -> u32 {
        let bundle = self.bundle_of(id, DEFAULT_SPEC, args);
        self.create_in(id, &bundle).await.unwrap().pid
    }

    async fn create_in(&self, id: &str, bundle: &Path) -> TtrpcResult<CreateTaskResponse> {
        let req = CreateTaskRequest {
            id: id.into(),
            bundle: bundle.display().to_string(),
            ..Default::default()
        };
        self.service.create(&ctx(), req).await
    }

    async fn start(&self, id: &str, exec_id: &str) -> TtrpcResult<u32> {
        let req = StartRequest {
            id: id.into(),
            exec_id: exec_id.into(),
            ..Default::default()
        };
        self.service.start(&ctx(), req).await.map(|r| r.pid)
    }

    /// A started container running `args`, with its init's pid.
    async fn running(&self, id: &str, args: &[&str]) -> u32 {
        let pid = self.create(id, args).await;
        assert_eq!(self.start(id, "").await.unwrap(), pid);
        pid
    }

    async fn kill(&self, id: &str, exec_id: &str, signal: u32, all: bool) -> TtrpcResult<()> {
        let req = KillRequest {
            id: id.into(),
            exec_id: exec_id.into(),
            signal,
            all,
            ..Default::default()
        };
        self.service.kill(&ctx(), req).await.map(drop)
    }

    async fn wait(&self, id: &str, exec_id: &str) -> u32 {
        let req = WaitRequest {
            id: id.into(),
            exec_id: exec_id.into(),
            ..Default::default()
        };
        let ctx = ctx();
        let wait = self.service.wait(&ctx, req);
        let response = tokio::time::timeout(Duration::from_secs(10), wait)
            .await
            .expect("Wait returns")
            .unwrap();
        assert!(response.exited_at.is_some());
        response.exit_status
    }

    async fn state(&self, id: &str, exec_id: &str) -> TtrpcResult<StateResponse> {
        let req = StateRequest {
            id: id.into(),
            exec_id: exec_id.into(),
            ..Default::default()
        };
        self.service.state(&ctx(), req).await
    }

    async fn status(&self, id: &str, exec_id: &str) -> Status {
        self.state(id, exec_id).await.unwrap().status.unwrap()
    }

    async fn delete(&self, id: &str, exec_id: &str) -> TtrpcResult<DeleteResponse> {
        let req = DeleteRequest {
            id: id.into(),
            exec_id: exec_id.into(),
            ..Default::default()
        };
        self.service.delete(&ctx(), req).await
    }

    async fn exec(&self, id: &str, exec_id: &str, process: &serde_json::Value) -> TtrpcResult<()> {
        let req = exec_request(id, exec_id, process);
        self.service.exec(&ctx(), req).await.map(drop)
    }

    /// The process of the container's gated spec (what containerd bases an exec on), running `args`.
    fn process_of(&self, id: &str, args: &[&str]) -> serde_json::Value {
        let spec = std::fs::read(self.dir.path().join(id).join("config.json")).unwrap();
        let spec: serde_json::Value = serde_json::from_slice(&spec).unwrap();
        let mut process = spec["process"].clone();
        process["args"] = serde_json::json!(args);
        process
    }

    async fn shutdown(&self) -> bool {
        self.service
            .shutdown(&ctx(), ShutdownRequest::default())
            .await
            .unwrap();
        tokio::time::timeout(Duration::from_millis(200), self.exit.wait())
            .await
            .is_ok()
    }

    fn topics(&self) -> Vec<String> {
        self.events.topics()
    }

    /// Waits until `count` events of `topic` are published: Wait returns once an exit is recorded, and
    /// its TaskExit may still be on its way.
    async fn published(&self, topic: &str, count: usize) {
        let enough = || self.topics().iter().filter(|t| *t == topic).count() >= count;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while !enough() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{count} × {topic} were not published: {:?}",
                self.topics()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    fn runtime_calls(&self, verb: &str) -> Vec<String> {
        let prefix = format!("{verb} ");
        let calls = self.runtime.calls();
        calls
            .into_iter()
            .filter(|c| c.starts_with(&prefix))
            .collect()
    }
}

fn strings(topics: &[&str]) -> Vec<String> {
    topics.iter().map(|t| t.to_string()).collect()
}

fn position(topics: &[String], topic: &str) -> usize {
    topics
        .iter()
        .position(|t| t == topic)
        .unwrap_or_else(|| panic!("{topic} was not published: {topics:?}"))
}

#[tokio::test]
async fn create_start_exit_delete_are_published_in_containerds_order() {
    let shim = Shim::new();
    // A publisher slow to deliver TaskExit: the TaskDelete that follows must still come after it.
    shim.events
        .slow_down(topics::EXIT, Duration::from_millis(200));
    let pid = shim.create("c", &["sleep", "3600"]).await;
    assert!(pid > 0);
    let state = shim.state("c", "").await.unwrap();
    assert_eq!((state.status.unwrap(), state.pid), (Status::CREATED, pid));

    assert_eq!(shim.start("c", "").await.unwrap(), pid);
    assert_eq!(shim.status("c", "").await, Status::RUNNING);

    shim.kill("c", "", SIGTERM, false).await.unwrap();
    assert_eq!(shim.wait("c", "").await, 128 + SIGTERM);
    let state = shim.state("c", "").await.unwrap();
    assert_eq!(
        (state.status.unwrap(), state.exit_status),
        (Status::STOPPED, 128 + SIGTERM)
    );

    let deleted = shim.delete("c", "").await.unwrap();
    assert_eq!((deleted.pid, deleted.exit_status), (pid, 128 + SIGTERM));

    assert_eq!(
        shim.topics(),
        strings(&[topics::CREATE, topics::START, topics::EXIT, topics::DELETE])
    );
    let create = &shim.events.all::<TaskCreate>()[0];
    assert_eq!((create.container_id.as_str(), create.pid), ("c", pid));
    assert_eq!(
        create.bundle,
        shim.dir.path().join("c").display().to_string()
    );
    let start = &shim.events.all::<TaskStart>()[0];
    assert_eq!((start.container_id.as_str(), start.pid), ("c", pid));
    let exit = &shim.events.all::<TaskExit>()[0];
    assert_eq!(
        (
            exit.container_id.as_str(),
            exit.id.as_str(),
            exit.pid,
            exit.exit_status
        ),
        ("c", "c", pid, 128 + SIGTERM)
    );
    let delete = &shim.events.all::<TaskDelete>()[0];
    assert_eq!(
        (delete.container_id.as_str(), delete.pid, delete.exit_status),
        ("c", pid, 128 + SIGTERM)
    );
    assert_eq!(delete.exited_at, exit.exited_at);

    assert_eq!(
        shim.runtime.calls(),
        strings(&["create c", "start c", "kill c 15", "delete c --force"])
    );
    assert_eq!(refusal(shim.state("c", "").await).0, Code::NOT_FOUND);
    assert!(shim.shutdown().await, "the last container is gone");
}

#[tokio::test]
async fn an_init_that_exits_before_start_returns_has_its_exit_published_after_start() {
    let shim = Shim::new();
    let pid = shim.create("c", &["sh", "-c", "exit 3"]).await;
    // Someone waits already, as containerd does before it starts a task.
    let waiter = {
        let service = shim.service.clone();
        tokio::spawn(async move {
            let req = WaitRequest {
                id: "c".into(),
                ..Default::default()
            };
            service.wait(&ctx(), req).await
        })
    };
    // The runtime's start returns only after the init has exited and the shim has received the exit;
    // then TaskStart is slow to go out.
    shim.events
        .slow_down(topics::START, Duration::from_millis(100));
    shim.runtime
        .wait_for_exit
        .store(true, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(shim.start("c", "").await.unwrap(), pid);

    let waited = tokio::time::timeout(Duration::from_secs(10), waiter)
        .await
        .expect("Wait returns")
        .unwrap()
        .unwrap();
    assert_eq!(waited.exit_status, 3);
    assert_eq!(shim.wait("c", "").await, 3);
    shim.published(topics::EXIT, 1).await;
    assert_eq!(
        shim.topics(),
        strings(&[topics::CREATE, topics::START, topics::EXIT])
    );
    let exit = &shim.events.all::<TaskExit>()[0];
    assert_eq!(
        (exit.id.as_str(), exit.pid, exit.exit_status),
        ("c", pid, 3)
    );
    let state = shim.state("c", "").await.unwrap();
    assert_eq!(
        (state.status.unwrap(), state.exit_status),
        (Status::STOPPED, 3)
    );
    // The container's exit is gone for good: no second start, no kill.
    assert_eq!(
        refusal(shim.start("c", "").await).0,
        Code::FAILED_PRECONDITION
    );
    assert_eq!(
        refusal(shim.kill("c", "", SIGKILL, false).await).0,
        Code::NOT_FOUND
    );

    assert_eq!(shim.delete("c", "").await.unwrap().exit_status, 3);
    assert_eq!(shim.topics().last().unwrap(), topics::DELETE);
}

#[tokio::test]
async fn execs_are_added_started_and_exit_in_order() {
    let shim = Shim::new();
    let init = shim.running("c", &["sleep", "3600"]).await;

    shim.exec("c", "e1", &shim.process_of("c", &["sleep", "3600"]))
        .await
        .unwrap();
    assert_eq!(shim.status("c", "e1").await, Status::CREATED);
    // An exec id is taken until its exec is deleted.
    let again = shim.exec("c", "e1", &shim.process_of("c", &["true"])).await;
    assert_eq!(refusal(again).0, Code::ALREADY_EXISTS);

    let e1 = shim.start("c", "e1").await.unwrap();
    assert!(e1 > 0 && e1 != init);
    assert_eq!(shim.status("c", "e1").await, Status::RUNNING);
    let pids = shim
        .service
        .pids(
            &ctx(),
            PidsRequest {
                id: "c".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let pids: Vec<u32> = pids.processes.iter().map(|p| p.pid).collect();
    assert!(pids.contains(&init) && pids.contains(&e1), "{pids:?}");

    // Signals reach an exec's own process; an exec that is not there is NotFound.
    let unknown = shim.kill("c", "nope", SIGKILL, false).await;
    assert_eq!(refusal(unknown).0, Code::NOT_FOUND);
    let unknown = shim.kill("nope", "", SIGKILL, false).await;
    assert_eq!(refusal(unknown).0, Code::NOT_FOUND);
    shim.kill("c", "e1", SIGKILL, false).await.unwrap();
    assert_eq!(shim.wait("c", "e1").await, 128 + SIGKILL);
    let gone = shim.kill("c", "e1", SIGKILL, false).await;
    assert_eq!(refusal(gone).0, Code::NOT_FOUND);

    // An exec that ends on its own, with its status.
    shim.exec("c", "e2", &shim.process_of("c", &["sh", "-c", "exit 5"]))
        .await
        .unwrap();
    let e2 = shim.start("c", "e2").await.unwrap();
    assert_eq!(shim.wait("c", "e2").await, 5);
    shim.published(topics::EXIT, 2).await;

    let deleted = shim.delete("c", "e1").await.unwrap();
    assert_eq!((deleted.pid, deleted.exit_status), (e1, 128 + SIGKILL));
    assert_eq!(refusal(shim.state("c", "e1").await).0, Code::NOT_FOUND);
    assert_eq!(shim.status("c", "").await, Status::RUNNING);

    assert_eq!(
        shim.topics(),
        strings(&[
            topics::CREATE,
            topics::START,
            topics::EXEC_ADDED,
            topics::EXEC_STARTED,
            topics::EXIT,
            topics::EXEC_ADDED,
            topics::EXEC_STARTED,
            topics::EXIT,
        ]),
        "an exec's deletion publishes nothing"
    );
    let added: Vec<String> = shim
        .events
        .all::<TaskExecAdded>()
        .into_iter()
        .map(|e| format!("{} {}", e.container_id, e.exec_id))
        .collect();
    assert_eq!(added, ["c e1", "c e2"]);
    let started: Vec<(String, u32)> = shim
        .events
        .all::<TaskExecStarted>()
        .into_iter()
        .map(|e| (e.exec_id, e.pid))
        .collect();
    assert_eq!(started, [("e1".to_string(), e1), ("e2".to_string(), e2)]);
    let exits: Vec<(String, String, u32, u32)> = shim
        .events
        .all::<TaskExit>()
        .into_iter()
        .map(|e| (e.container_id, e.id, e.pid, e.exit_status))
        .collect();
    assert_eq!(
        exits,
        [
            ("c".into(), "e1".into(), e1, 128 + SIGKILL),
            ("c".into(), "e2".into(), e2, 5)
        ]
    );
    assert_eq!(shim.runtime_calls("exec").len(), 2);

    shim.kill("c", "", SIGKILL, false).await.unwrap();
    assert_eq!(shim.wait("c", "").await, 128 + SIGKILL);
    shim.delete("c", "").await.unwrap();
}

#[tokio::test]
async fn an_exec_that_exits_before_the_runtime_returns_is_not_lost() {
    let shim = Shim::new();
    shim.running("c", &["sleep", "3600"]).await;
    shim.exec("c", "quick", &shim.process_of("c", &["sh", "-c", "exit 4"]))
        .await
        .unwrap();
    // Its exit reaches the hub before the shim knows the pid: it waits there, unclaimed. And the
    // publisher is slow to deliver TaskExecStarted, which the exit must still follow.
    shim.events
        .slow_down(topics::EXEC_STARTED, Duration::from_millis(100));
    shim.runtime
        .wait_for_exit
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let pid = shim.start("c", "quick").await.unwrap();
    assert_eq!(shim.wait("c", "quick").await, 4);
    shim.published(topics::EXIT, 1).await;
    let exit = &shim.events.all::<TaskExit>()[0];
    assert_eq!(
        (exit.id.as_str(), exit.pid, exit.exit_status),
        ("quick", pid, 4)
    );
    let topics = shim.topics();
    assert!(position(&topics, topics::EXEC_STARTED) < position(&topics, topics::EXIT));

    shim.runtime
        .wait_for_exit
        .store(false, std::sync::atomic::Ordering::SeqCst);
    shim.kill("c", "", SIGKILL, false).await.unwrap();
    shim.wait("c", "").await;
    shim.delete("c", "").await.unwrap();
}

#[tokio::test]
async fn pause_and_resume_are_published() {
    let shim = Shim::new();
    shim.running("c", &["sleep", "3600"]).await;
    let req = PauseRequest {
        id: "c".into(),
        ..Default::default()
    };
    shim.service.pause(&ctx(), req).await.unwrap();
    assert_eq!(shim.status("c", "").await, Status::PAUSED);
    let req = ResumeRequest {
        id: "c".into(),
        ..Default::default()
    };
    shim.service.resume(&ctx(), req).await.unwrap();
    assert_eq!(shim.status("c", "").await, Status::RUNNING);
    assert_eq!(
        shim.topics(),
        strings(&[
            topics::CREATE,
            topics::START,
            topics::PAUSED,
            topics::RESUMED
        ])
    );
    assert_eq!(shim.events.all::<TaskPaused>()[0].container_id, "c");
    assert_eq!(shim.events.all::<TaskResumed>()[0].container_id, "c");
    assert_eq!(shim.runtime_calls("pause"), ["pause c"]);
    assert_eq!(shim.runtime_calls("resume"), ["resume c"]);

    // A failed pause publishes nothing.
    let req = ResumeRequest {
        id: "c".into(),
        ..Default::default()
    };
    assert_eq!(
        refusal(shim.service.resume(&ctx(), req).await).0,
        Code::UNKNOWN
    );
    assert_eq!(shim.topics().len(), 4);

    shim.kill("c", "", SIGKILL, false).await.unwrap();
    shim.wait("c", "").await;
    shim.delete("c", "").await.unwrap();
}

#[tokio::test]
async fn an_oom_kill_is_published_before_the_exit_it_caused() {
    let shim = Shim::new();
    // A TaskOOM still on its way must not be overtaken by the exit.
    shim.events
        .slow_down(topics::OOM, Duration::from_millis(200));
    shim.running("c", &["sleep", "3600"]).await;
    shim.runtime.oom_kill("c");
    assert_eq!(shim.wait("c", "").await, 128 + SIGKILL);
    assert_eq!(
        shim.delete("c", "").await.unwrap().exit_status,
        128 + SIGKILL
    );
    assert_eq!(
        shim.topics(),
        strings(&[
            topics::CREATE,
            topics::START,
            topics::OOM,
            topics::EXIT,
            topics::DELETE
        ])
    );
    assert_eq!(shim.events.all::<TaskOOM>()[0].container_id, "c");
}

#[tokio::test]
async fn a_created_container_that_never_started_can_be_deleted() {
    let shim = Shim::new();
    shim.events
        .slow_down(topics::EXIT, Duration::from_millis(200));
    let pid = shim.create("c", &["sleep", "3600"]).await;
    let deleted = shim.delete("c", "").await.unwrap();
    // The forced delete killed the waiting init.
    assert_eq!((deleted.pid, deleted.exit_status), (pid, 128 + SIGKILL));
    assert!(deleted.exited_at.is_some());
    // As containerd's runc shim does, the init's exit is published; the delete comes after it.
    assert_eq!(
        shim.topics(),
        strings(&[topics::CREATE, topics::EXIT, topics::DELETE])
    );
    assert!(shim.events.all::<TaskStart>().is_empty());
    let delete = &shim.events.all::<TaskDelete>()[0];
    assert_eq!((delete.pid, delete.exit_status), (pid, 128 + SIGKILL));
    assert_eq!(
        shim.runtime.calls(),
        strings(&["create c", "delete c --force"])
    );
    assert_eq!(refusal(shim.state("c", "").await).0, Code::NOT_FOUND);
}

#[tokio::test]
async fn kill_all_signals_every_process_of_the_container() {
    let shim = Shim::new();
    let init = shim.running("c", &["sleep", "3600"]).await;
    shim.exec("c", "e", &shim.process_of("c", &["sleep", "3600"]))
        .await
        .unwrap();
    let exec = shim.start("c", "e").await.unwrap();
    shim.kill("c", "", SIGKILL, true).await.unwrap();
    assert_eq!(shim.runtime_calls("kill"), ["kill c 9 --all"]);
    assert_eq!(shim.wait("c", "e").await, 128 + SIGKILL);
    assert_eq!(shim.wait("c", "").await, 128 + SIGKILL);
    shim.published(topics::EXIT, 2).await;
    let mut exited: Vec<u32> = shim
        .events
        .all::<TaskExit>()
        .iter()
        .map(|e| e.pid)
        .collect();
    exited.sort();
    let mut expected = vec![init, exec];
    expected.sort();
    assert_eq!(exited, expected);
    shim.delete("c", "").await.unwrap();
}

#[tokio::test]
async fn shutdown_waits_for_the_last_container() {
    let shim = Shim::new();
    shim.create("a", &["sleep", "3600"]).await;
    shim.create("b", &["sleep", "3600"]).await;
    let again = shim
        .create_in("a", &shim.bundle_of("a", DEFAULT_SPEC, &["true"]))
        .await;
    assert_eq!(refusal(again).0, Code::ALREADY_EXISTS);
    assert!(!shim.shutdown().await, "a and b remain");
    shim.delete("a", "").await.unwrap();
    assert!(!shim.shutdown().await, "b remains");
    shim.delete("b", "").await.unwrap();
    assert!(shim.shutdown().await);
}

#[tokio::test]
async fn a_refused_spec_is_permission_denied_and_leaves_nothing() {
    let shim = Shim::new();
    let bundle = shim.bundle_of("c", SYS_ADMIN_SPEC, &["sleep", "3600"]);
    let before = std::fs::read(bundle.join("config.json")).unwrap();
    let (code, message) = refusal(shim.create_in("c", &bundle).await);
    assert_eq!(code, Code::PERMISSION_DENIED);
    assert!(message.starts_with("strict: refused:"), "{message}");
    assert!(message.contains("CAP_SYS_ADMIN"), "{message}");
    assert!(
        shim.runtime.calls().is_empty(),
        "{:?}",
        shim.runtime.calls()
    );
    assert!(shim.topics().is_empty());
    assert_eq!(std::fs::read(bundle.join("config.json")).unwrap(), before);
    assert!(!bundle.join("init.pid").exists());
    assert_eq!(refusal(shim.state("c", "").await).0, Code::NOT_FOUND);
    assert!(shim.shutdown().await, "nothing is left to serve");
}

#[tokio::test]
async fn an_exec_asking_for_more_capabilities_than_its_container_is_refused() {
    let shim = Shim::new();
    shim.running("c", &["sleep", "3600"]).await;
    let mut process = shim.process_of("c", &["sh"]);
    for set in ["bounding", "effective", "permitted"] {
        process["capabilities"][set]
            .as_array_mut()
            .unwrap()
            .push("CAP_SYS_ADMIN".into());
    }
    let (code, message) = refusal(shim.exec("c", "e", &process).await);
    assert_eq!(code, Code::PERMISSION_DENIED);
    assert!(message.starts_with("strict: refused:"), "{message}");
    assert!(message.contains("CAP_SYS_ADMIN"), "{message}");
    assert!(shim.runtime_calls("exec").is_empty());
    assert_eq!(shim.topics(), strings(&[topics::CREATE, topics::START]));
    assert_eq!(refusal(shim.state("c", "e").await).0, Code::NOT_FOUND);
    assert_eq!(refusal(shim.start("c", "e").await).0, Code::NOT_FOUND);

    shim.kill("c", "", SIGKILL, false).await.unwrap();
    shim.wait("c", "").await;
    shim.delete("c", "").await.unwrap();
}

#[tokio::test]
async fn the_inits_exit_waits_for_its_execs_and_ends_them_without_a_pid_namespace() {
    let shim = Shim::new();
    // The host's pid namespace (granted by the MicroK8s defaults: system-observe + process-control): the
    // kernel does not end the execs with the init, so the shim kills them, as containerd's runc shim does.
    let mut spec: serde_json::Value = serde_json::from_str(DEFAULT_SPEC).unwrap();
    spec["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .retain(|ns| ns["type"] != "pid");
    let bundle = shim.bundle_of("c", &spec.to_string(), &["sleep", "3600"]);
    let init = shim.create_in("c", &bundle).await.unwrap().pid;
    shim.start("c", "").await.unwrap();
    shim.exec("c", "e", &shim.process_of("c", &["sleep", "3600"]))
        .await
        .unwrap();
    let exec = shim.start("c", "e").await.unwrap();
    // Only the init is killed.
    shim.kill("c", "", SIGKILL, false).await.unwrap();
    // Bounded: without the kill, the exec would run on and these waits would never end.
    let both = async { (shim.wait("c", "").await, shim.wait("c", "e").await) };
    let (init_code, exec_code) = tokio::time::timeout(Duration::from_secs(20), both)
        .await
        .expect("the init's exit ends its execs");
    assert_eq!((init_code, exec_code), (128 + SIGKILL, 128 + SIGKILL));
    shim.published(topics::EXIT, 2).await;
    let exited: Vec<u32> = shim
        .events
        .all::<TaskExit>()
        .iter()
        .map(|e| e.pid)
        .collect();
    assert_eq!(exited, [exec, init], "the exec's exit comes first");
    assert!(shim
        .runtime_calls("kill")
        .contains(&"kill c 9 --all".to_string()));
    shim.delete("c", "").await.unwrap();
}
