//! Reading the repositories runs are triggered from, with gitoxide: refs to commits, the
//! workflow files of a commit, merge bases and the files two commits differ in.
//!
//! Every function is blocking (callers use `spawn_blocking`). Triggers open a repository
//! through [`crate::git_cache::GitCache`], which keeps it open per blocking thread: refs are
//! read from disk on every lookup and the object database looks for new packs when an object
//! is missing, so pushes that land between events are seen without reopening. Changed files come from a walk of the two trees of our own rather than gix's
//! `blob-diff` feature, which pulls in attributes, filters and pathspecs we do not need (path
//! filters only ask which paths differ).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use gix::ObjectId;
use gix::bstr::ByteSlice;

/// Where workflow files live in a commit.
pub const WORKFLOWS_DIR: &str = ".github/workflows";
/// The largest workflow file read; a larger one is reported as invalid rather than loaded.
pub const MAX_WORKFLOW_BYTES: usize = 1024 * 1024;
/// Beyond this many changed files the list is treated as unknown, so path filters let the
/// workflow run (what GitHub does when its diff gives up).
pub const MAX_CHANGED_FILES: usize = 3000;

/// Why git data could not be read.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    /// The repository could not be opened.
    #[error("cannot open git repository `{path}`: {message}")]
    Open {
        /// The path.
        path: PathBuf,
        /// gix's error.
        message: String,
    },
    /// A ref or commit the event names is not in the repository.
    #[error("{what} not found in the repository")]
    Missing {
        /// The ref or commit.
        what: String,
    },
    /// An object could not be read or decoded.
    #[error("cannot read {what}: {message}")]
    Read {
        /// The object.
        what: String,
        /// gix's error.
        message: String,
    },
}

fn read_error(what: impl Into<String>) -> impl FnOnce(gix::Error) -> GitError {
    let what = what.into();
    move |error| GitError::Read {
        what,
        message: error.to_string(),
    }
}

/// A workflow file found at a commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkflowFile {
    /// `.github/workflows/<name>`.
    pub path: String,
    /// Its text; `Err` when it is not UTF-8 or too large.
    pub source: Result<String, String>,
}

/// A repository opened for one event's reads (a clone is another cheap handle of it).
#[derive(Clone)]
pub struct GitRepo {
    repo: gix::Repository,
}

/// The workflow files of a commit by blob id, without their contents, and the trees a
/// cached check of them depends on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkflowListing {
    /// The commit's root tree.
    pub root: ObjectId,
    /// The `.github/workflows` tree; `None` when the commit has none.
    pub dir: Option<ObjectId>,
    /// `(path, blob id)` of every `*.yml`/`*.yaml` directly in it, sorted by path.
    pub files: Vec<(String, ObjectId)>,
}

impl GitRepo {
    /// Opens the repository at `path` (bare or not).
    pub fn open(path: &Path) -> Result<GitRepo, GitError> {
        let repo = gix::open(path).map_err(|error| GitError::Open {
            path: path.to_owned(),
            message: error.to_string(),
        })?;
        Ok(GitRepo { repo })
    }

    /// The commit a full ref (`refs/heads/main`), a short branch or tag name, or a 40-hex
    /// commit id names; `None` when the repository has no such ref.
    pub fn resolve(&self, name: &str) -> Result<Option<String>, GitError> {
        if name.len() == 40 && name.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(Some(name.to_ascii_lowercase()));
        }
        let candidates = if name.starts_with("refs/") {
            vec![name.to_owned()]
        } else {
            vec![format!("refs/heads/{name}"), format!("refs/tags/{name}")]
        };
        for candidate in candidates {
            let found = self
                .repo
                .try_find_reference(candidate.as_str())
                .map_err(read_error(format!("ref `{candidate}`")))?;
            if let Some(mut reference) = found {
                // Tags may be annotated: peel through the tag object to the commit.
                let id = reference
                    .peel_to_commit()
                    .map_err(read_error(format!("ref `{candidate}`")))?
                    .id;
                return Ok(Some(id.to_string()));
            }
        }
        Ok(None)
    }

    /// The commit `sha` names: itself, or the commit an annotated tag object points to (a
    /// tag push reports the tag object).
    pub fn peel_to_commit(&self, sha: &str) -> Result<String, GitError> {
        let missing = || GitError::Missing {
            what: format!("commit {sha}"),
        };
        let object = self
            .repo
            .find_object(parse_id(sha)?)
            .map_err(|_| missing())?;
        let commit = object.peel_to_commit().map_err(|_| missing())?;
        Ok(commit.id.to_string())
    }

    fn commit_tree(&self, sha: &str) -> Result<ObjectId, GitError> {
        let id = parse_id(sha)?;
        let commit = self.repo.find_commit(id).map_err(|_| GitError::Missing {
            what: format!("commit {sha}"),
        })?;
        let tree = commit
            .tree_id()
            .map_err(read_error(format!("the tree of commit {sha}")))?;
        Ok(tree.detach())
    }

    /// The workflow files (`*.yml`, `*.yaml` directly under `.github/workflows`) at `sha`,
    /// sorted by path.
    pub fn workflow_files(&self, sha: &str) -> Result<Vec<WorkflowFile>, GitError> {
        let listing = self.workflow_listing(sha)?;
        listing
            .files
            .into_iter()
            .map(|(path, id)| {
                let source = self.blob_text(id, &path)?;
                Ok(WorkflowFile { path, source })
            })
            .collect()
    }

    /// The workflow files at `sha` by blob id, without reading them.
    pub fn workflow_listing(&self, sha: &str) -> Result<WorkflowListing, GitError> {
        let root = self.commit_tree(sha)?;
        let mut listing = WorkflowListing {
            root,
            dir: self.subtree(root, WORKFLOWS_DIR)?,
            files: Vec::new(),
        };
        let Some(dir) = listing.dir else {
            return Ok(listing);
        };
        let tree = self
            .repo
            .find_tree(dir)
            .map_err(read_error(WORKFLOWS_DIR))?;
        for entry in tree.iter() {
            let entry = entry.map_err(read_error(WORKFLOWS_DIR))?;
            let name = entry.filename().to_str_lossy().into_owned();
            let is_yaml = name.ends_with(".yml") || name.ends_with(".yaml");
            if !is_yaml || !entry.mode().is_blob() {
                continue;
            }
            let path = format!("{WORKFLOWS_DIR}/{name}");
            listing.files.push((path, entry.object_id()));
        }
        listing.files.sort();
        Ok(listing)
    }

    /// A workflow file's text by its blob id; `Err` inside when it is not UTF-8 or too large.
    pub fn workflow_text(
        &self,
        id: ObjectId,
        path: &str,
    ) -> Result<Result<String, String>, GitError> {
        self.blob_text(id, path)
    }

    /// The blob id of the file at `path` in commit `sha`, without reading it; `None` when
    /// there is no such file.
    pub fn file_blob(&self, sha: &str, path: &str) -> Result<Option<ObjectId>, GitError> {
        let root = self.commit_tree(sha)?;
        let tree = self.repo.find_tree(root).map_err(read_error(path))?;
        let entry = tree
            .lookup_entry_by_path(path)
            .map_err(read_error(path.to_owned()))?;
        Ok(entry
            .filter(|entry| entry.mode().is_blob())
            .map(|entry| entry.object_id()))
    }

    fn blob_text(&self, id: ObjectId, path: &str) -> Result<Result<String, String>, GitError> {
        let blob = self.repo.find_blob(id).map_err(read_error(path))?;
        if blob.data.len() > MAX_WORKFLOW_BYTES {
            return Ok(Err(format!(
                "the file is larger than {MAX_WORKFLOW_BYTES} bytes"
            )));
        }
        Ok(String::from_utf8(blob.data.clone()).map_err(|_| "the file is not UTF-8".to_owned()))
    }

    fn subtree(&self, root: ObjectId, path: &str) -> Result<Option<ObjectId>, GitError> {
        let tree = self.repo.find_tree(root).map_err(read_error(path))?;
        let entry = tree
            .lookup_entry_by_path(path)
            .map_err(read_error(path.to_owned()))?;
        Ok(entry
            .filter(|entry| entry.mode().is_tree())
            .map(|entry| entry.object_id()))
    }

    /// The best common ancestor of two commits, if they have one.
    pub fn merge_base(&self, one: &str, two: &str) -> Result<Option<String>, GitError> {
        let (a, b) = (parse_id(one)?, parse_id(two)?);
        match self.repo.merge_base(a, b) {
            Ok(Some(id)) => Ok(Some(id.to_string())),
            Ok(None) => Ok(None),
            Err(error) => Err(read_error(format!("the merge base of {one} and {two}"))(
                error,
            )),
        }
    }

    /// The first parent of a commit; `None` for a root commit.
    pub fn first_parent(&self, sha: &str) -> Result<Option<String>, GitError> {
        let commit = self
            .repo
            .find_commit(parse_id(sha)?)
            .map_err(|_| GitError::Missing {
                what: format!("commit {sha}"),
            })?;
        Ok(commit.parent_ids().next().map(|id| id.to_string()))
    }

    /// The paths of files that differ between two commits (added, removed or changed, in
    /// path order); `from: None` compares with an empty tree. `None` when more than
    /// [`MAX_CHANGED_FILES`] differ.
    pub fn changed_files(
        &self,
        from: Option<&str>,
        to: &str,
    ) -> Result<Option<Vec<String>>, GitError> {
        let old = from.map(|sha| self.commit_tree(sha)).transpose()?;
        let new = self.commit_tree(to)?;
        let mut changed = Vec::new();
        let complete = self.diff_trees(old, Some(new), "", &mut changed)?;
        Ok(complete.then_some(changed))
    }

    /// Adds the paths under `prefix` that differ between two trees; false when it stopped at
    /// [`MAX_CHANGED_FILES`]. Subtrees with equal ids are skipped whole, which is what makes
    /// this cheap for typical pushes.
    fn diff_trees(
        &self,
        old: Option<ObjectId>,
        new: Option<ObjectId>,
        prefix: &str,
        changed: &mut Vec<String>,
    ) -> Result<bool, GitError> {
        if old == new {
            return Ok(true);
        }
        let old = self.entries(old, prefix)?;
        let new = self.entries(new, prefix)?;
        let names: std::collections::BTreeSet<&String> = old.keys().chain(new.keys()).collect();
        for name in names {
            let path = if prefix.is_empty() {
                name.clone()
            } else {
                format!("{prefix}/{name}")
            };
            let (before, after) = (old.get(name), new.get(name));
            if before == after {
                continue;
            }
            let tree_of = |side: Option<&(bool, ObjectId)>| {
                side.and_then(|(is_tree, id)| is_tree.then_some(*id))
            };
            let (old_tree, new_tree) = (tree_of(before), tree_of(after));
            // A file on either side is a change at `path`; a tree is walked for its files.
            let file_changed = before.is_some_and(|(is_tree, _)| !is_tree)
                || after.is_some_and(|(is_tree, _)| !is_tree);
            if file_changed {
                changed.push(path.clone());
            }
            if (old_tree.is_some() || new_tree.is_some())
                && !self.diff_trees(old_tree, new_tree, &path, changed)?
            {
                return Ok(false);
            }
            if changed.len() > MAX_CHANGED_FILES {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// A tree's entries by name: (is a tree, id). Submodules count as files that change when
    /// their commit does.
    fn entries(
        &self,
        tree: Option<ObjectId>,
        path: &str,
    ) -> Result<BTreeMap<String, (bool, ObjectId)>, GitError> {
        let mut entries = BTreeMap::new();
        let Some(id) = tree else {
            return Ok(entries);
        };
        let tree = self.repo.find_tree(id).map_err(read_error(path))?;
        for entry in tree.iter() {
            let entry = entry.map_err(read_error(path))?;
            entries.insert(
                entry.filename().to_str_lossy().into_owned(),
                (entry.mode().is_tree(), entry.object_id()),
            );
        }
        Ok(entries)
    }
}

impl GitRepo {
    /// The tree of commit `sha` as a tar archive (files with their executable bit, symbolic
    /// links; submodules left out), for `actions/checkout`. Refused when the files add up to
    /// more than `max_bytes`.
    pub fn archive(&self, sha: &str, max_bytes: u64) -> Result<Vec<u8>, GitError> {
        let root = self.commit_tree(sha)?;
        let mut builder = tar::Builder::new(Vec::new());
        let mut total = 0u64;
        self.archive_tree(root, "", &mut builder, &mut total, max_bytes)?;
        builder.into_inner().map_err(|error| GitError::Read {
            what: format!("the archive of {sha}"),
            message: error.to_string(),
        })
    }

    fn archive_tree(
        &self,
        tree: ObjectId,
        prefix: &str,
        builder: &mut tar::Builder<Vec<u8>>,
        total: &mut u64,
        max_bytes: u64,
    ) -> Result<(), GitError> {
        let found = self.repo.find_tree(tree).map_err(read_error(prefix))?;
        for entry in found.iter() {
            let entry = entry.map_err(read_error(prefix))?;
            let name = entry.filename().to_str_lossy().into_owned();
            let path = if prefix.is_empty() {
                name
            } else {
                format!("{prefix}/{name}")
            };
            let mode = entry.mode();
            if mode.is_tree() {
                self.archive_tree(entry.object_id(), &path, builder, total, max_bytes)?;
                continue;
            }
            if mode.is_commit() {
                continue;
            }
            let blob = self
                .repo
                .find_blob(entry.object_id())
                .map_err(read_error(path.clone()))?;
            *total += blob.data.len() as u64;
            if *total > max_bytes {
                return Err(GitError::Read {
                    what: format!("the tree of {prefix:?}"),
                    message: format!("the checkout is larger than {max_bytes} bytes"),
                });
            }
            let mut header = tar::Header::new_gnu();
            let write_error = |error: std::io::Error| GitError::Read {
                what: format!("the archive entry `{path}`"),
                message: error.to_string(),
            };
            if mode.is_link() {
                header.set_entry_type(tar::EntryType::Symlink);
                header.set_size(0);
                header.set_mode(0o777);
                let target = String::from_utf8_lossy(&blob.data).into_owned();
                builder
                    .append_link(&mut header, &path, &target)
                    .map_err(write_error)?;
            } else {
                header.set_size(blob.data.len() as u64);
                header.set_mode(if mode.is_executable() { 0o755 } else { 0o644 });
                builder
                    .append_data(&mut header, &path, blob.data.as_slice())
                    .map_err(write_error)?;
            }
        }
        Ok(())
    }
}

/// A commit id from its hex form.
fn parse_id(sha: &str) -> Result<ObjectId, GitError> {
    ObjectId::from_hex(sha.as_bytes()).map_err(|_| GitError::Missing {
        what: format!("commit `{sha}`"),
    })
}

/// True for git's "no commit" id (a created or deleted ref in a push).
pub fn is_null_sha(sha: &str) -> bool {
    !sha.is_empty() && sha.bytes().all(|b| b == b'0')
}
