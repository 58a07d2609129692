//! Every statement the store runs outside migrations, as constants.
//!
//! The text is shared by both backends: SQLite accepts PostgreSQL's `$N` placeholders, and
//! both support `RETURNING`, `ON CONFLICT ... DO UPDATE` with `excluded`, and partial indexes.
//! Updates end in `RETURNING` so that "did a row match" is read the same way on both. Column
//! lists are macros so each record's list is written once and `concat!` can splice it in.

macro_rules! organization_columns {
    () => {
        "id, name, weight, hosted_concurrency_limit"
    };
}

macro_rules! repository_columns {
    () => {
        "id, org_id, name, default_branch"
    };
}

macro_rules! run_columns {
    () => {
        "id, repo_id, workflow_path, workflow_name, run_number, attempt, event_name, git_ref, \
         sha, actor, status, conclusion, created_at_ms, started_at_ms, completed_at_ms, \
         (SELECT state_version FROM run_versions WHERE run_versions.run_id = workflow_runs.id) \
         AS state_version, idempotency_key, workflow_errors"
    };
}

macro_rules! job_columns {
    () => {
        "id, run_id, job_key, matrix_index, name, status, conclusion, attempt, runs_on, \
         waiting_reasons, outputs, priority, queued_at_ms, started_at_ms, completed_at_ms"
    };
}

macro_rules! attempt_columns {
    () => {
        "job_id, attempt, runner_id, fencing_token, lease_deadline_ms, started_at_ms, \
         ended_at_ms, result"
    };
}

macro_rules! step_columns {
    () => {
        "job_id, attempt, step_index, name, status, conclusion, started_at_ms, ended_at_ms"
    };
}

// Organizations and repositories.

pub(crate) const INSERT_ORGANIZATION: &str = "INSERT INTO organizations (name, weight, hosted_concurrency_limit) VALUES ($1, $2, $3) \
     RETURNING id";
pub(crate) const SELECT_ORGANIZATION: &str = concat!(
    "SELECT ",
    organization_columns!(),
    " FROM organizations WHERE id = $1"
);
pub(crate) const SELECT_ORGANIZATION_BY_NAME: &str = concat!(
    "SELECT ",
    organization_columns!(),
    " FROM organizations WHERE name = $1"
);
pub(crate) const LIST_ORGANIZATIONS: &str = concat!(
    "SELECT ",
    organization_columns!(),
    " FROM organizations WHERE id > $1 ORDER BY id LIMIT $2"
);
pub(crate) const ORGANIZATION_EXISTS: &str = "SELECT id FROM organizations WHERE id = $1";

pub(crate) const INSERT_REPOSITORY: &str =
    "INSERT INTO repositories (org_id, name, default_branch) VALUES ($1, $2, $3) RETURNING id";
pub(crate) const SELECT_REPOSITORY: &str = concat!(
    "SELECT ",
    repository_columns!(),
    " FROM repositories WHERE id = $1"
);
pub(crate) const SELECT_REPOSITORY_BY_NAME: &str = concat!(
    "SELECT ",
    repository_columns!(),
    " FROM repositories WHERE name = $2 \
     AND org_id = (SELECT id FROM organizations WHERE name = $1)"
);
pub(crate) const LIST_REPOSITORIES: &str = concat!(
    "SELECT ",
    repository_columns!(),
    " FROM repositories WHERE org_id = $1 AND id > $2 ORDER BY id LIMIT $3"
);
pub(crate) const REPOSITORY_EXISTS: &str = "SELECT id FROM repositories WHERE id = $1";

// Creating a run.

pub(crate) const SELECT_RUN_BY_IDEMPOTENCY_KEY: &str = concat!(
    "SELECT ",
    run_columns!(),
    " FROM workflow_runs WHERE repo_id = $1 AND idempotency_key = $2"
);
/// Takes the next run number of a workflow; the row stays locked (PostgreSQL) until the
/// creating transaction ends, which serializes creators of the same workflow. Selecting from
/// `repositories` makes it the repository check too: no row comes back when the repository
/// does not exist (one statement fewer per creation; the `WHERE` also keeps SQLite from
/// reading `ON CONFLICT` as part of the `SELECT`).
pub(crate) const NEXT_RUN_NUMBER: &str = "INSERT INTO run_counters (repo_id, workflow_path, last_run_number) \
     SELECT id, $2, 1 FROM repositories WHERE id = $1 \
     ON CONFLICT (repo_id, workflow_path) \
     DO UPDATE SET last_run_number = run_counters.last_run_number + 1 \
     RETURNING last_run_number";
/// Inserts the run, queued, without its documents (the builder needs the id first). A
/// concurrent creator that committed the same idempotency key makes this insert nothing.
pub(crate) const INSERT_RUN: &str = "INSERT INTO workflow_runs (repo_id, workflow_path, \
     workflow_name, run_number, attempt, event_name, git_ref, sha, actor, status, \
     created_at_ms, idempotency_key) \
     VALUES ($1, $2, $3, $4, 1, $5, $6, $7, $8, 'queued', $9, $10) \
     ON CONFLICT (repo_id, idempotency_key) DO NOTHING RETURNING id";
/// A new run's state version (1), in its own narrow row (`run_versions`).
pub(crate) const INSERT_RUN_VERSION: &str =
    "INSERT INTO run_versions (run_id, state_version) VALUES ($1, 1)";
/// What a run is created with and never changes, apart from its row so that the row's many
/// updates do not rewrite them: run id, engine document, compiled workflow (NULL for an
/// invalid file), workflow file, called files.
pub(crate) const INSERT_RUN_DOCUMENTS: &str = "INSERT INTO run_documents (run_id, engine_state, \
     engine_spec, workflow_source, called_workflows) VALUES ($1, $2, $3, $4, $5)";
/// A built run that does not start queued (its builder decided otherwise).
pub(crate) const SET_RUN_STATUS: &str = "UPDATE workflow_runs SET status = $2 WHERE id = $1";
/// Ends a run of an invalid workflow file as it is created; `$2` is the errors' JSON array.
pub(crate) const SET_RUN_INVALID: &str = "UPDATE workflow_runs SET status = 'completed', \
     conclusion = 'failure', completed_at_ms = created_at_ms, workflow_errors = $2 WHERE id = $1";
/// `rows` copies of `shape` (a row of a `VALUES` list) separated by commas, each `#` replaced
/// by the next parameter: `$1, $2, …` across the rows, in order.
fn value_rows(rows: usize, shape: &str) -> String {
    let mut sql = String::with_capacity(rows * (shape.len() + 16));
    let mut parameter = 0;
    for row in 0..rows {
        if row > 0 {
            sql.push_str(", ");
        }
        for c in shape.chars() {
            if c == '#' {
                parameter += 1;
                sql.push_str(&format!("${parameter}"));
            } else {
                sql.push(c);
            }
        }
    }
    sql
}

/// `sql` with each numbered parameter (`$` and digits, written in the order they are bound,
/// each once) made a positional one (`?`). The statements here carry no `$` in literals.
pub(crate) fn positional(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '$' && chars.peek().is_some_and(char::is_ascii_digit) {
            while chars.peek().is_some_and(char::is_ascii_digit) {
                chars.next();
            }
            out.push('?');
        } else {
            out.push(c);
        }
    }
    out
}

/// `sql` with each numbered parameter (`$N`) written `?N`, which SQLite binds at position `N`
/// (it numbers `$N` by first use instead): for rusqlite, which binds by position
/// (`direct_transitions.rs`). The statements here carry no `$` in literals.
pub(crate) fn numbered(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        let parameter = c == '$' && chars.peek().is_some_and(char::is_ascii_digit);
        out.push(if parameter { '?' } else { c });
    }
    out
}

/// `sql` without its `RETURNING` clause: SQLite collects a statement's returned rows in a
/// temporary table it creates and drops for each execution (a b-tree and a page cache, the
/// allocations that dominated the direct writer's profile), where the number of rows changed
/// says as much (`direct_transitions.rs`).
pub(crate) fn without_returning(sql: &str) -> &str {
    sql.split_once(" RETURNING ")
        .map_or(sql, |(statement, _)| statement)
}

/// Jobs per multi-row insert: 11 parameters a row stays far below SQLite's limit of 32,766.
pub(crate) const INSERT_JOBS_CHUNK: usize = 500;

/// Inserts `rows` jobs (1 to [`INSERT_JOBS_CHUNK`]); each row binds run id, key, matrix
/// index, name, status, attempt, runs-on, waiting reasons, priority, queued and started times.
pub(crate) fn insert_jobs(rows: usize) -> String {
    let mut sql = String::from(
        "INSERT INTO jobs (run_id, job_key, matrix_index, name, status, attempt, runs_on, \
         waiting_reasons, outputs, priority, queued_at_ms, started_at_ms) VALUES ",
    );
    sql.push_str(&value_rows(rows, "(#, #, #, #, #, #, #, #, '{}', #, #, #)"));
    sql.push_str(" RETURNING id, run_id, job_key, matrix_index");
    sql
}

// Reading runs and jobs.

pub(crate) const SELECT_RUN: &str = concat!(
    "SELECT ",
    run_columns!(),
    " FROM workflow_runs WHERE id = $1"
);
/// A run's engine state in its parts ([`crate::StateChange`]): first the run's row (at job
/// index -1), then the jobs written since it was created. One statement, so one snapshot: the
/// parts of one version, never a transition's run fields with another's jobs.
pub(crate) const SELECT_ENGINE_STATE: &str = "SELECT -1 AS job_index, d.engine_state AS state, \
     d.engine_spec, r.engine_run, v.state_version FROM workflow_runs AS r \
     JOIN run_documents AS d ON d.run_id = r.id JOIN run_versions AS v ON v.run_id = r.id \
     WHERE r.id = $1 \
     UNION ALL SELECT job_index, state, NULL, NULL, NULL FROM engine_jobs WHERE run_id = $1 \
     ORDER BY job_index";
pub(crate) const SELECT_STATE_VERSION: &str =
    "SELECT state_version FROM run_versions WHERE run_id = $1";
/// Newest first, before the cursor `$1` (`i64::MAX` for the first page), `$2` rows. One
/// statement per filter combination so that each can use its index.
pub(crate) const LIST_RUNS: &str = concat!(
    "SELECT ",
    run_columns!(),
    " FROM workflow_runs WHERE id < $1 ORDER BY id DESC LIMIT $2"
);
pub(crate) const LIST_RUNS_OF_REPO: &str = concat!(
    "SELECT ",
    run_columns!(),
    " FROM workflow_runs WHERE id < $1 AND repo_id = $3 ORDER BY id DESC LIMIT $2"
);
pub(crate) const LIST_RUNS_WITH_STATUS: &str = concat!(
    "SELECT ",
    run_columns!(),
    " FROM workflow_runs WHERE id < $1 AND status = $3 ORDER BY id DESC LIMIT $2"
);
pub(crate) const LIST_RUNS_OF_REPO_WITH_STATUS: &str = concat!(
    "SELECT ",
    run_columns!(),
    " FROM workflow_runs WHERE id < $1 AND repo_id = $3 AND status = $4 \
     ORDER BY id DESC LIMIT $2"
);
pub(crate) const RUN_EXISTS: &str = "SELECT id FROM workflow_runs WHERE id = $1";

pub(crate) const SELECT_JOB: &str = concat!("SELECT ", job_columns!(), " FROM jobs WHERE id = $1");
pub(crate) const LIST_JOBS: &str = concat!(
    "SELECT ",
    job_columns!(),
    " FROM jobs WHERE run_id = $1 ORDER BY id"
);
pub(crate) const LIST_JOB_IDS_OF_RUN: &str = "SELECT id FROM jobs WHERE run_id = $1";
pub(crate) const JOB_EXISTS: &str = "SELECT id FROM jobs WHERE id = $1";
/// Whether job `$1` belongs to run `$2`.
pub(crate) const JOB_OF_RUN: &str = "SELECT id FROM jobs WHERE id = $1 AND run_id = $2";
pub(crate) const LIST_ATTEMPTS: &str = concat!(
    "SELECT ",
    attempt_columns!(),
    " FROM job_attempts WHERE job_id = $1 ORDER BY attempt"
);
pub(crate) const LIST_STEP_RESULTS: &str = concat!(
    "SELECT ",
    step_columns!(),
    " FROM step_results WHERE job_id = $1 ORDER BY attempt, step_index"
);

// Transitions.

/// Moves a run's state version on by one if, and only if, it is the expected one; returns
/// the new version. Every transition does this first: the version's row is the lock that
/// orders a run's writers. It is a narrow row of its own (`run_versions`) because every claim
/// and every job's end moves it, while the run's wide row changes only with the run's own
/// fields.
pub(crate) const MOVE_RUN_VERSION: &str = "UPDATE run_versions \
     SET state_version = state_version + 1 \
     WHERE run_id = $1 AND state_version = $2 RETURNING state_version";
/// Writes a run's own engine fields (`$2`; see [`crate::StateChange`]).
pub(crate) const UPDATE_RUN_FIELDS: &str = "UPDATE workflow_runs SET engine_run = $2 WHERE id = $1";
/// [`UPDATE_RUN_FIELDS`] and the run's queryable columns.
pub(crate) const UPDATE_RUN_FIELDS_AND_COLUMNS: &str = "UPDATE workflow_runs \
     SET engine_run = $2, attempt = $3, status = $4, conclusion = $5, started_at_ms = $6, \
     completed_at_ms = $7 WHERE id = $1";
/// The run's queryable columns alone.
pub(crate) const UPDATE_RUN_COLUMNS: &str = "UPDATE workflow_runs \
     SET attempt = $2, status = $3, conclusion = $4, started_at_ms = $5, completed_at_ms = $6 \
     WHERE id = $1";

/// The statement writing what a transition changes of a run's row: its engine fields
/// (`document`) and its queryable columns (`columns`), with the run's id as `$1` and the
/// values in that order from `$2`; `None` when it changes neither.
pub(crate) fn update_run(document: bool, columns: bool) -> Option<&'static str> {
    match (document, columns) {
        (true, true) => Some(UPDATE_RUN_FIELDS_AND_COLUMNS),
        (true, false) => Some(UPDATE_RUN_FIELDS),
        (false, true) => Some(UPDATE_RUN_COLUMNS),
        (false, false) => None,
    }
}

/// [`MOVE_RUN_VERSION`], the write of the run's row ([`update_run`]) and the upsert of the
/// run's changed job states in one statement, for backends that take data-modifying `WITH`
/// clauses ([`super::Backend::DATA_MODIFYING_CTES`]): one round trip instead of up to three.
/// The job states come first, as two arrays (job index, state: `$1`, `$2`), then the run's
/// id (`$3`, also the states' run) and expected version (`$4`), then the run row's values
/// in [`update_run`]'s order from `$5`. The run's row and states are written only if the
/// version moved; returns the new version, or no row.
pub(crate) fn move_run_with_engine_jobs(document: bool, columns: bool) -> String {
    let mut sets = Vec::new();
    let mut parameter = 4;
    let mut next = || {
        parameter += 1;
        parameter
    };
    if document {
        sets.push(format!("engine_run = ${}", next()));
    }
    if columns {
        for column in [
            "attempt",
            "status",
            "conclusion",
            "started_at_ms",
            "completed_at_ms",
        ] {
            sets.push(format!("{column} = ${}", next()));
        }
    }
    let run = if sets.is_empty() {
        String::new()
    } else {
        format!(
            "run AS (UPDATE workflow_runs SET {} \
             WHERE id = $3 AND EXISTS (SELECT 1 FROM moved)), ",
            sets.join(", ")
        )
    };
    format!(
        "WITH moved AS (UPDATE run_versions SET state_version = state_version + 1 \
         WHERE run_id = $3 AND state_version = $4 RETURNING state_version), {run}\
         states AS (INSERT INTO engine_jobs (run_id, job_index, state) \
         SELECT $3, v.job_index, v.state \
         FROM unnest($1::BIGINT[], $2::TEXT[]) AS v(job_index, state) \
         WHERE EXISTS (SELECT 1 FROM moved) \
         ON CONFLICT (run_id, job_index) DO UPDATE SET state = excluded.state) \
         SELECT state_version FROM moved"
    )
}
/// Job states per multi-row upsert: 3 parameters a row.
pub(crate) const UPSERT_ENGINE_JOBS_CHUNK: usize = 1000;

/// Writes job states of one run or of several: `rows` binds run id, job index and state a row
/// ([`super::Backend::rows_to_insert`]).
pub(crate) fn upsert_engine_jobs(rows: &str) -> String {
    format!(
        "INSERT INTO engine_jobs (run_id, job_index, state) {rows} \
         ON CONFLICT (run_id, job_index) DO UPDATE SET state = excluded.state"
    )
}

/// One job state's row for [`upsert_engine_jobs`].
pub(crate) const ENGINE_JOB_ROW: &str = "VALUES ($1, $2, $3)";

/// Updates jobs of one run or of several in one statement: the table `v`
/// ([`super::Backend::rows_table`]) binds run id, id, name, status, conclusion, attempt,
/// runs-on, waiting reasons, outputs, priority and queued, started and completed times a row.
/// A row updates its job only if the job is of that run. Returns the ids it updated.
pub(crate) fn update_jobs(table: &str) -> String {
    format!(
        "UPDATE jobs SET name = v.name, status = v.status, conclusion = v.conclusion, \
         attempt = v.attempt, runs_on = v.runs_on, waiting_reasons = v.waiting_reasons, \
         outputs = v.outputs, priority = v.priority, queued_at_ms = v.queued_at_ms, \
         started_at_ms = v.started_at_ms, completed_at_ms = v.completed_at_ms FROM {table} \
         WHERE jobs.id = v.id AND jobs.run_id = v.run_id RETURNING jobs.id"
    )
}

pub(crate) const UPDATE_JOB: &str = "UPDATE jobs SET name = $3, status = $4, conclusion = $5, \
     attempt = $6, runs_on = $7, waiting_reasons = $8, outputs = $9, priority = $10, \
     queued_at_ms = $11, started_at_ms = $12, completed_at_ms = $13 \
     WHERE id = $1 AND run_id = $2 RETURNING id";
pub(crate) const INSERT_ATTEMPT: &str =
    "INSERT INTO job_attempts (job_id, attempt) VALUES ($1, $2) RETURNING job_id";
/// Ends an attempt that has not ended; with `$5` set, only if it holds that fencing token.
pub(crate) const END_ATTEMPT: &str = "UPDATE job_attempts SET ended_at_ms = $3, result = $4 \
     WHERE job_id = $1 AND attempt = $2 AND ended_at_ms IS NULL \
     AND ($5 IS NULL OR fencing_token = $5) RETURNING job_id";
pub(crate) const ATTEMPT_EXISTS: &str =
    "SELECT job_id FROM job_attempts WHERE job_id = $1 AND attempt = $2";
pub(crate) const UPSERT_STEP_RESULT: &str = "INSERT INTO step_results (job_id, attempt, \
     step_index, name, status, conclusion, started_at_ms, ended_at_ms) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
     ON CONFLICT (job_id, attempt, step_index) DO UPDATE SET name = excluded.name, \
     status = excluded.status, conclusion = excluded.conclusion, \
     started_at_ms = excluded.started_at_ms, ended_at_ms = excluded.ended_at_ms";

// Claims and leases.

/// Moves a queued job to in progress ([`crate::Job::claim`] is the same change in memory)
/// and takes its next fencing token, in one statement.
pub(crate) const CLAIM_JOB: &str = "UPDATE jobs SET status = 'in_progress', \
     started_at_ms = $2, waiting_reasons = '[]', last_fencing_token = last_fencing_token + 1 \
     WHERE id = $1 AND status = 'queued' RETURNING run_id, attempt, last_fencing_token";
pub(crate) const SELECT_JOB_STATUS: &str = "SELECT status FROM jobs WHERE id = $1";
/// The run of job `$1` (which never changes).
pub(crate) const RUN_OF_JOB: &str = "SELECT run_id FROM jobs WHERE id = $1";
/// [`CLAIM_JOB`] and [`CLAIM_ATTEMPT`] in one statement, for backends that take
/// data-modifying `WITH` clauses ([`super::Backend::DATA_MODIFYING_CTES`]): the job (`$1`)
/// claimed at `$2`, then its attempt recorded for runner `$3` with lease deadline `$4`.
/// Returns what [`CLAIM_JOB`] returns and how many attempts were recorded (0 when the attempt
/// was already claimed or has ended), or no row when the job is not queued.
pub(crate) const CLAIM_JOB_AND_ATTEMPT: &str = "WITH claimed AS (UPDATE jobs \
     SET status = 'in_progress', started_at_ms = $2, waiting_reasons = '[]', \
     last_fencing_token = last_fencing_token + 1 \
     WHERE id = $1 AND status = 'queued' RETURNING id, run_id, attempt, last_fencing_token), \
     recorded AS (INSERT INTO job_attempts (job_id, attempt, runner_id, fencing_token, \
     lease_deadline_ms, started_at_ms) \
     SELECT id, attempt, $3, last_fencing_token, $4, $2 FROM claimed \
     ON CONFLICT (job_id, attempt) DO UPDATE SET runner_id = excluded.runner_id, \
     fencing_token = excluded.fencing_token, lease_deadline_ms = excluded.lease_deadline_ms, \
     started_at_ms = excluded.started_at_ms \
     WHERE job_attempts.fencing_token IS NULL AND job_attempts.ended_at_ms IS NULL \
     RETURNING job_id) \
     SELECT run_id, attempt, last_fencing_token, (SELECT count(*) FROM recorded) AS recorded \
     FROM claimed";
/// What [`CLAIM_JOB`] returns, read after it.
pub(crate) const SELECT_CLAIMED_JOB: &str =
    "SELECT run_id, attempt, last_fencing_token FROM jobs WHERE id = $1";
/// Records the claim on the job's current attempt, creating the attempt if the engine did
/// not; an attempt already claimed or ended is left alone (no row returned).
pub(crate) const CLAIM_ATTEMPT: &str = "INSERT INTO job_attempts (job_id, attempt, runner_id, \
     fencing_token, lease_deadline_ms, started_at_ms) VALUES ($1, $2, $3, $4, $5, $6) \
     ON CONFLICT (job_id, attempt) DO UPDATE SET runner_id = excluded.runner_id, \
     fencing_token = excluded.fencing_token, lease_deadline_ms = excluded.lease_deadline_ms, \
     started_at_ms = excluded.started_at_ms \
     WHERE job_attempts.fencing_token IS NULL AND job_attempts.ended_at_ms IS NULL \
     RETURNING job_id";
/// Extends the lease of the attempt holding `$2`, if that is still the job's latest token,
/// the attempt has not ended and the job is still in progress.
pub(crate) const RENEW_LEASE: &str = "UPDATE job_attempts SET lease_deadline_ms = $3 \
     WHERE job_id = $1 AND fencing_token = $2 AND ended_at_ms IS NULL \
     AND EXISTS (SELECT 1 FROM jobs WHERE jobs.id = $1 AND jobs.last_fencing_token = $2 \
     AND jobs.status = 'in_progress') RETURNING job_id";

/// Sets a job's priority unless it has completed; returns its run.
pub(crate) const SET_JOB_PRIORITY: &str = "UPDATE jobs SET priority = $2 \
     WHERE id = $1 AND status <> 'completed' RETURNING run_id";
/// Moves a run's state version without changing its document, so a transition computed from
/// rows read before a change made outside the engine (a job's priority) is refused and
/// recomputed instead of writing the old value back.
pub(crate) const BUMP_STATE_VERSION: &str =
    "UPDATE run_versions SET state_version = state_version + 1 WHERE run_id = $1";

// Recovery.

/// The queued jobs to queue again after a restart, found through the runs that have not
/// completed (a run completes only once all its jobs have ended): no index names a job's
/// status, so that PostgreSQL can update job rows in place (migration 13).
pub(crate) const QUEUED_JOBS: &str = concat!(
    "SELECT ",
    "jobs.id, jobs.run_id, jobs.job_key, jobs.matrix_index, jobs.name, jobs.status, \
     jobs.conclusion, jobs.attempt, jobs.runs_on, jobs.waiting_reasons, jobs.outputs, \
     jobs.priority, jobs.queued_at_ms, jobs.started_at_ms, jobs.completed_at_ms, \
     workflow_runs.repo_id, repositories.org_id \
     FROM workflow_runs JOIN jobs ON jobs.run_id = workflow_runs.id \
     JOIN repositories ON repositories.id = workflow_runs.repo_id \
     WHERE workflow_runs.status IN ('queued', 'in_progress') AND jobs.status = 'queued' \
     ORDER BY jobs.id"
);
/// The claimed attempts that have not ended (the leases to watch after a restart), found as
/// [`QUEUED_JOBS`] finds its jobs.
pub(crate) const RUNNING_ATTEMPTS: &str = "SELECT job_attempts.job_id, jobs.run_id, \
     workflow_runs.repo_id, repositories.org_id, job_attempts.attempt, job_attempts.runner_id, \
     job_attempts.fencing_token, job_attempts.lease_deadline_ms, job_attempts.started_at_ms \
     FROM workflow_runs JOIN jobs ON jobs.run_id = workflow_runs.id \
     JOIN job_attempts ON job_attempts.job_id = jobs.id \
     JOIN repositories ON repositories.id = workflow_runs.repo_id \
     WHERE workflow_runs.status IN ('queued', 'in_progress') \
     AND job_attempts.fencing_token IS NOT NULL AND job_attempts.ended_at_ms IS NULL \
     ORDER BY job_attempts.job_id, job_attempts.attempt";

// Migrations.

pub(crate) const CREATE_MIGRATIONS_TABLE: &str = "CREATE TABLE IF NOT EXISTS schema_migrations \
     (version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at_ms BIGINT NOT NULL)";
pub(crate) const APPLIED_MIGRATIONS: &str =
    "SELECT version FROM schema_migrations ORDER BY version";
pub(crate) const RECORD_MIGRATION: &str =
    "INSERT INTO schema_migrations (version, name, applied_at_ms) VALUES ($1, $2, $3)";

// Creating the runs of a batch together (`sql/create_together.rs`).

/// Which of the given idempotency keys (`$1`…`$n`) some run already has, with its repository.
pub(crate) fn existing_keys(keys: usize) -> String {
    let params: Vec<String> = (1..=keys).map(|key| format!("${key}")).collect();
    format!(
        "SELECT repo_id, idempotency_key FROM workflow_runs WHERE idempotency_key IN ({})",
        params.join(", ")
    )
}
/// Takes the next `$3` run numbers of a workflow at once and returns the last; no row for an
/// unknown repository (as [`NEXT_RUN_NUMBER`]).
pub(crate) const NEXT_RUN_NUMBERS: &str = "INSERT INTO run_counters (repo_id, workflow_path, \
     last_run_number) SELECT id, $2, $3 FROM repositories WHERE id = $1 \
     ON CONFLICT (repo_id, workflow_path) \
     DO UPDATE SET last_run_number = run_counters.last_run_number + excluded.last_run_number \
     RETURNING last_run_number";
/// Runs per multi-row insert (of runs or their documents) or status update: far below both
/// backends' parameter limits.
pub(crate) const RUNS_CHUNK: usize = 100;
/// Inserts `rows` runs as [`INSERT_RUN`] does one (10 parameters a row, in its order).
pub(crate) fn insert_runs(rows: usize) -> String {
    let mut sql = String::from(
        "INSERT INTO workflow_runs (repo_id, workflow_path, workflow_name, run_number, attempt, \
         event_name, git_ref, sha, actor, status, created_at_ms, idempotency_key) VALUES ",
    );
    sql.push_str(&value_rows(
        rows,
        "(#, #, #, #, 1, #, #, #, #, 'queued', #, #)",
    ));
    sql.push_str(
        " ON CONFLICT (repo_id, idempotency_key) DO NOTHING \
         RETURNING id, repo_id, workflow_path, run_number",
    );
    sql
}
/// Inserts the documents of `rows` runs as [`INSERT_RUN_DOCUMENTS`] does one's (5 parameters
/// a row, in its order).
pub(crate) fn insert_run_documents(rows: usize) -> String {
    let mut sql = String::from(
        "INSERT INTO run_documents (run_id, engine_state, engine_spec, workflow_source, \
         called_workflows) VALUES ",
    );
    sql.push_str(&value_rows(rows, "(#, #, #, #, #)"));
    sql
}
/// Gives `rows` new runs their state version as [`INSERT_RUN_VERSION`] does one (the run's id
/// a row).
pub(crate) fn insert_run_versions(rows: usize) -> String {
    let mut sql = String::from("INSERT INTO run_versions (run_id, state_version) VALUES ");
    sql.push_str(&value_rows(rows, "(#, 1)"));
    sql
}
/// Sets the status of many runs as [`SET_RUN_STATUS`] does one's (the table `v` binds id and
/// status a row).
pub(crate) fn set_runs_status(table: &str) -> String {
    format!("UPDATE workflow_runs SET status = v.status FROM {table} WHERE workflow_runs.id = v.id")
}

// Storing the transitions of a batch together (`sql/transitions_together.rs`).

/// [`MOVE_RUN_VERSION`] for many runs at once: the table `v` binds run id and expected state
/// version a row. A run whose version is not the expected one is left alone; returns the
/// runs it moved (as `id`) with their new versions.
pub(crate) fn move_run_versions(table: &str) -> String {
    format!(
        "UPDATE run_versions SET state_version = run_versions.state_version + 1 FROM {table} \
         WHERE run_versions.run_id = v.id AND run_versions.state_version = v.expected \
         RETURNING run_versions.run_id AS id, run_versions.state_version"
    )
}

/// [`UPDATE_RUN_FIELDS_AND_COLUMNS`] for many runs at once: the table `v` binds run id, run
/// fields, attempt, status, conclusion, started and completed times a row.
pub(crate) fn update_runs_fields(table: &str) -> String {
    format!(
        "UPDATE workflow_runs SET engine_run = v.engine_run, attempt = v.attempt, \
         status = v.status, conclusion = v.conclusion, started_at_ms = v.started_at_ms, \
         completed_at_ms = v.completed_at_ms FROM {table} WHERE workflow_runs.id = v.id"
    )
}

/// [`CLAIM_JOB`] for many jobs at once (the table `v` binds job id and claim time a row);
/// returns the jobs it claimed with their run, attempt and new fencing token.
pub(crate) fn claim_jobs(table: &str) -> String {
    format!(
        "UPDATE jobs SET status = 'in_progress', started_at_ms = v.now_ms, \
         waiting_reasons = '[]', last_fencing_token = jobs.last_fencing_token + 1 \
         FROM {table} \
         WHERE jobs.id = v.id AND jobs.status = 'queued' \
         RETURNING jobs.id, jobs.run_id, jobs.attempt, jobs.last_fencing_token"
    )
}

/// [`CLAIM_ATTEMPT`] for many attempts at once (`rows` binds its six values a row); returns
/// the job of each attempt it recorded.
pub(crate) fn claim_attempts(rows: &str) -> String {
    format!(
        "INSERT INTO job_attempts (job_id, attempt, runner_id, fencing_token, \
         lease_deadline_ms, started_at_ms) {rows} \
         ON CONFLICT (job_id, attempt) DO UPDATE SET runner_id = excluded.runner_id, \
         fencing_token = excluded.fencing_token, lease_deadline_ms = excluded.lease_deadline_ms, \
         started_at_ms = excluded.started_at_ms \
         WHERE job_attempts.fencing_token IS NULL AND job_attempts.ended_at_ms IS NULL \
         RETURNING job_id"
    )
}

/// [`END_ATTEMPT`] for many attempts at once (the table `v` binds job id, attempt, end time,
/// result and the fencing token it must hold, or NULL, a row); returns the job of each
/// attempt it ended.
pub(crate) fn end_attempts(table: &str) -> String {
    format!(
        "UPDATE job_attempts SET ended_at_ms = v.ended_at_ms, result = v.result FROM {table} \
         WHERE job_attempts.job_id = v.job_id AND job_attempts.attempt = v.attempt \
         AND job_attempts.ended_at_ms IS NULL \
         AND (v.token IS NULL OR job_attempts.fencing_token = v.token) \
         RETURNING job_attempts.job_id"
    )
}

#[cfg(test)]
mod tests {
    use super::super::multi_row::{Rows, cast_rows_table, values_list};
    use super::*;

    #[test]
    fn without_returning_cuts_the_returning_clause_only() {
        assert_eq!(
            without_returning(CLAIM_JOB),
            "UPDATE jobs SET status = 'in_progress', started_at_ms = $2, waiting_reasons = '[]', \
             last_fencing_token = last_fencing_token + 1 WHERE id = $1 AND status = 'queued'"
        );
        assert_eq!(without_returning(JOB_OF_RUN), JOB_OF_RUN);
    }

    #[test]
    fn numbered_parameters_keep_their_numbers() {
        assert_eq!(
            numbered("UPDATE t SET a = $3, b = '$x' WHERE id = $1 AND v = $12"),
            "UPDATE t SET a = ?3, b = '$x' WHERE id = ?1 AND v = ?12"
        );
    }

    #[test]
    fn value_rows_number_the_parameters_across_rows() {
        assert_eq!(value_rows(2, "(#, 1, #)"), "($1, 1, $2), ($3, 1, $4)");
        assert_eq!(value_rows(1, "('{}', #)"), "('{}', $1)");
    }

    /// The numbers of `sql`'s parameters in the order they are written.
    fn parameter_order(sql: &str) -> Vec<usize> {
        sql.split('$')
            .skip(1)
            .filter_map(|rest| {
                let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
                digits.parse().ok()
            })
            .collect()
    }

    /// Every multi-row statement writes its parameters 1, 2, 3, … in the order they are
    /// bound, so that SQLite may bind them by position ([`positional`]).
    #[test]
    fn multi_row_statements_number_their_parameters_in_order() {
        let rows = Rows::new()
            .int("a", [1, 2, 3])
            .maybe_text("b", [None, None, None]);
        let (table, values) = (cast_rows_table(&rows), values_list(&rows));
        let statements = [
            existing_keys(3),
            insert_runs(3),
            insert_run_documents(3),
            insert_run_versions(3),
            set_runs_status(&table),
            insert_jobs(3),
            upsert_engine_jobs(&values),
            update_jobs(&table),
            move_run_versions(&table),
            update_runs_fields(&table),
            claim_jobs(&table),
            claim_attempts(&values),
            end_attempts(&table),
        ];
        for sql in statements {
            let order = parameter_order(&sql);
            let expected: Vec<usize> = (1..=order.len()).collect();
            assert_eq!(order, expected, "{sql}");
            let positional = positional(&sql);
            assert!(!positional.contains('$'), "{positional}");
            assert_eq!(positional.matches('?').count(), order.len());
        }
    }
}
