//! The scheduler's state as bytes, and back (issue 21's snapshots; see `docs/design/recovery.md`).
//! What is kept: the parts the driver owns and the dataflow's input facts with their times —
//! outputs are rebuilt by feeding those into a fresh engine. The view of the outputs is kept too,
//! so what the restored scheduler tells (runnable since when, states already reported) is what
//! the original would. Not kept: the placement queue (rebuilt from the view), replay-only
//! latency bookkeeping and counters.
//!
//! Format: `SPLAI-SNAPSHOT` magic, a format version (u32, big-endian), the SHA-256 of the body,
//! then the body (CBOR: self-describing, since events hold JSON values, and maps keyed by tuples).

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{
    Attempts, JobControls, Mode, Parking, Pending, Registry, Scheduler, SchedulerOptions, View, admission,
    metrics, waiting,
};
use crate::assign::Assigner;
use crate::engine::Engine;
use crate::model::{Fact, Time};

const MAGIC: &[u8] = b"SPLAI-SNAPSHOT";
/// Bumped whenever what a snapshot holds changes shape: an older one is refused, not misread.
pub const VERSION: u32 = 6;

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
}

#[derive(Serialize)]
struct Out<'a> {
    now: Time,
    engine_now: Time,
    facts: Vec<(Fact, Time, isize)>,
    reg: &'a Registry,
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
    /// The state now, as bytes [`Scheduler::restore`] reads. Taken between ticks.
    pub fn snapshot(&self) -> Result<Vec<u8>, SnapshotError> {
        let out = Out {
            now: self.now,
            engine_now: self.engine.now(),
            facts: self.engine.inputs().ok_or(SnapshotError::NoInputs)?,
            reg: &self.reg,
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
        let mut bytes = Vec::with_capacity(MAGIC.len() + 4 + 32 + body.len());
        bytes.extend_from_slice(MAGIC);
        bytes.extend_from_slice(&VERSION.to_be_bytes());
        bytes.extend_from_slice(&Sha256::digest(&body));
        bytes.extend_from_slice(&body);
        Ok(bytes)
    }

    /// A scheduler in the state `bytes` ([`Scheduler::snapshot`]) hold, with `opts`; its dataflow
    /// on one timely worker in this thread. A damaged snapshot or one of another format version
    /// is refused.
    pub fn restore(opts: SchedulerOptions, bytes: &[u8]) -> Result<Self, SnapshotError> {
        Self::restore_on(opts, bytes, 1)
    }

    /// [`Scheduler::restore`] with the dataflow on `workers` timely workers.
    pub fn restore_on(opts: SchedulerOptions, bytes: &[u8], workers: usize) -> Result<Self, SnapshotError> {
        Self::restore_body(opts, verified_body(bytes)?, workers)
    }

    /// [`Scheduler::restore_on`] for bytes the artifact store has just checked against the
    /// sha256 its reference on the log records: the body's own checksum would hash the same
    /// bytes again (about 2 ms per 3 MB, a fifth of a restore at 100 000 jobs of history).
    pub fn restore_stored(
        opts: SchedulerOptions,
        bytes: &[u8],
        workers: usize,
    ) -> Result<Self, SnapshotError> {
        Self::restore_body(opts, header_and_body(bytes)?.1, workers)
    }

    fn restore_body(opts: SchedulerOptions, body: &[u8], workers: usize) -> Result<Self, SnapshotError> {
        let state: In = ciborium::from_reader(body).map_err(SnapshotError::Decode)?;
        // The view is restored as it was: the outputs of the rebuilding step restate it.
        let engine = Engine::restored(state.facts, state.engine_now, workers);
        let mut s = Self::with_engine(opts, engine);
        s.now = state.now;
        s.reg = state.reg;
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
        s.requeue_runnable();
        Ok(s)
    }
}

/// The body of snapshot `bytes` once its header and checksum check out.
pub fn verified_body(bytes: &[u8]) -> Result<&[u8], SnapshotError> {
    let (sum, body) = header_and_body(bytes)?;
    if Sha256::digest(body)[..] != *sum {
        return Err(SnapshotError::Checksum);
    }
    Ok(body)
}

/// The checksum and the body of snapshot `bytes` once its header checks out.
fn header_and_body(bytes: &[u8]) -> Result<(&[u8], &[u8]), SnapshotError> {
    let rest = bytes.strip_prefix(MAGIC).ok_or(SnapshotError::NotASnapshot)?;
    let (version, rest) = rest.split_at_checked(4).ok_or(SnapshotError::NotASnapshot)?;
    let found = u32::from_be_bytes(version.try_into().expect("4 bytes"));
    if found != VERSION {
        return Err(SnapshotError::Version { found });
    }
    rest.split_at_checked(32).ok_or(SnapshotError::Checksum)
}
