//! The reusable workflow files a workflow calls from its own repository
//! (`uses: ./.github/workflows/x.yml`), read from a working tree with nested calls followed,
//! for `gantry run` and `gantry submit` to send with the workflow. Calls of other repositories
//! (`OWNER/REPO/PATH@REF`) are left out: a server reads them from those repositories when it
//! knows them (same organization, with a git source) and refuses them by name, at their
//! `line:col`, when it does not. `gantry run`'s embedded server knows no other repository, so
//! it names them itself ([`other_repository_calls`]) before starting anything.

use std::collections::VecDeque;
use std::path::Path;

use anyhow::{Context, bail};
use gantry_workflow::Workflow;
use indexmap::IndexMap;

/// The most files one workflow's calls may read (GitHub nests at most ten levels deep; several
/// calls per level are fine).
const MAX_CALLED_FILES: usize = 50;

/// The texts of the local files `workflow` calls, directly or through other called files, by
/// their `uses:` text. A called file that is missing or unreadable is an error naming it; one
/// that does not load is sent as is, so the server reports its problems with positions.
pub(crate) fn called_files(
    root: &Path,
    workflow: &Workflow,
) -> anyhow::Result<IndexMap<String, String>> {
    let mut files = IndexMap::new();
    let mut queue: VecDeque<String> = local_calls(workflow).collect();
    while let Some(uses) = queue.pop_front() {
        if files.contains_key(&uses) {
            continue;
        }
        if files.len() >= MAX_CALLED_FILES {
            bail!("more than {MAX_CALLED_FILES} reusable workflow files are called");
        }
        let path = root.join(uses.trim_start_matches("./"));
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read the called workflow `{}`", path.display()))?;
        if let Ok(called) = gantry_workflow::load(&text, &Default::default()) {
            queue.extend(local_calls(&called));
        }
        files.insert(uses, text);
    }
    Ok(files)
}

/// Every call of another repository in `workflow` (the file `path`) and in the local files it
/// calls (`called`, by `uses:` text), as `file:line:col: message` lines for `gantry run`.
pub(crate) fn other_repository_calls(
    path: &str,
    workflow: &Workflow,
    called: &IndexMap<String, String>,
) -> Vec<String> {
    let loaded: Vec<(&str, Workflow)> = called
        .iter()
        .filter_map(|(uses, text)| {
            let called = gantry_workflow::load(text, &Default::default()).ok()?;
            Some((uses.trim_start_matches("./"), called))
        })
        .collect();
    let files = std::iter::once((path, workflow)).chain(loaded.iter().map(|(file, w)| (*file, w)));
    let mut problems = Vec::new();
    for (file, workflow) in files {
        for uses in workflow.jobs.iter().filter_map(|job| job.uses.as_ref()) {
            if uses.value.starts_with("./") {
                continue;
            }
            problems.push(format!(
                "{file}:{}: `{}` is in another repository, which `gantry run`'s embedded server \
                 does not know: submit the workflow to a server that has that repository \
                 (`gantry submit --repo ORG/REPO {path}`)",
                uses.pos, uses.value
            ));
        }
    }
    problems
}

fn local_calls(workflow: &Workflow) -> impl Iterator<Item = String> + '_ {
    workflow
        .jobs
        .iter()
        .filter_map(|job| job.uses.as_ref())
        .filter(|uses| uses.value.starts_with("./"))
        .map(|uses| uses.value.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_nested_local_calls_and_names_missing_files() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join(".github/workflows");
        std::fs::create_dir_all(&dir).unwrap();
        let a = "on: workflow_call\njobs:\n  b:\n    uses: ./.github/workflows/b.yml\n";
        let b = "on: workflow_call\njobs:\n  x:\n    runs-on: x\n    steps:\n      - run: echo\n";
        std::fs::write(dir.join("a.yml"), a).unwrap();
        std::fs::write(dir.join("b.yml"), b).unwrap();
        let caller = "on: push\njobs:\n  a:\n    uses: ./.github/workflows/a.yml\n  r:\n    uses: org/repo/.github/workflows/x.yml@v1\n";
        let caller = gantry_workflow::load(caller, &Default::default()).unwrap();
        let files = called_files(root.path(), &caller).unwrap();
        assert_eq!(
            files.keys().collect::<Vec<_>>(),
            ["./.github/workflows/a.yml", "./.github/workflows/b.yml"]
        );
        assert_eq!(files["./.github/workflows/b.yml"], b);

        // The call of another repository is named where it is written.
        assert_eq!(
            other_repository_calls(".github/workflows/ci.yml", &caller, &files),
            [
                ".github/workflows/ci.yml:6:11: `org/repo/.github/workflows/x.yml@v1` is in another repository, which `gantry run`'s embedded server does not know: submit the workflow to a server that has that repository (`gantry submit --repo ORG/REPO .github/workflows/ci.yml`)"
            ]
        );

        std::fs::remove_file(dir.join("b.yml")).unwrap();
        let error = called_files(root.path(), &caller).unwrap_err();
        assert!(format!("{error:#}").contains("b.yml"), "{error:#}");
    }
}
