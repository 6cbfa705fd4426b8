//! On a real node (integration/node-vm: Debian 13 under QEMU, systemd as PID 1, cgroup v2, journald), as
//! an operator runs it: containerd from its Debian package as a systemd service, `strictctl install` and
//! `uninstall` through systemd, the systemd cgroup driver, CRI, and seccomp denials in the journal.
//!
//! One VM per test binary; the tests take turns on it (they share its containerd, and some restart it).
//! Each test puts the node in the state it needs first (installed or not, which cgroup driver), so any
//! order works.

mod cri_client;
mod grpc;

use containerd_client::services::v1::UpdateTaskRequest;
use serde_json::json;

use std::sync::MutexGuard;

use strict_integration::node::{node, Node};

/// Where the project's static binaries are inside the node (the payload disk).
const PAYLOAD_BIN: &str = "/payload/bin";
const CONFIG: &str = "/etc/containerd/config.toml";
/// Debian's packaged configuration, kept aside at first use.
const DEBIAN_CONFIG: &str = "/root/config.toml.debian";
const BUSYBOX: &str = "localhost/strict/busybox:1";
const STRICT_RUNTIME: &str = "io.containerd.strict.v2";
const STRICT_POLICY: &str = "/etc/containerd/strict.toml";

/// containerd's main configuration on the node.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum NodeConfig {
    /// What Debian's package installs (version 2, no runc handler of its own).
    Debian,
    /// kubeadm's recipe: `containerd config default`, runc's handler with `SystemdCgroup = true`.
    SystemdDriver,
}

/// The node as `config` has it, with containerd restarted on it, strict not installed and snapd stopped
/// (the handlers' `auto` source then takes the snap's default connections).
fn prepare(n: &Node, config: NodeConfig) {
    n.ok(&format!(
        "[ -f {DEBIAN_CONFIG} ] || cp -p {CONFIG} {DEBIAN_CONFIG}
         if [ -f /var/lib/strict/install.json ]; then strictctl uninstall >/dev/null; fi
         rm -rf /etc/systemd/system/containerd.service.d && systemctl daemon-reload
         systemctl disable --now snapd.service snapd.socket >/dev/null 2>&1
         rm -f /run/snapd.socket /run/snapd-snap.socket"
    ));
    match config {
        NodeConfig::Debian => n.ok(&format!("cp -p {DEBIAN_CONFIG} {CONFIG}")),
        NodeConfig::SystemdDriver => n.ok(&format!(
            "containerd config default | sed 's/SystemdCgroup = false/SystemdCgroup = true/' >{CONFIG}
             grep -q 'SystemdCgroup = true' {CONFIG}"
        )),
    };
    n.ok("systemctl reset-failed containerd; systemctl restart containerd && systemctl is-active containerd");
    import_images(n);
}

/// The test images in containerd's `default` (ctr) and `k8s.io` (CRI) namespaces.
fn import_images(n: &Node) {
    n.ok("for ns in $CONTAINERD_NAMESPACE k8s.io; do
            ctr -n $ns images ls -q | grep -q busybox || ctr -n $ns images import /payload/images/busybox.tar >/dev/null
          done
          ctr -n k8s.io images ls -q | grep -q pause || ctr -n k8s.io images import /payload/images/pause.tar >/dev/null
          # The sandbox image containerd's configuration names (nothing can be pulled here).
          ctr -n k8s.io images tag --force localhost/strict/pause:1 registry.k8s.io/pause:3.10 >/dev/null");
}

/// The node prepared as `config` has it, with strict installed; and install's report.
fn installed(config: NodeConfig) -> (MutexGuard<'static, Node>, String) {
    let n = node();
    prepare(&n, config);
    let report = install(&n);
    (n, report)
}

/// A runtime for the async gRPC clients, inside these synchronous tests.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// `strictctl install` as an operator runs it: the binaries from where they were unpacked.
fn install(n: &Node) -> String {
    n.ok(&format!("{PAYLOAD_BIN}/strictctl install 2>&1"))
}

fn main_pid(n: &Node) -> String {
    n.ok("systemctl show -p MainPID --value containerd")
        .trim()
        .to_string()
}

/// The files install writes, with their digests, and containerd's main configuration.
fn installed_files(n: &Node) -> String {
    n.ok(&format!(
        "sha256sum {CONFIG} /etc/containerd/strict-runtimes.toml /etc/containerd/strict.toml \
         /etc/containerd/strict-complain.toml /usr/local/bin/strictctl \
         /usr/local/bin/containerd-shim-strict-v2 2>&1 || true"
    ))
}

/// `ctr run --rm` through the strict runtime with its installed policy; (exit code, stdout + stderr).
fn ctr_run(n: &Node, flags: &str, cmd: &str) -> (i32, String) {
    let id = strict_integration::unique("node");
    let run = n.sh(&format!(
        "ctr run --rm --runtime {STRICT_RUNTIME} --runtime-config-path {STRICT_POLICY} {flags} \
         {BUSYBOX} {id} {cmd} 2>&1"
    ));
    (run.code, run.stdout)
}

#[test]
fn install_and_uninstall_through_systemd() {
    let n = node();
    prepare(&n, NodeConfig::Debian);
    let config_before = n.ok(&format!("sha256sum {CONFIG}"));
    let pid_before = main_pid(&n);

    let report = install(&n);
    assert!(
        report.contains("restarted containerd (systemctl)"),
        "{report}"
    );
    assert_ne!(main_pid(&n), pid_before, "containerd was not restarted");
    // The configuration containerd loaded has both handlers (the drop-in, through `imports`).
    let dump = n.ok("containerd config dump");
    for handler in ["strict", "strict-complain"] {
        let table = format!("containerd.runtimes.{handler}]");
        let section = dump
            .split("\n\n")
            .find(|s| s.contains(&table))
            .unwrap_or_else(|| panic!("no {handler} handler in containerd config dump:\n{dump}"));
        assert!(
            section.contains("runtime_type = 'io.containerd.strict.v2'")
                || section.contains("runtime_type = \"io.containerd.strict.v2\""),
            "{section}"
        );
    }

    // A container through the installed runtime, and a refused /etc bind with the strict message.
    let (code, out) = ctr_run(&n, "", "echo hello-from-the-node");
    assert_eq!((code, out.trim()), (0, "hello-from-the-node"), "{out}");
    let (code, out) = ctr_run(
        &n,
        "--mount type=bind,src=/etc,dst=/x,options=rbind:ro",
        "true",
    );
    assert_ne!(code, 0, "an /etc bind ran: {out}");
    assert!(out.contains("/etc") && out.contains("strict"), "{out}");

    // A second install changes nothing: same files, same containerd.
    let files = installed_files(&n);
    let pid = main_pid(&n);
    let again = install(&n);
    assert_eq!(installed_files(&n), files, "{again}");
    assert_eq!(
        main_pid(&n),
        pid,
        "a second install restarted containerd: {again}"
    );

    // Uninstall: the configuration byte for byte, no handler, no binary.
    let out = n.ok("strictctl uninstall 2>&1");
    assert_eq!(n.ok(&format!("sha256sum {CONFIG}")), config_before, "{out}");
    let dump = n.ok("containerd config dump");
    assert!(
        !dump.contains("runtimes.strict") && !dump.contains(STRICT_RUNTIME),
        "{dump}"
    );
    n.ok("! ls /usr/local/bin/strictctl /usr/local/bin/containerd-shim-strict-v2 /var/lib/strict/install.json 2>/dev/null");
    let (code, out) = ctr_run(&n, "", "true");
    assert_ne!(code, 0, "the runtime still runs after uninstall: {out}");
}

#[test]
fn an_install_whose_restart_fails_is_rolled_back() {
    let n = node();
    prepare(&n, NodeConfig::Debian);
    // containerd refuses to start once its configuration imports strict's drop-in (as a node whose
    // containerd cannot start with the new configuration would).
    n.ok(
        "mkdir -p /etc/systemd/system/containerd.service.d
         cat >/etc/systemd/system/containerd.service.d/refuse-strict.conf <<'EOF'
[Service]
ExecStartPre=/bin/sh -c 'if grep -q strict-runtimes /etc/containerd/config.toml; then echo refusing the strict drop-in >&2; exit 1; fi'
EOF
         systemctl daemon-reload",
    );
    let before = installed_files(&n);
    let run = n.sh(&format!("{PAYLOAD_BIN}/strictctl install 2>&1"));
    assert_ne!(run.code, 0, "install succeeded: {}", run.stdout);
    assert!(
        run.stdout
            .contains("containerd restarted with its previous configuration"),
        "{}",
        run.stdout
    );
    // As before: the same files, containerd running, no runtime.
    assert_eq!(installed_files(&n), before);
    n.ok("systemctl is-active containerd && ctr version >/dev/null");
    let (code, out) = ctr_run(&n, "", "true");
    assert_ne!(code, 0, "{out}");
    n.ok("rm -rf /etc/systemd/system/containerd.service.d && systemctl daemon-reload");
}

/// A container's life under one cgroup driver on cgroup v2: `cgroup` is its `--cgroup` (the path CRI
/// would write for that driver); `scope` the systemd unit it must land in, for the systemd driver.
fn lifecycle_on_cgroup_v2(n: &Node, cgroup: &str, id: &str, scope: Option<&str>) {
    n.ok(&format!(
        "ctr run -d --runtime {STRICT_RUNTIME} --runtime-config-path {STRICT_POLICY} --cgroup {cgroup} \
         --memory-limit 67108864 {BUSYBOX} {id} sleep 300"
    ));
    let pid = n.ok(&format!("ctr task ls | awk '$1 == \"{id}\" {{print $2}}'"));
    let pid = pid.trim();
    let own = n.ok(&format!("cat /proc/{pid}/cgroup"));
    match scope {
        Some(scope) => {
            n.ok(&format!("systemctl is-active {scope}"));
            assert_eq!(own.trim(), format!("0::/system.slice/{scope}"));
        }
        None => assert_eq!(own.trim(), format!("0::{cgroup}")),
    }
    let dir = format!("/sys/fs/cgroup{}", own.trim().trim_start_matches("0::"));

    // Exec.
    let out = n.ok(&format!("ctr task exec --exec-id probe {id} echo exec-ok"));
    assert_eq!(out.trim(), "exec-ok");

    // Metrics: containerd's v2 message, read from the container's own cgroup.
    let metrics = n.ok(&format!("ctr task metrics --format json {id}"));
    let metrics: serde_json::Value = serde_json::from_str(&metrics)
        .unwrap_or_else(|e| panic!("ctr task metrics: {e}: {metrics}"));
    assert_eq!(metrics["memory"]["usage_limit"], 67108864, "{metrics}");
    assert!(
        metrics["memory"]["usage"].as_u64().unwrap_or(0) > 0,
        "{metrics}"
    );
    assert!(
        metrics["pids"]["current"].as_u64().unwrap_or(0) >= 1,
        "{metrics}"
    );

    // Update (containerd's Tasks API: ctr has no `tasks update`): a new memory limit reaches the cgroup
    // (through systemd with its driver).
    update_memory(n, id, 100663296);
    assert_eq!(n.ok(&format!("cat {dir}/memory.max")).trim(), "100663296");
    if let Some(scope) = scope {
        let max = n.ok(&format!("systemctl show -p MemoryMax --value {scope}"));
        assert_eq!(max.trim(), "100663296");
    }
    let metrics: serde_json::Value =
        serde_json::from_str(&n.ok(&format!("ctr task metrics --format json {id}"))).unwrap();
    assert_eq!(metrics["memory"]["usage_limit"], 100663296, "{metrics}");

    n.ok(&format!(
        "ctr task kill -s KILL {id}; for i in $(seq 1 100); do ctr task ls | grep -q '^{id} .*STOPPED' && break; sleep 0.1; done
         ctr task delete {id} && ctr container delete {id}"
    ));
    if let Some(scope) = scope {
        n.ok(&format!("! systemctl is-active {scope}"));
    }
}

/// Tasks.Update of the memory limit, through the node's forwarded containerd socket.
fn update_memory(n: &Node, id: &str, limit: u64) {
    runtime().block_on(async {
        let channel = cri_client::tonic::transport::Endpoint::from_shared(format!(
            "http://{}",
            n.grpc_address
        ))
        .unwrap()
        .connect()
        .await
        .unwrap_or_else(|e| panic!("connecting to the node's containerd: {e}"));
        let update = UpdateTaskRequest {
            container_id: id.into(),
            resources: Some(grpc::json_any(
                grpc::LINUX_RESOURCES,
                &json!({"memory": {"limit": limit}}),
            )),
            ..Default::default()
        };
        grpc::within(
            "Tasks.Update",
            grpc::tasks(&channel).update(grpc::ns(update)),
        )
        .await
        .unwrap_or_else(|status| panic!("Update was refused: {status:?}"));
    });
}

/// An OOM kill under `cgroup`: status 137, and containerd hears TaskOOM before TaskExit.
fn oom_on_cgroup_v2(n: &Node, cgroup: &str, id: &str) {
    let run = n.sh(&format!(
        "ctr events >/tmp/{id}.events 2>&1 & events=$!
         sleep 0.5
         ctr run --rm --runtime {STRICT_RUNTIME} --runtime-config-path {STRICT_POLICY} --cgroup {cgroup} \
           --memory-limit 33554432 {BUSYBOX} {id} dd if=/dev/zero of=/dev/null bs=64M count=1
         status=$?
         sleep 1; kill $events
         grep {id} /tmp/{id}.events | grep -o '/tasks/[a-z]*' | tr '\\n' ' '
         exit $status"
    ));
    assert_eq!(run.code, 137, "{} {}", run.stdout, run.stderr);
    let topics: Vec<&str> = run.stdout.split_whitespace().collect();
    let oom = topics.iter().position(|t| *t == "/tasks/oom");
    let exit = topics.iter().position(|t| *t == "/tasks/exit");
    assert!(
        matches!((oom, exit), (Some(oom), Some(exit)) if oom < exit),
        "TaskOOM must come before TaskExit: {topics:?}"
    );
}

#[test]
fn cgroup_v2_with_the_cgroupfs_driver() {
    let (n, _) = installed(NodeConfig::Debian);
    let id = strict_integration::unique("fs");
    lifecycle_on_cgroup_v2(&n, &format!("/strict/{id}"), &id, None);
    let id = strict_integration::unique("fs-oom");
    oom_on_cgroup_v2(&n, &format!("/strict/{id}"), &id);
}

#[test]
fn the_systemd_cgroup_driver_is_carried_over_and_used() {
    let (n, report) = installed(NodeConfig::SystemdDriver);
    assert!(
        report.contains("the systemd cgroup driver as the runc handler's"),
        "{report}"
    );
    n.ok("grep -q '^systemd_cgroup = true' /etc/containerd/strict.toml /etc/containerd/strict-complain.toml");

    let id = strict_integration::unique("sd");
    let scope = format!("strict-{id}.scope");
    lifecycle_on_cgroup_v2(&n, &format!("system.slice:strict:{id}"), &id, Some(&scope));
    let id = strict_integration::unique("sd-oom");
    oom_on_cgroup_v2(&n, &format!("system.slice:strict:{id}"), &id);

    // A path for the other driver: refused, naming the setting, before runc sees it.
    let (code, out) = ctr_run(&n, &format!("--cgroup /strict/{id}-fs"), "true");
    assert_ne!(code, 0, "{out}");
    assert!(
        out.contains("is a cgroupfs path") && out.contains("systemd_cgroup = true"),
        "{out}"
    );
}

/// A pod as the kubelet with the systemd cgroup driver runs it (cgroup parent a slice), through CRI: two
/// containers in their own scopes, a hostPath of /etc refused with the strict message, and the same
/// hostPath let through and recorded by the complain handler.
#[test]
fn a_pod_through_cri_with_the_systemd_driver() {
    use cri_client::{host_mount, Cri, COMPLAIN_HANDLER, CONTAINER_RUNNING, STRICT_HANDLER};
    let (n, _) = installed(NodeConfig::SystemdDriver);
    let runtime = runtime();
    let mut cri = runtime.block_on(Cri::connect_tcp(&n.grpc_address));
    let in_slice = |p: &mut k8s_cri::v1::PodSandboxConfig| {
        p.linux.get_or_insert_with(Default::default).cgroup_parent =
            "kubepods-besteffort-podnode1.slice".into();
    };

    let pod = runtime
        .block_on(cri.run_pod("node-web", STRICT_HANDLER, in_slice))
        .unwrap_or_else(|e| panic!("RunPodSandbox: {}", e.message()));
    let mut ids = Vec::new();
    for name in ["app", "sidecar"] {
        let id = runtime
            .block_on(cri.start_container(&pod, name, |_| {}))
            .unwrap_or_else(|e| panic!("{name}: {}", e.message()));
        assert_eq!(
            runtime.block_on(cri.container_state(&id)),
            CONTAINER_RUNNING
        );
        // Its own scope in the pod's slice, which systemd runs.
        n.ok(&format!(
            "systemctl is-active cri-containerd-{id}.scope && \
             systemctl show -p Slice --value cri-containerd-{id}.scope | grep -qx kubepods-besteffort-podnode1.slice"
        ));
        ids.push(id);
    }
    let exec = runtime.block_on(cri.exec_sync(&ids[0], &["echo", "probe-ok"]));
    assert_eq!(exec.exit_code, 0);
    assert_eq!(String::from_utf8_lossy(&exec.stdout).trim(), "probe-ok");

    let refused = runtime.block_on(cri.start_container(&pod, "etc", |c| {
        c.mounts.push(host_mount("/etc"));
    }));
    let message = refused
        .expect_err("a hostPath of /etc ran")
        .message()
        .to_string();
    assert!(
        message.contains("/etc") && message.contains("strict"),
        "{message}"
    );
    runtime.block_on(cri.remove_pod(&pod.id));
    for id in &ids {
        n.ok(&format!("! systemctl is-active cri-containerd-{id}.scope"));
    }

    // Complain mode: the same hostPath runs, and the audit trail says what enforce would have done.
    let pod = runtime
        .block_on(cri.run_pod("node-complain", COMPLAIN_HANDLER, in_slice))
        .unwrap_or_else(|e| panic!("RunPodSandbox: {}", e.message()));
    let id = runtime
        .block_on(cri.start_container(&pod, "etc", |c| {
            c.mounts.push(host_mount("/etc"));
        }))
        .unwrap_or_else(|e| panic!("complain mode refused: {}", e.message()));
    assert_eq!(
        runtime.block_on(cri.container_state(&id)),
        CONTAINER_RUNNING
    );
    let record = n.ok(&format!(
        "grep '\"container_id\":\"{id}\"' /var/log/strict/audit.log"
    ));
    assert!(record.contains("\"decision\":\"would-refuse\""), "{record}");
    runtime.block_on(cri.remove_pod(&pod.id));
}

/// A syscall the narrowed filter denies is logged by the kernel (the filter carries
/// SECCOMP_FILTER_FLAG_LOG where runc reports it: the node's runc 1.3 does, Debian 13's 1.1 does not), reaches the journal, and `strictctl
/// audit --seccomp-log journal` names the syscall and the container it came from.
#[test]
fn a_seccomp_denial_is_found_in_the_journal_and_mapped_to_its_container() {
    let (n, _) = installed(NodeConfig::SystemdDriver);
    let id = strict_integration::unique("seccomp");
    // unshare(2) is denied (EPERM); the child that tried stays a zombie of the container's init (sleep
    // never reaps), so its pid still names its cgroup when the report reads it.
    n.ok(&format!(
        "ctr run -d --runtime {STRICT_RUNTIME} --runtime-config-path {STRICT_POLICY} \
         --cgroup system.slice:strict:{id} {BUSYBOX} {id} sh -c 'unshare -U true & exec sleep 300'"
    ));
    n.ok("for i in $(seq 1 50); do
            journalctl -b --no-pager _TRANSPORT=kernel _TRANSPORT=audit | grep -q 'syscall=272' && exit 0
            sleep 0.2
          done
          echo 'no seccomp record in the journal' >&2; exit 1");
    let report = n.ok("strictctl audit --seccomp-log journal 2>&1");
    let denial = report
        .split("\n\n")
        .find(|block| block.contains("unshare ("))
        .unwrap_or_else(|| panic!("no unshare denial in the report:\n{report}"));
    assert!(
        denial.contains(&format!("strict-it/{id}")),
        "the denial is not mapped to {id}:\n{report}"
    );
    n.ok(&format!(
        "ctr task kill -s KILL {id}; sleep 1; ctr task delete {id}; ctr container delete {id}"
    ));
}

/// snapd as every real node runs it (systemd, socket activation) with the locally packed test snap: the
/// installed `strict` handler (source `auto`: snapd's REST API from outside the snap) lets /dev/fuse in
/// while microk8s:fuse-support is connected, and refuses it, naming the interface, once it is not.
#[test]
fn snapd_under_systemd_answers_the_gate() {
    let (n, _) = installed(NodeConfig::Debian);
    n.ok(
        "systemctl enable --now snapd.socket snapd.service >/dev/null 2>&1
          snap wait system seed.loaded
          modprobe fuse && test -c /dev/fuse",
    );
    // The stand-ins for the store's snapd snap and bare base, and the test snap, packed here.
    n.ok(
        "rm -rf /root/snaps && cp -r /payload/snaps /root/snaps && cd /root/snaps
         cp /usr/lib/snapd/info snapd/usr/lib/snapd/info
         # With a snapd snap installed, snapd builds snap-confine's AppArmor profile from the snap's copy.
         mkdir -p snapd/etc/apparmor.d
         cp /etc/apparmor.d/usr.lib.snapd.snap-confine* snapd/etc/apparmor.d/usr.lib.snapd.snap-confine
         for s in snapd bare microk8s; do snap pack $s . >/dev/null || exit 1; done
         # (Packing first: with the snapd snap installed, `snap pack` looks for mksquashfs in it.)
         for s in snapd bare microk8s; do
           snap list $s >/dev/null 2>&1 || snap install --dangerous ./${s}_*.snap >/dev/null || exit 1
         done
         snap list",
    );
    let connected = |n: &Node| {
        n.ok("snap connections microk8s | awk '$2 == \"microk8s:fuse-support\" {print $3}'")
            .trim()
            .to_string()
    };
    n.ok("snap connect microk8s:fuse-support");
    assert_eq!(connected(&n), ":fuse-support");
    let (code, out) = ctr_run(
        &n,
        "--device /dev/fuse",
        "sh -c 'exec 3</dev/fuse && echo opened'",
    );
    assert_eq!((code, out.trim()), (0, "opened"), "{out}");

    n.ok("snap disconnect microk8s:fuse-support");
    assert_eq!(connected(&n), "-");
    let (code, out) = ctr_run(&n, "--device /dev/fuse", "true");
    assert_ne!(code, 0, "a disconnected device ran: {out}");
    assert!(out.contains("connect fuse-support"), "{out}");
}
