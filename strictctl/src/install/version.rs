//! containerd's version: `--containerd-version`, else what `containerd --version` prints.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use super::options::Options;

/// Why containerd's version is not known.
#[derive(Debug, thiserror::Error)]
pub enum VersionError {
    #[error("--containerd-version {text:?}: expected MAJOR.MINOR, e.g. 2.1")]
    BadFlag { text: String },
    #[error(
        "cannot run `{} --version` ({source}): pass --containerd PATH or --containerd-version MAJOR.MINOR",
        .binary.display()
    )]
    CannotRun {
        binary: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "`{} --version` printed no version (stdout: {stdout:?}; stderr: {stderr:?}): pass \
         --containerd-version MAJOR.MINOR",
        .binary.display()
    )]
    NoVersion {
        binary: PathBuf,
        stdout: String,
        stderr: String,
    },
}

/// containerd's `major.minor`, from `containerd --version` or `--containerd-version`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ContainerdVersion {
    pub major: u32,
    pub minor: u32,
}

impl ContainerdVersion {
    /// The first `[v]MAJOR.MINOR[.PATCH...]` word: `2.1`, `v2.2.0`, or a whole `containerd --version` line
    /// (`containerd github.com/containerd/containerd/v2 2.1.9+unknown`,
    /// `containerd containerd.io 1.7.27 05044ec...`).
    pub fn parse(text: &str) -> Option<ContainerdVersion> {
        text.split_whitespace().find_map(|word| {
            let word = word.strip_prefix('v').unwrap_or(word);
            let mut parts = word.split('.');
            let major = parts.next()?;
            let minor = parts.next()?;
            let minor_digits =
                minor.len() - minor.trim_start_matches(|c: char| c.is_ascii_digit()).len();
            let minor = &minor[..minor_digits];
            if major.is_empty() || minor.is_empty() || !major.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            Some(ContainerdVersion {
                major: major.parse().ok()?,
                minor: minor.parse().ok()?,
            })
        })
    }
}

impl std::fmt::Display for ContainerdVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// containerd's version: the flag, else `containerd --version`; and where it came from, in words.
pub fn containerd_version(opts: &Options) -> Result<(ContainerdVersion, String), VersionError> {
    if let Some(text) = &opts.containerd_version {
        let version = ContainerdVersion::parse(text)
            .ok_or_else(|| VersionError::BadFlag { text: text.clone() })?;
        return Ok((
            version,
            format!("containerd {version} (--containerd-version)"),
        ));
    }
    let output = Command::new(&opts.containerd)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .map_err(|source| VersionError::CannotRun {
            binary: opts.containerd.clone(),
            source,
        })?;
    let text = String::from_utf8_lossy(&output.stdout);
    let version = ContainerdVersion::parse(&text)
        .filter(|_| output.status.success())
        .ok_or_else(|| VersionError::NoVersion {
            binary: opts.containerd.clone(),
            stdout: text.trim().to_string(),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        })?;
    Ok((
        version,
        format!(
            "containerd {version} (`{} --version`)",
            opts.containerd.display()
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_from_containerd_and_flags() {
        let v = |major, minor| Some(ContainerdVersion { major, minor });
        assert_eq!(
            ContainerdVersion::parse(
                "containerd github.com/containerd/containerd/v2 2.1.9+unknown \n"
            ),
            v(2, 1)
        );
        assert_eq!(
            ContainerdVersion::parse(
                "containerd containerd.io 1.7.27 05044ec0a9a75232cad458027ca83437aae3f4da"
            ),
            v(1, 7)
        );
        assert_eq!(
            ContainerdVersion::parse(
                "containerd github.com/containerd/containerd/v2 v2.2.0 1c4457e"
            ),
            v(2, 2)
        );
        assert_eq!(ContainerdVersion::parse("2.1"), v(2, 1));
        assert_eq!(ContainerdVersion::parse("v2.10"), v(2, 10));
        assert_eq!(ContainerdVersion::parse("two"), None);
        assert_eq!(ContainerdVersion::parse("2"), None);
        assert_eq!(ContainerdVersion::parse("2.x"), None);
        assert!(v(2, 2) > v(2, 1) && v(2, 10) > v(2, 2));
    }
}
