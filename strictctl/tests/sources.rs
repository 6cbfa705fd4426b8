//! The host's connections from snapd (a server on a unix socket answering with snapd's recorded replies)
//! and from snapctl (a `snapctl` placed on PATH), including every way they can fail.

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use strict_policy::{AttrValue, Catalog, PolicyConfig, Source};
use strictctl::setup::load_permissions_from;
use strictctl::sources::{connected_plugs, Environment, SourceError};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/snapd");

/// How the fake snapd behaves.
#[derive(Clone)]
enum Behaviour {
    /// Send this recorded reply and close.
    Reply(Vec<u8>),
    /// Accept and close at once.
    Close,
    /// Accept, read the request, never answer.
    Silent,
}

struct FakeSnapd {
    socket: PathBuf,
    requests: Arc<Mutex<Vec<String>>>,
    _dir: tempfile::TempDir,
}

impl FakeSnapd {
    fn start(behaviour: Behaviour) -> FakeSnapd {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("snapd.socket");
        let listener = UnixListener::bind(&socket).unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = requests.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let behaviour = behaviour.clone();
                let seen = seen.clone();
                std::thread::spawn(move || {
                    if let Behaviour::Close = behaviour {
                        return;
                    }
                    let mut request = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !request.ends_with(b"\r\n\r\n") {
                        match stream.read(&mut buf) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => request.extend_from_slice(&buf[..n]),
                        }
                    }
                    seen.lock()
                        .unwrap()
                        .push(String::from_utf8_lossy(&request).to_string());
                    match behaviour {
                        Behaviour::Reply(reply) => {
                            let _ = stream.write_all(&reply);
                        }
                        Behaviour::Silent => std::thread::sleep(Duration::from_secs(30)),
                        Behaviour::Close => {}
                    }
                });
            }
        });
        FakeSnapd {
            socket,
            requests,
            _dir: dir,
        }
    }

    fn recorded(name: &str) -> FakeSnapd {
        FakeSnapd::start(Behaviour::Reply(
            std::fs::read(format!("{FIXTURES}/{name}")).unwrap(),
        ))
    }

    fn config(&self) -> PolicyConfig {
        PolicyConfig {
            source: Source::Snapd,
            snapd_socket: self.socket.clone(),
            source_timeout: Duration::from_millis(500),
            ..PolicyConfig::default()
        }
    }
}

fn outside_a_snap() -> Environment {
    Environment {
        snap_name: None,
        snapctl: "snapctl".into(),
    }
}

#[test]
fn snapd_connections_become_plugs_with_their_attributes() {
    let snapd = FakeSnapd::recorded("connections-microk8s.http");
    let catalog = Catalog::embedded().unwrap();
    let config = PolicyConfig {
        source: Source::Auto, // the socket exists: auto picks snapd
        ..snapd.config()
    };
    let found = connected_plugs(&config, &catalog, &outside_a_snap()).unwrap();
    assert_eq!(found.source, Source::Snapd);
    let names: Vec<&str> = found.plugs.iter().map(|p| p.name.as_str()).collect();
    // Sorted as snapd sorts; the other snap's plug on MicroK8s' slot is not the host's permission.
    assert_eq!(
        names,
        [
            "docker-privileged",
            "home-read-all",
            "k8s-kubelet",
            "network"
        ]
    );
    let docker = &found.plugs[0];
    assert_eq!(docker.interface, "docker-support");
    assert_eq!(
        docker.attributes.get("privileged-containers"),
        Some(&AttrValue::Bool(true))
    );
    assert_eq!(
        found.plugs[1].attributes.get("read"),
        Some(&AttrValue::Str("all".into()))
    );
    // A connected plug the snap file does not declare counts nowhere (the snapctl source cannot see it).
    assert_eq!(found.ignored.len(), 1);
    assert!(
        found.ignored[0].starts_with("snapd-control (not a plug of the microk8s profile)"),
        "{:?}",
        found.ignored
    );
    // The installed snap declares every plug of the file (select=all lists them): none undeclared.
    assert!(found.undeclared.is_empty(), "{:?}", found.undeclared);
    assert!(found.description.contains("snapd.socket"));

    let first = snapd.requests.lock().unwrap()[0].clone();
    assert!(
        first.starts_with("GET /v2/connections?snap=microk8s&select=all HTTP/1.0\r\n"),
        "{first}"
    );

    // And through the whole setup: the permissions say where they came from.
    let permissions = load_permissions_from(config, catalog, &[], &outside_a_snap()).unwrap();
    assert!(permissions.plug_source.starts_with("snapd ("));
    assert!(permissions.plug_source.contains("ignored"));
}

fn snapd_error(snapd: &FakeSnapd, config: PolicyConfig) -> String {
    let catalog = Catalog::embedded().unwrap();
    let start = Instant::now();
    let error = connected_plugs(&config, &catalog, &outside_a_snap()).unwrap_err();
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "bounded by the timeout"
    );
    assert!(matches!(error, SourceError::Snapd { .. }), "{error}");
    let message = error.to_string();
    assert!(
        message.contains(&snapd.socket.display().to_string()),
        "{message}"
    );
    message
}

#[test]
fn snapd_error_replies_are_errors_with_snapds_message() {
    let snapd = FakeSnapd::recorded("snap-not-found.http");
    let message = snapd_error(&snapd, snapd.config());
    assert!(message.contains("HTTP 404"), "{message}");
    assert!(message.contains("no state entry for key"), "{message}");
    assert!(message.contains("snap-not-found"), "{message}");

    let snapd = FakeSnapd::recorded("access-denied.http");
    let message = snapd_error(&snapd, snapd.config());
    assert!(
        message.contains("HTTP 403: access denied (kind login-required)"),
        "{message}"
    );
}

#[test]
fn a_socket_that_closes_a_server_that_never_answers_and_no_server_are_errors() {
    let closing = FakeSnapd::start(Behaviour::Close);
    let message = snapd_error(&closing, closing.config());
    assert!(message.contains("closed without an answer"), "{message}");

    let silent = FakeSnapd::start(Behaviour::Silent);
    let start = Instant::now();
    let message = snapd_error(&silent, silent.config());
    assert!(
        message.contains("no complete answer within 500ms"),
        "{message}"
    );
    assert!(start.elapsed() >= Duration::from_millis(450));

    let garbage = FakeSnapd::start(Behaviour::Reply(b"SSH-2.0-OpenSSH\r\n\r\n".to_vec()));
    let message = snapd_error(&garbage, garbage.config());
    assert!(message.contains("not an HTTP answer"), "{message}");

    let not_json = FakeSnapd::start(Behaviour::Reply(
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello".to_vec(),
    ));
    let message = snapd_error(&not_json, not_json.config());
    assert!(message.contains("not snapd's JSON"), "{message}");

    let dir = tempfile::tempdir().unwrap();
    let config = PolicyConfig {
        source: Source::Snapd,
        snapd_socket: dir.path().join("absent.socket"),
        ..PolicyConfig::default()
    };
    let error = connected_plugs(&config, &Catalog::embedded().unwrap(), &outside_a_snap())
        .unwrap_err()
        .to_string();
    assert!(error.contains("cannot connect"), "{error}");
}

/// Which snapd the fake snapctl stands for.
#[derive(Clone, Copy)]
enum Snapd {
    /// 2.60 and later: `is-connected --list` prints the connected names.
    Lists,
    /// Before 2.60: `--list` is an unknown flag.
    Old,
}

/// A `snapctl` that answers `is-connected` from a list, like the real one: exit 0 connected, exit 1 and
/// silent not connected, exit 1 with a message for an error; `extra` runs first.
fn fake_snapctl(dir: &Path, connected: &[&str], extra: &str, snapd: Snapd) -> PathBuf {
    let path = dir.join("snapctl");
    let list = match snapd {
        Snapd::Lists => format!("printf '%s\\n' {}; exit 0", connected.join(" ")),
        Snapd::Old => "echo \"error: unknown flag \\`list'\" >&2; exit 1".to_string(),
    };
    let script = format!(
        "#!/bin/sh\n\
         [ \"$1\" = is-connected ] || {{ echo 'error: unknown command' >&2; exit 1; }}\n\
         {extra}\n\
         [ \"$2\" = --list ] && {{ {list}; }}\n\
         for plug in {}; do [ \"$2\" = \"$plug\" ] && exit 0; done\n\
         exit 1\n",
        connected.join(" ")
    );
    std::fs::write(&path, script).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

fn inside(snapctl: PathBuf) -> Environment {
    Environment {
        snap_name: Some("microk8s".into()),
        snapctl,
    }
}

#[test]
fn snapctl_lists_the_connected_plugs_and_takes_attributes_from_the_snap_file() {
    let config = PolicyConfig {
        source_timeout: Duration::from_secs(5),
        ..PolicyConfig::default()
    };
    let catalog = Catalog::embedded().unwrap();
    // snapd 2.60+ answers one `--list`; an older one is asked plug by plug. The answer is the same.
    for (snapd, how) in [(Snapd::Lists, "--list"), (Snapd::Old, "is-connected (snap")] {
        let dir = tempfile::tempdir().unwrap();
        // `microk8s` is one of the snap's slots: a slot name in the list is not a plug.
        let snapctl = fake_snapctl(
            dir.path(),
            &["network", "docker-privileged", "kvm", "microk8s"],
            "",
            snapd,
        );
        let found = connected_plugs(&config, &catalog, &inside(snapctl)).unwrap();
        assert_eq!(
            found.source,
            Source::Snapctl,
            "auto picks snapctl inside a snap"
        );
        assert!(found.description.contains(how), "{}", found.description);
        let names: Vec<&str> = found.plugs.iter().map(|p| p.name.as_str()).collect();
        // kvm is connected but MicroK8s declares no such plug: it does not count.
        assert_eq!(names, ["docker-privileged", "network"]);
        assert_eq!(
            found.plugs[0].attributes.get("privileged-containers"),
            Some(&AttrValue::Bool(true))
        );
    }
}

#[test]
fn snapctl_failures_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = Catalog::embedded().unwrap();
    let config = PolicyConfig {
        source_timeout: Duration::from_millis(500),
        ..PolicyConfig::default()
    };

    let failing = fake_snapctl(
        dir.path(),
        &["network"],
        "[ \"$2\" = home ] && { echo 'error: snapctl: cannot connect to snapd' >&2; exit 1; }",
        Snapd::Old,
    );
    let error = connected_plugs(&config, &catalog, &inside(failing))
        .unwrap_err()
        .to_string();
    assert!(error.contains("is-connected home"), "{error}");
    assert!(error.contains("cannot connect to snapd"), "{error}");

    let hanging = dir.path().join("hang");
    std::fs::create_dir(&hanging).unwrap();
    let hanging = fake_snapctl(&hanging, &["network"], "sleep 30", Snapd::Lists);
    let start = Instant::now();
    let error = connected_plugs(&config, &catalog, &inside(hanging))
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("`snapctl is-connected --list` did not answer within 500ms"),
        "{error}"
    );
    assert!(start.elapsed() < Duration::from_secs(3));

    // `--list` failing for another reason than an old snapd is an error, not a fallback.
    let outside = dir.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    let outside = fake_snapctl(
        &outside,
        &["network"],
        "echo 'error: snapctl: cannot invoke snapctl operation commands (here \"is-connected\") from outside of a snap' >&2; exit 1",
        Snapd::Lists,
    );
    let error = connected_plugs(&config, &catalog, &inside(outside))
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("--list` exited with 1") && error.contains("outside of a snap"),
        "{error}"
    );

    let missing = inside(dir.path().join("no-such-snapctl"));
    let error = connected_plugs(&config, &catalog, &missing)
        .unwrap_err()
        .to_string();
    assert!(error.contains("cannot run"), "{error}");

    let other_snap = Environment {
        snap_name: Some("k8s".into()),
        snapctl: "snapctl".into(),
    };
    let error = connected_plugs(&config, &catalog, &other_snap)
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("inside snap \"k8s\"") && error.contains("key `snap`"),
        "{error}"
    );
}

/// The installed snap declares only some of the profile's plugs (another MicroK8s revision): snapctl's
/// "has no plug or slot named" for the others means "not connected", never a failed decision. The words
/// are snapd's (2.57 and 2.77 alike; see integration/tests/snapd_live.rs for the live ones).
#[test]
fn a_profile_plug_the_installed_snap_lacks_is_not_connected() {
    let config = PolicyConfig {
        source_timeout: Duration::from_secs(5),
        ..PolicyConfig::default()
    };
    let catalog = Catalog::embedded().unwrap();
    let dir = tempfile::tempdir().unwrap();
    // Declared: network, home, fuse-support; connected: network, fuse-support.
    let lacks = "case \"$2\" in network|home|fuse-support|--list) ;; \
                 *) echo \"error: error running snapctl: snap \\\"microk8s\\\" has no plug or slot named \\\"$2\\\"\" >&2; exit 1;; esac";
    let snapctl = fake_snapctl(dir.path(), &["network", "fuse-support"], lacks, Snapd::Old);
    let found = connected_plugs(&config, &catalog, &inside(snapctl)).unwrap();
    let names: Vec<&str> = found.plugs.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["fuse-support", "network"]);
    assert!(found.undeclared.contains(&"account-control".to_string()));
    assert!(!found.undeclared.contains(&"home".to_string()));
    let permissions = load_permissions_from(
        config.clone(),
        catalog,
        &[],
        &inside(fake_snapctl(
            dir.path(),
            &["network", "fuse-support"],
            lacks,
            Snapd::Old,
        )),
    )
    .unwrap();
    assert!(
        permissions
            .plug_source
            .contains("not declared by the installed snap (not connected): account-control"),
        "{}",
        permissions.plug_source
    );

    // Another snap's name in the error is not this answer: still an error.
    let other = dir.path().join("other");
    std::fs::create_dir(&other).unwrap();
    let snapctl = fake_snapctl(
        &other,
        &["network"],
        "[ \"$2\" = home ] && { echo 'error: error running snapctl: snap \"k8s\" has no plug or slot named \"home\"' >&2; exit 1; }",
        Snapd::Old,
    );
    let catalog = Catalog::embedded().unwrap();
    let error = connected_plugs(&config, &catalog, &inside(snapctl))
        .unwrap_err()
        .to_string();
    assert!(error.contains("is-connected home"), "{error}");

    // `--list` names a plug the profile does not declare: ignored, and said.
    let listing = dir.path().join("list");
    std::fs::create_dir(&listing).unwrap();
    let snapctl = fake_snapctl(&listing, &["network", "kvm"], "", Snapd::Lists);
    let found = connected_plugs(&config, &catalog, &inside(snapctl)).unwrap();
    assert_eq!(found.plugs.len(), 1);
    assert!(
        found.ignored.iter().any(|i| i.starts_with("kvm (")),
        "{:?}",
        found.ignored
    );
}
