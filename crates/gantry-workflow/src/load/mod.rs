//! Loading a workflow file: YAML text in, a typed [`Workflow`] or every problem found out.
//!
//! Loading checks shape (keys, types, required values); [`crate::validate`] then checks meaning
//! (ids, `needs`, expressions, matrices, limits). [`load`] runs both.

mod common;
mod job;
mod on;
mod reader;
mod step;

pub use on::KNOWN_EVENTS;

use crate::diag::Diagnostics;
use crate::limits::Limits;
use crate::model::Workflow;
use crate::yaml::{self, Node, NodeValue, YamlLimits};
use reader::Reader;

const ROOT_KEYS: &[&str] = &[
    "name",
    "run-name",
    "description",
    "on",
    "env",
    "defaults",
    "permissions",
    "concurrency",
    "jobs",
];

/// Parses and validates a workflow file.
pub fn load(source: &str, limits: &Limits) -> Result<Workflow, Diagnostics> {
    let workflow = parse(source, limits)?;
    crate::validate::validate(&workflow, limits)?;
    Ok(workflow)
}

/// Parses a workflow file's structure without the semantic checks of [`crate::validate`].
pub fn parse(source: &str, limits: &Limits) -> Result<Workflow, Diagnostics> {
    let yaml_limits = YamlLimits {
        max_file_bytes: limits.max_file_bytes,
        ..YamlLimits::default()
    };
    let root = yaml::parse(source, &yaml_limits).map_err(|errors| {
        let mut diagnostics = Diagnostics::default();
        for error in errors {
            diagnostics.push(error.pos, error.message);
        }
        diagnostics.finish()
    })?;
    let mut reader = Reader::default();
    let workflow = read_workflow(&mut reader, &root);
    if reader.diagnostics.is_empty() {
        Ok(workflow)
    } else {
        Err(reader.diagnostics.finish())
    }
}

fn read_workflow(reader: &mut Reader, root: &Node) -> Workflow {
    let mut workflow = Workflow::default();
    if matches!(root.value, NodeValue::Null) {
        reader.error(root.pos, "the workflow file is empty");
        return workflow;
    }
    let Some(entries) = reader.map(root, "a workflow") else {
        return workflow;
    };
    let mut saw_on = false;
    let mut saw_jobs = false;
    for (key, value) in entries {
        let Some(key) = reader.key(key) else { continue };
        match key.value.as_str() {
            "name" => workflow.name = reader.string(value, "workflow `name`"),
            "run-name" => workflow.run_name = reader.string(value, "`run-name`"),
            "description" => {
                reader.string(value, "workflow `description`");
            }
            "on" => {
                saw_on = true;
                workflow.on = on::read_on(reader, value);
            }
            "env" => workflow.env = common::read_env(reader, value),
            "defaults" => workflow.defaults = common::read_defaults(reader, value),
            "permissions" => workflow.permissions = common::read_permissions(reader, value),
            "concurrency" => workflow.concurrency = common::read_concurrency(reader, value),
            "jobs" => {
                saw_jobs = true;
                workflow.jobs_pos = key.pos;
                read_jobs(reader, value, &mut workflow);
            }
            _ => reader.unknown_key(&key, "the workflow", ROOT_KEYS),
        }
    }
    if !saw_on {
        reader.error(
            root.pos,
            "the workflow needs `on` to say which events start it",
        );
    }
    if !saw_jobs {
        reader.error(root.pos, "the workflow needs `jobs`");
    }
    workflow
}

fn read_jobs(reader: &mut Reader, node: &Node, workflow: &mut Workflow) {
    let Some(entries) = reader.map(node, "`jobs`") else {
        return;
    };
    if entries.is_empty() {
        reader.error(node.pos, "`jobs` must define at least one job");
    }
    for (key, value) in entries {
        let Some(id) = reader.key(key) else { continue };
        if let Some(job) = job::read_job(reader, id, value) {
            workflow.jobs.push(job);
        }
    }
}
