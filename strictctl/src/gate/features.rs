//! The runtime's features that change a decision: whether it applies seccomp filter flags (runc ≥ 1.2,
//! crun), so that narrowed filters can ask the kernel to log what they deny.

use std::path::Path;
use std::process::{Command, Stdio};

use strict_protocol::AdmittedRuntime;

/// The seccomp filter flags the runtime applies (`<runtime> features`); none when it cannot say. The
/// gate process needs this for every container; asking runc costs a fork and exec (~6 ms), so the answer
/// is kept next to the runtime's state, keyed by the binary's identity, for the next one.
pub fn seccomp_flags(runtime: &AdmittedRuntime) -> Vec<String> {
    let identity = binary_identity(&runtime.binary);
    let cache = runtime
        .root
        .parent()
        .map(|dir| dir.join(".strict-runtime-features.json"));
    if let (Some(identity), Some(cache)) = (&identity, &cache) {
        if let Ok(bytes) = std::fs::read(cache) {
            if let Ok((seen, flags)) = serde_json::from_slice::<(String, Vec<String>)>(&bytes) {
                if &seen == identity {
                    return flags;
                }
            }
        }
    }
    let flags = probe_seccomp_flags(&runtime.binary);
    if let (Some(identity), Some(cache)) = (identity, cache) {
        // Best effort: written whole (rename), so a concurrent reader never sees half of it.
        let json = serde_json::to_vec(&(identity, &flags)).expect("plain data serialises");
        if let Some(dir) = cache.parent() {
            if std::fs::create_dir_all(dir).is_ok() {
                let _ = tempfile::NamedTempFile::new_in(dir).and_then(|file| {
                    std::fs::write(file.path(), &json)?;
                    file.persist(&cache).map(|_| ()).map_err(|e| e.error)
                });
            }
        }
    }
    flags
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

fn probe_seccomp_flags(binary: &Path) -> Vec<String> {
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
    features
        .and_then(|features| {
            let flags = features["linux"]["seccomp"]["supportedFlags"]
                .as_array()?
                .clone();
            Some(
                flags
                    .iter()
                    .filter_map(|f| f.as_str().map(String::from))
                    .collect(),
            )
        })
        .unwrap_or_default()
}
