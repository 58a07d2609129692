-- gantry store, PostgreSQL, version 8: a run's compiled workflow (the engine's spec), stored
-- once when the run is created instead of inside the engine state rewritten on every event.
-- NULL for runs of invalid workflow files, which have no engine state.
--
-- Runs created before this version carry their spec inside their state: it is copied out
-- here, so that once the server rewrites such a state without it the run still has its spec.
-- `json` (not `jsonb`) keeps the text's key order, which the engine's ordered maps rely on.

ALTER TABLE workflow_runs ADD COLUMN engine_spec TEXT;
UPDATE workflow_runs SET engine_spec = (engine_state::json -> 'spec')::text
    WHERE json_typeof(engine_state::json -> 'spec') = 'object';
