-- gantry store, PostgreSQL, version 1: tenants, repositories, runs, jobs, attempts and steps.
-- Timestamps are milliseconds since the Unix epoch (BIGINT); JSON documents are TEXT that the
-- store writes and reads with serde_json (opaque to the database, byte for byte what was
-- written, and no jsonb parse on the hot path). Identity columns never reuse ids, so a newer
-- row has a larger id (run pagination relies on it).

CREATE TABLE organizations (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    weight BIGINT NOT NULL CHECK (weight > 0),
    hosted_concurrency_limit BIGINT CHECK (hosted_concurrency_limit >= 0)
);

CREATE TABLE repositories (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id BIGINT NOT NULL REFERENCES organizations (id),
    name TEXT NOT NULL,
    default_branch TEXT NOT NULL,
    UNIQUE (org_id, name)
);

-- The last run number given per workflow file of a repository. Incremented inside the
-- transaction that creates the run, so a rolled-back creation leaves no gap.
CREATE TABLE run_counters (
    repo_id BIGINT NOT NULL REFERENCES repositories (id),
    workflow_path TEXT NOT NULL,
    last_run_number BIGINT NOT NULL,
    PRIMARY KEY (repo_id, workflow_path)
);

CREATE TABLE workflow_runs (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    repo_id BIGINT NOT NULL REFERENCES repositories (id),
    workflow_path TEXT NOT NULL,
    workflow_name TEXT NOT NULL,
    run_number BIGINT NOT NULL,
    attempt BIGINT NOT NULL,
    event_name TEXT NOT NULL,
    git_ref TEXT NOT NULL,
    sha TEXT NOT NULL,
    actor TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('queued', 'in_progress', 'completed')),
    conclusion TEXT CHECK (conclusion IN ('success', 'failure', 'cancelled', 'skipped')),
    created_at_ms BIGINT NOT NULL,
    started_at_ms BIGINT,
    completed_at_ms BIGINT,
    -- The engine's state of the run: an opaque JSON document, replaced whole by each
    -- transition, guarded by state_version (optimistic concurrency).
    engine_state TEXT NOT NULL,
    state_version BIGINT NOT NULL,
    idempotency_key TEXT,
    UNIQUE (repo_id, workflow_path, run_number),
    UNIQUE (repo_id, idempotency_key)
);

CREATE INDEX workflow_runs_by_repo ON workflow_runs (repo_id, id);
CREATE INDEX workflow_runs_by_status ON workflow_runs (status, id);
CREATE INDEX workflow_runs_by_repo_status ON workflow_runs (repo_id, status, id);

CREATE TABLE jobs (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id BIGINT NOT NULL REFERENCES workflow_runs (id),
    job_key TEXT NOT NULL,
    matrix_index BIGINT NOT NULL,
    name TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('waiting', 'queued', 'in_progress', 'completed')),
    conclusion TEXT CHECK (conclusion IN ('success', 'failure', 'cancelled', 'skipped')),
    attempt BIGINT NOT NULL,
    runs_on TEXT NOT NULL,
    waiting_reasons TEXT NOT NULL,
    outputs TEXT NOT NULL,
    priority BIGINT NOT NULL,
    -- The token of the job's latest claim; each claim takes the next one.
    last_fencing_token BIGINT NOT NULL DEFAULT 0,
    queued_at_ms BIGINT,
    started_at_ms BIGINT,
    completed_at_ms BIGINT,
    UNIQUE (run_id, job_key, matrix_index)
);

-- What the dispatcher rebuilds its queue from after a restart.
CREATE INDEX jobs_queued ON jobs (id) WHERE status = 'queued';

CREATE TABLE job_attempts (
    job_id BIGINT NOT NULL REFERENCES jobs (id),
    attempt BIGINT NOT NULL,
    runner_id BIGINT,
    fencing_token BIGINT,
    lease_deadline_ms BIGINT,
    started_at_ms BIGINT,
    ended_at_ms BIGINT,
    result TEXT CHECK (result IN ('success', 'failure', 'cancelled', 'skipped')),
    PRIMARY KEY (job_id, attempt)
);

-- Claimed attempts that have not ended: the leases to watch after a restart.
CREATE INDEX job_attempts_running ON job_attempts (job_id)
    WHERE fencing_token IS NOT NULL AND ended_at_ms IS NULL;

CREATE TABLE step_results (
    job_id BIGINT NOT NULL,
    attempt BIGINT NOT NULL,
    step_index BIGINT NOT NULL,
    name TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('queued', 'in_progress', 'completed')),
    conclusion TEXT CHECK (conclusion IN ('success', 'failure', 'cancelled', 'skipped')),
    started_at_ms BIGINT,
    ended_at_ms BIGINT,
    PRIMARY KEY (job_id, attempt, step_index),
    FOREIGN KEY (job_id, attempt) REFERENCES job_attempts (job_id, attempt)
);
