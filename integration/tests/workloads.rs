//! Real server software under the strict runtime's default profile: Debian's nginx starts, drops to its
//! workers and serves, with the narrowed seccomp filter active, and leaves nothing behind.

use std::time::{Duration, Instant};

use strict_integration::{testbed, text, unique, Testbed, NAMESPACE, STRICT};

/// Removes the container however the test ends, so a failed assertion leaves nothing running.
struct Container<'a> {
    tb: &'a Testbed,
    id: String,
}

impl Drop for Container<'_> {
    fn drop(&mut self) {
        self.tb.remove(&self.id);
    }
}

/// `ctr tasks exec` of `cmd` in container `id` under a fresh exec id.
fn exec(tb: &Testbed, id: &str, cmd: &[&str]) -> std::process::Output {
    let exec_id = unique("exec");
    let mut args = vec!["tasks", "exec", "--exec-id", &exec_id, id];
    args.extend_from_slice(cmd);
    tb.ctr(&args)
}

/// The command line of a host process, arguments joined by spaces.
fn cmdline(pid: u32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|raw| text(&raw).replace('\0', " ").trim().to_string())
        .unwrap_or_default()
}

/// The value of `field` in a host process's /proc/PID/status.
fn status_field(pid: u32, field: &str) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix(&format!("{field}:"))
                .map(|v| v.trim().to_string())
        })
        .unwrap_or_default()
}

const GET: &str = r#"exec 3<>/dev/tcp/127.0.0.1/80 && printf 'GET / HTTP/1.0\r\nHost: localhost\r\n\r\n' >&3 && cat <&3"#;

#[test]
fn nginx_from_debian_starts_and_serves_under_the_default_profile() {
    let tb = testbed();
    let image = tb.import_image("nginx");
    let id = unique("nginx");
    let container = Container { tb, id: id.clone() };
    let out = tb.ctr(&["run", "-d", "--runtime", STRICT, &image, &id]);
    assert!(
        out.status.success(),
        "nginx was not started: {} {}\ncontainerd: {}",
        text(&out.stdout),
        text(&out.stderr),
        tb.log()
    );

    // nginx binds, drops to its workers and answers; give it a moment to start.
    let deadline = Instant::now() + Duration::from_secs(20);
    let response = loop {
        let out = exec(tb, &id, &["bash", "-c", GET]);
        let stdout = text(&out.stdout);
        if out.status.success() && stdout.starts_with("HTTP/") {
            break stdout;
        }
        if Instant::now() > deadline {
            let error_log = exec(tb, &id, &["cat", "/var/log/nginx/error.log"]);
            panic!(
                "nginx did not answer: {stdout} {}\nerror.log: {}\ntasks: {}\ncontainerd: {}",
                text(&out.stderr),
                text(&error_log.stdout),
                text(&tb.ctr(&["tasks", "list"]).stdout),
                tb.log()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(response.starts_with("HTTP/1.1 200 OK"), "{response}");
    assert!(response.contains("Server: nginx"), "{response}");
    assert!(
        response.contains("<title>Welcome to nginx!</title>"),
        "{response}"
    );

    // The master and its workers, the workers as www-data (setuid/setgid went through).
    let ps = tb.ctr(&["tasks", "ps", &id]);
    assert!(ps.status.success(), "{}", text(&ps.stderr));
    let pids: Vec<u32> = text(&ps.stdout)
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next()?.parse().ok())
        .collect();
    let processes: Vec<(u32, String)> = pids.iter().map(|&p| (p, cmdline(p))).collect();
    let master: Vec<u32> = processes
        .iter()
        .filter(|(_, c)| c.starts_with("nginx: master process"))
        .map(|(p, _)| *p)
        .collect();
    let workers: Vec<u32> = processes
        .iter()
        .filter(|(_, c)| c.starts_with("nginx: worker process"))
        .map(|(p, _)| *p)
        .collect();
    assert_eq!(master.len(), 1, "{processes:?}");
    assert!(!workers.is_empty(), "no worker runs: {processes:?}");
    for &worker in &workers {
        let uid = status_field(worker, "Uid");
        assert!(
            uid.split_whitespace().all(|u| u == "33"),
            "worker {worker} Uid: {uid}"
        );
        // Every process of the container has the narrowed filter, not only the one exec sees.
        assert_eq!(status_field(worker, "Seccomp"), "2", "worker {worker}");
    }

    // The narrowing is active for the container's init (the nginx master).
    let status = exec(tb, &id, &["cat", "/proc/1/status"]);
    assert!(status.status.success(), "{}", text(&status.stderr));
    let status = text(&status.stdout);
    assert!(status.contains("Seccomp:\t2"), "{status}");
    assert!(status.contains("Name:\tnginx"), "{status}");

    // Nothing nginx asked for was refused: no alert, critical or emergency in its error log.
    let error_log = exec(tb, &id, &["cat", "/var/log/nginx/error.log"]);
    assert!(error_log.status.success(), "{}", text(&error_log.stderr));
    let error_log = text(&error_log.stdout);
    for level in ["[emerg]", "[alert]", "[crit]"] {
        assert!(!error_log.contains(level), "{error_log}");
    }

    // Kill and delete: nothing is left behind.
    drop(container);
    assert!(
        text(&tb.ctr(&["tasks", "list", "-q"]).stdout)
            .lines()
            .all(|t| t != id),
        "the task is still listed"
    );
    assert!(
        text(&tb.ctr(&["containers", "list", "-q"]).stdout)
            .lines()
            .all(|c| c != id),
        "the container is still listed"
    );
    for pid in pids {
        let gone = !std::path::Path::new(&format!("/proc/{pid}")).exists()
            || status_field(pid, "State").starts_with('Z')
            || !cmdline(pid).starts_with("nginx");
        assert!(gone, "process {pid} ({}) is still running", cmdline(pid));
    }
    let bundle = tb.bundle(&id);
    assert!(
        !bundle.exists(),
        "the bundle is left at {}",
        bundle.display()
    );
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap();
    assert!(
        !mounts.contains(bundle.to_str().unwrap()),
        "the rootfs is still mounted"
    );
    let runc_state = tb.run_dir.join("runc").join(NAMESPACE).join(&id);
    assert!(
        !runc_state.exists(),
        "runc state left at {}",
        runc_state.display()
    );
}
