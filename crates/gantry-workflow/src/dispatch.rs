//! The inputs of a manual run (`workflow_dispatch`): what was given, checked against what the
//! workflow declares, with defaults filled in — the `inputs` context of the run.
//!
//! GitHub's rules: the workflow must have a `workflow_dispatch` trigger; an input it does not
//! declare is refused; a required input without a value or default is refused; `boolean`
//! takes `true`/`false` (as JSON booleans or those strings) and becomes a boolean; `number`
//! takes a number (or a string that parses as one) and becomes a number; `choice` must be one
//! of its `options`; `string` and `environment` take text (numbers and booleans are turned
//! into their text, as a form would send them). Every problem is reported at once.

use indexmap::IndexMap;
use serde_json::{Map, Value};

use crate::model::{Input, InputType, TriggerConfig, Workflow};
use crate::yaml::number_text;

/// The `inputs` of a manual run of `workflow` given `provided`, or every problem found.
pub fn dispatch_inputs(
    workflow: &Workflow,
    provided: &IndexMap<String, Value>,
) -> Result<Map<String, Value>, Vec<String>> {
    let declared = workflow
        .on
        .iter()
        .find_map(|trigger| match &trigger.config {
            TriggerConfig::WorkflowDispatch { inputs } => Some(inputs),
            _ => None,
        });
    let Some(declared) = declared else {
        return Err(vec![
            "the workflow has no `workflow_dispatch` trigger, so it cannot be run by hand"
                .to_owned(),
        ]);
    };
    let mut problems = Vec::new();
    for name in provided.keys() {
        if !declared.iter().any(|input| input.id.value == *name) {
            let known: Vec<&str> = declared
                .iter()
                .map(|input| input.id.value.as_str())
                .collect();
            problems.push(format!(
                "unexpected input `{name}`; the workflow declares: {}",
                if known.is_empty() {
                    "none".to_owned()
                } else {
                    known.join(", ")
                }
            ));
        }
    }
    let mut inputs = Map::new();
    for input in declared {
        let name = &input.id.value;
        let given = provided.get(name).filter(|value| !value.is_null()).cloned();
        let value = match given {
            Some(value) => value,
            None => match &input.default {
                Some(default) => default.to_json(),
                None if input.required => {
                    problems.push(format!("input `{name}` is required"));
                    continue;
                }
                // GitHub gives an unset optional input its type's empty value.
                None => match input.kind {
                    InputType::Boolean => Value::Bool(false),
                    _ => Value::String(String::new()),
                },
            },
        };
        match typed(input, value) {
            Ok(value) => {
                inputs.insert(name.clone(), value);
            }
            Err(problem) => problems.push(format!("input `{name}`: {problem}")),
        }
    }
    if problems.is_empty() {
        Ok(inputs)
    } else {
        Err(problems)
    }
}

/// `value` as the input's type says, or why it is not one.
fn typed(input: &Input, value: Value) -> Result<Value, String> {
    match input.kind {
        InputType::Boolean => match &value {
            Value::Bool(_) => Ok(value),
            Value::String(text) if text == "true" || text == "false" => {
                Ok(Value::Bool(text == "true"))
            }
            _ => Err(format!(
                "expected a boolean (`true` or `false`), got {value}"
            )),
        },
        InputType::Number => match &value {
            Value::Number(_) => Ok(value),
            Value::String(text) => text
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|number| number.is_finite())
                .and_then(serde_json::Number::from_f64)
                .map(Value::Number)
                .ok_or_else(|| format!("expected a number, got `{text}`")),
            _ => Err(format!("expected a number, got {value}")),
        },
        InputType::Choice => {
            let text = text_of(&value)?;
            if input.options.iter().any(|option| option.value == text) {
                Ok(Value::String(text))
            } else {
                let options: Vec<&str> = input
                    .options
                    .iter()
                    .map(|option| option.value.as_str())
                    .collect();
                Err(format!(
                    "`{text}` is not one of the options: {}",
                    options.join(", ")
                ))
            }
        }
        InputType::String | InputType::Environment => text_of(&value).map(Value::String),
    }
}

fn text_of(value: &Value) -> Result<String, String> {
    match value {
        Value::String(text) => Ok(text.clone()),
        Value::Bool(flag) => Ok(flag.to_string()),
        Value::Number(number) => Ok(number
            .as_f64()
            .map_or_else(|| number.to_string(), number_text)),
        other => Err(format!("expected text, got {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const WORKFLOW: &str = "on:\n  workflow_dispatch:\n    inputs:\n      level:\n        type: choice\n        options: [quick, full]\n        default: quick\n      dry:\n        type: boolean\n      count:\n        type: number\n        default: 3\n      who:\n        required: true\n      env:\n        type: environment\n        required: false\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - run: 'true'\n";

    fn given(pairs: &[(&str, Value)]) -> IndexMap<String, Value> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    #[test]
    fn inputs_are_typed_and_defaulted() {
        let workflow = crate::load(WORKFLOW, &Default::default()).unwrap();
        let inputs = dispatch_inputs(
            &workflow,
            &given(&[
                ("who", json!("octocat")),
                ("dry", json!("true")),
                ("count", json!("7.5")),
            ]),
        )
        .unwrap();
        assert_eq!(
            Value::Object(inputs),
            json!({"level": "quick", "dry": true, "count": 7.5, "who": "octocat", "env": ""})
        );
    }

    #[test]
    fn every_problem_is_reported() {
        let workflow = crate::load(WORKFLOW, &Default::default()).unwrap();
        let problems = dispatch_inputs(
            &workflow,
            &given(&[
                ("level", json!("slow")),
                ("dry", json!("yes")),
                ("count", json!("many")),
                ("extra", json!(1)),
            ]),
        )
        .unwrap_err();
        let text = problems.join("\n");
        for expected in [
            "unexpected input `extra`",
            "input `who` is required",
            "`slow` is not one of the options: quick, full",
            "input `dry`: expected a boolean",
            "input `count`: expected a number, got `many`",
        ] {
            assert!(text.contains(expected), "missing `{expected}` in:\n{text}");
        }
    }

    #[test]
    fn a_workflow_without_the_trigger_cannot_be_dispatched() {
        let workflow = crate::load(
            "on: push\njobs:\n  a:\n    runs-on: x\n    steps:\n      - run: 'true'\n",
            &Default::default(),
        )
        .unwrap();
        let problems = dispatch_inputs(&workflow, &IndexMap::new()).unwrap_err();
        assert!(
            problems[0].contains("no `workflow_dispatch` trigger"),
            "{problems:?}"
        );
    }
}
