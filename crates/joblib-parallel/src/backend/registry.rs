//! Backends by name: the built-in ones and those registered by users.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock, PoisonError, RwLock};

use super::{ParallelBackend, SequentialBackend, ThreadBackend};
use crate::error::{BoxError, Error};

type Factory = Arc<dyn Fn() -> Result<Arc<dyn ParallelBackend>, BoxError> + Send + Sync>;

const BUILT_IN: [&str; 3] = ["sequential", "threading", "threads"];

fn registry() -> &'static RwLock<BTreeMap<String, Factory>> {
    static REGISTRY: OnceLock<RwLock<BTreeMap<String, Factory>>> = OnceLock::new();
    REGISTRY.get_or_init(Default::default)
}

/// Makes a backend available by `name` to
/// [`Parallel::backend`](crate::Parallel::backend) and
/// [`parallel_config`](crate::parallel_config), like joblib's
/// `register_parallel_backend`.
///
/// `factory` is called once per [`Parallel`](crate::Parallel) that names the
/// backend (when the `Parallel` first runs), so a backend with a pool of its
/// own keeps it across the calls of one `Parallel`. Registering a name again
/// replaces the factory.
///
/// # Errors
///
/// [`Error::InvalidConfig`] if `name` is empty or names a built-in backend
/// (`"sequential"`, `"threads"`, `"threading"`).
///
/// ```
/// use std::sync::Arc;
/// use joblib_parallel::{Parallel, SequentialBackend, delayed, register_backend};
///
/// register_backend("my-sequential", || Ok(Arc::new(SequentialBackend)))?;
/// let out = Parallel::new()
///     .backend("my-sequential")
///     .run((0..3).map(|i| delayed(|i: i32| i + 1, i)))?;
/// assert_eq!(out, [1, 2, 3]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn register_backend<F>(name: &str, factory: F) -> Result<(), Error>
where
    F: Fn() -> Result<Arc<dyn ParallelBackend>, BoxError> + Send + Sync + 'static,
{
    if name.is_empty() {
        return Err(Error::config(
            "register_backend",
            "the backend name is empty",
        ));
    }
    if BUILT_IN.contains(&name) {
        return Err(Error::config(
            "register_backend",
            format!("{name:?} is a built-in backend and cannot be replaced"),
        ));
    }
    registry()
        .write()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(name.to_owned(), Arc::new(factory));
    Ok(())
}

/// All backend names, built-in first, comma-separated.
pub(crate) fn backend_names() -> String {
    let registered = registry().read().unwrap_or_else(PoisonError::into_inner);
    BUILT_IN
        .iter()
        .copied()
        .chain(registered.keys().map(String::as_str))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Whether `name` is registered (built-in names are not).
pub(crate) fn is_registered(name: &str) -> bool {
    registry()
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .contains_key(name)
}

/// A new instance of the backend called `name`.
pub(crate) fn resolve_name(name: &str) -> Result<Arc<dyn ParallelBackend>, Error> {
    match name {
        "sequential" => return Ok(Arc::new(SequentialBackend)),
        "threads" | "threading" => return Ok(Arc::new(ThreadBackend)),
        _ => {}
    }
    let factory = registry()
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .get(name)
        .cloned();
    match factory {
        Some(factory) => factory().map_err(|source| Error::BackendStart {
            backend: name.to_owned(),
            source,
        }),
        None if matches!(name, "processes" | "loky") => Err(Error::BackendStart {
            backend: name.to_owned(),
            source: "the process backend is in the crate joblib-process, which registers \
                     this name: depend on it (the joblib facade does, with its default \
                     `processes` feature) and call joblib::init() (or \
                     joblib_process::init()) at the top of main"
                .into(),
        }),
        None => Err(Error::UnknownBackend {
            name: name.to_owned(),
            known: backend_names(),
        }),
    }
}

/// A backend given by name or by value, for
/// [`Parallel::backend`](crate::Parallel::backend).
#[derive(Clone)]
pub enum BackendSpec {
    /// A built-in or registered name: `"sequential"`, `"threads"` (or
    /// `"threading"`), a name given to [`register_backend`] (`"processes"`
    /// and `"loky"` once the crate `joblib-process` is linked).
    Name(String),
    /// A backend value, used as is.
    Instance(Arc<dyn ParallelBackend>),
}

impl std::fmt::Debug for BackendSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BackendSpec::Name(name) => f.debug_tuple("Name").field(name).finish(),
            BackendSpec::Instance(b) => f.debug_tuple("Instance").field(&b.name()).finish(),
        }
    }
}

impl BackendSpec {
    pub(crate) fn resolve(&self) -> Result<Arc<dyn ParallelBackend>, Error> {
        match self {
            BackendSpec::Name(name) => resolve_name(name),
            BackendSpec::Instance(backend) => Ok(Arc::clone(backend)),
        }
    }
}

impl From<&str> for BackendSpec {
    fn from(name: &str) -> Self {
        BackendSpec::Name(name.to_owned())
    }
}

impl From<String> for BackendSpec {
    fn from(name: String) -> Self {
        BackendSpec::Name(name)
    }
}

impl From<Arc<dyn ParallelBackend>> for BackendSpec {
    fn from(backend: Arc<dyn ParallelBackend>) -> Self {
        BackendSpec::Instance(backend)
    }
}

impl<B: ParallelBackend> From<B> for BackendSpec {
    fn from(backend: B) -> Self {
        BackendSpec::Instance(Arc::new(backend))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_ins_resolve_and_cannot_be_replaced() {
        assert_eq!(resolve_name("threading").unwrap().name(), "threads");
        assert_eq!(resolve_name("sequential").unwrap().name(), "sequential");
        let err = register_backend("threads", || Ok(Arc::new(SequentialBackend))).unwrap_err();
        assert!(err.to_string().contains("built-in"), "{err}");
        let err = register_backend("", || Ok(Arc::new(SequentialBackend))).unwrap_err();
        assert!(err.to_string().contains("empty"), "{err}");
    }

    #[test]
    fn unknown_names_list_the_known_ones() {
        let err = resolve_name("no-such-backend").err().unwrap();
        let text = err.to_string();
        assert!(text.contains("\"no-such-backend\""), "{text}");
        assert!(text.contains("sequential, threading, threads"), "{text}");
    }

    #[test]
    fn the_process_backend_names_say_where_it_lives() {
        let err = resolve_name("loky").err().unwrap().to_string();
        assert!(
            err.contains("joblib-process") && err.contains("init()"),
            "{err}"
        );
    }

    #[test]
    fn factory_errors_name_the_backend() {
        register_backend("unit-test-failing", || Err("no GPU here".into())).unwrap();
        assert!(is_registered("unit-test-failing"));
        let err = resolve_name("unit-test-failing").err().unwrap();
        assert_eq!(
            err.to_string(),
            "backend \"unit-test-failing\" failed to start: no GPU here"
        );
    }
}
