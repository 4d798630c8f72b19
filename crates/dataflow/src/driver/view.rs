//! The scheduler's current view of the dataflow's outputs: runnable tasks (and since when),
//! workers' free slots and capacity, open attempts, task and job states. Updated from each step's
//! consolidated changes; what moved is returned so the driver can act on it.

use rustc_hash::FxHashMap as HashMap;
use std::collections::BTreeMap;

use super::task_map::TaskMap;
use crate::engine::Changes;
use crate::job_status::JobTally;
use crate::model::{Attempt, Job, JobStatus, TaskStatus, Time, Tk, Worker};

#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct View {
    runnable: BTreeMap<Tk, (Attempt, Time)>,
    free: HashMap<Worker, i64>,
    live: BTreeMap<Worker, u32>,
    active: HashMap<Tk, (Attempt, Worker)>,
    tasks: TaskMap<(TaskStatus, Attempt)>,
    jobs: HashMap<Job, JobStatus>,
    /// Per job, its tasks' states counted and its marks: what [`JobTally::status`] reads.
    tallies: HashMap<Job, JobTally>,
    /// Jobs marked (cancelled, expired) since the last step, whose state the next one settles.
    marked: Vec<Job>,
}

/// What one step changed, in the order the driver acts on it.
#[derive(Debug, Default)]
pub struct Moved {
    /// Tasks that became runnable or stopped being.
    pub runnable: Vec<Tk>,
    /// New task states.
    pub tasks: Vec<(Tk, TaskStatus, Attempt)>,
    /// New job states.
    pub jobs: Vec<(Job, JobStatus)>,
}

/// A map the view keeps (hash or ordered).
trait Keyed<K, V> {
    fn value(&self, k: &K) -> Option<V>;
    fn put(&mut self, k: K, v: V);
    fn drop_key(&mut self, k: &K);
}

impl<K: std::hash::Hash + Eq, V: Copy> Keyed<K, V> for HashMap<K, V> {
    fn value(&self, k: &K) -> Option<V> {
        self.get(k).copied()
    }
    fn put(&mut self, k: K, v: V) {
        self.insert(k, v);
    }
    fn drop_key(&mut self, k: &K) {
        self.remove(k);
    }
}

impl<K: Ord, V: Copy> Keyed<K, V> for BTreeMap<K, V> {
    fn value(&self, k: &K) -> Option<V> {
        self.get(k).copied()
    }
    fn put(&mut self, k: K, v: V) {
        self.insert(k, v);
    }
    fn drop_key(&mut self, k: &K) {
        self.remove(k);
    }
}

/// Apply `changes` to `map`: an addition sets the value, a retraction removes it only if it is
/// still the value retracted (retractions and additions of one key may come in either order).
fn update<K: Copy, V: Copy + PartialEq>(map: &mut impl Keyed<K, V>, changes: &[((K, V), isize)]) {
    for ((k, v), diff) in changes {
        if *diff > 0 {
            map.put(*k, *v);
        } else if map.value(k) == Some(*v) {
            map.drop_key(k);
        }
    }
}

impl View {
    /// Take in one step's changes at `now`.
    pub fn absorb(&mut self, changes: &Changes, now: Time) -> Moved {
        let mut moved = Moved::default();
        for ((tk, attempt), diff) in &changes.runnable {
            if *diff > 0 {
                self.runnable.insert(*tk, (*attempt, now));
            } else if self.runnable.get(tk).is_some_and(|(a, _)| a == attempt) {
                self.runnable.remove(tk);
            }
            moved.runnable.push(*tk);
        }
        update(&mut self.free, &changes.free_slots);
        update(&mut self.live, &changes.live_workers);
        update(&mut self.active, &changes.active);
        // Retractions first, so a state that moved within the step is replaced, not lost.
        let mut had_state = rustc_hash::FxHashSet::default();
        let mut touched = std::mem::take(&mut self.marked);
        for ((tk, sa), _) in changes.task_states.iter().filter(|(_, d)| *d < 0) {
            if self.tasks.get(tk) == Some(sa) {
                self.tasks.remove(tk);
                self.tallies.entry(tk.0).or_default().remove(sa.0);
                touched.push(tk.0);
                had_state.insert(*tk);
            }
        }
        for ((tk, (status, attempt)), _) in changes.task_states.iter().filter(|(_, d)| *d > 0) {
            let before = self.tasks.insert(*tk, (*status, *attempt));
            let tally = self.tallies.entry(tk.0).or_default();
            if let Some((was, _)) = before {
                tally.remove(was);
            }
            tally.add(*status);
            touched.push(tk.0);
            let first = before.is_none() && !had_state.contains(tk);
            // A task's first state, pending, says nothing its job's admission did not.
            if !(first && *status == TaskStatus::Pending) {
                moved.tasks.push((*tk, *status, *attempt));
            }
        }
        touched.sort_unstable();
        touched.dedup();
        for job in touched {
            let status = self.tallies.get(&job).and_then(JobTally::status);
            if status.is_none() {
                self.tallies.remove(&job);
            }
            if status == self.jobs.get(&job).copied() {
                continue;
            }
            match status {
                Some(status) => {
                    self.jobs.insert(job, status);
                    moved.jobs.push((job, status));
                }
                None => {
                    self.jobs.remove(&job);
                }
            }
        }
        moved
    }

    /// The user cancelled `job` (fed to the dataflow now): its state follows at the next step.
    pub fn mark_cancelled(&mut self, job: Job) {
        self.tallies.entry(job).or_default().cancel();
        self.marked.push(job);
    }

    /// `job`'s deadline passed (fed to the dataflow now): its state follows at the next step.
    pub fn mark_expired(&mut self, job: Job) {
        self.tallies.entry(job).or_default().expire();
        self.marked.push(job);
    }

    /// `tk`'s runnable attempt and since when it is runnable.
    pub fn runnable(&self, tk: Tk) -> Option<(Attempt, Time)> {
        self.runnable.get(&tk).copied()
    }

    /// Every runnable task, in task order.
    pub fn runnable_tasks(&self) -> impl Iterator<Item = (Tk, Attempt, Time)> + '_ {
        self.runnable.iter().map(|(tk, (a, t))| (*tk, *a, *t))
    }

    /// Live workers and their capacity, in worker order.
    pub fn live_workers(&self) -> impl Iterator<Item = (Worker, u32)> + '_ {
        self.live.iter().map(|(w, c)| (*w, *c))
    }

    /// `w`'s free slots (None: not known to be live).
    pub fn free(&self, w: Worker) -> Option<i64> {
        self.free.get(&w).copied()
    }

    /// Tasks with an open attempt.
    pub fn active_tasks(&self) -> impl Iterator<Item = Tk> + '_ {
        self.active.keys().copied()
    }

    pub fn task(&self, tk: Tk) -> Option<(TaskStatus, Attempt)> {
        self.tasks.get(&tk).copied()
    }

    pub fn job(&self, job: Job) -> Option<JobStatus> {
        self.jobs.get(&job).copied()
    }

    /// Finished `job` (`tasks` tasks, none runnable or active) leaves the view; the dataflow's
    /// retractions of its states that follow find nothing to remove.
    pub fn forget_job(&mut self, job: Job, tasks: u32) {
        for t in 0..tasks {
            self.runnable.remove(&(job, t));
            self.active.remove(&(job, t));
        }
        self.tasks.remove_job(job);
        self.jobs.remove(&job);
        self.tallies.remove(&job);
    }
}

#[cfg(test)]
mod tests {
    use super::View;
    use crate::engine::Changes;
    use crate::model::{JobStatus, TaskStatus};

    #[test]
    fn a_retraction_of_an_old_value_does_not_remove_the_new_one() {
        let mut v = View::default();
        v.absorb(&Changes { free_slots: vec![((1, 4), 1)], ..Changes::default() }, 0);
        // Within one step the new value may come before the old one's retraction.
        v.absorb(&Changes { free_slots: vec![((1, 3), 1), ((1, 4), -1)], ..Changes::default() }, 1);
        assert_eq!(v.free(1), Some(3));
        v.absorb(&Changes { free_slots: vec![((1, 3), -1)], ..Changes::default() }, 2);
        assert_eq!(v.free(1), None);
    }

    #[test]
    fn runnable_remembers_since_when_and_reports_what_moved() {
        let mut v = View::default();
        let moved = v.absorb(&Changes { runnable: vec![(((0, 1), 1), 1)], ..Changes::default() }, 7);
        assert_eq!(moved.runnable, vec![(0, 1)]);
        assert_eq!(v.runnable((0, 1)), Some((1, 7)));
        // A retraction of another attempt leaves the current one.
        v.absorb(&Changes { runnable: vec![(((0, 1), 0), -1)], ..Changes::default() }, 8);
        assert_eq!(v.runnable((0, 1)), Some((1, 7)));
        v.absorb(&Changes { runnable: vec![(((0, 1), 1), -1)], ..Changes::default() }, 9);
        assert_eq!(v.runnable((0, 1)), None);
    }

    #[test]
    fn a_state_that_moved_within_a_step_is_replaced_and_reported() {
        let mut v = View::default();
        let start =
            Changes { task_states: vec![(((0, 0), (TaskStatus::Runnable, 1)), 1)], ..Changes::default() };
        assert_eq!(v.absorb(&start, 0).jobs, vec![(0, JobStatus::Queued)]);
        let step = Changes {
            task_states: vec![
                (((0, 0), (TaskStatus::Succeeded, 1)), 1),
                (((0, 0), (TaskStatus::Runnable, 1)), -1),
            ],
            ..Changes::default()
        };
        let moved = v.absorb(&step, 1);
        assert_eq!(v.task((0, 0)), Some((TaskStatus::Succeeded, 1)));
        assert_eq!(v.job(0), Some(JobStatus::Succeeded));
        assert_eq!(moved.tasks, vec![((0, 0), TaskStatus::Succeeded, 1)]);
        assert_eq!(moved.jobs, vec![(0, JobStatus::Succeeded)]);
    }

    #[test]
    fn a_tasks_first_pending_is_not_reported_and_a_later_one_is() {
        let mut v = View::default();
        let pending = |diff| (((0, 0), (TaskStatus::Pending, 0)), diff);
        let cancelled = |diff| (((0, 0), (TaskStatus::Cancelled, 0)), diff);
        let first = v.absorb(&Changes { task_states: vec![pending(1)], ..Changes::default() }, 0);
        assert!(first.tasks.is_empty(), "the job's admission said it");
        assert_eq!(v.task((0, 0)), Some((TaskStatus::Pending, 0)), "the view still knows it");
        v.absorb(&Changes { task_states: vec![cancelled(1), pending(-1)], ..Changes::default() }, 1);
        // Requeued: back to pending, which the read model must hear.
        let again =
            v.absorb(&Changes { task_states: vec![pending(1), cancelled(-1)], ..Changes::default() }, 2);
        assert_eq!(again.tasks, vec![((0, 0), TaskStatus::Pending, 0)]);
    }

    #[test]
    fn a_job_state_follows_its_tasks_and_marks_and_moves_only_when_it_changes() {
        let mut v = View::default();
        let state = |t, s, diff| (((0, t), (s, 1)), diff);
        let two = Changes {
            task_states: vec![state(0, TaskStatus::Running, 1), state(1, TaskStatus::Pending, 1)],
            ..Changes::default()
        };
        assert_eq!(v.absorb(&two, 0).jobs, vec![(0, JobStatus::Running)]);
        let one_done = Changes {
            task_states: vec![state(0, TaskStatus::Succeeded, 1), state(0, TaskStatus::Running, -1)],
            ..Changes::default()
        };
        assert!(v.absorb(&one_done, 1).jobs.is_empty(), "still running: not moved");
        v.mark_cancelled(0);
        assert_eq!(v.absorb(&Changes::default(), 2).jobs, vec![(0, JobStatus::Cancelled)]);
        assert_eq!(v.job(0), Some(JobStatus::Cancelled));
        v.forget_job(0, 2);
        assert_eq!(v.job(0), None);
        v.mark_expired(1);
        assert_eq!(v.absorb(&Changes::default(), 3).jobs, vec![(1, JobStatus::Failed)]);
    }
}
