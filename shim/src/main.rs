//! containerd-shim-strict-v2: see shim/src/lib.rs.

use strict_shim::{StrictShim, RUNTIME_TYPE};

// The system allocator, not mimalloc: one shim runs per pod, and mimalloc's eagerly committed arena cost
// ~14 MiB of RSS per shim for a gain of microseconds per container (docs/benchmarks.md).

// Two workers whatever the node's size: a shim waits on pipes, fifos and runc, and tokio's default (one
// worker per CPU) would give every pod's shim 64 threads, their stacks and malloc arenas on a 64-core node.
#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    // `-v` is answered here: containerd-shim's own flag parsing does not print a version.
    if std::env::args()
        .skip(1)
        .any(|a| a == "-v" || a == "--version" || a == "-version")
    {
        println!("containerd-shim-strict-v2:");
        println!("  Version:  {}", env!("CARGO_PKG_VERSION"));
        println!("  Runtime:  {RUNTIME_TYPE}");
        return;
    }
    containerd_shim::asynchronous::run::<StrictShim>(RUNTIME_TYPE, None).await;
}
