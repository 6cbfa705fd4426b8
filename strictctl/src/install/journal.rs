//! The undo journal: every change install and uninstall make to the node, recorded as it is made and
//! undone, newest first, when a later step fails.

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// A change the journal could not make.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("cannot create {}: {source}", .dir.display())]
    CreateDir {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write {}: {source}", .path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write {}: it is not a regular file", .path.display())]
    NotRegularFile { path: PathBuf },
    #[error("cannot remove {}: {source}", .path.display())]
    Remove {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// A change that could not be undone.
#[derive(Debug)]
pub struct RollbackFailure {
    pub path: PathBuf,
    pub error: std::io::Error,
}

impl std::fmt::Display for RollbackFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.error)
    }
}

/// One change made, and how to undo it.
enum Undo {
    /// Put the file back as it was.
    Restore {
        path: PathBuf,
        bytes: Vec<u8>,
        mode: u32,
        owner: (u32, u32),
    },
    /// Remove the file that was created.
    Remove(PathBuf),
    /// Remove the directory that was created.
    RemoveDir(PathBuf),
    /// Create the directory that was removed.
    RecreateDir(PathBuf),
}

/// The changes made so far, undone in reverse order when a later step fails.
#[derive(Default)]
pub struct Journal {
    undo: Vec<Undo>,
}

impl Journal {
    pub fn is_empty(&self) -> bool {
        self.undo.is_empty()
    }

    /// Creates `dir` and its missing parents, recording the ones created.
    pub fn create_dirs(
        &mut self,
        dir: &Path,
        created: &mut Vec<PathBuf>,
    ) -> Result<(), JournalError> {
        let mut missing = Vec::new();
        let mut at = dir;
        while fs::symlink_metadata(at).is_err() {
            missing.push(at.to_owned());
            match at.parent() {
                Some(parent) => at = parent,
                None => break,
            }
        }
        for dir in missing.into_iter().rev() {
            if let Err(source) = fs::create_dir(&dir) {
                return Err(JournalError::CreateDir { dir, source });
            }
            self.undo.push(Undo::RemoveDir(dir.clone()));
            if !created.contains(&dir) {
                created.push(dir);
            }
        }
        Ok(())
    }

    /// Writes `bytes` to `path` through a temporary file and a rename. A new file gets `mode`; a
    /// replaced one keeps its owner, and its mode unless `mode` is given.
    pub fn write(
        &mut self,
        path: &Path,
        bytes: &[u8],
        mode: Option<u32>,
        created: &mut Vec<PathBuf>,
    ) -> Result<(), JournalError> {
        let fail = |source: std::io::Error| JournalError::Write {
            path: path.to_owned(),
            source,
        };
        let dir = path
            .parent()
            .ok_or_else(|| fail(std::io::Error::other("no parent")))?;
        self.create_dirs(dir, created)?;
        let before = match fs::symlink_metadata(path) {
            Ok(meta) if meta.is_file() => Some((fs::read(path).map_err(fail)?, meta)),
            Ok(_) => {
                return Err(JournalError::NotRegularFile {
                    path: path.to_owned(),
                })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(fail(e)),
        };
        let mut temp = tempfile::NamedTempFile::new_in(dir).map_err(fail)?;
        temp.write_all(bytes).map_err(fail)?;
        let new_mode = mode
            .or(before.as_ref().map(|(_, meta)| meta.mode() & 0o7777))
            .unwrap_or(0o644);
        temp.as_file()
            .set_permissions(fs::Permissions::from_mode(new_mode))
            .map_err(fail)?;
        if let Some((_, meta)) = &before {
            std::os::unix::fs::fchown(temp.as_file(), Some(meta.uid()), Some(meta.gid()))
                .map_err(fail)?;
        }
        temp.as_file().sync_all().map_err(fail)?;
        temp.persist(path).map_err(|e| fail(e.error))?;
        self.undo.push(match before {
            Some((bytes, meta)) => Undo::Restore {
                path: path.to_owned(),
                bytes,
                mode: meta.mode() & 0o7777,
                owner: (meta.uid(), meta.gid()),
            },
            None => Undo::Remove(path.to_owned()),
        });
        Ok(())
    }

    /// Removes the file at `path`, keeping its bytes to put it back.
    pub fn remove(&mut self, path: &Path) -> Result<bool, JournalError> {
        let fail = |source: std::io::Error| JournalError::Remove {
            path: path.to_owned(),
            source,
        };
        let meta = match fs::symlink_metadata(path) {
            Ok(meta) => meta,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(fail(e)),
        };
        let bytes = fs::read(path).map_err(fail)?;
        fs::remove_file(path).map_err(fail)?;
        self.undo.push(Undo::Restore {
            path: path.to_owned(),
            bytes,
            mode: meta.mode() & 0o7777,
            owner: (meta.uid(), meta.gid()),
        });
        Ok(true)
    }

    /// Removes `dir` when it is empty.
    pub fn remove_empty_dir(&mut self, dir: &Path) -> bool {
        let empty = fs::read_dir(dir).is_ok_and(|mut entries| entries.next().is_none());
        if empty && fs::remove_dir(dir).is_ok() {
            self.undo.push(Undo::RecreateDir(dir.to_owned()));
            return true;
        }
        false
    }

    /// Undoes every change, newest first; returns what could not be undone.
    pub fn rollback(self) -> Vec<RollbackFailure> {
        let mut failures = Vec::new();
        for undo in self.undo.into_iter().rev() {
            let result = match &undo {
                Undo::Restore {
                    path,
                    bytes,
                    mode,
                    owner,
                } => restore(path, bytes, *mode, *owner),
                Undo::Remove(path) => fs::remove_file(path),
                Undo::RemoveDir(path) => fs::remove_dir(path),
                Undo::RecreateDir(path) => fs::create_dir(path),
            };
            if let Err(error) = result {
                let path = match undo {
                    Undo::Restore { path, .. }
                    | Undo::Remove(path)
                    | Undo::RemoveDir(path)
                    | Undo::RecreateDir(path) => path,
                };
                failures.push(RollbackFailure { path, error });
            }
        }
        failures
    }
}

fn restore(path: &Path, bytes: &[u8], mode: u32, owner: (u32, u32)) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("/"));
    let mut temp = tempfile::NamedTempFile::new_in(dir)?;
    temp.write_all(bytes)?;
    temp.as_file()
        .set_permissions(fs::Permissions::from_mode(mode))?;
    std::os::unix::fs::fchown(temp.as_file(), Some(owner.0), Some(owner.1))?;
    temp.persist(path).map_err(|e| e.error)?;
    Ok(())
}
