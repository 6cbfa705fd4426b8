//! The operator's policy settings: what the profiles cannot know about one node.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};

use crate::error::{Error, Result};
use crate::pattern::PathPattern;

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolicyConfig {
    /// The host snap whose plugs apply (its plug list is `vendor-profiles/snaps/<snap>.toml`).
    pub snap: String,
    /// `enforce` refuses and narrows; `complain` (snapd's devmode) only records what it would have done.
    pub mode: Mode,
    /// The handler name recorded in the audit trail when the spec does not carry CRI's
    /// `io.kubernetes.cri.runtime-handler` annotation (e.g. containers started with `ctr`).
    pub handler: String,
    /// Where the host's connected plugs come from (see [`Source`]).
    pub source: Source,
    /// snapd's REST API socket (source `snapd`).
    pub snapd_socket: PathBuf,
    /// How long snapd or snapctl may take to answer before the container is refused.
    #[serde(deserialize_with = "duration")]
    pub source_timeout: Duration,
    /// The host's connected plugs as a static list (`INTERFACE[:ATTR=VALUE,...]`; source `static`).
    pub connections: Option<Vec<String>>,
    /// Privileged containers also need docker-support with `privileged-containers: true` connected.
    pub allow_privileged: bool,
    /// OCI hooks run on the host; only these executables may appear in a spec's hooks.
    pub allowed_hooks: Vec<PathBuf>,
    /// Replaces an unconfined (empty) AppArmor profile, e.g. `cri-containerd.apparmor.d`.
    pub apparmor_profile: Option<String>,
    /// Load profiles from here instead of the ones compiled in.
    pub profiles_dir: Option<PathBuf>,
    pub node: NodeLayout,
    /// How the shim runs containers (not used by the policy itself).
    pub runtime: RuntimeSettings,
    /// The audit trail: one JSON line per decision.
    pub audit: AuditSettings,
    /// What `strictctl reconcile` does about a running container that holds what the connections no
    /// longer grant (a plug was disconnected after it was admitted).
    pub on_revoke: OnRevoke,
}

/// What `strictctl reconcile` does about a container whose admission no longer holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OnRevoke {
    /// Record it in the audit trail; the container keeps running as it is.
    #[default]
    Report,
    /// Take the revoked devices out of its device cgroup where that is all it holds; otherwise stop it.
    Narrow,
    /// Stop it, so its pod restarts under the connections now.
    Stop,
}

impl std::fmt::Display for OnRevoke {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            OnRevoke::Report => "report",
            OnRevoke::Narrow => "narrow",
            OnRevoke::Stop => "stop",
        })
    }
}

/// Whether verdicts are enforced.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    #[default]
    Enforce,
    Complain,
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Mode::Enforce => "enforce",
            Mode::Complain => "complain",
        })
    }
}

/// Where the host's connected plugs come from. `auto` takes the first that applies: `snapctl` inside a
/// snap (`SNAP_NAME` set), `snapd` when its socket exists, `static` when `connections` is set, else
/// `embedded` (the snap's default connections compiled into the shim).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    #[default]
    Auto,
    Snapctl,
    Snapd,
    Static,
    Embedded,
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Source::Auto => "auto",
            Source::Snapctl => "snapctl",
            Source::Snapd => "snapd",
            Source::Static => "static",
            Source::Embedded => "embedded",
        })
    }
}

/// The audit trail's file and its size-based rotation.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditSettings {
    /// The JSON-lines file; an empty path turns the trail off (decisions still reach containerd's log).
    pub path: PathBuf,
    /// Rotate when the file would grow past this (`10MiB`, `512KiB`, or bytes).
    #[serde(deserialize_with = "byte_size")]
    pub max_size: u64,
    /// Rotated files kept (`audit.log.1` ... `audit.log.N`).
    pub keep: u32,
    /// Record every allowed exec too. Off: an exec that asks for nothing beyond its container's own
    /// process (every exec probe) is allowed by the shim from the container's admission, without a gate
    /// and without a record; any other exec is judged and recorded.
    pub record_allowed_execs: bool,
}

/// Where the audit trail goes by default: inside a snap its writable `$SNAP_COMMON`, else /var/log.
pub fn default_audit_path() -> PathBuf {
    match std::env::var_os("SNAP_COMMON") {
        Some(common) => Path::new(&common).join("var/log/strict/audit.log"),
        None => PathBuf::from("/var/log/strict/audit.log"),
    }
}

impl Default for AuditSettings {
    fn default() -> Self {
        AuditSettings {
            path: default_audit_path(),
            max_size: 10 * 1024 * 1024,
            keep: 5,
            record_allowed_execs: false,
        }
    }
}

fn duration<'de, D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Duration, D::Error> {
    let text = String::deserialize(deserializer)?;
    humantime::parse_duration(&text).map_err(|e| {
        serde::de::Error::custom(format!("{text:?} is not a duration like \"5s\": {e}"))
    })
}

fn byte_size<'de, D: Deserializer<'de>>(deserializer: D) -> std::result::Result<u64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Size {
        Bytes(u64),
        Text(String),
    }
    match Size::deserialize(deserializer)? {
        Size::Bytes(n) => Ok(n),
        Size::Text(text) => text
            .parse::<bytesize::ByteSize>()
            .map(|size| size.as_u64())
            .map_err(|e| {
                serde::de::Error::custom(format!("{text:?} is not a size like \"10MiB\": {e}"))
            }),
    }
}

/// The OCI runtime the shim drives.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RuntimeSettings {
    /// runc, or crun; a bare name is looked up in PATH.
    pub binary: PathBuf,
    /// The runtime's state directory; one subdirectory per containerd namespace.
    pub root: PathBuf,
    /// Let the runtime manage cgroups through systemd (`--systemd-cgroup`).
    pub systemd_cgroup: bool,
}

impl Default for RuntimeSettings {
    fn default() -> Self {
        RuntimeSettings {
            binary: "runc".into(),
            root: "/run/containerd/runc".into(),
            systemd_cgroup: false,
        }
    }
}

impl Default for PolicyConfig {
    fn default() -> Self {
        PolicyConfig {
            snap: "microk8s".into(),
            mode: Mode::Enforce,
            handler: "strict".into(),
            source: Source::Auto,
            snapd_socket: "/run/snapd.socket".into(),
            source_timeout: Duration::from_secs(5),
            connections: None,
            allow_privileged: false,
            allowed_hooks: Vec::new(),
            apparmor_profile: None,
            profiles_dir: None,
            node: NodeLayout::default(),
            runtime: RuntimeSettings::default(),
            audit: AuditSettings::default(),
            on_revoke: OnRevoke::default(),
        }
    }
}

/// Where the kubelet and containerd keep their state on this node. Pod-owned files below these roots are
/// allowed as mount sources; everything else below them is protected.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NodeLayout {
    pub kubelet_roots: Vec<PathBuf>,
    pub containerd_roots: Vec<PathBuf>,
    pub containerd_states: Vec<PathBuf>,
    /// Further host paths no container may mount, whatever is connected.
    pub protected: Vec<String>,
}

impl Default for NodeLayout {
    fn default() -> Self {
        const MICROK8S_COMMON: &str = "/var/snap/microk8s/common";
        NodeLayout {
            kubelet_roots: vec![
                "/var/lib/kubelet".into(),
                format!("{MICROK8S_COMMON}/var/lib/kubelet").into(),
            ],
            containerd_roots: vec![
                "/var/lib/containerd".into(),
                format!("{MICROK8S_COMMON}/var/lib/containerd").into(),
            ],
            containerd_states: vec![
                "/run/containerd".into(),
                format!("{MICROK8S_COMMON}/run/containerd").into(),
            ],
            protected: Vec::new(),
        }
    }
}

/// A host path no mount may reach, with the reason given in refusals.
#[derive(Clone, Debug)]
pub struct Protected {
    pub pattern: PathPattern,
    pub reason: &'static str,
}

/// Which of a pod's names a pod-owned path carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PodKey {
    /// The pod's uid (the kubelet's `pods/<uid>/`).
    Uid,
    /// The sandbox id (containerd's `sandboxes/<id>/`).
    SandboxId,
}

/// Host paths a pod owns: the pattern, and the component (counted from the root, from 0) that names the
/// pod.
#[derive(Clone, Debug)]
pub struct PodOwned {
    pub pattern: PathPattern,
    pub key: PodKey,
    pub component: usize,
}

impl PodOwned {
    /// Whether `path` is one of `owner`'s own files.
    pub fn owned_by(&self, path: &Path, owner: &crate::host::PodOwner) -> bool {
        self.pattern.covers(path) && self.names(path.as_os_str().as_encoded_bytes(), owner)
    }

    /// Whether the pod component of `path` (bytes of an absolute path) is `owner`'s name.
    pub(crate) fn names(&self, path: &[u8], owner: &crate::host::PodOwner) -> bool {
        let wanted = match self.key {
            PodKey::Uid => owner.pod_uid.as_deref(),
            PodKey::SandboxId => Some(owner.sandbox_id.as_str()),
        };
        let named = path
            .split(|b| *b == b'/')
            .filter(|part| !part.is_empty() && *part != b".")
            .nth(self.component);
        matches!((wanted, named), (Some(w), Some(n)) if !w.is_empty() && w.as_bytes() == n)
    }
}

impl PolicyConfig {
    pub fn load(path: &Path) -> Result<PolicyConfig> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&path.display().to_string(), &text)
    }

    pub fn parse(file: &str, text: &str) -> Result<PolicyConfig> {
        let config: PolicyConfig = toml::from_str(text)
            .map_err(|e| Error::profile(file, crate::error::toml_message(text, &e)))?;
        config.validate(file)?;
        Ok(config)
    }

    fn validate(&self, file: &str) -> Result<()> {
        let roots = self
            .node
            .kubelet_roots
            .iter()
            .chain(&self.node.containerd_roots)
            .chain(&self.node.containerd_states)
            .chain(&self.allowed_hooks)
            .chain(std::iter::once(&self.snapd_socket))
            .chain(std::iter::once(&self.audit.path).filter(|p| !p.as_os_str().is_empty()));
        for path in roots {
            if !path.is_absolute() {
                return Err(Error::profile(
                    file,
                    format!("path {} is not absolute", path.display()),
                ));
            }
        }
        for plug in self.connections.iter().flatten() {
            crate::Plug::parse(plug)
                .map_err(|e| Error::profile(file, format!("key `connections`: {e}")))?;
        }
        if self.source == Source::Static && self.connections.is_none() {
            return Err(Error::profile(
                file,
                "key `source`: \"static\" needs the list of plugs in `connections`",
            ));
        }
        if self.source_timeout.is_zero() {
            return Err(Error::profile(
                file,
                "key `source_timeout`: must be more than 0",
            ));
        }
        if self.handler.is_empty() {
            return Err(Error::profile(file, "key `handler`: must not be empty"));
        }
        for pattern in &self.node.protected {
            PathPattern::parse(pattern)
                .map_err(|e| Error::profile(file, format!("key `node.protected`: {e}")))?;
        }
        Ok(())
    }

    /// Mount sources a pod owns: its kubelet volumes, etc-hosts and termination logs, and containerd's
    /// per-sandbox hostname, hosts, resolv.conf and shm; each names its pod (uid or sandbox id) at one
    /// component, which must be the container's own pod.
    pub fn pod_owned(&self) -> Vec<PodOwned> {
        let mut out = Vec::new();
        let depth = |root: &Path| root.components().count() - 1;
        for root in &self.node.kubelet_roots {
            for tail in [
                "pods/*/volumes/*/*",
                "pods/*/etc-hosts",
                "pods/*/containers/*/*",
            ] {
                out.push((
                    format!("{}/{tail}", root.display()),
                    PodKey::Uid,
                    depth(root) + 1,
                ));
            }
        }
        for root in &self.node.containerd_roots {
            for file in ["hostname", "hosts", "resolv.conf"] {
                out.push((
                    format!(
                        "{}/io.containerd.grpc.v1.cri/sandboxes/*/{file}",
                        root.display()
                    ),
                    PodKey::SandboxId,
                    depth(root) + 2,
                ));
            }
        }
        for state in &self.node.containerd_states {
            out.push((
                format!(
                    "{}/io.containerd.grpc.v1.cri/sandboxes/*/shm",
                    state.display()
                ),
                PodKey::SandboxId,
                depth(state) + 2,
            ));
        }
        out.into_iter()
            .filter_map(|(p, key, component)| {
                Some(PodOwned {
                    pattern: PathPattern::parse(&p).ok()?,
                    key,
                    component,
                })
            })
            .collect()
    }

    /// The kubelet's bind mounts for volumes' `subPath`s: each exposes some other host path, found in the
    /// mount table.
    pub fn subpaths(&self) -> Vec<PathPattern> {
        self.node
            .kubelet_roots
            .iter()
            .filter_map(|root| {
                PathPattern::parse(&format!("{}/pods/*/volume-subpaths/*/*/*", root.display())).ok()
            })
            .collect()
    }

    /// Host paths refused as mount sources (or as anything a source contains), whatever is connected.
    pub fn protected(&self) -> Vec<Protected> {
        let mut out: Vec<(String, &'static str)> = Vec::new();
        for root in &self.node.kubelet_roots {
            out.push((
                root.display().to_string(),
                "the kubelet's state and credentials",
            ));
        }
        for root in self
            .node
            .containerd_roots
            .iter()
            .chain(&self.node.containerd_states)
        {
            out.push((root.display().to_string(), "containerd's state and sockets"));
        }
        let fixed: [(&str, &'static str); 21] = [
            (
                "/etc/kubernetes",
                "the kubelet's configuration and static pods",
            ),
            (
                "/etc/containerd",
                "containerd's and the strict shim's configuration",
            ),
            (
                "/var/snap/microk8s",
                "the MicroK8s snap's configuration and credentials",
            ),
            (
                "/snap",
                "snap packages, including the runtime's own binaries",
            ),
            ("/var/lib/snapd", "snapd's state"),
            ("/run/snapd.socket", "snapd's API"),
            ("/run/snapd-snap.socket", "snapd's API"),
            ("/run/runc", "runc's state"),
            ("/run/docker.sock", "the Docker API"),
            ("/run/crio", "CRI-O's state"),
            (
                "/usr/local/bin/containerd-shim-strict-v2",
                "the strict shim itself",
            ),
            (
                "/usr/bin/containerd-shim-strict-v2",
                "the strict shim itself",
            ),
            ("/usr/local/bin/strictctl", "the strict shim's tools"),
            (
                "/proc",
                "the host's processes (/proc/<pid>/root and the like)",
            ),
            ("/sys/fs/cgroup", "the host's cgroups"),
            ("/sys/kernel/security", "the host's security modules"),
            ("/sys/firmware/efi", "firmware variables"),
            ("/dev/mem", "physical memory"),
            ("/boot", "the host's kernels and boot loader"),
            (
                "/root/snap",
                "other snaps' data (snapd keeps ~/snap out of home)",
            ),
            (
                "/home/*/snap",
                "other snaps' data (snapd keeps ~/snap out of home)",
            ),
        ];
        out.extend(fixed.iter().map(|(p, r)| (p.to_string(), *r)));
        out.extend(
            self.node
                .protected
                .iter()
                .map(|p| (p.clone(), "protected by the node configuration")),
        );
        out.into_iter()
            .filter_map(|(path, reason)| {
                PathPattern::parse(&path)
                    .ok()
                    .map(|pattern| Protected { pattern, reason })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_and_bad_values_name_the_key() {
        let err = PolicyConfig::parse("strict.toml", "allow_privleged = true").unwrap_err();
        assert!(err.to_string().contains("allow_privleged"), "{err}");
        assert!(err.to_string().contains("line 1"), "{err}");
        let err = PolicyConfig::parse("strict.toml", "[node]\nkubelet_roots = [\"relative\"]")
            .unwrap_err();
        assert!(err.to_string().contains("not absolute"), "{err}");
    }

    #[test]
    fn defaults_cover_microk8s() {
        let config = PolicyConfig::default();
        let owned = config.pod_owned();
        let volume = Path::new(
            "/var/snap/microk8s/common/var/lib/kubelet/pods/0a/volumes/kubernetes.io~configmap/cfg",
        );
        let owner = |uid: &str| crate::host::PodOwner {
            sandbox_id: "s1".into(),
            pod_uid: Some(uid.into()),
        };
        assert!(owned.iter().any(|p| p.owned_by(volume, &owner("0a"))));
        // Another pod's volume is not this pod's.
        assert!(!owned.iter().any(|p| p.owned_by(volume, &owner("0b"))));
        let shm = Path::new("/run/containerd/io.containerd.grpc.v1.cri/sandboxes/s1/shm");
        assert!(owned.iter().any(|p| p.owned_by(shm, &owner("0a"))));
        let other_shm = Path::new("/run/containerd/io.containerd.grpc.v1.cri/sandboxes/s2/shm");
        assert!(!owned.iter().any(|p| p.owned_by(other_shm, &owner("0a"))));
        assert!(!owned.iter().any(|p| p
            .pattern
            .covers(Path::new("/var/lib/kubelet/pki/kubelet.key"))));
    }
}
