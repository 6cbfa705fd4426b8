//! Inside the snap: which of the plugs the snap declares (`vendor-profiles/snaps/<snap>.toml`) are
//! connected, with the attributes from that file. One `snapctl is-connected --list` (snapd 2.60+: the
//! connected plugs and slots, one name a line); with an older snapd, which refuses `--list`, one
//! `snapctl is-connected PLUG` per plug, all at once. snapctl exits 0 when a plug is connected and 1 when
//! it is not, silently; errors exit 1 too but say why on stderr (`error: snapctl: snap "x" has no plug or
//! slot named "y"`). Anything else, or no answer in time, is an error.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use strict_policy::{Catalog, PolicyConfig, Source};

use super::{Connections, Environment, SourceError};

pub fn connected(
    config: &PolicyConfig,
    catalog: &Catalog,
    env: &Environment,
) -> Result<Connections, SourceError> {
    if let Some(running) = &env.snap_name {
        if running != &config.snap {
            return Err(SourceError::Snapctl(format!(
                "the shim runs inside snap {running:?} but the configuration names snap {:?} (key `snap`)",
                config.snap
            )));
        }
    }
    let declared = catalog.snap_plugs(&config.snap)?;
    let deadline = Instant::now() + config.source_timeout;
    if let Some(listed) = list(config, env, deadline)? {
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
            ignored: Vec::new(),
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
            Err(e) => {
                kill_all(&mut children);
                return Err(SourceError::Snapctl(format!(
                    "cannot run {}: {e}",
                    env.snapctl.display()
                )));
            }
        }
    }
    let mut connected = Vec::new();
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
                    (code, said) => {
                        failure = Some(format!(
                            "`snapctl is-connected {name}` exited with {code}: {}",
                            if said.is_empty() {
                                "(nothing on stderr)"
                            } else {
                                said
                            }
                        ));
                        break;
                    }
                }
            }
            Ok(None) => {
                failure = Some(format!(
                    "`snapctl is-connected {name}` did not answer within {}",
                    humantime::format_duration(config.source_timeout)
                ));
                break;
            }
            Err(e) => {
                failure = Some(format!("waiting for `snapctl is-connected {name}`: {e}"));
                break;
            }
        }
    }
    kill_all(&mut children);
    if let Some(failure) = failure {
        return Err(SourceError::Snapctl(failure));
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
    })
}

/// The names `snapctl is-connected --list` prints, or None when this snapd does not know `--list`.
fn list(
    config: &PolicyConfig,
    env: &Environment,
    deadline: Instant,
) -> Result<Option<Vec<String>>, SourceError> {
    let mut child = Command::new(&env.snapctl)
        .args(["is-connected", "--list"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| SourceError::Snapctl(format!("cannot run {}: {e}", env.snapctl.display())))?;
    // The answer is a few hundred bytes at most: it fits the pipe, so waiting first cannot block.
    let code = match wait_until(&mut child, deadline) {
        Ok(Some(code)) => code,
        Ok(None) => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(SourceError::Snapctl(format!(
                "`snapctl is-connected --list` did not answer within {}",
                humantime::format_duration(config.source_timeout)
            )));
        }
        Err(e) => {
            return Err(SourceError::Snapctl(format!(
                "waiting for `snapctl is-connected --list`: {e}"
            )))
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
        code => Err(SourceError::Snapctl(format!(
            "`snapctl is-connected --list` exited with {code}: {}",
            if stderr.trim().is_empty() {
                "(nothing on stderr)"
            } else {
                stderr.trim()
            }
        ))),
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
