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
    /// The host's mount points, read once per evaluation when a rule first needs them.
    pub mount_points: Option<Result<Vec<std::path::PathBuf>, String>>,
}

impl Evaluation<'_> {
    /// Whether anything is mounted strictly below `path` on the host.
    pub fn has_submounts(&mut self, path: &std::path::Path) -> Result<bool, String> {
        let host = self.host;
        let points = self
            .mount_points
            .get_or_insert_with(|| host.mount_points().map_err(|e| e.to_string()));
        match points {
            Ok(points) => Ok(points.iter().any(|m| m != path && m.starts_with(path))),
            Err(e) => Err(e.clone()),
        }
    }

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
