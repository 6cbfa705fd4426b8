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

/// A TOML error on one line (`line 3, column 1: unknown field ...`): it ends up in containerd's error, a
/// single line in `kubectl describe`, so no source snippet.
pub(crate) fn toml_message(text: &str, error: &toml::de::Error) -> String {
    let message = error.message().trim().replace('\n', " ");
    match error.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
            let column = before.len() - line_start + 1;
            // The line itself names the key, also for errors about a value.
            let source: String = text[line_start..]
                .lines()
                .next()
                .unwrap_or_default()
                .trim()
                .chars()
                .take(80)
                .collect();
            format!("line {line}, column {column} (`{source}`): {message}")
        }
        None => message,
    }
}
