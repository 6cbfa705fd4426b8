//! What `status` and `reconcile` do to the node, behind a seam so the logic is tested without root: ask
//! the runtime for a container's state, stop it, take devices out of its device cgroup.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde::Deserialize;
use strict_protocol::AdmittedRuntime;

/// A container as its runtime reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContainerState {
    /// `created`, `running`, `paused` or `stopped`.
    pub status: String,
    pub pid: u32,
    /// The bundle the runtime created it from (checked against the bundle the record is in).
    pub bundle: PathBuf,
}

impl ContainerState {
    /// Whether it can still use what it holds (a stopped container holds nothing).
    pub fn is_live(&self) -> bool {
        self.status != "stopped"
    }
}

/// One rule for a device cgroup, as `devices.deny` takes it: `c 10:229 rwm`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceRule {
    pub typ: char,
    pub major: i64,
    pub minor: i64,
    pub access: String,
}

impl std::fmt::Display for DeviceRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}:{} {}",
            self.typ, self.major, self.minor, self.access
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("cannot run {}: {source}", .binary.display())]
    CannotRun {
        binary: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("`{command}` failed: {stderr}")]
    Failed { command: String, stderr: String },
    #[error("`{command}` answered what is not a state: {source}")]
    BadState {
        command: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("process {pid} has no cgroup v1 device controller (cgroup v2 filters devices with a program \
             the runtime loads at create; only stopping the container revokes a device there)")]
    NoDeviceCgroup { pid: u32 },
    #[error(
        "the container's cgroups are systemd's, which would allow its devices again on a reload"
    )]
    SystemdCgroup,
    #[error("process {pid} is in device cgroup {found:?}, not the container's {expected:?}")]
    OtherCgroup {
        pid: u32,
        found: String,
        expected: String,
    },
    #[error(
        "process {pid} of the container holds {device} open: a device cgroup stops new opens only"
    )]
    DeviceOpen { pid: u32, device: String },
    #[error("{}: {source}", .path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

pub trait Node {
    /// The container's state; None when the runtime does not know it (deleted, or never created).
    fn state(
        &self,
        runtime: &AdmittedRuntime,
        id: &str,
    ) -> Result<Option<ContainerState>, NodeError>;
    /// Kills every process of the container (its pod then restarts it under the grants now).
    fn stop(&self, runtime: &AdmittedRuntime, id: &str) -> Result<(), NodeError>;
    /// Denies these devices to the device cgroup of process `pid` (the container's init), which must be
    /// `cgroups_path` (the spec's `linux.cgroupsPath`), and fails when a process of that cgroup holds one
    /// of them open (a denial stops new opens only).
    fn deny_devices(
        &self,
        runtime: &AdmittedRuntime,
        pid: u32,
        cgroups_path: &str,
        rules: &[DeviceRule],
    ) -> Result<(), NodeError>;
}

/// The node itself: the runtime's command line and the cgroup file system.
pub struct RealNode;

/// Runs the runtime with these arguments: its output, or why it could not run. A failure is the
/// caller's to read (for `state`, "does not exist" is an answer).
fn run_runtime(runtime: &AdmittedRuntime, args: &[&str]) -> Result<Output, NodeError> {
    let mut command = Command::new(&runtime.binary);
    command.arg("--root").arg(&runtime.root);
    if runtime.systemd_cgroup {
        command.arg("--systemd-cgroup");
    }
    command
        .args(args)
        .output()
        .map_err(|source| NodeError::CannotRun {
            binary: runtime.binary.clone(),
            source,
        })
}

/// The failure of a runtime command, with what it said.
fn failed(runtime: &AdmittedRuntime, args: &[&str], output: &Output) -> NodeError {
    NodeError::Failed {
        command: format!(
            "{} --root {} {}",
            runtime.binary.display(),
            runtime.root.display(),
            args.join(" ")
        ),
        stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
    }
}

impl Node for RealNode {
    fn state(
        &self,
        runtime: &AdmittedRuntime,
        id: &str,
    ) -> Result<Option<ContainerState>, NodeError> {
        #[derive(Deserialize)]
        struct State {
            status: String,
            pid: u32,
            bundle: PathBuf,
        }
        let args = ["state", id];
        let output = run_runtime(runtime, &args)?;
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            // runc: "container does not exist"; crun: "...: No such file or directory". A wrong --root
            // says the same: the caller checks the runtime and its state directory before believing it.
            if stderr.contains("does not exist") || stderr.contains("No such file") {
                return Ok(None);
            }
            return Err(failed(runtime, &args, &output));
        }
        let state: State =
            serde_json::from_slice(&output.stdout).map_err(|source| NodeError::BadState {
                command: format!("{} state {id}", runtime.binary.display()),
                source,
            })?;
        Ok(Some(ContainerState {
            status: state.status,
            pid: state.pid,
            bundle: state.bundle,
        }))
    }

    fn stop(&self, runtime: &AdmittedRuntime, id: &str) -> Result<(), NodeError> {
        let args = ["kill", "--all", id, "KILL"];
        let output = run_runtime(runtime, &args)?;
        if output.status.success() {
            Ok(())
        } else {
            Err(failed(runtime, &args, &output))
        }
    }

    fn deny_devices(
        &self,
        runtime: &AdmittedRuntime,
        pid: u32,
        cgroups_path: &str,
        rules: &[DeviceRule],
    ) -> Result<(), NodeError> {
        if runtime.systemd_cgroup {
            return Err(NodeError::SystemdCgroup);
        }
        let cgroups = Path::new("/proc").join(pid.to_string()).join("cgroup");
        let text = std::fs::read_to_string(&cgroups).map_err(|source| NodeError::Io {
            path: cgroups.clone(),
            source,
        })?;
        let dir = device_cgroup(&text).ok_or(NodeError::NoDeviceCgroup { pid })?;
        // The container's own cgroup, never the root one (a rule there reaches every cgroup): a pid reused
        // since the runtime named it is in another.
        if dir == "/" || dir != cgroups_path {
            return Err(NodeError::OtherCgroup {
                pid,
                found: dir.to_string(),
                expected: cgroups_path.to_string(),
            });
        }
        let cgroup = Path::new("/sys/fs/cgroup/devices").join(dir.trim_start_matches('/'));
        let deny = cgroup.join("devices.deny");
        for rule in rules {
            std::fs::write(&deny, rule.to_string()).map_err(|source| NodeError::Io {
                path: deny.clone(),
                source,
            })?;
        }
        // Denied first, looked for after: nothing can open one in between.
        if let Some((pid, device)) = open_device(&cgroup, rules) {
            return Err(NodeError::DeviceOpen { pid, device });
        }
        Ok(())
    }
}

/// A process of the cgroup holding one of the devices open, and which.
fn open_device(cgroup: &Path, rules: &[DeviceRule]) -> Option<(u32, String)> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let procs = std::fs::read_to_string(cgroup.join("cgroup.procs")).unwrap_or_default();
    for pid in procs.lines().filter_map(|l| l.trim().parse::<u32>().ok()) {
        let fds = Path::new("/proc").join(pid.to_string()).join("fd");
        for entry in std::fs::read_dir(&fds).into_iter().flatten().flatten() {
            // The file the descriptor is open on (the magic link followed).
            let Ok(meta) = std::fs::metadata(entry.path()) else {
                continue;
            };
            let typ = if meta.file_type().is_char_device() {
                'c'
            } else if meta.file_type().is_block_device() {
                'b'
            } else {
                continue;
            };
            let (major, minor) = (
                nix::sys::stat::major(meta.rdev()) as i64,
                nix::sys::stat::minor(meta.rdev()) as i64,
            );
            if rules
                .iter()
                .any(|r| r.typ == typ && r.major == major && r.minor == minor)
            {
                return Some((pid, format!("{typ} {major}:{minor}")));
            }
        }
    }
    None
}

/// The device controller's path in a `/proc/<pid>/cgroup` (cgroup v1: `4:devices:/path`).
fn device_cgroup(proc_cgroup: &str) -> Option<&str> {
    proc_cgroup.lines().find_map(|line| {
        let mut fields = line.splitn(3, ':');
        let (_, controllers, path) = (fields.next()?, fields.next()?, fields.next()?);
        controllers
            .split(',')
            .any(|c| c == "devices")
            .then_some(path)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_device_controller_is_found_on_cgroup_v1_only() {
        let v1 = "12:pids:/k8s/abc\n4:devices:/k8s/abc\n1:name=systemd:/k8s/abc\n";
        assert_eq!(device_cgroup(v1), Some("/k8s/abc"));
        assert_eq!(device_cgroup("0::/k8s/abc\n"), None);
        let rule = DeviceRule {
            typ: 'c',
            major: 10,
            minor: 229,
            access: "rwm".into(),
        };
        assert_eq!(rule.to_string(), "c 10:229 rwm");
    }
}
