//! A program that uses worker processes, run by the tests as a separate
//! process: `process-child orphans` starts a pool, prints its workers'
//! pids, and exits without shutting it down; `process-child print` runs a
//! task that prints to stdout and stderr.

use std::io::Write;

use joblib::prelude::*;

fn main() -> joblib::Result<()> {
    joblib::init();
    let mode = std::env::args().nth(1).unwrap_or_default();
    match mode.as_str() {
        "orphans" => {
            let pids = Parallel::new()
                .backend("processes")
                .n_jobs(2)
                .batch_size(1)
                .run((0..8).map(|i| delayed_remote(|_: u32| std::process::id(), i)))?;
            let mut pids: Vec<u32> = pids;
            pids.sort_unstable();
            pids.dedup();
            println!(
                "{}",
                joblib::parallel::ProcessBackend::worker_pids()
                    .iter()
                    .map(u32::to_string)
                    .collect::<Vec<_>>()
                    .join(" ")
            );
            // Exits with the workers still running.
        }
        "print" => {
            Parallel::new()
                .backend("processes")
                .n_jobs(2)
                .run((0..2).map(|i| {
                    delayed_remote(
                        |i: u32| {
                            // One write per line: stderr is unbuffered, and
                            // `eprintln!` writes its pieces separately, which
                            // two workers sharing the pipe can interleave.
                            let _ = std::io::stdout()
                                .write_all(format!("stdout line from task {i}\n").as_bytes());
                            let _ = std::io::stderr()
                                .write_all(format!("stderr line from task {i}\n").as_bytes());
                        },
                        i,
                    )
                }))?;
        }
        other => {
            eprintln!("unknown mode {other:?}");
            std::process::exit(2);
        }
    }
    Ok(())
}
