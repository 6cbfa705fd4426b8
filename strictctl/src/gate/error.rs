//! What a gate answers when it does not admit: each kind becomes its own answer on the wire, and the shim
//! maps it to a ttrpc code (a refusal is PERMISSION_DENIED).

use strict_protocol::Answer;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum GateError {
    /// The policy refused: the user-facing `strict: refused: ...` message.
    #[error("{0}")]
    Refused(String),
    /// The gate could not decide (a configuration, profile or connection that does not load, an
    /// unreadable spec): it fails closed.
    #[error("strict: cannot decide, refusing: {0}")]
    Undecided(String),
    /// The request is malformed.
    #[error("{0}")]
    InvalidArgument(String),
}

pub type Result<T, E = GateError> = std::result::Result<T, E>;

/// Why a gate has no policy to decide with: every decision that needs it is refused with this cause.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("the configuration does not load: {0}")]
    Config(#[source] strict_policy::Error),
    #[error("the vendor profiles do not load: {0}")]
    Profiles(#[source] strict_policy::Error),
    #[error("the host's connections cannot be read: {0}")]
    Connections(#[source] crate::sources::SourceError),
    /// An exec-only gate: an exec is judged against its container's spec.
    #[error("not loaded: an exec is judged against its container's spec")]
    NotForExec,
}

impl From<&LoadError> for GateError {
    fn from(error: &LoadError) -> GateError {
        GateError::Undecided(error.to_string())
    }
}

/// The answer a decision makes on the wire.
pub fn to_answer<T>(result: Result<T>) -> Answer<T> {
    match result {
        Ok(value) => Answer::Ok(value),
        Err(GateError::Refused(message)) => Answer::Refused(message),
        Err(GateError::Undecided(message)) => Answer::Undecided(message),
        Err(GateError::InvalidArgument(message)) => Answer::InvalidArgument(message),
    }
}
