//! One record of the trail: who asked for what, and what the gate decided.

use serde::{Deserialize, Serialize};
use strict_policy::{Mode, Outcome, Verdict};
use strict_protocol::annotations::{
    CONTAINER_NAME, CONTAINER_TYPE, IMAGE_NAME, POD_NAME, POD_NAMESPACE, POD_UID, RUNTIME_HANDLER,
    SANDBOX_IMAGE_NAME,
};

/// What happened to the container. In complain mode `refused` and `narrowed` become `would-refuse` and
/// `would-narrow`: the workload ran as asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Decision {
    Allowed,
    Narrowed,
    Refused,
    WouldNarrow,
    WouldRefuse,
    /// The gate could not decide (no configuration, snapd unreachable, bad spec): refused.
    Undecided,
    /// A running container holds what the connections no longer grant (`strictctl reconcile`; the
    /// record's `action` says what was done about it).
    Revoked,
}

impl Decision {
    pub fn of(verdict: &Verdict, mode: Mode) -> Decision {
        match (verdict.outcome(), mode) {
            (Outcome::Allowed, _) => Decision::Allowed,
            (Outcome::Narrowed, Mode::Enforce) => Decision::Narrowed,
            (Outcome::Refused, Mode::Enforce) => Decision::Refused,
            (Outcome::Narrowed, Mode::Complain) => Decision::WouldNarrow,
            (Outcome::Refused, Mode::Complain) => Decision::WouldRefuse,
        }
    }

    /// Refused or would have been.
    pub fn is_refusal(self) -> bool {
        matches!(
            self,
            Decision::Refused | Decision::WouldRefuse | Decision::Undecided | Decision::Revoked
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Allowed => "allowed",
            Decision::Narrowed => "narrowed",
            Decision::Refused => "refused",
            Decision::WouldNarrow => "would-narrow",
            Decision::WouldRefuse => "would-refuse",
            Decision::Undecided => "undecided",
            Decision::Revoked => "revoked",
        }
    }
}

/// What was decided about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Subject {
    /// A pod's sandbox (pause) container.
    Sandbox,
    Container,
    Exec,
    Update,
}

/// The pod, from the CRI annotations in the spec (absent for containers not started through CRI).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pod {
    pub namespace: String,
    pub name: String,
    pub uid: String,
}

/// One refused field, as in the refusal message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditViolation {
    pub rule: String,
    pub field: String,
    pub value: String,
    /// Plugs that would grant it, in `--connect` syntax (`+` joins plugs needed together).
    #[serde(default)]
    pub interfaces: Vec<String>,
    pub message: String,
}

/// One change the gate made (or would have made) to the spec.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditNarrowing {
    pub rule: String,
    pub field: String,
    pub from: String,
    pub to: String,
}

/// One line of the audit trail.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// RFC 3339, UTC, milliseconds.
    pub time: String,
    pub handler: String,
    pub mode: Mode,
    pub decision: Decision,
    pub subject: Subject,
    /// containerd's namespace (`k8s.io` for Kubernetes).
    pub namespace: String,
    pub container_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exec_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<Pod>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// The container's cgroup (`linux.cgroupsPath`), to tie kernel log lines to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cgroups_path: Option<String>,
    #[serde(default)]
    pub violations: Vec<AuditViolation>,
    #[serde(default)]
    pub narrowings: Vec<AuditNarrowing>,
    /// Why the gate could not decide; for `revoked`, what was done and why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// `revoked` only: `reported`, `narrowed`, `stopped` or `failed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// The snap whose connections apply.
    pub snap: String,
    /// Where the connected plugs came from.
    pub permissions_source: String,
    /// Where the configuration came from.
    pub config: String,
    /// SHA-256 of the profiles, configuration and plugs in force (empty when they did not load).
    pub policy_digest: String,
}

/// The workload's identity as the spec's CRI annotations give it.
#[derive(Clone, Debug, Default)]
pub struct Identity {
    pub subject: Option<Subject>,
    pub pod: Option<Pod>,
    pub container_name: Option<String>,
    pub image: Option<String>,
    pub cgroups_path: Option<String>,
    pub handler: Option<String>,
}

impl Identity {
    /// From `annotations` and `linux.cgroupsPath` of a spec (typed or raw JSON alike).
    pub fn from_annotations<'a>(
        get: impl Fn(&str) -> Option<&'a str>,
        cgroups_path: Option<&str>,
    ) -> Identity {
        let owned = |key: &str| get(key).filter(|v| !v.is_empty()).map(str::to_string);
        let pod = owned(POD_NAME).map(|name| Pod {
            namespace: owned(POD_NAMESPACE).unwrap_or_default(),
            name,
            uid: owned(POD_UID).unwrap_or_default(),
        });
        let subject = match get(CONTAINER_TYPE) {
            Some("sandbox") => Some(Subject::Sandbox),
            _ => None,
        };
        Identity {
            subject,
            pod,
            container_name: owned(CONTAINER_NAME),
            image: owned(IMAGE_NAME).or_else(|| owned(SANDBOX_IMAGE_NAME)),
            cgroups_path: cgroups_path.map(str::to_string),
            handler: owned(RUNTIME_HANDLER),
        }
    }

    pub fn of_spec(spec: &oci_spec::runtime::Spec) -> Identity {
        let annotations = spec.annotations().as_ref();
        Identity::from_annotations(
            |key| annotations.and_then(|a| a.get(key)).map(String::as_str),
            spec.linux()
                .as_ref()
                .and_then(|l| l.cgroups_path().as_ref())
                .and_then(|p| p.to_str()),
        )
    }

    /// Best effort from config.json bytes that may not parse as a spec.
    pub fn of_json(bytes: &[u8]) -> Identity {
        let Ok(value) = serde_json::from_slice::<serde_json::Value>(bytes) else {
            return Identity::default();
        };
        Identity::from_annotations(
            |key| value["annotations"][key].as_str(),
            value["linux"]["cgroupsPath"].as_str(),
        )
    }
}

/// Violations as recorded: the fields plus the sentence of the refusal message.
pub fn violations(verdict: &Verdict) -> Vec<AuditViolation> {
    verdict
        .violations
        .iter()
        .map(|v| AuditViolation {
            rule: v.rule.to_string(),
            field: v.field.clone(),
            value: v.value.clone(),
            interfaces: v.interfaces.clone(),
            message: v.sentence(),
        })
        .collect()
}

pub fn narrowings(verdict: &Verdict) -> Vec<AuditNarrowing> {
    verdict
        .narrowed
        .iter()
        .map(|n| AuditNarrowing {
            rule: n.rule.to_string(),
            field: n.field.clone(),
            from: n.from.clone(),
            to: n.to.clone(),
        })
        .collect()
}

/// Now, as the trail writes it.
pub fn now() -> String {
    humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string()
}
