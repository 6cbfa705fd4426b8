//! Inside the snap: `snapctl is-connected PLUG` for every plug the snap declares
//! (`vendor-profiles/snaps/<snap>.toml`), with the attributes from that file. snapctl exits 0 when the
//! plug is connected and 1 when it is not, silently; errors exit 1 too but say why on stderr (`error:
//! snapctl: snap "x" has no plug or slot named "y"`). Anything else, or no answer in time, is an error.

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
    let deadline = Instant::now() + config.source_timeout;
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
