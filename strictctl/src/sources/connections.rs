//! What a source answers: the connected plugs, and where they came from.

use strict_policy::{Plug, Source};

/// The connected plugs and a sentence saying where they came from.
#[derive(Clone, Debug)]
pub struct Connections {
    pub source: Source,
    pub plugs: Vec<Plug>,
    /// E.g. `snapd (/run/snapd.socket, snap microk8s)`, for logs, the audit trail and `strictctl`.
    pub description: String,
    /// Connected plugs left out, each with why: the snap's profile does not declare them, or no
    /// interface profile grants anything for them. They grant nothing here, whichever source answered.
    pub ignored: Vec<String>,
    /// Plugs the snap's profile declares that the installed snap does not: they cannot be connected, so
    /// they are "not connected" (a MicroK8s revision that drops a plug must not stop the node).
    pub undeclared: Vec<String>,
}

impl Connections {
    /// The description, with what was ignored and what the installed snap lacks.
    pub fn summary(&self) -> String {
        let mut text = self.description.clone();
        if !self.ignored.is_empty() {
            text.push_str(&format!("; ignored: {}", self.ignored.join(", ")));
        }
        if !self.undeclared.is_empty() {
            text.push_str(&format!(
                "; not declared by the installed snap (not connected): {}",
                self.undeclared.join(", ")
            ));
        }
        text
    }
}
