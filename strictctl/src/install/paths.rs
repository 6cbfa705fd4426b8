//! Where install puts things, below the node's root.

/// The drop-in's file name, in `conf.d` or next to the main configuration.
pub const DROP_IN_FILE: &str = "strict-runtimes.toml";
/// Below the root: where the binaries go.
pub const BIN_DIR: &str = "usr/local/bin";
/// Below the root: the policy files and, without `conf.d`, the drop-in.
pub const ETC_DIR: &str = "etc/containerd";
/// Below the root: containerd 2.2's drop-in directory.
pub const CONF_D_DIR: &str = "etc/containerd/conf.d";
/// Below the root: containerd's main configuration, unless `--containerd-config` names another.
pub const MAIN_CONFIG: &str = "etc/containerd/config.toml";
/// Below the root: the manifest of what install wrote, and the main configuration as it was.
pub const STATE_DIR: &str = "var/lib/strict";
pub const MANIFEST_FILE: &str = "install.json";
/// In [`STATE_DIR`]: the main configuration as it was before install added its `imports` entry.
pub const CONFIG_BACKUP_FILE: &str = "containerd-config.before-install.toml";
