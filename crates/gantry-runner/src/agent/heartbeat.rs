//! Keeps a claimed job's lease: a thread that heartbeats every `heartbeat_interval_ms` until
//! stopped.
//!
//! The answers steer the job: `cancel_requested` cancels it through its [`CancelHandle`] (the
//! step runner then sends SIGTERM to the step's processes, waits the grace period, sends
//! SIGKILL, and runs only the steps that run after a cancel), and `stale_token` marks the
//! attempt lost and cancels it, so its result is never sent (so does `not_found`: the server
//! says the runner does not hold the job). A heartbeat that cannot reach the
//! server is tried again after a short pause rather than a whole interval, because the lease
//! is running out meanwhile; failing to reach the server never cancels the job by itself: if
//! the lease runs out the server says so with `stale_token` once it is reachable again.
//!
//! [`CancelHandle`]: crate::steps::CancelHandle

use std::sync::Arc;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::Duration;

use gantry_proto::v1::ErrorCode;

use super::Attempt;
use super::client::{ClientError, ProtocolClient};

/// The pause before repeating a heartbeat that failed to reach the server.
const RETRY_PAUSE: Duration = Duration::from_secs(1);

/// The heartbeat thread of one attempt; [`Heartbeat::stop`] ends it.
pub struct Heartbeat {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

/// One heartbeat request, so the loop can be tested without a server.
pub trait Beat: Send + 'static {
    /// Sends one heartbeat: whether the job should be cancelled.
    fn beat(&mut self) -> Result<bool, ClientError>;
}

/// A heartbeat of one job to the server.
#[derive(Debug, Clone)]
pub struct ServerBeat {
    /// The client.
    pub client: ProtocolClient,
    /// The job's id.
    pub job_id: i64,
    /// The claim's fencing token.
    pub fencing_token: i64,
}

impl Beat for ServerBeat {
    fn beat(&mut self) -> Result<bool, ClientError> {
        self.client
            .heartbeat(self.job_id, self.fencing_token)
            .map(|answer| answer.cancel_requested)
    }
}

impl Heartbeat {
    /// Starts heartbeating every `interval`; the first beat goes out one interval after the
    /// claim, which the server counts as the lease's start.
    pub fn start(beat: impl Beat, interval: Duration, attempt: Arc<Attempt>) -> Heartbeat {
        let (stop, stopped) = mpsc::channel::<()>();
        let interval = interval.max(Duration::from_millis(10));
        let thread = std::thread::Builder::new()
            .name("heartbeat".to_owned())
            .spawn(move || run(beat, interval, &attempt, &stopped));
        let thread = match thread {
            Ok(thread) => Some(thread),
            Err(error) => {
                // Without heartbeats the lease expires and the server says `stale_token` to
                // the next report; nothing better can be done here.
                tracing::error!(%error, "cannot start the heartbeat thread");
                None
            }
        };
        Heartbeat {
            stop: Some(stop),
            thread,
        }
    }

    /// Stops heartbeating and waits for the thread.
    pub fn stop(mut self) {
        self.stop_now();
    }

    fn stop_now(&mut self) {
        // Dropping the sender wakes the thread's wait at once.
        self.stop.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        self.stop_now();
    }
}

fn run(mut beat: impl Beat, interval: Duration, attempt: &Attempt, stopped: &mpsc::Receiver<()>) {
    let mut wait = interval;
    loop {
        match stopped.recv_timeout(wait) {
            Err(RecvTimeoutError::Timeout) => {}
            Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
        }
        wait = match beat.beat() {
            Ok(cancel_requested) => {
                if cancel_requested && !attempt.cancel.is_cancelled() {
                    tracing::info!("the job was cancelled on the server; stopping it");
                    attempt.cancel.cancel();
                }
                interval
            }
            // `not_found`: the server says this runner does not hold the job (any more),
            // which is the same news as a stale token.
            Err(
                error @ (ClientError::StaleToken(_)
                | ClientError::Refused {
                    code: ErrorCode::NotFound,
                    ..
                }),
            ) => {
                tracing::warn!(%error, "the job's lease is gone; stopping the job, its result will not be sent");
                attempt.mark_lost();
                return;
            }
            Err(error) => {
                tracing::warn!(%error, "heartbeat failed; retrying");
                RETRY_PAUSE.min(interval)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::steps::CancelHandle;
    use std::collections::VecDeque;
    use std::sync::Mutex;
    use std::time::Instant;

    /// Answers from a script, then keeps answering "go on".
    struct Scripted(
        Arc<Mutex<VecDeque<Result<bool, ClientError>>>>,
        Arc<Mutex<u32>>,
    );

    impl Beat for Scripted {
        fn beat(&mut self) -> Result<bool, ClientError> {
            *self.1.lock().unwrap() += 1;
            self.0.lock().unwrap().pop_front().unwrap_or(Ok(false))
        }
    }

    fn scripted(answers: Vec<Result<bool, ClientError>>) -> (Scripted, Arc<Mutex<u32>>) {
        let count = Arc::new(Mutex::new(0));
        (
            Scripted(Arc::new(Mutex::new(answers.into())), Arc::clone(&count)),
            count,
        )
    }

    fn wait_for(what: &str, condition: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while !condition() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    #[test]
    fn cancel_requested_cancels_the_job_but_keeps_beating() {
        let attempt = Arc::new(Attempt::new(CancelHandle::new()));
        let (beat, count) = scripted(vec![
            Err(ClientError::Transport {
                url: "u".into(),
                message: "down".into(),
            }),
            Ok(false),
            Ok(true),
        ]);
        let heartbeat = Heartbeat::start(beat, Duration::from_millis(10), Arc::clone(&attempt));
        wait_for("cancel", || attempt.cancel.is_cancelled());
        wait_for("more beats", || *count.lock().unwrap() >= 5);
        assert!(!attempt.is_lost());
        heartbeat.stop();
    }

    #[test]
    fn stale_token_marks_the_attempt_lost() {
        let attempt = Arc::new(Attempt::new(CancelHandle::new()));
        let (beat, count) = scripted(vec![Ok(false), Err(ClientError::StaleToken("x".into()))]);
        let heartbeat = Heartbeat::start(beat, Duration::from_millis(10), Arc::clone(&attempt));
        wait_for("lost", || attempt.is_lost());
        assert!(attempt.cancel.is_cancelled());
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(*count.lock().unwrap(), 2, "no beat after stale_token");
        heartbeat.stop();
    }

    #[test]
    fn stop_returns_without_waiting_for_the_interval() {
        let attempt = Arc::new(Attempt::new(CancelHandle::new()));
        let (beat, count) = scripted(Vec::new());
        let heartbeat = Heartbeat::start(beat, Duration::from_secs(60), attempt);
        let started = Instant::now();
        heartbeat.stop();
        assert!(started.elapsed() < Duration::from_secs(5));
        assert_eq!(*count.lock().unwrap(), 0);
    }
}
