-- gantry store, SQLite, version 13: recovery finds queued jobs and running attempts through
-- the runs that have not completed (`workflow_runs_by_status`, then each run's jobs by the
-- unique (run_id, job_key, matrix_index)); a run completes only once every one of its jobs
-- has ended.
--
-- The two partial indexes that served it before were written by every claim and every end of
-- an attempt. (On PostgreSQL they also kept those updates from being made in place; see its
-- version 13.)

DROP INDEX jobs_queued;
DROP INDEX job_attempts_running;
