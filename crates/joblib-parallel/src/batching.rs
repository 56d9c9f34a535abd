//! Auto-batching: how many tasks to put in the next batch.
//!
//! joblib starts at one task per batch and doubles while batches are
//! shorter than its target, which takes twenty round trips to reach a
//! million-task batch. Here the first batch of one task is timed and the
//! size jumps straight to what the target duration calls for; later batches
//! refine a smoothed per-task estimate, and a `Parallel` keeps it for its
//! next call of the same tasks ([`Timings`]), which then sends no one-task
//! batch. Near the end of a known-length input batches shrink so that all
//! workers finish together, but never below a hundredth of the target,
//! where the cost of a batch would show, and the last round is split evenly.

use std::any::TypeId;
use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use crate::config::BatchSize;

/// Largest automatic batch: bounds the memory a call holds ahead
/// (`pre_dispatch` batches of this many tasks) on an endless input.
pub(crate) const MAX_AUTO_BATCH: usize = 1 << 16;

/// The time per task measured by the calls of one `Parallel`, by task type
/// and backend, so that a later call of the same tasks sizes its first
/// batches from it instead of sending one-task batches to measure them
/// again (joblib's backend keeps its batch size across the calls of a
/// `with Parallel(...)` block in the same way).
#[derive(Debug, Default)]
pub(crate) struct Timings(Mutex<HashMap<(TypeId, String), f64>>);

impl Timings {
    /// The time per task last measured for tasks of type `task` on `backend`.
    pub(crate) fn get(&self, task: TypeId, backend: &str) -> Option<f64> {
        // A poisoned lock only means a panic while inserting; the map is intact.
        let map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        map.get(&(task, backend.to_owned())).copied()
    }

    /// Records the time per task a call measured.
    pub(crate) fn record(&self, task: TypeId, backend: &str, per_task: f64) {
        let mut map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        map.insert((task, backend.to_owned()), per_task);
    }
}

#[derive(Debug, Clone)]
pub(crate) struct BatchSizer {
    fixed: Option<usize>,
    /// Smoothed seconds per task, once measured.
    per_task: Option<f64>,
    /// Size of the batch last measured.
    measured_len: usize,
    /// `per_task` comes from an earlier call, not yet from this one.
    inherited: bool,
    /// The size of each batch of the last round, once it started.
    last_round: Option<usize>,
    target: f64,
    workers: usize,
}

impl BatchSizer {
    /// A sizer for one call; `known` is the time per task an earlier call
    /// measured for the same tasks, if any, used until this call measures
    /// its own (its first measurement replaces it).
    pub(crate) fn new(
        size: BatchSize,
        target: Duration,
        workers: usize,
        known: Option<f64>,
    ) -> Self {
        let fixed = match size {
            BatchSize::Fixed(n) => Some(n.max(1)),
            BatchSize::Auto => None,
        };
        let per_task = known.filter(|p| fixed.is_none() && p.is_finite() && *p > 0.0);
        BatchSizer {
            fixed,
            per_task,
            measured_len: 0,
            inherited: per_task.is_some(),
            last_round: None,
            target: target.as_secs_f64().max(1e-6),
            workers: workers.max(1),
        }
    }

    /// Size of the next batch, given the input's known remaining length (the
    /// lower bound of its `size_hint`; 0 when unknown).
    pub(crate) fn next_size(&mut self, remaining: usize) -> usize {
        if let Some(n) = self.fixed {
            return n;
        }
        if let Some(share) = self.last_round {
            return share;
        }
        let per_task = match self.per_task {
            // A time kept from an earlier call is trusted only with a known
            // length, where batches stay within a quarter of what is left
            // (so that tasks much slower this time cost at most a static
            // split); an endless input measures its tasks anew.
            Some(_) if self.inherited && remaining == 0 => return 1,
            Some(per_task) => per_task,
            None => return 1,
        };
        let ideal = (self.target / per_task).max(1.0);
        let floor = (self.target / 100.0 / per_task).max(1.0);
        let size = if remaining > 0 {
            let remaining = remaining as f64;
            let workers = self.workers as f64;
            // Enough batches left for every worker to get about two.
            let size = (remaining / (2.0 * workers)).clamp(floor, ideal);
            // The last round, once batches are down to the floor: what is
            // left split evenly, one batch per worker, rather than batches
            // at the floor and a short one after them (never past the
            // target duration, for tasks slower than it; each worker's share
            // at least half the floor's time, else one batch is cheaper
            // than the hand-over of a second; a time kept from an earlier
            // call always splits, in case the tasks are slower this time).
            let share = (remaining / workers).ceil();
            let worth_it = self.inherited || share * per_task * 2.0 >= self.target / 100.0;
            if remaining <= 2.0 * floor * workers && share <= ideal && worth_it {
                self.last_round = Some((share as usize).clamp(1, MAX_AUTO_BATCH));
                share
            } else {
                size
            }
        } else {
            ideal
        };
        // `as` saturates for floats; the clamp keeps it in range anyway.
        (size as usize).clamp(1, MAX_AUTO_BATCH)
    }

    /// How many tasks a worker may run between two checks for an aborted
    /// call: about 20 us of work, so that checking costs nothing for tiny
    /// tasks and a slow task never starts after an abort.
    pub(crate) fn check_every(&self) -> usize {
        match self.per_task {
            None => 1,
            Some(per_task) => ((20e-6 / per_task) as usize).clamp(1, 4096),
        }
    }

    /// Records that a batch of `len` tasks ran in `elapsed`.
    pub(crate) fn observe(&mut self, len: usize, elapsed: Duration) {
        if len == 0 {
            return;
        }
        // Clock resolution: no task is taken to be faster than a nanosecond.
        let sample = (elapsed.as_secs_f64() / len as f64).max(1e-9);
        self.per_task = Some(match self.per_task {
            // joblib's smoothing between batches of similar size, so that one
            // odd batch does not swing the size; a batch much larger than the
            // last one measured is a far better measure, and replaces it.
            Some(old) if len <= 2 * self.measured_len => 0.8 * old + 0.2 * sample,
            _ => sample,
        });
        self.measured_len = len;
        self.inherited = false;
    }

    /// The smoothed time per task, once known.
    pub(crate) fn per_task(&self) -> Option<f64> {
        self.per_task
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn fixed_size_never_changes() {
        let mut s = BatchSizer::new(BatchSize::Fixed(7), 10 * MS, 2, Some(1e-3));
        assert_eq!(s.next_size(1000), 7);
        s.observe(7, Duration::from_nanos(7));
        assert_eq!(s.next_size(1000), 7);
        assert_eq!(s.per_task(), Some(1e-9));
    }

    #[test]
    fn starts_at_one_then_jumps() {
        let mut s = BatchSizer::new(BatchSize::Auto, 10 * MS, 2, None);
        assert_eq!(s.next_size(1_000_000), 1);
        // A 100 ns task: 10 ms is 100,000 tasks, capped.
        s.observe(1, Duration::from_nanos(100));
        assert_eq!(s.next_size(0), MAX_AUTO_BATCH);
        assert_eq!(s.next_size(1_000_000), MAX_AUTO_BATCH);
    }

    #[test]
    fn slow_tasks_stay_alone() {
        let mut s = BatchSizer::new(BatchSize::Auto, 200 * MS, 2, None);
        s.observe(1, Duration::from_millis(250));
        assert_eq!(s.next_size(7), 1);
        assert_eq!(s.next_size(0), 1);
    }

    #[test]
    fn aims_at_the_target_duration() {
        let mut s = BatchSizer::new(BatchSize::Auto, 200 * MS, 2, None);
        s.observe(1, Duration::from_millis(1));
        assert_eq!(s.next_size(0), 200);
        assert_eq!(s.next_size(100_000), 200);
    }

    #[test]
    fn balances_the_tail_down_to_a_floor() {
        let mut s = BatchSizer::new(BatchSize::Auto, 10 * MS, 2, None);
        s.observe(1, Duration::from_micros(1));
        // ideal 10,000; 4,000 left over 2 workers: 1,000 per batch.
        assert_eq!(s.next_size(4_000), 1_000);
        // The floor is 1% of the target: 100 tasks of 1 us.
        assert_eq!(s.next_size(40), 100);
    }

    #[test]
    fn the_last_round_is_split_evenly() {
        let mut s = BatchSizer::new(BatchSize::Auto, 10 * MS, 2, None);
        s.observe(1_000, Duration::from_micros(10));
        // The floor is 100 us, 10,000 tasks: 10,000 left go as 2 x 5,000
        // rather than all in one batch.
        // Far from the end, batches of a quarter of what is left, down to
        // the floor; the last round starts at two floors per worker.
        assert_eq!(s.next_size(100_000), 25_000);
        assert_eq!(s.next_size(40_001), 10_000);
        assert_eq!(s.clone().next_size(40_000), 20_000);
        // Too little work to be worth two batches: one takes it all.
        assert_eq!(s.next_size(4_000), 10_000);
        let mut round = s.clone();
        assert_eq!(round.next_size(15_001), 7_501);
        // The round goes on at that size: 7,500 left is one batch.
        assert_eq!(round.next_size(7_500), 7_501);
        assert_eq!(s.next_size(10_000), 5_000);
        assert_eq!(s.next_size(5_000), 5_000);
    }

    #[test]
    fn a_known_time_per_task_skips_the_measuring_batch() {
        let mut s = BatchSizer::new(BatchSize::Auto, 10 * MS, 2, Some(1e-6));
        assert_eq!(s.next_size(100_000), 10_000);
        // Not trusted for an input of unknown length.
        assert_eq!(s.next_size(0), 1);
        // Split among the workers even when it looks too little to be
        // worth it: the tasks may be slower this time.
        assert_eq!(s.clone().next_size(100), 50);
        // The call's first measurement replaces it, whatever its size.
        s.observe(10, Duration::from_micros(100));
        assert_eq!(s.per_task(), Some(1e-5));
        // 10 ms of 10 us tasks (give or take the rounding).
        assert!((999..=1_000).contains(&s.next_size(0)));
        assert_eq!(s.next_size(100), 25);
        // Nonsense is not trusted.
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert_eq!(
                BatchSizer::new(BatchSize::Auto, 10 * MS, 2, Some(bad)).next_size(1_000),
                1
            );
        }
    }

    #[test]
    fn abort_checks_every_20_us() {
        let mut s = BatchSizer::new(BatchSize::Auto, 10 * MS, 1, None);
        assert_eq!(s.check_every(), 1);
        s.observe(1, Duration::from_micros(2));
        assert_eq!(s.check_every(), 10);
        let mut slow = BatchSizer::new(BatchSize::Fixed(10), 10 * MS, 1, None);
        slow.observe(10, Duration::from_secs(1));
        assert_eq!(slow.check_every(), 1);
    }

    #[test]
    fn smooths_measurements() {
        let mut s = BatchSizer::new(BatchSize::Auto, 10 * MS, 1, None);
        s.observe(10, Duration::from_micros(10));
        s.observe(10, Duration::from_micros(60));
        let p = s.per_task().unwrap();
        assert!((p - 2e-6).abs() < 1e-12, "{p}");
        // A batch 100 times larger replaces the estimate.
        s.observe(1000, Duration::from_micros(500));
        let p = s.per_task().unwrap();
        assert!((p - 0.5e-6).abs() < 1e-12, "{p}");
    }
}
