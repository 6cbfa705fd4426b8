//! What install and uninstall report when they fail: one error joining each concern's.

use std::path::PathBuf;

use strict_protocol::names::SHIM_BINARY;

use super::containerd_config::{ConfigError, Layout};
use super::journal::{JournalError, RollbackFailure};
use super::manifest::ManifestError;
use super::systemd::SystemdError;
use super::version::VersionError;

/// Why `strictctl install` or `strictctl uninstall` failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("--root {}: {source}", .root.display())]
    Root {
        root: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("--root {}: not a directory", .root.display())]
    RootNotADirectory { root: PathBuf },
    #[error(transparent)]
    Version(#[from] VersionError),
    /// `described`: the version and where it came from.
    #[error(
        "{described}: the strict shim needs containerd 2.0 or later (task API v3); nothing was changed"
    )]
    ContainerdTooOld { described: String },
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error(transparent)]
    Systemd(#[from] SystemdError),
    #[error("cannot find the running strictctl: {0}")]
    CurrentExe(#[source] std::io::Error),
    #[error(
        "{} not found: install takes strictctl and {SHIM_BINARY} from one directory (build both: \
         `scripts/build-dist.sh`, or pass --from DIR)",
        .path.display()
    )]
    BinaryNotFound { path: PathBuf },
    #[error("{}: {source}", .path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{}: {source} (the configuration as it was before install)",
        .path.display()
    )]
    Backup {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "an earlier install put its drop-in {} for {}, and this one would put it {} for {} \
         (recorded in {}); run `strictctl uninstall` first, then install again. Nothing was changed",
        .previous.placement(),
        .previous_config.display(),
        .layout.placement(),
        .config.display(),
        .manifest.display()
    )]
    LayoutChanged {
        previous: Layout,
        previous_config: PathBuf,
        layout: Layout,
        config: PathBuf,
        manifest: PathBuf,
    },
    /// A step failed after changes were made: they were undone, except `failures`.
    #[error("{cause}; {}{again}", rollback_text(.failures))]
    RolledBack {
        cause: Box<Error>,
        failures: Vec<RollbackFailure>,
        again: RestartAgain,
    },
}

/// After a failed restart was rolled back: whether containerd was restarted again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RestartAgain {
    /// Nothing to restart (or not install's to say).
    NotTried,
    Restarted,
    FailedToo,
}

impl std::fmt::Display for RestartAgain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RestartAgain::NotTried => "",
            RestartAgain::Restarted => "; containerd restarted with its previous configuration",
            RestartAgain::FailedToo => "; restarting containerd again failed too",
        })
    }
}

fn rollback_text(failures: &[RollbackFailure]) -> String {
    if failures.is_empty() {
        "nothing was changed".to_string()
    } else {
        let failures: Vec<String> = failures.iter().map(ToString::to_string).collect();
        format!("undoing the changes failed for {}", failures.join(", "))
    }
}
