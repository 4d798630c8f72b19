//! Projects the log into the read model: `jobs` (requests produced by any client), `job-events`,
//! `task-events`, `heartbeats` and `dead-letter`. Offsets live in SQL, advanced in the effects'
//! transaction; the log's own committed position only saves re-reading. A failed batch is retried,
//! so a database restart delays the projection and loses nothing.

use std::collections::HashMap;
use std::time::Duration;

use splai_events::Topic;
use splai_ingest::log::{EventReader, EventWriter, LogError};
use splai_store::{Projection, ProjectorOffsets, Store};
use tokio::sync::watch;

pub const TOPICS: [Topic; 5] =
    [Topic::Jobs, Topic::JobEvents, Topic::TaskEvents, Topic::Heartbeats, Topic::DeadLetter];

/// Run until `shutdown`; `projected` is bumped after every batch that grew a job stream and
/// `ready` turns true once the backlog present at start is projected.
pub async fn run(
    writer: EventWriter,
    store: Store,
    group: String,
    projected: watch::Sender<u64>,
    ready: watch::Sender<bool>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), LogError> {
    let projection = Projection::new(store.clone(), &group);
    let mut reader = EventReader::subscribe(writer.clone(), &group, &TOPICS, None).await?;
    // Behind: partitions whose end at start lies past what the read model has applied.
    let applied: HashMap<(String, u32), u64> = loop {
        match ProjectorOffsets::new(&group).load(&store).await {
            Ok(rows) => break rows.into_iter().map(|p| ((p.topic, p.partition), p.offset)).collect(),
            Err(error) => {
                tracing::warn!(%error, "reading the projector's offsets failed; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                    _ = shutdown.changed() => return Ok(()),
                }
            }
        }
    };
    let mut behind: HashMap<(String, u32), u64> = HashMap::new();
    for topic in TOPICS {
        let name = writer.topic(topic);
        for (p, high) in writer.log().high_watermarks(&name).await?.into_iter().enumerate() {
            let key = (name.clone(), p as u32);
            if high > applied.get(&key).copied().unwrap_or(0) {
                behind.insert(key, high);
            }
        }
    }
    let mut idle_polls = 0u32;
    loop {
        if *shutdown.borrow() {
            return Ok(());
        }
        let batch = tokio::select! {
            b = reader.poll(500, Duration::from_millis(50)) => b?,
            _ = shutdown.changed() => return Ok(()),
        };
        if !batch.events.is_empty() {
            let mut backoff = Duration::from_millis(100);
            loop {
                match projection.apply(&batch.events).await {
                    Ok(touched) => {
                        if !touched.is_empty() {
                            projected.send_modify(|n| *n += 1);
                        }
                        break;
                    }
                    Err(error) => {
                        tracing::warn!(%error, "projecting a batch failed; retrying");
                        tokio::select! {
                            _ = tokio::time::sleep(backoff) => {}
                            _ = shutdown.changed() => return Ok(()),
                        }
                        backoff = (backoff * 2).min(Duration::from_secs(5));
                    }
                }
            }
        }
        for p in &batch.positions {
            if behind.get(&(p.topic.clone(), p.partition)).is_some_and(|high| p.offset + 1 >= *high) {
                behind.remove(&(p.topic.clone(), p.partition));
            }
        }
        idle_polls = if batch.positions.is_empty() { idle_polls + 1 } else { 0 };
        // Caught up when every partition's start-time backlog is read (or the log stays quiet:
        // the backlog may end in records another projector already applied).
        if !*ready.borrow() && (behind.is_empty() || idle_polls >= 20) {
            ready.send_replace(true);
            tracing::info!("read model caught up with the log");
        }
        reader.commit(&batch).await?;
    }
}
