//! The OCI runtime (runc by default, crun works too), driven through its command line as
//! containerd-shim-runc-v2 does. `OciRuntime` is the seam that lets the lifecycle logic be tested without root.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, LazyLock, OnceLock};
use std::time::Instant;

use std::io::Read;
use std::process::Command;

use async_trait::async_trait;

use strict_protocol::runtime::{AdmittedRuntime, DEFAULT_BINARY, DEFAULT_ROOT};

use crate::cgroup::MemoryCgroup;
use crate::error::{Error, Result};
use crate::exits::Exits;

/// The file descriptors a new process gets as its stdio (None: /dev/null), or a console socket.
#[derive(Default)]
pub struct ProcessFds {
    pub stdin: Option<OwnedFd>,
    pub stdout: Option<OwnedFd>,
    pub stderr: Option<OwnedFd>,
    pub console_socket: Option<PathBuf>,
}

#[async_trait]
pub trait OciRuntime: Send + Sync {
    /// `create` with the bundle's config.json; the container's init pid is written to `pid_file`.
    async fn create(&self, id: &str, bundle: &Path, pid_file: &Path, fds: ProcessFds)
        -> Result<()>;
    async fn start(&self, id: &str) -> Result<()>;
    /// Starts `process.json` in the container, detached; its pid is written to `pid_file`.
    async fn exec(&self, id: &str, process: &Path, pid_file: &Path, fds: ProcessFds) -> Result<()>;
    async fn kill(&self, id: &str, signal: u32, all: bool) -> Result<()>;
    async fn delete(&self, id: &str, force: bool) -> Result<()>;
    async fn pause(&self, id: &str) -> Result<()>;
    async fn resume(&self, id: &str) -> Result<()>;
    /// Applies the LinuxResources JSON in `resources`.
    async fn update(&self, id: &str, resources: &Path) -> Result<()>;
    async fn pids(&self, id: &str) -> Result<Vec<i32>>;
    /// The memory cgroup the container's init `pid` runs in, where the kernel counts OOM kills:
    /// (cgroup v2?, its directory). The runtime put it there, so by default it is read from /proc.
    fn memory_cgroup(&self, pid: u32) -> Result<MemoryCgroup> {
        MemoryCgroup::of_process(pid)
    }
    /// How to reach this container's runtime state again, saved in the bundle at create so that the
    /// `delete` action cleans up with the runtime the container was created with, whatever the
    /// configuration says by then.
    fn saved_settings(&self) -> Option<AdmittedRuntime> {
        None
    }
    /// The runtime the configuration names, as the gate reported it with the first admitted container.
    fn configure(&self, _settings: &AdmittedRuntime) {}
}

/// The bundle's record of the runtime that created the container, read by the `delete` action.
pub const SAVED_RUNTIME_FILE: &str = "strict-runtime.json";

pub fn save_runtime(runtime: &AdmittedRuntime, bundle: &Path) -> Result<()> {
    let json = serde_json::to_vec(runtime).expect("plain data serialises");
    std::fs::write(bundle.join(SAVED_RUNTIME_FILE), json)
        .map_err(Error::io(format!("writing {SAVED_RUNTIME_FILE}")))
}

/// None when the bundle has no (readable) record.
pub fn saved_runtime(bundle: &Path) -> Option<AdmittedRuntime> {
    let bytes = std::fs::read(bundle.join(SAVED_RUNTIME_FILE)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// runc's (or crun's) command line.
pub struct RuncCli {
    /// The binary, its state directory (`--root`, one per containerd namespace) and cgroup driver. The
    /// shim does not read the configuration itself: the gate names the runtime when it admits the first
    /// container, before anything asks the runtime for anything.
    settings: OnceLock<AdmittedRuntime>,
    exits: Arc<Exits>,
}

/// What a runtime that was never configured runs (nothing should: there is no container yet).
static UNCONFIGURED: LazyLock<AdmittedRuntime> = LazyLock::new(|| AdmittedRuntime {
    binary: PathBuf::from(DEFAULT_BINARY),
    root: PathBuf::from(DEFAULT_ROOT),
    systemd_cgroup: false,
});

impl RuncCli {
    /// A runtime configured later, by `OciRuntime::configure`.
    pub fn new(exits: Arc<Exits>) -> Self {
        RuncCli {
            settings: OnceLock::new(),
            exits,
        }
    }

    pub fn with_settings(settings: AdmittedRuntime, exits: Arc<Exits>) -> Self {
        RuncCli {
            settings: OnceLock::from(settings),
            exits,
        }
    }

    fn settings(&self) -> &AdmittedRuntime {
        self.settings.get().unwrap_or(&UNCONFIGURED)
    }

    fn binary(&self) -> &Path {
        &self.settings().binary
    }

    fn command(&self, log: Option<&Path>) -> Command {
        let settings = self.settings();
        let mut command = Command::new(&settings.binary);
        command.arg("--root").arg(&settings.root);
        if let Some(log) = log {
            command
                .arg("--log")
                .arg(log)
                .arg("--log-format")
                .arg("json");
        }
        if settings.systemd_cgroup {
            command.arg("--systemd-cgroup");
        }
        // containerd run by systemd as a Type=notify unit has NOTIFY_SOCKET, and passes it to its shims.
        // Seeing it, runc would hand the container a notify socket and make `runc start` wait for the
        // workload's READY=1, that is, until the container exits.
        command.env_remove("NOTIFY_SOCKET");
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        command
    }

    /// Runs one runtime command to its end and returns its stdout. The exit status comes from the shim's
    /// reaper, never from `Child::wait`: std's `Child` is used because, unlike tokio's, it never reaps on
    /// its own, so the reaper cannot lose a status to it.
    async fn run(&self, what: &str, mut command: Command, log: Option<&Path>) -> Result<Vec<u8>> {
        let since = Instant::now();
        let mut child = command.spawn().map_err(|e| self.spawn_error(what, e))?;
        let exit = self.exits.watch(child.id() as i32, since);
        let (mut stdout, mut stderr) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
        let out = tokio::task::spawn_blocking(move || {
            let mut out = Vec::new();
            stdout.read_to_end(&mut out).map(|_| out)
        });
        let err = tokio::task::spawn_blocking(move || {
            let mut err = Vec::new();
            stderr.read_to_end(&mut err).map(|_| err)
        });
        let out = out
            .await
            .map_err(|e| Error::FailedPrecondition(e.to_string()))?;
        let err = err
            .await
            .map_err(|e| Error::FailedPrecondition(e.to_string()))?;
        let (out, err) = (
            out.map_err(Error::io(format!("reading {what}'s output")))?,
            err.map_err(Error::io(format!("reading {what}'s errors")))?,
        );
        drop(child);
        let code = exit.await.unwrap_or(-1);
        if code == 0 {
            return Ok(out);
        }
        Err(Error::Runtime {
            command: format!("{} {what}", self.binary().display()),
            message: last_error(&err, log).unwrap_or_else(|| format!("exit status {code}")),
        })
    }

    fn spawn_error(&self, what: &str, error: std::io::Error) -> Error {
        let message = if error.kind() == std::io::ErrorKind::NotFound {
            format!(
                "the OCI runtime {} is missing: install it, or set `binary` in the `[runtime]` table of the shim's configuration (STRICT_CONFIG or /etc/containerd/strict.toml)",
                self.binary().display()
            )
        } else {
            format!("cannot run {}: {error}", self.binary().display())
        };
        Error::Runtime {
            command: format!("{} {what}", self.binary().display()),
            message,
        }
    }

    fn with_fds(command: &mut Command, fds: ProcessFds) {
        command.stdin(fds.stdin.map(Stdio::from).unwrap_or_else(Stdio::null));
        if let Some(fd) = fds.stdout {
            command.stdout(Stdio::from(fd));
        }
        if let Some(fd) = fds.stderr {
            command.stderr(Stdio::from(fd));
        }
    }

    /// Runs a command whose stdio belongs to the new process: the runtime's own errors then go to its log.
    async fn run_with_fds(
        &self,
        what: &str,
        mut command: Command,
        fds: ProcessFds,
        log: &Path,
    ) -> Result<()> {
        let since = Instant::now();
        let passes_stdout = fds.stdout.is_some();
        let passes_stderr = fds.stderr.is_some();
        Self::with_fds(&mut command, fds);
        if !passes_stdout {
            command.stdout(Stdio::null());
        }
        if !passes_stderr {
            command.stderr(Stdio::null());
        }
        let child = command.spawn().map_err(|e| self.spawn_error(what, e))?;
        let exit = self.exits.watch(child.id() as i32, since);
        // Our copies of the new process's stdio went into `command`: close them so only it holds them.
        drop(command);
        drop(child);
        let code = exit.await.unwrap_or(-1);
        if code == 0 {
            return Ok(());
        }
        Err(Error::Runtime {
            command: format!("{} {what}", self.binary().display()),
            message: last_error(&[], Some(log)).unwrap_or_else(|| format!("exit status {code}")),
        })
    }
}

/// The runtime's last error: its stderr, else the last error line of its JSON log.
fn last_error(stderr: &[u8], log: Option<&Path>) -> Option<String> {
    let text = String::from_utf8_lossy(stderr).trim().to_string();
    if !text.is_empty() {
        return Some(text);
    }
    let log = std::fs::read_to_string(log?).ok()?;
    log.lines().rev().find_map(|line| {
        let entry: serde_json::Value = serde_json::from_str(line).ok()?;
        (entry["level"] == "error").then(|| entry["msg"].as_str().unwrap_or_default().to_string())
    })
}

/// runc's log for a container: `<bundle>/log.json`, which containerd's own shim uses too.
pub fn log_path(bundle: &Path) -> PathBuf {
    bundle.join("log.json")
}

#[async_trait]
impl OciRuntime for RuncCli {
    fn saved_settings(&self) -> Option<AdmittedRuntime> {
        Some(self.settings().clone())
    }

    fn configure(&self, settings: &AdmittedRuntime) {
        if let Err(asked) = self.settings.set(settings.clone()) {
            if self.settings.get() != Some(&asked) {
                tracing::warn!(
                    runtime = %asked.binary.display(),
                    "the configuration names another runtime now; this shim keeps the one it started with"
                );
            }
        }
    }

    async fn create(
        &self,
        id: &str,
        bundle: &Path,
        pid_file: &Path,
        fds: ProcessFds,
    ) -> Result<()> {
        let log = log_path(bundle);
        let mut command = self.command(Some(&log));
        command
            .arg("create")
            .arg("--bundle")
            .arg(bundle)
            .arg("--pid-file")
            .arg(pid_file);
        if let Some(socket) = &fds.console_socket {
            command.arg("--console-socket").arg(socket);
        }
        command.arg(id);
        self.run_with_fds("create", command, fds, &log).await
    }

    async fn start(&self, id: &str) -> Result<()> {
        let mut command = self.command(None);
        command.arg("start").arg(id);
        self.run("start", command, None).await.map(drop)
    }

    async fn exec(&self, id: &str, process: &Path, pid_file: &Path, fds: ProcessFds) -> Result<()> {
        let log = process.with_extension("log.json");
        let mut command = self.command(Some(&log));
        command
            .arg("exec")
            .arg("--detach")
            .arg("--process")
            .arg(process)
            .arg("--pid-file")
            .arg(pid_file);
        if let Some(socket) = &fds.console_socket {
            command.arg("--console-socket").arg(socket);
        }
        command.arg(id);
        let result = self.run_with_fds("exec", command, fds, &log).await;
        let _ = std::fs::remove_file(&log);
        result
    }

    async fn kill(&self, id: &str, signal: u32, all: bool) -> Result<()> {
        let mut command = self.command(None);
        command.arg("kill");
        if all {
            command.arg("--all");
        }
        command.arg(id).arg(signal.to_string());
        self.run("kill", command, None).await.map(drop)
    }

    async fn delete(&self, id: &str, force: bool) -> Result<()> {
        let mut command = self.command(None);
        command.arg("delete");
        if force {
            command.arg("--force");
        }
        command.arg(id);
        self.run("delete", command, None).await.map(drop)
    }

    async fn pause(&self, id: &str) -> Result<()> {
        let mut command = self.command(None);
        command.arg("pause").arg(id);
        self.run("pause", command, None).await.map(drop)
    }

    async fn resume(&self, id: &str) -> Result<()> {
        let mut command = self.command(None);
        command.arg("resume").arg(id);
        self.run("resume", command, None).await.map(drop)
    }

    async fn update(&self, id: &str, resources: &Path) -> Result<()> {
        let mut command = self.command(None);
        command
            .arg("update")
            .arg("--resources")
            .arg(resources)
            .arg(id);
        self.run("update", command, None).await.map(drop)
    }

    async fn pids(&self, id: &str) -> Result<Vec<i32>> {
        let mut command = self.command(None);
        command.arg("ps").arg("--format").arg("json").arg(id);
        let out = self.run("ps", command, None).await?;
        let pids: Option<Vec<i32>> = serde_json::from_slice(&out).map_err(|e| Error::Runtime {
            command: format!("{} ps", self.binary().display()),
            message: format!("unreadable output: {e}"),
        })?;
        Ok(pids.unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_error_comes_from_stderr_then_from_the_json_log() {
        assert_eq!(last_error(b"boom\n", None).as_deref(), Some("boom"));
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("log.json");
        std::fs::write(
            &log,
            "{\"level\":\"warning\",\"msg\":\"w\"}\n{\"level\":\"error\",\"msg\":\"no such file\"}\n{\"level\":\"info\",\"msg\":\"i\"}\n",
        )
        .unwrap();
        assert_eq!(last_error(b"", Some(&log)).as_deref(), Some("no such file"));
    }

    #[test]
    fn the_runtime_never_sees_systemds_notify_socket() {
        let runc = RuncCli::new(Arc::new(Exits::default()));
        let command = runc.command(None);
        assert!(command
            .get_envs()
            .any(|(key, value)| key == "NOTIFY_SOCKET" && value.is_none()));
    }

    #[tokio::test]
    async fn a_missing_runtime_is_a_clear_error() {
        let exits = Arc::new(Exits::default());
        let settings = AdmittedRuntime {
            binary: "/nonexistent/runc".into(),
            root: "/tmp".into(),
            systemd_cgroup: false,
        };
        let runc = RuncCli::with_settings(settings, exits);
        let err = runc.start("c").await.unwrap_err().to_string();
        assert!(err.contains("/nonexistent/runc is missing"), "{err}");
    }
}
