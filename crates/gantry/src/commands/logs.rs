//! `gantry logs JOB [-f]`: a job's log, as stored or followed live.
//!
//! Without `-f` it prints the stored lines (`GET /jobs/{job}/logs`, paged with `after` and
//! `limit`) and exits. With `-f` it follows the Server-Sent Events stream
//! (`GET /jobs/{job}/logs/stream`) until the server's `end` event; a dropped connection is
//! resumed with `Last-Event-ID` (the last line's `seq`), so no line is printed twice or missed.
//!
//! Output contract: for people, one line per log line on stdout, `[step N] text` with N the
//! step's 1-based position (as the job's page on a web UI numbers steps), prefixed
//! `[attempt A] ` when the line comes from a later attempt than the first; with `--json`, each
//! line is a `JobLogLine` object (`seq`, `attempt`, `step` 0-based, `number`, `time`, `text`) on
//! its own line. Exit codes: 0, 1 when the server refuses (unknown job), 2 when it cannot be
//! reached.

use std::io::{BufRead, BufReader};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use gantry_proto::v1::{ErrorBody, JobLog, JobLogLine};

use super::client::{Client, Reply};
use crate::output;

/// Lines asked for per page.
const PAGE: u32 = 1_000;

/// How many times in a row a broken stream is reconnected without any new line before giving
/// up.
const MAX_RECONNECTS: u32 = 10;

/// Arguments of `gantry logs`.
#[derive(Debug, Args)]
pub struct LogsArgs {
    /// The server's URL (default `$GANTRY_SERVER`, else http://127.0.0.1:8080).
    #[arg(long, value_name = "URL")]
    server: Option<String>,
    /// Follow the log live until the job ends.
    #[arg(short, long)]
    follow: bool,
    /// Print each line as a JSON object.
    #[arg(long)]
    json: bool,
    /// The job's id.
    job: i64,
}

/// `gantry logs`.
pub fn run(args: LogsArgs) -> anyhow::Result<ExitCode> {
    let client = Client::new(args.server.as_deref());
    let print = |line: &JobLogLine| print_line(line, args.json);
    let result = if args.follow {
        follow(&client, args.job, print)
    } else {
        stored(&client, args.job, print)
    };
    match result {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(Failure::Refused(error)) => {
            output::error(&error.to_string());
            Ok(ExitCode::from(1))
        }
        Err(Failure::Other(error)) => Err(error),
    }
}

enum Failure {
    Refused(ErrorBody),
    Other(anyhow::Error),
}

impl From<anyhow::Error> for Failure {
    fn from(error: anyhow::Error) -> Failure {
        Failure::Other(error)
    }
}

fn print_line(line: &JobLogLine, json: bool) {
    if json {
        match serde_json::to_value(line) {
            Ok(value) => output::json_line(&value),
            Err(error) => output::error(&format!("cannot print a line as JSON: {error}")),
        }
    } else {
        output::line(&human_line(line));
    }
}

/// A line for people: `[step N] text`, steps numbered from 1.
pub fn human_line(line: &JobLogLine) -> String {
    let step = u64::from(line.step) + 1;
    if line.attempt > 1 {
        format!("[attempt {}] [step {step}] {}", line.attempt, line.text)
    } else {
        format!("[step {step}] {}", line.text)
    }
}

/// Every stored line, page by page.
fn stored(client: &Client, job: i64, mut print: impl FnMut(&JobLogLine)) -> Result<(), Failure> {
    let mut after: Option<u64> = None;
    loop {
        let query = match after {
            Some(seq) => format!("?after={seq}&limit={PAGE}"),
            None => format!("?limit={PAGE}"),
        };
        let page = match client.get::<JobLog>(&format!("/jobs/{job}/logs{query}"))? {
            Reply::Ok(page, _) => page,
            Reply::Refused(error, _) => return Err(Failure::Refused(error)),
        };
        for line in &page.lines {
            print(line);
        }
        match page.lines.last() {
            Some(last) => after = Some(last.seq),
            None => return Ok(()),
        }
    }
}

/// Follows a job's log to its end for another command (`gantry run`, `gantry watch`): the
/// same resumed stream as `-f`, with a refusal as an error.
pub(crate) fn stream(
    client: &Client,
    job: i64,
    print: impl FnMut(&JobLogLine),
) -> anyhow::Result<()> {
    follow(client, job, print).map_err(|failure| match failure {
        Failure::Refused(error) => {
            anyhow::anyhow!("the server refused the log of job {job}: {error}")
        }
        Failure::Other(error) => error,
    })
}

/// The stream, until `event: end`, reconnecting after the last seen line when it breaks.
fn follow(client: &Client, job: i64, mut print: impl FnMut(&JobLogLine)) -> Result<(), Failure> {
    let url = client.url(&format!("/jobs/{job}/logs/stream"));
    // The stream stays open as long as the job runs: no overall timeout, only for connecting.
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_connect(Some(Duration::from_secs(10)))
        .build()
        .into();
    let mut last_seq: Option<u64> = None;
    let mut failures = 0u32;
    loop {
        let mut request = agent.get(&url).header("accept", "text/event-stream");
        if let Some(seq) = last_seq {
            request = request.header("last-event-id", seq.to_string());
        }
        let problem = match request.call() {
            Ok(mut response) if response.status() == 200 => {
                let reader = BufReader::new(response.body_mut().as_reader());
                let before = last_seq;
                match read_stream(reader, &mut last_seq, &mut print) {
                    Ok(true) => return Ok(()),
                    Ok(false) => {
                        if last_seq != before {
                            failures = 0;
                        }
                        "the server closed the stream before the job ended".to_owned()
                    }
                    Err(error) => {
                        if last_seq != before {
                            failures = 0;
                        }
                        format!("{error:#}")
                    }
                }
            }
            Ok(mut response) => {
                let status = response.status().as_u16();
                let text = response.body_mut().read_to_string().unwrap_or_default();
                match serde_json::from_str::<ErrorBody>(&text) {
                    Ok(error) if status < 500 => return Err(Failure::Refused(error)),
                    _ if status < 500 => {
                        return Err(anyhow::anyhow!("`{url}` answered {status}: {text}").into());
                    }
                    _ => format!("`{url}` answered {status}"),
                }
            }
            Err(error) => format!("cannot reach the server at `{url}`: {error}"),
        };
        failures += 1;
        if failures > MAX_RECONNECTS {
            return Err(anyhow::anyhow!(
                "{problem}; giving up after {MAX_RECONNECTS} reconnections"
            )
            .into());
        }
        output::message(&format!("{problem}; reconnecting"));
        std::thread::sleep(Duration::from_millis(250 * u64::from(failures.min(8))));
    }
}

/// Reads one connection's events: prints each new line and remembers its seq. `Ok(true)` at
/// the `end` event, `Ok(false)` when the stream ends without it.
fn read_stream(
    mut reader: impl BufRead,
    last_seq: &mut Option<u64>,
    print: &mut impl FnMut(&JobLogLine),
) -> anyhow::Result<bool> {
    let mut parser = SseParser::default();
    let mut text = String::new();
    loop {
        text.clear();
        let read = reader
            .read_line(&mut text)
            .context("the log stream broke")?;
        if read == 0 {
            return Ok(false);
        }
        let Some(event) = parser.push_line(&text) else {
            continue;
        };
        match event.event.as_str() {
            "line" => {
                let line: JobLogLine = serde_json::from_str(&event.data)
                    .with_context(|| format!("unexpected event data: {}", event.data))?;
                // A server that resumes one line early must not make us print it twice.
                if last_seq.is_none_or(|last| line.seq > last) {
                    print(&line);
                    *last_seq = Some(line.seq);
                }
            }
            "end" => return Ok(true),
            other => {
                if other != "message" {
                    bail!("unexpected event `{other}` in the log stream");
                }
            }
        }
    }
}

/// One Server-Sent Event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// `id:`, when the event had one.
    pub id: Option<String>,
    /// `event:` (`message` when absent, as the standard says).
    pub event: String,
    /// The `data:` lines, joined with line breaks.
    pub data: String,
}

/// The Server-Sent Events wire format, one line at a time (the WHATWG rules the server
/// needs: fields `id`, `event`, `data`, comments, a blank line ending an event).
#[derive(Debug, Default)]
pub struct SseParser {
    id: Option<String>,
    event: Option<String>,
    data: Vec<String>,
}

impl SseParser {
    /// Takes one line (with or without its line break); returns the event a blank line ends.
    pub fn push_line(&mut self, line: &str) -> Option<SseEvent> {
        let line = line.strip_suffix('\n').unwrap_or(line);
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() {
            if self.data.is_empty() && self.event.is_none() {
                self.id = None;
                return None;
            }
            let event = SseEvent {
                id: self.id.take(),
                event: self.event.take().unwrap_or_else(|| "message".to_owned()),
                data: std::mem::take(&mut self.data).join("\n"),
            };
            return Some(event);
        }
        if line.starts_with(':') {
            return None; // a comment: `: keep-alive`
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line, ""),
        };
        match field {
            "id" => self.id = Some(value.to_owned()),
            "event" => self.event = Some(value.to_owned()),
            "data" => self.data.push(value.to_owned()),
            _ => {} // `retry` and unknown fields are ignored
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(stream: &str) -> Vec<SseEvent> {
        let mut parser = SseParser::default();
        stream
            .split_inclusive('\n')
            .filter_map(|line| parser.push_line(line))
            .collect()
    }

    fn line_json(seq: u64, step: u32, text: &str) -> String {
        format!(
            r#"{{"seq":{seq},"attempt":1,"step":{step},"number":{},"time":"2026-01-01T00:00:00Z","text":"{text}"}}"#,
            seq + 1
        )
    }

    #[test]
    fn parses_events_comments_and_crlf() {
        let stream = format!(
            ": keep-alive\n\nid: 0\nevent: line\ndata: {}\n\n: keep-alive\nid: 1\r\nevent: line\r\ndata:{}\r\n\r\nevent: end\ndata: {{}}\n\n",
            line_json(0, 0, "a"),
            line_json(1, 0, "b")
        );
        let parsed = events(&stream);
        assert_eq!(parsed.len(), 3);
        assert_eq!(parsed[0].id.as_deref(), Some("0"));
        assert_eq!(parsed[0].event, "line");
        assert_eq!(parsed[0].data, line_json(0, 0, "a"));
        assert_eq!(parsed[1].id.as_deref(), Some("1"));
        assert_eq!(parsed[1].data, line_json(1, 0, "b"));
        assert_eq!(parsed[2].event, "end");
        assert_eq!(parsed[2].data, "{}");
    }

    #[test]
    fn multi_line_data_and_default_event() {
        let parsed = events("data: one\ndata: two\nretry: 10\n\n");
        assert_eq!(
            parsed,
            [SseEvent {
                id: None,
                event: "message".into(),
                data: "one\ntwo".into()
            }]
        );
    }

    #[test]
    fn read_stream_prints_new_lines_once_and_stops_at_end() {
        let stream = format!(
            "id: 4\nevent: line\ndata: {}\n\nid: 5\nevent: line\ndata: {}\n\nevent: end\ndata: {{}}\n\n",
            line_json(4, 1, "old"),
            line_json(5, 1, "new")
        );
        let mut printed = Vec::new();
        let mut last = Some(4);
        let ended = read_stream(stream.as_bytes(), &mut last, &mut |line: &JobLogLine| {
            printed.push(human_line(line))
        })
        .unwrap();
        assert!(ended);
        assert_eq!(printed, ["[step 2] new"]);
        assert_eq!(last, Some(5));

        let mut last = None;
        let cut = format!(
            "id: 0\nevent: line\ndata: {}\n\nid: 1\nevent: li",
            line_json(0, 0, "a")
        );
        let ended = read_stream(cut.as_bytes(), &mut last, &mut |_: &JobLogLine| {}).unwrap();
        assert!(!ended, "a stream cut before `end` is resumed, not finished");
        assert_eq!(last, Some(0));
    }

    /// A stream server whose first connection breaks after two lines; the second must resume
    /// after seq 1 and gets the last line and the end.
    #[test]
    fn follow_resumes_a_broken_stream_with_last_event_id() {
        use std::io::{BufRead, BufReader, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let server = std::thread::spawn(move || {
            let mut resumed_after = Vec::new();
            for (connection, stream) in listener.incoming().take(2).enumerate() {
                let mut stream = stream.unwrap();
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut request = String::new();
                loop {
                    let mut header = String::new();
                    reader.read_line(&mut header).unwrap();
                    if header.trim().is_empty() {
                        break;
                    }
                    request.push_str(&header);
                }
                assert!(
                    request.starts_with("GET /api/v1/jobs/9/logs/stream "),
                    "{request}"
                );
                resumed_after.push(request.lines().find_map(|h| {
                    h.to_ascii_lowercase()
                        .strip_prefix("last-event-id:")
                        .map(|v| v.trim().to_owned())
                }));
                let events = if connection == 0 {
                    format!(
                        ": keep-alive\n\nid: 0\nevent: line\ndata: {}\n\nid: 1\nevent: line\ndata: {}\n\n",
                        line_json(0, 0, "a"),
                        line_json(1, 0, "b")
                    )
                } else {
                    format!(
                        "id: 2\nevent: line\ndata: {}\n\nevent: end\ndata: {{}}\n\n",
                        line_json(2, 1, "c")
                    )
                };
                // No length: the body ends when the connection closes, as a broken stream does.
                write!(
                    stream,
                    "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n{events}"
                )
                .unwrap();
            }
            resumed_after
        });
        let client = Client::new(Some(&url));
        let mut printed = Vec::new();
        let result = follow(&client, 9, |line: &JobLogLine| {
            printed.push(human_line(line))
        });
        assert!(result.is_ok());
        assert_eq!(printed, ["[step 1] a", "[step 1] b", "[step 2] c"]);
        assert_eq!(server.join().unwrap(), [None, Some("1".to_owned())]);
    }

    #[test]
    fn human_lines_name_the_step_and_later_attempts() {
        let line: JobLogLine = serde_json::from_str(&line_json(0, 2, "hello")).unwrap();
        assert_eq!(human_line(&line), "[step 3] hello");
        let retried = JobLogLine { attempt: 2, ..line };
        assert_eq!(human_line(&retried), "[attempt 2] [step 3] hello");
    }
}
