//! `splai bench log`: append + consume throughput of envelopes through the configured event log.
//!
//! A producer task appends `events` envelopes of about `size` bytes in batches of `batch`, while a
//! consumer group reads them back and commits each batch. Reported: append rate (producer alone,
//! until the last append is acknowledged), and end-to-end rate (first append → last record
//! consumed and committed). Each run uses fresh topics.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use splai_config::Settings;
use splai_events::{CancelJob, Envelope, Event, Topic, encode};
use splai_ingest::log::{EventReader, EventWriter, open_log};

#[derive(Debug, clap::Args)]
pub struct LogBenchArgs {
    /// Envelopes to append and consume.
    #[arg(long, default_value_t = 200_000)]
    pub events: usize,
    /// Approximate encoded size of each envelope, bytes.
    #[arg(long, default_value_t = 200)]
    pub size: usize,
    /// Envelopes per append call.
    #[arg(long, default_value_t = 1_000)]
    pub batch: usize,
    /// Repetitions; each prints one line.
    #[arg(long, default_value_t = 1)]
    pub runs: usize,
}

pub async fn run(settings: &Settings, args: &LogBenchArgs) -> anyhow::Result<()> {
    let log = open_log(&settings.log).await.context("opening the event log")?;
    let backend = format!("{:?}", settings.log.backend).to_lowercase();
    let sample = envelope(0, args.size);
    println!(
        "backend={backend} events={} envelope_bytes={} batch={} partitions={}",
        args.events,
        encode(&sample).len(),
        args.batch,
        settings.log.partitions
    );
    for run in 0..args.runs {
        let prefix = format!("bench{}x{run}.", std::process::id());
        let writer = EventWriter::new(log.clone(), prefix.clone());
        writer.create_all_topics(settings.log.partitions).await?;
        let mut reader =
            EventReader::subscribe(writer.clone(), &format!("{prefix}reader"), &[Topic::Control], None)
                .await?;

        let envelopes: Arc<Vec<Envelope>> =
            Arc::new((0..args.events).map(|i| envelope(i, args.size)).collect());
        let start = Instant::now();
        let producer = {
            let writer = writer.clone();
            let envelopes = envelopes.clone();
            let batch = args.batch.max(1);
            tokio::spawn(async move {
                for chunk in envelopes.chunks(batch) {
                    writer.append(chunk).await?;
                }
                anyhow::Ok(start.elapsed())
            })
        };
        let mut consumed = 0usize;
        let deadline = Instant::now() + Duration::from_secs(600);
        while consumed < args.events {
            anyhow::ensure!(
                Instant::now() < deadline,
                "consumed only {consumed} of {} in 600 s",
                args.events
            );
            let batch = reader.poll(10_000, Duration::from_millis(500)).await?;
            consumed += batch.events.len();
            anyhow::ensure!(batch.dead_lettered.is_empty(), "benchmark records failed to decode");
            reader.commit(&batch).await?;
        }
        let end_to_end = start.elapsed();
        let append = producer.await??;
        println!(
            "run={run} append_s={:.3} append_events_per_s={:.0} end_to_end_s={:.3} end_to_end_events_per_s={:.0} consumed={consumed}",
            append.as_secs_f64(),
            args.events as f64 / append.as_secs_f64(),
            end_to_end.as_secs_f64(),
            args.events as f64 / end_to_end.as_secs_f64(),
        );
    }
    Ok(())
}

/// A `cancel_job` envelope padded to about `size` bytes, on distinct keys (spread over partitions).
fn envelope(i: usize, size: usize) -> Envelope {
    let mut e = Envelope::new(
        format!("bench-{i}"),
        1_764_158_400_000 + i as u64,
        "bench",
        Event::CancelJob(CancelJob { job_id: format!("job-{}", i % 4096), reason: String::new() }),
    );
    let base = encode(&e).len();
    if let Event::CancelJob(c) = &mut e.event {
        c.reason = "x".repeat(size.saturating_sub(base));
    }
    e
}
