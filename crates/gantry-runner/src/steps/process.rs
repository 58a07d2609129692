//! Running one process of a step inside the sandbox: its output streamed line by line, its
//! time limit, and cancellation.
//!
//! Output is read in fixed-size chunks by one thread per pipe and cut into lines no longer
//! than [`MAX_LINE_BYTES`], so a step that prints a gigabyte, with or without line breaks,
//! costs a bounded amount of memory: the pipes are always drained and every line is handed
//! to the caller as soon as it is complete.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, sync_channel};
use std::time::{Duration, Instant};

use crate::sandbox::{ProcessSpec, Sandbox, StopSignal};

use super::CancelHandle;

/// Longer lines are cut into several.
pub const MAX_LINE_BYTES: usize = 64 * 1024;

/// How often the loop looks at the process, the clock and the cancel flag while no output
/// arrives.
const POLL: Duration = Duration::from_millis(50);

/// After the process has exited, how long its pipes may stay silent before we stop waiting for
/// them: a background process it started may hold them open for ever.
const DRAIN_AFTER_EXIT: Duration = Duration::from_millis(500);

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// It exited with this code.
    Code(i32),
    /// A signal ended it.
    Signal(i32),
    /// It ran past its time limit and was stopped.
    TimedOut,
    /// The job was cancelled while it ran and it was stopped.
    Cancelled,
}

/// When to stop a process early.
#[derive(Debug, Clone, Copy)]
pub struct Limits<'a> {
    /// The step's (or the job's, whichever is earlier) deadline.
    pub deadline: Option<Instant>,
    /// The job's cancel flag.
    pub cancel: &'a CancelHandle,
    /// Between SIGTERM and SIGKILL.
    pub grace: Duration,
}

/// Why a process could not be run at all.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    /// The sandbox refused the command.
    #[error(transparent)]
    Sandbox(#[from] crate::sandbox::SandboxError),
    /// Spawning or waiting failed.
    #[error("failed to run `{program}`: {source}")]
    Io {
        /// The program.
        program: String,
        /// The cause.
        source: std::io::Error,
    },
}

/// Runs `process` in `sandbox`, handing each output line (stdout and stderr, without the line
/// break) to `on_line` as it comes.
pub fn run(
    sandbox: &dyn Sandbox,
    process: &ProcessSpec,
    limits: Limits<'_>,
    on_line: &mut dyn FnMut(String),
) -> Result<Exit, ProcessError> {
    let program = process.argv.first().cloned().unwrap_or_default();
    let io_error = |source| ProcessError::Io {
        program: program.clone(),
        source,
    };
    let mut command = sandbox.command(process)?;
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().map_err(io_error)?;
    let (sender, receiver) = sync_channel::<String>(256);
    let mut readers = Vec::new();
    if let Some(stdout) = child.stdout.take() {
        readers.push(spawn_reader(stdout, sender.clone()));
    }
    if let Some(stderr) = child.stderr.take() {
        readers.push(spawn_reader(stderr, sender.clone()));
    }
    drop(sender);
    let exit = supervise(sandbox, &mut child, &receiver, limits, on_line).map_err(io_error)?;
    // Readers end at EOF; those still blocked on a pipe a background process holds are left
    // to end with it (they own nothing but the pipe and the channel's sender).
    for reader in readers {
        if reader.is_finished() {
            let _ = reader.join();
        }
    }
    Ok(exit)
}

fn supervise(
    sandbox: &dyn Sandbox,
    child: &mut Child,
    lines: &Receiver<String>,
    limits: Limits<'_>,
    on_line: &mut dyn FnMut(String),
) -> std::io::Result<Exit> {
    let mut stopping: Option<(Exit, Instant)> = None;
    let mut status = None;
    let mut exited_at: Option<Instant> = None;
    let mut last_output = Instant::now();
    let mut pipes_open = true;
    loop {
        if pipes_open {
            match lines.recv_timeout(POLL) {
                Ok(line) => {
                    last_output = Instant::now();
                    on_line(line);
                    continue_draining_without_checks(lines, on_line, &mut last_output);
                }
                Err(RecvTimeoutError::Disconnected) => pipes_open = false,
                Err(RecvTimeoutError::Timeout) => {}
            }
        } else if status.is_none() {
            // The process closed its output but still runs: keep watching the clock and the
            // cancel flag instead of blocking in `wait`.
            std::thread::sleep(POLL);
        }
        if status.is_none()
            && let Some(exited) = child.try_wait()?
        {
            status = Some(exited);
            exited_at = Some(Instant::now());
        }
        if status.is_some() && !pipes_open {
            break;
        }
        if let Some(exited_at) = exited_at {
            if last_output.max(exited_at).elapsed() >= DRAIN_AFTER_EXIT {
                tracing::debug!("process exited but its output pipes stay open; not waiting");
                break;
            }
            continue;
        }
        let now = Instant::now();
        match stopping {
            None => {
                let reason = if limits.cancel.is_cancelled() {
                    Some(Exit::Cancelled)
                } else if limits.deadline.is_some_and(|deadline| now >= deadline) {
                    Some(Exit::TimedOut)
                } else {
                    None
                };
                if let Some(reason) = reason {
                    tracing::info!(?reason, "stopping the step's processes");
                    if let Err(error) = sandbox.signal_all(StopSignal::Terminate) {
                        tracing::warn!(%error, "failed to signal the sandbox");
                    }
                    stopping = Some((reason, now + limits.grace));
                }
            }
            Some((_, kill_at)) if now >= kill_at => {
                if let Err(error) = sandbox.signal_all(StopSignal::Kill) {
                    tracing::warn!(%error, "failed to kill the sandbox's processes");
                }
                // Once killed, a further kill is pointless; keep waiting for the exit.
                stopping = stopping.map(|(reason, _)| (reason, now + Duration::from_secs(3600)));
            }
            Some(_) => {}
        }
    }
    if let Some((reason, _)) = stopping {
        return Ok(reason);
    }
    let status = match status {
        Some(status) => status,
        None => child.wait()?,
    };
    use std::os::unix::process::ExitStatusExt;
    Ok(match (status.code(), status.signal()) {
        (Some(code), _) => Exit::Code(code),
        (None, Some(signal)) => Exit::Signal(signal),
        (None, None) => Exit::Code(-1),
    })
}

/// Takes what is already waiting without blocking, so a chatty process is served in bursts.
fn continue_draining_without_checks(
    lines: &Receiver<String>,
    on_line: &mut dyn FnMut(String),
    last_output: &mut Instant,
) {
    for _ in 0..1024 {
        match lines.try_recv() {
            Ok(line) => {
                *last_output = Instant::now();
                on_line(line);
            }
            Err(_) => return,
        }
    }
}

fn spawn_reader(
    pipe: impl Read + Send + 'static,
    sender: SyncSender<String>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut reader = BufReader::with_capacity(64 * 1024, pipe);
        let mut line: Vec<u8> = Vec::with_capacity(1024);
        loop {
            line.clear();
            // `take` caps the line; `read_until` finds the line break with std's fast search.
            let limit = u64::try_from(MAX_LINE_BYTES).unwrap_or(u64::MAX);
            match reader.by_ref().take(limit).read_until(b'\n', &mut line) {
                Ok(0) => return,
                Ok(_) => {}
                Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => return,
            }
            if line.last() == Some(&b'\n') {
                line.pop();
            }
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            if sender
                .send(String::from_utf8_lossy(&line).into_owned())
                .is_err()
            {
                return;
            }
        }
    })
}
