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
use strict_policy::{
    document::to_json, evaluate, evaluate_document, parse_spec, write_atomically, Catalog,
    Permissions, PolicyConfig, RealHost,
};

const SPEC: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/cri/container.json"
);

fn permissions() -> Permissions {
    let catalog = Catalog::embedded().expect("embedded profiles");
    let plugs = catalog
        .default_connections("microk8s")
        .expect("microk8s plugs");
    Permissions::new(Arc::new(catalog), PolicyConfig::default(), plugs, "bench").expect("plugs")
}

fn benches(c: &mut Criterion) {
    let perms = permissions();
    let bytes = std::fs::read(SPEC).expect("the CRI fixture");
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

    c.bench_function("evaluate", |b| {
        b.iter_batched(
            || parsed.clone(),
            |mut spec| evaluate(&mut spec, &perms, &RealHost),
            BatchSize::SmallInput,
        )
    });

    let dir = tempfile::tempdir().expect("temp dir");
    let bundle_config = dir.path().join("config.json");
    c.bench_function("read_parse_evaluate_write", |b| {
        b.iter_batched(
            || std::fs::write(&bundle_config, &bytes).expect("fresh config.json"),
            |()| gate(&bundle_config, &perms),
            BatchSize::SmallInput,
        )
    });
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
