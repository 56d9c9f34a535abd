//! The "processes" backend, end to end: this test binary is re-executed as
//! its own workers (the constructor linked with joblib-process turns the
//! copies into workers before the test harness starts).
//!
//! Tests run in parallel threads and pools are shared per number of
//! workers, so tests that kill or count workers use a worker count of their
//! own.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use joblib_parallel::{
    Error, IntoTask, Parallel, Prefer, Task, delayed, delayed_remote, try_delayed_remote,
};
use joblib_process::ProcessBackend;
use rustix::process::{Signal, getpid, kill_process};

fn square(x: u64) -> u64 {
    x * x
}

fn pid(_: u32) -> u32 {
    std::process::id()
}

fn alive(pid: u32) -> bool {
    // A zombie still has a /proc entry; its state is 'Z'.
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

/// The children of this process, with their state letter.
fn children() -> Vec<(u32, char)> {
    let me = std::process::id();
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let rest = stat.rsplit(')').next().unwrap_or("");
        let mut fields = rest.split_whitespace();
        let state = fields.next().and_then(|s| s.chars().next()).unwrap_or('?');
        let ppid: u32 = fields.next().and_then(|p| p.parse().ok()).unwrap_or(0);
        if ppid == me {
            out.push((pid, state));
        }
    }
    out
}

fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn same_api_as_threads_order_iter_unordered_and_pre_dispatch() {
    let p = Parallel::new().backend("processes").n_jobs(2);
    let out = p
        .run((0..1000u64).map(|x| delayed_remote(square, x)))
        .unwrap();
    assert_eq!(out, (0..1000u64).map(|x| x * x).collect::<Vec<_>>());

    let lazy: Vec<u64> = p
        .iter((0..100u64).map(|x| delayed_remote(square, x)))
        .map(Result::unwrap)
        .collect();
    assert_eq!(lazy, (0..100u64).map(|x| x * x).collect::<Vec<_>>());

    let mut any: Vec<u64> = p
        .iter_unordered((0..100u64).map(|x| delayed_remote(|x: u64| (x, x + 1), x)))
        .map(|r| r.unwrap().1)
        .collect();
    any.sort_unstable();
    assert_eq!(any, (1..=100).collect::<Vec<_>>());

    let few = Parallel::new()
        .backend("loky")
        .n_jobs(2)
        .pre_dispatch("n_jobs")
        .batch_size(3)
        .run((0..50u64).map(|x| delayed_remote(square, x)))
        .unwrap();
    assert_eq!(few.len(), 50);
    assert_eq!(few[49], 49 * 49);
}

#[test]
fn tasks_run_in_other_processes_and_nest_one_level_down() {
    let seen = Parallel::new()
        .backend("processes")
        .n_jobs(2)
        .batch_size(1)
        .run((0..8).map(|i| {
            delayed_remote(
                |_: u32| {
                    (
                        std::process::id(),
                        joblib_parallel::nesting_level(),
                        joblib_process::is_worker(),
                    )
                },
                i,
            )
        }))
        .unwrap();
    for (pid, level, worker) in seen {
        assert_ne!(pid, std::process::id());
        assert_eq!(level, 1);
        assert!(worker);
    }
    assert!(!joblib_process::is_worker());
}

#[test]
fn first_error_aborts_and_names_the_task() {
    let parse = |s: String| s.parse::<i32>();
    let inputs = ["1", "2", "x", "4"].map(String::from);
    let err = Parallel::new()
        .backend("processes")
        .n_jobs(2)
        .batch_size(1)
        .run(inputs.into_iter().map(|s| try_delayed_remote(parse, s)))
        .unwrap_err();
    match err {
        Error::Task { index, source } => {
            assert_eq!(index, 2);
            assert!(source.to_string().contains("invalid digit"), "{source}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn thread_only_tasks_are_refused_with_a_clear_error() {
    let offset = 3;
    let err = Parallel::new()
        .backend("processes")
        .n_jobs(2)
        .run((0..4).map(|i| delayed(move |i: i32| i + offset, i)))
        .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("delayed_remote"), "{text}");
    assert!(matches!(err, Error::Backend { .. }), "{err:?}");
}

#[test]
fn prefer_processes_uses_them_only_for_tasks_that_can_go() {
    let offset = 3;
    let local = Parallel::new()
        .prefer(Prefer::Processes)
        .n_jobs(2)
        .run((0..4).map(|i| delayed(move |i: i32| i + offset, i)))
        .unwrap();
    assert_eq!(local, [3, 4, 5, 6]);
    let pids = Parallel::new()
        .prefer(Prefer::Processes)
        .n_jobs(2)
        .run((0..4).map(|i| delayed_remote(pid, i)))
        .unwrap();
    assert!(pids.iter().all(|&p| p != std::process::id()));
}

#[test]
fn workers_are_reused_across_calls() {
    let call = || -> BTreeSet<u32> {
        Parallel::new()
            .backend("processes")
            .n_jobs(3)
            .batch_size(1)
            .run((0..60).map(|i| delayed_remote(pid, i)))
            .unwrap()
            .into_iter()
            .collect()
    };
    let first = call();
    let second = call();
    assert!(!first.is_empty());
    let all: BTreeSet<u32> = first.union(&second).copied().collect();
    assert!(all.len() <= 3, "more than 3 workers for n_jobs(3): {all:?}");
    let live: BTreeSet<u32> = ProcessBackend::worker_pids().into_iter().collect();
    assert!(all.is_subset(&live), "{all:?} vs live {live:?}");
}

#[test]
fn idle_workers_exit_and_come_back() {
    let backend = ProcessBackend::new().idle_timeout(Duration::from_millis(200));
    let call = || -> Vec<u32> {
        Parallel::new()
            .backend(backend.clone())
            .n_jobs(5)
            .batch_size(1)
            .run((0..10).map(|i| delayed_remote(pid, i)))
            .unwrap()
    };
    let first = call();
    wait_until("idle workers exited", || first.iter().all(|&p| !alive(p)));
    let second = call();
    assert!(
        second.iter().all(|p| !first.contains(p)),
        "{first:?} {second:?}"
    );
}

#[test]
fn a_panic_comes_back_with_the_worker_backtrace_and_the_worker_lives() {
    let p = Parallel::new().backend("processes").n_jobs(1);
    let before = p.run([delayed_remote(pid, 0)]).unwrap()[0];
    let err = p
        .run((0..3).map(|i| {
            delayed_remote(
                |i: u32| {
                    if i == 1 {
                        panic!("boom in task {i}");
                    }
                    i
                },
                i,
            )
        }))
        .unwrap_err();
    match err {
        Error::Panic { index, message } => {
            assert_eq!(index, 1);
            assert!(message.starts_with("boom in task 1"), "{message}");
            assert!(message.contains("worker backtrace"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    let after = p.run([delayed_remote(pid, 0)]).unwrap()[0];
    assert_eq!(before, after, "the worker that panicked was replaced");
}

fn crash(how: u8) -> u8 {
    match how {
        0 => std::process::abort(),
        1 => {
            let _ = kill_process(getpid(), Signal::KILL);
        }
        2 => {
            let _ = kill_process(getpid(), Signal::SEGV);
        }
        3 => {
            // Far more than any machine has: the allocation fails and the
            // process aborts, as when memory runs out.
            let v = vec![1u8; 1 << 46];
            return v[1 << 40];
        }
        _ => {}
    }
    how
}

#[test]
fn a_dying_worker_is_reported_and_replaced() {
    let p = Parallel::new().backend("processes").n_jobs(4).batch_size(1);
    for (how, sig) in [
        (0, "SIGABRT"),
        (1, "SIGKILL"),
        (2, "SIGSEGV"),
        (3, "SIGABRT"),
    ] {
        let err = p
            .run((0..3u8).map(|i| delayed_remote(crash, if i == 2 { how } else { 9 })))
            .unwrap_err();
        match &err {
            Error::WorkerDied {
                index, pid, reason, ..
            } => {
                assert_eq!(*index, 2, "{err}");
                assert!(reason.contains(sig), "{how}: {err}");
                assert!(!alive(*pid));
            }
            other => panic!("{how}: {other:?}"),
        }
        assert!(err.to_string().contains("task 2"), "{err}");
        assert_eq!(
            p.run((0..4u8).map(|i| delayed_remote(crash, i + 10)))
                .unwrap()
                .len(),
            4
        );
    }
}

#[test]
fn a_hundred_crashes_in_a_row_leak_nothing() {
    let p = Parallel::new().backend("processes").n_jobs(6).batch_size(1);
    for _ in 0..100 {
        let err = p.run([delayed_remote(crash, 0)]).unwrap_err();
        assert!(matches!(err, Error::WorkerDied { .. }), "{err:?}");
    }
    assert_eq!(p.run([delayed_remote(crash, 7)]).unwrap(), [7]);
    // No zombies, and no more live children than the pools have workers.
    // Other tests of this binary kill workers too (a call that stops early):
    // one of theirs may be between its death and its reaping for a moment.
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let kids = children();
        let live = ProcessBackend::worker_pids();
        let zombie = kids.iter().any(|&(_, state)| state == 'Z');
        let stray = kids.iter().any(|(pid, _)| !live.contains(pid));
        if !zombie && !stray {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "children {kids:?}: zombies, or not workers {live:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_task_past_the_timeout_has_its_worker_killed() {
    let p = Parallel::new()
        .backend("processes")
        .n_jobs(7)
        .timeout(Duration::from_millis(300));
    let start = Instant::now();
    let err = p
        .run((0..4u64).map(|i| {
            delayed_remote(
                |i: u64| {
                    if i == 3 {
                        std::thread::sleep(Duration::from_secs(30));
                    }
                    std::process::id()
                },
                i,
            )
        }))
        .unwrap_err();
    assert!(matches!(err, Error::Timeout { index: 3, .. }), "{err:?}");
    assert!(start.elapsed() < Duration::from_secs(10));
    // The late worker is killed, reaped, and replaced.
    wait_until("the late worker is gone", || {
        children()
            .iter()
            .all(|(pid, _)| ProcessBackend::worker_pids().contains(pid))
    });
    let pids = p.run((0..4u64).map(|i| delayed_remote(|_: u64| std::process::id(), i)));
    assert_eq!(pids.unwrap().len(), 4);
}

#[test]
fn workers_get_their_share_of_threads() {
    let vars = Parallel::new()
        .backend("processes")
        .n_jobs(2)
        .run([delayed_remote(
            |_: u8| {
                [
                    "OMP_NUM_THREADS",
                    "OPENBLAS_NUM_THREADS",
                    "MKL_NUM_THREADS",
                    "RAYON_NUM_THREADS",
                ]
                .map(|v| std::env::var(v).unwrap_or_default())
            },
            0,
        )])
        .unwrap();
    let share = (joblib_parallel::cpu_count() / 2).max(1).to_string();
    for (value, name) in vars[0].iter().zip(["OMP", "OPENBLAS", "MKL", "RAYON"]) {
        let var = format!("{name}_NUM_THREADS");
        let expected = std::env::var(&var).unwrap_or_else(|_| share.clone());
        assert_eq!(value, &expected, "{var}");
    }
}

#[test]
fn large_arguments_go_through_a_private_mapped_file_removed_after_the_call() {
    use joblib_persist::MmapArray;
    use ndarray::{Array1, Ix1};

    let dir = tempfile::tempdir().unwrap();
    let backend = ProcessBackend::new()
        .max_nbytes(64 << 10)
        .temp_folder(dir.path());
    let big: MmapArray<f64, Ix1> = Array1::from_shape_fn(100_000, |i| i as f64).into();
    let small: MmapArray<f64, Ix1> = Array1::from_elem(10, 1.0).into();
    let sums =
        Parallel::new()
            .backend(backend)
            .n_jobs(2)
            .batch_size(1)
            .run([big, small].into_iter().map(|a| {
                delayed_remote(|a: MmapArray<f64, Ix1>| (a.view().sum(), a.is_mapped()), a)
            }))
            .unwrap();
    assert_eq!(sums[0], ((0..100_000).map(|i| i as f64).sum(), true));
    assert_eq!(sums[1], (10.0, false));
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().flatten().collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn a_process_not_made_by_its_parent_is_not_a_worker() {
    // The marker names another parent: the copy ignores it and runs the
    // tests it is asked for (none here), instead of serving.
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "no_such_test"])
        .env("JOBLIB_RS_WORKER", "2:3:1:whatever")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("0 passed"));
}

#[test]
fn a_marker_of_another_layout_is_ignored() {
    // The layout of the first release (`<fd>:<parent pid>:<build>`), naming
    // us as the parent: not version 2, so not read at all.
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "no_such_test"])
        .env("JOBLIB_RS_WORKER", format!("99:{}:x", std::process::id()))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("0 passed"));
}

#[test]
fn a_worker_without_its_socket_exits_before_main() {
    // Marked as our worker, but descriptor 99 is not a socket: it stops in
    // the constructor with its own exit code, and runs no test.
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "no_such_test"])
        .env("JOBLIB_RS_WORKER", format!("2:99:{}:x", std::process::id()))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(88), "{out:?}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("running"));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a socket"));
}

/// The inodes of the files mapped in this process whose path contains
/// `part` (unnamed files show as `<path> (deleted)` or `/memfd:<name>`).
fn mapped_inodes(part: &str) -> BTreeSet<u64> {
    mapped_inodes_of("self", part)
}

/// As [`mapped_inodes`], for process `pid`.
fn mapped_inodes_of(pid: &str, part: &str) -> BTreeSet<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/maps"))
        .unwrap()
        .lines()
        .filter(|l| l.contains(part))
        .filter_map(|l| l.split_whitespace().nth(4)?.parse().ok())
        .collect()
}

#[test]
fn a_shared_value_is_written_once_and_mapped_by_every_worker() {
    use joblib_parallel::Shared;
    use joblib_persist::MmapArray;
    use ndarray::{Array2, Ix2};

    let dir = tempfile::tempdir().unwrap();
    let data: MmapArray<f64, Ix2> =
        Array2::from_shape_fn((500, 400), |(i, j)| (i + j) as f64).into();
    let expected = data.view().sum();
    let data = Shared::new(data);
    type Args = (Shared<MmapArray<f64, Ix2>>, String);
    let call = || {
        Parallel::new()
            .backend(ProcessBackend::new().temp_folder(dir.path()))
            .n_jobs(2)
            .batch_size(1)
            .run((0..8).map(|_| {
                delayed_remote(
                    |(a, root): Args| {
                        // The file this worker maps for the value, and what
                        // the folder shows of it (nothing: it has no name).
                        let names = std::fs::read_dir(&root).unwrap().count();
                        let mapped = mapped_inodes(&format!("{root}/joblib-rs-"));
                        (a.view().sum(), a.is_mapped(), mapped, names)
                    },
                    (data.clone(), dir.path().to_string_lossy().into_owned()),
                )
            }))
            .unwrap()
    };
    let mut inodes = BTreeSet::new();
    for _ in 0..2 {
        for (sum, mapped, files, names) in call() {
            assert_eq!(sum, expected);
            assert!(mapped, "a shared MmapArray is a view of the mapped file");
            assert_eq!(files.len(), 1, "one file for the value: {files:?}");
            assert_eq!(names, 0, "the file has no name in the folder");
            inodes.extend(files);
        }
    }
    assert_eq!(inodes.len(), 1, "written once for both calls: {inodes:?}");
    drop(data);

    // Outside a call it is the value itself, for any serde format.
    let file = dir.path().join("v.jbl");
    joblib_persist::dump(&Shared::new(vec![1u32, 2, 3]), &file).unwrap();
    assert_eq!(joblib_persist::load::<Vec<u32>>(&file).unwrap(), [1, 2, 3]);
    let back: Shared<Vec<u32>> = joblib_persist::load(&file).unwrap();
    assert_eq!(*back, [1, 2, 3]);
}

#[test]
fn idle_workers_let_a_dropped_shared_value_go_without_another_call() {
    use joblib_parallel::Shared;
    use joblib_persist::MmapArray;
    use ndarray::{Array1, Ix1};

    let dir = tempfile::tempdir().unwrap();
    let root = format!("{}/joblib-rs-", dir.path().display());
    let data: MmapArray<f64, Ix1> = Array1::from_elem(1 << 17, 1.5).into();
    let data = Shared::new(data);
    // A pool of its own (no other test uses 9 workers).
    let out = Parallel::new()
        .backend(ProcessBackend::new().temp_folder(dir.path()))
        .n_jobs(9)
        .batch_size(1)
        .run((0..10).map(|_| {
            delayed_remote(
                |(a, root): (Shared<MmapArray<f64, Ix1>>, String)| {
                    (a.view().sum(), std::process::id(), mapped_inodes(&root))
                },
                (data.clone(), root.clone()),
            )
        }))
        .unwrap();
    let mut pids = BTreeSet::new();
    let mut inodes = BTreeSet::new();
    for (sum, pid, mapped) in out {
        assert_eq!(sum, 1.5 * f64::from(1 << 17));
        pids.insert(pid);
        inodes.extend(mapped);
    }
    assert_eq!(inodes.len(), 1, "{inodes:?}");
    let maps = |pid: u32| mapped_inodes_of(&pid.to_string(), &root);
    // Kept after the call, for the next ones.
    for &pid in &pids {
        assert_eq!(maps(pid), inodes, "worker {pid}");
    }
    drop(data);
    wait_until("idle workers unmap the dropped value", || {
        pids.iter().all(|&pid| maps(pid).is_disjoint(&inodes))
    });
}

/// Task 0 writes its worker's pid to `path` and spins forever; task 1
/// panics after 200 ms; any other task returns at once.
fn spin_or_panic((i, path): (u32, String)) -> u32 {
    match i {
        0 => {
            let _ = std::fs::write(&path, std::process::id().to_string());
            loop {
                std::hint::black_box(i);
            }
        }
        1 => {
            std::thread::sleep(Duration::from_millis(200));
            panic!("task 1 gives up");
        }
        _ => i,
    }
}

/// The pid the spinning task wrote to `path` (it may take a moment).
fn spinner_pid(path: &std::path::Path) -> u32 {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(pid) = std::fs::read_to_string(path)
            .ok()
            .and_then(|s| s.parse().ok())
        {
            return pid;
        }
        assert!(Instant::now() < deadline, "the spinning task never started");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Whether `pid` is gone within `limit`.
fn gone_within(pid: u32, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while alive(pid) {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    true
}

/// `spin_or_panic` tasks with the given numbers, sharing one pid file.
fn spinning_tasks(
    dir: &tempfile::TempDir,
    ids: &[u32],
) -> Vec<impl IntoTask<Task = impl Task<Output = u32>>> {
    let path = dir.path().join("spinner").to_string_lossy().into_owned();
    ids.iter()
        .map(|&i| delayed_remote(spin_or_panic, (i, path.clone())))
        .collect()
}

#[test]
fn a_worker_still_running_a_failed_calls_task_is_killed_within_a_second() {
    // The reproduction: task 0 loops forever, task 1 panics after
    // 200 ms, two workers, batches of one. The timeout was 1 s; on a
    // loaded machine starting the second worker can take longer than that,
    // and the call then ends by the timeout before the panic is seen, so the
    // timeout here only bounds the test: the panic must end the call first.
    let dir = tempfile::tempdir().unwrap();
    let err = Parallel::new()
        .backend(ProcessBackend::new())
        .n_jobs(2)
        .batch_size(1)
        .timeout(Duration::from_secs(20))
        .run(spinning_tasks(&dir, &[0, 1]))
        .unwrap_err();
    assert!(matches!(err, Error::Panic { index: 1, .. }), "{err:?}");
    let pid = spinner_pid(&dir.path().join("spinner"));
    assert!(
        gone_within(pid, Duration::from_secs(1)),
        "worker {pid} still spins after its call failed"
    );
}

#[test]
fn a_task_past_its_timeout_does_not_outlive_its_call() {
    let dir = tempfile::tempdir().unwrap();
    let err = Parallel::new()
        .backend(ProcessBackend::new())
        .n_jobs(2)
        .batch_size(1)
        .timeout(Duration::from_millis(500))
        .run(spinning_tasks(&dir, &[0]))
        .unwrap_err();
    assert!(matches!(err, Error::Timeout { index: 0, .. }), "{err:?}");
    let pid = spinner_pid(&dir.path().join("spinner"));
    assert!(
        gone_within(pid, Duration::from_secs(1)),
        "worker {pid} still spins after its call timed out"
    );
}

#[test]
fn dropping_the_results_kills_the_workers_still_running_the_call() {
    let dir = tempfile::tempdir().unwrap();
    let p = Parallel::new()
        .backend(ProcessBackend::new())
        .n_jobs(2)
        .batch_size(1);
    // Task 0 spins; task 2 answers at once and is read first.
    let mut results = p.iter_unordered(spinning_tasks(&dir, &[0, 2]));
    assert_eq!(results.next().map(Result::unwrap), Some(2));
    let pid = spinner_pid(&dir.path().join("spinner"));
    drop(results);
    assert!(
        gone_within(pid, Duration::from_secs(1)),
        "worker {pid} still spins after its results were dropped"
    );
    // The pool is still usable: the slot starts a new worker.
    let again = p.run((0..4u64).map(|x| delayed_remote(square, x))).unwrap();
    assert_eq!(again, [0, 1, 4, 9]);
}

/// The descriptors of process `pid` that are a worker's reply arena.
fn reply_arenas(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| {
            d.flatten()
                .filter_map(|fd| std::fs::read_link(fd.path()).ok())
                .filter(|t| t.to_string_lossy().contains("memfd:joblib-replies"))
                .count()
        })
        .unwrap_or(0)
}

/// This worker's pid and 128 KiB of `f64` made from `seed`.
fn big_result(seed: u32) -> (u32, Vec<f64>) {
    (
        std::process::id(),
        (0..16_384u32).map(|i| f64::from(i ^ seed)).collect(),
    )
}

#[cfg(target_os = "linux")]
#[test]
fn large_results_come_back_through_shared_memory() {
    // A pool of its own (no other test uses 8 workers).
    let big = Parallel::new()
        .backend(ProcessBackend::new().max_nbytes(64 << 10))
        .n_jobs(8)
        .batch_size(1);
    let mut pids = BTreeSet::new();
    for _ in 0..2 {
        let out = big
            .run((0..16).map(|i| delayed_remote(big_result, i)))
            .unwrap();
        for (i, (pid, values)) in out.into_iter().enumerate() {
            let expected: Vec<f64> = (0..16_384u32).map(|v| f64::from(v ^ i as u32)).collect();
            assert_eq!(values, expected, "task {i}");
            pids.insert(pid);
        }
    }
    // Each worker put its large replies in one arena, which it keeps for
    // the next ones.
    for &pid in &pids {
        assert!(reply_arenas(pid) <= 1, "worker {pid}");
    }
    assert!(
        pids.iter().any(|&pid| reply_arenas(pid) == 1),
        "no worker of {pids:?} holds a reply arena"
    );
}

#[cfg(target_os = "linux")]
#[test]
fn an_array_passed_by_value_to_many_tasks_is_written_once_per_call() {
    use joblib_persist::MmapArray;
    use ndarray::{Array1, Ix1};

    let a = Array1::from_shape_fn(50_000, |i| i as f64);
    let call = || {
        Parallel::new()
            .backend(ProcessBackend::new().max_nbytes(64 << 10))
            // The pool of 1 (shared with a test that does not mind): the
            // pool of 2 has tests whose timing must not wait for these.
            .n_jobs(1)
            .batch_size(1)
            .run((0..6).map(|_| {
                delayed_remote(
                    |a: MmapArray<f64, Ix1>| {
                        // The segment of the arguments, mapped while `a` lives.
                        (
                            a.view().sum(),
                            a.is_mapped(),
                            mapped_inodes("memfd:joblib-args"),
                        )
                    },
                    MmapArray::from(a.clone()),
                )
            }))
            .unwrap()
    };
    let mut per_call = Vec::new();
    for _ in 0..2 {
        let mut inodes = BTreeSet::new();
        for (sum, mapped, files) in call() {
            assert_eq!(sum, a.sum());
            assert!(mapped);
            assert_eq!(files.len(), 1, "{files:?}");
            inodes.extend(files);
        }
        assert_eq!(
            inodes.len(),
            1,
            "one segment for six equal batches: {inodes:?}"
        );
        per_call.push(inodes);
    }
    assert_ne!(per_call[0], per_call[1], "each call writes its own");
}
