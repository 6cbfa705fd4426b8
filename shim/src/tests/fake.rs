//! `FakeRuntime`: an `OciRuntime` for the lifecycle tests, without root. It keeps runc's state machine
//! (created → running ⇄ paused, stopped once the init is gone) in memory, and runs the processes for real
//! as harmless children of the test (`sleep`, `sh -c 'exit N'`), so that pids, signals and exit statuses
//! are real ones:
//!
//! - `create` starts the init blocked on a pipe, as `runc create` leaves it blocked on its exec fifo, and
//!   writes its pid file; `start` releases it to run the spec's `process.args`;
//! - `exec` runs the process.json's `args` at once, as `runc exec --detach` does;
//! - every child gets a reaper thread that feeds the shim's exit hub as its SIGCHLD reaper does
//!   (`128 + signal` for a signalled process);
//! - a memory cgroup per container is a directory holding `memory.events`, where `oom_kill` counts the
//!   kills, which the shim's OOM watch reads as it reads the kernel's.

use std::collections::HashMap;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use oci_spec::runtime::{Process, Spec};
use tempfile::TempDir;
use tokio::sync::watch;

use crate::cgroup::MemoryCgroup;
use crate::error::{Error, Result};
use crate::exits::Exits;
use crate::runtime::{OciRuntime, ProcessFds};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Created,
    Running,
    Paused,
}

struct FakeContainer {
    state: State,
    init: i32,
    /// The write end of the pipe the init waits on until `start`.
    release: Option<OwnedFd>,
    execs: Vec<i32>,
    memory: PathBuf,
    oom_kills: u64,
}

pub struct FakeRuntime {
    exits: Arc<Exits>,
    containers: Mutex<HashMap<String, FakeContainer>>,
    calls: Mutex<Vec<String>>,
    /// The exit status of every child reaped so far.
    reaped: Arc<watch::Sender<HashMap<i32, i32>>>,
    /// When set, `start` and `exec` return only after the process they started has exited and the shim
    /// has had time to see that exit: a process that dies before its Start returns.
    pub wait_for_exit: AtomicBool,
    cgroups: TempDir,
}

fn failure(what: &str, message: impl Into<String>) -> Error {
    Error::Runtime {
        command: format!("fake-runc {what}"),
        message: message.into(),
    }
}

fn signal(number: u32) -> Result<Signal> {
    Signal::try_from(number as i32).map_err(|_| failure("kill", format!("bad signal {number}")))
}

impl FakeRuntime {
    pub fn new(exits: Arc<Exits>) -> Self {
        FakeRuntime {
            exits,
            containers: Mutex::default(),
            calls: Mutex::default(),
            reaped: Arc::new(watch::channel(HashMap::new()).0),
            wait_for_exit: AtomicBool::new(false),
            cgroups: tempfile::tempdir().unwrap(),
        }
    }

    /// The runtime commands run so far, as `runc` would have been called: `kill c 9 --all`.
    pub fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }

    fn record(&self, call: String) {
        self.calls.lock().unwrap().push(call);
    }

    fn is_reaped(&self, pid: i32) -> bool {
        self.reaped.borrow().contains_key(&pid)
    }

    async fn wait_reaped(&self, pid: i32) {
        let mut reaped = self.reaped.subscribe();
        let done = reaped.wait_for(|reaped| reaped.contains_key(&pid));
        tokio::time::timeout(Duration::from_secs(10), done)
            .await
            .expect("the process exits")
            .unwrap();
    }

    /// After a process exited: gives the shim's exit watch time to receive the exit before the runtime
    /// call returns, so that a missing ordering would show.
    async fn hold_if_asked(&self, pid: i32) {
        if self.wait_for_exit.load(Ordering::SeqCst) {
            self.wait_reaped(pid).await;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Starts `child`'s reaper: the exit goes to the hub first, as the shim's reaper sends it.
    fn reap(&self, mut child: Child) -> i32 {
        let pid = child.id() as i32;
        let (exits, reaped) = (self.exits.clone(), self.reaped.clone());
        std::thread::spawn(move || {
            let status = child.wait().expect("waiting for a child");
            let code = status
                .code()
                .or_else(|| status.signal().map(|signal| 128 + signal))
                .unwrap_or(255);
            exits.exited(pid, code);
            reaped.send_modify(|reaped| {
                reaped.insert(pid, code);
            });
        });
        pid
    }

    fn live(&self, pids: impl IntoIterator<Item = i32>) -> Vec<i32> {
        pids.into_iter()
            .filter(|pid| !self.is_reaped(*pid))
            .collect()
    }

    /// What the kernel does on an OOM kill: counts it in the container's memory cgroup and kills the init.
    pub fn oom_kill(&self, id: &str) {
        let mut containers = self.containers.lock().unwrap();
        let container = containers.get_mut(id).expect("a container to kill");
        container.oom_kills += 1;
        std::fs::write(
            container.memory.join("memory.events"),
            format!("oom {0}\noom_kill {0}\n", container.oom_kills),
        )
        .unwrap();
        let _ = kill(Pid::from_raw(container.init), Signal::SIGKILL);
    }
}

fn stdio(command: &mut Command, fds: ProcessFds) {
    command.stdin(fds.stdin.map(Stdio::from).unwrap_or_else(Stdio::null));
    command.stdout(fds.stdout.map(Stdio::from).unwrap_or_else(Stdio::null));
    command.stderr(fds.stderr.map(Stdio::from).unwrap_or_else(Stdio::null));
}

fn write_pid(pid_file: &Path, pid: i32) -> Result<()> {
    std::fs::write(pid_file, pid.to_string()).map_err(Error::io("writing the pid file"))
}

#[async_trait]
impl OciRuntime for FakeRuntime {
    async fn create(
        &self,
        id: &str,
        bundle: &Path,
        pid_file: &Path,
        fds: ProcessFds,
    ) -> Result<()> {
        self.record(format!("create {id}"));
        if self.containers.lock().unwrap().contains_key(id) {
            return Err(failure("create", format!("container with id exists: {id}")));
        }
        if fds.console_socket.is_some() {
            return Err(failure("create", "the fake runtime has no terminals"));
        }
        let spec = Spec::load(bundle.join("config.json"))
            .map_err(|e| failure("create", format!("config.json: {e}")))?;
        let args = spec
            .process()
            .as_ref()
            .and_then(|p| p.args().clone())
            .unwrap_or_default();
        let (wait_end, release) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg("read go <&3; exec 3<&-; exec \"$@\"")
            .arg("init")
            .args(args);
        stdio(&mut command, fds);
        let fd = wait_end.as_raw_fd();
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            command.pre_exec(move || {
                let ok = if fd == 3 {
                    libc::fcntl(3, libc::F_SETFD, 0) >= 0
                } else {
                    libc::dup2(fd, 3) >= 0
                };
                if ok {
                    Ok(())
                } else {
                    Err(std::io::Error::last_os_error())
                }
            });
        }
        let child = command
            .spawn()
            .map_err(|e| failure("create", e.to_string()))?;
        drop((command, wait_end));
        let init = self.reap(child);
        let memory = self.cgroups.path().join(id);
        std::fs::create_dir_all(&memory).unwrap();
        std::fs::write(memory.join("memory.events"), "oom 0\noom_kill 0\n").unwrap();
        write_pid(pid_file, init)?;
        self.containers.lock().unwrap().insert(
            id.to_string(),
            FakeContainer {
                state: State::Created,
                init,
                release: Some(release),
                execs: Vec::new(),
                memory,
                oom_kills: 0,
            },
        );
        Ok(())
    }

    async fn start(&self, id: &str) -> Result<()> {
        self.record(format!("start {id}"));
        let (init, release) = {
            let mut containers = self.containers.lock().unwrap();
            let container = containers
                .get_mut(id)
                .ok_or_else(|| failure("start", format!("container {id} does not exist")))?;
            if container.state != State::Created || self.is_reaped(container.init) {
                return Err(failure(
                    "start",
                    "cannot start a container that is not created",
                ));
            }
            container.state = State::Running;
            (container.init, container.release.take())
        };
        // The init reads end of file and runs the container's process.
        drop(release);
        self.hold_if_asked(init).await;
        Ok(())
    }

    async fn exec(&self, id: &str, process: &Path, pid_file: &Path, fds: ProcessFds) -> Result<()> {
        self.record(format!("exec {id}"));
        let json = std::fs::read(process).map_err(Error::io("reading process.json"))?;
        let process: Process = serde_json::from_slice(&json)
            .map_err(|e| failure("exec", format!("process.json: {e}")))?;
        let args = process.args().clone().unwrap_or_default();
        if args.is_empty() {
            return Err(failure("exec", "args must not be empty"));
        }
        {
            let containers = self.containers.lock().unwrap();
            let container = containers
                .get(id)
                .ok_or_else(|| failure("exec", format!("container {id} does not exist")))?;
            if container.state != State::Running || self.is_reaped(container.init) {
                return Err(failure(
                    "exec",
                    "cannot exec in a container that is not running",
                ));
            }
        }
        let mut command = Command::new(&args[0]);
        command.args(&args[1..]);
        stdio(&mut command, fds);
        let child = command
            .spawn()
            .map_err(|e| failure("exec", e.to_string()))?;
        drop(command);
        let pid = self.reap(child);
        write_pid(pid_file, pid)?;
        if let Some(container) = self.containers.lock().unwrap().get_mut(id) {
            container.execs.push(pid);
        }
        self.hold_if_asked(pid).await;
        Ok(())
    }

    async fn kill(&self, id: &str, number: u32, all: bool) -> Result<()> {
        self.record(format!(
            "kill {id} {number}{}",
            if all { " --all" } else { "" }
        ));
        let signal = signal(number)?;
        let pids = {
            let containers = self.containers.lock().unwrap();
            let container = containers
                .get(id)
                .ok_or_else(|| failure("kill", format!("container {id} does not exist")))?;
            let mut pids = vec![container.init];
            if all {
                pids.extend(&container.execs);
            }
            self.live(pids)
        };
        if pids.is_empty() {
            return Err(failure("kill", "container not running"));
        }
        for pid in pids {
            let _ = kill(Pid::from_raw(pid), signal);
        }
        Ok(())
    }

    async fn delete(&self, id: &str, force: bool) -> Result<()> {
        self.record(format!(
            "delete {id}{}",
            if force { " --force" } else { "" }
        ));
        let mut containers = self.containers.lock().unwrap();
        let container = containers
            .get(id)
            .ok_or_else(|| failure("delete", format!("container {id} does not exist")))?;
        let live = self.live(std::iter::once(container.init).chain(container.execs.clone()));
        if !live.is_empty() && container.state != State::Created && !force {
            return Err(failure(
                "delete",
                "cannot delete container that is not stopped",
            ));
        }
        for pid in live {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
        containers.remove(id);
        Ok(())
    }

    async fn pause(&self, id: &str) -> Result<()> {
        self.record(format!("pause {id}"));
        self.freeze(id, State::Running, State::Paused, Signal::SIGSTOP)
    }

    async fn resume(&self, id: &str) -> Result<()> {
        self.record(format!("resume {id}"));
        self.freeze(id, State::Paused, State::Running, Signal::SIGCONT)
    }

    async fn update(&self, id: &str, resources: &Path) -> Result<()> {
        self.record(format!("update {id}"));
        let json = std::fs::read(resources).map_err(Error::io("reading the resources"))?;
        serde_json::from_slice::<serde_json::Value>(&json)
            .map_err(|e| failure("update", e.to_string()))?;
        Ok(())
    }

    async fn pids(&self, id: &str) -> Result<Vec<i32>> {
        self.record(format!("ps {id}"));
        let containers = self.containers.lock().unwrap();
        let container = containers
            .get(id)
            .ok_or_else(|| failure("ps", format!("container {id} does not exist")))?;
        Ok(self.live(std::iter::once(container.init).chain(container.execs.clone())))
    }

    fn memory_cgroup(&self, pid: u32) -> Result<MemoryCgroup> {
        let containers = self.containers.lock().unwrap();
        containers
            .values()
            .find(|c| c.init == pid as i32)
            .map(|c| MemoryCgroup::V2(c.memory.clone()))
            .ok_or_else(|| Error::FailedPrecondition(format!("pid {pid} is no container's init")))
    }
}

impl FakeRuntime {
    /// Pause and resume: the cgroup freezer, here as SIGSTOP and SIGCONT to every process.
    fn freeze(&self, id: &str, from: State, to: State, signal: Signal) -> Result<()> {
        let mut containers = self.containers.lock().unwrap();
        let container = containers
            .get_mut(id)
            .ok_or_else(|| failure("pause", format!("container {id} does not exist")))?;
        if container.state != from || self.is_reaped(container.init) {
            return Err(failure(
                "pause",
                format!("container {id} is {:?}, not {from:?}", container.state),
            ));
        }
        container.state = to;
        let pids = std::iter::once(container.init).chain(container.execs.clone());
        for pid in self.live(pids) {
            let _ = kill(Pid::from_raw(pid), signal);
        }
        Ok(())
    }
}

impl Drop for FakeRuntime {
    /// No child outlives its test.
    fn drop(&mut self) {
        let containers = self.containers.get_mut().unwrap();
        let pids: Vec<i32> = containers
            .values()
            .flat_map(|c| std::iter::once(c.init).chain(c.execs.clone()))
            .collect();
        for pid in self.live(pids) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
}
