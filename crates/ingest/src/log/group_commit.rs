//! Group commit for the embedded log: appends that arrive while a write transaction runs wait
//! for it, then all of them go into the next transaction together. Under load (executors and the
//! scheduler appending at once) this turns many small SQLite transactions into a few larger ones;
//! alone, an append costs what it did (one transaction).

use std::collections::{BTreeSet, HashMap};

use splai_events::SourcePosition;
use sqlx::{QueryBuilder, Row, SqlitePool};
use tokio::sync::oneshot;

use super::Record;
use super::embedded::encode_headers;

/// Rows per INSERT statement (7 bound values each, well under SQLite's variable limit).
const INSERT_CHUNK: usize = 500;

/// One caller's append, waiting for the transaction that carries it.
#[derive(Debug)]
pub(crate) struct Pending {
    pub topic: String,
    pub partitions: u32,
    pub records: Vec<Record>,
    pub done: oneshot::Sender<Result<Vec<SourcePosition>, String>>,
}

/// Write every pending append in one transaction and answer each caller (all fail together).
/// Returns the new high watermark of every partition written.
pub(crate) async fn write_batch(
    pool: &SqlitePool,
    batch: Vec<Pending>,
    ts_ms: u64,
) -> Vec<((String, u32), u64)> {
    let record_sets: Vec<(&str, u32, &[Record])> =
        batch.iter().map(|p| (p.topic.as_str(), p.partitions, p.records.as_slice())).collect();
    match write(pool, &record_sets, ts_ms).await {
        Ok(positions) => {
            let mut high: HashMap<(String, u32), u64> = HashMap::new();
            for (p, placed) in batch.into_iter().zip(positions) {
                for pos in &placed {
                    let h = high.entry((pos.topic.clone(), pos.partition)).or_insert(0);
                    *h = (*h).max(pos.offset + 1);
                }
                p.done.send(Ok(placed)).ok();
            }
            high.into_iter().collect()
        }
        Err(e) => {
            for p in batch {
                p.done.send(Err(e.to_string())).ok();
            }
            Vec::new()
        }
    }
}

async fn write(
    pool: &SqlitePool,
    sets: &[(&str, u32, &[Record])],
    ts_ms: u64,
) -> Result<Vec<Vec<SourcePosition>>, sqlx::Error> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    // Offsets are assigned inside the write transaction, so they are gap-free and in order.
    let mut next: HashMap<(&str, u32), u64> = HashMap::new();
    let mut loaded: BTreeSet<&str> = BTreeSet::new();
    let mut touched: BTreeSet<(&str, u32)> = BTreeSet::new();
    let mut rows: Vec<(&str, u32, u64, &Record)> = Vec::new();
    let mut positions = Vec::with_capacity(sets.len());
    for (topic, partitions, records) in sets {
        if loaded.insert(topic) {
            let current = sqlx::query("SELECT partition, next_offset FROM log_partitions WHERE topic = ?")
                .bind(*topic)
                .fetch_all(&mut *tx)
                .await?;
            for row in current {
                next.insert((topic, row.get::<i64, _>(0) as u32), row.get::<i64, _>(1) as u64);
            }
        }
        let mut placed = Vec::with_capacity(records.len());
        for r in records.iter() {
            let partition = super::partition_for(&r.key, *partitions);
            let slot = next.entry((topic, partition)).or_insert(0);
            placed.push(SourcePosition { topic: topic.to_string(), partition, offset: *slot });
            rows.push((topic, partition, *slot, r));
            *slot += 1;
            touched.insert((topic, partition));
        }
        positions.push(placed);
    }
    for chunk in rows.chunks(INSERT_CHUNK) {
        let mut insert = QueryBuilder::new(
            "INSERT INTO log_records (topic, partition, offset, key, payload, ts_ms, headers) ",
        );
        insert.push_values(chunk, |mut row, (topic, partition, offset, record)| {
            row.push_bind(*topic)
                .push_bind(i64::from(*partition))
                .push_bind(*offset as i64)
                .push_bind(record.key.as_str())
                .push_bind(record.payload.as_slice())
                .push_bind(ts_ms as i64)
                .push_bind(encode_headers(&record.headers));
        });
        insert.build().execute(&mut *tx).await?;
    }
    for (topic, partition) in touched {
        sqlx::query("UPDATE log_partitions SET next_offset = ? WHERE topic = ? AND partition = ?")
            .bind(next[&(topic, partition)] as i64)
            .bind(topic)
            .bind(i64::from(partition))
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(positions)
}
