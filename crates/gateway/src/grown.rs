//! Which jobs' streams grew: the projector announces the jobs of every batch it applied, and a
//! handler following one job wakes only for batches that touched it. (A global "something was
//! projected" signal woke every open stream and waiting OpenAI call for every batch, each then
//! querying the read model twice.)

use std::sync::Arc;
use std::time::Duration;

use splai_store::Streamed;
use splai_store::read::StreamEvent;
use tokio::sync::broadcast;

/// Announcements a follower may fall behind by; past that it is told it missed some and reads
/// again, as if its job had grown.
const BACKLOG: usize = 1024;

/// One committed batch: the jobs whose streams grew, and the rows it added to them.
#[derive(Debug, Default)]
struct Batch {
    jobs: Vec<String>,
    rows: Vec<Streamed>,
}

#[derive(Debug, Clone)]
pub struct Grown {
    tx: broadcast::Sender<Arc<Batch>>,
}

impl Default for Grown {
    fn default() -> Self {
        Self { tx: broadcast::channel(BACKLOG).0 }
    }
}

impl Grown {
    /// The projector committed a batch that grew these jobs' streams by these rows.
    pub fn announce(&self, jobs: Vec<String>, rows: Vec<Streamed>) {
        let _ = self.tx.send(Arc::new(Batch { jobs, rows })); // nobody following: nothing to wake
    }

    /// Follow `job`: every batch announced from now on counts.
    pub fn follow(&self, job: &str) -> Follower {
        Follower { rx: self.tx.subscribe(), job: job.to_string() }
    }
}

#[derive(Debug)]
pub struct Follower {
    rx: broadcast::Receiver<Arc<Batch>>,
    job: String,
}

/// What a stream follower learnt while it waited.
#[derive(Debug, PartialEq)]
pub enum Grew {
    /// The rows that follow the last one it had, in order, straight from the projector.
    Rows(Vec<StreamEvent>),
    /// Its job may have grown by rows it was not handed (some were missed, another gateway
    /// projected, or the wait ended): read the stream from the store.
    ReadAgain,
}

impl Follower {
    /// The next announced batch that grew this job's stream; `None` when some were missed.
    async fn next_batch(&mut self) -> Option<Arc<Batch>> {
        loop {
            match self.rx.recv().await {
                Ok(batch) if batch.jobs.contains(&self.job) => return Some(batch),
                Ok(_) => continue,
                Err(broadcast::error::RecvError::Lagged(_)) => return None,
                Err(broadcast::error::RecvError::Closed) => std::future::pending().await,
            }
        }
    }

    /// Wait until a batch announced since the last wait grew this job's stream (or some were
    /// missed), at most `within` (another gateway may project: the caller reads again anyway).
    pub async fn grown(&mut self, within: Duration) {
        let _ = tokio::time::timeout(within, self.next_batch()).await;
    }

    /// Wait, at most `within`, for the rows of `tenant`'s job after `after`: handed over when
    /// the next announced ones follow on from `after` without a gap, so a stream that keeps up
    /// never reads the store; anything else says to read again.
    pub async fn rows_after(&mut self, tenant: &str, after: i64, within: Duration) -> Grew {
        let next = async {
            while let Some(batch) = self.next_batch().await {
                let ours = |r: &&Streamed| r.job_id == self.job && r.tenant == tenant;
                let rows: Vec<StreamEvent> = batch
                    .rows
                    .iter()
                    .filter(ours)
                    .filter(|r| r.event.seq > after)
                    .map(|r| r.event.clone())
                    .collect();
                let follows = rows.iter().zip(after + 1..).all(|(r, seq)| r.seq == seq);
                return match rows.is_empty() {
                    // Rows it already has (read from the store before this batch was announced).
                    true if batch.rows.iter().any(|r| ours(&r)) => continue,
                    false if follows => Grew::Rows(rows),
                    _ => Grew::ReadAgain,
                };
            }
            Grew::ReadAgain
        };
        tokio::time::timeout(within, next).await.unwrap_or(Grew::ReadAgain)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;

    /// Longer than any of these waits may take when they return at once.
    const LONG: Duration = Duration::from_secs(60);

    /// Whether `follower` wakes at once (well before `LONG`).
    async fn wakes(follower: &mut Follower) -> bool {
        let started = Instant::now();
        follower.grown(LONG).await;
        started.elapsed() < LONG / 2
    }

    #[tokio::test]
    async fn a_follower_wakes_for_its_job_only() {
        let grown = Grown::default();
        let mut follower = grown.follow("a");
        grown.announce(vec!["b".into()], Vec::new());
        let started = Instant::now();
        follower.grown(Duration::from_millis(100)).await;
        assert!(started.elapsed() >= Duration::from_millis(100), "another job's batch does not wake it");
        grown.announce(vec!["b".into(), "a".into()], Vec::new());
        assert!(wakes(&mut follower).await);
    }

    #[tokio::test]
    async fn an_announcement_before_the_wait_is_not_lost() {
        let grown = Grown::default();
        let mut follower = grown.follow("a");
        grown.announce(vec!["a".into()], Vec::new());
        assert!(wakes(&mut follower).await);
    }

    fn row(tenant: &str, job: &str, seq: i64) -> Streamed {
        Streamed {
            tenant: tenant.into(),
            job_id: job.into(),
            event: StreamEvent { seq, event: "task.update".into(), data: serde_json::json!({}), ts_ms: 1 },
        }
    }

    fn seqs(grew: Grew) -> Vec<i64> {
        match grew {
            Grew::Rows(rows) => rows.iter().map(|r| r.seq).collect(),
            Grew::ReadAgain => panic!("told to read again"),
        }
    }

    #[tokio::test]
    async fn rows_that_follow_on_are_handed_over() {
        let grown = Grown::default();
        let mut follower = grown.follow("a");
        grown.announce(vec!["a".into()], vec![row("t", "a", 3), row("t", "b", 9), row("t", "a", 4)]);
        assert_eq!(seqs(follower.rows_after("t", 2, LONG).await), vec![3, 4]);
        // Rows it read from the store already are skipped; the batch after is handed over.
        grown.announce(vec!["a".into()], vec![row("t", "a", 5)]);
        grown.announce(vec!["a".into()], vec![row("t", "a", 6)]);
        assert_eq!(seqs(follower.rows_after("t", 5, LONG).await), vec![6]);
    }

    #[tokio::test]
    async fn a_gap_another_tenant_or_no_rows_means_reading_again() {
        let grown = Grown::default();
        let mut follower = grown.follow("a");
        grown.announce(vec!["a".into()], vec![row("t", "a", 5)]);
        assert_eq!(follower.rows_after("t", 3, LONG).await, Grew::ReadAgain, "row 4 is missing");
        grown.announce(vec!["a".into()], vec![row("other", "a", 1)]);
        assert_eq!(follower.rows_after("t", 0, LONG).await, Grew::ReadAgain, "not its tenant's rows");
        grown.announce(vec!["a".into()], Vec::new());
        assert_eq!(follower.rows_after("t", 0, LONG).await, Grew::ReadAgain, "grown, rows unknown");
        assert_eq!(follower.rows_after("t", 0, Duration::from_millis(10)).await, Grew::ReadAgain);
    }

    #[tokio::test]
    async fn a_follower_that_fell_behind_reads_again() {
        let grown = Grown::default();
        let mut follower = grown.follow("a");
        for _ in 0..=BACKLOG {
            grown.announce(vec!["b".into()], Vec::new());
        }
        assert!(wakes(&mut follower).await, "missed announcements may have named it");
        let mut follower = grown.follow("a");
        for _ in 0..=BACKLOG {
            grown.announce(vec!["a".into()], vec![row("t", "a", 1)]);
        }
        assert_eq!(follower.rows_after("t", 0, LONG).await, Grew::ReadAgain);
    }
}
