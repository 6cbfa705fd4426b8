//! Kubernetes' path to the shim: containerd's CRI plugin driven with a CRI client (`k8s-cri`, the API the
//! kubelet uses), pods with runtime handler `strict` (and `strict-complain`), a locally built pause image
//! under the configured sandbox image name and a bridge network from Debian's CNI plugins.

mod cri_client;

use cri_client::*;
use k8s_cri::v1::{
    security_profile, Capability, Mount, MountPropagation, NamespaceMode, NamespaceOption,
    SecurityProfile,
};
use strict_integration::{audit_records, testbed};

#[tokio::test(flavor = "multi_thread")]
async fn a_pod_of_two_containers_is_served_by_one_shim() {
    let mut cri = Cri::connect().await;
    let pod = cri.run_pod("two", STRICT_HANDLER, |_| {}).await.unwrap();
    let web = cri.start_container(&pod, "web", |_| {}).await.unwrap();
    let side = cri.start_container(&pod, "side", |_| {}).await.unwrap();

    let out = cri
        .exec_sync(&web, &["sh", "-c", "echo hello from $(hostname)"])
        .await;
    assert_eq!(out.exit_code, 0, "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "hello from two"
    );
    assert_eq!(cri.container_state(&web).await, CONTAINER_RUNNING);
    assert_eq!(cri.pod_state(&pod.id).await, SANDBOX_READY);
    // Both containers are in the pod's network namespace, with an address from the bridge.
    let out = cri
        .exec_sync(&side, &["sh", "-c", "ip -4 -o addr show eth0"])
        .await;
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("10.231.0."),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    let shims: Vec<u32> = [&pod.id, &web, &side]
        .iter()
        .map(|id| parent_of(cri_pid(testbed(), id)))
        .collect();
    assert!(
        shims.iter().all(|pid| *pid == shims[0]),
        "sandbox and containers under one shim: {shims:?}"
    );
    assert_eq!(comm(shims[0]), "containerd-shim");

    cri.remove_pod(&pod.id).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::path::Path::new(&format!("/proc/{}", shims[0])).exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the shim outlived its pod"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_container_surfaces_through_cri_with_the_strict_message() {
    let mut cri = Cri::connect().await;
    let pod = cri
        .run_pod("refused-app", STRICT_HANDLER, |_| {})
        .await
        .unwrap();
    let status = cri
        .start_container(&pod, "etc", |c| {
            c.mounts.push(host_mount("/etc"));
        })
        .await
        .unwrap_err();
    let message = status.message();
    assert!(message.contains("strict: refused: mounts["), "{message}");
    assert!(
        message.contains("host path /etc (read-only) is outside the connected interfaces"),
        "{message}"
    );
    assert!(
        message.contains("connect system-files (read: /etc)"),
        "{message}"
    );
    // The pod itself is unharmed: another container starts in it.
    cri.start_container(&pod, "fine", |_| {}).await.unwrap();
    cri.remove_pod(&pod.id).await;
}

// A refused sandbox (hostIPC, a pod sysctl, hostNetwork on a node without network-control) surfaces
// through CRI the same way: see pod_fields.rs, which checks each of them with its message and that CRI
// keeps nothing of the pod.

#[tokio::test(flavor = "multi_thread")]
async fn complain_mode_runs_the_pod_and_records_what_it_would_refuse() {
    let tb = testbed();
    let mut cri = Cri::connect().await;
    let pod = cri
        .run_pod("complain", COMPLAIN_HANDLER, |_| {})
        .await
        .unwrap();
    let id = cri
        .start_container(&pod, "etc", |c| {
            c.mounts.push(host_mount("/etc"));
        })
        .await
        .expect("complain mode runs what enforce refuses");
    let out = cri.exec_sync(&id, &["cat", "/mnt/volume/hostname"]).await;
    assert_eq!(out.exit_code, 0);
    let records = audit_records(&tb.audit_log(), &id);
    let subjects: Vec<&str> = records
        .iter()
        .map(|r| r["subject"].as_str().unwrap())
        .collect();
    // The ExecSync is the container's own process with another command: the shim allowed it from the
    // Create answer, without a gate and without a record (it would not be refused in any mode).
    assert_eq!(subjects, ["container"], "{records:?}");
    let record = &records[0];
    assert_eq!(record["decision"], "would-refuse");
    assert_eq!(record["handler"], "strict-complain");
    assert_eq!(record["namespace"], "k8s.io");
    assert_eq!(record["pod"]["name"], "complain");
    assert_eq!(record["pod"]["namespace"], POD_NAMESPACE);
    assert_eq!(record["container_name"], "etc");
    assert!(record["image"].as_str().unwrap().contains("busybox"));
    assert_eq!(record["violations"][0]["rule"], "mount.host-path");
    cri.remove_pod(&pod.id).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_container_may_join_its_own_pods_namespaces_only() {
    // CRI puts every app container into its sandbox's network, IPC and UTS namespaces by path
    // (/proc/<pause>/ns/...); those pass. A pod sharing its process namespace adds the pid one.
    let mut cri = Cri::connect().await;
    let pod = cri
        .run_pod("shared-pid", STRICT_HANDLER, |p| {
            sandbox_security(p).namespace_options = Some(NamespaceOption {
                pid: NamespaceMode::Pod as i32,
                ..Default::default()
            });
        })
        .await
        .unwrap();
    let id = cri
        .start_container(&pod, "app", |c| {
            container_security(c).namespace_options = Some(NamespaceOption {
                pid: NamespaceMode::Pod as i32,
                ..Default::default()
            });
        })
        .await
        .unwrap();
    let out = cri
        .exec_sync(&id, &["sh", "-c", "ps -o comm | grep -c sleep"])
        .await;
    assert_eq!(out.exit_code, 0, "{}", String::from_utf8_lossy(&out.stderr));
    // The pause process (busybox sleep as the pause image) and the app's sleep share one pid namespace.
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "2");
    cri.remove_pod(&pod.id).await;
}

/// Capabilities: `add` beyond what the interfaces grant is refused by name; `drop ALL` always runs.
#[tokio::test(flavor = "multi_thread")]
async fn capabilities_add_and_drop() {
    let mut cri = Cri::connect().await;
    let pod = cri.run_pod("caps", STRICT_HANDLER, |_| {}).await.unwrap();
    let status = cri
        .start_container(&pod, "sysadmin", |c| {
            container_security(c).capabilities = Some(Capability {
                add_capabilities: vec!["SYS_ADMIN".into()],
                ..Default::default()
            });
        })
        .await
        .unwrap_err();
    assert!(
        status
            .message()
            .contains("strict: refused: process.capabilities")
            && status.message().contains("CAP_SYS_ADMIN"),
        "{}",
        status.message()
    );
    let id = cri
        .start_container(&pod, "dropped", |c| {
            container_security(c).capabilities = Some(Capability {
                drop_capabilities: vec!["ALL".into()],
                ..Default::default()
            });
        })
        .await
        .unwrap();
    let out = cri
        .exec_sync(&id, &["grep", "CapEff", "/proc/self/status"])
        .await;
    assert!(String::from_utf8_lossy(&out.stdout).contains("0000000000000000"));
    cri.remove_pod(&pod.id).await;
}

/// seccompProfile: RuntimeDefault and Unconfined both end as the intersection with the grants (the
/// filter is on, `unshare` is denied); Localhost is containerd's reading of the file, intersected too.
#[tokio::test(flavor = "multi_thread")]
async fn seccomp_profiles_are_narrowed_whatever_the_pod_asks() {
    let tb = testbed();
    let mut cri = Cri::connect().await;
    let pod = cri
        .run_pod("seccomp", STRICT_HANDLER, |_| {})
        .await
        .unwrap();
    let localhost = tb.run_dir.join("seccomp-allow-all.json");
    std::fs::write(&localhost, r#"{"defaultAction": "SCMP_ACT_ALLOW"}"#).unwrap();
    let profiles = [
        (
            "runtime-default",
            security_profile::ProfileType::RuntimeDefault,
            String::new(),
        ),
        (
            "unconfined",
            security_profile::ProfileType::Unconfined,
            String::new(),
        ),
        (
            "localhost",
            security_profile::ProfileType::Localhost,
            localhost.display().to_string(),
        ),
    ];
    for (name, profile_type, localhost_ref) in profiles {
        let id = cri
            .start_container(&pod, name, |c| {
                container_security(c).seccomp = Some(SecurityProfile {
                    profile_type: profile_type as i32,
                    localhost_ref: localhost_ref.clone(),
                });
            })
            .await
            .unwrap_or_else(|e| panic!("{name}: {}", e.message()));
        let out = cri
            .exec_sync(
                &id,
                &[
                    "sh",
                    "-c",
                    "grep Seccomp: /proc/self/status; unshare -U true; echo $?",
                ],
            )
            .await;
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(stdout.contains("Seccomp:\t2"), "{name}: {stdout}");
        assert!(
            stdout.trim().ends_with('1'),
            "{name}: unshare must fail: {stdout}"
        );
        let record = &audit_records(&tb.audit_log(), &id)[0];
        assert_eq!(record["decision"], "narrowed", "{name}: {record}");
    }
    cri.remove_pod(&pod.id).await;
}

/// mountPropagation Bidirectional asks for a shared mount with the host: refused with the rule's message.
#[tokio::test(flavor = "multi_thread")]
async fn bidirectional_mount_propagation_is_refused() {
    let tb = testbed();
    let mut cri = Cri::connect().await;
    let pod = cri
        .run_pod("propagation", STRICT_HANDLER, |_| {})
        .await
        .unwrap();
    // containerd itself insists that a Bidirectional source is a shared mount: make it one.
    let dir = tb.run_dir.join("shared-volume");
    std::fs::create_dir_all(&dir).unwrap();
    for args in [
        vec!["--bind", dir.to_str().unwrap(), dir.to_str().unwrap()],
        vec!["--make-shared", dir.to_str().unwrap()],
    ] {
        let status = std::process::Command::new("mount")
            .args(&args)
            .status()
            .unwrap();
        assert!(status.success(), "mount {args:?}");
    }
    let status = cri
        .start_container(&pod, "shared", |c| {
            c.mounts.push(Mount {
                container_path: "/shared".into(),
                host_path: dir.display().to_string(),
                propagation: MountPropagation::PropagationBidirectional as i32,
                ..Default::default()
            });
        })
        .await
        .unwrap_err();
    assert!(
        status.message().contains("strict: refused:"),
        "{}",
        status.message()
    );
    let message = status.message();
    assert!(
        message.contains("strict: refused: mounts[6] host path ")
            && message.contains("/shared-volume (read-write) is outside the connected interfaces"),
        "{message}"
    );
    assert!(
        message.contains(
            "linux.rootfsPropagation rshared would share the container's mounts with the host; it is \
             allowed only with a Bidirectional volume that a connected interface permits"
        ),
        "{message}"
    );
    cri.remove_pod(&pod.id).await;
    let _ = std::process::Command::new("umount").arg(&dir).status();
}
