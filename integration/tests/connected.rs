//! The other half of each refusal in gate.rs: once the interface that grants it is connected, the same
//! container runs. This test binary's containerd gives the shim a configuration with a static list of
//! connections (`connections` in strict.toml, read by every new shim) instead of the snap's defaults.

use std::sync::Once;

use strict_integration::{testbed, text, STRICT};

/// The plugs this binary's node has connected: the ones the tests need, and nothing else.
const CONNECTIONS: &[&str] = &[
    "network",
    "kvm",
    "system-files:read=/srv",
    "network-control",
];

fn connected() -> &'static strict_integration::Testbed {
    static CONFIGURED: Once = Once::new();
    let tb = testbed();
    CONFIGURED.call_once(|| {
        let config = tb.run_dir.join("strict.toml");
        let mut text = std::fs::read_to_string(&config).unwrap();
        let list: Vec<String> = CONNECTIONS.iter().map(|p| format!("{p:?}")).collect();
        // Top-level keys go before the first table; the harness's `source = "embedded"` gives way.
        text = text.replace("source = \"embedded\"\n", "");
        text = format!(
            "source = \"static\"\nconnections = [{}]\n{text}",
            list.join(", ")
        );
        std::fs::write(&config, text).unwrap();
    });
    tb
}

fn assert_runs(flags: &[&str], cmd: &[&str]) -> String {
    let out = connected().run(STRICT, flags, cmd);
    let stdout = text(&out.stdout);
    assert!(
        out.status.success(),
        "{flags:?} did not run: {stdout} {}",
        text(&out.stderr)
    );
    stdout
}

#[test]
fn the_host_path_runs_once_system_files_grants_it() {
    std::fs::create_dir_all("/srv").unwrap();
    let stdout = assert_runs(
        &["--mount", "type=bind,src=/srv,dst=/srv,options=rbind:ro"],
        &["sh", "-c", "grep ' /srv ' /proc/self/mounts"],
    );
    assert!(stdout.contains(" /srv "), "{stdout}");
    // Read-only as granted: writing is a read-write grant, which is not connected.
    let out = connected().run(
        STRICT,
        &["--mount", "type=bind,src=/srv,dst=/srv,options=rbind:rw"],
        &["true"],
    );
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("connect system-files (write: /srv)"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn the_device_runs_once_kvm_is_connected() {
    assert!(
        std::path::Path::new("/dev/kvm").exists(),
        "this test needs /dev/kvm on the host"
    );
    let stdout = assert_runs(&["--device", "/dev/kvm"], &["ls", "-l", "/dev/kvm"]);
    assert!(stdout.contains("10,"), "{stdout}");
}

#[test]
fn the_hosts_network_namespace_runs_once_network_control_is_connected() {
    let host = std::fs::read_link("/proc/self/ns/net").unwrap();
    let stdout = assert_runs(&["--net-host"], &["readlink", "/proc/self/ns/net"]);
    assert_eq!(stdout, host.display().to_string());
}

#[test]
fn what_no_connected_interface_grants_is_still_refused() {
    // CAP_SYS_ADMIN: no interface passes it to workloads, whatever is connected.
    let out = connected().run(STRICT, &["--cap-add", "CAP_SYS_ADMIN"], &["true"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("strict: refused: "),
        "{}",
        text(&out.stderr)
    );
}
