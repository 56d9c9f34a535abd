//! Tasks: a callable together with its arguments, built by [`delayed`].

use crate::error::BoxError;

/// One unit of work: something that can be run once, on any thread, to
/// produce a result or an error.
///
/// Build tasks with [`delayed`] (infallible functions) or [`try_delayed`]
/// (functions returning `Result`); implement this trait yourself only for
/// task types of your own.
pub trait Task: Send + 'static {
    /// What the task produces.
    type Output: Send + 'static;

    /// `true` if [`run`](Task::run) never returns `Err`. Workers then run
    /// the task in a tighter loop. A task that sets it and fails anyway is
    /// reported as a panic. Defaults to `false`.
    const INFALLIBLE: bool = false;

    /// Runs the task. An `Err` stops the parallel call and is reported as
    /// [`Error::Task`](crate::Error::Task) with this task's index.
    fn run(self) -> Result<Self::Output, BoxError>;

    /// How tasks of this type travel to another process; `None` (the
    /// default) for tasks that can only run in this process. Only
    /// [`delayed_remote`](crate::delayed_remote) and
    /// [`try_delayed_remote`](crate::try_delayed_remote) tasks have one.
    #[cfg(feature = "remote")]
    fn remote_codec() -> Option<crate::remote::RemoteCodec<Self>>
    where
        Self: Sized,
    {
        None
    }
}

/// What an input iterator may yield: a task, or a `Result` of a task when
/// producing the task itself can fail.
///
/// An `Err` item stops the call and is reported as
/// [`Error::Input`](crate::Error::Input) with its position.
pub trait IntoTask {
    /// The task produced.
    type Task: Task;

    /// `true` if [`into_task`](IntoTask::into_task) never returns `Err`,
    /// which lets the input be read in a tighter loop. An item that sets it
    /// and fails anyway is reported as a panic of the input. Defaults to
    /// `false`.
    const INFALLIBLE: bool = false;

    /// The task, or the error met while producing it.
    fn into_task(self) -> Result<Self::Task, BoxError>;
}

/// A function and its arguments, run later by [`Parallel`](crate::Parallel).
///
/// Made by [`delayed`]. The function may capture state (`move` closures),
/// as long as it is `Send + 'static`.
#[derive(Clone, Copy)]
pub struct Delayed<F, A> {
    f: F,
    args: A,
}

/// A fallible function and its arguments, made by [`try_delayed`].
#[derive(Clone, Copy)]
pub struct TryDelayed<F, A> {
    f: F,
    args: A,
}

/// Wraps a call `f(args)` to run later, possibly on another thread: the Rust
/// spelling of joblib's `delayed(f)(args)`.
///
/// Several arguments are passed as a tuple and taken apart in the closure.
///
/// ```
/// use joblib_parallel::{Parallel, delayed};
///
/// let sums = Parallel::new()
///     .n_jobs(2)
///     .run((0..4).map(|i| delayed(|(a, b): (i32, i32)| a + b, (i, 10))))?;
/// assert_eq!(sums, [10, 11, 12, 13]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn delayed<F, A, R>(f: F, args: A) -> Delayed<F, A>
where
    F: FnOnce(A) -> R + Send + 'static,
    A: Send + 'static,
    R: Send + 'static,
{
    Delayed { f, args }
}

/// Like [`delayed`], for a function returning `Result`: an `Err` stops the
/// call and comes back as [`Error::Task`](crate::Error::Task), naming the
/// task.
///
/// ```
/// use joblib_parallel::{Error, Parallel, try_delayed};
///
/// let parse = |s: &'static str| s.parse::<i32>();
/// let err = Parallel::new()
///     .n_jobs(2)
///     .run(["1", "2", "x"].into_iter().map(|s| try_delayed(parse, s)))
///     .unwrap_err();
/// assert!(matches!(err, Error::Task { index: 2, .. }));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn try_delayed<F, A, R, E>(f: F, args: A) -> TryDelayed<F, A>
where
    F: FnOnce(A) -> Result<R, E> + Send + 'static,
    A: Send + 'static,
    R: Send + 'static,
    E: Into<BoxError>,
{
    TryDelayed { f, args }
}

impl<F, A> Delayed<F, A> {
    /// The function, and the arguments it will be called with.
    pub fn into_parts(self) -> (F, A) {
        (self.f, self.args)
    }
}

impl<F, A> TryDelayed<F, A> {
    /// The function, and the arguments it will be called with.
    pub fn into_parts(self) -> (F, A) {
        (self.f, self.args)
    }
}

impl<F, A, R> Task for Delayed<F, A>
where
    F: FnOnce(A) -> R + Send + 'static,
    A: Send + 'static,
    R: Send + 'static,
{
    type Output = R;
    const INFALLIBLE: bool = true;

    #[inline]
    fn run(self) -> Result<R, BoxError> {
        Ok((self.f)(self.args))
    }
}

impl<F, A, R, E> Task for TryDelayed<F, A>
where
    F: FnOnce(A) -> Result<R, E> + Send + 'static,
    A: Send + 'static,
    R: Send + 'static,
    E: Into<BoxError>,
{
    type Output = R;

    #[inline]
    fn run(self) -> Result<R, BoxError> {
        (self.f)(self.args).map_err(Into::into)
    }
}

impl<F, A, R> IntoTask for Delayed<F, A>
where
    F: FnOnce(A) -> R + Send + 'static,
    A: Send + 'static,
    R: Send + 'static,
{
    type Task = Self;
    const INFALLIBLE: bool = true;

    #[inline]
    fn into_task(self) -> Result<Self, BoxError> {
        Ok(self)
    }
}

impl<F, A, R, E> IntoTask for TryDelayed<F, A>
where
    F: FnOnce(A) -> Result<R, E> + Send + 'static,
    A: Send + 'static,
    R: Send + 'static,
    E: Into<BoxError>,
{
    type Task = Self;
    const INFALLIBLE: bool = true;

    #[inline]
    fn into_task(self) -> Result<Self, BoxError> {
        Ok(self)
    }
}

impl<T: IntoTask, E: Into<BoxError>> IntoTask for Result<T, E> {
    type Task = T::Task;

    #[inline]
    fn into_task(self) -> Result<Self::Task, BoxError> {
        self.map_err(Into::into).and_then(IntoTask::into_task)
    }
}

/// Unwraps the result of an `INFALLIBLE` task or item.
#[inline]
pub(crate) fn infallible<T>(result: Result<T, BoxError>) -> T {
    match result {
        Ok(value) => value,
        Err(e) => panic!("a task or input declared infallible failed: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delayed_calls_with_its_arguments() {
        let t = delayed(|(a, b): (u32, u32)| a * b, (6, 7));
        assert_eq!(t.run().unwrap(), 42);
    }

    #[test]
    fn try_delayed_passes_errors_through() {
        let t = try_delayed(|s: &'static str| s.parse::<u8>(), "300");
        let err = t.run().unwrap_err();
        assert!(err.to_string().contains("too large"), "{err}");
    }

    #[test]
    fn result_items_are_input_errors() {
        let ok: Result<_, std::io::Error> = Ok(delayed(|x: u8| x, 1));
        assert_eq!(ok.into_task().unwrap().run().unwrap(), 1);
        type Square = Delayed<fn(u8) -> u8, u8>;
        let bad: Result<Square, _> = Err(std::io::Error::other("no input"));
        assert_eq!(bad.into_task().err().unwrap().to_string(), "no input");
    }
}
