//! Reading one job under `jobs:`: a normal job with steps, or a job that calls a reusable
//! workflow with `uses:`.

use crate::load::common::{read_concurrency, read_defaults, read_env, read_permissions};
use crate::load::reader::{Reader, has_expression};
use crate::load::step::read_steps;
use crate::model::{
    Container, Environment, Job, JobSecrets, MatrixDef, RunsOn, Snapshot, Spanned, Strategy,
};
use crate::yaml::{Node, NodeValue};

/// Keys of a job that runs steps.
const STEP_JOB_KEYS: &[&str] = &[
    "name",
    "needs",
    "if",
    "runs-on",
    "environment",
    "outputs",
    "env",
    "defaults",
    "permissions",
    "concurrency",
    "timeout-minutes",
    "cancel-timeout-minutes",
    "continue-on-error",
    "strategy",
    "container",
    "services",
    "steps",
    "snapshot",
];

/// Keys of a job that calls a reusable workflow.
const CALL_JOB_KEYS: &[&str] = &[
    "name",
    "uses",
    "with",
    "secrets",
    "needs",
    "if",
    "permissions",
    "concurrency",
    "strategy",
];

/// Reads one job; `id` is its key under `jobs:`.
pub fn read_job(reader: &mut Reader, id: Spanned<String>, node: &Node) -> Option<Job> {
    let entries = reader.map(node, &format!("job \"{}\"", id.value))?;
    let calls_workflow = entries.iter().any(|(key, _)| key.as_str() == Some("uses"));
    let allowed = if calls_workflow {
        CALL_JOB_KEYS
    } else {
        STEP_JOB_KEYS
    };
    let place = format!("job \"{}\"", id.value);
    let mut job = Job {
        id,
        name: None,
        needs: Vec::new(),
        condition: None,
        runs_on: None,
        environment: None,
        outputs: Vec::new(),
        env: Default::default(),
        defaults: None,
        permissions: None,
        concurrency: None,
        timeout_minutes: None,
        continue_on_error: None,
        strategy: None,
        container: None,
        services: Vec::new(),
        steps: Vec::new(),
        uses: None,
        with: Vec::new(),
        secrets: None,
        snapshot: None,
    };
    for (key_node, value) in entries {
        let Some(key) = reader.key(key_node) else {
            continue;
        };
        if !allowed.contains(&key.value.as_str()) {
            if calls_workflow && STEP_JOB_KEYS.contains(&key.value.as_str()) {
                reader.error(
                    key.pos,
                    format!(
                        "\"{}\" cannot be used in a job that calls a reusable workflow with `uses`",
                        key.value
                    ),
                );
            } else {
                reader.unknown_key(&key, &place, allowed);
            }
            continue;
        }
        match key.value.as_str() {
            "name" => job.name = reader.string(value, "job `name`"),
            "needs" => job.needs = reader.non_empty_string_or_list(value, "`needs`"),
            "if" => job.condition = read_condition(reader, value),
            "runs-on" => job.runs_on = read_runs_on(reader, value),
            "environment" => job.environment = read_environment(reader, value),
            "outputs" => job.outputs = reader.string_map(value, "`outputs`"),
            "env" => job.env = read_env(reader, value),
            "defaults" => job.defaults = read_defaults(reader, value),
            "permissions" => job.permissions = read_permissions(reader, value),
            "concurrency" => job.concurrency = read_concurrency(reader, value),
            "timeout-minutes" => {
                job.timeout_minutes = reader.number_or_expr(value, "`timeout-minutes`")
            }
            "cancel-timeout-minutes" => {
                reader.number_or_expr(value, "`cancel-timeout-minutes`");
            }
            "continue-on-error" => {
                job.continue_on_error = reader.bool_or_expr(value, "`continue-on-error`")
            }
            "strategy" => job.strategy = read_strategy(reader, value),
            // `container:` left empty means no container, as on GitHub.
            "container" if matches!(value.value, NodeValue::Null) => {}
            "container" => job.container = read_container(reader, value, "`container`"),
            "services" => job.services = read_services(reader, value),
            "steps" => job.steps = read_steps(reader, value),
            "uses" => job.uses = read_workflow_ref(reader, value),
            "with" => job.with = read_with(reader, value),
            "secrets" => job.secrets = read_job_secrets(reader, value),
            "snapshot" => job.snapshot = read_snapshot(reader, value),
            _ => {}
        }
    }
    if !calls_workflow && job.runs_on.is_none() {
        {
            reader.error(
                job.id.pos,
                format!(
                    "job \"{}\" needs `runs-on` (or `uses` to call a reusable workflow)",
                    job.id.value
                ),
            );
        }
    }
    Some(job)
}

/// An `if:`; GitHub accepts booleans and numbers here and treats them as literal expressions.
pub fn read_condition(reader: &mut Reader, node: &Node) -> Option<Spanned<String>> {
    match &node.value {
        // `if:` with nothing after it is no condition at all.
        NodeValue::Null => None,
        NodeValue::Bool(_) | NodeValue::Number(_) | NodeValue::String(_) => {
            reader.string(node, "`if`")
        }
        _ => {
            reader.error(
                node.pos,
                format!(
                    "`if` must be a string expression, found {}",
                    node.type_name()
                ),
            );
            None
        }
    }
}

fn read_runs_on(reader: &mut Reader, node: &Node) -> Option<RunsOn> {
    let mut runs_on = RunsOn {
        pos: node.pos,
        labels: Vec::new(),
        group: None,
    };
    match &node.value {
        NodeValue::Seq(items) => {
            runs_on.labels = items
                .iter()
                .filter_map(|item| reader.non_empty_string(item, "`runs-on` label"))
                .collect();
            if items.is_empty() {
                reader.error(node.pos, "`runs-on` must not be empty");
            }
            if runs_on.labels.is_empty() {
                return None;
            }
        }
        NodeValue::Map(entries) => {
            for (key, value) in entries {
                let Some(key) = reader.key(key) else { continue };
                match key.value.as_str() {
                    "group" => runs_on.group = read_runner_group(reader, value),
                    "labels" => {
                        runs_on.labels = reader.non_empty_string_or_list(value, "`runs-on.labels`")
                    }
                    _ => reader.unknown_key(&key, "`runs-on`", &["group", "labels"]),
                }
            }
            if runs_on.group.is_none() && runs_on.labels.is_empty() {
                reader.error(node.pos, "`runs-on` needs a `group` or `labels`");
                return None;
            }
        }
        _ => runs_on.labels = vec![reader.non_empty_string(node, "`runs-on`")?],
    }
    Some(runs_on)
}

fn read_environment(reader: &mut Reader, node: &Node) -> Option<Environment> {
    if let NodeValue::Map(entries) = &node.value {
        let mut name = None;
        let mut url = None;
        for (key, value) in entries {
            let Some(key) = reader.key(key) else { continue };
            match key.value.as_str() {
                "name" => name = reader.string(value, "environment `name`"),
                "url" => url = reader.string(value, "environment `url`"),
                "deployment" => {
                    reader.bool_or_expr(value, "environment `deployment`");
                }
                _ => reader.unknown_key(&key, "`environment`", &["name", "url", "deployment"]),
            }
        }
        let Some(name) = name else {
            reader.error(node.pos, "`environment` needs a `name`");
            return None;
        };
        return Some(Environment { name, url });
    }
    let name = reader.string(node, "`environment`")?;
    Some(Environment { name, url: None })
}

fn read_strategy(reader: &mut Reader, node: &Node) -> Option<Strategy> {
    // `strategy: ${{ fromJSON(...) }}` as a whole is not something GitHub accepts; a mapping is.
    let entries = reader.map(node, "`strategy`")?;
    let mut strategy = Strategy::default();
    for (key, value) in entries {
        let Some(key) = reader.key(key) else { continue };
        match key.value.as_str() {
            "matrix" => strategy.matrix = read_matrix(reader, value),
            "fail-fast" => strategy.fail_fast = reader.bool_or_expr(value, "`fail-fast`"),
            "max-parallel" => {
                strategy.max_parallel = reader.number_or_expr(value, "`max-parallel`")
            }
            _ => reader.unknown_key(&key, "`strategy`", &["matrix", "fail-fast", "max-parallel"]),
        }
    }
    Some(strategy)
}

fn read_matrix(reader: &mut Reader, node: &Node) -> Option<MatrixDef> {
    match &node.value {
        NodeValue::String(text) if has_expression(text) => {
            Some(MatrixDef::Expr(Spanned::new(text.to_string(), node.pos)))
        }
        NodeValue::Map(_) => Some(MatrixDef::Map(node.to_owned_node())),
        _ => {
            reader.error(
                node.pos,
                format!(
                    "`matrix` must be a mapping or an expression, found {}",
                    node.type_name()
                ),
            );
            None
        }
    }
}

fn read_container(reader: &mut Reader, node: &Node, what: &str) -> Option<Container> {
    const KEYS: &[&str] = &[
        "image",
        "options",
        "env",
        "ports",
        "volumes",
        "credentials",
        "entrypoint",
        "command",
    ];
    match &node.value {
        NodeValue::Map(entries) => {
            let mut image = None;
            for (key, value) in entries {
                let Some(key) = reader.key(key) else { continue };
                match key.value.as_str() {
                    "image" => image = reader.non_empty_string(value, &format!("{what} `image`")),
                    "options" | "entrypoint" | "command" => {
                        reader.string(value, &format!("{what} `{}`", key.value));
                    }
                    "env" => {
                        read_env(reader, value);
                    }
                    "ports" | "volumes" => {
                        reader.string_list(value, &format!("{what} `{}`", key.value));
                    }
                    "credentials" => read_credentials(reader, value, what),
                    _ => reader.unknown_key(&key, what, KEYS),
                }
            }
            let Some(image) = image else {
                reader.error(node.pos, format!("{what} needs an `image`"));
                return None;
            };
            Some(Container {
                image,
                settings: node.to_owned_node(),
            })
        }
        _ => {
            let image = reader.non_empty_string(node, what)?;
            Some(Container {
                image,
                settings: Node {
                    pos: node.pos,
                    value: NodeValue::Null,
                },
            })
        }
    }
}

/// `snapshot:` (saving the runner as a custom image): an image name, or a mapping with
/// `image-name`, `if` and `version`.
fn read_snapshot(reader: &mut Reader, node: &Node) -> Option<Snapshot> {
    let NodeValue::Map(entries) = &node.value else {
        let image_name = reader.non_empty_string(node, "`snapshot`")?;
        return Some(Snapshot {
            image_name,
            condition: None,
            version: None,
        });
    };
    let mut image_name = None;
    let mut condition = None;
    let mut version = None;
    for (key, value) in entries {
        let Some(key) = reader.key(key) else { continue };
        match key.value.as_str() {
            "image-name" => image_name = reader.non_empty_string(value, "`image-name`"),
            "version" => version = reader.non_empty_string(value, "snapshot `version`"),
            "if" => condition = read_condition(reader, value),
            _ => reader.unknown_key(&key, "`snapshot`", &["image-name", "if", "version"]),
        }
    }
    let Some(image_name) = image_name else {
        reader.error(node.pos, "`snapshot` needs an `image-name`");
        return None;
    };
    Some(Snapshot {
        image_name,
        condition,
        version,
    })
}

/// `credentials:` of a container: `username` and `password`, both required.
fn read_credentials(reader: &mut Reader, node: &Node, what: &str) {
    // `credentials: ${{ ... }}` is evaluated when the job starts.
    if node.as_str().is_some_and(has_expression) {
        return;
    }
    let place = format!("{what} `credentials`");
    let pairs = reader.string_map(node, &place);
    for (key, _) in &pairs {
        if key.value != "username" && key.value != "password" {
            reader.unknown_key(key, &place, &["username", "password"]);
        }
    }
    let has = |name: &str| pairs.iter().any(|(key, _)| key.value == name);
    if !has("username") || !has("password") {
        reader.error(
            node.pos,
            format!("{place} needs both `username` and `password`"),
        );
    }
}

/// A runner group name; a path-like name must target one group with GitHub's prefixes.
fn read_runner_group(reader: &mut Reader, node: &Node) -> Option<Spanned<String>> {
    let group = reader.non_empty_string(node, "`runs-on.group`")?;
    // `PREFIX/NAME` targets one group of the organization or the enterprise; GitHub accepts the
    // short prefixes too, and a name with more than one `/` is ambiguous.
    let value = group.value.as_str();
    let well_formed = match value.split_once('/') {
        None => true,
        Some((prefix, name)) => {
            ["organization", "enterprise", "org", "ent"].contains(&prefix) && !name.contains('/')
        }
    };
    if !well_formed && !has_expression(value) {
        reader.error(
            group.pos,
            format!(
                "invalid runner group name \"{value}\"; use the prefix `organization/` or `enterprise/` to target a single runner group"
            ),
        );
        return None;
    }
    Some(group)
}

fn read_services(reader: &mut Reader, node: &Node) -> Vec<(Spanned<String>, Container)> {
    // `services: ${{ fromJSON(...) }}` is evaluated when the job starts.
    if node.as_str().is_some_and(has_expression) {
        return Vec::new();
    }
    let Some(entries) = reader.map(node, "`services`") else {
        return Vec::new();
    };
    let mut services = Vec::new();
    for (key, value) in entries {
        let Some(name) = reader.key(key) else {
            continue;
        };
        let what = format!("service \"{}\"", name.value);
        if let Some(container) = read_container(reader, value, &what) {
            services.push((name, container));
        }
    }
    reader.check_keys_unique_ignoring_case(services.iter().map(|(name, _)| name), "`services`");
    services
}

/// `uses:` of a job: `./.github/workflows/x.yml` or `owner/repo/.github/workflows/x.yml@ref`.
fn read_workflow_ref(reader: &mut Reader, node: &Node) -> Option<Spanned<String>> {
    let text = reader.non_empty_string(node, "job `uses`")?;
    // An expression here is evaluated when the run is created; its format is checked then.
    if has_expression(&text.value) {
        return Some(text);
    }
    // GitHub resolves `./path` and `owner/repo/path@ref` to a YAML file. A reference gantry
    // cannot resolve is reported when the run is created, where it can say what was looked up.
    let value = text.value.as_str();
    let path = value.split('@').next().unwrap_or_default();
    let is_yaml = path.ends_with(".yml") || path.ends_with(".yaml");
    if !is_yaml {
        reader.error(
            text.pos,
            format!(
                "invalid reusable workflow reference \"{value}\"; expected ./.github/workflows/FILE.yml or OWNER/REPO/.github/workflows/FILE.yml@REF"
            ),
        );
        return None;
    }
    Some(text)
}

fn read_with(reader: &mut Reader, node: &Node) -> Vec<(Spanned<String>, Node<'static>)> {
    let Some(entries) = reader.map_or_null(node, "`with`") else {
        return Vec::new();
    };
    let with: Vec<_> = entries
        .iter()
        .filter_map(|(key, value)| Some((reader.key(key)?, value.to_owned_node())))
        .collect();
    reader.check_keys_unique_ignoring_case(with.iter().map(|(key, _)| key), "`with`");
    with
}

fn read_job_secrets(reader: &mut Reader, node: &Node) -> Option<JobSecrets> {
    if node.as_str() == Some("inherit") {
        return Some(JobSecrets::Inherit);
    }
    if let NodeValue::String(_) = node.value {
        reader.error(
            node.pos,
            "job `secrets` must be `inherit` or a mapping of secret names to values",
        );
        return None;
    }
    Some(JobSecrets::Map(reader.string_map(node, "job `secrets`")))
}
