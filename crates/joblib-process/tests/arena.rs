//! Large replies come back through each worker's reply arena, correct for
//! sizes around `max_nbytes` and past the arena's first size, and the
//! parent's mapping of an arena goes with its worker, however the worker
//! ends (its own test binary: it counts this process's mappings, which
//! other tests' pools would change under it).

#![cfg(target_os = "linux")]

use std::collections::BTreeSet;

use joblib_parallel::{Error, Parallel, delayed_remote};
use joblib_process::ProcessBackend;

/// The inodes of the reply arenas that `/proc/<pid>/<what>` shows
/// (`fd` for descriptors, `maps` for mappings).
fn arenas(pid: &str, what: &str) -> BTreeSet<u64> {
    use std::os::unix::fs::MetadataExt;

    if what == "maps" {
        return std::fs::read_to_string(format!("/proc/{pid}/maps"))
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("memfd:joblib-replies"))
            .filter_map(|l| l.split_whitespace().nth(4)?.parse().ok())
            .collect();
    }
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| {
            d.flatten()
                .filter(|fd| {
                    std::fs::read_link(fd.path())
                        .is_ok_and(|t| t.to_string_lossy().contains("memfd:joblib-replies"))
                })
                .filter_map(|fd| std::fs::metadata(fd.path()).ok())
                .map(|m| m.ino())
                .collect()
        })
        .unwrap_or_default()
}

/// The arenas the live workers hold.
fn workers_arenas() -> BTreeSet<u64> {
    ProcessBackend::worker_pids()
        .into_iter()
        .flat_map(|pid| arenas(&pid.to_string(), "fd"))
        .collect()
}

/// `n` values made from `seed`, or the death of this worker when `n` is 0.
fn values((n, seed): (u32, u32)) -> Vec<f64> {
    if n == 0 {
        std::process::abort();
    }
    (0..n).map(|i| f64::from(i ^ seed)).collect()
}

fn expected((n, seed): (u32, u32)) -> Vec<f64> {
    (0..n).map(|i| f64::from(i ^ seed)).collect()
}

#[test]
fn large_replies_come_back_through_an_arena_that_goes_with_its_worker() {
    let p = Parallel::new()
        .backend(ProcessBackend::new().max_nbytes(64 << 10))
        .n_jobs(2)
        .batch_size(1);
    // 8,192 values encode to a little over 64 KiB: the sizes go from the
    // socket to the arena, grow it past its first 4 MiB and come back down.
    let sizes: Vec<(u32, u32)> = [1, 7_000, 8_180, 8_192, 8_200, 16_384, 600_000, 9, 8_192]
        .into_iter()
        .enumerate()
        .map(|(i, n)| (n, i as u32))
        .collect();
    for round in 0..3 {
        let out = p
            .run(sizes.iter().map(|&s| delayed_remote(values, s)))
            .unwrap();
        for (got, &s) in out.iter().zip(&sizes) {
            assert!(*got == expected(s), "round {round}: {} values", s.0);
        }
    }
    let held = workers_arenas();
    assert!(!held.is_empty(), "no worker holds a reply arena");
    assert!(
        arenas("self", "fd").is_empty(),
        "the parent keeps no descriptor of an arena"
    );
    assert!(arenas("self", "maps").is_subset(&held));

    // A worker that dies is reported; the parent lets its arena go and the
    // worker that replaces it makes its own.
    let mut dying = sizes.clone();
    dying.push((0, 0));
    let err = p
        .run(dying.iter().map(|&s| delayed_remote(values, s)))
        .unwrap_err();
    assert!(matches!(err, Error::WorkerDied { .. }), "{err}");
    let out = p
        .run(sizes.iter().map(|&s| delayed_remote(values, s)))
        .unwrap();
    for (got, &s) in out.iter().zip(&sizes) {
        assert!(*got == expected(s), "after a death: {} values", s.0);
    }
    assert!(
        arenas("self", "maps").is_subset(&workers_arenas()),
        "the parent still maps the arena of a dead worker"
    );

    // Workers that exit take their arenas with them.
    ProcessBackend::shutdown();
    assert!(arenas("self", "maps").is_empty());
}
