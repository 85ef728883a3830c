//! Logging: structured JSON (or plain text for a terminal) on stderr, level from `RUST_LOG`.

use tracing_subscriber::EnvFilter;

/// `TRAILKEEPER_LOG_FORMAT=json` (the default in a cluster) or `text`.
pub const LOG_FORMAT_ENV: &str = "TRAILKEEPER_LOG_FORMAT";

pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let result = if std::env::var(LOG_FORMAT_ENV).as_deref() == Ok("json") {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
    // Already initialised (tests): keep the first subscriber.
    drop(result);
}
