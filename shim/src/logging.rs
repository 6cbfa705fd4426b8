//! The shim's own logs: `tracing` events written to the `log` fifo containerd opened in the bundle
//! directory, so they appear in containerd's log; stderr when there is no fifo (tests, manual runs).
//! The containerd-shim and ttrpc crates log through `log`; `try_init` installs the bridge (tracing-log), so
//! their records (a publisher that cannot reach containerd, say) land in the same place.
//!
//! `STRICT_LOG` overrides the level: a level (`debug`) or `target=level` directives separated by commas
//! (`info,strict_shim=trace`). The filter is tracing-subscriber's `Targets`, not `EnvFilter`: the latter
//! brings a regex engine (~0.7 MB of code) into every long-running shim for span-field matching the shim
//! never needs.

use std::fs::{File, OpenOptions};
use std::process::Stdio;
use std::str::FromStr;
use std::sync::{Mutex, OnceLock};

use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// The filter: `STRICT_LOG` when it parses, else `debug` or `info`.
pub fn filter(debug: bool, env: Option<&str>) -> Targets {
    let level = if debug {
        LevelFilter::DEBUG
    } else {
        LevelFilter::INFO
    };
    env.and_then(|directives| Targets::from_str(directives).ok())
        .unwrap_or_else(|| Targets::new().with_default(level))
}

/// The log fifo as the shim opened it, for its gate processes' stderr.
static LOG_FIFO: OnceLock<File> = OnceLock::new();

pub fn init(debug: bool) {
    let filter = filter(debug, std::env::var("STRICT_LOG").ok().as_deref());
    let format = tracing_subscriber::fmt::layer()
        .with_ansi(false)
        .with_target(false);
    let registry = tracing_subscriber::registry().with(filter);
    let result = match open_log_fifo() {
        Ok(fifo) => {
            if let Ok(copy) = fifo.try_clone() {
                let _ = LOG_FIFO.set(copy);
            }
            registry
                .with(format.with_writer(Mutex::new(fifo)))
                .try_init()
        }
        Err(_) => registry
            .with(format.with_writer(std::io::stderr))
            .try_init(),
    };
    // A second init (tests) keeps the first subscriber.
    let _ = result;
}

/// Where a child's stderr goes: the shim's own log (containerd's log), so that a gate process logs to
/// stderr and its lines land next to the shim's; the shim's stderr when it has no log fifo. A line is one
/// write, below the pipe's atomic size, so the two never interleave within a line.
pub fn child_stderr() -> Stdio {
    LOG_FIFO
        .get()
        .and_then(|fifo| fifo.try_clone().ok())
        .map(Stdio::from)
        .unwrap_or_else(Stdio::inherit)
}

/// The bundle's `log` fifo, opened without waiting for a reader (a shim started by hand must not hang on
/// it): with no reader the open fails and the logs go to stderr. Writes block again once it is open, so
/// no line is dropped.
fn open_log_fifo() -> std::io::Result<std::fs::File> {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::OpenOptionsExt;
    let fifo = OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open("log")?;
    // SAFETY: fcntl(2) on a descriptor this function owns.
    unsafe {
        let flags = libc::fcntl(fifo.as_raw_fd(), libc::F_GETFL);
        if flags >= 0 {
            libc::fcntl(fifo.as_raw_fd(), libc::F_SETFL, flags & !libc::O_NONBLOCK);
        }
    }
    Ok(fifo)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing::Level;

    #[test]
    fn strict_log_overrides_the_level() {
        let default = filter(false, None);
        assert!(default.would_enable("strict_shim::task", &Level::INFO));
        assert!(!default.would_enable("strict_shim::task", &Level::DEBUG));
        assert!(filter(true, None).would_enable("ttrpc", &Level::DEBUG));
        let custom = filter(false, Some("warn,strict_shim=trace"));
        assert!(custom.would_enable("strict_shim::task", &Level::TRACE));
        assert!(!custom.would_enable("ttrpc::server", &Level::INFO));
        // Unparsable: the default.
        assert!(!filter(false, Some("=?")).would_enable("x", &Level::DEBUG));
    }
}
