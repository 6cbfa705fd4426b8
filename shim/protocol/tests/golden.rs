//! The gate's JSON, pinned: one request and one answer of each kind, byte for byte. A shim and a
//! `strictctl` of one release must always agree, and one of another release must be refused by the
//! protocol version rather than misread. If a test here fails, the wire changed: bump `PROTOCOL`.

use serde::de::DeserializeOwned;
use serde::Serialize;
use strict_protocol::gate::{CreateAnswer, ExecAnswer, UpdateAnswer};
use strict_protocol::{
    Admitted, AdmittedRuntime, Answer, Envelope, ExecBaseline, NamespaceKind, PodNamespaces,
    PodRole, Request, RootfsMount,
};

/// `value` serialises to exactly `json`, and `json` reads back as `value`.
fn pinned<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(value: T, json: &str) {
    assert_eq!(serde_json::to_string(&value).unwrap(), json);
    assert_eq!(serde_json::from_str::<T>(json).unwrap(), value);
}

#[test]
fn the_protocol_version_is_three() {
    // 3: the Create answer's exec_baseline.
    assert_eq!(strict_protocol::PROTOCOL, 3);
}

#[test]
fn create_request() {
    pinned(
        Envelope::new(Request::Create {
            id: "c1".into(),
            bundle: "/run/containerd/io.containerd.runtime.v2.task/k8s.io/c1".into(),
            pods: vec![PodNamespaces {
                sandbox_id: "s1".into(),
                pod_uid: Some("0a1b".into()),
                ids: vec![
                    (NamespaceKind::Network, (4, 4026532000)),
                    (NamespaceKind::Mount, (4, 4026531841)),
                ],
            }],
            rootfs: vec![RootfsMount {
                typ: "overlay".into(),
                source: "overlay".into(),
                target: String::new(),
                options: vec!["index=off".into(), "lowerdir=/l1:/l2".into()],
            }],
        }),
        r#"{"protocol":3,"op":"create","id":"c1","bundle":"/run/containerd/io.containerd.runtime.v2.task/k8s.io/c1","pods":[{"sandbox_id":"s1","pod_uid":"0a1b","ids":[["network",[4,4026532000]],["mount",[4,4026531841]]]}],"rootfs":[{"type":"overlay","source":"overlay","options":["index=off","lowerdir=/l1:/l2"]}]}"#,
    );
}

#[test]
fn exec_request() {
    pinned(
        Envelope::new(Request::Exec {
            id: "c1".into(),
            exec_id: "e1".into(),
            bundle: "/run/b".into(),
            process: r#"{"args":["/bin/true"],"cwd":"/"}"#.into(),
        }),
        r#"{"protocol":3,"op":"exec","id":"c1","exec_id":"e1","bundle":"/run/b","process":"{\"args\":[\"/bin/true\"],\"cwd\":\"/\"}"}"#,
    );
}

#[test]
fn update_request() {
    pinned(
        Envelope::new(Request::Update {
            id: "c1".into(),
            bundle: "/run/b".into(),
            resources: r#"{"memory":{"limit":67108864}}"#.into(),
        }),
        r#"{"protocol":3,"op":"update","id":"c1","bundle":"/run/b","resources":"{\"memory\":{\"limit\":67108864}}"}"#,
    );
}

#[test]
fn create_answers() {
    let runtime = AdmittedRuntime {
        binary: "/usr/sbin/runc".into(),
        root: "/run/containerd/runc/k8s.io".into(),
        systemd_cgroup: true,
    };
    pinned(
        CreateAnswer::Ok(Admitted {
            role: PodRole::Sandbox,
            own_pid_namespace: true,
            runtime: runtime.clone(),
            pod_uid: Some("0a1b".into()),
            exec_baseline: Some(ExecBaseline {
                free_fields: vec!["args".into(), "env".into()],
                process: r#"{"cwd":"/","user":{"gid":0,"uid":0}}"#.into(),
            }),
        }),
        r#"{"ok":{"role":"sandbox","own_pid_namespace":true,"runtime":{"binary":"/usr/sbin/runc","root":"/run/containerd/runc/k8s.io","systemd_cgroup":true},"pod_uid":"0a1b","exec_baseline":{"free_fields":["args","env"],"process":"{\"cwd\":\"/\",\"user\":{\"gid\":0,\"uid\":0}}"}}}"#,
    );
    pinned(
        CreateAnswer::Ok(Admitted {
            role: PodRole::Container {
                sandbox_id: "s1".into(),
            },
            own_pid_namespace: false,
            runtime: runtime.clone(),
            pod_uid: None,
            exec_baseline: None,
        }),
        r#"{"ok":{"role":{"container":{"sandbox_id":"s1"}},"own_pid_namespace":false,"runtime":{"binary":"/usr/sbin/runc","root":"/run/containerd/runc/k8s.io","systemd_cgroup":true}}}"#,
    );
    pinned(
        CreateAnswer::Ok(Admitted {
            role: PodRole::None,
            own_pid_namespace: true,
            runtime,
            pod_uid: None,
            exec_baseline: None,
        }),
        r#"{"ok":{"role":"none","own_pid_namespace":true,"runtime":{"binary":"/usr/sbin/runc","root":"/run/containerd/runc/k8s.io","systemd_cgroup":true}}}"#,
    );
    pinned(
        CreateAnswer::Refused("strict: refused: mounts[7] host path /etc".into()),
        r#"{"refused":"strict: refused: mounts[7] host path /etc"}"#,
    );
}

#[test]
fn exec_answers() {
    pinned(ExecAnswer::Ok(()), r#"{"ok":null}"#);
    pinned(
        ExecAnswer::InvalidArgument("the exec process spec is malformed".into()),
        r#"{"invalid_argument":"the exec process spec is malformed"}"#,
    );
}

#[test]
fn update_answers() {
    pinned(
        UpdateAnswer::Ok(r#"{"memory":{"limit":67108864}}"#.into()),
        r#"{"ok":"{\"memory\":{\"limit\":67108864}}"}"#,
    );
    pinned(
        UpdateAnswer::Undecided("the host's connections cannot be read".into()),
        r#"{"undecided":"the host's connections cannot be read"}"#,
    );
}

#[test]
fn every_answer_kind_reads_as_any_answer_type() {
    // A refusal is written without knowing which request it answers (a malformed request, another
    // protocol version): it must read back as the answer to any of them.
    let json = r#"{"undecided":"the shim speaks gate protocol 2"}"#;
    assert!(matches!(
        serde_json::from_str::<CreateAnswer>(json).unwrap(),
        Answer::Undecided(_)
    ));
    assert!(matches!(
        serde_json::from_str::<UpdateAnswer>(json).unwrap(),
        Answer::Undecided(_)
    ));
}
