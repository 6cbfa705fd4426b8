//! The task service (task API v3): containerd's requests for the containers this shim serves.
//!
//! Each request is a `task_*` method that returns the shim's own `Result`, without the ttrpc context; the
//! `impl Task` below only maps their errors to ttrpc statuses. The steps of one container's life are in
//! `container.rs`, and whether a step is legal in its process's state is decided in `task_state.rs`.

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

use crate::container::{Container, Context};
use crate::error::{Error, Result};
use crate::events::topics;
use crate::{console, stats};

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

    pub async fn task_state(&self, req: StateRequest) -> Result<StateResponse> {
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
            status: container.status(process).into(),
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

    pub async fn task_create(&self, req: CreateTaskRequest) -> Result<CreateTaskResponse> {
        // Held across the creation so that two creates of one id cannot race.
        let mut containers = self.containers.lock().await;
        if containers.contains_key(&req.id) {
            return Err(Error::AlreadyExists(format!("container {}", req.id)));
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

    pub async fn task_start(&self, req: StartRequest) -> Result<StartResponse> {
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

    pub async fn task_delete(&self, req: DeleteRequest) -> Result<DeleteResponse> {
        let mut containers = self.containers.lock().await;
        let container = containers
            .get_mut(&req.id)
            .ok_or_else(|| not_found(&req.id))?;
        if !req.exec_id.is_empty() {
            let (pid, exit) = container.delete_exec(&req.exec_id)?;
            return Ok(DeleteResponse {
                pid,
                exit_status: exit.map(|e| e.code).unwrap_or(0),
                exited_at: exit.map(|e| e.timestamp()).unwrap_or_default(),
                ..Default::default()
            });
        }
        let pid = container.init.pid;
        let exit = container.delete(&self.ctx).await?;
        containers.remove(&req.id);
        self.ctx.pods.deleted(&req.id);
        let event = TaskDelete {
            container_id: req.id.clone(),
            pid,
            exit_status: exit.code,
            exited_at: exit.timestamp(),
            id: req.id.clone(),
            ..Default::default()
        };
        self.ctx
            .events
            .publish(topics::DELETE, Box::new(event))
            .await;
        Ok(DeleteResponse {
            pid,
            exit_status: exit.code,
            exited_at: exit.timestamp(),
            ..Default::default()
        })
    }

    pub async fn task_pids(&self, req: PidsRequest) -> Result<PidsResponse> {
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

    pub async fn task_pause(&self, req: PauseRequest) -> Result<Empty> {
        let containers = self.containers.lock().await;
        let container = containers.get(&req.id).ok_or_else(|| not_found(&req.id))?;
        container.pause(&self.ctx).await?;
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

    pub async fn task_resume(&self, req: ResumeRequest) -> Result<Empty> {
        let containers = self.containers.lock().await;
        let container = containers.get(&req.id).ok_or_else(|| not_found(&req.id))?;
        container.resume(&self.ctx).await?;
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

    pub async fn task_kill(&self, req: KillRequest) -> Result<Empty> {
        let containers = self.containers.lock().await;
        let container = containers.get(&req.id).ok_or_else(|| not_found(&req.id))?;
        container
            .kill(&self.ctx, &req.exec_id, req.signal, req.all)
            .await?;
        Ok(Empty::new())
    }

    pub async fn task_exec(&self, req: ExecProcessRequest) -> Result<Empty> {
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

    pub async fn task_resize_pty(&self, req: ResizePtyRequest) -> Result<Empty> {
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
            return Err(Error::FailedPrecondition(
                "the process has no terminal".into(),
            ));
        };
        console::resize(&console, req.width, req.height)?;
        Ok(Empty::new())
    }

    pub async fn task_close_io(&self, req: CloseIORequest) -> Result<Empty> {
        let containers = self.containers.lock().await;
        let container = containers.get(&req.id).ok_or_else(|| not_found(&req.id))?;
        let process = container.process(&req.exec_id)?;
        if req.stdin {
            process.io.lock().await.close_stdin();
        }
        Ok(Empty::new())
    }

    pub async fn task_update(&self, req: UpdateTaskRequest) -> Result<Empty> {
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

    pub async fn task_wait(&self, req: WaitRequest) -> Result<WaitResponse> {
        // Waited for without the containers' lock.
        let exit = {
            let containers = self.containers.lock().await;
            let container = containers.get(&req.id).ok_or_else(|| not_found(&req.id))?;
            container.process(&req.exec_id)?.state.exit_watch()
        };
        let exit = exit
            .exit()
            .await
            .ok_or_else(|| Error::NotFound(format!("process of {} went away", req.id)))?;
        Ok(WaitResponse {
            exit_status: exit.code,
            exited_at: exit.timestamp(),
            ..Default::default()
        })
    }

    pub async fn task_stats(&self, req: StatsRequest) -> Result<StatsResponse> {
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

    pub async fn task_connect(&self, req: ConnectRequest) -> Result<ConnectResponse> {
        let containers = self.containers.lock().await;
        let task_pid = containers.get(&req.id).map(|c| c.init.pid).unwrap_or(0);
        Ok(ConnectResponse {
            shim_pid: std::process::id(),
            task_pid,
            version: env!("CARGO_PKG_VERSION").to_string(),
            ..Default::default()
        })
    }

    pub async fn task_shutdown(&self, _req: ShutdownRequest) -> Result<Empty> {
        // One shim serves a whole pod: containerd sends Shutdown after each container's deletion, so only
        // the last one ends the shim.
        if self.containers.lock().await.is_empty() {
            self.exit.signal();
        }
        Ok(Empty::new())
    }
}

#[async_trait]
impl Task for TaskService {
    async fn state(&self, _ctx: &TtrpcContext, req: StateRequest) -> TtrpcResult<StateResponse> {
        Ok(self.task_state(req).await?)
    }

    async fn create(
        &self,
        _ctx: &TtrpcContext,
        req: CreateTaskRequest,
    ) -> TtrpcResult<CreateTaskResponse> {
        Ok(self.task_create(req).await?)
    }

    async fn start(&self, _ctx: &TtrpcContext, req: StartRequest) -> TtrpcResult<StartResponse> {
        Ok(self.task_start(req).await?)
    }

    async fn delete(&self, _ctx: &TtrpcContext, req: DeleteRequest) -> TtrpcResult<DeleteResponse> {
        Ok(self.task_delete(req).await?)
    }

    async fn pids(&self, _ctx: &TtrpcContext, req: PidsRequest) -> TtrpcResult<PidsResponse> {
        Ok(self.task_pids(req).await?)
    }

    async fn pause(&self, _ctx: &TtrpcContext, req: PauseRequest) -> TtrpcResult<Empty> {
        Ok(self.task_pause(req).await?)
    }

    async fn resume(&self, _ctx: &TtrpcContext, req: ResumeRequest) -> TtrpcResult<Empty> {
        Ok(self.task_resume(req).await?)
    }

    async fn checkpoint(
        &self,
        _ctx: &TtrpcContext,
        _req: CheckpointTaskRequest,
    ) -> TtrpcResult<Empty> {
        Err(Error::Unimplemented("checkpoint").into())
    }

    async fn kill(&self, _ctx: &TtrpcContext, req: KillRequest) -> TtrpcResult<Empty> {
        Ok(self.task_kill(req).await?)
    }

    async fn exec(&self, _ctx: &TtrpcContext, req: ExecProcessRequest) -> TtrpcResult<Empty> {
        Ok(self.task_exec(req).await?)
    }

    async fn resize_pty(&self, _ctx: &TtrpcContext, req: ResizePtyRequest) -> TtrpcResult<Empty> {
        Ok(self.task_resize_pty(req).await?)
    }

    async fn close_io(&self, _ctx: &TtrpcContext, req: CloseIORequest) -> TtrpcResult<Empty> {
        Ok(self.task_close_io(req).await?)
    }

    async fn update(&self, _ctx: &TtrpcContext, req: UpdateTaskRequest) -> TtrpcResult<Empty> {
        Ok(self.task_update(req).await?)
    }

    async fn wait(&self, _ctx: &TtrpcContext, req: WaitRequest) -> TtrpcResult<WaitResponse> {
        Ok(self.task_wait(req).await?)
    }

    async fn stats(&self, _ctx: &TtrpcContext, req: StatsRequest) -> TtrpcResult<StatsResponse> {
        Ok(self.task_stats(req).await?)
    }

    async fn connect(
        &self,
        _ctx: &TtrpcContext,
        req: ConnectRequest,
    ) -> TtrpcResult<ConnectResponse> {
        Ok(self.task_connect(req).await?)
    }

    async fn shutdown(&self, _ctx: &TtrpcContext, req: ShutdownRequest) -> TtrpcResult<Empty> {
        Ok(self.task_shutdown(req).await?)
    }
}
