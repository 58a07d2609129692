-- gantry store, SQLite, version 14: a run's state version in a narrow row of its own.
--
-- Every transition checks and moves its run's version: each claim and each job's end, two a
-- job. In `workflow_runs` that rewrote the run's whole record (about 550 bytes with its
-- engine fields) each time. The version now lives in `run_versions`; the run's row is
-- written only when its own fields change (its first start, its end, a cancellation, a
-- re-run).

CREATE TABLE run_versions (
    run_id INTEGER PRIMARY KEY REFERENCES workflow_runs (id),
    state_version INTEGER NOT NULL
);

INSERT INTO run_versions (run_id, state_version) SELECT id, state_version FROM workflow_runs;

ALTER TABLE workflow_runs DROP COLUMN state_version;

-- A transition that leaves the run's fields alone no longer rewrites `engine_run`, so it can
-- no longer hold a whole document (fields and `jobs`), which reading takes whole, ignoring
-- the job states written beside it. Runs whose last transition wrote one get its parts: its
-- jobs, each at its position, and the rest as the run's fields.
INSERT INTO engine_jobs (run_id, job_index, state)
    SELECT workflow_runs.id, job.key, job.value
    FROM workflow_runs, json_each(workflow_runs.engine_run, '$.jobs') AS job
    WHERE json_type(workflow_runs.engine_run, '$.jobs') = 'array'
    ON CONFLICT (run_id, job_index) DO UPDATE SET state = excluded.state;

UPDATE workflow_runs SET engine_run = json_remove(engine_run, '$.jobs')
    WHERE json_type(engine_run, '$.jobs') = 'array';
