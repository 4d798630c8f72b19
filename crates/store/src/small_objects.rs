//! Small artifacts of a local (`file://DIR`) store, packed in one SQLite file
//! (`DIR/small-objects.sqlite`) instead of a file and directories each. A file system pays an
//! inode, directory entries and journal work per object: on a busy ext4 disk creating them was
//! most of a no-op task's cost. Larger outputs stay files; objects written before this existed
//! are files too, so readers look here first, then at the files.

use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, params};

#[derive(Debug)]
pub(crate) struct SmallObjects {
    conn: Mutex<Connection>,
    /// WAL checkpoints on a thread of their own, off the writes' path.
    _checkpoints: splai_sqlite::Checkpointer,
}

impl SmallObjects {
    pub(crate) fn open(dir: &Path) -> rusqlite::Result<Self> {
        let path = dir.join("small-objects.sqlite");
        let conn = Connection::open(&path)?;
        conn.busy_timeout(Duration::from_secs(30))?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;
             CREATE TABLE IF NOT EXISTS objects (path TEXT PRIMARY KEY, bytes BLOB NOT NULL) WITHOUT ROWID;",
        )?;
        splai_sqlite::without_autocheckpoint(&conn)?;
        let checkpoints = splai_sqlite::Checkpointer::start(&path)?;
        Ok(Self { conn: Mutex::new(conn), _checkpoints: checkpoints })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Write (or replace) the object at `path`.
    pub(crate) fn put(&self, path: &str, bytes: &[u8]) -> rusqlite::Result<()> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached("INSERT OR REPLACE INTO objects (path, bytes) VALUES (?1, ?2)")?;
        stmt.execute(params![path, bytes]).map(|_| ())
    }

    /// The object at `path`, if it is kept here.
    pub(crate) fn get(&self, path: &str) -> rusqlite::Result<Option<Vec<u8>>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached("SELECT bytes FROM objects WHERE path = ?1")?;
        stmt.query_row([path], |r| r.get(0)).optional()
    }

    /// Forget the object at `path` (it is being written as a file).
    pub(crate) fn remove(&self, path: &str) -> rusqlite::Result<()> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached("DELETE FROM objects WHERE path = ?1")?;
        stmt.execute([path]).map(|_| ())
    }
}
