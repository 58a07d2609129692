//! Scenario tests of the CLI contracts: exit codes, `FILE:LINE:COL` errors and JSON output.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn gantry(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_gantry"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut child_stdin = child.stdin.take().unwrap();
    child_stdin
        .write_all(stdin.unwrap_or_default().as_bytes())
        .unwrap();
    drop(child_stdin);
    child.wait_with_output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn temp_file(name: &str, contents: &[u8]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("gantry-cli-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path
}

fn demo_workflow() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/demo/.github/workflows/ci.yml")
}

#[test]
fn check_accepts_the_demo_and_describes_it_as_json() {
    let demo = demo_workflow();
    let output = gantry(
        &["workflow", "check", "--json", demo.to_str().unwrap()],
        None,
    );
    assert!(output.status.success(), "stderr: {}", text(&output.stderr));
    let summary: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(summary["ok"], true);
    assert_eq!(summary["name"], "demo");
    assert_eq!(
        summary["triggers"],
        serde_json::json!(["push", "pull_request", "workflow_dispatch"])
    );
    let test_job = &summary["jobs"][1];
    assert_eq!(test_job["id"], "test");
    assert_eq!(test_job["needs"], serde_json::json!(["setup"]));
    assert_eq!(test_job["runs_on"], serde_json::json!(["ubuntu-latest"]));
    // 2 × 2 minus the excluded (shell, large); the include extends (python, *) in place.
    assert_eq!(test_job["matrix"], serde_json::json!({"combinations": 3}));
    assert_eq!(summary["jobs"][3]["if"], "${{ failure() }}");
    assert_eq!(summary["jobs"][0]["matrix"], serde_json::Value::Null);
}

#[test]
fn check_reports_file_line_col_and_exits_1() {
    let path = temp_file(
        "bad.yml",
        b"on: push\njobs:\n  build:\n    runs-on: ubuntu-latest\n    needs: nope\n    steps:\n      - run: echo ${{ secrets.X }\n",
    );
    let output = gantry(&["workflow", "check", path.to_str().unwrap()], None);
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    let prefix = format!("{}:5:12: ", path.display());
    assert!(stderr.contains(&prefix), "missing {prefix:?} in {stderr}");
    assert!(stderr.contains("\"nope\""), "{stderr}");
    assert!(
        stderr.contains(&format!("{}:7:", path.display())),
        "{stderr}"
    );
}

#[test]
fn check_json_lists_errors_and_keeps_going_over_files() {
    let good = demo_workflow();
    let bad = temp_file("invalid-utf8.yml", b"on: push\njobs: \xff\xfe\n");
    let output = gantry(
        &[
            "workflow",
            "check",
            "--json",
            good.to_str().unwrap(),
            bad.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(output.status.code(), Some(1));
    let lines: Vec<serde_json::Value> = text(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["ok"], true);
    assert_eq!(lines[1]["ok"], false);
    assert_eq!(lines[1]["errors"][0]["line"], 2);
    assert_eq!(lines[1]["errors"][0]["col"], 7);
    assert!(
        lines[1]["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("UTF-8")
    );
}

#[test]
fn check_refuses_files_over_the_size_limit() {
    let path = temp_file("big.yml", "on: push\n".repeat(200).as_bytes());
    let output = gantry(
        &[
            "workflow",
            "check",
            "--max-file-bytes",
            "1000",
            path.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(text(&output.stderr).contains("larger than the limit of 1000 bytes"));
}

#[test]
fn expr_eval_prints_kind_and_value() {
    let contexts = temp_file("contexts.json", br#"{"matrix": {"os": "Linux"}}"#);
    let output = gantry(
        &[
            "expr",
            "eval",
            "--contexts",
            contexts.to_str().unwrap(),
            "format('{0}-{1}', matrix.os, 1 == 1.0)",
        ],
        None,
    );
    assert!(output.status.success(), "stderr: {}", text(&output.stderr));
    let value: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        value,
        serde_json::json!({"kind": "String", "value": "Linux-true"})
    );
}

#[test]
fn expr_eval_batch_answers_every_line() {
    let input = concat!(
        r#"{"expr": "1 + ", "contexts": {}}"#,
        "\n",
        r#"{"expr": "github.ref", "contexts": {"github": {"ref": "refs/heads/main"}}}"#,
        "\n",
        "not json\n",
        r#"{"expr": "fromJSON('[1,2]')"}"#,
        "\n",
    );
    let output = gantry(&["expr", "eval", "--batch"], Some(input));
    assert!(output.status.success(), "stderr: {}", text(&output.stderr));
    let lines: Vec<serde_json::Value> = text(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(lines.len(), 4);
    assert!(lines[0]["error"]["kind"] == "lexing" || lines[0]["error"]["kind"] == "parsing");
    assert_eq!(
        lines[1],
        serde_json::json!({"kind": "String", "value": "refs/heads/main"})
    );
    assert_eq!(lines[2]["error"]["kind"], "input");
    assert_eq!(
        lines[3],
        serde_json::json!({"kind": "Array", "value": [1, 2]})
    );
}

#[test]
fn workflow_match_explains_why_not() {
    let demo = demo_workflow();
    let changed = temp_file("changed.txt", b"docs/index.md\ndocs/guide.md\n");
    let demo = demo.to_str().unwrap();
    let runs = gantry(
        &[
            "workflow",
            "match",
            demo,
            "--event",
            "push",
            "--ref",
            "refs/heads/main",
        ],
        None,
    );
    assert_eq!(
        runs.status.code(),
        Some(0),
        "stderr: {}",
        text(&runs.stderr)
    );
    assert_eq!(text(&runs.stdout).trim(), "triggers");

    let docs_only = gantry(
        &[
            "workflow",
            "match",
            demo,
            "--event",
            "push",
            "--ref",
            "refs/heads/main",
            "--changed-files",
            changed.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(docs_only.status.code(), Some(1));
    assert!(
        text(&docs_only.stdout).contains("paths-ignore"),
        "{}",
        text(&docs_only.stdout)
    );

    let other_branch = gantry(
        &[
            "workflow",
            "match",
            demo,
            "--event",
            "push",
            "--ref",
            "refs/heads/feature/x",
            "--json",
        ],
        None,
    );
    assert_eq!(other_branch.status.code(), Some(1));
    let decision: serde_json::Value = serde_json::from_slice(&other_branch.stdout).unwrap();
    assert_eq!(decision["triggers"], false);
    assert!(decision["reason"].as_str().unwrap().contains("feature/x"));

    let issues = gantry(&["workflow", "match", demo, "--event", "issues"], None);
    assert_eq!(issues.status.code(), Some(1));
    assert!(text(&issues.stdout).contains("does not run on `issues`"));
}
