//! The statements of the runner side (tokens, runners, step reports, logs), in the dialect
//! both backends accept, like `queries`.

pub(crate) const SAVE_REGISTRATION_TOKEN: &str = "INSERT INTO registration_tokens \
     (token_hash, org_id, created_at_ms, expires_at_ms, runner_group, repo_ids) \
     VALUES ($1, $2, $3, $4, $5, $6) \
     ON CONFLICT (token_hash) DO UPDATE SET expires_at_ms = excluded.expires_at_ms";
pub(crate) const VALID_REGISTRATION_TOKEN: &str = "SELECT org_id, runner_group, repo_ids \
     FROM registration_tokens \
     WHERE token_hash = $1 AND (expires_at_ms IS NULL OR expires_at_ms > $2)";

const RUNNER_COLUMNS: &str = "id, org_id, name, labels, capacity, ephemeral, credential_hash, \
     registered_at_ms, removed_at_ms, runner_group, repo_ids";

pub(crate) fn insert_runner() -> String {
    format!(
        "INSERT INTO runners (org_id, name, labels, capacity, ephemeral, credential_hash, \
         registered_at_ms, runner_group, repo_ids) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
         RETURNING {RUNNER_COLUMNS}"
    )
}
pub(crate) fn get_runner() -> String {
    format!("SELECT {RUNNER_COLUMNS} FROM runners WHERE id = $1")
}
pub(crate) fn list_runners() -> String {
    format!("SELECT {RUNNER_COLUMNS} FROM runners WHERE removed_at_ms IS NULL ORDER BY id")
}
pub(crate) const REMOVE_RUNNER: &str = "UPDATE runners SET removed_at_ms = $2 \
     WHERE id = $1 AND removed_at_ms IS NULL";

/// The attempt a fencing token holds, if the token is still the job's latest and the attempt
/// has not ended; locks nothing, so callers run it inside their write transaction.
pub(crate) const HELD_ATTEMPT: &str = "SELECT job_attempts.attempt, job_attempts.log_lines \
     FROM job_attempts JOIN jobs ON jobs.id = job_attempts.job_id \
     WHERE job_attempts.job_id = $1 AND job_attempts.fencing_token = $2 \
     AND job_attempts.ended_at_ms IS NULL AND jobs.last_fencing_token = $2 \
     AND jobs.status = 'in_progress'";

pub(crate) const STEP_OF_ATTEMPT: &str = "SELECT status, conclusion FROM step_results \
     WHERE job_id = $1 AND attempt = $2 AND step_index = $3";
/// The attempt's last reported step and whether one is still running.
pub(crate) const LAST_STEP_OF_ATTEMPT: &str = "SELECT step_index, status FROM step_results \
     WHERE job_id = $1 AND attempt = $2 ORDER BY step_index DESC LIMIT 1";

pub(crate) const NEXT_LOG_SEQ: &str =
    "SELECT COALESCE(MAX(seq), -1) + 1 AS next FROM job_log_lines WHERE job_id = $1";
pub(crate) const SET_LOG_LINES: &str =
    "UPDATE job_attempts SET log_lines = $3 WHERE job_id = $1 AND attempt = $2";
/// Log lines per multi-row insert: 7 parameters a row.
pub(crate) const INSERT_LOG_CHUNK: usize = 200;

/// Inserts `rows` log lines; each row binds job id, seq, attempt, step index, line number,
/// time and text.
pub(crate) fn insert_log_lines(rows: usize) -> String {
    let mut sql = String::from(
        "INSERT INTO job_log_lines (job_id, seq, attempt, step_index, line_number, time_ms, \
         text) VALUES ",
    );
    for row in 0..rows {
        let base = row * 7;
        if row > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for column in 1..=7 {
            if column > 1 {
                sql.push_str(", ");
            }
            sql.push('$');
            sql.push_str(&(base + column).to_string());
        }
        sql.push(')');
    }
    sql
}

pub(crate) const READ_LOG: &str = "SELECT seq, attempt, step_index, line_number, time_ms, text \
     FROM job_log_lines WHERE job_id = $1 AND seq > $2 ORDER BY seq LIMIT $3";

pub(crate) const WORKFLOW_SOURCE: &str =
    "SELECT workflow_source FROM run_documents WHERE run_id = $1";
pub(crate) const CALLED_WORKFLOWS: &str =
    "SELECT called_workflows FROM run_documents WHERE run_id = $1";
