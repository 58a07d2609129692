//! The agent's [`JobReporter`]: forwards a job's step reports and log lines to the server.
//!
//! The step runner calls the reporter on the job's own thread, in order. Waiting for the
//! network there would slow a step that prints fast to the speed of the server, so the reporter
//! only puts events on a bounded queue and a sender thread does the requests:
//!
//! - Log lines are batched into [`LogChunk`]s of at most [`MAX_LOG_LINES_PER_CHUNK`] lines and
//!   [`MAX_CHUNK_JSON_BYTES`] of JSON (so a chunk always fits the server's body limit), sent
//!   at the latest [`FLUSH_INTERVAL`] after their first line was queued, and always before a
//!   step report so a step's end follows its lines. A line longer than
//!   [`MAX_LOG_LINE_BYTES`] is split on a character boundary into several lines.
//! - Line numbers are the reporter's own: the n-th line *sent* for a step is number n, so the
//!   pieces of a split line keep numbers unique and contiguous.
//! - `offset` counts the attempt's lines sent before; the server's `stored` answer is the next
//!   offset. A chunk whose answer was lost is sent again as it was: the server stores it once.
//! - Annotations are sent as log lines in workflow-command form (`::error file=a.rs,line=3::msg`),
//!   and a step summary as one line `::summary::` followed by its Markdown lines each prefixed
//!   `::summary::`, since protocol v1 has no endpoint of their own; viewers show them as text.
//!
//! Memory is bounded: when [`MAX_QUEUED_BYTES`] of text wait, the producer blocks (the step's
//! output pipe fills and the step waits, as it would on a slow terminal). Output is never lost
//! silently: only when the queue stays full for [`MAX_PRODUCER_BLOCK`] (the server is down)
//! are lines dropped, and a line saying how many follows once the queue has room again.
//!
//! Transport failures are retried with backoff; a `stale_token` answer marks the attempt lost
//! and cancels the job (see [`Attempt`]); any other refusal drops that request with a warning.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use chrono::{DateTime, Utc};
use gantry_proto::v1::{
    LogChunk, LogChunkAccepted, LogLine as WireLine, MAX_LOG_LINE_BYTES, MAX_LOG_LINES_PER_CHUNK,
    StepReport, StepStatus,
};

use super::Attempt;
use super::client::{Backoff, ClientError, ProtocolClient};
use crate::steps::{
    Annotation, AnnotationLevel, JobReporter, JobResult, LogLine, StepInfo, StepResult,
};

/// The longest a log line waits before it is sent.
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(200);

/// The most JSON one chunk's lines may take: well under the server's 2 MB body limit.
pub const MAX_CHUNK_JSON_BYTES: usize = 1024 * 1024;

/// The most log text waiting to be sent before the producer blocks.
pub const MAX_QUEUED_BYTES: usize = 8 * 1024 * 1024;

/// The longest the producer blocks on a full queue before it drops lines (and says so).
pub const MAX_PRODUCER_BLOCK: Duration = Duration::from_secs(60);

/// Where the sender thread's requests go: the server, or a recorder in tests.
pub trait ReportSink: Send + 'static {
    /// Sends one chunk of log lines.
    fn send_chunk(&mut self, chunk: &LogChunk) -> Result<LogChunkAccepted, ClientError>;
    /// Sends one step report.
    fn send_step(&mut self, report: &StepReport) -> Result<(), ClientError>;
}

/// The server's runner endpoints for one job.
#[derive(Debug, Clone)]
pub struct ServerSink {
    /// The client.
    pub client: ProtocolClient,
    /// The job's id.
    pub job_id: i64,
}

impl ReportSink for ServerSink {
    fn send_chunk(&mut self, chunk: &LogChunk) -> Result<LogChunkAccepted, ClientError> {
        self.client.logs(self.job_id, chunk)
    }
    fn send_step(&mut self, report: &StepReport) -> Result<(), ClientError> {
        self.client.step(self.job_id, report)
    }
}

/// How the reporter batches and bounds (the defaults are the module's constants; tests use
/// small values).
#[derive(Debug, Clone, Copy)]
pub struct ReporterLimits {
    /// See [`FLUSH_INTERVAL`].
    pub flush_interval: Duration,
    /// See [`MAX_QUEUED_BYTES`].
    pub max_queued_bytes: usize,
    /// See [`MAX_PRODUCER_BLOCK`].
    pub max_producer_block: Duration,
    /// Pauses between retries of a failed request.
    pub backoff: Backoff,
}

impl Default for ReporterLimits {
    fn default() -> ReporterLimits {
        ReporterLimits {
            flush_interval: FLUSH_INTERVAL,
            max_queued_bytes: MAX_QUEUED_BYTES,
            max_producer_block: MAX_PRODUCER_BLOCK,
            backoff: Backoff::default(),
        }
    }
}

/// What the job thread hands the sender.
#[derive(Debug)]
enum Event {
    Line(WireLine),
    Step(StepReport),
}

#[derive(Debug, Default)]
struct Queue {
    events: VecDeque<Event>,
    /// Text bytes of the queued lines and of the chunk being sent.
    bytes: usize,
    /// When the oldest unsent line was queued.
    oldest_line: Option<Instant>,
    /// The job ended: send what is left and stop.
    finished: bool,
}

#[derive(Debug, Default)]
struct Shared {
    queue: Mutex<Queue>,
    /// Signalled when events arrive, when room frees up and at the end.
    changed: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        // A panic while holding the lock leaves a consistent queue (every change is one
        // statement), so a poisoned lock is still usable.
        self.queue
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }
}

/// What the sender did, for the agent's log.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReportStats {
    /// Log lines the server stored.
    pub lines_sent: u64,
    /// Log lines dropped because the server stayed unreachable or refused them.
    pub lines_dropped: u64,
}

/// The agent's reporter for one attempt (see the module docs).
pub struct AgentReporter {
    shared: Arc<Shared>,
    attempt: Arc<Attempt>,
    fencing_token: i64,
    limits: ReporterLimits,
    /// Lines sent so far per step, for line numbers.
    numbers: Vec<u64>,
    /// Lines dropped since the last one that got through.
    dropped: u64,
    sender: Option<JoinHandle<ReportStats>>,
}

impl AgentReporter {
    /// Starts the sender thread.
    pub fn start(
        sink: impl ReportSink,
        attempt: Arc<Attempt>,
        fencing_token: i64,
        limits: ReporterLimits,
    ) -> AgentReporter {
        let shared = Arc::new(Shared::default());
        let sender = {
            let shared = Arc::clone(&shared);
            let attempt = Arc::clone(&attempt);
            std::thread::Builder::new()
                .name("log-sender".to_owned())
                .spawn(move || {
                    Sender {
                        shared,
                        attempt,
                        sink,
                        limits,
                        fencing_token,
                        offset: 0,
                        stats: ReportStats::default(),
                    }
                    .run()
                })
        };
        let sender = match sender {
            Ok(handle) => Some(handle),
            Err(error) => {
                // Without a sender nothing can be reported; the attempt cannot be trusted.
                tracing::error!(%error, "cannot start the log sender thread");
                attempt.mark_lost();
                None
            }
        };
        AgentReporter {
            shared,
            attempt,
            fencing_token,
            limits,
            numbers: Vec::new(),
            dropped: 0,
            sender,
        }
    }

    /// Sends what is still queued and stops the sender; returns what it did.
    pub fn finish(mut self) -> ReportStats {
        self.shared.lock().finished = true;
        self.shared.changed.notify_all();
        let stats = match self.sender.take() {
            Some(sender) => sender.join().unwrap_or_else(|_| {
                tracing::error!("the log sender thread panicked");
                ReportStats::default()
            }),
            None => ReportStats::default(),
        };
        ReportStats {
            lines_dropped: stats.lines_dropped + self.dropped,
            ..stats
        }
    }

    fn next_number(&mut self, step: usize) -> u64 {
        if self.numbers.len() <= step {
            self.numbers.resize(step + 1, 0);
        }
        self.numbers[step] += 1;
        self.numbers[step]
    }

    /// Queues `text` as lines of `step` (split when too long), blocking while the queue is
    /// full.
    fn push_text(&mut self, step: usize, time: SystemTime, text: &str) {
        for piece in split_line(text, MAX_LOG_LINE_BYTES) {
            self.push_line(step, time, piece);
        }
    }

    fn push_line(&mut self, step: usize, time: SystemTime, text: &str) {
        if self.attempt.is_lost() || self.sender.is_none() {
            return;
        }
        // Once lines are being dropped the server is known to be stuck: waiting again for
        // every line would stall the step for the whole block time per line.
        let deadline = if self.dropped > 0 {
            Instant::now()
        } else {
            Instant::now() + self.limits.max_producer_block
        };
        let shared = Arc::clone(&self.shared);
        let mut queue = shared.lock();
        while queue.bytes >= self.limits.max_queued_bytes && !self.attempt.is_lost() {
            let now = Instant::now();
            if now >= deadline {
                drop(queue);
                self.dropped += 1;
                return;
            }
            queue = shared
                .changed
                .wait_timeout(queue, deadline - now)
                .map(|(queue, _)| queue)
                .unwrap_or_else(|poison| poison.into_inner().0);
        }
        let step_u32 = u32::try_from(step).unwrap_or(u32::MAX);
        if self.dropped > 0 {
            let notice = format!(
                "[gantry] {} log lines were dropped: the server could not take them",
                self.dropped
            );
            self.dropped = 0;
            let number = self.next_number(step);
            enqueue_line(&mut queue, wire_line(step_u32, number, time, notice));
        }
        let number = self.next_number(step);
        enqueue_line(
            &mut queue,
            wire_line(step_u32, number, time, text.to_owned()),
        );
        drop(queue);
        shared.changed.notify_all();
    }

    fn push_step(&mut self, report: StepReport) {
        if self.attempt.is_lost() {
            return;
        }
        self.shared.lock().events.push_back(Event::Step(report));
        self.shared.changed.notify_all();
    }
}

fn enqueue_line(queue: &mut Queue, line: WireLine) {
    queue.bytes += line.text.len();
    queue.oldest_line.get_or_insert_with(Instant::now);
    queue.events.push_back(Event::Line(line));
}

fn wire_line(step: u32, number: u64, time: SystemTime, text: String) -> WireLine {
    WireLine {
        step,
        number,
        time: DateTime::<Utc>::from(time),
        text,
    }
}

impl Drop for AgentReporter {
    fn drop(&mut self) {
        // Dropped without `finish` (the job thread unwinding): let the sender end on its own.
        self.shared.lock().finished = true;
        self.shared.changed.notify_all();
    }
}

impl JobReporter for AgentReporter {
    fn step_started(&mut self, step: &StepInfo) {
        self.push_step(StepReport {
            fencing_token: self.fencing_token,
            index: u32::try_from(step.index).unwrap_or(u32::MAX),
            name: step.name.clone(),
            status: StepStatus::InProgress,
            conclusion: None,
            outcome: None,
            error: None,
            time: Utc::now(),
        });
    }

    fn log_line(&mut self, line: &LogLine) {
        self.push_text(line.step, line.time, &line.text);
    }

    fn annotation(&mut self, annotation: &Annotation) {
        // The step's log already shows the message as a `##[error]` (or warning, notice)
        // line; the annotation adds a line only when it says where (file, line, title).
        let located =
            annotation.file.is_some() || annotation.line.is_some() || annotation.title.is_some();
        if !located {
            return;
        }
        self.push_text(
            annotation.step,
            SystemTime::now(),
            &annotation_line(annotation),
        );
    }

    fn step_summary(&mut self, step: usize, markdown: &str) {
        let now = SystemTime::now();
        self.push_text(step, now, "::summary::");
        for line in markdown.lines() {
            self.push_text(step, now, &format!("::summary::{line}"));
        }
    }

    fn step_ended(&mut self, result: &StepResult) {
        self.push_step(StepReport {
            fencing_token: self.fencing_token,
            index: u32::try_from(result.index).unwrap_or(u32::MAX),
            name: result.name.clone(),
            status: StepStatus::Completed,
            conclusion: Some(result.conclusion),
            outcome: Some(result.outcome),
            error: result.error.clone(),
            time: Utc::now(),
        });
    }

    fn job_ended(&mut self, _result: &JobResult) {
        // The agent sends the result itself, after `finish` has delivered every line.
    }
}

/// An annotation in workflow-command form, e.g. `::error file=a.rs,line=3,title=T::message`.
pub fn annotation_line(annotation: &Annotation) -> String {
    let level = match annotation.level {
        AnnotationLevel::Error => "error",
        AnnotationLevel::Warning => "warning",
        AnnotationLevel::Notice => "notice",
    };
    let mut properties = Vec::new();
    if let Some(title) = &annotation.title {
        properties.push(format!("title={title}"));
    }
    if let Some(file) = &annotation.file {
        properties.push(format!("file={file}"));
    }
    for (name, value) in [
        ("line", annotation.line),
        ("endLine", annotation.end_line),
        ("col", annotation.column),
        ("endColumn", annotation.end_column),
    ] {
        if let Some(value) = value {
            properties.push(format!("{name}={value}"));
        }
    }
    if properties.is_empty() {
        format!("::{level}::{}", annotation.message)
    } else {
        format!("::{level} {}::{}", properties.join(","), annotation.message)
    }
}

/// `text` cut into pieces of at most `max` bytes, each ending on a character boundary (a
/// character longer than `max` still makes one piece). An empty text is one empty piece.
pub fn split_line(text: &str, max: usize) -> Vec<&str> {
    let mut pieces = Vec::new();
    let mut rest = text;
    while rest.len() > max {
        let mut end = max;
        while end > 0 && !rest.is_char_boundary(end) {
            end -= 1;
        }
        if end == 0 {
            end = rest.chars().next().map_or(rest.len(), char::len_utf8);
        }
        let (piece, tail) = rest.split_at(end);
        pieces.push(piece);
        rest = tail;
    }
    if !rest.is_empty() || pieces.is_empty() {
        pieces.push(rest);
    }
    pieces
}

/// An upper bound of a line's size in a chunk's JSON: the text escaped, plus the fixed fields.
fn json_size(line: &WireLine) -> usize {
    let escaped: usize = line
        .text
        .chars()
        .map(|c| match c {
            '"' | '\\' | '\n' | '\r' | '\t' => 2,
            c if (c as u32) < 0x20 => 6,
            c => c.len_utf8(),
        })
        .sum();
    escaped + 100
}

/// The sender thread's state.
struct Sender<S> {
    shared: Arc<Shared>,
    attempt: Arc<Attempt>,
    sink: S,
    limits: ReporterLimits,
    fencing_token: i64,
    /// Lines of the attempt the server has: the next chunk's offset.
    offset: u64,
    stats: ReportStats,
}

/// What the sender takes off the queue in one go.
enum Work {
    Chunk(Vec<WireLine>, usize),
    Step(StepReport),
    Done,
}

impl<S: ReportSink> Sender<S> {
    fn run(mut self) -> ReportStats {
        loop {
            match self.next_work() {
                Work::Chunk(lines, bytes) => {
                    self.send_chunk(lines);
                    let mut queue = self.shared.lock();
                    queue.bytes = queue.bytes.saturating_sub(bytes);
                    drop(queue);
                    self.shared.changed.notify_all();
                }
                Work::Step(report) => self.send_step(&report),
                Work::Done => return self.stats,
            }
        }
    }

    /// Waits for something to send: a chunk when it is full, when its oldest line has waited
    /// long enough, before a step report, or at the end; else the next step report.
    fn next_work(&self) -> Work {
        let mut queue = self.shared.lock();
        loop {
            let lines_ahead = queue
                .events
                .iter()
                .take_while(|event| matches!(event, Event::Line(_)))
                .count();
            let due = queue
                .oldest_line
                .is_some_and(|oldest| oldest.elapsed() >= self.limits.flush_interval);
            let step_waits = lines_ahead < queue.events.len();
            if lines_ahead > 0
                && (due || step_waits || queue.finished || lines_ahead >= MAX_LOG_LINES_PER_CHUNK)
            {
                return self.take_chunk(&mut queue);
            }
            if lines_ahead == 0
                && let Some(Event::Step(report)) = queue.events.pop_front()
            {
                return Work::Step(report);
            }
            if queue.finished && queue.events.is_empty() {
                return Work::Done;
            }
            let wait = match queue.oldest_line {
                Some(oldest) => self.limits.flush_interval.saturating_sub(oldest.elapsed()),
                None => Duration::from_secs(3600),
            };
            queue = self
                .shared
                .changed
                .wait_timeout(queue, wait.max(Duration::from_millis(1)))
                .map(|(queue, _)| queue)
                .unwrap_or_else(|poison| poison.into_inner().0);
        }
    }

    /// Takes the leading lines of the queue, as many as one chunk holds.
    fn take_chunk(&self, queue: &mut Queue) -> Work {
        let mut lines = Vec::new();
        let mut json = 0;
        let mut bytes = 0;
        while lines.len() < MAX_LOG_LINES_PER_CHUNK {
            let size = match queue.events.front() {
                Some(Event::Line(line)) => json_size(line),
                _ => break,
            };
            if !lines.is_empty() && json + size > MAX_CHUNK_JSON_BYTES {
                break;
            }
            if let Some(Event::Line(line)) = queue.events.pop_front() {
                json += size;
                bytes += line.text.len();
                lines.push(line);
            }
        }
        // Lines left behind were queued after the ones taken, so keeping the oldest time can
        // only send them early, never late.
        if !queue
            .events
            .iter()
            .any(|event| matches!(event, Event::Line(_)))
        {
            queue.oldest_line = None;
        }
        Work::Chunk(lines, bytes)
    }

    fn send_chunk(&mut self, lines: Vec<WireLine>) {
        let count = lines.len() as u64;
        if self.attempt.is_lost() {
            // Taken from the queue after the attempt was lost: dropped, and counted as such
            // whichever came first, the sender's turn or the loss.
            self.stats.lines_dropped += count;
            return;
        }
        let chunk = LogChunk {
            fencing_token: self.fencing_token,
            offset: self.offset,
            lines,
        };
        let attempt = Arc::clone(&self.attempt);
        let sink = &mut self.sink;
        let result = self.limits.backoff.retry(
            "sending log lines",
            |_| attempt.is_lost(),
            || sink.send_chunk(&chunk),
        );
        match result {
            Ok(accepted) => {
                self.stats.lines_sent += count;
                // The server's count is the truth; it equals ours unless lines were lost.
                self.offset = accepted.stored.max(self.offset + count);
            }
            Err(error) => self.refused(error, count),
        }
    }

    fn send_step(&mut self, report: &StepReport) {
        if self.attempt.is_lost() {
            return;
        }
        let attempt = Arc::clone(&self.attempt);
        let sink = &mut self.sink;
        let result = self.limits.backoff.retry(
            "sending a step report",
            |_| attempt.is_lost(),
            || sink.send_step(report),
        );
        if let Err(error) = result {
            self.refused(error, 0);
        }
    }

    fn refused(&mut self, error: ClientError, lines: u64) {
        self.stats.lines_dropped += lines;
        match error {
            ClientError::StaleToken(message) => {
                tracing::warn!(%message, "the server no longer knows this attempt; stopping the job");
                self.attempt.mark_lost();
            }
            error => tracing::warn!(%error, lines, "the server refused a report; it is dropped"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::steps::CancelHandle;

    /// Records what was sent; fails the first `fail_first` requests with a transport error and
    /// answers `stale_token` from request `stale_from` on.
    #[derive(Clone, Default)]
    struct Recorder {
        sent: Arc<Mutex<Vec<Sent>>>,
        fail_first: usize,
        stale_from: Option<usize>,
        calls: usize,
    }

    #[derive(Debug, Clone)]
    enum Sent {
        Chunk(LogChunk),
        Step(StepReport),
    }

    impl Recorder {
        fn check(&mut self) -> Result<(), ClientError> {
            self.calls += 1;
            if self.calls <= self.fail_first {
                return Err(ClientError::Transport {
                    url: "u".into(),
                    message: "down".into(),
                });
            }
            if self.stale_from.is_some_and(|from| self.calls >= from) {
                return Err(ClientError::StaleToken("gone".into()));
            }
            Ok(())
        }
    }

    impl ReportSink for Recorder {
        fn send_chunk(&mut self, chunk: &LogChunk) -> Result<LogChunkAccepted, ClientError> {
            self.check()?;
            let mut sent = self.sent.lock().unwrap();
            let stored = sent
                .iter()
                .filter_map(|sent| match sent {
                    Sent::Chunk(chunk) => Some(chunk.lines.len() as u64),
                    Sent::Step(_) => None,
                })
                .sum::<u64>();
            assert_eq!(chunk.offset, stored, "a gap or an overlap");
            sent.push(Sent::Chunk(chunk.clone()));
            Ok(LogChunkAccepted {
                stored: stored + chunk.lines.len() as u64,
            })
        }
        fn send_step(&mut self, report: &StepReport) -> Result<(), ClientError> {
            self.check()?;
            self.sent.lock().unwrap().push(Sent::Step(report.clone()));
            Ok(())
        }
    }

    fn limits() -> ReporterLimits {
        ReporterLimits {
            flush_interval: Duration::from_millis(20),
            max_queued_bytes: 1024 * 1024,
            max_producer_block: Duration::from_secs(10),
            backoff: Backoff {
                first: Duration::from_millis(1),
                max: Duration::from_millis(5),
            },
        }
    }

    fn attempt() -> Arc<Attempt> {
        Arc::new(Attempt::new(CancelHandle::new()))
    }

    fn line(step: usize, number: u64, text: &str) -> LogLine {
        LogLine {
            step,
            number,
            time: SystemTime::now(),
            text: text.to_owned(),
        }
    }

    fn step(index: usize) -> StepInfo {
        StepInfo {
            index,
            id: None,
            name: format!("step {index}"),
        }
    }

    fn ended(index: usize) -> StepResult {
        StepResult {
            index,
            id: None,
            name: format!("step {index}"),
            outcome: gantry_proto::v1::Conclusion::Success,
            conclusion: gantry_proto::v1::Conclusion::Success,
            error: None,
        }
    }

    #[test]
    fn lines_arrive_in_order_in_contiguous_chunks_between_step_reports() {
        let recorder = Recorder {
            fail_first: 2,
            ..Recorder::default()
        };
        let sent = Arc::clone(&recorder.sent);
        let mut reporter = AgentReporter::start(recorder, attempt(), 7, limits());
        let mut expected = Vec::new();
        for index in 0..2 {
            reporter.step_started(&step(index));
            for n in 1..=2_500u64 {
                let text = format!("step {index} line {n}");
                reporter.log_line(&line(index, n, &text));
                expected.push(text);
            }
            reporter.step_ended(&ended(index));
        }
        let stats = reporter.finish();
        assert_eq!(stats.lines_sent, 5_000);
        assert_eq!(stats.lines_dropped, 0);

        let sent = sent.lock().unwrap();
        let mut texts = Vec::new();
        let mut current_step = None;
        for item in sent.iter() {
            match item {
                Sent::Step(report) => match report.status {
                    StepStatus::InProgress => current_step = Some(report.index),
                    StepStatus::Completed => {
                        assert_eq!(current_step, Some(report.index));
                        // Every line of the step was sent before its end.
                        let count = texts
                            .iter()
                            .filter(|t: &&String| t.starts_with(&format!("step {} ", report.index)))
                            .count();
                        assert_eq!(count, 2_500);
                        current_step = None;
                    }
                },
                Sent::Chunk(chunk) => {
                    assert!(chunk.lines.len() <= MAX_LOG_LINES_PER_CHUNK);
                    assert!(!chunk.lines.is_empty());
                    assert_eq!(chunk.fencing_token, 7);
                    for line in &chunk.lines {
                        assert_eq!(Some(line.step), current_step);
                        texts.push(line.text.clone());
                    }
                }
            }
        }
        assert_eq!(texts, expected);
    }

    #[test]
    fn long_lines_are_split_and_numbered_contiguously() {
        let recorder = Recorder::default();
        let sent = Arc::clone(&recorder.sent);
        let mut reporter = AgentReporter::start(recorder, attempt(), 1, limits());
        let long = "é".repeat(MAX_LOG_LINE_BYTES); // 2 bytes each: two full pieces
        reporter.log_line(&line(0, 1, "first"));
        reporter.log_line(&line(0, 2, &long));
        reporter.log_line(&line(0, 3, "last"));
        reporter.finish();
        let lines: Vec<WireLine> = sent
            .lock()
            .unwrap()
            .iter()
            .flat_map(|sent| match sent {
                Sent::Chunk(chunk) => chunk.lines.clone(),
                Sent::Step(_) => Vec::new(),
            })
            .collect();
        assert_eq!(lines.len(), 4);
        assert_eq!(
            lines.iter().map(|l| l.number).collect::<Vec<_>>(),
            [1, 2, 3, 4]
        );
        assert!(lines.iter().all(|l| l.text.len() <= MAX_LOG_LINE_BYTES));
        assert_eq!(format!("{}{}", lines[1].text, lines[2].text), long);
        assert_eq!(lines[3].text, "last");
    }

    #[test]
    fn chunks_stay_under_the_body_limit() {
        let recorder = Recorder::default();
        let sent = Arc::clone(&recorder.sent);
        let mut reporter = AgentReporter::start(recorder, attempt(), 1, limits());
        let wide = "\"".repeat(60 * 1024); // escapes to twice its size
        for n in 0..40 {
            reporter.log_line(&line(0, n, &wide));
        }
        reporter.finish();
        let sent = sent.lock().unwrap();
        assert!(sent.len() > 1);
        for item in sent.iter() {
            if let Sent::Chunk(chunk) = item {
                assert!(serde_json::to_vec(chunk).unwrap().len() <= MAX_CHUNK_JSON_BYTES + 200);
            }
        }
    }

    #[test]
    fn lines_are_flushed_within_the_interval_while_the_step_runs() {
        let recorder = Recorder::default();
        let sent = Arc::clone(&recorder.sent);
        let mut reporter = AgentReporter::start(recorder, attempt(), 1, limits());
        reporter.log_line(&line(0, 1, "hello"));
        let deadline = Instant::now() + Duration::from_secs(5);
        while sent.lock().unwrap().is_empty() {
            assert!(Instant::now() < deadline, "not flushed");
            std::thread::sleep(Duration::from_millis(5));
        }
        reporter.finish();
    }

    #[test]
    fn a_stale_token_marks_the_attempt_lost_and_cancels() {
        let recorder = Recorder {
            stale_from: Some(1),
            ..Recorder::default()
        };
        let attempt = attempt();
        let mut reporter = AgentReporter::start(recorder, Arc::clone(&attempt), 1, limits());
        reporter.step_started(&step(0));
        reporter.log_line(&line(0, 1, "x"));
        let stats = reporter.finish();
        assert!(attempt.is_lost());
        assert!(attempt.cancel.is_cancelled());
        assert_eq!(stats.lines_sent, 0);
    }

    #[test]
    fn a_full_queue_drops_lines_only_after_blocking_and_says_so() {
        // The server never answers within the test: every request fails.
        let recorder = Recorder {
            fail_first: usize::MAX,
            ..Recorder::default()
        };
        let attempt = attempt();
        let mut reporter = AgentReporter::start(
            recorder,
            Arc::clone(&attempt),
            1,
            ReporterLimits {
                max_queued_bytes: 10,
                max_producer_block: Duration::from_millis(30),
                ..limits()
            },
        );
        reporter.log_line(&line(0, 1, "0123456789ab"));
        let started = Instant::now();
        reporter.log_line(&line(0, 2, "dropped"));
        assert!(started.elapsed() >= Duration::from_millis(30));
        assert_eq!(reporter.dropped, 1);
        // While the queue stays full, later lines are dropped without waiting again.
        let started = Instant::now();
        for n in 3..100 {
            reporter.log_line(&line(0, n, "dropped too"));
        }
        assert!(started.elapsed() < Duration::from_millis(500));
        assert_eq!(reporter.dropped, 98);
        // Let the sender give up so `finish` returns.
        attempt.mark_lost();
        let stats = reporter.finish();
        assert_eq!(stats.lines_dropped, 99);
    }

    #[test]
    fn annotations_use_the_workflow_command_form() {
        let annotation = Annotation {
            step: 0,
            level: AnnotationLevel::Error,
            message: "bad".into(),
            title: Some("T".into()),
            file: Some("a.rs".into()),
            line: Some(3),
            end_line: None,
            column: Some(2),
            end_column: None,
        };
        assert_eq!(
            annotation_line(&annotation),
            "::error title=T,file=a.rs,line=3,col=2::bad"
        );
        let bare = Annotation {
            level: AnnotationLevel::Notice,
            title: None,
            file: None,
            line: None,
            column: None,
            ..annotation
        };
        assert_eq!(annotation_line(&bare), "::notice::bad");
    }

    #[test]
    fn split_line_respects_char_boundaries() {
        assert_eq!(split_line("", 4), [""]);
        assert_eq!(split_line("abcd", 4), ["abcd"]);
        assert_eq!(split_line("abcdefghi", 4), ["abcd", "efgh", "i"]);
        assert_eq!(split_line("aéé", 2), ["a", "é", "é"]);
        assert_eq!(split_line("€€", 2), ["€", "€"]); // a 3-byte char longer than max
    }
}
