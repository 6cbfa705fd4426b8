//! Host permissions: the base profile ∪ the workload grants of the connected plugs, with where each grant
//! came from, plus the node configuration. Built once, then read by every evaluation.

use std::path::Path;
use std::sync::Arc;

use oci_spec::runtime::{Capability, LinuxSeccompArg, LinuxSeccompArgBuilder};
use rustc_hash::{FxHashMap, FxHashSet};

use crate::arches::arch_mask;
use crate::config::{PolicyConfig, Protected};
use crate::error::Result;
use crate::pattern::{PathPattern, SplitPath};
use crate::profile::schema::*;
use crate::profile::{AttrValue, Catalog, Plug};

/// Which grant allowed something: `base` or a plug as messages name it.
pub type Source = Arc<str>;

/// One way a syscall is granted.
#[derive(Clone, Debug, PartialEq)]
pub enum SyscallGrant {
    /// With any arguments.
    Any,
    /// Only when one of these argument sets holds (each set: every comparison holds).
    Filtered(Vec<Vec<LinuxSeccompArg>>),
}

/// A granted syscall and the architectures (bits of `arches::ARCHES`) libseccomp knows it on.
#[derive(Clone, Debug)]
pub(crate) struct GrantedSyscall {
    pub grant: SyscallGrant,
    pub arches: u16,
}

/// What a spec asks of the host, in the terms grants are written in.
#[derive(Clone, Debug)]
pub enum Need<'a> {
    Path {
        path: &'a Path,
        access: Access,
        shared: bool,
    },
    Device {
        path: Option<&'a Path>,
        kind: DeviceType,
        major: Option<i64>,
        minor: Option<i64>,
        access: DeviceAccess,
    },
    Capability(Capability),
    Syscall(&'a str),
    Sysctl(&'a str),
    HostNamespace(HostNamespace),
    Privileged,
}

pub struct Permissions {
    pub catalog: Arc<Catalog>,
    pub config: PolicyConfig,
    /// The connected plugs, in the order given.
    pub plugs: Vec<Plug>,
    /// Where the plugs came from, for logs and `strictctl interfaces`.
    pub plug_source: String,
    /// SHA-256 over the profiles, the effective configuration and the connected plugs: the policy in force,
    /// recorded with every decision.
    pub digest: String,
    pub(crate) paths: Vec<(PathGrantDef, Source)>,
    pub(crate) devices: Vec<(DeviceGrantDef, Source)>,
    pub(crate) capabilities: FxHashMap<Capability, Source>,
    pub(crate) runtime_default_capabilities: FxHashSet<Capability>,
    pub(crate) syscalls: FxHashMap<String, GrantedSyscall>,
    /// The same, sorted by name.
    pub(crate) syscalls_sorted: Vec<(String, GrantedSyscall)>,
    pub(crate) syscall_errno: Vec<(String, u32)>,
    pub(crate) sysctls: Vec<(SysctlPattern, Source)>,
    pub(crate) host_namespaces: FxHashMap<HostNamespace, Source>,
    /// docker-support with privileged-containers: true is connected (the configuration must agree too).
    pub(crate) privileged_plug: Option<Source>,
    pub(crate) mount_types: FxHashSet<String>,
    pub(crate) pod_owned: Vec<crate::config::PodOwned>,
    /// The kubelet's subPath bind mounts, judged by the host path they expose.
    pub(crate) subpaths: Vec<PathPattern>,
    pub(crate) protected: Vec<Protected>,
    /// The OCI runtime applies seccomp filter flags (runc ≥ 1.2, crun): narrowed filters then ask the kernel
    /// to log denials (SECCOMP_FILTER_FLAG_LOG). runc 1.1 refuses any flag, so the shim turns this off.
    pub seccomp_log_flag: bool,
    /// The runtime makes a mount read-only recursively (`rro`: runc ≥ 1.1 and crun on Linux ≥ 5.12).
    /// Without it a read-only `rbind` over submounts is refused: they would stay writable below.
    pub recursive_read_only: bool,
    /// The runtime's known breakouts whose preconditions the gate can see (a symlink where the runtime
    /// expects a device node): refused while the runtime has them.
    pub unfixed_breakouts: Vec<&'static crate::runtime_advisories::Breakout>,
}

/// The digest of a policy: the profiles, the configuration as parsed (its `Debug` form is complete and
/// stable within a version) and the plugs.
fn policy_digest(catalog: &Catalog, config: &PolicyConfig, plugs: &[Plug]) -> String {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    hasher.update(env!("CARGO_PKG_VERSION"));
    hasher.update(&catalog.digest);
    hasher.update(format!("{config:?}"));
    for plug in plugs {
        hasher.update([0]);
        hasher.update(plug.connect_syntax());
    }
    crate::profile::hex(&hasher.finalize())
}

impl std::fmt::Debug for Permissions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let plugs: Vec<String> = self.plugs.iter().map(Plug::connect_syntax).collect();
        f.debug_struct("Permissions")
            .field("plugs", &plugs)
            .field("source", &self.plug_source)
            .finish_non_exhaustive()
    }
}

impl Permissions {
    /// Validates every plug against the catalog and folds the grants together.
    pub fn new(
        catalog: Arc<Catalog>,
        config: PolicyConfig,
        plugs: Vec<Plug>,
        plug_source: impl Into<String>,
    ) -> Result<Permissions> {
        let base = &catalog.base;
        let base_source: Source = Arc::from("base");
        let mut perms = Permissions {
            paths: base
                .paths
                .iter()
                .map(|p| (p.clone(), base_source.clone()))
                .collect(),
            devices: base
                .devices
                .iter()
                .map(|d| (d.clone(), base_source.clone()))
                .collect(),
            capabilities: FxHashMap::default(),
            runtime_default_capabilities: base
                .runtime_default_capabilities
                .iter()
                .cloned()
                .collect(),
            syscalls: FxHashMap::default(),
            syscalls_sorted: Vec::new(),
            syscall_errno: base
                .syscall_errno
                .iter()
                .flat_map(|e| e.names.iter().map(move |n| (n.0.clone(), e.errno)))
                .collect(),
            sysctls: base
                .sysctls
                .iter()
                .map(|s| (s.clone(), base_source.clone()))
                .collect(),
            host_namespaces: FxHashMap::default(),
            privileged_plug: None,
            mount_types: base.mount_types.iter().cloned().collect(),
            pod_owned: config.pod_owned(),
            subpaths: config.subpaths(),
            protected: config.protected(),
            seccomp_log_flag: true,
            recursive_read_only: true,
            unfixed_breakouts: Vec::new(),
            digest: policy_digest(&catalog, &config, &plugs),
            catalog: catalog.clone(),
            config,
            plugs: Vec::new(),
            plug_source: plug_source.into(),
        };
        let base_grant = GrantDef {
            capabilities: base.capabilities.clone(),
            syscalls: base.syscalls.clone(),
            syscall_filters: base.syscall_filters.clone(),
            ..GrantDef::default()
        };
        perms.add_grant(&base_grant, &base_source);
        for plug in &plugs {
            let grant = catalog.interface_grant(plug)?;
            let source: Source = Arc::from(plug.to_string());
            perms
                .paths
                .extend(grant.paths.iter().map(|p| (p.clone(), source.clone())));
            perms
                .devices
                .extend(grant.devices.iter().map(|d| (d.clone(), source.clone())));
            perms
                .sysctls
                .extend(grant.sysctls.iter().map(|s| (s.clone(), source.clone())));
            if grant.privileged {
                perms.privileged_plug = Some(source.clone());
            }
            perms.add_grant(&grant, &source);
        }
        let connected: FxHashSet<&str> = plugs.iter().map(|p| p.interface.as_str()).collect();
        for (namespace, alternatives) in &base.host_namespaces {
            if let Some(all) = alternatives
                .iter()
                .find(|all| !all.is_empty() && all.iter().all(|i| connected.contains(i.as_str())))
            {
                perms
                    .host_namespaces
                    .insert(*namespace, Arc::from(all.join(" + ")));
            }
        }
        for (name, granted) in perms.syscalls.iter_mut() {
            granted.arches = arch_mask(name);
        }
        perms.syscalls_sorted = perms
            .syscalls
            .iter()
            .map(|(name, granted)| (name.clone(), granted.clone()))
            .collect();
        perms
            .syscalls_sorted
            .sort_unstable_by(|(a, _), (b, _)| a.cmp(b));
        perms.plugs = plugs;
        Ok(perms)
    }

    fn add_grant(&mut self, grant: &GrantDef, source: &Source) {
        for cap in &grant.capabilities {
            self.capabilities
                .entry(*cap)
                .or_insert_with(|| source.clone());
        }
        for name in &grant.syscalls {
            self.syscalls.insert(
                name.0.clone(),
                GrantedSyscall {
                    grant: SyscallGrant::Any,
                    arches: 0,
                },
            );
        }
        for filter in &grant.syscall_filters {
            let args: Vec<LinuxSeccompArg> = filter.args.iter().map(seccomp_arg).collect();
            for name in &filter.names {
                let granted =
                    self.syscalls
                        .entry(name.0.clone())
                        .or_insert_with(|| GrantedSyscall {
                            grant: SyscallGrant::Filtered(Vec::new()),
                            arches: 0,
                        });
                match &mut granted.grant {
                    SyscallGrant::Any => {}
                    SyscallGrant::Filtered(sets) => sets.push(args.clone()),
                }
            }
        }
    }

    pub fn privileged_allowed(&self) -> bool {
        self.config.allow_privileged && self.privileged_plug.is_some()
    }

    pub fn path_grant(&self, path: &Path, access: Access, shared: bool) -> Option<&Source> {
        self.path_grant_split(&SplitPath::new(path), access, shared)
    }

    /// [`Self::path_grant`] on a path already split (as [`path_covers`] judges it).
    pub(crate) fn path_grant_split(
        &self,
        path: &SplitPath,
        access: Access,
        shared: bool,
    ) -> Option<&Source> {
        self.paths
            .iter()
            .find(|(g, _)| {
                g.access.covers(access)
                    && (!shared || g.propagation == Propagation::Shared)
                    && g.path.covers_split(path)
            })
            .map(|(_, s)| s)
    }

    pub fn device_grant(&self, need: &Need) -> Option<(&DeviceGrantDef, &Source)> {
        self.devices
            .iter()
            .find(|(g, _)| device_covers(g, need))
            .map(|(g, s)| (g, s))
    }

    /// A grant for a bind mount of the host's own device node: as [`Self::device_grant`], without the
    /// grants for nodes each container has an instance of its own of.
    pub fn host_device_grant(&self, need: &Need) -> Option<(&DeviceGrantDef, &Source)> {
        self.devices
            .iter()
            .find(|(g, _)| g.host_bind && device_covers(g, need))
            .map(|(g, s)| (g, s))
    }

    pub fn capability(&self, cap: Capability) -> Option<&Source> {
        self.capabilities.get(&cap)
    }

    pub fn sysctl(&self, name: &str) -> Option<&Source> {
        self.sysctls
            .iter()
            .find(|(p, _)| p.matches(name))
            .map(|(_, s)| s)
    }

    /// `network (network-control)`, ... for display.
    pub fn host_namespaces_granted(&self) -> Vec<String> {
        HostNamespace::ALL
            .iter()
            .filter_map(|n| self.host_namespaces.get(n).map(|s| format!("{n} ({s})")))
            .collect()
    }

    pub fn host_namespace(&self, namespace: HostNamespace) -> Option<&Source> {
        self.host_namespaces.get(&namespace)
    }

    /// The syscall names a container may call, sorted.
    pub fn syscall_names(&self) -> Vec<&str> {
        self.syscalls_sorted
            .iter()
            .map(|(name, _)| name.as_str())
            .collect()
    }

    /// Plugs that would grant `need`, as alternatives (each alternative: plugs to connect together).
    /// Looks through every interface of the catalog, connected or not.
    pub fn suggest(&self, need: &Need) -> Vec<Vec<Plug>> {
        suggest(&self.catalog, need)
    }
}

fn seccomp_arg(def: &SyscallArgDef) -> LinuxSeccompArg {
    let mut builder = LinuxSeccompArgBuilder::default()
        .index(def.index as usize)
        .value(def.value)
        .op(def.op);
    if let Some(two) = def.value_two {
        builder = builder.value_two(two);
    }
    builder.build().expect("every field is set")
}

pub(crate) fn path_covers(grant: &PathGrantDef, need: &Need) -> bool {
    match need {
        Need::Path {
            path,
            access,
            shared,
        } => {
            grant.path.covers(path)
                && grant.access.covers(*access)
                && (!shared || grant.propagation == Propagation::Shared)
        }
        _ => false,
    }
}

pub(crate) fn device_covers(grant: &DeviceGrantDef, need: &Need) -> bool {
    let Need::Device {
        path,
        kind,
        major,
        minor,
        access,
    } = need
    else {
        return false;
    };
    if grant.kind != *kind || !grant.access.covers(*access) {
        return false;
    }
    let number_ok = |granted: Option<i64>, wanted: Option<i64>| match (granted, wanted) {
        (None, _) => true,
        (Some(g), Some(w)) => g == w,
        (Some(_), None) => false, // a wildcard request needs a wildcard grant
    };
    let numbers = number_ok(grant.major, *major) && number_ok(grant.minor, *minor);
    match (&grant.path, path) {
        // A node at a path: the grant's pattern must name it; numbers the grant fixes must agree.
        (Some(pattern), Some(path)) => pattern.matches_exactly(path) && numbers,
        // A cgroup rule (no path): matched by numbers, which a path-only grant does not fix.
        (_, None) => numbers && (grant.major.is_some() || grant.path.is_none()),
        (None, Some(_)) => false,
    }
}

fn grant_covers(grant: &GrantDef, need: &Need) -> bool {
    match need {
        Need::Path { .. } => grant.paths.iter().any(|g| path_covers(g, need)),
        Need::Device { .. } => grant.devices.iter().any(|g| device_covers(g, need)),
        Need::Capability(cap) => grant.capabilities.contains(cap),
        Need::Syscall(name) => {
            grant.syscalls.iter().any(|s| s.0 == *name)
                || grant
                    .syscall_filters
                    .iter()
                    .any(|f| f.names.iter().any(|s| s.0 == *name))
        }
        Need::Sysctl(name) => grant.sysctls.iter().any(|p| p.matches(name)),
        Need::Privileged => grant.privileged,
        Need::HostNamespace(_) => false,
    }
}

fn suggest(catalog: &Catalog, need: &Need) -> Vec<Vec<Plug>> {
    if let Need::HostNamespace(namespace) = need {
        return catalog
            .base
            .host_namespaces
            .get(namespace)
            .map(|alternatives| {
                alternatives
                    .iter()
                    .map(|all| all.iter().map(|i| Plug::bare(i)).collect())
                    .collect()
            })
            .unwrap_or_default();
    }
    let mut out = Vec::new();
    for (name, def) in &catalog.interfaces {
        if grant_covers(&def.grant, need) {
            out.push(vec![Plug::bare(name)]);
            continue;
        }
        for (attr, attr_def) in &def.attributes {
            let candidates: Vec<Plug> = match attr_def.kind {
                AttributeType::Enum | AttributeType::Bool => attr_def
                    .grants
                    .iter()
                    .filter(|(_, g)| grant_covers(g, need))
                    .map(|(value, _)| {
                        let value = match attr_def.kind {
                            AttributeType::Bool => AttrValue::Bool(value == "true"),
                            _ => AttrValue::Str(value.clone()),
                        };
                        Plug::with(name, attr, value)
                    })
                    .collect(),
                AttributeType::Paths | AttributeType::HomePaths => {
                    path_attribute_suggestion(attr_def, need)
                        .map(|value| Plug::with(name, attr, AttrValue::Str(value)))
                        .into_iter()
                        .collect()
                }
                AttributeType::DevicePath => match need {
                    Need::Device {
                        path: Some(path),
                        kind,
                        ..
                    } if Some(*kind) == attr_def.device_type => {
                        let text = path.display().to_string();
                        let plug = Plug::with(name, attr, AttrValue::Str(text));
                        catalog
                            .interface_grant(&plug)
                            .ok()
                            .map(|_| plug)
                            .into_iter()
                            .collect()
                    }
                    _ => Vec::new(),
                },
                AttributeType::String => Vec::new(),
            };
            if let Some(first) = candidates.into_iter().next() {
                out.push(vec![first]);
                break;
            }
        }
    }
    out
}

/// For a path need, the attribute value that would grant it (`/etc` for system-files read, `$HOME/.kube`
/// for personal-files), when the attribute's access is enough.
fn path_attribute_suggestion(attr_def: &AttributeDef, need: &Need) -> Option<String> {
    let Need::Path {
        path,
        access,
        shared,
    } = need
    else {
        return None;
    };
    if *shared || !attr_def.access?.covers(*access) {
        return None;
    }
    let text = path.to_str()?;
    match attr_def.kind {
        AttributeType::Paths if text != "/" => Some(text.to_string()),
        // `$HOME` is root's home for the snap's daemons: a path in another user's home has no plug.
        AttributeType::HomePaths => Some(format!("$HOME/{}", text.strip_prefix("/root/")?)),
        _ => None,
    }
}
