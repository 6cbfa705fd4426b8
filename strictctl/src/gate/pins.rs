//! Pinned mount sources: the gate opens each bind source once and judges that open file (its type and the
//! path the kernel gives it); here each admitted one is bind-mounted from that descriptor into the bundle
//! (`<bundle>/.strict-pins/<mount index>`) and the spec names that mount instead of the host path. The
//! runtime then mounts the very file judged, whatever happens to the name meanwhile (a component swapped
//! for a symlink by whoever owns a granted directory).
//!
//! A mount, not the descriptor's `/proc/<pid>/fd/<n>`: the runtime mounts from the container's new mount
//! namespace, and the kernel refuses to bind a mount of another namespace (EINVAL). A mount made here, in
//! the host's namespace before the runtime starts, is copied into the container's.
//!
//! The pins directory is a private mount of itself, so the pins never propagate to other namespaces. The
//! shim unmounts it once the runtime has created the container.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use oci_spec::runtime::Spec;
use strict_protocol::gate::PINS_DIR;

/// Mounts each bind source of `spec` that names one of `held` (`/proc/<this pid>/fd/<n>`, as the policy's
/// pinning host wrote it) at `<bundle>/.strict-pins/<index>`, and names that instead. Returns how many.
pub fn stage(spec: &mut Spec, bundle: &Path, held: &[OwnedFd]) -> io::Result<usize> {
    let pid = std::process::id();
    let Some(mounts) = spec.mounts_mut() else {
        return Ok(0);
    };
    let mut staged = 0;
    let dir = bundle.join(PINS_DIR);
    let named: Vec<(PathBuf, &OwnedFd)> = held
        .iter()
        .map(|fd| {
            (
                PathBuf::from(format!("/proc/{pid}/fd/{}", fd.as_raw_fd())),
                fd,
            )
        })
        .collect();
    for (index, m) in mounts.iter_mut().enumerate() {
        let Some(&(_, fd)) = m
            .source()
            .as_ref()
            .and_then(|source| named.iter().find(|(name, _)| name == source))
        else {
            continue;
        };
        if staged == 0 {
            prepare(&dir)?;
        }
        let recursive = m
            .options()
            .as_ref()
            .is_some_and(|o| o.iter().any(|o| o == "rbind"));
        let target = dir.join(index.to_string());
        if let Err(e) = pin(fd, &target, recursive) {
            // Nothing of a refused Create stays mounted: the shim never runs the runtime for it.
            release(&dir);
            return Err(io::Error::new(
                e.kind(),
                format!("pinning mounts[{index}] at {}: {e}", target.display()),
            ));
        }
        m.set_source(Some(target));
        staged += 1;
    }
    Ok(staged)
}

/// The pins directory, empty, as a private mount of itself.
fn prepare(dir: &Path) -> io::Result<()> {
    release(dir);
    std::fs::create_dir(dir)?;
    let none: Option<&str> = None;
    mount(Some(dir), dir, none, MsFlags::MS_BIND, none)?;
    mount(none, dir, none, MsFlags::MS_PRIVATE, none)?;
    Ok(())
}

/// Bind-mounts the open file `fd` at `target` (a directory for a directory, else a file).
fn pin(fd: &OwnedFd, target: &Path, recursive: bool) -> io::Result<()> {
    let stat = nix::sys::stat::fstat(fd)?;
    if nix::sys::stat::SFlag::from_bits_truncate(stat.st_mode)
        .contains(nix::sys::stat::SFlag::S_IFDIR)
    {
        std::fs::create_dir(target)?;
    } else {
        std::fs::File::create(target)?;
    }
    let mut flags = MsFlags::MS_BIND;
    if recursive {
        flags |= MsFlags::MS_REC;
    }
    let none: Option<&str> = None;
    let source = PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()));
    mount(Some(&source), target, none, flags, none)?;
    Ok(())
}

/// Unmounts and removes a pins directory: a leftover of an earlier attempt, or this attempt's when it
/// fails half-way. (The shim's `pins.rs` does the same once the runtime has created the container.)
fn release(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let _ = umount2(&entry.path(), MntFlags::MNT_DETACH);
    }
    let _ = umount2(dir, MntFlags::MNT_DETACH);
    let _ = std::fs::remove_dir_all(dir);
}
