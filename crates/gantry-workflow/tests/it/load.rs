//! Loading and validation: each case is a workflow and the diagnostics it must produce
//! (`line:col: substring`), or none.

use gantry_workflow::Limits;
use gantry_workflow::plan::{self, MatrixPlan};

/// Loads `source` and checks that the diagnostics are exactly `expected`, each given as
/// `"line:col: part of the message"`.
fn check(source: &str, expected: &[&str]) {
    let result = gantry_workflow::load(source, &Limits::default());
    let diagnostics = match result {
        Ok(_) => Vec::new(),
        Err(diagnostics) => diagnostics.0,
    };
    let rendered: Vec<String> = diagnostics.iter().map(ToString::to_string).collect();
    assert_eq!(
        rendered.len(),
        expected.len(),
        "expected {expected:#?}\ngot {rendered:#?}"
    );
    for (ours, wanted) in rendered.iter().zip(expected) {
        let (position, message) = wanted.split_once(": ").unwrap();
        assert!(
            ours.starts_with(&format!("{position}: ")) && ours.contains(message),
            "expected {wanted:?}, got {ours:?}"
        );
    }
}

const STEPS: &str = "    runs-on: ubuntu-latest\n    steps:\n      - run: echo hi\n";

fn job(id: &str, extra: &str) -> String {
    format!("  {id}:\n{extra}{STEPS}")
}

#[test]
fn a_minimal_workflow_is_valid() {
    check(&format!("on: push\njobs:\n{}", job("build", "")), &[]);
}

#[test]
fn unknown_keys_are_named_with_their_place() {
    check(
        &format!(
            "on: push\nfoo: 1\njobs:\n{}",
            job("build", "    runs-onn: x\n")
        ),
        &[
            "2:1: unexpected key \"foo\" in the workflow",
            "5:5: unexpected key \"runs-onn\" in job \"build\"",
        ],
    );
}

#[test]
fn wrong_types_are_reported_where_they_are() {
    check(
        "on: push\njobs:\n  build:\n    runs-on: ubuntu-latest\n    timeout-minutes: soon\n    steps: echo\n",
        &[
            "5:22: `timeout-minutes` must be a number or an expression, found \"soon\"",
            "6:12: `steps` must be a sequence, found a string",
        ],
    );
}

#[test]
fn duplicate_keys_are_errors() {
    check(
        "on: push\njobs:\n  a:\n    runs-on: x\n    runs-on: y\n    steps:\n      - run: x\n",
        &["5:5: duplicate"],
    );
}

#[test]
fn job_ids_follow_github_rules() {
    check(
        &format!(
            "on: push\njobs:\n{}{}{}{}",
            job("0abc", ""),
            job("__reserved", ""),
            job("BUILD", ""),
            job("build", "")
        ),
        &[
            "3:3: the identifier \"0abc\" is invalid",
            "7:3: ids starting with '__' are reserved",
            "15:3: job id \"build\" is already used by job \"BUILD\"",
        ],
    );
}

#[test]
fn unknown_needs_are_named() {
    check(
        &format!("on: push\njobs:\n{}", job("build", "    needs: [lint]\n")),
        &["4:13: job \"build\" needs job \"lint\", which does not exist"],
    );
}

#[test]
fn cycles_are_named_in_full() {
    check(
        &format!(
            "on: push\njobs:\n{}{}{}{}",
            job("start", ""),
            job("a", "    needs: [c]\n"),
            job("b", "    needs: a\n"),
            job("c", "    needs: b\n")
        ),
        &["8:13: creates a cycle in the dependency graph: a -> c -> b -> a"],
    );
}

#[test]
fn a_workflow_needs_a_job_without_needs() {
    check(
        &format!("on: push\njobs:\n{}", job("a", "    needs: a\n")),
        &["4:12: job \"a\" cannot need itself"],
    );
}

#[test]
fn contexts_are_checked_per_key() {
    check(
        "on: push\njobs:\n  build:\n    runs-on: ${{ secrets.RUNNER }}\n    if: matrix.os == 'x'\n    steps:\n      - run: echo ${{ env.A }}\n        if: success() && runner.os == 'Linux'\n",
        &[
            "4:14: Unrecognized named-value: 'secrets'",
            "5:9: Unrecognized named-value: 'matrix'",
        ],
    );
}

#[test]
fn status_functions_only_exist_in_conditions() {
    check(
        &format!(
            "on: push\njobs:\n{}",
            job("build", "    env:\n      A: ${{ success() }}\n")
        ),
        &["5:10: Unrecognized function: 'success'"],
    );
}

#[test]
fn expression_errors_in_block_scalars_point_at_their_line() {
    check(
        "on: push\njobs:\n  build:\n    runs-on: x\n    steps:\n      - run: |\n          echo one\n          echo ${{ github.sha ) }}\n",
        &["8:16: invalid expression: Unexpected symbol"],
    );
}

#[test]
fn step_ids_are_unique_per_job() {
    check(
        "on: push\njobs:\n  build:\n    runs-on: x\n    steps:\n      - id: a\n        run: x\n      - id: A\n        run: y\n",
        &["8:13: the step id \"A\" is used more than once"],
    );
}

#[test]
fn steps_need_run_or_uses_but_not_both() {
    check(
        "on: push\njobs:\n  build:\n    runs-on: x\n    steps:\n      - name: nothing\n      - run: x\n        uses: actions/checkout@v4\n      - uses: not-a-reference\n",
        &[
            "6:9: a step needs either `run` or `uses`",
            "8:15: a step cannot have both `run` and `uses`",
            "9:15: invalid action reference \"not-a-reference\"",
        ],
    );
}

#[test]
fn invalid_cron_and_globs_are_reported() {
    check(
        "on:\n  schedule:\n    - cron: '61 * * * *'\n  push:\n    branches: ['[oops']\njobs:\n  a:\n    runs-on: x\n    steps:\n      - run: x\n",
        &["3:13: ", "5:16: invalid filter pattern \"[oops\""],
    );
}

#[test]
fn unknown_events_are_errors() {
    check(
        &format!("on: [push, pushh]\njobs:\n{}", job("a", "")),
        &["1:12: unknown event \"pushh\""],
    );
}

#[test]
fn branches_and_branches_ignore_conflict() {
    check(
        &format!(
            "on:\n  push:\n    branches: [main]\n    branches-ignore: [dev]\njobs:\n{}",
            job("a", "")
        ),
        &["4:5: `branches` and `branches-ignore` cannot both be used"],
    );
}

#[test]
fn dispatch_defaults_must_fit_their_type() {
    check(
        &format!(
            "on:\n  workflow_dispatch:\n    inputs:\n      level:\n        type: choice\n        options: [a, b]\n        default: c\n      flag:\n        type: boolean\n        default: maybe\njobs:\n{}",
            job("a", "")
        ),
        &[
            "7:18: default of input \"level\" must be one of its `options`",
            "10:18: default of input \"flag\" must be a boolean",
        ],
    );
}

#[test]
fn matrix_errors_and_limits() {
    check(
        &format!(
            "on: push\njobs:\n{}",
            job("a", "    strategy:\n      matrix:\n        os: []\n")
        ),
        &["6:9: invalid matrix"],
    );
    let values: Vec<String> = (0..17).map(|n| n.to_string()).collect();
    let list = values.join(", ");
    check(
        &format!(
            "on: push\njobs:\n{}",
            job(
                "a",
                &format!(
                    "    strategy:\n      matrix:\n        x: [{list}]\n        y: [{list}]\n"
                )
            )
        ),
        &["6:9: invalid matrix"],
    );
}

#[test]
fn jobs_beyond_the_workflow_limit_are_refused() {
    let mut source = String::from("on: push\njobs:\n");
    for index in 0..5 {
        source.push_str(&job(
            &format!("j{index}"),
            "    strategy:\n      matrix:\n        x: [1, 2, 3]\n",
        ));
    }
    let limits = Limits {
        max_workflow_jobs: 12,
        ..Limits::default()
    };
    let error = gantry_workflow::load(&source, &limits).unwrap_err();
    assert!(
        error.to_string().contains("15 jobs after matrix expansion"),
        "{error}"
    );
}

#[test]
fn matrices_with_needs_are_deferred_and_plain_ones_expand() {
    let source = "on: push\njobs:\n  setup:\n    runs-on: x\n    outputs:\n      m: ${{ steps.s.outputs.m }}\n    steps:\n      - id: s\n        run: echo\n  build:\n    needs: setup\n    runs-on: ${{ matrix.os }}\n    strategy:\n      matrix: ${{ fromJSON(needs.setup.outputs.m) }}\n    steps:\n      - run: echo\n  test:\n    runs-on: x\n    strategy:\n      matrix:\n        os: [a, b]\n        v: [1, 2]\n    steps:\n      - run: echo\n";
    let workflow = gantry_workflow::load(source, &Limits::default()).unwrap();
    let planned = plan::plan(&workflow, &Limits::default()).unwrap();
    assert_eq!(planned[0].matrix, MatrixPlan::None);
    assert_eq!(planned[1].matrix, MatrixPlan::Deferred);
    let MatrixPlan::Combinations(combinations) = &planned[2].matrix else {
        panic!("expected combinations")
    };
    assert_eq!(combinations.len(), 4);
    assert_eq!(combinations[1].display_name("test"), "test (a, 2)");
}

#[test]
fn deferred_matrices_expand_once_needs_are_known() {
    let source = "on: push\njobs:\n  setup:\n    runs-on: x\n    steps:\n      - run: echo\n  build:\n    needs: setup\n    runs-on: x\n    strategy:\n      matrix:\n        os: ${{ fromJSON(needs.setup.outputs.list) }}\n        extra: ['${{ github.ref_name }}']\n    steps:\n      - run: echo\n";
    let workflow = gantry_workflow::load(source, &Limits::default()).unwrap();
    let build = &workflow.jobs[1];
    let mut contexts = gantry_expr::Contexts::default();
    contexts.insert(
        "github".into(),
        gantry_expr::Value::from_json(&serde_json::json!({"ref_name": "main"})),
    );
    let without_needs =
        plan::expand_matrix_with(build, &Limits::default(), &contexts, &gantry_expr::NoHost)
            .unwrap();
    assert_eq!(without_needs, MatrixPlan::Deferred);
    contexts.insert(
        "needs".into(),
        gantry_expr::Value::from_json(
            &serde_json::json!({"setup": {"result": "success", "outputs": {"list": "[\"linux\", \"mac\"]"}}}),
        ),
    );
    let expanded =
        plan::expand_matrix_with(build, &Limits::default(), &contexts, &gantry_expr::NoHost)
            .unwrap();
    let MatrixPlan::Combinations(combinations) = expanded else {
        panic!("expected combinations, got {expanded:?}")
    };
    let names: Vec<String> = combinations
        .iter()
        .map(|c| c.display_name("build"))
        .collect();
    assert_eq!(names, ["build (linux, main)", "build (mac, main)"]);
}

#[test]
fn hostile_files_get_errors_not_crashes() {
    let deep = format!(
        "on: push\njobs: {}{}",
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    assert!(gantry_workflow::load(&deep, &Limits::default()).is_err());
    let parens = format!(
        "on: push\njobs:\n{}",
        job(
            "a",
            &format!("    if: {}true{}\n", "(".repeat(10_000), ")".repeat(10_000))
        )
    );
    assert!(gantry_workflow::load(&parens, &Limits::default()).is_err());
    let big = "# padding\n".repeat(200_000);
    let error = gantry_workflow::load(&big, &Limits::default()).unwrap_err();
    assert!(
        error.to_string().contains("larger than the limit"),
        "{error}"
    );
    let mut bomb = String::from("x0: &x0 [a, a, a, a, a, a, a, a, a, a]\n");
    for level in 1..10 {
        let p = level - 1;
        bomb.push_str(&format!(
            "x{level}: &x{level} [*x{p}, *x{p}, *x{p}, *x{p}, *x{p}, *x{p}, *x{p}, *x{p}, *x{p}, *x{p}]\n"
        ));
    }
    assert!(gantry_workflow::load(&bomb, &Limits::default()).is_err());
}

#[test]
fn a_thousand_job_chain_and_dense_fan_in_load_quickly() {
    let mut source = String::from("on: push\njobs:\n");
    for index in 0..1000 {
        let needs = if index == 0 {
            String::new()
        } else {
            format!("    needs: j{}\n", index - 1)
        };
        source.push_str(&job(&format!("j{index}"), &needs));
    }
    let workflow = gantry_workflow::load(&source, &Limits::default()).unwrap();
    assert_eq!(workflow.jobs.len(), 1000);

    let mut dense = String::from("on: push\njobs:\n");
    for index in 0..150 {
        let needs: Vec<String> = (0..index).map(|n| format!("j{n}")).collect();
        let needs = if needs.is_empty() {
            String::new()
        } else {
            format!("    needs: [{}]\n", needs.join(", "))
        };
        dense.push_str(&job(&format!("j{index}"), &needs));
    }
    let workflow = gantry_workflow::load(&dense, &Limits::default()).unwrap();
    assert_eq!(workflow.jobs[149].needs.len(), 149);
}

#[test]
fn every_duplicate_and_merge_key_is_reported_in_one_pass() {
    check(
        "on: push\nx: &x {a: 1}\njobs:\n  a:\n    runs-on: x\n    runs-on: y\n    <<: *x\n    steps:\n      - run: x\n        run: y\n",
        &[
            "6:5: duplicate key \"runs-on\"",
            "7:5: GitHub Actions does not support YAML merge keys",
            "10:9: duplicate key \"run\"",
        ],
    );
}

#[test]
fn names_that_differ_only_in_case_collide() {
    check(
        &format!(
            "on:\n  workflow_dispatch:\n    inputs:\n      level: {{}}\n      LEVEL: {{}}\njobs:\n{}",
            job("a", "    env:\n      Path: x\n      PATH: y\n")
        ),
        &[
            "5:7: key \"LEVEL\" in `inputs` is the same as \"level\" at 4:7",
            "10:7: key \"PATH\" in `env` is the same as \"Path\" at 9:7",
        ],
    );
}

#[test]
fn container_credentials_need_username_and_password() {
    check(
        &format!(
            "on: push\njobs:\n{}",
            job(
                "a",
                "    container:\n      image: x\n      credentials:\n        username: u\n"
            )
        ),
        &["7:9: `container` `credentials` needs both `username` and `password`"],
    );
}
