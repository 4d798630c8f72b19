//! What every reader of a scheduler's decisions does with their `epoch` (see [`crate::EpochFence`]):
//! per partition, a record of an older epoch than one already read there is a deposed leader's
//! and is ignored. A new leader writes a fence into each partition before its first decision, so
//! whatever the old one appends after that point is behind the fence for every reader.

use std::collections::HashMap;

use crate::{Envelope, SourcePosition};

/// The newest epoch read in each partition.
#[derive(Debug, Default, Clone)]
pub struct EpochFilter {
    newest: HashMap<(String, u32), u64>,
}

impl EpochFilter {
    /// Whether `envelope`, read at `at`, is to be acted on: records without an epoch (no
    /// leadership in use, or not a scheduler's) always are.
    pub fn admits(&mut self, at: &SourcePosition, envelope: &Envelope) -> bool {
        let Some(epoch) = envelope.epoch else { return true };
        if let Some(newest) = self.newest.get_mut(&(at.topic.clone(), at.partition)) {
            if epoch < *newest {
                return false;
            }
            *newest = epoch;
        } else {
            self.newest.insert((at.topic.clone(), at.partition), epoch);
        }
        true
    }

    /// The newest epoch read anywhere (0: none).
    pub fn newest(&self) -> u64 {
        self.newest.values().copied().max().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{EpochFence, Event, Topic};

    fn at(partition: u32) -> SourcePosition {
        SourcePosition { topic: "splai.assignments".into(), partition, offset: 0 }
    }

    fn record(epoch: Option<u64>) -> Envelope {
        let fence = EpochFence { epoch: epoch.unwrap_or(0), topic: Topic::Assignments, partition: 0 };
        Envelope { epoch, ..Envelope::new("r", 0, "system", Event::EpochFence(fence)) }
    }

    #[test]
    fn an_older_epoch_after_a_newer_one_in_its_partition_is_ignored() {
        let mut f = EpochFilter::default();
        assert!(f.admits(&at(0), &record(Some(1))));
        assert!(f.admits(&at(0), &record(Some(2))), "a newer leader");
        assert!(!f.admits(&at(0), &record(Some(1))), "the deposed one, behind the fence");
        assert!(f.admits(&at(0), &record(Some(2))));
        assert!(f.admits(&at(1), &record(Some(1))), "another partition has its own fence");
        assert!(f.admits(&at(0), &record(None)), "records without an epoch pass");
        assert_eq!(f.newest(), 2);
    }
}
