//! The shim's own logs: `tracing` events written to the `log` fifo containerd opened in the bundle
//! directory, so they appear in containerd's log; stderr when there is no fifo (tests, manual runs).
//! The containerd-shim and ttrpc crates log through `log`; `try_init` installs the bridge (tracing-log), so
//! their records (a publisher that cannot reach containerd, say) land in the same place.

use std::fs::OpenOptions;
use std::sync::Mutex;

use tracing_subscriber::EnvFilter;

pub fn init(debug: bool) {
    let level = if debug { "debug" } else { "info" };
    let filter = EnvFilter::try_from_env("STRICT_LOG").unwrap_or_else(|_| EnvFilter::new(level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_target(false);
    let result = match OpenOptions::new().write(true).open("log") {
        Ok(fifo) => builder.with_writer(Mutex::new(fifo)).try_init(),
        Err(_) => builder.with_writer(std::io::stderr).try_init(),
    };
    // A second init (tests) keeps the first subscriber.
    let _ = result;
}
