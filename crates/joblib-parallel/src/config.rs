//! Settings shared by `Parallel` and `parallel_config`, and the thread-local
//! configuration scope.

use std::cell::RefCell;
use std::time::Duration;

use crate::backend::BackendSpec;
use crate::error::Error;

/// How many tasks go into one batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BatchSize {
    /// Measure task durations and size batches to last about the backend's
    /// [`target_batch_duration`](crate::ParallelBackend::target_batch_duration).
    #[default]
    Auto,
    /// Exactly this many tasks per batch (the last one may be shorter).
    Fixed(usize),
}

impl From<usize> for BatchSize {
    fn from(n: usize) -> Self {
        BatchSize::Fixed(n)
    }
}

/// How many batches may be dispatched ahead of the results consumed.
///
/// This bounds how far the input iterator is read ahead, hence the memory a
/// call holds: with `iter()`, batches dispatched but not yet yielded count
/// too, so an endless input with `.take(10)` uses bounded memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PreDispatch {
    /// A number of batches.
    Batches(usize),
    /// An expression in `n_jobs`, as joblib writes it: `"2*n_jobs"` (the
    /// default), `"n_jobs"`, `"3*n_jobs+1"`, `"8"`, or `"all"`.
    Expr(String),
    /// Read the whole input at once.
    All,
}

impl Default for PreDispatch {
    fn default() -> Self {
        PreDispatch::Expr("2*n_jobs".to_owned())
    }
}

impl From<usize> for PreDispatch {
    fn from(n: usize) -> Self {
        PreDispatch::Batches(n)
    }
}

impl From<&str> for PreDispatch {
    fn from(expr: &str) -> Self {
        PreDispatch::Expr(expr.to_owned())
    }
}

impl PreDispatch {
    /// The number of batches for `n_jobs` workers (`usize::MAX` for all).
    pub(crate) fn batches(&self, n_jobs: usize) -> Result<usize, Error> {
        let bad = |reason: String| Err(Error::config("pre_dispatch", reason));
        match self {
            PreDispatch::All => Ok(usize::MAX),
            PreDispatch::Batches(0) => bad("0 batches would never run anything".into()),
            PreDispatch::Batches(n) => Ok(*n),
            PreDispatch::Expr(expr) => {
                let text: String = expr.chars().filter(|c| !c.is_whitespace()).collect();
                if text.eq_ignore_ascii_case("all") {
                    return Ok(usize::MAX);
                }
                let mut total: usize = 0;
                for term in text.split('+') {
                    let value = match parse_term(term, n_jobs) {
                        Some(v) => v,
                        None => {
                            return bad(format!(
                                "{expr:?} is not an expression such as \"2*n_jobs\", \"n_jobs+1\", \"8\" or \"all\""
                            ));
                        }
                    };
                    total = total.saturating_add(value);
                }
                if total == 0 {
                    return bad(format!("{expr:?} gives 0 batches"));
                }
                Ok(total)
            }
        }
    }
}

/// One term of a pre_dispatch sum: `k`, `n_jobs`, `k*n_jobs` or `n_jobs*k`.
fn parse_term(term: &str, n_jobs: usize) -> Option<usize> {
    let mut value: usize = 1;
    for factor in term.split('*') {
        let f = if factor == "n_jobs" {
            n_jobs
        } else {
            factor.parse::<usize>().ok()?
        };
        value = value.checked_mul(f)?;
    }
    Some(value)
}

/// A soft hint for the backend when none is named.
///
/// A hint never overrides a backend, neither one named on the
/// [`Parallel`](crate::Parallel) nor one configured by
/// [`parallel_config`]; see [`Require`] for how hints, requirements and
/// backends combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prefer {
    /// Threads of this process (the default).
    Threads,
    /// Worker processes (the `"processes"` backend) when the call's tasks
    /// can run there (made by `delayed_remote`, feature `remote`);
    /// threads otherwise.
    Processes,
}

/// A hard requirement on the backend.
///
/// How the backend of a call is chosen, as joblib chooses it (a setting on
/// the [`Parallel`](crate::Parallel) wins over the same setting of the
/// enclosing [`parallel_config`] scope):
///
/// | backend | `prefer` | `require(SharedMem)` | the call runs on |
/// |---|---|---|---|
/// | named on the `Parallel` | any | no | that backend |
/// | named on the `Parallel` | any | yes | that backend if it shares memory; otherwise [`Error::InvalidConfig`] naming the requirement and the backend |
/// | configured by `parallel_config` | any | no | that backend (hints do not override it) |
/// | configured by `parallel_config` | any | yes | that backend if it shares memory; otherwise it is set aside with the configured `n_jobs`, and threads run the call with the `Parallel`'s own `n_jobs`, or sequentially without one (joblib's `n_jobs=1`) |
/// | none | `Threads` or none | any | threads (sequential for `n_jobs(1)`; nested calls follow the nesting rules) |
/// | none | `Processes` | no | the backend registered as `"processes"` if the tasks can go there (made by `delayed_remote`), threads otherwise |
/// | none | `Processes` | yes | threads |
///
/// One difference from joblib: `prefer(Processes)` with
/// `require(SharedMem)` is an error in joblib ("inconsistent settings");
/// here the requirement wins over the hint, as it does everywhere else, and
/// threads run the call.
///
/// ```
/// use joblib_parallel::{
///     Batch, BoxError, Parallel, ParallelBackend, Require, delayed, parallel_config,
/// };
///
/// /// Stands in for a backend whose workers are other processes.
/// struct Elsewhere;
/// impl ParallelBackend for Elsewhere {
///     fn name(&self) -> &str { "elsewhere" }
///     fn supports_shared_memory(&self) -> bool { false }
///     fn submit(&self, batch: Batch) -> Result<(), BoxError> { batch.run(); Ok(()) }
/// }
///
/// // Code that needs its tasks in this process, called under a
/// // configuration made for a backend that cannot give that: threads.
/// let names = parallel_config().backend(Elsewhere).scope(|| {
///     Parallel::new()
///         .n_jobs(2)
///         .require(Require::SharedMem)
///         .run((0..4).map(|_| delayed(|()| std::thread::current().name().map(String::from), ())))
/// })?;
/// assert!(names.iter().all(|n| n.as_deref().is_some_and(|n| n.starts_with("joblib-worker-"))));
///
/// // Named on the `Parallel` itself, the same backend is an error.
/// let err = Parallel::new()
///     .backend(Elsewhere)
///     .require(Require::SharedMem)
///     .run((0..4).map(|i| delayed(|i: u32| i, i)))
///     .unwrap_err();
/// assert!(err.to_string().contains("elsewhere"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// [`Error::InvalidConfig`]: crate::Error::InvalidConfig
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Require {
    /// Tasks must run in this process: a backend named on the `Parallel`
    /// that runs them elsewhere is an error, a configured one is set aside
    /// for threads, and threads are used when no backend is named.
    SharedMem,
}

/// The settings a `Parallel` or a `parallel_config` scope may give; `None`
/// means "not set here".
#[derive(Debug, Clone, Default)]
pub(crate) struct Settings {
    pub(crate) n_jobs: Option<i32>,
    pub(crate) backend: Option<BackendSpec>,
    pub(crate) batch_size: Option<BatchSize>,
    pub(crate) pre_dispatch: Option<PreDispatch>,
    pub(crate) timeout: Option<Duration>,
    pub(crate) verbose: Option<u32>,
    pub(crate) prefer: Option<Prefer>,
    pub(crate) require: Option<Require>,
    #[cfg(feature = "indicatif")]
    pub(crate) progress_bar: Option<bool>,
}

impl Settings {
    /// `self` where set, `fallback` elsewhere.
    pub(crate) fn or(&self, fallback: &Settings) -> Settings {
        Settings {
            n_jobs: self.n_jobs.or(fallback.n_jobs),
            backend: self.backend.clone().or_else(|| fallback.backend.clone()),
            batch_size: self.batch_size.or(fallback.batch_size),
            pre_dispatch: self
                .pre_dispatch
                .clone()
                .or_else(|| fallback.pre_dispatch.clone()),
            timeout: self.timeout.or(fallback.timeout),
            verbose: self.verbose.or(fallback.verbose),
            prefer: self.prefer.or(fallback.prefer),
            require: self.require.or(fallback.require),
            #[cfg(feature = "indicatif")]
            progress_bar: self.progress_bar.or(fallback.progress_bar),
        }
    }
}

thread_local! {
    static CURRENT: RefCell<Settings> = RefCell::new(Settings::default());
}

/// The configuration in force on this thread.
pub(crate) fn current() -> Settings {
    CURRENT.with(|c| c.borrow().clone())
}

/// Defaults for every [`Parallel`](crate::Parallel) created and run on this
/// thread within a scope, like joblib's `parallel_config` context manager.
///
/// A setting made on the `Parallel` itself wins over the configuration,
/// which wins over the built-in default. Scopes nest: an inner scope
/// overrides only what it sets. The configuration is thread-local, so the
/// tasks of a parallel call (which run on worker threads) do not see it;
/// they follow the nesting rules instead.
///
/// ```
/// use joblib_parallel::{Parallel, delayed, parallel_config};
///
/// let out = parallel_config().backend("sequential").verbose(0).scope(|| {
///     Parallel::new().run((0..3).map(|i| delayed(|i: u8| i * 2, i)))
/// })?;
/// assert_eq!(out, [0, 2, 4]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn parallel_config() -> ParallelConfig {
    ParallelConfig::default()
}

/// A set of defaults, made by [`parallel_config`] and applied with
/// [`scope`](ParallelConfig::scope) or [`enter`](ParallelConfig::enter).
/// The setters mean what the same setters of
/// [`Parallel`](crate::Parallel) mean.
#[derive(Debug, Clone, Default)]
#[must_use = "a configuration does nothing until applied with `scope` or `enter`"]
pub struct ParallelConfig {
    settings: Settings,
}

impl ParallelConfig {
    /// Default number of workers, with joblib's meaning of negative values.
    pub fn n_jobs(mut self, n_jobs: i32) -> Self {
        self.settings.n_jobs = Some(n_jobs);
        self
    }

    /// Default backend, by name or value.
    pub fn backend(mut self, backend: impl Into<BackendSpec>) -> Self {
        self.settings.backend = Some(backend.into());
        self
    }

    /// Default batch size.
    pub fn batch_size(mut self, batch_size: impl Into<BatchSize>) -> Self {
        self.settings.batch_size = Some(batch_size.into());
        self
    }

    /// Default number of batches dispatched ahead.
    pub fn pre_dispatch(mut self, pre_dispatch: impl Into<PreDispatch>) -> Self {
        self.settings.pre_dispatch = Some(pre_dispatch.into());
        self
    }

    /// Default per-task timeout.
    pub fn timeout(mut self, timeout: std::time::Duration) -> Self {
        self.settings.timeout = Some(timeout);
        self
    }

    /// Default verbosity.
    pub fn verbose(mut self, verbose: u32) -> Self {
        self.settings.verbose = Some(verbose);
        self
    }

    /// Default backend preference.
    pub fn prefer(mut self, prefer: Prefer) -> Self {
        self.settings.prefer = Some(prefer);
        self
    }

    /// Default backend requirement.
    pub fn require(mut self, require: Require) -> Self {
        self.settings.require = Some(require);
        self
    }

    /// Whether to show a progress bar by default.
    #[cfg(feature = "indicatif")]
    pub fn progress_bar(mut self, show: bool) -> Self {
        self.settings.progress_bar = Some(show);
        self
    }

    /// Applies the configuration on this thread while `f` runs, then restores
    /// the previous one (also if `f` panics).
    pub fn scope<T>(self, f: impl FnOnce() -> T) -> T {
        let _guard = self.enter();
        f()
    }

    /// Applies the configuration on this thread until the guard is dropped.
    /// Guards must be dropped in the reverse order of their creation, which
    /// `let` bindings in nested blocks do.
    pub fn enter(self) -> ConfigGuard {
        let previous = CURRENT.with(|c| {
            let mut current = c.borrow_mut();
            let merged = self.settings.or(&current);
            std::mem::replace(&mut *current, merged)
        });
        ConfigGuard {
            previous: Some(previous),
            _not_send: std::marker::PhantomData,
        }
    }
}

/// Restores the previous configuration when dropped; made by
/// [`ParallelConfig::enter`]. It stays on the thread that made it.
#[must_use = "the configuration is undone as soon as the guard is dropped"]
#[derive(Debug)]
pub struct ConfigGuard {
    previous: Option<Settings>,
    _not_send: std::marker::PhantomData<*const ()>,
}

impl Drop for ConfigGuard {
    fn drop(&mut self) {
        if let Some(previous) = self.previous.take() {
            CURRENT.with(|c| *c.borrow_mut() = previous);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pre_dispatch_expressions() {
        assert_eq!(PreDispatch::default().batches(3).unwrap(), 6);
        assert_eq!(PreDispatch::from("n_jobs").batches(3).unwrap(), 3);
        assert_eq!(PreDispatch::from(" 3 * n_jobs + 1 ").batches(2).unwrap(), 7);
        assert_eq!(PreDispatch::from("n_jobs*4").batches(2).unwrap(), 8);
        assert_eq!(PreDispatch::from("8").batches(2).unwrap(), 8);
        assert_eq!(PreDispatch::from("all").batches(2).unwrap(), usize::MAX);
        assert_eq!(PreDispatch::All.batches(2).unwrap(), usize::MAX);
        assert_eq!(PreDispatch::from(5).batches(2).unwrap(), 5);
    }

    #[test]
    fn bad_pre_dispatch_is_an_error_naming_it() {
        for bad in ["2*cpus", "", "0", "-1", "2**n_jobs"] {
            let err = PreDispatch::from(bad).batches(2).unwrap_err();
            assert!(
                err.to_string()
                    .starts_with("invalid parallel configuration: pre_dispatch:"),
                "{bad:?}: {err}"
            );
        }
        assert!(PreDispatch::Batches(0).batches(2).is_err());
    }

    #[test]
    fn scopes_nest_and_restore() {
        assert_eq!(current().n_jobs, None);
        parallel_config().n_jobs(3).verbose(1).scope(|| {
            assert_eq!(current().n_jobs, Some(3));
            parallel_config().n_jobs(5).scope(|| {
                let c = current();
                assert_eq!((c.n_jobs, c.verbose), (Some(5), Some(1)));
            });
            assert_eq!(current().n_jobs, Some(3));
        });
        assert_eq!(current().n_jobs, None);
        {
            let _g = parallel_config().n_jobs(2).enter();
            assert_eq!(current().n_jobs, Some(2));
        }
        assert_eq!(current().n_jobs, None);
    }

    #[test]
    fn scope_restores_after_panic() {
        let r = std::panic::catch_unwind(|| {
            parallel_config().n_jobs(7).scope(|| panic!("inside"));
        });
        assert!(r.is_err());
        assert_eq!(current().n_jobs, None);
    }
}
