//! The reusable workflows a run's workflow calls, by their `uses:` text: the files' texts,
//! which are kept with the run (so the jobs of called workflows get the same payloads after a
//! restart), and the loaded models the engine expands and payloads are built from.
//!
//! Wherever the files come from (git at the event's commit or at the ref of another
//! repository, the API's `called_workflows`, a working tree through `gantry run`), a run
//! starts only when every call, nested ones included, has its file:
//! [`CalledWorkflows::missing`] names the calls without one. A file's own calls are keyed as
//! [`call_key`] says, so a `./` call inside a file of another repository is looked up under
//! `OWNER/REPO/PATH@REF`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use gantry_workflow::diag::{Diagnostic, Diagnostics};
use gantry_workflow::reusable::WorkflowSource;
use gantry_workflow::{Limits, Workflow};

use crate::remote_calls::call_key;

/// Called workflow files by `uses:` text.
#[derive(Debug, Default)]
pub(crate) struct CalledWorkflows {
    files: BTreeMap<String, CalledFile>,
}

#[derive(Debug)]
struct CalledFile {
    source: String,
    workflow: Workflow,
}

/// A run's workflow with the workflows it calls, as claims need them.
#[derive(Debug, Clone)]
pub(crate) struct RunWorkflows {
    /// The run's own workflow.
    pub(crate) workflow: Arc<Workflow>,
    /// What it calls.
    pub(crate) called: Arc<CalledWorkflows>,
}

impl CalledWorkflows {
    /// Whether `uses` has its file.
    pub(crate) fn contains(&self, uses: &str) -> bool {
        self.files.contains_key(uses)
    }

    /// How many files there are.
    pub(crate) fn len(&self) -> usize {
        self.files.len()
    }

    /// Adds the file of `uses`. The calls written in it are rewritten to their keys
    /// ([`call_key`]): a `./` call inside a file of another repository names that repository,
    /// so looking it up (here, in the checks and in the engine) finds that repository's file.
    /// Since the key alone decides, a run's files loaded again from their texts after a
    /// restart get the same keys.
    pub(crate) fn insert(&mut self, uses: String, source: String, mut workflow: Workflow) {
        for job in &mut workflow.jobs {
            if let Some(nested) = &mut job.uses {
                nested.value = call_key(Some(&uses), &nested.value);
            }
        }
        self.files.insert(uses, CalledFile { source, workflow });
    }

    /// The files' texts, as the store keeps them.
    pub(crate) fn sources(&self) -> BTreeMap<String, String> {
        self.files
            .iter()
            .map(|(uses, file)| (uses.clone(), file.source.clone()))
            .collect()
    }

    /// Loads files given as texts. Every file that does not load is reported with its
    /// diagnostics (`line:col` inside that file).
    pub(crate) fn load<'a>(
        sources: impl IntoIterator<Item = (&'a String, &'a String)>,
    ) -> Result<CalledWorkflows, Vec<(String, Diagnostics)>> {
        let mut called = CalledWorkflows::default();
        let mut problems = Vec::new();
        for (uses, source) in sources {
            match gantry_workflow::load(source, &Limits::default()) {
                Ok(workflow) => called.insert(uses.clone(), source.clone(), workflow),
                Err(diagnostics) => problems.push((uses.clone(), diagnostics)),
            }
        }
        if problems.is_empty() {
            Ok(called)
        } else {
            Err(problems)
        }
    }

    /// Every call of `workflow`, or of a workflow it calls, whose file is not here, reported
    /// at the calling job's `uses:` in `workflow` (naming the called file for nested calls).
    pub(crate) fn missing(&self, workflow: &Workflow) -> Diagnostics {
        self.missing_where(workflow, |_| true)
    }

    /// [`CalledWorkflows::missing`] for the calls whose key `wanted` accepts (the others'
    /// absence was reported otherwise), though every call is followed.
    pub(crate) fn missing_where(
        &self,
        workflow: &Workflow,
        wanted: impl Fn(&str) -> bool,
    ) -> Diagnostics {
        let mut diagnostics = Diagnostics::default();
        for job in &workflow.jobs {
            let Some(uses) = &job.uses else { continue };
            let mut seen = BTreeSet::new();
            let mut stack = vec![(uses.value.clone(), None::<String>)];
            while let Some((reference, from)) = stack.pop() {
                if !seen.insert(reference.clone()) {
                    continue;
                }
                let Some(callee) = self.workflow(&reference) else {
                    if !wanted(&reference) {
                        continue;
                    }
                    let message = match &from {
                        None => format!("the called workflow `{reference}` was not given"),
                        Some(file) => {
                            format!("in {file}: the called workflow `{reference}` was not given")
                        }
                    };
                    diagnostics.0.push(Diagnostic::new(uses.pos, message));
                    continue;
                };
                for nested in callee.jobs.iter().filter_map(|job| job.uses.as_ref()) {
                    stack.push((nested.value.clone(), Some(reference.clone())));
                }
            }
        }
        diagnostics.finish()
    }
}

impl WorkflowSource for CalledWorkflows {
    fn workflow(&self, reference: &str) -> Option<&Workflow> {
        self.files.get(reference).map(|file| &file.workflow)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CALLER: &str = "on: push\njobs:\n  call:\n    uses: ./a.yml\n";

    #[test]
    fn names_calls_without_their_file_where_they_are_made() {
        let caller = gantry_workflow::load(CALLER, &Limits::default()).unwrap();
        let none = CalledWorkflows::default();
        let missing = none.missing(&caller);
        assert_eq!(
            missing.to_string(),
            "4:11: the called workflow `./a.yml` was not given"
        );

        let a = "on: workflow_call\njobs:\n  inner:\n    uses: ./b.yml\n".to_owned();
        let sources = BTreeMap::from([("./a.yml".to_owned(), a)]);
        let some = CalledWorkflows::load(&sources).unwrap();
        assert_eq!(
            some.missing(&caller).to_string(),
            "4:11: in ./a.yml: the called workflow `./b.yml` was not given"
        );
        assert_eq!(some.sources(), sources);
    }

    #[test]
    fn local_calls_inside_another_repositorys_file_are_looked_up_in_that_repository() {
        let caller = "on: push\njobs:\n  mine:\n    uses: ./lint.yml\n  theirs:\n    uses: acme/lib/build.yml@v1\n";
        let caller = gantry_workflow::load(caller, &Limits::default()).unwrap();
        let build = "on: workflow_call\njobs:\n  lint:\n    uses: ./lint.yml\n".to_owned();
        let lint = |job: &str| {
            format!(
                "on: workflow_call\njobs:\n  {job}:\n    runs-on: x\n    steps:\n      - run: x\n"
            )
        };
        let mut sources = BTreeMap::from([
            ("./lint.yml".to_owned(), lint("app")),
            ("acme/lib/build.yml@v1".to_owned(), build),
        ]);
        let called = CalledWorkflows::load(&sources).unwrap();
        assert_eq!(
            called.missing(&caller).to_string(),
            "6:11: in acme/lib/build.yml@v1: the called workflow `acme/lib/lint.yml@v1` was not given"
        );

        // With both files, each call finds its own repository's `lint.yml`; loading the texts
        // again (as after a restart) keys them the same way.
        sources.insert("acme/lib/lint.yml@v1".to_owned(), lint("lib"));
        for _ in 0..2 {
            let called = CalledWorkflows::load(&sources).unwrap();
            assert!(called.missing(&caller).is_empty());
            let nested = called.workflow("acme/lib/build.yml@v1").unwrap().jobs[0]
                .uses
                .as_ref()
                .unwrap();
            assert_eq!(nested.value, "acme/lib/lint.yml@v1");
            let job_of = |key: &str| called.workflow(key).unwrap().jobs[0].id.value.clone();
            assert_eq!(
                (job_of("./lint.yml"), job_of(&nested.value)),
                ("app".to_owned(), "lib".to_owned())
            );
            assert_eq!(called.sources(), sources);
        }
    }

    #[test]
    fn reports_each_file_that_does_not_load() {
        let sources = BTreeMap::from([("./a.yml".to_owned(), "on: [".to_owned())]);
        let problems = CalledWorkflows::load(&sources).unwrap_err();
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].0, "./a.yml");
    }
}
