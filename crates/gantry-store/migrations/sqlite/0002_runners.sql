-- gantry store, SQLite, version 2: runners and their registration tokens, job logs, and the
-- workflow file each run was created from (a claim builds the job's payload from it).

ALTER TABLE workflow_runs ADD COLUMN workflow_source TEXT NOT NULL DEFAULT '';

-- Only hashes of tokens are kept. A token without an organization registers hosted runners.
CREATE TABLE registration_tokens (
    token_hash TEXT PRIMARY KEY,
    org_id INTEGER REFERENCES organizations (id),
    created_at_ms INTEGER NOT NULL,
    expires_at_ms INTEGER
);

CREATE TABLE runners (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    -- NULL: a runner of the hosted pool; else the organization it serves (self-hosted).
    org_id INTEGER REFERENCES organizations (id),
    name TEXT NOT NULL,
    labels TEXT NOT NULL,
    capacity INTEGER NOT NULL CHECK (capacity > 0),
    ephemeral INTEGER NOT NULL CHECK (ephemeral IN (0, 1)),
    credential_hash TEXT NOT NULL,
    registered_at_ms INTEGER NOT NULL,
    removed_at_ms INTEGER
);

-- How many log lines each attempt has sent: the next chunk's offset.
ALTER TABLE job_attempts ADD COLUMN log_lines INTEGER NOT NULL DEFAULT 0;

-- A job's log across its attempts; seq numbers lines from 0 and is what viewers resume from.
CREATE TABLE job_log_lines (
    job_id INTEGER NOT NULL REFERENCES jobs (id),
    seq INTEGER NOT NULL,
    attempt INTEGER NOT NULL,
    step_index INTEGER NOT NULL,
    line_number INTEGER NOT NULL,
    time_ms INTEGER NOT NULL,
    text TEXT NOT NULL,
    PRIMARY KEY (job_id, seq)
);
