//! The long-running shim: containerd's `Shim` trait on the `containerd-shim` crate. Its flags, the task
//! service it builds, and the first gate process, started with it.

use std::sync::Arc;

use async_trait::async_trait;
use containerd_shim::publisher::RemotePublisher;
use containerd_shim::{Config, DeleteResponse, ExitSignal, Flags, StartOpts};
use strict_protocol::ConfigRequest;

use crate::container::Context;
use crate::events::Publisher;
use crate::exits::Exits;
use crate::gate_client::{gate_binary, GateProcesses};
use crate::runtime::RuncCli;
use crate::task::TaskService;
use crate::{delete, logging, start};

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
        delete::delete(&self.args.namespace, &self.args.id, &self.args.bundle).await
    }

    async fn wait(&mut self) {
        self.exit.wait().await;
    }

    async fn create_task_service(&self, publisher: RemotePublisher) -> TaskService {
        logging::init(self.args.debug);
        let exits = Exits::start()
            .await
            .expect("subscribing to the reaper cannot fail");
        // The policy lives in the gate process (gate_client.rs); the first one starts now, so it has
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
            serving: ConfigRequest::from_env(),
            pods: Arc::default(),
        };
        TaskService::new(ctx, self.exit.clone())
    }
}
