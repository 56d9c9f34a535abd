//! The process backend with the rest of joblib: workers of a program exit
//! with it, their output reaches the parent's, and a cache shared by tasks
//! in several worker processes stays correct.

#![cfg(unix)]

use std::process::Command;
use std::time::{Duration, Instant};

use joblib::prelude::*;

fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z'),
        Err(_) => false,
    }
}

#[test]
fn workers_die_with_the_program_that_started_them() {
    let out = Command::new(env!("CARGO_BIN_EXE_process-child"))
        .arg("orphans")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let pids: Vec<u32> = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect();
    assert_eq!(pids.len(), 2, "{out:?}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while pids.iter().any(|&p| alive(p)) {
        assert!(
            Instant::now() < deadline,
            "workers {pids:?} outlived their parent"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn what_tasks_print_reaches_the_parents_output() {
    let out = Command::new(env!("CARGO_BIN_EXE_process-child"))
        .arg("print")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    for i in 0..2 {
        assert!(
            stdout.contains(&format!("stdout line from task {i}")),
            "{stdout}"
        );
        assert!(
            stderr.contains(&format!("stderr line from task {i}")),
            "{stderr}"
        );
    }
}

/// A cached square, computed in whichever worker runs the task; each
/// computation leaves a marker file, so the test can count them.
fn cached_square((cache, markers, x, trim): (String, String, u64, bool)) -> (u64, u32) {
    let memory = Memory::new(&cache);
    let square = memory
        .cache("tests::cached_square", |x: u64| {
            let name = format!(
                "{x}-{}-{:?}",
                std::process::id(),
                std::thread::current().id()
            );
            let _ = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(std::path::Path::new(&markers).join(name));
            x * x
        })
        .version("1");
    if trim {
        // Another process trims the cache while the others read and write.
        let _ = memory.reduce_size(None, Some(3), None);
    }
    (square.call(x), std::process::id())
}

#[test]
fn a_cache_shared_by_worker_processes_stays_correct() {
    let cache = tempfile::tempdir().unwrap();
    let markers = tempfile::tempdir().unwrap();
    let (c, m) = (
        cache.path().to_string_lossy().into_owned(),
        markers.path().to_string_lossy().into_owned(),
    );
    let tasks = |trim_every: u64| {
        let (c, m) = (c.clone(), m.clone());
        (0..240u64).map(move |i| {
            delayed_remote(
                cached_square,
                (c.clone(), m.clone(), i % 12, i % trim_every == 0),
            )
        })
    };
    let out = Parallel::new()
        .backend("processes")
        .n_jobs(3)
        .batch_size(4)
        .run(tasks(29))
        .unwrap();
    let pids: std::collections::BTreeSet<u32> = out.iter().map(|&(_, p)| p).collect();
    assert!(pids.len() > 1, "the tasks ran in several workers: {pids:?}");
    for (i, (value, _)) in out.iter().enumerate() {
        let x = i as u64 % 12;
        assert_eq!(*value, x * x, "task {i}");
    }
    let computed = std::fs::read_dir(markers.path()).unwrap().count();
    assert!(
        (12..240).contains(&computed),
        "{computed} computations for 12 keys"
    );

    // Without trimming, a second pass is answered from the cache alone.
    let out = Parallel::new()
        .backend("processes")
        .n_jobs(3)
        .run(tasks(1_000_000).skip(1))
        .unwrap();
    assert!(out.iter().enumerate().all(|(i, &(v, _))| {
        let x = (i as u64 + 1) % 12;
        v == x * x
    }));
    // Every key is stored now; a third pass computes nothing.
    let before = std::fs::read_dir(markers.path()).unwrap().count();
    Parallel::new()
        .backend("processes")
        .n_jobs(3)
        .run(tasks(1_000_000).skip(1))
        .unwrap();
    assert_eq!(std::fs::read_dir(markers.path()).unwrap().count(), before);
}
