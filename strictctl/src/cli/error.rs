//! What a subcommand fails with: printed as `strictctl: MESSAGE`, exit status 2.

use std::path::PathBuf;

use crate::sources::SourceError;

/// Why a subcommand could not do its work.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration or the profiles do not load, a plug does not parse, a file cannot be written.
    #[error(transparent)]
    Policy(#[from] strict_policy::Error),
    /// The host's connections cannot be read.
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Install(#[from] crate::install::Error),
    #[error("standard input: {0}")]
    Stdin(#[source] std::io::Error),
    #[error("{}: {source}", .path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The OCI spec does not parse.
    #[error("{}: {source}", .path.display())]
    Spec {
        path: PathBuf,
        #[source]
        source: strict_policy::Error,
    },
    /// The configuration's snap is not in the profiles.
    #[error("{}: key `snap`: {source}", .path.display())]
    Snap {
        path: PathBuf,
        #[source]
        source: strict_policy::Error,
    },
    /// The connections a configuration file names cannot be read.
    #[error("{}: {source}", .path.display())]
    Connections {
        path: PathBuf,
        #[source]
        source: Box<SourceError>,
    },
    #[error("--since {text:?}: {source} (e.g. 1h, 30m, 2days)")]
    Since {
        text: String,
        #[source]
        source: humantime::DurationError,
    },
    #[error(transparent)]
    Json(#[from] serde_json::Error),
}
