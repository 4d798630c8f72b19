//! The audit log: append-only, one keyed hash chain over every record. A record's hash is
//! HMAC-SHA256(audit key, previous hash ‖ canonical content), the content being the JSON array
//! `[seq, ts_ms, tenant, actor, action, subject, detail]`; the first record's previous hash is 64
//! zeros. Editing, deleting or reordering any record breaks the chain from there on, and without
//! the key nobody can recompute it to hide that. What the database cannot show — its tail cut
//! off, or the whole chain rewritten by someone with the key — the anchors on the log do: a
//! gateway writes the chain's head there now and then, and [`Store::audit_verify`] checks the
//! chain against every anchor, naming the first record that does not check out.
//!
//! Appends from several gateways race for the next `seq`; the primary key and the unique hash
//! turn a lost race into a retry, so the chain never forks.

use hmac::{Hmac, Mac};
use serde::Serialize;
use serde_json::Value;
use sha2::Sha256;
use sqlx::Row;

use crate::{Store, StoreError};

pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

fn q(what: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    StoreError::query(what)
}

/// What happened, by whom, to what.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEntry {
    pub tenant: String,
    pub actor: String,
    /// e.g. `job.submit`, `job.reject`, `job.cancel`, `dead_letter.requeue`, `admin.read`,
    /// `policy.decision`.
    pub action: String,
    pub subject: String,
    pub detail: Value,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditRecord {
    pub seq: i64,
    pub ts_ms: i64,
    pub tenant: String,
    pub actor: String,
    pub action: String,
    pub subject: String,
    pub detail: String,
    pub prev_hash: String,
    pub hash: String,
}

impl AuditRecord {
    /// The hash this record must have after `prev_hash`, under `key`.
    pub fn expected_hash(&self, key: &[u8]) -> String {
        chain_hash(
            key,
            &self.prev_hash,
            self.seq,
            self.ts_ms,
            &self.tenant,
            &self.actor,
            &self.action,
            &self.subject,
            &self.detail,
        )
    }
}

#[allow(clippy::too_many_arguments)]
fn chain_hash(
    key: &[u8],
    prev: &str,
    seq: i64,
    ts_ms: i64,
    tenant: &str,
    actor: &str,
    action: &str,
    subject: &str,
    detail: &str,
) -> String {
    let canonical = serde_json::json!([seq, ts_ms, tenant, actor, action, subject, detail]).to_string();
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(prev.as_bytes());
    mac.update(canonical.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// The outcome of re-checking the chain.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditVerdict {
    pub ok: bool,
    pub records: i64,
    /// The first record that does not check out, and why.
    pub first_broken_seq: Option<i64>,
    pub reason: Option<String>,
    /// Whether the chain is keyed with a configured secret (unkeyed, anyone can recompute it).
    pub keyed: bool,
    /// Anchors read from the log and checked, and the highest sequence they vouch for.
    pub anchors_checked: usize,
    pub anchored_seq: Option<i64>,
}

/// A chain head as a gateway wrote it to the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Anchor {
    pub seq: i64,
    pub hash: String,
    pub ts_ms: u64,
}

/// Filters of an audit listing; `after_seq` is the cursor.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub tenant: Option<String>,
    pub action: Option<String>,
    pub subject: Option<String>,
    pub since_ms: Option<i64>,
    pub until_ms: Option<i64>,
    pub after_seq: i64,
    pub limit: i64,
}

const COLUMNS: &str = "seq, ts_ms, tenant, actor, action, subject, detail, prev_hash, hash";

fn record(r: &sqlx::any::AnyRow) -> Result<AuditRecord, sqlx::Error> {
    Ok(AuditRecord {
        seq: r.try_get(0)?,
        ts_ms: r.try_get(1)?,
        tenant: r.try_get(2)?,
        actor: r.try_get(3)?,
        action: r.try_get(4)?,
        subject: r.try_get(5)?,
        detail: r.try_get(6)?,
        prev_hash: r.try_get(7)?,
        hash: r.try_get(8)?,
    })
}

impl Store {
    /// Records in chain order after `after_seq`.
    pub async fn audit_list(&self, f: &AuditFilter) -> Result<Vec<AuditRecord>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM audit_events WHERE seq > $1 AND ($2 IS NULL OR tenant = $2)
               AND ($3 IS NULL OR action = $3) AND ($4 IS NULL OR subject = $4)
               AND ($5 IS NULL OR ts_ms >= $5) AND ($6 IS NULL OR ts_ms < $6)
             ORDER BY seq LIMIT $7"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(f.after_seq)
            .bind(f.tenant.clone())
            .bind(f.action.clone())
            .bind(f.subject.clone())
            .bind(f.since_ms)
            .bind(f.until_ms)
            .bind(f.limit)
            .fetch_all(self.pool())
            .await
            .map_err(q("list audit records"))?;
        rows.iter().map(record).collect::<Result<_, _>>().map_err(q("read audit records"))
    }

    /// The chain's last record: (seq, hash).
    pub async fn audit_head(&self) -> Result<Option<(i64, String)>, StoreError> {
        let head = sqlx::query("SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1")
            .fetch_optional(self.pool())
            .await
            .map_err(q("read the audit head"))?;
        head.map(|r| Ok((r.try_get(0)?, r.try_get(1)?))).transpose().map_err(q("read the audit head"))
    }

    /// Re-check the whole chain under this store's key, page by page, then against `anchors`
    /// (chain heads read from the log).
    pub async fn audit_verify(&self, anchors: &[Anchor]) -> Result<AuditVerdict, StoreError> {
        let key = self.audit_key.clone();
        let (mut prev_hash, mut expected_seq, mut count) = (GENESIS.to_string(), 1i64, 0i64);
        let mut hashes: std::collections::HashMap<i64, String> = std::collections::HashMap::new();
        let wanted: std::collections::HashSet<i64> = anchors.iter().map(|a| a.seq).collect();
        let verdict = |ok, records, first_broken_seq, reason| AuditVerdict {
            ok,
            records,
            first_broken_seq,
            reason,
            keyed: !key.is_empty(),
            anchors_checked: anchors.len(),
            anchored_seq: anchors.iter().map(|a| a.seq).max(),
        };
        loop {
            let page = self
                .audit_list(&AuditFilter { after_seq: expected_seq - 1, limit: 1000, ..Default::default() })
                .await?;
            if page.is_empty() {
                break;
            }
            for rec in page {
                let broken =
                    |reason: String| verdict(false, count, Some(rec.seq.min(expected_seq)), Some(reason));
                if rec.seq != expected_seq {
                    return Ok(broken(format!("record {expected_seq} is missing (next is {})", rec.seq)));
                }
                if rec.prev_hash != prev_hash {
                    return Ok(broken(format!(
                        "record {} does not follow record {}'s hash",
                        rec.seq,
                        rec.seq - 1
                    )));
                }
                if rec.hash != rec.expected_hash(&key) {
                    return Ok(broken(format!(
                        "record {}'s keyed hash does not match its content: it was edited, or the chain was \
                         recomputed without the audit key",
                        rec.seq
                    )));
                }
                if wanted.contains(&rec.seq) {
                    hashes.insert(rec.seq, rec.hash.clone());
                }
                prev_hash = rec.hash.clone();
                expected_seq += 1;
                count += 1;
            }
        }
        // The database's chain holds together; the log says what it held before.
        let mut by_seq: Vec<&Anchor> = anchors.iter().collect();
        by_seq.sort_by_key(|a| a.seq);
        for a in by_seq {
            let when = a.ts_ms;
            match hashes.get(&a.seq) {
                None if a.seq > count => {
                    let reason = format!(
                        "the chain ends at record {count} but the log anchored record {} (hash {}) at {when} ms: \
                         records {}..{} were deleted",
                        a.seq,
                        a.hash,
                        count + 1,
                        a.seq
                    );
                    return Ok(verdict(false, count, Some(count + 1), Some(reason)));
                }
                Some(h) if *h == a.hash => {}
                _ => {
                    let reason = format!(
                        "record {}'s hash differs from the one the log anchored at {when} ms ({}): the chain was \
                         rewritten",
                        a.seq, a.hash
                    );
                    return Ok(verdict(false, count, Some(a.seq), Some(reason)));
                }
            }
        }
        Ok(verdict(true, count, None, None))
    }
}

pub(crate) fn is_unique_violation(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(d) => {
            d.is_unique_violation()
                || d.message().contains("UNIQUE constraint failed")
                || d.code().as_deref() == Some("23505")
        }
        _ => false,
    }
}
