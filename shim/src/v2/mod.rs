//! `containerd-shim-strict-v2`: containerd's shim v2 contract over runc, with the policy gate in Create.
//! One file per stage: `start` (the start action), `delete` (the delete action), `task` (the running shim's
//! task service), with the container lifecycle in `container`.

pub mod console;
pub mod container;
pub mod delete;
pub mod error;
pub mod events;
pub mod exits;
pub mod gate;
pub mod gate_process;
pub mod io;
pub mod logging;
pub mod oom;
pub mod options;
pub mod pods;
pub mod runtime;
pub mod start;
pub mod stats;
pub mod task;
#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use containerd_shim::publisher::RemotePublisher;
use containerd_shim::{Config, DeleteResponse, ExitSignal, Flags, StartOpts};
use strict_policy::PolicyConfig;

use crate::v2::container::Context;
use crate::v2::events::Publisher;
use crate::v2::exits::Exits;
use crate::v2::gate_process::{gate_binary, GateProcesses};
use crate::v2::runtime::RuncCli;
use crate::v2::task::TaskService;

/// The runtime type containerd knows the shim by.
pub const RUNTIME_TYPE: &str = "io.containerd.strict.v2";

/// The configuration file, overridable for tests and unusual installs.
pub const CONFIG_ENV: &str = "STRICT_CONFIG";

pub struct StrictShim {
    args: ShimArgs,
    exit: Arc<ExitSignal>,
}

/// What the shim keeps of its command line.
#[derive(Clone, Debug)]
pub struct ShimArgs {
    pub debug: bool,
    pub namespace: String,
    pub id: String,
    pub bundle: String,
}

pub fn config_file() -> Option<PathBuf> {
    std::env::var_os(CONFIG_ENV).map(PathBuf::from)
}

/// The runtime's state directory for a namespace, as containerd-shim-runc-v2 lays it out.
pub fn runtime_root(config: &PolicyConfig, namespace: &str) -> PathBuf {
    config.runtime.root.join(namespace)
}

#[async_trait]
impl containerd_shim::Shim for StrictShim {
    type T = TaskService;

    async fn new(_runtime_id: &str, flags: &Flags, config: &mut Config) -> Self {
        // The shim's own logs go through `tracing` to the bundle's log fifo (see logging.rs).
        config.no_setup_logger = true;
        let args = ShimArgs {
            debug: flags.debug,
            namespace: flags.namespace.clone(),
            id: flags.id.clone(),
            bundle: flags.bundle.clone(),
        };
        StrictShim {
            args,
            exit: Arc::new(ExitSignal::default()),
        }
    }

    async fn start_shim(&mut self, opts: StartOpts) -> containerd_shim::Result<String> {
        start::start(opts).await
    }

    async fn delete_shim(&mut self) -> containerd_shim::Result<DeleteResponse> {
        delete::delete(&self.args).await
    }

    async fn wait(&mut self) {
        self.exit.wait().await;
    }

    async fn create_task_service(&self, publisher: RemotePublisher) -> TaskService {
        logging::init(self.args.debug);
        let exits = Exits::start()
            .await
            .expect("subscribing to the reaper cannot fail");
        // The policy lives in the gate process (gate_process.rs); the first one starts now, so it has
        // loaded by the time containerd sends the first Create. It also names the runtime.
        let gate = GateProcesses::new(
            gate_binary(),
            &self.args.namespace,
            self.args.debug,
            exits.clone(),
        );
        tracing::info!(
            namespace = %self.args.namespace,
            id = %self.args.id,
            "strict shim serving"
        );
        let ctx = Context {
            namespace: self.args.namespace.clone(),
            runtime: Arc::new(RuncCli::new(exits.clone())),
            exits,
            events: Arc::new(Publisher::new(
                publisher.address.clone(),
                self.args.namespace.clone(),
            )),
            gate: Arc::new(gate),
            serving: options::request_from_env(),
            pods: Arc::default(),
        };
        TaskService::new(ctx, self.exit.clone())
    }
}
