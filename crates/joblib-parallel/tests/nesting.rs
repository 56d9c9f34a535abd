//! A `Parallel` inside a task does not oversubscribe the machine.

use joblib_parallel::{Parallel, cpu_count, delayed, nesting_level};

fn thread_name() -> String {
    std::thread::current().name().unwrap_or("").to_owned()
}

/// For each outer task: (its nesting level, the inner tasks' levels and
/// thread names).
type Report = (usize, Vec<(usize, String)>);

fn inner_report(inner: Parallel) -> Report {
    let level = nesting_level();
    let inner = inner
        .run((0..4).map(|_| delayed(|()| (nesting_level(), thread_name()), ())))
        .unwrap();
    (level, inner)
}

#[test]
fn top_level_is_level_zero() {
    assert_eq!(nesting_level(), 0);
}

#[test]
fn level_one_gets_its_share_of_threads() {
    // An outer sequential call (one worker) leaves all CPUs to the inner one.
    let reports = Parallel::new()
        .n_jobs(1)
        .run((0..2).map(|_| delayed(|()| inner_report(Parallel::new()), ())))
        .unwrap();
    for (level, inner) in reports {
        assert_eq!(level, 1);
        for (inner_level, name) in inner {
            assert_eq!(inner_level, 2);
            if cpu_count() > 1 {
                assert!(name.starts_with("joblib-worker-1-"), "{name}");
            }
        }
    }
}

#[test]
fn level_one_under_full_threads_runs_sequentially() {
    let workers = cpu_count().max(2);
    let reports = Parallel::new()
        .n_jobs(i32::try_from(workers).unwrap())
        .backend("threads")
        .run((0..4).map(|_| delayed(|()| (thread_name(), inner_report(Parallel::new())), ())))
        .unwrap();
    for (outer_name, (level, inner)) in reports {
        assert_eq!(level, 1);
        // cpu_count / workers <= 1: the inner call runs in the outer task.
        for (_, name) in inner {
            assert_eq!(name, outer_name);
        }
    }
}

#[test]
fn level_two_runs_sequentially() {
    let reports = Parallel::new()
        .n_jobs(1)
        .run((0..2).map(|_| {
            delayed(
                |()| {
                    Parallel::new()
                        .run((0..2).map(|_| {
                            delayed(|()| (thread_name(), inner_report(Parallel::new())), ())
                        }))
                        .unwrap()
                },
                (),
            )
        }))
        .unwrap();
    for level_one in reports {
        for (outer_name, (level, inner)) in level_one {
            assert_eq!(level, 2);
            for (inner_level, name) in inner {
                assert_eq!(inner_level, 3);
                assert_eq!(name, outer_name, "level 2 runs in its caller");
            }
        }
    }
}

#[test]
fn explicit_settings_win_and_do_not_deadlock() {
    // Threads in threads, both explicit, more inner work than workers: the
    // inner calls use a pool of their own level, so they cannot starve.
    let sums = Parallel::new()
        .n_jobs(2)
        .backend("threads")
        .run((0..4u64).map(|i| {
            delayed(
                |i: u64| {
                    let inner = Parallel::new()
                        .n_jobs(2)
                        .backend("threads")
                        .run((0..50u64).map(|j| delayed(|j: u64| (j, thread_name()), j)))
                        .unwrap();
                    assert!(
                        inner.iter().all(|(_, n)| n.starts_with("joblib-worker-1-")),
                        "{inner:?}"
                    );
                    i * 1000 + inner.iter().map(|(j, _)| j).sum::<u64>()
                },
                i,
            )
        }))
        .unwrap();
    assert_eq!(sums, [1225, 2225, 3225, 4225]);
}
