//! Reusable workflows of other repositories (`OWNER/REPO/PATH@REF`) end to end: real git
//! repositories `acme/app` (the caller) and `acme/lib` (the called one), pushes and API
//! triggers, a runner driving the expanded jobs across a restart, and every way a call of
//! another repository can be refused.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use gantry_proto::v1::{
    Conclusion, CreateOrganization, CreateRepository, ErrorCode, JobPayload, SetRepositorySource,
    TriggerRun,
};
use gantry_server::App;
use gantry_store::RunId;
use serde_json::json;

use crate::triggers::{
    Fixture, SECRET, claim_one, git, hosted_runner, runs_of, set_url, started, succeed,
};

/// A reusable workflow of `acme/lib` whose every step names `VERSION`, with inputs, a
/// required secret, an output, and a nested `./` call of `lib`'s own `lint.yml`.
const LIB_BUILD: &str = r#"on:
  workflow_call:
    inputs:
      target:
        type: string
        required: true
    secrets:
      token:
        required: true
    outputs:
      artifact:
        value: ${{ jobs.package.outputs.artifact }}
jobs:
  build:
    runs-on: ubuntu-latest
    steps:
      - run: build VERSION ${{ inputs.target }} ${{ secrets.token }}
  lint:
    uses: ./.github/workflows/lint.yml
  package:
    needs: [build, lint]
    runs-on: ubuntu-latest
    outputs:
      artifact: ${{ steps.p.outputs.artifact }}
    steps:
      - id: p
        run: package VERSION ${{ inputs.target }}
"#;

const LIB_LINT: &str = "on: workflow_call\njobs:\n  lib-lint:\n    runs-on: ubuntu-latest\n    steps:\n      - run: lint the library\n";
const APP_LINT: &str = "on: workflow_call\njobs:\n  app-lint:\n    runs-on: ubuntu-latest\n    steps:\n      - run: lint the app\n";

/// `acme/app`'s workflow: `lib`'s build at a branch and at a tag, its own `lint.yml` (which
/// has the same path as `lib`'s), and a job that reads both calls' outputs.
const APP_CI: &str = r#"on: push
jobs:
  branch:
    uses: acme/lib/.github/workflows/build.yml@main
    with:
      target: prod
    secrets:
      token: ${{ secrets.DEPLOY_TOKEN }}
  tagged:
    uses: acme/lib/.github/workflows/build.yml@v1
    with:
      target: stage
    secrets: inherit
  lint:
    uses: ./.github/workflows/lint.yml
  ship:
    needs: [branch, tagged, lint]
    runs-on: ubuntu-latest
    steps:
      - run: ship ${{ needs.branch.outputs.artifact }} ${{ needs.tagged.outputs.artifact }}
"#;

/// A git repository `dir` under the fixture's directory, registered as `acme/{name}`.
async fn other_repository(fx: &Fixture, name: &str) -> PathBuf {
    let dir = fx._dir.path().join(name);
    std::fs::create_dir(&dir).unwrap();
    git(&dir, &["init", "-q", "-b", "main"]);
    git(&dir, &["config", "user.name", "Test"]);
    git(&dir, &["config", "user.email", "test@example.com"]);
    git(&dir, &["config", "commit.gpgsign", "false"]);
    set_url(fx, name, None, Some(dir.to_string_lossy().into_owned()))
        .await
        .unwrap();
    dir
}

fn commit_in(dir: &std::path::Path, files: &[(&str, &str)]) -> String {
    for (path, text) in files {
        let path = dir.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "-m", "change"]);
    git(dir, &["rev-parse", "HEAD"])
}

/// `lib` with `build.yml` saying `v1` at tag `v1` and `v2` on `main`.
async fn lib_with_a_tag(fx: &Fixture) -> PathBuf {
    let lib = other_repository(fx, "lib").await;
    commit_in(
        &lib,
        &[
            (
                ".github/workflows/build.yml",
                &LIB_BUILD.replace("VERSION", "v1"),
            ),
            (".github/workflows/lint.yml", LIB_LINT),
        ],
    );
    git(&lib, &["tag", "v1"]);
    commit_in(
        &lib,
        &[(
            ".github/workflows/build.yml",
            &LIB_BUILD.replace("VERSION", "v2"),
        )],
    );
    lib
}

/// Claims and completes every queued job, a `package` job with the artifact its target names;
/// returns the payloads by job name.
async fn drive(app: &Arc<App>, limit: usize, seen: &mut BTreeMap<String, JobPayload>) {
    let runner = hosted_runner(app).await;
    for _ in 0..limit {
        let Some(job) = claim_one(app, runner).await else {
            return;
        };
        let artifact = format!(
            "{}.tar",
            job.payload.contexts.inputs["target"].as_str().unwrap_or("")
        );
        let outputs: Vec<(&str, &str)> = if job.payload.name.ends_with("/ package") {
            vec![("artifact", artifact.as_str())]
        } else {
            Vec::new()
        };
        succeed(app, runner, &job, &outputs).await;
        seen.insert(job.payload.name.clone(), job.payload);
    }
}

fn step(payload: &JobPayload) -> &str {
    payload.steps[0].run.as_deref().unwrap()
}

#[tokio::test]
async fn a_pushed_workflow_calls_another_repository_at_a_branch_and_a_tag_across_a_restart() {
    calls_at_a_branch_and_a_tag_across_a_restart(Fixture::new().await).await;
}

/// The same on PostgreSQL, on one thread: the store's lookups of called repositories run on
/// a blocking thread while the test's thread drives the connections.
#[tokio::test]
async fn on_postgres_a_pushed_workflow_calls_another_repository_across_a_restart() {
    let Some(fx) = Fixture::postgres().await else {
        return;
    };
    calls_at_a_branch_and_a_tag_across_a_restart(fx).await;
}

async fn calls_at_a_branch_and_a_tag_across_a_restart(fx: Fixture) {
    let lib = lib_with_a_tag(&fx).await;
    let first = fx.commit(&[("README.md", "hi\n")], "initial");
    let head = fx.commit(
        &[
            (".github/workflows/ci.yml", APP_CI),
            (".github/workflows/lint.yml", APP_LINT),
        ],
        "workflows",
    );
    let outcome = fx.push(&first, &head, "refs/heads/main").await;
    assert_eq!(
        started(&outcome),
        [".github/workflows/ci.yml"],
        "{outcome:#?}"
    );
    let run = &outcome.runs[0].run;
    assert!(run.workflow_errors.is_empty(), "{run:#?}");
    let run_id = run.id;
    // Every called file is kept with the run under its key: `lib`'s `./` call at each ref
    // apart from `app`'s own file of the same path.
    let kept = fx.store.called_workflows(RunId(run_id)).await.unwrap();
    assert_eq!(
        kept.keys().map(String::as_str).collect::<Vec<_>>(),
        [
            "./.github/workflows/lint.yml",
            "acme/lib/.github/workflows/build.yml@main",
            "acme/lib/.github/workflows/build.yml@v1",
            "acme/lib/.github/workflows/lint.yml@main",
            "acme/lib/.github/workflows/lint.yml@v1",
        ]
    );

    let mut seen = BTreeMap::new();
    drive(&fx.app, 1, &mut seen).await;
    assert_eq!(seen.len(), 1);

    // A restart, and `lib`'s branch moves on: the run keeps the files it was created with.
    commit_in(
        &lib,
        &[(
            ".github/workflows/build.yml",
            &LIB_BUILD.replace("VERSION", "v3"),
        )],
    );
    let app = Arc::new(App::new(Arc::clone(&fx.store), Default::default()));
    app.recover().await.unwrap();
    drive(&app, 20, &mut seen).await;

    assert_eq!(
        seen.keys().map(String::as_str).collect::<Vec<_>>(),
        [
            "branch / build",
            "branch / lint / lib-lint",
            "branch / package",
            "lint / app-lint",
            "ship",
            "tagged / build",
            "tagged / lint / lib-lint",
            "tagged / package",
        ]
    );
    // Each call's jobs come from its ref (`v2` on the branch when the run was created, not
    // `v3` after it), with its own inputs.
    for (name, payload) in &seen {
        let (version, target) = match name.split(" / ").next() {
            Some("branch") => (" v2 ", "prod"),
            Some("tagged") => (" v1 ", "stage"),
            _ => continue,
        };
        if name.contains("lint") {
            continue;
        }
        assert!(step(payload).contains(version), "{name}: {}", step(payload));
        assert_eq!(
            payload.contexts.inputs,
            json!({ "target": target }),
            "{name}"
        );
    }
    assert_eq!(step(&seen["branch / lint / lib-lint"]), "lint the library");
    assert_eq!(step(&seen["tagged / lint / lib-lint"]), "lint the library");
    assert_eq!(step(&seen["lint / app-lint"]), "lint the app");
    // Only the secret the caller passed, under the called workflow's name.
    assert_eq!(
        seen["branch / build"]
            .contexts
            .secrets
            .keys()
            .collect::<Vec<_>>(),
        ["token"]
    );
    assert_eq!(
        seen["ship"].contexts.needs,
        json!({
            "branch": {"result": "success", "outputs": {"artifact": "prod.tar"}},
            "tagged": {"result": "success", "outputs": {"artifact": "stage.tar"}},
            "lint": {"result": "success", "outputs": {}},
        })
    );
    let detail = app.get_run(run_id).await.unwrap();
    assert_eq!(
        detail.run.conclusion,
        Some(Conclusion::Success),
        "{detail:#?}"
    );
    drop(app);
    fx.finish().await;
}

#[tokio::test]
async fn calls_that_cannot_be_read_are_failed_runs_naming_the_call() {
    let fx = Fixture::new().await;
    let lib = lib_with_a_tag(&fx).await;
    commit_in(
        &lib,
        &[
            (
                ".github/workflows/broken.yml",
                "on: workflow_call\njobs:\n  x:\n    runs-on: ubuntu-latest\n    stepz: []\n",
            ),
            (
                ".github/workflows/calls-out.yml",
                "on: workflow_call\njobs:\n  out:\n    uses: other/tools/.github/workflows/x.yml@main\n",
            ),
            (
                ".github/workflows/cycle.yml",
                "on: workflow_call\njobs:\n  again:\n    uses: ./.github/workflows/cycle.yml\n",
            ),
        ],
    );
    // `other/tools` exists and has a source: only the organization keeps it out.
    fx.app
        .create_organization(CreateOrganization {
            name: "other".into(),
            weight: None,
            hosted_concurrency_limit: None,
        })
        .await
        .unwrap();
    fx.app
        .create_repository(
            "other",
            CreateRepository {
                name: "tools".into(),
                default_branch: None,
            },
        )
        .await
        .unwrap();
    fx.app
        .set_repository_source(
            "other",
            "tools",
            SetRepositorySource {
                git_path: Some(lib.to_string_lossy().into_owned()),
                git_url: None,
                webhook_secret: Some(SECRET.into()),
            },
        )
        .await
        .unwrap();
    fx.app
        .create_repository(
            "acme",
            CreateRepository {
                name: "bare".into(),
                default_branch: None,
            },
        )
        .await
        .unwrap();
    // `acme/gone` had a source that was removed from disk since.
    let gone = other_repository(&fx, "gone").await;
    std::fs::remove_dir_all(&gone).unwrap();

    let calling = |uses: &str| format!("on: push\njobs:\n  call:\n    uses: {uses}\n");
    let cases = [
        (
            "other-org",
            "other/tools/.github/workflows/build.yml@main",
            "4:11: the called workflow `other/tools/.github/workflows/build.yml@main` is in organization `other`",
        ),
        (
            "unknown-ref",
            "acme/lib/.github/workflows/build.yml@nope",
            "4:11: the called workflow `acme/lib/.github/workflows/build.yml@nope`: `nope` is not a branch, tag or commit of `acme/lib`",
        ),
        (
            "unknown-repo",
            "acme/ghost/.github/workflows/x.yml@main",
            "4:11: the called workflow `acme/ghost/.github/workflows/x.yml@main`: repository `acme/ghost` is not known to gantry",
        ),
        (
            "no-source",
            "acme/bare/.github/workflows/x.yml@main",
            "4:11: the called workflow `acme/bare/.github/workflows/x.yml@main`: repository `acme/bare` has no git source",
        ),
        (
            "gone",
            "acme/gone/.github/workflows/x.yml@main",
            "4:11: the called workflow `acme/gone/.github/workflows/x.yml@main`: the git source of repository `acme/gone` cannot be read",
        ),
        (
            "missing-file",
            "acme/lib/.github/workflows/missing.yml@v1",
            "4:11: the called workflow `acme/lib/.github/workflows/missing.yml@v1` does not exist: `acme/lib` has no file",
        ),
    ];
    let mut files: Vec<(String, String)> = cases
        .iter()
        .map(|(name, uses, _)| (format!(".github/workflows/{name}.yml"), calling(uses)))
        .collect();
    for (name, uses) in [
        (
            "broken-callee",
            "acme/lib/.github/workflows/broken.yml@main",
        ),
        (
            "nested-out",
            "acme/lib/.github/workflows/calls-out.yml@main",
        ),
        ("cycle", "acme/lib/.github/workflows/cycle.yml@main"),
    ] {
        files.push((format!(".github/workflows/{name}.yml"), calling(uses)));
    }
    let files: Vec<(&str, &str)> = files
        .iter()
        .map(|(path, text)| (path.as_str(), text.as_str()))
        .collect();
    let first = fx.commit(&[("README.md", "hi\n")], "initial");
    let head = fx.commit(&files, "workflows");
    let outcome = fx.push(&first, &head, "refs/heads/main").await;

    let error_of = |name: &str| {
        let path = format!(".github/workflows/{name}.yml");
        let runs = runs_of(&outcome, &path);
        assert_eq!(runs.len(), 1, "{path}: {outcome:#?}");
        assert_eq!(runs[0].conclusion, Some(Conclusion::Failure), "{path}");
        runs[0].workflow_errors.join("\n")
    };
    for (name, _, expected) in cases {
        let error = error_of(name);
        let expected = format!(".github/workflows/{name}.yml:{expected}");
        assert!(error.starts_with(&expected), "{error}\nexpected {expected}");
    }
    let error = error_of("broken-callee");
    assert!(
        error.starts_with("acme/lib/.github/workflows/broken.yml@main:5:5: "),
        "{error}"
    );
    // A call inside `lib`'s file is located there, and still held to the caller's organization.
    let error = error_of("nested-out");
    assert!(
        error.starts_with(
            "acme/lib/.github/workflows/calls-out.yml@main:4:11: the called workflow `other/tools/.github/workflows/x.yml@main` is in organization `other`"
        ),
        "{error}"
    );
    // A file calling itself ends at the nesting limit, not in a loop.
    let error = error_of("cycle");
    assert!(error.contains("depth exceeded"), "{error}");
}

#[tokio::test]
async fn api_runs_read_calls_of_known_repositories_and_refuse_the_others_at_line_and_col() {
    let fx = Fixture::new().await;
    lib_with_a_tag(&fx).await;
    let trigger = |workflow: &str, called: &[(&str, &str)]| TriggerRun {
        workflow_path: ".github/workflows/api.yml".into(),
        workflow: workflow.into(),
        event: None,
        git_ref: None,
        sha: None,
        actor: None,
        payload: None,
        inputs: None,
        called_workflows: (!called.is_empty()).then(|| {
            called
                .iter()
                .map(|(uses, text)| (uses.to_string(), text.to_string()))
                .collect()
        }),
    };
    let job_names = |detail: &gantry_proto::v1::RunDetail| {
        let mut names: Vec<String> = detail.jobs.iter().map(|job| job.name.clone()).collect();
        names.sort();
        names
    };

    // Not given: read from `acme/lib` at the tag, its nested `./` call with it.
    let calls_lib = "on: push\njobs:\n  call:\n    uses: acme/lib/.github/workflows/build.yml@v1\n    with:\n      target: api\n    secrets: inherit\n";
    let (run, _) = fx
        .app
        .trigger_run("acme", "app", trigger(calls_lib, &[]), None)
        .await
        .unwrap();
    let detail = fx.app.get_run(run.id).await.unwrap();
    assert_eq!(
        job_names(&detail),
        [
            "call",
            "call / build",
            "call / lint",
            "call / lint / lib-lint",
            "call / package"
        ]
    );

    // Given: any `uses:` text works, even of a repository gantry does not know, and the given
    // file's own `./` calls are looked up under that repository's key.
    let elsewhere = "elsewhere/tools/.github/workflows/x.yml@v2";
    let given = "on: workflow_call\njobs:\n  inner:\n    uses: ./.github/workflows/y.yml\n";
    let inner =
        "on: workflow_call\njobs:\n  y:\n    runs-on: ubuntu-latest\n    steps:\n      - run: y\n";
    let calls_elsewhere = format!("on: push\njobs:\n  call:\n    uses: {elsewhere}\n");
    let (run, _) = fx
        .app
        .trigger_run(
            "acme",
            "app",
            trigger(
                &calls_elsewhere,
                &[
                    (elsewhere, given),
                    ("elsewhere/tools/.github/workflows/y.yml@v2", inner),
                ],
            ),
            None,
        )
        .await
        .unwrap();
    let detail = fx.app.get_run(run.id).await.unwrap();
    assert_eq!(
        job_names(&detail),
        ["call", "call / inner", "call / inner / y"]
    );

    // Its nested file not given: it would be read from `elsewhere/tools`, which is another
    // organization's: 422 at the caller's `uses:`, naming the nested call's key.
    let error = fx
        .app
        .trigger_run(
            "acme",
            "app",
            trigger(&calls_elsewhere, &[(elsewhere, given)]),
            None,
        )
        .await
        .unwrap_err();
    assert_eq!(error.code, ErrorCode::WorkflowInvalid, "{error:?}");
    assert_eq!(error.details.len(), 1, "{error:?}");
    let detail = &error.details[0];
    assert_eq!((detail.line, detail.col), (Some(4), Some(11)), "{error:?}");
    assert!(
        detail.message.starts_with(&format!("in {elsewhere} at 4:11: the called workflow `elsewhere/tools/.github/workflows/y.yml@v2` is in organization `elsewhere`")),
        "{error:?}"
    );

    // Not given and not known: 422 naming the call at its `line:col`; nothing stored.
    let runs_before = fx.app.list_runs(None, Default::default()).await.unwrap();
    let ghost = "on: push\njobs:\n  build:\n    runs-on: ubuntu-latest\n    steps:\n      - run: x\n  call:\n    uses: acme/ghost/.github/workflows/x.yml@main\n";
    let error = fx
        .app
        .trigger_run("acme", "app", trigger(ghost, &[]), None)
        .await
        .unwrap_err();
    assert_eq!(error.code, ErrorCode::WorkflowInvalid, "{error:?}");
    assert_eq!(
        (error.details[0].line, error.details[0].col),
        (Some(8), Some(11)),
        "{error:?}"
    );
    assert!(
        error.details[0]
            .message
            .contains("repository `acme/ghost` is not known to gantry"),
        "{error:?}"
    );
    let runs_after = fx.app.list_runs(None, Default::default()).await.unwrap();
    assert_eq!(runs_after.items.len(), runs_before.items.len());
}

#[tokio::test]
async fn a_called_ref_a_mirror_lacks_is_fetched_from_its_origin() {
    let fx = Fixture::new().await;
    // `acme/lib` is a mirror of a git URL, cloned before the tag exists.
    let origin = fx._dir.path().join("lib-origin");
    std::fs::create_dir(&origin).unwrap();
    git(&origin, &["init", "-q", "-b", "main"]);
    git(&origin, &["config", "user.name", "Test"]);
    git(&origin, &["config", "user.email", "test@example.com"]);
    commit_in(&origin, &[(".github/workflows/lint.yml", LIB_LINT)]);
    let url = format!("file://{}", origin.display());
    let source = set_url(&fx, "lib", Some(url), None).await.unwrap();
    git(&origin, &["tag", "v9"]);
    // This node has lost the mirror (or another replica made it): it is cloned again.
    std::fs::remove_dir_all(&source.git_path).unwrap();

    let calls = "on: push\njobs:\n  call:\n    uses: acme/lib/.github/workflows/lint.yml@v9\n";
    let first = fx.commit(&[("README.md", "hi\n")], "initial");
    let head = fx.commit(&[(".github/workflows/ci.yml", calls)], "calls");
    let outcome = fx.push(&first, &head, "refs/heads/main").await;
    let runs = runs_of(&outcome, ".github/workflows/ci.yml");
    assert_eq!(runs.len(), 1, "{outcome:#?}");
    assert!(runs[0].workflow_errors.is_empty(), "{:#?}", runs[0]);
    assert!(std::path::Path::new(&source.git_path).join("HEAD").exists());

    // The origin gone and a ref nobody has: the caller fails, saying the fetch failed.
    std::fs::rename(&origin, fx._dir.path().join("moved")).unwrap();
    let calls = "on: push\njobs:\n  call:\n    uses: acme/lib/.github/workflows/lint.yml@v10\n";
    let next = fx.commit(&[(".github/workflows/ci.yml", calls)], "calls v10");
    let outcome = fx.push(&head, &next, "refs/heads/main").await;
    let runs = runs_of(&outcome, ".github/workflows/ci.yml");
    assert_eq!(runs.len(), 1, "{outcome:#?}");
    let error = runs[0].workflow_errors.join("\n");
    assert!(
        error.starts_with(".github/workflows/ci.yml:4:11: the called workflow `acme/lib/.github/workflows/lint.yml@v10`: cannot fetch `acme/lib` from its origin"),
        "{error}"
    );
}
