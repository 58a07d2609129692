//! Scenario tests of `gantry runners token|list` against the real binary: a registration token
//! for a runner group restricted to one repository, and the runner it registers as listed; a
//! runner claiming and completing jobs in batches over HTTP.

use serde_json::{Value, json};

use crate::support::{Server, text};

#[test]
fn runners_token_makes_a_group_token_and_runners_list_shows_the_runner_it_registered() {
    let server = Server::start();
    server.create_repo("acme", "ml");
    let made = server.cli(&[
        "runners", "token", "--org", "acme", "--group", "GPU", "--repo", "ml",
    ]);
    assert!(made.status.success(), "stderr: {}", text(&made.stderr));
    let token = text(&made.stdout).trim().to_owned();
    assert!(!token.is_empty() && !token.contains(' '), "{token}");
    assert!(
        text(&made.stderr).contains("group gpu"),
        "{}",
        text(&made.stderr)
    );

    let registered = server.post_ok(
        "/api/v1/runners/register",
        &json!({
            "token": token,
            "name": "farm-1",
            "labels": ["linux"],
            "capacity": 1,
            "ephemeral": false,
            "protocol_version": 1,
        }),
        201,
    );
    assert_eq!(registered["group"], "gpu");

    let listed = server.cli(&["runners", "list", "--json"]);
    assert!(listed.status.success(), "stderr: {}", text(&listed.stderr));
    let list: Value = serde_json::from_str(&text(&listed.stdout)).unwrap();
    let runner = &list["runners"][0];
    assert_eq!(runner["name"], "farm-1");
    assert_eq!(runner["org"], "acme");
    assert_eq!(runner["group"], "gpu");
    assert_eq!(runner["repositories"], json!(["ml"]));
    let plain = server.cli(&["runners", "list"]);
    let out = text(&plain.stdout);
    assert!(
        out.contains("farm-1") && out.contains("group=gpu repos=ml"),
        "{out}"
    );

    // An unknown repository is refused by name and no token is made.
    let refused = server.cli(&["runners", "token", "--org", "acme", "--repo", "nope"]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        text(&refused.stderr).contains("`nope`"),
        "{}",
        text(&refused.stderr)
    );
    assert!(text(&refused.stdout).is_empty());
}

/// A runner over HTTP claims a batch of jobs (`POST /runner/claims`, no more than its
/// capacity) and reports their results in one request (`POST /runner/results`); a malformed
/// batch is a 400 naming the field, and the run completes from the batch's results.
#[test]
fn a_runner_claims_and_completes_jobs_in_batches_over_http() {
    let server = Server::start();
    server.create_repo("acme", "app");
    let made = server.cli(&["runners", "token", "--org", "acme"]);
    assert!(made.status.success(), "stderr: {}", text(&made.stderr));
    let token = text(&made.stdout).trim().to_owned();
    let registered = server.post_ok(
        "/api/v1/runners/register",
        &json!({
            "token": token, "name": "wide", "labels": ["linux"], "capacity": 2,
            "ephemeral": false, "protocol_version": 1,
        }),
        201,
    );
    let bearer = format!("Bearer {}", registered["credential"].as_str().unwrap());
    let auth = [("Authorization", bearer.as_str())];
    let post = |path: &str, body: &Value| {
        server.raw("POST", path, Some(body.to_string().as_bytes()), &auth)
    };
    let workflow = "on: push\njobs:\n  a:\n    runs-on: linux\n    steps: [{run: 'true'}]\n  b:\n    runs-on: linux\n    steps: [{run: 'true'}]\n  c:\n    runs-on: linux\n    steps: [{run: 'true'}]\n";
    let run = server.post_ok(
        "/api/v1/repos/acme/app/runs",
        &json!({"workflow_path": ".github/workflows/ci.yml", "workflow": workflow}),
        201,
    );

    let (status, refused) = post("/api/v1/runner/claims", &json!({"max_jobs": 0}));
    assert_eq!(status, 400, "{refused}");
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("`max_jobs`")
    );
    let (status, refused) = post("/api/v1/runner/claims", &json!({"max_jobs": 2, "jobs": 1}));
    assert_eq!(status, 400, "{refused}");

    let mut done = 0;
    while done < 3 {
        let (status, claimed) = post(
            "/api/v1/runner/claims",
            &json!({"max_jobs": 5, "wait_ms": 1000}),
        );
        assert_eq!(status, 200, "{claimed}");
        let jobs = claimed["jobs"].as_array().unwrap();
        assert!((1..=2).contains(&jobs.len()), "capacity 2: {claimed}");
        let results: Vec<Value> = jobs
            .iter()
            .map(|job| json!({"job_id": job["job_id"], "fencing_token": job["fencing_token"], "conclusion": "success"}))
            .collect();
        let twice: Vec<Value> = results.iter().chain(&results[..1]).cloned().collect();
        let (status, refused) = post("/api/v1/runner/results", &json!({"results": twice}));
        assert_eq!(status, 400, "{refused}");
        let (status, taken) = post("/api/v1/runner/results", &json!({"results": results}));
        assert_eq!(status, 200, "{taken}");
        let outcomes = taken["outcomes"].as_array().unwrap();
        assert_eq!(outcomes.len(), jobs.len());
        assert!(
            outcomes
                .iter()
                .all(|outcome| outcome.get("error").is_none()),
            "{taken}"
        );
        done += jobs.len();
    }
    let finished = server.get_ok(&format!("/api/v1/runs/{}", run["id"]));
    assert_eq!(finished["run"]["status"], "completed", "{finished}");
    assert_eq!(finished["run"]["conclusion"], "success", "{finished}");
}
