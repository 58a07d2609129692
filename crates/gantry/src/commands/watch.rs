//! `gantry watch RUN...`: follows runs on a server to their end — a live tree of jobs on a
//! terminal, plain lines otherwise (`output::progress` says how each is shown), each job's log
//! streamed as it is written — then each run's conclusion; exits 0 when every run succeeded
//! and 1 otherwise. `gantry run` follows its runs with the same [`follow`].
//!
//! How: the runs are polled (`GET /runs/{run}`, every 150 ms) for their jobs' states and
//! waiting reasons; each job that starts gets a thread reading its log stream (the SSE stream
//! of `gantry logs -f`, resumed with `Last-Event-ID` when it breaks) that sends lines back
//! over a channel. A job's end is shown only once its stream has ended (the server ends it
//! after the job's last line), so a job's lines always come before its end, and a run's end
//! comes after all of its jobs'. A server that cannot answer for a while (a restart) is asked
//! again for up to 30 s. `--json` prints only each finished run (`RunDetail`) as a JSON
//! line on stdout.

use std::collections::{HashMap, HashSet};
use std::process::ExitCode;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::bail;
use clap::Args;
use gantry_proto::v1 as proto;

use super::client::{Client, Reply};
use crate::output::progress::{Mode, Progress};

/// How often the runs are asked for their jobs' states.
const POLL: Duration = Duration::from_millis(150);

/// How long the server may stay unreachable (a restart, a network blip) before following
/// stops with an error; log streams resume on their own.
const GIVE_UP_AFTER: Duration = Duration::from_secs(30);

/// Arguments of `gantry watch`.
#[derive(Debug, Args)]
pub struct WatchArgs {
    /// The server's URL (default `$GANTRY_SERVER`, else http://127.0.0.1:8080).
    #[arg(long, value_name = "URL")]
    server: Option<String>,
    /// Print each finished run as a JSON line instead of the jobs and their logs.
    #[arg(long)]
    json: bool,
    /// The runs to follow.
    #[arg(required = true)]
    runs: Vec<i64>,
}

/// `gantry watch`.
pub fn run(args: WatchArgs) -> anyhow::Result<ExitCode> {
    let client = Client::new(args.server.as_deref());
    let succeeded = follow(&client, &args.runs, Mode::for_stdout(args.json))?;
    Ok(if succeeded {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// A run's state: `Ok(Err(problem))` when the server cannot answer this time (unreachable, or
/// a 5xx while it restarts), an error when it refuses (an unknown run).
fn poll(client: &Client, run: i64) -> anyhow::Result<Result<proto::RunDetail, String>> {
    match client.get::<proto::RunDetail>(&format!("/runs/{run}")) {
        Ok(Reply::Ok(detail, _)) => Ok(Ok(detail)),
        Ok(Reply::Refused(error, status)) if status >= 500 => {
            Ok(Err(format!("the server answered {status}: {error}")))
        }
        Ok(Reply::Refused(error, status)) => bail!("the server refused ({status}): {error}"),
        Err(error) => Ok(Err(format!("{error:#}"))),
    }
}

/// What a log-stream thread sends back.
enum Streamed {
    /// One line of the job's log.
    Line(i64, proto::JobLogLine),
    /// The job's stream ended: after its last line, or with this error.
    Ended(i64, Option<String>),
}

/// Where a job's log stream is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stream {
    NotStarted,
    Open,
    Ended,
}

/// A job as last seen, with its stream and whether its end has been shown.
struct Tracked {
    job: proto::Job,
    stream: Stream,
    end_shown: bool,
}

/// Shows the runs' jobs and logs in `mode` until every run has completed and every ended
/// job's log has been shown; whether every run succeeded.
pub fn follow(client: &Client, runs: &[i64], mode: Mode) -> anyhow::Result<bool> {
    let mut progress = Progress::new(mode, runs.len());
    let (sender, receiver) = mpsc::channel::<Streamed>();
    let mut jobs: HashMap<i64, Tracked> = HashMap::new();
    let mut appeared: Vec<i64> = Vec::new();
    let mut done: HashSet<i64> = HashSet::new();
    let mut streams = Vec::new();
    let mut all_success = true;
    let mut unreachable_since: Option<Instant> = None;
    while done.len() < runs.len() {
        for &run in runs {
            if done.contains(&run) {
                continue;
            }
            let detail = match poll(client, run)? {
                Ok(detail) => {
                    unreachable_since = None;
                    detail
                }
                Err(problem) => {
                    let since = *unreachable_since.get_or_insert_with(Instant::now);
                    if since.elapsed() > GIVE_UP_AFTER {
                        bail!("{problem}; gave up after {}s", GIVE_UP_AFTER.as_secs());
                    }
                    progress.note(&format!("{problem}; retrying"));
                    std::thread::sleep(POLL);
                    continue;
                }
            };
            if !appeared.contains(&run) {
                progress.run_appeared(&detail.run);
                appeared.push(run);
            }
            let now = chrono::Utc::now();
            for job in &detail.jobs {
                let tracked = jobs.entry(job.id).or_insert_with(|| Tracked {
                    job: job.clone(),
                    stream: Stream::NotStarted,
                    end_shown: false,
                });
                tracked.job = job.clone();
                progress.job_changed(job, now);
                let started = job.status == proto::JobStatus::InProgress
                    || (job.status == proto::JobStatus::Completed && job.started_at.is_some());
                if started && tracked.stream == Stream::NotStarted && mode != Mode::Json {
                    tracked.stream = Stream::Open;
                    streams.push(start_stream(client, job.id, sender.clone()));
                }
                if job.status == proto::JobStatus::Completed
                    && tracked.stream != Stream::Open
                    && !tracked.end_shown
                {
                    progress.job_ended(job);
                    tracked.end_shown = true;
                }
            }
            let every_end_shown = detail
                .jobs
                .iter()
                .all(|job| jobs.get(&job.id).is_some_and(|tracked| tracked.end_shown));
            if detail.run.status == proto::RunStatus::Completed && every_end_shown {
                all_success &= detail.run.conclusion == Some(proto::Conclusion::Success);
                progress.run_ended(&detail)?;
                done.insert(run);
            }
        }
        if done.len() == runs.len() {
            break;
        }
        // Take log lines as they come until the next poll; the live tree draws them once per
        // poll, as redrawing it for each line of a noisy job costs more than the job.
        let next_poll = Instant::now() + POLL;
        while let Some(wait) = next_poll.checked_duration_since(Instant::now()) {
            let Ok(streamed) = receiver.recv_timeout(wait) else {
                break;
            };
            handle(streamed, &mut jobs, &mut progress);
        }
        progress.flush();
    }
    // Every stream has ended by now (each ended job's end waited for its stream).
    for stream in streams {
        let _ = stream.join();
    }
    Ok(all_success)
}

/// Shows what a log stream sent.
fn handle(streamed: Streamed, jobs: &mut HashMap<i64, Tracked>, progress: &mut Progress) {
    match streamed {
        Streamed::Line(job, line) => {
            if let Some(tracked) = jobs.get(&job) {
                progress.log_line(&tracked.job, &line);
            }
        }
        Streamed::Ended(job, problem) => {
            let Some(tracked) = jobs.get_mut(&job) else {
                return;
            };
            tracked.stream = Stream::Ended;
            if let Some(problem) = problem {
                progress.note(&format!(
                    "the log of {} stopped: {problem}",
                    tracked.job.name
                ));
            }
            if tracked.job.status == proto::JobStatus::Completed && !tracked.end_shown {
                progress.job_ended(&tracked.job);
                tracked.end_shown = true;
            }
        }
    }
}

/// A thread that streams job `job`'s log into `sender` until the job ends.
fn start_stream(
    client: &Client,
    job: i64,
    sender: mpsc::Sender<Streamed>,
) -> std::thread::JoinHandle<()> {
    let client = Client::new(Some(client.server()));
    std::thread::spawn(move || {
        let result = super::logs::stream(&client, job, |line| {
            let _ = sender.send(Streamed::Line(job, line.clone()));
        });
        let _ = sender.send(Streamed::Ended(
            job,
            result.err().map(|error| format!("{error:#}")),
        ));
    })
}
