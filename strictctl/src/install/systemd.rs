//! Restarting containerd through systemd once the node's files are in place, so that it reads them.

use std::path::Path;
use std::process::{Command, Stdio};

use super::options::{Options, Report};

/// Why containerd was not restarted.
#[derive(Debug, thiserror::Error)]
pub enum SystemdError {
    #[error("cannot run `systemctl restart {service}`: {source}")]
    CannotRun {
        service: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`systemctl restart {service}` failed: {stderr}")]
    Failed { service: String, stderr: String },
}

/// Whether `--root` is the host's own root, the only one whose containerd install restarts.
pub fn is_host_root(root: &Path) -> bool {
    root == Path::new("/")
}

/// Whether [`restart`] restarts containerd (rather than saying why not).
pub fn restart_applies(opts: &Options, root: &Path) -> bool {
    !opts.no_restart && is_host_root(root)
}

/// Restarts containerd when that applies, else says how to.
pub fn restart(
    opts: &Options,
    root: &Path,
    config_path: &Path,
    report: &mut Report,
) -> Result<(), SystemdError> {
    if opts.no_restart {
        report.say(format!(
            "not restarting containerd (--no-restart): `systemctl restart {}` makes the change take effect",
            opts.service
        ));
        return Ok(());
    }
    if !is_host_root(root) {
        report.say(format!(
            "not restarting containerd: --root is {}, not /; restart the containerd that reads {} yourself",
            root.display(),
            config_path.display()
        ));
        return Ok(());
    }
    systemctl_restart(&opts.service)?;
    report.say(format!("restarted {} (systemctl)", opts.service));
    Ok(())
}

/// `systemctl restart SERVICE`.
pub fn systemctl_restart(service: &str) -> Result<(), SystemdError> {
    let output = Command::new("systemctl")
        .args(["restart", service])
        .stdin(Stdio::null())
        .output()
        .map_err(|source| SystemdError::CannotRun {
            service: service.to_string(),
            source,
        })?;
    if !output.status.success() {
        return Err(SystemdError::Failed {
            service: service.to_string(),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        });
    }
    Ok(())
}
