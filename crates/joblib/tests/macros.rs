//! `delayed!` and `delayed_remote!` from the prelude, the latter in real
//! worker processes (this test binary started again).

#![cfg(all(feature = "processes", unix))]

use joblib::prelude::*;

fn weighted(x: u64, weight: u64, label: String) -> (String, u32) {
    (format!("{label}{}", x * weight), std::process::id())
}

#[test]
fn macro_tasks_with_several_arguments_run_in_worker_processes() {
    let out = Parallel::new()
        .backend("processes")
        .n_jobs(2)
        .run((0..6u64).map(|x| delayed_remote!(weighted, x, 3, "w".to_owned())))
        .unwrap();
    let labels: Vec<&str> = out.iter().map(|(l, _)| l.as_str()).collect();
    assert_eq!(labels, ["w0", "w3", "w6", "w9", "w12", "w15"]);
    assert!(out.iter().all(|&(_, pid)| pid != std::process::id()));

    let threads = Parallel::new()
        .n_jobs(2)
        .run((0..4u32).map(|x| delayed!(|a: u32, b: u32| a * b, x, 5)))
        .unwrap();
    assert_eq!(threads, [0, 5, 10, 15]);
}
