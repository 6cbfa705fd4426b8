//! What the sources could not do; the gate refuses every container with this message.

use std::path::PathBuf;

use super::snapctl::SnapctlError;
use super::snapd::SnapdError;

/// What the sources could not do; the gate refuses every container with this message.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// `snapctl is-connected` (its messages say `snapctl: ...`).
    #[error(transparent)]
    Snapctl(#[from] SnapctlError),
    #[error("snapd at {}: {source}", .socket.display())]
    Snapd {
        socket: PathBuf,
        #[source]
        source: SnapdError,
    },
    #[error("source \"static\" needs `connections`")]
    StaticWithoutConnections,
    #[error(transparent)]
    Policy(#[from] strict_policy::Error),
}
