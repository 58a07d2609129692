-- gantry store, version 7: runner groups. An organization's registration token may name a
-- runner group and restrict it to some of the organization's repositories; the runners it
-- registers inherit both. A job that names a group (`runs-on: {group: ...}`) goes only to
-- runners of that group, and a restricted runner takes only jobs of its repositories.

-- NULL: no group. repo_ids: a JSON array of repository ids, NULL for every repository.
ALTER TABLE registration_tokens ADD COLUMN runner_group TEXT;
ALTER TABLE registration_tokens ADD COLUMN repo_ids TEXT;
ALTER TABLE runners ADD COLUMN runner_group TEXT;
ALTER TABLE runners ADD COLUMN repo_ids TEXT;
