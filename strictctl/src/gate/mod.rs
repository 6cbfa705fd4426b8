//! `strictctl gate`: the process that decides for the shim. The shim (`containerd-shim-strict-v2`) starts
//! one per question (Create, Exec, Update) and writes the request on its stdin; the gate loads the
//! configuration and the policy, answers on stdout and exits (`strict_protocol::gate` is the wire).
//!
//! - `serve.rs`: the process: read the request, check the protocol version, answer.
//! - `decide.rs`: the decisions: config.json evaluated and the evaluated spec written back atomically
//!   before the runtime reads it (enforce) or left as it came (complain); execs and updates judged against
//!   the bundle's spec; failing closed when the configuration, profiles or connections do not load.
//! - `record.rs`: every decision logged and appended to the audit trail.
//! - `pins.rs`: the bind sources judged, bind-mounted into the bundle for the runtime to mount.
//! - `pods.rs`: what CRI's annotations say a container is, its pod's namespaces and its own files.
//! - `cgroup_driver.rs`: a container's cgroup path against the driver runc is run with.
//! - `exec_baseline.rs`: the execs (exec probes) the shim may allow without a gate, worked out at Create.
//! - `features.rs`: the runtime's seccomp flags, mount options and version (`runc features`), cached
//!   next to its state.
//! - `logging.rs`: the gate's logs, into the shim's log fifo (containerd's log).

pub mod cgroup_driver;
pub mod decide;
pub mod error;
pub mod exec_baseline;
pub mod features;
pub mod logging;
pub mod pins;
pub mod pods;
pub mod record;
pub mod serve;

pub use decide::{Checked, ConfigLoad, Gate};
pub use error::GateError;
pub use serve::{answer, serve};
