//! A CRI client for the tests (`k8s-cri` over the test bed's containerd socket): what the kubelet does for a
//! pod, in a few calls. Shared by the CRI test binaries (`mod cri_client;`); not a test binary of its own.

#![allow(dead_code)]

use std::sync::OnceLock;
use std::time::Duration;

use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use k8s_cri::v1::{
    ContainerConfig, ContainerMetadata, CreateContainerRequest, ExecSyncRequest, ExecSyncResponse,
    ImageSpec, LinuxPodSandboxConfig, ListPodSandboxRequest, PodSandboxConfig, PodSandboxMetadata,
    PodSandboxStatusRequest, RemovePodSandboxRequest, RunPodSandboxRequest, StartContainerRequest,
    StopPodSandboxRequest,
};
use strict_integration::{testbed, text, unique, Testbed};
use tonic::transport::Channel;
use tonic::Status;

pub use containerd_client::tonic;

pub const STRICT_HANDLER: &str = "strict";
pub const COMPLAIN_HANDLER: &str = "strict-complain";
/// A node whose snap has only `network` connected.
pub const MINIMAL_HANDLER: &str = "strict-minimal";
/// The Kubernetes namespace of the tests' pods.
pub const POD_NAMESPACE: &str = "strict-tests";
pub const BUSYBOX: &str = "localhost/strict/busybox:1";
/// k8s_cri::v1::ContainerState::ContainerRunning and PodSandboxState::SandboxReady.
pub const CONTAINER_RUNNING: i32 = 1;
pub const SANDBOX_READY: i32 = 0;

#[derive(Clone)]
pub struct Cri {
    pub runtime: RuntimeServiceClient<Channel>,
    /// Where pods' log directories go: created here on the host for the test bed's containerd; `None`
    /// for a containerd on another machine (the node VM), whose pods log under its `/var/log`.
    pod_logs: Option<std::path::PathBuf>,
}

/// A pod that runs: its id and the configuration the containers need.
#[derive(Debug)]
pub struct Pod {
    pub id: String,
    pub config: PodSandboxConfig,
}

/// The test bed's images in CRI's namespace (`k8s.io`), once per test binary: busybox for the
/// containers, and the pause image under the configured sandbox image name.
fn import_for_cri(tb: &Testbed) {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        let images = strict_integration::repo().join(".testbed/images");
        for image in ["busybox", "pause"] {
            let tar = images.join(format!("{image}.tar"));
            let out = tb.ctr_in("k8s.io", &["images", "import", tar.to_str().unwrap()]);
            assert!(
                out.status.success(),
                "importing {image} for CRI: {}",
                text(&out.stderr)
            );
        }
    });
}

/// A deadline on every CRI call: a hung shim fails the test instead of hanging it.
pub async fn within<T>(what: &str, future: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(90), future)
        .await
        .unwrap_or_else(|_| panic!("{what} did not answer within 90 s"))
}

impl Cri {
    pub async fn connect() -> Cri {
        let tb = testbed();
        import_for_cri(tb);
        let channel = containerd_client::connect(&tb.address)
            .await
            .unwrap_or_else(|e| panic!("connecting to {}: {e}", tb.address.display()));
        Cri {
            runtime: RuntimeServiceClient::new(channel),
            pod_logs: Some(tb.run_dir.join("pod-logs")),
        }
    }

    /// A CRI client of the containerd at `address` (`HOST:PORT`, a plain TCP relay to its socket), whose
    /// images the caller imported.
    pub async fn connect_tcp(address: &str) -> Cri {
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{address}"))
            .unwrap()
            .connect()
            .await
            .unwrap_or_else(|e| panic!("connecting to {address}: {e}"));
        Cri {
            runtime: RuntimeServiceClient::new(channel),
            pod_logs: None,
        }
    }

    /// RunPodSandbox with `handler`, as the kubelet asks for a pod of `name` (its hostname too).
    pub async fn run_pod(
        &mut self,
        name: &str,
        handler: &str,
        customize: impl FnOnce(&mut PodSandboxConfig),
    ) -> Result<Pod, Status> {
        let uid = unique("uid");
        let logs = match &self.pod_logs {
            Some(root) => {
                let logs = root.join(&uid);
                std::fs::create_dir_all(&logs).unwrap();
                logs
            }
            None => std::path::PathBuf::from("/var/log"),
        };
        let mut config = PodSandboxConfig {
            metadata: Some(PodSandboxMetadata {
                name: name.into(),
                uid,
                namespace: POD_NAMESPACE.into(),
                attempt: 0,
            }),
            hostname: name.into(),
            log_directory: logs.display().to_string(),
            linux: Some(LinuxPodSandboxConfig::default()),
            ..Default::default()
        };
        customize(&mut config);
        let reply = within(
            "RunPodSandbox",
            self.runtime.run_pod_sandbox(RunPodSandboxRequest {
                config: Some(config.clone()),
                runtime_handler: handler.into(),
            }),
        )
        .await?;
        Ok(Pod {
            id: reply.into_inner().pod_sandbox_id,
            config,
        })
    }

    /// CreateContainer then StartContainer (the gate decides in Start: that is when containerd creates
    /// the task). The container runs `sleep 300` unless `customize` says otherwise.
    pub async fn start_container(
        &mut self,
        pod: &Pod,
        name: &str,
        customize: impl FnOnce(&mut ContainerConfig),
    ) -> Result<String, Status> {
        let mut config = ContainerConfig {
            metadata: Some(ContainerMetadata {
                name: name.into(),
                attempt: 0,
            }),
            image: Some(ImageSpec {
                image: BUSYBOX.into(),
                ..Default::default()
            }),
            command: vec!["sleep".into(), "300".into()],
            log_path: format!("{name}.log"),
            ..Default::default()
        };
        customize(&mut config);
        let created = within(
            "CreateContainer",
            self.runtime.create_container(CreateContainerRequest {
                pod_sandbox_id: pod.id.clone(),
                config: Some(config),
                sandbox_config: Some(pod.config.clone()),
            }),
        )
        .await?
        .into_inner()
        .container_id;
        within(
            "StartContainer",
            self.runtime.start_container(StartContainerRequest {
                container_id: created.clone(),
            }),
        )
        .await?;
        Ok(created)
    }

    pub async fn exec_sync(&mut self, id: &str, cmd: &[&str]) -> ExecSyncResponse {
        within(
            "ExecSync",
            self.runtime.exec_sync(ExecSyncRequest {
                container_id: id.into(),
                cmd: cmd.iter().map(|s| s.to_string()).collect(),
                timeout: 30,
            }),
        )
        .await
        .unwrap_or_else(|e| panic!("ExecSync {cmd:?} in {id}: {}", e.message()))
        .into_inner()
    }

    pub async fn container_state(&mut self, id: &str) -> i32 {
        let reply = within(
            "ContainerStatus",
            self.runtime
                .container_status(k8s_cri::v1::ContainerStatusRequest {
                    container_id: id.into(),
                    verbose: false,
                }),
        )
        .await
        .unwrap()
        .into_inner();
        reply.status.unwrap().state
    }

    pub async fn pod_state(&mut self, id: &str) -> i32 {
        let reply = within(
            "PodSandboxStatus",
            self.runtime.pod_sandbox_status(PodSandboxStatusRequest {
                pod_sandbox_id: id.into(),
                verbose: false,
            }),
        )
        .await
        .unwrap()
        .into_inner();
        reply.status.unwrap().state
    }

    /// StopPodSandbox then RemovePodSandbox, as the kubelet does when a pod is deleted.
    pub async fn remove_pod(&mut self, id: &str) {
        within(
            "StopPodSandbox",
            self.runtime.stop_pod_sandbox(StopPodSandboxRequest {
                pod_sandbox_id: id.into(),
            }),
        )
        .await
        .unwrap_or_else(|e| panic!("StopPodSandbox {id}: {}", e.message()));
        within(
            "RemovePodSandbox",
            self.runtime.remove_pod_sandbox(RemovePodSandboxRequest {
                pod_sandbox_id: id.into(),
            }),
        )
        .await
        .unwrap_or_else(|e| panic!("RemovePodSandbox {id}: {}", e.message()));
    }
}

/// After a refused RunPodSandbox, CRI keeps nothing of the pod.
pub async fn assert_no_pod_left(cri: &mut Cri, name: &str) {
    let pods = within(
        "ListPodSandbox",
        cri.runtime
            .list_pod_sandbox(ListPodSandboxRequest { filter: None }),
    )
    .await
    .unwrap()
    .into_inner()
    .items;
    assert!(
        !pods
            .iter()
            .any(|p| p.metadata.as_ref().is_some_and(|m| m.name == name)),
        "a refused pod {name} was left behind"
    );
}

/// The init pid of a CRI container or sandbox (its task in containerd's `k8s.io` namespace).
pub fn cri_pid(tb: &Testbed, id: &str) -> u32 {
    let out = tb.ctr_in("k8s.io", &["tasks", "list"]);
    text(&out.stdout)
        .lines()
        .find(|line| line.starts_with(id))
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|pid| pid.parse().ok())
        .unwrap_or_else(|| panic!("no task {id}: {}", text(&out.stdout)))
}

pub fn parent_of(pid: u32) -> u32 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("PPid:"))
        .and_then(|p| p.trim().parse().ok())
        .unwrap()
}

pub fn comm(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// The pod's Linux security context, created if absent.
pub fn sandbox_security(
    p: &mut k8s_cri::v1::PodSandboxConfig,
) -> &mut k8s_cri::v1::LinuxSandboxSecurityContext {
    p.linux
        .get_or_insert_with(Default::default)
        .security_context
        .get_or_insert_with(Default::default)
}

/// The container's Linux security context, created if absent.
pub fn container_security(
    c: &mut ContainerConfig,
) -> &mut k8s_cri::v1::LinuxContainerSecurityContext {
    c.linux
        .get_or_insert_with(Default::default)
        .security_context
        .get_or_insert_with(Default::default)
}

/// A read-only hostPath volume at /mnt/volume, as the kubelet sends it.
pub fn host_mount(host_path: &str) -> k8s_cri::v1::Mount {
    k8s_cri::v1::Mount {
        container_path: "/mnt/volume".into(),
        host_path: host_path.into(),
        readonly: true,
        ..Default::default()
    }
}
