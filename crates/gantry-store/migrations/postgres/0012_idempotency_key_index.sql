-- gantry store, version 12: runs can be found by their idempotency key alone.
--
-- A batch of creations looks up all its keys in one statement (`existing_keys`): the keys of
-- a batch may belong to several repositories, so it asks `idempotency_key IN (...)` and checks
-- the repository of each row found. The unique constraint on (repo_id, idempotency_key)
-- cannot serve that lookup (its first column is not in it), so every batch of creations that
-- carried a key read the whole of `workflow_runs`. The index is partial: runs created without
-- a key (most of them) cost it nothing.

CREATE INDEX workflow_runs_by_idempotency_key ON workflow_runs (idempotency_key)
    WHERE idempotency_key IS NOT NULL;
