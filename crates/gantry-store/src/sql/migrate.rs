//! The migration runner: numbered `.sql` files per backend, applied on open.
//!
//! Each backend lists its migrations (`crate::sqlite`, `crate::postgres`) as files under
//! `migrations/<backend>/NNNN_name.sql`, embedded with `include_str!`. The runner records each
//! applied version in `schema_migrations` and applies the missing ones in order, all in one
//! transaction with their records: a crash mid-way leaves the schema as it was, and running it
//! again applies nothing new. A database holding a version this build does not know is
//! refused rather than used.

use std::time::{SystemTime, UNIX_EPOCH};

use sqlx::{ColumnIndex, Decode, Encode, Executor, IntoArguments, Type};

use super::rows::StoreRow;
use super::{Backend, SqlStore, queries as q};
use crate::error::StoreError;

/// One numbered schema change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Migration {
    /// Its number; migrations apply in increasing order, each once.
    pub version: i64,
    /// A short name, recorded with the version.
    pub name: &'static str,
    /// The statements, run as one script.
    pub sql: &'static str,
}

impl<DB> SqlStore<DB>
where
    DB: Backend,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    for<'q> i64: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> String: Decode<'q, DB> + Type<DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    &'static str: ColumnIndex<DB::Row>,
{
    /// Applies the missing migrations; returns their versions.
    pub(super) async fn apply_migrations(&self) -> Result<Vec<i64>, StoreError> {
        let mut tx = self.writes.begin_with(DB::BEGIN_WRITE).await?;
        if let Some(lock) = DB::LOCK_MIGRATIONS {
            sqlx::raw_sql(lock).execute(&mut *tx).await?;
        }
        sqlx::query(q::CREATE_MIGRATIONS_TABLE)
            .execute(&mut *tx)
            .await?;
        let applied = sqlx::query(q::APPLIED_MIGRATIONS)
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(|row| row.int("version"))
            .collect::<Result<Vec<i64>, _>>()?;
        let known = DB::MIGRATIONS
            .last()
            .map_or(0, |migration| migration.version);
        if let Some(newer) = applied.iter().find(|version| **version > known) {
            return Err(StoreError::corrupt(format!(
                "the database has schema version {newer}, newer than this build's {known}"
            )));
        }
        let applied_at_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| {
                i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
            });
        let mut newly_applied = Vec::new();
        for migration in DB::MIGRATIONS {
            if applied.contains(&migration.version) {
                continue;
            }
            sqlx::raw_sql(migration.sql).execute(&mut *tx).await?;
            sqlx::query(q::RECORD_MIGRATION)
                .bind(migration.version)
                .bind(migration.name)
                .bind(applied_at_ms)
                .execute(&mut *tx)
                .await?;
            newly_applied.push(migration.version);
        }
        tx.commit().await?;
        Ok(newly_applied)
    }
}
