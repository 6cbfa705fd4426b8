//! Appending to the trail. Every shim on the node writes to the same file, so each record is one
//! `write(2)` on an `O_APPEND` descriptor, taken under an exclusive `flock` on `<file>.lock` that also
//! guards rotation: lines never interleave and no line is lost while the files move.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use strict_policy::AuditSettings;

use super::record::Record;

#[derive(Clone, Debug)]
pub struct AuditLog {
    settings: AuditSettings,
}

impl AuditLog {
    pub fn new(settings: AuditSettings) -> AuditLog {
        AuditLog { settings }
    }

    pub fn path(&self) -> &Path {
        &self.settings.path
    }

    /// Appends one record. An empty path turns the trail off.
    pub fn append(&self, record: &Record) -> std::io::Result<()> {
        let path = &self.settings.path;
        if path.as_os_str().is_empty() {
            return Ok(());
        }
        let mut line = serde_json::to_vec(record).map_err(std::io::Error::other)?;
        line.push(b'\n');
        // This runs in every Create: the directory is made only the first time, when the open fails.
        let mut lock_options = OpenOptions::new();
        lock_options
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600);
        let lock = match lock_options.open(lock_path(path)) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if let Some(dir) = path.parent() {
                    std::fs::DirBuilder::new()
                        .recursive(true)
                        .mode(0o750)
                        .create(dir)?;
                }
                lock_options.open(lock_path(path))?
            }
            other => other?,
        };
        let _lock = Flock::lock(lock, FlockArg::LockExclusive).map_err(|(_, e)| e)?;
        let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        if size > 0 && size + line.len() as u64 > self.settings.max_size {
            self.rotate()?;
        }
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o640)
            .open(path)?;
        file.write_all(&line)
    }

    /// `audit.log` becomes `audit.log.1`, `.1` becomes `.2`, ... the oldest past `keep` goes.
    fn rotate(&self) -> std::io::Result<()> {
        let path = &self.settings.path;
        let keep = self.settings.keep;
        if keep == 0 {
            return remove_if_present(path);
        }
        remove_if_present(&rotated(path, keep))?;
        for n in (1..keep).rev() {
            let from = rotated(path, n);
            if from.exists() {
                std::fs::rename(&from, rotated(path, n + 1))?;
            }
        }
        std::fs::rename(path, rotated(path, 1))
    }
}

/// `audit.log.N`.
pub fn rotated(path: &Path, n: u32) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{n}"));
    PathBuf::from(name)
}

fn lock_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

fn remove_if_present(path: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// The trail's files, oldest first: `audit.log.N` ... `audit.log.1`, `audit.log`.
pub fn files_oldest_first(path: &Path) -> Vec<PathBuf> {
    let mut rotated_files: Vec<(u32, PathBuf)> = Vec::new();
    if let (Some(dir), Some(name)) = (path.parent(), path.file_name()) {
        let prefix = format!("{}.", name.to_string_lossy());
        if let Ok(entries) = std::fs::read_dir(if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        }) {
            for entry in entries.flatten() {
                let file = entry.file_name().to_string_lossy().to_string();
                if let Some(n) = file
                    .strip_prefix(&prefix)
                    .and_then(|n| n.parse::<u32>().ok())
                {
                    rotated_files.push((n, path.with_file_name(file)));
                }
            }
        }
    }
    rotated_files.sort_by_key(|(n, _)| std::cmp::Reverse(*n));
    let mut out: Vec<PathBuf> = rotated_files.into_iter().map(|(_, p)| p).collect();
    if path.exists() {
        out.push(path.to_owned());
    }
    out
}

/// Opens a trail file for reading.
pub fn open(path: &Path) -> std::io::Result<File> {
    File::open(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::record::{now, Decision, Subject};
    use strict_policy::Mode;

    fn record(id: &str) -> Record {
        Record {
            time: now(),
            handler: "strict".into(),
            mode: Mode::Enforce,
            decision: Decision::Allowed,
            subject: Subject::Container,
            namespace: "default".into(),
            container_id: id.into(),
            exec_id: None,
            pod: None,
            container_name: None,
            image: None,
            cgroups_path: None,
            violations: Vec::new(),
            narrowings: Vec::new(),
            error: None,
            action: None,
            snap: "microk8s".into(),
            permissions_source: "test".into(),
            config: "test".into(),
            policy_digest: "0".repeat(64),
        }
    }

    fn read_all(path: &Path) -> Vec<Record> {
        files_oldest_first(path)
            .iter()
            .flat_map(|f| {
                std::fs::read_to_string(f)
                    .unwrap()
                    .lines()
                    .map(|l| serde_json::from_str::<Record>(l).expect("a whole JSON line"))
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    #[test]
    fn rotates_by_size_and_keeps_n_files_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/audit.log");
        let line_len = serde_json::to_vec(&record("c000")).unwrap().len() as u64 + 1;
        let log = AuditLog::new(AuditSettings {
            path: path.clone(),
            max_size: line_len * 3,
            keep: 2,
            ..Default::default()
        });
        for i in 0..10 {
            log.append(&record(&format!("c{i:03}"))).unwrap();
        }
        // 3 lines per file, 2 rotated files kept: the last 7 records survive (3 + 3 + 1), in order.
        let ids: Vec<String> = read_all(&path)
            .into_iter()
            .map(|r| r.container_id)
            .collect();
        assert_eq!(
            ids,
            ["c003", "c004", "c005", "c006", "c007", "c008", "c009"]
        );
        assert!(!rotated(&path, 3).exists());
    }

    #[test]
    fn concurrent_writers_never_interleave_or_lose_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let settings = AuditSettings {
            path: path.clone(),
            max_size: 64 * 1024,
            keep: 100,
            ..Default::default()
        };
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let log = AuditLog::new(settings.clone());
                std::thread::spawn(move || {
                    for i in 0..200 {
                        let mut r = record(&format!("t{t}-{i}"));
                        // Long lines make a torn write visible.
                        r.error = Some("x".repeat(3000));
                        log.append(&r).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let records = read_all(&path);
        assert_eq!(records.len(), 1600);
        for t in 0..8 {
            let mine: Vec<&str> = records
                .iter()
                .map(|r| r.container_id.as_str())
                .filter(|id| id.starts_with(&format!("t{t}-")))
                .collect();
            let expected: Vec<String> = (0..200).map(|i| format!("t{t}-{i}")).collect();
            assert_eq!(mine, expected, "writer {t}'s lines in order");
        }
    }

    #[test]
    fn an_empty_path_turns_the_trail_off() {
        let log = AuditLog::new(AuditSettings {
            path: PathBuf::new(),
            max_size: 1,
            keep: 1,
            ..Default::default()
        });
        log.append(&record("c")).unwrap();
    }
}
