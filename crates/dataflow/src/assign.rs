//! The assignment step: at the end of each tick, match runnable tasks to free slots.
//!
//! Order: priority class first (interactive, standard, batch); within a class, tenants share by
//! deficit round robin weighted by their configured weight, skipping a tenant at its quota of
//! running tasks; within a tenant, oldest first. Each task goes to the eligible worker with the
//! best score. Hard constraints: the worker is live, has enough free slots (after this tick's
//! earlier decisions), has the model and every tool the task needs. Score (higher is better):
//! `100·warm_model + 10·matching_locality_labels + 5·free_fraction − 5·cpu_load`, ties broken by
//! worker id so decisions are deterministic.

use std::collections::{BTreeMap, HashMap, VecDeque};

use splai_events::Priority;

use crate::model::{Attempt, Time, Tk, Worker};

/// A runnable task the step may place.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub tk: Tk,
    pub attempt: Attempt,
    pub tenant: u32,
    pub priority: Priority,
    /// When the job was admitted (older goes first).
    pub age: Time,
    pub slots: u32,
    pub model: Option<String>,
    pub tools: Vec<String>,
    pub locality: Vec<String>,
    /// Labels the policy gate requires of the worker, with the rule's name and reason.
    pub required_labels: Vec<String>,
    pub policy_rule: Option<(String, String)>,
    /// Light work (`TaskSpec::runs_light`): it goes to a worker's light pool where it has one.
    pub light: bool,
    /// Language-model inference: it goes to an engine pool for its model where there is one.
    pub engine: bool,
}

/// Which of an executor's capacities a registry entry stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum Pool {
    /// Its ordinary slots (`worker_registered.slots`).
    #[default]
    Slots,
    /// Its light pool (`light_slots`): tools other than `shell`, and aggregations.
    Light,
    /// One inference engine's sequences (`engines`): that model's inference only.
    Engine,
}

/// What the step knows of a live worker.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerView {
    pub worker: Worker,
    pub id: String,
    pub free: i64,
    pub capacity: u32,
    pub models: Vec<String>,
    pub tools: Vec<String>,
    /// `key=value` labels.
    pub labels: Vec<String>,
    pub warm_models: Vec<String>,
    /// CPU load as a fraction of all cores (0–1).
    pub cpu_load: f64,
    /// Which of its executor's capacities this is.
    pub pool: Pool,
    /// (For an executor's main slots) it has a light pool, which takes its light attempts.
    pub has_light_pool: bool,
    /// (For an executor's main slots) it has inference engines, which take its inference.
    pub has_engine: bool,
}

/// Per-tenant share and limit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TenantPolicy {
    pub weight: u32,
    pub max_running: Option<u32>,
}

impl Default for TenantPolicy {
    fn default() -> Self {
        Self { weight: 1, max_running: None }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub tk: Tk,
    pub attempt: Attempt,
    pub worker: Worker,
    pub score: f64,
}

/// Why a worker can or cannot take a task, and its score.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub worker: String,
    pub eligible: Result<f64, String>,
}

/// Deficit-round-robin state, kept across ticks so shares hold over time.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct Assigner {
    deficit: HashMap<u32, f64>,
    order: VecDeque<u32>,
    /// Whether the tenant at the head of `order` has had this turn's credit.
    credited: bool,
}

/// Score of `w` for `c`, or why it is not eligible.
pub fn score(c: &Candidate, w: &WorkerView) -> Result<f64, String> {
    if w.free < i64::from(c.slots) {
        return Err(format!("{} free slot(s), needs {}", w.free.max(0), c.slots));
    }
    fits(c, w)?;
    let warm = c.model.as_ref().is_some_and(|m| w.warm_models.contains(m));
    let locality = c.locality.iter().filter(|l| w.labels.contains(l)).count() as f64;
    let free_fraction = if w.capacity == 0 { 0.0 } else { w.free as f64 / f64::from(w.capacity) };
    Ok(100.0 * f64::from(u8::from(warm)) + 10.0 * locality + 5.0 * free_fraction
        - 5.0 * w.cpu_load.clamp(0.0, 1.0))
}

/// Whether `w` could ever take `c` (its model, tools, labels and size), busy or not.
pub fn fits(c: &Candidate, w: &WorkerView) -> Result<(), String> {
    match w.pool {
        Pool::Light if !c.light => return Err("runs light attempts only (tools, aggregations)".into()),
        Pool::Engine if !c.engine => return Err("an inference engine runs its model's inference only".into()),
        _ => {}
    }
    if c.light && w.has_light_pool {
        return Err("runs light attempts in its light pool".into());
    }
    if c.engine && w.has_engine {
        return Err("runs inference in its engines".into());
    }
    if i64::from(w.capacity) < i64::from(c.slots) {
        return Err(format!("has {} slot(s) in all, needs {}", w.capacity, c.slots));
    }
    if let Some(m) = &c.model
        && !w.models.contains(m)
    {
        return Err(format!("does not have model `{m}`"));
    }
    if let Some(t) = c.tools.iter().find(|t| !w.tools.contains(t)) {
        return Err(format!("does not have tool `{t}`"));
    }
    if let Some(l) = c.required_labels.iter().find(|l| !w.labels.contains(l)) {
        let (rule, reason) = c.policy_rule.clone().unwrap_or_default();
        return Err(format!("lacks label `{l}` required by policy rule `{rule}`: {reason}"));
    }
    Ok(())
}

/// Every worker's verdict for `c` (for `--explain`).
pub fn explain(c: &Candidate, workers: &[WorkerView]) -> Vec<Verdict> {
    let mut v: Vec<Verdict> =
        workers.iter().map(|w| Verdict { worker: w.id.clone(), eligible: score(c, w) }).collect();
    v.sort_by(|a, b| a.worker.cmp(&b.worker));
    v
}

impl Assigner {
    fn next_turn(&mut self) {
        self.order.rotate_left(1);
        self.credited = false;
    }

    /// Place as many `candidates` as capacity, quotas and constraints allow. `running` holds each
    /// tenant's running attempts (including undelivered decisions) and is updated.
    pub fn decide(
        &mut self,
        candidates: Vec<Candidate>,
        workers: &mut [WorkerView],
        running: &mut HashMap<u32, u32>,
        tenants: &dyn Fn(u32) -> TenantPolicy,
    ) -> Vec<Decision> {
        self.decide_from(&mut Queued::new(candidates), workers, running, tenants)
    }

    /// [`Assigner::decide`] over candidates taken one at a time from `source`, so a long backlog
    /// costs only what is placed (and skipped), not its length, each tick.
    pub fn decide_from(
        &mut self,
        source: &mut dyn Candidates,
        workers: &mut [WorkerView],
        running: &mut HashMap<u32, u32>,
        tenants: &dyn Fn(u32) -> TenantPolicy,
    ) -> Vec<Decision> {
        let mut decisions = Vec::new();
        if workers.iter().all(|w| w.free <= 0) {
            return decisions;
        }
        workers.sort_by(|a, b| a.id.cmp(&b.id));
        for class in source.classes() {
            let with_work = source.tenants(class);
            for t in &with_work {
                if !self.order.contains(t) {
                    self.order.push_back(*t);
                }
            }
            // Tenants at their quota take no more of this class this tick.
            let mut done: Vec<u32> = Vec::new();
            // Deficit round robin: the tenant at the head is credited its weight once per turn and
            // served while its deficit lasts; a turn cut short by capacity resumes next tick.
            let mut idle_turns = 0;
            while idle_turns <= self.order.len() && workers.iter().any(|w| w.free > 0) {
                let tenant = self.order[0];
                if done.contains(&tenant) || source.peek(class, tenant).is_none() {
                    self.deficit.insert(tenant, 0.0);
                    self.next_turn();
                    idle_turns += 1;
                    continue;
                }
                let policy = tenants(tenant);
                let deficit = self.deficit.entry(tenant).or_insert(0.0);
                if !self.credited {
                    *deficit += f64::from(policy.weight.max(1));
                    self.credited = true;
                }
                let at_quota =
                    policy.max_running.is_some_and(|q| running.get(&tenant).copied().unwrap_or(0) >= q);
                if at_quota || *deficit < 1.0 {
                    if at_quota {
                        done.push(tenant);
                        *deficit = 0.0;
                    }
                    self.next_turn();
                    idle_turns += 1;
                    continue;
                }
                let c = source.pop(class, tenant).expect("peeked above");
                let best = workers
                    .iter()
                    .enumerate()
                    .filter_map(|(i, w)| score(&c, w).ok().map(|s| (i, s)))
                    .fold(None, |best: Option<(usize, f64)>, (i, s)| match best {
                        Some((_, bs)) if bs >= s => best,
                        _ => Some((i, s)),
                    });
                // A task no worker can take now waits for the next tick; it does not use the turn.
                let Some((i, s)) = best else { continue };
                workers[i].free -= i64::from(c.slots);
                *running.entry(tenant).or_insert(0) += 1;
                *deficit -= 1.0;
                idle_turns = 0;
                decisions.push(Decision {
                    tk: c.tk,
                    attempt: c.attempt,
                    worker: workers[i].worker,
                    score: s,
                });
            }
        }
        decisions
    }
}

/// Where the assignment step takes its candidates from: per priority class and tenant, oldest
/// first (by admission time, then task).
pub trait Candidates {
    /// Classes with candidates, most urgent first.
    fn classes(&self) -> Vec<Priority>;
    /// Tenants with candidates in `class`, ascending.
    fn tenants(&self, class: Priority) -> Vec<u32>;
    /// The next candidate of `tenant` in `class`, left in place.
    fn peek(&mut self, class: Priority, tenant: u32) -> Option<&Candidate>;
    /// The next candidate of `tenant` in `class`, taken.
    fn pop(&mut self, class: Priority, tenant: u32) -> Option<Candidate>;
}

/// Candidates given as a list (tests, small batches).
#[derive(Debug, Default)]
pub struct Queued {
    queues: BTreeMap<Priority, BTreeMap<u32, VecDeque<Candidate>>>,
}

impl Queued {
    pub fn new(mut candidates: Vec<Candidate>) -> Self {
        candidates.sort_by_key(|c| (c.priority, c.age, c.tk));
        let mut queues: BTreeMap<Priority, BTreeMap<u32, VecDeque<Candidate>>> = BTreeMap::new();
        for c in candidates {
            queues.entry(c.priority).or_default().entry(c.tenant).or_default().push_back(c);
        }
        Self { queues }
    }
}

impl Candidates for Queued {
    fn classes(&self) -> Vec<Priority> {
        self.queues.keys().copied().collect()
    }

    fn tenants(&self, class: Priority) -> Vec<u32> {
        self.queues.get(&class).map(|q| q.keys().copied().collect()).unwrap_or_default()
    }

    fn peek(&mut self, class: Priority, tenant: u32) -> Option<&Candidate> {
        self.queues.get(&class)?.get(&tenant)?.front()
    }

    fn pop(&mut self, class: Priority, tenant: u32) -> Option<Candidate> {
        self.queues.get_mut(&class)?.get_mut(&tenant)?.pop_front()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn worker(n: u32, free: i64) -> WorkerView {
        WorkerView {
            worker: n,
            id: format!("w{n}"),
            free,
            capacity: free.max(0) as u32,
            models: vec!["m".into()],
            tools: vec![],
            labels: vec![],
            warm_models: vec![],
            cpu_load: 0.0,
            pool: Pool::Slots,
            has_light_pool: false,
            has_engine: false,
        }
    }

    fn cand(job: u32, task: u32, tenant: u32, priority: Priority) -> Candidate {
        Candidate {
            tk: (job, task),
            attempt: 1,
            tenant,
            priority,
            age: u64::from(job),
            slots: 1,
            model: None,
            tools: vec![],
            locality: vec![],
            required_labels: vec![],
            policy_rule: None,
            light: false,
            engine: false,
        }
    }

    #[test]
    fn light_work_goes_to_the_light_pool_and_nothing_else_does() {
        let (mut light, heavy) = (cand(0, 0, 0, Priority::Standard), cand(0, 1, 0, Priority::Standard));
        light.light = true;
        let (mut main, mut pool, plain) = (worker(0, 4), worker(1, 4), worker(2, 4));
        main.has_light_pool = true;
        pool.pool = Pool::Light;
        assert!(fits(&light, &pool).is_ok() && fits(&heavy, &main).is_ok());
        assert!(fits(&light, &main).unwrap_err().contains("light pool"));
        assert!(fits(&heavy, &pool).unwrap_err().contains("light attempts only"));
        // A worker without a pool runs both in its slots.
        assert!(fits(&light, &plain).is_ok() && fits(&heavy, &plain).is_ok());
    }

    #[test]
    fn an_engine_takes_its_models_inference_and_nothing_else() {
        let mut inference = cand(0, 0, 0, Priority::Standard);
        (inference.engine, inference.model) = (true, Some("m".into()));
        let (mut embedding, tool) = (cand(0, 1, 0, Priority::Standard), cand(0, 2, 0, Priority::Standard));
        embedding.model = Some("m".into());
        let mut engine = worker(0, 32);
        engine.pool = Pool::Engine;
        assert!(fits(&inference, &engine).is_ok());
        for other in [&embedding, &tool] {
            assert!(fits(other, &engine).unwrap_err().contains("inference only"));
        }
        let mut other_model = inference.clone();
        other_model.model = Some("n".into());
        assert!(fits(&other_model, &engine).unwrap_err().contains("model `n`"));
    }

    #[test]
    fn policy_labels_are_a_hard_constraint_naming_the_rule() {
        let mut c = cand(0, 0, 0, Priority::Standard);
        c.required_labels = vec!["site=on-prem".into()];
        c.policy_rule = Some(("restricted-on-prem".into(), "restricted data stays on-prem".into()));
        let w = |labels: Vec<String>| WorkerView {
            worker: 0,
            id: "w".into(),
            free: 1,
            capacity: 1,
            models: vec![],
            tools: vec![],
            labels,
            warm_models: vec![],
            cpu_load: 0.0,
            pool: Pool::Slots,
            has_light_pool: false,
            has_engine: false,
        };
        let err = score(&c, &w(vec!["site=cloud".into()])).unwrap_err();
        assert!(err.contains("`site=on-prem`") && err.contains("restricted-on-prem"), "{err}");
        assert!(score(&c, &w(vec!["site=on-prem".into()])).is_ok());
    }

    #[test]
    fn never_exceeds_free_slots_and_prefers_priority() {
        let mut a = Assigner::default();
        let mut workers = vec![worker(0, 1), worker(1, 2)];
        let cands = vec![
            cand(0, 0, 0, Priority::Batch),
            cand(1, 0, 0, Priority::Interactive),
            cand(2, 0, 0, Priority::Standard),
            cand(3, 0, 0, Priority::Batch),
        ];
        let d = a.decide(cands, &mut workers, &mut HashMap::new(), &|_| TenantPolicy::default());
        assert_eq!(d.len(), 3);
        assert_eq!(d[0].tk, (1, 0));
        assert_eq!(d[1].tk, (2, 0));
        assert!(workers.iter().all(|w| w.free == 0));
    }

    #[test]
    fn weighted_shares_and_quotas() {
        let mut a = Assigner::default();
        let mut workers = vec![worker(0, 30)];
        let cands: Vec<_> = (0..40)
            .flat_map(|i| [cand(i, 0, 1, Priority::Standard), cand(100 + i, 0, 2, Priority::Standard)])
            .collect();
        let weights = |t: u32| TenantPolicy { weight: if t == 1 { 2 } else { 1 }, max_running: None };
        let d = a.decide(cands.clone(), &mut workers, &mut HashMap::new(), &weights);
        let t1 = d.iter().filter(|x| x.tk.0 < 100).count();
        assert_eq!((t1, d.len() - t1), (20, 10));
        let mut workers = vec![worker(0, 30)];
        let quota = |t: u32| TenantPolicy { weight: 1, max_running: if t == 1 { Some(3) } else { None } };
        let d = Assigner::default().decide(cands, &mut workers, &mut HashMap::from([(1, 1)]), &quota);
        assert_eq!(d.iter().filter(|x| x.tk.0 < 100).count(), 2);
    }

    #[test]
    fn hard_constraints_and_warm_models() {
        let mut c = cand(0, 0, 0, Priority::Standard);
        c.model = Some("m".into());
        let mut cold = worker(0, 4);
        let mut warm = worker(1, 1);
        warm.warm_models = vec!["m".into()];
        let mut none = worker(2, 4);
        none.models.clear();
        cold.cpu_load = 0.0;
        let v = explain(&c, &[cold.clone(), warm.clone(), none.clone()]);
        assert!(v[2].eligible.as_ref().unwrap_err().contains("model"));
        let d = Assigner::default()
            .decide(vec![c], &mut [cold, warm, none], &mut HashMap::new(), &|_| TenantPolicy::default());
        assert_eq!(d[0].worker, 1, "warm model wins");
    }
}
