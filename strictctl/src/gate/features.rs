//! The runtime's features that change a decision: whether it applies seccomp filter flags (runc ≥ 1.2,
//! crun), so that narrowed filters can ask the kernel to log what they deny; whether it has recursive
//! read-only mounts (`rro`); and its version, for its known breakouts.

use std::path::Path;
use std::process::{Command, Stdio};

use strict_protocol::AdmittedRuntime;

/// What `<runtime> features` says that the gate uses; empty when it cannot say.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RuntimeFeatures {
    /// The seccomp filter flags it applies.
    pub seccomp_flags: Vec<String>,
    /// The mount options it knows.
    pub mount_options: Vec<String>,
    /// Its version (runc's `org.opencontainers.runc.version` annotation).
    pub version: Option<String>,
}

/// The runtime's features (`<runtime> features`). The gate process needs this for every container;
/// asking runc costs a fork and exec (~6 ms), so the answer is kept next to the runtime's state, keyed by
/// the binary's identity, for the next one.
pub fn runtime_features(runtime: &AdmittedRuntime) -> RuntimeFeatures {
    let identity = binary_identity(&runtime.binary);
    let cache = runtime
        .root
        .parent()
        .map(|dir| dir.join(".strict-runtime-features.json"));
    if let (Some(identity), Some(cache)) = (&identity, &cache) {
        if let Ok(bytes) = std::fs::read(cache) {
            if let Ok((seen, features)) =
                serde_json::from_slice::<(String, RuntimeFeatures)>(&bytes)
            {
                if &seen == identity {
                    return features;
                }
            }
        }
    }
    let features = probe(&runtime.binary);
    if let (Some(identity), Some(cache)) = (identity, cache) {
        // Best effort: written whole (rename), so a concurrent reader never sees half of it.
        let json = serde_json::to_vec(&(identity, &features)).expect("plain data serialises");
        if let Some(dir) = cache.parent() {
            if std::fs::create_dir_all(dir).is_ok() {
                let _ = tempfile::NamedTempFile::new_in(dir).and_then(|file| {
                    std::fs::write(file.path(), &json)?;
                    file.persist(&cache).map(|_| ()).map_err(|e| e.error)
                });
            }
        }
    }
    features
}

/// Path, size and modification time of the runtime binary: a new runc is probed again.
fn binary_identity(binary: &Path) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let path = if binary.components().count() > 1 {
        binary.to_owned()
    } else {
        std::env::var_os("PATH")
            .map(|paths| {
                std::env::split_paths(&paths)
                    .map(|dir| dir.join(binary))
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default()
            .into_iter()
            .find(|candidate| candidate.is_file())?
    };
    let meta = std::fs::metadata(&path).ok()?;
    Some(format!(
        "{} {} {}.{}",
        path.display(),
        meta.size(),
        meta.mtime(),
        meta.mtime_nsec()
    ))
}

fn probe(binary: &Path) -> RuntimeFeatures {
    let output = Command::new(binary)
        .arg("features")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output();
    let features = match output {
        Ok(output) if output.status.success() => {
            serde_json::from_slice::<serde_json::Value>(&output.stdout).ok()
        }
        Ok(output) => {
            tracing::warn!(status = %output.status, "the runtime does not describe its features");
            None
        }
        Err(error) => {
            tracing::warn!(%error, "the runtime does not describe its features");
            None
        }
    };
    let Some(features) = features else {
        return RuntimeFeatures::default();
    };
    let strings = |value: &serde_json::Value| -> Vec<String> {
        value
            .as_array()
            .map(|list| {
                list.iter()
                    .filter_map(|f| f.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    };
    RuntimeFeatures {
        seccomp_flags: strings(&features["linux"]["seccomp"]["supportedFlags"]),
        mount_options: strings(&features["mountOptions"]),
        version: features["annotations"]["org.opencontainers.runc.version"]
            .as_str()
            .map(String::from),
    }
}

/// What the runtime can do, as the policy takes it into account: seccomp filter flags (narrowed filters
/// then log what they deny), recursive read-only mounts, the breakouts its version still has.
pub fn apply(
    permissions: &mut strict_policy::Permissions,
    binary: &std::path::Path,
    features: &RuntimeFeatures,
) {
    permissions.seccomp_log_flag = features
        .seccomp_flags
        .iter()
        .any(|f| f == "SECCOMP_FILTER_FLAG_LOG");
    permissions.recursive_read_only = features.mount_options.iter().any(|o| o == "rro");
    permissions.unfixed_breakouts = strict_policy::runtime_advisories::unfixed(
        &binary.to_string_lossy(),
        features.version.as_deref(),
    );
}
