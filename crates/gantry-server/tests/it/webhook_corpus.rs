//! Every payload example of the octokit-webhooks corpus parses, and the `github` context made
//! from it follows GitHub's rules for `ref`, `sha`, `head_ref`, `base_ref` and the rest
//! ("Events that trigger workflows"). The corpus lives beside the project; without it the test
//! skips loudly, except under `CI=true` where that is a failure.

use gantry_server::github::{RunNumbers, github_context};
use gantry_server::webhook::{Parsed, parse};
use serde_json::Value;

use crate::triggers::corpus_dir;

/// What the facts do not carry: the repository resolves a ref to this commit.
fn resolved(git_ref: &str) -> String {
    format!("resolved:{git_ref}")
}

#[test]
fn octokit_payloads_parse_into_githubs_contexts() {
    let Some(dir) = corpus_dir() else { return };
    let root = dir.join("payload-examples/api.github.com");
    let mut files: Vec<_> = walk(&root);
    files.sort();
    assert!(
        files.len() >= 100,
        "only {} payloads in {}",
        files.len(),
        root.display()
    );
    let (mut events, mut ignored) = (0, 0);
    for file in &files {
        let event = file
            .parent()
            .unwrap()
            .file_name()
            .unwrap()
            .to_str()
            .unwrap();
        let payload: Value = serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
        let parsed = parse(event, payload.clone())
            .unwrap_or_else(|error| panic!("{}: {error}", file.display()));
        let facts = match parsed {
            Parsed::Event(facts) => facts,
            Parsed::Ignored(reason) => {
                // Only pings and deleted refs start nothing.
                assert!(
                    event == "ping" || payload["deleted"] == true,
                    "{}: ignored: {reason}",
                    file.display()
                );
                ignored += 1;
                continue;
            }
        };
        events += 1;
        let default_branch = payload["repository"]["default_branch"]
            .as_str()
            .unwrap_or("main");
        let git_ref = facts.git_ref_or_default(default_branch);
        let sha = facts.sha.clone().unwrap_or_else(|| resolved(&git_ref));
        let numbers = RunNumbers {
            run_id: 77,
            run_number: 5,
            run_attempt: 1,
        };
        let github = github_context(
            &facts.github_facts(&sha, default_branch),
            "CI",
            ".github/workflows/ci.yml",
            numbers,
        );
        check(file, event, &payload, &github, default_branch);
    }
    eprintln!(
        "octokit-webhooks: {} payloads accepted ({events} events, {ignored} that start nothing)",
        files.len()
    );
}

/// GitHub's rules, event by event.
fn check(file: &std::path::Path, event: &str, payload: &Value, github: &Value, default: &str) {
    let at = file.display();
    assert_eq!(github["event_name"], event, "{at}");
    assert_eq!(github["event"], *payload, "{at}");
    assert_eq!(github["actor"], payload["sender"]["login"], "{at}");
    assert_eq!(
        github["repository"], payload["repository"]["full_name"],
        "{at}"
    );
    assert_eq!(
        github["repository_owner"], payload["repository"]["owner"]["login"],
        "{at}"
    );
    assert_eq!(
        (
            &github["run_id"],
            &github["run_number"],
            &github["run_attempt"]
        ),
        (&Value::from("77"), &Value::from("5"), &Value::from("1")),
        "{at}"
    );
    let text = |value: &Value| value.as_str().unwrap_or_default().to_owned();
    let is_pull = matches!(
        event,
        "pull_request" | "pull_request_review" | "pull_request_review_comment"
    );
    let (expected_ref, expected_sha) = match event {
        "push" => (text(&payload["ref"]), text(&payload["after"])),
        _ if is_pull => (
            format!("refs/pull/{}/merge", payload["pull_request"]["number"]),
            text(&payload["pull_request"]["head"]["sha"]),
        ),
        "create" => {
            let kind = if payload["ref_type"] == "tag" {
                "tags"
            } else {
                "heads"
            };
            let git_ref = format!("refs/{kind}/{}", text(&payload["ref"]));
            (git_ref.clone(), resolved(&git_ref))
        }
        "workflow_dispatch" => (text(&payload["ref"]), resolved(&text(&payload["ref"]))),
        "merge_group" => (
            text(&payload["merge_group"]["head_ref"]),
            text(&payload["merge_group"]["head_sha"]),
        ),
        // delete, repository_dispatch and the rest: the default branch's last commit.
        _ => {
            let git_ref = format!("refs/heads/{default}");
            (git_ref.clone(), resolved(&git_ref))
        }
    };
    assert_eq!(github["ref"], expected_ref, "{at}");
    assert_eq!(github["sha"], expected_sha, "{at}");
    let ref_name = expected_ref
        .strip_prefix("refs/heads/")
        .or_else(|| expected_ref.strip_prefix("refs/tags/"))
        .or_else(|| expected_ref.strip_prefix("refs/pull/"))
        .unwrap_or(&expected_ref);
    assert_eq!(github["ref_name"], ref_name, "{at}");
    if is_pull {
        assert_eq!(
            github["head_ref"], payload["pull_request"]["head"]["ref"],
            "{at}"
        );
        assert_eq!(
            github["base_ref"], payload["pull_request"]["base"]["ref"],
            "{at}"
        );
    } else {
        assert_eq!(
            (&github["head_ref"], &github["base_ref"]),
            (&Value::from(""), &Value::from("")),
            "{at}"
        );
    }
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else if path.extension().is_some_and(|ext| ext == "json") {
            files.push(path);
        }
    }
    files
}
