//! graphile-worker, a PostgreSQL job queue for Node.js, as the peer of gantry's queue
//! benchmarks, and `gantry bench graphile`, which measures it alone.
//!
//! The measuring is done by the Node scripts in `scripts/bench/graphile-worker/` (see its
//! README): `drain.mjs` adds N no-op jobs in bulk and times one runner draining them, and
//! `latency.mjs` offers jobs at a steady rate and reports add→start percentiles. Each prints
//! one JSON object on stdout and its progress on stderr. This module installs the scripts'
//! pinned dependencies on first use (`npm ci`), runs a script as a child process with its
//! stderr passed through, and parses the JSON into [`GraphileDrain`] or [`GraphileLatency`].
//!
//! [`drain`] and [`latency`] are what gantry's own queue benchmarks call to print the peer
//! beside their figures, against the same PostgreSQL in the same run. Two runs must not
//! overlap on one database: graphile-worker's notifications are database-wide, and a run
//! creating its schema makes the runners of every other run shut down.
//!
//! Two modes: `default` is graphile-worker's default configuration (one job at a time, every
//! fetch and completion its own transaction); `local-queue` is the configuration its
//! performance documentation uses (24 concurrent jobs, a local queue of 500 jobs fetched per
//! query, completions and failures batched).

use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::median;
use crate::output;

/// The database the scripts use when none is given: the local PostgreSQL of the development
/// machines (user `postgres`, trust authentication, database `test`).
pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// graphile-worker's configuration for a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// graphile-worker's defaults: concurrency 1, no local queue, no batched completion.
    Default,
    /// graphile-worker's fastest documented configuration: concurrency 24,
    /// `localQueue.size` 500, `completeJobBatchDelay` and `failJobBatchDelay` 0.
    LocalQueue,
}

impl Mode {
    /// The name the scripts take with `--mode` and print back.
    fn as_str(self) -> &'static str {
        match self {
            Mode::Default => "default",
            Mode::LocalQueue => "local-queue",
        }
    }
}

/// What to run against; [`drain`] reads `jobs`, [`latency`] reads `rate` and `seconds`.
#[derive(Clone, Debug)]
pub struct Options {
    /// The PostgreSQL database; each run makes a fresh schema in it and drops it at the end.
    pub database_url: String,
    /// graphile-worker's configuration.
    pub mode: Mode,
    /// Concurrent jobs of the runner; `None` keeps the mode's own (1 or 24).
    pub concurrency: Option<u32>,
    /// Jobs added, then drained.
    pub jobs: u64,
    /// Jobs offered per second in the latency run.
    pub rate: u32,
    /// How long the latency run offers jobs.
    pub seconds: u32,
    /// The folder holding the scripts, their `package.json` and `package-lock.json`.
    pub scripts_dir: PathBuf,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            database_url: DEFAULT_DATABASE_URL.to_owned(),
            mode: Mode::Default,
            concurrency: None,
            jobs: 200_000,
            rate: 200,
            seconds: 10,
            scripts_dir: default_scripts_dir(),
        }
    }
}

/// The scripts' folder in the source tree this binary was built from: the benchmarks are run
/// from a checkout, and the folder is found without being told wherever the binary is.
pub fn default_scripts_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/bench/graphile-worker")
}

/// One drain: `jobs` no-op jobs added in bulk, then run to completion by one runner.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GraphileDrain {
    /// The graphile-worker version measured.
    pub version: String,
    /// Its configuration.
    pub mode: Mode,
    /// Concurrent jobs of the runner.
    pub concurrency: u32,
    /// Jobs added and drained.
    pub jobs: u64,
    /// Time to add the jobs (`addJobs` in batches of 10,000), not part of the drain.
    pub add_secs: f64,
    /// From starting the runner until every job ran and its row was deleted.
    pub drain_secs: f64,
    /// `jobs / drain_secs`.
    pub jobs_per_sec: f64,
}

/// One start-latency run: jobs offered one `addJob` each at a steady rate.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GraphileLatency {
    /// The graphile-worker version measured.
    pub version: String,
    /// Its configuration.
    pub mode: Mode,
    /// Concurrent jobs of the runner.
    pub concurrency: u32,
    /// Jobs offered per second.
    pub rate: u32,
    /// Seconds of offering.
    pub seconds: u32,
    /// Jobs offered (`rate × seconds`).
    pub offered: u64,
    /// Jobs that had started when the run ended (all of them unless it fell far behind).
    pub started: u64,
    /// Median time from calling `addJob` to the task starting; a job that never started counts
    /// with the time it had waited when the run ended.
    pub p50_ms: f64,
    /// 99th percentile of the same.
    pub p99_ms: f64,
    /// Largest of the same.
    pub max_ms: f64,
    /// Median time an `addJob` call took (its insert committed): the producer's share of
    /// `p50_ms`. `None` if no call returned.
    pub add_p50_ms: Option<f64>,
    /// 99th percentile of the same.
    pub add_p99_ms: Option<f64>,
    /// Median time from `addJob` returning to the task starting: the queue's pick-up alone.
    pub from_return_p50_ms: Option<f64>,
    /// 99th percentile of the same.
    pub from_return_p99_ms: Option<f64>,
    /// Whether every job had started by one second after the offering ended.
    pub kept_up: bool,
}

/// Runs `drain.mjs` once with `options` and returns its figures.
pub fn drain(options: &Options) -> anyhow::Result<GraphileDrain> {
    let mut args = common_args(options);
    args.extend(["--jobs".to_owned(), options.jobs.to_string()]);
    let stdout = run_script(&options.scripts_dir, "drain.mjs", &args)?;
    parse_figures(&stdout, "graphile-worker-drain")
}

/// Runs `latency.mjs` once with `options` and returns its figures.
pub fn latency(options: &Options) -> anyhow::Result<GraphileLatency> {
    let mut args = common_args(options);
    args.extend([
        "--rate".to_owned(),
        options.rate.to_string(),
        "--seconds".to_owned(),
        options.seconds.to_string(),
    ]);
    let stdout = run_script(&options.scripts_dir, "latency.mjs", &args)?;
    parse_figures(&stdout, "graphile-worker-latency")
}

/// The options both scripts take.
fn common_args(options: &Options) -> Vec<String> {
    let mut args = vec![
        "--database-url".to_owned(),
        options.database_url.clone(),
        "--mode".to_owned(),
        options.mode.as_str().to_owned(),
    ];
    if let Some(concurrency) = options.concurrency {
        args.extend(["--concurrency".to_owned(), concurrency.to_string()]);
    }
    args
}

/// Installs the scripts' dependencies if needed, runs `node <script> <args>` in `dir` with its
/// stderr (progress, errors) passed through, and returns its stdout.
fn run_script(dir: &Path, script: &str, args: &[String]) -> anyhow::Result<String> {
    if !dir.join(script).is_file() {
        bail!(
            "graphile-worker's benchmark scripts are not in `{}` (no {script}); pass --scripts-dir",
            dir.display()
        );
    }
    require_tool("node", "to run graphile-worker's benchmark scripts")?;
    install_dependencies(dir)?;
    let result = Command::new("node")
        .arg(script)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("cannot run `node {script}`"))?;
    if !result.status.success() {
        bail!(
            "`node {script}` in `{}` failed ({}); its error is above",
            dir.display(),
            result.status
        );
    }
    String::from_utf8(result.stdout).with_context(|| format!("`node {script}` printed non-UTF-8"))
}

/// `npm ci` in `dir` when graphile-worker is not installed there yet, so a fresh checkout
/// gets exactly the versions of the committed `package-lock.json`.
fn install_dependencies(dir: &Path) -> anyhow::Result<()> {
    // Checking the package itself, not only `node_modules`, also repairs an install that was
    // interrupted halfway.
    if dir
        .join("node_modules/graphile-worker/package.json")
        .is_file()
    {
        return Ok(());
    }
    require_tool("npm", "to install graphile-worker for its benchmark")?;
    output::message(&format!(
        "installing graphile-worker's benchmark dependencies: npm ci in `{}`",
        dir.display()
    ));
    // npm's own output goes to stderr: stdout carries only the figures under `--json`.
    let status = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(std::io::stderr())
        .stderr(Stdio::inherit())
        .status()
        .context("cannot run `npm ci`")?;
    if !status.success() {
        bail!(
            "`npm ci --no-audit --no-fund` in `{}` failed ({status}); its output is above",
            dir.display()
        );
    }
    Ok(())
}

/// Fails with a message saying what `tool` is needed for when it cannot be started.
fn require_tool(tool: &str, purpose: &str) -> anyhow::Result<()> {
    match Command::new(tool)
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
    {
        Ok(status) if status.success() => Ok(()),
        Ok(status) => bail!("`{tool} --version` failed ({status}); `{tool}` is needed {purpose}"),
        Err(error) if error.kind() == ErrorKind::NotFound => bail!(
            "`{tool}` is not installed (not found on PATH); it is needed {purpose} \
             (Node.js 20 or later with npm, e.g. Debian's `nodejs` and `npm` packages)"
        ),
        Err(error) => Err(error).with_context(|| format!("cannot start `{tool}`")),
    }
}

/// Parses a script's figures: the last non-empty line of its stdout, a JSON object whose
/// `benchmark` field is `benchmark` (so the wrong script's output is an error, not zeros).
fn parse_figures<T: DeserializeOwned>(stdout: &str, benchmark: &str) -> anyhow::Result<T> {
    let line = stdout
        .lines()
        .rev()
        .find(|line| !line.trim().is_empty())
        .with_context(|| format!("the {benchmark} script printed no figures"))?;
    let value: serde_json::Value = serde_json::from_str(line)
        .with_context(|| format!("the {benchmark} script printed something not JSON: {line}"))?;
    let kind = value.get("benchmark").and_then(serde_json::Value::as_str);
    if kind != Some(benchmark) {
        bail!("expected figures of {benchmark}, got {kind:?}: {line}");
    }
    serde_json::from_value(value)
        .with_context(|| format!("the {benchmark} figures are not as expected: {line}"))
}

/// Arguments of `gantry bench graphile`.
#[derive(Debug, Args)]
pub struct GraphileArgs {
    /// Jobs added, then drained (the drain run, the default).
    #[arg(long, default_value_t = 200_000, conflicts_with = "rate")]
    jobs: u64,
    /// graphile-worker's configuration: its defaults, or its local queue with batched
    /// completion.
    #[arg(long, value_enum, default_value_t = Mode::Default)]
    mode: Mode,
    /// Concurrent jobs of the runner [default: 1 in `default` mode, 24 in `local-queue`].
    #[arg(long)]
    concurrency: Option<u32>,
    /// Measure start latency with jobs offered at this rate (jobs/s) instead of a drain.
    #[arg(long)]
    rate: Option<u32>,
    /// Seconds of offering in the latency run.
    #[arg(long, default_value_t = 10, requires = "rate")]
    seconds: u32,
    /// The PostgreSQL database (a fresh schema in it, dropped afterwards).
    #[arg(long, value_name = "URL", default_value = DEFAULT_DATABASE_URL)]
    database_url: String,
    /// Runs; each figure is the median over them.
    #[arg(long, default_value_t = 1)]
    rounds: usize,
    /// The folder of graphile-worker's benchmark scripts [default: scripts/bench/graphile-worker
    /// of the source tree gantry was built from].
    #[arg(long, value_name = "DIR")]
    scripts_dir: Option<PathBuf>,
    /// Print the figures as JSON on stdout.
    #[arg(long)]
    json: bool,
}

/// Runs the benchmark.
pub fn run(args: &GraphileArgs) -> anyhow::Result<ExitCode> {
    if args.rounds == 0 || args.jobs == 0 || args.concurrency == Some(0) || args.seconds == 0 {
        bail!("--rounds, --jobs, --concurrency and --seconds must be at least 1");
    }
    let options = Options {
        database_url: args.database_url.clone(),
        mode: args.mode,
        concurrency: args.concurrency,
        jobs: args.jobs,
        rate: args.rate.unwrap_or_default(),
        seconds: args.seconds,
        scripts_dir: args.scripts_dir.clone().unwrap_or_else(default_scripts_dir),
    };
    match args.rate {
        Some(0) => bail!("--rate must be at least 1"),
        Some(_) => run_latency(&options, args.rounds, args.json),
        None => run_drain(&options, args.rounds, args.json),
    }
}

fn run_drain(options: &Options, rounds: usize, json: bool) -> anyhow::Result<ExitCode> {
    let mut runs = Vec::with_capacity(rounds);
    for round in 1..=rounds {
        let figures = drain(options)?;
        output::message(&format!(
            "round {round}/{rounds}: add {:.2} s, drain {:.2} s, {:.0} jobs/s",
            figures.add_secs, figures.drain_secs, figures.jobs_per_sec
        ));
        runs.push(figures);
    }
    let mut adds: Vec<f64> = runs.iter().map(|run| run.add_secs).collect();
    let add = median(&mut adds);
    // The drain time and rate come from one round, the median one by rate (the upper of an
    // even count, as `median` does), so the two figures printed agree with each other.
    let mut by_rate: Vec<&GraphileDrain> = runs.iter().collect();
    by_rate.sort_by(|a, b| a.jobs_per_sec.total_cmp(&b.jobs_per_sec));
    let middle = by_rate[by_rate.len() / 2];
    let (drain_secs, per_sec) = (middle.drain_secs, middle.jobs_per_sec);
    let first = &runs[0];
    if json {
        output::json_line(&json!({
            "benchmark": "graphile-drain",
            "peer": "graphile-worker",
            "version": first.version,
            "mode": first.mode,
            "concurrency": first.concurrency,
            "jobs": first.jobs,
            "rounds": rounds,
            "add_secs_median": add,
            "drain_secs_median": drain_secs,
            "jobs_per_sec_median": per_sec.round(),
            "runs": runs,
        }));
    } else {
        output::line(&format!(
            "graphile-worker {} drain ({}, concurrency {}): {} no-op jobs, {rounds} round(s), medians\n  add (addJobs, not timed in the drain): {add:>8.2} s\n  drain:                                 {drain_secs:>8.2} s = {per_sec:.0} jobs/s",
            first.version,
            first.mode.as_str(),
            first.concurrency,
            first.jobs
        ));
    }
    Ok(ExitCode::SUCCESS)
}

fn run_latency(options: &Options, rounds: usize, json: bool) -> anyhow::Result<ExitCode> {
    let mut runs = Vec::with_capacity(rounds);
    for round in 1..=rounds {
        let figures = latency(options)?;
        output::message(&format!(
            "round {round}/{rounds}: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms, kept up: {}",
            figures.p50_ms, figures.p99_ms, figures.max_ms, figures.kept_up
        ));
        runs.push(figures);
    }
    let pick = |field: fn(&GraphileLatency) -> f64| {
        median(&mut runs.iter().map(field).collect::<Vec<_>>())
    };
    let (p50, p99, max) = (
        pick(|run| run.p50_ms),
        pick(|run| run.p99_ms),
        pick(|run| run.max_ms),
    );
    // The breakdown's figures are missing from a round only if none of its adds returned.
    let pick_some = |field: fn(&GraphileLatency) -> Option<f64>| {
        let mut values: Vec<f64> = runs.iter().filter_map(field).collect();
        (!values.is_empty()).then(|| median(&mut values))
    };
    let (add_p99, pickup_p50, pickup_p99) = (
        pick_some(|run| run.add_p99_ms),
        pick_some(|run| run.from_return_p50_ms),
        pick_some(|run| run.from_return_p99_ms),
    );
    let kept_up = runs.iter().filter(|run| run.kept_up).count();
    let first = &runs[0];
    if json {
        output::json_line(&json!({
            "benchmark": "graphile-latency",
            "peer": "graphile-worker",
            "version": first.version,
            "mode": first.mode,
            "concurrency": first.concurrency,
            "rate": first.rate,
            "seconds": first.seconds,
            "rounds": rounds,
            "p50_ms_median": p50,
            "p99_ms_median": p99,
            "max_ms_median": max,
            "add_p99_ms_median": add_p99,
            "from_return_p50_ms_median": pickup_p50,
            "from_return_p99_ms_median": pickup_p99,
            "kept_up_rounds": kept_up,
            "runs": runs,
        }));
    } else {
        let ms = |value: Option<f64>| value.map_or_else(|| "-".to_owned(), |v| format!("{v:.1}"));
        output::line(&format!(
            "graphile-worker {} start latency ({}, concurrency {}): {} jobs/s offered for {} s, {rounds} round(s), medians\n  addJob called → task started:   p50 {p50:.1} ms, p99 {p99:.1} ms, max {max:.1} ms\n  addJob returned → task started: p50 {} ms, p99 {} ms (addJob itself: p99 {} ms)\n  kept up in {kept_up} of {rounds} round(s)",
            first.version,
            first.mode.as_str(),
            first.concurrency,
            first.rate,
            first.seconds,
            ms(pickup_p50),
            ms(pickup_p99),
            ms(add_p99),
        ));
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A drain's stdout exactly as `drain.mjs` prints it.
    const DRAIN: &str = r#"{"benchmark":"graphile-worker-drain","version":"0.17.3","mode":"local-queue","concurrency":24,"jobs":200000,"add_secs":4.132,"add_jobs_per_sec":48406,"drain_secs":16.477,"jobs_per_sec":12138}
"#;

    /// A latency run's stdout exactly as `latency.mjs` prints it.
    const LATENCY: &str = r#"{"benchmark":"graphile-worker-latency","version":"0.17.3","mode":"default","concurrency":1,"rate":50,"seconds":2,"offered":100,"offered_per_sec":50,"started":100,"measured_from":"addJob called","p50_ms":7.303,"p99_ms":22.845,"max_ms":38.822,"add_p50_ms":4.202,"add_p99_ms":17.196,"from_return_p50_ms":2.95,"from_return_p99_ms":6.1,"from_return_max_ms":null,"producer_lag_max_ms":1.103,"kept_up":true}
"#;

    #[test]
    fn drain_figures_parse_into_the_struct() {
        let figures: GraphileDrain = parse_figures(DRAIN, "graphile-worker-drain").unwrap();
        assert_eq!(
            figures,
            GraphileDrain {
                version: "0.17.3".to_owned(),
                mode: Mode::LocalQueue,
                concurrency: 24,
                jobs: 200_000,
                add_secs: 4.132,
                drain_secs: 16.477,
                jobs_per_sec: 12_138.0,
            }
        );
    }

    #[test]
    fn latency_figures_parse_into_the_struct() {
        let figures: GraphileLatency = parse_figures(LATENCY, "graphile-worker-latency").unwrap();
        assert_eq!(
            figures,
            GraphileLatency {
                version: "0.17.3".to_owned(),
                mode: Mode::Default,
                concurrency: 1,
                rate: 50,
                seconds: 2,
                offered: 100,
                started: 100,
                p50_ms: 7.303,
                p99_ms: 22.845,
                max_ms: 38.822,
                add_p50_ms: Some(4.202),
                add_p99_ms: Some(17.196),
                from_return_p50_ms: Some(2.95),
                from_return_p99_ms: Some(6.1),
                kept_up: true,
            }
        );
    }

    #[test]
    fn the_figures_are_the_last_line_of_stdout() {
        let stdout = format!("a stray line from a dependency\n{DRAIN}\n\n");
        let figures: GraphileDrain = parse_figures(&stdout, "graphile-worker-drain").unwrap();
        assert_eq!(figures.jobs, 200_000);
    }

    #[test]
    fn wrong_missing_or_broken_figures_are_errors() {
        // The other script's figures.
        assert!(parse_figures::<GraphileDrain>(LATENCY, "graphile-worker-drain").is_err());
        // Nothing printed.
        assert!(parse_figures::<GraphileDrain>("\n", "graphile-worker-drain").is_err());
        // Not JSON.
        assert!(parse_figures::<GraphileDrain>("drained", "graphile-worker-drain").is_err());
        // A field missing.
        let partial = DRAIN.replace(r#""drain_secs":16.477,"#, "");
        assert!(parse_figures::<GraphileDrain>(&partial, "graphile-worker-drain").is_err());
        // A mode this module does not know.
        let fast = DRAIN.replace("local-queue", "fast");
        assert!(parse_figures::<GraphileDrain>(&fast, "graphile-worker-drain").is_err());
    }

    #[test]
    fn options_become_the_scripts_arguments() {
        let options = Options {
            mode: Mode::LocalQueue,
            concurrency: Some(8),
            ..Options::default()
        };
        assert_eq!(
            common_args(&options),
            [
                "--database-url",
                DEFAULT_DATABASE_URL,
                "--mode",
                "local-queue",
                "--concurrency",
                "8"
            ]
        );
        // Without a concurrency the script keeps the mode's own.
        assert!(!common_args(&Options::default()).contains(&"--concurrency".to_owned()));
    }

    /// `gantry bench graphile`'s arguments on their own, to parse test command lines.
    #[derive(Debug, clap::Parser)]
    struct Cli {
        #[command(flatten)]
        args: GraphileArgs,
    }

    fn parse(line: &[&str]) -> Result<GraphileArgs, clap::Error> {
        use clap::Parser;
        Cli::try_parse_from(std::iter::once("graphile").chain(line.iter().copied()))
            .map(|cli| cli.args)
    }

    #[test]
    fn the_command_line_picks_drain_or_latency() {
        use clap::CommandFactory;
        Cli::command().debug_assert();

        let drain = parse(&[]).unwrap();
        assert_eq!(
            (drain.jobs, drain.mode, drain.rate),
            (200_000, Mode::Default, None)
        );
        assert_eq!(drain.database_url, DEFAULT_DATABASE_URL);

        let latency = parse(&["--rate", "500", "--seconds", "5", "--mode", "local-queue"]).unwrap();
        assert_eq!(
            (latency.rate, latency.seconds, latency.mode),
            (Some(500), 5, Mode::LocalQueue)
        );

        // A drain size with a rate, or a duration without one, is a mistake worth saying.
        assert!(parse(&["--jobs", "10", "--rate", "5"]).is_err());
        assert!(parse(&["--seconds", "5"]).is_err());
        assert!(parse(&["--mode", "fast"]).is_err());
    }

    #[test]
    fn the_default_scripts_dir_holds_the_pinned_scripts() {
        let dir = default_scripts_dir();
        for file in [
            "drain.mjs",
            "latency.mjs",
            "lib.mjs",
            "package.json",
            "package-lock.json",
        ] {
            assert!(
                dir.join(file).is_file(),
                "{file} missing in {}",
                dir.display()
            );
        }
    }
}
