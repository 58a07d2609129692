//! Reading `steps:`: each step either runs a script or uses an action.

use crate::load::common::read_env;
use crate::load::job::read_condition;
use crate::load::reader::Reader;
use crate::model::{Spanned, Step, StepAction};
use crate::yaml::{Node, NodeValue};

const STEP_KEYS: &[&str] = &[
    "id",
    "name",
    "if",
    "run",
    "shell",
    "working-directory",
    "uses",
    "with",
    "env",
    "continue-on-error",
    "timeout-minutes",
    "background",
];

/// Reads the `steps:` sequence.
pub fn read_steps(reader: &mut Reader, node: &Node) -> Vec<Step> {
    let NodeValue::Seq(items) = &node.value else {
        reader.error(
            node.pos,
            format!("`steps` must be a sequence, found {}", node.type_name()),
        );
        return Vec::new();
    };
    if items.is_empty() {
        reader.error(node.pos, "`steps` must contain at least one step");
    }
    items
        .iter()
        .filter_map(|item| read_step(reader, item))
        .collect()
}

fn read_step(reader: &mut Reader, node: &Node) -> Option<Step> {
    let entries = reader.map(node, "a step")?;
    let mut step = Step {
        pos: node.pos,
        id: None,
        name: None,
        condition: None,
        action: StepAction::Run {
            script: Spanned::new(String::new(), node.pos),
            shell: None,
            working_directory: None,
        },
        env: Default::default(),
        continue_on_error: None,
        timeout_minutes: None,
    };
    let mut run = None;
    let mut shell = None;
    let mut working_directory = None;
    let mut uses = None;
    let mut with = Vec::new();
    let mut with_pos = None;
    for (key, value) in entries {
        let Some(key) = reader.key(key) else { continue };
        match key.value.as_str() {
            "id" => step.id = reader.literal_string(value, "step `id`"),
            "name" => step.name = reader.string(value, "step `name`"),
            "if" => step.condition = read_condition(reader, value),
            "run" => run = reader.string(value, "`run`"),
            "shell" => shell = reader.non_empty_string(value, "`shell`"),
            "working-directory" => working_directory = reader.string(value, "`working-directory`"),
            "uses" => uses = reader.non_empty_string(value, "step `uses`"),
            "with" => {
                with_pos = Some(key.pos);
                with = reader.string_map(value, "step `with`");
            }
            "env" => step.env = read_env(reader, value),
            "continue-on-error" => {
                step.continue_on_error = reader.bool_or_expr(value, "`continue-on-error`")
            }
            "timeout-minutes" => {
                step.timeout_minutes = reader.number_or_expr(value, "`timeout-minutes`")
            }
            "background" => {
                reader.bool_or_expr(value, "`background`");
            }
            _ => reader.unknown_key(&key, "a step", STEP_KEYS),
        }
    }
    step.action = match (run, uses) {
        (Some(script), None) => {
            if let Some(pos) = with_pos {
                reader.error(pos, "`with` can only be used with `uses`, not with `run`");
            }
            StepAction::Run {
                script,
                shell,
                working_directory,
            }
        }
        (None, Some(action)) => {
            if let Some(shell) = shell {
                reader.error(
                    shell.pos,
                    "`shell` can only be used with `run`, not with `uses`",
                );
            }
            if let Some(directory) = working_directory {
                reader.error(
                    directory.pos,
                    "`working-directory` can only be used with `run`, not with `uses`",
                );
            }
            check_action_reference(reader, &action);
            StepAction::Uses { action, with }
        }
        (Some(_), Some(action)) => {
            reader.error(action.pos, "a step cannot have both `run` and `uses`");
            return None;
        }
        (None, None) => {
            reader.error(node.pos, "a step needs either `run` or `uses`");
            return None;
        }
    };
    Some(step)
}

/// GitHub's accepted forms: `./local/path`, `docker://image`, `owner/repo[/path]@ref`.
fn check_action_reference(reader: &mut Reader, action: &Spanned<String>) {
    let value = action.value.as_str();
    // `$/path` appears in real workflows that run on GitHub (vite, ruff); it is accepted as a
    // repository-relative path like `./path`.
    if value.starts_with("./") || value.starts_with("$/") || value.starts_with("docker://") {
        return;
    }
    let valid = value.split_once('@').is_some_and(|(path, reference)| {
        let mut parts = path.split('/');
        let owner = parts.next().unwrap_or_default();
        let repo = parts.next().unwrap_or_default();
        !owner.is_empty() && !repo.is_empty() && !reference.is_empty()
    });
    if !valid {
        reader.error(
            action.pos,
            format!(
                "invalid action reference \"{value}\"; expected OWNER/REPO[/PATH]@REF, ./PATH or docker://IMAGE"
            ),
        );
    }
}
