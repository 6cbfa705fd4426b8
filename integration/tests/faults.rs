//! Faults through the real containerd of the test bed: a shim killed with SIGKILL (with the configuration
//! unchanged and changed since the container was created), a missing OCI runtime, containerd restarted
//! under a running container, and many create/delete cycles, each checked for what it leaves behind
//! (mounts, runc state, cgroups, bundles, processes, shims and their sockets, containerd's descriptors).
//!
//! The tests of this binary run one at a time (`SERIAL`): some change what every other test depends on
//! (the shim configuration, which each new shim reads from STRICT_CONFIG; containerd itself) and one
//! counts containerd's descriptors.

use std::collections::HashSet;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use strict_integration::{repo, testbed, text, unique, Testbed, IMAGE, NAMESPACE, STRICT};

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn ctr_binary() -> PathBuf {
    repo().join(".testbed/containerd/usr/bin/ctr")
}

/// Polls `check` every 50 ms until it holds or `timeout` passes; returns whether it held.
fn wait_until(timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if check() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn ok(tb: &Testbed, args: &[&str]) -> String {
    let out = tb.ctr(args);
    assert!(
        out.status.success(),
        "ctr {args:?} failed: {}\ncontainerd: {}",
        text(&out.stderr),
        tb.log()
    );
    text(&out.stdout)
}

/// `ctr tasks list` for one task: its pid and status, or None when containerd does not list it.
fn task(tb: &Testbed, id: &str) -> Option<(u32, String)> {
    let list = ok(tb, &["tasks", "list"]);
    list.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        (fields.first() == Some(&id))
            .then(|| (fields[1].parse().unwrap_or(0), fields[2].to_string()))
    })
}

/// A process by pid and start time (so a recycled pid is not mistaken for it).
#[derive(Clone, Copy, Debug)]
struct Proc {
    pid: u32,
    start: u64,
}

/// State letter and start time from /proc/<pid>/stat.
fn stat(pid: u32) -> Option<(char, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat[stat.rfind(')')? + 2..].split(' ').collect();
    Some((fields[0].chars().next()?, fields[19].parse().ok()?))
}

impl Proc {
    fn of(pid: u32) -> Proc {
        let (_, start) = stat(pid).unwrap_or_else(|| panic!("process {pid} does not exist"));
        Proc { pid, start }
    }

    /// Still running: a zombie is dead (reaping orphans is pid 1's business, not the shim's).
    fn alive(&self) -> bool {
        matches!(stat(self.pid), Some((state, start)) if start == self.start && state != 'Z' && state != 'X')
    }
}

fn argv(pid: &str) -> Vec<String> {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|bytes| {
            bytes
                .split(|b| *b == 0)
                .filter(|arg| !arg.is_empty())
                .map(|arg| String::from_utf8_lossy(arg).into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Every process whose command line has one of `args` as a whole argument, as "pid: command line".
fn processes_with_arg(args: &HashSet<String>) -> Vec<String> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|entry| {
            let name = entry.ok()?.file_name().into_string().ok()?;
            name.parse::<u32>().ok()?;
            let argv = argv(&name);
            argv.iter()
                .any(|arg| args.contains(arg))
                .then(|| format!("{name}: {}", argv.join(" ")))
        })
        .collect()
}

/// The strict shims serving this containerd (any action), as (pid, container id).
fn shims(tb: &Testbed) -> Vec<(u32, String)> {
    let address = tb.address.to_str().unwrap();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|entry| {
            let name = entry.ok()?.file_name().into_string().ok()?;
            let pid = name.parse::<u32>().ok()?;
            let argv = argv(&name);
            if !argv.first()?.ends_with("containerd-shim-strict-v2") {
                return None;
            }
            argv.windows(2)
                .any(|w| w[0] == "-address" && w[1] == address)
                .then_some(())?;
            let id = argv.windows(2).find(|w| w[0] == "-id")?[1].clone();
            Some((pid, id))
        })
        .collect()
}

fn shims_of(tb: &Testbed, id: &str) -> Vec<u32> {
    shims(tb)
        .into_iter()
        .filter(|(_, shim)| shim == id)
        .map(|(pid, _)| pid)
        .collect()
}

/// Mount points at or below `path` in this mount namespace (containerd's and the shims' too).
fn mounts_under(path: &Path) -> Vec<String> {
    let prefix = path.to_str().unwrap();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .filter(|point| *point == prefix || point.starts_with(&format!("{prefix}/")))
        .map(String::from)
        .collect()
}

/// The container's cgroup directories (`ctr` puts containers in /<namespace>/<id>), in every hierarchy.
fn cgroups(id: &str) -> Vec<PathBuf> {
    std::fs::read_dir("/sys/fs/cgroup")
        .unwrap()
        .map(|entry| entry.unwrap().path().join(NAMESPACE).join(id))
        .filter(|dir| dir.exists())
        .collect()
}

/// The processes in the container's cgroup (pids hierarchy).
fn cgroup_processes(id: &str) -> Vec<Proc> {
    std::fs::read_to_string(format!("/sys/fs/cgroup/pids/{NAMESPACE}/{id}/cgroup.procs"))
        .unwrap_or_default()
        .lines()
        .filter_map(|pid| pid.parse().ok())
        .map(Proc::of)
        .collect()
}

/// runc's state directory for the container: the harness's strict.toml puts runc's root in the run dir.
fn runc_state(tb: &Testbed, id: &str) -> PathBuf {
    tb.run_dir.join("runc").join(NAMESPACE).join(id)
}

/// The shim's ttrpc socket, as containerd-shim names it: sha256 of "<containerd address>/<ns>/<group>".
fn shim_socket(tb: &Testbed, id: &str) -> PathBuf {
    let key = format!("{}/{NAMESPACE}/{id}", tb.address.display());
    let out = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(key.as_bytes())?;
            child.wait_with_output()
        })
        .unwrap();
    let hash = text(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    PathBuf::from("/run/containerd/s").join(hash)
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

/// What a container left behind once containerd forgot it; empty when nothing.
fn leftovers(tb: &Testbed, id: &str, processes: &[Proc]) -> Vec<String> {
    let mut left = Vec::new();
    let bundle = tb.bundle(id);
    for mount in mounts_under(&bundle) {
        left.push(format!("mount {mount}"));
    }
    if bundle.exists() {
        left.push(format!("bundle {}", bundle.display()));
    }
    if runc_state(tb, id).exists() {
        left.push(format!("runc state {}", runc_state(tb, id).display()));
    }
    for cgroup in cgroups(id) {
        left.push(format!("cgroup {}", cgroup.display()));
    }
    for process in processes.iter().filter(|p| p.alive()) {
        left.push(format!(
            "process {} ({:?})",
            process.pid,
            argv(&process.pid.to_string())
        ));
    }
    for shim in shims_of(tb, id) {
        left.push(format!("shim process {shim}"));
    }
    left
}

/// `ctr events`, collected in the background until dropped.
struct Events {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Events {
    /// Subscribes, and returns once the subscription is known to be live (an event of ours came through).
    fn start(tb: &Testbed) -> Events {
        let mut child = Command::new(ctr_binary())
            .arg("--address")
            .arg(&tb.address)
            .args(["-n", NAMESPACE, "events"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = std::io::BufReader::new(child.stdout.take().unwrap());
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in stdout.lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        let events = Events { child, lines };
        // A label change publishes /containers/update: keep poking until one shows up.
        let probe = unique("events-probe");
        ok(tb, &["containers", "create", IMAGE, &probe]);
        let mut n = 0;
        let live = wait_until(Duration::from_secs(10), || {
            n += 1;
            let _ = tb.ctr(&["containers", "label", &probe, &format!("probe={n}")]);
            events
                .find(|l| l.contains("/containers/update") && l.contains(&probe))
                .is_some()
        });
        let _ = tb.ctr(&["containers", "delete", &probe]);
        assert!(live, "ctr events shows no event");
        events
    }

    fn find(&self, matches: impl Fn(&str) -> bool) -> Option<String> {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .find(|l| matches(l))
            .cloned()
    }

    fn wait_for(&self, timeout: Duration, matches: impl Fn(&str) -> bool) -> Option<String> {
        let mut found = None;
        wait_until(timeout, || {
            found = self.find(&matches);
            found.is_some()
        });
        found
    }

    fn all(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }
}

impl Drop for Events {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// containerd's log lines about a container.
fn log_lines(tb: &Testbed, id: &str) -> Vec<String> {
    std::fs::read_to_string(tb.run_dir.join("containerd.log"))
        .unwrap_or_default()
        .lines()
        .filter(|line| {
            let tokens = [
                format!("id={id}"),
                format!("container={id}"),
                format!("container=\"{id}\""),
            ];
            line.split_whitespace()
                .any(|token| tokens.iter().any(|t| t == token))
        })
        .map(String::from)
        .collect()
}

/// A detached `sleep 300` under the strict runtime, with a second process exec'd into it.
fn running_container(tb: &Testbed, prefix: &str) -> (String, Vec<Proc>) {
    let id = unique(prefix);
    ok(
        tb,
        &["run", "-d", "--runtime", STRICT, IMAGE, &id, "sleep", "300"],
    );
    ok(
        tb,
        &[
            "tasks",
            "exec",
            "--detach",
            "--exec-id",
            "bg",
            &id,
            "sleep",
            "301",
        ],
    );
    let (pid, status) = task(tb, &id).expect("the task is listed");
    assert_eq!(status, "RUNNING");
    let mut processes = cgroup_processes(&id);
    assert!(
        processes.len() >= 2 && processes.iter().any(|p| p.pid == pid),
        "the container's cgroup holds {processes:?}, the init is {pid}"
    );
    processes.sort_by_key(|p| p.pid);
    (id, processes)
}

/// The shim's own configuration, replaced for as long as this lives (restored on drop, panics included).
struct ConfigChange {
    path: PathBuf,
    original: String,
}

impl ConfigChange {
    fn runtime_binary(tb: &Testbed, binary: &str) -> ConfigChange {
        let path = tb.strict_config();
        let original = std::fs::read_to_string(&path).unwrap();
        assert!(
            original.contains("binary = \"/usr/sbin/runc\""),
            "{original}"
        );
        let changed = original.replace(
            "binary = \"/usr/sbin/runc\"",
            &format!("binary = \"{binary}\""),
        );
        std::fs::write(&path, changed).unwrap();
        ConfigChange { path, original }
    }
}

impl Drop for ConfigChange {
    fn drop(&mut self) {
        std::fs::write(&self.path, &self.original).unwrap();
    }
}

/// Removes the container when the test fails before it did, so that a failure leaves no running
/// container or shim behind: through containerd, then with runc itself in case containerd forgot it.
struct Removal<'a> {
    tb: &'a Testbed,
    id: String,
}

impl Drop for Removal<'_> {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        self.tb.remove(&self.id);
        let root = self.tb.run_dir.join("runc").join(NAMESPACE);
        let _ = Command::new("/usr/sbin/runc")
            .arg("--root")
            .arg(root)
            .args(["delete", "--force", &self.id])
            .output();
        for mount in mounts_under(&self.tb.bundle(&self.id)) {
            let _ = Command::new("umount").args(["-l", &mount]).output();
        }
    }
}

/// The shim dies with SIGKILL under a running container (init plus an exec): containerd notices, runs
/// `containerd-shim-strict-v2 delete` in the bundle, which must kill the container, remove runc's state and
/// unmount the rootfs; containerd then reports exit 137 and forgets the task.
#[test]
fn a_shim_killed_with_sigkill_is_cleaned_up_by_the_delete_action() {
    let _serial = serial();
    let tb = testbed();
    let events = Events::start(tb);
    let (id, processes) = running_container(tb, "sigkill");
    let _removal = Removal { tb, id: id.clone() };
    let (init, _) = task(tb, &id).unwrap();
    // What must go away exists now (the shim got the harness's runc root through STRICT_CONFIG).
    let bundle = tb.bundle(&id);
    assert_eq!(
        mounts_under(&bundle),
        vec![bundle.join("rootfs").display().to_string()]
    );
    assert!(
        runc_state(tb, &id).exists(),
        "runc state is not in the harness's root: the shim did not get STRICT_CONFIG"
    );
    assert!(!cgroups(&id).is_empty());
    let shim = shims_of(tb, &id);
    assert_eq!(shim.len(), 1, "shims of {id}: {shim:?}");
    let socket = std::fs::read_to_string(bundle.join("address")).unwrap();

    // SAFETY: kill(2) on the shim's pid, checked above.
    assert_eq!(unsafe { libc::kill(shim[0] as i32, libc::SIGKILL) }, 0);

    let exit = events.wait_for(Duration::from_secs(30), |l| {
        l.contains("/tasks/exit")
            && l.contains(&format!("\"container_id\":\"{id}\""))
            && l.contains(&format!("\"id\":\"{id}\""))
    });
    let exit = exit.unwrap_or_else(|| {
        panic!(
            "no /tasks/exit for {id} after the shim was killed; events:\n{}\ncontainerd:\n{}",
            events.all(),
            log_lines(tb, &id).join("\n")
        )
    });
    assert!(exit.contains("\"exit_status\":137"), "{exit}");
    assert!(
        exit.contains(&format!("\"pid\":{init},")),
        "the exit names the init's pid {init}: {exit}"
    );
    let log = log_lines(tb, &id);
    assert!(
        log.iter().any(|l| l.contains("cleaning up dead shim")),
        "{log:#?}"
    );
    assert!(
        !log.iter()
            .any(|l| l.contains("warnings while cleaning up dead shim")),
        "the delete action complained: {log:#?}"
    );

    assert!(
        wait_until(Duration::from_secs(10), || task(tb, &id).is_none()),
        "containerd still lists the task: {:?}",
        task(tb, &id)
    );
    // containerd dropped the task with the dead shim: deleting it again finds nothing, and says so.
    let delete = tb.ctr(&["tasks", "delete", &id]);
    assert!(
        delete.status.success() || text(&delete.stderr).contains("not found"),
        "{}",
        text(&delete.stderr)
    );
    ok(tb, &["containers", "delete", &id]);

    // The delete action's work is done once containerd published the exit: nothing is left now. Only
    // zombies may wait for pid 1 to reap them (the shim that was their reaper is gone).
    let left = leftovers(tb, &id, &processes);
    assert!(left.is_empty(), "left behind: {left:#?}");
    // The socket of a SIGKILLed shim stays, as containerd-shim-runc-v2's does: containerd does not remove
    // it and the delete action must not (a pod's shim may still serve it). A new shim of the same id
    // replaces it, so it is harmless; it is removed here to keep /run/containerd/s clean.
    let socket = socket.trim().trim_start_matches("unix://");
    let _ = std::fs::remove_file(socket);
}

/// `[runtime] binary` names a file that does not exist: `ctr run` fails at once with an error that names
/// it, the shim does not hang or panic, and nothing is left. The configuration is read by every new
/// shim, so the next container, with the configuration restored, runs.
#[test]
fn a_missing_runtime_binary_fails_the_run_with_a_clear_error() {
    let _serial = serial();
    let tb = testbed();
    let missing = "/nonexistent/strict-it/runc";
    let id = unique("noruntime");
    let out = {
        let _change = ConfigChange::runtime_binary(tb, missing);
        tb.ctr_with_timeout(
            &["run", "--rm", "--runtime", STRICT, IMAGE, &id, "true"],
            Duration::from_secs(30),
        )
    };
    let stderr = text(&out.stderr);
    assert!(
        !out.status.success(),
        "ran without a runtime: {}",
        text(&out.stdout)
    );
    assert!(
        stderr.contains(missing) && stderr.contains("missing"),
        "{stderr}"
    );
    assert!(!stderr.contains("panic"), "{stderr}");
    let log = log_lines(tb, &id).join("\n");
    assert!(!log.contains("panicked"), "{log}");
    let _ = tb.ctr(&["containers", "delete", &id]);
    assert!(
        wait_until(Duration::from_secs(10), || shims_of(tb, &id).is_empty()),
        "the shim of the failed create still runs"
    );
    let left = leftovers(tb, &id, &[]);
    assert!(left.is_empty(), "left behind: {left:#?}");
    assert!(!shim_socket(tb, &id).exists(), "the shim's socket is left");

    let out = tb.run(STRICT, &[], &["sh", "-c", "echo again"]);
    assert!(
        out.status.success(),
        "with the configuration restored: {}",
        text(&out.stderr)
    );
    assert_eq!(text(&out.stdout), "again");
}

/// containerd stops (SIGTERM) and starts again while a strict container runs: the shim and the container
/// live on, the new containerd reconnects, and the container is fully managed again (state, exec, events,
/// kill, delete), after which its shim exits and nothing is left.
#[test]
fn containerd_restarted_under_a_running_container_manages_it_again() {
    let _serial = serial();
    let tb = testbed();
    let (id, processes) = running_container(tb, "restart");
    let _removal = Removal { tb, id: id.clone() };
    // Checked to the end, so that one run shows every way the restart goes wrong.
    let mut problems = Vec::new();
    let (init, _) = task(tb, &id).unwrap();
    let shim = shims_of(tb, &id);
    assert_eq!(shim.len(), 1, "shims of {id}: {shim:?}");
    let shim = Proc::of(shim[0]);
    let old = tb.containerd_pid();

    let status = tb.restart_containerd();
    assert_ne!(tb.containerd_pid(), old);
    assert!(
        status.success(),
        "containerd ended with {status} on SIGTERM"
    );
    assert!(shim.alive(), "the shim died with containerd");
    assert!(
        processes.iter().all(Proc::alive),
        "the container died with containerd"
    );

    assert_eq!(task(tb, &id), Some((init, "RUNNING".to_string())));
    let exec = tb.ctr(&[
        "tasks",
        "exec",
        "--exec-id",
        "after",
        &id,
        "sh",
        "-c",
        "echo after restart; exit 5",
    ]);
    assert_eq!(exec.status.code(), Some(5), "{}", text(&exec.stderr));
    assert_eq!(text(&exec.stdout), "after restart");
    let ps = ok(tb, &["tasks", "ps", &id]);
    assert!(ps.contains(&init.to_string()), "{ps}");

    // The shim's event connection broke with the old containerd: its exit event must reach the new one.
    let events = Events::start(tb);
    ok(tb, &["tasks", "kill", "-s", "SIGKILL", &id]);
    // containerd-shim's publisher retries an event 5 times, 1 + 2 + ... + 5 s apart: 20 s covers them.
    let exit = events.wait_for(Duration::from_secs(20), |l| {
        l.contains("/tasks/exit")
            && l.contains(&format!("\"container_id\":\"{id}\""))
            && l.contains(&format!("\"id\":\"{id}\""))
    });
    if !exit
        .as_deref()
        .is_some_and(|e| e.contains("\"exit_status\":137"))
    {
        problems.push(format!(
            "the shim's TaskExit never reached the restarted containerd (exit event: {exit:?}); events:\n{}",
            events.all()
        ));
    }
    assert!(
        wait_until(Duration::from_secs(10), || task(tb, &id)
            .is_some_and(|(_, s)| s == "STOPPED")),
        "{:?}",
        task(tb, &id)
    );
    ok(tb, &["tasks", "delete", &id]);
    ok(tb, &["containers", "delete", &id]);
    assert!(
        wait_until(Duration::from_secs(10), || !shim.alive()),
        "the shim outlives its last container"
    );
    let mut processes = processes;
    processes.push(shim);
    problems.extend(
        leftovers(tb, &id, &processes)
            .into_iter()
            .map(|l| format!("left behind: {l}")),
    );
    if shim_socket(tb, &id).exists() {
        problems.push("the shim's socket is left".into());
    }
    let log = log_lines(tb, &id).join("\n");
    if log.contains("panicked") {
        problems.push("the shim panicked".into());
    }
    assert!(
        problems.is_empty(),
        "{}\ncontainerd about {id}:\n{log}",
        problems.join("\n")
    );
}

/// The operator points `[runtime] binary` elsewhere (here at a runtime that is not installed) while a
/// container runs, and then the container's shim dies: the delete action must still clean up with the
/// runtime the container was created with (containerd-shim-runc-v2 saves its runtime options in the
/// bundle for this), not with whatever the configuration says now.
#[test]
fn a_shim_killed_after_the_runtime_configuration_changed_is_still_cleaned_up() {
    let _serial = serial();
    let tb = testbed();
    let events = Events::start(tb);
    let (id, processes) = running_container(tb, "reconfigured");
    let _removal = Removal { tb, id: id.clone() };
    let shim = shims_of(tb, &id);
    assert_eq!(shim.len(), 1, "shims of {id}: {shim:?}");
    let exit = {
        let _change = ConfigChange::runtime_binary(tb, "/nonexistent/strict-it/runc");
        // SAFETY: kill(2) on the shim's pid, checked above.
        assert_eq!(unsafe { libc::kill(shim[0] as i32, libc::SIGKILL) }, 0);
        events.wait_for(Duration::from_secs(30), |l| {
            l.contains("/tasks/exit")
                && l.contains(&format!("\"container_id\":\"{id}\""))
                && l.contains(&format!("\"id\":\"{id}\""))
        })
    };
    assert!(
        exit.as_deref()
            .is_some_and(|e| e.contains("\"exit_status\":137")),
        "{exit:?}"
    );
    let _ = tb.ctr(&["tasks", "delete", &id]);
    ok(tb, &["containers", "delete", &id]);
    let left = leftovers(tb, &id, &processes);
    assert!(
        left.is_empty(),
        "left behind: {left:#?}\ncontainerd about {id}:\n{}",
        log_lines(tb, &id).join("\n")
    );
}

/// How many more descriptors containerd may hold after the cycles than before (measured 16 and 16). A
/// few are closed asynchronously after the last cycle — the gRPC connection of the `ctr` that just exited,
/// the ttrpc connection and log fifo of the last shim, closed when containerd processes its disconnect —
/// and the test waits up to 10 s for them anyway; the margin is for such stragglers. A leak of one
/// descriptor per cycle, of either kind, is 25 or more, far above it.
const FD_TOLERANCE: usize = 4;

/// 50 create/delete cycles, half `ctr run --rm` of a command that exits by itself, half a detached
/// container with an exec, killed and deleted: no mount, runc state, cgroup, bundle, process, shim, shim
/// socket or containerd descriptor is left. (Supersedes lifecycle.rs's 20-cycle test.)
#[test]
fn fifty_create_delete_cycles_leave_nothing_behind() {
    let _serial = serial();
    let tb = testbed();
    // Warm up: containerd opens some descriptors on first use (snapshotter, content store, metadata).
    for _ in 0..3 {
        let out = tb.run(STRICT, &[], &["true"]);
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
    // Shims a failed test left behind are not this test's business (each such test reports its own).
    let earlier: Vec<(u32, String)> = shims(tb);
    let ours = |shims: Vec<(u32, String)>| -> Vec<(u32, String)> {
        shims.into_iter().filter(|s| !earlier.contains(s)).collect()
    };
    let containerd = tb.containerd_pid();
    std::thread::sleep(Duration::from_millis(500));
    let fds_before = open_fds(containerd);
    let mounts_before = mounts_under(&tb.run_dir);

    let mut ids = Vec::new();
    let mut processes = Vec::new();
    for cycle in 0..50 {
        let id = unique("cycle");
        if cycle % 2 == 0 {
            let out = tb.ctr(&[
                "run",
                "--rm",
                "--runtime",
                STRICT,
                IMAGE,
                &id,
                "sh",
                "-c",
                "exit 0",
            ]);
            assert!(
                out.status.success(),
                "cycle {cycle}: {}\n{}",
                text(&out.stderr),
                tb.log()
            );
        } else {
            ok(
                tb,
                &["run", "-d", "--runtime", STRICT, IMAGE, &id, "sleep", "300"],
            );
            let (pid, _) = task(tb, &id).expect("listed");
            processes.push(Proc::of(pid));
            let address = std::fs::read_to_string(tb.bundle(&id).join("address")).unwrap();
            assert_eq!(
                address.trim(),
                format!("unix://{}", shim_socket(tb, &id).display()),
                "the socket name the test computes"
            );
            processes.extend(shims_of(tb, &id).into_iter().map(Proc::of));
            let exec = tb.ctr(&[
                "tasks",
                "exec",
                "--exec-id",
                "e",
                &id,
                "sh",
                "-c",
                "echo $$",
            ]);
            assert!(exec.status.success(), "{}", text(&exec.stderr));
            ok(tb, &["tasks", "kill", "-s", "SIGKILL", &id]);
            assert!(
                wait_until(Duration::from_secs(10), || task(tb, &id)
                    .is_some_and(|(_, s)| s == "STOPPED")),
                "cycle {cycle}: {:?}",
                task(tb, &id)
            );
            ok(tb, &["tasks", "delete", &id]);
            ok(tb, &["containers", "delete", &id]);
        }
        ids.push(id);
    }

    assert!(
        wait_until(Duration::from_secs(15), || ours(shims(tb)).is_empty()),
        "shims of deleted containers still run: {:?}",
        ours(shims(tb))
    );
    let mut left = Vec::new();
    for id in &ids {
        left.extend(
            leftovers(tb, id, &[])
                .into_iter()
                .map(|l| format!("{id}: {l}")),
        );
        if shim_socket(tb, id).exists() {
            left.push(format!(
                "{id}: shim socket {}",
                shim_socket(tb, id).display()
            ));
        }
    }
    left.extend(
        processes
            .iter()
            .filter(|p| p.alive())
            .map(|p| format!("process {}: {:?}", p.pid, argv(&p.pid.to_string()))),
    );
    let ids: HashSet<String> = ids.into_iter().collect();
    left.extend(
        processes_with_arg(&ids)
            .into_iter()
            .map(|p| format!("process naming a container: {p}")),
    );
    let mounts_after = mounts_under(&tb.run_dir);
    left.extend(
        mounts_after
            .iter()
            .filter(|m| !mounts_before.contains(m))
            .map(|m| format!("mount {m}")),
    );
    assert!(left.is_empty(), "left behind: {left:#?}");

    let mut fds_after = open_fds(containerd);
    wait_until(Duration::from_secs(10), || {
        fds_after = open_fds(containerd);
        fds_after <= fds_before + FD_TOLERANCE
    });
    eprintln!("containerd's descriptors: {fds_before} before the cycles, {fds_after} after");
    assert!(
        fds_after <= fds_before + FD_TOLERANCE,
        "containerd holds {fds_after} descriptors after 50 cycles, {fds_before} before"
    );
}
