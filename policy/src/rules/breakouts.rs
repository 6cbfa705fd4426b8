//! The runtime's known breakouts (see [`crate::runtime_advisories`]): where the runtime still has them,
//! the preconditions the gate can see before it runs are refused: a symlink in the root filesystem where
//! the runtime expects a device node or procfs.

use std::path::{Path, PathBuf};

use super::evaluation::Evaluation;
use crate::verdict::Violation;

pub(crate) fn check(ev: &mut Evaluation, rootfs_layers: &[PathBuf]) {
    let mut refused: Vec<&str> = Vec::new();
    for breakout in &ev.perms.unfixed_breakouts {
        for path in breakout.rootfs_paths {
            if refused.contains(path) {
                continue;
            }
            if let Some(link) = symlink_in_union(rootfs_layers, Path::new(path)) {
                refused.push(path);
                ev.refuse(
                    Violation::new(
                        "runtime.breakout",
                        "root.path".into(),
                        format!("/{path}"),
                        format!(
                            "the root filesystem's /{} is a symlink, which {} (the runtime has not the fix) \
                             needs: {}",
                            link.display(),
                            breakout.id,
                            breakout.summary
                        ),
                    )
                    .remedy("upgrade the runtime (runc 1.2.8, 1.3.3 or later) or fix the image"),
                );
            }
        }
    }
}

/// The first component of `path` that is a symlink in the union of `layers` (top first), as an overlay
/// would show it: a name is looked up in the top layer that has it, and a directory also shows the layers
/// below (opaque directories are not read: a symlink hidden under one is still refused, never missed).
/// Anything else ends the lookup: a file, a device node, a whiteout (a character device 0:0, which hides
/// the name).
fn symlink_in_union(layers: &[PathBuf], path: &Path) -> Option<PathBuf> {
    let mut candidates: &[PathBuf] = layers;
    let mut so_far = PathBuf::new();
    for component in path.components() {
        so_far.push(component);
        let (position, meta) = candidates
            .iter()
            .enumerate()
            .find_map(|(i, layer)| layer.join(&so_far).symlink_metadata().ok().map(|m| (i, m)))?;
        let file_type = meta.file_type();
        if file_type.is_symlink() {
            return Some(so_far);
        }
        if !file_type.is_dir() {
            return None;
        }
        candidates = &candidates[position..];
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_symlink_in_any_visible_layer_is_found() {
        let upper = tempfile::tempdir().unwrap();
        let lower = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(lower.path().join("dev")).unwrap();
        std::os::unix::fs::symlink(
            "/proc/sys/kernel/core_pattern",
            lower.path().join("dev/null"),
        )
        .unwrap();
        let layers = [upper.path().to_owned(), lower.path().to_owned()];
        assert_eq!(
            symlink_in_union(&layers, Path::new("dev/null")),
            Some(PathBuf::from("dev/null"))
        );
        assert_eq!(symlink_in_union(&layers, Path::new("dev/console")), None);
        // A whiteout in the upper layer hides the lower symlink.
        std::fs::create_dir_all(upper.path().join("dev")).unwrap();
        nix::sys::stat::mknod(
            &upper.path().join("dev/null"),
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::from_bits_truncate(0o600),
            0,
        )
        .unwrap();
        assert_eq!(symlink_in_union(&layers, Path::new("dev/null")), None);
        // A lower layer's /dev seen through an upper /dev directory: its symlink shows.
        assert_eq!(
            symlink_in_union(&layers, Path::new("dev/console")),
            None,
            "nothing there"
        );
        std::os::unix::fs::symlink("/", lower.path().join("dev/ptmx")).unwrap();
        assert_eq!(
            symlink_in_union(&layers, Path::new("dev/ptmx")),
            Some(PathBuf::from("dev/ptmx"))
        );
        // A symlinked /dev in the top layer.
        let top = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("/", top.path().join("dev")).unwrap();
        let layers = [top.path().to_owned(), upper.path().to_owned()];
        assert_eq!(
            symlink_in_union(&layers, Path::new("dev/null")),
            Some(PathBuf::from("dev"))
        );
    }
}
