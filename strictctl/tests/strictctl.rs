//! `strictctl` as an operator runs it: output, exit status, and bad input.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{json, Value};

fn strictctl(args: &[&str]) -> Output {
    let output = Command::new(env!("CARGO_BIN_EXE_strictctl"))
        .args(args)
        // The host's /etc/containerd/strict.toml must not change what these tests see.
        .args(
            if args.first() == Some(&"check") || args.first() == Some(&"interfaces") {
                vec!["--config", config_path()]
            } else {
                vec![]
            },
        )
        .output()
        .expect("strictctl runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "strictctl panicked: {stderr}");
    output
}

/// A configuration file with every key at its default but the source.
fn config_path() -> &'static str {
    static PATH: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    PATH.get_or_init(|| {
        let path = std::env::temp_dir().join(format!("strictctl-test-{}.toml", std::process::id()));
        // The embedded connections, whether or not this machine runs snapd.
        std::fs::write(&path, "source = \"embedded\"\n").unwrap();
        path
    })
    .to_str()
    .unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn fixture(name: &str) -> String {
    format!(
        "{}/../policy/tests/fixtures/containerd/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    )
}

fn write_spec(dir: &Path, spec: &Value) -> String {
    let path = dir.join("config.json");
    std::fs::write(&path, serde_json::to_vec(spec).unwrap()).unwrap();
    path.to_str().unwrap().to_string()
}

/// A minimal runnable spec with the host's /etc bind-mounted read-only.
fn etc_spec() -> Value {
    json!({
        "ociVersion": "1.2.0",
        "process": {"user": {"uid": 0, "gid": 0}, "args": ["sh"], "cwd": "/"},
        "root": {"path": "rootfs"},
        "mounts": [{"destination": "/host-etc", "type": "bind", "source": "/etc", "options": ["rbind", "ro"]}],
        "linux": {"namespaces": [{"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"},
                                 {"type": "network"}, {"type": "cgroup"}]}
    })
}

#[test]
fn a_refusal_prints_the_message_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let spec = write_spec(dir.path(), &etc_spec());
    let output = strictctl(&["check", &spec]);
    assert_eq!(output.status.code(), Some(1));
    let text = stdout(&output);
    assert!(text.starts_with("verdict: refused\n"), "{text}");
    assert!(
        text.contains("message: strict: refused: mounts[0] host path /etc (read-only)"),
        "{text}"
    );
    assert!(text.contains("rule mount."), "{text}");
}

#[test]
fn json_lists_violations_and_narrowings() {
    let dir = tempfile::tempdir().unwrap();
    let spec = write_spec(dir.path(), &etc_spec());
    let output = strictctl(&["check", &spec, "--format", "json"]);
    assert_eq!(output.status.code(), Some(1));
    let json: Value = serde_json::from_slice(&output.stdout).expect("valid JSON");
    assert_eq!(json["verdict"], "refused");
    let violation = &json["violations"][0];
    assert_eq!(violation["field"], "mounts[0].source");
    assert_eq!(violation["value"], "/etc");
    for key in ["rule", "interfaces"] {
        assert!(violation.get(key).is_some(), "{key} missing");
    }
    let narrowed = json["narrowed"].as_array().expect("narrowed list");
    assert!(
        narrowed.iter().any(|n| n["rule"] == "seccomp.unconfined"),
        "{narrowed:?}"
    );
    for n in narrowed {
        for key in ["rule", "field", "from", "to"] {
            assert!(n.get(key).is_some());
        }
    }
}

#[test]
fn a_narrowed_spec_written_out_is_allowed_as_it_is() {
    let dir = tempfile::tempdir().unwrap();
    let mut spec = etc_spec();
    spec["mounts"] = json!([]);
    let path = write_spec(dir.path(), &spec);
    let out = dir.path().join("narrowed.json");
    let output = strictctl(&["check", &path, "--write-spec", out.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(0), "{}", stdout(&output));
    assert!(stdout(&output).starts_with("verdict: narrowed"));
    let output = strictctl(&["check", out.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(0));
    assert!(
        stdout(&output).starts_with("verdict: allowed"),
        "{}",
        stdout(&output)
    );
}

#[test]
fn connecting_the_suggested_interface_allows_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut spec = etc_spec();
    // The gate judges the source as it exists on this host.
    std::fs::create_dir_all("/srv/strict-test-data").unwrap();
    spec["mounts"][0]["source"] = json!("/srv/strict-test-data");
    let path = write_spec(dir.path(), &spec);
    let output = strictctl(&["check", &path, "--format", "json"]);
    assert_eq!(output.status.code(), Some(1));
    let json: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        json["violations"][0]["interfaces"][0],
        "system-files:read=/srv/strict-test-data"
    );
    let output = strictctl(&[
        "check",
        &path,
        "--connect",
        "system-files:read=/srv/strict-test-data",
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", stdout(&output));
}

#[test]
fn the_configurations_static_connections_replace_the_snaps_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let mut spec = etc_spec();
    // The gate judges the source as it exists on this host.
    std::fs::create_dir_all("/srv/strict-test-data").unwrap();
    spec["mounts"][0]["source"] = json!("/srv/strict-test-data");
    let path = write_spec(dir.path(), &spec);
    let config = dir.path().join("strict.toml");
    std::fs::write(
        &config,
        "source = \"static\"\nconnections = [\"network\", \"system-files:read=/srv/strict-test-data\"]\n",
    )
    .unwrap();
    let run = |config: &Path| {
        Command::new(env!("CARGO_BIN_EXE_strictctl"))
            .args(["check", &path, "--config", config.to_str().unwrap()])
            .output()
            .unwrap()
    };
    let output = run(&config);
    assert_eq!(output.status.code(), Some(0), "{}", stdout(&output));
    assert!(
        stdout(&output).contains("static list"),
        "{}",
        stdout(&output)
    );
    // A bad plug in the list is an error naming the key, never a silent default.
    std::fs::write(
        &config,
        "source = \"static\"\nconnections = [\"no-such-interface\"]\n",
    )
    .unwrap();
    let output = run(&config);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("connections") && stderr.contains("no-such-interface"),
        "{stderr}"
    );
}

#[test]
fn bad_input_exits_2_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let good = write_spec(dir.path(), &etc_spec());
    let malformed = dir.path().join("bad.json");
    std::fs::write(&malformed, b"{\"ociVersion\": ").unwrap();
    let unknown_key = dir.path().join("strict.toml");
    std::fs::write(&unknown_key, "alow_privileged = true\n").unwrap();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["check", "/nonexistent/config.json"],
            "/nonexistent/config.json",
        ),
        (vec!["check", malformed.to_str().unwrap()], "bad.json"),
        (
            vec!["check", &good, "--connect", "no-such-interface"],
            "unknown interface",
        ),
        (
            vec!["check", &good, "--connect", "home:read=some"],
            "read=some",
        ),
        (vec!["check", &good, "--connect", "serial-port"], "required"),
        (vec!["check", &good, "--snap", "nosnap"], "nosnap"),
        (vec!["check", &good, "--format", "yaml"], "yaml"),
        (vec!["check"], "SPEC"),
    ];
    for (args, expected) in cases {
        let output = strictctl(&args);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
    // A named configuration file with an unknown key (checked without the test's own --config).
    let output = Command::new(env!("CARGO_BIN_EXE_strictctl"))
        .args(["check", &good, "--config", unknown_key.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("alow_privileged"));
}

#[test]
fn interfaces_lists_the_connections_and_their_grants() {
    let output = strictctl(&["interfaces"]);
    assert_eq!(output.status.code(), Some(0));
    let text = stdout(&output);
    assert!(
        text.contains("connections: the embedded default connections of the microk8s snap"),
        "{text}"
    );
    assert!(
        text.contains("home (read: all) [plug home-read-all]"),
        "{text}"
    );
    assert!(text.contains("host namespaces:"), "{text}");

    let output = strictctl(&["interfaces", "--connect", "kvm", "--format", "json"]);
    let json: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json[0]["interface"], "kvm");
    assert!(json[0]["grant"].as_str().unwrap().contains("/dev/kvm"));
}

#[test]
fn real_containerd_specs_get_their_verdicts() {
    let default = strictctl(&["check", &fixture("default")]);
    assert_eq!(default.status.code(), Some(0), "{}", stdout(&default));
    assert!(stdout(&default).starts_with("verdict: narrowed"));
    let privileged = strictctl(&["check", &fixture("privileged"), "--format", "json"]);
    assert_eq!(privileged.status.code(), Some(1));
    let json: Value = serde_json::from_slice(&privileged.stdout).unwrap();
    assert_eq!(json["violations"][0]["rule"], "privileged");
}

#[test]
fn config_check_accepts_a_valid_file_and_names_file_and_key_otherwise() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("strict-complain.toml");
    std::fs::write(
        &file,
        "mode = \"complain\"\nsource = \"static\"\nconnections = [\"network\", \"kvm\"]\n\
         [audit]\npath = \"/var/log/strict/complain.log\"\nmax_size = \"1MiB\"\nkeep = 2\n",
    )
    .unwrap();
    let output = strictctl(&["config", "check", file.to_str().unwrap()]);
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(0), "{text}");
    assert!(text.contains("valid"), "{text}");
    assert!(text.contains("mode: complain"), "{text}");
    assert!(
        text.contains("static list") && text.contains("2 plugs"),
        "{text}"
    );
    assert!(
        text.contains("/var/log/strict/complain.log (rotated at 1 MiB, 2 kept)"),
        "{text}"
    );

    let cases = [
        ("mode = \"strict\"\n", "mode"),
        ("audti = true\n", "audti"),
        ("[audit]\nmax_size = \"ten megs\"\n", "max_size"),
        ("source_timeout = \"soon\"\n", "source_timeout"),
        ("source = \"static\"\n", "connections"),
        ("snap = \"no-such-snap\"\n", "snap"),
        ("[audit]\npath = \"relative/audit.log\"\n", "not absolute"),
    ];
    for (body, key) in cases {
        std::fs::write(&file, body).unwrap();
        let output = strictctl(&["config", "check", file.to_str().unwrap()]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{body}: {stderr}");
        assert!(stderr.contains("strict-complain.toml"), "{body}: {stderr}");
        assert!(stderr.contains(key), "{body}: {stderr}");
    }
    let output = strictctl(&["config", "check", "/nonexistent/strict.toml"]);
    assert_eq!(output.status.code(), Some(2));
}

/// One line of the trail, as the shim writes it.
fn record(time: &str, decision: &str, violations: Value, extra: Value) -> String {
    let mut record = json!({
        "time": time, "handler": "strict", "mode": "enforce", "decision": decision,
        "subject": "container", "namespace": "k8s.io", "container_id": "0123abcd",
        "pod": {"namespace": "shop", "name": "web-0", "uid": "0b5c"}, "container_name": "nginx",
        "violations": violations, "narrowings": [], "snap": "microk8s",
        "permissions_source": "snapd (/run/snapd.socket, snap microk8s)", "config": "/etc/containerd/strict.toml",
        "policy_digest": "ab".repeat(32),
    });
    for (k, v) in extra.as_object().unwrap() {
        record[k] = v.clone();
    }
    record.to_string()
}

#[test]
fn audit_groups_refusals_and_suggests_the_connection() {
    let dir = tempfile::tempdir().unwrap();
    let trail = dir.path().join("audit.log");
    let now = humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string();
    let privileged = json!([{"rule": "privileged", "field": "process.capabilities", "value": "all",
        "interfaces": ["docker-support:privileged-containers=true"],
        "message": "the container is privileged; connect docker-support (privileged-containers: true) to allow it"}]);
    let etc = json!([{"rule": "mount.host-path", "field": "mounts[3].source", "value": "/etc",
        "interfaces": ["system-files:read=/etc"],
        "message": "mounts[3] host path /etc (read-only) is outside the connected interfaces; connect system-files (read: /etc) to allow it"}]);
    let lines = [
        record(
            "2020-01-01T00:00:00.000Z",
            "refused",
            etc.clone(),
            json!({"container_id": "old"}),
        ),
        record(&now, "refused", privileged.clone(), json!({})),
        record(
            &now,
            "would-refuse",
            privileged,
            json!({"container_id": "4567", "mode": "complain", "container_name": "debug"}),
        ),
        record(&now, "refused", etc, json!({"container_id": "89ab"})),
        record(
            &now,
            "undecided",
            json!([]),
            json!({"container_id": "cdef", "error": "snapd at /run/snapd.socket: cannot connect: No such file or directory"}),
        ),
        record(&now, "allowed", json!([]), json!({"container_id": "ef01"})),
        "{\"cut\": ".to_string(),
    ];
    std::fs::write(&trail, lines.join("\n") + "\n").unwrap();
    // Narrowed containers' denials as dmesg shows them: unshare(2) and syslog(2) on x86_64.
    let now_secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let kernel = dir.path().join("dmesg.txt");
    std::fs::write(
        &kernel,
        format!(
            "[   1.0] unrelated\n[ 5412.1] audit: type=1326 audit({}.123:45): auid=4294967295 uid=0 gid=0 \
             ses=4294967295 subj=unconfined pid=999999999 comm=\"unshare\" exe=\"/bin/busybox\" sig=0 \
             arch=c000003e syscall=272 compat=0 ip=0x4a1f2b code=0x50000\n\
             [ 5413.1] audit: type=1326 audit({}.456:46): auid=4294967295 uid=0 gid=0 \
             ses=4294967295 subj=unconfined pid=999999998 comm=\"dmesg\" exe=\"/bin/dmesg\" sig=0 \
             arch=c000003e syscall=103 compat=0 ip=0x4a1f2b code=0x50000\n",
            now_secs, now_secs
        ),
    )
    .unwrap();

    let output = strictctl(&[
        "audit",
        trail.to_str().unwrap(),
        "--since",
        "1h",
        "--seccomp-log",
        kernel.to_str().unwrap(),
    ]);
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(0), "{text}");
    assert!(
        text.contains("5 decisions"),
        "--since drops the 2020 record: {text}"
    );
    assert!(
        text.contains("1 lines of the trail are not records"),
        "{text}"
    );
    assert!(text.contains("privileged (2x)"), "{text}");
    assert!(
        text.contains("shop/web-0/nginx") && text.contains("shop/web-0/debug"),
        "{text}"
    );
    assert!(
        text.contains("snap connect microk8s:docker-privileged"),
        "{text}"
    );
    assert!(
        text.contains("the microk8s snap declares no plug for system-files:read=/etc"),
        "{text}"
    );
    assert!(
        text.contains("cannot connect"),
        "undecided causes are listed: {text}"
    );
    assert!(text.contains("unshare (1x, errno)"), "{text}");
    assert!(
        text.contains("unknown (pid 999999999 has exited)"),
        "{text}"
    );
    assert!(
        text.contains("network-control withholds it: need CAP_SYS_ADMIN"),
        "unshare is withheld on purpose: {text}"
    );
    assert!(text.contains("syslog (1x, errno)"), "{text}");
    assert!(text.contains("snap connect microk8s:log-observe"), "{text}");

    let output = strictctl(&[
        "audit",
        trail.to_str().unwrap(),
        "--format",
        "json",
        "--seccomp-log",
        "none",
    ]);
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["decisions"]["refused"], 3, "{report}");
    assert_eq!(report["decisions"]["would-refuse"], 1);
    assert_eq!(
        report["plugs"][0]["connect"],
        "snap connect microk8s:docker-privileged"
    );
    assert_eq!(report["seccomp"], json!([]));

    let output = strictctl(&["audit", dir.path().join("absent.log").to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
    let output = strictctl(&["audit", trail.to_str().unwrap(), "--since", "a while"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--since"));
}

#[test]
fn a_missing_source_or_one_through_a_magic_link_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("link");
    std::os::unix::fs::symlink("/proc/self/root/etc", &link).unwrap();
    for (source, expected) in [
        (
            "/srv/strict-test-missing/later",
            "does not exist on the host",
        ),
        (link.to_str().unwrap(), "magic link"),
    ] {
        let mut spec = etc_spec();
        spec["mounts"][0]["source"] = json!(source);
        let path = write_spec(dir.path(), &spec);
        let output = strictctl(&["check", &path]);
        assert_eq!(output.status.code(), Some(1), "{}", stdout(&output));
        assert!(
            stdout(&output).contains(expected),
            "{source}: {}",
            stdout(&output)
        );
    }
}

#[test]
fn a_reader_that_stops_early_ends_the_output_quietly() {
    let output = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "{} interfaces | head -1 >/dev/null",
            env!("CARGO_BIN_EXE_strictctl")
        ))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// A developer's workstation: snapd runs, the node's snap is not installed. `check` answers against the
/// snap's default connections and says so on stderr (the gate itself fails closed: gate/decide.rs).
#[test]
fn check_without_the_snap_installed_uses_its_default_connections_and_says_so() {
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("snapd.socket");
    let listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    let reply = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/snapd/snap-not-found.http"
    ))
    .unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut request = Vec::new();
            let mut buf = [0u8; 1024];
            while !request.ends_with(b"\r\n\r\n") {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            let _ = stream.write_all(&reply);
        }
    });
    let config = dir.path().join("strict.toml");
    std::fs::write(&config, format!("snapd_socket = {socket:?}\n")).unwrap();
    let run = |spec: &str| {
        Command::new(env!("CARGO_BIN_EXE_strictctl"))
            .args(["check", spec, "--config", config.to_str().unwrap()])
            .output()
            .unwrap()
    };
    let allowed = run(&fixture("default"));
    let stderr = String::from_utf8_lossy(&allowed.stderr);
    assert_eq!(allowed.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("snap microk8s is not installed here")
            && stderr.contains("default connections"),
        "{stderr}"
    );
    // fuse-support is not among MicroK8s' default connections.
    let refused = run(&fixture("device-fuse"));
    assert_eq!(refused.status.code(), Some(1), "{}", stdout(&refused));
    assert!(
        stdout(&refused).contains("fuse-support"),
        "{}",
        stdout(&refused)
    );
}
