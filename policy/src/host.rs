//! What the gate asks of the host, behind a trait so the rules are tested without root or a real node.

use std::collections::HashMap;
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Component, Path, PathBuf};

use crate::profile::schema::{DeviceType, HostNamespace};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeviceNode {
    pub kind: DeviceType,
    pub major: i64,
    pub minor: i64,
}

/// A namespace's identity: the device and inode of its nsfs file.
pub use strict_protocol::NamespaceId;

/// The namespaces of one pod, as the shim recorded them when its sandbox (and its other containers)
/// passed the gate. An app container may join these and no others: the sandbox's own decision (host
/// network allowed or not, say) already covered them.
pub use strict_protocol::PodNamespaces;

/// Adds the namespaces of process `pid` (a sandbox's pause, or another container's init) to `pod`, as
/// `host` sees them.
pub fn add_process_namespaces(pod: &mut PodNamespaces, host: &dyn HostView, pid: u32) {
    for kind in HostNamespace::ALL {
        let path = PathBuf::from(format!("/proc/{pid}/ns/{}", kind.proc_name()));
        if let Ok(id) = host.namespace_id(&path) {
            pod.add(kind, id);
        }
    }
}

/// What a mount source is, as the gate opened it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    Directory,
    Regular,
    Socket,
    Fifo,
    Device(DeviceNode),
    Other,
}

/// A mount source opened once: what the gate judges is this open file (the path the kernel gives it, its
/// type), never the name again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenedSource {
    /// The path the kernel gives the open file, every symlink followed.
    pub resolved: PathBuf,
    pub kind: FileKind,
    /// A path that names exactly this open file for as long as the gate holds it (`/proc/PID/fd/N`), for
    /// the runtime to mount instead of the name: set by a [`PinningHost`] only.
    pub pinned: Option<PathBuf>,
}

/// Whose pod a container is, as the gate established it (CRI's annotations, checked against the shim's
/// registry): the files a pod owns are this pod's, never another's.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PodOwner {
    /// The sandbox id: containerd's per-sandbox files (`sandboxes/<id>/...`).
    pub sandbox_id: String,
    /// The pod's uid: the kubelet's per-pod directory (`pods/<uid>/...`). None: none of them.
    pub pod_uid: Option<String>,
}

pub trait HostView {
    /// Resolves every symlink of an absolute path as the host sees it (`..` included). A path that does not
    /// exist resolves its longest existing ancestor and appends the rest; a missing tail with `..` in it
    /// cannot be decided and is an error.
    fn resolve(&self, path: &Path) -> io::Result<PathBuf>;
    fn exists(&self, path: &Path) -> bool;
    /// The device node at `path`, or None when it is not a device node.
    fn device_node(&self, path: &Path) -> io::Result<Option<DeviceNode>>;
    fn namespace_id(&self, path: &Path) -> io::Result<NamespaceId>;
    /// The host's own namespaces of this kind (the gate's and init's).
    fn host_namespace_ids(&self, kind: HostNamespace) -> Vec<NamespaceId>;
    /// The host path a bind mount at `mount_point` exposes, traced through the mount table: the kubelet's
    /// `volume-subpaths` are such mounts. None when nothing is mounted exactly there.
    fn mount_origin(&self, mount_point: &Path) -> io::Result<Option<PathBuf>>;
    /// Opens a mount source once, as the runtime will mount it: every component must exist, symlinks are
    /// followed, magic links (`/proc/PID/root`, `/proc/PID/fd/N`, which lead into other processes' mount
    /// namespaces) are an error.
    fn open_source(&self, path: &Path) -> io::Result<OpenedSource>;
    /// Every mount point of the gate's mount namespace (an `rbind` carries those below its source along).
    fn mount_points(&self) -> io::Result<Vec<PathBuf>>;
}

/// One line of /proc/self/mountinfo: the filesystem (`major:minor`), the path inside it that is mounted,
/// and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MountInfo {
    pub device: String,
    pub root: PathBuf,
    pub mount_point: PathBuf,
}

impl MountInfo {
    /// Parses mountinfo(5) text; octal escapes (`\040` for a space) are undone.
    pub fn parse_table(text: &str) -> Vec<MountInfo> {
        text.lines()
            .filter_map(|line| {
                let mut fields = line.split(' ');
                let (_, _, device, root, mount_point) = (
                    fields.next()?,
                    fields.next()?,
                    fields.next()?,
                    fields.next()?,
                    fields.next()?,
                );
                Some(MountInfo {
                    device: device.to_string(),
                    root: PathBuf::from(unescape(root)),
                    mount_point: PathBuf::from(unescape(mount_point)),
                })
            })
            .collect()
    }

    /// Where the bind mount at `mount_point` comes from: the last mount there (the one on top), and
    /// another mount of the same filesystem whose root contains that root (the longest such), not itself
    /// under `mount_point`; the host path is that mount's point plus the rest of the root.
    pub fn origin(table: &[MountInfo], mount_point: &Path) -> Option<PathBuf> {
        let top = table.iter().rev().find(|m| m.mount_point == mount_point)?;
        table
            .iter()
            .filter(|m| m.device == top.device && !m.mount_point.starts_with(mount_point))
            .filter_map(|m| {
                let rest = top.root.strip_prefix(&m.root).ok()?;
                Some((m.root.components().count(), m.mount_point.join(rest)))
            })
            .max_by_key(|(depth, _)| *depth)
            .map(|(_, path)| path)
    }
}

fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 3 < bytes.len()
            && bytes[i + 1..i + 4]
                .iter()
                .all(|b| (b'0'..=b'7').contains(b))
        {
            let value =
                (bytes[i + 1] - b'0') * 64 + (bytes[i + 2] - b'0') * 8 + (bytes[i + 3] - b'0');
            out.push(value);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The machine the gate runs on.
#[derive(Clone, Copy, Debug, Default)]
pub struct RealHost;

/// Resolves an existing path in three system calls: open it with O_PATH (the kernel follows every
/// symlink) and read back what the descriptor refers to. realpath(3) instead reads every component.
fn resolve_by_descriptor(path: &Path) -> io::Result<PathBuf> {
    use nix::fcntl::{open, OFlag};
    let fd = open(
        path,
        OFlag::O_PATH | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )?;
    let resolved = std::fs::read_link(format!(
        "/proc/self/fd/{}",
        std::os::fd::AsRawFd::as_raw_fd(&fd)
    ))?;
    // A path the kernel cannot name from here (another mount namespace, a deleted file) reads back as
    // something else than an absolute path: let realpath(3) decide.
    if !resolved.is_absolute() || resolved.to_string_lossy().ends_with(" (deleted)") {
        return Err(io::Error::other("unnamed"));
    }
    Ok(resolved)
}

/// Opens `path` with `O_PATH` through openat2(2) without magic links, and describes the open file.
fn open_without_magic_links(path: &Path) -> io::Result<(std::os::fd::OwnedFd, OpenedSource)> {
    use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag, AT_FDCWD};
    use std::os::fd::AsRawFd;
    let how = OpenHow::new()
        .flags(OFlag::O_PATH | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_NO_MAGICLINKS);
    let fd = openat2(AT_FDCWD, path, how).map_err(|errno| match errno {
        nix::errno::Errno::ELOOP => io::Error::other(
            "it goes through a magic link (/proc/PID/root, /proc/PID/fd/N, ...) or too many symlinks",
        ),
        errno => io::Error::from(errno),
    })?;
    let resolved = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()))?;
    // A file the kernel cannot name from here (another mount namespace, a deleted file).
    if !resolved.is_absolute() || resolved.to_string_lossy().ends_with(" (deleted)") {
        return Err(io::Error::other(format!(
            "the kernel names it {} from the gate's mount namespace",
            resolved.display()
        )));
    }
    let stat = nix::sys::stat::fstat(&fd)?;
    let kind = match nix::sys::stat::SFlag::from_bits_truncate(stat.st_mode)
        & nix::sys::stat::SFlag::S_IFMT
    {
        t if t == nix::sys::stat::SFlag::S_IFDIR => FileKind::Directory,
        t if t == nix::sys::stat::SFlag::S_IFREG => FileKind::Regular,
        t if t == nix::sys::stat::SFlag::S_IFSOCK => FileKind::Socket,
        t if t == nix::sys::stat::SFlag::S_IFIFO => FileKind::Fifo,
        t if t == nix::sys::stat::SFlag::S_IFCHR || t == nix::sys::stat::SFlag::S_IFBLK => {
            FileKind::Device(DeviceNode {
                kind: if t == nix::sys::stat::SFlag::S_IFCHR {
                    DeviceType::Char
                } else {
                    DeviceType::Block
                },
                major: nix::sys::stat::major(stat.st_rdev) as i64,
                minor: nix::sys::stat::minor(stat.st_rdev) as i64,
            })
        }
        _ => FileKind::Other,
    };
    Ok((
        fd,
        OpenedSource {
            resolved,
            kind,
            pinned: None,
        },
    ))
}

impl HostView for RealHost {
    fn open_source(&self, path: &Path) -> io::Result<OpenedSource> {
        open_without_magic_links(path).map(|(_, opened)| opened)
    }

    fn mount_points(&self) -> io::Result<Vec<PathBuf>> {
        // Only the fifth field of each line, unescaped only where it has an escape.
        let text = std::fs::read_to_string("/proc/self/mountinfo")?;
        Ok(text
            .lines()
            .filter_map(|line| line.split(' ').nth(4))
            .map(|point| {
                if point.contains('\\') {
                    PathBuf::from(unescape(point))
                } else {
                    PathBuf::from(point)
                }
            })
            .collect())
    }

    fn resolve(&self, path: &Path) -> io::Result<PathBuf> {
        if let Ok(resolved) = resolve_by_descriptor(path) {
            return Ok(resolved);
        }
        match std::fs::canonicalize(path) {
            Ok(resolved) => Ok(resolved),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                if path.components().any(|c| c == Component::ParentDir) {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        "does not exist and contains '..'",
                    ));
                }
                let mut missing = Vec::new();
                let mut ancestor = path;
                loop {
                    match std::fs::canonicalize(ancestor) {
                        Ok(mut resolved) => {
                            resolved.extend(missing.iter().rev());
                            return Ok(resolved);
                        }
                        Err(e) if e.kind() == io::ErrorKind::NotFound => {
                            missing.push(ancestor.file_name().unwrap_or_default().to_owned());
                            ancestor = ancestor.parent().ok_or(e)?;
                        }
                        Err(e) => return Err(e),
                    }
                }
            }
            Err(e) => Err(e),
        }
    }

    fn exists(&self, path: &Path) -> bool {
        path.symlink_metadata().is_ok()
    }

    fn device_node(&self, path: &Path) -> io::Result<Option<DeviceNode>> {
        let meta = std::fs::metadata(path)?;
        let kind = if meta.file_type().is_char_device() {
            DeviceType::Char
        } else if meta.file_type().is_block_device() {
            DeviceType::Block
        } else {
            return Ok(None);
        };
        let rdev = meta.rdev();
        Ok(Some(DeviceNode {
            kind,
            major: nix::sys::stat::major(rdev) as i64,
            minor: nix::sys::stat::minor(rdev) as i64,
        }))
    }

    fn namespace_id(&self, path: &Path) -> io::Result<NamespaceId> {
        let meta = std::fs::metadata(path)?;
        Ok((meta.dev(), meta.ino()))
    }

    fn host_namespace_ids(&self, kind: HostNamespace) -> Vec<NamespaceId> {
        // The host's namespaces do not change while the process lives: look them up once.
        static IDS: std::sync::OnceLock<Vec<(HostNamespace, NamespaceId)>> =
            std::sync::OnceLock::new();
        let ids = IDS.get_or_init(|| {
            HostNamespace::ALL
                .iter()
                .flat_map(|kind| {
                    Self::lookup_host_namespace_ids(*kind)
                        .into_iter()
                        .map(move |id| (*kind, id))
                })
                .collect()
        });
        ids.iter()
            .filter(|(k, _)| *k == kind)
            .map(|(_, id)| *id)
            .collect()
    }

    fn mount_origin(&self, mount_point: &Path) -> io::Result<Option<PathBuf>> {
        let table = MountInfo::parse_table(&std::fs::read_to_string("/proc/self/mountinfo")?);
        if !table.iter().any(|m| m.mount_point == mount_point) {
            return Ok(None);
        }
        MountInfo::origin(&table, mount_point)
            .map(Some)
            .ok_or_else(|| io::Error::other("its filesystem is not mounted anywhere else"))
    }
}

impl RealHost {
    fn lookup_host_namespace_ids(kind: HostNamespace) -> Vec<NamespaceId> {
        ["self", "1"]
            .iter()
            .filter_map(|pid| {
                RealHost
                    .namespace_id(
                        &Path::new("/proc")
                            .join(pid)
                            .join("ns")
                            .join(kind.proc_name()),
                    )
                    .ok()
            })
            .collect()
    }
}

/// The real host, holding every mount source it opens until it is dropped, and naming each as
/// `/proc/<this pid>/fd/<n>`: the runtime, told to mount that path, mounts the very file the gate judged,
/// whatever happens to its name meanwhile (a component swapped for a symlink).
#[derive(Debug, Default)]
pub struct PinningHost {
    held: std::sync::Mutex<Vec<std::os::fd::OwnedFd>>,
}

impl PinningHost {
    /// How many sources are held.
    pub fn pinned(&self) -> usize {
        self.held.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// The open files, to keep until the runtime has mounted them.
    pub fn into_held(self) -> Vec<std::os::fd::OwnedFd> {
        self.held.into_inner().unwrap_or_else(|e| e.into_inner())
    }
}

impl HostView for PinningHost {
    fn resolve(&self, path: &Path) -> io::Result<PathBuf> {
        RealHost.resolve(path)
    }
    fn exists(&self, path: &Path) -> bool {
        RealHost.exists(path)
    }
    fn device_node(&self, path: &Path) -> io::Result<Option<DeviceNode>> {
        RealHost.device_node(path)
    }
    fn namespace_id(&self, path: &Path) -> io::Result<NamespaceId> {
        RealHost.namespace_id(path)
    }
    fn host_namespace_ids(&self, kind: HostNamespace) -> Vec<NamespaceId> {
        RealHost.host_namespace_ids(kind)
    }
    fn mount_origin(&self, mount_point: &Path) -> io::Result<Option<PathBuf>> {
        RealHost.mount_origin(mount_point)
    }
    fn mount_points(&self) -> io::Result<Vec<PathBuf>> {
        RealHost.mount_points()
    }
    fn open_source(&self, path: &Path) -> io::Result<OpenedSource> {
        use std::os::fd::AsRawFd;
        let (fd, mut opened) = open_without_magic_links(path)?;
        opened.pinned = Some(PathBuf::from(format!(
            "/proc/{}/fd/{}",
            std::process::id(),
            fd.as_raw_fd()
        )));
        self.held.lock().unwrap_or_else(|e| e.into_inner()).push(fd);
        Ok(opened)
    }
}

/// An in-memory host for tests, fuzzing and benchmarks: symlinks, existing paths, device nodes and
/// namespaces are whatever the test says.
#[derive(Clone, Debug, Default)]
pub struct FakeHost {
    pub symlinks: HashMap<PathBuf, PathBuf>,
    pub existing: Vec<PathBuf>,
    pub devices: HashMap<PathBuf, DeviceNode>,
    pub namespaces: HashMap<PathBuf, NamespaceId>,
    pub host_namespaces: HashMap<HostNamespace, NamespaceId>,
    /// Bind mounts: mount point -> the host path it exposes.
    pub mounts: HashMap<PathBuf, PathBuf>,
    /// Unix sockets and FIFOs (every other source opens as a directory).
    pub sockets: Vec<PathBuf>,
    pub fifos: Vec<PathBuf>,
    /// Paths that do not exist (every other one does).
    pub missing: Vec<PathBuf>,
}

impl FakeHost {
    pub fn symlink(mut self, link: &str, target: &str) -> Self {
        self.symlinks.insert(link.into(), target.into());
        self
    }

    pub fn file(mut self, path: &str) -> Self {
        self.existing.push(path.into());
        self
    }

    pub fn bind_mount(mut self, mount_point: &str, origin: &str) -> Self {
        self.mounts.insert(mount_point.into(), origin.into());
        self.existing.push(mount_point.into());
        self
    }

    pub fn socket(mut self, path: &str) -> Self {
        self.sockets.push(path.into());
        self
    }

    pub fn fifo(mut self, path: &str) -> Self {
        self.fifos.push(path.into());
        self
    }

    pub fn missing(mut self, path: &str) -> Self {
        self.missing.push(path.into());
        self
    }

    pub fn device(mut self, path: &str, kind: DeviceType, major: i64, minor: i64) -> Self {
        self.devices
            .insert(path.into(), DeviceNode { kind, major, minor });
        self.existing.push(path.into());
        self
    }
}

impl HostView for FakeHost {
    fn resolve(&self, path: &Path) -> io::Result<PathBuf> {
        if self.symlinks.is_empty() {
            if let Some(normal) = crate::pattern::normalize_lexically(path) {
                return Ok(normal);
            }
        }
        let mut pending: Vec<std::ffi::OsString> = path
            .components()
            .rev()
            .filter_map(|c| match c {
                Component::Normal(p) => Some(p.to_owned()),
                Component::ParentDir => Some("..".into()),
                _ => None,
            })
            .collect();
        let mut out = PathBuf::from("/");
        let mut hops = 0;
        while let Some(part) = pending.pop() {
            if part == ".." {
                out.pop();
                continue;
            }
            let candidate = out.join(&part);
            if let Some(target) = self.symlinks.get(&candidate) {
                hops += 1;
                if hops > 40 {
                    return Err(io::Error::other("too many levels of symbolic links"));
                }
                if target.is_absolute() {
                    out = PathBuf::from("/");
                }
                pending.extend(target.components().rev().filter_map(|c| match c {
                    Component::Normal(p) => Some(p.to_owned()),
                    Component::ParentDir => Some("..".into()),
                    _ => None,
                }));
            } else {
                out = candidate;
            }
        }
        Ok(out)
    }

    fn exists(&self, path: &Path) -> bool {
        self.existing.iter().any(|p| p == path)
            || self.symlinks.contains_key(path)
            || self.existing.iter().any(|p| p.starts_with(path))
    }

    fn device_node(&self, path: &Path) -> io::Result<Option<DeviceNode>> {
        Ok(self.devices.get(path).copied())
    }

    fn namespace_id(&self, path: &Path) -> io::Result<NamespaceId> {
        self.namespaces
            .get(path)
            .copied()
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))
    }

    fn host_namespace_ids(&self, kind: HostNamespace) -> Vec<NamespaceId> {
        self.host_namespaces
            .get(&kind)
            .copied()
            .into_iter()
            .collect()
    }

    fn mount_origin(&self, mount_point: &Path) -> io::Result<Option<PathBuf>> {
        Ok(self.mounts.get(mount_point).cloned())
    }

    fn open_source(&self, path: &Path) -> io::Result<OpenedSource> {
        // As the kernel: /proc/<pid>/{root,cwd,exe,fd/N} are magic links.
        let magic = |path: &Path| {
            let (mut before_last, mut last) = (None, None);
            for part in path.components() {
                let name = part.as_os_str().to_str().unwrap_or("");
                if before_last == Some("proc") && ["root", "cwd", "exe", "fd"].contains(&name) {
                    return true;
                }
                (before_last, last) = (last, Some(name));
            }
            false
        };
        let resolved = self.resolve(path)?;
        if magic(path) || magic(&resolved) {
            return Err(io::Error::other("it goes through a magic link"));
        }
        if self.missing.iter().any(|m| resolved.starts_with(m)) {
            return Err(io::Error::from(io::ErrorKind::NotFound));
        }
        let kind = if let Some(node) = self.devices.get(&resolved) {
            FileKind::Device(*node)
        } else if self.sockets.contains(&resolved) {
            FileKind::Socket
        } else if self.fifos.contains(&resolved) {
            FileKind::Fifo
        } else {
            FileKind::Directory
        };
        Ok(OpenedSource {
            resolved,
            kind,
            pinned: None,
        })
    }

    fn mount_points(&self) -> io::Result<Vec<PathBuf>> {
        Ok(self.mounts.keys().cloned().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_subpath_bind_mount_is_traced_to_the_host_path_it_exposes() {
        // The kubelet bind-mounts a hostPath subPath (/srv/data/sub) and a configMap subPath.
        let table = MountInfo::parse_table(
            "22 1 8:1 / / rw - ext4 /dev/sda1 rw\n\
             30 22 0:40 / /var/lib/kubelet/pods/u1/volumes/kubernetes.io~configmap/cfg rw - tmpfs tmpfs rw\n\
             31 22 8:1 /srv/data/sub /var/lib/kubelet/pods/u1/volume-subpaths/data/app/0 rw - ext4 /dev/sda1 rw\n\
             32 22 0:40 /..data/app.conf /var/lib/kubelet/pods/u1/volume-subpaths/cfg/app/1 rw - tmpfs tmpfs rw\n\
             33 22 8:1 /home/a\\040b /mnt/with\\040space rw - ext4 /dev/sda1 rw\n",
        );
        let origin = |p: &str| MountInfo::origin(&table, Path::new(p));
        assert_eq!(
            origin("/var/lib/kubelet/pods/u1/volume-subpaths/data/app/0"),
            Some(PathBuf::from("/srv/data/sub"))
        );
        assert_eq!(
            origin("/var/lib/kubelet/pods/u1/volume-subpaths/cfg/app/1"),
            Some(PathBuf::from(
                "/var/lib/kubelet/pods/u1/volumes/kubernetes.io~configmap/cfg/..data/app.conf"
            ))
        );
        assert_eq!(origin("/mnt/with space"), Some(PathBuf::from("/home/a b")));
        assert_eq!(origin("/not/mounted"), None);
    }

    #[test]
    fn fake_host_resolves_like_the_kernel() {
        let host = FakeHost::default()
            .symlink("/data/etc-link", "/etc")
            .symlink("/data/root-link", "/")
            .symlink("/data/rel", "../etc");
        assert_eq!(
            host.resolve(Path::new("/data/etc-link/passwd")).unwrap(),
            Path::new("/etc/passwd")
        );
        assert_eq!(
            host.resolve(Path::new("/data/root-link")).unwrap(),
            Path::new("/")
        );
        assert_eq!(
            host.resolve(Path::new("/data/rel")).unwrap(),
            Path::new("/etc")
        );
        assert_eq!(
            host.resolve(Path::new("/home/alice/../../etc")).unwrap(),
            Path::new("/etc")
        );
        let looping = FakeHost::default().symlink("/a", "/b").symlink("/b", "/a");
        assert!(looping.resolve(Path::new("/a")).is_err());
    }

    #[test]
    fn real_host_resolves_missing_tails() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().canonicalize().unwrap();
        std::os::unix::fs::symlink("/etc", real.join("link")).unwrap();
        let host = RealHost;
        assert_eq!(
            host.resolve(&real.join("link/nope/x")).unwrap(),
            Path::new("/etc/nope/x")
        );
        assert!(host.resolve(&real.join("missing/../x")).is_err());
    }
}
