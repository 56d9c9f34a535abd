//! Auto-batching and lazy consumption of the input.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use joblib_parallel::{Batch, BoxError, Parallel, ParallelBackend, ThreadBackend, delayed};

/// Records the size of every batch and runs it on the thread backend.
#[derive(Default)]
struct Recording {
    sizes: Mutex<Vec<usize>>,
}

impl ParallelBackend for Recording {
    fn name(&self) -> &str {
        "recording"
    }
    fn submit(&self, batch: Batch) -> Result<(), BoxError> {
        self.sizes.lock().unwrap().push(batch.len());
        ThreadBackend.submit(batch)
    }
    fn target_batch_duration(&self) -> Duration {
        Duration::from_millis(10)
    }
}

fn record(p: Parallel, n: usize, task_sleep: Duration) -> Vec<usize> {
    let backend = Arc::new(Recording::default());
    let out = p
        .backend(Arc::clone(&backend) as Arc<dyn ParallelBackend>)
        .run((0..n).map(|i| {
            delayed(
                move |i: usize| {
                    if !task_sleep.is_zero() {
                        std::thread::sleep(task_sleep);
                    }
                    i
                },
                i,
            )
        }))
        .unwrap();
    assert_eq!(out, (0..n).collect::<Vec<_>>());
    let sizes = backend.sizes.lock().unwrap().clone();
    assert_eq!(sizes.iter().sum::<usize>(), n);
    sizes
}

#[test]
fn tiny_tasks_are_batched() {
    let sizes = record(Parallel::new().n_jobs(2), 1_000_000, Duration::ZERO);
    assert_eq!(
        sizes[0], 1,
        "the first batch is a single task, to measure it"
    );
    assert!(
        sizes.len() < 200,
        "{} batches for a million tasks",
        sizes.len()
    );
    assert!(*sizes.iter().max().unwrap() >= 10_000, "{sizes:?}");
}

#[test]
fn slow_tasks_are_not_batched() {
    // Each task sleeps longer than the 10 ms batch target.
    let sizes = record(Parallel::new().n_jobs(2), 12, Duration::from_millis(15));
    assert!(sizes.iter().all(|&s| s == 1), "{sizes:?}");
}

#[test]
fn fixed_batch_size_is_kept() {
    let sizes = record(Parallel::new().n_jobs(2).batch_size(7), 100, Duration::ZERO);
    assert_eq!(sizes.len(), 15);
    assert!(sizes[..14].iter().all(|&s| s == 7));
    assert_eq!(sizes[14], 2);
}

#[test]
fn the_batch_size_jumps_after_the_first_measure() {
    let sizes = record(
        Parallel::new().n_jobs(2).pre_dispatch(1),
        100_000,
        Duration::ZERO,
    );
    // One batch in flight at a time: the second is sized from the first.
    assert_eq!(sizes[0], 1);
    assert!(sizes[1] > 100, "{sizes:?}");
}

#[test]
fn endless_input_with_take_reads_boundedly() {
    let pulled = Arc::new(AtomicUsize::new(0));
    let p = Arc::clone(&pulled);
    let endless = (0u64..).map(move |i| {
        p.fetch_add(1, Ordering::SeqCst);
        delayed(|i: u64| i * 2, i)
    });
    let first: Vec<u64> = Parallel::new()
        .n_jobs(2)
        .batch_size(1)
        .pre_dispatch(4)
        .iter(endless)
        .take(10)
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(first, (0..10).map(|i| i * 2).collect::<Vec<_>>());
    let pulled = pulled.load(Ordering::SeqCst);
    assert!(pulled <= 10 + 4, "{pulled} tasks read for 10 results");
}

#[test]
fn endless_input_with_auto_batches_terminates() {
    let first: Vec<u64> = Parallel::new()
        .n_jobs(2)
        .iter((0u64..).map(|i| delayed(|i: u64| i + 1, i)))
        .take(100_000)
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(first.len(), 100_000);
    assert_eq!(first[99_999], 100_000);
}

#[test]
fn run_reads_at_most_pre_dispatch_ahead() {
    // Each task reports how many inputs had been read when it ran; with one
    // batch of one task in flight, that is never more than one ahead.
    let pulled = Arc::new(AtomicUsize::new(0));
    let p = Arc::clone(&pulled);
    let seen = Parallel::new()
        .n_jobs(2)
        .batch_size(1)
        .pre_dispatch(1)
        .run((0..50usize).map(move |i| {
            p.fetch_add(1, Ordering::SeqCst);
            let p = Arc::clone(&p);
            delayed(move |i: usize| p.load(Ordering::SeqCst) - i, i)
        }))
        .unwrap();
    assert!(seen.iter().all(|&ahead| ahead == 1), "{seen:?}");
}

/// `n` tasks returning their index, of one task type for every call.
fn identity(n: usize) -> impl Iterator<Item = joblib_parallel::Delayed<fn(usize) -> usize, usize>> {
    (0..n).map(|i| delayed((|i| i) as fn(usize) -> usize, i))
}

#[test]
fn a_later_call_of_the_same_tasks_starts_from_the_time_measured() {
    let backend = Arc::new(Recording::default());
    let p = Parallel::new()
        .n_jobs(2)
        .backend(Arc::clone(&backend) as Arc<dyn ParallelBackend>);
    let run = |p: &Parallel| {
        let out = p.run(identity(100_000)).unwrap();
        assert_eq!(out, (0..100_000).collect::<Vec<_>>());
        std::mem::take(&mut *backend.sizes.lock().unwrap())
    };
    let first = run(&p);
    assert_eq!(first[0], 1, "{first:?}");
    // Sized from the first call's measure: no one-task batch at all.
    let second = run(&p);
    assert!(second.iter().all(|&s| s > 1), "{second:?}");
    assert_eq!(second.iter().sum::<usize>(), 100_000);
    // Other tasks are measured anew.
    let other = p
        .run((0..1_000usize).map(|i| delayed(|i: usize| i + 1, i)))
        .unwrap();
    assert_eq!(other[999], 1_000);
    assert_eq!(std::mem::take(&mut *backend.sizes.lock().unwrap())[0], 1);
    // So are the same tasks once a setting changed.
    let p = p.pre_dispatch("3*n_jobs");
    assert_eq!(run(&p)[0], 1);
}

#[test]
fn tasks_slower_than_last_time_still_go_to_every_worker() {
    fn nap((i, ms): (usize, u64)) -> usize {
        std::thread::sleep(Duration::from_millis(ms));
        i
    }
    let tasks =
        |n: usize, ms: u64| (0..n).map(move |i| delayed(nap as fn((usize, u64)) -> usize, (i, ms)));
    let backend = Arc::new(Recording::default());
    let p = Parallel::new()
        .n_jobs(2)
        .backend(Arc::clone(&backend) as Arc<dyn ParallelBackend>);
    assert_eq!(p.run(tasks(10_000, 0)).unwrap().len(), 10_000);
    backend.sizes.lock().unwrap().clear();
    // The kept time says these take nanoseconds, and would fit in one batch.
    let out = p.run(tasks(8, 20)).unwrap();
    assert_eq!(out, (0..8).collect::<Vec<_>>());
    let sizes = backend.sizes.lock().unwrap().clone();
    assert!(
        sizes.len() >= 2 && sizes.iter().all(|&s| s <= 4),
        "{sizes:?}"
    );
    // An input of unknown length measures them anew.
    backend.sizes.lock().unwrap().clear();
    let unknown = tasks(8, 1).filter(|_| true);
    assert_eq!(p.run(unknown).unwrap().len(), 8);
    assert_eq!(backend.sizes.lock().unwrap()[0], 1);
}
