//! The first failure stops the call and names the task; the pool survives.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use joblib_parallel::{Error, Parallel, delayed, try_delayed};

/// A gate tasks wait at until the test opens it.
#[derive(Clone, Default)]
struct Gate(Arc<AtomicBool>);

impl Gate {
    fn wait(&self) {
        while !self.0.load(Ordering::Acquire) {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    fn open(&self) {
        self.0.store(true, Ordering::Release);
    }
}

#[test]
fn task_error_names_the_task() {
    let err = Parallel::new()
        .n_jobs(2)
        .run((0..100).map(|i| {
            try_delayed(
                |i: i32| {
                    if i == 37 {
                        Err(format!("bad input {i}"))
                    } else {
                        Ok(i)
                    }
                },
                i,
            )
        }))
        .unwrap_err();
    match &err {
        Error::Task { index, source } => {
            assert_eq!(*index, 37);
            assert_eq!(source.to_string(), "bad input 37");
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(err.to_string(), "task 37 failed: bad input 37");
}

#[test]
fn panic_is_caught_with_its_message() {
    let err = Parallel::new()
        .n_jobs(2)
        .run((0..50).map(|i| {
            delayed(
                |i: i32| {
                    if i == 12 {
                        panic!("task twelve exploded");
                    }
                    i
                },
                i,
            )
        }))
        .unwrap_err();
    match err {
        Error::Panic { index, message } => {
            assert_eq!(index, 12);
            assert_eq!(message, "task twelve exploded");
        }
        other => panic!("unexpected {other:?}"),
    }
    // The pool is still usable.
    let out = Parallel::new()
        .n_jobs(2)
        .run((0..10).map(|i| delayed(|i: i32| i, i)))
        .unwrap();
    assert_eq!(out, (0..10).collect::<Vec<_>>());
}

#[test]
fn tasks_after_a_failure_never_start_sequentially() {
    let started = Arc::new(AtomicUsize::new(0));
    let s = Arc::clone(&started);
    let err = Parallel::new()
        .n_jobs(1)
        .batch_size(10)
        .run((0..100).map(move |i| {
            let s = Arc::clone(&s);
            try_delayed(
                move |i: usize| {
                    s.fetch_add(1, Ordering::SeqCst);
                    if i == 3 { Err("stop") } else { Ok(i) }
                },
                i,
            )
        }))
        .unwrap_err();
    assert_eq!(err.index(), Some(3));
    assert_eq!(started.load(Ordering::SeqCst), 4, "tasks 0..=3 only");
}

#[test]
fn tasks_after_a_failure_never_start_on_threads() {
    // n_jobs(3) gets a pool of its own, away from other tests.
    let gate = Gate::default();
    let started = Arc::new(AtomicUsize::new(0));
    let (g, s) = (gate.clone(), Arc::clone(&started));
    let err = Parallel::new()
        .n_jobs(3)
        .batch_size(1)
        .pre_dispatch(4)
        .run((0..1000).map(move |i| {
            let (g, s) = (g.clone(), Arc::clone(&s));
            delayed(
                move |i: usize| {
                    s.fetch_add(1, Ordering::SeqCst);
                    if i == 0 {
                        panic!("first task fails");
                    }
                    g.wait();
                    i
                },
                i,
            )
        }))
        .unwrap_err();
    assert!(matches!(err, Error::Panic { index: 0, .. }), "{err:?}");
    gate.open();
    // Whatever was queued is skipped; run the pool dry with a new call.
    let out = Parallel::new()
        .n_jobs(3)
        .run((0..6).map(|i| delayed(|i: u8| i, i)))
        .unwrap();
    assert_eq!(out, [0, 1, 2, 3, 4, 5]);
    let started = started.load(Ordering::SeqCst);
    assert!(
        started <= 4,
        "{started} tasks started; at most the 4 pre-dispatched may"
    );
}

#[test]
fn iter_yields_earlier_results_before_the_error() {
    let items: Vec<Result<i32, Error>> = Parallel::new()
        .n_jobs(2)
        .batch_size(2)
        .iter(
            (0..20).map(|i| try_delayed(|i: i32| if i == 5 { Err("five") } else { Ok(i * 10) }, i)),
        )
        .collect();
    assert_eq!(items.len(), 6, "0..5 then the error, then the end");
    for (i, item) in items[..5].iter().enumerate() {
        assert_eq!(*item.as_ref().unwrap(), i as i32 * 10);
    }
    assert!(matches!(items[5], Err(Error::Task { index: 5, .. })));
}

#[test]
fn iter_unordered_stops_at_the_error() {
    let items: Vec<Result<i32, Error>> = Parallel::new()
        .n_jobs(2)
        .iter_unordered(
            (0..200).map(|i| try_delayed(|i: i32| if i == 150 { Err("no") } else { Ok(i) }, i)),
        )
        .collect();
    let errors: Vec<_> = items.iter().filter(|r| r.is_err()).collect();
    assert_eq!(errors.len(), 1);
    assert!(items.last().unwrap().is_err(), "the error comes last");
    assert!(matches!(errors[0], Err(Error::Task { index: 150, .. })));
}

#[test]
fn input_errors_reach_the_caller() {
    let input = (0..10).map(|i| {
        if i == 6 {
            Err(std::io::Error::other("disk gone"))
        } else {
            Ok(delayed(|i: i32| i, i))
        }
    });
    let err = Parallel::new().n_jobs(2).run(input.clone()).unwrap_err();
    match &err {
        Error::Input { index, source } => {
            assert_eq!(*index, 6);
            assert_eq!(source.to_string(), "disk gone");
        }
        other => panic!("unexpected {other:?}"),
    }
    let items: Vec<_> = Parallel::new()
        .n_jobs(2)
        .batch_size(1)
        .iter(input)
        .collect();
    assert_eq!(items.len(), 7);
    assert!(
        items[..6]
            .iter()
            .enumerate()
            .all(|(i, r)| *r.as_ref().unwrap() == i as i32)
    );
    assert!(matches!(items[6], Err(Error::Input { index: 6, .. })));
}

#[test]
fn input_panics_reach_the_caller() {
    let input = (0..10).map(|i| {
        assert!(i != 4, "cannot make task {i}");
        delayed(|i: i32| i, i)
    });
    let err = Parallel::new().n_jobs(2).run(input).unwrap_err();
    match err {
        Error::InputPanic { index, message } => {
            assert_eq!(index, 4);
            assert_eq!(message, "cannot make task 4");
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn timeout_names_the_task_and_keeps_earlier_results() {
    let gate = Gate::default();
    let g = gate.clone();
    let items: Vec<Result<usize, Error>> = Parallel::new()
        .n_jobs(2)
        .timeout(Duration::from_millis(50))
        .iter((0..6).map(move |i| {
            let g = g.clone();
            delayed(
                move |i: usize| {
                    if i == 2 {
                        g.wait();
                    }
                    i
                },
                i,
            )
        }))
        .collect();
    gate.open();
    assert_eq!(items.len(), 3, "{items:?}");
    assert_eq!(*items[0].as_ref().unwrap(), 0);
    assert_eq!(*items[1].as_ref().unwrap(), 1);
    match &items[2] {
        Err(Error::Timeout { index, timeout }) => {
            assert_eq!(*index, 2);
            assert_eq!(*timeout, Duration::from_millis(50));
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn timeout_in_run() {
    let gate = Gate::default();
    let g = gate.clone();
    let err = Parallel::new()
        .n_jobs(2)
        .timeout(Duration::from_millis(20))
        .run((0..4).map(move |i| {
            let g = g.clone();
            delayed(
                move |i: usize| {
                    if i == 3 {
                        g.wait();
                    }
                    i
                },
                i,
            )
        }))
        .unwrap_err();
    gate.open();
    assert!(matches!(err, Error::Timeout { index: 3, .. }), "{err:?}");
    assert!(
        err.to_string()
            .starts_with("task 3 did not finish within the timeout"),
        "{err}"
    );
}

#[test]
fn dropping_iter_early_skips_queued_tasks() {
    let started = Arc::new(AtomicUsize::new(0));
    let s = Arc::clone(&started);
    {
        let mut it = Parallel::new()
            .n_jobs(1)
            .batch_size(5)
            .iter((0..1000).map(move |i| {
                let s = Arc::clone(&s);
                delayed(
                    move |i: usize| {
                        s.fetch_add(1, Ordering::SeqCst);
                        i
                    },
                    i,
                )
            }));
        assert_eq!(it.next().unwrap().unwrap(), 0);
    }
    // Sequential: the first pre_dispatch (2) batches of 5 ran, nothing more.
    assert_eq!(started.load(Ordering::SeqCst), 10);
}
