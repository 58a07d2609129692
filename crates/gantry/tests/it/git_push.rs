//! `git push` starts runs: a bare repository registered with `gantry repo add --install-hook`,
//! a clone that pushes into it, and the runs the installed `post-receive` hook started on a
//! real server. Plus the webhook endpoint over HTTP: unsigned deliveries are refused with 401.

use std::path::{Path, PathBuf};
use std::process::Command;

use gantry_server::webhook::sign;
use serde_json::{Value, json};

use crate::support::{Server, text};

const CI: &str = "on:\n  push:\n    paths: ['src/**']\njobs:\n  build:\n    runs-on: ubuntu-latest\n    steps:\n      - run: make\n";
const RELEASE: &str = "on:\n  push:\n    tags: ['v*']\njobs:\n  ship:\n    runs-on: ubuntu-latest\n    steps:\n      - run: ./ship\n";

fn git(dir: &Path, args: &[&str]) -> String {
    let output = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", dir)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "git {args:?}: {}{}",
        text(&output.stdout),
        text(&output.stderr)
    );
    // `git push` shows the hook's output as `remote: ...` on stderr.
    text(&output.stdout) + &text(&output.stderr)
}

/// A bare repository `DIR/app.git` registered as `acme/app` with the post-receive hook
/// installed (plus `extra` arguments to `gantry repo add`), and a work tree `DIR/work` with
/// `.github/workflows` whose `origin` is that bare repository.
fn hooked_repository(server: &Server, dir: &Path, extra: &[&str]) -> (PathBuf, PathBuf) {
    let bare = dir.join("app.git");
    let work = dir.join("work");
    std::fs::create_dir_all(work.join(".github/workflows")).unwrap();
    git(
        dir,
        &["init", "-q", "--bare", "-b", "main", bare.to_str().unwrap()],
    );
    let mut args = vec![
        "repo",
        "add",
        "acme/app",
        "--path",
        bare.to_str().unwrap(),
        "--install-hook",
    ];
    args.extend_from_slice(extra);
    let output = server.cli(&args);
    assert!(output.status.success(), "{}", text(&output.stderr));
    git(&work, &["init", "-q", "-b", "main"]);
    git(&work, &["config", "user.name", "Test"]);
    git(&work, &["config", "user.email", "test@example.com"]);
    git(&work, &["remote", "add", "origin", bare.to_str().unwrap()]);
    (bare, work)
}

fn runs(server: &Server) -> Vec<Value> {
    server.get_ok("/api/v1/repos/acme/app/runs")["items"]
        .as_array()
        .unwrap()
        .clone()
}

fn workflow_paths(runs: &[Value]) -> Vec<String> {
    let mut paths: Vec<String> = runs
        .iter()
        .map(|run| run["workflow_path"].as_str().unwrap().to_owned())
        .collect();
    paths.sort();
    paths
}

#[test]
fn git_push_into_a_registered_bare_repository_starts_the_matching_workflows() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let (bare, work) = hooked_repository(&server, dir.path(), &["--webhook-secret", "s3cret"]);
    assert!(bare.join("hooks/post-receive").is_file());
    let source = server.get_ok("/api/v1/repos/acme/app/source");
    assert_eq!(source["has_webhook_secret"], true);

    std::fs::create_dir_all(work.join("src")).unwrap();
    std::fs::write(work.join(".github/workflows/ci.yml"), CI).unwrap();
    std::fs::write(work.join(".github/workflows/release.yml"), RELEASE).unwrap();
    std::fs::write(work.join("src/main.c"), "int main;\n").unwrap();
    git(&work, &["add", "-A"]);
    git(&work, &["commit", "-q", "-m", "initial"]);
    let pushed = git(&work, &["push", "-q", "origin", "main"]);
    assert!(pushed.contains("gantry: run"), "hook output: {pushed}");
    assert_eq!(workflow_paths(&runs(&server)), [".github/workflows/ci.yml"]);

    // A change outside src/ starts nothing. A tag starts the release workflow, and `ci` too:
    // GitHub does not evaluate path filters for tag pushes, and `ci` filters no refs.
    std::fs::write(work.join("README.md"), "hi\n").unwrap();
    git(&work, &["add", "-A"]);
    git(&work, &["commit", "-q", "-m", "readme"]);
    git(&work, &["push", "-q", "origin", "main"]);
    assert_eq!(runs(&server).len(), 1);
    git(&work, &["tag", "-a", "v1", "-m", "v1"]);
    git(&work, &["push", "-q", "origin", "v1"]);
    let all = runs(&server);
    assert_eq!(
        workflow_paths(&all),
        [
            ".github/workflows/ci.yml",
            ".github/workflows/ci.yml",
            ".github/workflows/release.yml"
        ]
    );
    let head = git(&work, &["rev-parse", "HEAD"]);
    let release = all
        .iter()
        .find(|run| run["workflow_path"] == ".github/workflows/release.yml")
        .unwrap();
    assert_eq!(release["ref"], "refs/tags/v1");
    assert_eq!(release["sha"], head.trim());
}

#[test]
fn a_pushed_invalid_workflow_file_is_a_failed_run_that_runs_get_and_watch_explain() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let (_bare, work) = hooked_repository(&server, dir.path(), &[]);
    std::fs::write(
        work.join(".github/workflows/ci.yml"),
        "on: push\njobs:\n  build:\n    runs-on: ubuntu-latest\n    stepz: []\n",
    )
    .unwrap();
    git(&work, &["add", "-A"]);
    git(&work, &["commit", "-q", "-m", "broken"]);
    let pushed = git(&work, &["push", "-q", "origin", "main"]);
    assert!(pushed.contains("invalid workflow"), "hook output: {pushed}");

    let all = runs(&server);
    assert_eq!(all.len(), 1, "{all:#?}");
    assert_eq!(all[0]["conclusion"], "failure");
    let id = all[0]["id"].to_string();
    let error = all[0]["workflow_errors"][0].as_str().unwrap().to_owned();
    assert!(
        error.starts_with(".github/workflows/ci.yml:5:5: "),
        "{error}"
    );

    let output = server.cli(&["runs", "get", &id]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let shown = text(&output.stdout);
    assert!(shown.contains("conclusion: failure"), "{shown}");
    assert!(
        shown.contains(&format!("invalid workflow file:\n  {error}")),
        "{shown}"
    );

    let output = server.cli(&["watch", &id]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output.stderr));
    let shown = text(&output.stdout);
    assert!(shown.contains(": failure in "), "{shown}");
    assert!(shown.contains(&error), "{shown}");
}

#[test]
fn the_webhook_endpoint_refuses_unsigned_deliveries_with_401() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    git(
        dir.path(),
        &["init", "-q", "--bare", "-b", "main", "app.git"],
    );
    let bare = dir.path().join("app.git");
    let output = server.cli(&[
        "repo",
        "add",
        "acme/app",
        "--path",
        bare.to_str().unwrap(),
        "--webhook-secret",
        "s3cret",
    ]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let body = json!({
        "ref": "refs/heads/main",
        "before": "0".repeat(40),
        "after": "1".repeat(40),
        "repository": { "full_name": "acme/app" },
        "sender": { "login": "mallory" },
    })
    .to_string();
    let path = "/api/v1/hooks/github";
    let event = ("X-GitHub-Event", "push");
    let (status, answer) = server.raw("POST", path, Some(body.as_bytes()), &[event]);
    assert_eq!(status, 401, "{answer}");
    assert_eq!(answer["error"]["code"], "unauthorized");
    let forged = sign(b"guess", body.as_bytes());
    let (status, _) = server.raw(
        "POST",
        path,
        Some(body.as_bytes()),
        &[event, ("X-Hub-Signature-256", &forged)],
    );
    assert_eq!(status, 401);
    assert!(runs(&server).is_empty());

    // Signed, it is accepted: the commit is unknown to the repository, so it is refused as a
    // bad request rather than stored.
    let signed = sign(b"s3cret", body.as_bytes());
    let (status, answer) = server.raw(
        "POST",
        path,
        Some(body.as_bytes()),
        &[
            event,
            ("X-Hub-Signature-256", &signed),
            ("X-GitHub-Delivery", "d1"),
        ],
    );
    assert_eq!(status, 400, "{answer}");
    assert!(runs(&server).is_empty());
}

const CHECKOUT: &str = "on: push\njobs:\n  read:\n    runs-on: ubuntu-latest\n    steps:\n      - uses: actions/checkout@v4\n      - run: cat README.md && ./tools/hello.sh\n";

#[test]
fn a_pushed_commit_is_checked_out_from_the_server_by_actions_checkout() {
    let server = Server::start_with(&["--runner-token", "checkout-token"]);
    let dir = tempfile::tempdir().unwrap();
    let (_bare, work) = hooked_repository(&server, dir.path(), &[]);
    std::fs::create_dir_all(work.join("tools")).unwrap();
    std::fs::write(work.join(".github/workflows/read.yml"), CHECKOUT).unwrap();
    std::fs::write(work.join("README.md"), "checked out from the server\n").unwrap();
    std::fs::write(
        work.join("tools/hello.sh"),
        "#!/bin/sh\necho executable bit kept\n",
    )
    .unwrap();
    git(&work, &["add", "-A"]);
    git(&work, &["update-index", "--chmod=+x", "tools/hello.sh"]);
    git(&work, &["commit", "-q", "-m", "initial"]);
    git(&work, &["push", "-q", "origin", "main"]);
    let run = runs(&server)[0]["id"].as_i64().unwrap();

    // Trusted test workflow: the host executor keeps the scenario machine-independent.
    let runner = Command::new(env!("CARGO_BIN_EXE_gantry"))
        .args([
            "runner",
            "--server",
            &server.url,
            "--token",
            "checkout-token",
            "--ephemeral",
            "--unsafe-host-executor",
        ])
        .arg("--work-dir")
        .arg(dir.path().join("runner"))
        .output()
        .unwrap();
    assert!(runner.status.success(), "{}", text(&runner.stderr));
    let detail = server.get_ok(&format!("/api/v1/runs/{run}"));
    let job = detail["jobs"][0]["id"].as_i64().unwrap();
    let log = server.get_ok(&format!("/api/v1/jobs/{job}/logs"));
    let lines: Vec<&str> = log["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|line| line["text"].as_str().unwrap())
        .collect();
    assert_eq!(detail["run"]["conclusion"], "success", "{lines:#?}");
    assert!(lines.contains(&"checked out from the server"), "{lines:?}");
    assert!(lines.contains(&"executable bit kept"), "{lines:?}");
}

/// A PostgreSQL server registers a repository by git URL (its mirror goes in the server's
/// data directory), and a node that lacks the mirror (another replica, or this one after
/// losing its disk) clones it again from the stored URL when an event arrives.
#[test]
fn a_postgresql_server_mirrors_a_repository_by_url_and_clones_a_missing_mirror_again() {
    let Some(args) = crate::support::postgres_server_args() else {
        return;
    };
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = Server::start_with(&args);
    server.create_repo("acme", "app");
    let dir = tempfile::tempdir().unwrap();
    let origin = dir.path().join("origin");
    std::fs::create_dir_all(origin.join(".github/workflows")).unwrap();
    std::fs::create_dir_all(origin.join("src")).unwrap();
    git(&origin, &["init", "-q", "-b", "main"]);
    git(&origin, &["config", "user.name", "Test"]);
    git(&origin, &["config", "user.email", "test@example.com"]);
    std::fs::write(origin.join(".github/workflows/ci.yml"), CI).unwrap();
    std::fs::write(origin.join("src/main.c"), "int main;\n").unwrap();
    git(&origin, &["add", "."]);
    git(&origin, &["commit", "-q", "-m", "ci"]);
    let head = git(&origin, &["rev-parse", "HEAD"]).trim().to_owned();

    let url = format!("file://{}", origin.display());
    let body = json!({ "git_url": url }).to_string();
    let (status, source) = server.raw(
        "PUT",
        "/api/v1/repos/acme/app/source",
        Some(body.as_bytes()),
        &[],
    );
    assert_eq!(status, 200, "{source}");
    let mirror = PathBuf::from(source["git_path"].as_str().unwrap());
    assert!(mirror.starts_with(server.data_dir()), "{source}");
    assert!(mirror.join("HEAD").exists(), "{source}");

    std::fs::remove_dir_all(&mirror).unwrap();
    let push = json!({ "updates": [{
        "before": "0".repeat(40), "after": head, "ref": "refs/heads/main"
    }] });
    let outcome = server.post_ok("/api/v1/repos/acme/app/hooks/push", &push, 200);
    assert_eq!(
        outcome["runs"].as_array().map(Vec::len),
        Some(1),
        "{outcome}"
    );
    assert!(
        mirror.join("HEAD").exists(),
        "the mirror was not cloned again"
    );
    assert_eq!(workflow_paths(&runs(&server)), [".github/workflows/ci.yml"]);
}
