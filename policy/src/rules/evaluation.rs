//! One evaluation in progress: what every rule reads, and the verdict the rules add to. Its own module so
//! that the rules and the evaluation that runs them do not import each other.

use crate::host::{HostView, PodNamespaces, PodOwner};
use crate::permissions::{Need, Permissions};
use crate::verdict::{Narrowing, Verdict, Violation};

/// One evaluation in progress.
pub(crate) struct Evaluation<'a> {
    pub perms: &'a Permissions,
    pub host: &'a dyn HostView,
    /// The pod of an app container started through CRI: the only namespaces it may join.
    pub pod: Option<&'a PodNamespaces>,
    /// The pod the container belongs to (its files are its own); None outside CRI.
    pub owner: Option<&'a PodOwner>,
    pub verdict: Verdict,
}

impl Evaluation<'_> {
    pub fn refuse(&mut self, violation: Violation) {
        self.verdict.violations.push(violation);
    }

    /// Refuses with the plugs that would grant `need` as the fix.
    pub fn refuse_needing(&mut self, violation: Violation, need: &Need) {
        let suggestions = self.perms.suggest(need);
        self.verdict.violations.push(violation.suggest(suggestions));
    }

    pub fn narrow(&mut self, rule: &'static str, field: String, from: String, to: String) {
        self.verdict.narrowed.push(Narrowing {
            rule,
            field,
            from,
            to,
        });
    }
}
