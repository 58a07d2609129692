//! `gantry watch RUN...`: follows runs on a server to their end, printing each job as it
//! starts and as it ends (with its log), then each run's conclusion; exits 0 when every run
//! succeeded and 1 otherwise. `gantry run` prints its runs the same way.

use std::collections::{BTreeMap, HashMap};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::bail;
use clap::Args;
use gantry_proto::v1 as proto;

use super::client::{Client, Reply};
use crate::output;

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
    let succeeded = follow(&client, &args.runs, args.json)?;
    Ok(if succeeded {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn expect_ok<T>(reply: Reply<T>) -> anyhow::Result<T> {
    match reply {
        Reply::Ok(value, _) => Ok(value),
        Reply::Refused(error, status) => bail!("the server refused ({status}): {error}"),
    }
}

/// Prints job starts and ends (with the job's log) until every run has completed; whether
/// every run succeeded.
pub fn follow(client: &Client, runs: &[i64], json: bool) -> anyhow::Result<bool> {
    let started = Instant::now();
    let mut seen: HashMap<i64, proto::JobStatus> = HashMap::new();
    let mut done: BTreeMap<i64, proto::RunDetail> = BTreeMap::new();
    while done.len() < runs.len() {
        for &run in runs {
            if done.contains_key(&run) {
                continue;
            }
            let detail: proto::RunDetail = expect_ok(client.get(&format!("/runs/{run}"))?)?;
            for job in &detail.jobs {
                let before = seen.insert(job.id, job.status);
                if before == Some(job.status) || json {
                    continue;
                }
                match job.status {
                    proto::JobStatus::InProgress => {
                        output::line(&format!("  ● {} started", job.name));
                    }
                    proto::JobStatus::Completed => print_ended(client, job)?,
                    proto::JobStatus::Waiting | proto::JobStatus::Queued => {}
                }
            }
            if detail.run.status == proto::RunStatus::Completed {
                done.insert(run, detail);
            }
        }
        std::thread::sleep(Duration::from_millis(150));
    }
    let mut all_success = true;
    for detail in done.values() {
        let conclusion = detail
            .run
            .conclusion
            .map_or("none", |conclusion| conclusion.as_str());
        all_success &= detail.run.conclusion == Some(proto::Conclusion::Success);
        if json {
            output::json_line(&serde_json::to_value(detail)?);
        } else {
            output::line(&format!(
                "run {} {}: {conclusion} in {:.1}s",
                detail.run.id,
                detail.run.workflow_name,
                started.elapsed().as_secs_f64()
            ));
            for line in super::runs::workflow_error_lines(&detail.run) {
                output::line(&format!("  {line}"));
            }
        }
    }
    Ok(all_success)
}

/// One ended job: its mark, conclusion and log.
fn print_ended(client: &Client, job: &proto::Job) -> anyhow::Result<()> {
    let conclusion = job
        .conclusion
        .map_or("none", |conclusion| conclusion.as_str());
    let mark = match job.conclusion {
        Some(proto::Conclusion::Success) => "✓",
        Some(proto::Conclusion::Skipped) => "−",
        Some(proto::Conclusion::Cancelled) => "⊘",
        _ => "✗",
    };
    let why = job
        .message
        .as_deref()
        .map(|message| format!(" — {message}"))
        .unwrap_or_default();
    output::line(&format!("  {mark} {} {conclusion}{why}", job.name));
    if job.conclusion == Some(proto::Conclusion::Skipped) {
        return Ok(());
    }
    let log: proto::JobLog = expect_ok(client.get(&format!("/jobs/{}/logs", job.id))?)?;
    for line in log.lines {
        output::line(&format!("    │ {}", line.text));
    }
    Ok(())
}
