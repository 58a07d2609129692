//! Reading `on:`: the events that start a workflow and their filters.
//!
//! `on:` comes in three shapes: one event name, a list of names, or a mapping of names to
//! configuration. All three become a list of [`Trigger`]s.

use crate::cron::CronSchedule;
use crate::filter::FilterPattern;
use crate::load::reader::Reader;
use crate::model::{
    CallOutput, CallSecret, Input, InputType, RefFilters, ScheduleEntry, Spanned, Trigger,
    TriggerConfig,
};
use crate::yaml::{Node, NodeValue};

/// Every event GitHub accepts under `on:`.
pub const KNOWN_EVENTS: &[&str] = &[
    "branch_protection_rule",
    "check_run",
    "check_suite",
    "create",
    "delete",
    "deployment",
    "deployment_status",
    "discussion",
    "discussion_comment",
    "fork",
    "gollum",
    "image_version",
    "issue_comment",
    "issues",
    "label",
    "merge_group",
    "milestone",
    "page_build",
    "project",
    "project_card",
    "project_column",
    "public",
    "pull_request",
    "pull_request_comment",
    "pull_request_review",
    "pull_request_review_comment",
    "pull_request_target",
    "push",
    "registry_package",
    "release",
    "repository_dispatch",
    "schedule",
    "status",
    "watch",
    "workflow_call",
    "workflow_dispatch",
    "workflow_run",
];

/// Reads `on:` in any of its three shapes.
pub fn read_on(reader: &mut Reader, node: &Node) -> Vec<Trigger> {
    match &node.value {
        NodeValue::String(_) | NodeValue::Number(_) | NodeValue::Bool(_) => {
            read_event_name(reader, node)
                .map(|event| bare_trigger(reader, event))
                .into_iter()
                .collect()
        }
        NodeValue::Seq(items) => {
            let mut triggers = Vec::new();
            for item in items {
                if let Some(event) = read_event_name(reader, item) {
                    triggers.push(bare_trigger(reader, event));
                }
            }
            triggers
        }
        NodeValue::Map(entries) => entries
            .iter()
            .filter_map(|(key, value)| {
                let event = read_event_name(reader, key)?;
                read_event_config(reader, event, value)
            })
            .collect(),
        NodeValue::Null => {
            reader.error(node.pos, "`on` must name at least one event");
            Vec::new()
        }
    }
}

fn read_event_name(reader: &mut Reader, node: &Node) -> Option<Spanned<String>> {
    let name = reader.string(node, "event name")?;
    if !KNOWN_EVENTS.contains(&name.value.as_str()) {
        reader.error(
            name.pos,
            format!("unknown event \"{}\" in `on`", name.value),
        );
        return None;
    }
    Some(name)
}

/// A trigger named without configuration (`on: push` or `on: [push, pull_request]`).
fn bare_trigger(reader: &mut Reader, event: Spanned<String>) -> Trigger {
    let config = match event.value.as_str() {
        "push" => TriggerConfig::Push(RefFilters::default()),
        "pull_request" | "pull_request_target" => TriggerConfig::PullRequest {
            types: Vec::new(),
            filters: RefFilters::default(),
        },
        "workflow_dispatch" => TriggerConfig::WorkflowDispatch { inputs: Vec::new() },
        "workflow_call" => TriggerConfig::WorkflowCall {
            inputs: Vec::new(),
            outputs: Vec::new(),
            secrets: Vec::new(),
        },
        "schedule" => {
            reader.error(event.pos, "`schedule` needs a list of `cron` entries");
            TriggerConfig::Schedule(Vec::new())
        }
        "merge_group" => TriggerConfig::MergeGroup {
            types: Vec::new(),
            filters: RefFilters::default(),
        },
        "workflow_run" => TriggerConfig::WorkflowRun {
            workflows: Vec::new(),
            types: Vec::new(),
            filters: RefFilters::default(),
        },
        _ => TriggerConfig::Types(Vec::new()),
    };
    Trigger { event, config }
}

fn read_event_config(reader: &mut Reader, event: Spanned<String>, node: &Node) -> Option<Trigger> {
    let config = match event.value.as_str() {
        "schedule" => TriggerConfig::Schedule(read_schedule(reader, node)),
        _ if matches!(node.value, NodeValue::Null) => return Some(bare_trigger(reader, event)),
        "push" => TriggerConfig::Push(read_filters(reader, node, &event.value, PUSH_KEYS)?.0),
        "pull_request" | "pull_request_target" => {
            let (filters, types) = read_filters(reader, node, &event.value, PULL_REQUEST_KEYS)?;
            TriggerConfig::PullRequest { types, filters }
        }
        "merge_group" => {
            let keys = &["types", "branches", "branches-ignore"];
            let (filters, types) = read_filters(reader, node, &event.value, keys)?;
            TriggerConfig::MergeGroup { types, filters }
        }
        "workflow_run" => read_workflow_run(reader, node)?,
        "workflow_dispatch" => read_workflow_dispatch(reader, node)?,
        "workflow_call" => read_workflow_call(reader, node)?,
        // `image_version` also filters by image names and versions; gantry accepts and ignores them.
        "image_version" => {
            read_types_only(reader, node, &event.value, &["types", "names", "versions"])?
        }
        _ => read_types_only(reader, node, &event.value, &["types"])?,
    };
    Some(Trigger { event, config })
}

const PUSH_KEYS: &[&str] = &[
    "branches",
    "branches-ignore",
    "tags",
    "tags-ignore",
    "paths",
    "paths-ignore",
];
const PULL_REQUEST_KEYS: &[&str] = &[
    "types",
    "branches",
    "branches-ignore",
    "paths",
    "paths-ignore",
];

/// Reads ref and path filters plus `types`, checking GitHub's exclusivity rules.
fn read_filters(
    reader: &mut Reader,
    node: &Node,
    event: &str,
    allowed: &[&str],
) -> Option<(RefFilters, Vec<Spanned<String>>)> {
    let entries = reader.map(node, &format!("configuration of `{event}`"))?;
    let mut filters = RefFilters::default();
    let mut types = Vec::new();
    let mut key_positions = Vec::new();
    for (key, value) in entries {
        let Some(key) = reader.key(key) else { continue };
        key_positions.push((key.value.clone(), key.pos));
        if !allowed.contains(&key.value.as_str()) {
            reader.unknown_key(&key, &format!("`on.{event}`"), allowed);
            continue;
        }
        if key.value == "types" {
            types = reader.non_empty_string_or_list(value, "`types`");
            continue;
        }
        let patterns = Some(read_patterns(reader, value, &key.value));
        match key.value.as_str() {
            "branches" => filters.branches = patterns,
            "branches-ignore" => filters.branches_ignore = patterns,
            "tags" => filters.tags = patterns,
            "tags-ignore" => filters.tags_ignore = patterns,
            "paths" => filters.paths = patterns,
            _ => filters.paths_ignore = patterns,
        }
    }
    for (included, ignored, name) in [
        (&filters.branches, &filters.branches_ignore, "branches"),
        (&filters.tags, &filters.tags_ignore, "tags"),
        (&filters.paths, &filters.paths_ignore, "paths"),
    ] {
        if included.is_some() && ignored.is_some() {
            // Point at whichever of the two comes second: that is where the conflict arises.
            let ignore_key = format!("{name}-ignore");
            let pos = key_positions
                .iter()
                .filter(|(key, _)| key == name || *key == ignore_key)
                .map(|(_, pos)| *pos)
                .max()
                .unwrap_or(node.pos);
            reader.error(
                pos,
                format!(
                    "`{name}` and `{name}-ignore` cannot both be used for the same event `{event}`; use `!` patterns to exclude"
                ),
            );
        }
    }
    Some((filters, types))
}

fn read_patterns(reader: &mut Reader, node: &Node, what: &str) -> Vec<Spanned<FilterPattern>> {
    let mut patterns = Vec::new();
    for text in reader.non_empty_string_or_list(node, &format!("`{what}`")) {
        match FilterPattern::parse(&text.value) {
            Ok(pattern) => patterns.push(Spanned::new(pattern, text.pos)),
            Err(error) => reader.error(text.pos, format!("{error} (in `{what}`)")),
        }
    }
    // GitHub: a list with `!` patterns must also have a pattern without `!`, or nothing matches.
    let include_list = !what.ends_with("-ignore");
    if include_list && !patterns.is_empty() && patterns.iter().all(|p| p.value.is_negated()) {
        reader.error(
            node.pos,
            format!(
                "`{what}` has only negated (`!`) patterns; add at least one pattern without `!`"
            ),
        );
    }
    patterns
}

fn read_schedule(reader: &mut Reader, node: &Node) -> Vec<ScheduleEntry> {
    let NodeValue::Seq(items) = &node.value else {
        reader.error(
            node.pos,
            format!(
                "`schedule` must be a sequence of `cron` entries, found {}",
                node.type_name()
            ),
        );
        return Vec::new();
    };
    if items.is_empty() {
        reader.error(node.pos, "`schedule` must not be empty");
    }
    let mut schedules = Vec::new();
    for item in items {
        let Some(entries) = reader.map(item, "a `schedule` entry") else {
            continue;
        };
        let mut cron = None;
        let mut timezone = None;
        let mut found_cron = false;
        for (key, value) in entries {
            let Some(key) = reader.key(key) else { continue };
            match key.value.as_str() {
                "cron" => {
                    found_cron = true;
                    let Some(text) = reader.literal_string(value, "`cron`") else {
                        continue;
                    };
                    match CronSchedule::parse(&text.value) {
                        Ok(schedule) => cron = Some(Spanned::new(schedule, text.pos)),
                        Err(error) => reader.error(text.pos, error.to_string()),
                    }
                }
                "timezone" => timezone = reader.non_empty_string(value, "`timezone`"),
                _ => reader.unknown_key(&key, "a `schedule` entry", &["cron", "timezone"]),
            }
        }
        if !found_cron {
            reader.error(item.pos, "a `schedule` entry needs a `cron` key");
        }
        if let Some(cron) = cron {
            schedules.push(ScheduleEntry { cron, timezone });
        }
    }
    schedules
}

fn read_types_only(
    reader: &mut Reader,
    node: &Node,
    event: &str,
    allowed: &[&str],
) -> Option<TriggerConfig> {
    let entries = reader.map(node, &format!("configuration of `{event}`"))?;
    let mut types = Vec::new();
    for (key, value) in entries {
        let Some(key) = reader.key(key) else { continue };
        match key.value.as_str() {
            "types" => types = reader.non_empty_string_or_list(value, "`types`"),
            other if allowed.contains(&other) => {
                reader.non_empty_string_or_list(value, &format!("`{other}`"));
            }
            _ => reader.unknown_key(&key, &format!("`on.{event}`"), allowed),
        }
    }
    Some(TriggerConfig::Types(types))
}

fn read_workflow_run(reader: &mut Reader, node: &Node) -> Option<TriggerConfig> {
    let entries = reader.map(node, "configuration of `workflow_run`")?;
    let mut workflows = Vec::new();
    let mut types = Vec::new();
    let mut filters = RefFilters::default();
    const KEYS: &[&str] = &["types", "workflows", "branches", "branches-ignore"];
    for (key, value) in entries {
        let Some(key) = reader.key(key) else { continue };
        match key.value.as_str() {
            "types" => types = reader.non_empty_string_or_list(value, "`types`"),
            "workflows" => workflows = reader.non_empty_string_or_list(value, "`workflows`"),
            "branches" => filters.branches = Some(read_patterns(reader, value, "branches")),
            "branches-ignore" => {
                filters.branches_ignore = Some(read_patterns(reader, value, "branches-ignore"))
            }
            _ => reader.unknown_key(&key, "`on.workflow_run`", KEYS),
        }
    }
    Some(TriggerConfig::WorkflowRun {
        workflows,
        types,
        filters,
    })
}

fn read_workflow_dispatch(reader: &mut Reader, node: &Node) -> Option<TriggerConfig> {
    let entries = reader.map(node, "configuration of `workflow_dispatch`")?;
    let mut inputs = Vec::new();
    for (key, value) in entries {
        let Some(key) = reader.key(key) else { continue };
        // GitHub ignores other keys here, so a file that runs there loads here.
        if key.value == "inputs" {
            inputs = read_inputs(reader, value, InputSite::Dispatch);
        }
    }
    Some(TriggerConfig::WorkflowDispatch { inputs })
}

fn read_workflow_call(reader: &mut Reader, node: &Node) -> Option<TriggerConfig> {
    let entries = reader.map(node, "configuration of `workflow_call`")?;
    let mut inputs = Vec::new();
    let mut outputs = Vec::new();
    let mut secrets = Vec::new();
    for (key, value) in entries {
        let Some(key) = reader.key(key) else { continue };
        match key.value.as_str() {
            "inputs" => inputs = read_inputs(reader, value, InputSite::Call),
            "outputs" => outputs = read_call_outputs(reader, value),
            "secrets" => secrets = read_call_secrets(reader, value),
            _ => reader.unknown_key(
                &key,
                "`on.workflow_call`",
                &["inputs", "outputs", "secrets"],
            ),
        }
    }
    Some(TriggerConfig::WorkflowCall {
        inputs,
        outputs,
        secrets,
    })
}

/// Where inputs are declared: the two differ in allowed types and whether `type` is required.
#[derive(Clone, Copy, PartialEq, Eq)]
enum InputSite {
    Dispatch,
    Call,
}

fn read_inputs(reader: &mut Reader, node: &Node, site: InputSite) -> Vec<Input> {
    let Some(entries) = reader.map_or_null(node, "`inputs`") else {
        return Vec::new();
    };
    let mut inputs = Vec::new();
    for (key, value) in entries {
        let Some(id) = reader.key(key) else { continue };
        if let Some(input) = read_input(reader, id, value, site) {
            inputs.push(input);
        }
    }
    reader.check_keys_unique_ignoring_case(inputs.iter().map(|input| &input.id), "`inputs`");
    inputs
}

fn read_input(
    reader: &mut Reader,
    id: Spanned<String>,
    node: &Node,
    site: InputSite,
) -> Option<Input> {
    const KEYS: &[&str] = &["description", "type", "required", "default", "options"];
    let entries = reader.map_or_null(node, &format!("input \"{}\"", id.value))?;
    let mut input = Input {
        id,
        description: None,
        required: false,
        kind: InputType::String,
        default: None,
        options: Vec::new(),
    };
    let mut has_type = false;
    for (key, value) in entries {
        let Some(key) = reader.key(key) else { continue };
        match key.value.as_str() {
            "description" => {
                input.description = reader.string(value, "`description`").map(|t| t.value)
            }
            "required" => input.required = reader.boolean(value, "`required`").unwrap_or(false),
            "default" => input.default = Some(value.to_owned_node()),
            "type" => {
                has_type = true;
                if let Some(kind) = read_input_type(reader, value, site) {
                    input.kind = kind;
                }
            }
            "options" if site == InputSite::Dispatch => {
                input.options = reader.string_list(value, "`options`");
                if input.options.is_empty() {
                    reader.error(value.pos, "`options` must not be empty");
                }
            }
            _ => {
                let allowed = if site == InputSite::Dispatch {
                    KEYS
                } else {
                    &KEYS[..4]
                };
                reader.unknown_key(&key, &format!("input \"{}\"", input.id.value), allowed);
            }
        }
    }
    if site == InputSite::Call && !has_type {
        reader.error(
            input.id.pos,
            format!(
                "input \"{}\" of `workflow_call` needs a `type`",
                input.id.value
            ),
        );
    }
    if input.kind == InputType::Choice && input.options.is_empty() {
        reader.error(
            input.id.pos,
            format!(
                "choice input \"{}\" needs a non-empty `options` list",
                input.id.value
            ),
        );
    }
    Some(input)
}

fn read_input_type(reader: &mut Reader, node: &Node, site: InputSite) -> Option<InputType> {
    let text = reader.literal_string(node, "input `type`")?;
    let kind = match text.value.as_str() {
        "string" => InputType::String,
        "boolean" => InputType::Boolean,
        "number" => InputType::Number,
        "choice" if site == InputSite::Dispatch => InputType::Choice,
        "environment" if site == InputSite::Dispatch => InputType::Environment,
        other => {
            let allowed = if site == InputSite::Dispatch {
                "boolean, choice, environment, number, string"
            } else {
                "boolean, number, string"
            };
            reader.error(
                text.pos,
                format!("invalid input type \"{other}\"; expected one of: {allowed}"),
            );
            return None;
        }
    };
    Some(kind)
}

fn read_call_outputs(reader: &mut Reader, node: &Node) -> Vec<CallOutput> {
    let Some(entries) = reader.map_or_null(node, "`outputs`") else {
        return Vec::new();
    };
    let mut outputs = Vec::new();
    for (key, value) in entries {
        let Some(id) = reader.key(key) else { continue };
        let Some(fields) = reader.map(value, &format!("output \"{}\"", id.value)) else {
            continue;
        };
        let mut output_value = None;
        for (field, field_value) in fields {
            let Some(field) = reader.key(field) else {
                continue;
            };
            match field.value.as_str() {
                "value" => output_value = reader.string(field_value, "output `value`"),
                "description" => {}
                _ => reader.unknown_key(
                    &field,
                    &format!("output \"{}\"", id.value),
                    &["description", "value"],
                ),
            }
        }
        match output_value {
            Some(value) => outputs.push(CallOutput { id, value }),
            None => reader.error(id.pos, format!("output \"{}\" needs a `value`", id.value)),
        }
    }
    reader.check_keys_unique_ignoring_case(outputs.iter().map(|output| &output.id), "`outputs`");
    outputs
}

fn read_call_secrets(reader: &mut Reader, node: &Node) -> Vec<CallSecret> {
    let Some(entries) = reader.map_or_null(node, "`secrets`") else {
        return Vec::new();
    };
    let mut secrets = Vec::new();
    for (key, value) in entries {
        let Some(id) = reader.key(key) else { continue };
        let mut required = false;
        if let Some(fields) = reader.map_or_null(value, &format!("secret \"{}\"", id.value)) {
            for (field, field_value) in fields {
                let Some(field) = reader.key(field) else {
                    continue;
                };
                match field.value.as_str() {
                    "required" => {
                        required = reader.boolean(field_value, "`required`").unwrap_or(false)
                    }
                    "description" => {}
                    _ => reader.unknown_key(
                        &field,
                        &format!("secret \"{}\"", id.value),
                        &["description", "required"],
                    ),
                }
            }
        }
        secrets.push(CallSecret { id, required });
    }
    reader.check_keys_unique_ignoring_case(secrets.iter().map(|secret| &secret.id), "`secrets`");
    secrets
}
