//! Environment assembly: what a step's process sees, layer by layer.
//!
//! Precedence, lowest first: the runner's defaults (`CI`, `GITHUB_*`, `RUNNER_*`, `HOME`,
//! `PATH`), workflow `env`, job `env`, variables earlier steps wrote to `GITHUB_ENV`, the
//! step's own `env` (for a composite action's inner step: the composite step's `env` and its
//! `INPUT_*` values, then the inner step's `env`). Directories written to `GITHUB_PATH` go in
//! front of whatever `PATH` the layers give.

use std::collections::BTreeMap;

use gantry_expr::Value;
use indexmap::IndexMap;

use crate::sandbox::JobPaths;

/// The `github` context keys the runner exports as `GITHUB_<KEY>` when they are scalars.
const GITHUB_EXPORTED: &[&str] = &[
    "action",
    "action_path",
    "action_ref",
    "action_repository",
    "actor",
    "actor_id",
    "api_url",
    "base_ref",
    "event_name",
    "event_path",
    "graphql_url",
    "head_ref",
    "job",
    "ref",
    "ref_name",
    "ref_protected",
    "ref_type",
    "repository",
    "repository_id",
    "repository_owner",
    "repository_owner_id",
    "retention_days",
    "run_attempt",
    "run_id",
    "run_number",
    "server_url",
    "sha",
    "triggering_actor",
    "workflow",
    "workflow_ref",
    "workflow_sha",
    "workspace",
];

/// What the runner itself contributes to every step's environment.
#[derive(Debug, Clone)]
pub struct RunnerEnv<'a> {
    /// `RUNNER_NAME`.
    pub name: &'a str,
    /// `RUNNER_OS`, e.g. `Linux`.
    pub os: &'a str,
    /// `RUNNER_ARCH`, e.g. `X64`.
    pub arch: &'a str,
    /// The base `PATH`.
    pub path: &'a str,
    /// `HOME` (an inside path).
    pub home: &'a str,
    /// Whether step debug logging is on (`RUNNER_DEBUG=1`).
    pub debug: bool,
}

/// The default environment: `CI`, `GITHUB_ACTIONS`, `GITHUB_*` from the `github` context,
/// `GITHUB_WORKSPACE`, `RUNNER_*`, `HOME` and `PATH`.
pub fn default_env(
    github: &Value,
    paths: &JobPaths,
    runner: &RunnerEnv<'_>,
) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    env.insert("CI".to_owned(), "true".to_owned());
    env.insert("GITHUB_ACTIONS".to_owned(), "true".to_owned());
    for key in GITHUB_EXPORTED {
        let value = match github.get(key) {
            Some(value @ (Value::String(_) | Value::Number(_) | Value::Boolean(_))) => {
                value.to_coerced_string()
            }
            _ => continue,
        };
        env.insert(format!("GITHUB_{}", key.to_ascii_uppercase()), value);
    }
    let inside = |dir: &crate::sandbox::SharedDir| dir.inside.to_string_lossy().into_owned();
    env.insert("GITHUB_WORKSPACE".to_owned(), inside(&paths.workspace));
    env.insert("RUNNER_NAME".to_owned(), runner.name.to_owned());
    env.insert("RUNNER_OS".to_owned(), runner.os.to_owned());
    env.insert("RUNNER_ARCH".to_owned(), runner.arch.to_owned());
    env.insert("RUNNER_TEMP".to_owned(), inside(&paths.temp));
    env.insert("RUNNER_TOOL_CACHE".to_owned(), inside(&paths.tool_cache));
    env.insert("RUNNER_WORKSPACE".to_owned(), {
        let workspace = &paths.workspace.inside;
        workspace
            .parent()
            .unwrap_or(workspace)
            .to_string_lossy()
            .into_owned()
    });
    if runner.debug {
        env.insert("RUNNER_DEBUG".to_owned(), "1".to_owned());
    }
    env.insert("HOME".to_owned(), runner.home.to_owned());
    env.insert("PATH".to_owned(), runner.path.to_owned());
    env
}

/// A step's whole environment: `defaults` overlaid by each of `layers` in order (later wins),
/// then `path_prepends` (in the order they were added) in front of `PATH`.
pub fn step_env(
    defaults: &BTreeMap<String, String>,
    layers: &[&IndexMap<String, String>],
    path_prepends: &[String],
) -> BTreeMap<String, String> {
    let mut env = defaults.clone();
    for layer in layers {
        for (name, value) in layer.iter() {
            env.insert(name.clone(), value.clone());
        }
    }
    if !path_prepends.is_empty() {
        let mut path: Vec<&str> = path_prepends.iter().rev().map(String::as_str).collect();
        let base = env.get("PATH").cloned().unwrap_or_default();
        if !base.is_empty() {
            path.push(&base);
        }
        let joined = path.join(":");
        env.insert("PATH".to_owned(), joined);
    }
    env
}

/// `INPUT_<NAME>` as GitHub spells an action input's variable: upper case, spaces as `_`.
pub fn input_variable(name: &str) -> String {
    format!("INPUT_{}", name.replace(' ', "_").to_ascii_uppercase())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::SharedDir;
    use std::path::PathBuf;

    fn map(pairs: &[(&str, &str)]) -> IndexMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn paths() -> JobPaths {
        let dir = |name: &str| SharedDir {
            host: PathBuf::from("/host").join(name),
            inside: PathBuf::from("/job").join(name),
        };
        JobPaths {
            workspace: dir("workspace"),
            temp: dir("temp"),
            tool_cache: dir("tool-cache"),
            runner_files: dir("runner-files"),
        }
    }

    #[test]
    fn later_layers_win_workflow_job_github_env_step() {
        let github = Value::from_json(&serde_json::json!({"sha": "abc", "run_id": 7, "event": {}}));
        let runner = RunnerEnv {
            name: "r1",
            os: "Linux",
            arch: "X64",
            path: "/usr/bin:/bin",
            home: "/job/home",
            debug: false,
        };
        let defaults = default_env(&github, &paths(), &runner);
        assert_eq!(defaults["GITHUB_SHA"], "abc");
        assert_eq!(defaults["GITHUB_RUN_ID"], "7");
        assert!(!defaults.contains_key("GITHUB_EVENT"));
        assert_eq!(defaults["GITHUB_WORKSPACE"], "/job/workspace");
        assert_eq!(defaults["RUNNER_TEMP"], "/job/temp");
        assert_eq!(defaults["CI"], "true");

        let workflow = map(&[
            ("A", "workflow"),
            ("B", "workflow"),
            ("C", "workflow"),
            ("D", "workflow"),
        ]);
        let job = map(&[("B", "job"), ("C", "job"), ("D", "job")]);
        let github_env = map(&[("C", "github_env"), ("D", "github_env")]);
        let step = map(&[("D", "step"), ("CI", "false")]);
        let env = step_env(&defaults, &[&workflow, &job, &github_env, &step], &[]);
        assert_eq!(
            (&*env["A"], &*env["B"], &*env["C"], &*env["D"], &*env["CI"]),
            ("workflow", "job", "github_env", "step", "false")
        );
    }

    #[test]
    fn path_additions_go_in_front_last_first() {
        let mut defaults = BTreeMap::new();
        defaults.insert("PATH".to_owned(), "/bin".to_owned());
        let env = step_env(&defaults, &[], &["/one".to_owned(), "/two".to_owned()]);
        assert_eq!(env["PATH"], "/two:/one:/bin");
        assert_eq!(input_variable("my input-x"), "INPUT_MY_INPUT-X");
    }
}
