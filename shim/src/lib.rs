//! The strict shim's crate: `containerd-shim-strict-v2` and `strictctl` share the setup code here.

pub mod annotations;
pub mod audit;
pub mod install;
pub mod setup;
pub mod sources;
pub mod strictctl;
pub mod v2;
