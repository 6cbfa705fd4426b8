//! What a source answers: the connected plugs, and where they came from.

use strict_policy::{Plug, Source};

/// The connected plugs and a sentence saying where they came from.
#[derive(Clone, Debug)]
pub struct Connections {
    pub source: Source,
    pub plugs: Vec<Plug>,
    /// E.g. `snapd (/run/snapd.socket, snap microk8s)`, for logs, the audit trail and `strictctl`.
    pub description: String,
    /// Connected plugs left out because the profiles do not know them (they grant nothing here).
    pub ignored: Vec<String>,
}
