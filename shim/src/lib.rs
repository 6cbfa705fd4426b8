//! `containerd-shim-strict-v2`: containerd's shim v2 contract (task API v3) over runc or crun. One shim
//! runs per pod for the pod's whole life; it holds no policy. Every Create, Exec and Update is decided by a
//! `strictctl gate` process (`gate_client`), and the shim runs only what the gate admitted.
//!
//! One file per stage: `start` and `delete` (the actions containerd runs the binary for), `shim` (the
//! long-running shim's set-up), `task` (the task service), `container` (one container's lifecycle),
//! `task_state` (the states of its processes and their legal transitions).

pub mod cgroup;
pub mod console;
pub mod container;
pub mod delete;
pub mod error;
pub mod events;
pub mod exits;
pub mod gate_client;
pub mod io;
pub mod logging;
pub mod oom;
pub mod options;
pub mod pins;
pub mod pods;
pub mod runtime;
pub mod shim;
pub mod start;
pub mod stats;
pub mod task;
pub mod task_state;
#[cfg(test)]
mod tests;

pub use shim::StrictShim;
pub use strict_protocol::names::RUNTIME_TYPE;
