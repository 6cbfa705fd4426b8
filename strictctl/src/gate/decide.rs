//! The decisions: a container's config.json read once, evaluated, and the exact spec that was evaluated
//! written back (atomically) before the runtime reads it; execs and updates judged against the spec the
//! container runs with. When the policy cannot be loaded every decision is a refusal that says why (fail
//! closed), in both modes.

use std::path::Path;
use std::sync::Arc;

use std::path::PathBuf;

use oci_spec::runtime::{LinuxResources, Process, Spec};
use strict_policy::{
    evaluate, evaluate_document_in, evaluate_exec, parse_process, parse_spec, write_atomically,
    Context, Mode, Outcome, Permissions, PinningHost, PolicyConfig, RealHost, Verdict, Violation,
};
use strict_protocol::{AdmittedRuntime, ConfigRequest, ExecBaseline, PodNamespaces, RootfsMount};

use super::cgroup_driver;
use super::error::{GateError, LoadError, Result};
use super::exec_baseline;
use super::features::RuntimeFeatures;
use super::pins;
use super::pods::{namespaces_for, owner_for};
use super::record::{Recorded, Trail};
use crate::audit::record::{Identity, Subject};
use crate::drift::admission::{Admission, Owner};
use crate::setup;

/// The configuration as the gate read it. On error the built-in defaults stand in (the trail and the
/// runtime still need a value) and every decision is a refusal naming the error.
#[derive(Clone, Debug)]
pub struct ConfigLoad {
    pub config: PolicyConfig,
    pub source: String,
    /// The file it came from, when it came from one (kept with each admission for `strictctl status`).
    pub file: Option<PathBuf>,
    /// Or the runtime options' TOML it came from.
    pub body: Option<String>,
    pub error: Option<Arc<LoadError>>,
}

impl ConfigLoad {
    pub fn read(request: &ConfigRequest) -> ConfigLoad {
        match setup::resolve_config(request) {
            Ok((config, source)) => ConfigLoad {
                config,
                file: match &source {
                    setup::ConfigSource::File(path) => Some(path.clone()),
                    _ => None,
                },
                body: match &source {
                    setup::ConfigSource::RuntimeOptionsBody => request.runtime_body.clone(),
                    _ => None,
                },
                source: source.to_string(),
                error: None,
            },
            Err(error) => ConfigLoad {
                config: PolicyConfig::default(),
                file: None,
                body: None,
                source: request.to_string(),
                error: Some(Arc::new(LoadError::Config(error))),
            },
        }
    }
}

/// The directory the container's root is when no rootfs mounts are sent: `root.path` (relative to the
/// bundle).
fn root_directory(bundle: &Path, spec: &Spec) -> Option<PathBuf> {
    let root = spec.root().as_ref()?.path();
    Some(if root.is_absolute() {
        root.clone()
    } else {
        bundle.join(root)
    })
}

/// The spec with each bind source the pinning host named by its descriptor (`/proc/<this pid>/fd/<n>`)
/// named by the host path of the file judged: what `strictctl status` opens again later.
fn with_judged_paths(spec: &Spec) -> Spec {
    let mut spec = spec.clone();
    let placeholder = format!("/proc/{}/fd/", std::process::id());
    if let Some(mounts) = spec.mounts_mut() {
        for m in mounts.iter_mut() {
            let Some(source) = m.source().as_ref() else {
                continue;
            };
            if !source.starts_with(&placeholder) {
                continue;
            }
            if let Ok(path) = std::fs::read_link(source) {
                m.set_source(Some(path));
            }
        }
    }
    spec
}

/// An admitted container: the spec it runs with, and the execs its shim may allow without a gate.
#[derive(Debug)]
pub struct Checked {
    pub spec: Spec,
    pub exec_baseline: Option<ExecBaseline>,
}

pub struct Gate {
    mode: Mode,
    /// `[audit] record_allowed_execs`: every exec goes through a gate (and the trail).
    record_allowed_execs: bool,
    /// Why the configuration did not load (then every decision is a refusal).
    config_error: Option<Arc<LoadError>>,
    permissions: std::result::Result<Arc<Permissions>, Arc<LoadError>>,
    trail: Trail,
    /// What each admission record keeps besides the spec.
    namespace: String,
    config_file: Option<PathBuf>,
    config_body: Option<String>,
    runtime: AdmittedRuntime,
}

impl Gate {
    /// Loads the profiles and the host's connections (from snapctl, snapd, the static list or the
    /// embedded default) for the configuration.
    pub fn load(load: ConfigLoad, namespace: &str) -> Gate {
        let ConfigLoad {
            config,
            source,
            file,
            body,
            error,
        } = load;
        let permissions = match &error {
            Some(error) => Err(error.clone()),
            None => setup::load_catalog(&config, None)
                .map_err(LoadError::Profiles)
                .and_then(|catalog| {
                    setup::load_permissions(config.clone(), catalog, &[])
                        .map_err(LoadError::Connections)
                })
                .map_err(Arc::new),
        };
        match &permissions {
            Ok(permissions) => tracing::debug!(
                config = %source,
                mode = %config.mode,
                permissions = %permissions.plug_source,
                policy = %permissions.digest,
                "policy loaded"
            ),
            Err(error) => {
                tracing::error!(%error, "the policy does not load: every container will be refused")
            }
        }
        Gate {
            mode: config.mode,
            record_allowed_execs: config.audit.record_allowed_execs,
            trail: Trail::new(&config, &source, namespace, permissions.as_ref().ok()),
            config_error: error,
            permissions: permissions.map(Arc::new),
            namespace: namespace.to_string(),
            config_file: file,
            config_body: body,
            runtime: AdmittedRuntime::default_for(namespace),
        }
    }

    /// The configuration only, for an exec: an exec is judged against its container's spec, never against
    /// the host's connections, so an exec probe does not depend on snapd answering.
    pub fn load_for_exec(load: ConfigLoad, namespace: &str) -> Gate {
        if let Some(error) = &load.error {
            tracing::error!(%error, "the configuration does not load: the exec will be refused");
        }
        Gate {
            mode: load.config.mode,
            record_allowed_execs: load.config.audit.record_allowed_execs,
            trail: Trail::new(&load.config, &load.source, namespace, None),
            permissions: Err(Arc::new(LoadError::NotForExec)),
            config_error: load.error,
            namespace: namespace.to_string(),
            config_file: load.file,
            config_body: load.body,
            runtime: AdmittedRuntime::default_for(namespace),
        }
    }

    /// A gate over permissions loaded elsewhere (tests, benchmarks).
    pub fn from_permissions(permissions: Arc<Permissions>, namespace: &str) -> Gate {
        Gate {
            mode: permissions.config.mode,
            record_allowed_execs: permissions.config.audit.record_allowed_execs,
            trail: Trail::new(&permissions.config, "test", namespace, Some(&permissions)),
            config_error: None,
            permissions: Ok(permissions),
            namespace: namespace.to_string(),
            config_file: None,
            config_body: None,
            runtime: AdmittedRuntime::default_for(namespace),
        }
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Whether the profiles and connections loaded (an exec-only gate never loads them).
    pub fn policy_loaded(&self) -> bool {
        self.permissions.is_ok()
    }

    /// The policy's digest, where it loaded.
    pub fn policy_digest(&self) -> Option<&str> {
        self.permissions.as_ref().ok().map(|p| p.digest.as_str())
    }

    fn permissions(&self) -> Result<&Permissions> {
        self.permissions
            .as_deref()
            .map_err(|error| GateError::from(error.as_ref()))
    }

    /// The configuration, as an operator finds it: its file, or the runtime options.
    fn config_name(&self) -> String {
        match (&self.config_file, &self.config_body) {
            (Some(file), _) => file.display().to_string(),
            (None, Some(_)) => "the runtime options' configuration".into(),
            (None, None) => "the built-in configuration".into(),
        }
    }

    /// An undecided (refused) request, recorded and returned as the error.
    fn undecided(&self, subject: Subject, what: Recorded<'_>, error: String) -> GateError {
        self.trail.undecided(subject, what, &error);
        GateError::Undecided(error)
    }

    /// Gates the bundle's config.json and the root filesystem's mounts. Enforce: on success the spec in
    /// the bundle is the one that was allowed (narrowed if need be), its bind sources the files the gate
    /// judged, pinned in the bundle (`pins`). Complain: the spec stays as it came and the verdict is only
    /// recorded.
    pub fn check_bundle(
        &self,
        id: &str,
        bundle: &Path,
        pods: &[PodNamespaces],
        rootfs: &[RootfsMount],
    ) -> Result<Checked> {
        let path = bundle.join("config.json");
        let unknown = Identity::default();
        let bytes = std::fs::read(&path).map_err(|e| {
            self.undecided(
                Subject::Container,
                Recorded::new(id, None, &unknown),
                format!("reading {}: {e}", path.display()),
            )
        })?;
        let permissions = match self.permissions() {
            Ok(permissions) => permissions,
            Err(error) => {
                let identity = Identity::of_json(&bytes);
                let subject = identity.subject.unwrap_or(Subject::Container);
                self.trail.undecided(
                    subject,
                    Recorded::new(id, None, &identity),
                    &error.to_string(),
                );
                return Err(error);
            }
        };
        let mut document = parse_spec(&bytes).map_err(|e| {
            let identity = Identity::of_json(&bytes);
            self.undecided(
                identity.subject.unwrap_or(Subject::Container),
                Recorded::new(id, None, &identity),
                format!("{}: {e}", path.display()),
            )
        })?;
        let identity = Identity::of_spec(&document.spec);
        let subject = identity.subject.unwrap_or(Subject::Container);
        // In every mode: runc could not run it as asked.
        let cgroups_path = document
            .spec
            .linux()
            .as_ref()
            .and_then(|l| l.cgroups_path().clone());
        if let Some(mismatch) =
            cgroup_driver::mismatch(cgroups_path.as_deref(), self.runtime.systemd_cgroup, || {
                self.config_name()
            })
        {
            return Err(self.undecided(subject, Recorded::new(id, None, &identity), mismatch));
        }
        let original = (self.mode == Mode::Complain).then(|| document.spec.clone());
        // An app container of a pod may join its own pod's namespaces only, and mount its own pod's files.
        let pod = namespaces_for(&document.spec, pods);
        let owner = owner_for(id, &document.spec, pods);
        let judged_rootfs = strict_policy::rootfs::judge(rootfs, permissions);
        let layers = match &judged_rootfs {
            Ok(layers) if !layers.is_empty() => layers.clone(),
            _ => root_directory(bundle, &document.spec).into_iter().collect(),
        };
        let host = PinningHost::default();
        let context = Context {
            pod: pod.as_ref(),
            owner: owner.as_ref(),
            rootfs_layers: &layers,
        };
        let mut verdict = evaluate_document_in(&mut document, permissions, &host, &context);
        if let Err(violation) = judged_rootfs {
            verdict.violations.insert(0, *violation);
        }
        self.trail
            .conclude(subject, Recorded::new(id, None, &identity), &verdict);
        let outcome = verdict.outcome();
        if outcome == Outcome::Refused && original.is_none() {
            return Err(GateError::Refused(
                verdict.refusal_message().unwrap_or_default(),
            ));
        }
        // What runs, as judged, for `strictctl status` to judge again when the connections change.
        let complain = original.is_some();
        let admission = Admission {
            id: id.to_string(),
            namespace: self.namespace.clone(),
            mode: self.mode,
            config_file: self.config_file.clone(),
            config_body: self.config_body.clone(),
            runtime: self.runtime.clone(),
            admitted_at: crate::audit::record::now(),
            permissions_source: permissions.plug_source.clone(),
            policy_digest: permissions.digest.clone(),
            plugs: permissions.plugs.clone(),
            pod: pod.clone(),
            owner: owner.as_ref().map(Owner::from),
            rootfs_layers: layers.clone(),
            spec: original.unwrap_or_else(|| with_judged_paths(&document.spec)),
            revoked: Vec::new(),
        };
        if let Err(error) = admission.write(bundle) {
            // Complain mode runs the spec as it came whatever happens; enforce refuses what it could not
            // keep track of.
            if self.mode == Mode::Complain {
                tracing::error!(%error, "the admission record cannot be written: `strictctl status` will not see this container");
            } else {
                return Err(self.undecided(
                    subject,
                    Recorded::new(id, None, &identity),
                    error.to_string(),
                ));
            }
        }
        if complain {
            return Ok(self.checked(&bytes, admission.spec)); // as it came
        }
        let held = host.into_held();
        let pinned = pins::stage(&mut document.spec, bundle, &held).map_err(|e| {
            self.undecided(subject, Recorded::new(id, None, &identity), e.to_string())
        })?;
        if outcome == Outcome::Narrowed || pinned > 0 {
            write_atomically(&path, &strict_policy::document::to_json(&document.spec))
                .map_err(|e| GateError::Undecided(format!("writing the gated spec: {e}")))?;
        }
        Ok(self.checked(&bytes, document.spec))
    }

    /// An admitted spec, with the execs the shim may allow by itself unless every allowed exec is to be
    /// recorded.
    fn checked(&self, asked: &[u8], spec: Spec) -> Checked {
        let exec_baseline = if self.record_allowed_execs {
            None
        } else {
            exec_baseline::baseline(asked, &spec)
        };
        Checked {
            spec,
            exec_baseline,
        }
    }

    /// The spec the container runs with: its bundle's config.json, as the gate left it at Create.
    pub fn container_spec(&self, id: &str, bundle: &Path, subject: Subject) -> Result<Spec> {
        let path = bundle.join("config.json");
        let unknown = Identity::default();
        let what = Recorded::new(id, None, &unknown);
        let bytes = std::fs::read(&path).map_err(|e| {
            self.undecided(subject, what, format!("reading {}: {e}", path.display()))
        })?;
        serde_json::from_slice(&bytes)
            .map_err(|e| self.undecided(subject, what, format!("{}: {e}", path.display())))
    }

    /// What the runtime (`binary`) can do that changes decisions: seccomp filter flags (narrowed filters
    /// then log what they deny), recursive read-only mounts, the breakouts its version still has.
    pub fn set_runtime(&mut self, runtime: &AdmittedRuntime, features: &RuntimeFeatures) {
        self.runtime = runtime.clone();
        if let Ok(permissions) = &mut self.permissions {
            if let Some(permissions) = Arc::get_mut(permissions) {
                super::features::apply(permissions, &runtime.binary, features);
            }
        }
    }

    /// Gates an exec process (the JSON containerd sends) against the container's gated spec.
    pub fn check_exec(
        &self,
        id: &str,
        exec_id: &str,
        container: &Spec,
        process_json: &[u8],
    ) -> Result<Process> {
        let identity = Identity::of_spec(container);
        let what = Recorded::new(id, Some(exec_id), &identity);
        if let Some(error) = &self.config_error {
            return Err(self.undecided(Subject::Exec, what, error.to_string()));
        }
        let (process, unknown_fields) = parse_process(process_json).map_err(|e| {
            GateError::InvalidArgument(format!("the exec process spec is malformed: {e}"))
        })?;
        let mut verdict = evaluate_exec(container, &process);
        // runc reads the same bytes: a field the gate does not know may be one runc reads (Go matches
        // keys case-insensitively), so it is refused, not ignored.
        let unknown = unknown_fields.into_iter().map(|field| {
            Violation::new(
                "exec.unknown-field",
                field.clone(),
                field.clone(),
                format!("{field} is a field the strict gate does not know"),
            )
            .remedy("the gate cannot judge what it does not know; remove the field")
        });
        verdict.violations.splice(0..0, unknown);
        self.trail.conclude(Subject::Exec, what, &verdict);
        self.enforce(&verdict).map(|()| process)
    }

    /// Gates new resources: with them the container's spec must still be allowed unchanged (an update may
    /// not open devices or anything else the container could not have been created with).
    pub fn check_update(
        &self,
        id: &str,
        container: &Spec,
        resources_json: &[u8],
    ) -> Result<LinuxResources> {
        let identity = Identity::of_spec(container);
        let what = Recorded::new(id, None, &identity);
        let permissions = match self.permissions() {
            Ok(permissions) => permissions,
            Err(error) => return Err(self.undecided(Subject::Update, what, error.to_string())),
        };
        let resources: LinuxResources = serde_json::from_slice(resources_json).map_err(|e| {
            GateError::InvalidArgument(format!("the update's resources are malformed: {e}"))
        })?;
        let mut spec = container.clone();
        if let Some(linux) = spec.linux_mut() {
            linux.set_resources(Some(resources.clone()));
        }
        // The mounts were judged (and their sources pinned) at create; an update cannot change them.
        spec.set_mounts(None);
        let verdict = evaluate(&mut spec, permissions, &RealHost);
        // Only refusals count here: the container's own narrowing was applied (or recorded) at create.
        let verdict = Verdict {
            violations: verdict.violations,
            narrowed: Vec::new(),
        };
        self.trail.conclude(Subject::Update, what, &verdict);
        self.enforce(&verdict).map(|()| resources)
    }

    /// The refusal an exec's or update's verdict makes, in enforce mode only.
    fn enforce(&self, verdict: &Verdict) -> Result<()> {
        match verdict.refusal_message() {
            Some(message) if self.mode == Mode::Enforce => Err(GateError::Refused(message)),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use strict_policy::{Catalog, Source};

    use super::*;
    use crate::audit::record::Decision;
    use crate::audit::report::read_records;
    use crate::sources::snapd::SnapdError;
    use crate::sources::SourceError;

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../policy/tests/fixtures");

    fn gate(dir: &Path, mode: Mode) -> Gate {
        let mut config = PolicyConfig {
            mode,
            source: Source::Embedded,
            ..PolicyConfig::default()
        };
        config.audit.path = dir.join("audit/audit.log");
        let permissions =
            setup::load_permissions(config.clone(), Catalog::embedded().unwrap(), &[]).unwrap();
        let gate = Gate::load(
            ConfigLoad {
                config,
                source: "test.toml".into(),
                file: None,
                body: None,
                error: None,
            },
            "k8s.io",
        );
        // The loaded policy is the one the same configuration gives outside the gate.
        assert_eq!(gate.policy_digest(), Some(permissions.digest.as_str()));
        gate
    }

    fn loaded(config: PolicyConfig) -> Gate {
        Gate::load(
            ConfigLoad {
                config,
                source: "test".into(),
                file: None,
                body: None,
                error: None,
            },
            "default",
        )
    }

    /// A bundle with the fixture's config.json, annotated as CRI would.
    fn make_bundle(dir: &Path, fixture: &str) -> PathBuf {
        let bundle = dir.join(fixture);
        std::fs::create_dir_all(&bundle).unwrap();
        let text =
            std::fs::read_to_string(format!("{FIXTURES}/containerd/{fixture}.json")).unwrap();
        let mut spec: serde_json::Value = serde_json::from_str(&text).unwrap();
        spec["annotations"] = serde_json::json!({
            "io.kubernetes.cri.container-type": "container",
            "io.kubernetes.cri.sandbox-namespace": "shop",
            "io.kubernetes.cri.sandbox-name": "web-0",
            "io.kubernetes.cri.sandbox-uid": "0b5c",
            "io.kubernetes.cri.container-name": "nginx",
            "io.kubernetes.cri.image-name": "docker.io/library/nginx:1",
            "io.kubernetes.cri.runtime-handler": "strict-complain",
        });
        std::fs::write(bundle.join("config.json"), spec.to_string()).unwrap();
        bundle
    }

    #[test]
    fn the_rootfs_mounts_are_snapshots_or_the_container_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let gate = gate(dir.path(), Mode::Enforce);
        let bundle = make_bundle(dir.path(), "seccomp-default");
        let snapshots = "/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots";
        let overlay = RootfsMount {
            typ: "overlay".into(),
            source: "overlay".into(),
            options: vec![
                "index=off".into(),
                format!("workdir={snapshots}/2/work"),
                format!("upperdir={snapshots}/2/fs"),
                format!("lowerdir={snapshots}/1/fs"),
            ],
            ..RootfsMount::default()
        };
        gate.check_bundle("c1", &bundle, &[], &[overlay]).unwrap();
        let host_root = RootfsMount {
            typ: "bind".into(),
            source: "/".into(),
            options: vec!["rbind".into(), "rw".into()],
            ..RootfsMount::default()
        };
        let bundle = make_bundle(dir.path(), "seccomp-default");
        match gate.check_bundle("c2", &bundle, &[], &[host_root]) {
            Err(GateError::Refused(message)) => {
                assert!(
                    message.contains("rootfs[0] binds /, which is no snapshot"),
                    "{message}"
                )
            }
            other => panic!("expected a refusal, got {:?}", other.map(|_| ())),
        }
    }

    #[test]
    fn enforce_refuses_and_records_who_and_why() {
        let dir = tempfile::tempdir().unwrap();
        let gate = gate(dir.path(), Mode::Enforce);
        let bundle = make_bundle(dir.path(), "mount-etc-ro");
        let error = gate.check_bundle("c1", &bundle, &[], &[]).unwrap_err();
        assert!(matches!(error, GateError::Refused(_)), "{error}");
        let (records, bad) = read_records(&dir.path().join("audit/audit.log"), None).unwrap();
        assert_eq!((records.len(), bad), (1, 0));
        let record = &records[0];
        assert_eq!(record.decision, Decision::Refused);
        assert_eq!(record.mode, Mode::Enforce);
        assert_eq!(
            record.handler, "strict-complain",
            "CRI's handler annotation wins"
        );
        assert_eq!(record.namespace, "k8s.io");
        assert_eq!(record.container_id, "c1");
        assert_eq!(record.container_name.as_deref(), Some("nginx"));
        assert_eq!(record.pod.as_ref().unwrap().name, "web-0");
        assert_eq!(record.violations[0].rule, "mount.host-path");
        assert!(record.violations[0].message.contains("/etc"));
        assert_eq!(record.config, "test.toml");
        assert_eq!(record.policy_digest.len(), 64);
        assert!(record.permissions_source.contains("embedded"));
    }

    #[test]
    fn complain_runs_the_spec_unchanged_and_records_what_it_would_do() {
        let dir = tempfile::tempdir().unwrap();
        let gate = gate(dir.path(), Mode::Complain);
        let bundle = make_bundle(dir.path(), "mount-etc-ro");
        let before = std::fs::read(bundle.join("config.json")).unwrap();
        let spec = gate.check_bundle("c1", &bundle, &[], &[]).unwrap().spec;
        assert_eq!(std::fs::read(bundle.join("config.json")).unwrap(), before);
        assert!(spec
            .mounts()
            .as_ref()
            .unwrap()
            .iter()
            .any(|m| m.source().as_deref() == Some(Path::new("/etc"))));
        // Narrowings are recorded, not applied: the seccomp-default fixture keeps its filter.
        let narrowed = make_bundle(dir.path(), "seccomp-default");
        let before = std::fs::read(narrowed.join("config.json")).unwrap();
        gate.check_bundle("c2", &narrowed, &[], &[]).unwrap();
        assert_eq!(std::fs::read(narrowed.join("config.json")).unwrap(), before);

        let (records, _) = read_records(&dir.path().join("audit/audit.log"), None).unwrap();
        let decisions: Vec<Decision> = records.iter().map(|r| r.decision).collect();
        assert_eq!(decisions, [Decision::WouldRefuse, Decision::WouldNarrow]);
        assert!(!records[1].narrowings.is_empty());
        assert!(records.iter().all(|r| r.mode == Mode::Complain));
    }

    #[test]
    fn an_unloadable_policy_refuses_in_every_mode_and_says_why() {
        let dir = tempfile::tempdir().unwrap();
        for mode in [Mode::Enforce, Mode::Complain] {
            let mut config = PolicyConfig {
                mode,
                ..PolicyConfig::default()
            };
            config.audit.path = dir.path().join("audit.log");
            let gate = Gate::load(
                ConfigLoad {
                    config,
                    source: "/etc/containerd/strict.toml".into(),
                    file: None,
                    body: None,
                    error: Some(Arc::new(LoadError::Connections(SourceError::Snapd {
                        socket: "/run/snapd.socket".into(),
                        source: SnapdError::Closed,
                    }))),
                },
                "default",
            );
            let bundle = make_bundle(dir.path(), "default");
            let error = gate.check_bundle("c1", &bundle, &[], &[]).unwrap_err();
            assert!(matches!(error, GateError::Undecided(_)));
            assert!(error.to_string().contains("snapd"), "{error}");
        }
        let (records, _) = read_records(&dir.path().join("audit.log"), None).unwrap();
        assert_eq!(records.len(), 2);
        assert!(records.iter().all(|r| r.decision == Decision::Undecided
            && r.error.as_deref().unwrap().contains("snapd")
            && r.pod.as_ref().unwrap().name == "web-0"));
    }

    #[test]
    fn a_corrupt_profile_refuses_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let profiles = dir.path().join("profiles");
        let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../vendor-profiles");
        for sub in ["", "interfaces", "snaps"] {
            std::fs::create_dir_all(profiles.join(sub)).unwrap();
            for entry in std::fs::read_dir(source.join(sub)).unwrap() {
                let path = entry.unwrap().path();
                if path.extension().is_some_and(|e| e == "toml") {
                    std::fs::copy(&path, profiles.join(sub).join(path.file_name().unwrap()))
                        .unwrap();
                }
            }
        }
        std::fs::write(
            profiles.join("interfaces/kvm.toml"),
            "interface = \"kvm\"\ngrant = 7\n",
        )
        .unwrap();
        let mut config = PolicyConfig {
            source: Source::Embedded,
            profiles_dir: Some(profiles),
            ..PolicyConfig::default()
        };
        config.audit.path = dir.path().join("audit.log");
        let gate = loaded(config);
        let bundle = make_bundle(dir.path(), "default");
        let error = gate
            .check_bundle("c1", &bundle, &[], &[])
            .unwrap_err()
            .to_string();
        assert!(error.contains("the vendor profiles do not load"), "{error}");
        assert!(error.contains("interfaces/kvm.toml"), "{error}");
    }

    #[test]
    fn a_trail_that_cannot_be_written_does_not_change_the_decision() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = PolicyConfig {
            source: Source::Embedded,
            ..PolicyConfig::default()
        };
        // A path below a regular file can never be created.
        std::fs::write(dir.path().join("file"), "").unwrap();
        config.audit.path = dir.path().join("file/audit.log");
        let gate = loaded(config);
        let bundle = make_bundle(dir.path(), "default");
        gate.check_bundle("c1", &bundle, &[], &[]).unwrap();
    }

    #[test]
    fn exec_and_update_are_recorded_and_only_recorded_in_complain_mode() {
        let dir = tempfile::tempdir().unwrap();
        let gate = gate(dir.path(), Mode::Complain);
        let bundle = make_bundle(dir.path(), "default");
        let spec = gate.check_bundle("c1", &bundle, &[], &[]).unwrap().spec;
        let mut process = spec.process().clone().unwrap();
        let mut caps = process.capabilities().clone().unwrap();
        let mut bounding = caps.bounding().clone().unwrap();
        bounding.insert(oci_spec::runtime::Capability::SysAdmin);
        caps.set_bounding(Some(bounding));
        process.set_capabilities(Some(caps));
        let json = serde_json::to_vec(&process).unwrap();
        gate.check_exec("c1", "e1", &spec, &json).unwrap();
        let (records, _) = read_records(&dir.path().join("audit/audit.log"), None).unwrap();
        let exec = records.last().unwrap();
        assert_eq!(exec.subject, Subject::Exec);
        assert_eq!(exec.exec_id.as_deref(), Some("e1"));
        assert_eq!(exec.decision, Decision::WouldRefuse);

        let enforce = super::tests::gate(&dir.path().join("enforce"), Mode::Enforce);
        assert!(matches!(
            enforce.check_exec("c1", "e1", &spec, &json),
            Err(GateError::Refused(_))
        ));
    }
}
