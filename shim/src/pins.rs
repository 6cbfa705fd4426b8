//! The bind sources the gate pinned in the bundle (`<bundle>/.strict-pins/`, see strictctl's
//! `gate/pins.rs`): once the runtime has created the container, its mount namespace holds its own copies
//! of them, and the host's are unmounted. Also after a failed create, on delete, and by the `delete`
//! action after a shim died, so that no pin outlives its container.

use std::path::Path;

use nix::mount::{umount2, MntFlags};
use strict_protocol::gate::PINS_DIR;

/// Unmounts and removes the bundle's pins, if any.
pub fn release(bundle: &Path) {
    let dir = bundle.join(PINS_DIR);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if let Err(error) = umount2(&path, MntFlags::MNT_DETACH) {
            tracing::warn!(pin = %path.display(), %error, "unmounting a pinned mount source");
        }
    }
    let _ = umount2(&dir, MntFlags::MNT_DETACH);
    if let Err(error) = std::fs::remove_dir_all(&dir) {
        tracing::warn!(pins = %dir.display(), %error, "removing the pinned mount sources");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_are_unmounted_and_removed() {
        let bundle = tempfile::tempdir().unwrap();
        let dir = bundle.path().join(PINS_DIR);
        std::fs::create_dir_all(dir.join("3")).unwrap();
        let source = tempfile::tempdir().unwrap();
        std::fs::write(source.path().join("marker"), "x").unwrap();
        let none: Option<&str> = None;
        nix::mount::mount(
            Some(source.path()),
            &dir.join("3"),
            none,
            nix::mount::MsFlags::MS_BIND,
            none,
        )
        .unwrap();
        assert!(dir.join("3/marker").exists());
        release(bundle.path());
        assert!(!dir.exists());
        // The source itself is untouched.
        assert!(source.path().join("marker").exists());
        // No pins: nothing to do.
        release(bundle.path());
    }
}
