//! The gate's logs, on stderr: the shim hands a gate its own log fifo as stderr, so the lines land in
//! containerd's log next to the shim's; run by hand, they reach the terminal. `STRICT_LOG` overrides the
//! level (a level, or `target=level` directives separated by commas), as for the shim.

use std::str::FromStr;

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
        .with_target(false)
        .with_writer(std::io::stderr);
    // A second init (tests) keeps the first subscriber.
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(format)
        .try_init();
}
