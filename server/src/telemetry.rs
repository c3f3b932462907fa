//! Structured logs with `tracing`: readable lines by default, JSON with `--log-format json`.
//! `RUST_LOG` overrides the level filter.

use crate::config::LogFormat;
use std::io::IsTerminal;
use tracing_subscriber::EnvFilter;

/// Logging for the one-shot commands (`admin`, `token`): warnings and errors only, on
/// stderr, so that what a command prints on stdout (a new token) stays clean.
pub fn init_for_commands() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::new("warn"))
        .with_target(false)
        .with_ansi(false)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Installs the global subscriber; later calls (tests starting several apps) are no-ops.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,leptos=warn,tower_http=warn,hyper=warn"));
    // Colours only on a terminal: journald, files and test harnesses get plain text.
    let ansi = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(ansi);
    let _ = match format {
        LogFormat::Human => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}
