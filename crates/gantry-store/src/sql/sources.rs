//! Repository sources: one row per repository that has git data, replaced as a whole.

use sqlx::{ColumnIndex, Executor, IntoArguments, Type};

use super::rows::StoreRow;
use super::{Backend, SqlStore, require_text};
use crate::error::StoreError;
use crate::ids::RepoId;
use crate::sources::RepositorySource;

/// Sets or replaces a repository's source.
const UPSERT_SOURCE: &str = "INSERT INTO repository_sources \
     (repo_id, git_path, webhook_secret, git_url) VALUES ($1, $2, $3, $4) \
     ON CONFLICT (repo_id) DO UPDATE SET git_path = excluded.git_path, \
     webhook_secret = excluded.webhook_secret, git_url = excluded.git_url";

/// A repository's source.
const SELECT_SOURCE: &str =
    "SELECT repo_id, git_path, webhook_secret, git_url FROM repository_sources WHERE repo_id = $1";

impl<DB> SqlStore<DB>
where
    DB: Backend,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    for<'q> i64: sqlx::Encode<'q, DB> + sqlx::Decode<'q, DB> + Type<DB>,
    for<'q> String: sqlx::Decode<'q, DB> + Type<DB>,
    for<'q> &'q str: sqlx::Encode<'q, DB> + Type<DB>,
    for<'q> Option<&'q str>: sqlx::Encode<'q, DB>,
    &'static str: ColumnIndex<DB::Row>,
{
    pub(super) async fn set_repository_source(
        &self,
        source: RepositorySource,
    ) -> Result<(), StoreError> {
        require_text("git path", &source.git_path)?;
        if let Some(secret) = &source.webhook_secret {
            require_text("webhook secret", secret)?;
        }
        if let Some(url) = &source.git_url {
            require_text("git url", url)?;
        }
        sqlx::query(UPSERT_SOURCE)
            .bind(source.repo_id.0)
            .bind(source.git_path.as_str())
            .bind(source.webhook_secret.as_deref())
            .bind(source.git_url.as_deref())
            .execute(&self.writes)
            .await
            .map_err(|error| {
                if StoreError::is_foreign_key_violation(&error) {
                    StoreError::not_found(format!("repository {}", source.repo_id.0))
                } else {
                    StoreError::Database(error)
                }
            })?;
        Ok(())
    }

    pub(super) async fn get_repository_source(
        &self,
        repo_id: RepoId,
    ) -> Result<RepositorySource, StoreError> {
        let row = sqlx::query(SELECT_SOURCE)
            .bind(repo_id.0)
            .fetch_optional(&self.reads)
            .await?
            .ok_or_else(|| {
                StoreError::not_found(format!("git source of repository {}", repo_id.0))
            })?;
        Ok(RepositorySource {
            repo_id: RepoId(row.int("repo_id")?),
            git_path: row.text("git_path")?,
            webhook_secret: row.opt_text("webhook_secret")?,
            git_url: row.opt_text("git_url")?,
        })
    }
}
