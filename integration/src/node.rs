//! A real node for the tests (`integration/node-vm/node.sh`): Debian 13 under QEMU with systemd as PID 1,
//! cgroup v2 and journald, booted once per test binary and reached through the QEMU guest agent
//! (`guest-exec`: a command's status and output, no network) and a forwarded port to its containerd's
//! gRPC API (CRI included).
//!
//! The VM is QEMU, a child of the test process that dies with it (PR_SET_PDEATHSIG from a thread that
//! lives as long as the process): a test run never leaves a VM behind. Its disk is a throwaway overlay of
//! the cached image, so every boot starts from the same node.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{json, Value};

use crate::{dist_dir, repo, require_fresh, spawn_dying_with_the_tests};

/// How long the node may take to boot under software emulation (about 20 s on a quiet machine, 35 s on
/// a busy one).
const BOOT_TIMEOUT: Duration = Duration::from_secs(240);

/// A command's end inside the node.
#[derive(Debug)]
pub struct Run {
    /// The exit code, or 128 + the signal that ended it.
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn success(&self) -> bool {
        self.code == 0
    }
}

/// The booted node. Tests take it with [`node`], which also serialises them: they share one containerd,
/// and some restart it.
pub struct Node {
    pub run_dir: PathBuf,
    /// 127.0.0.1:PORT, relayed inside the node to containerd's socket: its gRPC API (CRI, Tasks...).
    pub grpc_address: String,
    agent: Mutex<Agent>,
    _qemu: Child,
}

/// The node, booted on first use; the guard keeps other tests off it while one runs.
pub fn node() -> MutexGuard<'static, Node> {
    static NODE: OnceLock<Mutex<Node>> = OnceLock::new();
    NODE.get_or_init(|| Mutex::new(Node::boot()))
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Node {
    fn boot() -> Node {
        require_fresh(&dist_dir());
        let runs = repo().join(".testbed/node/run");
        remove_dead_runs(&runs);
        let run_dir = runs.join(std::process::id().to_string());
        let _ = std::fs::remove_dir_all(&run_dir);
        std::fs::create_dir_all(&run_dir).unwrap();
        let started = Instant::now();
        let mut qemu = spawn_qemu(&run_dir);
        let port_file = run_dir.join("cri.port");
        let agent_path = run_dir.join("agent.sock");
        let agent = loop {
            if let Ok(Some(status)) = qemu.try_wait() {
                panic!(
                    "node.sh boot ended ({status}): {}\nits console:\n{}",
                    std::fs::read_to_string(run_dir.join("qemu.log")).unwrap_or_default(),
                    console_tail(&run_dir)
                );
            }
            if started.elapsed() > BOOT_TIMEOUT {
                panic!(
                    "the node did not answer within {BOOT_TIMEOUT:?}: {}\nits console:\n{}",
                    std::fs::read_to_string(run_dir.join("qemu.log")).unwrap_or_default(),
                    console_tail(&run_dir)
                );
            }
            if agent_path.exists() {
                if let Ok(mut agent) = Agent::connect(&agent_path) {
                    if agent.sync(Duration::from_secs(3)).is_ok() {
                        break agent;
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(500));
        };
        let port = std::fs::read_to_string(&port_file).unwrap();
        let node = Node {
            grpc_address: format!("127.0.0.1:{}", port.trim()),
            run_dir,
            agent: Mutex::new(agent),
            _qemu: qemu,
        };
        // The node is up when systemd says so (containerd, the relay and the network are units).
        let up = node.sh("systemctl is-system-running --wait; systemctl --failed --no-legend");
        assert!(
            up.stdout.starts_with("running\n"),
            "the node is not running cleanly: {}",
            up.stdout
        );
        eprintln!("node booted in {:.1} s", started.elapsed().as_secs_f64());
        node
    }

    /// `sh -c SCRIPT` as root inside the node, to its end; `ctr` works in the tests' namespace
    /// ([`crate::NAMESPACE`]).
    pub fn sh(&self, script: &str) -> Run {
        self.sh_with_timeout(script, Duration::from_secs(300))
    }

    pub fn sh_with_timeout(&self, script: &str, timeout: Duration) -> Run {
        let mut agent = self.agent.lock().unwrap_or_else(|p| p.into_inner());
        agent
            .exec(
                &[
                    "/bin/sh",
                    "-c",
                    &format!(
                        "export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
                         CONTAINERD_NAMESPACE={}; {script}",
                        crate::NAMESPACE
                    ),
                ],
                timeout,
            )
            .unwrap_or_else(|e| {
                panic!(
                    "running in the node: {script}: {e}; its console:\n{}",
                    console_tail(&self.run_dir)
                )
            })
    }

    /// [`Node::sh`] that must succeed, every command of it (`set -e`); its stdout.
    pub fn ok(&self, script: &str) -> String {
        let run = self.sh(&format!("set -e\n{script}"));
        assert!(
            run.success(),
            "in the node: {script}\nexit {}\nstdout: {}\nstderr: {}",
            run.code,
            run.stdout,
            run.stderr
        );
        run.stdout
    }
}

/// Run directories of test processes that are gone (each holds a disk overlay and a payload image).
fn remove_dead_runs(runs: &Path) {
    for entry in std::fs::read_dir(runs).into_iter().flatten().flatten() {
        let alive = entry
            .file_name()
            .to_str()
            .and_then(|name| name.parse::<u32>().ok())
            .is_some_and(|pid| Path::new(&format!("/proc/{pid}")).exists());
        if !alive {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

fn console_tail(run_dir: &Path) -> String {
    let text = std::fs::read_to_string(run_dir.join("console.log")).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// `node.sh boot RUN_DIR` (which execs QEMU), dying with the test process.
fn spawn_qemu(run_dir: &Path) -> Child {
    let log = std::fs::File::create(run_dir.join("qemu.log")).unwrap();
    let mut command = Command::new(repo().join("integration/node-vm/node.sh"));
    command
        .arg("boot")
        .arg(run_dir)
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log);
    spawn_dying_with_the_tests(command)
        .unwrap_or_else(|e| panic!("starting integration/node-vm/node.sh boot: {e}"))
}

/// A client of the QEMU guest agent (qemu-ga's JSON protocol over the virtio-serial port).
struct Agent {
    stream: BufReader<UnixStream>,
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

impl Agent {
    fn connect(path: &Path) -> std::io::Result<Agent> {
        let stream = UnixStream::connect(path)?;
        Ok(Agent {
            stream: BufReader::new(stream),
        })
    }

    /// `guest-sync-delimited`: discards whatever an earlier, interrupted exchange left in the channel.
    fn sync(&mut self, timeout: Duration) -> Result<(), String> {
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed) + 1000;
        self.stream
            .get_ref()
            .set_read_timeout(Some(timeout))
            .map_err(|e| e.to_string())?;
        self.send(&json!({"execute": "guest-sync-delimited", "arguments": {"id": id}}))?;
        // The answer follows a 0xff byte; anything before it is stale.
        let mut byte = [0u8];
        loop {
            self.stream
                .read_exact(&mut byte)
                .map_err(|e| format!("waiting for the agent: {e}"))?;
            if byte[0] == 0xff {
                break;
            }
        }
        loop {
            let reply = self.receive()?;
            if reply["return"].as_u64() == Some(id) {
                return Ok(());
            }
        }
    }

    fn send(&mut self, request: &Value) -> Result<(), String> {
        let mut line = request.to_string();
        line.push('\n');
        self.stream
            .get_mut()
            .write_all(line.as_bytes())
            .map_err(|e| format!("writing to the agent: {e}"))
    }

    fn receive(&mut self) -> Result<Value, String> {
        let mut line = String::new();
        self.stream
            .read_line(&mut line)
            .map_err(|e| format!("reading from the agent: {e}"))?;
        if line.is_empty() {
            return Err("the agent closed the channel".into());
        }
        serde_json::from_str(line.trim_start_matches('\u{ff}'))
            .map_err(|e| format!("the agent's reply {line:?}: {e}"))
    }

    fn call(&mut self, request: Value) -> Result<Value, String> {
        self.stream
            .get_ref()
            .set_read_timeout(Some(Duration::from_secs(30)))
            .map_err(|e| e.to_string())?;
        self.send(&request)?;
        let reply = self.receive()?;
        if let Some(error) = reply.get("error") {
            return Err(format!("{}: {error}", request["execute"]));
        }
        Ok(reply["return"].clone())
    }

    /// `guest-exec` with captured output, then `guest-exec-status` until it ends.
    fn exec(&mut self, argv: &[&str], timeout: Duration) -> Result<Run, String> {
        self.sync(Duration::from_secs(30))?;
        let started = self.call(json!({
            "execute": "guest-exec",
            "arguments": {"path": argv[0], "arg": &argv[1..], "capture-output": true}
        }))?;
        let pid = started["pid"]
            .as_i64()
            .ok_or_else(|| format!("guest-exec answered {started}"))?;
        let deadline = Instant::now() + timeout;
        let mut pause = Duration::from_millis(10);
        loop {
            let status = self.call(json!({
                "execute": "guest-exec-status", "arguments": {"pid": pid}
            }))?;
            if status["exited"].as_bool() == Some(true) {
                let decode = |key: &str| {
                    status[key]
                        .as_str()
                        .map(|b64| {
                            let bytes = base64::engine::general_purpose::STANDARD
                                .decode(b64)
                                .unwrap_or_default();
                            String::from_utf8_lossy(&bytes).into_owned()
                        })
                        .unwrap_or_default()
                };
                let code = match (status["exitcode"].as_i64(), status["signal"].as_i64()) {
                    (Some(code), _) => code as i32,
                    (None, Some(signal)) => 128 + signal as i32,
                    (None, None) => -1,
                };
                return Ok(Run {
                    code,
                    stdout: decode("out-data"),
                    stderr: decode("err-data"),
                });
            }
            if Instant::now() > deadline {
                // Not left running in the node the next tests share.
                let _ = self.call(json!({
                    "execute": "guest-exec",
                    "arguments": {"path": "/bin/kill", "arg": ["-KILL", pid.to_string()]}
                }));
                return Err(format!("{argv:?} did not end within {timeout:?} (killed)"));
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(200));
        }
    }
}
