//! One container: its gated spec, its init process and exec processes, and the lifecycle steps the task
//! service drives (create, start, exec, kill, pause, exit, delete). Each step asks its process's
//! `ProcessState` (task_state.rs) whether it is legal and records it there; this file does the work
//! (the runtime, the io, the events), `task.rs` answers containerd.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use containerd_shim::api::{CreateTaskRequest, ExecProcessRequest};
use containerd_shim::protos::events::task::{
    TaskCreate, TaskExecStarted, TaskExit, TaskIO, TaskStart,
};
use containerd_shim::protos::protobuf::MessageField;
use containerd_shim::protos::types::task::Status;
use strict_protocol::{ConfigRequest, RootfsMount};
use tokio::sync::{watch, Mutex};

use crate::error::{Error, Result};
use crate::events::{topics, Events};
use crate::exits::Exits;
use crate::gate_client::{ExecShortcut, Gatekeeper};
use crate::io::{ProcessIo, Stdio};
use crate::oom::OomWatch;
use crate::options;
use crate::pins;
use crate::pods::Pods;
use crate::runtime::{save_runtime, OciRuntime};
use crate::task_state::{Exit, ProcessState};

/// What the whole shim shares with each container.
#[derive(Clone)]
pub struct Context {
    pub namespace: String,
    pub runtime: Arc<dyn OciRuntime>,
    pub exits: Arc<Exits>,
    pub events: Events,
    pub gate: Arc<dyn Gatekeeper>,
    /// The configuration this shim serves, as containerd's runtime options named it (containers asking
    /// for another one are refused).
    pub serving: ConfigRequest,
    pub pods: Arc<Pods>,
}

pub struct Process {
    pub exec_id: String,
    pub pid: u32,
    pub stdio: Stdio,
    pub io: Arc<Mutex<ProcessIo>>,
    /// Where it is in its life (shared with its exit watcher): every lifecycle step goes through it.
    pub state: ProcessState,
    /// An exec's process spec (JSON), gated, until it is started.
    pending_spec: Option<Vec<u8>>,
}

impl Process {
    fn new(container: &str, exec_id: &str, stdio: Stdio) -> Process {
        Process {
            exec_id: exec_id.to_string(),
            pid: 0,
            stdio,
            io: Arc::new(Mutex::new(ProcessIo::default())),
            state: ProcessState::new(container, exec_id),
            pending_spec: None,
        }
    }

    pub fn exited(&self) -> Option<Exit> {
        self.state.exit()
    }
}

pub struct Container {
    pub id: String,
    /// Execs and updates are judged by the gate against this bundle's config.json, as the gate left it.
    pub bundle: PathBuf,
    pub init: Process,
    pub execs: HashMap<String, Process>,
    rootfs_mounted: bool,
    /// The execs allowed without asking a gate (exec probes), as the gate worked them out at Create.
    exec_shortcut: Option<ExecShortcut>,
    pub oom: Option<Arc<OomWatch>>,
    /// Execs started whose TaskExit is not published yet: the init's TaskExit waits for them, as
    /// containerd-shim-runc-v2's does, so a client that sees the container exit has seen its execs exit.
    live_execs: Arc<watch::Sender<usize>>,
}

/// How the init's exit watcher deals with the container's execs.
struct InitExit {
    live_execs: Arc<watch::Sender<usize>>,
    /// The container has no pid namespace of its own: its execs outlive the init unless killed.
    kill_all: bool,
}

/// How long the init's TaskExit waits for the execs' exits.
const EXECS_EXIT_LIMIT: Duration = Duration::from_secs(5);

/// How long a Delete waits for the init's TaskExit to go out.
const PUBLISHED_EXIT_LIMIT: Duration = Duration::from_secs(5);

fn stdio_of(terminal: bool, stdin: &str, stdout: &str, stderr: &str) -> Stdio {
    Stdio {
        stdin: stdin.into(),
        stdout: stdout.into(),
        stderr: stderr.into(),
        terminal,
    }
}

impl Container {
    /// Gate, mount the rootfs, `runtime create`. On any failure everything done so far is undone.
    pub async fn create(ctx: &Context, req: &CreateTaskRequest) -> Result<Container> {
        let bundle = PathBuf::from(&req.bundle);
        if !bundle.is_absolute() {
            return Err(Error::InvalidArgument(format!(
                "bundle {:?} is not an absolute path",
                req.bundle
            )));
        }
        if !req.checkpoint.is_empty() {
            return Err(Error::Unimplemented("restoring from a checkpoint"));
        }
        // One shim serves one configuration (containers of a pod share their handler's options).
        if let Some(options) = req.options.as_ref() {
            let asked = options::request_of(options)?;
            let serving = &ctx.serving;
            if asked.names_one()
                && (asked.runtime_path != serving.runtime_path
                    || asked.runtime_body != serving.runtime_body)
            {
                return Err(Error::Undecided(format!(
                    "the container's runtime options name another configuration ({}) than the one this \
                     shim serves ({})",
                    asked, serving
                )));
            }
        }
        // The gate comes first: a refused container leaves nothing behind. It judges the rootfs mounts
        // too, and pins the bind sources it judged in the bundle (see `pins`).
        let rootfs_mounts = req
            .rootfs
            .iter()
            .map(|m| RootfsMount {
                typ: m.type_.clone(),
                source: m.source.clone(),
                target: m.target.clone(),
                options: m.options.clone(),
            })
            .collect();
        let admitted = match ctx
            .gate
            .create(&req.id, &bundle, ctx.pods.snapshot(), rootfs_mounts)
            .await
        {
            Ok(admitted) => admitted,
            Err(error) => {
                // A gate that failed after pinning (writing the spec back, say) leaves nothing mounted.
                pins::release(&bundle);
                return Err(error);
            }
        };
        ctx.runtime.configure(&admitted.runtime);
        let rootfs = bundle.join("rootfs");
        let mounted = mount_rootfs(req, &rootfs).await?;
        let stdio = stdio_of(req.terminal, &req.stdin, &req.stdout, &req.stderr);
        let init_exit = InitExit {
            live_execs: Arc::new(watch::channel(0).0),
            kill_all: !admitted.own_pid_namespace,
        };
        let live_execs = init_exit.live_execs.clone();
        let created = Self::create_with_runtime(ctx, &req.id, &bundle, stdio, init_exit).await;
        // The container's mount namespace has its own copies of the pinned sources now.
        pins::release(&bundle);
        match created {
            Ok((init, oom)) => {
                let container = Container {
                    id: req.id.clone(),
                    bundle,
                    init,
                    execs: HashMap::new(),
                    rootfs_mounted: mounted,
                    exec_shortcut: admitted.exec_baseline.as_ref().and_then(ExecShortcut::new),
                    oom,
                    live_execs,
                };
                let event = TaskCreate {
                    container_id: req.id.clone(),
                    bundle: req.bundle.clone(),
                    rootfs: req.rootfs.clone(),
                    io: MessageField::some(TaskIO {
                        stdin: req.stdin.clone(),
                        stdout: req.stdout.clone(),
                        stderr: req.stderr.clone(),
                        terminal: req.terminal,
                        ..Default::default()
                    }),
                    pid: container.init.pid,
                    ..Default::default()
                };
                ctx.pods.created(
                    &req.id,
                    &admitted.role,
                    admitted.pod_uid.as_deref(),
                    container.init.pid,
                );
                ctx.events.publish(topics::CREATE, Box::new(event)).await;
                Ok(container)
            }
            Err(error) => {
                let _ = ctx.runtime.delete(&req.id, true).await;
                if mounted {
                    unmount(&rootfs);
                }
                Err(error)
            }
        }
    }

    async fn create_with_runtime(
        ctx: &Context,
        id: &str,
        bundle: &Path,
        stdio: Stdio,
        init_exit: InitExit,
    ) -> Result<(Process, Option<Arc<OomWatch>>)> {
        let mut init = Process::new(id, "", stdio);
        let (mut io, fds) = ProcessIo::prepare(&init.stdio, id, &ctx.namespace)?;
        let pid_file = bundle.join("init.pid");
        if let Some(saved) = ctx.runtime.saved_settings() {
            save_runtime(&saved, bundle)?;
        }
        let since = Instant::now();
        ctx.runtime.create(id, bundle, &pid_file, fds).await?;
        io.started().await?;
        init.pid = read_pid(&pid_file)?;
        *init.io.lock().await = io;
        let oom = ctx
            .runtime
            .memory_cgroup(init.pid)
            .and_then(|memory| OomWatch::start(ctx.events.clone(), id, &memory))
            .map_err(|error| tracing::warn!(container = id, %error, "OOM events unavailable"))
            .ok();
        watch_exit(
            ctx,
            id,
            &init,
            since,
            oom.clone(),
            ExitRole::Init(init_exit),
        );
        Ok((init, oom))
    }

    /// Start of the init process (`exec_id` empty) or of an exec.
    pub async fn start(&mut self, ctx: &Context, exec_id: &str) -> Result<u32> {
        if exec_id.is_empty() {
            let process = &self.init;
            process.state.start()?;
            if let Err(error) = ctx.runtime.start(&self.id).await {
                process.state.start_failed()?;
                return Err(error);
            }
            let event = TaskStart {
                container_id: self.id.clone(),
                pid: process.pid,
                ..Default::default()
            };
            ctx.events.publish(topics::START, Box::new(event)).await;
            process.state.started()?;
            return Ok(process.pid);
        }
        let bundle = self.bundle.clone();
        let id = self.id.clone();
        let process = self
            .execs
            .get_mut(exec_id)
            .ok_or_else(|| Error::NotFound(format!("exec {exec_id}")))?;
        process.state.start()?;
        match start_exec(ctx, &id, &bundle, process, self.live_execs.clone()).await {
            Ok(()) => {
                let event = TaskExecStarted {
                    container_id: id,
                    exec_id: exec_id.to_string(),
                    pid: process.pid,
                    ..Default::default()
                };
                ctx.events
                    .publish(topics::EXEC_STARTED, Box::new(event))
                    .await;
                process.state.started()?;
                Ok(process.pid)
            }
            Err(error) => {
                process.state.start_failed()?;
                Err(error)
            }
        }
    }

    /// Registers an exec (gated); it runs on Start.
    pub async fn add_exec(&mut self, ctx: &Context, req: &ExecProcessRequest) -> Result<()> {
        if self.execs.contains_key(&req.exec_id) {
            return Err(Error::AlreadyExists(format!("exec {}", req.exec_id)));
        }
        self.init.state.add_exec()?;
        let json = &req.spec.value;
        let shortcut = self.exec_shortcut.as_ref().and_then(|s| s.allows(json));
        let spec = match shortcut {
            Some(compared) => {
                tracing::debug!(container = %self.id, exec = %req.exec_id, "exec allowed: the container's own process, judged at create");
                compared
            }
            None => {
                ctx.gate
                    .exec(&self.id, &req.exec_id, &self.bundle, json)
                    .await?;
                json.clone()
            }
        };
        let mut exec = Process::new(
            &self.id,
            &req.exec_id,
            stdio_of(req.terminal, &req.stdin, &req.stdout, &req.stderr),
        );
        exec.pending_spec = Some(spec);
        self.execs.insert(req.exec_id.clone(), exec);
        Ok(())
    }

    pub fn process(&self, exec_id: &str) -> Result<&Process> {
        if exec_id.is_empty() {
            return Ok(&self.init);
        }
        self.execs
            .get(exec_id)
            .ok_or_else(|| Error::NotFound(format!("exec {exec_id} in {}", self.id)))
    }

    /// containerd's status of `process`, one of this container's: an exec is paused with its container.
    pub fn status(&self, process: &Process) -> Status {
        process.state.status(self.init.state.get().is_paused())
    }

    /// Signals the init through the runtime (`all`: every process of the container), or an exec's own
    /// process.
    pub async fn kill(&self, ctx: &Context, exec_id: &str, signal: u32, all: bool) -> Result<()> {
        let process = self.process(exec_id)?;
        process.state.kill(process.pid)?;
        if exec_id.is_empty() {
            return ctx.runtime.kill(&self.id, signal, all).await;
        }
        let signal = nix::sys::signal::Signal::try_from(signal as i32)
            .map_err(|_| Error::InvalidArgument(format!("signal {signal}")))?;
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(process.pid as i32), signal)
            .map_err(|e| Error::NotFound(format!("process {}: {e}", process.pid)))
    }

    /// Freezes the container: the runtime judges whether it can (see `TaskState::pause`).
    pub async fn pause(&self, ctx: &Context) -> Result<()> {
        ctx.runtime.pause(&self.id).await?;
        self.init.state.pause()
    }

    pub async fn resume(&self, ctx: &Context) -> Result<()> {
        ctx.runtime.resume(&self.id).await?;
        self.init.state.resume()
    }

    /// Removes an exec that is not running; its pid (0 if it never ran) and its exit, if any.
    pub fn delete_exec(&mut self, exec_id: &str) -> Result<(u32, Option<Exit>)> {
        let process = self.process(exec_id)?;
        process.state.delete()?;
        let deleted = (process.pid, process.exited());
        self.execs.remove(exec_id);
        Ok(deleted)
    }

    /// Deletes the container, unless its init is running: removes what it left, and returns the init's
    /// exit once its TaskExit is out.
    pub async fn delete(&mut self, ctx: &Context) -> Result<Exit> {
        self.init.state.delete()?;
        self.destroy(ctx).await?;
        // A created container that never ran was killed by the forced delete: wait for its exit. Either
        // way TaskDelete follows the TaskExit, whose publication may still be in flight.
        let exit = self.init.state.published_exit(PUBLISHED_EXIT_LIMIT).await;
        Ok(exit.unwrap_or_else(|| Exit {
            code: 137,
            at: SystemTime::now(),
        }))
    }

    /// Removes what the container left: the runtime's state and the rootfs mount.
    async fn destroy(&mut self, ctx: &Context) -> Result<()> {
        let result = ctx.runtime.delete(&self.id, true).await;
        if self.rootfs_mounted {
            unmount(&self.bundle.join("rootfs"));
            self.rootfs_mounted = false;
        }
        pins::release(&self.bundle);
        if let Some(oom) = self.oom.take() {
            oom.stop();
        }
        match result {
            Err(Error::Runtime { message, .. })
                if message.contains("does not exist") || message.contains("not exist") =>
            {
                Ok(())
            }
            other => other,
        }
    }
}

async fn start_exec(
    ctx: &Context,
    id: &str,
    bundle: &Path,
    process: &mut Process,
    live_execs: Arc<watch::Sender<usize>>,
) -> Result<()> {
    let spec = process.pending_spec.take().unwrap_or_default();
    let spec_file = bundle.join(format!(".exec-{}.json", process.exec_id));
    let pid_file = bundle.join(format!(".exec-{}.pid", process.exec_id));
    std::fs::write(&spec_file, &spec)
        .map_err(Error::io(format!("writing {}", spec_file.display())))?;
    let (mut io, fds) = ProcessIo::prepare(&process.stdio, id, &ctx.namespace)?;
    let since = Instant::now();
    let result = ctx.runtime.exec(id, &spec_file, &pid_file, fds).await;
    let _ = std::fs::remove_file(&spec_file);
    result?;
    io.started().await?;
    let pid = read_pid(&pid_file);
    let _ = std::fs::remove_file(&pid_file);
    process.pid = pid?;
    *process.io.lock().await = io;
    live_execs.send_modify(|n| *n += 1);
    watch_exit(ctx, id, process, since, None, ExitRole::Exec(live_execs));
    Ok(())
}

enum ExitRole {
    Init(InitExit),
    Exec(Arc<watch::Sender<usize>>),
}

/// Waits for the process's exit in the background: records it, lets its output drain, and publishes
/// TaskExit once its start has been published (never before).
fn watch_exit(
    ctx: &Context,
    id: &str,
    process: &Process,
    since: Instant,
    oom: Option<Arc<OomWatch>>,
    role: ExitRole,
) {
    let exit = ctx.exits.watch(process.pid as i32, since);
    let (ctx, id) = (ctx.clone(), id.to_string());
    let (exec_id, pid) = (process.exec_id.clone(), process.pid);
    let state = process.state.clone();
    let io = process.io.clone();
    tokio::spawn(async move {
        let code = exit.await.unwrap_or(255) as u32;
        let at = SystemTime::now();
        io.lock().await.drain().await;
        // A start in flight publishes its start event first.
        state.start_settled().await;
        // An OOM kill the watcher has not reported yet is reported before the exit it caused.
        if let Some(oom) = &oom {
            oom.report_at_exit(code).await;
        }
        if let ExitRole::Init(init) = &role {
            // With its own pid namespace the kernel ends the execs with the init; without, they are
            // killed here. Either way their exits go out first.
            if init.kill_all && *init.live_execs.borrow() > 0 {
                if let Err(error) = ctx.runtime.kill(&id, libc::SIGKILL as u32, true).await {
                    tracing::warn!(container = %id, %error, "killing the execs after the init's exit");
                }
            }
            let mut live = init.live_execs.subscribe();
            if tokio::time::timeout(EXECS_EXIT_LIMIT, live.wait_for(|n| *n == 0))
                .await
                .is_err()
            {
                tracing::warn!(container = %id, "execs still running after the init's exit");
            }
        }
        let recorded = Exit { code, at };
        // This watcher alone records the process's exit, and `exited` waits out a start begun since the
        // wait above (a created init's): the transition is not refused.
        if let Err(error) = state.exited(recorded).await {
            tracing::error!(container = %id, exec = %exec_id, %error, "recording the exit");
        }
        let event = TaskExit {
            container_id: id.clone(),
            id: if exec_id.is_empty() {
                id.clone()
            } else {
                exec_id.clone()
            },
            pid,
            exit_status: code,
            exited_at: recorded.timestamp(),
            ..Default::default()
        };
        ctx.events.publish(topics::EXIT, Box::new(event)).await;
        if let Err(error) = state.exit_published() {
            tracing::error!(container = %id, exec = %exec_id, %error, "recording the exit's publication");
        }
        if let ExitRole::Exec(live_execs) = &role {
            live_execs.send_modify(|n| *n = n.saturating_sub(1));
        }
        tracing::info!(container = %id, exec = %exec_id, pid, code, "process exited");
    });
}

fn read_pid(path: &Path) -> Result<u32> {
    let text =
        std::fs::read_to_string(path).map_err(Error::io(format!("reading {}", path.display())))?;
    text.trim().parse().map_err(|_| {
        Error::FailedPrecondition(format!("{} holds no pid: {text:?}", path.display()))
    })
}

/// Mounts the request's rootfs (usually one overlay or bind mount) on `<bundle>/rootfs`.
async fn mount_rootfs(req: &CreateTaskRequest, rootfs: &Path) -> Result<bool> {
    if req.rootfs.is_empty() {
        return Ok(false);
    }
    std::fs::create_dir_all(rootfs).map_err(Error::io(format!("creating {}", rootfs.display())))?;
    for (i, mount) in req.rootfs.iter().enumerate() {
        if let Err(error) = containerd_shim::util::mount_rootfs(mount, rootfs).await {
            if i > 0 {
                unmount(rootfs);
            }
            return Err(Error::FailedPrecondition(format!(
                "mounting the rootfs: {error}"
            )));
        }
    }
    Ok(true)
}

fn unmount(rootfs: &Path) {
    if let Err(error) = containerd_shim::mount::umount_recursive(rootfs.to_str(), libc::MNT_DETACH)
    {
        tracing::warn!(rootfs = %rootfs.display(), %error, "unmounting the rootfs failed");
    }
}
