//! The worker side: a copy of the program started with [`WORKER_ENV`] set
//! turns into a worker before `main` (or in [`init`](crate::init)) and
//! serves requests until its parent closes the socket.

use std::io::{BufReader, Write};
use std::os::fd::{BorrowedFd, FromRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};

use joblib_parallel::BoxError;
use joblib_parallel::remote::{Blob, Resolver, build_identity, serve_request_with};

use super::arena::{self, WorkerArena};
use super::calls::{self, Segment};
use super::wire::{self, FromParent};

/// The environment marker of a worker:
/// `<MARKER_VERSION>:<fd>:<parent pid>:<build identity>`.
pub(crate) const WORKER_ENV: &str = "JOBLIB_RS_WORKER";

/// The version of the marker's layout: a worker started by a parent that
/// writes another layout ignores the marker rather than misread it.
pub(crate) const MARKER_VERSION: &str = "2";

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
    let mut parts = value.splitn(4, ':');
    if parts.next()? != MARKER_VERSION {
        return None;
    }
    let fd: RawFd = parts.next()?.parse().ok()?;
    let parent: u32 = parts.next()?.parse().ok()?;
    let identity = parts.next()?.to_owned();
    (std::os::unix::process::parent_id() == parent).then_some((fd, identity))
}

/// The marker a parent gives the worker whose end of the socket is `fd`.
pub(crate) fn marker_for(fd: RawFd) -> String {
    format!(
        "{MARKER_VERSION}:{fd}:{}:{}",
        std::process::id(),
        build_identity()
    )
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
             but joblib::init() (joblib_process::init()) was not called at the top of main; \
             exiting"
        );
        std::process::exit(EXIT_NO_INIT);
    }
}

fn is_socket(fd: RawFd) -> bool {
    if fd < 0 {
        return false;
    }
    // SAFETY: the descriptor is only borrowed for the `fstat` below; if it
    // is not open, `fstat` fails with EBADF and nothing else happens.
    let fd = unsafe { BorrowedFd::borrow_raw(fd) };
    rustix::fs::fstat(fd).is_ok_and(|st| {
        rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::Socket
    })
}

fn exit(code: i32) -> ! {
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    std::process::exit(code)
}

/// How a worker finds what its parent placed: shared values and large
/// arguments are files (see [`Segment`](crate::calls::Segment)), mapped
/// read-only.
struct FileResolver;

impl Resolver for FileResolver {
    fn fetch<'a>(&mut self, locator: &'a [u8]) -> Result<Blob<'a>, BoxError> {
        Ok(Blob::File(calls::parse_locator(locator).0.to_path_buf()))
    }

    /// A shared value whose segment the parent released (the value was
    /// dropped there) is released here too.
    fn keep(&mut self, _id: u64, locator: &[u8]) -> bool {
        use std::os::unix::fs::MetadataExt;
        let (path, inode) = calls::parse_locator(locator);
        match (std::fs::metadata(path), inode) {
            (Ok(m), Some(inode)) => m.ino() == inode,
            (Ok(_), None) => true,
            (Err(_), _) => false,
        }
    }
}

/// The worker's life: check the build, greet the parent, serve requests.
fn serve(fd: RawFd, expected_identity: &str) -> ! {
    IS_WORKER.store(true, Ordering::Relaxed);
    if !is_socket(fd) {
        eprintln!("joblib worker: descriptor {fd} from {WORKER_ENV} is not a socket; exiting");
        exit(EXIT_PROTOCOL);
    }
    // SAFETY: the parent opened `fd` for this process alone (it is a socket,
    // checked above, and the marker's parent pid is ours), and nothing else
    // in this process knows of it, so the stream becomes its only owner.
    let stream = unsafe { UnixStream::from_raw_fd(fd) };
    let mut writer = &stream;
    let identity = build_identity();
    if identity != expected_identity {
        let _ = wire::write_refuse(
            &mut writer,
            &format!(
                "the worker runs another build of the program than its parent \
                 (build {identity}, parent's {expected_identity})"
            ),
        );
        exit(EXIT_OTHER_BUILD);
    }
    if wire::write_hello(&mut writer, std::process::id()).is_err() {
        exit(0);
    }
    let mut reader = BufReader::with_capacity(1 << 16, &stream);
    // The segment of the last reply too large for the arena: the parent
    // has opened it by the time it sends the next request.
    let mut held: Option<Segment> = None;
    let mut arena: Option<WorkerArena> = None;
    loop {
        let run = match wire::read_from_parent(&mut reader) {
            Ok(Some(FromParent::Run(run))) => run,
            // Idle (or between requests): free what the parent let go of
            // now rather than at the next call's first request.
            Ok(Some(FromParent::Release)) => {
                joblib_parallel::remote::release_shared(|id, locator| {
                    FileResolver.keep(id, locator)
                });
                continue;
            }
            // The parent is done with us (or gone).
            Ok(None) => exit(0),
            Err(e) => {
                eprintln!("joblib worker: reading from the parent failed: {e}; exiting");
                exit(EXIT_PROTOCOL);
            }
        };
        drop(held.take());
        // SAFETY: the request comes from our parent, which runs this same
        // executable (its identity checked above, and again by
        // `serve_request_with` in the request itself), over a socket that
        // only the two of us hold, so its bytes are those the parent's
        // `RemoteBatch::request` made.
        let reply = unsafe { serve_request_with(&run.request, &mut FileResolver) };
        drop(run.request);
        let _ = std::io::stdout().flush();
        let large = cfg!(target_os = "linux") && reply.len() as u64 >= run.shared_from;
        let sent = if let Some(a) = large.then(|| arena::put(&mut arena, &reply)).flatten() {
            wire::write_reply_arena(&mut writer, reply.len() as u64, a.locator())
        } else if let Some(segment) = large.then(|| reply_segment(&reply)).flatten() {
            let sent = wire::write_reply_shared(&mut writer, segment.locator());
            held = Some(segment);
            sent
        } else {
            wire::write_reply(&mut writer, &reply)
        };
        if sent.is_err() {
            exit(0);
        }
    }
}

/// A reply too large for the arena in a segment of its own, for the parent
/// to map; `None` if the segment cannot be made (the socket carries it).
fn reply_segment(reply: &[u8]) -> Option<Segment> {
    Segment::anonymous("reply", |f| crate::pipe::write_split(f, reply)).ok()
}
