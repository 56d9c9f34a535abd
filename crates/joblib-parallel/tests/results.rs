//! Results come back in input order, or each exactly once unordered.

use std::collections::HashSet;

use joblib_parallel::{BatchSize, Parallel, PreDispatch, delayed};

fn squares(n: u64) -> impl Iterator<Item = joblib_parallel::Delayed<fn(u64) -> u64, u64>> {
    (0..n).map(|x| delayed((|x: u64| x * x) as fn(u64) -> u64, x))
}

#[test]
fn run_keeps_input_order() {
    for n_jobs in [1, 2, 3, -1] {
        for n in [0u64, 1, 2, 7, 1000, 20_000] {
            let out = Parallel::new().n_jobs(n_jobs).run(squares(n)).unwrap();
            let expected: Vec<u64> = (0..n).map(|x| x * x).collect();
            assert_eq!(out, expected, "n_jobs={n_jobs} n={n}");
        }
    }
}

#[test]
fn run_keeps_order_with_uneven_tasks() {
    // Later tasks finish first: order must not follow completion.
    let out = Parallel::new()
        .n_jobs(3)
        .batch_size(1)
        .run((0..30u64).map(|i| {
            delayed(
                |i: u64| {
                    std::thread::sleep(std::time::Duration::from_millis((30 - i) % 7));
                    i
                },
                i,
            )
        }))
        .unwrap();
    assert_eq!(out, (0..30).collect::<Vec<_>>());
}

#[test]
fn fixed_batch_sizes_keep_order() {
    for size in [1, 3, 64, 10_000] {
        let out = Parallel::new()
            .n_jobs(2)
            .batch_size(BatchSize::Fixed(size))
            .run(squares(5_001))
            .unwrap();
        assert_eq!(out.len(), 5_001);
        assert!(
            out.iter().enumerate().all(|(i, &v)| v == (i * i) as u64),
            "size {size}"
        );
    }
}

#[test]
fn iter_keeps_input_order() {
    for pre_dispatch in [
        PreDispatch::from(1),
        PreDispatch::default(),
        PreDispatch::All,
    ] {
        let out: Vec<u64> = Parallel::new()
            .n_jobs(2)
            .pre_dispatch(pre_dispatch.clone())
            .iter(squares(3_000))
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            out,
            (0..3_000u64).map(|x| x * x).collect::<Vec<_>>(),
            "{pre_dispatch:?}"
        );
    }
}

#[test]
fn iter_unordered_yields_everything_once() {
    for n_jobs in [1, 2, 4] {
        let out: Vec<u64> = Parallel::new()
            .n_jobs(n_jobs)
            .iter_unordered((0..5_000u64).map(|i| delayed(|i: u64| i, i)))
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(out.len(), 5_000);
        let unique: HashSet<u64> = out.into_iter().collect();
        assert_eq!(unique, (0..5_000).collect());
    }
}

#[test]
fn a_parallel_can_be_called_again() {
    let p = Parallel::new().n_jobs(2).build().unwrap();
    for round in 0..20u64 {
        let out = p
            .run((0..100u64).map(|i| delayed(move |i: u64| i + round, i)))
            .unwrap();
        assert_eq!(out[99], 99 + round);
    }
}

#[test]
fn tasks_may_capture_state() {
    let offset = String::from("task-");
    let out = Parallel::new()
        .n_jobs(2)
        .run((0..3).map(|i| {
            let offset = offset.clone();
            delayed(move |i: i32| format!("{offset}{i}"), i)
        }))
        .unwrap();
    assert_eq!(out, ["task-0", "task-1", "task-2"]);
}

#[test]
fn backends_by_name() {
    let main = std::thread::current().id();
    let seq = Parallel::new()
        .backend("sequential")
        .n_jobs(4)
        .run((0..5).map(|_| delayed(|()| std::thread::current().id(), ())))
        .unwrap();
    assert!(
        seq.iter().all(|&id| id == main),
        "sequential runs in the caller"
    );
    let threaded = Parallel::new()
        .backend("threading")
        .n_jobs(2)
        .run((0..5).map(|_| delayed(|()| std::thread::current().name().map(str::to_owned), ())))
        .unwrap();
    for name in threaded {
        let name = name.unwrap_or_default();
        assert!(name.starts_with("joblib-worker-0-"), "{name}");
    }
}

#[test]
fn n_jobs_one_runs_in_the_caller() {
    let main = std::thread::current().id();
    let ids = Parallel::new()
        .n_jobs(1)
        .run((0..3).map(|_| delayed(|()| std::thread::current().id(), ())))
        .unwrap();
    assert!(ids.iter().all(|&id| id == main));
}

#[test]
fn display_names_n_jobs() {
    assert_eq!(Parallel::new().n_jobs(2).to_string(), "Parallel(n_jobs=2)");
}

#[test]
fn n_jobs_two_runs_two_tasks_at_once() {
    // Each task waits for the other to start: this only finishes well if
    // both run at the same time, on two workers.
    let (tx0, rx0) = std::sync::mpsc::channel::<()>();
    let (tx1, rx1) = std::sync::mpsc::channel::<()>();
    let ends = vec![(tx0, rx1), (tx1, rx0)];
    let met = Parallel::new()
        .n_jobs(2)
        .run(ends.into_iter().map(|(tx, rx)| {
            delayed(
                |(tx, rx): (std::sync::mpsc::Sender<()>, std::sync::mpsc::Receiver<()>)| {
                    tx.send(()).is_ok()
                        && rx.recv_timeout(std::time::Duration::from_secs(30)).is_ok()
                },
                (tx, rx),
            )
        }))
        .unwrap();
    assert_eq!(met, [true, true]);
}

/// Yields `0..n` but claims a length of `claimed` (a size hint is no promise).
struct Claims {
    next: u64,
    n: u64,
    claimed: usize,
}

impl Iterator for Claims {
    type Item = u64;
    fn next(&mut self) -> Option<u64> {
        (self.next < self.n).then(|| {
            self.next += 1;
            self.next - 1
        })
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.claimed.saturating_sub(self.next as usize), None)
    }
}

#[test]
fn run_keeps_order_whatever_the_size_hint_says() {
    // Fewer, more, and no reserved room than the input holds: results past
    // the reserved room arrive in their own vectors and must follow in order.
    for claimed in [0, 1, 333, 5_000, 12_345, 100_000] {
        for size in [
            BatchSize::Auto,
            BatchSize::Fixed(7),
            BatchSize::Fixed(1_000),
        ] {
            let input = Claims {
                next: 0,
                n: 5_000,
                claimed,
            };
            let out = Parallel::new()
                .n_jobs(3)
                .batch_size(size)
                .run(input.map(|x| delayed(|x: u64| x.to_string(), x)))
                .unwrap();
            let expected: Vec<String> = (0..5_000u64).map(|x| x.to_string()).collect();
            assert_eq!(out, expected, "claimed {claimed}, {size:?}");
        }
    }
}

#[test]
fn results_of_a_failed_run_are_dropped_exactly_once() {
    use std::sync::Arc;
    let token = Arc::new(());
    for fail_at in [0u64, 1, 999, 4_000, 9_999] {
        let t = Arc::clone(&token);
        let err = Parallel::new()
            .n_jobs(2)
            .batch_size(BatchSize::Fixed(100))
            .run((0..10_000u64).map(|i| {
                let t = Arc::clone(&t);
                joblib_parallel::try_delayed(
                    move |i: u64| {
                        if i == fail_at {
                            Err(format!("task {i} fails"))
                        } else {
                            Ok(Arc::clone(&t))
                        }
                    },
                    i,
                )
            }))
            .unwrap_err();
        assert!(
            err.to_string().contains(&format!("task {fail_at} fails")),
            "{err}"
        );
        drop(t);
        // Every result held a clone; workers may still be finishing
        // batches of the stopped call, which drop theirs when done.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while Arc::strong_count(&token) > 1 && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        assert_eq!(Arc::strong_count(&token), 1, "fail_at {fail_at}");
    }
}

/// Tasks holding `token` in their results, the one at `fail_at` panicking.
fn panicking_at(
    token: &std::sync::Arc<()>,
    fail_at: u64,
) -> impl Iterator<
    Item = impl joblib_parallel::IntoTask<
        Task = impl joblib_parallel::Task<Output = std::sync::Arc<()>>,
    >,
> {
    let token = std::sync::Arc::clone(token);
    (0..100_000u64).map(move |i| {
        let t = std::sync::Arc::clone(&token);
        delayed(
            move |i: u64| {
                assert!(i != fail_at, "task {i} panics");
                t
            },
            i,
        )
    })
}

#[test]
fn a_panic_in_a_run_of_large_batches_drops_each_result_once() {
    use std::sync::Arc;
    let token = Arc::new(());
    // The first call measures the tasks, so later ones send large batches
    // from the start, written in place a run at a time.
    let p = Parallel::new().n_jobs(2);
    assert_eq!(
        p.run(panicking_at(&token, u64::MAX)).unwrap().len(),
        100_000
    );
    assert_eq!(Arc::strong_count(&token), 1);
    for fail_at in [0u64, 1, 4_095, 50_000, 99_999] {
        let err = p.run(panicking_at(&token, fail_at)).unwrap_err();
        match &err {
            joblib_parallel::Error::Panic { index, message } => {
                assert_eq!(*index, fail_at as usize, "{err}");
                assert!(message.contains(&format!("task {fail_at} panics")), "{err}");
            }
            other => panic!("expected a panic naming task {fail_at}, got {other}"),
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while Arc::strong_count(&token) > 1 && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        assert_eq!(Arc::strong_count(&token), 1, "fail_at {fail_at}");
    }
}
