//! Drift: what the gate admitted, judged again once the connections changed (`strictctl status`), and
//! what `reconcile` does about it, against a node stand-in (the runtime and cgroups are the seam; the
//! live runs are in integration/tests/snapd_live.rs).

use std::cell::RefCell;
use std::path::{Path, PathBuf};

use strict_policy::{Mode, OnRevoke};
use strict_protocol::AdmittedRuntime;
use strictctl::audit::report::read_records;
use strictctl::drift::admission::Admission;
use strictctl::drift::node::{ContainerState, DeviceRule, Node, NodeError};
use strictctl::drift::reconcile::{reconcile, Action};
use strictctl::drift::{survey, Judge};
use strictctl::gate::features::RuntimeFeatures;
use strictctl::gate::{ConfigLoad, Gate};
use strictctl::setup::load_config;

const FIXTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../policy/tests/fixtures/containerd"
);

/// A node whose containers all run (pid 4242, from their bundles below `state`) unless stopped; it
/// records what was done.
#[derive(Default)]
struct FakeNode {
    state: PathBuf,
    stopped: RefCell<Vec<String>>,
    denied: RefCell<Vec<(u32, String, Vec<DeviceRule>)>>,
    asked: RefCell<Vec<String>>,
    gone: Vec<String>,
    cgroup_v2: bool,
    holding_open: bool,
    /// Containers the runtime reports from another bundle.
    elsewhere: Vec<String>,
}

impl FakeNode {
    fn on(node: &Node_) -> FakeNode {
        FakeNode {
            state: node.state(),
            ..FakeNode::default()
        }
    }
}

impl Node for FakeNode {
    fn state(&self, _: &AdmittedRuntime, id: &str) -> Result<Option<ContainerState>, NodeError> {
        self.asked.borrow_mut().push(id.into());
        if self.gone.iter().any(|g| g == id) {
            return Ok(None);
        }
        let status = if self.stopped.borrow().iter().any(|s| s == id) {
            "stopped"
        } else {
            "running"
        };
        let bundle = if self.elsewhere.iter().any(|e| e == id) {
            PathBuf::from("/elsewhere").join(id)
        } else {
            self.state
                .join("io.containerd.runtime.v2.task/k8s.io")
                .join(id)
        };
        Ok(Some(ContainerState {
            status: status.into(),
            pid: 4242,
            bundle,
        }))
    }
    fn stop(&self, _: &AdmittedRuntime, id: &str) -> Result<(), NodeError> {
        self.stopped.borrow_mut().push(id.into());
        Ok(())
    }
    fn deny_devices(
        &self,
        _: &AdmittedRuntime,
        pid: u32,
        cgroups_path: &str,
        rules: &[DeviceRule],
    ) -> Result<(), NodeError> {
        if self.cgroup_v2 {
            return Err(NodeError::NoDeviceCgroup { pid });
        }
        self.denied
            .borrow_mut()
            .push((pid, cgroups_path.to_string(), rules.to_vec()));
        if self.holding_open {
            return Err(NodeError::DeviceOpen {
                pid: 4243,
                device: "c 10:229".into(),
            });
        }
        Ok(())
    }
}

struct Node_ {
    dir: tempfile::TempDir,
}

impl Node_ {
    fn new() -> Node_ {
        Node_ {
            dir: tempfile::tempdir().unwrap(),
        }
    }
    fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }
    fn audit(&self) -> PathBuf {
        self.dir.path().join("audit.log")
    }
    /// The configuration file with these plugs connected (a static list).
    fn connect(&self, mode: Mode, plugs: &[&str], on_revoke: &str) -> PathBuf {
        let path = self.dir.path().join("strict.toml");
        let list: Vec<String> = plugs.iter().map(|p| format!("{p:?}")).collect();
        std::fs::write(
            &path,
            format!(
                "mode = \"{mode}\"\nsource = \"static\"\nconnections = [{}]\non_revoke = \"{on_revoke}\"\n\
                 [audit]\npath = {:?}\n[runtime]\nroot = {:?}\n",
                list.join(", "),
                self.audit(),
                self.dir.path().join("runc")
            ),
        )
        .unwrap();
        path
    }
    /// A container admitted by the gate under the configuration as it is now.
    fn admit(&self, config: &Path, id: &str, fixture: &str) -> PathBuf {
        let spec = std::fs::read_to_string(format!("{FIXTURES}/{fixture}.json")).unwrap();
        self.admit_spec(config, id, &serde_json::from_str(&spec).unwrap())
    }
    fn admit_spec(&self, config: &Path, id: &str, spec: &serde_json::Value) -> PathBuf {
        let bundle = self
            .state()
            .join("io.containerd.runtime.v2.task/k8s.io")
            .join(id);
        std::fs::create_dir_all(bundle.join("rootfs")).unwrap();
        std::fs::write(bundle.join("config.json"), spec.to_string()).unwrap();
        let (loaded, _) = load_config(Some(config)).unwrap();
        let runtime = AdmittedRuntime {
            binary: loaded.runtime.binary.clone(),
            root: loaded.runtime.root.join("k8s.io"),
            systemd_cgroup: false,
        };
        let mut gate = Gate::load(
            ConfigLoad {
                config: loaded,
                source: config.display().to_string(),
                file: Some(config.to_owned()),
                body: None,
                error: None,
            },
            "k8s.io",
        );
        gate.set_runtime(&runtime, &RuntimeFeatures::default());
        gate.check_bundle(id, &bundle, &[], &[])
            .unwrap_or_else(|e| panic!("{id} is admitted: {e}"));
        bundle
    }
    fn judge(&self) -> Judge {
        Judge::new(strict_policy::PolicyConfig::default())
    }
}

#[test]
fn a_container_admitted_under_old_connections_is_listed_with_what_it_holds() {
    let node = Node_::new();
    let config = node.connect(Mode::Enforce, &["fuse-support", "network"], "report");
    let bundle = node.admit(&config, "fuse", "device-fuse");
    node.admit(&config, "plain", "default");
    let admission = Admission::read(&bundle).unwrap();
    assert_eq!(admission.namespace, "k8s.io");
    assert!(admission.config_file.is_some());
    assert!(admission.permissions_source.contains("static"));

    let fake = FakeNode::on(&node);
    // Nothing changed: both run, neither drifted (narrowing is idempotent).
    let found = survey(&[node.state()], &mut node.judge(), &fake);
    assert!(found.unreadable.is_empty(), "{:?}", found.unreadable);
    assert_eq!(found.held.len(), 2);
    assert!(found.held.iter().all(|h| !h.drifted()), "{:#?}", found.held);

    // fuse-support disconnected: the fuse container holds /dev/fuse, which is no longer granted.
    node.connect(Mode::Enforce, &["network"], "report");
    let found = survey(&[node.state()], &mut node.judge(), &fake);
    let drifted: Vec<_> = found.held.iter().filter(|h| h.drifted()).collect();
    assert_eq!(drifted.len(), 1);
    assert_eq!(drifted[0].admission.id, "fuse");
    let verdict = &drifted[0].now.as_ref().unwrap().verdict;
    let fields: Vec<&str> = verdict
        .violations
        .iter()
        .map(|v| v.field.as_str())
        .collect();
    assert!(fields.contains(&"linux.devices[0]"), "{fields:?}");
    assert!(verdict
        .violations
        .iter()
        .any(|v| v.interfaces.contains(&"fuse-support".into())));

    // A container its runtime no longer runs holds nothing.
    let gone = FakeNode {
        gone: vec!["fuse".into()],
        ..FakeNode::on(&node)
    };
    let found = survey(&[node.state()], &mut node.judge(), &gone);
    assert_eq!(found.held.len(), 1);

    // A record that does not parse is reported, not skipped silently.
    std::fs::write(bundle.join("strict-admission.json"), "{").unwrap();
    let found = survey(&[node.state()], &mut node.judge(), &fake);
    assert_eq!(found.unreadable.len(), 1, "{:?}", found.unreadable);
    assert!(found.unreadable[0].contains("not an admission record"));
}

#[test]
fn reconcile_reports_narrows_devices_or_stops_as_configured() {
    let node = Node_::new();
    let config = node.connect(Mode::Enforce, &["fuse-support", "network"], "report");
    node.admit(&config, "fuse", "device-fuse");
    let config = node.connect(Mode::Enforce, &["network", "network-control"], "report");
    node.admit(&config, "netadmin", "cap-add-net-admin");

    // report: recorded in the audit trail, nothing done to the containers.
    node.connect(Mode::Enforce, &["network"], "report");
    let fake = FakeNode::on(&node);
    let mut judge = node.judge();
    let found = survey(&[node.state()], &mut judge, &fake);
    assert_eq!(found.held.iter().filter(|h| h.drifted()).count(), 2);
    for held in &found.held {
        let done = reconcile(held, None, &mut judge, &fake);
        assert_eq!(done.action, Action::Reported, "{done:?}");
    }
    assert!(fake.stopped.borrow().is_empty() && fake.denied.borrow().is_empty());
    let (records, _) = read_records(&node.audit(), None).unwrap();
    let revoked: Vec<_> = records
        .iter()
        .filter(|r| r.decision.as_str() == "revoked")
        .collect();
    assert_eq!(revoked.len(), 2);
    assert!(revoked
        .iter()
        .all(|r| r.action.as_deref() == Some("reported")));
    assert!(revoked.iter().any(|r| r
        .violations
        .iter()
        .any(|v| v.interfaces.contains(&"fuse-support".into()))));

    // narrow: the device goes from the fuse container's device cgroup; a capability cannot be taken
    // from a running process, so that container is stopped. (Had the fuse container also been admitted
    // with network-control's CAP_NET_RAW, it would be stopped too.)
    node.connect(Mode::Enforce, &["network"], "narrow");
    let mut judge = node.judge();
    let found = survey(&[node.state()], &mut judge, &fake);
    for held in &found.held {
        let done = reconcile(held, None, &mut judge, &fake);
        match held.admission.id.as_str() {
            "fuse" => {
                assert_eq!(done.action, Action::Narrowed, "{done:?} {:#?}", held.now);
                assert!(done.detail.contains("c 10:229 rwm"), "{}", done.detail);
            }
            _ => assert_eq!(done.action, Action::Stopped, "{done:?}"),
        }
    }
    let denied = fake.denied.borrow().clone();
    assert_eq!(denied.len(), 1);
    assert_eq!(denied[0].0, 4242);
    // The container's own cgroup, as its spec names it.
    let spec: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{FIXTURES}/device-fuse.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(denied[0].1, spec["linux"]["cgroupsPath"].as_str().unwrap());
    assert_eq!(
        denied[0]
            .2
            .iter()
            .map(|r| r.to_string())
            .collect::<Vec<_>>(),
        ["c 10:229 rwm"]
    );
    assert_eq!(*fake.stopped.borrow(), ["netadmin"]);
    // Narrowed: the record says so and the container no longer drifts; the stopped one is not live.
    let found = survey(&[node.state()], &mut node.judge(), &fake);
    assert_eq!(found.held.len(), 1);
    assert!(!found.held[0].drifted(), "{:#?}", found.held[0].now);
    assert_eq!(found.held[0].admission.revoked, ["device c 10:229 rwm"]);
}

#[test]
fn narrow_stops_where_the_device_cgroup_cannot_be_narrowed_and_complain_only_reports() {
    let node = Node_::new();
    let config = node.connect(Mode::Enforce, &["fuse-support", "network"], "narrow");
    node.admit(&config, "fuse", "device-fuse");
    node.connect(Mode::Enforce, &["network"], "narrow");
    let v2 = FakeNode {
        cgroup_v2: true,
        ..FakeNode::on(&node)
    };
    let mut judge = node.judge();
    let found = survey(&[node.state()], &mut judge, &v2);
    let done = reconcile(&found.held[0], None, &mut judge, &v2);
    assert_eq!(done.action, Action::Stopped, "{done:?}");
    assert!(done.detail.contains("cgroup v2"), "{}", done.detail);

    // A process holding the device open keeps it whatever the cgroup says: stopped instead.
    let node = Node_::new();
    let config = node.connect(Mode::Enforce, &["fuse-support", "network"], "narrow");
    node.admit(&config, "fuse", "device-fuse");
    node.connect(Mode::Enforce, &["network"], "narrow");
    let holding = FakeNode {
        holding_open: true,
        ..FakeNode::on(&node)
    };
    let mut judge = node.judge();
    let found = survey(&[node.state()], &mut judge, &holding);
    let done = reconcile(&found.held[0], None, &mut judge, &holding);
    assert_eq!(done.action, Action::Stopped, "{done:?}");
    assert!(
        done.detail.contains("holds c 10:229 open"),
        "{}",
        done.detail
    );

    // The command line's choice wins over the configuration's.
    let node = Node_::new();
    let config = node.connect(Mode::Enforce, &["fuse-support", "network"], "stop");
    node.admit(&config, "fuse", "device-fuse");
    node.connect(Mode::Enforce, &["network"], "stop");
    let fake = FakeNode::on(&node);
    let mut judge = node.judge();
    let found = survey(&[node.state()], &mut judge, &fake);
    let done = reconcile(&found.held[0], Some(OnRevoke::Report), &mut judge, &fake);
    assert_eq!(done.action, Action::Reported);

    // Complain mode: admitted as it came; its own findings are not a revocation; a revocation is only
    // ever reported.
    let node = Node_::new();
    let config = node.connect(Mode::Complain, &["network"], "stop");
    node.admit(&config, "fuse", "device-fuse");
    let fake = FakeNode::on(&node);
    let found = survey(&[node.state()], &mut node.judge(), &fake);
    assert!(!found.held[0].drifted(), "{:#?}", found.held[0].now);
    let config = node.connect(Mode::Complain, &["fuse-support", "network"], "stop");
    node.admit(&config, "fuse2", "device-fuse");
    node.connect(Mode::Complain, &["network"], "stop");
    let mut judge = node.judge();
    let found = survey(&[node.state()], &mut judge, &fake);
    let held: Vec<_> = found.held.iter().filter(|h| h.drifted()).collect();
    assert_eq!(held.len(), 1);
    assert_eq!(held[0].admission.id, "fuse2");
    let done = reconcile(held[0], None, &mut judge, &fake);
    assert_eq!(done.action, Action::Reported);
    assert!(fake.stopped.borrow().is_empty());
}

#[test]
fn containers_that_cannot_be_judged_now_are_reported_never_stopped() {
    let node = Node_::new();
    let config = node.connect(Mode::Enforce, &["fuse-support", "network"], "stop");
    node.admit(&config, "fuse", "device-fuse");
    // The connections now cannot be had: snapd's socket is gone.
    std::fs::write(
        &config,
        format!(
            "source = \"snapd\"\nsnapd_socket = {:?}\non_revoke = \"stop\"\n[audit]\npath = {:?}\n\
             [runtime]\nroot = {:?}\n",
            node.dir.path().join("absent.socket"),
            node.audit(),
            node.dir.path().join("runc")
        ),
    )
    .unwrap();
    let fake = FakeNode::on(&node);
    let mut judge = node.judge();
    let found = survey(&[node.state()], &mut judge, &fake);
    assert!(found.held[0].drifted());
    let error = found.held[0].now.as_ref().unwrap_err();
    assert!(error.contains("cannot connect"), "{error}");
    let done = reconcile(&found.held[0], None, &mut judge, &fake);
    assert_eq!(done.action, Action::Failed);
    assert!(fake.stopped.borrow().is_empty());
}

/// From a `disconnect-plug-<plug>` hook the source still reports the plug: `--disconnecting` judges as if
/// it were gone already.
#[test]
fn a_plug_being_disconnected_counts_as_gone() {
    let node = Node_::new();
    let config = node.connect(Mode::Enforce, &["fuse-support", "network"], "report");
    node.admit(&config, "fuse", "device-fuse");
    let fake = FakeNode::on(&node);
    let found = survey(&[node.state()], &mut node.judge(), &fake);
    assert!(!found.held[0].drifted());
    let mut judge = node.judge().disconnecting(vec!["fuse-support".into()]);
    let found = survey(&[node.state()], &mut judge, &fake);
    assert!(found.held[0].drifted());
    let judged = found.held[0].now.as_ref().unwrap();
    assert!(judged
        .permissions
        .plug_source
        .contains("being disconnected: fuse-support"));
}

/// A record is believed only as far as its bundle: another container's id, another runtime, or a
/// runtime that runs the id from another bundle make it unreadable, and nothing is run or stopped for it.
#[test]
fn a_record_that_does_not_match_its_bundle_is_not_believed() {
    let node = Node_::new();
    let config = node.connect(Mode::Enforce, &["fuse-support", "network"], "stop");
    let bundle = node.admit(&config, "fuse", "device-fuse");
    node.connect(Mode::Enforce, &["network"], "stop");
    let record = Admission::path_in(&bundle);
    let original = std::fs::read_to_string(&record).unwrap();
    let edit = |f: &dyn Fn(&mut serde_json::Value)| {
        let mut value: serde_json::Value = serde_json::from_str(&original).unwrap();
        f(&mut value);
        std::fs::write(&record, value.to_string()).unwrap();
    };
    type Change<'a> = &'a dyn Fn(&mut serde_json::Value);
    let cases: [(&str, Change, &str); 4] = [
        (
            "another id",
            &|v| v["id"] = "victim".into(),
            "names container \"victim\"",
        ),
        (
            "a flag as id",
            &|v| v["id"] = "--all".into(),
            "names container \"--all\"",
        ),
        (
            "another namespace",
            &|v| v["namespace"] = "default".into(),
            "names namespace",
        ),
        (
            "another runtime",
            &|v| v["runtime"]["binary"] = "/tmp/evil".into(),
            "which its configuration does not",
        ),
    ];
    for (what, change, expected) in cases {
        edit(change);
        let fake = FakeNode::on(&node);
        let found = survey(&[node.state()], &mut node.judge(), &fake);
        assert!(found.held.is_empty(), "{what}");
        assert_eq!(found.unreadable.len(), 1, "{what}");
        assert!(
            found.unreadable[0].contains(expected),
            "{what}: {}",
            found.unreadable[0]
        );
        assert!(
            fake.asked.borrow().is_empty(),
            "{what}: the runtime was asked"
        );
    }
    std::fs::write(&record, &original).unwrap();
    let elsewhere = FakeNode {
        elsewhere: vec!["fuse".into()],
        ..FakeNode::on(&node)
    };
    let found = survey(&[node.state()], &mut node.judge(), &elsewhere);
    assert!(found.held.is_empty());
    assert!(
        found.unreadable[0].contains("from bundle /elsewhere/fuse"),
        "{:?}",
        found.unreadable
    );
}

/// What changed on the host, not in the connections, is no revocation: a granted host directory removed
/// since the container started does not make it drift.
#[test]
fn a_host_change_is_not_a_revocation() {
    let node = Node_::new();
    let data = node.dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let grant = format!("system-files:read={}", data.display());
    let config = node.connect(Mode::Enforce, &["network", &grant], "stop");
    let mut spec: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(format!("{FIXTURES}/default.json")).unwrap())
            .unwrap();
    spec["mounts"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({
            "destination": "/data", "type": "bind", "source": data, "options": ["rbind", "ro"]
        }));
    node.admit_spec(&config, "data", &spec);
    std::fs::remove_dir(&data).unwrap();
    let fake = FakeNode::on(&node);
    let found = survey(&[node.state()], &mut node.judge(), &fake);
    assert!(!found.held[0].drifted(), "{:#?}", found.held[0].now);
    // The grant disconnected: that is one.
    std::fs::create_dir(&data).unwrap();
    node.connect(Mode::Enforce, &["network"], "stop");
    let found = survey(&[node.state()], &mut node.judge(), &fake);
    assert!(found.held[0].drifted(), "{:#?}", found.held[0].now);
    let judged = found.held[0].now.as_ref().unwrap();
    assert_eq!(judged.revoked_plugs, [grant]);
}
