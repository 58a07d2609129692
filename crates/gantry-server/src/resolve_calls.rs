//! Following a workflow's calls of reusable workflows to their files, nested calls included:
//! each call's key ([`crate::remote_calls::call_key`]) is read once, through a
//! [`CallReader`] (the event's commit for `./` calls, the called repository's git source for
//! `OWNER/REPO/PATH@REF`), loaded and added to the run's [`CalledWorkflows`]; every call that
//! cannot be read, and every called file that does not load, is a [`CallProblem`] of the
//! caller.
//!
//! Files already given (the API's `called_workflows`) are not read again, but their own calls
//! are followed, so a given file may call a repository the server reads.

use std::collections::{BTreeSet, VecDeque};

use gantry_workflow::diag::{Diagnostic, Diagnostics};
use gantry_workflow::reusable::WorkflowSource;
use gantry_workflow::yaml::Pos;
use gantry_workflow::{Limits, Workflow};
use gix::ObjectId;

use crate::called::CalledWorkflows;
use crate::git::{GitError, GitRepo};
use crate::remote_calls::RemoteReader;

/// The most workflow files one run's calls may read (GitHub's nesting limit is 10 levels;
/// several calls per level are fine).
pub(crate) const MAX_CALLED_FILES: usize = 50;

/// What a reader found for a call's key.
pub(crate) enum CallRead {
    /// The file: its blob and its text (`Err` when it is not UTF-8 or too large).
    Found {
        blob: ObjectId,
        source: Result<String, String>,
    },
    /// This reader does not read such calls (they must be given).
    NotHere,
    /// It cannot be read, and why.
    Refused(String),
}

/// Reads called files by key.
pub(crate) trait CallReader {
    /// The file `key` names.
    fn read(&self, key: &str) -> Result<CallRead, GitError>;
}

/// Reads `./` calls from the caller's repository at a commit (when `local` is set) and calls
/// of other repositories through `remote`.
pub(crate) struct GitCalls<'a, 'r, V> {
    /// The caller's repository and commit; `None` when local files must be given.
    pub(crate) local: Option<(&'a GitRepo, &'a str)>,
    /// Other repositories.
    pub(crate) remote: &'a RemoteReader<'r, V>,
}

impl<V: Clone> CallReader for GitCalls<'_, '_, V> {
    fn read(&self, key: &str) -> Result<CallRead, GitError> {
        let Some(path) = key.strip_prefix("./") else {
            return Ok(match self.remote.read(key)? {
                Ok(file) => CallRead::Found {
                    blob: file.blob,
                    source: file.source,
                },
                Err(refused) => CallRead::Refused(refused),
            });
        };
        let Some((repo, sha)) = self.local else {
            return Ok(CallRead::NotHere);
        };
        let Some(blob) = repo.file_blob(sha, path)? else {
            return Ok(CallRead::Refused(format!(
                "the called workflow `{key}` does not exist at commit {sha}"
            )));
        };
        Ok(CallRead::Found {
            blob,
            source: repo.workflow_text(blob, path)?,
        })
    }
}

/// A call that cannot be followed, or a problem of a called file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CallProblem {
    /// The file at fault: `None` for the run's own workflow, else a called file's key.
    pub(crate) file: Option<String>,
    /// Where in that file; `None` when the file as a whole is at fault (not text).
    pub(crate) pos: Option<Pos>,
    /// The `uses:` in the run's own workflow the problem was reached from.
    pub(crate) root: Pos,
    /// What is wrong.
    pub(crate) message: String,
}

impl CallProblem {
    /// `file:line:col: message`, the run's own workflow being `caller_path` and a local called
    /// file its path in the repository.
    pub(crate) fn located(&self, caller_path: &str) -> String {
        let file = match &self.file {
            None => caller_path,
            Some(key) => key.strip_prefix("./").unwrap_or(key),
        };
        match self.pos {
            Some(pos) => format!("{file}:{pos}: {}", self.message),
            None => format!("{file}: {}", self.message),
        }
    }

    /// A diagnostic of the run's own workflow: at the call itself, or at the call it was
    /// reached from, naming the file and position inside it.
    pub(crate) fn diagnostic(&self) -> Diagnostic {
        match (&self.file, self.pos) {
            (None, Some(pos)) => Diagnostic::new(pos, self.message.clone()),
            (Some(file), Some(pos)) => {
                Diagnostic::new(self.root, format!("in {file} at {pos}: {}", self.message))
            }
            (Some(file), None) => {
                Diagnostic::new(self.root, format!("in {file}: {}", self.message))
            }
            (None, None) => Diagnostic::new(self.root, self.message.clone()),
        }
    }
}

/// Called files looked up, by key: the blob found, or why none could be read.
pub(crate) type Reads = Vec<(String, Result<ObjectId, String>)>;

/// What following the calls found besides the files.
#[derive(Debug, Default)]
pub(crate) struct Resolution {
    /// Every problem, in the order met.
    pub(crate) problems: Vec<CallProblem>,
    /// Every key read, with the blob found or why it could not be read: what a cached
    /// check of the caller depends on.
    pub(crate) reads: Reads,
}

/// Follows the calls of `workflow` (and of the files they reach) into `called`, reading the
/// keys not there yet through `reader`.
pub(crate) fn resolve_calls(
    workflow: &Workflow,
    called: &mut CalledWorkflows,
    reader: &dyn CallReader,
) -> Result<Resolution, GitError> {
    let mut resolution = Resolution::default();
    let mut queue: VecDeque<Call> = calls_of(workflow, None, None).collect();
    let mut seen = BTreeSet::new();
    while let Some(call) = queue.pop_front() {
        if !seen.insert(call.key.clone()) {
            continue;
        }
        let problem = |message: String| CallProblem {
            file: call.from.clone(),
            pos: Some(call.pos),
            root: call.root,
            message,
        };
        if !called.contains(&call.key) {
            if called.len() >= MAX_CALLED_FILES {
                let message =
                    format!("more than {MAX_CALLED_FILES} reusable workflow files are called");
                resolution.problems.push(problem(message));
                break;
            }
            let (blob, source) = match reader.read(&call.key)? {
                CallRead::NotHere => continue,
                CallRead::Refused(message) => {
                    resolution
                        .reads
                        .push((call.key.clone(), Err(message.clone())));
                    resolution.problems.push(problem(message));
                    continue;
                }
                CallRead::Found { blob, source } => (blob, source),
            };
            resolution.reads.push((call.key.clone(), Ok(blob)));
            let in_file = |pos: Option<Pos>, message: String| CallProblem {
                file: Some(call.key.clone()),
                pos,
                root: call.root,
                message,
            };
            let text = match source {
                Ok(text) => text,
                Err(message) => {
                    resolution.problems.push(in_file(None, message));
                    continue;
                }
            };
            match gantry_workflow::load(&text, &Limits::default()) {
                Ok(callee) => called.insert(call.key.clone(), text, callee),
                Err(diagnostics) => {
                    let Diagnostics(diagnostics) = diagnostics;
                    resolution.problems.extend(
                        diagnostics
                            .into_iter()
                            .map(|diagnostic| in_file(Some(diagnostic.pos), diagnostic.message)),
                    );
                    continue;
                }
            }
        }
        if let Some(callee) = called.workflow(&call.key) {
            queue.extend(calls_of(callee, Some(&call.key), Some(call.root)));
        }
    }
    Ok(resolution)
}

/// One call to follow.
struct Call {
    /// The called file's key.
    key: String,
    /// The file the call is written in (`None`: the run's own workflow).
    from: Option<String>,
    /// Where in that file.
    pos: Pos,
    /// The `uses:` of the run's own workflow it was reached from.
    root: Pos,
}

/// The calls written in `workflow`, keyed `from` (a called file's calls were keyed when it was
/// added to [`CalledWorkflows`]).
fn calls_of<'w>(
    workflow: &'w Workflow,
    from: Option<&'w str>,
    root: Option<Pos>,
) -> impl Iterator<Item = Call> + 'w {
    workflow
        .jobs
        .iter()
        .filter_map(|job| job.uses.as_ref())
        .map(move |uses| Call {
            key: uses.value.clone(),
            from: from.map(str::to_owned),
            pos: uses.pos,
            root: root.unwrap_or(uses.pos),
        })
}
