//! The worker's side: request bytes in, reply bytes out.

use std::borrow::Cow;
use std::cell::{Cell, RefCell};
use std::sync::{Once, OnceLock};

use super::format::{self, ArgsRef, ReadError, Reply, Status};
use super::shared::{self, Pending};
use super::task::{copy_discriminator, entry_at};
use super::transport::{Blob, InlineResolver, Resolver};
use crate::nesting;

/// The identity of this build of the program, carried by every request and
/// compared by the worker before it uses any offset: the executable's
/// size and modification time, the copy of joblib-parallel that made the
/// request, and joblib-parallel's version. Two processes started from the
/// same file (or from copies that kept its time stamp, on other machines)
/// agree on it.
pub fn build_identity() -> &'static str {
    static ID: OnceLock<String> = OnceLock::new();
    ID.get_or_init(|| {
        let exe = if cfg!(target_os = "linux") {
            // The running image, even if its path was rebuilt over since.
            Ok(std::path::PathBuf::from("/proc/self/exe"))
        } else {
            std::env::current_exe()
        };
        let file = match exe.and_then(std::fs::metadata) {
            Ok(m) => {
                let since = m
                    .modified()
                    .ok()
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .unwrap_or_default();
                format!(
                    "{:x}-{:x}.{:09}",
                    m.len(),
                    since.as_secs(),
                    since.subsec_nanos()
                )
            }
            Err(_) => "unknown-executable".to_owned(),
        };
        format!(
            "{file}-{:x}-v{}",
            copy_discriminator(),
            env!("CARGO_PKG_VERSION")
        )
    })
}

thread_local! {
    /// Backtrace of the last panic of a task on this thread.
    static BACKTRACE: RefCell<Option<String>> = const { RefCell::new(None) };
    /// Whether a served task runs on this thread (panics are then captured).
    static IN_TASK: Cell<bool> = const { Cell::new(false) };
}

pub(crate) fn clear_backtrace() {
    BACKTRACE.with(|b| b.borrow_mut().take());
}

pub(crate) fn take_backtrace() -> Option<String> {
    BACKTRACE.with(|b| b.borrow_mut().take())
}

/// Captures the backtrace of served tasks' panics instead of printing them
/// (they reach the caller in the reply); other panics print as before.
fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if IN_TASK.with(Cell::get) {
                let trace = std::backtrace::Backtrace::force_capture().to_string();
                BACKTRACE.with(|b| *b.borrow_mut() = Some(format!("{info}\n{trace}")));
            } else {
                previous(info);
            }
        }));
    });
}

fn refusal(message: String) -> Vec<u8> {
    format::write_reply(&Reply {
        status: Status::Refused,
        completed: 0,
        message,
        results: Vec::new(),
    })
}

fn transport_failure(message: String) -> Vec<u8> {
    format::write_reply(&Reply {
        status: Status::Transport,
        completed: 0,
        message,
        results: Vec::new(),
    })
}

/// Runs the tasks of a request in this process and returns the reply, with
/// the request's shared values and arguments in the request itself (as
/// [`InlineTransport`](crate::InlineTransport) makes them). See
/// [`serve_request_with`].
///
/// # Safety
///
/// As [`serve_request_with`].
pub unsafe fn serve_request(request: &[u8]) -> Vec<u8> {
    // SAFETY: the caller upholds `serve_request_with`'s contract.
    unsafe { serve_request_with(request, &mut InlineResolver) }
}

/// Runs the tasks of a request made by
/// [`RemoteBatch::request`](crate::RemoteBatch::request) in this process,
/// finding its shared values and arguments through `resolver`, and returns
/// the reply bytes for [`RemoteBatch::complete`](crate::RemoteBatch::complete).
///
/// The process must be started from the same executable as the one that
/// made the request (a child of it, an MPI rank, a copy on another machine)
/// and have called `joblib::init()` if it is a worker of a backend that
/// needs it. Nothing here fails: a request that cannot run (another build
/// or format version, garbled bytes, arguments that do not decode) gets a
/// reply saying why, and a task's panic is caught and sent back with its
/// message and backtrace.
///
/// # Safety
///
/// A request names the function to run by its address in the program, so
/// `request` must come from [`RemoteBatch::request`](crate::RemoteBatch::request)
/// in a process of this same build, unaltered (a transport that checks its
/// bytes, such as a socket or pipe to a child, or a checksummed network
/// message). A request from another build or another format version is
/// refused by the checks made here before any address is used; altered
/// bytes that still claim this build could make it jump anywhere.
pub unsafe fn serve_request_with(request: &[u8], resolver: &mut dyn Resolver) -> Vec<u8> {
    let request = match format::read_request(request) {
        Ok(r) => r,
        Err(e @ (ReadError::Version(_) | ReadError::NotOurs)) => {
            return refusal(format!("the worker refused the request: {e}"));
        }
        Err(e) => return transport_failure(format!("the worker could not read the request: {e}")),
    };
    let h = &request.header;
    let ours = build_identity();
    if h.build != ours {
        return refusal(format!(
            "the worker refused the request: it was made by build {} of the program, \
             and the worker runs build {ours}",
            h.build
        ));
    }
    shared::new_call(h.call_id, |id, locator| resolver.keep(id, locator));
    let mut pending = Pending::new();
    for &(id, locator) in &request.shared {
        if shared::is_loaded(id) || pending.contains_key(&id) {
            continue;
        }
        match resolver.fetch(locator) {
            Ok(blob) => {
                pending.insert(id, (locator.to_vec(), blob.into_owned()));
            }
            Err(e) => {
                return transport_failure(format!(
                    "the worker could not fetch shared value {id:x}: {e}"
                ));
            }
        }
    }
    let args = match request.args {
        ArgsRef::Inline(bytes) => Blob::Bytes(Cow::Borrowed(bytes)),
        ArgsRef::External(locator) => match resolver.fetch(locator) {
            Ok(blob) => blob,
            Err(e) => {
                return transport_failure(format!("the worker could not fetch the arguments: {e}"));
            }
        },
    };
    install_panic_hook();
    // SAFETY: the request was made by this very build (identity checked
    // above), and the caller vouches that its bytes are unaltered, so the
    // offset was taken from an entry point of this image.
    let entry = unsafe { entry_at(h.entry_offset) };
    let level = usize::try_from(h.nesting_level).unwrap_or(usize::MAX);
    let n_jobs = usize::try_from(h.n_jobs).unwrap_or(1).max(1);
    let _level = nesting::enter_task(level, n_jobs);
    let was_in_task = IN_TASK.with(|t| t.replace(true));
    let reply = entry(&args, h.type_hash, pending);
    IN_TASK.with(|t| t.set(was_in_task));
    format::write_reply(&reply)
}
