//! WAL checkpoints off the commit path. SQLite checkpoints a WAL file from inside the commit
//! that grows it past `wal_autocheckpoint` pages, and a checkpoint syncs the database file and
//! the WAL even with `synchronous = NORMAL`: on these disks that is 15–20 ms, charged at random
//! to one append, artifact write or submit, on whatever thread made it (often a tokio worker,
//! stalling every task on it). Writers turn automatic checkpoints off ([`without_autocheckpoint`])
//! and a [`Checkpointer`] runs passive checkpoints on a thread of its own instead: they copy
//! committed pages into the database while writers and readers go on.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use rusqlite::Connection;

/// How often the background thread checkpoints (the WAL grows by what is written meanwhile).
pub const INTERVAL: Duration = Duration::from_millis(250);

/// Turn off automatic checkpoints on a writer's connection (a [`Checkpointer`] runs them).
pub fn without_autocheckpoint(conn: &Connection) -> rusqlite::Result<()> {
    conn.pragma_update(None, "wal_autocheckpoint", 0)
}

/// A thread checkpointing one SQLite file every [`INTERVAL`] until this handle drops (which
/// waits for its last checkpoint).
#[derive(Debug)]
pub struct Checkpointer {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Checkpointer {
    /// Start checkpointing the WAL-mode database at `path` (its own connection).
    pub fn start(path: &Path) -> rusqlite::Result<Self> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(Duration::from_secs(5))?;
        let (stop, stopped) = mpsc::channel::<()>();
        let path: PathBuf = path.to_path_buf();
        let name = format!("checkpoint-{}", path.file_stem().and_then(|s| s.to_str()).unwrap_or("sqlite"));
        let thread = std::thread::Builder::new()
            .name(name)
            .spawn(move || {
                // Disconnected (the handle dropped): one last checkpoint, then stop.
                while !matches!(stopped.recv_timeout(INTERVAL), Err(mpsc::RecvTimeoutError::Disconnected)) {
                    checkpoint(&conn, &path);
                }
                checkpoint(&conn, &path);
            })
            .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
        Ok(Self { stop: Some(stop), thread: Some(thread) })
    }
}

/// One passive checkpoint: as many committed pages as no reader still needs.
fn checkpoint(conn: &Connection, path: &Path) {
    let result = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get::<_, i64>(0));
    if let Err(error) = result {
        tracing::warn!(%error, file = %path.display(), "checkpointing the WAL failed; retrying");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wal_frames(conn: &Connection) -> i64 {
        // (busy, frames in the WAL, frames checkpointed) of a no-op passive checkpoint.
        conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get::<_, i64>(1)).unwrap()
    }

    /// Without automatic checkpoints a writer's WAL only grows; the checkpointer copies it back
    /// into the database, so a new writer starts the WAL over.
    #[test]
    fn the_background_thread_checkpoints_what_writers_commit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.sqlite");
        let writer = Connection::open(&path).unwrap();
        writer.execute_batch("PRAGMA journal_mode = WAL; CREATE TABLE t (v BLOB);").unwrap();
        without_autocheckpoint(&writer).unwrap();
        let write = |n: usize| {
            for _ in 0..n {
                writer.execute("INSERT INTO t VALUES (zeroblob(4000))", []).unwrap();
            }
        };
        write(1200); // past the default autocheckpoint of 1000 pages
        let probe = Connection::open(&path).unwrap();
        let grown = wal_frames(&probe);
        assert!(grown > 1000, "no automatic checkpoint restarted the WAL: {grown} frames");
        // Dropped at once: its last checkpoint runs before the drop returns.
        drop(Checkpointer::start(&path).unwrap());
        // Every frame was copied, so the next commit starts the WAL from its beginning.
        write(1);
        let after = wal_frames(&probe);
        assert!(after < 10, "the WAL restarted after the background checkpoint: {after} frames");
    }
}
