//! Job logs for viewers: pages of stored lines, and a live tail over Server-Sent Events that
//! backfills everything a late viewer missed and resumes after `Last-Event-ID`.
//!
//! A stream reads from the store, never from memory, so every viewer sees the same ordered
//! lines whatever moment it joined; between reads it waits on the job's bell, which rings
//! when lines are appended or the job ends (and at least every few seconds, to send a
//! keep-alive and notice a job that ended on another path).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures_util::Stream;
use gantry_proto::v1 as proto;
use gantry_store::{JobId, JobStatus, LogLineRecord};
use tokio::sync::watch;

use crate::app::App;
use crate::convert::timestamp;
use crate::error::ApiError;

/// The default and largest page of log lines.
const MAX_LOG_PAGE: u32 = 10_000;
/// Lines a stream reads from the store at a time.
const STREAM_BATCH: u32 = 1_000;
/// The longest a stream waits without looking at the store.
const STREAM_POLL: Duration = Duration::from_secs(5);

fn wire_line(line: LogLineRecord) -> proto::JobLogLine {
    proto::JobLogLine {
        seq: u64::try_from(line.seq).unwrap_or(0),
        attempt: u32::try_from(line.attempt).unwrap_or(0),
        step: u32::try_from(line.step_index).unwrap_or(0),
        number: u64::try_from(line.line_number).unwrap_or(0),
        time: timestamp(line.time_ms),
        text: line.text,
    }
}

impl App {
    /// Rings the bell of a job's viewers.
    pub(crate) fn ring_log(&self, job: JobId) {
        let bells = self
            .log_bells
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(bell) = bells.get(&job) {
            bell.send_modify(|count| *count = count.wrapping_add(1));
        }
    }

    fn log_bell(&self, job: JobId) -> watch::Receiver<u64> {
        let mut bells = self
            .log_bells
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        // Bells nobody listens to any more are dropped as new ones are made.
        bells.retain(|_, bell| bell.receiver_count() > 0);
        bells
            .entry(job)
            .or_insert_with(|| watch::Sender::new(0))
            .subscribe()
    }

    /// `GET /jobs/{job}/logs`.
    pub async fn job_log(
        &self,
        job: i64,
        query: proto::LogQuery,
    ) -> Result<proto::JobLog, ApiError> {
        let limit = query.limit.unwrap_or(MAX_LOG_PAGE);
        if limit == 0 || limit > MAX_LOG_PAGE {
            return Err(ApiError::invalid_field(
                "limit",
                format!("between 1 and {MAX_LOG_PAGE}"),
            ));
        }
        let after = query
            .after
            .map(|after| i64::try_from(after).unwrap_or(i64::MAX));
        let job = self.store.get_job(JobId(job)).await?;
        let lines = self.store.read_log(job.id, after, limit).await?;
        Ok(proto::JobLog {
            lines: lines.into_iter().map(wire_line).collect(),
            complete: job.status == JobStatus::Completed,
        })
    }

    /// `GET /jobs/{job}/logs/stream`: the job's log as SSE events from after `last_seen`.
    pub async fn job_log_stream(
        self: Arc<App>,
        job: i64,
        last_seen: Option<i64>,
    ) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
        let job = self.store.get_job(JobId(job)).await?.id;
        let bell = self.log_bell(job);
        let start = Tail {
            app: self,
            job,
            after: last_seen,
            bell,
            pending: std::collections::VecDeque::new(),
            ended: false,
        };
        let stream = futures_util::stream::unfold(start, |mut tail| async move {
            let event = tail.next_event().await?;
            Some((Ok(event), tail))
        });
        Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
    }
}

/// One viewer's place in a job's log.
struct Tail {
    app: Arc<App>,
    job: JobId,
    after: Option<i64>,
    bell: watch::Receiver<u64>,
    pending: std::collections::VecDeque<LogLineRecord>,
    ended: bool,
}

impl Tail {
    /// The next event, or `None` once the end has been sent.
    async fn next_event(&mut self) -> Option<SseEvent> {
        loop {
            if let Some(line) = self.pending.pop_front() {
                self.after = Some(line.seq);
                let id = line.seq.to_string();
                let data = serde_json::to_string(&wire_line(line)).unwrap_or_default();
                return Some(SseEvent::default().event("line").id(id).data(data));
            }
            if self.ended {
                return None;
            }
            // Look at the status before reading: lines written before the end are all read.
            let completed = match self.app.store.get_job(self.job).await {
                Ok(job) => job.status == JobStatus::Completed,
                Err(error) => {
                    tracing::warn!(job_id = %self.job, error = %error, "log stream cannot read the job");
                    return None;
                }
            };
            match self
                .app
                .store
                .read_log(self.job, self.after, STREAM_BATCH)
                .await
            {
                Ok(lines) if !lines.is_empty() => {
                    self.pending.extend(lines);
                    continue;
                }
                Ok(_) => {}
                Err(error) => {
                    tracing::warn!(job_id = %self.job, error = %error, "log stream cannot read lines");
                    return None;
                }
            }
            if completed {
                self.ended = true;
                return Some(SseEvent::default().event("end").data("{}"));
            }
            let _ = tokio::time::timeout(STREAM_POLL, self.bell.changed()).await;
        }
    }
}
