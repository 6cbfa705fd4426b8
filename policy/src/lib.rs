//! The strict gate's policy: what a container may have on a node run by a strictly confined snap.
//!
//! [`Catalog`] holds the vendor profiles (what each snap interface grants a workload), [`Permissions`]
//! the host's: the base profile plus the connected plugs plus the node configuration. [`evaluate`]
//! intersects an OCI spec with them and returns a [`Verdict`]: allowed, narrowed (the spec was rewritten)
//! or refused (every violation listed, with the plugs that would grant it). No containerd in here.

mod arches;
pub mod config;
pub mod document;
pub mod error;
pub mod fields;
pub mod host;
pub mod pattern;
pub mod permissions;
pub mod profile;
pub mod rootfs;
mod rules;
pub mod runtime_advisories;
pub mod verdict;

pub use config::{AuditSettings, Mode, OnRevoke, PolicyConfig, RuntimeSettings, Source};
pub use document::{
    evaluate_document, evaluate_document_in, parse_process, parse_spec, write_atomically, Document,
};
pub use error::{Error, Result};
pub use host::{
    FakeHost, FileKind, HostView, OpenedSource, PinningHost, PodNamespaces, PodOwner, RealHost,
};
pub use permissions::Permissions;
pub use profile::{AttrValue, Catalog, Plug};
pub use rules::{evaluate, evaluate_exec, evaluate_in, Context};
pub use verdict::{Narrowing, Outcome, Verdict, Violation, MESSAGE_LIMIT};
