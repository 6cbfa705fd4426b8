//! Task events to containerd. `EventSink` is the seam: containerd's publisher in the shim, a recorder in tests.

use std::sync::Arc;

use async_trait::async_trait;
use containerd_shim::protos::protobuf::MessageDyn;
use containerd_shim::publisher::RemotePublisher;
use containerd_shim::Context;

#[async_trait]
pub trait EventSink: Send + Sync {
    async fn publish(&self, topic: &str, event: Box<dyn MessageDyn>);
}

/// containerd's ttrpc event service, for one namespace.
pub struct Publisher {
    pub remote: RemotePublisher,
    pub namespace: String,
}

#[async_trait]
impl EventSink for Publisher {
    async fn publish(&self, topic: &str, event: Box<dyn MessageDyn>) {
        if let Err(error) = self
            .remote
            .publish(Context::default(), topic, &self.namespace, event)
            .await
        {
            tracing::warn!(%topic, %error, "publishing an event failed");
        }
    }
}

/// Keeps events in order of publication (tests).
#[derive(Default)]
pub struct Recorder {
    pub events: std::sync::Mutex<Vec<(String, String)>>,
}

#[async_trait]
impl EventSink for Recorder {
    async fn publish(&self, topic: &str, event: Box<dyn MessageDyn>) {
        let text = containerd_shim::protos::protobuf::text_format::print_to_string(&*event);
        self.events.lock().unwrap().push((topic.to_string(), text));
    }
}

pub type Events = Arc<dyn EventSink>;

pub mod topics {
    pub const CREATE: &str = "/tasks/create";
    pub const START: &str = "/tasks/start";
    pub const EXIT: &str = "/tasks/exit";
    pub const DELETE: &str = "/tasks/delete";
    pub const EXEC_ADDED: &str = "/tasks/exec-added";
    pub const EXEC_STARTED: &str = "/tasks/exec-started";
    pub const PAUSED: &str = "/tasks/paused";
    pub const RESUMED: &str = "/tasks/resumed";
    pub const OOM: &str = "/tasks/oom";
}
