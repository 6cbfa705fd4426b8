//! The files under deploy/: every YAML document parses and is what it should be (kinds, API versions,
//! handlers, the node label the installer sets), the installer's script is valid shell, the containerd
//! drop-ins are what `strictctl install` writes, and MicroK8s' block loads into containerd.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Deserialize;
use serde_json::{json, Value};
use strictctl::install::{
    drop_in, drop_in_for_version, HANDLERS, NODE_LABEL, NODE_LABEL_VALUE, RUNTIME_TYPE,
};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn deploy() -> PathBuf {
    repo().join("deploy")
}

fn files(dir: &Path, extension: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files(&path, extension));
        } else if path.extension().is_some_and(|e| e == extension) {
            out.push(path);
        }
    }
    out.sort();
    out
}

/// Every document of a YAML file, as JSON values.
fn documents(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap();
    serde_norway::Deserializer::from_str(&text)
        .map(|doc| Value::deserialize(doc).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
        .filter(|doc| !doc.is_null())
        .collect()
}

fn kind(doc: &Value) -> (&str, &str) {
    (
        doc["apiVersion"].as_str().expect("apiVersion"),
        doc["kind"].as_str().expect("kind"),
    )
}

#[test]
fn every_yaml_document_parses_and_is_a_known_kind() {
    let yaml: Vec<PathBuf> = files(&deploy(), "yaml")
        .into_iter()
        .chain(files(&deploy(), "yml"))
        .collect();
    assert_eq!(
        yaml.len(),
        2,
        "deploy/ has runtimeclass.yaml and installer.yaml: {yaml:?}"
    );
    let known = [
        ("node.k8s.io/v1", "RuntimeClass"),
        ("v1", "Namespace"),
        ("v1", "ServiceAccount"),
        ("rbac.authorization.k8s.io/v1", "ClusterRole"),
        ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"),
        ("apps/v1", "DaemonSet"),
    ];
    for path in yaml {
        let docs = documents(&path);
        assert!(!docs.is_empty(), "{}: no document", path.display());
        for doc in docs {
            assert!(
                known.contains(&kind(&doc)),
                "{}: unexpected {:?}",
                path.display(),
                kind(&doc)
            );
            assert!(
                doc["metadata"]["name"]
                    .as_str()
                    .is_some_and(|n| !n.is_empty()),
                "{}: a {:?} without a name",
                path.display(),
                kind(&doc)
            );
        }
    }
}

#[test]
fn the_runtime_classes_name_the_handlers_and_select_the_installers_label() {
    let docs = documents(&deploy().join("runtimeclass.yaml"));
    assert_eq!(docs.len(), HANDLERS.len());
    for (doc, handler) in docs.iter().zip(HANDLERS) {
        assert_eq!(kind(doc), ("node.k8s.io/v1", "RuntimeClass"));
        assert_eq!(doc["metadata"]["name"], handler.name);
        assert_eq!(doc["handler"], handler.name);
        assert_eq!(
            doc["scheduling"]["nodeSelector"],
            json!({ NODE_LABEL: NODE_LABEL_VALUE })
        );
    }
}

#[test]
fn the_installer_runs_privileged_in_the_hosts_namespaces_and_labels_its_node() {
    let docs = documents(&deploy().join("installer.yaml"));
    let find = |kind_name: &str| {
        docs.iter()
            .find(|d| d["kind"] == kind_name)
            .unwrap_or_else(|| panic!("installer.yaml has no {kind_name}"))
    };
    let namespace = find("Namespace")["metadata"]["name"].as_str().unwrap();
    let account = find("ServiceAccount");
    assert_eq!(account["metadata"]["namespace"], namespace);
    let role = find("ClusterRole");
    assert!(role["rules"].as_array().unwrap().iter().any(|rule| {
        rule["resources"] == json!(["nodes"])
            && rule["verbs"].as_array().unwrap().contains(&json!("patch"))
    }));
    let binding = find("ClusterRoleBinding");
    assert_eq!(binding["roleRef"]["name"], role["metadata"]["name"]);
    assert_eq!(binding["subjects"][0]["name"], account["metadata"]["name"]);
    assert_eq!(binding["subjects"][0]["namespace"], namespace);

    let daemonset = find("DaemonSet");
    assert_eq!(kind(daemonset), ("apps/v1", "DaemonSet"));
    assert_eq!(daemonset["metadata"]["namespace"], namespace);
    let pod = &daemonset["spec"]["template"]["spec"];
    for (key, value) in daemonset["spec"]["selector"]["matchLabels"]
        .as_object()
        .unwrap()
    {
        assert_eq!(
            &daemonset["spec"]["template"]["metadata"]["labels"][key],
            value
        );
    }
    assert_eq!(pod["serviceAccountName"], account["metadata"]["name"]);
    assert_eq!(
        pod["hostPID"], true,
        "nsenter --target 1 needs the host's PIDs"
    );
    let host_root = pod["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["hostPath"]["path"] == "/")
        .expect("the host's root is a volume");
    let container = &pod["containers"][0];
    assert_eq!(container["securityContext"]["privileged"], true);
    assert!(container["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m["name"] == host_root["name"] && m["mountPath"] == "/host"));

    let env = |name: &str| {
        container["env"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == name)
            .unwrap_or_else(|| panic!("no {name} in the installer's environment"))
            .clone()
    };
    assert_eq!(
        env("NODE_NAME")["valueFrom"]["fieldRef"]["fieldPath"],
        "spec.nodeName"
    );
    assert_eq!(env("STRICT_NODE_LABEL")["value"], NODE_LABEL);
    assert_eq!(env("STRICT_NODE_LABEL_VALUE")["value"], NODE_LABEL_VALUE);
    assert_eq!(env("STRICT_ACTION")["value"], "install");

    // The script: valid shell, installing in the host's mount namespace, then labelling.
    assert_eq!(container["command"], json!(["/bin/sh", "-c"]));
    let script = container["args"][0].as_str().unwrap();
    let check = Command::new("sh")
        .args(["-n", "-c", script])
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "the installer's script: {}",
        String::from_utf8_lossy(&check.stderr)
    );
    let install = script
        .find("nsenter --target 1 --mount -- \"$stage/strictctl\" install --root /")
        .expect("the script installs in the host's mount namespace");
    let label = script
        .find("label \"\\\"$STRICT_NODE_LABEL_VALUE\\\"\"")
        .expect("the script labels the node");
    assert!(install < label, "the node is labelled only once installed");
    assert!(script.contains("strictctl uninstall --root /"));
}

/// A TOML file without its leading comment lines.
fn body(text: &str) -> &str {
    let start = text
        .lines()
        .take_while(|line| line.starts_with('#'))
        .map(|line| line.len() + 1)
        .sum::<usize>();
    &text[start..]
}

#[test]
fn the_containerd_drop_ins_are_what_install_writes() {
    let expected = drop_in(
        Path::new("/"),
        Path::new("/usr/local/bin/containerd-shim-strict-v2"),
    );
    for file in [
        "containerd/conf.d/strict-runtimes.toml",
        "containerd/strict-runtimes.toml",
    ] {
        let text = std::fs::read_to_string(deploy().join(file)).unwrap();
        assert_eq!(body(&text), body(&expected), "deploy/{file}");
    }
}

#[test]
fn the_microk8s_block_loads_into_containerd() {
    let block =
        std::fs::read_to_string(deploy().join("microk8s/containerd-template-strict.toml")).unwrap();
    // The same handlers as install writes, in config version 2, with MicroK8s' paths.
    let shim = "/var/snap/microk8s/common/strict/bin/containerd-shim-strict-v2";
    let v2 = drop_in_for_version(Path::new("/"), Path::new(shim), 2)
        .replace("\"/etc/containerd/", "\"${SNAP_DATA}/args/");
    assert_eq!(
        body(&block).trim_start(),
        body(&v2)
            .trim_start()
            .trim_start_matches("version = 2\n")
            .trim_start()
    );

    // Appended to a template like MicroK8s' and rendered as MicroK8s renders it, containerd reads it.
    let containerd = repo().join(".testbed/containerd/usr/bin/containerd");
    assert!(
        containerd.is_file(),
        "{} is missing: run integration/testbed/install.sh",
        containerd.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let snap_data = dir.path().join("var/snap/microk8s/current");
    let template = format!(
        "# Use config version 2 to enable new configuration fields.\nversion = 2\noom_score = 0\n\
         [plugins.\"io.containerd.grpc.v1.cri\"]\n  sandbox_image = \"registry.k8s.io/pause:3.10\"\n\
         [plugins.\"io.containerd.grpc.v1.cri\".containerd]\n  default_runtime_name = \"${{RUNTIME}}\"\n\
         [plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.runc]\n  runtime_type = \"io.containerd.runc.v2\"\n\
         {block}"
    );
    let rendered = template
        .replace("${SNAP_DATA}", snap_data.to_str().unwrap())
        .replace("${RUNTIME}", "runc");
    let config = dir.path().join("containerd.toml");
    std::fs::write(&config, rendered).unwrap();
    let output = Command::new(&containerd)
        .arg("--config")
        .arg(&config)
        .args(["config", "dump"])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let dump: toml::Table = String::from_utf8(output.stdout).unwrap().parse().unwrap();
    let runtimes = &dump["plugins"]["io.containerd.cri.v1.runtime"]["containerd"]["runtimes"];
    for handler in HANDLERS {
        let table = &runtimes[handler.name];
        assert_eq!(table["runtime_type"].as_str(), Some(RUNTIME_TYPE));
        assert_eq!(table["runtime_path"].as_str(), Some(shim));
        assert_eq!(
            table["options"]["ConfigPath"].as_str().map(PathBuf::from),
            Some(snap_data.join("args").join(handler.policy_file))
        );
    }
}

#[test]
fn the_kubernetes_doc_names_the_label_and_the_files() {
    let doc = std::fs::read_to_string(repo().join("docs/kubernetes.md")).unwrap();
    assert!(doc.contains(&format!("{NODE_LABEL}={NODE_LABEL_VALUE}")));
    for file in [
        "deploy/installer.yaml",
        "deploy/runtimeclass.yaml",
        "deploy/Dockerfile",
        "deploy/microk8s/containerd-template-strict.toml",
    ] {
        assert!(
            doc.contains(file),
            "docs/kubernetes.md does not mention {file}"
        );
        assert!(repo().join(file).is_file(), "{file}");
    }
    for heading in ["## Setup", "## MicroK8s", "## Uninstall"] {
        assert!(doc.contains(&format!("\n{heading}\n")), "no {heading}");
    }
}
