//! Interning: the dataflow sees integers; the driver maps them to jobs, tasks, workers and tenants.

use compact_str::CompactString;
use rustc_hash::FxHashMap as HashMap;
use std::collections::BTreeMap;

use splai_events::{Dag, DataClassification, Envelope, JobType, Priority, WorkerRegistered};

use super::job_ids::JobIds;
use super::job_table::JobTable;
use crate::assign::Pool;
use crate::model::{Job, JobStatus, Time, Tk, Worker};

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct JobInfo {
    pub id: String,
    pub tenant: u32,
    pub job_type: JobType,
    pub priority: Priority,
    pub admitted_at: Time,
    pub dag: Dag,
    pub traceparent: Option<String>,
    pub max_retries: Option<u32>,
    pub timeout_s: Option<u32>,
    /// Per task: worker labels the policy gate requires, and the rule that requires them.
    pub placement: Vec<splai_ingest::policy::Placement>,
    /// What the policy gate asks of tasks appended at run time, and whether they may use the
    /// result cache (the request's `cache`).
    pub data_classification: DataClassification,
    pub model: Option<String>,
    pub cache: Option<bool>,
}

#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct WorkerInfo {
    pub id: String,
    pub slots: u32,
    pub cores: u32,
    pub models: Vec<String>,
    pub tools: Vec<String>,
    pub labels: Vec<String>,
    pub warm_models: Vec<String>,
    pub cpu_load: f64,
    pub registered: bool,
    /// How often it beats (from its registration): its attempts are judged missing from its
    /// heartbeats only once it has had that long to read their assignments.
    pub heartbeat_interval_ms: u64,
    /// Which of its executor's pools this entry is.
    pub pool: Pool,
    /// (A pool's entry) the executor it belongs to.
    pub executor: Option<Worker>,
    /// (An executor's entry) its pools' entries, registered now or not.
    pub pools: Vec<Worker>,
}

/// Cancels one tenant may have waiting for jobs not admitted: a producer cancelling ids that
/// never come cannot grow the scheduler without bound.
pub const EARLY_CANCELS: usize = 10_000;

/// A pool's entry id: its executor's id with a suffix no executor id has (never sent to one).
fn pool_id(executor: &str, pool: Pool, model: &str) -> String {
    match pool {
        Pool::Slots => executor.to_string(),
        Pool::Light => format!("{executor}#light"),
        Pool::Engine => format!("{executor}#engine:{model}"),
    }
}

#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct Registry {
    /// Admitted jobs by number; `None` once retired (finished: see [`Registry::retire`]).
    jobs: JobTable<Option<Box<JobInfo>>>,
    /// Every (tenant, job id) used: the request that took it, its job, a retired job's final
    /// state. Two tenants may use one id. A snapshot writes it apart (`driver/snapshot.rs`).
    #[serde(skip)]
    pub ids: JobIds,
    /// Per job, its task ids (inline when short) with their index, sorted by id: a report names
    /// its task by two strings, and this lookup is a good part of applying one. Kept beside
    /// `jobs`, in admission order, so the jobs running now are close together in memory.
    tasks_by_id: JobTable<Box<[(CompactString, u32)]>>,
    pub workers: Vec<WorkerInfo>,
    worker_index: HashMap<String, Worker>,
    pub tenants: Vec<String>,
    tenant_index: HashMap<String, u32>,
    /// (tenant, idempotency key) → the job that took it and a digest of its request.
    pub idempotency: HashMap<(u32, String), (String, u64)>,
    /// Jobs cancelled before their request was seen, by (tenant, job id): a cancel acts only on
    /// its own tenant's job, so another tenant's job that later takes the id is not cancelled.
    early_cancels: HashMap<(String, String), String>,
    /// How many of `early_cancels` each tenant has (bounded by [`EARLY_CANCELS`]).
    early_cancels_per_tenant: HashMap<String, usize>,
    /// Rejections by (tenant, job id) (re-emitted in the go-live snapshot).
    pub rejected: BTreeMap<(String, String), Envelope>,
    /// Dead letters for refused control records, by their id (re-emitted in the snapshot too).
    pub denied: BTreeMap<String, Envelope>,
}

fn task_index(dag: &Dag) -> Box<[(CompactString, u32)]> {
    let mut ids: Box<[(CompactString, u32)]> =
        dag.tasks.iter().enumerate().map(|(t, task)| (task.id.as_str().into(), t as u32)).collect();
    ids.sort_unstable();
    ids
}

impl Registry {
    pub fn tenant(&mut self, name: &str) -> u32 {
        if let Some(t) = self.tenant_index.get(name) {
            return *t;
        }
        let t = self.tenants.len() as u32;
        self.tenants.push(name.to_string());
        self.tenant_index.insert(name.to_string(), t);
        t
    }

    /// Keep a cancel of `(tenant, job id)` for a request not admitted yet, unless the tenant
    /// has [`EARLY_CANCELS`] waiting already; whether it is kept (the first reason stays).
    pub fn keep_early_cancel(&mut self, key: (String, String), reason: &str) -> bool {
        if self.early_cancels.contains_key(&key) {
            return true;
        }
        let count = self.early_cancels_per_tenant.entry(key.0.clone()).or_insert(0);
        if *count >= EARLY_CANCELS {
            return false;
        }
        *count += 1;
        self.early_cancels.insert(key, reason.to_string());
        true
    }

    /// The cancel kept for `tenant`'s job `id`, taken as the job is admitted.
    pub fn take_early_cancel(&mut self, tenant: &str, id: &str) -> Option<String> {
        let reason = self.early_cancels.remove(&(tenant.to_string(), id.to_string()))?;
        if let Some(count) = self.early_cancels_per_tenant.get_mut(tenant) {
            *count -= 1;
        }
        Some(reason)
    }

    /// `tenant`'s job `id`, if admitted and not retired: another tenant's job of that id is, to
    /// it, no job at all.
    pub fn own_job(&self, tenant: &str, id: &str) -> Option<Job> {
        // A held job's id is among the unretired: no wait for every id of a restored snapshot.
        let used = self.ids.get_unretired(*self.tenant_index.get(tenant)?, id)?;
        used.job.filter(|j| self.is_held(*j))
    }

    /// Whether `tenant`'s job `id` is known without every id of a restored snapshot: its job is
    /// in flight (or was rejected), or the id was used since the snapshot.
    pub fn knows_unretired(&self, tenant: &str, id: &str) -> bool {
        self.tenant_index.get(tenant).is_some_and(|t| self.ids.get_unretired(*t, id).is_some())
    }

    /// `tenant`'s job `id` retired, and its final state.
    pub fn own_retired(&self, tenant: &str, id: &str) -> Option<(Job, JobStatus)> {
        let used = self.ids.get(*self.tenant_index.get(tenant)?, id)?;
        Some((used.job?, used.retired?))
    }

    /// Some tenant's job `id` retired: its final state (a lookup per tenant, not a scan).
    pub fn retired_named_id(&self, id: &str) -> Option<JobStatus> {
        (0..self.tenants.len() as u32).find_map(|t| self.ids.get(t, id)?.retired)
    }

    /// Every tenant's job `id` not retired (a heartbeat names attempts without their tenant).
    pub fn jobs_named<'a>(&'a self, id: &'a str) -> impl Iterator<Item = Job> + 'a {
        (0..self.tenants.len() as u32)
            .filter_map(move |t| self.ids.get_unretired(t, id)?.job)
            .filter(|j| self.is_held(*j))
    }

    /// The request that took `tenant`'s job id `id`, if one did (admitted or rejected).
    pub fn request_of(&self, tenant: &str, id: &str) -> Option<compact_str::CompactString> {
        Some(self.ids.get(*self.tenant_index.get(tenant)?, id)?.request)
    }

    /// Request `request` takes `tenant`'s job id `id` (none had it).
    pub fn take_id(&mut self, tenant: &str, id: &str, request: &str) {
        let t = self.tenant(tenant);
        self.ids.take(t, id, request);
    }

    /// Whether job number `j` is admitted and not retired.
    pub fn is_held(&self, j: Job) -> bool {
        self.jobs.get(j as usize).is_some_and(Option::is_some)
    }

    /// Admitted job `j` (not retired: a retired job's number is kept nowhere but here).
    pub fn job(&self, j: Job) -> &JobInfo {
        self.jobs.get(j as usize).and_then(|j| j.as_deref()).expect("a retired job's number is not kept")
    }

    pub fn job_mut(&mut self, j: Job) -> &mut JobInfo {
        self.jobs
            .get_mut(j as usize)
            .and_then(|j| j.as_deref_mut())
            .expect("a retired job's number is not kept")
    }

    /// How many job numbers were given (retired ones too).
    pub fn job_numbers(&self) -> Job {
        self.jobs.len() as Job
    }

    /// The jobs held (admitted, not retired), by number.
    pub fn held_jobs(&self) -> impl Iterator<Item = (Job, &JobInfo)> {
        self.jobs.iter().filter_map(|(j, info)| Some((j as Job, info.as_deref()?)))
    }

    /// Retired jobs by (tenant, id), with their final states (tests and tools: a scan).
    pub fn retired_named(&self) -> impl Iterator<Item = ((&str, String), JobStatus)> + '_ {
        self.ids.sorted().into_iter().filter_map(|((t, id), used)| {
            Some(((self.tenants[t as usize].as_str(), id.into()), used.retired?))
        })
    }

    /// Forget finished job `j` but its id, tenant and final state; its `JobInfo` (what a restart
    /// needs to tell anyone about it) is returned.
    pub fn retire(&mut self, j: Job, status: JobStatus) -> Option<Box<JobInfo>> {
        let info = self.jobs.take(j as usize)?;
        self.tasks_by_id.take(j as usize);
        self.ids.retired(info.tenant, &info.id, status);
        Some(info)
    }

    pub fn add_job(&mut self, info: JobInfo) -> Job {
        let j = self.jobs.len() as Job;
        self.ids.admitted(info.tenant, &info.id, j);
        self.tasks_by_id.push(task_index(&info.dag));
        self.jobs.push(Some(Box::new(info)));
        j
    }

    /// `job`'s DAG grew at run time: `dag` keeps its tasks' order and appends new ones.
    pub fn replace_dag(&mut self, job: Job, dag: Dag) {
        *self.tasks_by_id.slot(job as usize) = task_index(&dag);
        self.job_mut(job).dag = dag;
    }

    pub fn task(&self, tenant: &str, job_id: &str, task_id: &str) -> Option<Tk> {
        self.task_of(self.own_job(tenant, job_id)?, task_id)
    }

    /// Task `task_id` of admitted job `job`.
    pub fn task_of(&self, job: Job, task_id: &str) -> Option<Tk> {
        let ids = self.tasks_by_id.get(job as usize)?;
        let i = ids.binary_search_by(|(id, _)| id.as_str().cmp(task_id)).ok()?;
        Some((job, ids[i].1))
    }

    pub fn task_ids(&self, tk: Tk) -> (&str, &str) {
        let job = self.job(tk.0);
        (&job.id, &job.dag.tasks[tk.1 as usize].id)
    }

    pub fn worker(&self, id: &str) -> Option<Worker> {
        self.worker_index.get(id).copied()
    }

    pub fn worker_or_new(&mut self, id: &str) -> Worker {
        if let Some(w) = self.worker_index.get(id) {
            return *w;
        }
        let w = self.workers.len() as Worker;
        self.workers.push(WorkerInfo { id: id.to_string(), ..WorkerInfo::default() });
        self.worker_index.insert(id.to_string(), w);
        w
    }

    pub fn register(&mut self, r: &WorkerRegistered) -> Worker {
        let w = self.worker_or_new(&r.worker_id);
        let labels: Vec<String> = r.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let info = &mut self.workers[w as usize];
        info.slots = r.slots;
        info.cores = r.cores.max(1);
        // A model decoded in an engine is offered by the engine's pool, not by the slots.
        info.models = r.models.iter().filter(|m| !r.engines.contains_key(*m)).cloned().collect();
        info.tools = r.tools.clone();
        info.labels = labels.clone();
        info.registered = true;
        info.heartbeat_interval_ms = r.heartbeat_interval_ms;
        // Pools it no longer has are no longer registered and lapse with their beats.
        for pool in self.workers[w as usize].pools.clone() {
            self.workers[pool as usize].registered = false;
        }
        // Its light pool: the light tools, no model.
        if r.light_slots > 0 {
            let pool = self.pool_or_new(w, Pool::Light, "");
            let info = &mut self.workers[pool as usize];
            info.slots = r.light_slots;
            info.tools = r.tools.iter().filter(|t| splai_events::tool_runs_light(t)).cloned().collect();
            info.registered = true;
        }
        // An engine per language model: its sequences, that model, no tool.
        for (model, sequences) in r.engines.iter().filter(|(_, n)| **n > 0) {
            let pool = self.pool_or_new(w, Pool::Engine, model);
            let info = &mut self.workers[pool as usize];
            info.slots = *sequences;
            info.registered = true;
        }
        // Every pool has its executor's cores, labels and beat.
        for pool in self.workers[w as usize].pools.clone() {
            let info = &mut self.workers[pool as usize];
            info.cores = r.cores.max(1);
            info.labels = labels.clone();
            info.heartbeat_interval_ms = r.heartbeat_interval_ms;
        }
        w
    }

    /// Executor entry `w`'s `pool` (for an engine, `model`'s), created on first use (an
    /// assignment read back before its executor's registration creates it too).
    pub fn pool_or_new(&mut self, w: Worker, pool: Pool, model: &str) -> Worker {
        if pool == Pool::Slots {
            return w;
        }
        let id = pool_id(&self.workers[w as usize].id, pool, model);
        if let Some(p) = self.worker(&id) {
            return p;
        }
        let p = self.worker_or_new(&id);
        let info = &mut self.workers[p as usize];
        info.pool = pool;
        info.executor = Some(w);
        if pool == Pool::Engine {
            info.models = vec![model.to_string()];
        }
        self.workers[w as usize].pools.push(p);
        p
    }

    /// Executor entry `w` and every pool entry it ever had (what leaves or restarts with it).
    pub fn with_pools(&self, w: Worker) -> impl Iterator<Item = Worker> + use<> {
        std::iter::once(w).chain(self.workers[w as usize].pools.clone())
    }

    /// Executor entry `w` and its registered pools (what beats with it).
    pub fn with_registered_pools(&self, w: Worker) -> impl Iterator<Item = Worker> + '_ {
        std::iter::once(w).chain(
            self.workers[w as usize].pools.iter().copied().filter(|p| self.workers[*p as usize].registered),
        )
    }

    /// The light pool of executor entry `w`, if it has a registered one.
    pub fn light_pool(&self, w: Worker) -> Option<Worker> {
        self.workers[w as usize]
            .pools
            .iter()
            .copied()
            .find(|p| self.workers[*p as usize].pool == Pool::Light && self.workers[*p as usize].registered)
    }

    /// Whether executor entry `w` has a registered inference engine.
    pub fn has_engine(&self, w: Worker) -> bool {
        let pools = &self.workers[w as usize].pools;
        pools
            .iter()
            .any(|p| self.workers[*p as usize].pool == Pool::Engine && self.workers[*p as usize].registered)
    }

    /// The id of the executor an entry belongs to (what its attempts name).
    pub fn executor_id(&self, w: Worker) -> &str {
        &self.workers[self.executor_of(w) as usize].id
    }

    /// The executor an entry belongs to: itself, or a pool's executor.
    pub fn executor_of(&self, w: Worker) -> Worker {
        self.workers[w as usize].executor.unwrap_or(w)
    }
}
