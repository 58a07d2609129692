-- gantry store, PostgreSQL, version 14: the rows every claim, job end and run creation writes
-- check no foreign key.
--
-- PostgreSQL checks a foreign key with a trigger per inserted row that looks the parent up
-- and locks it (`FOR KEY SHARE`, which rewrites the parent's row header and logs it). In a
-- drain that made recording a claim's attempt seven times as costly as the insert alone
-- (100,000 attempts: 1.37 s against 0.19 s), the largest single cost of a claim in
-- PostgreSQL. These parents are never deleted (no statement of the store deletes a run or a
-- job), and each of these children is written only by the transaction that creates its
-- parent or that has just changed it under a guard: a run's jobs, engine states and documents
-- by the transaction creating the run; a job's attempt by the claim that moved the job from
-- queued in the same transaction (the attempt is written only for the jobs that claim
-- returned); an engine state by the transition that moved its run's version. So the checks
-- could only ever catch a bug of the store, at a cost paid on every row. Step results and log
-- lines keep theirs (a runner's report names them).

ALTER TABLE job_attempts DROP CONSTRAINT job_attempts_job_id_fkey;
ALTER TABLE jobs DROP CONSTRAINT jobs_run_id_fkey;
ALTER TABLE engine_jobs DROP CONSTRAINT engine_jobs_run_id_fkey;
ALTER TABLE run_documents DROP CONSTRAINT run_documents_run_id_fkey;
