//! parallel_config scopes, registered backends, and configuration errors.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use joblib_parallel::{
    Batch, BoxError, Error, Parallel, ParallelBackend, Prefer, Require, SequentialBackend,
    ThreadBackend, delayed, parallel_config, register_backend,
};

fn thread_ids(p: &Parallel) -> Vec<std::thread::ThreadId> {
    p.run((0..4).map(|_| delayed(|()| std::thread::current().id(), ())))
        .unwrap()
}

#[test]
fn config_applies_within_its_scope_only() {
    let me = std::thread::current().id();
    let inside = parallel_config()
        .backend("sequential")
        .scope(|| thread_ids(&Parallel::new().n_jobs(2)));
    assert!(inside.iter().all(|&id| id == me));
    let outside = thread_ids(&Parallel::new().n_jobs(2));
    assert!(outside.iter().all(|&id| id != me));
}

#[test]
fn explicit_arguments_beat_the_config() {
    let me = std::thread::current().id();
    let ids = parallel_config()
        .backend("sequential")
        .scope(|| thread_ids(&Parallel::new().backend("threads").n_jobs(2)));
    assert!(ids.iter().all(|&id| id != me));
    // n_jobs from the config: 1 means sequential.
    let ids = parallel_config()
        .n_jobs(1)
        .scope(|| thread_ids(&Parallel::new()));
    assert!(ids.iter().all(|&id| id == me));
}

#[test]
fn config_errors_surface_at_the_call() {
    let err = parallel_config()
        .n_jobs(0)
        .scope(|| Parallel::new().run((0..1).map(|i| delayed(|i: i32| i, i))))
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidConfig {
                option: "n_jobs",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn invalid_settings_are_errors_not_panics() {
    let one = || (0..1).map(|i| delayed(|i: i32| i, i));
    let cases: Vec<(Parallel, &str)> = vec![
        (Parallel::new().n_jobs(0), "n_jobs"),
        (Parallel::new().batch_size(0), "batch_size"),
        (Parallel::new().pre_dispatch("3*cores"), "pre_dispatch"),
        (Parallel::new().pre_dispatch(0), "pre_dispatch"),
        (
            Parallel::new().timeout(std::time::Duration::ZERO),
            "timeout",
        ),
    ];
    for (p, option) in cases {
        match p.run(one()) {
            Err(Error::InvalidConfig { option: o, reason }) => {
                assert_eq!(o, option);
                assert!(!reason.is_empty());
            }
            other => panic!("{option}: {other:?}"),
        }
        let first = p.iter(one()).next().unwrap();
        assert!(
            matches!(first, Err(Error::InvalidConfig { .. })),
            "{first:?}"
        );
        assert!(p.build().is_err());
    }
    let err = Parallel::new().backend("no-such").run(one()).unwrap_err();
    assert!(matches!(err, Error::UnknownBackend { .. }));
    assert!(err.to_string().contains("\"no-such\""), "{err}");
}

/// Counts batches and runs them on the thread backend.
struct Counting {
    batches: AtomicUsize,
}

impl ParallelBackend for Counting {
    fn name(&self) -> &str {
        "counting"
    }
    fn submit(&self, batch: Batch) -> Result<(), BoxError> {
        self.batches.fetch_add(1, Ordering::SeqCst);
        ThreadBackend.submit(batch)
    }
}

#[test]
fn registered_backends_are_used_by_name() {
    static FACTORY_CALLS: AtomicUsize = AtomicUsize::new(0);
    static BACKEND: std::sync::OnceLock<Arc<Counting>> = std::sync::OnceLock::new();
    let backend = BACKEND.get_or_init(|| {
        Arc::new(Counting {
            batches: AtomicUsize::new(0),
        })
    });
    register_backend("config-test-counting", || {
        FACTORY_CALLS.fetch_add(1, Ordering::SeqCst);
        Ok(Arc::clone(BACKEND.get().ok_or("not initialised")?) as Arc<dyn ParallelBackend>)
    })
    .unwrap();
    let p = Parallel::new()
        .backend("config-test-counting")
        .n_jobs(2)
        .batch_size(10);
    for _ in 0..3 {
        let out = p.run((0..100).map(|i| delayed(|i: i32| -i, i))).unwrap();
        assert_eq!(out[99], -99);
    }
    assert_eq!(
        FACTORY_CALLS.load(Ordering::SeqCst),
        1,
        "one backend per Parallel"
    );
    assert_eq!(backend.batches.load(Ordering::SeqCst), 30);
    // Also through a config scope.
    let out = parallel_config()
        .backend("config-test-counting")
        .scope(|| {
            Parallel::new()
                .n_jobs(2)
                .batch_size(50)
                .run((0..100).map(|i| delayed(|i: i32| i, i)))
        })
        .unwrap();
    assert_eq!(out.len(), 100);
    assert_eq!(backend.batches.load(Ordering::SeqCst), 32);
}

#[test]
fn backend_values_are_accepted() {
    let out = Parallel::new()
        .backend(SequentialBackend)
        .run((0..3).map(|i| delayed(|i: i32| i * 3, i)))
        .unwrap();
    assert_eq!(out, [0, 3, 6]);
    let shared: Arc<dyn ParallelBackend> = Arc::new(ThreadBackend);
    let out = Parallel::new()
        .backend(Arc::clone(&shared))
        .n_jobs(2)
        .run((0..3).map(|i| delayed(|i: i32| i * 3, i)))
        .unwrap();
    assert_eq!(out, [0, 3, 6]);
}

/// Pretends to run tasks in other processes.
struct FakeProcesses;

impl ParallelBackend for FakeProcesses {
    fn name(&self) -> &str {
        "fake-processes"
    }
    fn supports_shared_memory(&self) -> bool {
        false
    }
    fn submit(&self, batch: Batch) -> Result<(), BoxError> {
        batch.run();
        Ok(())
    }
}

#[test]
fn require_shared_mem_refuses_other_processes() {
    let err = Parallel::new()
        .backend(FakeProcesses)
        .require(Require::SharedMem)
        .run((0..2).map(|i| delayed(|i: i32| i, i)))
        .unwrap_err();
    match err {
        Error::InvalidConfig { option, reason } => {
            assert_eq!(option, "require");
            assert!(reason.contains("fake-processes"), "{reason}");
        }
        other => panic!("unexpected {other:?}"),
    }
    // Preferring processes when none are registered falls back to threads.
    let me = std::thread::current().id();
    let ids = thread_ids(&Parallel::new().n_jobs(2).prefer(Prefer::Processes));
    assert!(ids.iter().all(|&id| id != me));
}

/// Refuses every batch.
struct Refusing;

impl ParallelBackend for Refusing {
    fn name(&self) -> &str {
        "refusing"
    }
    fn submit(&self, batch: Batch) -> Result<(), BoxError> {
        batch.fail("refusing", "no capacity");
        Ok(())
    }
}

/// Loses every batch.
struct Dropping;

impl ParallelBackend for Dropping {
    fn name(&self) -> &str {
        "dropping"
    }
    fn submit(&self, batch: Batch) -> Result<(), BoxError> {
        drop(batch);
        Ok(())
    }
}

#[test]
fn backend_failures_name_the_task() {
    let err = Parallel::new()
        .backend(Refusing)
        .run((0..3).map(|i| delayed(|i: i32| i, i)))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "backend \"refusing\" failed to run task 0: no capacity"
    );
    let err = Parallel::new()
        .backend(Dropping)
        .run((0..3).map(|i| delayed(|i: i32| i, i)))
        .unwrap_err();
    assert!(matches!(err, Error::Backend { index: 0, .. }), "{err}");
    assert!(err.to_string().contains("dropped the batch"), "{err}");
}

/// Shares nothing and counts the batches it runs (inline, on the thread
/// that submits them).
struct CountingProcesses(Arc<AtomicUsize>);

impl ParallelBackend for CountingProcesses {
    fn name(&self) -> &str {
        "counting-processes"
    }
    fn supports_shared_memory(&self) -> bool {
        false
    }
    fn submit(&self, batch: Batch) -> Result<(), BoxError> {
        self.0.fetch_add(1, Ordering::SeqCst);
        batch.run();
        Ok(())
    }
}

/// joblib's test_backend_hinting_and_constraints: a backend configured by
/// `parallel_config` is a default, and a hard requirement it cannot meet
/// sets it aside (threads, and the configured `n_jobs` with it); a hint
/// does not.
#[test]
fn require_shared_mem_beats_a_configured_backend() {
    let me = std::thread::current().id();
    let batches = Arc::new(AtomicUsize::new(0));
    let configured = || {
        parallel_config()
            .backend(CountingProcesses(Arc::clone(&batches)))
            .n_jobs(2)
    };

    // No n_jobs on the Parallel: the configured one (meant for the
    // configured backend) is dropped too, and joblib's default of one
    // worker runs the tasks in this thread.
    let ids = configured().scope(|| thread_ids(&Parallel::new().require(Require::SharedMem)));
    assert!(ids.iter().all(|&id| id == me));
    assert_eq!(batches.load(Ordering::SeqCst), 0);

    // n_jobs on the Parallel is kept: worker threads.
    let ids =
        configured().scope(|| thread_ids(&Parallel::new().n_jobs(3).require(Require::SharedMem)));
    assert!(ids.iter().all(|&id| id != me));
    assert_eq!(batches.load(Ordering::SeqCst), 0);

    // The requirement made in the same scope as the backend: the same.
    let ids = configured()
        .require(Require::SharedMem)
        .scope(|| thread_ids(&Parallel::new().n_jobs(2)));
    assert!(ids.iter().all(|&id| id != me));
    assert_eq!(batches.load(Ordering::SeqCst), 0);

    // A hint does not set the configured backend aside.
    configured().scope(|| thread_ids(&Parallel::new().prefer(Prefer::Threads)));
    assert!(batches.load(Ordering::SeqCst) > 0);

    // A backend named on the Parallel itself is not set aside: an error
    // naming the requirement and the backend, also when the requirement
    // comes from the configuration.
    for err in [
        Parallel::new()
            .backend(CountingProcesses(Arc::clone(&batches)))
            .require(Require::SharedMem)
            .run((0..2).map(|i| delayed(|i: i32| i, i)))
            .unwrap_err(),
        parallel_config().require(Require::SharedMem).scope(|| {
            Parallel::new()
                .backend(CountingProcesses(Arc::clone(&batches)))
                .run((0..2).map(|i| delayed(|i: i32| i, i)))
                .unwrap_err()
        }),
    ] {
        match err {
            Error::InvalidConfig { option, reason } => {
                assert_eq!(option, "require");
                assert!(reason.contains("SharedMem"), "{reason}");
                assert!(reason.contains("counting-processes"), "{reason}");
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}
