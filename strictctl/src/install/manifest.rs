//! The record of an installation, `ROOT/var/lib/strict/install.json`: every file install wrote with its
//! SHA-256 digest, the `imports` entry it added, the directories it created. Uninstall removes exactly
//! that.

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::containerd_config::Layout;

/// Why the manifest cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error(
        "{}: not a manifest strictctl install wrote ({source}); move it away to start afresh",
        .path.display()
    )]
    Malformed {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("{}: {source}", .path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The record of an installation, `ROOT/var/lib/strict/install.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// "written by strictctl install: uninstall reads this file".
    pub note: String,
    pub layout: Layout,
    pub containerd_config: PathBuf,
    /// Every file install wrote, as it wrote it.
    pub files: Vec<Installed>,
    /// The entry install added to the main configuration's `imports`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub import: Option<ImportEntry>,
    /// Directories install created, parents first.
    pub dirs: Vec<PathBuf>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Installed {
    pub path: PathBuf,
    pub role: Role,
    pub sha256: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    Binary,
    Policy,
    DropIn,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportEntry {
    pub entry: String,
    /// The main configuration had no `imports` key before.
    pub created_key: bool,
    /// The main configuration as it was before install.
    pub backup: PathBuf,
    /// The main configuration as install left it: when it still is, uninstall puts the backup back.
    pub sha256_after: String,
}

impl Manifest {
    /// An empty manifest for an installation with `layout` beside `containerd_config`.
    pub fn new(layout: Layout, containerd_config: PathBuf) -> Manifest {
        Manifest {
            note: "written by strictctl install; strictctl uninstall removes what it lists".into(),
            layout,
            containerd_config,
            files: Vec::new(),
            import: None,
            dirs: Vec::new(),
        }
    }

    /// The manifest at `path`; None when there is none.
    pub fn read(path: &Path) -> Result<Option<Manifest>, ManifestError> {
        match fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|source| {
                ManifestError::Malformed {
                    path: path.to_owned(),
                    source,
                }
            }),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
                ) =>
            {
                Ok(None)
            }
            Err(source) => Err(ManifestError::Read {
                path: path.to_owned(),
                source,
            }),
        }
    }

    /// Records that `path` holds `bytes`, written by install.
    pub fn record(&mut self, path: &Path, role: Role, bytes: &[u8]) {
        let sha256 = sha256(bytes);
        match self.files.iter_mut().find(|f| f.path == path) {
            Some(file) => file.sha256 = sha256,
            None => self.files.push(Installed {
                path: path.to_owned(),
                role,
                sha256,
            }),
        }
    }

    pub fn bytes(&self) -> Vec<u8> {
        let mut bytes = serde_json::to_vec_pretty(self).expect("a manifest serialises");
        bytes.push(b'\n');
        bytes
    }
}

/// The SHA-256 digest of `bytes`, in lower-case hex.
pub fn sha256(bytes: &[u8]) -> String {
    strict_policy::profile::hex(&Sha256::digest(bytes))
}
