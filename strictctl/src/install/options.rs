//! What `strictctl install` and `strictctl uninstall` are asked, and what they report.

use std::path::PathBuf;

/// What `strictctl install` and `strictctl uninstall` were asked.
#[derive(Clone, Debug)]
pub struct Options {
    /// The node's root: `/`, or a directory holding one (nothing is restarted then).
    pub root: PathBuf,
    /// containerd's main configuration (default `ROOT/etc/containerd/config.toml`).
    pub containerd_config: Option<PathBuf>,
    /// containerd's version, instead of asking `containerd --version`.
    pub containerd_version: Option<String>,
    /// The containerd binary: its version, and `config dump` to check the result before a restart.
    pub containerd: PathBuf,
    /// The directory holding `strictctl` and `containerd-shim-strict-v2` to install (default: the
    /// running strictctl's).
    pub from: Option<PathBuf>,
    /// Leave containerd running as it is.
    pub no_restart: bool,
    /// The systemd unit to restart.
    pub service: String,
}

impl Options {
    pub fn new(root: impl Into<PathBuf>) -> Options {
        Options {
            root: root.into(),
            containerd_config: None,
            containerd_version: None,
            containerd: PathBuf::from("containerd"),
            from: None,
            no_restart: false,
            service: "containerd".into(),
        }
    }
}

/// What was done, one line each.
#[derive(Debug, Default)]
pub struct Report {
    pub lines: Vec<String>,
}

impl Report {
    pub(super) fn say(&mut self, line: impl Into<String>) {
        self.lines.push(line.into());
    }
}
