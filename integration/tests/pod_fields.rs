//! Pod fields, one test each, through CRI as the kubelet sends them, with the message a user sees in
//! `kubectl describe`. `strict` is a MicroK8s node (its default connections); `strict-minimal` a node whose
//! snap has only `network` connected, for the other half of a grant.

mod cri_client;

use cri_client::*;
use k8s_cri::v1::{Device, NamespaceMode, NamespaceOption, PodSandboxConfig};
use strict_integration::{audit_records, testbed, unique};

/// The first line of a refusal as containerd reports it, from `strict: refused:` on.
fn refusal(status: &tonic::Status) -> String {
    let message = status.message();
    let start = message
        .find("strict: refused: ")
        .unwrap_or_else(|| panic!("not a strict refusal: {message}"));
    message[start..].lines().next().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn host_path_volume() {
    let mut cri = Cri::connect().await;
    let pod = cri
        .run_pod("host-path", STRICT_HANDLER, |_| {})
        .await
        .unwrap();
    let status = cri
        .start_container(&pod, "app", |c| c.mounts.push(host_mount("/etc")))
        .await
        .unwrap_err();
    assert_eq!(
        refusal(&status),
        "strict: refused: mounts[6] host path /etc (read-only) is outside the connected interfaces; \
         connect system-files (read: /etc) to allow it"
    );
    // home (read: all) is connected on MicroK8s: a home directory may be mounted read-only.
    std::fs::create_dir_all("/home/strict-test/data").unwrap();
    cri.start_container(&pod, "home", |c| {
        c.mounts.push(host_mount("/home/strict-test/data"))
    })
    .await
    .unwrap_or_else(|e| panic!("{}", e.message()));
    cri.remove_pod(&pod.id).await;
}

/// The kubelet mounts a volume's subPath from `<kubelet root>/pods/<uid>/volume-subpaths/<volume>/
/// <container>/<index>`, a bind mount of the path inside the volume: the gate judges what it exposes.
#[tokio::test(flavor = "multi_thread")]
async fn host_path_sub_path() {
    let tb = testbed();
    let mut cri = Cri::connect().await;
    let pod = cri
        .run_pod("sub-path", STRICT_HANDLER, |_| {})
        .await
        .unwrap();
    // The kubelet's directory of this pod (its uid), and of another pod.
    let uid = pod.config.metadata.as_ref().unwrap().uid.clone();
    let kubelet_pod = tb.run_dir.join("kubelet/pods").join(&uid);
    let other_pod = tb.run_dir.join("kubelet/pods").join(unique("other-pod"));
    let bind = |origin: &std::path::Path, volume: &str| {
        let point = kubelet_pod.join(format!("volume-subpaths/{volume}/app/0"));
        std::fs::create_dir_all(&point).unwrap();
        let status = std::process::Command::new("mount")
            .args(["--bind", origin.to_str().unwrap(), point.to_str().unwrap()])
            .status()
            .unwrap();
        assert!(status.success());
        point
    };
    // A hostPath volume of /etc with subPath "ssl": the bind mount exposes /etc/ssl.
    let etc_ssl = bind(std::path::Path::new("/etc/ssl"), "host-etc");
    let status = cri
        .start_container(&pod, "app", |c| {
            c.mounts.push(host_mount(etc_ssl.to_str().unwrap()))
        })
        .await
        .unwrap_err();
    assert_eq!(
        refusal(&status),
        "strict: refused: mounts[6] host path /etc/ssl (read-only) is outside the connected \
         interfaces; connect system-files (read: /etc/ssl) to allow it"
    );
    // An emptyDir's subPath exposes the pod's own volume: it runs.
    let empty_dir = kubelet_pod.join("volumes/kubernetes.io~empty-dir/scratch");
    std::fs::create_dir_all(empty_dir.join("sub")).unwrap();
    let scratch = bind(&empty_dir.join("sub"), "scratch");
    cri.start_container(&pod, "scratch", |c| {
        c.mounts.push(host_mount(scratch.to_str().unwrap()))
    })
    .await
    .unwrap_or_else(|e| panic!("{}", e.message()));
    // Another pod's volume (its secrets, its token) is not this pod's own.
    let theirs = other_pod.join("volumes/kubernetes.io~secret/token");
    std::fs::create_dir_all(&theirs).unwrap();
    let status = cri
        .start_container(&pod, "theirs", |c| {
            c.mounts.push(host_mount(theirs.to_str().unwrap()))
        })
        .await
        .unwrap_err();
    assert!(
        refusal(&status).contains("is protected: the kubelet's state and credentials"),
        "{}",
        refusal(&status)
    );
    cri.remove_pod(&pod.id).await;
    for point in [etc_ssl, scratch] {
        let _ = std::process::Command::new("umount").arg(&point).status();
    }
}

/// A privileged container (CRI needs its sandbox privileged too): every capability, every host device,
/// no seccomp. MicroK8s connects docker-support with privileged-containers, but the shim's configuration
/// must consent as well (`allow_privileged`), and by default it does not.
#[tokio::test(flavor = "multi_thread")]
async fn privileged() {
    let tb = testbed();
    let mut cri = Cri::connect().await;
    let pod = cri
        .run_pod("privileged", STRICT_HANDLER, |p| {
            sandbox_security(p).privileged = true
        })
        .await
        .unwrap_or_else(|e| panic!("{}", e.message()));
    let status = cri
        .start_container(&pod, "app", |c| container_security(c).privileged = true)
        .await
        .unwrap_err();
    let message = refusal(&status);
    assert!(message.starts_with("strict: refused: "), "{message}");
    assert_eq!(
        message,
        "strict: refused: the container is privileged (all capabilities, no masked or read-only paths, \
         writable /sys, no seccomp filter); docker-support (privileged-containers: true) is connected, \
         but allow_privileged is off in the configuration"
    );
    let record = audit_records(&tb.audit_log(), &pod.id);
    assert_eq!(
        record[0]["subject"], "sandbox",
        "the privileged sandbox itself ran"
    );
    cri.remove_pod(&pod.id).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn devices() {
    let mut cri = Cri::connect().await;
    let pod = cri
        .run_pod("devices", STRICT_HANDLER, |_| {})
        .await
        .unwrap();
    let status = cri
        .start_container(&pod, "kvm", |c| {
            c.devices.push(Device {
                container_path: "/dev/kvm".into(),
                host_path: "/dev/kvm".into(),
                permissions: "rwm".into(),
            })
        })
        .await
        .unwrap_err();
    assert_eq!(
        refusal(&status),
        "strict: refused: linux.devices[0] device /dev/kvm (c 10:232) is outside the connected \
         interfaces; connect kvm to allow it (+1 more)"
    );
    cri.remove_pod(&pod.id).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn host_network() {
    let host_network = |p: &mut PodSandboxConfig| {
        sandbox_security(p).namespace_options = Some(NamespaceOption {
            network: NamespaceMode::Node as i32,
            ..Default::default()
        });
        p.hostname = String::new(); // the kubelet sends none for hostNetwork pods
    };
    let mut cri = Cri::connect().await;
    // MicroK8s connects network-control: its pods may use the host's network.
    let pod = cri
        .run_pod("host-net", STRICT_HANDLER, host_network)
        .await
        .unwrap();
    cri.remove_pod(&pod.id).await;
    let status = cri
        .run_pod("host-net-minimal", MINIMAL_HANDLER, host_network)
        .await
        .unwrap_err();
    assert_eq!(
        refusal(&status),
        "strict: refused: linux.namespaces has no network namespace: the container would share the \
         host's; connect network-control to allow it (+1 more)"
    );
    assert_no_pod_left(&mut cri, "host-net-minimal").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn host_pid() {
    let host_pid = |p: &mut PodSandboxConfig| {
        sandbox_security(p).namespace_options = Some(NamespaceOption {
            pid: NamespaceMode::Node as i32,
            ..Default::default()
        });
    };
    let mut cri = Cri::connect().await;
    let pod = cri
        .run_pod("host-pid", STRICT_HANDLER, host_pid)
        .await
        .unwrap();
    cri.remove_pod(&pod.id).await;
    let status = cri
        .run_pod("host-pid-minimal", MINIMAL_HANDLER, host_pid)
        .await
        .unwrap_err();
    assert_eq!(
        refusal(&status),
        "strict: refused: linux.namespaces has no pid namespace: the container would share the \
         host's; connect system-observe and process-control to allow it"
    );
    assert_no_pod_left(&mut cri, "host-pid-minimal").await;
}

/// hostIPC: a refused sandbox, as RunPodSandbox reports it (FailedCreatePodSandBox for the kubelet).
#[tokio::test(flavor = "multi_thread")]
async fn host_ipc() {
    let mut cri = Cri::connect().await;
    let status = cri
        .run_pod("host-ipc", STRICT_HANDLER, |p| {
            sandbox_security(p).namespace_options = Some(NamespaceOption {
                ipc: NamespaceMode::Node as i32,
                ..Default::default()
            });
        })
        .await
        .unwrap_err();
    assert_eq!(
        refusal(&status),
        "strict: refused: mounts[5] host path /dev/shm (read-only) is outside the connected \
         interfaces; connect system-files (read: /dev/shm) to allow it (+1 more)"
    );
    assert!(status
        .message()
        .contains("linux.namespaces has no ipc namespace: the container would share the host's; no snap interface grants it"));
    assert_no_pod_left(&mut cri, "host-ipc").await;
}

/// procMount Unmasked: the kubelet sends empty masked and read-only path lists; the gate restores them
/// (the container runs, narrowed) and /proc/keys stays masked (runc masks only paths that exist;
/// /proc/kcore does not on every kernel).
#[tokio::test(flavor = "multi_thread")]
async fn proc_mount_unmasked() {
    let tb = testbed();
    let mut cri = Cri::connect().await;
    let pod = cri
        .run_pod("proc-mount", STRICT_HANDLER, |_| {})
        .await
        .unwrap();
    let id = cri
        .start_container(&pod, "unmasked", |c| {
            let security = container_security(c);
            security.masked_paths = Vec::new();
            security.readonly_paths = Vec::new();
        })
        .await
        .unwrap_or_else(|e| panic!("{}", e.message()));
    let out = cri
        .exec_sync(&id, &["grep", "-c", " /proc/keys ", "/proc/self/mountinfo"])
        .await;
    // runc masks a path by mounting /dev/null over it: the mount is there.
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "1",
        "/proc/keys is masked: exit {}, {}",
        out.exit_code,
        String::from_utf8_lossy(&out.stderr)
    );
    let record = &audit_records(&tb.audit_log(), &id)[0];
    let rules: Vec<&str> = record["narrowings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["rule"].as_str().unwrap())
        .collect();
    assert!(rules.contains(&"hardening.masked-paths"), "{record}");
    cri.remove_pod(&pod.id).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sysctls() {
    let mut cri = Cri::connect().await;
    // A safe sysctl runs; a net.* one needs network-control (MicroK8s has it); kernel.msgmax nothing grants.
    let pod = cri
        .run_pod("sysctl-safe", STRICT_HANDLER, |p| {
            let linux = p.linux.get_or_insert_with(Default::default);
            linux
                .sysctls
                .insert("kernel.shm_rmid_forced".into(), "1".into());
            linux
                .sysctls
                .insert("net.core.somaxconn".into(), "1024".into());
        })
        .await
        .unwrap_or_else(|e| panic!("{}", e.message()));
    cri.remove_pod(&pod.id).await;
    let status = cri
        .run_pod("sysctl-msgmax", STRICT_HANDLER, |p| {
            let linux = p.linux.get_or_insert_with(Default::default);
            linux.sysctls.insert("kernel.msgmax".into(), "65536".into());
        })
        .await
        .unwrap_err();
    assert_eq!(
        refusal(&status),
        "strict: refused: linux.sysctl.kernel.msgmax is not a safe sysctl and the connected interfaces \
         do not grant it; no snap interface grants it"
    );
    let status = cri
        .run_pod("sysctl-net-minimal", MINIMAL_HANDLER, |p| {
            let linux = p.linux.get_or_insert_with(Default::default);
            linux
                .sysctls
                .insert("net.core.somaxconn".into(), "1024".into());
        })
        .await
        .unwrap_err();
    assert_eq!(
        refusal(&status),
        "strict: refused: linux.sysctl.net.core.somaxconn is not a safe sysctl and the connected \
         interfaces do not grant it; connect network-control to allow it"
    );
}
