//! Per-task values in a dense table. Jobs are numbered in admission order and tasks within their
//! job, so a task's slot is two index steps away and tasks admitted together sit together in
//! memory: a replay's working set (the jobs running now) stays in cache, where a hash map over
//! every task ever admitted made nearly each access a cache miss.

use super::job_table::JobTable;
use crate::model::{Job, Tk};

#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct TaskMap<V> {
    #[serde(bound(serialize = "V: serde::Serialize", deserialize = "V: serde::Deserialize<'de>"))]
    jobs: JobTable<Vec<Option<V>>>,
}

impl<V> Default for TaskMap<V> {
    fn default() -> Self {
        Self { jobs: JobTable::default() }
    }
}

impl<V> TaskMap<V> {
    pub fn get(&self, tk: &Tk) -> Option<&V> {
        self.jobs.get(tk.0 as usize)?.get(tk.1 as usize)?.as_ref()
    }

    pub fn get_mut(&mut self, tk: &Tk) -> Option<&mut V> {
        self.jobs.get_mut(tk.0 as usize)?.get_mut(tk.1 as usize)?.as_mut()
    }

    pub fn insert(&mut self, tk: Tk, value: V) -> Option<V> {
        let (job, task) = (tk.0 as usize, tk.1 as usize);
        let tasks = self.jobs.slot(job);
        if tasks.len() <= task {
            tasks.resize_with(task + 1, || None);
        }
        tasks[task].replace(value)
    }

    pub fn remove(&mut self, tk: &Tk) -> Option<V> {
        self.jobs.get_mut(tk.0 as usize)?.get_mut(tk.1 as usize)?.take()
    }

    /// Drop every value of `job`'s tasks (its slot stays, empty).
    pub fn remove_job(&mut self, job: Job) {
        self.jobs.take(job as usize);
    }

    /// The values of `job`'s tasks, in task order.
    pub fn of_job(&self, job: Job) -> impl Iterator<Item = (Tk, &V)> {
        let tasks = self.jobs.get(job as usize).map(Vec::as_slice).unwrap_or_default();
        tasks.iter().enumerate().filter_map(move |(t, v)| Some(((job, t as u32), v.as_ref()?)))
    }

    /// Every value, in (job, task) order (the tests read the whole map back with it).
    #[cfg(test)]
    pub fn iter(&self) -> impl Iterator<Item = (Tk, &V)> {
        self.jobs.iter().flat_map(|(job, _)| self.of_job(job as Job))
    }
}

#[cfg(test)]
mod tests {
    use super::TaskMap;

    #[test]
    fn behaves_like_a_map_in_task_order() {
        let mut m = TaskMap::default();
        assert_eq!(m.insert((2, 3), "a"), None);
        assert_eq!(m.insert((0, 1), "b"), None);
        assert_eq!(m.insert((2, 3), "c"), Some("a"));
        assert_eq!(m.get(&(2, 3)), Some(&"c"));
        assert_eq!(m.get(&(2, 2)), None);
        assert_eq!(m.get(&(9, 0)), None);
        assert!(m.get(&(0, 1)).is_some());
        m.insert((1, 0), "e");
        assert_eq!(m.iter().collect::<Vec<_>>(), vec![((0, 1), &"b"), ((1, 0), &"e"), ((2, 3), &"c")]);
        assert_eq!(m.of_job(2).collect::<Vec<_>>(), vec![((2, 3), &"c")]);
        assert_eq!(m.remove(&(0, 1)), Some("b"));
        assert_eq!(m.remove(&(0, 1)), None);
        assert_eq!(m.remove(&(7, 7)), None);
        if let Some(v) = m.get_mut(&(1, 0)) {
            *v = "f";
        }
        assert_eq!(m.iter().map(|(_, v)| *v).collect::<Vec<_>>(), vec!["f", "c"]);
    }
}
