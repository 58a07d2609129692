//! Ctrl-C during `gantry run`: the first one cancels the runs it started, through the same
//! API as `gantry cancel`, so their jobs end as cancelled (running steps are stopped by their
//! runners within a heartbeat, `always()` jobs still run) and the run's tree shows it; the
//! command then exits with 130, as a shell expects of an interrupted program. A second Ctrl-C
//! exits at once.
//!
//! The signals are watched on a thread of their own (`server::on_signals`), because the
//! command's main thread is blocking on the API while it follows the runs.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use gantry_proto::v1 as proto;

use super::client::{Client, Reply};
use crate::output;

/// The exit code of an interrupted command (128 + SIGINT), as `server::on_signals` exits with
/// on a second signal.
pub const INTERRUPTED: u8 = 130;

/// What the signal thread and the command share.
#[derive(Clone, Default)]
pub struct Interrupt {
    /// Set on the first Ctrl-C (or SIGTERM).
    interrupted: Arc<AtomicBool>,
    /// The runs started so far, to cancel.
    runs: Arc<Mutex<Vec<i64>>>,
}

impl Interrupt {
    /// Starts watching for Ctrl-C and SIGTERM; runs added later are cancelled too.
    pub fn watch(server: &str) -> anyhow::Result<Interrupt> {
        let interrupt = Interrupt::default();
        let shared = interrupt.clone();
        let client = Client::new(Some(server));
        super::server::on_signals(
            move || {
                shared.interrupted.store(true, Ordering::SeqCst);
                output::message("\ninterrupted: cancelling the runs (Ctrl-C again to quit now)");
                shared.cancel_all(&client);
            },
            "second Ctrl-C; quitting without waiting for the runs to end",
        )?;
        Ok(interrupt)
    }

    /// Whether Ctrl-C was pressed.
    pub fn interrupted(&self) -> bool {
        self.interrupted.load(Ordering::SeqCst)
    }

    /// Records a started run; one started after the interrupt is cancelled at once.
    pub fn started(&self, client: &Client, run: i64) {
        self.lock_runs().push(run);
        if self.interrupted() {
            cancel(client, run);
        }
    }

    fn cancel_all(&self, client: &Client) {
        let runs = self.lock_runs().clone();
        for run in runs {
            cancel(client, run);
        }
    }

    fn lock_runs(&self) -> std::sync::MutexGuard<'_, Vec<i64>> {
        // Plain ids: a panic elsewhere cannot leave the list torn.
        self.runs
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Asks the server to cancel `run`; a run that has already ended is left alone.
fn cancel(client: &Client, run: i64) {
    let empty = serde_json::json!({});
    match client.post::<proto::Run>(&format!("/runs/{run}/cancel"), &empty, &[]) {
        Ok(Reply::Ok(..)) => {}
        // Completed meanwhile: nothing to cancel.
        Ok(Reply::Refused(error, _)) if error.error.code == proto::ErrorCode::Conflict => {}
        Ok(Reply::Refused(error, status)) => {
            output::error(&format!("cannot cancel run {run} ({status}): {error}"));
        }
        Err(error) => output::error(&format!("cannot cancel run {run}: {error:#}")),
    }
}
