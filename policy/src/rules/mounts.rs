//! Mounts: bind-mount sources against path grants, protected host paths, mount types and propagation.

use std::path::{Component, Path};

use oci_spec::runtime::{Mount, Spec};

use super::evaluation::Evaluation;
use super::mount_options::unknown_option;
use crate::host::{DeviceNode, FileKind, OpenedSource};
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
            if options.iter().any(|o| o == "remount") {
                // A remount changes a mount that already exists, whichever it is, not a new one.
                ev.refuse(Violation::new(
                    "mount.remount",
                    format!("mounts[{index}].options"),
                    "remount".into(),
                    format!(
                        "mounts[{index}] remounts {} instead of mounting something new there",
                        mount.destination().display()
                    ),
                ));
                continue;
            }
            let bind = is_bind(typ, options);
            if let Some(option) = unknown_option(if bind { None } else { typ }, options) {
                ev.refuse(
                    Violation::new(
                        "mount.option",
                        format!("mounts[{index}].options"),
                        option.to_string(),
                        format!(
                            "mounts[{index}] ({} at {}) has the option {option}, which the gate does not know",
                            if bind { "bind" } else { typ.unwrap_or("(none)") },
                            mount.destination().display()
                        ),
                    )
                    .remedy("the runtime would hand it to the kernel unjudged; no interface grants this"),
                );
                continue;
            }
            if bind {
                let shared = options.iter().any(|o| is_shared(o));
                let source = mount.source().as_deref().unwrap_or(Path::new(""));
                let access = access_of(options);
                let Some(opened) = check_host_path(ev, Field::Mount(index), source, access, shared)
                else {
                    continue;
                };
                shared_granted |= shared;
                // Only a directory has anything mounted below it.
                let directory = opened.kind == FileKind::Directory;
                if directory && access == Access::Ro && options.iter().any(|o| o == "rbind") {
                    keep_read_only_below(ev, index, mount, &opened.resolved);
                }
                // The runtime mounts the very file judged, held open by the gate, not the name again.
                if let Some(pinned) = opened.pinned {
                    mount.set_source(Some(pinned));
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
            if let Some(violation) = misplaced(index, typ, mount.destination(), options) {
                ev.refuse(violation);
                continue;
            }
            // A writable sysfs or cgroupfs reaches host-wide kernel knobs: narrowed to read-only.
            let kernel_fs = matches!(typ, "sysfs" | "cgroup" | "cgroup2");
            if kernel_fs && !skip_privileged_effects && access_of(options) == Access::Rw {
                let mut narrowed: Vec<String> =
                    options.iter().filter(|o| *o != "rw").cloned().collect();
                narrowed.push("ro".into());
                narrow_options(ev, index, mount, narrowed);
            }
        }
    }
    check_rootfs(spec, ev, shared_granted);
}

/// Replaces a mount's options with `narrowed`, read-only in some way the old ones were not, and records it.
fn narrow_options(ev: &mut Evaluation, index: usize, mount: &mut Mount, narrowed: Vec<String>) {
    let from = mount.options().as_deref().unwrap_or(&[]).join(",");
    ev.narrow(
        "mount.read-only",
        format!("mounts[{index}].options"),
        from,
        narrowed.join(","),
    );
    mount.set_options(Some(narrowed));
}

/// A read-only `rbind` carries the mounts below its source along, and `ro` makes only the top one
/// read-only: over submounts it becomes `rro` (recursive read-only), or is refused where the runtime cannot.
fn keep_read_only_below(ev: &mut Evaluation, index: usize, mount: &mut Mount, resolved: &Path) {
    let options = mount.options().clone().unwrap_or_default();
    if options.iter().any(|o| o == "rro") {
        return;
    }
    let refusal = |why: String| {
        Violation::new(
            "mount.read-only",
            format!("mounts[{index}].options"),
            options.join(","),
            format!(
                "mounts[{index}] binds {} read-only with rbind, but {why}",
                resolved.display()
            ),
        )
    };
    match ev.has_submounts(resolved) {
        Ok(false) => {}
        Ok(true) if ev.perms.recursive_read_only => {
            let mut narrowed = options.clone();
            narrowed.push("rro".into());
            narrow_options(ev, index, mount, narrowed);
        }
        Ok(true) => ev.refuse(
            refusal("the mounts below it would stay writable and the runtime has no rro".into())
                .remedy(
                "upgrade the runtime (runc ≥ 1.1, crun) or bind a path with nothing mounted below",
            ),
        ),
        Err(e) => ev.refuse(
            refusal(format!("the mounts below it cannot be listed ({e})"))
                .remedy("the gate cannot decide on a mount it cannot see"),
        ),
    }
}

/// Where each kernel filesystem belongs in a container (as runc's and containerd's default specs put
/// them); a second procfs or sysfs elsewhere would escape the masks and read-only paths set on these.
/// tmpfs may go anywhere. This is where Linux keeps them, not a grant: the types themselves are granted by
/// the base profile's `mount_types`.
const KERNEL_FS_PLACES: [(&str, &str); 6] = [
    ("proc", "/proc"),
    ("sysfs", "/sys"),
    ("cgroup", "/sys/fs/cgroup"),
    ("cgroup2", "/sys/fs/cgroup"),
    ("mqueue", "/dev/mqueue"),
    ("devpts", "/dev/pts"),
];

/// A kernel filesystem away from its place, or a devpts that would share the host's ptys.
fn misplaced(index: usize, typ: &str, destination: &Path, options: &[String]) -> Option<Violation> {
    let (_, place) = KERNEL_FS_PLACES.iter().find(|(t, _)| *t == typ)?;
    if destination != Path::new(place) {
        return Some(
            Violation::new(
                "mount.place",
                format!("mounts[{index}].destination"),
                destination.display().to_string(),
                format!(
                    "mounts[{index}] mounts {typ} at {}, not at {place}",
                    destination.display()
                ),
            )
            .remedy(format!("{typ} belongs at {place} only")),
        );
    }
    if typ == "devpts" && !options.iter().any(|o| o == "newinstance") {
        return Some(
            Violation::new(
                "mount.place",
                format!("mounts[{index}].options"),
                options.join(","),
                format!("mounts[{index}] mounts devpts without newinstance: the host's terminals"),
            )
            .remedy("mount devpts with newinstance"),
        );
    }
    None
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

/// A host path a mount (or the root filesystem) takes its files from, with what is asked of it.
#[derive(Clone, Copy)]
struct MountSource<'p> {
    field: Field,
    path: &'p Path,
    access: Access,
    shared: bool,
}

// Messages are only built when something is refused: this runs for every mount of every container.
impl MountSource<'_> {
    /// The path as the spec writes it.
    fn shown(&self) -> String {
        self.path.display().to_string()
    }

    /// The spec field the path is in: `root.path` or `mounts[i].source`.
    fn source_field(&self) -> String {
        match self.field {
            Field::Root => "root.path".to_string(),
            Field::Mount(_) => format!("{}.source", self.field),
        }
    }

    /// The source as messages describe it once resolved: with what it resolves to, when that differs.
    fn described(&self, resolved: &Path) -> String {
        let (field, access) = (self.field, self.access);
        if resolved == self.path {
            format!("{field} host path {} ({access})", self.shown())
        } else {
            format!(
                "{field} host path {} (resolves to {}, {access})",
                self.shown(),
                resolved.display()
            )
        }
    }

    /// A violation of `rule` on the source field, showing the path as written.
    fn violation(&self, rule: &'static str, message: String) -> Violation {
        Violation::new(rule, self.source_field(), self.shown(), message)
    }
}

/// Judges one host path used as a mount source. Returns the source as opened when it is allowed.
///
/// In order: the path must be absolute; a kubelet subPath is judged by its origin; a path protected as
/// written is refused; the source is opened once (every component existing, no magic links), and what the
/// open file is must not be protected either; a device node is judged as a device; a pod-owned path is
/// the pod's own; a socket or FIFO needs a grant to write; anything else needs a grant.
fn check_host_path(
    ev: &mut Evaluation,
    field: Field,
    source: &Path,
    access: Access,
    shared: bool,
) -> Option<OpenedSource> {
    let source = MountSource {
        field,
        path: source,
        access,
        shared,
    };
    if refuse_if_relative(ev, &source) {
        return None;
    }
    // A path through /proc (/proc/<pid>/root/...) resolves to something harmless-looking: judge the path
    // as written too.
    let split_source = SplitPath::new(source.path);
    // A kubelet subPath is a bind mount of some other host path: judge that path.
    if is_kubelet_subpath(ev, &split_source) {
        return check_subpath_origin(ev, &source);
    }
    let lexically_pod_owned = is_pod_owned(ev, &split_source, source.path);
    if !lexically_pod_owned && refuse_if_protected_as_written(ev, &source, &split_source) {
        return None;
    }
    let opened = open_source(ev, &source)?;
    let resolved = opened.resolved.as_path();

    // Most sources resolve to themselves: then the source's answers stand for the resolved path.
    let unchanged = resolved.as_os_str() == source.path.as_os_str();
    let split_resolved;
    let (split, pod_owned) = if unchanged {
        (&split_source, lexically_pod_owned)
    } else {
        split_resolved = SplitPath::new(resolved);
        let pod_owned = is_pod_owned(ev, &split_resolved, resolved);
        (&split_resolved, pod_owned)
    };
    if !pod_owned && refuse_if_protected(ev, &source, resolved, split) {
        return None;
    }

    let allowed = match opened.kind {
        // A device node is the device wherever it lies, even in a granted directory.
        FileKind::Device(node) => check_device_source(ev, &source, resolved, node),
        FileKind::Socket | FileKind::Fifo if !pod_owned => {
            check_socket_source(ev, &source, resolved, split, opened.kind)
        }
        _ => check_path_grant(ev, &source, resolved, split, pod_owned),
    };
    allowed.then_some(opened)
}

/// A socket or FIFO: a bind lets the container connect to it or write into it whatever `ro` says (the
/// kernel checks neither against the mount), so it needs a grant to write. Returns true when allowed.
fn check_socket_source(
    ev: &mut Evaluation,
    source: &MountSource,
    resolved: &Path,
    split: &SplitPath,
    kind: FileKind,
) -> bool {
    if ev
        .perms
        .path_grant_split(split, Access::Rw, source.shared)
        .is_some()
    {
        return true;
    }
    if source.access == Access::Rw {
        return check_path_grant(ev, source, resolved, split, false);
    }
    let what = if kind == FileKind::Socket {
        "a unix socket: a read-only bind still lets the container connect(2) to it"
    } else {
        "a FIFO: a read-only bind still lets the container write into it"
    };
    let need = Need::Path {
        path: resolved,
        access: Access::Rw,
        shared: source.shared,
    };
    let violation = source.violation(
        "mount.socket",
        format!(
            "{} is {what}, which needs a grant to write",
            source.described(resolved)
        ),
    );
    ev.refuse_needing(violation, &need);
    false
}

/// Refuses a source that is not an absolute path. Returns true when it refused.
fn refuse_if_relative(ev: &mut Evaluation, source: &MountSource) -> bool {
    if source.path.is_absolute() {
        return false;
    }
    ev.refuse(
        source
            .violation(
                "mount.host-path",
                format!(
                    "{} host path {:?} is not absolute",
                    source.field,
                    source.shown()
                ),
            )
            .remedy("bind-mount sources must be absolute host paths"),
    );
    true
}

/// A kubelet subPath: judged as the host path mounted there, which the mount table names. Returns that
/// path as opened when it is allowed.
fn check_subpath_origin(ev: &mut Evaluation, source: &MountSource) -> Option<OpenedSource> {
    let traced = match ev.host.mount_origin(source.path) {
        Ok(Some(origin)) if !ev.perms.subpaths.iter().any(|p| p.covers(&origin)) => Ok(origin),
        Ok(Some(origin)) => Err(format!("it exposes another subPath, {}", origin.display())),
        Ok(None) => Err("nothing is mounted there".to_string()),
        Err(e) => Err(format!("it cannot be traced through the mount table ({e})")),
    };
    match traced {
        Ok(origin) => check_host_path(ev, source.field, &origin, source.access, source.shared),
        Err(why) => {
            ev.refuse(
                source
                    .violation(
                        "mount.subpath",
                        format!(
                            "{} host path {} is a kubelet subPath, but {why}",
                            source.field,
                            source.shown()
                        ),
                    )
                    .remedy("the gate cannot decide on a subPath whose origin it cannot find"),
            );
            None
        }
    }
}

/// Whether `path` is one of the kubelet's subPath bind mounts.
fn is_kubelet_subpath(ev: &Evaluation, path: &SplitPath) -> bool {
    ev.perms.subpaths.iter().any(|p| p.covers_split(path))
}

/// Whether `path` is a mount source the container's own pod owns (its kubelet volumes and etc-hosts, its
/// sandbox's files): another pod's are not, and outside a pod none are.
fn is_pod_owned(ev: &Evaluation, split: &SplitPath, path: &Path) -> bool {
    let Some(owner) = ev.owner else {
        return false;
    };
    ev.perms.pod_owned.iter().any(|p| {
        p.pattern.covers_split(split) && p.names(path.as_os_str().as_encoded_bytes(), owner)
    })
}

/// Refuses a source that, as written, is or lies in a protected host path. Returns true when it refused.
fn refuse_if_protected_as_written(
    ev: &mut Evaluation,
    source: &MountSource,
    split_source: &SplitPath,
) -> bool {
    let Some(protected) = ev
        .perms
        .protected
        .iter()
        .find(|p| p.pattern.covers_split(split_source))
    else {
        return false;
    };
    ev.refuse(
        source
            .violation(
                "mount.protected",
                format!(
                    "{} host path {} is protected: {}",
                    source.field,
                    source.shown(),
                    protected.reason
                ),
            )
            .remedy("no interface can grant it"),
    );
    true
}

/// The source opened on the host once (symbolic links followed, magic links refused, every component
/// existing); None, refused, when the host cannot.
fn open_source(ev: &mut Evaluation, source: &MountSource) -> Option<OpenedSource> {
    match ev.host.open_source(source.path) {
        Ok(opened) => Some(opened),
        Err(e) => {
            let why = if e.kind() == std::io::ErrorKind::NotFound {
                "does not exist on the host".to_string()
            } else {
                format!("cannot be opened on the host ({e})")
            };
            ev.refuse(
                source
                    .violation(
                        "mount.host-path",
                        format!("{} host path {} {why}", source.field, source.shown()),
                    )
                    .remedy(
                        "a source must exist when the container is created, reached without magic links",
                    ),
            );
            None
        }
    }
}

/// Refuses a resolved source that is, lies in, or contains a protected host path. Returns true when it
/// refused.
fn refuse_if_protected(
    ev: &mut Evaluation,
    source: &MountSource,
    resolved: &Path,
    split: &SplitPath,
) -> bool {
    let Some(reason) = protected_reason(ev, split) else {
        return false;
    };
    ev.refuse(
        source
            .violation(
                "mount.protected",
                format!("{} {reason}", source.described(resolved)),
            )
            .remedy("no interface can grant it"),
    );
    true
}

/// An ordinary host path: a pod-owned one is the pod's own unless it is shared, any other needs a path grant
/// of the connected interfaces. Returns true when it is allowed.
fn check_path_grant(
    ev: &mut Evaluation,
    source: &MountSource,
    resolved: &Path,
    split: &SplitPath,
    pod_owned: bool,
) -> bool {
    let MountSource { access, shared, .. } = *source;
    if pod_owned && !shared {
        return true;
    }
    if ev.perms.path_grant_split(split, access, shared).is_some() {
        return true;
    }
    let need = Need::Path {
        path: resolved,
        access,
        shared,
    };
    let violation =
        if shared && (pod_owned || ev.perms.path_grant_split(split, access, false).is_some()) {
            shared_propagation_violation(source, resolved)
        } else {
            ungranted_path_violation(source, resolved)
        };
    ev.refuse_needing(violation, &need);
    false
}

/// A path the pod may mount, but not with shared propagation.
fn shared_propagation_violation(source: &MountSource, resolved: &Path) -> Violation {
    Violation::new(
        "mount.propagation",
        format!("{}.options", source.field),
        "rshared".into(),
        format!(
            "{} uses shared propagation, which would let it change the host's mounts",
            source.described(resolved)
        ),
    )
}

/// A path no connected interface grants.
fn ungranted_path_violation(source: &MountSource, resolved: &Path) -> Violation {
    Violation::new(
        "mount.host-path",
        source.source_field(),
        resolved.display().to_string(),
        format!(
            "{} is outside the connected interfaces",
            source.described(resolved)
        ),
    )
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

/// A bind mount of a host device node: judged as that device, by the grants that may reach the host's
/// node (not those for nodes every container gets its own of: its ptys, its console), never shared.
fn check_device_source(
    ev: &mut Evaluation,
    source: &MountSource,
    resolved: &Path,
    node: DeviceNode,
) -> bool {
    if source.shared {
        ev.refuse(shared_propagation_violation(source, resolved));
        return false;
    }
    let wanted = if source.access == Access::Rw {
        "rw"
    } else {
        "r"
    };
    let need = Need::Device {
        path: Some(resolved),
        kind: node.kind,
        major: Some(node.major),
        minor: Some(node.minor),
        access: DeviceAccess::parse(wanted).expect("valid"),
    };
    if ev.perms.host_device_grant(&need).is_some() {
        return true;
    }
    let violation = source.violation(
        "mount.device",
        format!(
            "{} is the host's device {} {}:{}, outside the connected interfaces",
            source.described(resolved),
            node.kind,
            node.major,
            node.minor
        ),
    );
    ev.refuse_needing(violation, &need);
    false
}
