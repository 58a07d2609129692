//! Expression contexts and evaluation inside a job: which values `github`, `env`, `job`,
//! `steps`, `runner`, `matrix`, `needs`, `inputs`, `vars`, `secrets` and `strategy` hold at a
//! given moment, and small helpers that evaluate a template, a condition or a setting with the
//! parse options of its place in the workflow (`gantry_workflow::contexts::Site`).

use gantry_expr::{Contexts, Host, Value, parse_condition, parse_template};
use gantry_workflow::contexts::Site;
use indexmap::IndexMap;

/// Evaluates `text` (a string that may hold `${{ }}` parts) at `site`.
pub fn evaluate(
    text: &str,
    site: Site,
    contexts: &Contexts,
    host: &dyn Host,
) -> Result<Value, String> {
    let template = parse_template(text, &site.parse_options()).map_err(|e| e.to_string())?;
    template.evaluate(contexts, host).map_err(|e| e.to_string())
}

/// [`evaluate`], as the string GitHub interpolates.
pub fn evaluate_string(
    text: &str,
    site: Site,
    contexts: &Contexts,
    host: &dyn Host,
) -> Result<String, String> {
    evaluate(text, site, contexts, host).map(|value| value.to_coerced_string())
}

/// Evaluates a step's `if:` (`success()` when absent), with GitHub's implicit `success() &&`
/// when the condition calls no status function.
pub fn condition(text: Option<&str>, contexts: &Contexts, host: &dyn Host) -> Result<bool, String> {
    let expr = parse_condition(text.unwrap_or(""), &Site::StepIf.parse_options())
        .map_err(|e| e.to_string())?;
    Ok(expr
        .evaluate(contexts, host)
        .map_err(|e| e.to_string())?
        .is_truthy())
}

/// A boolean as GitHub reads `continue-on-error`: `true`/`false` (any case) or truthiness.
pub fn as_bool(value: &Value) -> bool {
    match value {
        Value::String(text) if text.trim().eq_ignore_ascii_case("true") => true,
        Value::String(text) if text.trim().eq_ignore_ascii_case("false") => false,
        other => other.is_truthy(),
    }
}

/// A number as GitHub reads `timeout-minutes`.
pub fn as_number(value: &Value) -> Result<f64, String> {
    match value {
        Value::Number(number) => Ok(*number),
        Value::String(text) => text
            .trim()
            .parse::<f64>()
            .map_err(|_| format!("`{text}` is not a number")),
        other => Err(format!("expected a number, got {}", other.kind())),
    }
}

/// An object value from string pairs.
pub fn string_object<'a>(pairs: impl IntoIterator<Item = (&'a String, &'a String)>) -> Value {
    Value::Object(
        pairs
            .into_iter()
            .map(|(name, value)| (name.clone(), Value::String(value.clone())))
            .collect(),
    )
}

/// The result of one step as `steps.<id>` shows it.
pub fn step_value(outputs: &IndexMap<String, String>, outcome: &str, conclusion: &str) -> Value {
    let mut fields = IndexMap::new();
    fields.insert("outputs".to_owned(), string_object(outputs));
    fields.insert("outcome".to_owned(), Value::from(outcome));
    fields.insert("conclusion".to_owned(), Value::from(conclusion));
    Value::Object(fields)
}

/// Sets `name` in an object value (a no-op on anything else).
pub fn set_field(object: &mut Value, name: &str, value: Value) {
    if let Value::Object(fields) = object {
        fields.insert(name.to_owned(), value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gantry_expr::{JobStatus, NoHost};

    struct Status(JobStatus);
    impl Host for Status {
        fn job_status(&self) -> JobStatus {
            self.0
        }
        fn hash_files(&self, _patterns: &[String]) -> Result<String, String> {
            Ok(String::new())
        }
    }

    #[test]
    fn step_conditions_follow_the_job_status() {
        let contexts = Contexts::new();
        let check =
            |text: Option<&str>, status| condition(text, &contexts, &Status(status)).unwrap();
        assert!(check(None, JobStatus::Success));
        assert!(!check(None, JobStatus::Failure));
        assert!(!check(None, JobStatus::Cancelled));
        assert!(check(Some("always()"), JobStatus::Cancelled));
        assert!(check(Some("${{ failure() }}"), JobStatus::Failure));
        assert!(check(Some("cancelled()"), JobStatus::Cancelled));
        assert!(!check(Some("true"), JobStatus::Failure));
    }

    #[test]
    fn templates_and_settings() {
        let mut contexts = Contexts::new();
        contexts.insert(
            "env".to_owned(),
            Value::from_json(&serde_json::json!({"A": "x"})),
        );
        assert_eq!(
            evaluate_string(
                "a-${{ env.A }}-${{ format('{0}!', 'y') }}",
                Site::Step,
                &contexts,
                &NoHost
            )
            .unwrap(),
            "a-x-y!"
        );
        assert!(evaluate("${{ nope.x }}", Site::Step, &contexts, &NoHost).is_err());
        assert!(as_bool(&Value::from("TRUE")));
        assert!(!as_bool(&Value::from("false")));
        assert_eq!(as_number(&Value::from(" 2.5 ")).unwrap(), 2.5);
    }
}
