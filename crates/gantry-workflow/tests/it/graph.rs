//! Property tests of the `needs` graph: random DAGs load and order correctly; adding one edge
//! that closes a loop is reported as a cycle naming its jobs.

use gantry_workflow::graph::JobGraph;
use gantry_workflow::{Diagnostics, Limits};
use proptest::prelude::*;

/// A workflow whose job `j{i}` needs the listed earlier jobs.
fn workflow(needs: &[Vec<usize>]) -> String {
    let mut source = String::from("on: push\njobs:\n");
    for (index, job_needs) in needs.iter().enumerate() {
        source.push_str(&format!("  j{index}:\n"));
        if !job_needs.is_empty() {
            let names: Vec<String> = job_needs.iter().map(|n| format!("j{n}")).collect();
            source.push_str(&format!("    needs: [{}]\n", names.join(", ")));
        }
        source.push_str("    runs-on: x\n    steps:\n      - run: x\n");
    }
    source
}

/// Random DAGs: each job needs a set of earlier jobs.
fn dags() -> impl Strategy<Value = Vec<Vec<usize>>> {
    (1usize..40).prop_flat_map(|count| {
        (0..count)
            .map(|index| {
                prop::collection::btree_set(0..index.max(1), 0..=index.min(5))
                    .prop_map(move |set| set.into_iter().filter(|&n| n < index).collect())
            })
            .collect::<Vec<_>>()
    })
}

proptest! {
    #[test]
    fn random_dags_load_in_a_valid_order(needs in dags()) {
        let loaded = gantry_workflow::load(&workflow(&needs), &Limits::default());
        let workflow = loaded.map_err(|d| TestCaseError::fail(d.to_string()))?;
        let graph = JobGraph::build(&workflow, &mut Diagnostics::default());
        let order = graph.topological_order().map_err(|c| TestCaseError::fail(format!("cycle {c:?}")))?;
        let mut position = vec![0; order.len()];
        for (rank, &job) in order.iter().enumerate() {
            position[job] = rank;
        }
        for (job, job_needs) in needs.iter().enumerate() {
            for &need in job_needs {
                prop_assert!(position[need] < position[job], "j{} ran before its need j{}", job, need);
            }
        }
    }

    #[test]
    fn a_back_edge_is_reported_as_a_cycle(needs in dags(), pick in any::<prop::sample::Index>()) {
        // Find an edge a -> b (a needs b) and add b -> a, closing a loop.
        let edges: Vec<(usize, usize)> = needs
            .iter()
            .enumerate()
            .flat_map(|(job, list)| list.iter().map(move |&need| (job, need)))
            .collect();
        prop_assume!(!edges.is_empty());
        let (job, need) = edges[pick.index(edges.len())];
        let mut cyclic = needs.clone();
        cyclic[need].push(job);
        let error = gantry_workflow::load(&workflow(&cyclic), &Limits::default()).unwrap_err();
        let text = error.to_string();
        // Every cycle runs through the added edge, so the named cycle holds both of its jobs.
        let path = text.split("dependency graph: ").nth(1).unwrap_or_default();
        let names: Vec<&str> = path.lines().next().unwrap_or_default().split(" -> ").collect();
        prop_assert!(names.contains(&format!("j{job}").as_str()), "{}", text);
        prop_assert!(names.contains(&format!("j{need}").as_str()), "{}", text);
    }
}
