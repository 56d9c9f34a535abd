//! `ProcessBackend::shutdown()` returns within about 2 s whatever the
//! workers do (its own test binary: it stops every pool of the process).

use std::time::{Duration, Instant};

use joblib_parallel::{Error, Parallel, delayed_remote};
use joblib_process::ProcessBackend;
use rustix::process::{Pid, test_kill_process};

/// Writes this worker's pid to `path`, then spins forever.
fn spin(path: String) -> u32 {
    let _ = std::fs::write(&path, std::process::id().to_string());
    loop {
        std::hint::black_box(&path);
    }
}

#[test]
fn shutdown_returns_within_two_seconds_and_reaps_a_spinning_worker() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("spinner").to_string_lossy().into_owned();
    let call = {
        let path = path.clone();
        std::thread::spawn(move || {
            Parallel::new()
                .backend(ProcessBackend::new())
                .n_jobs(2)
                .run([delayed_remote(spin, path)])
        })
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    let pid: i32 = loop {
        if let Some(pid) = std::fs::read_to_string(&path)
            .ok()
            .and_then(|s| s.parse().ok())
        {
            break pid;
        }
        assert!(Instant::now() < deadline, "the spinning task never started");
        std::thread::sleep(Duration::from_millis(5));
    };

    let start = Instant::now();
    ProcessBackend::shutdown();
    let took = start.elapsed();
    assert!(took < Duration::from_secs(2), "shutdown took {took:?}");
    assert!(ProcessBackend::worker_pids().is_empty());
    // Reaped: the pid names no process any more.
    let pid = Pid::from_raw(pid).unwrap();
    assert_eq!(test_kill_process(pid), Err(rustix::io::Errno::SRCH));
    match call.join().unwrap() {
        Err(Error::WorkerDied {
            index: 0, reason, ..
        }) => {
            assert!(reason.contains("SIGKILL"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    // The next call starts new workers.
    let out = Parallel::new()
        .backend(ProcessBackend::new())
        .n_jobs(2)
        .run((0..3u32).map(|x| delayed_remote(|x: u32| x + 1, x)))
        .unwrap();
    assert_eq!(out, [1, 2, 3]);
}
