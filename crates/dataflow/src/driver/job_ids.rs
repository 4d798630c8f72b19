//! Every job id each tenant has used: the request that took it, the job it became (if admitted)
//! and, once that job retired, its final state. A job id is used once, forever, so this is the
//! one part of the scheduler's state that grows with history; it is kept small — tenants
//! interned, short ids inline — and written as sorted byte strings with an offset per id (a few
//! dozen bytes per id) that a restored scheduler keeps as they are and searches.
//!
//! A snapshot writes it in two parts: the ids of jobs not retired (few: the jobs in flight) in
//! its body, and every id in an object of its own, which a restored scheduler reads in the
//! background. So a start reads what the jobs in flight need, not every id ever used, and runs
//! them at once; only a question about an id neither part answers — a new job id, a record about
//! a retired job — waits for every id to be read (issue 21: a start flat in history).

use std::sync::mpsc::{Receiver, TryRecvError};
use std::sync::{Arc, Mutex, OnceLock};

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

/// Why every id could not be read back.
#[derive(Debug, Clone, thiserror::Error)]
pub enum IdsError {
    #[error("the snapshot's job-id index is not readable: {0}")]
    Unreadable(String),
    #[error("the snapshot's job-id index is malformed")]
    Malformed,
    #[error("the job-id index's reader stopped before it answered")]
    ReaderGone,
}

/// Every id as the restored snapshot had them: here, or still being read.
#[derive(Debug, Clone)]
enum All {
    Here(Base),
    Coming(Arc<Coming>),
}

/// Every id, as its bytes arrive from a reader in the background.
pub enum AllIds {
    Here(Vec<u8>),
    Coming(Receiver<Result<Vec<u8>, String>>),
}

struct Coming {
    from: Mutex<Option<Receiver<Result<Vec<u8>, String>>>>,
    got: OnceLock<Result<Base, IdsError>>,
}

impl std::fmt::Debug for Coming {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Coming").field("got", &self.got.get().map(|r| r.as_ref().map(|b| b.n))).finish()
    }
}

impl Coming {
    fn decode(read: Result<Vec<u8>, String>) -> Result<Base, IdsError> {
        Base::from_bytes(read.map_err(IdsError::Unreadable)?).ok_or(IdsError::Malformed)
    }

    /// Every id, waiting for the reader if it has not answered.
    fn wait(&self) -> &Result<Base, IdsError> {
        self.got.get_or_init(|| {
            let from = self.from.lock().expect("job-id reader lock").take();
            match from.map(|rx| rx.recv()) {
                Some(Ok(read)) => Self::decode(read),
                _ => Err(IdsError::ReaderGone),
            }
        })
    }

    /// Every id if the reader has answered (never waits).
    fn poll(&self) -> Option<&Result<Base, IdsError>> {
        if let Some(got) = self.got.get() {
            return Some(got);
        }
        let mut from = self.from.lock().expect("job-id reader lock");
        let answer = match from.as_ref().map(Receiver::try_recv) {
            Some(Err(TryRecvError::Empty)) => return None,
            Some(Ok(read)) => Self::decode(read),
            Some(Err(TryRecvError::Disconnected)) | None => Err(IdsError::ReaderGone),
        };
        *from = None;
        Some(self.got.get_or_init(|| answer))
    }
}

impl Default for All {
    fn default() -> Self {
        Self::Here(Base::default())
    }
}

impl All {
    fn base(&self) -> &Base {
        match self {
            Self::Here(base) => base,
            Self::Coming(coming) => match coming.wait() {
                Ok(base) => base,
                // The runner stops the scheduler as soon as it sees this (`JobIds::ready`); a
                // question only every id answers cannot be answered without them.
                Err(error) => panic!("{error}: the scheduler cannot tell whether a job id was used"),
            },
        }
    }
}

/// The ids as a restored snapshot had them, kept as its bytes (sorted, with an offset per id:
/// looked up by binary search, never decoded as a whole), and what changed since in a map. A
/// start from a snapshot then costs a copy of the bytes of the ids in flight, not a map entry
/// per id ever used.
#[derive(Debug, Default, Clone)]
pub struct JobIds {
    /// The ids whose job had not retired when the snapshot was taken (a subset of `all`).
    live: Base,
    /// Every id when the snapshot was taken.
    all: All,
    changed: HashMap<(u32, CompactString), IdUse>,
}

impl PartialEq for JobIds {
    fn eq(&self, other: &Self) -> bool {
        self.sorted() == other.sorted()
    }
}

impl Eq for JobIds {}

impl JobIds {
    /// What became of `tenant`'s `id`, if a request took it. Waits for every id to be read
    /// when only they can tell (an id not taken since the snapshot, of no job in flight then).
    pub fn get(&self, tenant: u32, id: &str) -> Option<IdUse> {
        self.get_unretired(tenant, id).or_else(|| self.all.base().get(tenant, id))
    }

    /// What became of `tenant`'s `id` if its job has not retired (or it was taken since the
    /// snapshot); never waits. A job in flight is always found here.
    pub fn get_unretired(&self, tenant: u32, id: &str) -> Option<IdUse> {
        match self.changed.get(&(tenant, CompactString::from(id))) {
            Some(used) => Some(used.clone()),
            None => self.live.get(tenant, id),
        }
    }

    /// Whether every id is here: `None` while they are still being read, then whether they
    /// could be (never waits).
    pub fn ready(&self) -> Option<Result<(), IdsError>> {
        match &self.all {
            All::Here(_) => Some(Ok(())),
            All::Coming(coming) => coming.poll().map(|got| got.as_ref().map(|_| ()).map_err(Clone::clone)),
        }
    }

    /// Wait until every id is here; whether they could be read.
    pub fn wait(&self) -> Result<(), IdsError> {
        match &self.all {
            All::Here(_) => Ok(()),
            All::Coming(coming) => coming.wait().as_ref().map(|_| ()).map_err(Clone::clone),
        }
    }

    /// The entry of `tenant`'s `id` to change, copied from the snapshot's when only it has one.
    fn entry(&mut self, tenant: u32, id: &str) -> Option<&mut IdUse> {
        let key = (tenant, CompactString::from(id));
        if !self.changed.contains_key(&key) {
            let used = self.get(tenant, id)?;
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

    /// `f` on every id and its use, in (tenant, id) order (waits for every id to be read).
    fn each_sorted(&self, mut f: impl FnMut(u32, &str, &IdUse)) {
        self.merged(self.all.base(), Keep::All, |item| match item {
            Merged::Changed(tenant, id, used) => f(tenant, id, used),
            Merged::Base(raw) => {
                let mut r = Reader(raw);
                if let (Some((tenant, id)), Some(used)) = (r.key(), r.rest()) {
                    f(tenant, id, &used);
                }
            }
        });
    }

    /// `f` on `base`'s records (already in order, handed out as they are, not decoded) merged
    /// with the changed entries (sorted by reference), a changed one in place of its base
    /// record; only the ids `keep` keeps.
    fn merged(&self, base: &Base, keep: Keep, mut f: impl FnMut(Merged<'_>)) {
        // Filtered before sorting: a snapshot's unretired ids are few among many changed.
        let mut changed: Vec<_> = self.changed.iter().filter(|(_, used)| keep.keeps(used)).collect();
        changed.sort_unstable_by(|a, b| a.0.cmp(b.0));
        let mut changed = changed.into_iter().peekable();
        for i in 0..base.n {
            let raw = base.raw(i);
            let Some(key) = Reader(raw).key() else { continue };
            while let Some(((t, id), used)) = changed.next_if(|((t, id), _)| (*t, id.as_str()) < key) {
                f(Merged::Changed(*t, id, used));
            }
            let replaced = self.changed.contains_key(&(key.0, CompactString::from(key.1)));
            if !replaced && keep.keeps_record(raw) {
                f(Merged::Base(raw));
            }
        }
        for ((t, id), used) in changed {
            f(Merged::Changed(*t, id, used));
        }
    }
}

/// Which ids [`JobIds::merged`] hands out.
#[derive(Clone, Copy)]
enum Keep {
    All,
    /// Those whose job has not retired.
    Unretired,
}

impl Keep {
    fn keeps(self, used: &IdUse) -> bool {
        matches!(self, Keep::All) || used.retired.is_none()
    }

    /// A base record's verdict, read off its last byte (its final state + 1, 0 when not retired).
    fn keeps_record(self, record: &[u8]) -> bool {
        matches!(self, Keep::All) || record.last() == Some(&0)
    }
}

/// An id handed out by [`JobIds::merged`]: changed since the base, or the base's record.
enum Merged<'a> {
    Changed(u32, &'a str, &'a IdUse),
    Base(&'a [u8]),
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

    /// Record `i`'s bytes alone.
    fn raw(&self, i: usize) -> &[u8] {
        let end = if i + 1 < self.n { self.records_start() + self.offset(i + 1) } else { self.bytes.len() };
        &self.bytes[self.records_start() + self.offset(i)..end]
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
    /// Every id, in the [`Base`] layout (waits for every id to be read). The snapshot's records
    /// that did not change are copied as they are, not decoded and written again: after a
    /// million jobs, nearly all of them.
    pub fn all_bytes(&self) -> Vec<u8> {
        let mut out = Layout::default();
        self.merged(self.all.base(), Keep::All, |item| out.push_merged(item));
        out.finish()
    }

    /// The ids whose job has not retired (in flight, or rejected), in the [`Base`] layout: they
    /// are in `live` or changed since, so this never waits.
    pub fn unretired_bytes(&self) -> Vec<u8> {
        let mut out = Layout::default();
        self.merged(&self.live, Keep::Unretired, |item| out.push_merged(item));
        out.finish()
    }

    /// Start over from what a snapshot of `then` (an earlier copy of these ids) wrote, as
    /// [`Self::unretired_bytes`] and [`Self::all_bytes`] gave them: the changes until `then`
    /// fold into the bytes (the next snapshot merges only what changes after), and a change made
    /// since stays on top of them.
    pub fn rebase_since(&mut self, then: &JobIds, unretired: Vec<u8>, all: Vec<u8>) {
        let Some(mut rebased) = Self::restored(unretired, AllIds::Here(all)) else { return };
        rebased.changed = std::mem::take(&mut self.changed)
            .into_iter()
            .filter(|(key, used)| then.changed.get(key) != Some(used))
            .collect();
        *self = rebased;
    }

    /// The ids a snapshot wrote: those not retired (`unretired`), and every id, here or coming.
    /// `None` when bytes here are malformed.
    pub fn restored(unretired: Vec<u8>, all: AllIds) -> Option<Self> {
        let all = match all {
            AllIds::Here(bytes) => All::Here(Base::from_bytes(bytes)?),
            AllIds::Coming(from) => {
                All::Coming(Arc::new(Coming { from: Mutex::new(Some(from)), got: OnceLock::new() }))
            }
        };
        Some(Self { live: Base::from_bytes(unretired)?, all, changed: HashMap::default() })
    }
}

/// Writes ids, given in (tenant, id) order, in the [`Base`] layout.
#[derive(Default)]
struct Layout {
    records: Vec<u8>,
    offsets: Vec<u32>,
}

impl Layout {
    fn push(&mut self, tenant: u32, id: &str, used: &IdUse) {
        self.offsets.push(self.records.len() as u32);
        put_varint(&mut self.records, u64::from(tenant));
        put_str(&mut self.records, id);
        put_str(&mut self.records, &used.request);
        put_varint(&mut self.records, used.job.map_or(0, |j| u64::from(j) + 1));
        let status = used.retired.and_then(|st| STATUSES.iter().position(|s| *s == st));
        self.records.push(status.map_or(0, |i| i as u8 + 1));
    }

    /// An id [`JobIds::merged`] handed out (ids still given in order): a base record as it is.
    fn push_merged(&mut self, item: Merged<'_>) {
        match item {
            Merged::Changed(tenant, id, used) => self.push(tenant, id, used),
            Merged::Base(record) => {
                self.offsets.push(self.records.len() as u32);
                self.records.extend_from_slice(record);
            }
        }
    }

    fn finish(self) -> Vec<u8> {
        let mut out = Vec::with_capacity(Base::HEADER + 4 * self.offsets.len() + self.records.len());
        out.extend_from_slice(&(self.offsets.len() as u32).to_le_bytes());
        for o in self.offsets {
            out.extend_from_slice(&o.to_le_bytes());
        }
        out.extend_from_slice(&self.records);
        out
    }
}

/// A byte string in a snapshot's CBOR (not an array of numbers).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Bytes(pub Vec<u8>);

impl serde::Serialize for Bytes {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for Bytes {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visit;
        impl serde::de::Visitor<'_> for Visit {
            type Value = Bytes;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a byte string")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Bytes, E> {
                Ok(Bytes(v.to_vec()))
            }
            fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<Bytes, E> {
                Ok(Bytes(v))
            }
        }
        // Owned: ciborium hands a byte string longer than its scratch buffer only that way.
        deserializer.deserialize_byte_buf(Visit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn restored_here(ids: &JobIds) -> Option<JobIds> {
        JobIds::restored(ids.unretired_bytes(), AllIds::Here(ids.all_bytes()))
    }

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
        assert_eq!(restored_here(&ids), Some(ids.clone()));
        let bytes = ids.all_bytes();
        let mut cbor = Vec::new();
        ciborium::into_writer(&Bytes(bytes.clone()), &mut cbor).unwrap();
        assert!(cbor.len() > 4_096, "longer than ciborium's scratch buffer");
        assert_eq!(ciborium::from_reader::<Bytes, _>(cbor.as_slice()).unwrap().0, bytes);
        let empty = JobIds::default().all_bytes();
        let restored = |all: Vec<u8>| JobIds::restored(empty.clone(), AllIds::Here(all));
        assert_eq!(restored(bytes[..bytes.len() - 1].to_vec()), None, "cut short");
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(restored(longer), None, "trailing bytes");
        let mut disordered = bytes.clone();
        disordered[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(restored(disordered), None, "an offset out of bounds");
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
        let mut restored = restored_here(&ids).unwrap();
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
        assert_eq!(restored_here(&restored), Some(ids.clone()));
        let then = restored.clone();
        restored.rebase_since(&then, then.unretired_bytes(), then.all_bytes());
        assert!(restored.changed.is_empty(), "the changes folded into the bytes");
        assert_eq!(restored, ids);
        assert_eq!(restored.get_unretired(2, "new").map(|u| u.request), Some("req-new".into()));
    }

    /// Tenant 0's jobs `job-0` … as job numbers 0 …, admitted from requests `req-0` ….
    fn admitted(n: u32) -> JobIds {
        let mut ids = JobIds::default();
        for i in 0..n {
            ids.take(0, &format!("job-{i}"), &format!("req-{i}"));
            ids.admitted(0, &format!("job-{i}"), i);
        }
        ids
    }

    /// Rebased onto a snapshot of an earlier copy, the changes made since that copy stay.
    #[test]
    fn a_rebase_onto_an_earlier_copy_keeps_the_changes_since() {
        let mut ids = admitted(50);
        let then = ids.clone();
        let (unretired, all) = (then.unretired_bytes(), then.all_bytes());
        ids.retired(0, "job-3", JobStatus::Succeeded);
        ids.take(1, "later", "req-later");
        let expected = ids.clone();
        ids.rebase_since(&then, unretired, all);
        assert_eq!(ids.changed.len(), 2, "only the changes since the copy: {:?}", ids.changed.keys());
        assert_eq!(ids, expected);
        assert_eq!(ids.get_unretired(0, "job-3").and_then(|u| u.retired), Some(JobStatus::Succeeded));
        assert_eq!(ids.get_unretired(0, "job-7").and_then(|u| u.job), Some(7), "unretired from the bytes");
    }

    /// Restored with every id still coming, the index answers for ids not retired at once, and
    /// for the others once the bytes arrive; the snapshot's body holds only the unretired.
    #[test]
    fn ids_in_flight_answer_before_every_id_is_read() {
        let mut ids = admitted(100);
        for i in 0..90 {
            ids.retired(0, &format!("job-{i}"), JobStatus::Succeeded);
        }
        let unretired = ids.unretired_bytes();
        assert!(unretired.len() * 5 < ids.all_bytes().len(), "only the 10 in flight");
        let (tx, rx) = std::sync::mpsc::channel();
        let mut restored = JobIds::restored(unretired, AllIds::Coming(rx)).unwrap();
        assert!(restored.ready().is_none(), "still coming");
        assert_eq!(restored.get_unretired(0, "job-95").and_then(|u| u.job), Some(95));
        restored.retired(0, "job-95", JobStatus::Cancelled);
        restored.take(0, "fresh", "req-fresh");
        assert_eq!(restored.get_unretired(0, "job-3"), None, "retired: not among the unretired");
        assert!(restored.ready().is_none(), "nothing above waited");
        tx.send(Ok(ids.all_bytes())).unwrap();
        assert_eq!(restored.get(0, "job-3").and_then(|u| u.retired), Some(JobStatus::Succeeded));
        assert!(matches!(restored.ready(), Some(Ok(()))));
        ids.retired(0, "job-95", JobStatus::Cancelled);
        ids.take(0, "fresh", "req-fresh");
        assert_eq!(restored, ids);
    }

    #[test]
    fn a_reader_that_fails_is_told_and_not_waited_for() {
        let (tx, rx) = std::sync::mpsc::channel();
        let restored = JobIds::restored(JobIds::default().all_bytes(), AllIds::Coming(rx)).unwrap();
        tx.send(Err("checksum mismatch".to_string())).unwrap();
        assert!(matches!(restored.ready(), Some(Err(IdsError::Unreadable(m))) if m == "checksum mismatch"));
        let (tx, rx) = std::sync::mpsc::channel::<Result<Vec<u8>, String>>();
        let restored = JobIds::restored(JobIds::default().all_bytes(), AllIds::Coming(rx)).unwrap();
        drop(tx);
        assert!(matches!(restored.ready(), Some(Err(IdsError::ReaderGone))));
        let (tx, rx) = std::sync::mpsc::channel();
        let restored = JobIds::restored(JobIds::default().all_bytes(), AllIds::Coming(rx)).unwrap();
        tx.send(Ok(vec![9, 9])).unwrap();
        assert!(matches!(restored.ready(), Some(Err(IdsError::Malformed))));
    }
}
