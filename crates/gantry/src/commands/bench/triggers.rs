//! `gantry bench triggers`: the front door's figures: trigger latency (push received → jobs
//! queued) and signed-webhook ingest.
//!
//! The benchmark makes a real git repository (with the `git` command line) holding 20 workflow
//! files of a realistic mix (push with branch and path filters, pull_request, tags, schedule,
//! workflow_dispatch), ten of which a push to `main` touching `src/` starts. The commits are
//! all made before anything is timed. A real server in this process (SQLite with durable
//! commits, or a fresh PostgreSQL schema), on a loopback port, has the repository registered
//! with a webhook secret.
//!
//! - Trigger latency: one keep-alive connection reports pushes to `main` (`POST
//!   /repos/{org}/{repo}/hooks/push`, as a `post-receive` hook does), one commit each. The
//!   server answers only after it has read every workflow file at the commit, created every
//!   run that matches and committed them with their jobs queued (and handed those to the
//!   dispatcher), so request → response is the latency from the push being received to the
//!   *last* run's jobs being queued: an upper bound of the time to the first job queued.
//! - Webhook ingest: signed `push` deliveries (`POST /hooks/github`, each with its own
//!   `X-GitHub-Delivery`) from many client threads with keep-alive connections. The main
//!   figure is for pushes to a branch no workflow matches: the server still verifies the
//!   signature, reads the commit and its changed files from git, loads and evaluates all 20
//!   files, so it is the realistic cost of a delivery; a second figure has every delivery
//!   start one run (a push to `feature/…`, which `preview.yml` runs for).
//!
//! The peer measured in the same run is the same server answering `GET /health` over the same
//! connections: the HTTP floor.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::{Context, bail};
use clap::Args;
use gantry_proto::v1 as proto;
use serde_json::json;

use super::BenchStorage;
use super::ingest::{BenchServer, Phase, measure, percentile, round2};
use crate::commands::client::{Client, Reply};
use crate::output;

const ORG: &str = "bench";
const REPO: &str = "triggers";
const SECRET: &str = "gantry-bench-webhook-secret";
/// How many of the 20 files a push to `main` touching `src/` starts.
const MAIN_SRC_RUNS: usize = 10;

/// Arguments of `gantry bench triggers`.
#[derive(Debug, Args)]
pub struct TriggersArgs {
    /// Pushes to `main` whose latency is measured (after 5 not counted).
    #[arg(long, default_value_t = 200)]
    pushes: usize,
    /// Webhook deliveries sent in each ingest phase.
    #[arg(long, default_value_t = 3_000)]
    events: usize,
    /// Concurrent client connections of the ingest phases.
    #[arg(long, default_value_t = 16)]
    connections: usize,
    /// Use this PostgreSQL database (a fresh schema, dropped afterwards) instead of SQLite in
    /// a temporary directory.
    #[arg(long, value_name = "URL")]
    database_url: Option<String>,
    /// Print the figures as JSON on stdout.
    #[arg(long)]
    json: bool,
}

/// Pushes sent before the measured ones, so connection set-up and first-use caches are not
/// in the figures.
const WARMUP_PUSHES: usize = 5;

/// Runs the benchmark.
pub fn run(args: &TriggersArgs) -> anyhow::Result<ExitCode> {
    if args.pushes == 0 || args.events == 0 || args.connections == 0 {
        bail!("--pushes, --events and --connections must be at least 1");
    }
    let dir = tempfile::tempdir().context("cannot create a temporary directory")?;
    let git_dir = dir.path().join("repo");
    // One commit per push: each push's changes are `src/` only, as a typical code push.
    let commits = make_repository(&git_dir, args.pushes + WARMUP_PUSHES)?;

    let place = BenchStorage::new(args.database_url.as_deref(), "triggers")?;
    let backend = place.backend;
    let server = BenchServer::start(place.storage.clone())?;
    let client = Client::new(Some(&server.base));
    setup_repository(&client, &git_dir)?;

    let latency = measure_latency(&client, &commits)?;

    let pairs: Vec<(&str, &str)> = commits
        .windows(2)
        .map(|pair| (pair[0].as_str(), pair[1].as_str()))
        .collect();
    let peer =
        measure(
            &server.base,
            args.events,
            args.connections,
            &|client| match client.get::<serde_json::Value>("/health")? {
                Reply::Ok(..) => Ok(()),
                Reply::Refused(error, status) => bail!("health refused ({status}): {:?}", error),
            },
        )?;
    let idle = ingest_phase(&server.base, args, &pairs, "refs/heads/wip", "idle")?;
    let one_run = ingest_phase(
        &server.base,
        args,
        &pairs,
        "refs/heads/feature/bench",
        "one",
    )?;
    server.stop()?;
    place.finish()?;
    if idle.runs != 0 {
        bail!(
            "pushes to `wip` started {} runs; no workflow should match",
            idle.runs
        );
    }
    if one_run.runs != args.events {
        bail!(
            "{} pushes to `feature/bench` started {} runs, not one each",
            args.events,
            one_run.runs
        );
    }

    let figures = json!({
        "benchmark": "triggers",
        "backend": backend,
        "workflow_files": 20,
        "latency": {
            "pushes": latency.millis.len(),
            "workflow_files_read_per_push": latency.files_per_push,
            "runs_per_push": latency.runs_per_push,
            "p50_ms": round2(percentile(&latency.millis, 0.50)),
            "p99_ms": round2(percentile(&latency.millis, 0.99)),
            "max_ms": round2(percentile(&latency.millis, 1.0)),
            "peer_health_p50_ms": round2(percentile(&latency.peer_millis, 0.50)),
            "peer_health_p99_ms": round2(percentile(&latency.peer_millis, 0.99)),
        },
        "ingest": {
            "event": "push",
            "events": args.events,
            "connections": args.connections,
            "no_run": {
                "git_ref": "refs/heads/wip",
                "runs": idle.runs,
                "events_per_second": idle.phase.per_second.round(),
                "p50_ms": round2(idle.phase.p50_ms),
                "p99_ms": round2(idle.phase.p99_ms),
            },
            "one_run": {
                "git_ref": "refs/heads/feature/bench",
                "runs": one_run.runs,
                "events_per_second": one_run.phase.per_second.round(),
                "p50_ms": round2(one_run.phase.p50_ms),
                "p99_ms": round2(one_run.phase.p99_ms),
            },
            "peer_health_requests_per_second": peer.per_second.round(),
            "peer_health_p50_ms": round2(peer.p50_ms),
            "peer_health_p99_ms": round2(peer.p99_ms),
        },
    });
    if args.json {
        output::json_line(&figures);
    } else {
        output::line(&format!(
            "triggers on {backend}: a repository of 20 workflow files\n  \
             push → jobs queued:  {} pushes to main touching src/, {} files read, {} runs each\n    \
             p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms   (peer GET /health: p50 {:.2} ms, p99 {:.2} ms)\n  \
             webhook ingest:      {} signed `push` deliveries each, {} connections\n    \
             no run  (wip):       {:.0} events/s, p50 {:.2} ms, p99 {:.2} ms, {} runs\n    \
             one run (feature/*): {:.0} events/s, p50 {:.2} ms, p99 {:.2} ms, {} runs\n    \
             peer, GET /health:   {:.0} req/s,    p50 {:.2} ms, p99 {:.2} ms",
            latency.millis.len(),
            latency.files_per_push,
            latency.runs_per_push,
            percentile(&latency.millis, 0.50),
            percentile(&latency.millis, 0.99),
            percentile(&latency.millis, 1.0),
            percentile(&latency.peer_millis, 0.50),
            percentile(&latency.peer_millis, 0.99),
            args.events,
            args.connections,
            idle.phase.per_second,
            idle.phase.p50_ms,
            idle.phase.p99_ms,
            idle.runs,
            one_run.phase.per_second,
            one_run.phase.p50_ms,
            one_run.phase.p99_ms,
            one_run.runs,
            peer.per_second,
            peer.p50_ms,
            peer.p99_ms,
        ));
    }
    Ok(ExitCode::SUCCESS)
}

/// What the latency phase measured; the millisecond lists are sorted.
struct Latency {
    millis: Vec<f64>,
    peer_millis: Vec<f64>,
    files_per_push: usize,
    runs_per_push: usize,
}

/// Reports each push of `commits` (after the first) in turn over one connection, with a
/// `GET /health` on the same connection before each as the peer.
fn measure_latency(client: &Client, commits: &[String]) -> anyhow::Result<Latency> {
    let mut millis = Vec::new();
    let mut peer_millis = Vec::new();
    let (mut files_per_push, mut runs_per_push) = (0, 0);
    for (index, pair) in commits.windows(2).enumerate() {
        let sent = Instant::now();
        match client.get::<serde_json::Value>("/health")? {
            Reply::Ok(..) => {}
            Reply::Refused(error, status) => bail!("health refused ({status}): {:?}", error),
        }
        let peer = sent.elapsed();
        let request = proto::ReceivedPush {
            updates: vec![proto::RefUpdate {
                before: pair[0].clone(),
                after: pair[1].clone(),
                git_ref: "refs/heads/main".to_owned(),
            }],
            pusher: Some("bench".to_owned()),
        };
        let sent = Instant::now();
        let outcome = match client.post::<proto::HookOutcome>(
            &format!("/repos/{ORG}/{REPO}/hooks/push"),
            &request,
            &[],
        )? {
            Reply::Ok(outcome, _) => outcome,
            Reply::Refused(error, status) => bail!("push refused ({status}): {:?}", error),
        };
        let elapsed = sent.elapsed();
        if !outcome.invalid.is_empty() {
            bail!("invalid workflow files: {:?}", outcome.invalid);
        }
        let runs = outcome.runs.iter().filter(|run| run.created).count();
        if runs != MAIN_SRC_RUNS {
            bail!("a push to main touching src/ started {runs} runs, not {MAIN_SRC_RUNS}");
        }
        if index < WARMUP_PUSHES {
            continue;
        }
        files_per_push = outcome.runs.len() + outcome.skipped.len() + outcome.invalid.len();
        runs_per_push = runs;
        millis.push(elapsed.as_secs_f64() * 1000.0);
        peer_millis.push(peer.as_secs_f64() * 1000.0);
    }
    millis.sort_by(f64::total_cmp);
    peer_millis.sort_by(f64::total_cmp);
    Ok(Latency {
        millis,
        peer_millis,
        files_per_push,
        runs_per_push,
    })
}

/// One ingest phase and the runs its deliveries started.
struct Ingest {
    phase: Phase,
    runs: usize,
}

/// Sends `args.events` signed `push` deliveries for `git_ref`, cycling through the commit
/// pairs, each with a delivery id of its own so none is taken for a redelivery.
fn ingest_phase(
    base: &str,
    args: &TriggersArgs,
    pairs: &[(&str, &str)],
    git_ref: &str,
    tag: &str,
) -> anyhow::Result<Ingest> {
    let sequence = AtomicUsize::new(0);
    let runs = AtomicUsize::new(0);
    let phase = measure(base, args.events, args.connections, &|client| {
        let index = sequence.fetch_add(1, Ordering::Relaxed);
        let (before, after) = pairs[index % pairs.len()];
        let payload = push_payload(git_ref, before, after);
        // The signature is over the exact bytes sent: the client's `send_json` (ureq's)
        // writes the value with `serde_json::to_vec_pretty`. Were that to change, every
        // delivery would be refused with 401 and the benchmark would stop, not mismeasure.
        let body = serde_json::to_vec_pretty(&payload)?;
        let signature = gantry_server::webhook::sign(SECRET.as_bytes(), &body);
        let delivery = format!("bench-{tag}-{index}");
        let headers = [
            (proto::GITHUB_EVENT_HEADER, "push"),
            (proto::GITHUB_SIGNATURE_HEADER, signature.as_str()),
            (proto::GITHUB_DELIVERY_HEADER, delivery.as_str()),
        ];
        match client.post::<proto::HookOutcome>("/hooks/github", &payload, &headers)? {
            Reply::Ok(outcome, _) => {
                if !outcome.invalid.is_empty() {
                    bail!("invalid workflow files: {:?}", outcome.invalid);
                }
                let created = outcome.runs.iter().filter(|run| run.created).count();
                runs.fetch_add(created, Ordering::Relaxed);
                Ok(())
            }
            Reply::Refused(error, status) => bail!("webhook refused ({status}): {:?}", error),
        }
    })?;
    Ok(Ingest {
        phase,
        runs: runs.into_inner(),
    })
}

/// A `push` payload with the fields GitHub sends that gantry reads.
fn push_payload(git_ref: &str, before: &str, after: &str) -> serde_json::Value {
    json!({
        "ref": git_ref,
        "before": before,
        "after": after,
        "created": false,
        "deleted": false,
        "forced": false,
        "base_ref": null,
        "head_commit": { "id": after },
        "repository": {
            "full_name": format!("{ORG}/{REPO}"),
            "name": REPO,
            "owner": { "login": ORG },
            "default_branch": "main",
        },
        "pusher": { "name": "bench" },
        "sender": { "login": "bench" },
    })
}

fn setup_repository(client: &Client, git_dir: &Path) -> anyhow::Result<()> {
    let org = proto::CreateOrganization {
        name: ORG.to_owned(),
        weight: None,
        hosted_concurrency_limit: None,
    };
    let repo = proto::CreateRepository {
        name: REPO.to_owned(),
        default_branch: None,
    };
    for (path, body) in [
        ("/orgs".to_owned(), serde_json::to_value(org)?),
        (format!("/orgs/{ORG}/repos"), serde_json::to_value(repo)?),
    ] {
        if let Reply::Refused(error, status) =
            client.post::<serde_json::Value>(&path, &body, &[])?
        {
            bail!("POST {path} refused ({status}): {:?}", error);
        }
    }
    let source = proto::SetRepositorySource {
        git_path: Some(git_dir.to_string_lossy().into_owned()),
        git_url: None,
        webhook_secret: Some(SECRET.to_owned()),
    };
    if let Reply::Refused(error, status) =
        client.put::<serde_json::Value>(&format!("/repos/{ORG}/{REPO}/source"), &source)?
    {
        bail!(
            "setting the repository's source refused ({status}): {:?}",
            error
        );
    }
    Ok(())
}

/// Makes a git repository at `dir` with the workflow files and a small source tree, then
/// `pushes` more commits on `main`, each changing one file under `src/`. Returns every commit
/// id, oldest first.
fn make_repository(dir: &Path, pushes: usize) -> anyhow::Result<Vec<String>> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    git(dir, &["init", "-q", "-b", "main"])?;
    let mut files: Vec<(PathBuf, String)> = workflow_files()
        .into_iter()
        .map(|(path, text)| (PathBuf::from(path), text.to_owned()))
        .collect();
    files.extend([
        (
            PathBuf::from("src/lib.rs"),
            "pub fn version() -> u32 { 0 }\n".to_owned(),
        ),
        (PathBuf::from("src/main.rs"), "fn main() {}\n".to_owned()),
        (PathBuf::from("docs/index.md"), "# bench\n".to_owned()),
        (
            PathBuf::from("Cargo.toml"),
            "[package]\nname = \"bench\"\n".to_owned(),
        ),
        (PathBuf::from("README.md"), "bench\n".to_owned()),
    ]);
    for (path, text) in &files {
        let path = dir.join(path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    git(dir, &["add", "-A"])?;
    git(dir, &["commit", "-q", "-m", "initial"])?;
    let mut commits = vec![git(dir, &["rev-parse", "HEAD"])?];
    let lib = dir.join("src/lib.rs");
    for push in 1..=pushes {
        std::fs::write(&lib, format!("pub fn version() -> u32 {{ {push} }}\n"))
            .with_context(|| format!("cannot write {}", lib.display()))?;
        git(
            dir,
            &["commit", "-q", "-a", "-m", &format!("change {push}")],
        )?;
        commits.push(git(dir, &["rev-parse", "HEAD"])?);
    }
    Ok(commits)
}

/// Runs `git` in `dir` with no user or system configuration of this machine, returning its
/// trimmed output.
fn git(dir: &Path, args: &[&str]) -> anyhow::Result<String> {
    let output = Command::new("git")
        .args([
            "-c",
            "user.name=gantry bench",
            "-c",
            "user.email=bench@gantry.invalid",
            "-c",
            "commit.gpgsign=false",
        ])
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .output()
        .context("cannot run `git`; the benchmark needs the git command line")?;
    if !output.status.success() {
        bail!(
            "git {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// Steps shared by the generated jobs.
const STEPS: &str = "    steps:\n      - uses: actions/checkout@v4\n      - run: make\n";

/// The 20 workflow files, by path: ten that a push to `main` touching `src/` starts (branch
/// and path filters, `paths-ignore`, tags beside branches, a matrix, `needs`), one for
/// `feature/**` pushes, and the rest for docs, release tags and branches, pull requests,
/// schedules and manual dispatch.
fn workflow_files() -> Vec<(String, String)> {
    let job = |name: &str| format!("  {name}:\n    runs-on: ubuntu-latest\n{STEPS}");
    let needing = |name: &str, needs: &str| {
        format!("  {name}:\n    needs: {needs}\n    runs-on: ubuntu-latest\n{STEPS}")
    };
    let file = |name: &str, on: &str, jobs: String| {
        (
            format!(".github/workflows/{name}.yml"),
            format!("name: {name}\non:\n{on}jobs:\n{jobs}"),
        )
    };
    let main_src = "  push:\n    branches: [main]\n    paths: ['src/**']\n";
    vec![
        // Started by a push to main touching src/.
        file(
            "ci",
            "  push:\n    branches: [main]\n    paths: ['src/**', 'Cargo.toml']\n  pull_request:\n    branches: [main]\n",
            job("lint") + &needing("test", "lint") + &needing("build", "lint"),
        ),
        file(
            "test-linux",
            "  push:\n    branches: [main, 'release/**']\n    paths: ['src/**']\n",
            "  test:\n    runs-on: ubuntu-latest\n    strategy:\n      matrix:\n        toolchain: [stable, beta]\n    steps:\n      - run: cargo +${{ matrix.toolchain }} test\n".to_owned(),
        ),
        file(
            "test-macos",
            "  push:\n    branches: [main]\n    paths-ignore: ['docs/**', '**.md']\n",
            job("test"),
        ),
        file(
            "coverage",
            "  push:\n    branches: [main]\n    paths: ['src/**', 'tests/**']\n",
            job("coverage"),
        ),
        file(
            "clippy",
            "  push:\n    branches: [main]\n    paths: ['**.rs']\n",
            job("clippy"),
        ),
        file(
            "bench",
            "  push:\n    branches: [main]\n    paths: ['src/**', 'benches/**']\n",
            job("bench"),
        ),
        file(
            "audit",
            "  push:\n    branches: [main]\n    paths: ['src/**', 'Cargo.lock']\n  schedule:\n    - cron: '0 6 * * 1'\n",
            job("audit"),
        ),
        file("api-docs", main_src, job("rustdoc") + &needing("publish", "rustdoc")),
        file(
            "container",
            "  push:\n    branches: [main]\n    tags: ['v*']\n",
            job("image"),
        ),
        file(
            "integration",
            &format!("{main_src}  workflow_dispatch:\n"),
            job("setup") + &needing("suite", "setup") + &needing("report", "[setup, suite]"),
        ),
        // Started by a push to feature/**: the ingest phase that starts one run per event.
        file(
            "preview",
            "  push:\n    branches: ['feature/**']\n",
            job("preview"),
        ),
        // Started by none of the benchmark's pushes.
        file(
            "docs",
            "  push:\n    branches: [main]\n    paths: ['docs/**']\n",
            job("site"),
        ),
        file("release", "  push:\n    tags: ['v*']\n", job("ship")),
        file(
            "release-branch",
            "  push:\n    branches: ['release/**']\n",
            job("backport-check"),
        ),
        file(
            "nightly",
            "  schedule:\n    - cron: '0 3 * * *'\n",
            job("nightly"),
        ),
        file(
            "stale",
            "  schedule:\n    - cron: '30 1 * * *'\n",
            job("stale"),
        ),
        file(
            "deploy",
            "  workflow_dispatch:\n    inputs:\n      environment:\n        type: choice\n        options: [staging, production]\n        default: staging\n",
            job("deploy"),
        ),
        file("manual-bench", "  workflow_dispatch:\n", job("bench")),
        file(
            "pr-labels",
            "  pull_request:\n    types: [opened, labeled]\n",
            job("labels"),
        ),
        file(
            "pr-size",
            "  pull_request:\n    branches: [main]\n    paths: ['src/**']\n",
            job("size"),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use gantry_workflow::trigger::{Decision, Event, decide};

    fn runs_for(git_ref: &str, changed: &[String]) -> Vec<String> {
        let event = Event {
            name: "push",
            action: None,
            git_ref: Some(git_ref),
            changed_files: Some(changed),
            workflow_name: None,
            schedule: None,
        };
        workflow_files()
            .into_iter()
            .filter(|(_, text)| {
                let workflow = gantry_workflow::load(text, &gantry_workflow::Limits::default())
                    .expect("valid");
                decide(&workflow, &event) == Decision::Run
            })
            .map(|(path, _)| path)
            .collect()
    }

    #[test]
    fn twenty_valid_files_of_which_the_benchmarks_pushes_start_the_intended_ones() {
        let files = workflow_files();
        assert_eq!(files.len(), 20);
        let mut paths: Vec<&str> = files.iter().map(|(path, _)| path.as_str()).collect();
        paths.sort_unstable();
        paths.dedup();
        assert_eq!(paths.len(), 20, "paths are distinct");
        for (path, text) in &files {
            if let Err(problems) = gantry_workflow::load(text, &gantry_workflow::Limits::default())
            {
                panic!("{path} does not load: {problems:?}\n{text}");
            }
        }
        let src = vec!["src/lib.rs".to_owned()];
        assert_eq!(runs_for("refs/heads/main", &src).len(), MAIN_SRC_RUNS);
        assert!(runs_for("refs/heads/wip", &src).is_empty());
        assert_eq!(
            runs_for("refs/heads/feature/bench", &src),
            [".github/workflows/preview.yml"]
        );
    }

    #[test]
    fn the_repository_has_a_commit_per_push_changing_src() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let commits = make_repository(&dir.path().join("repo"), 3).expect("repository");
        assert_eq!(commits.len(), 4);
        let changed = git(
            &dir.path().join("repo"),
            &["diff", "--name-only", &commits[1], &commits[2]],
        )
        .expect("diff");
        assert_eq!(changed, "src/lib.rs");
        let listed = git(
            &dir.path().join("repo"),
            &["ls-tree", "--name-only", "HEAD", ".github/workflows/"],
        )
        .expect("ls-tree");
        assert_eq!(listed.lines().count(), 20);
    }
}
