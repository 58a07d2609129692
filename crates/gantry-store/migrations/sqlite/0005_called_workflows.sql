-- gantry store, SQLite, version 5: the texts of the reusable workflows a run's workflow calls,
-- as a JSON object from each `uses:` text to the called file's text, so that the jobs of called
-- workflows get their payloads after a restart exactly as before it. `{}` for runs that call none.

ALTER TABLE workflow_runs ADD COLUMN called_workflows TEXT NOT NULL DEFAULT '{}';
