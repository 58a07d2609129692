-- gantry store, version 10: what a run is created with and never changes (the engine's
-- document at creation, the compiled workflow, the workflow file and the files it calls) moves
-- out of `workflow_runs` into `run_documents`, written once by the creating transaction.
--
-- Every transition updates the run's row (its version, its fields, its status). A row holding
-- the documents (about 7 KB for a run of ten jobs) was rewritten whole by each of those
-- updates; SQLite copies the record, overflow pages included, into the WAL. The run's row now
-- keeps only its small fields.

CREATE TABLE run_documents (
    run_id INTEGER PRIMARY KEY REFERENCES workflow_runs (id),
    -- The engine's whole document as the run was created (`null` for an invalid workflow
    -- file); transitions write their parts to `workflow_runs.engine_run` and `engine_jobs`.
    engine_state TEXT NOT NULL,
    engine_spec TEXT,
    workflow_source TEXT NOT NULL,
    called_workflows TEXT NOT NULL
);

INSERT INTO run_documents (run_id, engine_state, engine_spec, workflow_source, called_workflows)
    SELECT id, engine_state, engine_spec, workflow_source, called_workflows FROM workflow_runs;

ALTER TABLE workflow_runs DROP COLUMN engine_state;
ALTER TABLE workflow_runs DROP COLUMN engine_spec;
ALTER TABLE workflow_runs DROP COLUMN workflow_source;
ALTER TABLE workflow_runs DROP COLUMN called_workflows;
