//! The gate's logs: into the `log` fifo of the bundle the shim runs in (a gate inherits the shim's working
//! directory), so they appear in containerd's log next to the shim's; stderr when there is no fifo.
//! `STRICT_LOG` overrides the level, as for the shim.

use std::fs::OpenOptions;
use std::os::unix::fs::OpenOptionsExt;
use std::str::FromStr;
use std::sync::Mutex;

use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

pub fn init(debug: bool) {
    let level = if debug {
        LevelFilter::DEBUG
    } else {
        LevelFilter::INFO
    };
    let filter = std::env::var("STRICT_LOG")
        .ok()
        .and_then(|directives| Targets::from_str(&directives).ok())
        .unwrap_or_else(|| Targets::new().with_default(level));
    let format = tracing_subscriber::fmt::layer()
        .with_ansi(false)
        .with_target(false);
    let registry = tracing_subscriber::registry().with(filter);
    let result = match open_log_fifo() {
        Ok(fifo) => registry
            .with(format.with_writer(Mutex::new(fifo)))
            .try_init(),
        Err(_) => registry
            .with(format.with_writer(std::io::stderr))
            .try_init(),
    };
    // A second init (tests) keeps the first subscriber.
    let _ = result;
}

/// The `log` fifo, opened without waiting for a reader (a gate must never hang on its log): with no reader
/// the open fails and the logs go to stderr. Writes block again once it is open, so no line is dropped.
fn open_log_fifo() -> std::io::Result<std::fs::File> {
    use std::os::fd::AsRawFd;
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
