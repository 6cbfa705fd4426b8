//! The names containerd, the installer and the two programs find each other by.

/// The runtime type containerd knows the shim by (`io.containerd.strict.v2` → `containerd-shim-strict-v2`).
pub const RUNTIME_TYPE: &str = "io.containerd.strict.v2";
/// The shim's file name, as containerd derives it from the runtime type.
pub const SHIM_BINARY: &str = "containerd-shim-strict-v2";
/// The operator CLI's file name; the shim runs it as its policy gate (`strictctl gate`).
pub const STRICTCTL_BINARY: &str = "strictctl";
