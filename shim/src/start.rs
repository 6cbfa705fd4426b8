//! The `start` action: containerd runs `containerd-shim-strict-v2 start` in the bundle directory; it starts
//! (or reuses) the long-running shim and prints its ttrpc address. Containers of one pod share a shim,
//! grouped by the CRI sandbox id, as containerd-shim-runc-v2 does.

use std::path::Path;

use containerd_shim::util::write_str_to_file;
use containerd_shim::StartOpts;

use strict_protocol::annotations::SANDBOX_ID;
use strict_protocol::ConfigRequest;

use crate::options;

/// The shim group of the bundle in `dir`: its pod's sandbox id, else the container's own id.
pub fn grouping(dir: &Path, id: &str) -> String {
    let Ok(bytes) = std::fs::read(dir.join("config.json")) else {
        return id.to_string();
    };
    let Ok(spec) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
        return id.to_string();
    };
    spec["annotations"][SANDBOX_ID]
        .as_str()
        .filter(|sandbox| !sandbox.is_empty())
        .unwrap_or(id)
        .to_string()
}

pub async fn start(opts: StartOpts) -> containerd_shim::Result<String> {
    let cwd = std::env::current_dir().map_err(|e| containerd_shim::Error::IoError {
        context: "the bundle directory".into(),
        err: e,
    })?;
    let grouping = grouping(&cwd, &opts.id);
    // The runtime options name the configuration; the long-running shim gets them in its environment.
    let mut request = ConfigRequest::default();
    for any in &opts.extensions {
        match options::request_of(any) {
            Ok(found) if found != request => request = found,
            Ok(_) => {}
            Err(error) => return Err(containerd_shim::Error::InvalidArgument(error.to_string())),
        }
    }
    let vars = request.to_env();
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let address = containerd_shim::spawn(opts, &grouping, vars).await?;
    write_str_to_file("address", &address).await?;
    Ok(address)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn containers_of_one_pod_share_the_sandboxs_shim() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(grouping(dir.path(), "c1"), "c1");
        std::fs::write(
            dir.path().join("config.json"),
            r#"{"annotations": {"io.kubernetes.cri.sandbox-id": "pod1", "io.kubernetes.cri.container-type": "container"}}"#,
        )
        .unwrap();
        assert_eq!(grouping(dir.path(), "c1"), "pod1");
        std::fs::write(dir.path().join("config.json"), "not json").unwrap();
        assert_eq!(grouping(dir.path(), "c1"), "c1");
    }
}
