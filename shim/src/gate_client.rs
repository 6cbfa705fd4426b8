//! The shim's side of the policy gate: every Create, Exec and Update is asked of a `strictctl gate`
//! process, so that the long-running shim never loads or holds the policy.
//!
//! A shim runs for the whole life of every pod; the policy (TOML profiles, the host's connections,
//! libseccomp's tables, the evaluation) is needed once per container. The shim asks `strictctl gate`, one
//! process per question: it loads the configuration and the policy, reads one request as JSON on stdin
//! (`strict_protocol::gate`), answers on stdout and exits.
//!
//! The first gate process starts with the shim, so the policy loads while containerd prepares the first
//! Create (the sandbox's, for a pod); it waits on its stdin until then, and exits if the shim closes it
//! unused. Later questions start a process each (a few milliseconds: see docs/benchmarks.md).
//!
//! The answer to a Create also carries the runtime settings the configuration names (runc's path and
//! root): the shim learns them from the gate, not from parsing the configuration itself.
//!
//! A gate that cannot be started, dies, answers nonsense or misses its deadline is a refusal (fail
//! closed).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde::de::DeserializeOwned;
use strict_protocol::gate::{
    DEBUG_ENV, EXEC_FLAG, GATE_ENV, GATE_SUBCOMMAND, IDLE_LIMIT, NAMESPACE_FLAG,
};
use strict_protocol::names::STRICTCTL_BINARY;
use strict_protocol::{
    Admitted, Answer, Envelope, ExecBaseline, PodNamespaces, PodRole, Request, RootfsMount,
};

use crate::error::{Error, Result};
use crate::exits::Exits;
use crate::logging;

/// How long a gate may take to answer. It reads the host's connections (bounded by `source_timeout`,
/// 5 s by default) and may ask runc for its features; one that hangs is killed and the request refused,
/// rather than holding the pod's shim.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// The shim's error for a gate's answer.
fn into_result<T>(answer: Answer<T>) -> Result<T> {
    match answer {
        Answer::Ok(value) => Ok(value),
        Answer::Refused(message) => Err(Error::Refused(message)),
        Answer::Undecided(message) => Err(Error::Undecided(message)),
        Answer::InvalidArgument(message) => Err(Error::InvalidArgument(message)),
    }
}

/// The seam between the shim and its gate: a process per question in the shim, the same answers in
/// process in the unit tests.
#[async_trait]
pub trait Gatekeeper: Send + Sync {
    /// The answer to one request, as the JSON the gate wrote.
    async fn answer(&self, request: Request) -> Result<Vec<u8>>;

    /// Another Create is likely soon (the pod's next container): have a gate ready for it.
    fn prepare_next(&self) {}
}

impl dyn Gatekeeper {
    pub async fn create(
        &self,
        id: &str,
        bundle: &Path,
        pods: Vec<PodNamespaces>,
        rootfs: Vec<RootfsMount>,
    ) -> Result<Admitted> {
        let request = Request::Create {
            id: id.to_string(),
            bundle: bundle.to_owned(),
            pods,
            rootfs,
        };
        let admitted: Admitted = decode(&self.answer(request).await?)?;
        if admitted.role != PodRole::None {
            // A pod's containers come one after another: the kubelet creates the next right away.
            self.prepare_next();
        }
        Ok(admitted)
    }

    pub async fn exec(&self, id: &str, exec_id: &str, bundle: &Path, process: &[u8]) -> Result<()> {
        let request = Request::Exec {
            id: id.to_string(),
            exec_id: exec_id.to_string(),
            bundle: bundle.to_owned(),
            process: utf8(process, "the exec process spec")?,
        };
        decode(&self.answer(request).await?)
    }

    /// The resources to apply (JSON), as the gate let them through.
    pub async fn update(&self, id: &str, bundle: &Path, resources: &[u8]) -> Result<String> {
        let request = Request::Update {
            id: id.to_string(),
            bundle: bundle.to_owned(),
            resources: utf8(resources, "the update's resources")?,
        };
        decode(&self.answer(request).await?)
    }
}

fn utf8(bytes: &[u8], what: &str) -> Result<String> {
    String::from_utf8(bytes.to_vec())
        .map_err(|e| Error::InvalidArgument(format!("{what} is not JSON: {e}")))
}

fn decode<T: DeserializeOwned>(json: &[u8]) -> Result<T> {
    match serde_json::from_slice::<Answer<T>>(json) {
        Ok(answer) => into_result(answer),
        Err(error) => Err(Error::Undecided(format!(
            "the policy gate answered nonsense ({error}): {}",
            String::from_utf8_lossy(&json[..json.len().min(200)])
        ))),
    }
}

/// The execs a container's shim allows without a gate: its own process as the gate found it at Create
/// (`strict_protocol::ExecBaseline`), with any command, environment or terminal. Anything else in an
/// exec that differs, down to one capability or group, and the exec is asked of a gate.
pub struct ExecShortcut {
    free_fields: Vec<String>,
    process: serde_json::Map<String, serde_json::Value>,
}

impl ExecShortcut {
    /// None when the gate's baseline does not parse (every exec is then asked).
    pub fn new(baseline: &ExecBaseline) -> Option<ExecShortcut> {
        match serde_json::from_str(&baseline.process) {
            Ok(serde_json::Value::Object(process)) => Some(ExecShortcut {
                free_fields: baseline.free_fields.clone(),
                process,
            }),
            _ => None,
        }
    }

    /// When the exec's process (containerd's JSON) is the baseline but for the free fields: the process
    /// to hand runc, written again from what was compared. Not the bytes as they came: Go's decoder lets
    /// a repeated key merge into the first, which a comparison of parsed values would not see.
    pub fn allows(&self, process: &[u8]) -> Option<Vec<u8>> {
        let Ok(serde_json::Value::Object(mut fields)) = serde_json::from_slice(process) else {
            return None;
        };
        let free: Vec<(String, serde_json::Value)> = self
            .free_fields
            .iter()
            .filter_map(|field| fields.remove_entry(field))
            .collect();
        if fields != self.process {
            return None;
        }
        fields.extend(free);
        Some(serde_json::to_vec(&fields).expect("a parsed value serialises"))
    }
}

/// Where the gate binary is: `$STRICT_GATE`, else `strictctl` next to the running shim.
pub fn gate_binary() -> PathBuf {
    if let Some(path) = std::env::var_os(GATE_ENV).filter(|p| !p.is_empty()) {
        return PathBuf::from(path);
    }
    let exe = std::fs::read_link("/proc/self/exe").unwrap_or_default();
    exe.parent()
        .unwrap_or(Path::new("/"))
        .join(STRICTCTL_BINARY)
}

/// The shim's side: one gate process per question, some started ahead of time (with the shim, and after
/// each Create of a pod's container, for the next). One started ahead exits after `IDLE_LIMIT` unasked,
/// so the shim takes it only within half of that; it reads its policy again if asked after
/// `CURRENT_FOR`.
pub struct GateProcesses {
    binary: PathBuf,
    namespace: String,
    debug: bool,
    exits: Arc<Exits>,
    prepared: Mutex<Option<Prepared>>,
    deadline: Duration,
}

struct Prepared {
    child: Child,
    since: Instant,
}

impl GateProcesses {
    /// Starts the first gate process at once, so that its policy loads before the first Create. The
    /// shim's reaper must be subscribed (`Exits::start`) before this.
    pub fn new(binary: PathBuf, namespace: &str, debug: bool, exits: Arc<Exits>) -> GateProcesses {
        let gates = GateProcesses {
            binary,
            namespace: namespace.to_string(),
            debug,
            exits,
            prepared: Mutex::new(None),
            deadline: DEADLINE,
        };
        // A shim's first question is always a Create.
        match gates.spawn(false) {
            Ok(prepared) => *gates.lock() = Some(prepared),
            // Tried again, and reported to containerd, on first use.
            Err(error) => tracing::warn!(%error, "starting the policy gate"),
        }
        gates
    }

    /// Another deadline than `DEADLINE` (tests).
    pub fn with_deadline(mut self, deadline: Duration) -> GateProcesses {
        self.deadline = deadline;
        self
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Prepared>> {
        self.prepared.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A gate process; `exec_only` ones skip loading the profiles and connections.
    fn spawn(&self, exec_only: bool) -> Result<Prepared> {
        let since = Instant::now();
        let mut command = Command::new(&self.binary);
        command
            .arg(GATE_SUBCOMMAND)
            .arg(NAMESPACE_FLAG)
            .arg(&self.namespace);
        if exec_only {
            command.arg(EXEC_FLAG);
        }
        command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(logging::child_stderr());
        if self.debug {
            command.env(DEBUG_ENV, "1");
        }
        let child = command.spawn().map_err(|e| {
            Error::Undecided(format!(
                "cannot start the policy gate {}: {e} (install strictctl next to the shim, or set {GATE_ENV})",
                self.binary.display()
            ))
        })?;
        Ok(Prepared { child, since })
    }
}

#[async_trait]
impl Gatekeeper for GateProcesses {
    fn prepare_next(&self) {
        if self.lock().is_some() {
            return;
        }
        // Started outside the lock; one prepared meanwhile wins and this one is dropped (it reads EOF).
        match self.spawn(false) {
            Ok(gate) => {
                self.lock().get_or_insert(gate);
            }
            Err(error) => tracing::warn!(%error, "starting the next policy gate"),
        }
    }

    async fn answer(&self, request: Request) -> Result<Vec<u8>> {
        // One near its idle limit might exit before it reads the question: dropped (it reads EOF and
        // exits), and a new one started.
        let prepared = self
            .lock()
            .take()
            .filter(|p| p.since.elapsed() < IDLE_LIMIT / 2);
        let exec_only = request.is_exec();
        let Prepared { mut child, since } = match prepared {
            Some(prepared) => prepared,
            None => self.spawn(exec_only)?,
        };
        let pid = child.id();
        let exit = self.exits.watch(pid as i32, since);
        let input = serde_json::to_vec(&Envelope::new(request)).expect("plain data serialises");
        let (mut stdin, mut stdout) = (child.stdin.take(), child.stdout.take());
        // std's Child, not tokio's: it never reaps on its own, so the shim's reaper gets the exit.
        drop(child);
        let talk = tokio::task::spawn_blocking(move || -> std::io::Result<Vec<u8>> {
            let (Some(mut stdin), Some(mut stdout)) = (stdin.take(), stdout.take()) else {
                return Err(std::io::Error::other("no pipes"));
            };
            // A gate that died early closes its stdin: the answer (or its absence) tells why.
            let _ = stdin.write_all(&input);
            drop(stdin);
            let mut output = Vec::new();
            stdout.read_to_end(&mut output)?;
            Ok(output)
        });
        let answered = async {
            let output = talk.await;
            (output, exit.await.unwrap_or(-1))
        };
        let (output, code) = match tokio::time::timeout(self.deadline, answered).await {
            Ok(done) => done,
            Err(_) => {
                // SAFETY: kill(2) on our own child, which the reaper has not reaped: it has not answered.
                unsafe { libc::kill(pid as i32, libc::SIGKILL) };
                return Err(Error::Undecided(format!(
                    "the policy gate ({}, pid {pid}) did not answer within {:?} and was killed",
                    self.binary.display(),
                    self.deadline
                )));
            }
        };
        let output = output
            .map_err(|e| Error::Undecided(format!("the policy gate: {e}")))?
            .map_err(|e| Error::Undecided(format!("talking to the policy gate: {e}")))?;
        if output.is_empty() {
            return Err(Error::Undecided(format!(
                "the policy gate ({}, pid {pid}) exited with status {code} without an answer",
                self.binary.display()
            )));
        }
        Ok(output)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exec_shortcut_takes_the_containers_own_process_with_any_command() {
        let shortcut = ExecShortcut::new(&ExecBaseline {
            free_fields: vec!["args".into(), "env".into(), "terminal".into()],
            process: r#"{"user":{"uid":1000,"gid":1000},"capabilities":{"bounding":["CAP_CHOWN"]},"cwd":"/"}"#
                .into(),
        })
        .unwrap();
        let probe = br#"{"terminal":false,"user":{"gid":1000,"uid":1000},"args":["/bin/true"],"env":["A=1"],"cwd":"/","capabilities":{"bounding":["CAP_CHOWN"]}}"#;
        let handed = shortcut.allows(probe).expect("a probe is allowed");
        let handed: serde_json::Value = serde_json::from_slice(&handed).unwrap();
        assert_eq!(handed["args"][0], "/bin/true");
        // A repeated key: runc (Go) would merge the groups of the first `user` in; what runc gets is the
        // object compared, with one `user`.
        let repeated = br#"{"user":{"uid":1000,"gid":1000,"additionalGids":[0,6]},"capabilities":{"bounding":["CAP_CHOWN"]},"cwd":"/","user":{"uid":1000,"gid":1000}}"#;
        let handed = String::from_utf8(shortcut.allows(repeated).unwrap()).unwrap();
        assert_eq!(handed.matches("\"user\"").count(), 1, "{handed}");
        assert!(!handed.contains("additionalGids"), "{handed}");
        // Anything else that differs goes to a gate: a capability, the user, a field the baseline lacks.
        for other in [
            r#"{"user":{"uid":1000,"gid":1000},"capabilities":{"bounding":["CAP_CHOWN","CAP_SYS_ADMIN"]},"cwd":"/"}"#,
            r#"{"user":{"uid":0,"gid":1000},"capabilities":{"bounding":["CAP_CHOWN"]},"cwd":"/"}"#,
            r#"{"user":{"uid":1000,"gid":1000},"capabilities":{"bounding":["CAP_CHOWN"]},"cwd":"/","apparmorProfile":"unconfined"}"#,
            r#"{"user":{"uid":1000,"gid":1000},"cwd":"/"}"#,
            r#"{"user":{"uid":1000,"gid":1000},"capabilities":{"bounding":["CAP_CHOWN"]},"cwd":"/tmp"}"#,
            "not json",
            "[]",
        ] {
            assert!(shortcut.allows(other.as_bytes()).is_none(), "{other}");
        }
        assert!(ExecShortcut::new(&ExecBaseline {
            free_fields: vec![],
            process: "[1]".into()
        })
        .is_none());
    }

    #[test]
    fn answers_carry_the_errors_that_matter() {
        let refused =
            serde_json::to_vec(&Answer::<()>::Refused("strict: refused: x".into())).unwrap();
        assert!(
            matches!(decode::<()>(&refused), Err(Error::Refused(m)) if m == "strict: refused: x")
        );
        let invalid = serde_json::to_vec(&Answer::<()>::InvalidArgument("bad".into())).unwrap();
        assert!(matches!(
            decode::<()>(&invalid),
            Err(Error::InvalidArgument(_))
        ));
        let undecided = serde_json::to_vec(&Answer::<()>::Undecided("snapd".into())).unwrap();
        assert!(matches!(decode::<()>(&undecided), Err(Error::Undecided(m)) if m == "snapd"));
        assert!(
            matches!(decode::<()>(b"garbage"), Err(Error::Undecided(m)) if m.contains("nonsense"))
        );
    }

    #[tokio::test]
    async fn a_missing_gate_refuses_and_names_it() {
        // No reaper: nothing is spawned (and a reaper would take other tests' children).
        let exits = Arc::new(Exits::default());
        let gates = GateProcesses::new("/nonexistent/strictctl".into(), "default", false, exits);
        let gate: &dyn Gatekeeper = &gates;
        let error = gate
            .create("c1", Path::new("/tmp"), Vec::new(), Vec::new())
            .await
            .unwrap_err();
        assert!(
            matches!(&error, Error::Undecided(m) if m.contains("/nonexistent/strictctl") && m.contains(GATE_ENV)),
            "{error}"
        );
    }
}
