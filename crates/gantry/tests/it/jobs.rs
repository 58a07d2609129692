//! Scenario tests of `gantry jobs why|priority` against the real binary: why a job waits, as
//! the dispatcher and the engine see it, and changing its priority.

use serde_json::{Value, json};

use crate::support::{Server, text};

const GPU_WORKFLOW: &str = "\
on: push
jobs:
  train:
    runs-on: [self-hosted, gpu]
    steps:
      - run: ./train
  report:
    needs: train
    runs-on: ubuntu-latest
    steps:
      - run: ./report
";

fn jobs_of(server: &Server, run: i64) -> Vec<Value> {
    server.get_ok(&format!("/api/v1/runs/{run}/jobs"))["items"]
        .as_array()
        .unwrap()
        .clone()
}

fn id_of(jobs: &[Value], key: &str) -> i64 {
    jobs.iter()
        .find(|job| job["job_key"] == key)
        .and_then(|job| job["id"].as_i64())
        .unwrap_or_else(|| panic!("no job {key} in {jobs:?}"))
}

#[test]
fn jobs_why_names_the_missing_runner_labels_and_priority_refuses_completed_jobs() {
    let server = Server::start();
    server.create_repo("acme", "ml");
    let run = server.post_ok(
        "/api/v1/repos/acme/ml/runs",
        &json!({ "workflow_path": ".github/workflows/train.yml", "workflow": GPU_WORKFLOW }),
        201,
    )["id"]
        .as_i64()
        .unwrap();
    let jobs = jobs_of(&server, run);
    let train = id_of(&jobs, "train");
    let report = id_of(&jobs, "report");

    // No runner at all: the reason names the labels the job asks for.
    let why = server.cli(&["jobs", "why", &train.to_string()]);
    assert!(why.status.success(), "stderr: {}", text(&why.stderr));
    let out = text(&why.stdout);
    assert!(
        out.contains("no online runner with labels [gpu, self-hosted]"),
        "{out}"
    );
    assert!(out.contains("position 1 of 1"), "{out}");

    let why = server.cli(&["jobs", "why", &train.to_string(), "--json"]);
    assert!(why.status.success(), "stderr: {}", text(&why.stderr));
    let answer: Value = serde_json::from_str(&text(&why.stdout)).unwrap();
    assert_eq!(answer["job_id"], train);
    assert_eq!(answer["status"], "queued");
    let kinds: Vec<&Value> = answer["waiting_reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|reason| &reason["kind"])
        .collect();
    assert!(kinds.contains(&&json!("no_online_runner")), "{answer}");

    // The engine's reason for a job that needs another.
    let why = server.cli(&["jobs", "why", &report.to_string()]);
    assert!(why.status.success(), "stderr: {}", text(&why.stderr));
    assert!(text(&why.stdout).contains("train"), "{}", text(&why.stdout));

    // A priority change of a queued job is taken; of a completed one refused.
    let set = server.cli(&["jobs", "priority", &train.to_string(), "-2"]);
    assert!(set.status.success(), "stderr: {}", text(&set.stderr));
    assert_eq!(text(&set.stdout).trim(), train.to_string());
    server.post_ok(
        &format!("/api/v1/internal/runs/{run}/jobs/{train}/complete"),
        &json!({ "conclusion": "success" }),
        200,
    );
    let set = server.cli(&["jobs", "priority", &train.to_string(), "3"]);
    assert_eq!(set.status.code(), Some(1), "stderr: {}", text(&set.stderr));
    assert!(
        text(&set.stderr).contains("completed"),
        "{}",
        text(&set.stderr)
    );

    // An unknown job is refused with exit code 1.
    let why = server.cli(&["jobs", "why", "999999"]);
    assert_eq!(why.status.code(), Some(1), "stderr: {}", text(&why.stderr));
}
