//! Scenario tests of the HTTP API and the CLI commands over it, against the real binary:
//! what a client sees for good and bad requests, and that a restart keeps everything.

use serde_json::{Value, json};

use crate::support::{Server, demo_workflow, postgres_server_args, text};

const BAD_WORKFLOW: &str = "on: push\njobs:\n  build:\n    runs-on: ubuntu-latest\n    needs: nope\n    steps:\n      - run: echo ${{ secrets.X }\n";

fn trigger(workflow: &str) -> Value {
    json!({ "workflow_path": ".github/workflows/ci.yml", "workflow": workflow })
}

fn demo_text() -> String {
    std::fs::read_to_string(demo_workflow()).unwrap()
}

fn job<'a>(detail: &'a Value, name: &str) -> &'a Value {
    detail["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|job| job["name"] == name)
        .unwrap_or_else(|| panic!("no job {name} in {detail:#}"))
}

fn complete(server: &Server, run: i64, job: &Value, conclusion: &str) -> Value {
    server.post_ok(
        &format!("/api/v1/internal/runs/{run}/jobs/{}/complete", job["id"]),
        &json!({ "conclusion": conclusion, "outputs": { "version": "1.2" } }),
        200,
    )
}

#[test]
fn demo_workflow_runs_through_the_api_and_the_cli() {
    demo_scenario(&Server::start());
}

#[test]
fn demo_workflow_runs_through_the_api_and_the_cli_on_postgresql() {
    let Some(args) = postgres_server_args() else {
        return;
    };
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    demo_scenario(&Server::start_with(&args));
}

/// The demo workflow submitted, driven to its end through the API and read back by the CLI.
fn demo_scenario(server: &Server) {
    server.create_repo("acme", "app");
    let demo = demo_workflow();

    let submitted = server.cli(&[
        "submit",
        "--repo",
        "acme/app",
        "--sha",
        "abc123",
        demo.to_str().unwrap(),
    ]);
    assert!(
        submitted.status.success(),
        "stderr: {}",
        text(&submitted.stderr)
    );
    let run: i64 = text(&submitted.stdout).trim().parse().unwrap();
    assert!(
        text(&submitted.stderr).contains("created run"),
        "{}",
        text(&submitted.stderr)
    );

    let listed = server.cli(&["runs", "list", "--json"]);
    assert!(listed.status.success(), "stderr: {}", text(&listed.stderr));
    let list: Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(list["items"][0]["id"], run);
    assert_eq!(list["items"][0]["repository"], "acme/app");
    assert_eq!(list["items"][0]["workflow_name"], "demo");
    assert_eq!(
        list["items"][0]["workflow_path"],
        ".github/workflows/ci.yml"
    );
    assert_eq!(list["items"][0]["ref"], "refs/heads/main");
    assert_eq!(list["items"][0]["sha"], "abc123");
    assert_eq!(list["items"][0]["run_number"], 1);
    assert_eq!(list["items"][0]["status"], "queued");
    let table = server.cli(&["runs", "list", "--repo", "acme/app"]);
    assert!(
        text(&table.stdout).contains("demo #1"),
        "{}",
        text(&table.stdout)
    );

    // The run with its jobs and why each waits.
    let detail = server.get_ok(&format!("/api/v1/runs/{run}"));
    assert_eq!(detail["jobs"].as_array().unwrap().len(), 7, "{detail:#}");
    let setup = job(&detail, "setup");
    assert_eq!(setup["status"], "queued");
    assert_eq!(setup["waiting_reasons"][0]["kind"], "runner");
    assert_eq!(
        setup["waiting_reasons"][0]["labels"],
        json!(["ubuntu-latest"])
    );
    let report = job(&detail, "report");
    assert_eq!(report["status"], "waiting");
    assert_eq!(report["waiting_reasons"][0]["kind"], "needs");
    assert_eq!(
        report["waiting_reasons"][0]["jobs"],
        json!(["test", "lint"])
    );
    assert_eq!(
        report["waiting_reasons"][0]["message"],
        "waiting on needs: test, lint"
    );
    let shown = server.cli(&["runs", "get", &run.to_string()]);
    assert!(
        text(&shown.stdout).contains("waiting on needs: setup"),
        "{}",
        text(&shown.stdout)
    );
    let shown = server.cli(&["runs", "get", &run.to_string(), "--json"]);
    let shown: Value = serde_json::from_slice(&shown.stdout).unwrap();
    assert_eq!(shown["run"]["id"], run);

    // Completing `setup` releases its dependents, with its outputs.
    let setup = complete(server, run, setup, "success");
    assert_eq!(setup["status"], "completed");
    assert_eq!(setup["outputs"], json!({ "version": "1.2" }));
    let detail = server.get_ok(&format!("/api/v1/runs/{run}"));
    assert_eq!(detail["run"]["status"], "in_progress");
    assert_eq!(job(&detail, "lint")["status"], "queued");
    assert_eq!(
        job(&detail, "release")["waiting_reasons"][0]["jobs"],
        json!(["test", "lint"])
    );
    let jobs = server.get_ok(&format!("/api/v1/runs/{run}/jobs"));
    assert_eq!(jobs["items"].as_array().unwrap().len(), 7);
    let one = server.get_ok(&format!("/api/v1/runs/{run}/jobs/{}", setup["id"]));
    assert_eq!(one["job_key"], "setup");

    // A second completion of the same job is refused and changes nothing.
    let (status, error) = server.post(
        &format!("/api/v1/internal/runs/{run}/jobs/{}/complete", setup["id"]),
        &json!({ "conclusion": "failure" }),
    );
    assert_eq!(status, 409, "{error}");
    assert_eq!(error["error"]["code"], "conflict");

    // Re-running a running run is a conflict, through the API and the CLI.
    let (status, error) = server.post(&format!("/api/v1/runs/{run}/rerun"), &json!({}));
    assert_eq!(status, 409, "{error}");
    assert_eq!(
        error["error"]["message"],
        "the run has not completed, so it cannot be re-run"
    );
    let rerun = server.cli(&["rerun", &run.to_string()]);
    assert_eq!(rerun.status.code(), Some(1));
    assert!(
        text(&rerun.stderr).contains("409"),
        "{}",
        text(&rerun.stderr)
    );

    // Cancel one job, then the run; a second cancel is a conflict.
    let lint = job(&detail, "lint").clone();
    let cancelled = server.post_ok(
        &format!("/api/v1/runs/{run}/jobs/{}/cancel", lint["id"]),
        &json!({}),
        202,
    );
    assert_eq!(cancelled["conclusion"], "cancelled");
    let cancel = server.cli(&["cancel", &run.to_string()]);
    assert!(cancel.status.success(), "stderr: {}", text(&cancel.stderr));
    let detail = server.get_ok(&format!("/api/v1/runs/{run}"));
    assert_eq!(detail["run"]["status"], "completed");
    assert_eq!(detail["run"]["conclusion"], "cancelled");
    assert!(detail["run"]["completed_at"].is_string());
    assert_eq!(
        job(&detail, "test (python, small)")["conclusion"],
        "cancelled"
    );
    let (status, error) = server.post(&format!("/api/v1/runs/{run}/cancel"), &json!({}));
    assert_eq!(status, 409, "{error}");
    assert_eq!(error["error"]["message"], "the run has already completed");

    // A text body on a re-run is refused and changes nothing.
    let (status, error) = server.raw(
        "POST",
        &format!("/api/v1/runs/{run}/rerun"),
        Some(b"failed"),
        &[("content-type", "text/plain")],
    );
    assert_eq!(status, 415, "{error}");

    // Re-run only what failed or was cancelled: a new attempt that keeps `setup`.
    let rerun = server.cli(&["rerun", &run.to_string(), "--failed", "--json"]);
    assert!(rerun.status.success(), "stderr: {}", text(&rerun.stderr));
    let rerun: Value = serde_json::from_slice(&rerun.stdout).unwrap();
    assert_eq!(rerun["attempt"], 2);
    let detail = server.get_ok(&format!("/api/v1/runs/{run}"));
    assert_eq!(job(&detail, "setup")["conclusion"], "success");
    assert_eq!(job(&detail, "setup")["attempt"], 1);
    assert_eq!(job(&detail, "lint")["status"], "queued");
    assert_eq!(job(&detail, "lint")["attempt"], 2);
    assert!(server.log().contains("run re-run"));

    // A bare POST (no body, no content type) re-runs every job, once the run has ended.
    let cancel = server.cli(&["cancel", &run.to_string()]);
    assert!(cancel.status.success(), "stderr: {}", text(&cancel.stderr));
    let (status, rerun) = server.raw("POST", &format!("/api/v1/runs/{run}/rerun"), Some(b""), &[]);
    assert_eq!(status, 201, "{rerun}");
    assert_eq!(rerun["attempt"], 3);
}

#[test]
fn bad_input_gets_a_precise_error_and_changes_nothing() {
    let server = Server::start();
    server.create_repo("acme", "app");
    let runs = "/api/v1/repos/acme/app/runs";

    // An invalid workflow: 422 with every problem's line:col, and nothing stored.
    let (status, error) = server.post(runs, &trigger(BAD_WORKFLOW));
    assert_eq!(status, 422, "{error}");
    assert_eq!(error["error"]["code"], "workflow_invalid");
    let details = error["error"]["details"].as_array().unwrap();
    assert_eq!(
        (details[0]["line"].clone(), details[0]["col"].clone()),
        (json!(5), json!(12))
    );
    assert!(details[0]["message"].as_str().unwrap().contains("nope"));
    assert_eq!(details[1]["line"], 7);
    assert_eq!(server.get_ok(runs)["items"], json!([]));
    assert_eq!(server.get_ok("/api/v1/health")["queued_jobs"], 0);

    // Malformed JSON and unknown fields: 400 with the position in the body.
    let (status, error) = server.raw("POST", runs, Some(b"{\"workflow_path\": "), &[]);
    assert_eq!(status, 400, "{error}");
    assert_eq!(error["error"]["code"], "invalid_json");
    let mut unknown = trigger(&demo_text());
    unknown["branch"] = json!("main");
    let (status, error) = server.post(runs, &unknown);
    assert_eq!(status, 400, "{error}");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("unknown field `branch`"),
        "{error}"
    );
    let (status, error) = server.post("/api/v1/orgs", &json!({ "name": "x", "weight": "heavy" }));
    assert_eq!(
        (status, error["error"]["code"].clone()),
        (400, json!("invalid_json"))
    );
    let (status, error) = server.post("/api/v1/orgs", &json!({ "name": "no/slash" }));
    assert_eq!(
        (status, error["error"]["code"].clone()),
        (400, json!("invalid_request"))
    );
    assert_eq!(error["error"]["details"][0]["field"], "name");
    let (status, error) = server.raw(
        "POST",
        "/api/v1/orgs",
        Some(b"name=x"),
        &[("content-type", "text/plain")],
    );
    assert_eq!(
        (status, error["error"]["code"].clone()),
        (415, json!("unsupported_media_type"))
    );
    let (status, error) = server.get("/api/v1/runs?limit=0");
    assert_eq!(
        (status, error["error"]["code"].clone()),
        (400, json!("invalid_request"))
    );
    let (status, _) = server.get("/api/v1/runs?colour=red");
    assert_eq!(status, 400);
    let (status, _) = server.get("/api/v1/runs/abc");
    assert_eq!(status, 400);

    // A body over the limit (2 MB by default): 413.
    let huge = trigger(&format!(
        "# {}\n{}",
        "x".repeat(2 * 1024 * 1024),
        demo_text()
    ));
    let (status, error) = server.post(runs, &huge);
    assert_eq!(status, 413, "{error}");
    assert_eq!(error["error"]["code"], "payload_too_large");

    // Unknown organizations, repositories, runs and jobs: 404.
    let (status, error) = server.post("/api/v1/repos/acme/nope/runs", &trigger(&demo_text()));
    assert_eq!(status, 404, "{error}");
    assert_eq!(
        error["error"]["message"],
        "repository `acme/nope` not found"
    );
    let (status, _) = server.post("/api/v1/orgs/nobody/repos", &json!({ "name": "app" }));
    assert_eq!(status, 404);
    let (status, _) = server.get("/api/v1/orgs/nobody");
    assert_eq!(status, 404);
    let (status, error) = server.get("/api/v1/runs/999");
    assert_eq!(
        (status, error["error"]["message"].clone()),
        (404, json!("run 999 not found"))
    );
    let (status, _) = server.post("/api/v1/runs/999/cancel", &json!({}));
    assert_eq!(status, 404);
    let (status, _) = server.get("/api/v1/nothing/here");
    assert_eq!(status, 404);
    let (status, error) = server.raw("PUT", "/api/v1/orgs", Some(b"{}"), &[]);
    assert_eq!(
        (status, error["error"]["code"].clone()),
        (405, json!("method_not_allowed"))
    );

    // Taken names: 409.
    let (status, error) = server.post("/api/v1/orgs", &json!({ "name": "acme" }));
    assert_eq!(
        (status, error["error"]["code"].clone()),
        (409, json!("conflict"))
    );

    // After all that, the first run created is still number 1.
    let run = server.post_ok(runs, &trigger(&demo_text()), 201);
    assert_eq!(run["run_number"], 1);
    assert_eq!(server.get_ok(runs)["items"].as_array().unwrap().len(), 1);

    // The body limit is configurable.
    drop(server);
    let small = Server::start_with(&["--max-body-bytes", "1000"]);
    small.create_repo("acme", "app");
    let (status, _) = small.post("/api/v1/repos/acme/app/runs", &trigger(&demo_text()));
    assert_eq!(status, 413);
}

#[test]
fn submit_prints_file_line_col_for_an_invalid_workflow() {
    let server = Server::start();
    server.create_repo("acme", "app");
    let file = server.data_dir().join("bad.yml");
    std::fs::write(&file, BAD_WORKFLOW).unwrap();
    let output = server.cli(&["submit", "--repo", "acme/app", file.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    assert!(output.stdout.is_empty());
    let stderr = text(&output.stderr);
    let prefix = format!("{}:5:12: ", file.display());
    assert!(stderr.contains(&prefix), "missing {prefix:?} in {stderr}");
    assert!(
        stderr.contains(&format!("{}:7:", file.display())),
        "{stderr}"
    );

    let output = server.cli(&["submit", "--repo", "acme/nope", file.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output.stderr).contains("404"),
        "{}",
        text(&output.stderr)
    );
    let output = server.cli(&["runs", "get", "12345"]);
    assert_eq!(output.status.code(), Some(1));
}

#[test]
fn duplicate_idempotency_key_returns_the_same_run() {
    let server = Server::start();
    server.create_repo("acme", "app");
    let runs = "/api/v1/repos/acme/app/runs";
    let body = trigger(&demo_text()).to_string();
    let key = [("Idempotency-Key", "push-42")];
    let (first_status, first) = server.raw("POST", runs, Some(body.as_bytes()), &key);
    assert_eq!(first_status, 201, "{first}");
    let (second_status, second) = server.raw("POST", runs, Some(body.as_bytes()), &key);
    assert_eq!(second_status, 200, "{second}");
    assert_eq!(first["id"], second["id"]);
    assert_eq!(server.get_ok(runs)["items"].as_array().unwrap().len(), 1);
    assert_eq!(server.get_ok("/api/v1/health")["queued_jobs"], 1);

    // The CLI takes the key too.
    let demo = demo_workflow();
    let output = server.cli(&[
        "submit",
        "--repo",
        "acme/app",
        "--idempotency-key",
        "push-42",
        demo.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert_eq!(text(&output.stdout).trim(), first["id"].to_string());

    // The same key for another submission is a conflict.
    let mut other = trigger(&demo_text());
    other["ref"] = json!("refs/heads/other");
    let (status, error) = server.raw("POST", runs, Some(other.to_string().as_bytes()), &key);
    assert_eq!(status, 409, "{error}");
    assert_eq!(server.get_ok(runs)["items"].as_array().unwrap().len(), 1);
}

#[test]
fn openapi_document_is_served_as_committed() {
    let server = Server::start();
    let (status, served) = server.get("/api/v1/openapi.json");
    assert_eq!(status, 200);
    let committed =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../gantry-server/openapi.json");
    let committed: Value =
        serde_json::from_str(&std::fs::read_to_string(committed).unwrap()).unwrap();
    assert_eq!(served, committed);
    assert_eq!(served["openapi"], "3.1.0");
}

#[test]
fn server_listens_on_loopback_by_default() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_gantry"))
        .args(["server", "--help"])
        .output()
        .unwrap();
    assert!(
        text(&output.stdout).contains("[default: 127.0.0.1:8080]"),
        "{}",
        text(&output.stdout)
    );
}

#[test]
fn a_killed_server_rebuilds_its_queue_from_the_store() {
    let mut server = Server::start();
    server.create_repo("acme", "app");
    let run = server.post_ok("/api/v1/repos/acme/app/runs", &trigger(&demo_text()), 201);
    let run = run["id"].as_i64().unwrap();
    let detail = server.get_ok(&format!("/api/v1/runs/{run}"));
    complete(&server, run, job(&detail, "setup"), "success");
    let queue_before = server.get_ok("/api/v1/internal/queue");
    assert_eq!(queue_before["items"].as_array().unwrap().len(), 4);

    server.restart();
    assert!(server.log().contains("queue rebuilt from the store"));
    assert_eq!(server.get_ok("/api/v1/internal/queue"), queue_before);
    assert_eq!(server.get_ok("/api/v1/health")["queued_jobs"], 4);
    let after = server.get_ok(&format!("/api/v1/runs/{run}"));
    assert_eq!(after["run"]["status"], "in_progress");

    // Work goes on where it stopped: fail `lint`, finish the tests.
    for name in [
        "test (python, small)",
        "test (python, large)",
        "test (shell, small)",
    ] {
        complete(&server, run, job(&after, name), "success");
    }
    // `lint` may fail (`continue-on-error`): `report` (`if: failure()`) is skipped and
    // `release` runs.
    complete(&server, run, job(&after, "lint"), "failure");
    let failed = server.get_ok(&format!("/api/v1/runs/{run}"));
    assert_eq!(job(&failed, "release")["status"], "queued", "{failed:#}");
    assert_eq!(job(&failed, "report")["conclusion"], "skipped");
    assert_eq!(server.get_ok("/api/v1/health")["queued_jobs"], 1);
    complete(&server, run, job(&failed, "release"), "success");
    let done = server.get_ok(&format!("/api/v1/runs/{run}"));
    assert_eq!(done["run"]["status"], "completed", "{done:#}");
    assert_eq!(done["run"]["conclusion"], "success");
    assert_eq!(server.get_ok("/api/v1/health")["queued_jobs"], 0);
}

#[test]
fn repository_lists_come_in_pages_with_a_cursor() {
    let server = Server::start();
    server.create_repo("acme", "a");
    for name in ["b", "c"] {
        server.post_ok("/api/v1/orgs/acme/repos", &json!({ "name": name }), 201);
    }
    let first = server.get_ok("/api/v1/orgs/acme/repos?limit=2");
    let names: Vec<&str> = first["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|repo| repo["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a", "b"]);
    let cursor = first["next_cursor"].as_str().expect("a next page");
    let second = server.get_ok(&format!("/api/v1/orgs/acme/repos?limit=2&cursor={cursor}"));
    assert_eq!(second["items"][0]["name"], "c");
    assert_eq!(second["items"].as_array().unwrap().len(), 1);
    assert!(second["next_cursor"].is_null(), "{second}");
    for bad in ["limit=0", "limit=100000", "cursor=abc", "colour=red"] {
        let (status, answer) = server.get(&format!("/api/v1/orgs/acme/repos?{bad}"));
        assert_eq!(status, 400, "{bad}: {answer}");
    }
    let (status, _) = server.get("/api/v1/orgs/nobody/repos");
    assert_eq!(status, 404);
}

/// Every admin command that prints data has `--json`: one parsable line on stdout each.
#[test]
fn admin_commands_print_what_they_made_as_json() {
    let server = Server::start();
    let json_of = |args: &[&str]| -> Value {
        let output = server.cli(args);
        assert!(
            output.status.success(),
            "{args:?}: {}",
            text(&output.stderr)
        );
        let stdout = text(&output.stdout);
        assert_eq!(stdout.lines().count(), 1, "{args:?}: {stdout}");
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{args:?}: {e}: {stdout}"))
    };
    let org = json_of(&["org", "create", "acme", "--weight", "2", "--json"]);
    assert_eq!(org["name"], "acme");
    assert_eq!(org["weight"], 2);
    let repo = json_of(&["repo", "create", "acme/app", "--json"]);
    assert_eq!(repo["full_name"], "acme/app");
    assert_eq!(repo["default_branch"], "main");

    let dir = tempfile::tempdir().unwrap();
    let bare = dir.path().join("app.git");
    let init = std::process::Command::new("git")
        .args(["init", "-q", "--bare", "-b", "main"])
        .arg(&bare)
        .output()
        .unwrap();
    assert!(init.status.success(), "{}", text(&init.stderr));
    let added = json_of(&[
        "repo",
        "add",
        "acme/app",
        "--path",
        bare.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(added["repository"], "acme/app");
    assert_eq!(
        added["git_path"],
        std::fs::canonicalize(&bare).unwrap().to_str().unwrap()
    );
    assert_eq!(added["has_webhook_secret"], false);
    assert_eq!(added["hook"], Value::Null);

    assert_eq!(
        json_of(&["runners", "list", "--json"]),
        json!({ "runners": [] })
    );
    let table = server.cli(&["runners", "list"]);
    assert!(
        text(&table.stdout).starts_with("    ID  NAME"),
        "{}",
        text(&table.stdout)
    );
}

/// `gantry watch` outlives a server restart: it asks again until the server answers, then
/// follows the run to its end and exits with its conclusion.
#[test]
fn watch_follows_a_run_across_a_server_restart() {
    let mut server = Server::start();
    server.create_repo("acme", "app");
    let file = server.data_dir().join("ci.yml");
    std::fs::write(
        &file,
        "on: push\njobs:\n  only:\n    runs-on: ubuntu-latest\n    steps:\n      - run: 'true'\n",
    )
    .unwrap();
    let submitted = server.cli(&["submit", "--repo", "acme/app", file.to_str().unwrap()]);
    assert!(submitted.status.success(), "{}", text(&submitted.stderr));
    let run: i64 = text(&submitted.stdout).trim().parse().unwrap();
    let watch = std::process::Command::new(env!("CARGO_BIN_EXE_gantry"))
        .args(["watch", &run.to_string()])
        .env("GANTRY_SERVER", &server.url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // No runner: the job waits while the server goes away and comes back.
    std::thread::sleep(std::time::Duration::from_millis(300));
    server.kill();
    std::thread::sleep(std::time::Duration::from_secs(1));
    server.restart();
    let detail = server.get_ok(&format!("/api/v1/runs/{run}"));
    complete(&server, run, job(&detail, "only"), "success");
    let output = watch.wait_with_output().unwrap();
    let stdout = text(&output.stdout);
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stderr.contains("retrying"), "{stderr}");
    assert!(stdout.contains("✓ only success"), "{stdout}");
    assert!(stdout.contains(&format!("run {run} ")), "{stdout}");
}
