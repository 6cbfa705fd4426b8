//! Drift: running containers whose admission no longer holds. snapd applies a disconnection to the snap's
//! running processes at once; the containers the node started keep what they were admitted with until
//! someone looks. `strictctl status` looks: every container the gate admitted on this node (their
//! bundles' `strict-admission.json`, below containerd's state directories) that its runtime still runs is
//! judged again, as admitted, under the connections it was admitted with and under the connections now;
//! what the second takes away and the first did not is what a disconnection revoked. (A host path gone
//! since, or a complain-mode container's own findings, are not revocations.) `strictctl reconcile` acts
//! on what it finds as the configuration's `on_revoke` says.
//!
//! A record is believed only as far as the bundle it is in: its id and namespace must be the bundle's,
//! its runtime the one its configuration names, and the runtime must report that bundle for the id.
//!
//! - `admission.rs`: the record the gate leaves in each bundle;
//! - `node.rs`: the runtime and the cgroups, behind a seam (`Node`);
//! - `reconcile.rs`: report, narrow (devices) or stop.

pub mod admission;
pub mod node;
pub mod reconcile;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use strict_policy::{
    evaluate_in, Context, Permissions, Plug, PodOwner, PolicyConfig, RealHost, Verdict,
};
use strict_protocol::config_request::RUNTIME_OPTIONS_BODY;

use crate::gate::features::{apply, runtime_features};
use crate::setup;
use admission::Admission;
use node::{ContainerState, Node};

/// Where containerd keeps its shims' bundles, below each of its state directories.
const TASKS_DIR: &str = "io.containerd.runtime.v2.task";

/// One container the gate admitted and its runtime still runs, judged again.
#[derive(Debug)]
pub struct Held {
    pub bundle: PathBuf,
    pub admission: Admission,
    pub state: ContainerState,
    /// What the connections now take away; an error when they could not be had (the container is then
    /// reported as undecided, never as fine).
    pub now: Result<Judged, String>,
}

#[derive(Debug)]
pub struct Judged {
    /// Only what the connections now refuse or narrow and the connections at admission did not.
    pub verdict: Verdict,
    /// The admitted plugs that are no longer connected (by name, attributes included).
    pub revoked_plugs: Vec<String>,
    pub permissions: Arc<Permissions>,
}

impl Held {
    /// Whether it holds what the node no longer grants (or cannot be told).
    pub fn drifted(&self) -> bool {
        match &self.now {
            Ok(judged) => {
                !judged.verdict.violations.is_empty() || !judged.verdict.narrowed.is_empty()
            }
            Err(_) => true,
        }
    }
}

/// What the node's containers are judged with: each admission's own configuration (its file, or the
/// runtime options' TOML it came with), else `fallback` (the configuration `status` was given); each
/// loaded once, with its connections asked once.
pub struct Judge {
    fallback: PolicyConfig,
    /// Plugs taken as disconnected whatever the source says (`reconcile --disconnecting`).
    disconnecting: Vec<String>,
    configs: BTreeMap<ConfigKey, Result<PolicyConfig, String>>,
    loaded: BTreeMap<(ConfigKey, PathBuf), Result<Arc<Permissions>, String>>,
}

/// Which configuration an admission names: its file, or the runtime options' TOML.
type ConfigKey = (Option<PathBuf>, Option<String>);

impl Judge {
    pub fn new(fallback: PolicyConfig) -> Judge {
        Judge {
            fallback,
            disconnecting: Vec::new(),
            configs: BTreeMap::new(),
            loaded: BTreeMap::new(),
        }
    }

    /// Judges as if these plugs (names) were disconnected already.
    pub fn disconnecting(mut self, plugs: Vec<String>) -> Judge {
        self.disconnecting = plugs;
        self
    }

    /// The configuration the admission was made under, as it reads now.
    pub fn config(&mut self, admission: &Admission) -> Result<PolicyConfig, String> {
        let key = (admission.config_file.clone(), admission.config_body.clone());
        if let Some(config) = self.configs.get(&key) {
            return config.clone();
        }
        let config = match (&admission.config_file, &admission.config_body) {
            (Some(path), _) => setup::load_config(Some(path))
                .map(|(config, _)| config)
                .map_err(|e| format!("its configuration: {e}")),
            (None, Some(body)) => PolicyConfig::parse(RUNTIME_OPTIONS_BODY, body)
                .map_err(|e| format!("its configuration: {e}")),
            (None, None) => Ok(self.fallback.clone()),
        };
        self.configs.insert(key, config.clone());
        config
    }

    fn permissions(&mut self, admission: &Admission) -> Result<Arc<Permissions>, String> {
        let key = (
            (admission.config_file.clone(), admission.config_body.clone()),
            admission.runtime.binary.clone(),
        );
        if let Some(loaded) = self.loaded.get(&key) {
            return loaded.clone();
        }
        let loaded = self.config(admission).and_then(|config| {
            let catalog = setup::load_catalog(&config, None).map_err(|e| e.to_string())?;
            let mut permissions =
                setup::load_permissions_disconnecting(config, catalog, &self.disconnecting)
                    .map_err(|e| format!("the connections now: {e}"))?;
            apply(
                &mut permissions,
                &admission.runtime.binary,
                &runtime_features(&admission.runtime),
            );
            Ok(Arc::new(permissions))
        });
        self.loaded.insert(key, loaded.clone());
        loaded
    }

    /// The admission judged again, as it was admitted (its pod, its own files, its root filesystem), under
    /// the connections it was admitted with and under the connections now: what only the second refuses
    /// or narrows.
    pub fn judge(&mut self, admission: &Admission) -> Result<Judged, String> {
        let now = self.permissions(admission)?;
        let mut then = Permissions::new(
            now.catalog.clone(),
            now.config.clone(),
            admission.plugs.clone(),
            "the connections at admission",
        )
        .map_err(|e| format!("the plugs it was admitted with: {e}"))?;
        then.seccomp_log_flag = now.seccomp_log_flag;
        then.recursive_read_only = now.recursive_read_only;
        then.unfixed_breakouts = now.unfixed_breakouts.clone();
        let before = evaluate_as_admitted(admission, &then);
        let after = evaluate_as_admitted(admission, &now);
        let verdict = Verdict {
            violations: after
                .violations
                .into_iter()
                .filter(|v| {
                    !before
                        .violations
                        .iter()
                        .any(|b| b.rule == v.rule && b.field == v.field)
                })
                .collect(),
            narrowed: after
                .narrowed
                .into_iter()
                .filter(|n| {
                    !before
                        .narrowed
                        .iter()
                        .any(|b| b.rule == n.rule && b.field == n.field)
                })
                .collect(),
        };
        let revoked_plugs = admission
            .plugs
            .iter()
            .filter(|plug| !now.plugs.contains(plug))
            .map(Plug::connect_syntax)
            .collect();
        Ok(Judged {
            verdict,
            revoked_plugs,
            permissions: now,
        })
    }
}

fn evaluate_as_admitted(admission: &Admission, permissions: &Permissions) -> Verdict {
    let mut spec = admission.spec.clone();
    let owner = admission.owner.as_ref().map(PodOwner::from);
    let context = Context {
        pod: admission.pod.as_ref(),
        owner: owner.as_ref(),
        rootfs_layers: &admission.rootfs_layers,
    };
    evaluate_in(&mut spec, permissions, &RealHost, &context)
}

/// Every bundle with an admission record below these containerd state directories, sorted.
pub fn admitted_bundles(states: &[PathBuf]) -> Vec<PathBuf> {
    let mut bundles = Vec::new();
    for state in states {
        let tasks = state.join(TASKS_DIR);
        for namespace in read_dirs(&tasks) {
            for bundle in read_dirs(&namespace) {
                if Admission::path_in(&bundle).exists() {
                    bundles.push(bundle);
                }
            }
        }
    }
    bundles.sort();
    bundles.dedup();
    bundles
}

fn read_dirs(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| path.is_dir())
        .collect()
}

/// A containerd id or namespace: what containerd accepts, so never a runtime flag or a path.
fn is_identifier(text: &str) -> bool {
    text.chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric())
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// The record believed only as far as the bundle it is in, and its runtime only if its configuration
/// names that runtime (status runs it as root).
fn check_record(bundle: &Path, admission: &Admission, config: &PolicyConfig) -> Result<(), String> {
    let name = |p: Option<&Path>| {
        p.and_then(Path::file_name)
            .and_then(|n| n.to_str())
            .unwrap_or("")
            .to_string()
    };
    if !is_identifier(&admission.id) || admission.id != name(Some(bundle)) {
        return Err(format!(
            "names container {:?}, but it is in bundle {}",
            admission.id,
            bundle.display()
        ));
    }
    if !is_identifier(&admission.namespace) || admission.namespace != name(bundle.parent()) {
        return Err(format!(
            "names namespace {:?}, but it is in bundle {}",
            admission.namespace,
            bundle.display()
        ));
    }
    let runtime = &admission.runtime;
    if runtime.binary != config.runtime.binary
        || runtime.root != config.runtime.root.join(&admission.namespace)
        || runtime.systemd_cgroup != config.runtime.systemd_cgroup
    {
        return Err(format!(
            "names runtime {} --root {}, which its configuration does not",
            runtime.binary.display(),
            runtime.root.display()
        ));
    }
    Ok(())
}

/// What `status` found: the live containers, judged; the bundles it could not read or ask about.
#[derive(Debug, Default)]
pub struct Survey {
    pub held: Vec<Held>,
    pub unreadable: Vec<String>,
}

/// Every live container the gate admitted below `states`, judged under the connections now.
pub fn survey(states: &[PathBuf], judge: &mut Judge, node: &dyn Node) -> Survey {
    let mut survey = Survey::default();
    for bundle in admitted_bundles(states) {
        match survey_one(&bundle, judge, node) {
            Ok(Some(held)) => survey.held.push(held),
            Ok(None) => {} // stopped or gone: it holds nothing any more
            Err(problem) => survey.unreadable.push(format!(
                "{}: {problem}",
                Admission::path_in(&bundle).display()
            )),
        }
    }
    survey
}

fn survey_one(bundle: &Path, judge: &mut Judge, node: &dyn Node) -> Result<Option<Held>, String> {
    let admission = Admission::read(bundle).map_err(|e| e.to_string())?;
    let config = judge.config(&admission)?;
    check_record(bundle, &admission, &config)?;
    let state = match node
        .state(&admission.runtime, &admission.id)
        .map_err(|e| e.to_string())?
    {
        Some(state) => state,
        // The runtime does not know it: gone, unless its state is still there (then it is not believed).
        None if !admission.runtime.root.join(&admission.id).exists() => return Ok(None),
        None => {
            return Err(format!(
                "{} does not know container {}, yet its state {} exists",
                admission.runtime.binary.display(),
                admission.id,
                admission.runtime.root.join(&admission.id).display()
            ))
        }
    };
    let same = |a: &Path, b: &Path| {
        a == b || matches!((a.canonicalize(), b.canonicalize()), (Ok(a), Ok(b)) if a == b)
    };
    if !same(&state.bundle, bundle) {
        return Err(format!(
            "the runtime runs container {} from bundle {}",
            admission.id,
            state.bundle.display()
        ));
    }
    if !state.is_live() {
        return Ok(None);
    }
    let now = judge.judge(&admission);
    Ok(Some(Held {
        bundle: bundle.to_owned(),
        admission,
        state,
        now,
    }))
}
