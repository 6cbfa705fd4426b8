//! The policy gate inside the shim: config.json is read once, evaluated, and the exact spec that was
//! evaluated is written back (atomically) before the runtime reads it. Execs and updates are gated too.
//! When the policy cannot be loaded the gate refuses everything and says why (fail closed).

use std::path::Path;
use std::sync::Arc;

use oci_spec::runtime::{LinuxResources, Process, Spec};
use strict_policy::{
    evaluate, evaluate_document, evaluate_exec, parse_spec, write_atomically, Outcome, Permissions,
    PolicyConfig, RealHost, Verdict,
};

use tokio::sync::OnceCell;

use crate::setup;
use crate::v2::error::{Error, Result};
use crate::v2::runtime::RuncCli;

pub struct Gate {
    permissions: std::result::Result<Arc<Permissions>, String>,
}

/// The gate, built on first use: it asks the runtime which seccomp flags it applies, and the shim's
/// reaper (which that needs) only runs once the task service is serving. The profiles and permissions,
/// which need nothing from the runtime, start loading at once in the background, so the first Create
/// does not wait for them.
pub struct LazyGate {
    loading: std::sync::Mutex<Option<tokio::task::JoinHandle<Loaded>>>,
    runtime: Arc<RuncCli>,
    cell: OnceCell<Gate>,
}

type Loaded = std::result::Result<Permissions, String>;

impl LazyGate {
    pub fn new(config: PolicyConfig, config_error: Option<String>, runtime: Arc<RuncCli>) -> Self {
        let loading = tokio::task::spawn_blocking(move || Gate::load(&config, config_error));
        LazyGate {
            loading: std::sync::Mutex::new(Some(loading)),
            runtime,
            cell: OnceCell::new(),
        }
    }

    pub fn ready(gate: Gate, runtime: Arc<RuncCli>) -> Self {
        LazyGate {
            loading: std::sync::Mutex::new(None),
            runtime,
            cell: OnceCell::new_with(Some(gate)),
        }
    }

    pub async fn get(&self) -> &Gate {
        self.cell
            .get_or_init(|| async {
                let flags = self.runtime.seccomp_flags().await;
                let log = flags.iter().any(|f| f == "SECCOMP_FILTER_FLAG_LOG");
                let loading = self
                    .loading
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .take();
                let loaded = match loading {
                    Some(handle) => handle
                        .await
                        .unwrap_or_else(|e| Err(format!("loading the policy failed: {e}"))),
                    None => Err("the policy was never loaded".to_string()),
                };
                Gate::from_loaded(loaded, log)
            })
            .await
    }
}

impl Gate {
    /// The configuration: the named file, else /etc/containerd/strict.toml if present, else the defaults.
    /// On error the defaults are returned with the error (the shim still needs runtime settings to clean
    /// up, but the gate must refuse).
    pub fn load_config(config_file: Option<&Path>) -> (PolicyConfig, Option<String>) {
        match setup::load_config(config_file) {
            Ok((config, _)) => (config, None),
            Err(error) => (PolicyConfig::default(), Some(error.to_string())),
        }
    }

    /// Loads the profiles and the host's connections for `config`.
    pub fn new(
        config: &PolicyConfig,
        config_error: Option<String>,
        seccomp_log_flag: bool,
    ) -> Gate {
        Gate::from_loaded(Gate::load(config, config_error), seccomp_log_flag)
    }

    fn load(config: &PolicyConfig, config_error: Option<String>) -> Loaded {
        if let Some(error) = config_error {
            return Err(error);
        }
        setup::load_catalog(config, None)
            .and_then(|catalog| setup::load_permissions(config.clone(), catalog, &[]))
            .map_err(|error| error.to_string())
    }

    fn from_loaded(loaded: Loaded, seccomp_log_flag: bool) -> Gate {
        let permissions = loaded.map(|mut permissions| {
            permissions.seccomp_log_flag = seccomp_log_flag;
            Arc::new(permissions)
        });
        if let Err(error) = &permissions {
            tracing::error!(%error, "the policy does not load: every container will be refused");
        }
        Gate { permissions }
    }

    pub fn from_permissions(permissions: Arc<Permissions>) -> Gate {
        Gate {
            permissions: Ok(permissions),
        }
    }

    fn permissions(&self) -> Result<&Permissions> {
        self.permissions
            .as_deref()
            .map_err(|error| Error::Undecided(error.clone()))
    }

    /// Gates the bundle's config.json; on success the spec in the bundle is the one that was allowed.
    pub fn check_bundle(&self, id: &str, bundle: &Path) -> Result<Spec> {
        let permissions = self.permissions()?;
        let path = bundle.join("config.json");
        let bytes = std::fs::read(&path)
            .map_err(|e| Error::Undecided(format!("reading {}: {e}", path.display())))?;
        let mut document =
            parse_spec(&bytes).map_err(|e| Error::Undecided(format!("{}: {e}", path.display())))?;
        let verdict = evaluate_document(&mut document, permissions, &RealHost);
        log_verdict(id, &verdict, "container");
        match verdict.outcome() {
            Outcome::Refused => Err(Error::Refused(
                verdict.refusal_message().unwrap_or_default(),
            )),
            Outcome::Narrowed => {
                write_atomically(&path, &strict_policy::document::to_json(&document.spec))
                    .map_err(|e| Error::Undecided(format!("writing the narrowed spec: {e}")))?;
                Ok(document.spec)
            }
            Outcome::Allowed => Ok(document.spec),
        }
    }

    /// Gates an exec process (the JSON containerd sends) against the container's gated spec.
    pub fn check_exec(&self, id: &str, container: &Spec, process_json: &[u8]) -> Result<Process> {
        self.permissions()?;
        let process: Process = serde_json::from_slice(process_json).map_err(|e| {
            Error::InvalidArgument(format!("the exec process spec is malformed: {e}"))
        })?;
        let verdict = evaluate_exec(container, &process);
        log_verdict(id, &verdict, "exec");
        match verdict.refusal_message() {
            Some(message) => Err(Error::Refused(message)),
            None => Ok(process),
        }
    }

    /// Gates new resources: with them the container's spec must still be allowed unchanged (an update may
    /// not open devices or anything else the container could not have been created with).
    pub fn check_update(
        &self,
        id: &str,
        container: &Spec,
        resources_json: &[u8],
    ) -> Result<LinuxResources> {
        let permissions = self.permissions()?;
        let resources: LinuxResources = serde_json::from_slice(resources_json).map_err(|e| {
            Error::InvalidArgument(format!("the update's resources are malformed: {e}"))
        })?;
        let mut spec = container.clone();
        if let Some(linux) = spec.linux_mut() {
            linux.set_resources(Some(resources.clone()));
        }
        let verdict = evaluate(&mut spec, permissions, &RealHost);
        log_verdict(id, &verdict, "update");
        match verdict.refusal_message() {
            Some(message) => Err(Error::Refused(message)),
            None => Ok(resources),
        }
    }
}

fn log_verdict(id: &str, verdict: &Verdict, what: &str) {
    match verdict.outcome() {
        Outcome::Allowed => tracing::info!(container = id, "{what} allowed"),
        Outcome::Narrowed => {
            let changes: Vec<String> = verdict
                .narrowed
                .iter()
                .map(|n| format!("{} {}: {} -> {}", n.rule, n.field, n.from, n.to))
                .collect();
            tracing::info!(container = id, narrowed = %changes.join("; "), "{what} narrowed");
        }
        Outcome::Refused => tracing::warn!(
            container = id,
            verdict = %verdict.to_json(),
            "{what} refused"
        ),
    }
}
