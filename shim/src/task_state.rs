//! The states of a container's processes (its init and its execs) as explicit transitions: each method of
//! `TaskState` performs or checks one step of the lifecycle and refuses an illegal one with the error the
//! task service answers. containerd's `Status` (CREATED, RUNNING, PAUSED, STOPPED) is derived from it.
//!
//! ```text
//!   Created ──start──▶ Starting ──started──▶ Running ◀──resume/pause──▶ Paused
//!      │                  │                     │                          │
//!      │             start_failed               │                          │
//!      │                  ▼                     │                          │
//!      │             StartFailed                │                          │
//!      └──────────────────┴────────exited───────┴──────────────────────────┘
//!                                     ▼
//!                     Exited ──exit_published──▶ Exited (published)
//! ```
//!
//! The task service drives every transition but the exit's under the containers' lock; the process's exit
//! watcher records the exit and its publication without it. `ProcessState` shares the state between
//! them over a watch channel: the watcher waits for a start in flight to end (its TaskExit goes out after
//! the TaskStart), Wait waits for the exit, Delete for the exit's publication.
//!
//! A leaf: it uses no other module of the shim but its errors.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use containerd_shim::protos::protobuf::well_known_types::timestamp::Timestamp;
use containerd_shim::protos::protobuf::MessageField;
use containerd_shim::protos::types::task::Status;
use tokio::sync::watch;

use crate::error::{Error, Result};

/// How a process ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Exit {
    pub code: u32,
    pub at: SystemTime,
}

impl Exit {
    pub fn timestamp(&self) -> MessageField<Timestamp> {
        MessageField::some(Timestamp::from(self.at))
    }
}

/// Where a process is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaskState {
    /// The init: created by the runtime, blocked until its start. An exec: admitted, not run yet.
    Created,
    /// Its start is under way: the runtime's start, then the start event. Its exit waits for the end of
    /// this state, so that TaskExit never overtakes TaskStart (or TaskExecStarted).
    Starting,
    /// Started, and its start event published.
    Running,
    /// The init of a container the runtime froze (an exec is paused with its container, see `status`).
    Paused,
    /// The runtime could not start it: it never ran. A created init still exits later (the forced delete
    /// kills it).
    StartFailed,
    /// Its exit is recorded; `published` once its TaskExit has gone out (a TaskDelete must not overtake
    /// it).
    Exited { exit: Exit, published: bool },
}

/// The process a state is the state of, as the errors name it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcessName {
    pub container: String,
    /// Empty for the init.
    pub exec_id: String,
}

impl ProcessName {
    pub fn new(container: &str, exec_id: &str) -> Self {
        ProcessName {
            container: container.to_string(),
            exec_id: exec_id.to_string(),
        }
    }

    pub fn is_init(&self) -> bool {
        self.exec_id.is_empty()
    }
}

impl fmt::Display for ProcessName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let process = if self.is_init() {
            "init"
        } else {
            &self.exec_id
        };
        write!(f, "process {process} of {}", self.container)
    }
}

impl TaskState {
    /// Created → Starting: the start of a process that has not run (nor exited: a created init killed
    /// before its start is not started again).
    pub fn start(&mut self, name: &ProcessName) -> Result<()> {
        match self {
            TaskState::Created => {
                *self = TaskState::Starting;
                Ok(())
            }
            _ => Err(Error::FailedPrecondition(format!(
                "{name} cannot be started: it is {:?}",
                self.status(false)
            ))),
        }
    }

    /// Starting → Running, once the start event is published.
    pub fn started(&mut self, name: &ProcessName) -> Result<()> {
        self.end_start(name, TaskState::Running, "be marked started")
    }

    /// Starting → StartFailed: the runtime refused the start.
    pub fn start_failed(&mut self, name: &ProcessName) -> Result<()> {
        self.end_start(name, TaskState::StartFailed, "be marked failed to start")
    }

    fn end_start(&mut self, name: &ProcessName, to: TaskState, what: &str) -> Result<()> {
        match self {
            TaskState::Starting => {
                *self = to;
                Ok(())
            }
            _ => Err(self.illegal(name, what)),
        }
    }

    /// The exit is recorded: from any state but a start in flight (the watcher waits for its end) or
    /// an exit already recorded (a process exits once).
    pub fn exited(&mut self, name: &ProcessName, exit: Exit) -> Result<()> {
        match self {
            TaskState::Starting | TaskState::Exited { .. } => Err(self.illegal(name, "exit")),
            _ => {
                *self = TaskState::Exited {
                    exit,
                    published: false,
                };
                Ok(())
            }
        }
    }

    /// The recorded exit's TaskExit has gone out.
    pub fn exit_published(&mut self, name: &ProcessName) -> Result<()> {
        match self {
            TaskState::Exited {
                published: published @ false,
                ..
            } => {
                *published = true;
                Ok(())
            }
            _ => Err(self.illegal(name, "have its exit published")),
        }
    }

    /// The runtime froze the container (the runtime is the judge of a pause: it knows the cgroup, and
    /// its refusals are what containerd gets): Running → Paused. A container that never ran stays as it
    /// is (its start finds it frozen and fails), and so does an exit that overtook the freeze.
    pub fn pause(&mut self, name: &ProcessName) -> Result<()> {
        match self {
            TaskState::Running | TaskState::Paused => {
                *self = TaskState::Paused;
                Ok(())
            }
            TaskState::Starting => Err(self.illegal(name, "be paused")),
            TaskState::Created | TaskState::StartFailed | TaskState::Exited { .. } => Ok(()),
        }
    }

    /// The runtime thawed the container: Paused → Running; otherwise as `pause`.
    pub fn resume(&mut self, name: &ProcessName) -> Result<()> {
        match self {
            TaskState::Paused | TaskState::Running => {
                *self = TaskState::Running;
                Ok(())
            }
            TaskState::Starting => Err(self.illegal(name, "be resumed")),
            TaskState::Created | TaskState::StartFailed | TaskState::Exited { .. } => Ok(()),
        }
    }

    /// May the process (`pid`) be signalled? Not once it has exited, and an exec not before it runs; a
    /// created init is signalled through the runtime.
    pub fn kill(&self, name: &ProcessName, pid: u32) -> Result<()> {
        match self {
            TaskState::Exited { .. } => {
                Err(Error::NotFound(format!("process {pid} has already exited")))
            }
            TaskState::Created | TaskState::Starting | TaskState::StartFailed
                if !name.is_init() =>
            {
                Err(Error::FailedPrecondition(format!(
                    "exec {} has not started",
                    name.exec_id
                )))
            }
            _ => Ok(()),
        }
    }

    /// May the process be deleted? Not while it runs; a created init is killed by the forced delete. The
    /// task service removes a deleted process under the containers' lock, so no later state is seen.
    pub fn delete(&self, name: &ProcessName) -> Result<()> {
        match self {
            TaskState::Starting | TaskState::Running | TaskState::Paused => {
                Err(Error::FailedPrecondition(if name.is_init() {
                    format!("container {} is still running", name.container)
                } else {
                    format!("exec {} is still running", name.exec_id)
                }))
            }
            TaskState::Created | TaskState::StartFailed | TaskState::Exited { .. } => Ok(()),
        }
    }

    /// May an exec be added to the container whose init is in this state? Not once the init has exited.
    pub fn add_exec(&self, name: &ProcessName) -> Result<()> {
        match self {
            TaskState::Exited { .. } => Err(Error::FailedPrecondition(format!(
                "container {} has stopped",
                name.container
            ))),
            _ => Ok(()),
        }
    }

    /// containerd's view; `container_paused`: the container is frozen (an exec is paused with it).
    pub fn status(&self, container_paused: bool) -> Status {
        match self {
            TaskState::Exited { .. } => Status::STOPPED,
            TaskState::Created | TaskState::Starting | TaskState::StartFailed => Status::CREATED,
            TaskState::Paused => Status::PAUSED,
            TaskState::Running if container_paused => Status::PAUSED,
            TaskState::Running => Status::RUNNING,
        }
    }

    pub fn exit(&self) -> Option<Exit> {
        match self {
            TaskState::Exited { exit, .. } => Some(*exit),
            _ => None,
        }
    }

    pub fn is_starting(&self) -> bool {
        *self == TaskState::Starting
    }

    pub fn is_paused(&self) -> bool {
        *self == TaskState::Paused
    }

    fn exit_is_published(&self) -> bool {
        matches!(
            self,
            TaskState::Exited {
                published: true,
                ..
            }
        )
    }

    /// An illegal transition: a step out of order, which the lifecycle code does not take.
    fn illegal(&self, name: &ProcessName, what: &str) -> Error {
        Error::FailedPrecondition(format!("{name} cannot {what}: it is {self:?}"))
    }
}

/// A process's state, shared by the task service and the process's exit watcher. The channel's sender is
/// held by the process and its watcher only: once both are gone (the process deleted, no exit to come),
/// a Wait learns it.
#[derive(Clone)]
pub struct ProcessState {
    name: Arc<ProcessName>,
    state: Arc<watch::Sender<TaskState>>,
}

impl ProcessState {
    pub fn new(container: &str, exec_id: &str) -> Self {
        ProcessState {
            name: Arc::new(ProcessName::new(container, exec_id)),
            state: Arc::new(watch::channel(TaskState::Created).0),
        }
    }

    pub fn get(&self) -> TaskState {
        *self.state.borrow()
    }

    /// Applies a transition atomically; watchers are woken only when the state changed.
    fn apply(
        &self,
        transition: impl FnOnce(&mut TaskState, &ProcessName) -> Result<()>,
    ) -> Result<()> {
        let mut result = Ok(());
        self.state.send_if_modified(|state| {
            let before = *state;
            result = transition(state, &self.name);
            *state != before
        });
        result
    }

    pub fn start(&self) -> Result<()> {
        self.apply(TaskState::start)
    }

    pub fn started(&self) -> Result<()> {
        self.apply(TaskState::started)
    }

    pub fn start_failed(&self) -> Result<()> {
        self.apply(TaskState::start_failed)
    }

    pub fn pause(&self) -> Result<()> {
        self.apply(TaskState::pause)
    }

    pub fn resume(&self) -> Result<()> {
        self.apply(TaskState::resume)
    }

    pub fn exit_published(&self) -> Result<()> {
        self.apply(TaskState::exit_published)
    }

    pub fn kill(&self, pid: u32) -> Result<()> {
        self.get().kill(&self.name, pid)
    }

    pub fn delete(&self) -> Result<()> {
        self.get().delete(&self.name)
    }

    pub fn add_exec(&self) -> Result<()> {
        self.get().add_exec(&self.name)
    }

    pub fn status(&self, container_paused: bool) -> Status {
        self.get().status(container_paused)
    }

    pub fn exit(&self) -> Option<Exit> {
        self.get().exit()
    }

    /// Until no start is in flight: its start event goes out before anything the exit publishes.
    pub async fn start_settled(&self) {
        let mut state = self.state.subscribe();
        // The sender is `self`'s: the channel stays open.
        let _ = state.wait_for(|s| !s.is_starting()).await;
    }

    /// Records the exit, after a start in flight (one may begin after `start_settled`: a start of a
    /// created init that has just died).
    pub async fn exited(&self, exit: Exit) -> Result<()> {
        loop {
            self.start_settled().await;
            match self.apply(|state, name| state.exited(name, exit)) {
                Err(_) if self.get().is_starting() => continue,
                result => return result,
            }
        }
    }

    /// The exit once it is recorded and its TaskExit published, or None after `limit`.
    pub async fn published_exit(&self, limit: Duration) -> Option<Exit> {
        let mut state = self.state.subscribe();
        let published = tokio::time::timeout(limit, state.wait_for(TaskState::exit_is_published))
            .await
            .is_ok_and(|p| p.is_ok());
        if published {
            self.exit()
        } else {
            None
        }
    }

    /// A watch of the exit that does not keep the state alive (a Wait holds it without the containers'
    /// lock).
    pub fn exit_watch(&self) -> ExitWatch {
        ExitWatch(self.state.subscribe())
    }
}

/// See `ProcessState::exit_watch`.
pub struct ExitWatch(watch::Receiver<TaskState>);

impl ExitWatch {
    /// The exit, once recorded; None if the process went away without one (deleted before it ran).
    pub async fn exit(mut self) -> Option<Exit> {
        let state = self.0.wait_for(|s| s.exit().is_some()).await.ok()?;
        state.exit()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use containerd_shim::protos::ttrpc::Code;

    fn init() -> ProcessName {
        ProcessName::new("c", "")
    }

    fn exec() -> ProcessName {
        ProcessName::new("c", "e")
    }

    fn exit(code: u32) -> Exit {
        Exit {
            code,
            at: SystemTime::UNIX_EPOCH,
        }
    }

    fn exited(code: u32) -> TaskState {
        TaskState::Exited {
            exit: exit(code),
            published: false,
        }
    }

    /// A state reached through the transitions, not built.
    fn running(name: &ProcessName) -> TaskState {
        let mut state = TaskState::Created;
        state.start(name).unwrap();
        state.started(name).unwrap();
        state
    }

    /// The code and message of a refusal; the state is left as it was.
    fn refused(
        state: TaskState,
        step: impl FnOnce(&mut TaskState) -> Result<()>,
    ) -> (Code, String) {
        let mut after = state;
        let error = step(&mut after).expect_err("an illegal transition");
        assert_eq!(after, state, "a refused transition changes nothing");
        (error.code(), error.to_string())
    }

    const ALL: [TaskState; 6] = [
        TaskState::Created,
        TaskState::Starting,
        TaskState::Running,
        TaskState::Paused,
        TaskState::StartFailed,
        TaskState::Exited {
            exit: Exit {
                code: 0,
                at: SystemTime::UNIX_EPOCH,
            },
            published: false,
        },
    ];

    #[test]
    fn a_process_starts_once_from_created() {
        let name = exec();
        let mut state = TaskState::Created;
        state.start(&name).unwrap();
        assert_eq!(state, TaskState::Starting);
        assert_eq!(state.status(false), Status::CREATED);
        state.started(&name).unwrap();
        assert_eq!(state, TaskState::Running);
        assert_eq!(state.status(false), Status::RUNNING);

        for from in ALL.into_iter().filter(|s| *s != TaskState::Created) {
            let (code, message) = refused(from, |s| s.start(&name));
            assert_eq!(code, Code::FAILED_PRECONDITION);
            assert!(
                message.starts_with("process e of c cannot be started: it is "),
                "{message}"
            );
        }
        let (_, message) = refused(exited(3), |s| s.start(&init()));
        assert_eq!(
            message,
            "process init of c cannot be started: it is STOPPED"
        );
    }

    #[test]
    fn only_a_start_in_flight_ends_started_or_failed() {
        let name = init();
        let mut state = TaskState::Starting;
        state.start_failed(&name).unwrap();
        assert_eq!(state, TaskState::StartFailed);
        assert_eq!(state.status(false), Status::CREATED);
        for from in ALL.into_iter().filter(|s| !s.is_starting()) {
            assert_eq!(
                refused(from, |s| s.started(&name)).0,
                Code::FAILED_PRECONDITION
            );
            assert_eq!(
                refused(from, |s| s.start_failed(&name)).0,
                Code::FAILED_PRECONDITION
            );
        }
    }

    #[test]
    fn a_process_exits_once_and_never_during_its_start() {
        let name = init();
        for from in [
            TaskState::Created,
            TaskState::Running,
            TaskState::Paused,
            TaskState::StartFailed,
        ] {
            let mut state = from;
            state.exited(&name, exit(137)).unwrap();
            assert_eq!(state.exit(), Some(exit(137)));
            assert_eq!(state.status(true), Status::STOPPED);
        }
        refused(TaskState::Starting, |s| s.exited(&name, exit(1)));
        refused(exited(3), |s| s.exited(&name, exit(1)));

        let mut state = exited(3);
        assert!(!state.exit_is_published());
        state.exit_published(&name).unwrap();
        assert!(state.exit_is_published());
        assert_eq!(state.exit(), Some(exit(3)));
        refused(state, |s| s.exit_published(&name));
        refused(TaskState::Running, |s| s.exit_published(&name));
    }

    #[test]
    fn pause_and_resume_record_what_the_runtime_did() {
        let name = init();
        let mut state = running(&name);
        state.pause(&name).unwrap();
        assert_eq!(
            (state, state.status(false)),
            (TaskState::Paused, Status::PAUSED)
        );
        state.resume(&name).unwrap();
        assert_eq!(
            (state, state.status(false)),
            (TaskState::Running, Status::RUNNING)
        );
        // An exec runs in its container: it is paused with it.
        assert_eq!(running(&exec()).status(true), Status::PAUSED);
        // An exit that overtook the freeze stays; so does a container that never ran.
        for from in [exited(9), TaskState::Created, TaskState::StartFailed] {
            let mut state = from;
            state.pause(&name).unwrap();
            state.resume(&name).unwrap();
            assert_eq!(state, from);
        }
        refused(TaskState::Starting, |s| s.pause(&name));
        refused(TaskState::Starting, |s| s.resume(&name));
    }

    #[test]
    fn kill_reaches_a_process_until_it_exits_and_an_exec_once_it_runs() {
        let (init, exec) = (init(), exec());
        for from in [
            TaskState::Created,
            TaskState::Running,
            TaskState::Paused,
            TaskState::StartFailed,
        ] {
            from.kill(&init, 42).unwrap();
        }
        running(&exec).kill(&exec, 42).unwrap();
        for from in [TaskState::Created, TaskState::StartFailed] {
            let error = from.kill(&exec, 0).unwrap_err();
            assert_eq!(
                (error.code(), error.to_string()),
                (Code::FAILED_PRECONDITION, "exec e has not started".into())
            );
        }
        for name in [&init, &exec] {
            let error = exited(1).kill(name, 42).unwrap_err();
            assert_eq!(
                (error.code(), error.to_string()),
                (
                    Code::NOT_FOUND,
                    "process 42 has already exited not found".into()
                )
            );
        }
    }

    #[test]
    fn a_running_process_is_not_deleted() {
        let (init, exec) = (init(), exec());
        for from in [TaskState::Created, TaskState::StartFailed, exited(0)] {
            from.delete(&init).unwrap();
            from.delete(&exec).unwrap();
        }
        for from in [TaskState::Starting, TaskState::Running, TaskState::Paused] {
            let error = from.delete(&init).unwrap_err();
            assert_eq!(
                (error.code(), error.to_string()),
                (
                    Code::FAILED_PRECONDITION,
                    "container c is still running".into()
                )
            );
            let error = from.delete(&exec).unwrap_err();
            assert_eq!(error.to_string(), "exec e is still running");
        }
    }

    #[test]
    fn execs_are_added_until_the_init_exits() {
        for from in ALL.into_iter().filter(|s| s.exit().is_none()) {
            from.add_exec(&init()).unwrap();
        }
        let error = exited(0).add_exec(&init()).unwrap_err();
        assert_eq!(
            (error.code(), error.to_string()),
            (Code::FAILED_PRECONDITION, "container c has stopped".into())
        );
    }

    #[tokio::test]
    async fn the_exit_waits_for_a_start_in_flight() {
        let state = ProcessState::new("c", "");
        state.start().unwrap();
        let watcher = {
            let state = state.clone();
            tokio::spawn(async move { state.exited(exit(3)).await })
        };
        let waiter = tokio::spawn(state.exit_watch().exit());
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(state.get().is_starting(), "no exit during the start");
        state.started().unwrap();
        watcher.await.unwrap().unwrap();
        assert_eq!(waiter.await.unwrap(), Some(exit(3)));
        assert_eq!(state.published_exit(Duration::from_millis(10)).await, None);
        state.exit_published().unwrap();
        assert_eq!(
            state.published_exit(Duration::from_millis(10)).await,
            Some(exit(3))
        );
    }

    #[tokio::test]
    async fn a_wait_learns_that_a_process_went_away_without_an_exit() {
        let state = ProcessState::new("c", "e");
        let wait = state.exit_watch();
        drop(state);
        assert_eq!(wait.exit().await, None);
    }
}
