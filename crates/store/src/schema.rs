//! Introspection of the live schema (the tests check PostgreSQL and SQLite agree).

use std::collections::{BTreeMap, BTreeSet};

use crate::{Backend, Store, StoreError};

impl Store {
    /// Table name → column names, for SPLAI's tables (migration bookkeeping excluded).
    pub async fn schema(&self) -> Result<BTreeMap<String, BTreeSet<String>>, StoreError> {
        let rows: Vec<(String, String)> = match self.backend() {
            Backend::Postgres => sqlx::query_as(
                "SELECT table_name::text, column_name::text FROM information_schema.columns
                 WHERE table_schema = current_schema() AND table_name NOT LIKE '\\_sqlx%'",
            )
            .fetch_all(self.pool())
            .await
            .map_err(StoreError::query("postgres schema"))?,
            Backend::Sqlite => sqlx::query_as(
                "SELECT m.name, p.name FROM sqlite_master m JOIN pragma_table_info(m.name) p
                 WHERE m.type = 'table' AND m.name NOT LIKE '\\_sqlx%' ESCAPE '\\'
                 AND m.name NOT LIKE 'sqlite%'",
            )
            .fetch_all(self.pool())
            .await
            .map_err(StoreError::query("sqlite schema"))?,
        };
        let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (table, column) in rows {
            out.entry(table).or_default().insert(column);
        }
        Ok(out)
    }
}
