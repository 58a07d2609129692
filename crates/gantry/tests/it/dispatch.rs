//! Manual runs: `gantry dispatch` with inputs checked against the workflow's declared ones.

use crate::support::{Server, text};

const MANUAL: &str = "on:\n  workflow_dispatch:\n    inputs:\n      level:\n        type: choice\n        options: [quick, full]\n        default: quick\n      dry:\n        type: boolean\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo ${{ inputs.level }}\n";

#[test]
fn dispatch_inputs_are_checked_by_type_and_refusals_store_nothing() {
    let server = Server::start();
    server.create_repo("acme", "app");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("manual.yml");
    std::fs::write(&file, MANUAL).unwrap();
    let file = file.to_str().unwrap();

    let refused = server.cli(&[
        "dispatch",
        "--repo",
        "acme/app",
        file,
        "--input",
        "level=slow",
        "--input",
        "dry=maybe",
    ]);
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused.stdout));
    let stderr = text(&refused.stderr);
    assert!(
        stderr.contains("`slow` is not one of the options: quick, full"),
        "{stderr}"
    );
    assert!(
        stderr.contains("input `dry`: expected a boolean"),
        "{stderr}"
    );
    let runs = server.get_ok("/api/v1/runs");
    assert_eq!(runs["items"].as_array().unwrap().len(), 0, "{runs}");

    let accepted = server.cli(&[
        "dispatch", "--repo", "acme/app", file, "--input", "dry=true", "--json",
    ]);
    assert!(accepted.status.success(), "{}", text(&accepted.stderr));
    let run: serde_json::Value = serde_json::from_slice(&accepted.stdout).unwrap();
    assert_eq!(run["event"], "workflow_dispatch");

    // A push workflow cannot be run by hand.
    std::fs::write(
        dir.path().join("push.yml"),
        "on: push\njobs:\n  a:\n    runs-on: x\n    steps:\n      - run: 'true'\n",
    )
    .unwrap();
    let push = dir.path().join("push.yml");
    let refused = server.cli(&["dispatch", "--repo", "acme/app", push.to_str().unwrap()]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        text(&refused.stderr).contains("no `workflow_dispatch` trigger"),
        "{}",
        text(&refused.stderr)
    );
}
