//! `gantry run` and `gantry up`: the whole service in one command — embedded server,
//! provisioner, local ephemeral runners in bubblewrap sandboxes — as a newcomer runs it.
//!
//! Scenarios that need bubblewrap skip loudly where it is missing (and fail under `CI=true`,
//! where `scripts/test.sh` installs it).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::text;

/// Whether bubblewrap can run here; a loud skip (or a failure under CI) when not.
fn bubblewrap_or_skip(scenario: &str) -> bool {
    let usable = Command::new("bwrap")
        .args(["--ro-bind", "/", "/", "true"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if !usable {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "bubblewrap is unusable under CI=true; `{scenario}` must run"
        );
        eprintln!(
            "\n!!!!!!!! SKIPPED: bubblewrap is unusable here; `{scenario}` did not run !!!!!!!!\n"
        );
    }
    usable
}

fn gantry(args: &[&str], dir: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_gantry"))
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn gantry_run_runs_the_demo_end_to_end_in_sandboxes_and_exits_with_its_conclusion() {
    if !bubblewrap_or_skip("gantry run examples/demo") {
        return;
    }
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/demo");
    let output = gantry(&["run", "."], &demo);
    let stdout = text(&output.stdout);
    assert!(
        output.status.success(),
        "exit {:?}\n{stdout}\n{}",
        output.status,
        text(&output.stderr)
    );
    for expected in [
        "✓ setup success",
        "testing python (small) for 1.",
        "✗ lint failure",
        "− report skipped",
        "✓ release success",
        "run 1 demo: success",
    ] {
        assert!(
            stdout.contains(expected),
            "missing `{expected}` in:\n{stdout}"
        );
    }
}

#[test]
fn gantry_run_exits_1_when_a_run_fails_and_reports_invalid_files_with_their_position() {
    let repo = tempfile::tempdir().unwrap();
    let workflows = repo.path().join(".github/workflows");
    std::fs::create_dir_all(&workflows).unwrap();
    std::fs::write(
        workflows.join("fail.yml"),
        "on: push\njobs:\n  broken:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo oops; exit 4\n",
    )
    .unwrap();
    std::fs::write(
        workflows.join("bad.yml"),
        "on: push\njobs:\n  x:\n    runs-on: [\n",
    )
    .unwrap();
    std::fs::write(
        workflows.join("other.yml"),
        "on: pull_request\njobs:\n  y:\n    runs-on: ubuntu-latest\n    steps:\n      - run: 'true'\n",
    )
    .unwrap();
    // Trusted test workflows: the host executor keeps this scenario machine-independent.
    let output = gantry(&["run", ".", "--unsafe-host-executor"], repo.path());
    let stdout = text(&output.stdout);
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stdout}\n{stderr}");
    // Off a terminal: plain lines, no escape codes; the job's start, its prefixed log lines
    // and its end, in that order.
    assert!(!stdout.contains('\u{1b}'), "{stdout}");
    let position = |text: &str| {
        stdout
            .find(text)
            .unwrap_or_else(|| panic!("missing `{text}` in:\n{stdout}"))
    };
    assert!(position("run 1 — .github/workflows/fail.yml\n") < position("● broken started"));
    assert!(position("● broken started") < position("broken | oops"));
    assert!(position("broken | oops") < position("✗ broken failure in "));
    assert!(
        position("✗ broken failure in ")
            < position("run 1 .github/workflows/fail.yml: failure in ")
    );
    assert!(stderr.contains(".github/workflows/bad.yml:"), "{stderr}");
    assert!(
        stderr.contains("other.yml: not started by `push`"),
        "{stderr}"
    );
}

#[test]
fn gantry_run_runs_a_local_reusable_workflow_with_inputs_and_outputs() {
    let repo = tempfile::tempdir().unwrap();
    let workflows = repo.path().join(".github/workflows");
    std::fs::create_dir_all(&workflows).unwrap();
    std::fs::write(
        workflows.join("build.yml"),
        "on:\n  workflow_call:\n    inputs:\n      target:\n        type: string\n        required: true\n    outputs:\n      artifact:\n        value: ${{ jobs.compile.outputs.artifact }}\njobs:\n  compile:\n    runs-on: ubuntu-latest\n    outputs:\n      artifact: ${{ steps.c.outputs.artifact }}\n    steps:\n      - id: c\n        run: echo \"artifact=${{ inputs.target }}-built\" >> \"$GITHUB_OUTPUT\"\n",
    )
    .unwrap();
    std::fs::write(
        workflows.join("ci.yml"),
        "on: push\njobs:\n  call:\n    uses: ./.github/workflows/build.yml\n    with:\n      target: demo\n  ship:\n    needs: call\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo shipping ${{ needs.call.outputs.artifact }}\n",
    )
    .unwrap();
    // Trusted test workflows: the host executor keeps this scenario machine-independent.
    let output = gantry(&["run", ".", "--unsafe-host-executor"], repo.path());
    let stdout = text(&output.stdout);
    let stderr = text(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("✓ call / compile success"), "{stdout}");
    assert!(stdout.contains("shipping demo-built"), "{stdout}");
}

#[test]
fn gantry_up_keeps_a_warm_runner_runs_a_submitted_workflow_and_cleans_up_on_sigterm() {
    if !bubblewrap_or_skip("gantry up") {
        return;
    }
    let data = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let log = data.path().join("up.log");
    let mut up = Command::new(env!("CARGO_BIN_EXE_gantry"))
        .args([
            "up",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--min-idle",
            "1",
            "--json",
        ])
        .arg("--data-dir")
        .arg(data.path().join("state"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let get = |path: &str| -> serde_json::Value {
        agent
            .get(&format!("{url}/api/v1{path}"))
            .call()
            .ok()
            .and_then(|mut response| response.body_mut().read_json().ok())
            .unwrap_or(serde_json::Value::Null)
    };
    let wait = |what: &str, check: &dyn Fn() -> bool| {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !check() {
            assert!(
                Instant::now() < deadline,
                "{what} never happened:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    // `--json`: where to find it, as one line on stdout once it is up.
    let mut first_line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(up.stdout.take().unwrap()),
        &mut first_line,
    )
    .unwrap();
    let where_: serde_json::Value = serde_json::from_str(&first_line).unwrap_or_else(|e| {
        panic!(
            "{e}: {first_line}\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        )
    });
    assert_eq!(where_["server"], url.as_str());
    assert_eq!(where_["min_idle"], 1);
    assert_eq!(
        where_["runner_logs"],
        data.path().join("state/logs").to_str().unwrap()
    );
    // The warm pool: one idle runner registers before any job exists.
    wait("a warm runner", &|| {
        get("/runners")["runners"]
            .as_array()
            .is_some_and(|runners| runners.len() == 1)
    });
    let cli = |args: &[&str]| {
        let output = Command::new(env!("CARGO_BIN_EXE_gantry"))
            .args(args)
            .env("GANTRY_SERVER", &url)
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", text(&output.stderr));
        text(&output.stdout)
    };
    cli(&["org", "create", "acme"]);
    cli(&["repo", "create", "acme/app"]);
    let file = data.path().join("ci.yml");
    std::fs::write(
        &file,
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo one\n  b:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo two\n",
    )
    .unwrap();
    let run = cli(&["submit", "--repo", "acme/app", file.to_str().unwrap()]);
    let run = run.trim();
    // `gantry watch` follows the run to its end: each job with its log, exit 0 on success.
    let watched = cli(&["watch", run]);
    assert!(
        watched.contains("✓ a success") && watched.contains("a | one"),
        "{watched}"
    );
    assert!(
        watched.contains(&format!("run {run} ")) && watched.contains(": success"),
        "{watched}"
    );
    assert_eq!(get(&format!("/runs/{run}"))["run"]["conclusion"], "success");
    // `--json`: only the finished run, as the API describes it.
    let watched: serde_json::Value =
        serde_json::from_str(cli(&["watch", run, "--json"]).trim()).unwrap();
    assert_eq!(watched["run"]["conclusion"], "success");
    assert_eq!(watched["jobs"].as_array().map(Vec::len), Some(2));
    // SIGTERM: the runners it launched are removed, then it exits cleanly.
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(up.id() as i32).unwrap(),
        rustix::process::Signal::TERM,
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = up.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "gantry up did not stop");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        status.success(),
        "{status}\n{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    let leftovers = Command::new("pgrep")
        .args(["-f", &format!("gantry runner --server {url}")])
        .output()
        .unwrap();
    assert!(
        leftovers.stdout.is_empty(),
        "runner processes left: {}",
        text(&leftovers.stdout)
    );
}

/// A repository whose `lint` job fails and whose `deploy` needs `test` needs `build`.
fn chain_repository() -> tempfile::TempDir {
    let repo = tempfile::tempdir().unwrap();
    let workflows = repo.path().join(".github/workflows");
    std::fs::create_dir_all(&workflows).unwrap();
    std::fs::write(
        workflows.join("ci.yml"),
        "\
on: push
jobs:
  build:
    runs-on: ubuntu-latest
    steps:
      - run: echo built
  test:
    needs: build
    runs-on: ubuntu-latest
    steps:
      - run: echo tested
  deploy:
    needs: test
    runs-on: ubuntu-latest
    steps:
      - run: echo deployed
  lint:
    runs-on: ubuntu-latest
    steps:
      - run: echo linted; exit 3
",
    )
    .unwrap();
    repo
}

#[test]
fn gantry_run_job_runs_only_that_job_and_its_needs_and_exits_with_their_conclusion() {
    let repo = chain_repository();
    // `lint` fails, but it is not chosen: the run succeeds. `--json` prints only JSON.
    let output = gantry(
        &[
            "run",
            ".",
            "--unsafe-host-executor",
            "--job",
            "test",
            "--json",
        ],
        repo.path(),
    );
    let stdout = text(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{stdout}\n{}",
        text(&output.stderr)
    );
    let runs: Vec<serde_json::Value> = stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect();
    assert_eq!(runs.len(), 1, "{stdout}");
    assert_eq!(runs[0]["run"]["conclusion"], "success");
    let ran: Vec<&str> = runs[0]["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|job| job["name"].as_str().unwrap())
        .collect();
    assert_eq!(ran, ["build", "test"]);

    // The failing job alone: the run fails, and so does the command.
    let output = gantry(
        &["run", ".", "--unsafe-host-executor", "--job", "lint"],
        repo.path(),
    );
    let stdout = text(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(1),
        "{stdout}\n{}",
        text(&output.stderr)
    );
    assert!(stdout.contains("lint | linted"), "{stdout}");
    assert!(!stdout.contains("build"), "{stdout}");
}

#[test]
fn gantry_run_job_with_an_unknown_id_lists_the_ids_that_exist() {
    let repo = chain_repository();
    let output = gantry(&["run", ".", "--job", "tset"], repo.path());
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("`tset`"), "{stderr}");
    assert!(
        stderr.contains(".github/workflows/ci.yml: build, test, deploy, lint"),
        "{stderr}"
    );
}

/// Ctrl-C during `gantry run` cancels the run instead of abandoning it: the running job is
/// stopped by its runner and ends cancelled, an `always()` job still runs, and the command
/// exits with 130.
#[test]
fn ctrl_c_during_gantry_run_cancels_the_run_and_exits_130() {
    use std::io::{BufRead, BufReader};

    let repo = tempfile::tempdir().unwrap();
    let workflows = repo.path().join(".github/workflows");
    std::fs::create_dir_all(&workflows).unwrap();
    std::fs::write(
        workflows.join("slow.yml"),
        "on: push\njobs:\n  slow:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo slow-began; sleep 120\n  cleanup:\n    needs: slow\n    if: always()\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo cleanup-ran\n",
    )
    .unwrap();
    // Trusted test workflow: the host executor keeps this scenario machine-independent.
    let mut child = Command::new(env!("CARGO_BIN_EXE_gantry"))
        .args(["run", ".", "--unsafe-host-executor"])
        .current_dir(repo.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (lines, received) = std::sync::mpsc::channel::<String>();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !seen
        .iter()
        .any(|line: &String| line.contains("slow | slow-began"))
    {
        let left = deadline.saturating_duration_since(Instant::now());
        match received.recv_timeout(left) {
            Ok(line) => seen.push(line),
            Err(_) => {
                let _ = child.kill();
                panic!("the slow job never began:\n{}", seen.join("\n"));
            }
        }
    }
    let interrupted = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(interrupted.success());
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("gantry run did not end after Ctrl-C:\n{}", seen.join("\n"));
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    seen.extend(received.try_iter());
    let stdout = seen.join("\n");
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(130), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("interrupted: cancelling the runs"),
        "{stderr}"
    );
    assert!(stdout.contains("⊘ slow cancelled"), "{stdout}");
    assert!(stdout.contains("cleanup | cleanup-ran"), "{stdout}");
    assert!(stdout.contains(": cancelled"), "{stdout}");
}
