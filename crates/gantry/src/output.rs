//! The one place that writes to the terminal: JSON and results on stdout, messages on stderr.

#![allow(clippy::print_stdout, clippy::print_stderr)] // This module exists to print.

use std::io::Write;
use std::sync::Mutex;

use indicatif::MultiProgress;

pub mod progress;

/// The live tree being drawn, if any: what is written to stderr meanwhile (log events,
/// messages) is written around it, so it neither lands inside the tree nor is drawn over.
static LIVE_TREE: Mutex<Option<MultiProgress>> = Mutex::new(None);

/// Registers (or, with `None`, forgets) the live tree drawn on the terminal.
pub(crate) fn set_live_tree(tree: Option<MultiProgress>) {
    *LIVE_TREE
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner()) = tree;
}

/// Writes `bytes` with `write`, around the live tree when one is drawn: the tree is cleared,
/// the bytes written, the tree drawn again below them.
fn around_live_tree(write: impl FnOnce() -> std::io::Result<()>) -> std::io::Result<()> {
    let tree = LIVE_TREE
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .clone();
    match tree {
        Some(tree) => tree.suspend(write),
        None => write(),
    }
}

/// Standard error, written around the live tree.
struct Stderr;

impl Write for Stderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        // One event arrives as one `write_all`: write it whole, so the tree is redrawn once.
        around_live_tree(|| std::io::stderr().lock().write_all(buf))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

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
    let _ = around_live_tree(|| writeln!(std::io::stderr().lock(), "{text}"));
}

/// Writes an error to stderr.
pub fn error(text: &str) {
    let _ = around_live_tree(|| writeln!(std::io::stderr().lock(), "error: {text}"));
}

/// Logs of the long-running commands (server, runner, up, run) go to stderr, filtered by
/// `GANTRY_LOG` (default `default_filter`, e.g. `info`).
pub fn init_logging(default_filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("GANTRY_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| Stderr)
        .init();
}

#[cfg(test)]
mod tests {
    use indicatif::{InMemoryTerm, ProgressBar, ProgressDrawTarget, TermLike};

    use super::*;

    /// A line written while the tree is drawn lands above it and the tree stays whole below.
    #[test]
    fn stderr_lines_are_written_above_the_live_tree() {
        let term = InMemoryTerm::new(10, 40);
        let tree =
            MultiProgress::with_draw_target(ProgressDrawTarget::term_like(Box::new(term.clone())));
        let bar = tree.add(ProgressBar::new_spinner());
        bar.set_message("run 1 — ci");
        bar.tick();
        set_live_tree(Some(tree.clone()));
        around_live_tree(|| term.write_line("WARN something happened")).unwrap();
        set_live_tree(None);
        let screen = term.contents();
        let lines: Vec<&str> = screen.lines().collect();
        assert_eq!(lines.len(), 2, "{screen}");
        assert_eq!(lines[0], "WARN something happened", "{screen}");
        assert!(lines[1].contains("run 1 — ci"), "{screen}");
    }
}
