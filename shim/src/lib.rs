//! The strict shim's crate: `containerd-shim-strict-v2` and `strictctl` share the setup code here.

pub mod setup;
pub mod strictctl;
pub mod v2;
