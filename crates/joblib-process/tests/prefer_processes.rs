//! `prefer(Processes)` and the names "processes" and "loky" find this
//! crate's backend through joblib-parallel's registry, once `init()` ran
//! (a program that uses nothing else of this crate must call it, or the
//! linker may leave the crate out).

use joblib_parallel::{Parallel, Prefer, Require, delayed, delayed_remote};

#[test]
fn prefer_processes_and_both_names_reach_worker_processes() {
    joblib_process::init();
    let me = std::process::id();
    let pids = Parallel::new()
        .n_jobs(2)
        .prefer(Prefer::Processes)
        .run((0..4u32).map(|i| delayed_remote(|_: u32| std::process::id(), i)))
        .unwrap();
    assert!(pids.iter().all(|&p| p != me), "{pids:?}");
    for name in ["processes", "loky"] {
        let pids = Parallel::new()
            .backend(name)
            .n_jobs(2)
            .run((0..2u32).map(|i| delayed_remote(|_: u32| std::process::id(), i)))
            .unwrap();
        assert!(pids.iter().all(|&p| p != me), "{name}: {pids:?}");
    }
    // Tasks that cannot travel stay on threads, even when processes are
    // preferred; SharedMem beats the preference.
    for p in [
        Parallel::new().n_jobs(2).prefer(Prefer::Processes),
        Parallel::new()
            .n_jobs(2)
            .prefer(Prefer::Processes)
            .require(Require::SharedMem),
    ] {
        let names = p
            .run((0..4).map(|_| delayed(|()| std::thread::current().name().map(str::to_owned), ())))
            .unwrap();
        assert!(
            names
                .iter()
                .all(|n| n.as_deref().unwrap_or("").starts_with("joblib-worker-")),
            "{names:?}"
        );
    }
    let err = Parallel::new()
        .backend("processes")
        .require(Require::SharedMem)
        .run((0..4).map(|i| delayed_remote(|i: i32| i * 2, i)))
        .unwrap_err();
    assert!(err.to_string().contains("SharedMem"), "{err}");
}
