//! A backend written outside joblib: each batch runs in a child process of
//! this same program, its request on the child's stdin and its reply on the
//! child's stdout. It uses only the public remote-task API, as an MPI or a
//! cluster backend would (see "Writing a backend that runs tasks elsewhere"
//! in docs/parallel.md).
//!
//! Run it with `cargo run --example pipe_backend`. In this backend the
//! child's stdout carries the reply, so tasks must print to stderr only.

use std::io::{Read, Write};
use std::process::{Command, Stdio};

use joblib::parallel::remote::RemoteBatch;
use joblib::parallel::{
    BackendKind, Batch, BoxError, Error, ParallelBackend, Shared, serve_request, try_delayed_remote,
};
use joblib::prelude::*;

/// Set in a child: serve one request from stdin instead of running `main`.
const CHILD_ENV: &str = "PIPE_BACKEND_CHILD";

/// Runs each batch in a new child process of this program.
struct PipeBackend;

impl ParallelBackend for PipeBackend {
    fn name(&self) -> &str {
        "pipe"
    }
    fn kind(&self) -> BackendKind {
        BackendKind::Processes
    }
    fn supports_shared_memory(&self) -> bool {
        false
    }
    fn submit(&self, batch: Batch) -> Result<(), BoxError> {
        match batch.into_remote("pipe") {
            // Waiting for the child happens on a thread of its own.
            Ok(remote) => drop(std::thread::spawn(move || run_in_child(remote))),
            // Tasks made by `delayed`: the call fails, naming delayed_remote.
            Err(not_remote) => not_remote.fail("pipe"),
        }
        Ok(())
    }
}

/// The parent's side of one batch: request out, reply in.
fn run_in_child(mut remote: RemoteBatch) {
    if remote.is_cancelled() {
        return remote.skip();
    }
    let request = match remote.request_bytes() {
        Ok(request) => request,
        Err(e) => return remote.fail(e),
    };
    let child = std::env::current_exe().and_then(|exe| {
        Command::new(exe)
            .env(CHILD_ENV, "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
    });
    let mut child = match child {
        Ok(child) => child,
        Err(e) => return remote.fail(format!("cannot start a child: {e}")),
    };
    let pid = child.id();
    // A child that dies early closes its stdin: the write fails, and the
    // exit status below says why.
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(&request);
    }
    let mut reply = Vec::new();
    if let Some(mut stdout) = child.stdout.take() {
        let _ = stdout.read_to_end(&mut reply);
    }
    match child.wait() {
        Ok(status) if status.success() => remote.complete(&reply),
        Ok(status) => remote.worker_died(pid, format!("ended with {status}")),
        Err(e) => remote.worker_died(pid, format!("could not be waited for: {e}")),
    }
}

/// The child's side: one request in, one reply out.
fn serve_stdin() -> std::io::Result<()> {
    let mut request = Vec::new();
    std::io::stdin().read_to_end(&mut request)?;
    // SAFETY: the request was made by our parent, which runs this very
    // executable, and reached us unaltered through a pipe only we share.
    let reply = unsafe { serve_request(&request) };
    std::io::stdout().write_all(&reply)
}

fn norm((x, y): (f64, f64)) -> f64 {
    (x * x + y * y).sqrt()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    joblib::init();
    if std::env::var_os(CHILD_ENV).is_some() {
        return Ok(serve_stdin()?);
    }
    let norms = Parallel::new()
        .backend(PipeBackend)
        .n_jobs(2)
        .run((0..4).map(|i| delayed_remote(norm, (3.0 * f64::from(i), 4.0 * f64::from(i)))))?;
    println!("norms: {norms:?}");

    // A shared value travels inside each request with this simple transport.
    let table = Shared::new(vec![10u64, 20, 30]);
    let picked = Parallel::new()
        .backend(PipeBackend)
        .n_jobs(2)
        .run((0..3).map(|i| {
            delayed_remote(
                |(t, i): (Shared<Vec<u64>>, usize)| t[i] + 1,
                (table.clone(), i),
            )
        }))?;
    println!("picked: {picked:?}");

    // Errors and panics come back from the children, naming the task.
    let parse = |s: String| s.parse::<u32>();
    let err = Parallel::new()
        .backend(PipeBackend)
        .run(["1", "x"].map(|s| try_delayed_remote(parse, s.to_owned())))
        .unwrap_err();
    println!("error: {err}");
    let err = Parallel::new()
        .backend(PipeBackend)
        .run((0..2).map(|i| delayed_remote(|i: u32| assert!(i == 0, "task {i} refuses"), i)))
        .unwrap_err();
    if let Error::Panic { index, message } = &err {
        println!(
            "panic: task {index}: {}",
            message.lines().next().unwrap_or("")
        );
    }
    // Tasks that cannot leave this process are refused with a clear error.
    let err = Parallel::new()
        .backend(PipeBackend)
        .run((0..2).map(|i| delayed(|i: u32| i, i)))
        .unwrap_err();
    println!("refused: {err}");
    Ok(())
}
