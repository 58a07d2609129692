//! Matrix expansion against the Gitea act jobparser corpus.
//!
//! Each `pkg/jobparser/testdata/<name>.in.yaml` is a workflow; `<name>.out.yaml` holds one
//! single-job workflow per expanded job, its `strategy.matrix` narrowed to one value per key.
//! Gitea orders the jobs its own way, so the combinations are compared as sets. When the input
//! job has no `name`, Gitea's rendered name (`job1 (ubuntu-20.04, 1.17)`) is compared too: it
//! follows GitHub's format.
//!
//! A second test expands every matrix of the popular-workflows corpus (real workflows GitHub
//! accepts): each must expand or be deferred for its expressions, never fail.
//!
//! The corpora live outside the repository; without it the test prints a loud skip message,
//! unless `CI=true`, where a missing corpus is a failure.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use gantry_workflow::matrix::{
    Combination, GITHUB_MAX_CONFIGURATIONS, expand_configurations, spec_from_json,
};
use serde_json::Value;

const TESTDATA: &str = "gitea-act-jobparser/pkg/jobparser/testdata";

#[test]
fn matrix_expansion_agrees_with_gitea_jobparser_corpus() {
    let Some(testdata) = corpus_dir(TESTDATA) else {
        return;
    };
    let inputs: Vec<PathBuf> = list_dir(&testdata)
        .into_iter()
        .filter(|path| path.to_string_lossy().ends_with(".in.yaml"))
        .collect();

    let (mut files, mut agreeing) = (0, 0);
    let mut disagreements = Vec::new();
    for input in &inputs {
        let workflow = read_yaml(input).remove(0);
        let jobs = matrix_jobs(&workflow);
        if jobs.is_empty() {
            continue;
        }
        files += 1;
        let output = PathBuf::from(input.to_string_lossy().replace(".in.yaml", ".out.yaml"));
        let expected = expected_jobs(&read_yaml(&output));
        match compare(&jobs, &expected) {
            Ok(()) => agreeing += 1,
            Err(why) => disagreements.push(format!("{}: {why}", input.display())),
        }
    }
    println!("matrix corpus: {agreeing}/{files} files agree");
    assert!(
        files > 0,
        "no workflow with a matrix in {}",
        testdata.display()
    );
    assert!(disagreements.is_empty(), "{}", disagreements.join("\n"));
}

#[test]
fn every_popular_workflow_matrix_expands_or_defers() {
    let Some(root) = corpus_dir("workflows-popular") else {
        return;
    };
    let mut files = Vec::new();
    collect_workflow_files(&root, &mut files);
    let (mut expanded, mut deferred) = (0, 0);
    let mut failures = Vec::new();
    for file in &files {
        for workflow in read_yaml(file) {
            for job in matrix_jobs(&workflow) {
                let result = spec_from_json(job.matrix)
                    .and_then(|spec| expand_configurations(&spec, GITHUB_MAX_CONFIGURATIONS));
                match result {
                    Ok(_) => expanded += 1,
                    Err(error) if error.is_deferred() => deferred += 1,
                    Err(error) => {
                        failures.push(format!("{} job {}: {error}", file.display(), job.id))
                    }
                }
            }
        }
    }
    println!(
        "matrix survey: {expanded} expanded, {deferred} deferred, {} failed",
        failures.len()
    );
    assert!(expanded > 0, "no matrix found under {}", root.display());
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn collect_workflow_files(dir: &Path, files: &mut Vec<PathBuf>) {
    for path in list_dir(dir) {
        if path.is_dir() {
            collect_workflow_files(&path, files);
        } else if path.extension().is_some_and(|e| e == "yml" || e == "yaml") {
            files.push(path);
        }
    }
}

/// `<repo>/../shared/corpora/<relative>`, or `None` after a loud skip message when missing.
// Helpers of an integration test are not `#[test]` functions, so clippy's allow-print-in-tests
// does not cover them; a skipped conformance suite must still be visible in the test output.
#[allow(clippy::print_stderr)]
fn corpus_dir(relative: &str) -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/corpora")
        .join(relative);
    if dir.is_dir() {
        return Some(dir);
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "corpus missing at {} (required when CI=true)",
        dir.display()
    );
    eprintln!("SKIPPED: corpus missing at {}", dir.display());
    None
}

/// The entries of `dir`, sorted so that runs report in a stable order.
fn list_dir(dir: &Path) -> Vec<PathBuf> {
    let entries = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("failed to read `{}`: {e}", dir.display()));
    let mut paths: Vec<PathBuf> = entries
        .map(|entry| {
            entry
                .unwrap_or_else(|e| panic!("failed to read `{}`: {e}", dir.display()))
                .path()
        })
        .collect();
    paths.sort();
    paths
}

fn read_yaml(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("failed to read `{}`: {e}", path.display()));
    // Strict booleans keep the `on` key a string, as GitHub's YAML 1.2 reader does.
    let options = serde_saphyr::options! { strict_booleans: true };
    serde_saphyr::from_multiple_with_options(&text, options)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A job with a matrix: its id, its `name` if any, and its `strategy.matrix`.
struct MatrixJob<'a> {
    id: &'a str,
    has_name: bool,
    matrix: &'a Value,
}

fn matrix_jobs(workflow: &Value) -> Vec<MatrixJob<'_>> {
    let Some(Value::Object(jobs)) = workflow.get("jobs") else {
        return Vec::new();
    };
    jobs.iter()
        .filter_map(|(id, job)| {
            Some(MatrixJob {
                id,
                has_name: job.get("name").is_some(),
                matrix: job.get("strategy")?.get("matrix")?,
            })
        })
        .collect()
}

/// What Gitea produced, per job id: each job's combination and rendered name.
type Expected = BTreeMap<String, Vec<(Combination, String)>>;

fn expected_jobs(documents: &[Value]) -> Expected {
    let mut expected = Expected::new();
    for document in documents {
        let Some(Value::Object(jobs)) = document.get("jobs") else {
            continue;
        };
        for (id, job) in jobs {
            let Some(Value::Object(matrix)) = job.pointer("/strategy/matrix") else {
                continue;
            };
            // Gitea writes each key as a one-item list.
            let combination = matrix
                .iter()
                .map(|(key, values)| (key.clone(), values.get(0).cloned().unwrap_or(Value::Null)))
                .collect();
            let name = job.get("name").and_then(Value::as_str).unwrap_or_default();
            expected
                .entry(id.clone())
                .or_default()
                .push((combination, name.to_owned()));
        }
    }
    expected
}

fn compare(jobs: &[MatrixJob<'_>], expected: &Expected) -> Result<(), String> {
    for job in jobs {
        let spec = spec_from_json(job.matrix).map_err(|e| format!("job {}: {e}", job.id))?;
        let configurations = expand_configurations(&spec, GITHUB_MAX_CONFIGURATIONS)
            .map_err(|e| format!("job {}: {e}", job.id))?;
        let mut remaining = expected.get(job.id).cloned().unwrap_or_default();
        for configuration in &configurations {
            let position = remaining
                .iter()
                .position(|(combination, _)| *combination == configuration.matrix)
                .ok_or_else(|| {
                    format!(
                        "job {}: unexpected combination {:?}",
                        job.id, configuration.matrix
                    )
                })?;
            let (_, name) = remaining.swap_remove(position);
            let ours = configuration.display_name(job.id);
            if !job.has_name && name != ours {
                return Err(format!("job {}: named {ours:?}, Gitea {name:?}", job.id));
            }
        }
        if let Some((missing, _)) = remaining.first() {
            return Err(format!("job {}: missing combination {missing:?}", job.id));
        }
    }
    Ok(())
}
