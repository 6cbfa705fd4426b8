//! What the gate admitted, kept in the container's bundle (`strict-admission.json`) for as long as the
//! container exists: the spec as it was judged (narrowed, its bind sources the host paths, before they
//! were pinned) and what the judgement depended on besides the connections (its pod, its own files, its
//! root filesystem). `strictctl status` judges it again under the connections now. The bundle is
//! containerd's: it goes when the container is deleted, so no record outlives its container.

use std::path::{Path, PathBuf};

use oci_spec::runtime::Spec;
use serde::{Deserialize, Serialize};
use strict_policy::{Mode, Plug, PodOwner};
use strict_protocol::{AdmittedRuntime, PodNamespaces};

/// The file in a bundle.
pub const ADMISSION_FILE: &str = "strict-admission.json";

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Admission {
    pub id: String,
    /// containerd's namespace.
    pub namespace: String,
    pub mode: Mode,
    /// The configuration file the gate read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_file: Option<PathBuf>,
    /// Or the runtime options' TOML it read (CRI's `config_body`). Neither: the built-in defaults, which
    /// `status` replaces with its own configuration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_body: Option<String>,
    pub runtime: AdmittedRuntime,
    pub admitted_at: String,
    /// Where the connections came from, and the policy's digest, when it was admitted.
    pub permissions_source: String,
    pub policy_digest: String,
    /// The connected plugs it was judged with: what it holds is judged again under these and under the
    /// connections now, and only what the difference takes away counts.
    pub plugs: Vec<Plug>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<PodNamespaces>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<Owner>,
    #[serde(default)]
    pub rootfs_layers: Vec<PathBuf>,
    /// The spec as admitted (enforce: narrowed; complain: as it came).
    pub spec: Spec,
    /// What `strictctl reconcile` took away since (e.g. `linux.devices[0] c 10:229 /dev/fuse`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub revoked: Vec<String>,
}

/// [`PodOwner`] as kept on disk.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Owner {
    pub sandbox_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_uid: Option<String>,
}

impl From<&PodOwner> for Owner {
    fn from(owner: &PodOwner) -> Owner {
        Owner {
            sandbox_id: owner.sandbox_id.clone(),
            pod_uid: owner.pod_uid.clone(),
        }
    }
}

impl From<&Owner> for PodOwner {
    fn from(owner: &Owner) -> PodOwner {
        PodOwner {
            sandbox_id: owner.sandbox_id.clone(),
            pod_uid: owner.pod_uid.clone(),
        }
    }
}

/// Why a record cannot be read or written.
#[derive(Debug, thiserror::Error)]
pub enum AdmissionError {
    #[error("{}: {source}", .path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("writing {}: {source}", .path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: strict_policy::Error,
    },
    #[error("{}: not an admission record: {source}", .path.display())]
    Malformed {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

impl Admission {
    pub fn path_in(bundle: &Path) -> PathBuf {
        bundle.join(ADMISSION_FILE)
    }

    /// Writes the record into the bundle, atomically (a reader sees the old record or the new one).
    pub fn write(&self, bundle: &Path) -> Result<(), AdmissionError> {
        let path = Admission::path_in(bundle);
        let json = serde_json::to_vec(self).expect("plain data serialises");
        strict_policy::write_atomically(&path, &json)
            .map_err(|source| AdmissionError::Write { path, source })
    }

    pub fn read(bundle: &Path) -> Result<Admission, AdmissionError> {
        let path = Admission::path_in(bundle);
        let bytes = std::fs::read(&path).map_err(|source| AdmissionError::Io {
            path: path.clone(),
            source,
        })?;
        serde_json::from_slice(&bytes).map_err(|source| AdmissionError::Malformed { path, source })
    }
}
