//! What the two programs of strict agree on: the JSON between the long-running shim
//! (`containerd-shim-strict-v2`) and its policy gate (`strictctl gate`), the pod namespace record the shim
//! keeps and sends with every Create, which configuration a container asks for, and the names both use
//! (runtime type, binaries, environment variables, CRI's annotations).
//!
//! Serde only, and no policy: the shim links this crate and nothing of `strict-policy`.

pub mod annotations;
pub mod config_request;
pub mod gate;
pub mod names;
pub mod pods;
pub mod runtime;

pub use config_request::ConfigRequest;
pub use gate::{Admitted, Answer, Envelope, ExecBaseline, Request, RootfsMount, PROTOCOL};
pub use pods::{NamespaceId, NamespaceKind, PodNamespaces, PodRole};
pub use runtime::AdmittedRuntime;
