//! Reading and writing `config.json`: parse once, report fields the gate does not know, write atomically.

use std::io::Write;
use std::path::Path;

use oci_spec::runtime::{Process, Spec};

use crate::error::{Error, Result};
use crate::host::HostView;
use crate::permissions::Permissions;
use crate::verdict::{Verdict, Violation};

/// A parsed spec and the JSON paths of fields it carries that the gate does not know.
pub struct Document {
    pub spec: Spec,
    pub unknown_fields: Vec<String>,
}

/// Parses a spec. Fields unknown to the OCI runtime spec (as oci-spec knows it) are collected, not
/// dropped silently: the gate cannot judge them, so [`evaluate_document`] refuses them.
pub fn parse_spec(bytes: &[u8]) -> Result<Document> {
    // serde would also read a struct from a JSON array, which no runtime writes.
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(Error::Spec("expected a JSON object".into()));
    }
    let mut unknown_fields = Vec::new();
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let spec: Spec = serde_ignored::deserialize(&mut deserializer, |path| {
        unknown_fields.push(json_path(&path));
    })
    .map_err(|e| Error::Spec(e.to_string()))?;
    deserializer.end().map_err(|e| Error::Spec(e.to_string()))?;
    Ok(Document {
        spec,
        unknown_fields,
    })
}

/// Parses an exec's process (containerd's JSON) and the JSON paths of fields the gate does not know.
/// runc reads the same bytes with Go's decoder, which matches keys case-insensitively (`"UID"` sets
/// `uid`) and lets a repeated key overwrite: such a field is unknown here (refused), and a repeated one is
/// a parse error, so what is judged is what runc runs.
pub fn parse_process(bytes: &[u8]) -> Result<(Process, Vec<String>)> {
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(Error::Spec("expected a JSON object".into()));
    }
    let mut unknown_fields = Vec::new();
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let process: Process = serde_ignored::deserialize(&mut deserializer, |path| {
        unknown_fields.push(format!("process.{}", json_path(&path)));
    })
    .map_err(|e| Error::Spec(e.to_string()))?;
    deserializer.end().map_err(|e| Error::Spec(e.to_string()))?;
    Ok((process, unknown_fields))
}

/// `mounts[3].foo` rather than serde_ignored's `mounts.3.foo`.
fn json_path(path: &serde_ignored::Path) -> String {
    use serde_ignored::Path as P;
    match path {
        P::Root => String::new(),
        P::Seq { parent, index } => format!("{}[{index}]", json_path(parent)),
        P::Map { parent, key } => {
            let parent = json_path(parent);
            if parent.is_empty() {
                key.clone()
            } else {
                format!("{parent}.{key}")
            }
        }
        P::Some { parent } | P::NewtypeStruct { parent } | P::NewtypeVariant { parent } => {
            json_path(parent)
        }
    }
}

/// Evaluates a parsed document; unknown fields are violations.
pub fn evaluate_document(
    document: &mut Document,
    perms: &Permissions,
    host: &dyn HostView,
) -> Verdict {
    let owner = crate::host::PodOwner::claimed(&document.spec);
    let context = crate::rules::Context {
        owner: owner.as_ref(),
        ..Default::default()
    };
    evaluate_document_in(document, perms, host, &context)
}

/// [`evaluate_document`] with what the gate knows of the container (see [`crate::evaluate_in`]).
pub fn evaluate_document_in(
    document: &mut Document,
    perms: &Permissions,
    host: &dyn HostView,
    context: &crate::rules::Context,
) -> Verdict {
    let mut verdict = crate::rules::evaluate_in(&mut document.spec, perms, host, context);
    let unknown = document.unknown_fields.iter().map(|field| {
        Violation::new(
            "spec.unknown-field",
            field.clone(),
            field.clone(),
            format!("{field} is a field the strict gate does not know"),
        )
        .remedy("the gate cannot judge what it does not know; remove the field or update the shim")
    });
    verdict.violations.splice(0..0, unknown);
    verdict
}

pub fn to_json(spec: &Spec) -> Vec<u8> {
    // A container's spec is 10–30 KiB (most of it the seccomp filter): one allocation, not a dozen
    // doublings.
    let mut out = Vec::with_capacity(32 * 1024);
    serde_json::to_writer(&mut out, spec).expect("a parsed spec always serialises");
    out
}

/// Writes `bytes` to `path` through a temporary file in the same directory and a rename, so a reader sees
/// the old file or the new one, never a part. No fsync: bundles live in containerd's state directory (a
/// tmpfs under /run), and after a crash there is no container to start from them anyway.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let io = |source| Error::Io {
        path: path.to_owned(),
        source,
    };
    let mut temp = tempfile::NamedTempFile::new_in(dir).map_err(io)?;
    temp.write_all(bytes).map_err(io)?;
    let permissions = std::fs::metadata(path)
        .map(|m| m.permissions())
        .unwrap_or_else(|_| std::os::unix::fs::PermissionsExt::from_mode(0o644));
    // On the open file (fchmod): no second walk of the path.
    temp.as_file().set_permissions(permissions).map_err(io)?;
    temp.persist(path).map_err(|e| io(e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_fields_are_reported_with_their_path() {
        let doc = parse_spec(
            br#"{"ociVersion":"1.2.0","root":{"path":"rootfs"},"surprise":1,
                 "mounts":[{"destination":"/x","type":"tmpfs","source":"tmpfs","bogus":true}],
                 "linux":{"futureEscape":{"a":1}}}"#,
        )
        .unwrap();
        assert_eq!(
            doc.unknown_fields,
            ["surprise", "mounts[0].bogus", "linux.futureEscape"]
        );
    }

    #[test]
    fn malformed_input_is_an_error() {
        for bad in [
            &b"{"[..],
            b"[]",
            b"{\"ociVersion\": 3}",
            b"{\"ociVersion\":\"1\"} trailing",
            b"",
        ] {
            assert!(
                parse_spec(bad).is_err(),
                "{:?} parsed",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn atomic_write_replaces_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(&path, b"old").unwrap();
        write_atomically(&path, b"new").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}

#[cfg(test)]
mod process_tests {
    use super::*;

    #[test]
    fn an_exec_process_with_a_key_runc_reads_differently_is_caught() {
        let plain = br#"{"user":{"uid":1000,"gid":1000},"cwd":"/","args":["true"]}"#;
        let (process, unknown) = parse_process(plain).unwrap();
        assert_eq!(process.user().uid(), 1000);
        assert!(unknown.is_empty());
        // Go would set uid from "UID": unknown here, so refused.
        let (_, unknown) =
            parse_process(br#"{"user":{"uid":1000,"gid":1000,"UID":0},"cwd":"/"}"#).unwrap();
        assert_eq!(unknown, ["process.user.UID"]);
        let (_, unknown) = parse_process(
            br#"{"user":{"uid":1000,"gid":1000},"User":{"uid":0,"gid":0},"cwd":"/"}"#,
        )
        .unwrap();
        assert_eq!(unknown, ["process.User"]);
        // A repeated key: Go merges the second into the first; never judged.
        assert!(parse_process(
            br#"{"user":{"uid":1000,"gid":1000},"cwd":"/","user":{"uid":0,"gid":0}}"#
        )
        .is_err());
        assert!(parse_process(br#"{"user":{"uid":1000,"uid":0,"gid":0},"cwd":"/"}"#).is_err());
        assert!(parse_process(b"[]").is_err());
    }
}
