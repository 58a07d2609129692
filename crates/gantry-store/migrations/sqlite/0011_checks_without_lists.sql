-- gantry store, version 11: the CHECK constraints on statuses and results say the same thing
-- without a list of values.
--
-- SQLite evaluates `status IN ('queued', 'in_progress', 'completed')` by building a temporary
-- b-tree of the three values each time a statement writes the column: every claim, result and
-- run update built and dropped one or two of them (in `perf`, about a tenth of the writer
-- thread's time). `status = 'queued' OR status = 'in_progress' OR ...` is the same constraint,
-- NULL included (a NULL conclusion passes both), evaluated by comparisons.
--
-- A CHECK constraint lives only in the table's schema text, not in its stored rows, so the
-- text is changed in place, as SQLite's documentation describes for such changes ("Making
-- Other Kinds Of Table Schema Changes"); rebuilding the four tables would copy every row for
-- nothing. `writable_schema = RESET` reloads this connection's schema, and creating and
-- dropping a table moves the schema version on, so other connections reload theirs.

PRAGMA writable_schema = ON;

UPDATE sqlite_schema SET sql =
    replace(replace(replace(replace(sql,
        'status IN (''waiting'', ''queued'', ''in_progress'', ''completed'')',
        'status = ''waiting'' OR status = ''queued'' OR status = ''in_progress'' OR status = ''completed'''),
        'status IN (''queued'', ''in_progress'', ''completed'')',
        'status = ''queued'' OR status = ''in_progress'' OR status = ''completed'''),
        'conclusion IN (''success'', ''failure'', ''cancelled'', ''skipped'')',
        'conclusion = ''success'' OR conclusion = ''failure'' OR conclusion = ''cancelled'' OR conclusion = ''skipped'''),
        'result IN (''success'', ''failure'', ''cancelled'', ''skipped'')',
        'result = ''success'' OR result = ''failure'' OR result = ''cancelled'' OR result = ''skipped''')
    WHERE type = 'table' AND name IN ('workflow_runs', 'jobs', 'job_attempts', 'step_results');

PRAGMA writable_schema = RESET;

CREATE TABLE schema_version_step (unused INTEGER);
DROP TABLE schema_version_step;
