//! The task service (task API v3): containerd's requests for the containers this shim serves.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use containerd_shim::api::*;
use containerd_shim::protos::events::task::{TaskDelete, TaskExecAdded, TaskPaused, TaskResumed};
use containerd_shim::protos::protobuf::well_known_types::empty::Empty;
use containerd_shim::protos::protobuf::MessageField;
use containerd_shim::protos::types::task::ProcessInfo;
use containerd_shim::{ExitSignal, Task, TtrpcContext, TtrpcResult};
use tokio::sync::Mutex;

use crate::v2::container::{Container, Context};
use crate::v2::error::Error;
use crate::v2::events::topics;
use crate::v2::{console, stats};

pub struct TaskService {
    pub ctx: Context,
    pub containers: Arc<Mutex<HashMap<String, Container>>>,
    pub exit: Arc<ExitSignal>,
}

fn not_found(id: &str) -> Error {
    Error::NotFound(format!("container {id}"))
}

impl TaskService {
    pub fn new(ctx: Context, exit: Arc<ExitSignal>) -> Self {
        TaskService {
            ctx,
            containers: Arc::default(),
            exit,
        }
    }
}

#[async_trait]
impl Task for TaskService {
    async fn state(&self, _ctx: &TtrpcContext, req: StateRequest) -> TtrpcResult<StateResponse> {
        let containers = self.containers.lock().await;
        let container = containers.get(&req.id).ok_or_else(|| not_found(&req.id))?;
        let process = container.process(&req.exec_id)?;
        let exit = process.exited();
        Ok(StateResponse {
            // The process's own id, as containerd-shim-runc-v2 answers: the exec id for an exec.
            id: if req.exec_id.is_empty() {
                req.id.clone()
            } else {
                req.exec_id.clone()
            },
            bundle: container.bundle.display().to_string(),
            pid: process.pid,
            status: process.status(container.paused).into(),
            stdin: process.stdio.stdin.clone(),
            stdout: process.stdio.stdout.clone(),
            stderr: process.stdio.stderr.clone(),
            terminal: process.stdio.terminal,
            exit_status: exit.map(|e| e.code).unwrap_or(0),
            exited_at: exit.map(|e| e.timestamp()).unwrap_or_default(),
            exec_id: req.exec_id,
            ..Default::default()
        })
    }

    async fn create(
        &self,
        _ctx: &TtrpcContext,
        req: CreateTaskRequest,
    ) -> TtrpcResult<CreateTaskResponse> {
        // Held across the creation so that two creates of one id cannot race.
        let mut containers = self.containers.lock().await;
        if containers.contains_key(&req.id) {
            return Err(Error::AlreadyExists(format!("container {}", req.id)).into());
        }
        let container = Container::create(&self.ctx, &req)
            .await
            .inspect_err(|error| {
                tracing::warn!(container = %req.id, %error, "create failed");
            })?;
        let pid = container.init.pid;
        containers.insert(req.id.clone(), container);
        Ok(CreateTaskResponse {
            pid,
            ..Default::default()
        })
    }

    async fn start(&self, _ctx: &TtrpcContext, req: StartRequest) -> TtrpcResult<StartResponse> {
        let mut containers = self.containers.lock().await;
        let container = containers
            .get_mut(&req.id)
            .ok_or_else(|| not_found(&req.id))?;
        let pid = container.start(&self.ctx, &req.exec_id).await?;
        Ok(StartResponse {
            pid,
            ..Default::default()
        })
    }

    async fn delete(&self, _ctx: &TtrpcContext, req: DeleteRequest) -> TtrpcResult<DeleteResponse> {
        let mut containers = self.containers.lock().await;
        let container = containers
            .get_mut(&req.id)
            .ok_or_else(|| not_found(&req.id))?;
        if !req.exec_id.is_empty() {
            let process = container.process(&req.exec_id)?;
            if process.exited().is_none() && process.pid != 0 {
                return Err(Error::FailedPrecondition(format!(
                    "exec {} is still running",
                    req.exec_id
                ))
                .into());
            }
            let exit = process.exited();
            let pid = process.pid;
            container.execs.remove(&req.exec_id);
            return Ok(DeleteResponse {
                pid,
                exit_status: exit.map(|e| e.code).unwrap_or(0),
                exited_at: exit.map(|e| e.timestamp()).unwrap_or_default(),
                ..Default::default()
            });
        }
        let pid = container.init.pid;
        let started =
            container.init.status(false) != containerd_shim::protos::types::task::Status::CREATED;
        if started && container.init.exited().is_none() {
            return Err(Error::FailedPrecondition(format!(
                "container {} is still running",
                req.id
            ))
            .into());
        }
        container.destroy(&self.ctx).await?;
        // A created container that never ran was killed by the forced delete: wait for its exit. Either
        // way TaskDelete follows the TaskExit, whose publication may still be in flight.
        let exit = container
            .init
            .published_exit(std::time::Duration::from_secs(5))
            .await;
        let (code, exited_at) = match exit {
            Some(exit) => (exit.code, exit.timestamp()),
            None => (137, MessageField::some(std::time::SystemTime::now().into())),
        };
        containers.remove(&req.id);
        self.ctx.pods.deleted(&req.id);
        let event = TaskDelete {
            container_id: req.id.clone(),
            pid,
            exit_status: code,
            exited_at: exited_at.clone(),
            id: req.id.clone(),
            ..Default::default()
        };
        self.ctx
            .events
            .publish(topics::DELETE, Box::new(event))
            .await;
        Ok(DeleteResponse {
            pid,
            exit_status: code,
            exited_at,
            ..Default::default()
        })
    }

    async fn pids(&self, _ctx: &TtrpcContext, req: PidsRequest) -> TtrpcResult<PidsResponse> {
        let runtime = {
            let containers = self.containers.lock().await;
            containers.get(&req.id).ok_or_else(|| not_found(&req.id))?;
            self.ctx.runtime.clone()
        };
        let pids = runtime.pids(&req.id).await?;
        Ok(PidsResponse {
            processes: pids
                .into_iter()
                .map(|pid| ProcessInfo {
                    pid: pid as u32,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        })
    }

    async fn pause(&self, _ctx: &TtrpcContext, req: PauseRequest) -> TtrpcResult<Empty> {
        let mut containers = self.containers.lock().await;
        let container = containers
            .get_mut(&req.id)
            .ok_or_else(|| not_found(&req.id))?;
        self.ctx.runtime.pause(&req.id).await?;
        container.paused = true;
        let event = TaskPaused {
            container_id: req.id.clone(),
            ..Default::default()
        };
        self.ctx
            .events
            .publish(topics::PAUSED, Box::new(event))
            .await;
        Ok(Empty::new())
    }

    async fn resume(&self, _ctx: &TtrpcContext, req: ResumeRequest) -> TtrpcResult<Empty> {
        let mut containers = self.containers.lock().await;
        let container = containers
            .get_mut(&req.id)
            .ok_or_else(|| not_found(&req.id))?;
        self.ctx.runtime.resume(&req.id).await?;
        container.paused = false;
        let event = TaskResumed {
            container_id: req.id.clone(),
            ..Default::default()
        };
        self.ctx
            .events
            .publish(topics::RESUMED, Box::new(event))
            .await;
        Ok(Empty::new())
    }

    async fn checkpoint(
        &self,
        _ctx: &TtrpcContext,
        _req: CheckpointTaskRequest,
    ) -> TtrpcResult<Empty> {
        Err(Error::Unimplemented("checkpoint").into())
    }

    async fn kill(&self, _ctx: &TtrpcContext, req: KillRequest) -> TtrpcResult<Empty> {
        let containers = self.containers.lock().await;
        let container = containers.get(&req.id).ok_or_else(|| not_found(&req.id))?;
        let process = container.process(&req.exec_id)?;
        if process.exited().is_some() {
            return Err(
                Error::NotFound(format!("process {} has already exited", process.pid)).into(),
            );
        }
        if req.exec_id.is_empty() {
            self.ctx.runtime.kill(&req.id, req.signal, req.all).await?;
        } else {
            if process.pid == 0 {
                return Err(Error::FailedPrecondition(format!(
                    "exec {} has not started",
                    req.exec_id
                ))
                .into());
            }
            let signal = nix::sys::signal::Signal::try_from(req.signal as i32)
                .map_err(|_| Error::InvalidArgument(format!("signal {}", req.signal)))?;
            nix::sys::signal::kill(nix::unistd::Pid::from_raw(process.pid as i32), signal)
                .map_err(|e| Error::NotFound(format!("process {}: {e}", process.pid)))?;
        }
        Ok(Empty::new())
    }

    async fn exec(&self, _ctx: &TtrpcContext, req: ExecProcessRequest) -> TtrpcResult<Empty> {
        let mut containers = self.containers.lock().await;
        let container = containers
            .get_mut(&req.id)
            .ok_or_else(|| not_found(&req.id))?;
        container.add_exec(&self.ctx, &req).await?;
        let event = TaskExecAdded {
            container_id: req.id.clone(),
            exec_id: req.exec_id.clone(),
            ..Default::default()
        };
        self.ctx
            .events
            .publish(topics::EXEC_ADDED, Box::new(event))
            .await;
        Ok(Empty::new())
    }

    async fn resize_pty(&self, _ctx: &TtrpcContext, req: ResizePtyRequest) -> TtrpcResult<Empty> {
        let (terminal, console) = {
            let containers = self.containers.lock().await;
            let container = containers.get(&req.id).ok_or_else(|| not_found(&req.id))?;
            let process = container.process(&req.exec_id)?;
            let io = process.io.clone();
            let console = io.lock().await.console.clone();
            (process.stdio.terminal, console)
        };
        let Some(console) = console else {
            // A terminal process whose exit has been processed no longer has its pty (dropped when its output
            // was drained): clients resize right after the start and on SIGWINCH, whatever the process's
            // state, and containerd-shim-runc-v2 answers them without an error too.
            if terminal {
                return Ok(Empty::new());
            }
            return Err(Error::FailedPrecondition("the process has no terminal".into()).into());
        };
        console::resize(&console, req.width, req.height)?;
        Ok(Empty::new())
    }

    async fn close_io(&self, _ctx: &TtrpcContext, req: CloseIORequest) -> TtrpcResult<Empty> {
        let containers = self.containers.lock().await;
        let container = containers.get(&req.id).ok_or_else(|| not_found(&req.id))?;
        let process = container.process(&req.exec_id)?;
        if req.stdin {
            process.io.lock().await.close_stdin();
        }
        Ok(Empty::new())
    }

    async fn update(&self, _ctx: &TtrpcContext, req: UpdateTaskRequest) -> TtrpcResult<Empty> {
        let containers = self.containers.lock().await;
        let container = containers.get(&req.id).ok_or_else(|| not_found(&req.id))?;
        let resources = self
            .ctx
            .gate
            .update(&req.id, &container.bundle, &req.resources.value)
            .await?;
        let file = tempfile::Builder::new()
            .prefix(".update-")
            .suffix(".json")
            .tempfile_in(&container.bundle)
            .map_err(Error::io("writing the update"))?;
        std::fs::write(file.path(), resources.as_bytes())
            .map_err(Error::io("writing the update"))?;
        self.ctx.runtime.update(&req.id, file.path()).await?;
        Ok(Empty::new())
    }

    async fn wait(&self, _ctx: &TtrpcContext, req: WaitRequest) -> TtrpcResult<WaitResponse> {
        let mut exit = {
            let containers = self.containers.lock().await;
            let container = containers.get(&req.id).ok_or_else(|| not_found(&req.id))?;
            container.process(&req.exec_id)?.exit.clone()
        };
        let exit = *exit
            .wait_for(|e| e.is_some())
            .await
            .map_err(|_| Error::NotFound(format!("process of {} went away", req.id)))?;
        let exit = exit.expect("waited for Some");
        Ok(WaitResponse {
            exit_status: exit.code,
            exited_at: exit.timestamp(),
            ..Default::default()
        })
    }

    async fn stats(&self, _ctx: &TtrpcContext, req: StatsRequest) -> TtrpcResult<StatsResponse> {
        let pid = {
            let containers = self.containers.lock().await;
            containers
                .get(&req.id)
                .ok_or_else(|| not_found(&req.id))?
                .init
                .pid
        };
        let stats = stats::collect(pid)?;
        Ok(StatsResponse {
            stats: MessageField::some(stats),
            ..Default::default()
        })
    }

    async fn connect(
        &self,
        _ctx: &TtrpcContext,
        req: ConnectRequest,
    ) -> TtrpcResult<ConnectResponse> {
        let containers = self.containers.lock().await;
        let task_pid = containers.get(&req.id).map(|c| c.init.pid).unwrap_or(0);
        Ok(ConnectResponse {
            shim_pid: std::process::id(),
            task_pid,
            version: env!("CARGO_PKG_VERSION").to_string(),
            ..Default::default()
        })
    }

    async fn shutdown(&self, _ctx: &TtrpcContext, _req: ShutdownRequest) -> TtrpcResult<Empty> {
        // One shim serves a whole pod: containerd sends Shutdown after each container's deletion, so only
        // the last one ends the shim.
        if self.containers.lock().await.is_empty() {
            self.exit.signal();
        }
        Ok(Empty::new())
    }
}
