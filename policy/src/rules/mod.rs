//! The intersection of a spec with the host permissions, one module per area of the spec. Each rule either
//! records a violation (the container is refused) or narrows the spec in place and records the change.

mod breakouts;
mod capabilities;
mod devices;
mod evaluation;
mod exec;
mod hardening;
mod hooks;
mod mount_options;
mod mounts;
mod namespaces;
mod privileged;
mod process;
mod seccomp;
mod spec_fields;
mod sysctls;

pub use exec::evaluate_exec;

use oci_spec::runtime::Spec;

use std::path::PathBuf;

use crate::host::{HostView, PodNamespaces, PodOwner};
use crate::permissions::Permissions;
use crate::verdict::Verdict;
use evaluation::Evaluation;

/// What the gate knows of a container beyond its spec.
#[derive(Clone, Copy, Debug, Default)]
pub struct Context<'a> {
    /// An app container's pod (started through CRI): the only namespaces it may join.
    pub pod: Option<&'a PodNamespaces>,
    /// The pod the container belongs to, as established against the shim's registry: the files a pod owns
    /// are its own only. None outside CRI: no files are its own.
    pub owner: Option<&'a PodOwner>,
    /// The root filesystem the runtime will see, as directories whose union it is, top first (an overlay's
    /// upper and lower directories, or the one directory). Empty when the gate cannot see it.
    pub rootfs_layers: &'a [PathBuf],
}

/// Intersects `spec` with `perms`. On `allowed` the spec is untouched; on `narrowed` it has been rewritten
/// in place (each change is in the verdict); on `refused` it is in an unspecified state and must not run.
///
/// The pod is the one the spec's CRI annotations claim ([`PodOwner::claimed`]), as `strictctl check`
/// predicts; the gate establishes it against the shim's registry instead ([`evaluate_in`]).
pub fn evaluate(spec: &mut Spec, perms: &Permissions, host: &dyn HostView) -> Verdict {
    let owner = PodOwner::claimed(spec);
    let context = Context {
        owner: owner.as_ref(),
        ..Context::default()
    };
    evaluate_in(spec, perms, host, &context)
}

impl PodOwner {
    /// The pod a spec's CRI annotations name (sandbox id and pod uid); None outside CRI. A claim only:
    /// whoever writes the spec writes these.
    pub fn claimed(spec: &Spec) -> Option<PodOwner> {
        use strict_protocol::annotations::{CONTAINER_TYPE, POD_UID, SANDBOX_ID};
        let annotations = spec.annotations().as_ref()?;
        annotations.get(CONTAINER_TYPE)?;
        let sandbox_id = annotations.get(SANDBOX_ID).filter(|id| !id.is_empty())?;
        Some(PodOwner {
            sandbox_id: sandbox_id.clone(),
            pod_uid: annotations.get(POD_UID).filter(|u| !u.is_empty()).cloned(),
        })
    }
}

/// [`evaluate`] with what the gate knows of the container: its pod and its root filesystem.
pub fn evaluate_in(
    spec: &mut Spec,
    perms: &Permissions,
    host: &dyn HostView,
    context: &Context,
) -> Verdict {
    let mut ev = Evaluation {
        perms,
        host,
        pod: context.pod,
        owner: context.owner,
        verdict: Verdict::default(),
        mount_points: None,
    };
    // A privileged spec is one bundle of effects; when it is allowed those effects are not checked one by
    // one, and when it is refused they are reported once, as `privileged`.
    let privileged = privileged::check(spec, &mut ev);
    spec_fields::check(spec, &mut ev);
    process::check(spec, &mut ev, privileged);
    hooks::check(spec, &mut ev);
    mounts::check(spec, &mut ev, privileged);
    breakouts::check(&mut ev, context.rootfs_layers);
    devices::check(spec, &mut ev, privileged);
    capabilities::check(spec, &mut ev, privileged);
    namespaces::check(spec, &mut ev, privileged);
    sysctls::check(spec, &mut ev);
    hardening::check(spec, &mut ev, privileged);
    seccomp::check(spec, &mut ev, privileged);
    ev.verdict
}
