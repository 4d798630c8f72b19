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
        conn.busy_timeout(CONNECTION_WAIT)?;
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

/// WAL frames (pages, ~4 KiB each) past which a checkpoint also restarts the WAL.
pub const RESTART_FRAMES: i64 = 8192;

/// How long a restarting checkpoint may hold writers back while it waits for readers.
const RESTART_WAIT: Duration = Duration::from_millis(50);

/// One passive checkpoint (as many committed pages as no reader still needs), and a restart
/// when the WAL has grown past [`RESTART_FRAMES`].
///
/// A writer starts the WAL over only when every frame is checkpointed and no reader holds a
/// snapshot inside it. Under steady load (commits every millisecond, stream reads always open)
/// that moment never came: both WALs grew for as long as the load lasted (290 MB beside a 90 MB
/// log after 800 fan-out jobs), every commit extended the file (the kernel zeroing each new
/// block: 5 % of the CPU) and every page read searched a longer WAL index. A restarting
/// checkpoint holds writers back until the readers of old snapshots finish, so the next commit
/// starts the WAL over; it waits at most [`RESTART_WAIT`] and otherwise tries again next time.
fn checkpoint(conn: &Connection, path: &Path) {
    if let Err(error) = checkpoint_restarting_past(conn, RESTART_FRAMES) {
        tracing::warn!(%error, file = %path.display(), "checkpointing the WAL failed; retrying");
    }
}

/// [`checkpoint`] with its threshold: whether the WAL was restarted.
fn checkpoint_restarting_past(conn: &Connection, frames: i64) -> rusqlite::Result<bool> {
    let passive = |r: &rusqlite::Row<'_>| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?));
    let (_, log) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], passive)?;
    if log <= frames {
        return Ok(false);
    }
    conn.busy_timeout(RESTART_WAIT)?;
    let busy = conn.query_row("PRAGMA wal_checkpoint(RESTART)", [], |r| r.get::<_, i64>(0));
    conn.busy_timeout(CONNECTION_WAIT)?;
    Ok(busy? == 0)
}

/// The checkpointer's busy timeout outside restarts.
const CONNECTION_WAIT: Duration = Duration::from_secs(5);

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer of a new WAL-mode file with automatic checkpoints off, as the project's are.
    fn wal_writer(path: &Path) -> Connection {
        let writer = Connection::open(path).unwrap();
        writer.execute_batch("PRAGMA journal_mode = WAL; CREATE TABLE t (v BLOB);").unwrap();
        without_autocheckpoint(&writer).unwrap();
        writer
    }

    /// `n` commits of about a page each.
    fn write_pages(writer: &Connection, n: usize) {
        for _ in 0..n {
            writer.execute("INSERT INTO t VALUES (zeroblob(4000))", []).unwrap();
        }
    }

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
        let writer = wal_writer(&path);
        let write = |n: usize| write_pages(&writer, n);
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

    /// Past the threshold a checkpoint restarts the WAL, but not while a reader still holds a
    /// snapshot inside it: then it gives up within its short wait and the next one restarts it.
    #[test]
    fn a_long_wal_is_restarted_once_the_readers_of_old_snapshots_are_done() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.sqlite");
        let writer = wal_writer(&path);
        let write = |n: usize| write_pages(&writer, n);
        write(300);
        let mut reader = Connection::open(&path).unwrap();
        let snapshot = reader.transaction().unwrap();
        let _: i64 = snapshot.query_row("SELECT count(*) FROM t", [], |r| r.get(0)).unwrap();
        let checkpointer = Connection::open(&path).unwrap();
        assert!(!checkpoint_restarting_past(&checkpointer, 100).unwrap(), "a reader holds the WAL");
        assert!(!checkpoint_restarting_past(&checkpointer, 1_000).unwrap(), "under the threshold");
        drop(snapshot);
        assert!(checkpoint_restarting_past(&checkpointer, 100).unwrap(), "restarted");
        write(1);
        let probe = Connection::open(&path).unwrap();
        let after = wal_frames(&probe);
        assert!(after < 10, "the next commit started the WAL over: {after} frames");
    }
}
