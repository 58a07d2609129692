-- gantry store, version 8: a run's compiled workflow (the engine's spec), stored once when
-- the run is created instead of inside the engine state rewritten on every event. NULL for
-- runs of invalid workflow files, which have no engine state.
--
-- Runs created before this version carry their spec inside their state: it is copied out
-- here, so that once the server rewrites such a state without it the run still has its spec.
-- SQLite's JSON functions keep the text's key order.

ALTER TABLE workflow_runs ADD COLUMN engine_spec TEXT;
UPDATE workflow_runs SET engine_spec = json_extract(engine_state, '$.spec')
    WHERE json_type(engine_state, '$.spec') = 'object';
