//! The two runtime handlers install registers, `strict` and `strict-complain`, their policy files, and
//! the node label that says they are ready.

use std::path::Path;

use super::containerd_dirs::ContainerdDirs;

/// The node label the installer sets when the node is ready, and the RuntimeClasses select.
pub const NODE_LABEL: &str = "strict.snapcraft.io/runtime";
/// The value of [`NODE_LABEL`] on a ready node.
pub const NODE_LABEL_VALUE: &str = "ready";

/// A containerd runtime handler the installer registers, with its policy file.
#[derive(Clone, Copy, Debug)]
pub struct Handler {
    /// The CRI handler name (and RuntimeClass name).
    pub name: &'static str,
    /// Its policy file, in `ROOT/etc/containerd`.
    pub policy_file: &'static str,
    /// The policy's `mode`.
    pub mode: &'static str,
}

pub const HANDLERS: [Handler; 2] = [
    Handler {
        name: "strict",
        policy_file: "strict.toml",
        mode: "enforce",
    },
    Handler {
        name: "strict-complain",
        policy_file: "strict-complain.toml",
        mode: "complain",
    },
];

/// The handlers' names, for messages: `strict, strict-complain`.
pub fn handler_names() -> String {
    HANDLERS.map(|h| h.name).join(", ")
}

/// A handler's policy file as install writes it when there is none; `systemd_cgroup` when the node's
/// runc handler uses the systemd cgroup driver.
pub fn policy_text(
    handler: &Handler,
    path: &Path,
    systemd_cgroup: bool,
    containerd: &ContainerdDirs,
) -> String {
    let mut text = format!(
        "# The strict runtime's policy for the `{name}` handler (RuntimeClass `{name}`), written by\n\
         # `strictctl install`. Edit it freely: install never overwrites it, and uninstall removes it only\n\
         # while it is unchanged. Every key: docs/operations.md. Check a change before pods use it:\n\
         #   strictctl config check {path}\n\
         # A pod's shim reads this file when it starts: a change applies to pods created afterwards.\n\
         \n\
         # Whose plugs apply (vendor-profiles/snaps/<snap>.toml).\n\
         snap = \"microk8s\"\n\
         # enforce: refuse and narrow; complain: run everything, record what would have been refused.\n\
         mode = \"{mode}\"\n\
         # The name in the audit trail for containers started without CRI (ctr).\n\
         handler = \"{name}\"\n\
         # Connected plugs: snapctl inside the snap, else snapd, else the snap's default connections.\n\
         source = \"auto\"\n",
        name = handler.name,
        mode = handler.mode,
        path = path.display(),
    );
    if systemd_cgroup {
        text.push_str(
            "\n# The node's runc handler uses the systemd cgroup driver (SystemdCgroup = true): the kubelet\n\
             # names cgroups slice:prefix:name, which runc takes only with --systemd-cgroup.\n\
             [runtime]\n\
             systemd_cgroup = true\n",
        );
    }
    if let Some(node) = containerd.node_table() {
        text.push_str(&node);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_files_load_with_their_mode() {
        let dir = tempfile::tempdir().unwrap();
        for handler in HANDLERS {
            let path = dir.path().join(handler.policy_file);
            for systemd_cgroup in [false, true] {
                std::fs::write(
                    &path,
                    policy_text(&handler, &path, systemd_cgroup, &ContainerdDirs::default()),
                )
                .unwrap();
                let config = strict_policy::PolicyConfig::load(&path).unwrap();
                assert_eq!(config.mode.to_string(), handler.mode);
                assert_eq!(config.handler, handler.name);
                assert_eq!(config.runtime.systemd_cgroup, systemd_cgroup);
            }
        }
    }
}
