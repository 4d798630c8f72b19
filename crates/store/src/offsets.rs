//! Projector offsets: where a projector has read each partition up to. Advanced in the same
//! transaction as the projector's effects, and only forwards, so replaying a batch is harmless
//! and several gateways can project at once.

use splai_events::SourcePosition;
use sqlx::{Any, Transaction};

use crate::{Store, StoreError};

/// A projector's offsets: `(topic, partition, next_offset)` rows.
pub(crate) const LOAD_SQL: &str =
    "SELECT topic, partition, next_offset FROM projector_offsets WHERE projector = $1
     ORDER BY topic, partition";

/// Move a projector's offset of one partition forward (never back).
pub(crate) const ADVANCE_SQL: &str =
    "INSERT INTO projector_offsets (projector, topic, partition, next_offset) VALUES ($1, $2, $3, $4)
     ON CONFLICT (projector, topic, partition) DO UPDATE SET next_offset = excluded.next_offset
     WHERE projector_offsets.next_offset < excluded.next_offset";

#[derive(Debug, Clone)]
pub struct ProjectorOffsets {
    projector: String,
}

impl ProjectorOffsets {
    pub fn new(projector: impl Into<String>) -> Self {
        Self { projector: projector.into() }
    }

    /// Next offset to read per (topic, partition).
    pub async fn load(&self, store: &Store) -> Result<Vec<SourcePosition>, StoreError> {
        let rows: Vec<(String, i64, i64)> = sqlx::query_as(LOAD_SQL)
            .bind(&self.projector)
            .fetch_all(store.pool())
            .await
            .map_err(StoreError::query("load projector offsets"))?;
        Ok(rows
            .into_iter()
            .map(|(topic, partition, offset)| SourcePosition {
                topic,
                partition: partition as u32,
                offset: offset as u64,
            })
            .collect())
    }

    /// Whether the record at `position` is new to this projector (inside the effect's transaction,
    /// so a concurrent projector that already applied it makes this false).
    pub async fn is_new(
        &self,
        tx: &mut Transaction<'_, Any>,
        position: &SourcePosition,
    ) -> Result<bool, StoreError> {
        let next: Option<i64> = sqlx::query_scalar(
            "SELECT next_offset FROM projector_offsets WHERE projector = $1 AND topic = $2 AND partition = $3",
        )
        .bind(&self.projector)
        .bind(&position.topic)
        .bind(i64::from(position.partition))
        .fetch_optional(&mut **tx)
        .await
        .map_err(StoreError::query("read projector offset"))?;
        Ok(next.is_none_or(|n| position.offset as i64 >= n))
    }

    /// Move this projector past `position` (never backwards).
    pub async fn advance(
        &self,
        tx: &mut Transaction<'_, Any>,
        position: &SourcePosition,
    ) -> Result<(), StoreError> {
        sqlx::query(ADVANCE_SQL)
            .bind(&self.projector)
            .bind(&position.topic)
            .bind(i64::from(position.partition))
            .bind(position.offset as i64 + 1)
            .execute(&mut **tx)
            .await
            .map_err(StoreError::query("advance projector offset"))?;
        Ok(())
    }
}
