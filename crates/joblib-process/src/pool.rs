//! The parent side: pools of worker processes, one thread per worker
//! process that feeds it batches, start-up, crash detection and reaping.

use std::collections::HashMap;
use std::io::{self, BufReader, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

use joblib_parallel::remote::RemoteBatch;
use joblib_parallel::{Batch, BoxError};
use rustix::process::{Pid, Signal};

use super::arena::{self, ArenaView};
use super::calls;
use super::transport::FileTransport;
use super::wire::{self, FromWorker};
use super::worker::{EXIT_NO_INIT, EXIT_OTHER_BUILD, WORKER_ENV, marker_for};

/// The variables that size the thread pools of common numerical libraries;
/// each worker gets its share of the CPUs in them unless the user set them.
pub(crate) const THREAD_LIMIT_VARS: [&str; 5] = [
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "RAYON_NUM_THREADS",
];

/// How long a new worker may take to greet its parent.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// Settings of a pool that may change between calls.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PoolSettings {
    pub(crate) idle_timeout: Duration,
}

/// A pool of worker processes for calls with one number of workers at one
/// nesting level.
pub(crate) struct Pool {
    /// `None` once the pool is shut down.
    tx: Mutex<Option<Sender<Batch>>>,
    slots: Vec<Arc<Slot>>,
    settings: Arc<Mutex<PoolSettings>>,
    threads: Mutex<Vec<std::thread::JoinHandle<()>>>,
}

/// What the call side can see of one worker slot.
#[derive(Default)]
pub(crate) struct Slot {
    state: Mutex<SlotState>,
    /// A second handle on the live worker's socket, for [`tell_release`];
    /// held while anything is written to the worker, so that messages
    /// never interleave.
    writer: Mutex<Option<UnixStream>>,
    /// Set by [`shutdown_all`]: batches still queued fail instead of running.
    closing: AtomicBool,
}

#[derive(Default)]
struct SlotState {
    /// The live worker's pid.
    pid: Option<u32>,
    /// The call whose batch the worker is running, and since when.
    busy: Option<(u64, Instant)>,
    /// The worker was sent `SIGKILL` (its call stopped early, or the pool
    /// shut down). It may have answered just before: the slot must not give
    /// it another batch, whose task would be reported dead for nothing.
    killed: bool,
}

type PoolKey = (usize, usize);

fn pools() -> &'static Mutex<HashMap<PoolKey, Arc<Pool>>> {
    static POOLS: OnceLock<Mutex<HashMap<PoolKey, Arc<Pool>>>> = OnceLock::new();
    POOLS.get_or_init(Default::default)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The pool for `workers` workers at `level`, started (and its workers
/// greeted) if it did not exist.
pub(crate) fn pool(
    workers: usize,
    level: usize,
    settings: PoolSettings,
) -> Result<Arc<Pool>, BoxError> {
    let key = (workers.max(1), level);
    let mut map = lock(pools());
    if let Some(pool) = map.get(&key) {
        *lock(&pool.settings) = settings;
        return Ok(Arc::clone(pool));
    }
    let (tx, rx) = crossbeam_channel::unbounded::<Batch>();
    let settings = Arc::new(Mutex::new(settings));
    let threads_each = (joblib_parallel::cpu_count() / key.0).max(1);
    let (ready_tx, ready_rx) = crossbeam_channel::unbounded();
    let mut slots = Vec::with_capacity(key.0);
    let mut threads = Vec::with_capacity(key.0);
    for i in 0..key.0 {
        let slot = Arc::new(Slot::default());
        slots.push(Arc::clone(&slot));
        let rx = rx.clone();
        let settings = Arc::clone(&settings);
        let ready_tx = ready_tx.clone();
        let handle = std::thread::Builder::new()
            .name(format!("joblib-process-{level}-{i}"))
            .spawn(move || slot_loop(&rx, &slot, &settings, threads_each, ready_tx))
            .map_err(|e| format!("cannot start the thread for worker {i}: {e}"))?;
        threads.push(handle);
    }
    drop(ready_tx);
    // Every slot starts its worker at once; the pool is usable when all
    // greeted, and a worker that cannot start fails the call that made it.
    for _ in 0..key.0 {
        match ready_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(e),
            Err(_) => return Err("a worker thread stopped during start-up".into()),
        }
    }
    let pool = Arc::new(Pool {
        tx: Mutex::new(Some(tx)),
        slots,
        settings,
        threads: Mutex::new(threads),
    });
    map.insert(key, Arc::clone(&pool));
    Ok(pool)
}

impl Pool {
    pub(crate) fn submit(&self, batch: Batch) -> Result<(), BoxError> {
        let tx = lock(&self.tx).clone();
        match tx {
            Some(tx) => tx
                .send(batch)
                .map_err(|_| "the worker threads are gone".into()),
            None => {
                batch.fail("processes", "the pool was shut down");
                Ok(())
            }
        }
    }

    /// The pids of the live workers (for tests and diagnostics).
    pub(crate) fn pids(&self) -> Vec<u32> {
        self.slots
            .iter()
            .filter_map(|s| lock(&s.state).pid)
            .collect()
    }
}

/// How long [`shutdown_all`] lets running batches finish before it kills
/// their workers.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);

/// Stops every pool: batches not started fail, workers get
/// [`SHUTDOWN_GRACE`] to finish the batch they hold and are killed after
/// it, idle workers exit; waits for all of them. The next call starts a new
/// pool.
pub(crate) fn shutdown_all() {
    let pools: Vec<Arc<Pool>> = lock(pools()).drain().map(|(_, p)| p).collect();
    for pool in &pools {
        for slot in &pool.slots {
            slot.closing.store(true, Ordering::Relaxed);
        }
        lock(&pool.tx).take();
    }
    let threads: Vec<_> = pools
        .iter()
        .flat_map(|pool| std::mem::take(&mut *lock(&pool.threads)))
        .collect();
    let deadline = Instant::now() + SHUTDOWN_GRACE;
    while Instant::now() < deadline && threads.iter().any(|t| !t.is_finished()) {
        std::thread::sleep(Duration::from_millis(5));
    }
    for pool in &pools {
        for slot in &pool.slots {
            let mut state = lock(&slot.state);
            if let (Some(pid), Some(_)) = (state.pid, state.busy) {
                kill(pid);
                state.killed = true;
            }
        }
    }
    for t in threads {
        let _ = t.join();
    }
}

/// Kills the workers running a batch of `call_id`: the call stopped early
/// (first error, timeout, results dropped), and nobody wants what they
/// compute. Their slots start new workers for the next batches.
pub(crate) fn kill_call(call_id: u64) {
    for pool in lock(pools()).values() {
        for slot in &pool.slots {
            let mut state = lock(&slot.state);
            if let (Some(pid), Some((call, _))) = (state.pid, state.busy)
                && call == call_id
            {
                kill(pid);
                state.killed = true;
            }
        }
    }
}

/// Tells every live worker of every pool that shared values were released
/// (without waiting for anything: a worker that is not told releases them
/// at its next call). Skipped if a pool is being started.
pub(crate) fn tell_release() {
    let Ok(map) = pools().try_lock() else {
        return;
    };
    let pools: Vec<Arc<Pool>> = map.values().cloned().collect();
    drop(map);
    for pool in pools {
        for slot in &pool.slots {
            if let Ok(writer) = slot.writer.try_lock()
                && let Some(stream) = writer.as_ref()
            {
                wire::send_release(stream);
            }
        }
    }
}

/// The pids of all live workers of every pool of this process.
pub(crate) fn all_pids() -> Vec<u32> {
    lock(pools()).values().flat_map(|p| p.pids()).collect()
}

/// Kills a worker. The caller holds its slot's lock and saw its pid
/// there: a worker is reaped only after its pid is cleared from the slot
/// under that same lock, so the pid cannot have been reused yet.
fn kill(pid: u32) {
    if let Some(pid) = i32::try_from(pid).ok().and_then(Pid::from_raw) {
        let _ = rustix::process::kill_process(pid, Signal::KILL);
    }
}

/// One worker process and its end of the socket.
struct Worker {
    child: Child,
    pid: u32,
    stream: UnixStream,
    reader: BufReader<UnixStream>,
    /// The parent's mapping of the worker's reply arena, once it sent a
    /// reply there; dropped with the worker.
    arena: Option<ArenaView>,
}

fn slot_loop(
    rx: &Receiver<Batch>,
    slot: &Slot,
    settings: &Mutex<PoolSettings>,
    threads_each: usize,
    ready: Sender<Result<(), BoxError>>,
) {
    let mut worker = match spawn_worker(threads_each) {
        Ok(w) => {
            install(slot, &w);
            let _ = ready.send(Ok(()));
            Some(w)
        }
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    drop(ready);
    loop {
        let batch: Batch = if worker.is_some() {
            let idle = lock(settings).idle_timeout;
            match rx.recv_timeout(idle) {
                Ok(batch) => batch,
                Err(RecvTimeoutError::Timeout) => {
                    if let Some(w) = worker.take() {
                        retire(slot, w);
                    }
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => break,
            }
        } else {
            match rx.recv() {
                Ok(batch) => batch,
                Err(_) => break,
            }
        };
        if slot.closing.load(Ordering::Relaxed) {
            batch.fail("processes", "the pool was shut down");
            continue;
        }
        let remote = match batch.into_remote("processes") {
            Ok(remote) => remote,
            Err(not_remote) => {
                not_remote.fail("processes");
                continue;
            }
        };
        if remote.is_cancelled() {
            remote.skip();
            continue;
        }
        if worker.is_none() {
            match spawn_worker(threads_each) {
                Ok(w) => {
                    install(slot, &w);
                    worker = Some(w);
                }
                Err(e) => {
                    remote.fail(e);
                    continue;
                }
            }
        }
        run(slot, &mut worker, remote);
    }
    if let Some(w) = worker.take() {
        retire(slot, w);
    }
}

/// Makes a new worker the slot's: its pid, and a handle on its socket for
/// [`tell_release`].
fn install(slot: &Slot, w: &Worker) {
    {
        let mut state = lock(&slot.state);
        state.pid = Some(w.pid);
        state.killed = false;
    }
    *lock(&slot.writer) = w.stream.try_clone().ok();
}

/// Lets an idle worker go: closing the socket makes it exit; then reap it.
fn retire(slot: &Slot, w: Worker) {
    let Worker {
        mut child,
        stream,
        reader,
        ..
    } = w;
    lock(&slot.writer).take();
    // Cleared before the worker is reaped (see `kill`).
    lock(&slot.state).pid = None;
    drop(reader);
    drop(stream);
    let _ = child.wait();
}

/// What the executable of a worker is: the very file this process runs.
fn executable() -> PathBuf {
    if cfg!(target_os = "linux") {
        // The running image, even if its path was rebuilt over since.
        PathBuf::from("/proc/self/exe")
    } else {
        std::env::current_exe().unwrap_or_else(|_| PathBuf::from("/proc/self/exe"))
    }
}

fn spawn_worker(threads_each: usize) -> Result<Worker, BoxError> {
    let (ours, theirs) = UnixStream::pair().map_err(|e| format!("socketpair: {e}"))?;
    let fd = theirs.as_raw_fd();
    let parent = std::process::id();
    let mut args = std::env::args_os();
    let mut cmd = Command::new(executable());
    if let Some(arg0) = args.next() {
        cmd.arg0(arg0);
    }
    cmd.args(args)
        .env(WORKER_ENV, marker_for(fd))
        .stdin(Stdio::null());
    for var in THREAD_LIMIT_VARS {
        if std::env::var_os(var).is_none() {
            cmd.env(var, threads_each.to_string());
        }
    }
    // SAFETY: the closure runs in the forked child before `exec`; it only
    // makes system calls (no allocation, no lock) on a descriptor that the
    // child inherited open.
    unsafe {
        cmd.pre_exec(move || {
            // SAFETY: `theirs` is open in the child until `exec`, and is only
            // borrowed for these two calls.
            let theirs = BorrowedFd::borrow_raw(fd);
            // Keep the worker's end of the socket across `exec`.
            let flags = rustix::io::fcntl_getfd(theirs)?;
            rustix::io::fcntl_setfd(theirs, flags.difference(rustix::io::FdFlags::CLOEXEC))?;
            #[cfg(target_os = "linux")]
            {
                // Die with the parent: no orphans, whatever way it ends.
                rustix::process::set_parent_process_death_signal(Some(Signal::KILL))?;
                // The parent died before that: do not become its orphan.
                if rustix::process::getppid()
                    .map(Pid::as_raw_nonzero)
                    .map(|p| p.get())
                    != i32::try_from(parent).ok()
                {
                    return Err(io::Error::other("the parent is gone"));
                }
            }
            Ok(())
        });
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start a worker process: {e}"))?;
    drop(theirs);
    let pid = child.id();
    let fail = |child: &mut Child, what: String| -> BoxError {
        let _ = child.kill();
        let _ = child.wait();
        what.into()
    };
    let reader_stream = match ours.try_clone() {
        Ok(s) => s,
        Err(e) => return Err(fail(&mut child, format!("cannot clone the socket: {e}"))),
    };
    let _ = ours.set_read_timeout(Some(START_TIMEOUT));
    let mut reader = BufReader::with_capacity(1 << 16, reader_stream);
    let greeting = wire::read_from_worker(&mut reader);
    let _ = ours.set_read_timeout(None);
    match greeting {
        Ok(FromWorker::Hello { pid }) => Ok(Worker {
            child,
            pid,
            stream: ours,
            reader,
            arena: None,
        }),
        Ok(FromWorker::Refuse { message }) => Err(fail(&mut child, message)),
        Ok(other) => Err(fail(
            &mut child,
            format!("the worker sent {other:?} instead of a greeting"),
        )),
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ) =>
        {
            Err(fail(
                &mut child,
                format!(
                    "worker process {pid} did not start within {START_TIMEOUT:?}: is \
                     joblib::init() called at the top of main?"
                ),
            ))
        }
        Err(_) => {
            let status = child
                .wait()
                .map_err(|e| format!("waiting for worker {pid}: {e}"))?;
            Err(match status.code() {
                Some(EXIT_NO_INIT) => format!(
                    "worker process {pid} ran the program's main instead of serving tasks: \
                     call joblib::init() (or joblib_parallel::init()) at the top of main"
                ),
                Some(EXIT_OTHER_BUILD) => {
                    format!("worker process {pid} runs another build of the program")
                }
                _ => format!(
                    "worker process {pid} {} during start-up",
                    describe_exit(status)
                ),
            }
            .into())
        }
    }
}

/// "exited with code 3", "was killed by signal 9 (SIGKILL)", ...
pub(crate) fn describe_exit(status: ExitStatus) -> String {
    if let Some(code) = status.code() {
        return format!("exited with code {code}");
    }
    match status.signal() {
        Some(sig) => {
            let name = match Signal::from_named_raw(sig) {
                Some(Signal::KILL) => " (SIGKILL)",
                Some(Signal::SEGV) => " (SIGSEGV)",
                Some(Signal::ABORT) => " (SIGABRT)",
                Some(Signal::BUS) => " (SIGBUS)",
                Some(Signal::TERM) => " (SIGTERM)",
                Some(Signal::ILL) => " (SIGILL)",
                Some(Signal::FPE) => " (SIGFPE)",
                _ => "",
            };
            let core = if status.core_dumped() {
                ", core dumped"
            } else {
                ""
            };
            format!("was killed by signal {sig}{name}{core}")
        }
        None => format!("ended ({status})"),
    }
}

/// Writes to a worker's socket without raising `SIGPIPE` if the worker is
/// gone (a program may have set `SIGPIPE` back to its default, which would
/// kill it): the write fails with `EPIPE` instead, and the worker is
/// reported dead.
struct NoSigPipe<'a>(&'a UnixStream);

impl Write for NoSigPipe<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        #[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
        let flags = rustix::net::SendFlags::NOSIGNAL;
        #[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd")))]
        let flags = rustix::net::SendFlags::empty();
        loop {
            match rustix::net::send(self.0.as_fd(), buf, flags) {
                Ok(n) => return Ok(n),
                Err(rustix::io::Errno::INTR) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Runs one batch on the slot's worker: sends the request, waits for the
/// reply, completes the batch.
fn run(slot: &Slot, worker: &mut Option<Worker>, mut remote: RemoteBatch) {
    let Some(w) = worker.as_mut() else {
        return remote.fail("no worker process");
    };
    let call_id = remote.call_id();
    // Busy from before the arguments are written, so that the call's
    // timeout clock (started while they are) and ours agree.
    lock(&slot.state).busy = Some((call_id, Instant::now()));
    let mut transport = FileTransport::new(call_id);
    let request = match remote.request(&mut transport) {
        Ok(request) => request,
        Err(e) => {
            lock(&slot.state).busy = None;
            return remote.fail(e);
        }
    };
    let shared_from = calls::max_nbytes(call_id) as u64;
    let sent = {
        // Not while `tell_release` writes to the same socket.
        let _writing = lock(&slot.writer);
        wire::write_run(&mut NoSigPipe(&w.stream), &request, shared_from)
    };
    let reply = sent.and_then(|()| wire::read_from_worker(&mut w.reader));
    let killed = {
        let mut state = lock(&slot.state);
        state.busy = None;
        std::mem::take(&mut state.killed)
    };
    match reply {
        Ok(FromWorker::Reply(bytes)) => remote.complete(&bytes),
        Ok(FromWorker::ReplyArena { len, locator }) => {
            match arena::reply(&mut w.arena, &locator, len) {
                Ok(bytes) => remote.complete(bytes),
                Err(e) => remote.fail(format!(
                    "cannot read the reply of worker process {} from its arena: {e}",
                    w.pid
                )),
            }
        }
        Ok(FromWorker::ReplyShared(locator)) => match map_reply(&locator) {
            Ok(map) => remote.complete(&map),
            Err(e) => remote.fail(format!(
                "cannot map the reply of worker process {}: {e}",
                w.pid
            )),
        },
        Ok(other) => {
            let (pid, reason) = bury(
                slot,
                worker,
                format!("it sent {other:?} instead of a reply"),
            );
            remote.worker_died(pid, reason);
        }
        Err(e) => {
            let (pid, reason) = bury(slot, worker, format!("reading its reply failed: {e}"));
            remote.worker_died(pid, reason);
        }
    }
    // The file of large arguments goes only now: the worker mapped it.
    drop(transport);
    // Killed after it answered (the reply above was read in full before
    // the signal): reap it now, and let the next batch start a new one.
    if killed && worker.is_some() {
        bury(slot, worker, "it was stopped".into());
    }
}

/// Maps the segment in which a worker put its reply (it keeps it open until
/// its next request), checking that the file is the one it named.
fn map_reply(locator: &[u8]) -> io::Result<memmap2::Mmap> {
    let file = calls::open_located(locator)?;
    // SAFETY: the worker wrote the segment before naming it and no longer
    // writes to it; nobody else holds it (it has no name, and only our
    // child's descriptor and ours refer to it).
    unsafe { memmap2::Mmap::map(&file) }
}

/// The worker stopped answering: make sure it is dead, reap it, and say
/// how it ended.
fn bury(slot: &Slot, worker: &mut Option<Worker>, protocol: String) -> (u32, String) {
    let Some(mut w) = worker.take() else {
        return (0, protocol);
    };
    lock(&slot.writer).take();
    // Cleared before the worker is reaped, under the slot's lock, so that
    // `kill_call` never signals a pid that may have been reused.
    lock(&slot.state).pid = None;
    // Its socket closed: it is exiting or dead. Give it a moment to
    // finish dying before forcing it, so the status tells the cause.
    let deadline = Instant::now() + Duration::from_millis(500);
    let status = loop {
        match w.child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(1));
            }
            _ => {
                let _ = w.child.kill();
                break w.child.wait().ok();
            }
        }
    };
    (
        w.pid,
        match status {
            Some(status) => describe_exit(status),
            None => protocol,
        },
    )
}
