//! `gantry run --job ID`: narrows a workflow file to the chosen jobs and the jobs they need,
//! before the file is submitted.
//!
//! The server is told nothing new: it receives the workflow file with the other jobs' lines
//! blanked out. Blanking rather than re-serializing keeps every remaining line where it was,
//! so the server's `line:col` diagnostics still point into the file on disk, and the server
//! validates, plans and schedules the narrowed file exactly as any other (no API option that
//! a remote server might not know). The narrowed text is loaded again here and must hold
//! exactly the kept jobs, so a file this line-based cut cannot handle (jobs in flow style,
//! `jobs: {a: …}`) is refused with its position instead of being submitted half-cut.

use std::collections::BTreeSet;

use anyhow::bail;
use gantry_workflow::model::Workflow;

/// The ids of `wanted` that the workflow has, with every job they need, transitively.
pub fn with_needs(workflow: &Workflow, wanted: &[String]) -> BTreeSet<String> {
    let mut keep = BTreeSet::new();
    let mut pending: Vec<&str> = wanted
        .iter()
        .map(String::as_str)
        .filter(|id| workflow.job(id).is_some())
        .collect();
    while let Some(id) = pending.pop() {
        if !keep.insert(id.to_owned()) {
            continue;
        }
        if let Some(job) = workflow.job(id) {
            pending.extend(job.needs.iter().map(|need| need.value.as_str()));
        }
    }
    keep
}

/// The workflow's text with the lines of every job not in `keep` blanked (line breaks kept).
/// `file` names the workflow in errors.
pub fn keep_only(
    text: &str,
    workflow: &Workflow,
    keep: &BTreeSet<String>,
    file: &str,
) -> anyhow::Result<String> {
    let mut lines: Vec<&str> = text.split_inclusive('\n').collect();
    let mut blank = vec![false; lines.len()];
    for job in workflow
        .jobs
        .iter()
        .filter(|job| !keep.contains(&job.id.value))
    {
        let Some(first) = (job.id.pos.line as usize).checked_sub(1) else {
            bail!("{file}: job `{}` has no position to cut at", job.id.value);
        };
        let key_line = lines.get(first).copied().unwrap_or_default();
        let indent = indentation(key_line);
        if indent + 1 != job.id.pos.col as usize {
            bail!(
                "{file}:{}: `--job` needs the jobs of `jobs:` in block style, one key a line",
                job.id.pos
            );
        }
        blank[first] = true;
        // The job's block: every following line indented deeper than its key (blank lines and
        // comments included), up to the next key at the job's level or above.
        for (index, line) in lines.iter().enumerate().skip(first + 1) {
            let content = line.trim_start();
            let is_filler = content.trim().is_empty() || content.starts_with('#');
            if !is_filler && indentation(line) <= indent {
                break;
            }
            blank[index] = true;
        }
    }
    for (line, blank) in lines.iter_mut().zip(&blank) {
        if *blank {
            *line = if line.ends_with("\r\n") {
                "\r\n"
            } else if line.ends_with('\n') {
                "\n"
            } else {
                ""
            };
        }
    }
    let narrowed = lines.concat();
    let check = gantry_workflow::load(&narrowed, &Default::default());
    let kept: Option<BTreeSet<String>> = check
        .ok()
        .map(|loaded| loaded.jobs.into_iter().map(|job| job.id.value).collect());
    if kept.as_ref() != Some(keep) {
        bail!(
            "{file}: `--job` could not cut the file down to the jobs {}: write `jobs:` in block style, one key a line",
            keep.iter().cloned().collect::<Vec<_>>().join(", ")
        );
    }
    Ok(narrowed)
}

fn indentation(line: &str) -> usize {
    line.len() - line.trim_start_matches(' ').len()
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "\
on: push
jobs:
  setup:
    runs-on: ubuntu-latest
    steps:
      - run: echo setup

  # The tests.
  test:
    needs: setup
    runs-on: ubuntu-latest
    steps:
      - run: |
          echo test
  lint:
    needs: setup
    runs-on: ubuntu-latest
    steps:
      - run: echo lint
  release:
    needs: [test]
    runs-on: ubuntu-latest
    steps:
      - run: echo release
env:
  A: b
";

    fn load(text: &str) -> Workflow {
        gantry_workflow::load(text, &Default::default()).unwrap()
    }

    fn ids(keep: &BTreeSet<String>) -> Vec<&str> {
        keep.iter().map(String::as_str).collect()
    }

    #[test]
    fn a_job_brings_what_it_needs_transitively_and_nothing_else() {
        let workflow = load(FILE);
        assert_eq!(
            ids(&with_needs(&workflow, &["release".into()])),
            ["release", "setup", "test"]
        );
        assert_eq!(
            ids(&with_needs(&workflow, &["lint".into()])),
            ["lint", "setup"]
        );
        assert!(with_needs(&workflow, &["nope".into()]).is_empty());
    }

    #[test]
    fn cut_files_keep_their_line_numbers_and_later_top_level_keys() {
        let workflow = load(FILE);
        let keep = with_needs(&workflow, &["test".into()]);
        let narrowed = keep_only(FILE, &workflow, &keep, "ci.yml").unwrap();
        assert_eq!(narrowed.lines().count(), FILE.lines().count());
        let cut = load(&narrowed);
        let jobs: Vec<_> = cut.jobs.iter().map(|job| job.id.value.as_str()).collect();
        assert_eq!(jobs, ["setup", "test"]);
        // `test` is on the same line as before, and the workflow's `env:` survived.
        assert_eq!(
            cut.job("test").unwrap().id.pos,
            workflow.job("test").unwrap().id.pos
        );
        assert_eq!(cut.env.len(), 1);
        assert!(!narrowed.contains("lint") && !narrowed.contains("release"));
    }

    #[test]
    fn flow_style_jobs_are_refused_with_their_position() {
        let text = "on: push\njobs: {a: {runs-on: x, steps: [{run: a}]}, b: {runs-on: x, steps: [{run: b}]}}\n";
        let workflow = load(text);
        let error = keep_only(text, &workflow, &["a".to_owned()].into(), "ci.yml")
            .unwrap_err()
            .to_string();
        assert!(error.starts_with("ci.yml:2:"), "{error}");
        assert!(error.contains("block style"), "{error}");
    }
}
