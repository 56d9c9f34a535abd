//! CPU time and wall time of moving large data to and from worker
//! processes, next to the thread backend: a measure that holds on a busy
//! machine, where the wall times of criterion's benches mostly show the
//! other load. CPU time is that of every thread of this process and of its
//! workers, from `/proc/<pid>/task/<tid>/schedstat` (nanoseconds).
//!
//! `cargo run --release -p joblib-process --example transfer_cost`

use std::sync::Arc;
use std::time::Instant;

use joblib_parallel::{Parallel, Shared, delayed, delayed_remote};
use joblib_persist::MmapArray;
use joblib_process::ProcessBackend;
use ndarray::{Array2, Ix2};

/// Nanoseconds of CPU used so far by every thread of `pid`.
fn cpu_of(pid: u32) -> u64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

/// CPU of this process and of the live workers.
fn cpu_now() -> u64 {
    cpu_of(std::process::id())
        + ProcessBackend::worker_pids()
            .into_iter()
            .map(cpu_of)
            .sum::<u64>()
}

/// Runs `setup` then `timed` `runs` times; prints the medians of wall and
/// CPU time of `timed`.
fn measure<S, R>(
    name: &str,
    runs: usize,
    mut setup: impl FnMut() -> S,
    mut timed: impl FnMut(S) -> R,
) {
    let mut walls = Vec::with_capacity(runs);
    let mut cpus = Vec::with_capacity(runs);
    for _ in 0..runs {
        let input = setup();
        let cpu = cpu_now();
        let start = Instant::now();
        let out = timed(input);
        walls.push(start.elapsed().as_secs_f64() * 1e3);
        cpus.push((cpu_now().saturating_sub(cpu)) as f64 / 1e6);
        drop(out);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    println!(
        "{name:<44} wall {:>8.1} ms   cpu {:>8.1} ms",
        median(&mut walls),
        median(&mut cpus)
    );
}

/// 1 MiB of `f64` made from `seed`.
fn one_mib(seed: u32) -> Vec<f64> {
    (0..131_072u32).map(|i| f64::from(i ^ seed)).collect()
}

fn main() {
    joblib_process::init();
    let runs = 9;
    let a: Array2<f64> = Array2::from_shape_fn((12_500, 1000), |(i, j)| (i ^ j) as f64);
    let threads = Parallel::new()
        .n_jobs(2)
        .batch_size(1)
        .build()
        .expect("threads");
    let processes = Parallel::new()
        .backend("processes")
        .n_jobs(2)
        .batch_size(1)
        .build()
        .expect("processes");
    let socket = Parallel::new()
        .backend(ProcessBackend::new().max_nbytes(usize::MAX))
        .n_jobs(2)
        .build()
        .expect("processes");
    processes.run([delayed_remote(one_mib, 0)]).expect("warm");
    socket.run([delayed_remote(one_mib, 0)]).expect("warm");
    for _ in 0..2 {
        measure(
            "new 100 MB array, threads (new Arc)",
            runs,
            || Arc::new(a.clone()),
            |v| {
                threads
                    .run((0..4).map(|_| delayed(|a: Arc<Array2<f64>>| a.sum(), v.clone())))
                    .expect("sums")
            },
        );
        measure(
            "new 100 MB array, processes (new Shared)",
            runs,
            || Shared::new(MmapArray::from(a.clone())),
            |v| {
                processes
                    .run((0..4).map(|_| {
                        delayed_remote(|a: Shared<MmapArray<f64, Ix2>>| a.view().sum(), v.clone())
                    }))
                    .expect("sums")
            },
        );
        measure(
            "floor: write 100 MB to a memfd",
            runs,
            || a.clone(),
            |v| {
                let fd = rustix::fs::memfd_create("floor", rustix::fs::MemfdFlags::CLOEXEC)
                    .expect("memfd");
                let mut file = std::fs::File::from(fd);
                let s = v.as_slice().expect("standard layout");
                // SAFETY: f64 has no padding; the slice covers the elements.
                let bytes =
                    unsafe { std::slice::from_raw_parts(s.as_ptr().cast::<u8>(), s.len() * 8) };
                std::io::Write::write_all(&mut file, bytes).expect("write");
                (file, v)
            },
        );
        measure(
            "100 MB by value to 4 tasks, threads",
            runs,
            || vec![a.clone(); 4],
            |c| {
                threads
                    .run(c.into_iter().map(|a| delayed(|a: Array2<f64>| a.sum(), a)))
                    .expect("sums")
            },
        );
        measure(
            "100 MB by value to 4 tasks, processes",
            runs,
            || {
                (0..4)
                    .map(|_| MmapArray::from(a.clone()))
                    .collect::<Vec<_>>()
            },
            |c| {
                processes
                    .run(
                        c.into_iter()
                            .map(|a| delayed_remote(|a: MmapArray<f64, Ix2>| a.view().sum(), a)),
                    )
                    .expect("sums")
            },
        );
        measure(
            "64 x 1 MiB results, threads",
            runs,
            || (),
            |()| {
                threads
                    .run((0..64).map(|i| delayed_remote(one_mib, i)))
                    .expect("results")
            },
        );
        measure(
            "64 x 1 MiB results, processes (memfd)",
            runs,
            || (),
            |()| {
                processes
                    .run((0..64).map(|i| delayed_remote(one_mib, i)))
                    .expect("results")
            },
        );
        measure(
            "64 x 1 MiB results, processes (socket)",
            runs,
            || (),
            |()| {
                socket
                    .run((0..64).map(|i| delayed_remote(one_mib, i)))
                    .expect("results")
            },
        );
    }
}
