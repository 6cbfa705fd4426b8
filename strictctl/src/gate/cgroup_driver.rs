//! The cgroup driver a container's `linux.cgroupsPath` is written for, against the one the strict runtime
//! drives runc with (`[runtime] systemd_cgroup`). The kubelet picks the form (its `cgroupDriver`), CRI
//! passes it on: `kubepods-besteffort-pod1.slice:cri-containerd:ID` for systemd, `/kubepods/.../ID` for
//! cgroupfs. runc given the other form fails with an error about the path, or puts the container where
//! nobody looks; the gate refuses instead and says which setting to change.

use std::path::Path;

/// How a `cgroupsPath` is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PathForm {
    /// `slice:prefix:name`, runc's systemd driver's form.
    Systemd,
    /// A directory path, the cgroupfs driver's form.
    Cgroupfs,
}

impl PathForm {
    pub fn of(path: &str) -> PathForm {
        if path.split(':').count() == 3 && !path.contains('/') {
            PathForm::Systemd
        } else {
            PathForm::Cgroupfs
        }
    }
}

/// Why a container's cgroup path does not fit the configured driver; None when it does (or when the spec
/// names no path: the runtime then picks one of its driver's form).
pub fn mismatch(
    cgroups_path: Option<&Path>,
    systemd_cgroup: bool,
    config: impl FnOnce() -> String,
) -> Option<String> {
    let path = cgroups_path?.to_string_lossy();
    if path.is_empty() {
        return None;
    }
    let form = PathForm::of(&path);
    if (form == PathForm::Systemd) == systemd_cgroup {
        return None;
    }
    let config = config();
    Some(if systemd_cgroup {
        format!(
            "linux.cgroupsPath {path} is a cgroupfs path, but the strict runtime drives runc with the \
             systemd cgroup driver ([runtime] systemd_cgroup = true in {config}), which takes \
             slice:prefix:name only: the kubelet's cgroupDriver and systemd_cgroup must agree"
        )
    } else {
        format!(
            "linux.cgroupsPath {path} is in the systemd cgroup driver's form (slice:prefix:name), but \
             the strict runtime drives runc with the cgroupfs driver ([runtime] systemd_cgroup = false in \
             {config}): the node uses the systemd driver (the kubelet's cgroupDriver, SystemdCgroup = true \
             for runc); set systemd_cgroup = true under [runtime] (`strictctl install` writes it into the \
             policy files it creates when the runc handler has SystemdCgroup = true)"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_forms_are_told_apart() {
        for systemd in [
            "kubepods-besteffort-pod1.slice:cri-containerd:abc",
            "system.slice:strict:c1",
            ":strict:c1",
        ] {
            assert_eq!(PathForm::of(systemd), PathForm::Systemd, "{systemd}");
        }
        for cgroupfs in ["/kubepods/besteffort/pod1/abc", "default/c1", "/a:b:c/d"] {
            assert_eq!(PathForm::of(cgroupfs), PathForm::Cgroupfs, "{cgroupfs}");
        }
    }

    #[test]
    fn a_path_of_the_other_driver_is_refused_naming_the_setting() {
        let systemd = Path::new("kubepods.slice:cri-containerd:abc");
        let message = mismatch(Some(systemd), false, || {
            "/etc/containerd/strict.toml".into()
        })
        .unwrap();
        assert!(message.contains("systemd_cgroup = false in /etc/containerd/strict.toml"));
        assert!(message.contains("set systemd_cgroup = true"));
        assert_eq!(mismatch(Some(systemd), true, || "x".into()), None);

        let cgroupfs = Path::new("/default/c1");
        let message = mismatch(Some(cgroupfs), true, || "x".into()).unwrap();
        assert!(message.contains("is a cgroupfs path"));
        assert_eq!(mismatch(Some(cgroupfs), false, || "x".into()), None);

        assert_eq!(mismatch(None, true, || "x".into()), None);
        assert_eq!(mismatch(Some(Path::new("")), false, || "x".into()), None);
    }
}
