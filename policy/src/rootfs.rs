//! The root filesystem's mounts that containerd hands the shim in CreateTaskRequest (the snapshotter's
//! overlay or bind): the shim mounts them itself, before the runtime runs, so they are judged like the
//! spec. Only the snapshotters' own directories may appear there.

use std::path::{Component, Path, PathBuf};

use strict_protocol::RootfsMount;

use crate::pattern::PathPattern;
use crate::permissions::Permissions;
use crate::verdict::Violation;

/// Overlay options that change only how the overlay itself behaves.
const OVERLAY_FLAGS: &[&str] = &[
    "ro",
    "rw",
    "index=off",
    "index=on",
    "userxattr",
    "volatile",
    "metacopy=off",
    "redirect_dir=off",
    "xino=off",
    "xino=auto",
    "nosuid",
    "nodev",
    "noexec",
];

/// Bind options a snapshotter uses (native, or overlay's single read-only layer).
const BIND_FLAGS: &[&str] = &[
    "bind", "rbind", "ro", "rw", "rprivate", "private", "nosuid", "nodev",
];

/// The snapshotters' directories under each containerd root: a snapshot's `fs` and overlay's `work`.
fn snapshot_patterns(perms: &Permissions) -> Vec<PathPattern> {
    perms
        .config
        .node
        .containerd_roots
        .iter()
        .flat_map(|root| {
            ["fs", "work"].map(|leaf| {
                format!(
                    "{}/io.containerd.snapshotter.v1.*/snapshots/*/{leaf}",
                    root.display()
                )
            })
        })
        .filter_map(|p| PathPattern::parse(&p).ok())
        .collect()
}

/// Judges the rootfs mounts; returns the directories whose union the container's root is, top first (an
/// overlay's upper then lower directories), or the first violation.
pub fn judge(mounts: &[RootfsMount], perms: &Permissions) -> Result<Vec<PathBuf>, Box<Violation>> {
    let patterns = snapshot_patterns(perms);
    let mut layers = Vec::new();
    for (index, mount) in mounts.iter().enumerate() {
        let field = format!("rootfs[{index}]");
        let refuse = |value: String, why: String| {
            Box::new(
                Violation::new(
                    "rootfs.mount",
                    field.clone(),
                    value,
                    format!("{field} {why}"),
                )
                .remedy("a root filesystem comes from containerd's snapshotters only"),
            )
        };
        let own = |path: &str| {
            let path = Path::new(path);
            path.is_absolute()
                && !path.components().any(|c| c == Component::ParentDir)
                && patterns.iter().any(|p| p.covers(path))
        };
        if !mount.target.is_empty() {
            // Only the rootfs itself is a snapshot's; a mount elsewhere below it is nothing judged.
            return Err(refuse(
                mount.target.clone(),
                format!(
                    "mounts something at {} inside the root filesystem",
                    mount.target
                ),
            ));
        }
        match mount.typ.as_str() {
            "overlay" => {
                let (mut upper, mut lower) = (Vec::new(), Vec::new());
                for option in &mount.options {
                    let dirs = match option.split_once('=') {
                        Some(("lowerdir", dirs)) => dirs.split(':').collect(),
                        Some(("upperdir" | "workdir", dir)) => vec![dir],
                        _ if OVERLAY_FLAGS.contains(&option.as_str()) => continue,
                        _ => {
                            return Err(refuse(
                                option.clone(),
                                format!(
                                    "has the overlay option {option}, which the gate does not know"
                                ),
                            ))
                        }
                    };
                    if let Some(dir) = dirs.iter().find(|dir| !own(dir)) {
                        return Err(refuse(
                            dir.to_string(),
                            format!("overlays {dir}, which is no snapshot of containerd's"),
                        ));
                    }
                    match option.split_once('=') {
                        Some(("upperdir", dir)) => upper.push(PathBuf::from(dir)),
                        Some(("lowerdir", _)) => lower.extend(dirs.iter().map(PathBuf::from)),
                        _ => {}
                    }
                }
                layers.extend(upper);
                layers.extend(lower);
            }
            typ if typ == "bind" || mount.options.iter().any(|o| o == "bind" || o == "rbind") => {
                if let Some(option) = mount
                    .options
                    .iter()
                    .find(|o| !BIND_FLAGS.contains(&o.as_str()))
                {
                    return Err(refuse(
                        option.clone(),
                        format!("has the bind option {option}, which the gate does not know"),
                    ));
                }
                if !own(&mount.source) {
                    return Err(refuse(
                        mount.source.clone(),
                        format!(
                            "binds {}, which is no snapshot of containerd's",
                            mount.source
                        ),
                    ));
                }
                layers.push(PathBuf::from(&mount.source));
            }
            other => {
                return Err(refuse(
                    other.to_string(),
                    format!("is a {other} mount; only overlay and bind mounts of snapshots are"),
                ))
            }
        }
    }
    Ok(layers)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::PolicyConfig;

    fn perms() -> Permissions {
        let catalog = std::sync::Arc::new(crate::profile::Catalog::embedded().unwrap());
        Permissions::new(catalog, PolicyConfig::default(), Vec::new(), "test").unwrap()
    }

    fn mount(typ: &str, source: &str, options: &[&str]) -> RootfsMount {
        RootfsMount {
            typ: typ.into(),
            source: source.into(),
            options: options.iter().map(|o| o.to_string()).collect(),
            ..RootfsMount::default()
        }
    }

    const SNAPSHOTS: &str = "/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots";

    #[test]
    fn only_snapshots_may_be_the_root_filesystem() {
        let perms = perms();
        let overlay = mount(
            "overlay",
            "overlay",
            &[
                "index=off",
                &format!("workdir={SNAPSHOTS}/3/work"),
                &format!("upperdir={SNAPSHOTS}/3/fs"),
                &format!("lowerdir={SNAPSHOTS}/2/fs:{SNAPSHOTS}/1/fs"),
            ],
        );
        let layers = judge(&[overlay], &perms).unwrap();
        assert_eq!(
            layers,
            [
                PathBuf::from(format!("{SNAPSHOTS}/3/fs")),
                PathBuf::from(format!("{SNAPSHOTS}/2/fs")),
                PathBuf::from(format!("{SNAPSHOTS}/1/fs")),
            ]
        );
        let native = mount(
            "bind",
            "/var/lib/containerd/io.containerd.snapshotter.v1.native/snapshots/7/fs",
            &["rbind", "rw"],
        );
        assert!(judge(&[native], &perms).is_ok());
        // The host's root, /etc as a lower layer, another filesystem type, an unknown option.
        for bad in [
            mount("bind", "/", &["rbind", "rw"]),
            mount(
                "overlay",
                "overlay",
                &["lowerdir=/etc", &format!("upperdir={SNAPSHOTS}/3/fs")],
            ),
            mount(
                "overlay",
                "overlay",
                &[&format!("lowerdir={SNAPSHOTS}/../../../../etc/fs")],
            ),
            mount("ext4", "/dev/sda1", &[]),
            mount("overlay", "overlay", &["lowerdir=/x", "redirect_dir=on"]),
            RootfsMount {
                target: "/etc".into(),
                ..mount("bind", &format!("{SNAPSHOTS}/4/fs"), &["rbind"])
            },
        ] {
            let violation = judge(std::slice::from_ref(&bad), &perms).unwrap_err();
            assert_eq!(violation.rule, "rootfs.mount", "{bad:?}");
        }
    }
}
