//! Actions a `uses:` step can name: local composite actions (`uses: ./path`, read from
//! `action.yml` or `action.yaml`) and the built-in `actions/checkout`, which copies the run's
//! commit into the workspace from a [`SourceProvider`]. Anything else is refused with a
//! message naming what is supported.

use std::path::{Path, PathBuf};

use gantry_proto::v1::StepPayload;
use indexmap::IndexMap;

/// What the step runner supports, for error messages.
pub const SUPPORTED: &str = "gantry runs `run` steps, local composite actions (`uses: ./path`) and the built-in `actions/checkout`";

/// How deep composite actions may nest (GitHub allows 9 levels).
pub const MAX_COMPOSITE_DEPTH: usize = 9;

/// What kind of action a `uses:` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActionRef {
    /// `./path` in the workspace.
    Local(String),
    /// `actions/checkout@ref`.
    Checkout,
    /// `docker://image`.
    Docker(String),
    /// Any other `owner/repo[/path]@ref`.
    Remote(String),
}

impl ActionRef {
    /// Classifies a `uses:` value.
    pub fn parse(uses: &str) -> ActionRef {
        let uses = uses.trim();
        if uses == "." || uses.starts_with("./") {
            ActionRef::Local(uses.to_owned())
        } else if let Some(image) = uses.strip_prefix("docker://") {
            ActionRef::Docker(image.to_owned())
        } else if uses
            .split('@')
            .next()
            .is_some_and(|name| name.eq_ignore_ascii_case("actions/checkout"))
            && uses.contains('@')
        {
            ActionRef::Checkout
        } else {
            ActionRef::Remote(uses.to_owned())
        }
    }
}

/// An action's `inputs.<id>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ActionInput {
    /// `default:` (a template).
    pub default: Option<String>,
    /// `required:`.
    pub required: bool,
}

/// What an action runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActionRuns {
    /// `using: composite` with its steps.
    Composite(Vec<StepPayload>),
    /// `using: node*`, `docker` or anything else: named for the error message.
    Unsupported(String),
}

/// A parsed `action.yml`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionManifest {
    /// `name:`.
    pub name: Option<String>,
    /// `inputs:`.
    pub inputs: IndexMap<String, ActionInput>,
    /// `outputs.<id>.value` templates.
    pub outputs: IndexMap<String, String>,
    /// `runs:`.
    pub runs: ActionRuns,
}

/// Why an action could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    /// No `action.yml` / `action.yaml` in the directory.
    #[error("can't find `action.yml` or `action.yaml` for action `{0}`")]
    NotFound(String),
    /// The file could not be read.
    #[error("failed to read `{path}`: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not a valid action.
    #[error("invalid action `{action}`: {message}")]
    Invalid {
        /// The `uses:` value.
        action: String,
        /// What is wrong.
        message: String,
    },
}

/// Reads the action in `dir` (named `uses` in errors).
pub fn load_action(dir: &Path, uses: &str) -> Result<ActionManifest, ActionError> {
    let path = ["action.yml", "action.yaml"]
        .iter()
        .map(|name| dir.join(name))
        .find(|path| path.is_file())
        .ok_or_else(|| ActionError::NotFound(uses.to_owned()))?;
    let text = std::fs::read_to_string(&path).map_err(|source| ActionError::Io {
        path: path.clone(),
        source,
    })?;
    parse_action(&text, uses)
}

/// Parses an `action.yml` text.
pub fn parse_action(text: &str, uses: &str) -> Result<ActionManifest, ActionError> {
    let invalid = |message: String| ActionError::Invalid {
        action: uses.to_owned(),
        message,
    };
    let document: serde_json::Value =
        serde_saphyr::from_str(text).map_err(|error| invalid(error.to_string()))?;
    let Some(root) = document.as_object() else {
        return Err(invalid("the file is not a mapping".to_owned()));
    };
    let mut inputs = IndexMap::new();
    if let Some(map) = root.get("inputs").and_then(|v| v.as_object()) {
        for (name, spec) in map {
            inputs.insert(
                name.clone(),
                ActionInput {
                    default: spec.get("default").filter(|v| !v.is_null()).map(scalar),
                    required: spec.get("required").is_some_and(truthy),
                },
            );
        }
    }
    let mut outputs = IndexMap::new();
    if let Some(map) = root.get("outputs").and_then(|v| v.as_object()) {
        for (name, spec) in map {
            let value = spec.get("value").map(scalar).unwrap_or_default();
            outputs.insert(name.clone(), value);
        }
    }
    let runs = root
        .get("runs")
        .and_then(|v| v.as_object())
        .ok_or_else(|| invalid("`runs` is missing".to_owned()))?;
    let using = runs.get("using").map(scalar).unwrap_or_default();
    let runs = if using.eq_ignore_ascii_case("composite") {
        let steps = runs
            .get("steps")
            .and_then(|v| v.as_array())
            .ok_or_else(|| invalid("a composite action needs `runs.steps`".to_owned()))?;
        ActionRuns::Composite(
            steps
                .iter()
                .map(|step| composite_step(step).map_err(&invalid))
                .collect::<Result<_, _>>()?,
        )
    } else if using.is_empty() {
        return Err(invalid("`runs.using` is missing".to_owned()));
    } else {
        ActionRuns::Unsupported(using)
    };
    Ok(ActionManifest {
        name: root.get("name").map(scalar),
        inputs,
        outputs,
        runs,
    })
}

fn composite_step(step: &serde_json::Value) -> Result<StepPayload, String> {
    let Some(map) = step.as_object() else {
        return Err("a step is not a mapping".to_owned());
    };
    let text = |key: &str| map.get(key).filter(|v| !v.is_null()).map(scalar);
    let pairs = |key: &str| -> IndexMap<String, String> {
        map.get(key)
            .and_then(|v| v.as_object())
            .map(|object| {
                object
                    .iter()
                    .map(|(name, value)| (name.clone(), scalar(value)))
                    .collect()
            })
            .unwrap_or_default()
    };
    let payload = StepPayload {
        id: text("id"),
        name: text("name"),
        condition: text("if"),
        run: text("run"),
        shell: text("shell"),
        working_directory: text("working-directory"),
        uses: text("uses"),
        with: pairs("with"),
        env: pairs("env"),
        continue_on_error: text("continue-on-error"),
        timeout_minutes: text("timeout-minutes"),
    };
    match (&payload.run, &payload.uses) {
        (Some(_), Some(_)) => Err("a step cannot have both `run` and `uses`".to_owned()),
        (None, None) => Err("a step needs `run` or `uses`".to_owned()),
        _ => Ok(payload),
    }
}

/// A YAML scalar as the string GitHub passes on.
fn scalar(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::Null => String::new(),
        serde_json::Value::String(text) => text.clone(),
        serde_json::Value::Bool(b) => b.to_string(),
        serde_json::Value::Number(n) => n.to_string(),
        other => other.to_string(),
    }
}

fn truthy(value: &serde_json::Value) -> bool {
    match value {
        serde_json::Value::Bool(b) => *b,
        serde_json::Value::String(text) => text.eq_ignore_ascii_case("true"),
        _ => false,
    }
}

/// Where `actions/checkout` gets the run's commit from. The server-backed provider fetches
/// it from the server; [`LocalDirectorySource`] copies a directory.
pub trait SourceProvider: Send + Sync {
    /// Puts the tree of `sha` of `repository` into `destination` (a host directory that
    /// exists).
    fn checkout(&self, repository: &str, sha: &str, destination: &Path) -> Result<(), SourceError>;
}

/// Why a checkout failed.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// A file operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done, naming the path.
        what: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The provider cannot serve this request.
    #[error("{0}")]
    Unavailable(String),
}

/// A [`SourceProvider`] that copies one local directory (for local runs and tests; it
/// ignores the repository and commit it is asked for).
#[derive(Debug, Clone)]
pub struct LocalDirectorySource {
    root: PathBuf,
}

impl LocalDirectorySource {
    /// Copies `root`'s tree on checkout.
    pub fn new(root: impl Into<PathBuf>) -> LocalDirectorySource {
        LocalDirectorySource { root: root.into() }
    }
}

impl SourceProvider for LocalDirectorySource {
    fn checkout(
        &self,
        _repository: &str,
        _sha: &str,
        destination: &Path,
    ) -> Result<(), SourceError> {
        copy_tree(&self.root, destination)
    }
}

/// Copies the files and directories under `from` into `to` (symbolic links are copied as
/// links). A `to` inside `from` is skipped so the copy cannot feed on itself.
pub fn copy_tree(from: &Path, to: &Path) -> Result<(), SourceError> {
    let io = |what: String| move |source| SourceError::Io { what, source };
    let skip = to.canonicalize().ok();
    let mut walker = walkdir::WalkDir::new(from).min_depth(1).into_iter();
    while let Some(entry) = walker.next() {
        let entry = entry.map_err(|error| SourceError::Io {
            what: format!("failed to read `{}`", from.display()),
            source: error.into(),
        })?;
        if skip
            .as_deref()
            .is_some_and(|skip| entry.path().canonicalize().ok().as_deref() == Some(skip))
        {
            walker.skip_current_dir();
            continue;
        }
        let relative = entry.path().strip_prefix(from).unwrap_or(entry.path());
        let target = to.join(relative);
        let kind = entry.file_type();
        if kind.is_dir() {
            std::fs::create_dir_all(&target)
                .map_err(io(format!("failed to create `{}`", target.display())))?;
        } else if kind.is_symlink() {
            let link = std::fs::read_link(entry.path())
                .map_err(io(format!("failed to read `{}`", entry.path().display())))?;
            let _ = std::fs::remove_file(&target);
            std::os::unix::fs::symlink(&link, &target)
                .map_err(io(format!("failed to create `{}`", target.display())))?;
        } else {
            std::fs::copy(entry.path(), &target)
                .map_err(io(format!("failed to copy to `{}`", target.display())))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_are_classified() {
        assert_eq!(ActionRef::parse("./a"), ActionRef::Local("./a".into()));
        assert_eq!(ActionRef::parse("actions/checkout@v4"), ActionRef::Checkout);
        assert_eq!(
            ActionRef::parse("Actions/Checkout@main"),
            ActionRef::Checkout
        );
        assert_eq!(
            ActionRef::parse("docker://alpine"),
            ActionRef::Docker("alpine".into())
        );
        assert_eq!(
            ActionRef::parse("actions/setup-node@v4"),
            ActionRef::Remote("actions/setup-node@v4".into())
        );
    }

    #[test]
    fn a_composite_manifest_parses() {
        let text = r#"
name: demo
inputs:
  who:
    required: true
    default: world
  n:
    default: 3
outputs:
  said:
    value: ${{ steps.say.outputs.text }}
runs:
  using: composite
  steps:
    - id: say
      run: echo "text=hi ${{ inputs.who }}" >> $GITHUB_OUTPUT
      shell: bash
    - uses: ./other
      with:
        x: 1
"#;
        let action = parse_action(text, "./demo").unwrap();
        assert_eq!(action.inputs["who"].default.as_deref(), Some("world"));
        assert!(action.inputs["who"].required);
        assert_eq!(action.inputs["n"].default.as_deref(), Some("3"));
        assert_eq!(action.outputs["said"], "${{ steps.say.outputs.text }}");
        let ActionRuns::Composite(steps) = action.runs else {
            panic!("not composite")
        };
        assert_eq!(steps[0].shell.as_deref(), Some("bash"));
        assert_eq!(steps[1].with["x"], "1");
        let node = parse_action("runs:\n  using: node20\n  main: index.js\n", "./n").unwrap();
        assert_eq!(node.runs, ActionRuns::Unsupported("node20".into()));
        assert!(parse_action("runs: {}\n", "./x").is_err());
    }
}
