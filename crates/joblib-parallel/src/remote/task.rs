//! Tasks that can run in another process: a function known by its place in
//! the binary, and serialized arguments.

use std::any::type_name;
use std::hash::{Hash, Hasher};
use std::marker::PhantomData;
use std::panic::{AssertUnwindSafe, catch_unwind};

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::format::{Reply, Status};
use super::serve::{clear_backtrace, take_backtrace};
use super::shared::{self, Pending};
use super::transport::Blob;
use crate::error::{BoxError, panic_message};
use crate::task::{IntoTask, Task};

/// A function and its arguments that may run in a worker process: made by
/// [`delayed_remote`].
///
/// It is a [`Task`] like any other, so it runs on every backend; only the
/// `"processes"` backend sends it to another process.
#[derive(Clone, Copy)]
pub struct DelayedRemote<F, A> {
    f: PhantomData<F>,
    args: A,
}

/// A fallible function and its arguments that may run in a worker process:
/// made by [`try_delayed_remote`].
#[derive(Clone, Copy)]
pub struct TryDelayedRemote<F, A> {
    f: PhantomData<F>,
    args: A,
}

/// Refuses, when the program is compiled, a function type that is not
/// zero-sized: a closure that captures something cannot travel.
macro_rules! assert_zero_sized {
    ($f:ty) => {
        const {
            assert!(
                size_of::<$f>() == 0,
                "a task for worker processes must be a function or a closure that captures \
                 nothing (a zero-sized type): pass the data the closure captures as an \
                 argument instead, e.g. delayed_remote(|(x, data)| ..., (x, data))"
            )
        }
    };
}

/// Wraps a call `f(args)` so that it can run in a worker process of the
/// `"processes"` backend (crate `joblib-process`), or any other backend
/// that runs tasks elsewhere through a [`RemoteBatch`](crate::RemoteBatch): the process-ready spelling of
/// [`delayed`](fn@crate::delayed).
///
/// `f` must be a `fn` item or a closure that captures nothing: a worker
/// finds the function in its own copy of the program, so there is no
/// captured state to carry. A capturing closure is refused when the program
/// is compiled, with a message saying to pass the captured data as an
/// argument. The arguments and the result cross the process boundary in
/// joblib-persist's format, so they must be `Serialize` and
/// `DeserializeOwned`.
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
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// A closure that captures a variable does not compile:
///
/// ```compile_fail
/// use joblib_parallel::delayed_remote;
/// let offset = 10;
/// let task = delayed_remote(move |x: i32| x + offset, 1);
/// ```
pub fn delayed_remote<F, A, R>(f: F, args: A) -> DelayedRemote<F, A>
where
    F: Fn(A) -> R + Copy + Send + Sync + 'static,
    A: Serialize + DeserializeOwned + Send + 'static,
    R: Serialize + DeserializeOwned + Send + 'static,
{
    assert_zero_sized!(F);
    let _ = f;
    DelayedRemote {
        f: PhantomData,
        args,
    }
}

/// Like [`delayed_remote`], for a function returning `Result`: an `Err`
/// stops the call and comes back as [`Error::Task`](crate::Error::Task)
/// carrying the error's message (the error value itself stays in the worker).
pub fn try_delayed_remote<F, A, R, E>(f: F, args: A) -> TryDelayedRemote<F, A>
where
    F: Fn(A) -> Result<R, E> + Copy + Send + Sync + 'static,
    A: Serialize + DeserializeOwned + Send + 'static,
    R: Serialize + DeserializeOwned + Send + 'static,
    E: Into<BoxError>,
{
    assert_zero_sized!(F);
    let _ = f;
    TryDelayedRemote {
        f: PhantomData,
        args,
    }
}

/// A value of the zero-sized function type `F`.
///
/// The constructors hold an `F` and check at compile time that it is
/// zero-sized; `F: Copy`, so making another copy is allowed.
fn conjure<F: Copy>() -> F {
    assert_zero_sized!(F);
    // SAFETY: `F` is zero-sized, so reading it from a dangling, well-aligned
    // pointer reads no memory. `F` is inhabited: a value of it was given to
    // `delayed_remote` (in this process or in the identical parent), and it
    // is `Copy`, so one more value breaks no ownership rule.
    unsafe { std::ptr::NonNull::<F>::dangling().as_ptr().read() }
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

/// What a process-ready task type has: its arguments, and a way to run
/// them in a process that holds no value of the task.
pub(crate) trait RemoteCall: Task {
    type Args: Serialize + DeserializeOwned;
    fn remote_args(&self) -> &Self::Args;
    fn call(args: Self::Args) -> Result<Self::Output, BoxError>;
}

impl<F, A, R> Task for DelayedRemote<F, A>
where
    F: Fn(A) -> R + Copy + Send + Sync + 'static,
    A: Serialize + DeserializeOwned + Send + 'static,
    R: Serialize + DeserializeOwned + Send + 'static,
{
    type Output = R;
    const INFALLIBLE: bool = true;

    #[inline]
    fn run(self) -> Result<R, BoxError> {
        Ok(conjure::<F>()(self.args))
    }

    fn remote_codec() -> Option<RemoteCodec<Self>> {
        Some(codec_of())
    }
}

impl<F, A, R> RemoteCall for DelayedRemote<F, A>
where
    F: Fn(A) -> R + Copy + Send + Sync + 'static,
    A: Serialize + DeserializeOwned + Send + 'static,
    R: Serialize + DeserializeOwned + Send + 'static,
{
    type Args = A;
    fn remote_args(&self) -> &A {
        &self.args
    }
    fn call(args: A) -> Result<R, BoxError> {
        Ok(conjure::<F>()(args))
    }
}

impl<F, A, R, E> Task for TryDelayedRemote<F, A>
where
    F: Fn(A) -> Result<R, E> + Copy + Send + Sync + 'static,
    A: Serialize + DeserializeOwned + Send + 'static,
    R: Serialize + DeserializeOwned + Send + 'static,
    E: Into<BoxError>,
{
    type Output = R;

    #[inline]
    fn run(self) -> Result<R, BoxError> {
        conjure::<F>()(self.args).map_err(Into::into)
    }

    fn remote_codec() -> Option<RemoteCodec<Self>> {
        Some(codec_of())
    }
}

impl<F, A, R, E> RemoteCall for TryDelayedRemote<F, A>
where
    F: Fn(A) -> Result<R, E> + Copy + Send + Sync + 'static,
    A: Serialize + DeserializeOwned + Send + 'static,
    R: Serialize + DeserializeOwned + Send + 'static,
    E: Into<BoxError>,
{
    type Args = A;
    fn remote_args(&self) -> &A {
        &self.args
    }
    fn call(args: A) -> Result<R, BoxError> {
        conjure::<F>()(args).map_err(Into::into)
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

fn encode<T: RemoteCall>(tasks: &[T], out: &mut Vec<u8>) -> Result<(), BoxError> {
    let args: Vec<&T::Args> = tasks.iter().map(RemoteCall::remote_args).collect();
    joblib_persist::dump_to_writer(&args, out)?;
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
    let decoded: Result<Vec<T::Args>, BoxError> = shared::decoding(pending, || match args {
        Blob::Bytes(bytes) => Ok(joblib_persist::load_from_reader(&bytes[..])?),
        Blob::File(path) => Ok(joblib_persist::load_mmap(
            path,
            joblib_persist::MmapMode::ReadOnly,
        )?),
    });
    let args = match decoded {
        Ok(args) => args,
        Err(e) => {
            return transport_failure(format!("the worker could not decode the arguments: {e}"));
        }
    };
    let mut results: Vec<T::Output> = Vec::with_capacity(args.len());
    let mut failure = None;
    for args in args {
        clear_backtrace();
        match catch_unwind(AssertUnwindSafe(|| T::call(args))) {
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
