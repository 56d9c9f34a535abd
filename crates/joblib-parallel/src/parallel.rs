//! `Parallel`: the builder and its `run`.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crate::backend::{
    BackendSpec, ParallelBackend, SequentialBackend, ThreadBackend, is_registered, resolve_name,
};
use crate::batching::Timings;
use crate::config::{self, BatchSize, PreDispatch, Prefer, Require, Settings};
use crate::cpu::{cpu_count, resolve_n_jobs};
use crate::dispatch::{Engine, Event, Output, Plan};
use crate::error::Error;
use crate::iter::{Iter, IterUnordered};
use crate::nesting;
use crate::task::IntoTask;

/// The most `run` reserves for its results before they arrive.
const PREALLOCATE_BYTES: usize = 64 << 20;

/// Runs tasks in parallel and returns their results: joblib's
/// `Parallel(n_jobs=2)(delayed(f)(x) for x in xs)`.
///
/// Settings are made with chained setters; a setting not made here comes
/// from the enclosing [`parallel_config`](crate::parallel_config) scope,
/// then from the defaults: all CPUs (`n_jobs(-1)`), the thread backend,
/// automatic batches, `pre_dispatch("2*n_jobs")`, no timeout, quiet.
/// Invalid settings are reported by the first call (or by [`build`]) as
/// [`Error::InvalidConfig`].
///
/// A `Parallel` can be called any number of times; the thread backend keeps
/// its workers between calls (and between `Parallel`s with the same
/// `n_jobs`), so only the first call of a process pays for starting threads. With
/// automatic batching, a `Parallel` also keeps the time per task its calls
/// measured, by task type: a later call of the same tasks, on an input of
/// known length, sizes its first batches from it instead of measuring
/// again with one-task batches (its own measurements take over from its
/// first finished batch). Changing a setting forgets these times.
///
/// ```
/// use joblib_parallel::{Parallel, delayed};
///
/// let p = Parallel::new().n_jobs(2);
/// let squares = p.run((0..10u64).map(|x| delayed(|x: u64| x * x, x)))?;
/// assert_eq!(squares[9], 81);
/// let lens: Vec<usize> = p
///     .iter(["a", "bb", "ccc"].into_iter().map(|s| delayed(str::len, s)))
///     .collect::<Result<_, _>>()?;
/// assert_eq!(lens, [1, 2, 3]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// [`build`]: Parallel::build
#[derive(Default)]
#[must_use = "a Parallel does nothing until `run`, `iter` or `iter_unordered` is called"]
pub struct Parallel {
    settings: Settings,
    /// The backend made from the name set on this `Parallel`, kept so that a
    /// registered backend's factory runs once per `Parallel`.
    cached: Mutex<Option<Arc<dyn ParallelBackend>>>,
    /// Times per task measured by this `Parallel`'s calls, by task type:
    /// a later call of the same tasks starts from them.
    timings: Arc<Timings>,
}

impl Clone for Parallel {
    fn clone(&self) -> Self {
        Parallel {
            settings: self.settings.clone(),
            cached: Mutex::new(
                self.cached
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .clone(),
            ),
            timings: Arc::clone(&self.timings),
        }
    }
}

impl std::fmt::Debug for Parallel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Parallel")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Display for Parallel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.settings.n_jobs {
            Some(n) => write!(f, "Parallel(n_jobs={n})"),
            None => write!(f, "Parallel(n_jobs=None)"),
        }
    }
}

impl Parallel {
    /// A `Parallel` with nothing set (see the type's documentation for the
    /// defaults).
    pub fn new() -> Self {
        Parallel::default()
    }

    fn set(mut self, f: impl FnOnce(&mut Settings)) -> Self {
        f(&mut self.settings);
        *self
            .cached
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner) = None;
        // Other settings may run the same tasks at another speed.
        self.timings = Arc::default();
        self
    }

    /// Number of workers, with joblib's meaning: a positive count, `-1` for
    /// all CPUs ([`cpu_count`](crate::cpu_count)), `-2` for all but one,
    /// `n < -1` for `cpu_count + 1 + n`. `0` is an error. With `1` and no
    /// backend named, tasks run sequentially in the calling thread.
    pub fn n_jobs(self, n_jobs: i32) -> Self {
        self.set(|s| s.n_jobs = Some(n_jobs))
    }

    /// The backend: a name (`"threads"`, `"sequential"`, a name given to
    /// [`register_backend`](crate::register_backend)) or a value
    /// implementing [`ParallelBackend`].
    pub fn backend(self, backend: impl Into<BackendSpec>) -> Self {
        let backend = backend.into();
        self.set(|s| s.backend = Some(backend))
    }

    /// Tasks per batch: [`BatchSize::Auto`] (the default) or a fixed
    /// number (`batch_size(100)`). `0` is an error.
    pub fn batch_size(self, batch_size: impl Into<BatchSize>) -> Self {
        let batch_size = batch_size.into();
        self.set(|s| s.batch_size = Some(batch_size))
    }

    /// How many batches may be dispatched ahead of the results consumed:
    /// a number, an expression such as `"2*n_jobs"` (the default), or
    /// [`PreDispatch::All`]. This bounds how far the input is read ahead.
    pub fn pre_dispatch(self, pre_dispatch: impl Into<PreDispatch>) -> Self {
        let pre_dispatch = pre_dispatch.into();
        self.set(|s| s.pre_dispatch = Some(pre_dispatch))
    }

    /// The longest a single task may run. A task running longer stops the
    /// call with [`Error::Timeout`] naming it; results of tasks finished
    /// before it are still yielded by [`iter`](Parallel::iter). With a
    /// timeout, automatic batching sends tasks one by one, so that no
    /// finished result waits behind a stuck task. A zero timeout is an error.
    ///
    /// The calling thread watches the clock, so a backend that runs tasks on
    /// the calling thread (`"sequential"`, hence `n_jobs(1)`) cannot stop a
    /// call on a timeout.
    pub fn timeout(self, timeout: Duration) -> Self {
        self.set(|s| s.timeout = Some(timeout))
    }

    /// Progress messages on stderr (on stdout from 50 up), as joblib prints
    /// them: `[Parallel(n_jobs=2)]: Done  10 out of  10 | elapsed:    1.4s
    /// finished`. 0 (the default) is quiet; higher values print more often,
    /// above 10 after every batch.
    pub fn verbose(self, verbose: u32) -> Self {
        self.set(|s| s.verbose = Some(verbose))
    }

    /// A soft preference for the kind of backend, used when none is named
    /// here or in the enclosing [`parallel_config`](crate::parallel_config)
    /// (the rules: [`Require`]).
    pub fn prefer(self, prefer: Prefer) -> Self {
        self.set(|s| s.prefer = Some(prefer))
    }

    /// A hard requirement on the backend: with [`Require::SharedMem`], a
    /// backend named here whose tasks run outside this process is an
    /// [`Error::InvalidConfig`], and one configured by
    /// [`parallel_config`](crate::parallel_config) is set aside for threads,
    /// as in joblib (the rules, with `n_jobs`: [`Require`]).
    pub fn require(self, require: Require) -> Self {
        self.set(|s| s.require = Some(require))
    }

    /// Shows a progress bar of completed tasks on stderr.
    #[cfg(feature = "indicatif")]
    pub fn progress_bar(self, show: bool) -> Self {
        self.set(|s| s.progress_bar = Some(show))
    }

    /// Checks the settings and starts the backend's workers now rather than
    /// on the first call, like entering joblib's `with Parallel(...) as p:`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`], [`Error::UnknownBackend`] or
    /// [`Error::BackendStart`].
    pub fn build(self) -> Result<Self, Error> {
        let plan = self.plan(true)?;
        let call = crate::backend::CallInfo {
            call_id: crate::dispatch::next_call_id(),
            n_jobs: plan.workers,
            nesting_level: plan.level,
            timeout: plan.timeout,
        };
        plan.backend
            .start(&call)
            .map_err(|source| Error::BackendStart {
                backend: plan.backend.name().to_owned(),
                source,
            })?;
        plan.backend.finish(&call);
        Ok(self)
    }

    /// Runs every task and returns the results in input order.
    ///
    /// The first task error or panic stops the call: tasks not yet started
    /// never start, and the error names the task. An `Err` yielded by the
    /// input, or a panic of the input iterator, is returned as
    /// [`Error::Input`] or [`Error::InputPanic`].
    ///
    /// # Errors
    ///
    /// Any [`Error`]; with several failing tasks, the first one seen.
    pub fn run<I>(&self, tasks: I) -> Result<Vec<Output<I::IntoIter>>, Error>
    where
        I: IntoIterator,
        I::Item: IntoTask,
    {
        let tasks = tasks.into_iter();
        // Room for the known length up front (within reason: a size hint is
        // not a promise), so results are copied once, while still in cache.
        let room = tasks
            .size_hint()
            .0
            .min(PREALLOCATE_BYTES / std::mem::size_of::<Output<I::IntoIter>>().max(1));
        let mut engine = Engine::start(self.plan(remote_ok::<I::Item>())?, tasks, Some(room))?;
        loop {
            if let Err(error) = engine.fill(0) {
                engine.stop(0);
                return Err(error);
            }
            if let Some(error) = engine.take_input_error() {
                engine.stop(0);
                return Err(error);
            }
            match engine.wait() {
                None => break,
                Some(Event::TimedOut { error, .. }) => {
                    engine.stop(0);
                    return Err(error);
                }
                Some(Event::Done(outcome)) => {
                    if let Some(error) = outcome.error {
                        engine.stop(0);
                        return Err(error);
                    }
                }
            }
        }
        debug_assert!(!engine.has_in_flight());
        engine.finished();
        Ok(engine.take_collected().unwrap_or_default())
    }

    /// Runs the tasks and yields their results lazily, in input order.
    ///
    /// The input is read at most `pre_dispatch` batches ahead of the results
    /// consumed, so an endless input is fine: `p.iter(endless).take(10)`
    /// holds a bounded number of tasks. After an error is yielded (the
    /// results of all earlier tasks come first), the iterator ends. Dropping
    /// it early keeps the tasks not yet started from starting.
    ///
    /// Invalid settings come out as the first item.
    pub fn iter<I>(&self, tasks: I) -> Iter<I::IntoIter>
    where
        I: IntoIterator,
        I::Item: IntoTask,
    {
        Iter::new(
            self.plan(remote_ok::<I::Item>())
                .and_then(|plan| Engine::start(plan, tasks.into_iter(), None)),
        )
    }

    /// Runs the tasks and yields their results lazily, in the order they
    /// complete. Every result is yielded exactly once; use
    /// [`enumerate`](Iterator::enumerate) on the input and return the index
    /// from the task to know which is which.
    pub fn iter_unordered<I>(&self, tasks: I) -> IterUnordered<I::IntoIter>
    where
        I: IntoIterator,
        I::Item: IntoTask,
    {
        IterUnordered::new(
            self.plan(remote_ok::<I::Item>())
                .and_then(|plan| Engine::start(plan, tasks.into_iter(), None)),
        )
    }

    /// Resolves the settings for one call: explicit > thread config >
    /// nesting rule > default.
    fn plan(&self, remote_ok: bool) -> Result<Plan, Error> {
        let s = self.settings.or(&config::current());
        let level = nesting::nesting_level();
        let require_shared = s.require == Some(Require::SharedMem);
        let mut n_jobs = s.n_jobs;
        // A backend named on this `Parallel` is used as named (and refused
        // below if it cannot meet the requirement). One from
        // `parallel_config` is only a default: as in joblib, a hard
        // requirement it cannot meet sets it aside, together with the
        // configured `n_jobs` (meant for that backend), and the call runs
        // as if no backend were named, on one worker unless this
        // `Parallel` sets `n_jobs`.
        let named = match &s.backend {
            Some(spec) => {
                let backend = self.backend_for(spec)?;
                if require_shared
                    && self.settings.backend.is_none()
                    && !backend.supports_shared_memory()
                {
                    n_jobs = Some(self.settings.n_jobs.unwrap_or(1));
                    None
                } else {
                    Some(backend)
                }
            }
            None => None,
        };
        let (backend, n_jobs_arg): (Arc<dyn ParallelBackend>, i32) = match named {
            Some(backend) => (backend, n_jobs.unwrap_or(-1)),
            None if level >= 1 && n_jobs.is_none() => {
                // joblib's rule: one level down gets threads, limited so
                // that outer workers times inner workers stays near the CPU
                // count; deeper levels run sequentially.
                let share = cpu_count() / nesting::enclosing_workers().max(1);
                if level == 1 && share > 1 {
                    (
                        Arc::new(ThreadBackend),
                        i32::try_from(share).unwrap_or(i32::MAX),
                    )
                } else {
                    (Arc::new(SequentialBackend), 1)
                }
            }
            None => {
                let n_jobs_arg = n_jobs.unwrap_or(-1);
                let backend: Arc<dyn ParallelBackend> =
                    if resolve_n_jobs(n_jobs_arg, cpu_count())? == 1 {
                        Arc::new(SequentialBackend)
                    } else if s.prefer == Some(Prefer::Processes)
                        && !require_shared
                        && remote_ok
                        && is_registered("processes")
                    {
                        resolve_name("processes")?
                    } else {
                        Arc::new(ThreadBackend)
                    };
                (backend, n_jobs_arg)
            }
        };
        if require_shared && !backend.supports_shared_memory() {
            return Err(Error::config(
                "require",
                format!(
                    "Require::SharedMem was required, but the backend {:?} named on this \
                     Parallel runs tasks outside this process (name no backend, or one \
                     that shares memory such as \"threads\")",
                    backend.name()
                ),
            ));
        }
        let workers = backend
            .effective_n_jobs(resolve_n_jobs(n_jobs_arg, cpu_count())?)
            .max(1);
        let pre_dispatch = s
            .pre_dispatch
            .clone()
            .unwrap_or_default()
            .batches(workers)?;
        let timeout = match s.timeout {
            Some(t) if t.is_zero() => {
                return Err(Error::config(
                    "timeout",
                    "a zero timeout would stop every task",
                ));
            }
            t => t,
        };
        let batch_size = match s.batch_size.unwrap_or_default() {
            BatchSize::Fixed(0) => {
                return Err(Error::config(
                    "batch_size",
                    "0 tasks per batch would never run anything",
                ));
            }
            BatchSize::Auto if timeout.is_some() => BatchSize::Fixed(1),
            b => b,
        };
        Ok(Plan {
            backend,
            n_jobs_arg,
            workers,
            batch_size,
            pre_dispatch,
            timeout,
            verbose: s.verbose.unwrap_or(0),
            level,
            timings: Arc::clone(&self.timings),
            #[cfg(feature = "indicatif")]
            progress_bar: s.progress_bar.unwrap_or(false),
        })
    }

    /// The backend for `spec`; a name set on this `Parallel` is resolved
    /// once and kept.
    fn backend_for(&self, spec: &BackendSpec) -> Result<Arc<dyn ParallelBackend>, Error> {
        let own_name = matches!(
            (&self.settings.backend, spec),
            (Some(BackendSpec::Name(a)), BackendSpec::Name(b)) if a == b
        );
        if !own_name {
            return spec.resolve();
        }
        let mut cached = self.cached.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(backend) = cached.as_ref() {
            return Ok(Arc::clone(backend));
        }
        let backend = spec.resolve()?;
        *cached = Some(Arc::clone(&backend));
        Ok(backend)
    }
}

/// Whether the tasks of `I` can run in worker processes.
#[cfg(feature = "remote")]
fn remote_ok<I: IntoTask>() -> bool {
    <I::Task as crate::task::Task>::remote_codec().is_some()
}

/// Without the `remote` feature no task can leave this process.
#[cfg(not(feature = "remote"))]
#[allow(clippy::extra_unused_type_parameters)] // the same call with and without the feature
fn remote_ok<I: IntoTask>() -> bool {
    false
}
