//! Planning a workflow: which job instances it becomes once matrices are expanded.
//!
//! A matrix written as plain values expands when the file is loaded. A matrix that holds
//! expressions expands when its contexts exist: at run creation for `github`, `inputs` and `vars`,
//! or, when it reads `needs` (`${{ fromJSON(needs.setup.outputs.matrix) }}`), only after those
//! jobs end. Until then it is *deferred*.

use gantry_expr::{Contexts, Host, parse_template};

use crate::contexts::Site;
use crate::diag::Diagnostic;
use crate::limits::Limits;
use crate::matrix::{self, Configuration, MatrixError};
use crate::model::{Job, MatrixDef, Spanned, Text, Workflow};
use crate::yaml::{Node, NodeValue};

/// What a job's matrix becomes.
#[derive(Debug, Clone, PartialEq)]
pub enum MatrixPlan {
    /// The job has no matrix: it runs once.
    None,
    /// The job runs once per combination, in GitHub's order.
    Combinations(Vec<Configuration>),
    /// The matrix needs contexts that do not exist yet (typically `needs`).
    Deferred,
}

/// Every string in a matrix mapping that holds an expression, with its position.
pub fn matrix_expressions(matrix: &MatrixDef) -> Vec<Text> {
    let mut found = Vec::new();
    match matrix {
        MatrixDef::Expr(text) => found.push(text.clone()),
        MatrixDef::Map(node) => collect_expressions(node, &mut found),
    }
    found
}

fn collect_expressions(node: &Node, found: &mut Vec<Text>) {
    match &node.value {
        NodeValue::String(text) if text.contains("${{") => {
            found.push(Spanned::new(text.to_string(), node.pos))
        }
        NodeValue::Seq(items) => items
            .iter()
            .for_each(|item| collect_expressions(item, found)),
        NodeValue::Map(entries) => entries
            .iter()
            .for_each(|(_, value)| collect_expressions(value, found)),
        _ => {}
    }
}

/// Expands a job's matrix from the file alone; a matrix with expressions is [`MatrixPlan::Deferred`].
pub fn expand_matrix(job: &Job, limits: &Limits) -> Result<MatrixPlan, Diagnostic> {
    let Some(matrix) = job.strategy.as_ref().and_then(|s| s.matrix.as_ref()) else {
        return Ok(MatrixPlan::None);
    };
    if !matrix_expressions(matrix).is_empty() {
        return Ok(MatrixPlan::Deferred);
    }
    let MatrixDef::Map(node) = matrix else {
        return Ok(MatrixPlan::Deferred);
    };
    expand_json(&node.to_json(), node, limits)
}

/// Expands a job's matrix, evaluating its expressions with `contexts` (`github`, `inputs`,
/// `vars`, and `needs` once the job's needs have ended). A matrix that reads a context missing
/// from `contexts` stays [`MatrixPlan::Deferred`].
pub fn expand_matrix_with(
    job: &Job,
    limits: &Limits,
    contexts: &Contexts,
    host: &dyn Host,
) -> Result<MatrixPlan, Diagnostic> {
    let Some(matrix) = job.strategy.as_ref().and_then(|s| s.matrix.as_ref()) else {
        return Ok(MatrixPlan::None);
    };
    let options = Site::Strategy.parse_options();
    let evaluated = match matrix {
        MatrixDef::Expr(text) => {
            let Some(value) = evaluate_text(text, &options, contexts, host)? else {
                return Ok(MatrixPlan::Deferred);
            };
            value
        }
        MatrixDef::Map(node) => match evaluate_node(node, &options, contexts, host)? {
            Some(value) => value,
            None => return Ok(MatrixPlan::Deferred),
        },
    };
    let pos_node = match matrix {
        MatrixDef::Map(node) => node.clone(),
        MatrixDef::Expr(text) => Node {
            pos: text.pos,
            value: NodeValue::Null,
        },
    };
    expand_json(&evaluated, &pos_node, limits)
}

fn expand_json(
    json: &serde_json::Value,
    node: &Node,
    limits: &Limits,
) -> Result<MatrixPlan, Diagnostic> {
    let diagnostic = |error: MatrixError| {
        Diagnostic::new(error_pos(node, &error), format!("invalid matrix: {error}"))
    };
    let spec = matrix::spec_from_json(json).map_err(diagnostic)?;
    let combinations =
        matrix::expand_configurations(&spec, limits.max_matrix_jobs).map_err(diagnostic)?;
    Ok(MatrixPlan::Combinations(combinations))
}

/// Points a matrix error at the key it names, when the error names one and the key is found;
/// otherwise at the matrix itself.
fn error_pos(matrix: &Node, error: &MatrixError) -> crate::yaml::Pos {
    let (key, last) = match error {
        MatrixError::VectorNotAList { key }
        | MatrixError::EmptyVector { key }
        | MatrixError::Deferred { key } => (key, false),
        // The second of two keys that differ only in case is the one at fault.
        MatrixError::DuplicateVector { key } => (key, true),
        MatrixError::UnknownExcludeKey { key } => {
            return find_key(matrix, key, false, true).unwrap_or(matrix.pos);
        }
        _ => return matrix.pos,
    };
    find_key(matrix, key, last, false).unwrap_or(matrix.pos)
}

/// Finds `key` among the matrix's own keys, or inside its `exclude` entries.
fn find_key(matrix: &Node, key: &str, last: bool, in_exclude: bool) -> Option<crate::yaml::Pos> {
    let NodeValue::Map(entries) = &matrix.value else {
        return None;
    };
    let mut found = entries.iter().filter_map(|(k, value)| {
        let name = k.scalar_text()?;
        if in_exclude {
            let NodeValue::Seq(items) = &value.value else {
                return None;
            };
            if name != "exclude" {
                return None;
            }
            return items.iter().find_map(|item| match &item.value {
                NodeValue::Map(fields) => fields
                    .iter()
                    .find(|(field, _)| field.scalar_text().as_deref() == Some(key))
                    .map(|(field, _)| field.pos),
                _ => None,
            });
        }
        name.eq_ignore_ascii_case(key).then_some(k.pos)
    });
    if last {
        found.next_back()
    } else {
        found.next()
    }
}

/// Evaluates one template; `None` when it reads a context that is not available yet.
fn evaluate_text(
    text: &Text,
    options: &gantry_expr::ParseOptions,
    contexts: &Contexts,
    host: &dyn Host,
) -> Result<Option<serde_json::Value>, Diagnostic> {
    let template = parse_template(&text.value, options).map_err(|error| {
        Diagnostic::new(text.pos, format!("invalid expression: {}", error.error))
    })?;
    let missing_context = template.parts.iter().any(|part| match part {
        gantry_expr::TemplatePart::Expression(expr) => expr
            .referenced_contexts()
            .iter()
            .any(|name| !contexts.keys().any(|key| key.eq_ignore_ascii_case(name))),
        gantry_expr::TemplatePart::Literal(_) => false,
    });
    if missing_context {
        return Ok(None);
    }
    let value = template
        .evaluate(contexts, host)
        .map_err(|error| Diagnostic::new(text.pos, format!("matrix expression failed: {error}")))?;
    Ok(Some(value.to_json()))
}

/// Evaluates every expression inside a matrix mapping, keeping the structure.
fn evaluate_node(
    node: &Node,
    options: &gantry_expr::ParseOptions,
    contexts: &Contexts,
    host: &dyn Host,
) -> Result<Option<serde_json::Value>, Diagnostic> {
    Ok(Some(match &node.value {
        NodeValue::String(text) if text.contains("${{") => {
            match evaluate_text(
                &Spanned::new(text.to_string(), node.pos),
                options,
                contexts,
                host,
            )? {
                Some(value) => value,
                None => return Ok(None),
            }
        }
        NodeValue::Seq(items) => {
            let mut values = Vec::with_capacity(items.len());
            for item in items {
                match evaluate_node(item, options, contexts, host)? {
                    Some(value) => values.push(value),
                    None => return Ok(None),
                }
            }
            serde_json::Value::Array(values)
        }
        NodeValue::Map(entries) => {
            let mut object = serde_json::Map::new();
            for (key, value) in entries {
                let Some(evaluated) = evaluate_node(value, options, contexts, host)? else {
                    return Ok(None);
                };
                object.insert(key.scalar_text().unwrap_or_default(), evaluated);
            }
            serde_json::Value::Object(object)
        }
        _ => node.to_json(),
    }))
}

/// A job of a planned workflow, for `gantry workflow check --json` and the engine.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedJob<'a> {
    /// The job as written.
    pub job: &'a Job,
    /// Its matrix.
    pub matrix: MatrixPlan,
}

/// Plans every job of a loaded workflow from the file alone.
pub fn plan<'a>(
    workflow: &'a Workflow,
    limits: &Limits,
) -> Result<Vec<PlannedJob<'a>>, Diagnostic> {
    workflow
        .jobs
        .iter()
        .map(|job| {
            Ok(PlannedJob {
                job,
                matrix: expand_matrix(job, limits)?,
            })
        })
        .collect()
}
