//! The git triggers end to end: a real git repository made with the `git` command line, its
//! pushes reported as a `post-receive` hook would, GitHub webhooks signed or not, and the runs
//! (and `github` contexts) they start.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use gantry_proto::v1::{
    Conclusion, CreateOrganization, CreateRepository, ErrorCode, HookOutcome, ReceivedPush,
    RefUpdate, Run, RunListQuery, RunStatus, SetRepositorySource,
};
use gantry_server::webhook::sign;
use gantry_server::{App, Storage, WebhookHeaders, open_store};
use gantry_store::{RunId, Store};
use serde_json::{Value, json};

const ZERO: &str = "0000000000000000000000000000000000000000";
pub(crate) const SECRET: &str = "It's a Secret to Everybody";

const CI: &str = "on:\n  push:\n    branches: [main]\n    paths: ['src/**']\njobs:\n  build:\n    runs-on: ubuntu-latest\n    steps:\n      - run: make\n";
const DOCS: &str = "on:\n  push:\n    paths: ['docs/**']\njobs:\n  site:\n    runs-on: ubuntu-latest\n    steps:\n      - run: mkdocs build\n";
const RELEASE: &str = "on:\n  push:\n    tags: ['v*']\njobs:\n  ship:\n    runs-on: ubuntu-latest\n    steps:\n      - run: ./ship\n";
const PR: &str = "on:\n  pull_request:\n    types: [opened, synchronize]\n    branches: [main]\n    paths: ['src/**']\njobs:\n  check:\n    runs-on: ubuntu-latest\n    steps:\n      - run: make check\n";

/// A server (as a library) with one repository `acme/app` backed by a git repository.
pub(crate) struct Fixture {
    pub(crate) app: Arc<App>,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) git: PathBuf,
    pub(crate) _dir: tempfile::TempDir,
    /// The PostgreSQL database and schema the store lives in, when not SQLite.
    postgres: Option<(String, String)>,
}

pub(crate) fn git(dir: &Path, args: &[&str]) -> String {
    let output = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", dir)
        .output()
        .expect("git runs");
    assert!(
        output.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

impl Fixture {
    pub(crate) async fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let store = open_store(&Storage::Sqlite {
            path: dir.path().join("gantry.sqlite"),
        })
        .await
        .unwrap();
        Fixture::with_store(dir, store, None).await
    }

    /// The fixture on PostgreSQL at `GANTRY_TEST_DATABASE_URL` (default
    /// `postgres://postgres@127.0.0.1:5432/test`), in a fresh schema that [`Fixture::finish`]
    /// drops; `None`, with a loud message, when the server cannot be reached outside CI.
    pub(crate) async fn postgres() -> Option<Fixture> {
        let url = std::env::var("GANTRY_TEST_DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let schema = format!("gantry_server_it_{}_{nanos}", std::process::id());
        let storage = Storage::Postgres {
            url: url.clone(),
            schema: Some(schema.clone()),
        };
        let store = match open_store(&storage).await {
            Ok(store) => store,
            Err(error) if std::env::var("CI").is_ok_and(|ci| ci == "true") => {
                panic!("PostgreSQL not reachable at {url} and CI=true: {error:#}")
            }
            Err(error) => {
                eprintln!("!!!! SKIPPED: PostgreSQL not reachable at {url} ({error:#}) !!!!");
                return None;
            }
        };
        let dir = tempfile::tempdir().unwrap();
        Some(Fixture::with_store(dir, store, Some((url, schema))).await)
    }

    /// Drops the PostgreSQL schema (an SQLite file goes with the directory).
    pub(crate) async fn finish(self) {
        use sqlx::Connection;
        let Some((url, schema)) = &self.postgres else {
            return;
        };
        let mut connection = sqlx::PgConnection::connect(url).await.unwrap();
        // The schema name is made above from a fixed prefix, the process id and the clock.
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"
        )))
        .execute(&mut connection)
        .await
        .unwrap();
    }

    async fn with_store(
        dir: tempfile::TempDir,
        store: Arc<dyn Store>,
        postgres: Option<(String, String)>,
    ) -> Fixture {
        let git_dir = dir.path().join("app");
        std::fs::create_dir(&git_dir).unwrap();
        git(&git_dir, &["init", "-q", "-b", "main"]);
        git(&git_dir, &["config", "user.name", "Test"]);
        git(&git_dir, &["config", "user.email", "test@example.com"]);
        git(&git_dir, &["config", "commit.gpgsign", "false"]);
        let app = Arc::new(
            App::new(Arc::clone(&store), Default::default())
                .with_mirrors_dir(dir.path().join("mirrors")),
        );
        app.recover().await.unwrap();
        app.create_organization(CreateOrganization {
            name: "acme".into(),
            weight: None,
            hosted_concurrency_limit: None,
        })
        .await
        .unwrap();
        app.create_repository(
            "acme",
            CreateRepository {
                name: "app".into(),
                default_branch: None,
            },
        )
        .await
        .unwrap();
        app.set_repository_source(
            "acme",
            "app",
            SetRepositorySource {
                git_path: Some(git_dir.to_string_lossy().into_owned()),
                git_url: None,
                webhook_secret: Some(SECRET.into()),
            },
        )
        .await
        .unwrap();
        Fixture {
            app,
            store,
            git: git_dir,
            _dir: dir,
            postgres,
        }
    }

    /// Writes `files` and commits them; returns the commit.
    pub(crate) fn commit(&self, files: &[(&str, &str)], message: &str) -> String {
        for (path, text) in files {
            let path = self.git.join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        git(&self.git, &["add", "-A"]);
        git(&self.git, &["commit", "-q", "-m", message]);
        git(&self.git, &["rev-parse", "HEAD"])
    }

    pub(crate) async fn push(&self, before: &str, after: &str, git_ref: &str) -> HookOutcome {
        let request = ReceivedPush {
            updates: vec![RefUpdate {
                before: before.into(),
                after: after.into(),
                git_ref: git_ref.into(),
            }],
            pusher: Some("octocat".into()),
        };
        self.app.receive_push("acme", "app", request).await.unwrap()
    }

    async fn webhook(
        &self,
        event: &str,
        body: &[u8],
        signature: Option<String>,
        delivery: &str,
    ) -> Result<HookOutcome, gantry_server::ApiError> {
        let headers = WebhookHeaders {
            event: Some(event.into()),
            signature,
            delivery: Some(delivery.into()),
        };
        self.app.receive_github_webhook(headers, body).await
    }

    async fn run_count(&self) -> usize {
        self.app
            .list_runs(Some(("acme", "app")), RunListQuery::default())
            .await
            .unwrap()
            .items
            .len()
    }

    /// The `github` context a run was created with.
    async fn github(&self, run_id: i64) -> Value {
        let state = self.store.get_engine_state(RunId(run_id)).await.unwrap();
        state.spec.unwrap()["trigger"]["github"].clone()
    }
}

pub(crate) fn started(outcome: &HookOutcome) -> Vec<&str> {
    let mut paths: Vec<&str> = outcome
        .runs
        .iter()
        .map(|triggered| triggered.run.workflow_path.as_str())
        .collect();
    paths.sort_unstable();
    paths
}

#[tokio::test]
async fn pushes_start_exactly_the_workflows_their_paths_and_refs_match() {
    let fx = Fixture::new().await;
    let first = fx.commit(
        &[
            (".github/workflows/ci.yml", CI),
            (".github/workflows/docs.yaml", DOCS),
            (".github/workflows/release.yml", RELEASE),
            ("src/main.c", "int main;\n"),
            ("README.md", "hi\n"),
        ],
        "initial",
    );
    // A new branch with one root commit: every file is new.
    let outcome = fx.push(ZERO, &first, "refs/heads/main").await;
    assert_eq!(
        started(&outcome),
        [".github/workflows/ci.yml"],
        "{outcome:#?}"
    );

    let src = fx.commit(&[("src/main.c", "int main(void);\n")], "src");
    let outcome = fx.push(&first, &src, "refs/heads/main").await;
    assert_eq!(started(&outcome), [".github/workflows/ci.yml"]);
    let skipped: Vec<&str> = outcome
        .skipped
        .iter()
        .map(|s| s.workflow_path.as_str())
        .collect();
    assert_eq!(
        skipped,
        [
            ".github/workflows/docs.yaml",
            ".github/workflows/release.yml"
        ]
    );

    let docs = fx.commit(&[("docs/index.md", "# docs\n")], "docs");
    let outcome = fx.push(&src, &docs, "refs/heads/main").await;
    assert_eq!(started(&outcome), [".github/workflows/docs.yaml"]);

    let readme = fx.commit(&[("README.md", "hello\n")], "readme");
    let outcome = fx.push(&docs, &readme, "refs/heads/main").await;
    assert!(outcome.runs.is_empty(), "{outcome:#?}");

    // Both paths on another branch: `ci` filters on main only.
    git(&fx.git, &["checkout", "-q", "-b", "feature"]);
    let both = fx.commit(&[("src/a.c", "1\n"), ("docs/a.md", "1\n")], "both");
    let outcome = fx.push(&readme, &both, "refs/heads/feature").await;
    assert_eq!(started(&outcome), [".github/workflows/docs.yaml"]);

    let run = &outcome.runs[0].run;
    assert_eq!(
        (run.event.as_str(), run.sha.as_str()),
        ("push", both.as_str())
    );
    let github = fx.github(run.id).await;
    assert_eq!(github["ref"], "refs/heads/feature");
    assert_eq!(github["ref_name"], "feature");
    assert_eq!(github["sha"], both);
    assert_eq!(github["actor"], "octocat");
    assert_eq!(github["repository"], "acme/app");
    assert_eq!(github["event"]["before"], readme);
    assert_eq!(github["run_id"], run.id.to_string());
    assert_eq!(github["run_number"], "2");
    assert_eq!(github["run_attempt"], "1");
    assert_eq!(github["head_ref"], "");
    assert_eq!(fx.run_count().await, 4);

    // The same report again (a retried hook) starts nothing new.
    let again = fx.push(&readme, &both, "refs/heads/feature").await;
    assert!(again.runs.iter().all(|triggered| !triggered.created));
    assert_eq!(fx.run_count().await, 4);
}

#[tokio::test]
async fn a_tag_push_starts_tag_workflows_without_path_filters() {
    let fx = Fixture::new().await;
    let head = fx.commit(
        &[
            (".github/workflows/ci.yml", CI),
            (".github/workflows/release.yml", RELEASE),
            ("src/main.c", "x\n"),
        ],
        "initial",
    );
    git(&fx.git, &["tag", "-a", "v1.0", "-m", "release"]);
    git(&fx.git, &["tag", "nightly"]);
    // An annotated tag's push names the tag object; the run is for the commit it tags.
    let tag_object = git(&fx.git, &["rev-parse", "v1.0"]);
    assert_ne!(tag_object, head);
    let outcome = fx.push(ZERO, &tag_object, "refs/tags/v1.0").await;
    assert_eq!(started(&outcome), [".github/workflows/release.yml"]);
    let run = &outcome.runs[0].run;
    assert_eq!(run.git_ref, "refs/tags/v1.0");
    let github = fx.github(run.id).await;
    assert_eq!(github["ref_name"], "v1.0");
    assert_eq!(github["ref_type"], "tag");
    assert_eq!(github["sha"], head);

    let outcome = fx.push(ZERO, &head, "refs/tags/nightly").await;
    assert!(outcome.runs.is_empty(), "{outcome:#?}");
    // A deleted tag starts no push workflow.
    let outcome = fx.push(&tag_object, ZERO, "refs/tags/v1.0").await;
    assert!(outcome.runs.is_empty());
    assert_eq!(outcome.ignored, ["refs/tags/v1.0 was deleted"]);
}

/// The corpus's `pull_request` `opened` payload, pointed at this repository's commits.
fn pull_request_body(base: &str, head: &str, action: &str) -> Option<Vec<u8>> {
    let path =
        corpus_dir()?.join("payload-examples/api.github.com/pull_request/opened.payload.json");
    let mut payload: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    payload["action"] = json!(action);
    payload["repository"]["full_name"] = json!("acme/app");
    payload["repository"]["owner"]["login"] = json!("acme");
    let pr = &mut payload["pull_request"];
    pr["base"]["ref"] = json!("main");
    pr["base"]["sha"] = json!(base);
    pr["head"]["ref"] = json!("feature");
    pr["head"]["sha"] = json!(head);
    Some(serde_json::to_vec(&payload).unwrap())
}

#[tokio::test]
async fn a_pull_request_webhook_runs_on_the_head_with_the_merge_base_diff() {
    let fx = Fixture::new().await;
    let base = fx.commit(
        &[(".github/workflows/pr.yml", PR), ("src/main.c", "x\n")],
        "initial",
    );
    git(&fx.git, &["checkout", "-q", "-b", "feature"]);
    let head = fx.commit(&[("src/feature.c", "y\n")], "feature");
    git(&fx.git, &["checkout", "-q", "main"]);
    // main moves on with a docs change: the three-dot diff still only sees src/feature.c.
    let main = fx.commit(&[("docs/x.md", "z\n")], "docs on main");

    let Some(body) = pull_request_body(&main, &head, "opened") else {
        return;
    };
    let outcome = fx
        .webhook(
            "pull_request",
            &body,
            Some(sign(SECRET.as_bytes(), &body)),
            "d-pr-1",
        )
        .await
        .unwrap();
    assert_eq!(
        started(&outcome),
        [".github/workflows/pr.yml"],
        "{outcome:#?}"
    );
    let run = &outcome.runs[0].run;
    let github = fx.github(run.id).await;
    assert_eq!(github["event_name"], "pull_request");
    assert_eq!(github["ref"], "refs/pull/2/merge");
    assert_eq!(github["ref_name"], "2/merge");
    assert_eq!(github["sha"], head);
    assert_eq!(github["head_ref"], "feature");
    assert_eq!(github["base_ref"], "main");
    assert_eq!(github["actor"], "Codertocat");
    assert_eq!(github["event"]["action"], "opened");
    assert_eq!(github["event"]["pull_request"]["number"], 2);

    // `closed` is not among the workflow's types.
    let body = pull_request_body(&main, &head, "closed").unwrap();
    let outcome = fx
        .webhook(
            "pull_request",
            &body,
            Some(sign(SECRET.as_bytes(), &body)),
            "d-pr-2",
        )
        .await
        .unwrap();
    assert!(outcome.runs.is_empty());
    assert!(outcome.skipped[0].reason.contains("closed"), "{outcome:#?}");

    // With base == main's first commit the diff would include only src/feature.c as well;
    // a pull request that touches only docs does not run.
    git(&fx.git, &["checkout", "-q", "-b", "docs-only", &base]);
    let docs_head = fx.commit(&[("docs/y.md", "y\n")], "docs only");
    let body = pull_request_body(&main, &docs_head, "synchronize").unwrap();
    let outcome = fx
        .webhook(
            "pull_request",
            &body,
            Some(sign(SECRET.as_bytes(), &body)),
            "d-pr-3",
        )
        .await
        .unwrap();
    assert!(outcome.runs.is_empty(), "{outcome:#?}");
}

#[tokio::test]
async fn webhook_redelivery_creates_nothing_new() {
    let fx = Fixture::new().await;
    let first = fx.commit(
        &[(".github/workflows/ci.yml", CI), ("src/a.c", "1\n")],
        "one",
    );
    let second = fx.commit(&[("src/a.c", "2\n")], "two");
    let body = serde_json::to_vec(&json!({
        "ref": "refs/heads/main", "before": first, "after": second,
        "created": false, "deleted": false, "forced": false, "base_ref": null,
        "repository": { "full_name": "acme/app", "owner": { "login": "acme" } },
        "sender": { "login": "octocat" },
    }))
    .unwrap();
    let signature = sign(SECRET.as_bytes(), &body);
    let one = fx
        .webhook("push", &body, Some(signature.clone()), "delivery-1")
        .await
        .unwrap();
    assert_eq!(one.runs.len(), 1);
    assert!(one.runs[0].created);
    let again = fx
        .webhook("push", &body, Some(signature.clone()), "delivery-1")
        .await
        .unwrap();
    assert_eq!(again.runs.len(), 1);
    assert!(!again.runs[0].created);
    assert_eq!(again.runs[0].run.id, one.runs[0].run.id);
    assert_eq!(fx.run_count().await, 1);
    // A new delivery of the same event is a new event, as on GitHub.
    let other = fx
        .webhook("push", &body, Some(signature), "delivery-2")
        .await
        .unwrap();
    assert!(other.runs[0].created);
    assert_eq!(fx.run_count().await, 2);
}

#[tokio::test]
async fn bad_or_missing_signatures_are_refused_and_store_nothing() {
    let fx = Fixture::new().await;
    let first = fx.commit(
        &[(".github/workflows/ci.yml", CI), ("src/a.c", "1\n")],
        "one",
    );
    let second = fx.commit(&[("src/a.c", "2\n")], "two");
    let body = serde_json::to_vec(&json!({
        "ref": "refs/heads/main", "before": first, "after": second,
        "repository": { "full_name": "acme/app" }, "sender": { "login": "mallory" },
    }))
    .unwrap();
    let forged = sign(b"wrong secret", &body);
    let mut tampered = body.clone();
    tampered.extend_from_slice(b" ");
    let cases = [
        ("missing", &body, None),
        ("wrong secret", &body, Some(forged)),
        (
            "tampered body",
            &tampered,
            Some(sign(SECRET.as_bytes(), &body)),
        ),
        ("not sha256", &body, Some("sha1=abc".to_owned())),
    ];
    for (name, body, signature) in cases {
        let error = fx.webhook("push", body, signature, name).await.unwrap_err();
        assert_eq!(error.code, ErrorCode::Unauthorized, "{name}: {error:?}");
        assert_eq!(gantry_server::status_of(error.code).as_u16(), 401);
    }
    assert_eq!(fx.run_count().await, 0);
}

#[tokio::test]
async fn invalid_workflows_and_local_reusable_calls_are_checked_at_the_commit() {
    let fx = Fixture::new().await;
    let reusable = "on:\n  workflow_call:\n    inputs:\n      target:\n        type: string\n        required: true\njobs:\n  deploy:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo ${{ inputs.target }}\n";
    let caller = "on: push\njobs:\n  call:\n    uses: ./.github/workflows/reusable.yml\n    with:\n      target: prod\n";
    let missing_input = "on: push\njobs:\n  call:\n    uses: ./.github/workflows/reusable.yml\n";
    let missing_file = "on: push\njobs:\n  call:\n    uses: ./.github/workflows/nope.yml\n";
    let broken = "on: push\njobs:\n  build:\n    runs-on: ubuntu-latest\n    stepz: []\n";
    // An existing branch, so the push is one `push` event (a new ref would add `create`).
    let first = fx.commit(&[("README.md", "hi\n")], "initial");
    let head = fx.commit(
        &[
            (".github/workflows/reusable.yml", reusable),
            (".github/workflows/caller.yml", caller),
            (".github/workflows/missing-input.yml", missing_input),
            (".github/workflows/missing-file.yml", missing_file),
            (".github/workflows/broken.yml", broken),
        ],
        "workflows",
    );
    let outcome = fx.push(&first, &head, "refs/heads/main").await;
    // Every file the push reaches gets a run; the invalid ones' runs failed at once.
    assert_eq!(
        started(&outcome),
        [
            ".github/workflows/broken.yml",
            ".github/workflows/caller.yml",
            ".github/workflows/missing-file.yml",
            ".github/workflows/missing-input.yml",
        ],
        "{outcome:#?}"
    );
    for triggered in &outcome.runs {
        let valid = triggered.run.workflow_path == ".github/workflows/caller.yml";
        assert_eq!(
            triggered.run.workflow_errors.is_empty(),
            valid,
            "{triggered:#?}"
        );
    }
    let invalid: Vec<(&str, &str)> = outcome
        .invalid
        .iter()
        .map(|invalid| (invalid.workflow_path.as_str(), invalid.errors[0].as_str()))
        .collect();
    assert_eq!(invalid.len(), 3, "{invalid:#?}");
    assert!(
        invalid[0]
            .1
            .starts_with(".github/workflows/broken.yml:5:5: "),
        "{invalid:#?}"
    );
    assert!(
        invalid[1]
            .1
            .starts_with(".github/workflows/missing-file.yml:4:11: ")
            && invalid[1].1.contains("does not exist"),
        "{invalid:#?}"
    );
    assert!(
        invalid[2]
            .1
            .starts_with(".github/workflows/missing-input.yml:")
            && invalid[2].1.contains("target"),
        "{invalid:#?}"
    );
    // `workflow_call` alone never starts a run.
    assert!(
        outcome
            .skipped
            .iter()
            .any(|skipped| skipped.workflow_path == ".github/workflows/reusable.yml")
    );
}

/// `git_url` as a source of repository `acme/{name}` (created first).
pub(crate) async fn set_url(
    fx: &Fixture,
    name: &str,
    url: Option<String>,
    git_path: Option<String>,
) -> Result<gantry_proto::v1::RepositorySource, gantry_server::ApiError> {
    let _ = fx
        .app
        .create_repository(
            "acme",
            CreateRepository {
                name: name.into(),
                default_branch: None,
            },
        )
        .await;
    fx.app
        .set_repository_source(
            "acme",
            name,
            SetRepositorySource {
                git_path,
                git_url: url,
                webhook_secret: Some(SECRET.into()),
            },
        )
        .await
}

#[tokio::test]
async fn a_repository_by_url_is_mirrored_and_fetched_before_an_unknown_commit_is_read() {
    let fx = Fixture::new().await;
    let first = fx.commit(&[("README.md", "hi\n")], "initial");
    let url = format!("file://{}", fx.git.display());
    let source = set_url(&fx, "mirrored", Some(url.clone()), None)
        .await
        .unwrap();
    assert_eq!(source.git_url.as_deref(), Some(url.as_str()));
    let mirror = PathBuf::from(&source.git_path);
    assert!(
        mirror.starts_with(fx._dir.path().join("mirrors")),
        "{source:?}"
    );
    assert_eq!(git(&mirror, &["rev-parse", "refs/heads/main"]), first);

    // A push to the origin the mirror has not seen: the webhook fetches it, then runs.
    let second = fx.commit(
        &[(".github/workflows/ci.yml", CI), ("src/a.c", "1\n")],
        "ci",
    );
    let body = serde_json::to_vec(&json!({
        "ref": "refs/heads/main", "before": first, "after": second,
        "repository": { "full_name": "acme/mirrored" }, "sender": { "login": "octocat" },
    }))
    .unwrap();
    let signature = sign(SECRET.as_bytes(), &body);
    let outcome = fx
        .webhook("push", &body, Some(signature), "mirror-1")
        .await
        .unwrap();
    assert_eq!(
        started(&outcome),
        [".github/workflows/ci.yml"],
        "{outcome:#?}"
    );
    assert_eq!(outcome.runs[0].run.sha, second);
    assert_eq!(outcome.runs[0].run.repository, "acme/mirrored");
    assert_eq!(git(&mirror, &["rev-parse", "refs/heads/main"]), second);

    // A commit the origin does not have either: a bad request, nothing stored.
    let ghost = "1".repeat(40);
    let body = serde_json::to_vec(&json!({
        "ref": "refs/heads/main", "before": second, "after": ghost,
        "repository": { "full_name": "acme/mirrored" }, "sender": { "login": "octocat" },
    }))
    .unwrap();
    let signature = sign(SECRET.as_bytes(), &body);
    let error = fx
        .webhook("push", &body, Some(signature.clone()), "mirror-2")
        .await
        .unwrap_err();
    assert_eq!(error.code, ErrorCode::InvalidRequest, "{error:?}");
    // The origin gone: the fetch fails, the delivery may be retried (503), nothing stored.
    std::fs::rename(&fx.git, fx._dir.path().join("moved")).unwrap();
    let error = fx
        .webhook("push", &body, Some(signature), "mirror-3")
        .await
        .unwrap_err();
    assert_eq!(error.code, ErrorCode::Unavailable, "{error:?}");
    assert!(error.message.contains("cannot fetch from"), "{error:?}");
    let runs = fx.app.list_runs(None, Default::default()).await.unwrap();
    assert_eq!(runs.items.len(), 1);
}

#[tokio::test]
async fn unusable_git_urls_are_refused_and_leave_nothing() {
    let fx = Fixture::new().await;
    let plain = fx._dir.path().join("plain");
    std::fs::create_dir(&plain).unwrap();
    let cases = [
        (
            Some(format!("file://{}", plain.display())),
            None,
            "cannot fetch from",
        ),
        (
            Some(format!(
                "file://{}",
                fx._dir.path().join("nowhere").display()
            )),
            None,
            "cannot fetch from",
        ),
        (Some("https://".to_owned()), None, "is not a git URL"),
        (
            Some("file:///x".to_owned()),
            Some("/x".to_owned()),
            "exactly one of",
        ),
        (None, None, "exactly one of"),
    ];
    for (url, path, expected) in cases {
        let error = set_url(&fx, "broken", url.clone(), path).await.unwrap_err();
        assert_eq!(error.code, ErrorCode::InvalidRequest, "{url:?}: {error:?}");
        let text = format!("{error:?}");
        assert!(text.contains(expected), "{url:?}: {text}");
    }
    assert!(
        fx.app
            .get_repository_source("acme", "broken")
            .await
            .is_err()
    );
    assert!(!fx._dir.path().join("mirrors/acme/broken.git").exists());
}

/// The runs of `workflow_path` in `outcome`.
pub(crate) fn runs_of<'a>(outcome: &'a HookOutcome, workflow_path: &str) -> Vec<&'a Run> {
    outcome
        .runs
        .iter()
        .filter(|triggered| triggered.run.workflow_path == workflow_path)
        .map(|triggered| &triggered.run)
        .collect()
}

#[tokio::test]
async fn an_invalid_workflow_file_is_recorded_as_a_failed_run() {
    let fx = Fixture::new().await;
    const BROKEN: &str = ".github/workflows/broken.yml";
    const CALLS: &str = ".github/workflows/calls.yml";
    let broken =
        "name: Broken\non: push\njobs:\n  build:\n    runs-on: ubuntu-latest\n    stepz: []\n";
    // It loads, but the file it calls does not exist; it only runs for pull requests.
    let calls = "on: pull_request\njobs:\n  call:\n    uses: ./.github/workflows/nope.yml\n";
    let first = fx.commit(&[("README.md", "hi\n")], "initial");
    let head = fx.commit(
        &[
            (".github/workflows/broken.yml", broken),
            (".github/workflows/calls.yml", calls),
            (".github/workflows/nightly.yml", NIGHTLY),
        ],
        "workflows",
    );
    let outcome = fx.push(&first, &head, "refs/heads/main").await;
    let failed = runs_of(&outcome, BROKEN);
    assert_eq!(failed.len(), 1, "{outcome:#?}");
    let failed = failed[0].clone();
    assert_eq!(failed.status, RunStatus::Completed);
    assert_eq!(failed.conclusion, Some(Conclusion::Failure));
    assert_eq!(failed.run_number, 1);
    assert_eq!(failed.sha, head);
    assert_eq!(failed.event, "push");
    // Named after its file: its `name:` may be what is broken.
    assert_eq!(failed.workflow_name, BROKEN);
    assert!(
        failed.workflow_errors[0].starts_with(".github/workflows/broken.yml:6:5: "),
        "{failed:#?}"
    );
    // The push would not start `calls.yml`, so its invalid call records nothing.
    assert!(runs_of(&outcome, CALLS).is_empty(), "{outcome:#?}");
    assert!(
        outcome
            .invalid
            .iter()
            .any(|invalid| invalid.workflow_path == CALLS)
    );

    // The API shows the errors and no jobs; the run cannot be driven.
    let detail = fx.app.get_run(failed.id).await.unwrap();
    assert_eq!(detail.run, failed);
    assert!(detail.jobs.is_empty());
    for error in [
        fx.app.cancel_run(failed.id).await.unwrap_err(),
        fx.app
            .rerun(failed.id, Default::default())
            .await
            .unwrap_err(),
    ] {
        assert_eq!(error.code, ErrorCode::Conflict, "{error:?}");
        assert!(error.message.contains("invalid"), "{error:?}");
    }

    // The same push reported again finds the run instead of failing once more.
    let again = fx.push(&first, &head, "refs/heads/main").await;
    let replayed = runs_of(&again, BROKEN);
    assert_eq!(replayed[0].id, failed.id);
    assert!(again.runs.iter().all(|triggered| !triggered.created));

    // Schedules never record failed runs: the nightly fires alone.
    assert_eq!(
        fx.app
            .fire_schedules(at("2026-11-27T12:15:00Z"))
            .await
            .unwrap(),
        1
    );

    // A pull request would start `calls.yml`: now its invalid call is a failed run.
    let body = pull_request_body_for(&fx, &head, "opened");
    let signature = sign(SECRET.as_bytes(), &body);
    let outcome = fx
        .webhook("pull_request", &body, Some(signature), "pr-1")
        .await
        .unwrap();
    let failed_call = runs_of(&outcome, CALLS);
    assert_eq!(failed_call.len(), 1, "{outcome:#?}");
    assert!(
        failed_call[0].workflow_errors[0].contains("does not exist"),
        "{failed_call:#?}"
    );
    // The file that does not load cannot say it ignores pull requests: it fails again.
    assert_eq!(runs_of(&outcome, BROKEN)[0].run_number, 2);

    // Fixing the file: the next push runs it with the next number.
    let fixed = fx.commit(
        &[(
            ".github/workflows/broken.yml",
            "on: push\njobs:\n  build:\n    runs-on: ubuntu-latest\n    steps:\n      - run: make\n",
        )],
        "fix",
    );
    let outcome = fx.push(&head, &fixed, "refs/heads/main").await;
    let run = runs_of(&outcome, BROKEN)[0];
    assert_eq!(run.run_number, 3);
    assert!(run.workflow_errors.is_empty());
    assert_eq!(run.status, RunStatus::Queued);
}

/// A `pull_request` webhook body (only the fields gantry reads) from `topic` at `head` into
/// `main`.
fn pull_request_body_for(fx: &Fixture, head: &str, action: &str) -> Vec<u8> {
    let main = git(&fx.git, &["rev-parse", "main"]);
    let payload = json!({
        "action": action,
        "number": 1,
        "repository": { "full_name": "acme/app", "owner": { "login": "acme" } },
        "sender": { "login": "octocat" },
        "pull_request": {
            "number": 1,
            "base": { "ref": "main", "sha": main },
            "head": { "ref": "topic", "sha": head },
        },
    });
    serde_json::to_vec(&payload).unwrap()
}

#[tokio::test]
async fn dispatch_create_and_delete_events_use_githubs_refs() {
    let fx = Fixture::new().await;
    let dispatch = "on:\n  workflow_dispatch:\n    inputs:\n      name:\n        type: string\njobs:\n  hi:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo ${{ inputs.name }}\n";
    let refs = "on: [create, delete]\njobs:\n  log:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo ${{ github.ref }}\n";
    let repo_dispatch = "on:\n  repository_dispatch:\n    types: [deploy]\njobs:\n  go:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo\n";
    let head = fx.commit(
        &[
            (".github/workflows/dispatch.yml", dispatch),
            (".github/workflows/other-dispatch.yml", dispatch),
            (".github/workflows/refs.yml", refs),
            (".github/workflows/repo-dispatch.yml", repo_dispatch),
        ],
        "workflows",
    );
    git(&fx.git, &["branch", "topic"]);
    let repository = json!({ "full_name": "acme/app", "owner": { "login": "acme" } });
    let send = |event: &'static str, payload: Value, delivery: &'static str| {
        let body = serde_json::to_vec(&payload).unwrap();
        let signature = sign(SECRET.as_bytes(), &body);
        let fx = &fx;
        async move {
            fx.webhook(event, &body, Some(signature), delivery)
                .await
                .unwrap()
        }
    };

    let outcome = send(
        "workflow_dispatch",
        json!({ "ref": "refs/heads/topic", "workflow": ".github/workflows/dispatch.yml",
                "inputs": { "name": "mona" }, "repository": repository, "sender": { "login": "mona" } }),
        "wd",
    )
    .await;
    assert_eq!(started(&outcome), [".github/workflows/dispatch.yml"]);
    let github = fx.github(outcome.runs[0].run.id).await;
    assert_eq!(
        (github["ref"].as_str(), github["sha"].as_str()),
        (Some("refs/heads/topic"), Some(head.as_str()))
    );

    let outcome = send(
        "create",
        json!({ "ref": "topic", "ref_type": "branch", "repository": repository, "sender": { "login": "mona" } }),
        "cr",
    )
    .await;
    assert_eq!(started(&outcome), [".github/workflows/refs.yml"]);
    assert_eq!(outcome.runs[0].run.git_ref, "refs/heads/topic");

    let outcome = send(
        "delete",
        json!({ "ref": "gone", "ref_type": "branch", "repository": repository, "sender": { "login": "mona" } }),
        "de",
    )
    .await;
    assert_eq!(started(&outcome), [".github/workflows/refs.yml"]);
    assert_eq!(outcome.runs[0].run.git_ref, "refs/heads/main");
    assert_eq!(outcome.runs[0].run.sha, head);

    let outcome = send(
        "repository_dispatch",
        json!({ "action": "deploy", "branch": "main", "client_payload": {}, "repository": repository, "sender": { "login": "mona" } }),
        "rd",
    )
    .await;
    assert_eq!(started(&outcome), [".github/workflows/repo-dispatch.yml"]);
    let outcome = send(
        "repository_dispatch",
        json!({ "action": "other", "repository": repository, "sender": { "login": "mona" } }),
        "rd2",
    )
    .await;
    assert!(outcome.runs.is_empty());
}

/// `<repo>/../shared/corpora/octokit-webhooks`, or `None` after a loud skip message when it is
/// missing (a failure under `CI=true`).
pub fn corpus_dir() -> Option<PathBuf> {
    let dir =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpora/octokit-webhooks");
    if dir.is_dir() {
        return Some(dir);
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "corpus missing at {} (required when CI=true)",
        dir.display()
    );
    eprintln!(
        "\n*** SKIPPED: octokit-webhooks corpus missing at {} ***\n",
        dir.display()
    );
    None
}

const NIGHTLY: &str = "on:\n  schedule:\n    - cron: '*/15 * * * *'\n    - cron: '30 4 * * 1'\n  push:\n    branches: [main]\njobs:\n  nightly:\n    runs-on: ubuntu-latest\n    steps:\n      - run: ./nightly\n";

fn at(text: &str) -> chrono::DateTime<chrono::Utc> {
    text.parse().unwrap()
}

#[tokio::test]
async fn schedules_fire_once_per_minute_on_the_default_branch_head() {
    let fixture = Fixture::new().await;
    fixture.commit(
        &[
            (".github/workflows/nightly.yml", NIGHTLY),
            (".github/workflows/ci.yml", CI),
            ("src/lib.rs", "fn main() {}\n"),
        ],
        "schedules",
    );
    // 12:15 matches `*/15`: one run of `nightly.yml`, none of the push-only workflow.
    assert_eq!(
        fixture
            .app
            .fire_schedules(at("2026-11-27T12:15:07Z"))
            .await
            .unwrap(),
        1
    );
    // The same minute again (a restart, a second scheduler): nothing new.
    assert_eq!(
        fixture
            .app
            .fire_schedules(at("2026-11-27T12:15:59Z"))
            .await
            .unwrap(),
        0
    );
    // A minute that no line matches.
    assert_eq!(
        fixture
            .app
            .fire_schedules(at("2026-11-27T12:16:00Z"))
            .await
            .unwrap(),
        0
    );
    // The next quarter hour fires again; Monday 04:30 matches both lines: one run per line.
    assert_eq!(
        fixture
            .app
            .fire_schedules(at("2026-11-27T12:30:00Z"))
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        fixture
            .app
            .fire_schedules(at("2026-11-30T04:30:00Z"))
            .await
            .unwrap(),
        2
    );

    let runs = fixture
        .app
        .list_runs(None, Default::default())
        .await
        .unwrap();
    assert_eq!(runs.items.len(), 4, "{:?}", runs.items);
    for run in &runs.items {
        assert_eq!(run.event, "schedule");
        assert_eq!(run.workflow_path, ".github/workflows/nightly.yml");
        assert_eq!(run.git_ref, "refs/heads/main");
    }
    let state = fixture
        .store
        .get_engine_state(RunId(runs.items[0].id))
        .await
        .unwrap();
    // `github.event.schedule` names the line that fired (the trigger is in the run's spec).
    let text = state.spec.unwrap().to_string();
    assert!(text.contains("\"schedule\":\""), "{text}");
}

const REUSABLE_BUILD: &str = r#"on:
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
      - run: echo ${{ inputs.target }} ${{ secrets.token }}
  package:
    needs: build
    runs-on: ubuntu-latest
    outputs:
      artifact: ${{ steps.p.outputs.artifact }}
    steps:
      - id: p
        run: echo "artifact=${{ inputs.target }}.tar" >> "$GITHUB_OUTPUT"
"#;

const CALLS_BUILD: &str = r#"on: push
jobs:
  call:
    uses: ./.github/workflows/build.yml
    with:
      target: prod
    secrets:
      token: ${{ secrets.DEPLOY_TOKEN }}
  ship:
    needs: call
    runs-on: ubuntu-latest
    steps:
      - run: echo ${{ needs.call.outputs.artifact }}
"#;

/// A hosted runner of `app` that claims one job, or `None` when nothing is queued.
pub(crate) async fn claim_one(
    app: &Arc<App>,
    runner: gantry_store::RunnerId,
) -> Option<gantry_proto::v1::JobAssignment> {
    let claim = gantry_proto::v1::ClaimJob { wait_ms: 200 };
    app.claim(runner, claim).await.unwrap()
}

pub(crate) async fn hosted_runner(app: &App) -> gantry_store::RunnerId {
    app.allow_hosted_token("hosted").await.unwrap();
    let registered = app
        .register_runner(gantry_proto::v1::RegisterRunner {
            token: "hosted".into(),
            name: "runner".into(),
            labels: vec!["ubuntu-latest".into()],
            capacity: 1,
            ephemeral: false,
            protocol_version: gantry_proto::v1::RUNNER_PROTOCOL_VERSION,
        })
        .await
        .unwrap();
    app.authenticate_runner(&registered.credential)
        .await
        .unwrap()
}

pub(crate) async fn succeed(
    app: &App,
    runner: gantry_store::RunnerId,
    job: &gantry_proto::v1::JobAssignment,
    outputs: &[(&str, &str)],
) {
    let request = gantry_proto::v1::CompleteAttempt {
        fencing_token: job.fencing_token,
        conclusion: Conclusion::Success,
        outputs: outputs
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect(),
        message: None,
    };
    app.complete_attempt(runner, gantry_store::JobId(job.job_id), request)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_pushed_workflow_calls_a_local_reusable_workflow_across_a_restart() {
    let fx = Fixture::new().await;
    let first = fx.commit(&[("README.md", "hi\n")], "initial");
    let head = fx.commit(
        &[
            (".github/workflows/build.yml", REUSABLE_BUILD),
            (".github/workflows/ci.yml", CALLS_BUILD),
        ],
        "workflows",
    );
    let outcome = fx.push(&first, &head, "refs/heads/main").await;
    assert_eq!(
        started(&outcome),
        [".github/workflows/ci.yml"],
        "{outcome:#?}"
    );
    let runner = hosted_runner(&fx.app).await;

    let build = claim_one(&fx.app, runner)
        .await
        .expect("call / build is queued");
    assert_eq!(build.payload.job_key, "build");
    assert_eq!(build.payload.name, "call / build");
    assert_eq!(build.payload.contexts.inputs, json!({"target": "prod"}));
    // Only the secret the caller passed, under the called workflow's name (no secret store
    // yet, so its value is empty).
    assert_eq!(
        build.payload.contexts.secrets.keys().collect::<Vec<_>>(),
        ["token"]
    );
    assert_eq!(build.payload.contexts.github["sha"], json!(head));
    succeed(&fx.app, runner, &build, &[]).await;

    // A restart: the called workflow's next job is built from the file kept with the run.
    let app = Arc::new(App::new(Arc::clone(&fx.store), Default::default()));
    app.recover().await.unwrap();
    let runner = hosted_runner(&app).await;
    let package = claim_one(&app, runner)
        .await
        .expect("call / package is queued");
    assert_eq!(package.payload.job_key, "package");
    assert_eq!(package.payload.name, "call / package");
    assert_eq!(package.payload.contexts.inputs, json!({"target": "prod"}));
    assert!(
        package.payload.steps[0]
            .run
            .as_deref()
            .unwrap()
            .contains("inputs.target")
    );
    succeed(&app, runner, &package, &[("artifact", "prod.tar")]).await;

    let ship = claim_one(&app, runner).await.expect("ship is queued");
    assert_eq!(ship.payload.job_key, "ship");
    assert_eq!(
        ship.payload.contexts.needs["call"],
        json!({"result": "success", "outputs": {"artifact": "prod.tar"}})
    );
    succeed(&app, runner, &ship, &[]).await;
    let run = app.get_run(ship.run_id).await.unwrap();
    assert_eq!(run.run.conclusion, Some(Conclusion::Success), "{run:#?}");
    let jobs: Vec<_> = run.jobs.iter().map(|job| job.name.as_str()).collect();
    assert_eq!(jobs, ["call", "ship", "call / build", "call / package"]);
}
