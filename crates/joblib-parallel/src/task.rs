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
    /// [`delayed_remote`](fn@crate::delayed_remote) and
    /// [`try_delayed_remote`](fn@crate::try_delayed_remote) tasks have one.
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

/// Support for the `delayed!` family of macros; not a public API.
#[doc(hidden)]
pub mod __private {
    /// Calls a function of several arguments with a tuple of them.
    pub trait CallWith<Args> {
        /// What the function returns.
        type Output;
        /// `self(a, b, ...)` for `args == (a, b, ...)`.
        fn call_with(self, args: Args) -> Self::Output;
    }

    macro_rules! call_with {
        ($($arg:ident),+) => {
            impl<Func, Ret, $($arg),+> CallWith<($($arg,)+)> for Func
            where
                Func: FnOnce($($arg),+) -> Ret,
            {
                type Output = Ret;
                #[inline]
                #[allow(non_snake_case)] // the argument names are the type names
                fn call_with(self, ($($arg,)+): ($($arg,)+)) -> Ret {
                    self($($arg),+)
                }
            }
        };
    }

    call_with!(A, B);
    call_with!(A, B, C);
    call_with!(A, B, C, D);
    call_with!(A, B, C, D, E);
    call_with!(A, B, C, D, E, F);
    call_with!(A, B, C, D, E, F, G);
    call_with!(A, B, C, D, E, F, G, H);
    call_with!(A, B, C, D, E, F, G, H, I);
    call_with!(A, B, C, D, E, F, G, H, I, J);
    call_with!(A, B, C, D, E, F, G, H, I, J, K);
    call_with!(A, B, C, D, E, F, G, H, I, J, K, L);
}

/// `delayed!(f, a, b, c)`: a task calling `f(a, b, c)`, the Rust spelling
/// of joblib's `delayed(f)(a, b, c)` for a function of several arguments.
///
/// `delayed!(f, x)` is [`delayed(f, x)`](fn@crate::delayed) and `delayed!(f)`
/// calls `f()`; up to 12 arguments. `f` is any function or closure that
/// [`delayed`](fn@crate::delayed) accepts (it may capture state); the
/// arguments are evaluated where the macro is written, after `f`, and the
/// call runs later on a worker. For a function returning `Result` use
/// [`try_delayed!`](crate::try_delayed!); for worker processes,
/// `delayed_remote!` (feature `remote`).
///
/// ```
/// use joblib_parallel::{Parallel, delayed};
///
/// fn axpy(a: f64, x: f64, y: f64) -> f64 {
///     a * x + y
/// }
///
/// let out = Parallel::new()
///     .n_jobs(2)
///     .run((0..4).map(|i| delayed!(axpy, 2.0, f64::from(i), 1.0)))?;
/// assert_eq!(out, [1.0, 3.0, 5.0, 7.0]);
///
/// // One argument, and none.
/// let lens = Parallel::new().run(["a", "bb"].into_iter().map(|s| delayed!(str::len, s)))?;
/// assert_eq!(lens, [1, 2]);
/// let pid = Parallel::new().run([delayed!(std::process::id)])?;
/// assert_eq!(pid, [std::process::id()]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[macro_export]
macro_rules! delayed {
    ($f:expr $(,)?) => {{
        let __joblib_f = $f;
        $crate::delayed(move |()| __joblib_f(), ())
    }};
    ($f:expr, $x:expr $(,)?) => {
        $crate::delayed($f, $x)
    };
    ($f:expr, $($x:expr),+ $(,)?) => {{
        let __joblib_f = $f;
        $crate::delayed(
            move |__joblib_args| $crate::__private::CallWith::call_with(__joblib_f, __joblib_args),
            ($($x,)+),
        )
    }};
}

/// `try_delayed!(f, a, b, c)`: [`delayed!`](crate::delayed!) for a function
/// returning `Result`, as [`try_delayed`](fn@crate::try_delayed) is for
/// [`delayed`](fn@crate::delayed): an `Err` stops the call and comes back as
/// [`Error::Task`](crate::Error::Task).
///
/// ```
/// use joblib_parallel::{Error, Parallel, try_delayed};
///
/// fn checked_div(a: i32, b: i32) -> Result<i32, String> {
///     a.checked_div(b).ok_or_else(|| format!("{a} / {b}"))
/// }
///
/// let err = Parallel::new()
///     .run((0..3).map(|i| try_delayed!(checked_div, 6, 2 - i)))
///     .unwrap_err();
/// assert!(matches!(err, Error::Task { index: 2, .. }));
/// ```
#[macro_export]
macro_rules! try_delayed {
    ($f:expr $(,)?) => {{
        let __joblib_f = $f;
        $crate::try_delayed(move |()| __joblib_f(), ())
    }};
    ($f:expr, $x:expr $(,)?) => {
        $crate::try_delayed($f, $x)
    };
    ($f:expr, $($x:expr),+ $(,)?) => {{
        let __joblib_f = $f;
        $crate::try_delayed(
            move |__joblib_args| $crate::__private::CallWith::call_with(__joblib_f, __joblib_args),
            ($($x,)+),
        )
    }};
}

/// `delayed_remote!(f, a, b, c)`: a task calling `f(a, b, c)` that may run
/// in a worker process, as [`delayed_remote`](fn@crate::delayed_remote) does for `f(args)`; the
/// process-ready spelling of [`delayed!`](crate::delayed!).
///
/// `delayed_remote!(f, x)` is [`delayed_remote(f, x)`](fn@crate::delayed_remote) and
/// `delayed_remote!(f)` calls `f()`; up to 12 arguments. `f` is the path of
/// a function or a closure written in place that captures nothing: the
/// macro calls it from a function of its own, so a closure that captures a
/// variable, or a variable holding a function, is refused by type checking
/// ("closures can only be coerced to `fn` types if they do not capture any
/// variables"); pass the data as one more argument. Every argument and the
/// result are `Serialize` and `DeserializeOwned` (the arguments travel as
/// one tuple).
///
/// ```
/// use joblib_parallel::{Parallel, delayed_remote};
///
/// fn norm(x: f64, y: f64) -> f64 {
///     (x * x + y * y).sqrt()
/// }
///
/// // Runs on threads here; `.backend("processes")` would use worker
/// // processes (crate `joblib-process`, with `joblib::init()` in `main`).
/// let norms = Parallel::new()
///     .n_jobs(2)
///     .run((0..3).map(|i| delayed_remote!(norm, 3.0 * f64::from(i), 4.0 * f64::from(i))))?;
/// assert_eq!(norms, [0.0, 5.0, 10.0]);
/// let sums = Parallel::new().run((0..3).map(|i| delayed_remote!(|a: i32, b: i32| a + b, i, 10)))?;
/// assert_eq!(sums, [10, 11, 12]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// A closure that captures a variable is a type error:
///
/// ```compile_fail,E0308
/// use joblib_parallel::delayed_remote;
/// let offset = 10;
/// let task = delayed_remote!(move |x: i32, y: i32| x + y + offset, 1, 2);
/// ```
#[cfg(feature = "remote")]
#[macro_export]
macro_rules! delayed_remote {
    ($f:expr $(,)?) => {
        $crate::delayed_remote(|()| ($f)(), ())
    };
    ($f:expr, $x:expr $(,)?) => {
        $crate::delayed_remote($f, $x)
    };
    ($f:expr, $($x:expr),+ $(,)?) => {
        $crate::delayed_remote(
            |__joblib_args| $crate::__private::CallWith::call_with($f, __joblib_args),
            ($($x,)+),
        )
    };
}

/// `try_delayed_remote!(f, a, b, c)`: `delayed_remote!`
/// for a function returning `Result`, as [`try_delayed_remote`](fn@crate::try_delayed_remote) is for
/// [`delayed_remote`](fn@crate::delayed_remote).
///
/// ```
/// use joblib_parallel::{Parallel, try_delayed_remote};
///
/// fn parse(text: String, radix: u32) -> Result<u8, std::num::ParseIntError> {
///     u8::from_str_radix(&text, radix)
/// }
///
/// let out = Parallel::new().run([try_delayed_remote!(parse, "ff".to_owned(), 16)])?;
/// assert_eq!(out, [255]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// ```compile_fail,E0308
/// use joblib_parallel::try_delayed_remote;
/// let radix = 16;
/// let task = try_delayed_remote!(move |t: String, _: ()| u8::from_str_radix(&t, radix), "ff".to_owned(), ());
/// ```
#[cfg(feature = "remote")]
#[macro_export]
macro_rules! try_delayed_remote {
    ($f:expr $(,)?) => {
        $crate::try_delayed_remote(|()| ($f)(), ())
    };
    ($f:expr, $x:expr $(,)?) => {
        $crate::try_delayed_remote($f, $x)
    };
    ($f:expr, $($x:expr),+ $(,)?) => {
        $crate::try_delayed_remote(
            |__joblib_args| $crate::__private::CallWith::call_with($f, __joblib_args),
            ($($x,)+),
        )
    };
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
    fn delayed_macro_calls_with_each_argument() {
        fn three(a: u8, b: String, c: Vec<u16>) -> String {
            format!("{a} {b} {c:?}")
        }
        let t = delayed!(three, 1, "two".to_owned(), vec![3]);
        assert_eq!(t.run().unwrap(), "1 two [3]");
        // One argument: exactly `delayed(f, x)`, a tuple stays one argument.
        type Pair = (u8, u8);
        let t: Delayed<fn(Pair) -> u8, Pair> = delayed!(|(a, b)| a - b, (9, 2));
        assert_eq!(t.run().unwrap(), 7);
        assert_eq!(delayed!(|| 5).run().unwrap(), 5);
        let owned = String::from("captured");
        let t = delayed!(move |n: usize, m: usize| owned.len() + n * m, 2, 3,);
        assert_eq!(t.run().unwrap(), 14);
        let twelve =
            |a: u8, b: u8, c: u8, d: u8, e: u8, f: u8, g: u8, h: u8, i: u8, j: u8, k: u8, l: u8| {
                [a, b, c, d, e, f, g, h, i, j, k, l]
                    .iter()
                    .map(|&x| u32::from(x))
                    .sum::<u32>()
            };
        let t = delayed!(twelve, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12);
        assert_eq!(t.run().unwrap(), 78);
    }

    #[test]
    fn try_delayed_macro_passes_errors_through() {
        let parse = |s: &str, radix: u32| u8::from_str_radix(s, radix);
        assert_eq!(try_delayed!(parse, "ff", 16).run().unwrap(), 255);
        let err = try_delayed!(parse, "1z", 10).run().unwrap_err();
        assert!(err.to_string().contains("invalid digit"), "{err}");
        let err = try_delayed!(|| Err::<u8, _>("nothing")).run().unwrap_err();
        assert_eq!(err.to_string(), "nothing");
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
