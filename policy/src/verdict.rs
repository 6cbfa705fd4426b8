//! Verdicts and how they read: one line for `kubectl describe`, JSON for tools.

use serde::Serialize;

use crate::profile::Plug;

/// Containerd truncates event notes at 1024 bytes; the whole refusal must fit.
pub const MESSAGE_LIMIT: usize = 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Allowed,
    Narrowed,
    Refused,
}

/// Something the spec asks for that the host permissions do not grant.
#[derive(Clone, Debug, Serialize)]
pub struct Violation {
    /// Stable rule id, e.g. `mount.host-path`.
    pub rule: &'static str,
    /// JSON path of the field in config.json, e.g. `mounts[7].source`.
    pub field: String,
    pub value: String,
    /// Plugs that would grant it, in `strictctl --connect` syntax; ` + ` joins plugs needed together.
    pub interfaces: Vec<String>,
    /// A sentence that starts with the field, e.g. `mounts[7] host path /etc (read-only) is outside ...`.
    #[serde(skip)]
    pub summary: String,
    /// What to do when no interface grants it.
    #[serde(skip)]
    pub remedy: Option<String>,
    #[serde(skip)]
    pub suggestions: Vec<Vec<Plug>>,
}

impl Violation {
    pub fn new(rule: &'static str, field: String, value: String, summary: String) -> Self {
        Violation {
            rule,
            field,
            value,
            interfaces: Vec::new(),
            summary,
            remedy: None,
            suggestions: Vec::new(),
        }
    }

    pub fn suggest(mut self, suggestions: Vec<Vec<Plug>>) -> Self {
        self.interfaces = suggestions
            .iter()
            .map(|all| {
                all.iter()
                    .map(Plug::connect_syntax)
                    .collect::<Vec<_>>()
                    .join(" + ")
            })
            .collect();
        self.suggestions = suggestions;
        self
    }

    pub fn remedy(mut self, remedy: impl Into<String>) -> Self {
        self.remedy = Some(remedy.into());
        self
    }

    /// `<summary>; connect X to allow it` or `<summary>; <remedy>`.
    pub fn sentence(&self) -> String {
        let fix = if !self.suggestions.is_empty() {
            let alternatives: Vec<String> = self
                .suggestions
                .iter()
                .take(3)
                .map(|all| {
                    all.iter()
                        .map(Plug::to_string)
                        .collect::<Vec<_>>()
                        .join(" and ")
                })
                .collect();
            let mut fix = format!("connect {} to allow it", alternatives.join(" or "));
            if let Some(remedy) = &self.remedy {
                fix.push_str(&format!(" ({remedy})"));
            }
            fix
        } else {
            self.remedy
                .clone()
                .unwrap_or_else(|| "no snap interface grants it".to_string())
        };
        format!("{}; {fix}", self.summary)
    }
}

/// A change the gate made to the spec.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Narrowing {
    pub rule: &'static str,
    pub field: String,
    pub from: String,
    pub to: String,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Verdict {
    pub violations: Vec<Violation>,
    pub narrowed: Vec<Narrowing>,
}

#[derive(Serialize)]
struct VerdictJson<'a> {
    verdict: Outcome,
    violations: &'a [Violation],
    narrowed: &'a [Narrowing],
}

impl Verdict {
    pub fn outcome(&self) -> Outcome {
        if !self.violations.is_empty() {
            Outcome::Refused
        } else if !self.narrowed.is_empty() {
            Outcome::Narrowed
        } else {
            Outcome::Allowed
        }
    }

    /// The container may run (allowed or narrowed).
    pub fn runs(&self) -> bool {
        self.violations.is_empty()
    }

    /// `strict: refused: <first violation>; connect X to allow it (+N more)`, then one line per further
    /// violation, cut to fit [`MESSAGE_LIMIT`] bytes. None when nothing was refused.
    pub fn refusal_message(&self) -> Option<String> {
        let first = self.violations.first()?;
        let mut message = format!("strict: refused: {}", first.sentence());
        if self.violations.len() > 1 {
            message.push_str(&format!(" (+{} more)", self.violations.len() - 1));
        }
        for violation in &self.violations[1..] {
            message.push('\n');
            message.push_str(&violation.sentence());
        }
        Some(truncate(message, MESSAGE_LIMIT))
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(VerdictJson {
            verdict: self.outcome(),
            violations: &self.violations,
            narrowed: &self.narrowed,
        })
        .expect("a verdict always serialises")
    }
}

/// Cuts `text` to at most `limit` bytes at a character boundary, marking the cut with `…`.
pub fn truncate(mut text: String, limit: usize) -> String {
    if text.len() <= limit {
        return text;
    }
    let mut end = limit - '…'.len_utf8();
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    text.push('…');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusal_reads_well_and_fits() {
        let mut verdict = Verdict::default();
        for i in 0..40 {
            verdict.violations.push(
                Violation::new(
                    "mount.host-path",
                    format!("mounts[{i}].source"),
                    "/etc".into(),
                    format!("mounts[{i}] host path /etc (read-only) is outside the connected interfaces"),
                )
                .suggest(vec![vec![Plug::parse("system-files:read=/etc").unwrap()]]),
            );
        }
        let message = verdict.refusal_message().unwrap();
        let first = message.lines().next().unwrap();
        assert_eq!(
            first,
            "strict: refused: mounts[0] host path /etc (read-only) is outside the connected \
             interfaces; connect system-files (read: /etc) to allow it (+39 more)"
        );
        assert!(message.len() <= MESSAGE_LIMIT);
        assert!(message.ends_with('…'));
        assert_eq!(verdict.outcome(), Outcome::Refused);
        let json = verdict.to_json();
        assert_eq!(json["verdict"], "refused");
        assert_eq!(
            json["violations"][0]["interfaces"][0],
            "system-files:read=/etc"
        );
    }

    #[test]
    fn truncation_respects_characters() {
        let text = "é".repeat(600);
        let cut = truncate(text, 1024);
        assert!(cut.len() <= 1024);
        assert!(cut.ends_with('…'));
    }
}
