//! `gantry repo add` and `gantry hook post-receive`: registering a git repository with a
//! server and making `git push` into it start runs.
//!
//! The installed hook is a two-line shell script that runs this binary (by absolute path)
//! as `gantry hook post-receive`, which reads git's `old new ref` lines from standard input
//! and posts them to `POST /repos/{org}/{repo}/hooks/push`. A hook cannot fail a push
//! (git ignores `post-receive`'s exit status), so problems are printed for the pusher
//! (`remote: ...`) and the hook exits 1.
//!
//! `repo add` says what it did on stderr; with `--json` it prints the repository's source as
//! the API answers it plus the installed hook's path, `{"repository", "git_path",
//! "has_webhook_secret", "hook"}` (`hook` null without `--install-hook`), on stdout.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use gantry_proto::v1::{
    CreateOrganization, CreateRepository, ErrorCode, HookOutcome, Organization, ReceivedPush,
    RefUpdate, Repository, RepositorySource, SetRepositorySource,
};

use super::client::{Client, Reply};
use super::runs::{ServerOption, refused, split_repo};
use crate::output;

/// Marks hooks this command wrote, so it replaces its own and never someone else's.
const HOOK_MARKER: &str = "# written by `gantry repo add --install-hook`";

/// Arguments of `gantry repo add`.
#[derive(Debug, Args)]
pub struct RepoAddArgs {
    #[command(flatten)]
    server: ServerOption,
    /// The repository, `ORG/REPO` (both are created when missing).
    repo: String,
    /// The git repository (bare or not) the server reads in place; it must be readable by the
    /// server.
    #[arg(
        long,
        value_name = "DIR",
        required_unless_present = "url",
        conflicts_with = "url"
    )]
    path: Option<PathBuf>,
    /// A git URL the server clones into a mirror in its data directory and fetches from when a
    /// webhook names a commit the mirror lacks (`https://…`, `ssh://…`, `file:///…`).
    #[arg(long, value_name = "URL")]
    url: Option<String>,
    /// Write a `post-receive` hook into the repository so `git push` into it starts runs.
    #[arg(long, requires = "path")]
    install_hook: bool,
    /// The secret GitHub webhooks for this repository are signed with.
    #[arg(long, value_name = "SECRET", env = "GANTRY_WEBHOOK_SECRET")]
    webhook_secret: Option<String>,
    /// The default branch, when the repository is created (default `main`).
    #[arg(long)]
    default_branch: Option<String>,
    /// Print the repository's source and hook as JSON.
    #[arg(long)]
    json: bool,
}

/// `gantry hook` subcommands.
#[derive(Debug, Subcommand)]
pub enum HookCommand {
    /// Report the refs a push updated (git's `old new ref` lines on stdin) to the server.
    PostReceive(PostReceiveArgs),
}

/// Arguments of `gantry hook post-receive`.
#[derive(Debug, Args)]
pub struct PostReceiveArgs {
    #[command(flatten)]
    server: ServerOption,
    /// The repository, `ORG/REPO`.
    #[arg(long)]
    repo: String,
    /// Who pushed (`github.actor`; default `$GANTRY_PUSHER`, else `$USER`, else `gantry`).
    #[arg(long)]
    pusher: Option<String>,
}

/// `gantry repo add`.
pub fn add(args: RepoAddArgs) -> anyhow::Result<ExitCode> {
    let (org, name) = split_repo(&args.repo)?;
    let path = match &args.path {
        Some(path) => Some(
            std::fs::canonicalize(path)
                .with_context(|| format!("failed to resolve `{}`", path.display()))?,
        ),
        None => None,
    };
    let client = Client::new(args.server.server.as_deref());
    if let Some(code) = ensure_repository(&client, org, name, args.default_branch)? {
        return Ok(code);
    }
    let request = SetRepositorySource {
        git_path: path
            .as_ref()
            .map(|path| path.to_string_lossy().into_owned()),
        git_url: args.url,
        webhook_secret: args.webhook_secret,
    };
    let source =
        match client.put::<RepositorySource>(&format!("/repos/{org}/{name}/source"), &request)? {
            Reply::Ok(source, _) => source,
            Reply::Refused(error, status) => return Ok(refused(&error, status)),
        };
    output::message(&format!(
        "repository {} reads git from {}{}{}",
        source.repository,
        source.git_path,
        match &source.git_url {
            Some(url) => format!(" (a mirror of {url})"),
            None => String::new(),
        },
        if source.has_webhook_secret {
            " (webhooks accepted)"
        } else {
            ""
        }
    ));
    let hook = if args.install_hook
        && let Some(path) = &path
    {
        let hook = install_hook(path, client.server(), &args.repo)?;
        output::message(&format!("installed {}", hook.display()));
        Some(hook)
    } else {
        None
    };
    if args.json {
        let mut value = serde_json::to_value(&source)?;
        value["hook"] = serde_json::json!(hook.map(|hook| hook.to_string_lossy().into_owned()));
        output::json_line(&value);
    }
    Ok(ExitCode::SUCCESS)
}

/// Creates the repository, and its organization when missing; an existing repository is
/// fine. `Some(code)` when the server refused.
fn ensure_repository(
    client: &Client,
    org: &str,
    name: &str,
    default_branch: Option<String>,
) -> anyhow::Result<Option<ExitCode>> {
    let request = CreateRepository {
        name: name.to_owned(),
        default_branch,
    };
    let path = format!("/orgs/{org}/repos");
    match client.post::<Repository>(&path, &request, &[])? {
        Reply::Ok(repo, _) => {
            output::message(&format!("created repository {}", repo.full_name));
            return Ok(None);
        }
        Reply::Refused(error, _) if error.error.code == ErrorCode::Conflict => return Ok(None),
        Reply::Refused(error, _) if error.error.code == ErrorCode::NotFound => {}
        Reply::Refused(error, status) => return Ok(Some(refused(&error, status))),
    }
    let create_org = CreateOrganization {
        name: org.to_owned(),
        weight: None,
        hosted_concurrency_limit: None,
    };
    match client.post::<Organization>("/orgs", &create_org, &[])? {
        Reply::Ok(org, _) => output::message(&format!("created organization {}", org.name)),
        Reply::Refused(error, _) if error.error.code == ErrorCode::Conflict => {}
        Reply::Refused(error, status) => return Ok(Some(refused(&error, status))),
    }
    match client.post::<Repository>(&path, &request, &[])? {
        Reply::Ok(repo, _) => {
            output::message(&format!("created repository {}", repo.full_name));
            Ok(None)
        }
        Reply::Refused(error, _) if error.error.code == ErrorCode::Conflict => Ok(None),
        Reply::Refused(error, status) => Ok(Some(refused(&error, status))),
    }
}

/// Writes `hooks/post-receive` (`.git/hooks` in a non-bare repository), executable.
fn install_hook(repo: &Path, server: &str, full_name: &str) -> anyhow::Result<PathBuf> {
    let hooks = if repo.join(".git").is_dir() {
        repo.join(".git/hooks")
    } else {
        repo.join("hooks")
    };
    std::fs::create_dir_all(&hooks)
        .with_context(|| format!("failed to create `{}`", hooks.display()))?;
    let hook = hooks.join("post-receive");
    if let Ok(existing) = std::fs::read_to_string(&hook)
        && !existing.contains(HOOK_MARKER)
    {
        bail!(
            "`{}` exists and was not written by gantry; remove it or call `gantry hook post-receive` from it",
            hook.display()
        );
    }
    let exe = std::env::current_exe().context("failed to find the gantry executable")?;
    let script = format!(
        "#!/bin/sh\n{HOOK_MARKER}\nexec {} hook post-receive --server {} --repo {}\n",
        shell_quote(&exe.to_string_lossy()),
        shell_quote(server),
        shell_quote(full_name),
    );
    std::fs::write(&hook, script)
        .with_context(|| format!("failed to write `{}`", hook.display()))?;
    set_executable(&hook)?;
    Ok(hook)
}

#[cfg(unix)]
fn set_executable(path: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
        .with_context(|| format!("failed to make `{}` executable", path.display()))
}

#[cfg(not(unix))]
fn set_executable(_path: &Path) -> anyhow::Result<()> {
    Ok(())
}

/// `text` as one single-quoted shell word.
fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// `gantry hook ...`.
pub fn hook(command: HookCommand) -> anyhow::Result<ExitCode> {
    let HookCommand::PostReceive(args) = command;
    let (org, name) = split_repo(&args.repo)?;
    let updates = read_updates(std::io::stdin().lock())?;
    if updates.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    let pusher = args
        .pusher
        .or_else(|| std::env::var("GANTRY_PUSHER").ok())
        .or_else(|| std::env::var("USER").ok())
        .filter(|pusher| !pusher.trim().is_empty());
    let client = Client::new(args.server.server.as_deref());
    let request = ReceivedPush { updates, pusher };
    match client.post::<HookOutcome>(&format!("/repos/{org}/{name}/hooks/push"), &request, &[])? {
        Reply::Ok(outcome, _) => {
            for triggered in &outcome.runs {
                output::message(&format!(
                    "gantry: run {} of {}{}",
                    triggered.run.id,
                    triggered.run.workflow_path,
                    if triggered.created {
                        ""
                    } else {
                        " (already started)"
                    }
                ));
            }
            for invalid in &outcome.invalid {
                for error in &invalid.errors {
                    output::message(&format!("gantry: invalid workflow: {error}"));
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Reply::Refused(error, status) => Ok(refused(&error, status)),
    }
}

/// git's `old new ref` lines.
fn read_updates(input: impl BufRead) -> anyhow::Result<Vec<RefUpdate>> {
    let mut updates = Vec::new();
    for line in input.lines() {
        let line = line.context("failed to read the pushed refs from stdin")?;
        if line.trim().is_empty() {
            continue;
        }
        let mut parts = line.split_whitespace();
        match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some(before), Some(after), Some(git_ref), None) => updates.push(RefUpdate {
                before: before.to_owned(),
                after: after.to_owned(),
                git_ref: git_ref.to_owned(),
            }),
            _ => bail!("expected `old new ref` on stdin, got `{line}`"),
        }
    }
    Ok(updates)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn updates_are_read_from_git_lines() {
        let input = "0000 aaaa refs/heads/main\n\nbbbb 0000 refs/tags/v1\n";
        let updates = read_updates(input.as_bytes()).unwrap();
        assert_eq!(updates.len(), 2);
        assert_eq!(updates[1].git_ref, "refs/tags/v1");
        assert!(read_updates("only two".as_bytes()).is_err());
    }

    #[test]
    fn shell_words_survive_quotes() {
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }
}
