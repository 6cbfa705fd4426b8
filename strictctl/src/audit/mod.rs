//! The audit trail: one JSON line per decision (container, sandbox, exec, update), appended by every gate
//! process on the node to one file with size-based rotation (writer.rs). `strictctl audit` reads it back
//! (report.rs), together with the kernel's seccomp log of narrowed containers (kernel.rs).

pub mod kernel;
pub mod record;
pub mod report;
pub mod writer;

pub use record::{Decision, Identity, Record, Subject};
pub use writer::AuditLog;
