//! Task events to containerd. `EventSink` is the seam: containerd's publisher in the shim, a recorder in tests.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use containerd_shim::protos::protobuf::{MessageDyn, MessageFull};
use std::os::fd::IntoRawFd;

use containerd_shim::protos::protobuf;
use containerd_shim::protos::protobuf::well_known_types::any::Any;
use containerd_shim::protos::protobuf::well_known_types::timestamp::Timestamp;
use containerd_shim::protos::shim::event::Envelope;
use containerd_shim::protos::shim::events::ForwardRequest;
use containerd_shim::protos::shim_async::{Client, EventsClient};
use containerd_shim::protos::ttrpc::context::Context;

#[async_trait]
pub trait EventSink: Send + Sync {
    async fn publish(&self, topic: &str, event: Box<dyn MessageDyn>);
}

/// containerd's ttrpc event service, for one namespace.
///
/// Not containerd-shim's `RemotePublisher`: that one reconnects only on some errors and gives up on an
/// event after five tries, so events were lost across a containerd restart (a dead connection reports
/// "reserve channel capacity failed", not "closed"). Here one task forwards events in order; on any
/// error it reconnects and retries the same event, with backoff, for as long as containerd may take to
/// come back. Callers only enqueue, so a slow containerd never blocks the task service.
pub struct Publisher {
    queue: tokio::sync::mpsc::UnboundedSender<Envelope>,
    namespace: String,
}

/// How long one event is retried before it is dropped (and the loss logged).
const RETRY_FOR: Duration = Duration::from_secs(300);

impl Publisher {
    /// Publishes to containerd's ttrpc `address` (TTRPC_ADDRESS; containerd-shim's publisher knows it).
    pub fn new(address: String, namespace: String) -> Publisher {
        let (queue, mut pending) = tokio::sync::mpsc::unbounded_channel::<Envelope>();
        tokio::spawn(async move {
            let mut client: Option<EventsClient> = None;
            while let Some(envelope) = pending.recv().await {
                let topic = envelope.topic.clone();
                let mut request = ForwardRequest::new();
                request.set_envelope(envelope);
                let deadline = tokio::time::Instant::now() + RETRY_FOR;
                let mut backoff = Duration::from_millis(50);
                loop {
                    if client.is_none() {
                        client = connect(&address).await;
                    }
                    if let Some(events) = &client {
                        match events.forward(Context::default(), &request).await {
                            Ok(_) => break,
                            Err(error) => {
                                tracing::debug!(%topic, %error, "forwarding an event failed; reconnecting");
                                client = None;
                            }
                        }
                    }
                    if tokio::time::Instant::now() + backoff > deadline {
                        tracing::error!(%topic, "containerd did not take the event for {RETRY_FOR:?}: dropped");
                        break;
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                }
            }
        });
        Publisher { queue, namespace }
    }
}

async fn connect(address: &str) -> Option<EventsClient> {
    let path = address
        .strip_prefix("unix://")
        .unwrap_or(address)
        .to_owned();
    match tokio::task::spawn_blocking(move || std::os::unix::net::UnixStream::connect(path)).await {
        Ok(Ok(stream)) => {
            // SAFETY: the fd is a connected unix socket whose ownership passes to the client.
            let client = unsafe { Client::from_raw_unix_socket_fd(stream.into_raw_fd()) };
            Some(EventsClient::new(client))
        }
        Ok(Err(error)) => {
            tracing::debug!(%address, %error, "connecting to containerd's event service");
            None
        }
        Err(_) => None,
    }
}

#[async_trait]
impl EventSink for Publisher {
    async fn publish(&self, topic: &str, event: Box<dyn MessageDyn>) {
        let mut envelope = Envelope::new();
        envelope.set_topic(topic.to_owned());
        envelope.set_namespace(self.namespace.clone());
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let mut timestamp = Timestamp::new();
        timestamp.seconds = now.as_secs() as i64;
        timestamp.nanos = now.subsec_nanos() as i32;
        envelope.set_timestamp(timestamp);
        // containerd's form of Any: the bare message name as the type URL.
        match to_any(topic, event.as_ref()) {
            Ok(any) => envelope.set_event(any),
            Err(error) => {
                tracing::error!(%topic, %error, "encoding an event");
                return;
            }
        }
        if self.queue.send(envelope).is_err() {
            tracing::error!(%topic, "the event publisher has stopped");
        }
    }
}

/// The event as containerd's `Any`. The type URL of the shim's own topics comes from `topics::type_url`:
/// asking the message for its descriptor (what `containerd_shim::util::convert_to_any` does) builds
/// protobuf's reflection tables for the whole events file and its dependencies, ~0.5 MiB of heap and code
/// that would stay resident in every shim for the sake of one constant string.
pub fn to_any(topic: &str, event: &dyn MessageDyn) -> protobuf::Result<Any> {
    let mut any = Any::new();
    any.value = event.write_to_bytes_dyn()?;
    any.type_url = match topics::type_url(topic) {
        Some(url) => url.to_string(),
        None => event.descriptor_dyn().full_name().to_string(),
    };
    Ok(any)
}

/// Keeps events in order of publication (tests). Like containerd's publisher, whose queue may make a
/// publication wait, it yields before recording, and a topic can be made slower still.
#[derive(Default)]
pub struct Recorder {
    pub events: Mutex<Vec<(String, Box<dyn MessageDyn>)>>,
    slow: Mutex<HashMap<String, Duration>>,
}

impl Recorder {
    /// Publications of `topic` take `delay` before they are recorded.
    pub fn slow_down(&self, topic: &str, delay: Duration) {
        self.slow.lock().unwrap().insert(topic.to_string(), delay);
    }

    /// The topics published so far, in order.
    pub fn topics(&self) -> Vec<String> {
        let events = self.events.lock().unwrap();
        events.iter().map(|(topic, _)| topic.clone()).collect()
    }

    /// The events of type `M` published so far, in order.
    pub fn all<M: MessageFull>(&self) -> Vec<M> {
        let events = self.events.lock().unwrap();
        events
            .iter()
            .filter_map(|(_, event)| event.downcast_ref::<M>().cloned())
            .collect()
    }
}

#[async_trait]
impl EventSink for Recorder {
    async fn publish(&self, topic: &str, event: Box<dyn MessageDyn>) {
        let delay = self.slow.lock().unwrap().get(topic).copied();
        match delay {
            Some(delay) => tokio::time::sleep(delay).await,
            None => tokio::task::yield_now().await,
        }
        self.events.lock().unwrap().push((topic.to_string(), event));
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

    /// The message type each topic carries (containerd's `events` package), as containerd names it.
    pub fn type_url(topic: &str) -> Option<&'static str> {
        Some(match topic {
            CREATE => "containerd.events.TaskCreate",
            START => "containerd.events.TaskStart",
            EXIT => "containerd.events.TaskExit",
            DELETE => "containerd.events.TaskDelete",
            EXEC_ADDED => "containerd.events.TaskExecAdded",
            EXEC_STARTED => "containerd.events.TaskExecStarted",
            PAUSED => "containerd.events.TaskPaused",
            RESUMED => "containerd.events.TaskResumed",
            OOM => "containerd.events.TaskOOM",
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use containerd_shim::protos::events::task::{
        TaskCreate, TaskDelete, TaskExecAdded, TaskExecStarted, TaskExit, TaskOOM, TaskPaused,
        TaskResumed, TaskStart,
    };

    #[test]
    fn type_urls_are_the_messages_full_names() {
        let events: Vec<(&str, Box<dyn MessageDyn>)> = vec![
            (topics::CREATE, Box::new(TaskCreate::new())),
            (topics::START, Box::new(TaskStart::new())),
            (topics::EXIT, Box::new(TaskExit::new())),
            (topics::DELETE, Box::new(TaskDelete::new())),
            (topics::EXEC_ADDED, Box::new(TaskExecAdded::new())),
            (topics::EXEC_STARTED, Box::new(TaskExecStarted::new())),
            (topics::PAUSED, Box::new(TaskPaused::new())),
            (topics::RESUMED, Box::new(TaskResumed::new())),
            (topics::OOM, Box::new(TaskOOM::new())),
        ];
        for (topic, event) in events {
            let any = to_any(topic, event.as_ref()).unwrap();
            assert_eq!(any.type_url, event.descriptor_dyn().full_name(), "{topic}");
            let reference = containerd_shim::util::convert_to_any(event).unwrap();
            assert_eq!(any, reference, "{topic}");
        }
        let other = to_any("/other", &TaskStart::new()).unwrap();
        assert_eq!(other.type_url, "containerd.events.TaskStart");
    }
}
