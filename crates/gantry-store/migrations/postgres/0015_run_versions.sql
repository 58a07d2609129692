-- gantry store, PostgreSQL, version 15: a run's state version in a narrow row of its own.
--
-- Every transition checks and moves its run's version: each claim and each job's end, two a
-- job. In `workflow_runs` that rewrote the run's whole row (about 550 bytes with its engine
-- fields) each time, a third of the time PostgreSQL spent on a drain's row changes
-- (`pg_stat_statements`, 100,000 jobs: 17.5 µs a job of ~48). The version now lives in
-- `run_versions`; the run's row is written only when its own fields change (its first
-- start, its end, a cancellation, a re-run).
--
-- Like the other rows a run's creation writes, it checks no foreign key (migration 14): it is
-- written only by the transaction creating its run, and runs are never deleted.

CREATE TABLE run_versions (
    run_id BIGINT PRIMARY KEY,
    state_version BIGINT NOT NULL
) WITH (fillfactor = 50);

INSERT INTO run_versions (run_id, state_version) SELECT id, state_version FROM workflow_runs;

ALTER TABLE workflow_runs DROP COLUMN state_version;

-- A transition that leaves the run's fields alone no longer rewrites `engine_run`, so it can
-- no longer hold a whole document (fields and `jobs`), which reading takes whole, ignoring
-- the job states written beside it. Runs whose last transition wrote one get its parts: its
-- jobs, each at its position, and the rest as the run's fields.
WITH whole AS MATERIALIZED (
    SELECT id, engine_run::jsonb AS document FROM workflow_runs
    WHERE engine_run IS NOT NULL AND jsonb_typeof(engine_run::jsonb -> 'jobs') = 'array'
)
INSERT INTO engine_jobs (run_id, job_index, state)
    SELECT whole.id, job.position - 1, job.state::text
    FROM whole, jsonb_array_elements(whole.document -> 'jobs') WITH ORDINALITY AS job(state, position)
    ON CONFLICT (run_id, job_index) DO UPDATE SET state = excluded.state;

UPDATE workflow_runs SET engine_run = (engine_run::jsonb - 'jobs')::text
    WHERE engine_run IS NOT NULL AND jsonb_typeof(engine_run::jsonb -> 'jobs') = 'array';
