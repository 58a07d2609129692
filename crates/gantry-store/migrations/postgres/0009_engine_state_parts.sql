-- gantry store, version 9: a run's engine state in parts, so that an event writes what it
-- changed instead of the whole document (a leaf of a 1,000-job fan-out rewrote ~450 KB).
--
-- `engine_state` keeps the whole document the run was created with (or, for runs from
-- before this version, the last one written). Transitions write the run's own fields to
-- `engine_run` (a document without `jobs`; NULL until the first transition) and each
-- changed job's state to `engine_jobs`, at its position in the document's `jobs`. The
-- store joins the three when the state is read.

ALTER TABLE workflow_runs ADD COLUMN engine_run TEXT;

CREATE TABLE engine_jobs (
    run_id BIGINT NOT NULL REFERENCES workflow_runs (id),
    job_index BIGINT NOT NULL,
    state TEXT NOT NULL,
    PRIMARY KEY (run_id, job_index)
);
