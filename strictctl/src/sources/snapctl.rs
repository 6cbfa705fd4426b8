//! Inside the snap: which of the plugs the snap declares (`vendor-profiles/snaps/<snap>.toml`) are
//! connected, with the attributes from that file. One `snapctl is-connected --list` (snapd 2.60+: the
//! connected plugs and slots, one name a line); with an older snapd, which refuses `--list`, one
//! `snapctl is-connected PLUG` per plug, all at once. snapctl exits 0 when a plug is connected and 1 when
//! it is not, silently; errors exit 1 too but say why on stderr. One of those errors is an answer: a plug
//! the installed snap does not declare (`snap "x" has no plug or slot named "y"`) cannot be connected, so
//! it is not connected. Anything else, or no answer in time, is an error.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use strict_policy::{Catalog, PolicyConfig, Source};

use super::connections::Connections;
use super::environment::Environment;

/// What snapctl could not tell. Each message but the profiles' starts with `snapctl: `.
#[derive(Debug, thiserror::Error)]
pub enum SnapctlError {
    #[error(
        "snapctl: the shim runs inside snap {running:?} but the configuration names snap {configured:?} (key `snap`)"
    )]
    OtherSnap { running: String, configured: String },
    #[error("snapctl: cannot run {}: {source}", .snapctl.display())]
    CannotRun {
        snapctl: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// `snapctl ARGS` failed; `stderr` is what it said, trimmed.
    #[error("snapctl: `snapctl {args}` exited with {code}: {}", or_nothing(.stderr))]
    Exited {
        args: String,
        code: i32,
        stderr: String,
    },
    #[error(
        "snapctl: `snapctl {args}` did not answer within {}",
        humantime::format_duration(*.timeout)
    )]
    NoAnswer { args: String, timeout: Duration },
    #[error("snapctl: waiting for `snapctl {args}`: {source}")]
    Wait {
        args: String,
        #[source]
        source: std::io::Error,
    },
    /// The snap's declared plugs do not load from the profiles.
    #[error(transparent)]
    Policy(#[from] strict_policy::Error),
}

/// What snapctl says for a plug the installed snap does not declare, inside its error line: 2.57 prints
/// `error: error running snapctl: snap "microk8s" has no plug or slot named "kvm"`, 2.77
/// `error: snapctl: snap "microk8s" has no plug or slot named "kvm"`.
fn no_such_plug(snap: &str, plug: &str) -> String {
    format!("snap {snap:?} has no plug or slot named {plug:?}")
}

fn or_nothing(stderr: &str) -> &str {
    if stderr.is_empty() {
        "(nothing on stderr)"
    } else {
        stderr
    }
}

pub fn connected(
    config: &PolicyConfig,
    catalog: &Catalog,
    env: &Environment,
) -> Result<Connections, SnapctlError> {
    if let Some(running) = &env.snap_name {
        if running != &config.snap {
            return Err(SnapctlError::OtherSnap {
                running: running.clone(),
                configured: config.snap.clone(),
            });
        }
    }
    let declared = catalog.snap_plugs(&config.snap)?;
    let deadline = Instant::now() + config.source_timeout;
    if let Some(listed) = list(config, env, deadline)? {
        // `--list` names connected plugs and slots alike: a name the profile does not declare as a plug
        // is one of the snap's slots or a plug the profile does not know; neither grants anything.
        let ignored = listed
            .iter()
            .filter(|name| !declared.contains_key(*name))
            .map(|name| {
                format!(
                    "{name} (listed by snapctl, not a plug of the {} profile)",
                    config.snap
                )
            })
            .collect();
        // In the snap file's order whatever the listing's: the policy's digest covers the plugs.
        let plugs = declared
            .into_iter()
            .filter(|(name, _)| listed.contains(name))
            .map(|(_, plug)| plug)
            .collect();
        return Ok(Connections {
            source: Source::Snapctl,
            plugs,
            description: format!("snapctl is-connected --list (snap {})", config.snap),
            ignored,
            // `--list` cannot tell a plug the snap lacks from one not connected: both are not connected.
            undeclared: Vec::new(),
        });
    }
    // One snapctl per plug, all at once: each is a round trip to snapd.
    let mut children: Vec<(String, Child)> = Vec::new();
    for name in declared.keys() {
        let child = Command::new(&env.snapctl)
            .args(["is-connected", name])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn();
        match child {
            Ok(child) => children.push((name.clone(), child)),
            Err(source) => {
                kill_all(&mut children);
                return Err(SnapctlError::CannotRun {
                    snapctl: env.snapctl.clone(),
                    source,
                });
            }
        }
    }
    let mut connected = Vec::new();
    let mut undeclared = Vec::new();
    let mut failure = None;
    for (name, child) in &mut children {
        match wait_until(child, deadline) {
            Ok(Some(code)) => {
                let mut stderr = String::new();
                if let Some(mut pipe) = child.stderr.take() {
                    use std::io::Read;
                    let _ = pipe.read_to_string(&mut stderr);
                }
                match (code, stderr.trim()) {
                    (0, _) => connected.push(name.clone()),
                    (1, "") => {}
                    // The installed snap does not declare this plug (another revision than the
                    // profile's): it cannot be connected, so it is not.
                    (1, said) if said.contains(&no_such_plug(&config.snap, name)) => {
                        undeclared.push(name.clone())
                    }
                    (code, said) => {
                        failure = Some(SnapctlError::Exited {
                            args: format!("is-connected {name}"),
                            code,
                            stderr: said.to_string(),
                        });
                        break;
                    }
                }
            }
            Ok(None) => {
                failure = Some(SnapctlError::NoAnswer {
                    args: format!("is-connected {name}"),
                    timeout: config.source_timeout,
                });
                break;
            }
            Err(source) => {
                failure = Some(SnapctlError::Wait {
                    args: format!("is-connected {name}"),
                    source,
                });
                break;
            }
        }
    }
    kill_all(&mut children);
    if let Some(failure) = failure {
        return Err(failure);
    }
    if !undeclared.is_empty() {
        tracing::warn!(
            snap = %config.snap,
            plugs = %undeclared.join(", "),
            "the installed snap does not declare these plugs of its profile: not connected"
        );
    }
    let mut declared = declared;
    let plugs = connected
        .iter()
        .filter_map(|name| declared.remove(name))
        .collect();
    Ok(Connections {
        source: Source::Snapctl,
        plugs,
        description: format!("snapctl is-connected (snap {})", config.snap),
        ignored: Vec::new(),
        undeclared,
    })
}

/// The names `snapctl is-connected --list` prints, or None when this snapd does not know `--list`.
fn list(
    config: &PolicyConfig,
    env: &Environment,
    deadline: Instant,
) -> Result<Option<Vec<String>>, SnapctlError> {
    let mut child = Command::new(&env.snapctl)
        .args(["is-connected", "--list"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| SnapctlError::CannotRun {
            snapctl: env.snapctl.clone(),
            source,
        })?;
    // The answer is a few hundred bytes at most: it fits the pipe, so waiting first cannot block.
    let code = match wait_until(&mut child, deadline) {
        Ok(Some(code)) => code,
        Ok(None) => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(SnapctlError::NoAnswer {
                args: "is-connected --list".into(),
                timeout: config.source_timeout,
            });
        }
        Err(source) => {
            return Err(SnapctlError::Wait {
                args: "is-connected --list".into(),
                source,
            })
        }
    };
    let read = |pipe: Option<&mut dyn std::io::Read>| {
        let mut text = String::new();
        if let Some(pipe) = pipe {
            let _ = pipe.read_to_string(&mut text);
        }
        text
    };
    let stdout = read(child.stdout.as_mut().map(|p| p as &mut dyn std::io::Read));
    let stderr = read(child.stderr.as_mut().map(|p| p as &mut dyn std::io::Read));
    match code {
        0 => Ok(Some(
            stdout
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(str::to_string)
                .collect(),
        )),
        // snapd before 2.60: the flag is unknown.
        _ if stderr.contains("unknown flag") => Ok(None),
        code => Err(SnapctlError::Exited {
            args: "is-connected --list".into(),
            code,
            stderr: stderr.trim().to_string(),
        }),
    }
}

/// The exit code, or None when the deadline passed (signals count as an error code of -1).
fn wait_until(child: &mut Child, deadline: Instant) -> std::io::Result<Option<i32>> {
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status.code().unwrap_or(-1)));
        }
        if Instant::now() >= deadline {
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn kill_all(children: &mut [(String, Child)]) {
    for (_, child) in children {
        if let Ok(None) = child.try_wait() {
            let _ = child.kill();
        }
        let _ = child.wait();
    }
}
