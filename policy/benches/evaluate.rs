//! The gate's cost on the container-create path, for a typical CRI container spec (RuntimeDefault seccomp,
//! a dozen mounts) against the MicroK8s default connections:
//! - `evaluate`: the intersection alone, on a parsed spec;
//! - `read_parse_evaluate_write`: what the shim does in Create: read config.json, parse it, evaluate,
//!   write the narrowed spec back atomically.
//!
//! Run: `cargo bench -p strict-policy --bench evaluate`. Figures: docs/benchmarks.md.

use std::path::Path;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use strict_policy::profile::schema::HostNamespace;
use strict_policy::{
    document::to_json, evaluate, evaluate_document, parse_spec, write_atomically, Catalog,
    FakeHost, Permissions, PolicyConfig, RealHost,
};

// The shim's allocator: the gate's work is mostly small allocations (syscall names, paths).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const SPEC: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/cri/container.json"
);

/// Where the fixture's node keeps kubelet and containerd state (MicroK8s' SNAP_COMMON).
const SNAP_COMMON: &str = "/var/snap/microk8s/common";

/// MicroK8s' default connections, on a node whose kubelet and containerd state lie under `common`.
fn permissions(common: &Path) -> Permissions {
    let catalog = Catalog::embedded().expect("embedded profiles");
    let plugs = catalog
        .default_connections("microk8s")
        .expect("microk8s plugs");
    let mut config = PolicyConfig::default();
    config.node.kubelet_roots = vec![common.join("var/lib/kubelet")];
    config.node.containerd_roots = vec![common.join("var/lib/containerd")];
    config.node.containerd_states = vec![common.join("run/containerd")];
    Permissions::new(Arc::new(catalog), config, plugs, "bench").expect("plugs")
}

/// Creates the pod's files the spec bind-mounts, as the kubelet and containerd would have, under `common`.
fn pod_files(spec: &str, common: &Path) {
    let value: serde_json::Value = serde_json::from_str(spec).expect("json");
    for mount in value["mounts"].as_array().expect("mounts") {
        let source = Path::new(mount["source"].as_str().unwrap_or_default());
        if !source.starts_with(common) {
            continue;
        }
        let dst = mount["destination"].as_str().unwrap_or_default();
        let is_file = [
            "/etc/hostname",
            "/etc/hosts",
            "/etc/resolv.conf",
            "/dev/termination-log",
        ]
        .contains(&dst);
        if is_file {
            std::fs::create_dir_all(source.parent().unwrap()).expect("mkdir");
            std::fs::write(source, b"").expect("file");
        } else {
            std::fs::create_dir_all(source).expect("mkdir");
        }
    }
}

/// The fixture joins a pod sandbox's namespaces (/proc/4242/ns/...): a stand-in pause process in its own
/// IPC, UTS and network namespaces takes that place, so the gate examines real namespaces as in Create.
fn pause_process() -> std::process::Child {
    std::process::Command::new("unshare")
        .args(["--ipc", "--uts", "--net", "sleep", "600"])
        .spawn()
        .expect("unshare (util-linux) runs a stand-in pause process; the benchmark needs root")
}

fn benches(c: &mut Criterion) {
    let node_root = tempfile::tempdir().expect("temp dir");
    let common = node_root.path().join("common");
    let perms = permissions(&common);
    let mut pause = pause_process();
    std::thread::sleep(std::time::Duration::from_millis(100));
    let fixture = std::fs::read_to_string(SPEC)
        .expect("the CRI fixture")
        .replace("/proc/4242/", &format!("/proc/{}/", pause.id()))
        .replace(SNAP_COMMON, common.to_str().expect("utf-8 temp dir"));
    pod_files(&fixture, &common);
    let bytes = fixture.into_bytes();
    let parsed = parse_spec(&bytes).expect("parses").spec;
    {
        let mut check = parsed.clone();
        let verdict = evaluate(&mut check, &perms, &RealHost);
        assert!(
            verdict.runs(),
            "the benchmark spec must run: {:?}",
            verdict.violations
        );
    }

    // The intersection alone: the host's answers (symlinks, namespaces) come from memory.
    let node = node(pause.id());
    assert!(evaluate(&mut parsed.clone(), &perms, &node).runs());
    // The copies are made and dropped outside the timing: only the evaluation is measured.
    c.bench_function("evaluate", |b| {
        b.iter_batched_ref(
            || parsed.clone(),
            |spec| evaluate(spec, &perms, &node),
            BatchSize::SmallInput,
        )
    });
    // The same with every host lookup made on this machine.
    c.bench_function("evaluate_real_host", |b| {
        b.iter_batched_ref(
            || parsed.clone(),
            |spec| evaluate(spec, &perms, &RealHost),
            BatchSize::SmallInput,
        )
    });

    c.bench_function("parse", |b| b.iter(|| parse_spec(&bytes).expect("parses")));
    c.bench_function("parse_plain_serde", |b| {
        b.iter(|| serde_json::from_slice::<oci_spec::runtime::Spec>(&bytes).expect("parses"))
    });
    c.bench_function("serialise", |b| b.iter(|| to_json(&parsed)));

    // Bundles live in containerd's state directory, a tmpfs (/run/containerd): /dev/shm stands in.
    let dir = tempfile::tempdir_in("/dev/shm").expect("temp dir");
    let bundle_config = dir.path().join("config.json");
    c.bench_function("read_parse_evaluate_write", |b| {
        b.iter_batched(
            || std::fs::write(&bundle_config, &bytes).expect("fresh config.json"),
            |()| gate(&bundle_config, &perms),
            BatchSize::SmallInput,
        )
    });
    let _ = pause.kill();
    let _ = pause.wait();
}

/// The node as the fixture sees it: the pod's namespaces differ from the host's.
fn node(pause: u32) -> FakeHost {
    let mut host = FakeHost::default();
    for (i, ns) in HostNamespace::ALL.iter().enumerate() {
        host.host_namespaces
            .insert(*ns, (4, 0xf000_0000 + i as u64));
        host.namespaces.insert(
            format!("/proc/{pause}/ns/{}", ns.proc_name()).into(),
            (4, 0xe000_0000 + i as u64),
        );
    }
    host
}

/// What the shim's Create does with a bundle's config.json.
fn gate(path: &Path, perms: &Permissions) {
    let bytes = std::fs::read(path).expect("read");
    let mut document = parse_spec(&bytes).expect("parse");
    let verdict = evaluate_document(&mut document, perms, &RealHost);
    assert!(verdict.runs());
    write_atomically(path, &to_json(&document.spec)).expect("write");
}

criterion_group!(name = gate_benches; config = Criterion::default().sample_size(200); targets = benches);
criterion_main!(gate_benches);
