//! End-to-end test support: one private containerd 2.x per test binary (own root, state and sockets in a
//! temporary directory), with the strict runtime from this workspace's dist build (target/static), driven through `ctr`.
//!
//! Nothing is skipped: a missing containerd, runc or shim build fails the tests with what to run
//! (`integration/testbed/install.sh`, `scripts/build-dist.sh`).

pub mod node;
pub mod snapd;

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The containerd namespace the tests use.
pub const NAMESPACE: &str = "strict-it";
pub const IMAGE: &str = "localhost/strict/busybox:1";
pub const STRICT: &str = "io.containerd.strict.v2";
pub const RUNC: &str = "io.containerd.runc.v2";
/// Directories put first on containerd's PATH (and so its shims' and their gates'), when set in the test
/// process before `testbed()`. The rest of the test process's environment reaches them as it is.
pub const PATH_PREFIX_ENV: &str = "STRICT_IT_PATH_PREFIX";

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

pub struct Testbed {
    pub address: PathBuf,
    pub run_dir: PathBuf,
    ctr: PathBuf,
    _containerd: std::sync::Mutex<Child>,
    _dir: tempfile::TempDir,
}

fn require(path: &Path, what: &str, fix: &str) {
    assert!(
        path.exists(),
        "{what} is missing at {}: run {fix}",
        path.display()
    );
}

/// `cargo test` rebuilds the test binaries, not target/static: binaries older than the sources they are
/// built from would test yesterday's code.
pub fn require_fresh(dist: &Path) {
    fn newest(path: &Path) -> std::time::SystemTime {
        let Ok(meta) = std::fs::symlink_metadata(path) else {
            return std::time::SystemTime::UNIX_EPOCH;
        };
        if !meta.is_dir() {
            return meta.modified().unwrap_or(std::time::SystemTime::UNIX_EPOCH);
        }
        std::fs::read_dir(path)
            .into_iter()
            .flatten()
            .flatten()
            .map(|entry| newest(&entry.path()))
            .max()
            .unwrap_or(std::time::SystemTime::UNIX_EPOCH)
    }
    let repo = repo();
    // Each binary against the sources it is built from: cargo leaves a binary whose sources did not
    // change as it was, however old.
    let built_from: [(&str, &[&str]); 2] = [
        (
            "containerd-shim-strict-v2",
            &["shim/src", "shim/protocol/src", "Cargo.lock"],
        ),
        (
            "strictctl",
            &[
                "strictctl/src",
                "shim/protocol/src",
                "policy/src",
                "vendor-profiles",
                "Cargo.lock",
            ],
        ),
    ];
    for (binary, parts) in built_from {
        let sources = parts
            .iter()
            .map(|part| newest(&repo.join(part)))
            .max()
            .unwrap();
        let built = newest(&dist.join(binary).canonicalize().unwrap());
        assert!(
            built >= sources,
            "{}/{binary} is older than its sources: run scripts/build-dist.sh",
            dist.display()
        );
    }
}

/// The private containerd of this test binary, started on first use. It dies with the test process
/// (PR_SET_PDEATHSIG), so no test run leaves a containerd behind.
pub fn testbed() -> &'static Testbed {
    static TESTBED: OnceLock<Testbed> = OnceLock::new();
    TESTBED.get_or_init(start)
}

/// The binaries under test, as they get installed: `scripts/build-dist.sh` builds them (static, the
/// `dist` profile) into target/static/.
pub fn dist_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from);
    target
        .unwrap_or_else(|| repo().join("target"))
        .join("static")
}

fn start() -> Testbed {
    let repo = repo();
    let bin = repo.join(".testbed/containerd/usr/bin");
    let dist = dist_dir();
    require(
        &bin.join("containerd"),
        "containerd 2.x",
        "integration/testbed/install.sh",
    );
    require(
        Path::new("/usr/sbin/runc"),
        "runc",
        "integration/testbed/install.sh",
    );
    require(
        &dist.join("containerd-shim-strict-v2"),
        "the strict shim",
        "scripts/build-dist.sh",
    );
    require(
        &dist.join("strictctl"),
        "strictctl",
        "scripts/build-dist.sh",
    );
    require_fresh(&dist);
    // Short paths: unix socket names are limited to 108 bytes.
    let dir = tempfile::Builder::new()
        .prefix("strict-it")
        .tempdir_in("/tmp")
        .unwrap();
    let run = dir.path().to_owned();
    // Reuse the test bed's scripts for the configuration and the images.
    let script = repo.join("integration/testbed/containerd.sh");
    let status = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "source <(sed -n '/^write_config()/,/^}}/p' {script}) && write_config",
            script = script.display()
        ))
        .env("run", &run)
        .env("address", run.join("containerd.sock"))
        .env("shim_dir", &dist)
        .status()
        .unwrap();
    assert!(
        status.success(),
        "writing the containerd configuration failed"
    );
    // The shim's configuration: the snap's embedded connections (whether or not this machine runs snapd),
    // runc's state and the audit trail inside the run directory too.
    let config = run.join("strict.toml");
    std::fs::write(
        &config,
        format!(
            "source = \"embedded\"\n\n[runtime]\nbinary = \"/usr/sbin/runc\"\nroot = \"{}\"\n\n\
             [audit]\npath = \"{}\"\n\n\
             # This containerd's root and state: its sandboxes' hostname, hosts, resolv.conf and shm\n\
             # are pod-owned below them, and the rest is protected as on a node.\n\
             [node]\ncontainerd_roots = [\"{}\"]\ncontainerd_states = [\"{}\"]\nkubelet_roots = [\"{}\"]\n",
            run.join("runc").display(),
            run.join("audit.log").display(),
            run.join("root").display(),
            run.join("state").display(),
            run.join("kubelet").display()
        ),
    )
    .unwrap();
    // The `strict-complain` handler's configuration (its ConfigPath in containerd's CRI config).
    let base = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        run.join("strict-complain.toml"),
        format!("mode = \"complain\"\nhandler = \"strict-complain\"\n{base}"),
    )
    .unwrap();
    // The `strict-minimal` handler's: a snap with only `network` connected.
    std::fs::write(
        run.join("strict-minimal.toml"),
        base.replace(
            "source = \"embedded\"\n",
            "handler = \"strict-minimal\"\nsource = \"static\"\nconnections = [\"network\"]\n",
        ),
    )
    .unwrap();
    std::fs::create_dir_all(run.join("cni/bin")).unwrap();
    std::fs::create_dir_all(run.join("cni/conf")).unwrap();
    std::fs::File::create(run.join("containerd.log")).unwrap();
    let containerd = spawn_containerd(&run);
    register_tear_down(&run);
    let testbed = Testbed {
        address: run.join("containerd.sock"),
        run_dir: run.clone(),
        ctr: bin.join("ctr"),
        _containerd: std::sync::Mutex::new(containerd),
        _dir: dir,
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while !testbed.ctr(&["version"]).status.success() {
        assert!(
            Instant::now() < deadline,
            "containerd did not answer: {}",
            testbed.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let images = repo.join(".testbed/images");
    if !images.join("busybox.tar").exists() || !images.join("pause.tar").exists() {
        let status = Command::new(repo.join("integration/testbed/images.sh"))
            .arg("build")
            .status()
            .unwrap();
        assert!(status.success(), "building the test images failed");
    }
    for image in ["busybox", "pause"] {
        let tar = images.join(format!("{image}.tar"));
        let out = testbed.ctr(&["images", "import", tar.to_str().unwrap()]);
        assert!(
            out.status.success(),
            "importing {image}: {}",
            text(&out.stderr)
        );
    }
    testbed
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).trim().to_string()
}

/// A container id unique within this test binary.
pub fn unique(prefix: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst)
    )
}

impl Testbed {
    pub fn ctr(&self, args: &[&str]) -> Output {
        self.ctr_with_timeout(args, Duration::from_secs(60))
    }

    /// `ctr` with a deadline: a hung shim fails the test instead of hanging the suite.
    pub fn ctr_with_timeout(&self, args: &[&str], timeout: Duration) -> Output {
        let mut child = self
            .ctr_command()
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + timeout;
        loop {
            if child.try_wait().unwrap().is_some() {
                return child.wait_with_output().unwrap();
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let out = child.wait_with_output().unwrap();
                panic!(
                    "ctr {args:?} timed out; stderr: {}; containerd: {}",
                    text(&out.stderr),
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `ctr run --rm` of `cmd` in the busybox image with `runtime` and extra `flags`.
    pub fn run(&self, runtime: &str, flags: &[&str], cmd: &[&str]) -> Output {
        self.run_named(runtime, flags, cmd).1
    }

    /// `run`, with the container's id. A refused create's container record is removed.
    pub fn run_named(&self, runtime: &str, flags: &[&str], cmd: &[&str]) -> (String, Output) {
        let id = unique("run");
        let mut args = vec!["run", "--rm", "--runtime", runtime];
        args.extend_from_slice(flags);
        args.push(IMAGE);
        args.push(&id);
        args.extend_from_slice(cmd);
        let out = self.ctr(&args);
        let _ = self.ctr(&["containers", "delete", &id]);
        (id, out)
    }

    /// `run_named` through the strict runtime with the configuration containerd's runtime options name
    /// (`--runtime-config-path`).
    pub fn run_with_config(&self, config: &Path, flags: &[&str], cmd: &[&str]) -> (String, Output) {
        let config = config.display().to_string();
        let mut all = vec!["--runtime-config-path", config.as_str()];
        all.extend_from_slice(flags);
        self.run_named(STRICT, &all, cmd)
    }

    /// The tail of containerd's log, for failure messages.
    pub fn log(&self) -> String {
        let log = std::fs::read_to_string(self.run_dir.join("containerd.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().rev().take(30).collect();
        lines.into_iter().rev().collect::<Vec<_>>().join("\n")
    }

    /// Where containerd keeps the bundle of a running task.
    pub fn bundle(&self, id: &str) -> PathBuf {
        self.run_dir.join(format!(
            "state/io.containerd.runtime.v2.task/{NAMESPACE}/{id}"
        ))
    }

    /// Kills and removes a container, whatever state it is in.
    pub fn remove(&self, id: &str) {
        let _ = self.ctr(&["tasks", "kill", "-s", "SIGKILL", id]);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.ctr(&["tasks", "delete", id]).status.success() {
                break;
            }
            if text(&self.ctr(&["tasks", "list", "-q"]).stdout)
                .lines()
                .all(|t| t != id)
            {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.ctr(&["containers", "delete", id]);
    }
}

impl Testbed {
    /// The pid of this test binary's containerd (the current one, after a restart).
    pub fn containerd_pid(&self) -> u32 {
        self._containerd
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .id()
    }

    /// The audit trail the harness's configuration names.
    pub fn audit_log(&self) -> PathBuf {
        self.run_dir.join("audit.log")
    }

    /// The shim configuration containerd passes to its shims (STRICT_CONFIG); re-read by every new shim.
    pub fn strict_config(&self) -> PathBuf {
        self.run_dir.join("strict.toml")
    }

    /// Stops containerd with SIGTERM (SIGKILL after 20 s), waits for it, and starts it again with the same
    /// configuration, environment and log (appended). Running shims and containers are left alone, as
    /// when a node's containerd restarts. Returns how the old containerd ended.
    pub fn restart_containerd(&self) -> std::process::ExitStatus {
        let mut child = self._containerd.lock().unwrap_or_else(|e| e.into_inner());
        // SAFETY: kill(2) on the pid of our own unreaped child.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(20);
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                break child.wait().unwrap();
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        *child = spawn_containerd(&self.run_dir);
        drop(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while !self.ctr(&["version"]).status.success() {
            assert!(
                Instant::now() < deadline,
                "the restarted containerd did not answer: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        status
    }
}

/// The records of an audit trail about container `id` (every line must be one JSON record).
pub fn audit_records(trail: &Path, id: &str) -> Vec<serde_json::Value> {
    std::fs::read_to_string(trail)
        .unwrap_or_default()
        .lines()
        .map(|line| {
            serde_json::from_str::<serde_json::Value>(line).expect("one JSON record per line")
        })
        .filter(|record| record["container_id"] == id)
        .collect()
}

/// containerd as `start` runs it (same arguments and environment), its output appended to the log. Dies
/// with the test process (PR_SET_PDEATHSIG), spawned from a thread that lives as long as the process.
fn spawn_containerd(run: &Path) -> Child {
    let repo = repo();
    let bin = repo.join(".testbed/containerd/usr/bin");
    let dist = dist_dir();
    let log = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(run.join("containerd.log"))
        .unwrap();
    let mut command = Command::new(bin.join("containerd"));
    command
        .arg("--config")
        .arg(run.join("config.toml"))
        .env("STRICT_CONFIG", run.join("strict.toml"))
        .env(
            "PATH",
            format!(
                "{}{}:{}:/usr/sbin:/usr/bin:/sbin:/bin",
                // A test binary that runs containerd as a snap's daemon would: its snapctl first.
                std::env::var(PATH_PREFIX_ENV)
                    .map(|prefix| format!("{prefix}:"))
                    .unwrap_or_default(),
                dist.display(),
                bin.display()
            ),
        )
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log);
    let child = spawn_dying_with_the_tests(command).expect("containerd starts");
    // For containerd.sh stop, which the tear-down uses.
    std::fs::write(run.join("containerd.pid"), child.id().to_string()).unwrap();
    child
}

/// Spawns `command` as a child that dies with the test process (PR_SET_PDEATHSIG). The death signal
/// follows the spawning *thread*, so the spawn happens on one that lives as long as the process.
pub fn spawn_dying_with_the_tests(mut command: Command) -> std::io::Result<Child> {
    // SAFETY: prctl is async-signal-safe.
    unsafe {
        command.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        sender.send(command.spawn()).unwrap();
        loop {
            std::thread::park();
        }
    });
    receiver.recv().unwrap()
}

/// At exit (libtest ends with `exit`, which runs atexit handlers) the test bed goes away whole: tasks
/// killed, containerd stopped, shims that outlived it killed, mounts undone (containerd.sh stop), and the
/// directory removed. Statics are never dropped, so a Drop impl would not do.
fn register_tear_down(run: &Path) {
    static RUN_DIR: OnceLock<PathBuf> = OnceLock::new();
    extern "C" fn tear_down() {
        if let Some(run) = RUN_DIR.get() {
            let _ = Command::new(repo().join("integration/testbed/containerd.sh"))
                .arg("stop")
                .env("STRICT_TESTBED_RUN", run)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            let _ = std::fs::remove_dir_all(run);
        }
    }
    if RUN_DIR.set(run.to_owned()).is_ok() {
        // SAFETY: registering a plain extern "C" function.
        unsafe { libc::atexit(tear_down) };
    }
}

impl Testbed {
    /// Makes `localhost/strict/<name>:1` available to this test binary's containerd and returns that
    /// reference: builds `.testbed/images/<name>.tar` if it is missing (`images.sh build <name>`), then
    /// imports it, once per test binary. Fails (never skips) when the image cannot be built or imported.
    pub fn import_image(&self, name: &str) -> String {
        static IMPORTED: std::sync::Mutex<std::collections::BTreeSet<String>> =
            std::sync::Mutex::new(std::collections::BTreeSet::new());
        let reference = format!("localhost/strict/{name}:1");
        // Held while building and importing: concurrent tests wait for the first one.
        let mut imported = IMPORTED.lock().unwrap_or_else(|e| e.into_inner());
        if imported.contains(name) {
            return reference;
        }
        let repo = repo();
        let out = Command::new(repo.join("integration/testbed/images.sh"))
            .args(["build", name])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "building the {name} image failed (integration/testbed/images.sh build {name}): {} {}",
            text(&out.stdout),
            text(&out.stderr)
        );
        let tar = repo.join(".testbed/images").join(format!("{name}.tar"));
        let out = self.ctr_with_timeout(
            &["images", "import", tar.to_str().unwrap()],
            Duration::from_secs(300),
        );
        assert!(
            out.status.success(),
            "importing {}: {}",
            tar.display(),
            text(&out.stderr)
        );
        imported.insert(name.to_owned());
        reference
    }
}

impl Testbed {
    /// `ctr` with this test bed's address and namespace and nothing else: for callers that give it their own
    /// stdio (a terminal) or wait for it themselves.
    /// `ctr` in another containerd namespace (`k8s.io` is CRI's).
    pub fn ctr_in(&self, namespace: &str, args: &[&str]) -> Output {
        Command::new(&self.ctr)
            .arg("--address")
            .arg(&self.address)
            .arg("-n")
            .arg(namespace)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    pub fn ctr_command(&self) -> Command {
        let mut command = Command::new(&self.ctr);
        command
            .arg("--address")
            .arg(&self.address)
            .arg("-n")
            .arg(NAMESPACE);
        command
    }

    /// The pid of task `id`'s init process, from `ctr tasks list` (fails the test if there is no such task).
    pub fn task_pid(&self, id: &str) -> u32 {
        let out = self.ctr(&["tasks", "list"]);
        let list = text(&out.stdout);
        list.lines()
            .find_map(|line| {
                let mut fields = line.split_whitespace();
                (fields.next() == Some(id)).then(|| fields.next()?.parse().ok())?
            })
            .unwrap_or_else(|| panic!("no task {id} in `ctr tasks list`: {list}"))
    }
}

/// The cgroup directory of `pid` for a cgroup v1 `controller` (`/sys/fs/cgroup/<controller>/<path>`, from
/// /proc/<pid>/cgroup), or its unified (v2) directory when no v1 hierarchy has that controller.
pub fn cgroup_dir(pid: u32, controller: &str) -> PathBuf {
    let table = std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .unwrap_or_else(|e| panic!("reading /proc/{pid}/cgroup: {e}"));
    let mut unified = None;
    for line in table.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next(), parts.next(), parts.next());
        let (Some(controllers), Some(path)) = (controllers, path) else {
            continue;
        };
        let path = path.trim_start_matches('/');
        if controllers.split(',').any(|c| c == controller) {
            return Path::new("/sys/fs/cgroup").join(controllers).join(path);
        }
        if controllers.is_empty() {
            unified = Some(path.to_string());
        }
    }
    let path = unified.unwrap_or_else(|| panic!("pid {pid} has no {controller} cgroup: {table}"));
    let root = if Path::new("/sys/fs/cgroup/unified").is_dir() {
        Path::new("/sys/fs/cgroup/unified")
    } else {
        Path::new("/sys/fs/cgroup")
    };
    root.join(path)
}
