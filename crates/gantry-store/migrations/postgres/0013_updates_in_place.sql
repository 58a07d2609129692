-- gantry store, PostgreSQL, version 13: transitions update rows in place.
--
-- A transition rewrites the run's row (its version and engine fields), a job's engine state,
-- the job's row (its status) and, at its end, the attempt's row. PostgreSQL can write such a
-- new row version beside the old one on the same page, leaving every index alone (a
-- "heap-only tuple" update), when no indexed column changes and the page has room. Neither
-- held: inserts filled each page (the default fill factor is 100), and two partial indexes
-- named the columns a job's claim and end change (`jobs.status`, `job_attempts.ended_at_ms`
-- in their conditions). So nearly every update wrote a new entry into each of its table's
-- indexes (six on `workflow_runs`).
--
-- The partial indexes served only recovery after a restart, which now finds queued jobs and
-- running attempts through the runs that have not completed (`workflow_runs_by_status`, then
-- each run's jobs by the unique (run_id, job_key, matrix_index)): a run completes only once
-- every one of its jobs has ended. Pages of the four tables keep half their room for updates
-- (the tables take about twice the space); pages already written keep their layout.

DROP INDEX jobs_queued;
DROP INDEX job_attempts_running;

ALTER TABLE workflow_runs SET (fillfactor = 50);
ALTER TABLE engine_jobs SET (fillfactor = 50);
ALTER TABLE jobs SET (fillfactor = 50);
ALTER TABLE job_attempts SET (fillfactor = 50);
