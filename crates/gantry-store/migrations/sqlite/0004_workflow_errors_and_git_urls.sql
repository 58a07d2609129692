-- gantry store, SQLite, version 4: runs of workflow files that failed to load, and repositories
-- mirrored from a git URL.

-- A run recorded for a workflow file that failed validation (GitHub's "Invalid workflow
-- file"): a JSON array of `file:line:col: message` texts. NULL for every run whose file loaded;
-- such a run has no jobs and no engine state (its document is JSON null).
ALTER TABLE workflow_runs ADD COLUMN workflow_errors TEXT;

-- The URL the server's bare mirror at git_path was cloned from and fetches from when an event
-- names a commit the mirror lacks. NULL for a repository the server reads in place.
ALTER TABLE repository_sources ADD COLUMN git_url TEXT;
