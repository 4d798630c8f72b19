//! Which jobs' streams grew: the projector announces the jobs of every batch it applied, and a
//! handler following one job wakes only for batches that touched it. (A global "something was
//! projected" signal woke every open stream and waiting OpenAI call for every batch, each then
//! querying the read model twice.)

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast;

/// Announcements a follower may fall behind by; past that it is told it missed some and reads
/// again, as if its job had grown.
const BACKLOG: usize = 1024;

#[derive(Debug, Clone)]
pub struct Grown {
    tx: broadcast::Sender<Arc<[String]>>,
}

impl Default for Grown {
    fn default() -> Self {
        Self { tx: broadcast::channel(BACKLOG).0 }
    }
}

impl Grown {
    /// The projector committed a batch that grew these jobs' streams.
    pub fn announce(&self, jobs: Vec<String>) {
        let _ = self.tx.send(jobs.into()); // nobody following: nothing to wake
    }

    /// Follow `job`: every batch announced from now on counts.
    pub fn follow(&self, job: &str) -> Follower {
        Follower { rx: self.tx.subscribe(), job: job.to_string() }
    }
}

#[derive(Debug)]
pub struct Follower {
    rx: broadcast::Receiver<Arc<[String]>>,
    job: String,
}

impl Follower {
    /// Wait until a batch announced since the last wait grew this job's stream (or some were
    /// missed), at most `within` (another gateway may project: the caller reads again anyway).
    pub async fn grown(&mut self, within: Duration) {
        let job = self.job.as_str();
        let rx = &mut self.rx;
        let _ = tokio::time::timeout(within, async {
            loop {
                match rx.recv().await {
                    Ok(jobs) if jobs.iter().any(|j| j == job) => return,
                    Ok(_) => continue,
                    Err(broadcast::error::RecvError::Lagged(_)) => return,
                    Err(broadcast::error::RecvError::Closed) => std::future::pending::<()>().await,
                }
            }
        })
        .await;
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
        grown.announce(vec!["b".into()]);
        let started = Instant::now();
        follower.grown(Duration::from_millis(100)).await;
        assert!(started.elapsed() >= Duration::from_millis(100), "another job's batch does not wake it");
        grown.announce(vec!["b".into(), "a".into()]);
        assert!(wakes(&mut follower).await);
    }

    #[tokio::test]
    async fn an_announcement_before_the_wait_is_not_lost() {
        let grown = Grown::default();
        let mut follower = grown.follow("a");
        grown.announce(vec!["a".into()]);
        assert!(wakes(&mut follower).await);
    }

    #[tokio::test]
    async fn a_follower_that_fell_behind_reads_again() {
        let grown = Grown::default();
        let mut follower = grown.follow("a");
        for _ in 0..=BACKLOG {
            grown.announce(vec!["b".into()]);
        }
        assert!(wakes(&mut follower).await, "missed announcements may have named it");
    }
}
