//! Interning: the dataflow sees integers; the driver maps them to jobs, tasks, workers and tenants.

use compact_str::CompactString;
use rustc_hash::FxHashMap as HashMap;
use std::collections::BTreeMap;

use splai_events::{Dag, DataClassification, Envelope, JobType, Priority, WorkerRegistered};

use crate::model::{Job, Time, Tk, Worker};

#[derive(Debug, Clone)]
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

#[derive(Debug, Clone, Default)]
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
    /// This entry is an executor's pool for light attempts (its main entry is `twin`).
    pub light: bool,
    /// The other entry of the same executor: its light pool, or (for a pool) its main entry.
    pub twin: Option<Worker>,
}

/// The light pool's entry id: an executor's id with this suffix (never sent to the executor).
const LIGHT_SUFFIX: &str = "#light";

#[derive(Debug, Default)]
pub struct Registry {
    pub jobs: Vec<JobInfo>,
    /// Jobs by (tenant, id): two tenants may use one id. Ids inline when short, so a probe
    /// compares them without chasing a pointer.
    job_index: HashMap<(u32, CompactString), Job>,
    /// Per job, its task ids (inline when short) with their index, sorted by id: a report names
    /// its task by two strings, and this lookup is a good part of applying one. Kept beside
    /// `jobs`, in admission order, so the jobs running now are close together in memory.
    tasks_by_id: Vec<Box<[(CompactString, u32)]>>,
    pub workers: Vec<WorkerInfo>,
    worker_index: HashMap<String, Worker>,
    pub tenants: Vec<String>,
    tenant_index: HashMap<String, u32>,
    /// (tenant, idempotency key) → the job that took it and a digest of its request.
    pub idempotency: HashMap<(u32, String), (String, u64)>,
    /// Jobs cancelled before their request was seen, by (tenant, job id): a cancel acts only on
    /// its own tenant's job, so another tenant's job that later takes the id is not cancelled.
    pub early_cancels: HashMap<(String, String), String>,
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

    /// `tenant`'s job `id`: another tenant's job of that id is, to it, no job at all.
    pub fn own_job(&self, tenant: &str, id: &str) -> Option<Job> {
        let t = *self.tenant_index.get(tenant)?;
        self.job_index.get(&(t, CompactString::from(id))).copied()
    }

    /// Every tenant's job `id` (a heartbeat names attempts without their tenant).
    pub fn jobs_named<'a>(&'a self, id: &'a str) -> impl Iterator<Item = Job> + 'a {
        (0..self.tenants.len() as u32)
            .filter_map(move |t| self.job_index.get(&(t, CompactString::from(id))).copied())
    }

    pub fn add_job(&mut self, info: JobInfo) -> Job {
        let j = self.jobs.len() as Job;
        self.job_index.insert((info.tenant, info.id.as_str().into()), j);
        self.tasks_by_id.push(task_index(&info.dag));
        self.jobs.push(info);
        j
    }

    /// `job`'s DAG grew at run time: `dag` keeps its tasks' order and appends new ones.
    pub fn replace_dag(&mut self, job: Job, dag: Dag) {
        self.tasks_by_id[job as usize] = task_index(&dag);
        self.jobs[job as usize].dag = dag;
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
        let job = &self.jobs[tk.0 as usize];
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
        info.models = r.models.clone();
        info.tools = r.tools.clone();
        info.labels = labels.clone();
        info.registered = true;
        info.heartbeat_interval_ms = r.heartbeat_interval_ms;
        // Its light pool: the light tools, no model, the same labels; without one (or no
        // longer), an existing pool entry is no longer registered and lapses with its beats.
        if r.light_slots > 0 || self.workers[w as usize].twin.is_some() {
            let pool = self.light_pool_or_new(w);
            let info = &mut self.workers[pool as usize];
            info.slots = r.light_slots;
            info.cores = r.cores.max(1);
            info.tools = r.tools.iter().filter(|t| splai_events::tool_runs_light(t)).cloned().collect();
            info.labels = labels;
            info.registered = r.light_slots > 0;
        }
        w
    }

    /// The light pool of executor entry `w`, created on first use (an assignment read back
    /// before its executor's registration creates it too).
    pub fn light_pool_or_new(&mut self, w: Worker) -> Worker {
        if let Some(pool) = self.workers[w as usize].twin {
            return pool;
        }
        let id = format!("{}{LIGHT_SUFFIX}", self.workers[w as usize].id);
        let pool = self.worker_or_new(&id);
        let info = &mut self.workers[pool as usize];
        info.light = true;
        info.twin = Some(w);
        self.workers[w as usize].twin = Some(pool);
        pool
    }

    /// Executor entry `w` and its light pool entry, if it ever had one (what leaves or restarts
    /// with it).
    pub fn with_pool(&self, w: Worker) -> impl Iterator<Item = Worker> + use<> {
        [Some(w), self.workers[w as usize].twin].into_iter().flatten()
    }

    /// The light pool of executor entry `w`, if it has a registered one.
    pub fn light_pool(&self, w: Worker) -> Option<Worker> {
        self.workers[w as usize]
            .twin
            .filter(|p| self.workers[*p as usize].light && self.workers[*p as usize].registered)
    }

    /// The id of the executor an entry belongs to (what its attempts name).
    pub fn executor_id(&self, w: Worker) -> &str {
        &self.workers[self.executor_of(w) as usize].id
    }

    /// The executor an entry belongs to: itself, or a light pool's main entry.
    pub fn executor_of(&self, w: Worker) -> Worker {
        let info = &self.workers[w as usize];
        if info.light { info.twin.unwrap_or(w) } else { w }
    }
}
