//! The shim's errors, and how each maps to a ttrpc status code containerd understands.

use containerd_shim::protos::ttrpc::{self, Code};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The policy refused the container or the request: the message is the user-facing `strict: refused: ...`.
    #[error("{0}")]
    Refused(String),
    /// The shim could not decide (a profile that does not load, an unreadable spec): it fails closed.
    #[error("strict: cannot decide, refusing: {0}")]
    Undecided(String),
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0} already exists")]
    AlreadyExists(String),
    #[error("{0}")]
    FailedPrecondition(String),
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0} is not supported by the strict shim")]
    Unimplemented(&'static str),
    /// The OCI runtime (runc, crun) failed; `message` is its own last error.
    #[error("{command}: {message}")]
    Runtime { command: String, message: String },
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Shim(#[from] containerd_shim::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
        let context = context.into();
        move |source| Error::Io { context, source }
    }

    pub fn code(&self) -> Code {
        match self {
            Error::Refused(_) => Code::PERMISSION_DENIED,
            Error::Undecided(_) | Error::FailedPrecondition(_) => Code::FAILED_PRECONDITION,
            Error::NotFound(_) => Code::NOT_FOUND,
            Error::AlreadyExists(_) => Code::ALREADY_EXISTS,
            Error::InvalidArgument(_) => Code::INVALID_ARGUMENT,
            Error::Unimplemented(_) => Code::UNIMPLEMENTED,
            Error::Runtime { .. } | Error::Io { .. } | Error::Shim(_) => Code::UNKNOWN,
        }
    }
}

impl From<Error> for ttrpc::Error {
    fn from(error: Error) -> Self {
        ttrpc::Error::RpcStatus(ttrpc::get_status(error.code(), error.to_string()))
    }
}

impl From<nix::Error> for Error {
    fn from(errno: nix::Error) -> Self {
        Error::Io {
            context: "system call".into(),
            source: std::io::Error::from(errno),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_is_permission_denied_and_keeps_its_message() {
        let status = match ttrpc::Error::from(Error::Refused("strict: refused: x".into())) {
            ttrpc::Error::RpcStatus(status) => status,
            other => panic!("{other:?}"),
        };
        assert_eq!(status.code(), Code::PERMISSION_DENIED);
        assert_eq!(status.message(), "strict: refused: x");
    }

    #[test]
    fn nothing_the_shim_does_answers_not_implemented_but_checkpoint() {
        assert_eq!(
            Error::Undecided("x".into()).code(),
            Code::FAILED_PRECONDITION
        );
        assert_eq!(
            Error::Unimplemented("checkpoint").code(),
            Code::UNIMPLEMENTED
        );
    }
}
