-- gantry store, PostgreSQL, version 3: where a repository's git data lives and the secret its webhooks
-- are signed with. A separate table so repositories without git (API-triggered runs) need no
-- row. The secret is kept as given, not hashed: verifying an HMAC needs the key itself.

CREATE TABLE repository_sources (
    repo_id BIGINT PRIMARY KEY REFERENCES repositories (id),
    git_path TEXT NOT NULL,
    webhook_secret TEXT
);
