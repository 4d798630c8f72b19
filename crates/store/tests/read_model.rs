//! The read model against a real SQLite file and a real PostgreSQL (SPLAI_TEST_POSTGRES_URL, an
//! admin URL; each test creates its own database). With SPLAI_TEST_REQUIRE_SERVICES=1 a missing
//! PostgreSQL is a failure, not a skip.

mod common;

use splai_config::StoreSettings;
use splai_events::SourcePosition;
use splai_store::{Backend, ProjectorOffsets, Store};

struct Fresh {
    store: Store,
    _dir: Option<tempfile::TempDir>,
}

async fn sqlite() -> Fresh {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("nested/read.sqlite").display());
    let store = Store::connect(&StoreSettings { url, max_connections: 4, fsync: false }).await.unwrap();
    store.migrate().await.unwrap();
    Fresh { store, _dir: Some(dir) }
}

async fn postgres() -> Option<Fresh> {
    Some(Fresh { store: common::postgres().await?, _dir: None })
}

async fn insert_job(store: &Store, job: &str, tenant: &str, key: Option<&str>) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO jobs (job_id, tenant, job_type, priority, state, data_classification,
                           idempotency_key, request_sha256, submitted_at_ms, updated_at_ms)
         VALUES ($1, $2, 'chat', 'standard', 'queued', 'internal', $3, 'abc', 1, 1)",
    )
    .bind(job)
    .bind(tenant)
    .bind(key)
    .execute(store.pool())
    .await
    .map(|_| ())
}

async fn migrations_are_idempotent(f: &Fresh) {
    f.store.migrate().await.unwrap();
    let schema = f.store.schema().await.unwrap();
    for table in [
        "jobs",
        "tasks",
        "attempts",
        "workers",
        "artifacts",
        "artifact_inputs",
        "audit_events",
        "projector_offsets",
    ] {
        assert!(schema.contains_key(table), "{:?} lacks {table}", f.store.backend());
    }
    for col in ["seq", "prev_hash", "hash"] {
        assert!(schema["audit_events"].contains(col));
    }
}

async fn constraints_hold(f: &Fresh) {
    let s = &f.store;
    insert_job(s, "j1", "acme", Some("k1")).await.unwrap();
    assert!(insert_job(s, "j2", "acme", Some("k1")).await.is_err(), "idempotency key is unique per tenant");
    insert_job(s, "j3", "globex", Some("k1")).await.unwrap();
    insert_job(s, "j4", "acme", None).await.unwrap();
    insert_job(s, "j5", "acme", None).await.unwrap();
    assert!(insert_job(s, "j5", "acme", None).await.is_err(), "a job id is unique within its tenant");
    insert_job(s, "j5", "globex", None).await.unwrap();
    let orphan = sqlx::query(
        "INSERT INTO tasks (tenant, job_id, task_id, kind, state, parents, updated_at_ms) VALUES ('acme', 'nope', 't', 'aggregation', 'pending', '[]', 1)",
    )
    .execute(s.pool())
    .await;
    assert!(orphan.is_err(), "a task needs its job");
    let audit =
        "INSERT INTO audit_events (seq, ts_ms, tenant, actor, action, subject, detail, prev_hash, hash)
                 VALUES ($1, 1, 'acme', 'u', 'submit', 'j1', '{}', $2, $3)";
    sqlx::query(audit).bind(1i64).bind("0").bind("h1").execute(s.pool()).await.unwrap();
    assert!(
        sqlx::query(audit).bind(2i64).bind("h1").bind("h1").execute(s.pool()).await.is_err(),
        "hashes are unique"
    );
    assert!(
        sqlx::query(audit).bind(1i64).bind("h1").bind("h2").execute(s.pool()).await.is_err(),
        "seq is unique"
    );
    // Deleting a job removes its tasks (archive).
    sqlx::query("INSERT INTO tasks (tenant, job_id, task_id, kind, state, parents, updated_at_ms) VALUES ('acme', 'j1', 't', 'aggregation', 'pending', '[]', 1)")
        .execute(s.pool()).await.unwrap();
    sqlx::query("DELETE FROM jobs WHERE tenant = 'acme' AND job_id = 'j1'").execute(s.pool()).await.unwrap();
    let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM tasks").fetch_one(s.pool()).await.unwrap();
    assert_eq!(left, 0);
}

async fn projector_offsets_move_with_the_effect(f: &Fresh) {
    let s = &f.store;
    let offsets = ProjectorOffsets::new("gateway");
    let at = |offset| SourcePosition { topic: "splai.job-events".into(), partition: 3, offset };

    // Effect and offset in one transaction; a rollback undoes both.
    let mut tx = s.pool().begin().await.unwrap();
    assert!(offsets.is_new(&mut tx, &at(0)).await.unwrap());
    insert_job_tx(&mut tx, "p1").await;
    offsets.advance(&mut tx, &at(0)).await.unwrap();
    tx.rollback().await.unwrap();
    assert!(offsets.load(s).await.unwrap().is_empty());

    let mut tx = s.pool().begin().await.unwrap();
    insert_job_tx(&mut tx, "p1").await;
    offsets.advance(&mut tx, &at(5)).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(offsets.load(s).await.unwrap(), vec![at(6)]);

    // Replaying an older record is recognised and never moves the offset back.
    let mut tx = s.pool().begin().await.unwrap();
    assert!(!offsets.is_new(&mut tx, &at(4)).await.unwrap());
    assert!(offsets.is_new(&mut tx, &at(6)).await.unwrap());
    offsets.advance(&mut tx, &at(2)).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(offsets.load(s).await.unwrap(), vec![at(6)]);
    // Other projectors have their own offsets.
    assert!(ProjectorOffsets::new("metrics").load(s).await.unwrap().is_empty());
}

async fn insert_job_tx(tx: &mut sqlx::Transaction<'_, sqlx::Any>, job: &str) {
    sqlx::query(
        "INSERT INTO jobs (job_id, tenant, job_type, priority, state, data_classification, request_sha256, submitted_at_ms, updated_at_ms)
         VALUES ($1, 'acme', 'chat', 'standard', 'queued', 'internal', 'x', 1, 1)",
    )
    .bind(job)
    .execute(&mut **tx)
    .await
    .unwrap();
}

#[tokio::test]
async fn sqlite_migrations_are_idempotent() {
    migrations_are_idempotent(&sqlite().await).await;
}

#[tokio::test]
async fn sqlite_constraints_hold() {
    constraints_hold(&sqlite().await).await;
}

#[tokio::test]
async fn sqlite_projector_offsets_move_with_the_effect() {
    projector_offsets_move_with_the_effect(&sqlite().await).await;
}

#[tokio::test]
async fn postgres_migrations_are_idempotent() {
    let Some(f) = postgres().await else { return };
    assert_eq!(f.store.backend(), Backend::Postgres);
    migrations_are_idempotent(&f).await;
}

#[tokio::test]
async fn postgres_constraints_hold() {
    let Some(f) = postgres().await else { return };
    constraints_hold(&f).await;
}

#[tokio::test]
async fn postgres_projector_offsets_move_with_the_effect() {
    let Some(f) = postgres().await else { return };
    projector_offsets_move_with_the_effect(&f).await;
}

#[tokio::test]
async fn postgres_and_sqlite_schemas_agree() {
    let Some(pg) = postgres().await else { return };
    let lite = sqlite().await;
    assert_eq!(pg.store.schema().await.unwrap(), lite.store.schema().await.unwrap());
}

#[tokio::test]
async fn bad_urls_are_clear_errors() {
    let err = Store::connect(&StoreSettings {
        url: "postgres://u:pw@127.0.0.1:1/db".into(),
        max_connections: 1,
        fsync: false,
    })
    .await
    .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("127.0.0.1:1") && !text.contains("pw"), "{text}");
}

async fn audit_chain_detects_tampering(store: &Store) {
    use splai_store::audit::{AuditEntry, AuditFilter};
    let entry = |i: i64| AuditEntry {
        tenant: if i % 2 == 0 { "acme".into() } else { "globex".into() },
        actor: "ci".into(),
        action: "job.submit".into(),
        subject: format!("job-{i}"),
        detail: serde_json::json!({"n": i, "note": "ünïcode ✓"}),
    };
    // Concurrent appends do not fork the chain.
    let mut handles = Vec::new();
    for i in 0..8 {
        let store = store.clone();
        handles.push(tokio::spawn(async move { store.audit(&entry(i), 1000 + i).await.unwrap() }));
    }
    for h in handles {
        h.await.unwrap();
    }
    let verdict = store.audit_verify(&[]).await.unwrap();
    assert!(verdict.ok, "{verdict:?}");
    assert_eq!(verdict.records, 8);
    let acme = store
        .audit_list(&AuditFilter { tenant: Some("acme".into()), limit: 100, ..Default::default() })
        .await
        .unwrap();
    assert_eq!(acme.len(), 4);
    assert!(acme.iter().all(|r| r.tenant == "acme"));
    // Delete one: named as missing.
    sqlx::query("DELETE FROM audit_events WHERE seq = 5").execute(store.pool()).await.unwrap();
    let verdict = store.audit_verify(&[]).await.unwrap();
    assert_eq!((verdict.ok, verdict.first_broken_seq), (false, Some(5)), "{verdict:?}");
    assert!(verdict.reason.unwrap().contains("missing"));
    // Edit an earlier record's content: the chain breaks exactly there.
    sqlx::query("UPDATE audit_events SET detail = $1 WHERE seq = 3")
        .bind("{\"n\":99}")
        .execute(store.pool())
        .await
        .unwrap();
    let verdict = store.audit_verify(&[]).await.unwrap();
    assert_eq!((verdict.ok, verdict.first_broken_seq), (false, Some(3)), "{verdict:?}");
    assert!(verdict.reason.unwrap().contains("content"));
}

/// Eight records under `key`, and the log's anchor of its head.
async fn anchored_chain(store: &Store) -> Vec<splai_store::audit::Anchor> {
    for i in 0..8 {
        let entry = splai_store::audit::AuditEntry {
            tenant: "acme".into(),
            actor: "ci".into(),
            action: "job.submit".into(),
            subject: format!("job-{i}"),
            detail: serde_json::json!({"n": i}),
        };
        store.audit(&entry, 1000 + i).await.unwrap();
    }
    let (seq, hash) = store.audit_head().await.unwrap().unwrap();
    vec![splai_store::audit::Anchor { seq, hash, ts_ms: 5_000 }]
}

/// Issue 16 item 6: a tail deleted after the anchor is named, with the records it lost.
async fn a_deleted_tail_is_named(store: &Store) {
    let store = store.clone().with_audit_key(b"audit-key-for-tests");
    let anchors = anchored_chain(&store).await;
    assert!(store.audit_verify(&anchors).await.unwrap().ok);
    sqlx::query("DELETE FROM audit_events WHERE seq > 5").execute(store.pool()).await.unwrap();
    let verdict = store.audit_verify(&anchors).await.unwrap();
    assert_eq!((verdict.ok, verdict.first_broken_seq), (false, Some(6)), "{verdict:?}");
    let reason = verdict.reason.unwrap();
    assert!(reason.contains("records 6..8 were deleted"), "{reason}");
}

/// Issue 16 item 6: a chain recomputed after an edit is caught — without the key by the keyed
/// hashes, and with it by the anchor on the log.
async fn a_rewritten_chain_is_named(store: &Store) {
    let keyed = store.clone().with_audit_key(b"audit-key-for-tests");
    let anchors = anchored_chain(&keyed).await;
    // Rewrite record 3 and recompute every hash from there, as an attacker would.
    let rewrite = |key: &'static [u8]| {
        let store = store.clone().with_audit_key(key);
        async move {
            let records = store
                .audit_list(&splai_store::audit::AuditFilter { limit: 100, ..Default::default() })
                .await
                .unwrap();
            let mut prev = records[1].hash.clone();
            for mut r in records.into_iter().skip(2) {
                if r.seq == 3 {
                    r.detail = "{\"n\":99}".into();
                }
                r.prev_hash = prev;
                r.hash = r.expected_hash(key);
                sqlx::query("UPDATE audit_events SET detail = $1, prev_hash = $2, hash = $3 WHERE seq = $4")
                    .bind(&r.detail)
                    .bind(&r.prev_hash)
                    .bind(&r.hash)
                    .bind(r.seq)
                    .execute(store.pool())
                    .await
                    .unwrap();
                prev = r.hash;
            }
        }
    };
    rewrite(b"a guessed key").await;
    let verdict = keyed.audit_verify(&anchors).await.unwrap();
    assert_eq!((verdict.ok, verdict.first_broken_seq), (false, Some(3)), "{verdict:?}");
    assert!(verdict.reason.unwrap().contains("recomputed without the audit key"));
    rewrite(b"audit-key-for-tests").await;
    let verdict = keyed.audit_verify(&anchors).await.unwrap();
    assert_eq!((verdict.ok, verdict.first_broken_seq), (false, Some(8)), "{verdict:?}");
    assert!(verdict.reason.unwrap().contains("the chain was rewritten"), "with the key: the anchor tells");
}

#[tokio::test]
async fn sqlite_audit_tail_deletion() {
    a_deleted_tail_is_named(&sqlite().await.store).await;
}

#[tokio::test]
async fn postgres_audit_tail_deletion() {
    let Some(f) = postgres().await else { return };
    a_deleted_tail_is_named(&f.store).await;
}

#[tokio::test]
async fn sqlite_audit_rewrite() {
    a_rewritten_chain_is_named(&sqlite().await.store).await;
}

#[tokio::test]
async fn postgres_audit_rewrite() {
    let Some(f) = postgres().await else { return };
    a_rewritten_chain_is_named(&f.store).await;
}

#[tokio::test]
async fn sqlite_audit_chain() {
    let f = sqlite().await;
    audit_chain_detects_tampering(&f.store).await;
}

#[tokio::test]
async fn postgres_audit_chain() {
    let Some(f) = postgres().await else { return };
    audit_chain_detects_tampering(&f.store).await;
}

/// Two gateways on one database (two connections, each with its own group commit) appending at
/// once: a batch that loses the race for the next `seq` is chained again on the new head.
#[tokio::test]
async fn sqlite_two_writers_keep_one_chain() {
    use splai_store::audit::AuditEntry;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("read.sqlite").display());
    let one =
        Store::connect(&StoreSettings { url: url.clone(), max_connections: 4, fsync: false }).await.unwrap();
    one.migrate().await.unwrap();
    let other = Store::connect(&StoreSettings { url, max_connections: 4, fsync: false }).await.unwrap();
    let mut handles = Vec::new();
    for i in 0..24i64 {
        let store = if i % 2 == 0 { one.clone() } else { other.clone() };
        handles.push(tokio::spawn(async move {
            let entry = AuditEntry {
                tenant: "acme".into(),
                actor: "ci".into(),
                action: "job.submit".into(),
                subject: format!("job-{i}"),
                detail: serde_json::json!({"n": i}),
            };
            store.audit(&entry, 1000 + i).await.unwrap()
        }));
    }
    let mut seqs: Vec<i64> = Vec::new();
    for h in handles {
        seqs.push(h.await.unwrap().seq);
    }
    seqs.sort();
    assert_eq!(seqs, (1..=24).collect::<Vec<_>>(), "every append got its own place in the chain");
    let verdict = one.audit_verify(&[]).await.unwrap();
    assert!(verdict.ok && verdict.records == 24, "{verdict:?}");
}
