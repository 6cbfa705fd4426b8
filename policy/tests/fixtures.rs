//! Real specs captured from containerd 2.x (policy/tests/fixtures/containerd/, see its README), each with
//! its expected verdict in expected.toml, against the MicroK8s default connections on a typical node.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use serde::Deserialize;
use strict_policy::profile::schema::{DeviceType, HostNamespace};
use strict_policy::{
    evaluate, parse_spec, Catalog, FakeHost, Outcome, Permissions, Plug, PolicyConfig,
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Expected {
    verdict: String,
    /// Rule ids of the violations, in order (refused only).
    #[serde(default)]
    rules: Vec<String>,
    /// Rule ids that must appear among the narrowings.
    #[serde(default)]
    narrowed: Vec<String>,
    /// Plugs to connect instead of the MicroK8s defaults.
    #[serde(default)]
    connect: Vec<String>,
    /// The capture to judge, when the entry is a variant of another (default: the entry's own name).
    spec: Option<String>,
}

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/containerd");

/// A node as the fixtures assume it: the capture machine's device nodes, host namespaces as pid 1's.
fn node() -> FakeHost {
    let mut host = FakeHost::default()
        .device("/dev/fuse", DeviceType::Char, 10, 229)
        .device("/dev/kvm", DeviceType::Char, 10, 232)
        .device("/dev/null", DeviceType::Char, 1, 3)
        .file("/etc/containerd/strict.toml")
        .file("/proc/1/status");
    for (i, ns) in HostNamespace::ALL.iter().enumerate() {
        host.host_namespaces
            .insert(*ns, (4, 0xf000_0000 + i as u64));
        host.namespaces.insert(
            format!("/proc/1/ns/{}", ns.proc_name()).into(),
            (4, 0xf000_0000 + i as u64),
        );
    }
    host
}

fn permissions(connect: &[String]) -> Permissions {
    let catalog = Arc::new(Catalog::embedded().unwrap());
    let plugs = if connect.is_empty() {
        catalog.default_connections("microk8s").unwrap()
    } else {
        connect.iter().map(|p| Plug::parse(p).unwrap()).collect()
    };
    Permissions::new(catalog, PolicyConfig::default(), plugs, "fixtures").unwrap()
}

#[test]
fn every_captured_spec_gets_its_expected_verdict() {
    let expected: BTreeMap<String, Expected> =
        toml::from_str(&std::fs::read_to_string(Path::new(DIR).join("expected.toml")).unwrap())
            .unwrap();
    let mut captures = Vec::new();
    for entry in std::fs::read_dir(DIR).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "json") {
            captures.push(path.file_stem().unwrap().to_str().unwrap().to_string());
        }
    }
    let mut seen = Vec::new();
    for (name, want) in &expected {
        let capture = want.spec.clone().unwrap_or_else(|| name.clone());
        assert!(
            captures.contains(&capture),
            "expected.toml names {capture}, but {capture}.json is missing"
        );
        let bytes = std::fs::read(Path::new(DIR).join(format!("{capture}.json"))).unwrap();
        let mut document = parse_spec(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(
            document.unknown_fields.is_empty(),
            "{name}: containerd wrote fields the gate does not know: {:?}",
            document.unknown_fields
        );
        let perms = permissions(&want.connect);
        let verdict = evaluate(&mut document.spec, &perms, &node());
        let outcome = match verdict.outcome() {
            Outcome::Allowed => "allowed",
            Outcome::Narrowed => "narrowed",
            Outcome::Refused => "refused",
        };
        let rules: Vec<&str> = verdict.violations.iter().map(|v| v.rule).collect();
        assert_eq!(outcome, want.verdict, "{name}: {:#?}", verdict.violations);
        assert_eq!(rules, want.rules, "{name}");
        for rule in &want.narrowed {
            assert!(
                verdict.narrowed.iter().any(|n| n.rule == rule),
                "{name}: no {rule} narrowing in {:?}",
                verdict.narrowed
            );
        }
        if let Some(message) = verdict.refusal_message() {
            assert!(message.len() <= strict_policy::MESSAGE_LIMIT);
        }
        if verdict.runs() {
            let again = evaluate(&mut document.spec, &perms, &node());
            assert_eq!(
                again.outcome(),
                Outcome::Allowed,
                "{name}: not idempotent: {:?}",
                again.narrowed
            );
        }
        seen.push(capture);
    }
    for capture in &captures {
        assert!(
            seen.contains(capture),
            "{capture}.json has no entry in expected.toml"
        );
    }
    assert!(seen.len() >= 10, "only {} fixtures", seen.len());
}

/// Names some rule allows (with or without argument filters).
fn allowed_names(spec: &oci_spec::runtime::Spec) -> std::collections::BTreeSet<String> {
    use oci_spec::runtime::LinuxSeccompAction::*;
    let seccomp = spec.linux().as_ref().and_then(|l| l.seccomp().clone());
    seccomp
        .iter()
        .flat_map(|s| s.syscalls().clone().unwrap_or_default())
        .filter(|r| matches!(r.action(), ScmpActAllow | ScmpActLog))
        .flat_map(|r| r.names().clone())
        .collect()
}

#[test]
fn narrowing_runtime_default_keeps_every_syscall_both_allow() {
    // The granted set, as the narrowing of an unconfined container shows it.
    let perms = permissions(&[]);
    let read = |name: &str| {
        let bytes = std::fs::read(Path::new(DIR).join(format!("{name}.json"))).unwrap();
        parse_spec(&bytes).unwrap().spec
    };
    let mut unconfined = read("default");
    evaluate(&mut unconfined, &perms, &node());
    let granted = allowed_names(&unconfined);
    // RuntimeDefault as it reaches the shim: through containerd's Go types, which omit a zero valueTwo.
    let mut runtime_default = read("seccomp-default");
    let asked = allowed_names(&runtime_default);
    evaluate(&mut runtime_default, &perms, &node());
    let kept = allowed_names(&runtime_default);
    let lost: Vec<&String> = asked
        .intersection(&granted)
        .filter(|n| !kept.contains(*n))
        .collect();
    assert!(
        lost.is_empty(),
        "granted and asked for, yet denied: {lost:?}"
    );
    for essential in ["clone", "socket", "personality", "execve", "wait4"] {
        assert!(kept.contains(essential), "{essential} denied");
    }
}
