//! The status functions' truth table from the GitHub runner's own unit tests.

use std::fs;

use gantry_expr::{Contexts, Host, JobStatus, ParseOptions, Value, parse_condition};
use serde_json::Value as Json;

use crate::corpus::corpus_dir;

struct StatusHost {
    job: JobStatus,
    composite: Option<JobStatus>,
}

impl Host for StatusHost {
    fn job_status(&self) -> JobStatus {
        self.job
    }

    fn hash_files(&self, _patterns: &[String]) -> Result<String, String> {
        Err("not available".to_owned())
    }

    fn success_failure_status(&self) -> Option<JobStatus> {
        self.composite
    }
}

#[test]
fn runner_status_function_cases() {
    let Some(dir) = corpus_dir("actions-runner") else {
        return;
    };
    let text = fs::read_to_string(dir.join("status-functions.cases.json")).unwrap();
    let corpus: Json = serde_json::from_str(&text).unwrap();
    let cases = corpus["cases"].as_array().unwrap();
    let mut failures = Vec::new();
    for case in cases {
        let status = |field: &str| case[field].as_str().map(|s| JobStatus::parse(s).unwrap());
        // A job that is still running (no status yet) counts as successful so far.
        let job = status("job_status").unwrap_or(JobStatus::Success);
        let composite = case["embedded_composite"]
            .as_bool()
            .unwrap()
            .then(|| status("action_status").unwrap_or(JobStatus::Success));
        let host = StatusHost { job, composite };
        let expr =
            parse_condition(case["expr"].as_str().unwrap(), &ParseOptions::default()).unwrap();
        let value = expr.evaluate(&Contexts::new(), &host).unwrap();
        let expected = Value::Boolean(case["expected"].as_bool().unwrap());
        if value != expected {
            failures.push(format!("{case}: got {value:?}"));
        }
    }
    let passed = cases.len() - failures.len();
    println!("runner status functions: {passed}/{} passed", cases.len());
    for failure in &failures {
        println!("  FAILED {failure}");
    }
    assert_eq!(cases.len(), 26);
    assert!(failures.is_empty());
}
