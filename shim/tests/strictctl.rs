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

/// An empty configuration file: every key at its default.
fn config_path() -> &'static str {
    static PATH: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    PATH.get_or_init(|| {
        let path = std::env::temp_dir().join(format!("strictctl-test-{}.toml", std::process::id()));
        std::fs::write(&path, "# defaults\n").unwrap();
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
    spec["mounts"][0]["source"] = json!("/srv/strict-test-data");
    let path = write_spec(dir.path(), &spec);
    let config = dir.path().join("strict.toml");
    std::fs::write(
        &config,
        "connections = [\"network\", \"system-files:read=/srv/strict-test-data\"]\n",
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
    std::fs::write(&config, "connections = [\"no-such-interface\"]\n").unwrap();
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
