//! Jobs that call reusable workflows: what a run keeps of a call (its `with:`, `secrets:`,
//! the called workflow's declared inputs and outputs, and which child jobs it expanded to), and
//! GitHub's rules for the values that cross the call: inputs typed against
//! `on.workflow_call.inputs` with their defaults, and outputs evaluated over the called jobs.
//!
//! The called workflow's jobs become jobs of the run (see `spec`), named `caller / child` as
//! GitHub shows them; this module only holds the call's own data and evaluation.

use gantry_expr::{Contexts, Value};
use gantry_workflow::contexts::Site;
use gantry_workflow::model::{InputType, Job, JobSecrets, TriggerConfig, Workflow};
use gantry_workflow::reusable::WorkflowSource;
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use crate::eval;

/// A job's call of a reusable workflow, as the run keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallSpec {
    /// `with:` as written: JSON values whose strings may hold `${{ }}`.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub with: IndexMap<String, serde_json::Value>,
    /// `on.workflow_call.inputs` of the called workflow.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inputs: Vec<CallInput>,
    /// `secrets:` of the caller.
    pub secrets: CallSecrets,
    /// `on.workflow_call.outputs.<name>.value` of the called workflow (templates over `jobs`).
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub outputs: IndexMap<String, String>,
    /// For each instance of the caller (one per matrix combination), its child jobs: indices
    /// into [`crate::RunSpec::jobs`] of the called workflow's jobs, in file order.
    pub children: Vec<Vec<usize>>,
}

/// One declared input of a called workflow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallInput {
    /// The input id.
    pub name: String,
    /// `string`, `boolean` or `number`.
    pub kind: CallInputKind,
    /// `required:`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub required: bool,
    /// `default:` as written (a string may hold `${{ }}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<serde_json::Value>,
}

/// The type of a `workflow_call` input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallInputKind {
    /// Text (numbers and booleans given to it become text).
    String,
    /// `true` or `false`.
    Boolean,
    /// A number.
    Number,
}

impl CallInputKind {
    fn from_model(kind: InputType) -> CallInputKind {
        match kind {
            InputType::Boolean => CallInputKind::Boolean,
            InputType::Number => CallInputKind::Number,
            // `choice` and `environment` exist only for dispatch; the loader rejects them here.
            InputType::String | InputType::Choice | InputType::Environment => CallInputKind::String,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            CallInputKind::String => "string",
            CallInputKind::Boolean => "boolean",
            CallInputKind::Number => "number",
        }
    }

    /// The value a missing, non-required input without a default has on GitHub.
    fn empty(self) -> Value {
        match self {
            CallInputKind::String => Value::from(""),
            CallInputKind::Boolean => Value::Boolean(false),
            CallInputKind::Number => Value::Number(0.0),
        }
    }
}

/// `secrets:` of a caller.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallSecrets {
    /// `secrets: inherit`: every secret the caller sees.
    Inherit,
    /// Explicit secrets: name in the called workflow to a template over the caller's contexts.
    Map(IndexMap<String, String>),
    /// No `secrets:`: the called workflow sees none.
    #[default]
    None,
}

impl CallSpec {
    /// What a run keeps of `job`'s call of `callee` (children are filled in by the compiler).
    pub(crate) fn new(job: &Job, callee: &Workflow) -> CallSpec {
        let (inputs, outputs) = callee
            .on
            .iter()
            .find_map(|trigger| match &trigger.config {
                TriggerConfig::WorkflowCall {
                    inputs, outputs, ..
                } => Some((inputs.as_slice(), outputs.as_slice())),
                _ => None,
            })
            .unwrap_or((&[], &[]));
        CallSpec {
            with: job
                .with
                .iter()
                .map(|(name, value)| (name.value.clone(), value.to_json()))
                .collect(),
            inputs: inputs
                .iter()
                .map(|input| CallInput {
                    name: input.id.value.clone(),
                    kind: CallInputKind::from_model(input.kind),
                    required: input.required,
                    default: input.default.as_ref().map(|node| node.to_json()),
                })
                .collect(),
            secrets: match &job.secrets {
                Some(JobSecrets::Inherit) => CallSecrets::Inherit,
                Some(JobSecrets::Map(map)) => CallSecrets::Map(
                    map.iter()
                        .map(|(name, value)| (name.value.clone(), value.value.clone()))
                        .collect(),
                ),
                None => CallSecrets::None,
            },
            outputs: outputs
                .iter()
                .map(|output| (output.id.value.clone(), output.value.value.clone()))
                .collect(),
            children: Vec::new(),
        }
    }

    /// The called workflow's `inputs` context: `with:` evaluated with the caller's contexts
    /// (`github`, `inputs`, `vars`, `needs`, `strategy`, `matrix`), typed against the declared
    /// inputs, defaults filled in. An undeclared, missing required or mistyped input is an
    /// error naming it.
    pub(crate) fn evaluate_inputs(&self, contexts: &Contexts) -> Result<Value, String> {
        let mut values = IndexMap::new();
        for name in self.with.keys() {
            if !self.inputs.iter().any(|input| &input.name == name) {
                return Err(format!(
                    "input `{name}` is not defined in the called workflow"
                ));
            }
        }
        for input in &self.inputs {
            let value = match (self.with.get(&input.name), &input.default) {
                (Some(given), _) => evaluate_json(given, Site::JobStrategyContext, contexts)
                    .map_err(|e| format!("error evaluating input `{}`: {e}", input.name))?,
                (None, Some(default)) => {
                    // Defaults see the called workflow's `github`, which is the caller's.
                    evaluate_json(default, Site::CallInputDefault, contexts).map_err(|e| {
                        format!(
                            "error evaluating the default of input `{}`: {e}",
                            input.name
                        )
                    })?
                }
                (None, None) if input.required => {
                    return Err(format!(
                        "input `{}` is required, but not provided while calling",
                        input.name
                    ));
                }
                (None, None) => Value::Null,
            };
            values.insert(input.name.clone(), typed(input, value)?);
        }
        Ok(Value::Object(values))
    }

    /// The caller's outputs: each `value` evaluated over the called workflow's `jobs` context
    /// (its jobs' `result` and `outputs`) and the called workflow's `inputs`.
    pub(crate) fn evaluate_outputs(
        &self,
        contexts: &Contexts,
    ) -> Result<IndexMap<String, String>, String> {
        let mut outputs = IndexMap::new();
        for (name, template) in &self.outputs {
            let value = eval::template(template, Site::CallOutput, contexts)
                .map_err(|e| format!("error evaluating output `{name}`: {e}"))?;
            outputs.insert(name.clone(), value.to_coerced_string());
        }
        Ok(outputs)
    }
}

/// The called workflows of a run that calls none.
pub(crate) struct NoCalledWorkflows;

impl WorkflowSource for NoCalledWorkflows {
    fn workflow(&self, _reference: &str) -> Option<&Workflow> {
        None
    }
}

/// A `with:` or `default:` value: strings are templates, other JSON values are literals.
fn evaluate_json(
    value: &serde_json::Value,
    site: Site,
    contexts: &Contexts,
) -> Result<Value, String> {
    match value {
        serde_json::Value::String(text) if text.contains("${{") => {
            eval::template(text, site, contexts)
        }
        other => Ok(Value::from_json(other)),
    }
}

/// Checks a value against the input's type, as GitHub does when a call starts: strings take
/// any scalar as text, booleans and numbers only their own type; null is the type's empty value.
fn typed(input: &CallInput, value: Value) -> Result<Value, String> {
    let mismatch = |value: &Value| {
        format!(
            "input `{}` must be a {}, got {}",
            input.name,
            input.kind.as_str(),
            value.kind().to_ascii_lowercase()
        )
    };
    match (input.kind, value) {
        (kind, Value::Null) => Ok(kind.empty()),
        (CallInputKind::String, Value::Array(_) | Value::Object(_)) => {
            Err(mismatch(&Value::Array(Vec::new())))
        }
        (CallInputKind::String, value) => Ok(Value::from(value.to_coerced_string().as_str())),
        (CallInputKind::Boolean, value @ Value::Boolean(_)) => Ok(value),
        (CallInputKind::Number, value @ Value::Number(_)) => Ok(value),
        (_, value) => Err(mismatch(&value)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn call(
        with: serde_json::Value,
        inputs: &[(&str, CallInputKind, bool, Option<serde_json::Value>)],
    ) -> CallSpec {
        CallSpec {
            with: serde_json::from_value(with).unwrap(),
            inputs: inputs
                .iter()
                .map(|(name, kind, required, default)| CallInput {
                    name: name.to_string(),
                    kind: *kind,
                    required: *required,
                    default: default.clone(),
                })
                .collect(),
            secrets: CallSecrets::None,
            outputs: IndexMap::new(),
            children: Vec::new(),
        }
    }

    fn contexts() -> Contexts {
        let mut contexts = Contexts::new();
        contexts.insert(
            "github".to_owned(),
            Value::from(json!({"ref": "refs/heads/main"})),
        );
        contexts.insert("matrix".to_owned(), Value::from(json!({"n": 3})));
        contexts
    }

    #[test]
    fn inputs_are_typed_and_defaulted() {
        use CallInputKind::*;
        let spec = call(
            json!({"name": "${{ github.ref }}", "count": "${{ matrix.n }}", "text": 5}),
            &[
                ("name", String, true, None),
                ("count", Number, false, None),
                ("text", String, false, None),
                ("flag", Boolean, false, Some(json!(true))),
                ("level", Number, false, None),
                ("label", String, false, Some(json!("${{ github.ref }}-x"))),
            ],
        );
        let inputs = spec.evaluate_inputs(&contexts()).unwrap().to_json();
        assert_eq!(
            inputs,
            json!({"name": "refs/heads/main", "count": 3, "text": "5", "flag": true, "level": 0, "label": "refs/heads/main-x"})
        );
    }

    #[test]
    fn bad_inputs_name_the_input() {
        use CallInputKind::*;
        let missing = call(json!({}), &[("name", String, true, None)]);
        let error = missing.evaluate_inputs(&contexts()).unwrap_err();
        assert_eq!(
            error,
            "input `name` is required, but not provided while calling"
        );

        let mistyped = call(
            json!({"flag": "${{ github.ref }}"}),
            &[("flag", Boolean, false, None)],
        );
        let error = mistyped.evaluate_inputs(&contexts()).unwrap_err();
        assert_eq!(error, "input `flag` must be a boolean, got string");

        let undeclared = call(json!({"other": 1}), &[]);
        let error = undeclared.evaluate_inputs(&contexts()).unwrap_err();
        assert_eq!(error, "input `other` is not defined in the called workflow");
    }
}
