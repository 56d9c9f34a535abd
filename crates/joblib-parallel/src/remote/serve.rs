//! The worker's side: request bytes in, reply bytes out.

use std::borrow::Cow;
use std::cell::{Cell, RefCell};
use std::sync::{Once, OnceLock};

use super::format::{self, ArgsRef, ReadError, Reply, Status};
use super::shared::{self, Pending};
use super::task::{anchor_address, copy_discriminator, entry_address, entry_at};
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

/// The address range of the code of the object (executable or shared
/// library) this copy of joblib-parallel was linked into, if it is the
/// program's executable: every entry point a request may name lies there.
/// An error says why requests cannot be served here (joblib-parallel
/// loaded from a shared library, such as a Python extension, whose
/// executable is another program). `None` where the check is not
/// available (not Linux): the build identity alone guards.
pub(crate) fn code_range() -> &'static Result<Option<(usize, usize)>, String> {
    static RANGE: OnceLock<Result<Option<(usize, usize)>, String>> = OnceLock::new();
    RANGE.get_or_init(|| {
        if !cfg!(target_os = "linux") {
            return Ok(None);
        }
        let anchor = anchor_address();
        let maps = std::fs::read_to_string("/proc/self/maps")
            .map_err(|e| format!("cannot read /proc/self/maps: {e}"))?;
        code_range_in(&maps, anchor, executable_inode())
    })
}

/// The inode of the program's executable.
fn executable_inode() -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self/exe").ok().map(|m| m.ino())
}

/// One line of `/proc/<pid>/maps`: range, permissions, inode, path.
fn parse_map_line(line: &str) -> Option<(usize, usize, &str, u64, &str)> {
    let mut fields = line.split_ascii_whitespace();
    let (start, end) = fields.next()?.split_once('-')?;
    let start = usize::from_str_radix(start, 16).ok()?;
    let end = usize::from_str_radix(end, 16).ok()?;
    let perms = fields.next()?;
    let _offset = fields.next()?;
    let _device = fields.next()?;
    let inode = fields.next()?.parse().ok()?;
    let path = fields.next().unwrap_or("");
    Some((start, end, perms, inode, path))
}

/// [`code_range`] from the text of `/proc/self/maps`.
fn code_range_in(
    maps: &str,
    anchor: usize,
    exe_inode: Option<u64>,
) -> Result<Option<(usize, usize)>, String> {
    let lines: Vec<_> = maps.lines().filter_map(parse_map_line).collect();
    let Some(&(_, _, _, inode, path)) = lines
        .iter()
        .find(|&&(start, end, ..)| start <= anchor && anchor < end)
    else {
        return Err("joblib-parallel's code is in no mapped file".to_owned());
    };
    if inode == 0 || Some(inode) != exe_inode {
        return Err(format!(
            "joblib-parallel is loaded from {path}, not from the program's executable: \
             another process of the executable would not hold its code (a Rust library \
             embedded in another program, such as a Python extension, cannot serve \
             remote tasks)"
        ));
    }
    let code = lines
        .iter()
        .filter(|&&(_, _, perms, i, p)| i == inode && p == path && perms.contains('x'));
    let start = code.clone().map(|l| l.0).min().unwrap_or(anchor);
    let end = code.map(|l| l.1).max().unwrap_or(anchor);
    Ok(Some((start, end)))
}

/// Whether this process can serve remote requests: joblib-parallel is
/// part of the program's executable (not of a shared library loaded into
/// another program, such as a Python extension, whose worker processes
/// would run that other program).
///
/// # Errors
///
/// Why it cannot, naming the file joblib-parallel was loaded from.
pub fn check_executable() -> Result<(), String> {
    code_range().clone().map(|_| ())
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
/// [`InlineTransport`](crate::remote::InlineTransport) makes them). See
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
        Err(e) => {
            return transport_failure(format!("the worker could not read the request: {e}"));
        }
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
    match code_range() {
        Err(e) => return refusal(format!("the worker refused the request: {e}")),
        Ok(Some((start, end))) => {
            let address = entry_address(h.entry_offset);
            if address < *start || address >= *end {
                return refusal(format!(
                    "the worker refused the request: its entry point ({address:#x}) lies \
                     outside the code of the object that holds joblib-parallel \
                     ({start:#x}..{end:#x})"
                ));
            }
        }
        Ok(None) => {}
    }
    install_panic_hook();
    // SAFETY: the request was made by this very build (identity checked
    // above), its entry point lies in the code of the executable that holds
    // this crate's anchor (checked just above), and the caller vouches that
    // its bytes are unaltered, so the offset was taken from an entry point
    // of this image.
    let entry = unsafe { entry_at(h.entry_offset) };
    let level = usize::try_from(h.nesting_level).unwrap_or(usize::MAX);
    let n_jobs = usize::try_from(h.n_jobs).unwrap_or(1).max(1);
    let _level = nesting::enter_task(level, n_jobs);
    let was_in_task = IN_TASK.with(|t| t.replace(true));
    let reply = entry(&args, h.type_hash, pending);
    IN_TASK.with(|t| t.set(was_in_task));
    format::write_reply(&reply)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAPS: &str = "\
55d0c0000000-55d0c0100000 r--p 00000000 08:01 4242 /usr/bin/prog
55d0c0100000-55d0c0500000 r-xp 00100000 08:01 4242 /usr/bin/prog
55d0c0500000-55d0c0600000 r--p 00500000 08:01 4242 /usr/bin/prog
7f0000000000-7f0000100000 r-xp 00000000 08:01 77 /usr/lib/libjob.so
7ffd00000000-7ffd00021000 rw-p 00000000 00:00 0 [stack]
";

    #[test]
    fn the_code_range_is_the_executables_code() {
        let range = code_range_in(MAPS, 0x55d0_c020_0000, Some(4242)).unwrap();
        assert_eq!(range, Some((0x55d0_c010_0000, 0x55d0_c050_0000)));
    }

    #[test]
    fn a_library_inside_another_program_is_refused_saying_why() {
        let err = code_range_in(MAPS, 0x7f00_0000_0100, Some(4242)).unwrap_err();
        assert!(err.contains("/usr/lib/libjob.so"), "{err}");
        assert!(err.contains("Python extension"), "{err}");
        let err = code_range_in(MAPS, 0x1000, Some(4242)).unwrap_err();
        assert!(err.contains("no mapped file"), "{err}");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn this_test_binary_can_serve() {
        let (start, end) = code_range().clone().unwrap().unwrap();
        assert!(start <= anchor_address() && anchor_address() < end);
        assert!(check_executable().is_ok());
    }
}
