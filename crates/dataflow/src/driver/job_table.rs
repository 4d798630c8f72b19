//! Tables indexed by job number. Numbers are never reused and finished jobs leave their slots
//! empty, so a plain vector grew with history: after a million jobs, the scheduler's tables held
//! ~130 MB of empty slots, zeroed again at every restart (most of a start from a snapshot then).
//! Here the slots come in chunks, allocated while one of their jobs is held and freed when the
//! last leaves: memory, snapshots and restores follow the jobs in flight. Written to a snapshot
//! as the table's length and the slots in use with their numbers.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A slot that may hold nothing.
pub trait Slot: Default {
    fn is_vacant(&self) -> bool;
}

impl<T> Slot for Option<T> {
    fn is_vacant(&self) -> bool {
        self.is_none()
    }
}

impl<T> Slot for Vec<T> {
    fn is_vacant(&self) -> bool {
        self.is_empty()
    }
}

impl<T> Slot for Box<[T]> {
    fn is_vacant(&self) -> bool {
        self.is_empty()
    }
}

const SHIFT: usize = 8;
const CHUNK: usize = 1 << SHIFT;

/// Slots by job number, in chunks of [`CHUNK`]; an empty chunk holds no memory.
#[derive(Debug, Clone)]
pub struct JobTable<T> {
    chunks: Vec<Box<[T]>>,
    len: usize,
}

impl<T> Default for JobTable<T> {
    fn default() -> Self {
        Self { chunks: Vec::new(), len: 0 }
    }
}

impl<T: Slot> JobTable<T> {
    /// How many numbers the table spans (used or not).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Slot `j`, if its chunk is allocated (a slot of a freed chunk is vacant).
    pub fn get(&self, j: usize) -> Option<&T> {
        self.chunks.get(j >> SHIFT)?.get(j & (CHUNK - 1))
    }

    /// Slot `j` to change in place, if its chunk is allocated.
    pub fn get_mut(&mut self, j: usize) -> Option<&mut T> {
        self.chunks.get_mut(j >> SHIFT)?.get_mut(j & (CHUNK - 1))
    }

    /// Slot `j`, the table spanning it and its chunk allocated.
    pub fn slot(&mut self, j: usize) -> &mut T {
        self.len = self.len.max(j + 1);
        let c = j >> SHIFT;
        if self.chunks.len() <= c {
            self.chunks.resize_with(c + 1, Box::default);
        }
        if self.chunks[c].is_empty() {
            self.chunks[c] = (0..CHUNK).map(|_| T::default()).collect();
        }
        &mut self.chunks[c][j & (CHUNK - 1)]
    }

    /// Put `value` at the next number.
    pub fn push(&mut self, value: T) {
        *self.slot(self.len) = value;
    }

    /// Empty slot `j`; what it held. Its chunk is freed once none of its slots is in use.
    pub fn take(&mut self, j: usize) -> T {
        let Some(slot) = self.get_mut(j) else { return T::default() };
        let taken = std::mem::take(slot);
        let chunk = &mut self.chunks[j >> SHIFT];
        if chunk.iter().all(Slot::is_vacant) {
            *chunk = Box::default();
        }
        taken
    }

    /// The slots in use, by number.
    pub fn iter(&self) -> impl Iterator<Item = (usize, &T)> {
        self.chunks.iter().enumerate().flat_map(|(c, chunk)| {
            chunk.iter().enumerate().filter(|(_, t)| !t.is_vacant()).map(move |(i, t)| ((c << SHIFT) + i, t))
        })
    }
}

impl<T: Slot + Serialize> Serialize for JobTable<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let used: Vec<(u32, &T)> = self.iter().map(|(j, t)| (j as u32, t)).collect();
        (self.len as u32, used).serialize(serializer)
    }
}

impl<'de, T: Slot + Deserialize<'de>> Deserialize<'de> for JobTable<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let (len, used): (u32, Vec<(u32, T)>) = Deserialize::deserialize(deserializer)?;
        let mut table = Self::default();
        for (j, t) in used {
            if j >= len {
                return Err(serde::de::Error::custom("slot past the table"));
            }
            *table.slot(j as usize) = t;
        }
        table.len = len as usize;
        Ok(table)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_read_back_and_a_chunk_is_freed_when_its_last_slot_empties() {
        let mut t: JobTable<Option<u32>> = JobTable::default();
        for j in 0..1_000 {
            t.push(Some(j));
        }
        assert_eq!(t.len(), 1_000);
        assert_eq!(t.get(700), Some(&Some(700)));
        for j in 0..CHUNK {
            assert_eq!(t.take(j), Some(j as u32));
        }
        assert!(t.chunks[0].is_empty(), "the first chunk is freed");
        assert_eq!(t.get(3), None, "a freed chunk's slots read as absent");
        assert_eq!(t.take(3), None);
        assert_eq!(t.iter().count(), 1_000 - CHUNK);
        assert_eq!(t.iter().next(), Some((CHUNK, &Some(CHUNK as u32))));
        *t.slot(5) = Some(55);
        assert_eq!(t.get(5), Some(&Some(55)), "a freed chunk comes back when a slot is set");
    }

    #[test]
    fn a_snapshot_holds_the_used_slots_only_and_reads_back() {
        let mut t: JobTable<Option<u8>> = JobTable::default();
        for j in 0..100_000 {
            t.push(Some(1));
            if j != 77_777 {
                t.take(j);
            }
        }
        let mut bytes = Vec::new();
        ciborium::into_writer(&t, &mut bytes).unwrap();
        assert!(bytes.len() < 20, "{} bytes", bytes.len());
        let back: JobTable<Option<u8>> = ciborium::from_reader(bytes.as_slice()).unwrap();
        assert_eq!(back.len(), 100_000);
        assert_eq!(back.chunks.iter().filter(|c| !c.is_empty()).count(), 1, "one chunk allocated");
        assert_eq!(back.iter().collect::<Vec<_>>(), vec![(77_777, &Some(1))]);
        let mut past = Vec::new();
        ciborium::into_writer(&(3u32, vec![(5u32, Some(1u8))]), &mut past).unwrap();
        assert!(
            ciborium::from_reader::<JobTable<Option<u8>>, _>(past.as_slice()).is_err(),
            "slot past the end"
        );
    }
}
