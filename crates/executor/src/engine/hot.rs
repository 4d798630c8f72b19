//! Keeps an engine's other threads awake while a step runs. A step is ~2 000 short fork-joins a
//! second; between two of them the rayon workers that helped go to sleep after a few dozen idle
//! rounds, and waking them again takes longer than the work they then do (on 2 cores the
//! engine's threads ran ~82 % of a chat run). Here each other worker spins on the pool's work
//! queues for the length of the step (as ggml's threadpool does), taking every half of a join at
//! once, and returns when the step ends.

use std::sync::atomic::{AtomicBool, Ordering};

/// Run `step` on the current thread of a rayon pool with the pool's other threads spinning for
/// work until it returns.
pub(super) fn with_hot_pool<R: Send>(step: impl FnOnce() -> R + Send) -> R {
    let stepping = AtomicBool::new(true);
    let owner = rayon::current_thread_index();
    rayon::scope(|s| {
        for _ in 1..rayon::current_num_threads() {
            s.spawn(|_| spin(&stepping, owner));
        }
        // Stops the spinners however the step ends (a panic too: the scope would wait forever).
        let _ended = Ended(&stepping);
        step()
    })
}

/// Lowers the flag the spinners watch when dropped.
struct Ended<'a>(&'a AtomicBool);

impl Drop for Ended<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

/// Take pool work until the step ends. On the stepping thread itself (which may run it while it
/// waits in a join), return at once: it must get back to its step.
fn spin(stepping: &AtomicBool, owner: Option<usize>) {
    if rayon::current_thread_index() == owner {
        return;
    }
    while stepping.load(Ordering::Acquire) {
        if rayon::yield_now() != Some(rayon::Yield::Executed) {
            std::hint::spin_loop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rayon::prelude::*;

    /// The step's result comes back, its parallel work runs, and the call returns (the spinners
    /// stop) on pools of one to four threads.
    #[test]
    fn a_step_runs_and_every_spinner_stops() {
        for threads in 1..=4 {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            let sum = pool.install(|| {
                (0..50).map(|_| with_hot_pool(|| (0..10_000u64).into_par_iter().sum::<u64>())).sum::<u64>()
            });
            assert_eq!(sum, 50 * (0..10_000u64).sum::<u64>(), "{threads} threads");
        }
    }

    /// A step that panics stops its spinners and the panic comes out, instead of a hang.
    #[test]
    fn a_panicking_step_stops_its_spinners() {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
        let caught = pool.install(|| std::panic::catch_unwind(|| with_hot_pool(|| panic!("step failed"))));
        assert!(caught.is_err());
    }
}
