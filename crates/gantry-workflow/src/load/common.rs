//! Readers for keys that appear at both workflow and job level: `env`, `defaults`,
//! `permissions` and `concurrency`.

use crate::load::reader::Reader;
use crate::model::{Concurrency, Defaults, EnvMap, PERMISSION_SCOPES, Permissions, Spanned};
use crate::yaml::{Node, NodeValue};

/// Reads an `env:` mapping.
pub fn read_env(reader: &mut Reader, node: &Node) -> EnvMap {
    // An `env:` with no value is an error on GitHub (unlike `with:`), so it is one here.
    if matches!(node.value, NodeValue::Null) {
        reader.error(
            node.pos,
            "`env` must be a mapping or an expression, found null",
        );
        return EnvMap::new();
    }
    reader.string_map(node, "`env`")
}

/// Reads `defaults:` (only `run:` with `shell` and `working-directory` exists).
pub fn read_defaults(reader: &mut Reader, node: &Node) -> Option<Defaults> {
    let entries = reader.map(node, "`defaults`")?;
    let mut defaults = Defaults::default();
    for (key, value) in entries {
        let Some(key) = reader.key(key) else { continue };
        if key.value != "run" {
            reader.unknown_key(&key, "`defaults`", &["run"]);
            continue;
        }
        let Some(run) = reader.map(value, "`defaults.run`") else {
            continue;
        };
        for (run_key, run_value) in run {
            let Some(run_key) = reader.key(run_key) else {
                continue;
            };
            match run_key.value.as_str() {
                "shell" => defaults.shell = reader.non_empty_string(run_value, "default `shell`"),
                "working-directory" => {
                    defaults.working_directory =
                        reader.string(run_value, "default `working-directory`")
                }
                _ => {
                    reader.unknown_key(&run_key, "`defaults.run`", &["shell", "working-directory"])
                }
            }
        }
    }
    Some(defaults)
}

/// Reads `permissions:`: `read-all`, `write-all`, `{}` or per-scope levels.
pub fn read_permissions(reader: &mut Reader, node: &Node) -> Option<Permissions> {
    match &node.value {
        NodeValue::String(text) => match text.as_ref() {
            "read-all" | "write-all" => {
                Some(Permissions::All(Spanned::new(text.to_string(), node.pos)))
            }
            _ => {
                reader.error(
                    node.pos,
                    format!("invalid `permissions` \"{text}\"; expected read-all, write-all or a mapping of scopes"),
                );
                None
            }
        },
        NodeValue::Map(entries) if entries.is_empty() => Some(Permissions::None),
        NodeValue::Map(entries) => {
            let mut scopes = Vec::new();
            for (key, value) in entries {
                let Some(key) = reader.key(key) else { continue };
                if !PERMISSION_SCOPES.contains(&key.value.as_str()) {
                    reader.unknown_key(&key, "`permissions`", PERMISSION_SCOPES);
                    continue;
                }
                let Some(level) = reader.string(value, "permission level") else {
                    continue;
                };
                // `id-token` and `copilot-requests` have no `read` level on GitHub; `models` has no `write`.
                let allowed: &[&str] = match key.value.as_str() {
                    "id-token" | "copilot-requests" => &["write", "none"],
                    "models" => &["read", "none"],
                    _ => &["read", "write", "none"],
                };
                if !allowed.contains(&level.value.as_str()) {
                    reader.error(
                        level.pos,
                        format!(
                            "invalid permission level \"{}\" for \"{}\"; expected one of: {}",
                            level.value,
                            key.value,
                            allowed.join(", ")
                        ),
                    );
                    continue;
                }
                scopes.push((key, level));
            }
            Some(Permissions::Scopes(scopes))
        }
        _ => {
            reader.error(
                node.pos,
                format!(
                    "`permissions` must be a string or a mapping, found {}",
                    node.type_name()
                ),
            );
            None
        }
    }
}

/// Reads `concurrency:`: a group name, or a mapping with `group` and `cancel-in-progress`.
pub fn read_concurrency(reader: &mut Reader, node: &Node) -> Option<Concurrency> {
    if let NodeValue::Map(entries) = &node.value {
        let mut group = None;
        let mut cancel_in_progress = None;
        for (key, value) in entries {
            let Some(key) = reader.key(key) else { continue };
            match key.value.as_str() {
                "group" => group = reader.non_empty_string(value, "concurrency `group`"),
                "cancel-in-progress" => {
                    cancel_in_progress = reader.bool_or_expr(value, "`cancel-in-progress`")
                }
                "queue" => {
                    reader.string(value, "concurrency `queue`");
                }
                _ => reader.unknown_key(
                    &key,
                    "`concurrency`",
                    &["group", "cancel-in-progress", "queue"],
                ),
            }
        }
        let Some(group) = group else {
            reader.error(node.pos, "`concurrency` needs a `group`");
            return None;
        };
        return Some(Concurrency {
            group,
            cancel_in_progress,
        });
    }
    let group = reader.non_empty_string(node, "`concurrency`")?;
    Some(Concurrency {
        group,
        cancel_in_progress: None,
    })
}
