//! Group commit for the embedded log: appends and offset commits that arrive while a write
//! transaction runs wait for it, then all of them go into the next transaction together. Under
//! load (executors and the scheduler appending at once) this turns many small SQLite
//! transactions into a few larger ones; alone, a write costs what it did (one transaction).

use std::collections::HashMap;
use std::sync::Arc;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use splai_events::SourcePosition;
use tokio::sync::oneshot;

use super::headers;
use super::{Delivered, Record};

/// Why a group commit failed, shared by every caller in it (a rusqlite error cannot be cloned).
pub(crate) type Failed = Arc<rusqlite::Error>;

/// One caller's write, waiting for the transaction that carries it.
#[derive(Debug)]
pub(crate) enum Pending {
    Append {
        topic: String,
        partitions: u32,
        records: Vec<Record>,
        done: oneshot::Sender<Result<Vec<SourcePosition>, Failed>>,
    },
    /// A consumer group's new positions (each the next offset to read); only forwards.
    Commit { group: String, points: Vec<SourcePosition>, done: oneshot::Sender<Result<(), Failed>> },
}

/// Write every pending write in one transaction and answer each caller (all fail together).
/// Returns the records appended, as a consumer reads them, in offset order per partition.
pub(crate) fn write_batch(conn: &mut Connection, batch: Vec<Pending>, ts_ms: u64) -> Vec<Delivered> {
    match write(conn, &batch, ts_ms) {
        Ok(positions) => {
            let mut written = Vec::new();
            for (p, placed) in batch.into_iter().zip(positions) {
                match p {
                    Pending::Append { done, records, .. } => {
                        for (pos, record) in placed.iter().zip(records) {
                            written.push(Delivered {
                                position: pos.clone(),
                                key: Some(record.key),
                                payload: record.payload,
                                headers: record.headers,
                                ts_ms,
                            });
                        }
                        done.send(Ok(placed)).ok();
                    }
                    Pending::Commit { done, .. } => {
                        done.send(Ok(())).ok();
                    }
                }
            }
            written
        }
        Err(e) => {
            let e = Arc::new(e);
            for p in batch {
                match p {
                    Pending::Append { done, .. } => done.send(Err(e.clone())).ok(),
                    Pending::Commit { done, .. } => done.send(Err(e.clone())).ok(),
                };
            }
            Vec::new()
        }
    }
}

/// Positions of each pending write (empty for commits).
fn write(conn: &mut Connection, batch: &[Pending], ts_ms: u64) -> rusqlite::Result<Vec<Vec<SourcePosition>>> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    // Offsets are assigned inside the write transaction, so they are gap-free and in order.
    let mut next: HashMap<(&str, u32), u64> = HashMap::new();
    let mut positions = Vec::with_capacity(batch.len());
    {
        let mut current =
            tx.prepare_cached("SELECT next_offset FROM log_partitions WHERE topic = ?1 AND partition = ?2")?;
        let mut insert = tx.prepare_cached(
            "INSERT INTO log_records (topic, partition, offset, key, payload, ts_ms, headers)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?;
        let mut commit = tx.prepare_cached(
            "INSERT INTO log_commits (grp, topic, partition, next_offset) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (grp, topic, partition) DO UPDATE SET next_offset = excluded.next_offset
             WHERE excluded.next_offset > log_commits.next_offset",
        )?;
        for pending in batch {
            match pending {
                Pending::Append { topic, partitions, records, .. } => {
                    let mut placed = Vec::with_capacity(records.len());
                    for r in records {
                        let partition = super::partition_for(&r.key, *partitions);
                        let slot = match next.get_mut(&(topic.as_str(), partition)) {
                            Some(slot) => slot,
                            None => {
                                let at: Option<i64> = current
                                    .query_row(params![topic, partition], |row| row.get(0))
                                    .optional()?;
                                next.entry((topic.as_str(), partition)).or_insert(at.unwrap_or(0) as u64)
                            }
                        };
                        insert.execute(params![
                            topic,
                            partition,
                            *slot as i64,
                            r.key,
                            r.payload,
                            ts_ms as i64,
                            headers::encode(&r.headers)
                        ])?;
                        placed.push(SourcePosition { topic: topic.clone(), partition, offset: *slot });
                        *slot += 1;
                    }
                    positions.push(placed);
                }
                Pending::Commit { group, points, .. } => {
                    for point in points {
                        commit.execute(params![group, point.topic, point.partition, point.offset as i64])?;
                    }
                    positions.push(Vec::new());
                }
            }
        }
        let mut advance = tx.prepare_cached(
            "UPDATE log_partitions SET next_offset = ?1 WHERE topic = ?2 AND partition = ?3",
        )?;
        for ((topic, partition), at) in &next {
            advance.execute(params![*at as i64, topic, partition])?;
        }
    }
    tx.commit()?;
    Ok(positions)
}
