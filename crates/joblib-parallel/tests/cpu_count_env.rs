//! `JOBLIB_MAX_CPU_COUNT` caps `cpu_count`. It changes process-wide state,
//! hence this file of its own with a single test.

use joblib_parallel::{
    MAX_CPU_COUNT_ENV, Parallel, cpu_count, cpu_count_physical, delayed, effective_n_jobs,
};

#[test]
fn the_environment_caps_the_cpu_count() {
    // SAFETY: this is the only test of this binary, so no other thread reads
    // or writes the environment while it is changed.
    unsafe { std::env::set_var(MAX_CPU_COUNT_ENV, "1") };
    assert_eq!(cpu_count(), 1);
    assert_eq!(cpu_count_physical(), 1);
    assert_eq!(effective_n_jobs(-1).unwrap(), 1);
    assert_eq!(effective_n_jobs(-2).unwrap(), 1);
    assert_eq!(
        effective_n_jobs(4).unwrap(),
        4,
        "an explicit count is not capped"
    );
    // The default (all CPUs) is now one worker: the calling thread.
    let me = std::thread::current().id();
    let ids = Parallel::new()
        .run((0..3).map(|_| delayed(|()| std::thread::current().id(), ())))
        .unwrap();
    assert!(ids.iter().all(|&id| id == me));
}
