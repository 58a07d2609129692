//! `hashFiles()` over a job's workspace, with GitHub's algorithm, and the [`Host`] that offers
//! it to expressions.
//!
//! GitHub's runner finds files with `@actions/glob` (see [`glob`]), walking each search
//! directory depth first with entries in byte order, skipping directories and anything outside
//! the workspace; it hashes each file with SHA-256 and the result is the SHA-256 of the
//! concatenated 32-byte digests, in hex, or the empty string when nothing matched. Symbolic
//! links to files are hashed; links to directories are followed only with the first argument
//! `--follow-symbolic-links`.

mod glob;

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use gantry_expr::{Host, JobStatus};
use sha2::{Digest, Sha256};
use walkdir::WalkDir;

use glob::{MATCH_FILE, Pattern, match_all, parse_patterns, path_segments, worth_descending};

/// Why `hashFiles` failed.
#[derive(Debug, thiserror::Error)]
pub enum HashFilesError {
    /// A pattern uses `.` or `..` segments, or is empty after its `!`s.
    #[error("invalid pattern `{pattern}`: {reason}")]
    InvalidPattern {
        /// The pattern as written.
        pattern: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The first argument looks like an option but is not `--follow-symbolic-links`.
    #[error("invalid glob option `{0}`, the available option is `--follow-symbolic-links`")]
    InvalidOption(String),
    /// The workspace or a matched file could not be read.
    #[error("failed to read `{path}`")]
    Io {
        /// The path that could not be read.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

/// Hashes the files under `workspace` matching `patterns` (the `hashFiles` arguments) with
/// GitHub's algorithm; `""` when no file matches.
pub fn hash_files(workspace: &Path, patterns: &[String]) -> Result<String, HashFilesError> {
    let files = matching_files(workspace, patterns)?;
    if files.is_empty() {
        return Ok(String::new());
    }
    let mut combined = Sha256::new();
    for file in &files {
        combined.update(hash_file(file)?);
    }
    Ok(hex(&combined.finalize()))
}

/// The files `hashFiles` would hash, in the order it hashes them.
pub fn matching_files(
    workspace: &Path,
    arguments: &[String],
) -> Result<Vec<PathBuf>, HashFilesError> {
    let (follow_links, pattern_lines) = split_option(arguments)?;
    // @actions/glob works from the process's working directory, which the OS reports with
    // symbolic links resolved; canonicalising gives the same paths.
    let workspace = workspace
        .canonicalize()
        .map_err(|source| HashFilesError::Io {
            path: workspace.to_owned(),
            source,
        })?;
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let patterns = parse_patterns(pattern_lines, &workspace, home.as_deref())?;
    let mut files = Vec::new();
    let mut seen = HashSet::new();
    for root in search_roots(&patterns, &workspace) {
        walk(
            &root,
            &workspace,
            &patterns,
            follow_links,
            &mut seen,
            &mut files,
        )?;
    }
    Ok(files)
}

/// Splits off the optional `--follow-symbolic-links` first argument.
fn split_option(arguments: &[String]) -> Result<(bool, &[String]), HashFilesError> {
    match arguments.split_first() {
        Some((first, rest)) if first.starts_with("--") => {
            if first.eq_ignore_ascii_case("--follow-symbolic-links") {
                Ok((true, rest))
            } else {
                Err(HashFilesError::InvalidOption(first.clone()))
            }
        }
        _ => Ok((false, arguments)),
    }
}

/// Where to start walking: each positive pattern's literal directory, without those inside
/// another one. Only files inside the workspace count, so a search directory above the
/// workspace is narrowed to the workspace (its files come in the same order) and one beside it
/// is dropped.
fn search_roots(patterns: &[Pattern], workspace: &Path) -> Vec<PathBuf> {
    let candidates: Vec<PathBuf> = patterns
        .iter()
        .filter(|pattern| !pattern.is_negated())
        .map(Pattern::search_path)
        .collect();
    let mut roots: Vec<PathBuf> = Vec::new();
    for candidate in &candidates {
        let has_ancestor = candidates
            .iter()
            .any(|other| other != candidate && candidate.starts_with(other));
        if has_ancestor {
            continue;
        }
        let root = if workspace.starts_with(candidate) {
            workspace.to_owned()
        } else if candidate.starts_with(workspace) {
            candidate.clone()
        } else {
            continue;
        };
        if !roots.contains(&root) {
            roots.push(root);
        }
    }
    roots
}

fn walk(
    root: &Path,
    workspace: &Path,
    patterns: &[Pattern],
    follow_links: bool,
    seen: &mut HashSet<PathBuf>,
    files: &mut Vec<PathBuf>,
) -> Result<(), HashFilesError> {
    if std::fs::symlink_metadata(root).is_err() {
        // A search path that does not exist simply matches nothing.
        return Ok(());
    }
    let entries = WalkDir::new(root)
        .follow_links(follow_links)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|entry| {
            !entry.file_type().is_dir() || worth_descending(patterns, &path_segments(entry.path()))
        });
    for entry in entries {
        let entry = match entry {
            Ok(entry) => entry,
            // Following links can meet a loop or a dangling link; @actions/glob skips both.
            Err(error)
                if follow_links && (error.loop_ancestor().is_some() || is_not_found(&error)) =>
            {
                continue;
            }
            Err(error) => {
                let path = error.path().unwrap_or(root).to_owned();
                return Err(HashFilesError::Io {
                    path,
                    source: error.into(),
                });
            }
        };
        let path = entry.path();
        if entry.file_type().is_dir() || !path.starts_with(workspace) {
            continue;
        }
        if match_all(patterns, &path_segments(path)) & MATCH_FILE == 0 {
            continue;
        }
        // GitHub hashes what a link points to and skips links to directories; a dangling link
        // fails the whole call there too.
        if entry.path_is_symlink() {
            let target = std::fs::metadata(path).map_err(|source| HashFilesError::Io {
                path: path.to_owned(),
                source,
            })?;
            if target.is_dir() {
                continue;
            }
        }
        if seen.insert(path.to_owned()) {
            files.push(path.to_owned());
        }
    }
    Ok(())
}

fn is_not_found(error: &walkdir::Error) -> bool {
    error
        .io_error()
        .is_some_and(|io| io.kind() == io::ErrorKind::NotFound)
}

/// SHA-256 of a file's contents, read in chunks so large files cost no memory.
fn hash_file(path: &Path) -> Result<[u8; 32], HashFilesError> {
    let io_error = |source| HashFilesError::Io {
        path: path.to_owned(),
        source,
    };
    let mut file = File::open(path).map_err(io_error)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0; 64 * 1024];
    loop {
        let read = file.read(&mut buffer).map_err(io_error)?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
    }
    Ok(hasher.finalize().into())
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        text.push(char::from(DIGITS[usize::from(byte >> 4)]));
        text.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    text
}

/// The [`Host`] for expressions evaluated in a job: `hashFiles` over the job's workspace and the
/// status functions from the job's (and, inside a composite action, the action's) status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkspaceHost {
    workspace: PathBuf,
    job_status: JobStatus,
    composite_action_status: Option<JobStatus>,
}

impl WorkspaceHost {
    /// A host for a successful-so-far job whose workspace is `workspace`.
    pub fn new(workspace: impl Into<PathBuf>) -> WorkspaceHost {
        WorkspaceHost {
            workspace: workspace.into(),
            job_status: JobStatus::Success,
            composite_action_status: None,
        }
    }

    /// The same host with the job's status so far.
    pub fn with_job_status(mut self, status: JobStatus) -> WorkspaceHost {
        self.job_status = status;
        self
    }

    /// The same host evaluating inside a composite action's steps, whose status so far
    /// (`github.action_status`) is `status`.
    pub fn in_composite_action(mut self, status: JobStatus) -> WorkspaceHost {
        self.composite_action_status = Some(status);
        self
    }

    /// The workspace `hashFiles` searches.
    pub fn workspace(&self) -> &Path {
        &self.workspace
    }
}

impl Host for WorkspaceHost {
    fn job_status(&self) -> JobStatus {
        self.job_status
    }

    fn hash_files(&self, patterns: &[String]) -> Result<String, String> {
        hash_files(&self.workspace, patterns).map_err(|error| {
            let mut message = format!("hashFiles('{}') failed: {error}", patterns.join(", "));
            if let Some(source) = std::error::Error::source(&error) {
                message.push_str(&format!(": {source}"));
            }
            message
        })
    }

    fn success_failure_status(&self) -> Option<JobStatus> {
        self.composite_action_status
    }
}
