//! GitHub's own workflow-parser reader tests (`workflow-parser/testdata/reader/*.yml`):
//! gantry must agree on whether each file is valid and, for valid ones, on the job graph
//! (job ids in order and their `needs`).
//!
//! Each test file is several YAML documents: options, the workflow, optional pairs of a
//! reusable-workflow reference and its contents, and the expected JSON last.

use std::collections::HashMap;

use gantry_workflow::reusable::{CallOptions, PermissionPolicy, WorkflowSource, check_calls};
use gantry_workflow::{Diagnostics, Limits, Workflow};
use serde_json::Value;

use crate::corpus::{corpus_dir, files_with_extensions};

/// The pieces of one reader test file.
struct ReaderCase {
    options: Value,
    workflow: String,
    /// Reusable workflows the test provides, by reference.
    called: Vec<(String, String)>,
    expected: Value,
}

/// Called workflows of one test, loaded.
struct Library(HashMap<String, Workflow>);

impl WorkflowSource for Library {
    fn workflow(&self, reference: &str) -> Option<&Workflow> {
        self.0.get(reference)
    }
}

fn split_documents(text: &str) -> Vec<String> {
    let mut documents = vec![String::new()];
    for line in text.lines() {
        if line.trim_end() == "---" {
            documents.push(String::new());
        } else if let Some(current) = documents.last_mut() {
            current.push_str(line);
            current.push('\n');
        }
    }
    documents
}

fn read_case(text: &str) -> ReaderCase {
    let documents = split_documents(text);
    let options: Value = serde_saphyr::from_str(&documents[0]).unwrap_or(Value::Null);
    let expected: Value = serde_json::from_str(documents.last().unwrap()).unwrap();
    let called = documents[2..documents.len() - 1]
        .chunks(2)
        .filter(|pair| pair.len() == 2)
        .map(|pair| (pair[0].trim().to_string(), pair[1].clone()))
        .collect();
    ReaderCase {
        options,
        workflow: documents[1].clone(),
        called,
        expected,
    }
}

/// A string in GitHub's expected output, plain or (with source info) as `{"lit": ...}`.
fn literal(value: &Value) -> String {
    value
        .as_str()
        .or_else(|| value["lit"].as_str())
        .unwrap_or_default()
        .to_string()
}

/// Job ids and their needs, from GitHub's expected output.
fn expected_graph(expected: &Value) -> Vec<(String, Vec<String>)> {
    expected["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|job| {
            let needs = job["needs"]
                .as_array()
                .map(|needs| needs.iter().map(literal).collect())
                .unwrap_or_default();
            (literal(&job["id"]), needs)
        })
        .collect()
}

/// Loads the workflow and checks its reusable-workflow calls against the provided files.
fn load_with_calls(case: &ReaderCase, limits: &Limits) -> Result<Workflow, Diagnostics> {
    let workflow = gantry_workflow::load(&case.workflow, limits)?;
    let mut library = HashMap::new();
    for (reference, source) in &case.called {
        library.insert(reference.clone(), gantry_workflow::load(source, limits)?);
    }
    let mut options = CallOptions::default();
    if case.options["permissions-policy"].as_str() == Some("Write") {
        options.policy = PermissionPolicy::Write;
    }
    if let Some(depth) = case.options["max-nested-reusable-workflows-depth"].as_u64() {
        options.max_depth = depth as usize;
    }
    let diagnostics = check_calls(&workflow, &Library(library), &options);
    if diagnostics.is_empty() {
        Ok(workflow)
    } else {
        Err(diagnostics)
    }
}

#[test]
fn github_reader_tests_agree() {
    let Some(dir) = corpus_dir("actions-languageservices/workflow-parser/testdata/reader") else {
        return;
    };
    let mut total = 0;
    let mut disagreements = Vec::new();
    for path in files_with_extensions(&dir, &[".yml"]) {
        total += 1;
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let case = read_case(&std::fs::read_to_string(&path).unwrap());
        let mut limits = Limits::default();
        if let Some(size) = case.options["max-file-size"].as_u64() {
            limits.max_file_bytes = size as usize;
        }
        let result = load_with_calls(&case, &limits);
        let expect_error = case.expected.get("errors").is_some();
        match (result, expect_error) {
            (Ok(_), true) => disagreements.push(format!(
                "{name}: accepted, GitHub rejects: {}",
                case.expected["errors"][0]["Message"]
            )),
            (Err(diagnostics), false) => {
                disagreements.push(format!("{name}: rejected, GitHub accepts:\n{diagnostics}"))
            }
            (Ok(workflow), false) => {
                let ours: Vec<(String, Vec<String>)> = workflow
                    .jobs
                    .iter()
                    .map(|job| {
                        (
                            job.id.value.clone(),
                            job.needs.iter().map(|n| n.value.clone()).collect(),
                        )
                    })
                    .collect();
                let theirs = expected_graph(&case.expected);
                if ours != theirs {
                    disagreements.push(format!(
                        "{name}: job graph differs: ours {ours:?}, GitHub's {theirs:?}"
                    ));
                }
            }
            (Err(_), true) => {}
        }
    }
    let agreeing = total - disagreements.len();
    println!("workflow-parser reader tests: {agreeing}/{total} agree");
    for disagreement in &disagreements {
        println!("  {disagreement}");
    }
    if total > 0 {
        // The bar is 95 %; this floor only rises as gantry improves.
        assert!(
            agreeing * 100 >= total * 95 && agreeing >= 186,
            "only {agreeing}/{total} reader tests agree"
        );
    }
}
