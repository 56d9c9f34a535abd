//! The scenarios of the `"mpi"` backend, as one program that every rank
//! runs: `cargo xtask mpi` starts it under
//! `mpirun --allow-run-as-root --oversubscribe -n 3` (and under a local
//! Slurm's `srun -n 3`), and a plain `cargo test` runs it as a job of one
//! rank, whose tasks run in this process. Each check asserts what the
//! number of ranks implies; any failure exits with status 1.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use joblib_memory::Memory;
use joblib_parallel::{Error, Parallel, Shared, delayed, delayed_remote, try_delayed_remote};
use ndarray::Array1;

type Check = Result<(), Box<dyn std::error::Error>>;
/// A scenario: given the number of worker ranks, checks one behaviour.
type Scenario = fn(usize) -> Check;

fn ensure(ok: bool, what: impl FnOnce() -> String) -> Check {
    if ok { Ok(()) } else { Err(what().into()) }
}

fn mpi() -> Parallel {
    Parallel::new().backend("mpi").n_jobs(-1)
}

/// Which worker ranks run tasks: all of them (or rank 0 alone in a job of
/// one rank).
fn expected_ranks(workers: usize) -> BTreeSet<usize> {
    if workers == 0 {
        [0].into()
    } else {
        (1..=workers).collect()
    }
}

fn square_on_rank(x: u64) -> (u64, usize) {
    // Long enough that every rank gets some.
    std::thread::sleep(Duration::from_millis(2));
    (x * x, joblib_mpi::rank())
}

fn results_in_order(workers: usize) -> Check {
    let out = mpi().run((0..200u64).map(|x| delayed_remote(square_on_rank, x)))?;
    let squares: Vec<u64> = out.iter().map(|r| r.0).collect();
    ensure(
        squares == (0..200u64).map(|x| x * x).collect::<Vec<_>>(),
        || format!("results out of order: {squares:?}"),
    )?;
    let ranks: BTreeSet<usize> = out.iter().map(|r| r.1).collect();
    ensure(ranks == expected_ranks(workers), || {
        format!(
            "tasks ran on ranks {ranks:?}, expected {:?}",
            expected_ranks(workers)
        )
    })?;
    // A smaller n_jobs uses that many ranks.
    let out = Parallel::new()
        .backend("mpi")
        .n_jobs(1)
        .run((0..20u64).map(|x| delayed_remote(square_on_rank, x)))?;
    let ranks: BTreeSet<usize> = out.iter().map(|r| r.1).collect();
    let want: BTreeSet<usize> = [usize::from(workers > 0)].into();
    ensure(ranks == want, || format!("n_jobs(1) used ranks {ranks:?}"))
}

fn iterators(_workers: usize) -> Check {
    let p = mpi();
    let ordered: Vec<u64> = p
        .iter((0..50u64).map(|x| delayed_remote(|x: u64| x + 1, x)))
        .collect::<Result<_, _>>()?;
    ensure(ordered == (1..=50).collect::<Vec<_>>(), || {
        format!("iter: {ordered:?}")
    })?;
    let mut unordered: Vec<u64> = p
        .iter_unordered((0..50u64).map(|x| delayed_remote(|x: u64| x + 1, x)))
        .collect::<Result<_, _>>()?;
    unordered.sort_unstable();
    ensure(unordered == (1..=50).collect::<Vec<_>>(), || {
        format!("iter_unordered: {unordered:?}")
    })?;
    // Only the first results of an endless input are computed.
    let first: Vec<u64> = p
        .iter((0u64..).map(|x| delayed_remote(|x: u64| x * 2, x)))
        .take(5)
        .collect::<Result<_, _>>()?;
    ensure(first == [0, 2, 4, 6, 8], || format!("endless: {first:?}"))
}

fn parse(s: String) -> Result<u32, std::num::ParseIntError> {
    s.parse()
}

fn refuse_seven(i: u32) -> u32 {
    assert!(i != 7, "task {i} refuses");
    i
}

fn errors_and_panics(workers: usize) -> Check {
    let err = mpi()
        .run(["1", "2", "x", "4"].map(|s| try_delayed_remote(parse, s.to_owned())))
        .err()
        .ok_or("a task error was not reported")?;
    ensure(matches!(err, Error::Task { index: 2, .. }), || {
        format!("task error: {err:?}")
    })?;
    let err = mpi()
        .run((0..20u32).map(|i| delayed_remote(refuse_seven, i)))
        .err()
        .ok_or("a panic was not reported")?;
    let Error::Panic { index, message } = &err else {
        return Err(format!("panic came back as {err:?}").into());
    };
    ensure(*index == 7 && message.starts_with("task 7 refuses"), || {
        format!("panic: {err}")
    })?;
    if workers > 0 {
        ensure(message.contains("on MPI rank "), || {
            format!("the panic does not name its rank: {message}")
        })?;
    }
    // The ranks keep serving.
    let out = mpi().run((0..7u32).map(|i| delayed_remote(refuse_seven, i)))?;
    ensure(out == (0..7).collect::<Vec<_>>(), || {
        format!("after panic: {out:?}")
    })?;
    // Tasks that cannot leave this process are refused, saying so.
    if workers > 0 {
        let err = mpi()
            .run((0..4u32).map(|i| delayed(|i: u32| i, i)))
            .err()
            .ok_or("delayed tasks were accepted")?;
        ensure(err.to_string().contains("delayed_remote"), || {
            format!("delayed: {err}")
        })?;
    }
    Ok(())
}

fn sleep_ms(ms: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(ms));
    ms
}

fn timeout(_workers: usize) -> Check {
    let start = Instant::now();
    let err = mpi()
        .timeout(Duration::from_millis(300))
        .run([10, 2000, 10].map(|ms| delayed_remote(sleep_ms, ms)))
        .err()
        .ok_or("the timeout was not reported")?;
    ensure(matches!(err, Error::Timeout { index: 1, .. }), || {
        format!("timeout: {err:?}")
    })?;
    ensure(start.elapsed() < Duration::from_millis(1500), || {
        format!("the timeout took {:?} to report", start.elapsed())
    })?;
    // The rank that ran the late task finishes it, then serves again.
    let out = mpi().run([1u64, 2].map(|ms| delayed_remote(sleep_ms, ms)))?;
    ensure(out == [1, 2], || format!("after timeout: {out:?}"))
}

fn pick((table, i): (Shared<Vec<u64>>, usize)) -> u64 {
    table[i]
}

fn shared_once_per_rank(workers: usize) -> Check {
    let table = Shared::new((0..100_000u64).collect::<Vec<_>>());
    let before = joblib_mpi::shared_values_sent();
    for _ in 0..3 {
        let out = mpi().run((0..40).map(|i| delayed_remote(pick, (table.clone(), i * 1000))))?;
        ensure(
            out == (0..40u64).map(|i| i * 1000).collect::<Vec<_>>(),
            || format!("shared: {out:?}"),
        )?;
    }
    let sent = joblib_mpi::shared_values_sent() - before;
    ensure(
        sent as usize <= workers && (workers == 0 || sent > 0),
        || format!("the shared value was sent {sent} times to {workers} worker ranks"),
    )?;
    // A released value is forgotten, and a new one is sent again.
    drop(table);
    let other = Shared::new(vec![5u64; 10]);
    let out = mpi().run((0..4).map(|i| delayed_remote(pick, (other.clone(), i))))?;
    ensure(out == [5; 4], || format!("second shared value: {out:?}"))
}

fn array_sum(a: Array1<f64>) -> (f64, usize) {
    (a.sum(), a.len())
}

fn large_argument(_workers: usize) -> Check {
    let n = 50_000_000 / 8;
    let a = Array1::from_elem(n, 0.5);
    let start = Instant::now();
    let out = Parallel::new()
        .backend("mpi")
        .batch_size(1)
        .run([delayed_remote(array_sum, a)])?;
    eprintln!("  50 MB argument round trip: {:?}", start.elapsed());
    ensure(out == [(n as f64 * 0.5, n)], || format!("50 MB: {out:?}"))
}

fn nested(x: u64) -> (u64, u64) {
    // Threads inside a task, and the "mpi" backend inside a task (which
    // runs on the task's rank).
    let threads = Parallel::new()
        .n_jobs(2)
        .run((0..4u64).map(|i| delayed(move |i: u64| i * x, i)))
        .map(|v| v.iter().sum())
        .unwrap_or(u64::MAX);
    let inner = Parallel::new()
        .backend("mpi")
        .run((0..3u64).map(|i| delayed_remote(|i: u64| i + 1, i)))
        .map(|v| v.iter().sum())
        .unwrap_or(u64::MAX);
    (threads, inner)
}

fn nested_calls(_workers: usize) -> Check {
    let out = mpi().run((0..6u64).map(|x| delayed_remote(nested, x)))?;
    let want: Vec<(u64, u64)> = (0..6).map(|x| (6 * x, 6)).collect();
    ensure(out == want, || format!("nested: {out:?}"))
}

fn cached_square((dir, x): (String, u64)) -> (u64, usize) {
    let Ok(memory) = Memory::builder(dir).verbose(0).build() else {
        return (u64::MAX, usize::MAX);
    };
    memory
        .cache("square", |x: u64| (x * x, joblib_mpi::rank()))
        .version("1")
        .call(x)
}

fn shared_memory_cache(workers: usize) -> Check {
    let dir = std::env::var("JOBLIB_MPI_TEST_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| std::env::temp_dir())
        .join(format!("joblib-mpi-cache-{}", std::process::id()));
    let path = dir.to_string_lossy().into_owned();
    // Every key three times: several ranks compute and store the same entry.
    let keys: Vec<u64> = (0..30).map(|i| i % 10).collect();
    let first = mpi().run(
        keys.iter()
            .map(|&x| delayed_remote(cached_square, (path.clone(), x))),
    )?;
    let again = mpi().run(
        keys.iter()
            .map(|&x| delayed_remote(cached_square, (path.clone(), x))),
    )?;
    let _ = std::fs::remove_dir_all(&dir);
    ensure(first.iter().all(|&(sq, _)| sq != u64::MAX), || {
        "a task could not open the cache".into()
    })?;
    ensure(
        first.iter().zip(&keys).all(|(&(sq, _), &x)| sq == x * x),
        || format!("cached results: {first:?}"),
    )?;
    // The second run loads what the first stored: each key's value
    // (including the rank that computed it) is the same on every rank.
    for x in 0..10u64 {
        let seen: BTreeSet<(u64, usize)> = again
            .iter()
            .zip(&keys)
            .filter(|&(_, &k)| k == x)
            .map(|(r, _)| *r)
            .collect();
        ensure(seen.len() == 1, || format!("key {x} loaded as {seen:?}"))?;
    }
    let ranks: BTreeSet<usize> = first.iter().map(|r| r.1).collect();
    ensure(workers < 2 || ranks.len() >= 2, || {
        format!("only ranks {ranks:?} wrote to the cache")
    })
}

fn pid_and_rank(_: ()) -> (u32, usize) {
    std::thread::sleep(Duration::from_millis(50));
    (std::process::id(), joblib_mpi::rank())
}

/// Clock ticks of user and system time of a process, from /proc.
fn cpu_ticks(pid: u32) -> Result<u64, Box<dyn std::error::Error>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map_err(|e| format!("/proc/{pid}/stat: {e}"))?;
    // Fields after the command name (which may hold spaces), from field 3.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize| -> Result<u64, String> {
        fields
            .get(i)
            .and_then(|f| f.parse().ok())
            .ok_or_else(|| format!("/proc/{pid}/stat: no field {}", i + 3))
    };
    // utime and stime are fields 14 and 15.
    Ok(field(11)? + field(12)?)
}

fn idle_ranks_sleep(workers: usize) -> Check {
    if workers == 0 {
        // No worker ranks: nothing waits.
        return Ok(());
    }
    let out = mpi().run((0..workers * 4).map(|_| delayed_remote(pid_and_rank, ())))?;
    let pids: BTreeSet<u32> = out.iter().map(|r| r.0).collect();
    ensure(pids.len() == workers, || format!("worker pids {pids:?}"))?;
    // Ranks on this machine only (a cluster's other nodes are not in /proc).
    let before: Vec<(u32, u64)> = pids
        .iter()
        .filter_map(|&p| cpu_ticks(p).ok().map(|t| (p, t)))
        .collect();
    ensure(!before.is_empty(), || {
        "no worker rank runs on this machine".into()
    })?;
    let me = std::process::id();
    let my_before = cpu_ticks(me)?;
    std::thread::sleep(Duration::from_secs(5));
    // 5% of a core over 5 s is 25 ticks at 100 Hz.
    for (pid, t0) in before {
        let used = cpu_ticks(pid)? - t0;
        ensure(used <= 25, || {
            format!("idle worker rank (pid {pid}) used {used} ticks in 5 s")
        })?;
    }
    let mine = cpu_ticks(me)? - my_before;
    ensure(mine <= 25, || {
        format!("idle rank 0 used {mine} ticks in 5 s")
    })?;
    // Rank 0 waiting for replies does not spin either.
    let my_before = cpu_ticks(me)?;
    mpi().run((0..workers).map(|_| delayed_remote(sleep_ms, 2000)))?;
    let mine = cpu_ticks(me)? - my_before;
    ensure(mine <= 20, || {
        format!("rank 0 used {mine} ticks waiting 2 s for replies")
    })
}

fn die_at_five(i: u32) -> u32 {
    if i == 5 {
        std::process::abort();
    }
    std::thread::sleep(Duration::from_millis(300));
    i
}

fn main() {
    let job = match joblib_mpi::init() {
        Ok(job) => job,
        Err(e) => {
            eprintln!("joblib_mpi::init failed: {e}");
            std::process::exit(1);
        }
    };
    let workers = job.workers();
    if std::env::var_os("JOBLIB_MPI_TEST_DEATH").is_some() {
        // `cargo xtask mpi` checks that the launcher ends the job, and that
        // rank 0 names the batches that were on the ranks.
        let out = mpi().run((0..8u32).map(|i| delayed_remote(die_at_five, i)));
        eprintln!("mpi_ranks: a rank died and rank 0 went on: {out:?}");
        std::process::exit(if workers == 0 { 0 } else { 3 });
    }
    eprintln!(
        "mpi_ranks: {} rank(s), {workers} worker(s), launched: {}",
        job.world_size(),
        job.is_launched()
    );
    let checks: [(&str, Scenario); 9] = [
        ("results and order", results_in_order),
        ("iter and iter_unordered", iterators),
        ("errors and panics", errors_and_panics),
        ("timeout", timeout),
        ("Shared sent once per rank", shared_once_per_rank),
        ("50 MB array argument", large_argument),
        ("nested calls inside a task", nested_calls),
        ("a Memory shared by the ranks", shared_memory_cache),
        ("idle ranks do not spin", idle_ranks_sleep),
    ];
    let mut failed = 0;
    for (name, check) in checks {
        let start = Instant::now();
        match check(workers) {
            Ok(()) => eprintln!("ok      {name} ({:.2?})", start.elapsed()),
            Err(e) => {
                failed += 1;
                eprintln!("FAILED  {name}: {e}");
            }
        }
    }
    drop(job);
    if failed > 0 {
        eprintln!("mpi_ranks: {failed} check(s) failed");
        std::process::exit(1);
    }
    eprintln!("mpi_ranks: all checks passed");
}
