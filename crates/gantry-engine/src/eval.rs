//! Evaluating a workflow's expressions while its run goes on: templates and settings with the
//! contexts of their place, and what `success()`, `failure()` and `cancelled()` see in a job's
//! `if:`.

use gantry_expr::{
    Contexts, Host, JobStatus as ExprStatus, NoHost, TemplatePart, Value, parse, parse_condition,
    parse_template,
};
use gantry_workflow::contexts::Site;

use crate::spec::Setting;
use crate::status::Conclusion;

/// Evaluates a string that may hold `${{ }}` parts, with the contexts and functions of `site`.
pub(crate) fn template(text: &str, site: Site, contexts: &Contexts) -> Result<Value, String> {
    let template = parse_template(text, &site.parse_options()).map_err(|e| e.to_string())?;
    template
        .evaluate(contexts, &NoHost)
        .map_err(|e| e.to_string())
}

/// A boolean setting (`continue-on-error`, `fail-fast`, `cancel-in-progress`): a literal, or an
/// expression whose value is read as GitHub reads booleans (`true`/`false` strings included).
pub(crate) fn setting_bool(
    setting: &Setting<bool>,
    site: Site,
    contexts: &Contexts,
) -> Result<bool, String> {
    match setting {
        Setting::Literal(value) => Ok(*value),
        Setting::Expr(text) => Ok(match template(text, site, contexts)? {
            Value::Boolean(value) => value,
            Value::String(text) if text.eq_ignore_ascii_case("true") => true,
            Value::String(text) if text.eq_ignore_ascii_case("false") => false,
            other => other.is_truthy(),
        }),
    }
}

/// A number setting (`timeout-minutes`, `max-parallel`): a literal, or an expression giving a
/// number or a numeric string.
pub(crate) fn setting_number(
    setting: &Setting<f64>,
    site: Site,
    contexts: &Contexts,
) -> Result<f64, String> {
    match setting {
        Setting::Literal(value) => Ok(*value),
        Setting::Expr(text) => match template(text, site, contexts)? {
            Value::Number(value) => Ok(value),
            Value::String(text) => text
                .trim()
                .parse::<f64>()
                .map_err(|_| format!("`{text}` is not a number")),
            other => Err(format!("expected a number, got {}", other.kind())),
        },
    }
}

/// `runs-on` labels from an evaluated value: a string is one label, an array one label per
/// element; empty labels are dropped.
pub(crate) fn labels(value: Value, into: &mut Vec<String>) {
    match value {
        Value::Array(items) => items.into_iter().for_each(|item| labels(item, into)),
        Value::Null => {}
        other => {
            let label = other.to_coerced_string();
            if !label.is_empty() {
                into.push(label);
            }
        }
    }
}

/// Evaluates a job's `if:` (`success()` when absent), adding GitHub's implicit `success() &&`.
pub(crate) fn condition(
    text: Option<&str>,
    contexts: &Contexts,
    host: &dyn Host,
) -> Result<bool, String> {
    let expr = parse_condition(text.unwrap_or(""), &Site::JobIf.parse_options())
        .map_err(|e| e.to_string())?;
    let value = expr.evaluate(contexts, host).map_err(|e| e.to_string())?;
    Ok(value.is_truthy())
}

/// Whether a job's `if:` calls a status function itself. Without one, the implicit
/// `success() &&` makes it false once the run is cancelled, whatever the needs say.
pub(crate) fn uses_status_function(text: Option<&str>) -> bool {
    let Some(text) = text else {
        return false;
    };
    let options = Site::JobIf.parse_options();
    if text.contains("${{") {
        parse_template(text, &options).is_ok_and(|template| {
            template.parts.iter().any(|part| match part {
                TemplatePart::Expression(expr) => expr.uses_status_function(),
                TemplatePart::Literal(_) => false,
            })
        })
    } else {
        parse(text.trim(), &options).is_ok_and(|expr| expr.uses_status_function())
    }
}

/// What the status functions see in a job's `if:`: the results of the job's needs and whether
/// the run was cancelled.
///
/// GitHub's job-level rules: `success()` is true when every need succeeded (a skipped or
/// cancelled need makes it false, which is how skipping propagates), `failure()` when a need
/// failed, `cancelled()` when the run was cancelled. A skipped need therefore makes both
/// `success()` and `failure()` false while `cancelled()` stays false, a combination no single
/// [`ExprStatus`] of the job expresses: `gantry-expr` asks for `success()`/`failure()` through
/// [`Host::success_failure_status`] (the needs' verdict, [`ExprStatus::Skipped`] for "neither")
/// and for `cancelled()` through [`Host::job_status`] (the run's).
pub(crate) struct JobIfHost {
    /// Each need's id and result (continue-on-error failures already count as success).
    pub(crate) needs: Vec<(String, Conclusion)>,
    /// Whether the run has been cancelled.
    pub(crate) run_cancelled: bool,
}

impl JobIfHost {
    /// The verdict of `success()`/`failure()` over some needs.
    fn verdict<'a>(results: impl Iterator<Item = &'a Conclusion>, cancelled: bool) -> ExprStatus {
        let mut all_succeeded = !cancelled;
        for result in results {
            match result {
                Conclusion::Failure => return ExprStatus::Failure,
                Conclusion::Success => {}
                Conclusion::Cancelled | Conclusion::Skipped => all_succeeded = false,
            }
        }
        if all_succeeded {
            ExprStatus::Success
        } else {
            ExprStatus::Skipped
        }
    }
}

impl Host for JobIfHost {
    fn job_status(&self) -> ExprStatus {
        if self.run_cancelled {
            ExprStatus::Cancelled
        } else if self.needs.iter().any(|(_, r)| *r == Conclusion::Failure) {
            ExprStatus::Failure
        } else {
            ExprStatus::Success
        }
    }

    fn hash_files(&self, _patterns: &[String]) -> Result<String, String> {
        Err("hashFiles is not available in a job's `if`".to_owned())
    }

    fn success_failure_status(&self) -> Option<ExprStatus> {
        Some(Self::verdict(
            self.needs.iter().map(|(_, result)| result),
            self.run_cancelled,
        ))
    }

    fn needs_status(&self, job_ids: &[String]) -> ExprStatus {
        let named = self
            .needs
            .iter()
            .filter(|(id, _)| job_ids.iter().any(|wanted| wanted.eq_ignore_ascii_case(id)))
            .map(|(_, result)| result);
        Self::verdict(named, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(condition_text: &str, needs: &[(&str, Conclusion)], cancelled: bool) -> bool {
        let host = JobIfHost {
            needs: needs.iter().map(|(id, r)| (id.to_string(), *r)).collect(),
            run_cancelled: cancelled,
        };
        condition(Some(condition_text), &Contexts::new(), &host).unwrap()
    }

    #[test]
    fn status_functions_follow_the_needs() {
        use Conclusion::*;
        let skipped = [("a", Success), ("b", Skipped)];
        assert!(!check("success()", &skipped, false));
        assert!(!check("failure()", &skipped, false));
        assert!(!check("cancelled()", &skipped, false));
        assert!(check("!failure() && !cancelled()", &skipped, false));
        assert!(check("always()", &skipped, false));
        assert!(check("success('a')", &skipped, false));
        assert!(!check("success('b')", &skipped, false));

        let failed = [("a", Failure), ("b", Success)];
        assert!(check("failure()", &failed, false));
        assert!(!check("true", &failed, false));
        assert!(check("failure('a')", &failed, false));
        assert!(!check("failure('b')", &failed, false));

        let fine = [("a", Success)];
        assert!(check("", &fine, false));
        assert!(!check("", &fine, true));
        assert!(check("cancelled()", &fine, true));
        assert!(check("always()", &fine, true));
    }

    #[test]
    fn finds_explicit_status_functions() {
        assert!(uses_status_function(Some("always()")));
        assert!(uses_status_function(Some("${{ !cancelled() }}")));
        assert!(!uses_status_function(Some("github.ref == 'main'")));
        assert!(!uses_status_function(None));
    }

    #[test]
    fn reads_labels_and_settings() {
        let mut found = Vec::new();
        labels(
            Value::from(serde_json::json!(["a", ["b", ""], 3])),
            &mut found,
        );
        assert_eq!(found, ["a", "b", "3"]);
        let contexts = Contexts::new();
        let number = Setting::Expr("${{ '15' }}".to_owned());
        assert_eq!(setting_number(&number, Site::Strategy, &contexts), Ok(15.0));
        let flag = Setting::Expr("${{ 'false' }}".to_owned());
        assert_eq!(setting_bool(&flag, Site::Strategy, &contexts), Ok(false));
    }
}
