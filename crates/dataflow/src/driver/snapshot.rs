//! The scheduler's state as bytes, and back (issue 21's snapshots; see `docs/design/recovery.md`).
//! What is kept: the parts the driver owns and the dataflow's input facts with their times —
//! outputs are rebuilt by feeding those into a fresh engine. The view of the outputs is kept too,
//! so what the restored scheduler tells (runnable since when, states already reported) is what
//! the original would. Not kept: the placement queue (rebuilt from the view), replay-only
//! latency bookkeeping and counters.
//!
//! Format: `SPLAI-SNAPSHOT` magic, a format version (u32, big-endian), the SHA-256 of the rest,
//! then the rest: the length (u32, big-endian) of a head saying where every job id is (inline,
//! or an object of its own beside the snapshot: `driver/job_ids.rs`), the head, then the body
//! (CBOR: self-describing, since events hold JSON values, and maps keyed by tuples).

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use splai_events::ArtifactRef;

use super::job_ids::{AllIds, Bytes, JobIds};

use super::{
    Attempts, JobControls, Mode, Parking, Pending, Registry, Scheduler, SchedulerOptions, View, admission,
    metrics, waiting,
};
use crate::assign::Assigner;
use crate::engine::Engine;
use crate::model::{Fact, Time};

const MAGIC: &[u8] = b"SPLAI-SNAPSHOT";
/// Bumped whenever what a snapshot holds changes shape: an older one is refused, not misread.
pub const VERSION: u32 = 7;

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("not a scheduler snapshot (no `SPLAI-SNAPSHOT` header)")]
    NotASnapshot,
    #[error("snapshot format version {found}; this scheduler reads version {VERSION}")]
    Version { found: u32 },
    #[error("snapshot damaged: its body does not match its checksum")]
    Checksum,
    #[error("snapshot body unreadable")]
    Decode(#[source] ciborium::de::Error<std::io::Error>),
    #[error("snapshot body not writable")]
    Encode(#[source] ciborium::ser::Error<std::io::Error>),
    #[error("this scheduler replays in windows (`splai replay`) and keeps no inputs to snapshot")]
    NoInputs,
    #[error("the snapshot keeps its job ids in {} and no reader of it was given", .0.path)]
    IdsElsewhere(ArtifactRef),
    #[error("the snapshot's job ids are malformed")]
    Ids,
}

/// Where a snapshot's every job id is.
#[derive(Debug, Serialize, Deserialize)]
enum IdsAt {
    Inline(Bytes),
    Stored(ArtifactRef),
}

/// A snapshot taken, before it is written: the body, and every job id apart (most of a
/// snapshot's bytes after much history, which a start need not wait for).
#[derive(Debug)]
pub struct SnapshotParts {
    body: Vec<u8>,
    /// Every job id (`driver/job_ids.rs`'s layout).
    pub ids: Vec<u8>,
    /// The job ids not retired (also in the body).
    unretired: Vec<u8>,
}

impl SnapshotParts {
    /// One snapshot holding every id too (tests, tools).
    pub fn whole(self) -> Vec<u8> {
        file(&IdsAt::Inline(Bytes(self.ids)), &self.body)
    }

    /// The snapshot to write once every id is stored at `ids`.
    pub fn referring_to(&self, ids: ArtifactRef) -> Vec<u8> {
        file(&IdsAt::Stored(ids), &self.body)
    }
}

/// A snapshot taken whose every job id is still to gather ([`Scheduler::snapshot_deferred`]).
#[derive(Debug)]
pub struct DeferredParts {
    body: Vec<u8>,
    unretired: Vec<u8>,
    /// A copy of the ids as the snapshot was taken (cheap: their bytes are shared).
    ids: JobIds,
}

/// What gathering a snapshot's job ids leaves for the scheduler to start its ids over from.
#[derive(Debug)]
pub struct Gathered {
    then: JobIds,
    unretired: Vec<u8>,
    all: Vec<u8>,
}

impl DeferredParts {
    /// Every job id gathered (any thread): the snapshot, and what the scheduler rebases on.
    pub fn gather(self) -> (SnapshotParts, Gathered) {
        let all = self.ids.all_bytes();
        let gathered = Gathered { then: self.ids, unretired: self.unretired.clone(), all: all.clone() };
        (SnapshotParts { body: self.body, ids: all, unretired: self.unretired }, gathered)
    }
}

fn file(ids: &IdsAt, body: &[u8]) -> Vec<u8> {
    let mut head = Vec::new();
    ciborium::into_writer(ids, &mut head).expect("a head of a byte string or a reference encodes");
    let mut rest = Vec::with_capacity(4 + head.len() + body.len());
    rest.extend_from_slice(&(head.len() as u32).to_be_bytes());
    rest.extend_from_slice(&head);
    rest.extend_from_slice(body);
    let mut bytes = Vec::with_capacity(MAGIC.len() + 4 + 32 + rest.len());
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(&VERSION.to_be_bytes());
    bytes.extend_from_slice(&Sha256::digest(&rest));
    bytes.extend_from_slice(&rest);
    bytes
}

/// Reads the object where a snapshot keeps every job id, in the background: its bytes (checked)
/// or why not arrive on the receiver.
pub type IdsReader<'a> = &'a dyn Fn(&ArtifactRef) -> std::sync::mpsc::Receiver<Result<Vec<u8>, String>>;

#[derive(Serialize)]
struct Out<'a> {
    now: Time,
    engine_now: Time,
    facts: Vec<(Fact, Time, isize)>,
    reg: &'a Registry,
    /// The job ids not retired (every one is in the head's place).
    unretired_ids: Bytes,
    attempts: &'a Attempts,
    assigner: &'a Assigner,
    view: &'a View,
    pending: &'a Pending,
    waiting: &'a waiting::Waiting,
    admission: &'a admission::Admission,
    metrics: &'a metrics::Metrics,
    controls: &'a JobControls,
    parking: &'a Parking,
    retiring: &'a super::retire::Retiring,
    mode: Mode,
    has_news: bool,
}

#[derive(Deserialize)]
struct In {
    now: Time,
    engine_now: Time,
    facts: Vec<(Fact, Time, isize)>,
    reg: Registry,
    unretired_ids: Bytes,
    attempts: Attempts,
    assigner: Assigner,
    view: View,
    pending: Pending,
    waiting: waiting::Waiting,
    admission: admission::Admission,
    #[serde(default)]
    metrics: metrics::Metrics,
    controls: JobControls,
    parking: Parking,
    retiring: super::retire::Retiring,
    mode: Mode,
    has_news: bool,
}

impl Scheduler {
    /// The state now, as bytes [`Scheduler::restore`] reads (every job id inline). Taken
    /// between ticks.
    pub fn snapshot(&self) -> Result<Vec<u8>, SnapshotError> {
        Ok(self.snapshot_parts()?.whole())
    }

    /// The state now, with every job id apart. Taken between ticks; waits for every id of a
    /// restored snapshot to be read (see [`Scheduler::job_ids_ready`]).
    pub fn snapshot_parts(&self) -> Result<SnapshotParts, SnapshotError> {
        let mut parts = self.snapshot_body(self.reg.ids.unretired_bytes())?;
        parts.ids = self.reg.ids.all_bytes();
        Ok(parts)
    }

    /// The body, with `unretired` (the job ids not retired) in it; every id not gathered yet.
    fn snapshot_body(&self, unretired: Vec<u8>) -> Result<SnapshotParts, SnapshotError> {
        let out = Out {
            now: self.now,
            engine_now: self.engine.now(),
            facts: self.engine.inputs().ok_or(SnapshotError::NoInputs)?,
            reg: &self.reg,
            unretired_ids: Bytes(unretired.clone()),
            attempts: &self.attempts,
            assigner: &self.assigner,
            view: &self.view,
            pending: &self.pending,
            waiting: &self.waiting,
            admission: &self.admission,
            metrics: &self.metrics,
            controls: &self.controls,
            parking: &self.parking,
            retiring: &self.retiring,
            mode: self.mode,
            has_news: self.has_news(),
        };
        let mut body = Vec::new();
        ciborium::into_writer(&out, &mut body).map_err(SnapshotError::Encode)?;
        Ok(SnapshotParts { body, ids: Vec::new(), unretired })
    }

    /// The state now with every job id still to gather ([`DeferredParts::gather`], off the
    /// scheduler thread: after a million jobs, copying every id is tens of milliseconds).
    pub fn snapshot_deferred(&self) -> Result<DeferredParts, SnapshotError> {
        let unretired = self.reg.ids.unretired_bytes();
        let parts = self.snapshot_body(unretired)?;
        Ok(DeferredParts { body: parts.body, unretired: parts.unretired, ids: self.reg.ids.clone() })
    }

    /// Once a snapshot's every job id was gathered: the ids start over from what it wrote, so
    /// the next snapshot copies them and merges only the changes until then.
    pub fn rebase_job_ids(&mut self, gathered: Gathered) {
        self.reg.ids.rebase_since(&gathered.then, gathered.unretired, gathered.all);
    }

    /// A scheduler in the state `bytes` ([`Scheduler::snapshot`]) hold, with `opts`; its dataflow
    /// on one timely worker in this thread. A damaged snapshot or one of another format version
    /// is refused.
    pub fn restore(opts: SchedulerOptions, bytes: &[u8]) -> Result<Self, SnapshotError> {
        Self::restore_on(opts, bytes, 1)
    }

    /// [`Scheduler::restore`] with the dataflow on `workers` timely workers.
    pub fn restore_on(opts: SchedulerOptions, bytes: &[u8], workers: usize) -> Result<Self, SnapshotError> {
        Self::restore_rest(opts, verified_body(bytes)?, workers, None)
    }

    /// [`Scheduler::restore_on`] for bytes the artifact store has just checked against the
    /// sha256 its reference on the log records (the snapshot's own checksum would hash the same
    /// bytes again); job ids kept apart are read by `ids`, in the background.
    pub fn restore_stored(
        opts: SchedulerOptions,
        bytes: &[u8],
        workers: usize,
        ids: IdsReader<'_>,
    ) -> Result<Self, SnapshotError> {
        Self::restore_rest(opts, header_and_body(bytes)?.1, workers, Some(ids))
    }

    fn restore_rest(
        opts: SchedulerOptions,
        rest: &[u8],
        workers: usize,
        reader: Option<IdsReader<'_>>,
    ) -> Result<Self, SnapshotError> {
        let (at, body) = head_and_body(rest)?;
        let all = match (at, reader) {
            (IdsAt::Inline(bytes), _) => AllIds::Here(bytes.0),
            (IdsAt::Stored(at), Some(read)) => AllIds::Coming(read(&at)),
            (IdsAt::Stored(at), None) => return Err(SnapshotError::IdsElsewhere(at)),
        };
        Self::restore_body(opts, body, workers, all)
    }

    fn restore_body(
        opts: SchedulerOptions,
        body: &[u8],
        workers: usize,
        all: AllIds,
    ) -> Result<Self, SnapshotError> {
        let began = std::time::Instant::now();
        let state: In = ciborium::from_reader(body).map_err(SnapshotError::Decode)?;
        let ids = JobIds::restored(state.unretired_ids.0, all).ok_or(SnapshotError::Ids)?;
        let decoded = began.elapsed();
        // The view is restored as it was: the outputs of the rebuilding step restate it.
        let engine = Engine::restored(state.facts, state.engine_now, workers);
        let rebuilt = began.elapsed();
        let mut s = Self::with_engine(opts, engine);
        s.now = state.now;
        s.reg = state.reg;
        s.reg.ids = ids;
        s.attempts = state.attempts;
        s.assigner = state.assigner;
        s.view = state.view;
        s.pending = state.pending;
        s.waiting = state.waiting;
        s.admission = state.admission;
        s.metrics = state.metrics;
        s.controls = state.controls;
        s.parking = state.parking;
        s.retiring = state.retiring;
        // Facts at or after the engine's first open time were not stepped yet, and still are
        // not: the rebuilt engine holds them for its next step, as the original did.
        s.mode = Mode { pipelined: false, ..state.mode };
        // Facts applied since the last tick still ask for a step.
        s.fed_at_tick = if state.has_news { s.engine.fed().wrapping_sub(1) } else { s.engine.fed() };
        s.fed_at_step = s.fed_at_tick;
        s.requeue_runnable();
        tracing::debug!(?decoded, dataflow = ?(rebuilt - decoded), rest = ?(began.elapsed() - rebuilt), "snapshot body restored");
        Ok(s)
    }
}

/// The rest of snapshot `bytes` (where its job ids are, and its body) once its header and
/// checksum check out.
pub fn verified_body(bytes: &[u8]) -> Result<&[u8], SnapshotError> {
    let (sum, body) = header_and_body(bytes)?;
    if Sha256::digest(body)[..] != *sum {
        return Err(SnapshotError::Checksum);
    }
    Ok(body)
}

/// Where snapshot `bytes` keep every job id when in an object of their own (`None`: inline),
/// once its header and checksum check out.
pub fn stored_ids(bytes: &[u8]) -> Result<Option<ArtifactRef>, SnapshotError> {
    match head_and_body(verified_body(bytes)?)?.0 {
        IdsAt::Inline(_) => Ok(None),
        IdsAt::Stored(at) => Ok(Some(at)),
    }
}

/// Where a snapshot's rest says its job ids are, and its body.
fn head_and_body(rest: &[u8]) -> Result<(IdsAt, &[u8]), SnapshotError> {
    let (len, rest) = rest.split_at_checked(4).ok_or(SnapshotError::Ids)?;
    let len = u32::from_be_bytes(len.try_into().expect("4 bytes")) as usize;
    let (head, body) = rest.split_at_checked(len).ok_or(SnapshotError::Ids)?;
    Ok((ciborium::from_reader(head).map_err(SnapshotError::Decode)?, body))
}

/// The checksum and the rest of snapshot `bytes` once its header checks out.
fn header_and_body(bytes: &[u8]) -> Result<(&[u8], &[u8]), SnapshotError> {
    let rest = bytes.strip_prefix(MAGIC).ok_or(SnapshotError::NotASnapshot)?;
    let (version, rest) = rest.split_at_checked(4).ok_or(SnapshotError::NotASnapshot)?;
    let found = u32::from_be_bytes(version.try_into().expect("4 bytes"));
    if found != VERSION {
        return Err(SnapshotError::Version { found });
    }
    rest.split_at_checked(32).ok_or(SnapshotError::Checksum)
}
