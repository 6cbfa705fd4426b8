//! The intersection of a spec with the host permissions, one module per area of the spec. Each rule either
//! records a violation (the container is refused) or narrows the spec in place and records the change.

mod capabilities;
mod devices;
mod evaluation;
mod exec;
mod hardening;
mod hooks;
mod mounts;
mod namespaces;
mod privileged;
mod process;
mod seccomp;
mod spec_fields;
mod sysctls;

pub use exec::evaluate_exec;

use oci_spec::runtime::Spec;

use crate::host::{HostView, PodNamespaces};
use crate::permissions::Permissions;
use crate::verdict::Verdict;
use evaluation::Evaluation;

/// Intersects `spec` with `perms`. On `allowed` the spec is untouched; on `narrowed` it has been rewritten
/// in place (each change is in the verdict); on `refused` it is in an unspecified state and must not run.
pub fn evaluate(spec: &mut Spec, perms: &Permissions, host: &dyn HostView) -> Verdict {
    evaluate_in_pod(spec, perms, host, None)
}

/// [`evaluate`] for an app container of a pod: namespace paths must lead to the pod's own namespaces.
pub fn evaluate_in_pod(
    spec: &mut Spec,
    perms: &Permissions,
    host: &dyn HostView,
    pod: Option<&PodNamespaces>,
) -> Verdict {
    let mut ev = Evaluation {
        perms,
        host,
        pod,
        verdict: Verdict::default(),
    };
    // A privileged spec is one bundle of effects; when it is allowed those effects are not checked one by
    // one, and when it is refused they are reported once, as `privileged`.
    let privileged = privileged::check(spec, &mut ev);
    spec_fields::check(spec, &mut ev);
    process::check(spec, &mut ev, privileged);
    hooks::check(spec, &mut ev);
    mounts::check(spec, &mut ev, privileged);
    devices::check(spec, &mut ev, privileged);
    capabilities::check(spec, &mut ev, privileged);
    namespaces::check(spec, &mut ev, privileged);
    sysctls::check(spec, &mut ev);
    hardening::check(spec, &mut ev, privileged);
    seccomp::check(spec, &mut ev, privileged);
    ev.verdict
}
