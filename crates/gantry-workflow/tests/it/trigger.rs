//! Deciding whether events start a workflow: branch, tag and path filters, activity types,
//! `workflow_run` and schedules.

use gantry_workflow::Limits;
use gantry_workflow::trigger::{Decision, Event, decide};

fn workflow(on: &str) -> gantry_workflow::Workflow {
    let source = format!("on:\n{on}jobs:\n  a:\n    runs-on: x\n    steps:\n      - run: x\n");
    gantry_workflow::load(&source, &Limits::default()).unwrap()
}

fn push(git_ref: &str, changed: Option<&[String]>) -> Event<'static> {
    Event {
        name: "push",
        git_ref: Some(Box::leak(git_ref.to_string().into_boxed_str())),
        changed_files: changed.map(|files| &*Box::leak(files.to_vec().into_boxed_slice())),
        ..Event::default()
    }
}

fn files(paths: &[&str]) -> Vec<String> {
    paths.iter().map(|p| p.to_string()).collect()
}

fn runs(decision: Decision) -> bool {
    decision.runs()
}

#[test]
fn branch_filters_apply_in_order_with_negation() {
    let w = workflow(
        "  push:\n    branches: ['releases/**', '!releases/**-alpha', 'releases/keep-alpha']\n",
    );
    assert!(runs(decide(&w, &push("refs/heads/releases/1.0", None))));
    assert!(!runs(decide(
        &w,
        &push("refs/heads/releases/1.0-alpha", None)
    )));
    assert!(runs(decide(
        &w,
        &push("refs/heads/releases/keep-alpha", None)
    )));
    assert!(!runs(decide(&w, &push("refs/heads/main", None))));
}

#[test]
fn branch_only_filters_skip_tag_pushes_and_back() {
    let branches = workflow("  push:\n    branches: [main]\n");
    let Decision::Skip(reason) = decide(&branches, &push("refs/tags/v1", None)) else {
        panic!("tag push must not run a branch-filtered workflow")
    };
    assert!(reason.contains("only filters branches"), "{reason}");
    let tags = workflow("  push:\n    tags: ['v[0-9]+.*']\n");
    assert!(runs(decide(&tags, &push("refs/tags/v12.0", None))));
    assert!(!runs(decide(&tags, &push("refs/tags/beta", None))));
    assert!(!runs(decide(&tags, &push("refs/heads/main", None))));
    let neither = workflow("  push:\n");
    assert!(runs(decide(&neither, &push("refs/tags/anything", None))));
}

#[test]
fn paths_and_paths_ignore() {
    let paths = workflow("  push:\n    paths: ['src/**', '!src/**/*.md']\n");
    assert!(runs(decide(
        &paths,
        &push("refs/heads/main", Some(&files(&["src/a/b.rs"])))
    )));
    let Decision::Skip(reason) = decide(
        &paths,
        &push(
            "refs/heads/main",
            Some(&files(&["src/README.md", "docs/x"])),
        ),
    ) else {
        panic!("only ignored files changed")
    };
    assert!(reason.contains("none of the 2 changed files"), "{reason}");
    // Unknown changed files: GitHub runs rather than guess.
    assert!(runs(decide(&paths, &push("refs/heads/main", None))));
    // Path filters are not evaluated for tags.
    assert!(runs(decide(
        &paths,
        &push("refs/tags/v1", Some(&files(&["docs/x"])))
    )));

    let ignore = workflow("  push:\n    paths-ignore: ['docs/**']\n");
    assert!(!runs(decide(
        &ignore,
        &push("refs/heads/main", Some(&files(&["docs/a.md"])))
    )));
    assert!(runs(decide(
        &ignore,
        &push("refs/heads/main", Some(&files(&["docs/a.md", "src/x"])))
    )));
}

#[test]
fn the_300_file_rule() {
    let paths = workflow("  push:\n    paths: ['src/**']\n");
    let mut changed: Vec<String> = (0..300).map(|n| format!("docs/{n}.md")).collect();
    changed.push("src/late.rs".into());
    assert!(!runs(decide(
        &paths,
        &push("refs/heads/main", Some(&changed))
    )));
}

#[test]
fn pull_request_types_and_base_branch() {
    let w = workflow("  pull_request:\n    branches: [main]\n");
    let event = |action: &'static str, base: &'static str| Event {
        name: "pull_request",
        action: Some(action),
        git_ref: Some(base),
        ..Event::default()
    };
    assert!(runs(decide(&w, &event("opened", "main"))));
    assert!(runs(decide(&w, &event("synchronize", "refs/heads/main"))));
    assert!(
        !runs(decide(&w, &event("closed", "main"))),
        "closed is not a default type"
    );
    assert!(!runs(decide(&w, &event("opened", "develop"))));
    let typed = workflow("  pull_request:\n    types: [closed, labeled]\n");
    assert!(runs(decide(&typed, &event("closed", "main"))));
    assert!(!runs(decide(&typed, &event("opened", "main"))));
}

#[test]
fn other_events_filter_by_types() {
    let w = workflow("  issues:\n    types: [opened]\n  release:\n");
    let issue = |action| Event {
        name: "issues",
        action: Some(action),
        ..Event::default()
    };
    assert!(runs(decide(&w, &issue("opened"))));
    assert!(!runs(decide(&w, &issue("edited"))));
    let release = Event {
        name: "release",
        action: Some("published"),
        ..Event::default()
    };
    assert!(runs(decide(&w, &release)));
    let Decision::Skip(reason) = decide(
        &w,
        &Event {
            name: "push",
            ..Event::default()
        },
    ) else {
        panic!()
    };
    assert!(reason.contains("it runs on: issues, release"), "{reason}");
}

#[test]
fn workflow_run_follows_named_workflows() {
    let w = workflow(
        "  workflow_run:\n    workflows: [CI]\n    types: [completed]\n    branches: [main]\n",
    );
    let event = |name, branch| Event {
        name: "workflow_run",
        action: Some("completed"),
        workflow_name: Some(name),
        git_ref: Some(branch),
        ..Event::default()
    };
    assert!(runs(decide(&w, &event("CI", "main"))));
    assert!(!runs(decide(&w, &event("Docs", "main"))));
    assert!(!runs(decide(&w, &event("CI", "dev"))));
}

#[test]
fn schedules_and_calls() {
    let w = workflow(
        "  schedule:\n    - cron: '0 3 * * 1'\n    - cron: '*/15 * * * *'\n  workflow_call:\n",
    );
    let fired = |cron| Event {
        name: "schedule",
        schedule: Some(cron),
        ..Event::default()
    };
    assert!(runs(decide(&w, &fired("0 3 * * 1"))));
    assert!(runs(decide(&w, &fired("*/15  *  * * *"))));
    assert!(!runs(decide(&w, &fired("0 4 * * *"))));
    assert!(!runs(decide(
        &w,
        &Event {
            name: "workflow_call",
            ..Event::default()
        }
    )));
}
