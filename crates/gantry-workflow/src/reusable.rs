//! Checking jobs that call reusable workflows (`jobs.<id>.uses`) against the called workflow:
//! inputs and secrets must be declared, required ones provided, input types must fit, nesting
//! is bounded, and a called workflow can never get more `GITHUB_TOKEN` permissions than its
//! caller was given.
//!
//! Resolving a reference to a file is the caller's job (it needs git); this module receives
//! already-loaded workflows through [`WorkflowSource`] and stays pure.

use std::collections::BTreeMap;

use crate::diag::{Diagnostic, Diagnostics};
use crate::model::{
    InputType, Job, JobSecrets, PERMISSION_SCOPES as SCOPES, Permissions, TriggerConfig, Workflow,
};
use crate::yaml::NodeValue;

/// Looks up called workflows by their `uses:` reference.
pub trait WorkflowSource {
    /// The workflow a job's `uses:` names, or `None` when it is unknown here.
    fn workflow(&self, reference: &str) -> Option<&Workflow>;
}

/// The repository's default `GITHUB_TOKEN` permissions, used when a workflow sets none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PermissionPolicy {
    /// GitHub's restricted default: `contents: read` and `packages: read`.
    #[default]
    LimitedRead,
    /// GitHub's permissive default: write to every scope.
    Write,
}

/// Options for [`check_calls`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallOptions {
    /// Default token permissions.
    pub policy: PermissionPolicy,
    /// Deepest allowed chain of reusable workflows calling each other (GitHub: 10).
    pub max_depth: usize,
}

impl Default for CallOptions {
    fn default() -> Self {
        CallOptions {
            policy: PermissionPolicy::LimitedRead,
            max_depth: 10,
        }
    }
}

/// A permission level, ordered so that `a <= b` means "a asks for no more than b".
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Level {
    None,
    Read,
    Write,
}

impl Level {
    fn parse(text: &str) -> Level {
        match text {
            "write" => Level::Write,
            "read" => Level::Read,
            _ => Level::None,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Level::None => "none",
            Level::Read => "read",
            Level::Write => "write",
        }
    }
}

type Grants = BTreeMap<&'static str, Level>;

fn all(level: Level) -> Grants {
    SCOPES.iter().map(|scope| (*scope, level)).collect()
}

fn policy_grants(policy: PermissionPolicy) -> Grants {
    match policy {
        PermissionPolicy::Write => all(Level::Write),
        PermissionPolicy::LimitedRead => {
            let mut grants = all(Level::None);
            grants.insert("contents", Level::Read);
            grants.insert("packages", Level::Read);
            grants
        }
    }
}

fn expand(permissions: &Permissions) -> Grants {
    match permissions {
        Permissions::None => all(Level::None),
        Permissions::All(text) if text.value == "write-all" => all(Level::Write),
        Permissions::All(_) => all(Level::Read),
        Permissions::Scopes(scopes) => {
            let mut grants = all(Level::None);
            for (scope, level) in scopes {
                if let Some(known) = SCOPES.iter().find(|s| **s == scope.value) {
                    grants.insert(known, Level::parse(&level.value));
                }
            }
            grants
        }
    }
}

/// Checks every reusable-workflow call in `workflow`, following nested calls.
pub fn check_calls(
    workflow: &Workflow,
    source: &dyn WorkflowSource,
    options: &CallOptions,
) -> Diagnostics {
    let mut checker = Checker {
        source,
        options,
        diagnostics: Diagnostics::default(),
    };
    checker.check_workflow(workflow, None, 0, None);
    checker.diagnostics.finish()
}

struct Checker<'a> {
    source: &'a dyn WorkflowSource,
    options: &'a CallOptions,
    diagnostics: Diagnostics,
}

/// Where a nested problem is reported: the top-level calling job, naming the nested file.
#[derive(Clone, Copy)]
struct ReportAt<'a> {
    job: &'a Job,
    file: &'a str,
}

impl Checker<'_> {
    /// `granted` is what the caller gave this workflow (`None` at the top level, where the
    /// repository's policy applies); `report_at` is set once we are inside a called file.
    fn check_workflow(
        &mut self,
        workflow: &Workflow,
        granted: Option<&Grants>,
        depth: usize,
        report_at: Option<ReportAt<'_>>,
    ) {
        for job in &workflow.jobs {
            let Some(reference) = &job.uses else { continue };
            let job_grants = job
                .permissions
                .as_ref()
                .or(workflow.permissions.as_ref())
                .map(expand)
                .or_else(|| granted.cloned())
                .unwrap_or_else(|| policy_grants(self.options.policy));
            let Some(callee) = self.source.workflow(&reference.value) else {
                continue;
            };
            let at = report_at.unwrap_or(ReportAt { job, file: "" });
            if depth + 1 > self.options.max_depth {
                self.report(
                    at,
                    job,
                    format!(
                        "nested reusable workflow depth exceeded {}",
                        self.options.max_depth
                    ),
                );
                continue;
            }
            self.check_interface(job, callee, at);
            for nested in &callee.jobs {
                let requested = nested.permissions.as_ref().or(callee.permissions.as_ref());
                if let Some(requested) = requested {
                    self.check_permissions(
                        at,
                        job,
                        &reference.value,
                        nested,
                        &expand(requested),
                        &job_grants,
                    );
                }
            }
            let next = ReportAt {
                job: at.job,
                file: &reference.value,
            };
            self.check_workflow(callee, Some(&job_grants), depth + 1, Some(next));
        }
    }

    fn check_permissions(
        &mut self,
        at: ReportAt<'_>,
        job: &Job,
        reference: &str,
        nested: &Job,
        requested: &Grants,
        granted: &Grants,
    ) {
        for (scope, level) in requested {
            let allowed = granted.get(scope).copied().unwrap_or(Level::None);
            if *level > allowed {
                self.report(
                    at,
                    job,
                    format!(
                        "error calling workflow '{reference}': the nested job '{}' is requesting '{scope}: {}', but is only allowed '{scope}: {}'",
                        nested.display_name(),
                        level.as_str(),
                        allowed.as_str()
                    ),
                );
            }
        }
    }

    /// Inputs and secrets of the call against the called workflow's `on.workflow_call`.
    fn check_interface(&mut self, job: &Job, callee: &Workflow, at: ReportAt<'_>) {
        let Some((inputs, secrets)) = callee.on.iter().find_map(|t| match &t.config {
            TriggerConfig::WorkflowCall {
                inputs, secrets, ..
            } => Some((inputs, secrets)),
            _ => None,
        }) else {
            self.report(
                at,
                job,
                "the called workflow is not reusable: it has no `on.workflow_call`".to_string(),
            );
            return;
        };
        for (key, value) in &job.with {
            let Some(input) = inputs.iter().find(|i| i.id.value == key.value) else {
                self.report_at_pos(
                    at,
                    key.pos,
                    format!(
                        "invalid input, {} is not defined in the referenced workflow",
                        key.value
                    ),
                );
                continue;
            };
            let fits = match (&value.value, input.kind) {
                (NodeValue::String(text), _) if text.contains("${{") => true,
                // An empty value is passed as the type's empty value, as GitHub does.
                (NodeValue::Null, _) => true,
                (NodeValue::Bool(_), InputType::Boolean) => true,
                (NodeValue::Number(_), InputType::Number) => true,
                (
                    NodeValue::String(_) | NodeValue::Number(_) | NodeValue::Bool(_),
                    InputType::String,
                ) => true,
                _ => false,
            };
            if !fits {
                self.report_at_pos(
                    at,
                    value.pos,
                    format!(
                        "input {} must be a {}, found {}",
                        key.value,
                        input.kind.as_str(),
                        value.type_name()
                    ),
                );
            }
        }
        for input in inputs {
            let provided = job.with.iter().any(|(key, _)| key.value == input.id.value);
            if input.required && input.default.is_none() && !provided {
                self.report(
                    at,
                    job,
                    format!(
                        "input {} is required, but not provided while calling",
                        input.id.value
                    ),
                );
            }
        }
        let passed = match &job.secrets {
            Some(JobSecrets::Inherit) => return,
            Some(JobSecrets::Map(passed)) => passed.as_slice(),
            None => &[],
        };
        for (key, _) in passed {
            if !secrets.iter().any(|s| s.id.value == key.value) {
                self.report_at_pos(
                    at,
                    key.pos,
                    format!(
                        "invalid secret, {} is not defined in the referenced workflow",
                        key.value
                    ),
                );
            }
        }
        for secret in secrets.iter().filter(|s| s.required) {
            if !passed.iter().any(|(key, _)| key.value == secret.id.value) {
                self.report(
                    at,
                    job,
                    format!(
                        "secret {} is required, but not provided while calling",
                        secret.id.value
                    ),
                );
            }
        }
    }

    fn report(&mut self, at: ReportAt<'_>, job: &Job, message: String) {
        self.report_at_pos(at, job.id.pos, message);
    }

    /// Problems inside a called file are reported at the top-level calling job, naming the
    /// file and the position there, so every diagnostic's `line:col` is in the checked file.
    fn report_at_pos(&mut self, at: ReportAt<'_>, pos: crate::yaml::Pos, message: String) {
        if at.file.is_empty() {
            self.diagnostics.0.push(Diagnostic::new(pos, message));
        } else {
            self.diagnostics.0.push(Diagnostic::new(
                at.job.id.pos,
                format!("in {} at {pos}: {message}", at.file),
            ));
        }
    }
}
