//! Leadership among `splai scheduler` processes, kept on the log itself (issue 21 item 4; no
//! coordinator): `scheduler_lease` records on `control`, all under key `scheduler`, so every
//! reader sees them in one order. The first claim of an epoch wins it; its holder renews it every
//! third of the lease; a standby that reads no renewal before the lease lapses claims the next
//! epoch. A new leader first writes an `epoch_fence` into every partition it writes decisions to,
//! and stamps each decision with its epoch: readers ignore a deposed leader's decisions appended
//! after the fence ([`splai_events::EpochFilter`]), so two schedulers that both believe they lead
//! (one paused past its lease, then resumed) never cause an effect twice.

use splai_events::{Envelope, EpochFence, Event, SchedulerLease, Topic};
use splai_ingest::log::{EventBatch, partition_for};

/// This process's part in leadership.
#[derive(Debug, Clone)]
pub struct LeaseOptions {
    /// Who claims (unique per process).
    pub holder: String,
    /// How long a lease lasts without a renewal (ms); renewed every third of it.
    pub ttl_ms: u64,
}

/// The newest epoch won, by whom, and until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub epoch: u64,
    pub holder: String,
    pub until_ms: u64,
}

/// What the lease records read so far say.
#[derive(Debug, Default)]
pub struct Leadership {
    current: Option<Lease>,
}

impl Leadership {
    /// Take one lease record into account, in the order the log gives them.
    pub fn observe(&mut self, claim: &SchedulerLease) {
        match &mut self.current {
            // A renewal (or a release) by the winner; another claim of a won epoch lost.
            Some(lease) if claim.epoch == lease.epoch => {
                if claim.holder == lease.holder {
                    lease.until_ms = claim.until_ms;
                }
            }
            Some(lease) if claim.epoch < lease.epoch => {}
            _ => {
                self.current =
                    Some(Lease { epoch: claim.epoch, holder: claim.holder.clone(), until_ms: claim.until_ms })
            }
        }
    }

    /// Observe the lease records in `batch`.
    pub fn observe_batch(&mut self, batch: &EventBatch) {
        for (_, e) in &batch.events {
            if let Event::SchedulerLease(claim) = &e.event {
                self.observe(claim);
            }
        }
    }

    pub fn current(&self) -> Option<&Lease> {
        self.current.as_ref()
    }

    /// Whether nobody leads at `now` (no lease yet, or it lapsed).
    pub fn lapsed(&self, now: u64) -> bool {
        self.current.as_ref().is_none_or(|l| now >= l.until_ms)
    }

    /// The epoch a claim made now asks for.
    pub fn next_epoch(&self) -> u64 {
        self.current.as_ref().map_or(1, |l| l.epoch + 1)
    }

    /// The epoch `holder` leads, if the newest epoch is its.
    pub fn led_by(&self, holder: &str) -> Option<u64> {
        self.current.as_ref().filter(|l| l.holder == holder).map(|l| l.epoch)
    }
}

/// A claim (or renewal, or release with `until_ms` = now) of `epoch` by `holder`.
pub fn claim(epoch: u64, holder: &str, until_ms: u64, now: u64) -> Envelope {
    let lease = SchedulerLease { epoch, holder: holder.to_string(), until_ms };
    let e =
        Envelope::new(format!("lease-{epoch}-{holder}-{now}"), now, "system", Event::SchedulerLease(lease));
    Envelope { epoch: Some(epoch), ..e }
}

/// The topics a leader writes decisions to, which it fences.
pub const FENCED: [Topic; 2] = [Topic::Assignments, Topic::JobEvents];

/// `epoch`'s fences: one record in each partition of each fenced topic, each under an id (its
/// key) that lands it on its partition.
pub fn fences(epoch: u64, partitions: u32, now: u64) -> Vec<Envelope> {
    let mut out = Vec::new();
    for topic in FENCED {
        for partition in 0..partitions {
            let id = (0u32..)
                .map(|n| format!("fence-{epoch}-{}-{partition}-{n}", topic.name()))
                .find(|id| partition_for(id, partitions) == partition)
                .expect("some id lands on every partition");
            let fence = EpochFence { epoch, topic, partition };
            out.push(Envelope {
                epoch: Some(epoch),
                ..Envelope::new(id, now, "system", Event::EpochFence(fence))
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(epoch: u64, holder: &str, until_ms: u64) -> SchedulerLease {
        SchedulerLease { epoch, holder: holder.into(), until_ms }
    }

    #[test]
    fn the_first_claim_of_an_epoch_wins_and_only_its_holder_renews_it() {
        let mut l = Leadership::default();
        assert!(l.lapsed(0) && l.next_epoch() == 1, "nobody leads a fresh log");
        l.observe(&lease(1, "a", 1_000));
        l.observe(&lease(1, "b", 5_000));
        assert_eq!((l.led_by("a"), l.led_by("b")), (Some(1), None), "b's claim came second");
        assert!(!l.lapsed(999) && l.lapsed(1_000));
        l.observe(&lease(1, "a", 2_000));
        assert!(!l.lapsed(1_500), "renewed");
        l.observe(&lease(1, "b", 9_000));
        assert!(l.lapsed(2_000), "b cannot renew a's lease");
        l.observe(&lease(2, "b", 3_000));
        assert_eq!((l.led_by("b"), l.next_epoch()), (Some(2), 3), "b claimed the next epoch");
        l.observe(&lease(1, "a", 9_000));
        assert_eq!(l.led_by("b"), Some(2), "a deposed leader's renewal changes nothing");
    }

    #[test]
    fn fences_cover_every_partition_of_every_fenced_topic() {
        let fences = fences(4, 3, 10);
        assert_eq!(fences.len(), 6);
        for e in &fences {
            let Event::EpochFence(f) = &e.event else { unreachable!() };
            assert_eq!((f.epoch, e.epoch), (4, Some(4)));
            assert_eq!(e.event.topic(), f.topic);
            assert_eq!(partition_for(e.key(), 3), f.partition, "{}", e.id);
        }
    }
}
