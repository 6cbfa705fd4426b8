//! The real data in vendor-profiles/: it loads, covers what it must, keeps snapd's interface-only syscalls
//! out of the base, and docs/interfaces.md is in step with it.

use std::sync::Arc;

use strict_policy::profile::render;
use strict_policy::profile::schema::{capability_name, Role};
use strict_policy::{Catalog, Permissions, Plug, PolicyConfig};

fn catalog() -> Catalog {
    Catalog::embedded().expect("the embedded vendor profiles load")
}

#[test]
fn the_embedded_profiles_and_the_directory_are_the_same() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../vendor-profiles");
    let from_dir = Catalog::from_dir(std::path::Path::new(dir)).expect("loads from the directory");
    let embedded = catalog();
    assert_eq!(
        from_dir.interfaces.keys().collect::<Vec<_>>(),
        embedded.interfaces.keys().collect::<Vec<_>>()
    );
}

#[test]
fn every_interface_the_product_promises_is_there() {
    let catalog = catalog();
    for name in [
        "home",
        "removable-media",
        "opengl",
        "kvm",
        "fuse-support",
        "raw-usb",
        "block-devices",
        "serial-port",
        "network",
        "network-bind",
        "network-control",
        "network-observe",
        "firewall-control",
        "process-control",
        "hardware-observe",
        "system-observe",
        "mount-observe",
        "log-observe",
        "login-session-observe",
        "kernel-module-observe",
        "kernel-module-control",
        "docker-support",
        "kubernetes-support",
        "personal-files",
        "system-files",
        "content",
        "account-control",
        "hostname-control",
        "time-control",
    ] {
        assert!(
            catalog.interfaces.contains_key(name),
            "interfaces/{name}.toml is missing"
        );
    }
}

#[test]
fn runtime_interfaces_grant_workloads_nothing_by_default() {
    let catalog = catalog();
    for name in [
        "docker-support",
        "kubernetes-support",
        "content",
        "account-control",
    ] {
        let def = &catalog.interfaces[name];
        assert_eq!(def.role, Role::Runtime, "{name}");
        assert!(
            def.grant.is_empty(),
            "{name} grants workloads something unconditionally"
        );
    }
    let privileged = Plug::parse("docker-support:privileged-containers=true").unwrap();
    assert!(catalog.interface_grant(&privileged).unwrap().privileged);
    let unprivileged = Plug::parse("docker-support:privileged-containers=false").unwrap();
    assert!(!catalog.interface_grant(&unprivileged).unwrap().privileged);
}

#[test]
fn capabilities_only_safe_with_apparmor_are_never_passed() {
    let catalog = catalog();
    let never = [
        "CAP_SYS_ADMIN",
        "CAP_SYS_MODULE",
        "CAP_SYS_RAWIO",
        "CAP_DAC_READ_SEARCH",
        "CAP_SYS_PTRACE",
    ];
    let base: Vec<String> = catalog
        .base
        .capabilities
        .iter()
        .map(|c| capability_name(*c))
        .collect();
    for (name, def) in &catalog.interfaces {
        let mut grants = vec![def.grant.clone()];
        grants.extend(
            def.attributes
                .values()
                .flat_map(|a| a.grants.values().cloned()),
        );
        for grant in grants {
            for cap in &grant.capabilities {
                let cap = capability_name(*cap);
                assert!(!never.contains(&cap.as_str()), "{name} passes {cap}");
            }
        }
    }
    for cap in never {
        assert!(!base.iter().any(|c| c == cap), "the base grants {cap}");
    }
}

#[test]
fn the_base_keeps_interface_only_syscalls_out() {
    let catalog = catalog();
    let base: Vec<&str> = catalog.base.syscalls.iter().map(|s| s.0.as_str()).collect();
    for name in [
        "mount",
        "umount2",
        "unshare",
        "setns",
        "pivot_root",
        "bpf",
        "perf_event_open",
        "ptrace",
        "process_vm_readv",
        "process_vm_writev",
        "keyctl",
        "add_key",
        "request_key",
        "init_module",
        "finit_module",
        "delete_module",
        "kexec_load",
        "kexec_file_load",
        "reboot",
        "swapon",
        "swapoff",
        "open_by_handle_at",
        "name_to_handle_at",
        "userfaultfd",
        "io_uring_setup",
        "io_uring_enter",
        "io_uring_register",
        "clock_settime",
        "settimeofday",
        "adjtimex",
        "acct",
        "iopl",
        "ioperm",
        "quotactl",
        "fanotify_init",
        "lookup_dcookie",
    ] {
        assert!(!base.contains(&name), "the base allows {name}");
        assert!(
            !catalog
                .base
                .syscall_filters
                .iter()
                .any(|f| f.names.iter().any(|n| n.0 == name)),
            "{name}"
        );
    }
    for name in [
        "read",
        "write",
        "accept4",
        "bind",
        "listen",
        "setuid",
        "setgroups",
        "execve",
        "epoll_wait",
    ] {
        assert!(base.contains(&name), "ordinary workloads need {name}");
    }
}

#[test]
fn microk8s_default_connections_are_valid_and_grant_the_defaults() {
    let catalog = Arc::new(catalog());
    let plugs = catalog
        .default_connections("microk8s")
        .expect("microk8s plugs");
    assert!(plugs.len() >= 15, "{} plugs", plugs.len());
    let perms = Permissions::new(catalog, PolicyConfig::default(), plugs, "test").expect("valid");
    // With MicroK8s' defaults, containerd's 14 default capabilities all pass.
    for cap in &perms.catalog.base.runtime_default_capabilities {
        assert!(
            perms.capability(*cap).is_some(),
            "{} not granted",
            capability_name(*cap)
        );
    }
    assert!(
        !perms.privileged_allowed(),
        "privileged needs the operator's consent too"
    );
}

/// docs/interfaces.md = docs/interfaces-intro.md + the table generated from the profiles.
#[test]
fn docs_interfaces_is_generated_from_the_profiles() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let intro = std::fs::read_to_string(format!("{root}/docs/interfaces-intro.md")).expect("intro");
    let expected = format!("{intro}\n{}", render::markdown_table(&catalog()));
    let actual = std::fs::read_to_string(format!("{root}/docs/interfaces.md")).unwrap_or_default();
    if actual != expected {
        if std::env::var_os("STRICT_BLESS").is_some() {
            std::fs::write(format!("{root}/docs/interfaces.md"), &expected).unwrap();
            return;
        }
        panic!(
            "docs/interfaces.md is out of step with vendor-profiles/: regenerate it with \
             `STRICT_BLESS=1 cargo test -p strict-policy --test vendor_profiles`"
        );
    }
}

/// Every syscall the reference workloads made (captured with strace, see tests/fixtures/workloads/README.md)
/// is in the base: unconditionally, behind an argument filter, or answered with an errno glibc falls back from.
#[test]
fn the_base_covers_what_ordinary_workloads_call() {
    let catalog = catalog();
    let base = &catalog.base;
    let covered = |name: &str| {
        base.syscalls.iter().any(|s| s.0 == name)
            || base
                .syscall_filters
                .iter()
                .any(|f| f.names.iter().any(|n| n.0 == name))
            || base
                .syscall_errno
                .iter()
                .any(|f| f.names.iter().any(|n| n.0 == name))
    };
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/workloads");
    let mut workloads = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "txt") {
            continue;
        }
        workloads += 1;
        let text = std::fs::read_to_string(&path).unwrap();
        let missing: Vec<&str> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .filter(|name| !covered(name))
            .collect();
        assert!(missing.is_empty(), "{}: {missing:?}", path.display());
    }
    assert!(workloads >= 5, "only {workloads} workload captures");
}
