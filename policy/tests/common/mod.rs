//! A small catalog and spec builders for engine tests: the rules are tested against this, independent of
//! how the vendor profiles evolve; tests/vendor_profiles.rs tests the real data.
#![allow(dead_code)]

use std::sync::Arc;

use serde_json::{json, Value};
use strict_policy::profile::schema::{DeviceType, HostNamespace};
use strict_policy::{
    evaluate, parse_spec, Catalog, FakeHost, Permissions, Plug, PolicyConfig, Verdict,
};

pub const BASE: &str = r#"
description = "test base"
capabilities = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_SETGID",
  "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE"]
runtime_default_capabilities = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
  "CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
  "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE"]
syscalls = ["read", "write", "openat", "close", "exit_group", "futex", "mmap", "bind", "listen", "accept4",
  "clock_gettime", "getpid", "execve", "arm_fadvise64_64"]
syscall_filters = [
  { names = ["clone"], args = [{ index = 0, op = "SCMP_CMP_MASKED_EQ", value = 2114060288, value_two = 0 }] },
]
syscall_errno = [{ names = ["clone3"], errno = 38 }]
sysctls = ["net.ipv4.ping_group_range", "net.ipv4.ip_unprivileged_port_start", "kernel.shm_rmid_forced"]
mount_types = ["proc", "sysfs", "tmpfs", "devpts", "mqueue", "cgroup", "cgroup2"]
masked_paths = ["/proc/kcore", "/proc/keys"]
readonly_paths = ["/proc/sys", "/proc/bus"]
devices = [
  { path = "/dev/null", type = "c", major = 1, minor = 3, access = "rwm" },
  { path = "/dev/console", type = "c", major = 5, minor = 1, access = "rwm", host_bind = false },
  { path = "/dev/pts/*", type = "c", major = 136, access = "rwm", host_bind = false },
  { type = "c", access = "m" },
  { type = "b", access = "m" },
]
[host_namespaces]
network = [["network-control"]]
uts = [["network-control"]]
pid = [["system-observe", "process-control"]]
ipc = []
"#;

fn iface(name: &str, body: &str) -> (String, String) {
    (
        format!("interfaces/{name}.toml"),
        format!(
            "interface = \"{name}\"\nsummary = \"s\"\nsnapd = \"interfaces/builtin/{name}.go\"\nrationale = \"r\"\n{body}"
        ),
    )
}

pub fn catalog() -> Catalog {
    let files = vec![
        ("base.toml".to_string(), BASE.to_string()),
        iface(
            "home",
            r#"role = "workload"
[grant]
paths = [{ path = "/root/[!.]*", access = "rw" }]
[attributes.read]
type = "enum"
values = ["all"]
[attributes.read.grants.all]
paths = [{ path = "/home/*/[!.]*", access = "ro" }]
"#,
        ),
        iface(
            "system-files",
            r#"role = "workload"
[attributes.read]
type = "paths"
access = "ro"
[attributes.write]
type = "paths"
access = "rw"
"#,
        ),
        iface(
            "personal-files",
            r#"role = "workload"
[attributes.write]
type = "home-paths"
access = "rw"
"#,
        ),
        iface(
            "removable-media",
            r#"role = "workload"
[grant]
paths = [{ path = "/media", access = "rw", propagation = "shared" }, { path = "/mnt", access = "rw" }]
"#,
        ),
        iface(
            "kvm",
            r#"role = "workload"
[grant]
devices = [{ path = "/dev/kvm", type = "c", major = 10, minor = 232, access = "rwm" }]
"#,
        ),
        iface(
            "serial-port",
            r#"role = "workload"
[attributes.path]
type = "device-path"
pattern = "^/dev/tty(USB|ACM|S)[0-9]+$"
device_type = "c"
required = true
"#,
        ),
        iface(
            "network-control",
            r#"role = "workload"
[grant]
capabilities = ["CAP_NET_ADMIN", "CAP_NET_RAW"]
sysctls = ["net.*"]
[withheld]
CAP_SYS_ADMIN = "paired with AppArmor mount rules"
"#,
        ),
        iface("system-observe", "role = \"workload\"\n"),
        iface(
            "process-control",
            r#"role = "workload"
[grant]
capabilities = ["CAP_SYS_NICE"]
syscalls = ["sched_setattr"]
"#,
        ),
        iface(
            "docker-support",
            r#"role = "runtime"
[attributes.privileged-containers]
type = "bool"
[attributes.privileged-containers.grants.true]
privileged = true
"#,
        ),
        (
            "snaps/testsnap.toml".to_string(),
            r#"snap = "testsnap"
description = "d"
[plugs.home-read-all]
interface = "home"
attributes = { read = "all" }
[plugs.network-control]
interface = "network-control"
[default]
connected = ["home-read-all", "network-control"]
"#
            .to_string(),
        ),
    ];
    Catalog::from_files(files).expect("the test catalog is valid")
}

pub fn perms_with(plugs: &[&str], config: PolicyConfig) -> Permissions {
    let plugs = plugs.iter().map(|p| Plug::parse(p).unwrap()).collect();
    Permissions::new(Arc::new(catalog()), config, plugs, "test").unwrap()
}

pub fn perms(plugs: &[&str]) -> Permissions {
    perms_with(plugs, PolicyConfig::default())
}

/// A host whose namespaces are (1, n) and with a few device nodes.
pub fn host() -> FakeHost {
    let mut host = FakeHost::default()
        .device("/dev/kvm", DeviceType::Char, 10, 232)
        .device("/dev/ttyUSB0", DeviceType::Char, 188, 0)
        .device("/dev/sda", DeviceType::Block, 8, 0)
        .file("/etc/passwd")
        .file("/proc/1/status");
    for (i, ns) in HostNamespace::ALL.iter().enumerate() {
        host.host_namespaces.insert(*ns, (1, i as u64));
        host.namespaces.insert(
            format!("/proc/1/ns/{}", ns.proc_name()).into(),
            (1, i as u64),
        );
        host.namespaces.insert(
            format!("/proc/4242/ns/{}", ns.proc_name()).into(),
            (2, i as u64),
        );
    }
    host
}

/// An ordinary container spec, as containerd writes one (trimmed): own namespaces, default caps and masks.
pub fn spec() -> Value {
    let caps = json!([
        "CAP_CHOWN",
        "CAP_DAC_OVERRIDE",
        "CAP_FSETID",
        "CAP_FOWNER",
        "CAP_MKNOD",
        "CAP_NET_RAW",
        "CAP_SETGID",
        "CAP_SETUID",
        "CAP_SETFCAP",
        "CAP_SETPCAP",
        "CAP_NET_BIND_SERVICE",
        "CAP_SYS_CHROOT",
        "CAP_KILL",
        "CAP_AUDIT_WRITE"
    ]);
    json!({
        "ociVersion": "1.2.0",
        "process": {
            "user": {"uid": 0, "gid": 0},
            "args": ["/bin/sh"],
            "cwd": "/",
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
            "noNewPrivileges": true
        },
        "root": {"path": "rootfs"},
        // An app container of pod 0a1b (sandbox abc), as CRI annotates it: its files are its own.
        "annotations": {
            "io.kubernetes.cri.container-type": "container",
            "io.kubernetes.cri.sandbox-id": "abc",
            "io.kubernetes.cri.sandbox-uid": "0a1b"
        },
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/etc/hosts", "type": "bind",
             "source": "/var/lib/containerd/io.containerd.grpc.v1.cri/sandboxes/abc/hosts", "options": ["rbind", "rprivate", "rw"]},
            {"destination": "/data", "type": "bind",
             "source": "/var/lib/kubelet/pods/0a1b/volumes/kubernetes.io~empty-dir/data", "options": ["rbind", "rprivate", "rw"]}
        ],
        "linux": {
            "namespaces": [{"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"},
                           {"type": "network"}, {"type": "cgroup"}],
            "maskedPaths": ["/proc/kcore", "/proc/keys"],
            "readonlyPaths": ["/proc/sys", "/proc/bus"],
            "resources": {"devices": [{"allow": false, "access": "rwm"}]},
            "seccomp": {
                "defaultAction": "SCMP_ACT_ERRNO",
                "defaultErrnoRet": 1,
                "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
                "flags": ["SECCOMP_FILTER_FLAG_LOG"],
                "syscalls": [
                    {"names": ["read", "write", "openat", "close", "exit_group", "futex", "mmap", "execve"],
                     "action": "SCMP_ACT_ALLOW"},
                    {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
                     "args": [{"index": 0, "value": 2114060288u64, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]},
                    {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}
                ]
            }
        }
    })
}

/// Evaluates a JSON spec; returns the verdict and the spec as it would be handed to runc.
pub fn run(spec: &Value, perms: &Permissions) -> (Verdict, Value) {
    run_on(spec, perms, &host())
}

pub fn run_on(spec: &Value, perms: &Permissions, host: &FakeHost) -> (Verdict, Value) {
    let bytes = serde_json::to_vec(spec).unwrap();
    let mut document = parse_spec(&bytes).unwrap();
    assert!(
        document.unknown_fields.is_empty(),
        "{:?}",
        document.unknown_fields
    );
    let verdict = evaluate(&mut document.spec, perms, host);
    let out = sorted_capabilities(serde_json::to_value(&document.spec).unwrap());
    (verdict, out)
}

/// Capability sets are sets: sorted so that specs compare by content.
pub fn sorted_capabilities(mut spec: Value) -> Value {
    if let Some(caps) = spec
        .pointer_mut("/process/capabilities")
        .and_then(Value::as_object_mut)
    {
        for set in caps.values_mut() {
            if let Some(list) = set.as_array_mut() {
                list.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
            }
        }
    }
    spec
}

pub fn rules(verdict: &Verdict) -> Vec<&'static str> {
    verdict.violations.iter().map(|v| v.rule).collect()
}

pub fn add_mount(spec: &mut Value, source: &str, options: &[&str]) {
    spec["mounts"].as_array_mut().unwrap().push(json!({
        "destination": "/mnt/x", "type": "bind", "source": source, "options": options
    }));
}
