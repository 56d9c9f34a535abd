//! The worker side: a copy of the program started with [`WORKER_ENV`] set
//! turns into a worker before `main` (or in [`init`](crate::init)) and
//! serves batches until its parent closes the socket.

use std::cell::RefCell;
use std::io::{BufReader, Write};
use std::os::fd::{FromRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};

use super::remote::entry_at;
use super::wire::{self, Failure, FailureKind};
use crate::nesting;

/// The environment marker of a worker: `<fd>:<parent pid>:<build identity>`.
pub(crate) const WORKER_ENV: &str = "JOBLIB_RS_WORKER";

/// Exit code of a worker started from another build than its parent's.
pub(crate) const EXIT_OTHER_BUILD: i32 = 86;
/// Exit code of a worker process in which `joblib::init()` never ran.
pub(crate) const EXIT_NO_INIT: i32 = 87;
/// Exit code of a worker that lost its way on the socket.
pub(crate) const EXIT_PROTOCOL: i32 = 88;

static IS_WORKER: AtomicBool = AtomicBool::new(false);

/// Whether this process is a worker of the process backend.
pub(crate) fn is_worker() -> bool {
    IS_WORKER.load(Ordering::Relaxed)
}

/// The marker's fields, if this process was started as a worker by its
/// parent. A marker inherited by a grandchild (a program a task started) is
/// not for it: the parent pid does not match, and it is ignored.
fn marker() -> Option<(RawFd, String)> {
    let value = std::env::var(WORKER_ENV).ok()?;
    let mut parts = value.splitn(3, ':');
    let fd: RawFd = parts.next()?.parse().ok()?;
    let parent: u32 = parts.next()?.parse().ok()?;
    let identity = parts.next()?.to_owned();
    (std::os::unix::process::parent_id() == parent).then_some((fd, identity))
}

/// Becomes a worker if this process was started as one; returns otherwise.
pub(crate) fn run_if_worker() {
    if is_worker() {
        return;
    }
    if let Some((fd, identity)) = marker() {
        serve(fd, &identity);
    }
}

/// Stops a process that was started as a worker but got past the point
/// where it should have become one (`joblib::init()` missing from `main`
/// and no constructor linked): it must not run the program's work again,
/// nor start workers of its own.
pub(crate) fn refuse_if_uninitialized_worker() {
    if !is_worker() && marker().is_some() {
        eprintln!(
            "joblib: this process was started as a worker of the \"processes\" backend, \
             but joblib::init() (joblib_parallel::init()) was not called at the top of main; \
             exiting"
        );
        std::process::exit(EXIT_NO_INIT);
    }
}

/// The identity of this program's executable file: workers compare theirs
/// with their parent's before running anything.
pub(crate) fn build_identity() -> String {
    use std::os::unix::fs::MetadataExt;
    let path = if cfg!(target_os = "linux") {
        std::path::PathBuf::from("/proc/self/exe")
    } else {
        match std::env::current_exe() {
            Ok(p) => p,
            Err(_) => return "unknown".to_owned(),
        }
    };
    match std::fs::metadata(&path) {
        Ok(m) => format!(
            "{:x}-{:x}-{:x}-{:x}.{:x}",
            m.dev(),
            m.ino(),
            m.size(),
            m.mtime(),
            m.mtime_nsec()
        ),
        Err(_) => "unknown".to_owned(),
    }
}

thread_local! {
    /// Backtrace of the last panic of a task on this thread.
    static BACKTRACE: RefCell<Option<String>> = const { RefCell::new(None) };
    /// Whether a task runs on this thread (panics are then captured).
    static IN_TASK: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

pub(crate) fn clear_backtrace() {
    BACKTRACE.with(|b| b.borrow_mut().take());
}

pub(crate) fn take_backtrace() -> Option<String> {
    BACKTRACE.with(|b| b.borrow_mut().take())
}

/// Captures the backtrace of task panics instead of printing them (they
/// reach the parent in the error); other panics print as usual.
fn install_panic_hook() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if IN_TASK.with(std::cell::Cell::get) {
            let trace = std::backtrace::Backtrace::force_capture().to_string();
            BACKTRACE.with(|b| *b.borrow_mut() = Some(format!("{info}\n{trace}")));
        } else {
            default(info);
        }
    }));
}

fn is_socket(fd: RawFd) -> bool {
    // SAFETY: `fstat` writes into the zeroed struct we own; an invalid `fd`
    // makes it return -1, nothing else.
    unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        libc::fstat(fd, &mut st) == 0 && (st.st_mode & libc::S_IFMT) == libc::S_IFSOCK
    }
}

fn exit(code: i32) -> ! {
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    std::process::exit(code)
}

/// The worker's life: check the build, greet the parent, run batches.
fn serve(fd: RawFd, expected_identity: &str) -> ! {
    IS_WORKER.store(true, Ordering::Relaxed);
    if !is_socket(fd) {
        eprintln!("joblib worker: descriptor {fd} from {WORKER_ENV} is not a socket; exiting");
        exit(EXIT_PROTOCOL);
    }
    // SAFETY: the parent opened `fd` for this process alone (it is a socket,
    // checked above, and the marker's parent pid is ours), and nothing else
    // in this process knows of it.
    let stream = unsafe { UnixStream::from_raw_fd(fd) };
    let mut writer = &stream;
    let identity = build_identity();
    if identity != expected_identity {
        let _ = wire::write_refuse(
            &mut writer,
            &format!(
                "the worker runs another build of the program than its parent \
                 (executable {identity}, parent's {expected_identity})"
            ),
        );
        exit(EXIT_OTHER_BUILD);
    }
    install_panic_hook();
    if wire::write_hello(&mut writer, std::process::id()).is_err() {
        exit(0);
    }
    let mut reader = BufReader::with_capacity(1 << 16, &stream);
    loop {
        let frame = match wire::read_run(&mut reader) {
            Ok(Some(frame)) => frame,
            // The parent is done with us (or gone).
            Ok(None) => exit(0),
            Err(e) => {
                eprintln!("joblib worker: reading from the parent failed: {e}; exiting");
                exit(EXIT_PROTOCOL);
            }
        };
        let reply = match wire::parse_run(&frame) {
            Ok(run) => {
                // SAFETY: this process runs the same executable as the
                // parent that computed the offset (identity checked above).
                let entry = unsafe { entry_at(run.entry_offset) };
                let _level = nesting::enter_task(run.nesting_level as usize, run.n_jobs as usize);
                IN_TASK.with(|t| t.set(true));
                let reply = entry(run.args, run.type_hash, run.call_id);
                IN_TASK.with(|t| t.set(false));
                reply
            }
            Err(e) => Err(Failure {
                completed: 0,
                kind: FailureKind::Transport,
                message: format!("the worker could not read the batch: {e}"),
                results: Vec::new(),
            }),
        };
        let _ = std::io::stdout().flush();
        if wire::write_reply(&mut writer, &reply).is_err() {
            exit(0);
        }
    }
}
