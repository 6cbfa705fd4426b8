//! containerd's gRPC API for the tests (`containerd-client`, tonic): the test bed's socket, the namespace
//! header, the Tasks service calls the tests drive, and an Events subscription that collects what it sees.
//!
//! Shared by `events.rs` and `resources.rs` (`mod grpc;`); not a test binary of its own.

#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use containerd_client::events::{ContainerDelete, TaskExit};
use containerd_client::services::v1::containers_client::ContainersClient;
use containerd_client::services::v1::events_client::EventsClient;
use containerd_client::services::v1::snapshots::snapshots_client::SnapshotsClient;
use containerd_client::services::v1::snapshots::MountsRequest;
use containerd_client::services::v1::tasks_client::TasksClient;
use containerd_client::services::v1::{
    CreateTaskRequest, GetContainerRequest, PublishRequest, SubscribeRequest,
};
use containerd_client::tonic::transport::Channel;
use containerd_client::tonic::{Request, Status};
use prost_types::Any;
use strict_integration::{Testbed, NAMESPACE};

/// The OCI types containerd sends as JSON inside an `Any` (typeurl's registrations for runtime-spec).
pub const LINUX_RESOURCES: &str =
    "types.containerd.io/opencontainers/runtime-spec/1/LinuxResources";
pub const PROCESS: &str = "types.containerd.io/opencontainers/runtime-spec/1/Process";

/// A request in the test namespace.
pub fn ns<T>(message: T) -> Request<T> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert("containerd-namespace", NAMESPACE.parse().unwrap());
    request
}

pub fn json_any(type_url: &str, value: &serde_json::Value) -> Any {
    Any {
        type_url: type_url.to_string(),
        value: serde_json::to_vec(value).unwrap(),
    }
}

pub async fn connect(tb: &Testbed) -> Channel {
    containerd_client::connect(&tb.address)
        .await
        .unwrap_or_else(|e| panic!("connecting to {}: {e}", tb.address.display()))
}

pub fn tasks(channel: &Channel) -> TasksClient<Channel> {
    TasksClient::new(channel.clone())
}

/// A call with a deadline: a hung shim fails the test instead of hanging it.
pub async fn within<T>(what: &str, future: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(60), future)
        .await
        .unwrap_or_else(|_| panic!("{what} did not answer within 60 s"))
}

/// The container's spec (JSON) as containerd stores it.
pub async fn container_spec(channel: &Channel, id: &str) -> serde_json::Value {
    let container = ContainersClient::new(channel.clone())
        .get(ns(GetContainerRequest { id: id.into() }))
        .await
        .unwrap_or_else(|e| panic!("getting container {id}: {e}"))
        .into_inner()
        .container
        .expect("a container");
    serde_json::from_slice(&container.spec.expect("a spec").value).unwrap()
}

/// Tasks.Create for a container made by `ctr containers create` (which prepared its snapshot, key = the
/// container id): the rootfs mounts come from the Snapshots service, as containerd's Go client does it.
/// No stdio (empty paths: the shim's null IO); `terminal` as the container's spec says.
pub async fn create_task(channel: &Channel, id: &str, terminal: bool) -> Result<u32, Status> {
    let container = ContainersClient::new(channel.clone())
        .get(ns(GetContainerRequest { id: id.into() }))
        .await?
        .into_inner()
        .container
        .expect("a container");
    let rootfs = SnapshotsClient::new(channel.clone())
        .mounts(ns(MountsRequest {
            snapshotter: container.snapshotter.clone(),
            key: container.snapshot_key.clone(),
        }))
        .await?
        .into_inner()
        .mounts;
    let response = tasks(channel)
        .create(ns(CreateTaskRequest {
            container_id: id.into(),
            rootfs,
            terminal,
            ..Default::default()
        }))
        .await?;
    Ok(response.into_inner().pid)
}

/// One event as the subscription received it.
#[derive(Clone, Debug)]
pub struct Event {
    pub topic: String,
    pub payload: Any,
}

impl Event {
    /// The payload decoded (containerd's type URLs lack the leading slash prost wants).
    pub fn decode<M: prost::Message + prost::Name + Default>(&self) -> M {
        let mut any = self.payload.clone();
        if !any.type_url.starts_with('/') {
            any.type_url.insert(0, '/');
        }
        any.to_msg()
            .unwrap_or_else(|e| panic!("decoding {}: {e}", self.payload.type_url))
    }

    /// For /tasks/exit: (process id — the container id for the init, else the exec id —, exit status).
    pub fn exit(&self) -> (String, u32) {
        let exit: TaskExit = self.decode();
        (exit.id, exit.exit_status)
    }
}

/// An Events subscription for one container's task events (`event.container_id=="<id>"`), collected in
/// the background. `subscribe` returns once containerd delivers to it (a probe event went through), so
/// nothing the test does afterwards can be missed.
pub struct Subscription {
    pub id: String,
    seen: Arc<Mutex<Vec<Event>>>,
    channel: Channel,
    probe_topic: String,
    probes: u32,
}

pub async fn subscribe(channel: &Channel, id: &str) -> Subscription {
    let probe_topic = format!("/strict-it/probe/{id}");
    let filters = vec![
        format!("namespace=={NAMESPACE:?},event.container_id=={id:?}"),
        format!("namespace=={NAMESPACE:?},topic=={probe_topic:?}"),
    ];
    let seen: Arc<Mutex<Vec<Event>>> = Arc::default();
    let collector = seen.clone();
    let mut client = EventsClient::new(channel.clone());
    // containerd sends the stream's headers with its first event: the call resolves only then, so it runs
    // in the background while probes are published.
    tokio::spawn(async move {
        let mut stream = match client.subscribe(SubscribeRequest { filters }).await {
            Ok(response) => response.into_inner(),
            Err(status) => panic!("subscribing to events: {status}"),
        };
        while let Ok(Some(envelope)) = stream.message().await {
            collector.lock().unwrap().push(Event {
                topic: envelope.topic,
                payload: envelope.event.unwrap_or_default(),
            });
        }
    });
    let mut subscription = Subscription {
        id: id.to_string(),
        seen,
        channel: channel.clone(),
        probe_topic,
        probes: 0,
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let probe = subscription.probe().await;
        if subscription
            .wait_probe(&probe, Duration::from_millis(200))
            .await
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the events subscription received nothing"
        );
    }
    subscription
}

impl Subscription {
    async fn probe(&mut self) -> String {
        self.probes += 1;
        let marker = format!("probe-{}", self.probes);
        EventsClient::new(self.channel.clone())
            .publish(ns(PublishRequest {
                topic: self.probe_topic.clone(),
                event: Some(containerd_client::to_any(&ContainerDelete {
                    id: marker.clone(),
                })),
            }))
            .await
            .unwrap_or_else(|e| panic!("publishing a probe event: {e}"));
        marker
    }

    async fn wait_probe(&self, marker: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            let found =
                self.seen.lock().unwrap().iter().any(|e| {
                    e.topic == self.probe_topic && e.decode::<ContainerDelete>().id == marker
                });
            if found {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        false
    }

    /// Everything received so far that is not a probe.
    pub fn events(&self) -> Vec<Event> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|e| e.topic != self.probe_topic)
            .cloned()
            .collect()
    }

    pub fn topics(&self) -> Vec<String> {
        self.events().into_iter().map(|e| e.topic).collect()
    }

    /// Waits until an event satisfies `done`; fails the test with what was seen after `timeout`.
    pub async fn wait_for(&self, what: &str, timeout: Duration, done: impl Fn(&Event) -> bool) {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.events().iter().any(&done) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!(
            "no {what} event for {} within {timeout:?}; seen: {:?}",
            self.id,
            self.topics()
        );
    }

    /// Everything published before now has been delivered: a probe published now has come through.
    pub async fn settle(&mut self) {
        let probe = self.probe().await;
        assert!(
            self.wait_probe(&probe, Duration::from_secs(10)).await,
            "a probe event did not come through"
        );
    }
}
