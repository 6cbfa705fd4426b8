//! End-to-end test support: one private containerd 2.x per test binary (own root, state and sockets in a
//! temporary directory), with the strict runtime from this workspace's release build, driven through `ctr`.
//!
//! Nothing is skipped: a missing containerd, runc or shim build fails the tests with what to run
//! (`integration/testbed/install.sh`, `cargo build --release`).

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
    _containerd: Child,
    _dir: tempfile::TempDir,
}

fn require(path: &Path, what: &str, fix: &str) {
    assert!(
        path.exists(),
        "{what} is missing at {}: run {fix}",
        path.display()
    );
}

/// The private containerd of this test binary, started on first use. It dies with the test process
/// (PR_SET_PDEATHSIG), so no test run leaves a containerd behind.
pub fn testbed() -> &'static Testbed {
    static TESTBED: OnceLock<Testbed> = OnceLock::new();
    TESTBED.get_or_init(start)
}

fn start() -> Testbed {
    let repo = repo();
    let bin = repo.join(".testbed/containerd/usr/bin");
    let release = repo.join("target/release");
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
        &release.join("containerd-shim-strict-v2"),
        "the strict shim",
        "cargo build --release",
    );
    require(
        &release.join("strictctl"),
        "strictctl",
        "cargo build --release",
    );
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
        .env("shim_dir", &release)
        .status()
        .unwrap();
    assert!(
        status.success(),
        "writing the containerd configuration failed"
    );
    // The shim's configuration: runc keeps its state inside the run directory too.
    let config = run.join("strict.toml");
    std::fs::write(&config, format!("[runtime]\nbinary = \"/usr/sbin/runc\"\nroot = \"{}\"\n", run.join("runc").display()))
        .unwrap();
    std::fs::create_dir_all(run.join("cni/bin")).unwrap();
    std::fs::create_dir_all(run.join("cni/conf")).unwrap();
    let log = std::fs::File::create(run.join("containerd.log")).unwrap();
    let mut command = Command::new(bin.join("containerd"));
    command
        .arg("--config")
        .arg(run.join("config.toml"))
        .env(
            "PATH",
            format!(
                "{}:{}:/usr/sbin:/usr/bin:/sbin:/bin",
                release.display(),
                bin.display()
            ),
        )
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log);
    // SAFETY: prctl is async-signal-safe.
    unsafe {
        command.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    // The death signal follows the spawning *thread*: spawn from one that lives as long as the process.
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        sender.send(command.spawn().expect("containerd starts")).unwrap();
        loop {
            std::thread::park();
        }
    });
    let containerd = receiver.recv().unwrap();
    let testbed = Testbed {
        address: run.join("containerd.sock"),
        run_dir: run.clone(),
        ctr: bin.join("ctr"),
        _containerd: containerd,
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
    if !images.join("busybox.tar").exists() {
        let status = Command::new(repo.join("integration/testbed/images.sh"))
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
        let mut child = Command::new(&self.ctr)
            .arg("--address")
            .arg(&self.address)
            .arg("-n")
            .arg(NAMESPACE)
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
        let id = unique("run");
        let mut args = vec!["run", "--rm", "--runtime", runtime];
        args.extend_from_slice(flags);
        args.push(IMAGE);
        args.push(&id);
        args.extend_from_slice(cmd);
        let out = self.ctr(&args);
        // A refused create leaves the container record: remove it.
        let _ = self.ctr(&["containers", "delete", &id]);
        out
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
