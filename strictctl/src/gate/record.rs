//! Every decision, logged (containerd's log) and appended to the audit trail. A record that cannot be
//! written goes to the log whole instead, so no decision is lost.

use strict_policy::{Mode, Permissions, PolicyConfig, Verdict};

use crate::audit::record::{narrowings, now, violations, Decision, Identity, Record, Subject};
use crate::audit::AuditLog;

/// Where a gate's decisions go, and what every record says of the policy that made them.
pub struct Trail {
    audit: AuditLog,
    handler: String,
    mode: Mode,
    snap: String,
    namespace: String,
    config_source: String,
    permissions_source: String,
    policy_digest: String,
}

impl Trail {
    /// The trail of a gate serving containerd namespace `namespace` with this configuration (from
    /// `config_source`) and, where they loaded, these permissions.
    pub fn new(
        config: &PolicyConfig,
        config_source: &str,
        namespace: &str,
        permissions: Option<&Permissions>,
    ) -> Trail {
        Trail {
            audit: AuditLog::new(config.audit.clone()),
            handler: config.handler.clone(),
            mode: config.mode,
            snap: config.snap.clone(),
            namespace: namespace.to_string(),
            config_source: config_source.to_string(),
            permissions_source: permissions
                .map(|p| p.plug_source.clone())
                .unwrap_or_else(|| "(not loaded)".into()),
            policy_digest: permissions.map(|p| p.digest.clone()).unwrap_or_default(),
        }
    }

    /// Writes one record of the trail; if that fails the record goes to containerd's log instead.
    pub fn record(&self, decision: Decision, subject: Subject, what: Recorded<'_>) {
        let identity = what.identity;
        let record = Record {
            time: now(),
            handler: identity
                .handler
                .clone()
                .unwrap_or_else(|| self.handler.clone()),
            mode: self.mode,
            decision,
            subject,
            namespace: self.namespace.clone(),
            container_id: what.id.to_string(),
            exec_id: what.exec_id.map(str::to_string),
            pod: identity.pod.clone(),
            container_name: identity.container_name.clone(),
            image: identity.image.clone(),
            cgroups_path: identity.cgroups_path.clone(),
            violations: what.verdict.map(violations).unwrap_or_default(),
            narrowings: what.verdict.map(narrowings).unwrap_or_default(),
            error: what.error.map(str::to_string),
            action: what.action.map(str::to_string),
            snap: self.snap.clone(),
            permissions_source: self.permissions_source.clone(),
            config: self.config_source.clone(),
            policy_digest: self.policy_digest.clone(),
        };
        if let Err(error) = self.audit.append(&record) {
            let line = serde_json::to_string(&record).unwrap_or_default();
            tracing::error!(
                path = %self.audit.path().display(),
                %error,
                record = %line,
                "the audit trail cannot be written; the record follows"
            );
        }
    }

    /// A request that could not be decided (refused), recorded with why.
    pub fn undecided(&self, subject: Subject, what: Recorded<'_>, error: &str) {
        self.record(
            Decision::Undecided,
            subject,
            Recorded {
                error: Some(error),
                ..what
            },
        );
    }

    /// Logs and records a verdict with the decision it makes in this mode.
    pub fn conclude(&self, subject: Subject, what: Recorded<'_>, verdict: &Verdict) {
        let decision = Decision::of(verdict, self.mode);
        log_verdict(what.id, verdict, decision, subject);
        self.record(
            decision,
            subject,
            Recorded {
                verdict: Some(verdict),
                ..what
            },
        );
    }
}

/// What a record is about.
#[derive(Clone, Copy)]
pub struct Recorded<'a> {
    pub id: &'a str,
    pub exec_id: Option<&'a str>,
    pub identity: &'a Identity,
    pub verdict: Option<&'a Verdict>,
    pub error: Option<&'a str>,
    /// What `strictctl reconcile` did (decision `revoked`).
    pub action: Option<&'a str>,
}

impl<'a> Recorded<'a> {
    /// A request of this container (or exec), before its verdict.
    pub fn new(id: &'a str, exec_id: Option<&'a str>, identity: &'a Identity) -> Recorded<'a> {
        Recorded {
            id,
            exec_id,
            identity,
            verdict: None,
            error: None,
            action: None,
        }
    }
}

fn log_verdict(id: &str, verdict: &Verdict, decision: Decision, subject: Subject) {
    let what = format!("{subject:?}").to_lowercase();
    match decision {
        Decision::Allowed => tracing::info!(container = id, "{what} allowed"),
        Decision::Narrowed | Decision::WouldNarrow => {
            let changes: Vec<String> = verdict
                .narrowed
                .iter()
                .map(|n| format!("{} {}: {} -> {}", n.rule, n.field, n.from, n.to))
                .collect();
            tracing::info!(
                container = id,
                narrowed = %changes.join("; "),
                "{what} {}",
                if decision == Decision::WouldNarrow {
                    "would be narrowed (complain mode: runs unchanged)"
                } else {
                    "narrowed"
                }
            );
        }
        Decision::Refused | Decision::WouldRefuse | Decision::Undecided | Decision::Revoked => {
            tracing::warn!(
                container = id,
                verdict = %verdict.to_json(),
                "{what} {}",
                if decision == Decision::WouldRefuse {
                    "would be refused (complain mode: runs anyway)"
                } else {
                    "refused"
                }
            )
        }
    }
}
