//! Known breakouts of the OCI runtimes that ride on what the image (or a volume shared with another
//! container) brings: a symlink where the runtime expects a device node or procfs. Where the runtime
//! predates the fix, the gate refuses the preconditions it can see before the runtime runs, and strictctl
//! names the breakouts so that operators know to upgrade.
//!
//! Facts from runc's advisories of November 2025 (GHSA-9493-h29p-rfm2, GHSA-qw9x-cqr3-wc7r,
//! GHSA-cgrx-mc8f-2prm): fixed in runc 1.2.8, 1.3.3 and 1.4.0-rc.3. crun is not affected.

/// One breakout and what it needs.
#[derive(Debug, PartialEq, Eq)]
pub struct Breakout {
    pub id: &'static str,
    pub summary: &'static str,
    /// Paths in the container's root filesystem that must not be symlinks (nor lie under one).
    pub rootfs_paths: &'static [&'static str],
}

pub const RUNC_BREAKOUTS: &[Breakout] = &[
    Breakout {
        id: "CVE-2025-31133",
        summary: "the container's /dev/null swapped for a symlink while runc masks paths: runc bind-mounts \
                  the symlink's target (a host procfs file) read-write",
        rootfs_paths: &["dev", "dev/null"],
    },
    Breakout {
        id: "CVE-2025-52565",
        summary: "the container's /dev/console (or /dev/pts) a symlink: runc bind-mounts the console over \
                  the symlink's target",
        rootfs_paths: &["dev", "dev/console", "dev/pts", "dev/ptmx"],
    },
    Breakout {
        id: "CVE-2025-52881",
        summary: "runc's writes to procfs (/proc/self/attr, sysctls) redirected through a symlinked or \
                  shared /proc",
        rootfs_paths: &["proc"],
    },
];

/// The first runc releases with the fixes, per release line.
const RUNC_FIXED: &[(u64, u64, u64)] = &[(1, 2, 8), (1, 3, 3)];

/// The breakouts a runtime of this name (`runc`, `crun`; a path's file name counts) and version
/// (`runc features`' `org.opencontainers.runc.version`, `1.1.5+ds1`) still has. An unreadable runc
/// version has them all: the gate cannot tell it is fixed.
pub fn unfixed(runtime: &str, version: Option<&str>) -> Vec<&'static Breakout> {
    let name = std::path::Path::new(runtime)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or(runtime);
    if name != "runc" {
        return Vec::new();
    }
    match version.and_then(parse_version) {
        Some(version) if is_fixed(version) => Vec::new(),
        _ => RUNC_BREAKOUTS.iter().collect(),
    }
}

/// `1.1.5+ds1` → (1, 1, 5, None); `1.4.0-rc.2` → (1, 4, 0, Some(2)).
fn parse_version(text: &str) -> Option<(u64, u64, u64, Option<u64>)> {
    let text = text.trim().trim_start_matches('v');
    let core = text.split(['+', '~']).next()?;
    let (numbers, pre) = match core.split_once('-') {
        Some((numbers, pre)) => (numbers, Some(pre)),
        None => (core, None),
    };
    let mut parts = numbers.split('.').map(|n| n.parse::<u64>().ok());
    let (major, minor, patch) = (
        parts.next()??,
        parts.next()??,
        parts.next().flatten().unwrap_or(0),
    );
    let rc = pre.map(|pre| {
        pre.trim_start_matches("rc")
            .trim_start_matches('.')
            .parse()
            .unwrap_or(0)
    });
    Some((major, minor, patch, rc))
}

fn is_fixed((major, minor, patch, rc): (u64, u64, u64, Option<u64>)) -> bool {
    if (major, minor) >= (1, 4) {
        // 1.4.0-rc.1 and rc.2 came before the fixes.
        return !((major, minor, patch) == (1, 4, 0) && rc.is_some_and(|rc| rc < 3));
    }
    RUNC_FIXED.iter().any(|&(fmaj, fmin, fpatch)| {
        (major, minor) == (fmaj, fmin) && patch >= fpatch && rc.is_none()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_test_beds_runc_has_them_and_the_fixed_releases_do_not() {
        assert_eq!(unfixed("runc", Some("1.1.5+ds1")).len(), 3);
        assert_eq!(unfixed("/usr/sbin/runc", Some("1.2.7")).len(), 3);
        assert!(unfixed("runc", Some("1.2.8")).is_empty());
        assert_eq!(unfixed("runc", Some("1.3.2")).len(), 3);
        assert!(unfixed("runc", Some("1.3.3")).is_empty());
        assert_eq!(unfixed("runc", Some("1.4.0-rc.2")).len(), 3);
        assert!(unfixed("runc", Some("1.4.0-rc.3")).is_empty());
        assert!(unfixed("runc", Some("1.4.1")).is_empty());
        assert_eq!(unfixed("runc", None).len(), 3);
        assert_eq!(unfixed("runc", Some("garbage")).len(), 3);
        assert!(unfixed("crun", Some("1.8.1")).is_empty());
    }
}
