//! The `delete` action: containerd runs `containerd-shim-strict-v2 delete` when a shim died, to clean up
//! after it: the runtime's state of the container, its processes, the rootfs mount and the pinned mount
//! sources.

use std::path::PathBuf;
use std::time::SystemTime;

use containerd_shim::protos::protobuf::MessageField;
use containerd_shim::DeleteResponse;

use strict_protocol::AdmittedRuntime;

use crate::exits::Exits;
use crate::runtime::{saved_runtime, OciRuntime, RuncCli};

/// Cleans up container `id` of containerd namespace `namespace`, whose bundle is `bundle` (empty: the
/// current directory, where containerd runs the action).
pub async fn delete(
    namespace: &str,
    id: &str,
    bundle: &str,
) -> containerd_shim::Result<DeleteResponse> {
    let bundle = if bundle.is_empty() {
        std::env::current_dir().unwrap_or_default()
    } else {
        PathBuf::from(bundle)
    };
    let exits = Exits::start()
        .await
        .map_err(|e| containerd_shim::Error::Other(e.to_string()))?;
    // The runtime that created the container, as the bundle recorded it before `runtime create`. Without
    // the record the runtime never saw the container; the defaults then only make the delete a no-op.
    let saved = saved_runtime(&bundle).unwrap_or_else(|| AdmittedRuntime::default_for(namespace));
    let runtime = RuncCli::with_settings(saved, exits);
    if let Err(error) = runtime.delete(id, true).await {
        // Already gone is fine; anything else is reported but must not stop the cleanup.
        eprintln!("strict shim delete: {error}");
    }
    let rootfs = bundle.join("rootfs");
    let _ = containerd_shim::mount::umount_recursive(rootfs.to_str(), libc::MNT_DETACH);
    crate::pins::release(&bundle);
    // The init's pid, as containerd-shim-runc-v2 reports it: containerd puts it in the TaskExit it publishes.
    let pid = std::fs::read_to_string(bundle.join("init.pid"))
        .ok()
        .and_then(|pid| pid.trim().parse().ok())
        .unwrap_or(0);
    Ok(DeleteResponse {
        pid,
        exit_status: 128 + libc::SIGKILL as u32,
        exited_at: MessageField::some(SystemTime::now().into()),
        ..Default::default()
    })
}
