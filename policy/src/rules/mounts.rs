//! Mounts: bind-mount sources against path grants, protected host paths, mount types and propagation.

use std::path::{Component, Path};

use oci_spec::runtime::Spec;

use super::Evaluation;
use crate::pattern::SplitPath;
use crate::permissions::Need;
use crate::profile::schema::{Access, DeviceAccess};
use crate::verdict::Violation;

/// Options that make a mount a bind mount whatever its type says.
fn is_bind(typ: Option<&str>, options: &[String]) -> bool {
    typ == Some("bind") || options.iter().any(|o| o == "bind" || o == "rbind")
}

/// The last of `ro`/`rw` wins, as in runc; `rro` (recursive read-only) counts as read-only.
fn access_of(options: &[String]) -> Access {
    options
        .iter()
        .rev()
        .find_map(|o| match o.as_str() {
            "ro" | "rro" => Some(Access::Ro),
            "rw" => Some(Access::Rw),
            _ => None,
        })
        .unwrap_or(Access::Rw)
}

fn is_shared(option: &str) -> bool {
    option == "shared" || option == "rshared"
}

/// The field a host path comes from, formatted only when a message needs it.
#[derive(Clone, Copy)]
enum Field {
    Root,
    Mount(usize),
}

impl std::fmt::Display for Field {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Field::Root => f.write_str("root"),
            Field::Mount(index) => write!(f, "mounts[{index}]"),
        }
    }
}

pub(crate) fn check(spec: &mut Spec, ev: &mut Evaluation, skip_privileged_effects: bool) {
    let mut shared_granted = false;
    if let Some(mounts) = spec.mounts_mut() {
        for (index, mount) in mounts.iter_mut().enumerate() {
            let options: &[String] = mount.options().as_deref().unwrap_or(&[]);
            let typ = mount.typ().as_deref();
            if is_bind(typ, options) {
                let shared = options.iter().any(|o| is_shared(o));
                let source = mount.source().as_deref().unwrap_or(Path::new(""));
                let access = access_of(options);
                if check_host_path(ev, Field::Mount(index), source, access, shared) && shared {
                    shared_granted = true;
                }
                continue;
            }
            let Some(typ) = typ.filter(|t| ev.perms.mount_types.contains(*t)) else {
                let shown = typ.unwrap_or("(none)").to_string();
                let mut allowed: Vec<&str> =
                    ev.perms.mount_types.iter().map(String::as_str).collect();
                allowed.sort_unstable();
                ev.refuse(
                    Violation::new(
                        "mount.type",
                        format!("mounts[{index}].type"),
                        shown.clone(),
                        format!(
                            "mounts[{index}] mounts a {shown} filesystem at {}",
                            mount.destination().display()
                        ),
                    )
                    .remedy(format!(
                        "only bind mounts and {} are allowed",
                        allowed.join(", ")
                    )),
                );
                continue;
            };
            // A writable sysfs or cgroupfs reaches host-wide kernel knobs: narrowed to read-only.
            let kernel_fs = matches!(typ, "sysfs" | "cgroup" | "cgroup2");
            if kernel_fs && !skip_privileged_effects && access_of(options) == Access::Rw {
                let mut narrowed: Vec<String> =
                    options.iter().filter(|o| *o != "rw").cloned().collect();
                narrowed.push("ro".into());
                ev.narrow(
                    "mount.read-only",
                    format!("mounts[{index}].options"),
                    options.join(","),
                    narrowed.join(","),
                );
                mount.set_options(Some(narrowed));
            }
        }
    }
    check_rootfs(spec, ev, shared_granted);
}

/// The root filesystem: relative to the bundle as containerd writes it, or an absolute host path that is
/// judged like a bind-mount source. Rootfs propagation `shared` needs a granted shared mount.
fn check_rootfs(spec: &Spec, ev: &mut Evaluation, shared_granted: bool) {
    if let Some(root) = spec.root() {
        let path = root.path();
        if path.is_absolute() {
            let access = if root.readonly() == Some(true) {
                Access::Ro
            } else {
                Access::Rw
            };
            check_host_path(ev, Field::Root, path, access, false);
        } else if path.components().any(|c| c == Component::ParentDir) {
            ev.refuse(
                Violation::new(
                    "mount.rootfs",
                    "root.path".into(),
                    path.display().to_string(),
                    format!("root.path {} leaves the bundle", path.display()),
                )
                .remedy("the root filesystem must lie inside the bundle"),
            );
        }
    }
    let propagation = spec
        .linux()
        .as_ref()
        .and_then(|l| l.rootfs_propagation().as_deref())
        .unwrap_or_default();
    if is_shared(propagation) && !shared_granted {
        ev.refuse(
            Violation::new(
                "mount.propagation",
                "linux.rootfsPropagation".into(),
                propagation.to_string(),
                format!("linux.rootfsPropagation {propagation} would share the container's mounts with the host"),
            )
            .remedy("it is allowed only with a Bidirectional volume that a connected interface permits"),
        );
    }
}

/// Judges one host path used as a mount source. Returns true when it is allowed.
fn check_host_path(
    ev: &mut Evaluation,
    field: Field,
    source: &Path,
    access: Access,
    shared: bool,
) -> bool {
    // Messages are only built when something is refused: this runs for every mount of every container.
    let shown = || source.display().to_string();
    let source_field = || match field {
        Field::Root => "root.path".to_string(),
        Field::Mount(_) => format!("{field}.source"),
    };
    if !source.is_absolute() {
        ev.refuse(
            Violation::new(
                "mount.host-path",
                source_field(),
                shown(),
                format!("{field} host path {:?} is not absolute", shown()),
            )
            .remedy("bind-mount sources must be absolute host paths"),
        );
        return false;
    }
    // A path through /proc (/proc/<pid>/root/...) resolves to something harmless-looking: judge the path
    // as written too.
    let split_source = SplitPath::new(source);
    // A kubelet subPath is a bind mount of some other host path: judge that path.
    if ev
        .perms
        .subpaths
        .iter()
        .any(|p| p.covers_split(&split_source))
    {
        let traced = match ev.host.mount_origin(source) {
            Ok(Some(origin)) if !ev.perms.subpaths.iter().any(|p| p.covers(&origin)) => Ok(origin),
            Ok(Some(origin)) => Err(format!("it exposes another subPath, {}", origin.display())),
            Ok(None) => Err("nothing is mounted there".to_string()),
            Err(e) => Err(format!("it cannot be traced through the mount table ({e})")),
        };
        return match traced {
            Ok(origin) => check_host_path(ev, field, &origin, access, shared),
            Err(why) => {
                ev.refuse(
                    Violation::new(
                        "mount.subpath",
                        source_field(),
                        shown(),
                        format!(
                            "{field} host path {} is a kubelet subPath, but {why}",
                            shown()
                        ),
                    )
                    .remedy("the gate cannot decide on a subPath whose origin it cannot find"),
                );
                false
            }
        };
    }
    let lexically_pod_owned = ev
        .perms
        .pod_owned
        .iter()
        .any(|p| p.covers_split(&split_source));
    let protected = if lexically_pod_owned {
        None
    } else {
        ev.perms
            .protected
            .iter()
            .find(|p| p.pattern.covers_split(&split_source))
    };
    if let Some(protected) = protected {
        ev.refuse(
            Violation::new(
                "mount.protected",
                source_field(),
                shown(),
                format!(
                    "{field} host path {} is protected: {}",
                    shown(),
                    protected.reason
                ),
            )
            .remedy("no interface can grant it"),
        );
        return false;
    }
    let resolved = match ev.host.resolve(source) {
        Ok(resolved) => resolved,
        Err(e) => {
            ev.refuse(
                Violation::new(
                    "mount.host-path",
                    source_field(),
                    shown(),
                    format!(
                        "{field} host path {} cannot be resolved on the host ({e})",
                        shown()
                    ),
                )
                .remedy("the gate cannot decide on a path it cannot resolve"),
            );
            return false;
        }
    };
    let described = || {
        if resolved == source {
            format!("{field} host path {} ({access})", shown())
        } else {
            format!(
                "{field} host path {} (resolves to {}, {access})",
                shown(),
                resolved.display()
            )
        }
    };

    // Most sources resolve to themselves: then the source's answers stand for the resolved path.
    let unchanged = resolved.as_os_str() == source.as_os_str();
    let split_resolved;
    let (split, pod_owned) = if unchanged {
        (&split_source, lexically_pod_owned)
    } else {
        split_resolved = SplitPath::new(&resolved);
        let pod_owned = ev
            .perms
            .pod_owned
            .iter()
            .any(|p| p.covers_split(&split_resolved));
        (&split_resolved, pod_owned)
    };
    if !pod_owned {
        if let Some(reason) = protected_reason(ev, split) {
            ev.refuse(
                Violation::new(
                    "mount.protected",
                    source_field(),
                    shown(),
                    format!("{} {reason}", described()),
                )
                .remedy("no interface can grant it"),
            );
            return false;
        }
    }

    if resolved.starts_with("/dev") && !pod_owned {
        return check_device_source(
            ev,
            &source_field(),
            &shown(),
            &described(),
            &resolved,
            access,
        );
    }

    if pod_owned && !shared {
        return true;
    }
    if ev.perms.path_grant_split(split, access, shared).is_some() {
        return true;
    }
    let need = Need::Path {
        path: &resolved,
        access,
        shared,
    };
    if shared && (pod_owned || ev.perms.path_grant_split(split, access, false).is_some()) {
        let violation = Violation::new(
            "mount.propagation",
            format!("{field}.options"),
            "rshared".into(),
            format!(
                "{} uses shared propagation, which would let it change the host's mounts",
                described()
            ),
        );
        ev.refuse_needing(violation, &need);
        return false;
    }
    let violation = Violation::new(
        "mount.host-path",
        source_field(),
        resolved.display().to_string(),
        format!("{} is outside the connected interfaces", described()),
    );
    ev.refuse_needing(violation, &need);
    false
}

/// Why `path` may not be mounted at all: it is, lies in, or contains a protected host path.
fn protected_reason(ev: &Evaluation, path: &SplitPath) -> Option<String> {
    for protected in &ev.perms.protected {
        if protected.pattern.covers_split(path) {
            return Some(format!("is protected: {}", protected.reason));
        }
    }
    for protected in &ev.perms.protected {
        // Whether it exists is asked of the host only for what lies below: that costs a system call.
        let below_and_exists = protected.pattern.lies_below_split(path)
            && (!protected.pattern.is_literal()
                || ev.host.exists(Path::new(protected.pattern.as_str())));
        if below_and_exists {
            return Some(format!(
                "contains {}, which is protected: {}",
                protected.pattern, protected.reason
            ));
        }
    }
    None
}

/// A bind mount of something under /dev: a device node is judged as a device, anything else (a directory
/// of nodes) needs a path grant, which no interface gives.
fn check_device_source(
    ev: &mut Evaluation,
    source_field: &str,
    shown: &str,
    described: &str,
    resolved: &Path,
    access: Access,
) -> bool {
    match ev.host.device_node(resolved) {
        Ok(Some(node)) => {
            let wanted = if access == Access::Rw { "rw" } else { "r" };
            let need = Need::Device {
                path: Some(resolved),
                kind: node.kind,
                major: Some(node.major),
                minor: Some(node.minor),
                access: DeviceAccess::parse(wanted).expect("valid"),
            };
            if ev.perms.device_grant(&need).is_some() {
                return true;
            }
            let violation = Violation::new(
                "mount.device",
                source_field.to_string(),
                shown.to_string(),
                format!(
                    "{described} is device {} {}:{}, outside the connected interfaces",
                    node.kind, node.major, node.minor
                ),
            );
            ev.refuse_needing(violation, &need);
            false
        }
        Ok(None) => {
            let need = Need::Path {
                path: resolved,
                access,
                shared: false,
            };
            if ev.perms.path_grant(resolved, access, false).is_some() {
                return true;
            }
            let violation = Violation::new(
                "mount.host-path",
                source_field.to_string(),
                shown.to_string(),
                format!("{described} is outside the connected interfaces"),
            );
            ev.refuse_needing(violation, &need);
            false
        }
        Err(e) => {
            ev.refuse(
                Violation::new(
                    "mount.device",
                    source_field.to_string(),
                    shown.to_string(),
                    format!("{described} cannot be examined on the host ({e})"),
                )
                .remedy("the gate cannot decide on a device it cannot examine"),
            );
            false
        }
    }
}
