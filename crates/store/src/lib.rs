//! The SPLAI read model: SQL tables projected from the event log (jobs, tasks, attempts, workers,
//! artifacts with lineage, the audit hash chain, projector offsets), on PostgreSQL in production
//! and SQLite in the embedded default. One query text serves both through sqlx's `Any` driver;
//! migrations live in `migrations/postgres` and `migrations/sqlite` and are embedded at build time.

pub mod artifacts;
pub mod audit;
mod audit_commit;
mod offsets;
pub mod projection;
pub mod read;
mod schema;
mod small_objects;

use std::str::FromStr;
use std::sync::Arc;

use splai_config::StoreSettings;
use sqlx::AnyPool;
use sqlx::any::{AnyPoolOptions, install_default_drivers};

pub use offsets::ProjectorOffsets;
use projection::sqlite::SqliteFile;
pub use projection::{Applied, Projection, Streamed};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot connect to the read model at {url}: {message}")]
    Connect { url: String, message: String },
    #[error("migrating the {backend} read model failed: {message}")]
    Migrate { backend: Backend, message: String },
    #[error("read-model query `{query}` failed: {source}")]
    Query { query: &'static str, source: sqlx::Error },
    #[error("read-model statement `{query}` failed: {source}")]
    Sqlite { query: &'static str, source: rusqlite::Error },
    #[error("{what} stopped before it finished: {message}")]
    Blocking { what: &'static str, message: String },
}

impl StoreError {
    /// Whether the statement can never succeed with the same arguments (a constraint or a value
    /// the database refuses), as opposed to the database being unreachable or busy.
    pub fn is_permanent(&self) -> bool {
        match self {
            StoreError::Query { source: sqlx::Error::Database(db), .. } => {
                !matches!(db.kind(), sqlx::error::ErrorKind::Other)
                    // SQLSTATE classes 22 (data exception: a NUL byte, a bad encoding) and 23
                    // (integrity constraint violation).
                    || db.code().is_some_and(|c| c.starts_with("22") || c.starts_with("23"))
            }
            StoreError::Query {
                source: sqlx::Error::Encode(_) | sqlx::Error::TypeNotFound { .. }, ..
            } => true,
            StoreError::Sqlite { source, .. } => {
                matches!(
                    source.sqlite_error_code(),
                    Some(
                        rusqlite::ErrorCode::ConstraintViolation
                            | rusqlite::ErrorCode::TooBig
                            | rusqlite::ErrorCode::TypeMismatch
                    )
                ) || matches!(source, rusqlite::Error::ToSqlConversionFailure(_))
            }
            _ => false,
        }
    }

    pub(crate) fn query(query: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
        move |source| StoreError::Query { query, source }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Backend::Postgres => "postgres",
            Backend::Sqlite => "sqlite",
        })
    }
}

static POSTGRES: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/postgres");
static SQLITE: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/sqlite");

/// A connection pool to the read model.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// The SQLite file, for the projection's direct writes (None on PostgreSQL).
    sqlite: Option<Arc<SqliteFile>>,
    /// The audit chain's HMAC key (empty: unkeyed).
    audit_key: Arc<[u8]>,
    /// Audit appends waiting for the next group commit.
    audit_queue: Arc<audit_commit::AuditQueue>,
    /// SQLite takes one writer at a time; a writer that finds the file locked sleeps in SQLite's
    /// busy handler (1, 2, 5 … 100 ms), so a submit behind a projection batch waited up to a
    /// tenth of a second. Writers in this process queue here instead, and start as soon as the
    /// one before commits.
    sqlite_writer: Arc<tokio::sync::Mutex<()>>,
    /// A SQLite file's WAL checkpoints, on a thread of their own (None on PostgreSQL).
    _checkpoints: Option<Arc<splai_sqlite::Checkpointer>>,
}

impl Store {
    /// This store with the audit chain keyed by `key` (HMAC-SHA256; empty: unkeyed).
    pub fn with_audit_key(mut self, key: &[u8]) -> Self {
        self.audit_key = Arc::from(key.to_vec());
        self
    }

    /// Connect (creating the SQLite file and its directory when missing).
    pub async fn connect(settings: &StoreSettings) -> Result<Self, StoreError> {
        install_default_drivers();
        let url = settings.url.as_str();
        let err = |message: String| StoreError::Connect { url: redact(url), message };
        let backend = if url.starts_with("sqlite:") { Backend::Sqlite } else { Backend::Postgres };
        let mut options = AnyPoolOptions::new()
            .max_connections(settings.max_connections)
            .acquire_timeout(std::time::Duration::from_secs(5));
        let (mut sqlite, mut sqlite_path) = (None, None);
        let connect_url = match backend {
            Backend::Sqlite => {
                let path = url.trim_start_matches("sqlite://").trim_start_matches("sqlite:");
                let path = path.split('?').next().unwrap_or(path);
                let dir = std::path::Path::new(path).parent().filter(|d| !d.as_os_str().is_empty());
                if let Some(dir) = dir.filter(|_| path != ":memory:") {
                    std::fs::create_dir_all(dir).map_err(|e| err(e.to_string()))?;
                }
                // SQLite allows one writer: WAL lets readers go on while it writes; foreign keys
                // are off by default in SQLite and on in PostgreSQL.
                // Without fsync a commit is durable against a process crash (WAL), not against
                // power loss: the embedded log's default promise, without a disk wait per submit.
                // Commits never checkpoint (a checkpoint syncs the files): `checkpoints` does.
                let synchronous = if settings.fsync {
                    "PRAGMA synchronous = FULL;"
                } else {
                    "PRAGMA synchronous = NORMAL;"
                };
                options = options.after_connect(move |conn, _| {
                    Box::pin(async move {
                        sqlx::raw_sql(
                            "PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 30000; PRAGMA wal_autocheckpoint = 0;",
                        )
                        .execute(&mut *conn)
                        .await?;
                        sqlx::raw_sql(synchronous).execute(conn).await?;
                        Ok(())
                    })
                });
                // A local file needs no ping before each use: with sqlx that is a round trip to
                // the connection's worker thread per query (~4 % of the CPU with 8 clients).
                options = options.test_before_acquire(false);
                sqlite = Some(Arc::new(SqliteFile::new(path.into())));
                sqlite_path = Some(std::path::PathBuf::from(path)).filter(|_| path != ":memory:");
                format!("sqlite://{path}?mode=rwc")
            }
            Backend::Postgres => url.to_string(),
        };
        sqlx::any::AnyConnectOptions::from_str(&connect_url).map_err(|e| err(e.to_string()))?;
        let pool = options.connect(&connect_url).await.map_err(|e| err(e.to_string()))?;
        if backend == Backend::Sqlite {
            sqlx::raw_sql("PRAGMA journal_mode = WAL;")
                .execute(&pool)
                .await
                .map_err(|e| err(e.to_string()))?;
        }
        let checkpoints = match sqlite_path {
            Some(path) => {
                Some(Arc::new(splai_sqlite::Checkpointer::start(&path).map_err(|e| err(e.to_string()))?))
            }
            None => None,
        };
        Ok(Self {
            pool,
            backend,
            sqlite,
            audit_key: Arc::from(Vec::new()),
            audit_queue: Arc::default(),
            sqlite_writer: Arc::default(),
            _checkpoints: checkpoints,
        })
    }

    /// Apply pending migrations (idempotent).
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let migrator = match self.backend {
            Backend::Postgres => &POSTGRES,
            Backend::Sqlite => &SQLITE,
        };
        migrator
            .run(&self.pool)
            .await
            .map_err(|e| StoreError::Migrate { backend: self.backend, message: e.to_string() })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub(crate) fn audit_key(&self) -> &[u8] {
        &self.audit_key
    }

    pub(crate) fn audit_queue(&self) -> &audit_commit::AuditQueue {
        &self.audit_queue
    }

    /// On SQLite, wait for this process's turn to write (held until dropped); nothing on
    /// PostgreSQL, which takes concurrent writers.
    pub(crate) async fn write_turn(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        match self.backend {
            Backend::Sqlite => Some(self.sqlite_writer.lock().await),
            Backend::Postgres => None,
        }
    }

    pub(crate) fn sqlite(&self) -> Option<&Arc<SqliteFile>> {
        self.sqlite.as_ref()
    }
}

/// The URL without its password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let creds = &url[scheme + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn passwords_are_redacted() {
        assert_eq!(super::redact("postgres://u:secret@h:5432/db"), "postgres://u:***@h:5432/db");
        assert_eq!(super::redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(super::redact("sqlite://x.db"), "sqlite://x.db");
    }

    /// `store.fsync` decides whether a SQLite read model's commits wait for the disk.
    #[tokio::test]
    async fn fsync_sets_sqlites_synchronous_mode() {
        let dir = tempfile::tempdir().unwrap();
        for (fsync, want) in [(false, 1i64), (true, 2)] {
            let url = format!("sqlite://{}/rm-{fsync}.sqlite", dir.path().display());
            let store =
                super::Store::connect(&splai_config::StoreSettings { url, max_connections: 1, fsync })
                    .await
                    .unwrap();
            let mode: i64 = sqlx::query_scalar("PRAGMA synchronous").fetch_one(&store.pool).await.unwrap();
            assert_eq!(mode, want, "fsync = {fsync}: 1 is NORMAL, 2 FULL");
        }
    }
}
