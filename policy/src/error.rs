//! One error type for the policy crate.

use std::path::PathBuf;

/// Everything that can go wrong before a verdict exists. A verdict (allowed, narrowed, refused) is not an
/// error; these are the cases where the gate cannot decide, and every caller must fail closed on them.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A vendor profile or configuration file is not valid; the message names file, line and key.
    #[error("{file}: {message}")]
    Profile { file: String, message: String },

    /// A plug given on the command line or in the configuration is not valid.
    #[error("plug {plug:?}: {message}")]
    Plug { plug: String, message: String },

    /// The OCI spec could not be read or parsed.
    #[error("config.json: {0}")]
    Spec(String),

    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    pub(crate) fn profile(file: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Profile {
            file: file.into(),
            message: message.into(),
        }
    }

    pub(crate) fn plug(plug: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Plug {
            plug: plug.into(),
            message: message.into(),
        }
    }
}

pub type Result<T> = std::result::Result<T, Error>;
