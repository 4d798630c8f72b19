//! Every job id each tenant has used: the request that took it, the job it became (if admitted)
//! and, once that job retired, its final state. A job id is used once, forever, so this is the
//! one part of the scheduler's state that grows with history; it is kept small — tenants
//! interned, short ids inline — and written to a snapshot as one sorted byte string with an
//! offset per id (a few dozen bytes per id). A restored scheduler keeps those bytes as they are
//! and searches them, so a start does not decode every id ever used (it did: ~0.2 µs per id, most
//! of a start after a million jobs).

use compact_str::CompactString;
use rustc_hash::FxHashMap as HashMap;

use crate::model::{Job, JobStatus};

/// What became of one (tenant, job id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdUse {
    /// The request (envelope id) that took the id, admitted or rejected.
    pub request: CompactString,
    /// The job it became, if admitted.
    pub job: Option<Job>,
    /// That job's final state, once it retired.
    pub retired: Option<JobStatus>,
}

/// The ids as a restored snapshot had them, kept as its bytes (sorted, with an offset per id:
/// looked up by binary search, never decoded as a whole), and what changed since in a map. A
/// start from a snapshot then costs a copy of the bytes, not a map entry per id ever used.
#[derive(Debug, Default, Clone)]
pub struct JobIds {
    base: Base,
    changed: HashMap<(u32, CompactString), IdUse>,
}

impl PartialEq for JobIds {
    fn eq(&self, other: &Self) -> bool {
        self.sorted() == other.sorted()
    }
}

impl Eq for JobIds {}

impl JobIds {
    /// What became of `tenant`'s `id`, if a request took it.
    pub fn get(&self, tenant: u32, id: &str) -> Option<IdUse> {
        match self.changed.get(&(tenant, CompactString::from(id))) {
            Some(used) => Some(used.clone()),
            None => self.base.get(tenant, id),
        }
    }

    /// The entry of `tenant`'s `id` to change, copied from the base when only it has one.
    fn entry(&mut self, tenant: u32, id: &str) -> Option<&mut IdUse> {
        let key = (tenant, CompactString::from(id));
        if !self.changed.contains_key(&key) {
            let used = self.base.get(tenant, id)?;
            self.changed.insert(key.clone(), used);
        }
        self.changed.get_mut(&key)
    }

    /// `request` takes `tenant`'s `id`, which no request had.
    pub fn take(&mut self, tenant: u32, id: &str, request: &str) {
        let used = IdUse { request: request.into(), job: None, retired: None };
        self.changed.insert((tenant, id.into()), used);
    }

    /// `tenant`'s `id` became admitted job `job`.
    pub fn admitted(&mut self, tenant: u32, id: &str, job: Job) {
        match self.entry(tenant, id) {
            Some(used) => used.job = Some(job),
            None => {
                let used = IdUse { request: CompactString::default(), job: Some(job), retired: None };
                self.changed.insert((tenant, id.into()), used);
            }
        }
    }

    /// The job of `tenant`'s `id` retired in `status`.
    pub fn retired(&mut self, tenant: u32, id: &str, status: JobStatus) {
        if let Some(used) = self.entry(tenant, id) {
            used.retired = Some(status);
        }
    }

    /// Every id and its use, in (tenant, id) order (a scan: tests and tools).
    pub fn sorted(&self) -> Vec<((u32, CompactString), IdUse)> {
        let mut all = Vec::new();
        self.each_sorted(|tenant, id, used| all.push(((tenant, id.into()), used.clone())));
        all
    }

    /// `f` on every id and its use, in (tenant, id) order: the base's records (already in order)
    /// merged with the changed entries (sorted by reference), a changed one in place of its base
    /// record.
    fn each_sorted(&self, mut f: impl FnMut(u32, &str, &IdUse)) {
        let mut changed: Vec<_> = self.changed.iter().collect();
        changed.sort_unstable_by(|a, b| a.0.cmp(b.0));
        let mut changed = changed.into_iter().peekable();
        for (key, used) in self.base.records() {
            while let Some(((t, id), used)) = changed.next_if(|(k, _)| **k < key) {
                f(*t, id, used);
            }
            if !self.changed.contains_key(&key) {
                f(key.0, &key.1, &used);
            }
        }
        for ((t, id), used) in changed {
            f(*t, id, used);
        }
    }
}

/// A snapshot's ids: `n` (u32), `n` record offsets (u32, from the records' start), then the
/// records in (tenant, id) order, each tenant, id, request, job + 1 (0: none), final state + 1
/// (0: not retired). Checked when read (offsets in order and in bounds); a record that does not
/// decode reads as absent, never as a panic.
#[derive(Debug, Default, Clone)]
struct Base {
    bytes: std::sync::Arc<Vec<u8>>,
    n: usize,
}

impl Base {
    const HEADER: usize = 4;

    fn offset(&self, i: usize) -> usize {
        let at = Self::HEADER + 4 * i;
        u32::from_le_bytes(self.bytes[at..at + 4].try_into().expect("4 bytes")) as usize
    }

    fn records_start(&self) -> usize {
        Self::HEADER + 4 * self.n
    }

    /// Record `i`'s bytes to the end of the records.
    fn record(&self, i: usize) -> &[u8] {
        &self.bytes[self.records_start() + self.offset(i)..]
    }

    fn get(&self, tenant: u32, id: &str) -> Option<IdUse> {
        let (mut lo, mut hi) = (0, self.n);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let mut r = Reader(self.record(mid));
            match r.key()?.cmp(&(tenant, id)) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return r.rest(),
            }
        }
        None
    }

    fn records(&self) -> impl Iterator<Item = ((u32, CompactString), IdUse)> + '_ {
        (0..self.n).filter_map(|i| {
            let mut r = Reader(self.record(i));
            let (tenant, id) = r.key()?;
            Some(((tenant, CompactString::from(id)), r.rest()?))
        })
    }

    fn from_bytes(bytes: Vec<u8>) -> Option<Self> {
        let n = u32::from_le_bytes(bytes.get(..Self::HEADER)?.try_into().ok()?) as usize;
        let start = Self::HEADER.checked_add(n.checked_mul(4)?)?;
        let records = bytes.len().checked_sub(start)?;
        let base = Self { n, bytes: std::sync::Arc::new(bytes) };
        let mut previous = None;
        for i in 0..n {
            let at = base.offset(i);
            if at >= records || previous.is_some_and(|p| at <= p) {
                return None;
            }
            previous = Some(at);
        }
        // The last record decodes and ends where the bytes do (none cut short, none trailing).
        if n == 0 {
            return (records == 0).then_some(base);
        }
        let mut last = Reader(base.record(n - 1));
        (last.key().is_some() && last.rest().is_some() && last.0.is_empty()).then_some(base)
    }
}

const STATUSES: [JobStatus; 5] =
    [JobStatus::Queued, JobStatus::Running, JobStatus::Succeeded, JobStatus::Failed, JobStatus::Cancelled];

fn put_varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_varint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

/// Reads what [`JobIds`]' bytes hold; `None` on anything malformed.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn varint(&mut self) -> Option<u64> {
        let mut n = 0u64;
        for shift in (0..64).step_by(7) {
            let (&byte, rest) = self.0.split_first()?;
            self.0 = rest;
            n |= u64::from(byte & 0x7f) << shift;
            if byte < 0x80 {
                return Some(n);
            }
        }
        None
    }

    fn str(&mut self) -> Option<&'a str> {
        let len = usize::try_from(self.varint()?).ok()?;
        let (bytes, rest) = self.0.split_at_checked(len)?;
        self.0 = rest;
        std::str::from_utf8(bytes).ok()
    }

    /// A record's tenant and id.
    fn key(&mut self) -> Option<(u32, &'a str)> {
        Some((u32::try_from(self.varint()?).ok()?, self.str()?))
    }

    /// A record's request, job and final state (after its tenant and id).
    fn rest(&mut self) -> Option<IdUse> {
        let request = CompactString::from(self.str()?);
        let job = match self.varint()? {
            0 => None,
            j => Some(Job::try_from(j - 1).ok()?),
        };
        let (&status, rest) = self.0.split_first()?;
        self.0 = rest;
        let retired = match status {
            0 => None,
            s => Some(*STATUSES.get(usize::from(s) - 1)?),
        };
        Some(IdUse { request, job, retired })
    }
}

impl JobIds {
    /// The [`Base`] layout of every id.
    fn to_bytes(&self) -> Vec<u8> {
        let mut records = Vec::with_capacity((self.base.n + self.changed.len()) * 32);
        let mut offsets: Vec<u32> = Vec::with_capacity(self.base.n + self.changed.len());
        self.each_sorted(|tenant, id, used| {
            offsets.push(records.len() as u32);
            put_varint(&mut records, u64::from(tenant));
            put_str(&mut records, id);
            put_str(&mut records, &used.request);
            put_varint(&mut records, used.job.map_or(0, |j| u64::from(j) + 1));
            let status = used.retired.and_then(|st| STATUSES.iter().position(|s| *s == st));
            records.push(status.map_or(0, |i| i as u8 + 1));
        });
        let mut out = Vec::with_capacity(Base::HEADER + 4 * offsets.len() + records.len());
        out.extend_from_slice(&(offsets.len() as u32).to_le_bytes());
        for o in offsets {
            out.extend_from_slice(&o.to_le_bytes());
        }
        out.extend_from_slice(&records);
        out
    }

    fn from_bytes(bytes: Vec<u8>) -> Option<Self> {
        Some(Self { base: Base::from_bytes(bytes)?, changed: HashMap::default() })
    }
}

impl serde::Serialize for JobIds {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(&self.to_bytes())
    }
}

impl<'de> serde::Deserialize<'de> for JobIds {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Bytes;
        impl serde::de::Visitor<'_> for Bytes {
            type Value = JobIds;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("the job ids' bytes")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<JobIds, E> {
                self.visit_byte_buf(v.to_vec())
            }
            fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<JobIds, E> {
                JobIds::from_bytes(v).ok_or_else(|| E::custom("malformed job ids"))
            }
        }
        // Owned: ciborium hands a byte string longer than its scratch buffer only that way.
        deserializer.deserialize_byte_buf(Bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_its_bytes_and_refuses_damaged_ones() {
        let mut ids = JobIds::default();
        ids.take(0, "a", "req-1");
        ids.admitted(0, "a", 7);
        ids.retired(0, "a", JobStatus::Succeeded);
        ids.take(3, "rejected-one", "req-2");
        ids.take(1, &"long-".repeat(40), "req-3");
        ids.admitted(1, &"long-".repeat(40), 300_000);
        for i in 0..1_000 {
            ids.take(2, &format!("many-{i}"), &format!("req-m{i}"));
        }
        let bytes = ids.to_bytes();
        assert_eq!(JobIds::from_bytes(bytes.clone()), Some(ids.clone()));
        let mut cbor = Vec::new();
        ciborium::into_writer(&ids, &mut cbor).unwrap();
        assert!(cbor.len() > 4_096, "longer than ciborium's scratch buffer");
        assert_eq!(ciborium::from_reader::<JobIds, _>(cbor.as_slice()).unwrap(), ids);
        assert_eq!(JobIds::from_bytes(bytes[..bytes.len() - 1].to_vec()), None, "cut short");
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(JobIds::from_bytes(longer), None, "trailing bytes");
        let mut disordered = bytes.clone();
        disordered[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(JobIds::from_bytes(disordered), None, "an offset out of bounds");
        assert_eq!(ids.get(0, "a").and_then(|u| u.retired), Some(JobStatus::Succeeded));
        assert_eq!(ids.get(3, "rejected-one").map(|u| u.job), Some(None));
    }

    /// A restored index answers from its bytes, and changes since (a new id, an admission and a
    /// retirement of ids the bytes hold) win over them, in lookups and in the next snapshot.
    #[test]
    fn a_restored_index_searches_its_bytes_and_keeps_changes_on_top() {
        let mut ids = JobIds::default();
        for i in 0..500 {
            ids.take(i % 3, &format!("job-{i}"), &format!("req-{i}"));
            if i % 2 == 0 {
                ids.admitted(i % 3, &format!("job-{i}"), i);
            }
        }
        ids.retired(1, "job-4", JobStatus::Failed);
        let mut restored = JobIds::from_bytes(ids.to_bytes()).unwrap();
        assert!(restored.changed.is_empty(), "nothing decoded at restore");
        assert_eq!(restored, ids);
        for i in 0..500 {
            assert_eq!(restored.get(i % 3, &format!("job-{i}")), ids.get(i % 3, &format!("job-{i}")), "{i}");
        }
        assert_eq!(restored.get(0, "job-1"), None, "job-1 is tenant 1's");
        assert_eq!(restored.get(9, "job-0"), None);
        for copy in [&mut ids, &mut restored] {
            copy.admitted(0, "job-3", 900);
            copy.retired(0, "job-0", JobStatus::Succeeded);
            copy.take(2, "new", "req-new");
        }
        assert_eq!(restored.get(0, "job-3").and_then(|u| u.job), Some(900));
        assert_eq!(restored.get(0, "job-0").and_then(|u| u.retired), Some(JobStatus::Succeeded));
        assert_eq!(restored.get(0, "job-0").map(|u| u.request), Some("req-0".into()), "the rest kept");
        assert_eq!(restored, ids);
        assert_eq!(JobIds::from_bytes(restored.to_bytes()), Some(ids));
    }
}
