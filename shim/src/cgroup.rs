//! The container's cgroups, read from its init process's `/proc/PID/cgroup`: the directories OOM events
//! (`oom.rs`) and metrics (`stats.rs`) read, on cgroup v1, hybrid and unified (v2) hosts.
//!
//! By hand rather than with `cgroups-rs`: the shim needs a path per controller and a few flat files, and
//! cgroups-rs 0.5 reads v2's `memory.swap.max` of `max` as 0 and has no public reader of `memory.events`;
//! in a trial it also cost +38 KiB of code and +24 KiB of heap per shim (docs/benchmarks.md).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Where cgroup hierarchies are mounted.
const CGROUP_ROOT: &str = "/sys/fs/cgroup";
/// The unified hierarchy on a hybrid host (v1 controllers, v2 next to them).
const HYBRID_UNIFIED_ROOT: &str = "/sys/fs/cgroup/unified";

/// A process's cgroup directories, by v1 controller, and its unified (v2) one.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Cgroups {
    controllers: HashMap<String, PathBuf>,
    unified: Option<PathBuf>,
}

/// The memory cgroup, where the kernel counts OOM kills.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MemoryCgroup {
    V1(PathBuf),
    V2(PathBuf),
}

impl MemoryCgroup {
    /// The cgroup of process `pid`, as the runtime placed it.
    pub fn of_process(pid: u32) -> Result<MemoryCgroup> {
        Cgroups::of_process(pid)?
            .memory()
            .ok_or_else(|| Error::FailedPrecondition(format!("pid {pid} has no memory cgroup")))
    }

    pub fn dir(&self) -> &Path {
        match self {
            MemoryCgroup::V1(dir) | MemoryCgroup::V2(dir) => dir,
        }
    }
}

impl Cgroups {
    pub fn of_process(pid: u32) -> Result<Cgroups> {
        let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
            .map_err(|e| Error::NotFound(format!("the cgroups of pid {pid} ({e})")))?;
        Ok(Cgroups::parse(&text, &|dir| dir.is_dir()))
    }

    /// Parses cgroup(7)'s `/proc/PID/cgroup` lines (`ID:CONTROLLERS:PATH`); `is_dir` tells which mount
    /// points exist (joined v1 controllers are mounted as `cpu,cpuacct`, with links by each name).
    pub fn parse(text: &str, is_dir: &dyn Fn(&Path) -> bool) -> Cgroups {
        let mut cgroups = Cgroups::default();
        for line in text.lines() {
            let mut parts = line.splitn(3, ':');
            let (_, controllers, path) = (
                parts.next(),
                parts.next().unwrap_or(""),
                parts.next().unwrap_or(""),
            );
            let path = path.trim_start_matches('/');
            if controllers.is_empty() {
                let root = if is_dir(Path::new(HYBRID_UNIFIED_ROOT)) {
                    HYBRID_UNIFIED_ROOT
                } else {
                    CGROUP_ROOT
                };
                cgroups.unified = Some(Path::new(root).join(path));
                continue;
            }
            let joined = Path::new(CGROUP_ROOT).join(controllers);
            for controller in controllers.split(',') {
                let base = if is_dir(&joined) {
                    joined.clone()
                } else {
                    Path::new(CGROUP_ROOT).join(controller)
                };
                cgroups
                    .controllers
                    .insert(controller.to_string(), base.join(path));
            }
        }
        cgroups
    }

    /// A v1 controller's directory.
    pub fn controller(&self, name: &str) -> Option<&Path> {
        self.controllers.get(name).map(PathBuf::as_path)
    }

    /// The unified hierarchy's directory.
    pub fn unified(&self) -> Option<&Path> {
        self.unified.as_deref()
    }

    /// Whether the resources are accounted in v1 controllers (a v1 or hybrid host).
    pub fn is_v1(&self) -> bool {
        self.controllers.contains_key("memory") || self.controllers.contains_key("cpuacct")
    }

    /// The memory cgroup: v1's memory controller where there is one, else the unified hierarchy.
    pub fn memory(&self) -> Option<MemoryCgroup> {
        match (self.controller("memory"), self.unified()) {
            (Some(dir), _) => Some(MemoryCgroup::V1(dir.to_owned())),
            (None, Some(dir)) => Some(MemoryCgroup::V2(dir.to_owned())),
            (None, None) => None,
        }
    }
}

/// A cgroup file holding one number; `max` is `u64::MAX`, anything unreadable 0.
pub fn read_u64(path: &Path) -> u64 {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|s| {
            let s = s.trim();
            if s == "max" {
                Some(u64::MAX)
            } else {
                s.parse().ok()
            }
        })
        .unwrap_or(0)
}

/// A cgroup file of `key value` lines.
pub fn read_keyed(path: &Path) -> HashMap<String, u64> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|line| {
            let (key, value) = line.split_once(' ')?;
            Some((key.to_string(), value.trim().parse().ok()?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "12:pids:/kubepods/pod1/c1\n\
        5:cpu,cpuacct:/kubepods/pod1/c1\n\
        4:memory:/kubepods/pod1/c1\n\
        0::/kubepods/pod1/c1\n";

    #[test]
    fn a_hybrid_host_accounts_in_v1_controllers() {
        let mounted = |dir: &Path| {
            dir == Path::new("/sys/fs/cgroup/cpu,cpuacct")
                || dir == Path::new("/sys/fs/cgroup/unified")
        };
        let cgroups = Cgroups::parse(HYBRID, &mounted);
        assert!(cgroups.is_v1());
        assert_eq!(
            cgroups.controller("cpuacct"),
            Some(Path::new("/sys/fs/cgroup/cpu,cpuacct/kubepods/pod1/c1"))
        );
        assert_eq!(
            cgroups.controller("pids"),
            Some(Path::new("/sys/fs/cgroup/pids/kubepods/pod1/c1"))
        );
        assert_eq!(
            cgroups.unified(),
            Some(Path::new("/sys/fs/cgroup/unified/kubepods/pod1/c1"))
        );
        assert_eq!(
            cgroups.memory(),
            Some(MemoryCgroup::V1(
                "/sys/fs/cgroup/memory/kubepods/pod1/c1".into()
            ))
        );
    }

    #[test]
    fn a_unified_host_has_one_directory() {
        let cgroups = Cgroups::parse("0::/system.slice/strict-c1.scope\n", &|_| false);
        assert!(!cgroups.is_v1());
        assert_eq!(
            cgroups.memory(),
            Some(MemoryCgroup::V2(
                "/sys/fs/cgroup/system.slice/strict-c1.scope".into()
            ))
        );
        assert_eq!(Cgroups::parse("", &|_| false).memory(), None);
    }

    #[test]
    fn our_own_memory_cgroup_is_found() {
        let memory = MemoryCgroup::of_process(std::process::id()).unwrap();
        assert!(
            memory.dir().starts_with(CGROUP_ROOT),
            "{}",
            memory.dir().display()
        );
    }

    #[test]
    fn cgroup_files_read_as_numbers() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("pids.max"), "max\n").unwrap();
        std::fs::write(dir.path().join("pids.current"), "3\n").unwrap();
        std::fs::write(dir.path().join("cpu.stat"), "usage_usec 10\nnr_periods 2\n").unwrap();
        assert_eq!(read_u64(&dir.path().join("pids.max")), u64::MAX);
        assert_eq!(read_u64(&dir.path().join("pids.current")), 3);
        assert_eq!(read_u64(&dir.path().join("missing")), 0);
        assert_eq!(read_keyed(&dir.path().join("cpu.stat"))["nr_periods"], 2);
    }
}
