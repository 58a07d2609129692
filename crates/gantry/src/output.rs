//! The one place that writes to the terminal: JSON and results on stdout, messages on stderr.

#![allow(clippy::print_stdout, clippy::print_stderr)] // This module exists to print.

use std::io::Write;

pub mod progress;

/// Writes one line of machine output (JSON) to stdout.
pub fn json_line(value: &serde_json::Value) {
    let mut stdout = std::io::stdout().lock();
    // A closed pipe (`gantry ... | head`) is not an error worth reporting.
    let _ = writeln!(stdout, "{value}");
}

/// Writes a result line for people to stdout.
pub fn line(text: &str) {
    println!("{text}");
}

/// Writes a diagnostic or progress message to stderr.
pub fn message(text: &str) {
    eprintln!("{text}");
}

/// Writes an error to stderr.
pub fn error(text: &str) {
    eprintln!("error: {text}");
}

/// Logs of the long-running commands (server, runner, up, run) go to stderr, filtered by
/// `GANTRY_LOG` (default `default_filter`, e.g. `info`).
pub fn init_logging(default_filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("GANTRY_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
