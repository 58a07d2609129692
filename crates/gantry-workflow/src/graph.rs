//! The job graph: `needs:` edges, their checks (unknown jobs, cycles, no starting job) and a
//! topological order.
//!
//! Workflows of hundreds of jobs with dense `needs` are normal, so everything here is linear in
//! jobs plus edges and iterative (a 1,000-job chain must not recurse 1,000 frames deep).

use std::collections::HashMap;

use crate::diag::Diagnostics;
use crate::model::Workflow;

/// The `needs` graph of a workflow, by job index in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobGraph {
    /// For each job, the indices of the jobs it needs (unknown names are left out).
    pub needs: Vec<Vec<usize>>,
    /// For each job, the indices of the jobs that need it.
    pub dependents: Vec<Vec<usize>>,
}

impl JobGraph {
    /// Builds the graph, recording unknown `needs` and self-references in `diagnostics`.
    pub fn build(workflow: &Workflow, diagnostics: &mut Diagnostics) -> JobGraph {
        let index_by_id: HashMap<&str, usize> = workflow
            .jobs
            .iter()
            .enumerate()
            .map(|(index, job)| (job.id.value.as_str(), index))
            .collect();
        let mut needs = vec![Vec::new(); workflow.jobs.len()];
        let mut dependents = vec![Vec::new(); workflow.jobs.len()];
        for (index, job) in workflow.jobs.iter().enumerate() {
            for need in &job.needs {
                match index_by_id.get(need.value.as_str()) {
                    Some(&target) if target == index => diagnostics.push(
                        need.pos,
                        format!("job \"{}\" cannot need itself", job.id.value),
                    ),
                    Some(&target) => {
                        if needs[index].contains(&target) {
                            diagnostics.push(
                                need.pos,
                                format!(
                                    "job \"{}\" lists \"{}\" in `needs` more than once",
                                    job.id.value, need.value
                                ),
                            );
                            continue;
                        }
                        needs[index].push(target);
                        dependents[target].push(index);
                    }
                    None => diagnostics.push(
                        need.pos,
                        format!(
                            "job \"{}\" needs job \"{}\", which does not exist",
                            job.id.value, need.value
                        ),
                    ),
                }
            }
        }
        JobGraph { needs, dependents }
    }

    /// Job indices in an order where every job comes after the jobs it needs, or the first
    /// cycle found (as job indices, the first repeated at the end) when there is one.
    pub fn topological_order(&self) -> Result<Vec<usize>, Vec<usize>> {
        let count = self.needs.len();
        let mut remaining: Vec<usize> = self.needs.iter().map(Vec::len).collect();
        let mut ready: Vec<usize> = (0..count).filter(|&job| remaining[job] == 0).collect();
        ready.reverse();
        let mut order = Vec::with_capacity(count);
        while let Some(job) = ready.pop() {
            order.push(job);
            for &dependent in &self.dependents[job] {
                remaining[dependent] -= 1;
                if remaining[dependent] == 0 {
                    ready.push(dependent);
                }
            }
        }
        if order.len() == count {
            Ok(order)
        } else {
            Err(self.find_cycle(&remaining))
        }
    }

    /// Walks `needs` edges among jobs that never became ready until a job repeats. Every such
    /// job has at least one unfinished need, so the walk cannot stop before it closes a cycle.
    fn find_cycle(&self, remaining: &[usize]) -> Vec<usize> {
        let Some(start) = (0..remaining.len()).find(|&job| remaining[job] > 0) else {
            return Vec::new();
        };
        let mut seen_at: HashMap<usize, usize> = HashMap::new();
        let mut path = Vec::new();
        let mut current = start;
        loop {
            if let Some(&position) = seen_at.get(&current) {
                let mut cycle = path[position..].to_vec();
                cycle.push(current);
                return cycle;
            }
            seen_at.insert(current, path.len());
            path.push(current);
            match self.needs[current]
                .iter()
                .copied()
                .find(|&need| remaining[need] > 0)
            {
                Some(next) => current = next,
                None => return path,
            }
        }
    }
}

/// Checks the graph: unknown needs, cycles (naming them) and that some job can start.
pub fn check(workflow: &Workflow, diagnostics: &mut Diagnostics) -> JobGraph {
    let graph = JobGraph::build(workflow, diagnostics);
    if workflow.jobs.is_empty() {
        return graph;
    }
    if let Err(cycle) = graph.topological_order()
        && let [first, second, ..] = cycle[..]
    {
        {
            let names: Vec<&str> = cycle
                .iter()
                .map(|&job| workflow.jobs[job].id.value.as_str())
                .collect();
            let job = &workflow.jobs[first];
            let need_pos = job
                .needs
                .iter()
                .find(|need| need.value == workflow.jobs[second].id.value)
                .map_or(job.id.pos, |need| need.pos);
            diagnostics.push(
                need_pos,
                format!(
                    "job \"{}\" depends on job \"{}\", which creates a cycle in the dependency graph: {}",
                    job.id.value,
                    workflow.jobs[second].id.value,
                    names.join(" -> ")
                ),
            );
        }
    }
    if graph.needs.iter().all(|needs| !needs.is_empty()) {
        diagnostics.push(
            workflow.jobs_pos,
            "the workflow must contain at least one job with no dependencies",
        );
    }
    graph
}
