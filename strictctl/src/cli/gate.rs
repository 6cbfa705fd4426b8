//! `strictctl gate` (hidden): the shim's policy gate, one request on stdin (see `crate::gate`).

use clap::Args;

#[derive(Args)]
pub struct GateArgs {
    /// The containerd namespace of the shim that asks.
    #[arg(long, default_value = "default")]
    namespace: String,
    /// The request is an exec: load the configuration only, not the profiles and connections.
    #[arg(long)]
    exec: bool,
}

/// Answers the request; the exit status is the gate's.
pub fn run(args: GateArgs) -> i32 {
    crate::gate::serve(&args.namespace, args.exec)
}
