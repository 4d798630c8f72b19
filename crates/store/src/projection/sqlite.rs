//! The read model's SQLite file, written directly (rusqlite) for the projection: a batch is one
//! blocking call — one transaction, cached prepared statements, no thread hop per statement.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::types::{ToSqlOutput, Value};
use rusqlite::{Connection, OptionalExtension, ToSql, TransactionBehavior};

use super::{Arg, Offsets, Planned, Streamed};
use crate::StoreError;
use crate::offsets::{ADVANCE_SQL, LOAD_SQL};

#[derive(Debug)]
pub(crate) struct SqliteFile {
    path: PathBuf,
    /// Opened on first use (after the migrations ran through sqlx), with each statement's
    /// SQLite text by the address of its PostgreSQL text (all `&'static`).
    conn: Mutex<Option<(Connection, Texts)>>,
}

/// Each statement's SQLite text by the address of its PostgreSQL text.
type Texts = HashMap<(usize, usize), String>;

impl ToSql for Arg {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self {
            Arg::Text(Some(v)) => ToSqlOutput::from(v.as_str()),
            Arg::Int(Some(v)) => ToSqlOutput::from(*v),
            Arg::Text(None) | Arg::Int(None) => ToSqlOutput::Owned(Value::Null),
            Arg::Real(v) => ToSqlOutput::from(*v),
            Arg::Bool(v) => ToSqlOutput::from(*v),
        })
    }
}

/// `$n` (PostgreSQL) → `?n` (SQLite's numbered parameter: the same argument however often used).
fn numbered(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '$' && chars.peek().is_some_and(char::is_ascii_digit) {
            out.push('?');
        } else {
            out.push(c);
        }
    }
    out
}

/// The SQLite text of a statement, converted once.
fn text<'a>(texts: &'a mut Texts, sql: &'static str) -> &'a str {
    texts.entry((sql.as_ptr() as usize, sql.len())).or_insert_with(|| numbered(sql))
}

fn err(what: &'static str) -> impl FnOnce(rusqlite::Error) -> StoreError {
    move |source| StoreError::Sqlite { query: what, source }
}

impl SqliteFile {
    pub(crate) fn new(path: PathBuf) -> Self {
        Self { path, conn: Mutex::new(None) }
    }

    fn open(&self) -> Result<Connection, StoreError> {
        let conn = Connection::open(&self.path).map_err(err("open the read model"))?;
        conn.busy_timeout(Duration::from_secs(30)).map_err(err("set busy timeout"))?;
        conn.execute_batch("PRAGMA foreign_keys = ON;").map_err(err("enable foreign keys"))?;
        // No fsync per projected batch: what this connection writes is derived from the log, and
        // the projector's offsets commit in the same transaction, so a batch a power loss takes
        // back is projected again from the log. (WAL keeps the file consistent either way; a
        // process crash loses nothing. Synced, a commit took 0.4–2.6 ms here, unsynced 0.05–0.3.)
        conn.pragma_update(None, "synchronous", "NORMAL").map_err(err("set synchronous"))?;
        // The store's checkpointer checkpoints, not the commits (see `splai_sqlite`).
        splai_sqlite::without_autocheckpoint(&conn).map_err(err("turn automatic checkpoints off"))?;
        conn.set_prepared_statement_cache_capacity(64);
        Ok(conn)
    }

    /// The connection (opened on first use) and the statements' SQLite texts.
    fn conn(&self) -> Result<std::sync::MutexGuard<'_, Option<(Connection, Texts)>>, StoreError> {
        let mut guard = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        if guard.is_none() {
            *guard = Some((self.open()?, HashMap::new()));
        }
        Ok(guard)
    }

    /// Run one statement (its own transaction): the rows it changed. For the API's short writes
    /// on the store's write turn, where sqlx would cost a thread hop per step of a transaction.
    pub(crate) fn execute(
        &self,
        what: &'static str,
        sql: &'static str,
        args: &[Arg],
    ) -> Result<usize, StoreError> {
        let mut guard = self.conn()?;
        let (conn, texts) = guard.as_mut().expect("opened by conn()");
        let mut prepared = conn.prepare_cached(text(texts, sql)).map_err(err(what))?;
        prepared.execute(rusqlite::params_from_iter(args.iter())).map_err(err(what))
    }

    /// Apply a planned batch in one transaction with the projector's offsets: which records
    /// were new, and the stream rows they added.
    pub(crate) fn apply(
        &self,
        projector: &str,
        planned: &Planned,
    ) -> Result<(Vec<bool>, Vec<Streamed>), StoreError> {
        let mut guard = self.conn()?;
        let (conn, texts) = guard.as_mut().expect("opened by conn()");
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err("begin projection"))?;
        let rows = {
            let mut load = tx.prepare_cached(text(texts, LOAD_SQL)).map_err(err("read projector offsets"))?;
            let rows = load
                .query_map([projector], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .map_err(err("read projector offsets"))?;
            rows.collect::<Result<Vec<(String, i64, i64)>, _>>().map_err(err("read projector offsets"))?
        };
        let mut offsets = Offsets::new(rows);
        let (fresh, stmts) = offsets.take_new(planned);
        let mut streamed = Vec::new();
        for stmt in stmts {
            let mut prepared = tx.prepare_cached(text(texts, stmt.sql)).map_err(err(stmt.what))?;
            let params = rusqlite::params_from_iter(stmt.args.iter());
            match &stmt.stream {
                Some(row) => {
                    let seq = prepared.query_row(params, |r| r.get(0)).optional().map_err(err(stmt.what))?;
                    streamed.extend(seq.map(|seq| Streamed::new(row, seq)));
                }
                None => {
                    prepared.execute(params).map_err(err(stmt.what))?;
                }
            }
        }
        {
            let mut advance =
                tx.prepare_cached(text(texts, ADVANCE_SQL)).map_err(err("advance projector offset"))?;
            for ((topic, partition), next) in offsets.advanced() {
                advance
                    .execute(rusqlite::params![projector, topic, i64::from(partition), next])
                    .map_err(err("advance projector offset"))?;
            }
        }
        tx.commit().map_err(err("commit projection"))?;
        Ok((fresh, streamed))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn postgres_parameters_become_numbered_ones() {
        assert_eq!(
            super::numbered("SELECT $1, $12 FROM t WHERE a = $1"),
            "SELECT ?1, ?12 FROM t WHERE a = ?1"
        );
        assert_eq!(super::numbered("SELECT '$' || x"), "SELECT '$' || x");
    }
}
