//! Tasks that can run in another process: a function known by its place in
//! the binary, and serialized arguments.

use std::any::type_name;
use std::hash::{Hash, Hasher};
use std::panic::{AssertUnwindSafe, catch_unwind};

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::format::{Reply, Status};
use super::serve::{clear_backtrace, code_range, take_backtrace};
use super::shared::{self, Pending};
use super::transport::Blob;
use crate::error::{BoxError, panic_message};
use crate::task::{IntoTask, Task};

/// A function and its arguments that may run in a worker process: made by
/// [`delayed_remote`].
///
/// `F` is the function pointer type `fn(A) -> R`. It is a [`Task`] like any
/// other, so it runs on every backend; only a backend that runs tasks
/// elsewhere (the `"processes"` backend) sends it to another process.
#[derive(Clone, Copy)]
pub struct DelayedRemote<F, A> {
    f: F,
    args: A,
}

/// A fallible function and its arguments that may run in a worker process:
/// made by [`try_delayed_remote`]. `F` is the function pointer type
/// `fn(A) -> Result<R, E>`.
#[derive(Clone, Copy)]
pub struct TryDelayedRemote<F, A> {
    f: F,
    args: A,
}

/// Wraps a call `f(args)` so that it can run in a worker process of the
/// `"processes"` backend (crate `joblib-process`), or any other backend
/// that runs tasks elsewhere through a [`RemoteBatch`](crate::RemoteBatch): the process-ready spelling of
/// [`delayed`](fn@crate::delayed).
///
/// `f` is a function pointer: a `fn` item, or a closure that captures
/// nothing, converts to one. A worker finds the function in its own copy of
/// the program, so there is no captured state to carry: a closure that
/// captures a variable is refused by type checking (`cargo check`, the
/// editor), with rustc's note "closures can only be coerced to `fn` types
/// if they do not capture any variables". Pass the data it captures as an
/// argument instead: `delayed_remote(|(x, data)| ..., (x, data))`, or
/// `delayed_remote!(f, x, data)`. The arguments and the result cross the
/// process boundary in joblib-persist's format, so they must be `Serialize`
/// and `DeserializeOwned`.
///
/// ```
/// use joblib_parallel::{Parallel, delayed_remote};
///
/// fn norm((x, y): (f64, f64)) -> f64 {
///     (x * x + y * y).sqrt()
/// }
///
/// // Runs on threads here; `.backend("processes")` would use worker
/// // processes (crate `joblib-process`, with `joblib::init()` in `main`).
/// let norms = Parallel::new()
///     .n_jobs(2)
///     .run((0..3).map(|i| delayed_remote(norm, (3.0 * i as f64, 4.0 * i as f64))))?;
/// assert_eq!(norms, [0.0, 5.0, 10.0]);
///
/// // A closure that captures nothing is a function too; the data it
/// // needs comes as an argument.
/// let offset = 10;
/// let shifted = Parallel::new().run((0..3).map(|i| delayed_remote(|(x, k)| x + k, (i, offset))))?;
/// assert_eq!(shifted, [10, 11, 12]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// A closure that captures a variable is a type error (E0308, "expected fn
/// pointer, found closure"):
///
/// ```compile_fail,E0308
/// use joblib_parallel::delayed_remote;
/// let offset = 10;
/// let task = delayed_remote(move |x: i32| x + offset, 1);
/// ```
pub fn delayed_remote<A, R>(f: fn(A) -> R, args: A) -> DelayedRemote<fn(A) -> R, A>
where
    A: Serialize + DeserializeOwned + Send + 'static,
    R: Serialize + DeserializeOwned + Send + 'static,
{
    DelayedRemote { f, args }
}

/// Like [`delayed_remote`], for a function returning `Result`: an `Err`
/// stops the call and comes back as [`Error::Task`](crate::Error::Task)
/// carrying the error's message (the error value itself stays in the worker).
///
/// ```compile_fail,E0308
/// use joblib_parallel::try_delayed_remote;
/// let limit = 10;
/// let task = try_delayed_remote(move |x: i32| if x < limit { Ok(x) } else { Err("too big") }, 1);
/// ```
// The return type spells the task type users see in errors and docs.
#[allow(clippy::type_complexity)]
pub fn try_delayed_remote<A, R, E>(
    f: fn(A) -> Result<R, E>,
    args: A,
) -> TryDelayedRemote<fn(A) -> Result<R, E>, A>
where
    A: Serialize + DeserializeOwned + Send + 'static,
    R: Serialize + DeserializeOwned + Send + 'static,
    E: Into<BoxError> + 'static,
{
    TryDelayedRemote { f, args }
}

impl<F, A> DelayedRemote<F, A> {
    /// The arguments the function will be called with.
    pub fn args(&self) -> &A {
        &self.args
    }
}

impl<F, A> TryDelayedRemote<F, A> {
    /// The arguments the function will be called with.
    pub fn args(&self) -> &A {
        &self.args
    }
}

/// What a process-ready task type has: its arguments, its function's
/// address, and a way to call a function of its type found by address.
pub(crate) trait RemoteCall: Task {
    type Args: Serialize + DeserializeOwned;
    fn remote_args(&self) -> &Self::Args;
    /// The address of the task's function.
    fn function(&self) -> usize;
    /// Calls the function at `address` with `args`.
    ///
    /// # Safety
    ///
    /// `address` must be that of a function of this task type's function
    /// pointer type, as [`function`](RemoteCall::function) returned in this
    /// process or in one running the same executable image.
    unsafe fn call_at(address: usize, args: Self::Args) -> Result<Self::Output, BoxError>;
}

impl<A, R> Task for DelayedRemote<fn(A) -> R, A>
where
    A: Serialize + DeserializeOwned + Send + 'static,
    R: Serialize + DeserializeOwned + Send + 'static,
{
    type Output = R;
    const INFALLIBLE: bool = true;

    #[inline]
    fn run(self) -> Result<R, BoxError> {
        Ok((self.f)(self.args))
    }

    fn remote_codec() -> Option<RemoteCodec<Self>> {
        Some(codec_of())
    }
}

impl<A, R> RemoteCall for DelayedRemote<fn(A) -> R, A>
where
    A: Serialize + DeserializeOwned + Send + 'static,
    R: Serialize + DeserializeOwned + Send + 'static,
{
    type Args = A;
    fn remote_args(&self) -> &A {
        &self.args
    }
    fn function(&self) -> usize {
        self.f as usize
    }
    unsafe fn call_at(address: usize, args: A) -> Result<R, BoxError> {
        // SAFETY: the caller guarantees `address` is a `fn(A) -> R` of this
        // image.
        let f = unsafe { std::mem::transmute::<usize, fn(A) -> R>(address) };
        Ok(f(args))
    }
}

impl<A, R, E> Task for TryDelayedRemote<fn(A) -> Result<R, E>, A>
where
    A: Serialize + DeserializeOwned + Send + 'static,
    R: Serialize + DeserializeOwned + Send + 'static,
    E: Into<BoxError> + 'static,
{
    type Output = R;

    #[inline]
    fn run(self) -> Result<R, BoxError> {
        (self.f)(self.args).map_err(Into::into)
    }

    fn remote_codec() -> Option<RemoteCodec<Self>> {
        Some(codec_of())
    }
}

impl<A, R, E> RemoteCall for TryDelayedRemote<fn(A) -> Result<R, E>, A>
where
    A: Serialize + DeserializeOwned + Send + 'static,
    R: Serialize + DeserializeOwned + Send + 'static,
    E: Into<BoxError> + 'static,
{
    type Args = A;
    fn remote_args(&self) -> &A {
        &self.args
    }
    fn function(&self) -> usize {
        self.f as usize
    }
    unsafe fn call_at(address: usize, args: A) -> Result<R, BoxError> {
        // SAFETY: the caller guarantees `address` is a
        // `fn(A) -> Result<R, E>` of this image.
        let f = unsafe { std::mem::transmute::<usize, fn(A) -> Result<R, E>>(address) };
        f(args).map_err(Into::into)
    }
}

macro_rules! into_task_is_self {
    ($($ty:ident),*) => {$(
        impl<F, A> IntoTask for $ty<F, A>
        where
            $ty<F, A>: Task,
        {
            type Task = Self;
            const INFALLIBLE: bool = true;

            #[inline]
            fn into_task(self) -> Result<Self, BoxError> {
                Ok(self)
            }
        }
    )*};
}
into_task_is_self!(DelayedRemote, TryDelayedRemote);

/// What a worker runs for one batch: the entry point of one task type.
pub(crate) type Entry = fn(&Blob<'_>, u64, Pending) -> Reply;

/// How a task type crosses to another process and back: returned by
/// [`Task::remote_codec`] for the task types made by [`delayed_remote`] and
/// [`try_delayed_remote`], and `None` for every other task type. It is
/// opaque: a backend uses it through [`Batch::into_remote`](crate::Batch::into_remote).
pub struct RemoteCodec<T: Task> {
    pub(crate) entry: Entry,
    pub(crate) type_hash: u64,
    pub(crate) task_type: &'static str,
    pub(crate) encode: Encode<T>,
    pub(crate) decode: Decode<T>,
}

/// Writes the arguments of a batch of tasks.
pub(crate) type Encode<T> = fn(&[T], &mut Vec<u8>) -> Result<(), BoxError>;
/// Reads the results of a batch of tasks.
pub(crate) type Decode<T> = fn(&[u8]) -> Result<Vec<<T as Task>::Output>, BoxError>;

impl<T: Task> std::fmt::Debug for RemoteCodec<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteCodec")
            .field("task_type", &self.task_type)
            .finish_non_exhaustive()
    }
}

/// The codec of a process-ready task type.
fn codec_of<T>() -> RemoteCodec<T>
where
    T: RemoteCall,
    T::Output: Serialize + DeserializeOwned,
{
    RemoteCodec {
        entry: entry::<T>,
        type_hash: type_hash::<T>(),
        task_type: type_name::<T>(),
        encode: encode::<T>,
        decode: decode::<T>,
    }
}

/// A digest of the task type's name, checked by the worker before it
/// decodes anything: a second guard (after the build check) that the
/// function found at the sent offset is the one meant.
pub(crate) fn type_hash<T: ?Sized>() -> u64 {
    // `DefaultHasher::new` has fixed keys: the same in every process of
    // this build, which is all that is compared.
    let mut h = std::hash::DefaultHasher::new();
    type_name::<T>().hash(&mut h);
    h.finish()
}

/// The arguments of a batch as sent: the functions' offsets from
/// [`anchor`] (one for the whole batch when all tasks call the same
/// function, which is the rule, else one per task), then the arguments.
type Sent<A> = (Vec<i64>, Vec<A>);

fn encode<T: RemoteCall>(tasks: &[T], out: &mut Vec<u8>) -> Result<(), BoxError> {
    let base = anchor_address();
    let offset = |task: &T| task.function().wrapping_sub(base) as i64;
    let one = tasks.first().map(offset);
    let functions: Vec<i64> = if tasks.iter().all(|t| Some(offset(t)) == one) {
        one.into_iter().collect()
    } else {
        tasks.iter().map(offset).collect()
    };
    let args: Vec<&T::Args> = tasks.iter().map(RemoteCall::remote_args).collect();
    let sent: Sent<&T::Args> = (functions, args);
    joblib_persist::dump_to_writer(&sent, out)?;
    Ok(())
}

fn decode<T: RemoteCall>(bytes: &[u8]) -> Result<Vec<T::Output>, BoxError>
where
    T::Output: DeserializeOwned,
{
    Ok(joblib_persist::load_from_reader(bytes)?)
}

/// A reply that ran nothing: the batch could not be decoded.
fn transport_failure(message: String) -> Reply {
    Reply {
        status: Status::Transport,
        completed: 0,
        message,
        results: Vec::new(),
    }
}

/// Runs a batch of `T` in a worker: decodes the arguments, runs each task
/// (stopping at the first failure), encodes the results.
fn entry<T: RemoteCall>(args: &Blob<'_>, expected_type: u64, pending: Pending) -> Reply
where
    T::Output: Serialize,
{
    if type_hash::<T>() != expected_type {
        return transport_failure(format!(
            "the worker found another task type than the parent sent ({})",
            type_name::<T>()
        ));
    }
    let decoded: Result<Sent<T::Args>, BoxError> = shared::decoding(pending, || match args {
        Blob::Bytes(bytes) => Ok(joblib_persist::load_from_reader(&bytes[..])?),
        Blob::File(path) => Ok(joblib_persist::load_mmap(
            path,
            joblib_persist::MmapMode::ReadOnly,
        )?),
    });
    let (functions, args) = match decoded {
        Ok(sent) => sent,
        Err(e) => {
            return transport_failure(format!("the worker could not decode the arguments: {e}"));
        }
    };
    let addresses = match function_addresses(&functions, args.len()) {
        Ok(addresses) => addresses,
        Err(reply) => return reply,
    };
    let mut results: Vec<T::Output> = Vec::with_capacity(args.len());
    let mut failure = None;
    for (args, &address) in args.into_iter().zip(addresses.iter().cycle()) {
        clear_backtrace();
        // SAFETY: the request comes from this build (checked by the caller
        // before running this entry point, whose type hash matched `T`), so
        // each offset was taken from a function of `T`'s function type in an
        // identical image; `function_addresses` checked that it lies in this
        // executable's code.
        match catch_unwind(AssertUnwindSafe(|| unsafe { T::call_at(address, args) })) {
            Ok(Ok(r)) => results.push(r),
            Ok(Err(e)) => {
                failure = Some((Status::TaskError, e.to_string()));
                break;
            }
            Err(payload) => {
                let mut message = panic_message(payload.as_ref());
                if let Some(trace) = take_backtrace() {
                    message.push_str("\n\nworker backtrace:\n");
                    message.push_str(&trace);
                }
                failure = Some((Status::Panic, message));
                break;
            }
        }
    }
    let completed = results.len() as u64;
    let mut encoded = Vec::new();
    if let Err(e) = joblib_persist::dump_to_writer(&results, &mut encoded) {
        return transport_failure(format!("the worker could not encode the results: {e}"));
    }
    let (status, message) = failure.unwrap_or((Status::Done, String::new()));
    Reply {
        status,
        completed,
        message,
        results: encoded,
    }
}

/// The functions' addresses in this process from their offsets: one for the
/// whole batch, or one per task; each must lie in the code of this
/// executable, as the entry point must.
fn function_addresses(offsets: &[i64], tasks: usize) -> Result<Vec<usize>, Reply> {
    if offsets.is_empty() && tasks > 0 || offsets.len() > 1 && offsets.len() != tasks {
        return Err(transport_failure(format!(
            "the request names {} functions for {tasks} tasks",
            offsets.len()
        )));
    }
    let range = match code_range() {
        Ok(range) => *range,
        Err(e) => return Err(refused(format!("the worker refused the request: {e}"))),
    };
    offsets
        .iter()
        .map(|&offset| {
            let address = entry_address(offset);
            match range {
                Some((start, end)) if address < start || address >= end => Err(refused(format!(
                    "the worker refused the request: a task's function ({address:#x}) lies \
                     outside the code of the object that holds joblib-parallel \
                     ({start:#x}..{end:#x})"
                ))),
                _ => Ok(address),
            }
        })
        .collect()
}

/// A reply that ran nothing: the request failed a check.
fn refused(message: String) -> Reply {
    Reply {
        status: Status::Refused,
        completed: 0,
        message,
        results: Vec::new(),
    }
}

/// A function whose address every process of this build agrees on: entry
/// points are sent as offsets from it.
#[inline(never)]
pub(crate) fn anchor() -> u64 {
    std::hint::black_box(0x6a6f_626c_6962)
}

/// The address of [`anchor`] in this process.
pub(crate) fn anchor_address() -> usize {
    anchor as fn() -> u64 as usize
}

/// The address `offset` bytes from [`anchor`].
pub(crate) fn entry_address(offset: i64) -> usize {
    anchor_address().wrapping_add(offset as usize)
}

/// The offset of `entry` from [`anchor`], as sent to workers.
pub(crate) fn entry_offset(entry: Entry) -> i64 {
    let base = anchor as fn() -> u64 as usize;
    (entry as usize).wrapping_sub(base) as i64
}

/// Which copy of this crate the program holds, should two versions be
/// linked into one binary: the distance from this copy's [`anchor`] to a
/// function of the standard library, of which there is one copy. Part of
/// the build identity, so that a request made by one copy is refused by
/// the other rather than resolved against the wrong anchor.
pub(crate) fn copy_discriminator() -> u64 {
    let base = anchor as fn() -> u64 as usize;
    let std_fn = std::process::id as fn() -> u32 as usize;
    base.wrapping_sub(std_fn) as u64
}

/// The entry point at `offset` from [`anchor`].
///
/// # Safety
///
/// `offset` must have been made by [`entry_offset`] in a process running
/// the same build of the same executable (the build identity of the
/// request, checked by the caller, says it was).
pub(crate) unsafe fn entry_at(offset: i64) -> Entry {
    let address = entry_address(offset);
    // SAFETY: the caller guarantees the offset was taken from an `Entry` in
    // an identical image, so `address` is that function here too.
    unsafe { std::mem::transmute::<usize, Entry>(address) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offset_of(f: fn(u64) -> u64) -> i64 {
        (f as usize).wrapping_sub(anchor_address()) as i64
    }

    fn triple(x: u64) -> u64 {
        3 * x
    }

    #[test]
    fn function_offsets_come_back_as_the_functions() {
        let addresses = function_addresses(&[offset_of(triple)], 5).unwrap();
        assert_eq!(addresses, [triple as fn(u64) -> u64 as usize]);
        // SAFETY: the address was just taken from a `fn(u64) -> u64`.
        let r = unsafe { DelayedRemote::<fn(u64) -> u64, u64>::call_at(addresses[0], 4) };
        assert_eq!(r.unwrap(), 12);
    }

    #[test]
    fn a_count_that_does_not_match_the_tasks_is_a_transport_failure() {
        for (offsets, tasks) in [(vec![], 1), (vec![0, 0], 3)] {
            let reply = function_addresses(&offsets, tasks).unwrap_err();
            assert!(matches!(reply.status, Status::Transport));
            assert!(reply.message.contains("functions for"), "{}", reply.message);
        }
        assert!(function_addresses(&[], 0).unwrap().is_empty());
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_function_outside_the_programs_code_is_refused_not_called() {
        let reply = function_addresses(&[offset_of(triple), 1 << 60], 2).unwrap_err();
        assert!(matches!(reply.status, Status::Refused));
        assert!(
            reply.message.contains("outside the code"),
            "{}",
            reply.message
        );
    }
}
