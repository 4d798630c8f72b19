//! The embedded log with `fsync = true`, where writes run on tokio's blocking pool instead of the
//! caller's thread: concurrent appends group-commit with gap-free offsets, a consumer reads them
//! all, and its commit survives reopening the file.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use splai_ingest::log::{EmbeddedLog, EventLog, Record, Subscription};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn durable_writes_group_commit_and_resume() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.sqlite");
    let log = Arc::new(EmbeddedLog::open(&path, true, Duration::from_millis(20)).await.unwrap());
    log.create_topics(&["t".to_string()], 2).await.unwrap();
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let log = log.clone();
            tokio::spawn(async move {
                for i in 0..25 {
                    let record = Record::new(format!("k{w}"), format!("{w}-{i}").into_bytes());
                    log.append("t", vec![record]).await.unwrap();
                }
            })
        })
        .collect();
    for w in writers {
        w.await.unwrap();
    }
    let high: u64 = log.high_watermarks("t").await.unwrap().iter().sum();
    assert_eq!(high, 100, "every append got its own offset");

    let mut consumer = log.subscribe(Subscription::group("g", &["t"])).await.unwrap();
    let mut seen = BTreeSet::new();
    let mut positions = Vec::new();
    while seen.len() < 100 {
        let batch = consumer.poll(1000, Duration::from_secs(5)).await.unwrap();
        assert!(!batch.is_empty(), "records stopped after {}", seen.len());
        for d in batch {
            seen.insert(String::from_utf8(d.payload).unwrap());
            positions.push(d.position);
        }
    }
    consumer.commit(&positions).await.unwrap();
    drop(consumer);
    drop(log);

    let reopened = EmbeddedLog::open(&path, true, Duration::from_millis(20)).await.unwrap();
    let mut again = reopened.subscribe(Subscription::group("g", &["t"])).await.unwrap();
    let rest = again.poll(1000, Duration::from_millis(200)).await.unwrap();
    assert!(rest.is_empty(), "the commit survived reopening: {} records came back", rest.len());
}
