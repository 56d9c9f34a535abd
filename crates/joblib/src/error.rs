use thiserror::Error as ThisError;

/// An error from any of joblib's layers, so that a program using several of
/// them can use `?` with one error type.
///
/// Each variant wraps the error of one crate unchanged; match on it to see
/// the path, function or task involved.
///
/// ```
/// fn pipeline(dir: &std::path::Path) -> Result<(), joblib::Error> {
///     let data = vec![1.0f64, 2.0, 3.0];
///     let digest = joblib::hash(&data)?;                  // joblib::hash::Error
///     joblib::dump(&data, dir.join("data.jbl"))?;         // joblib::persist::Error
///     let squares = joblib::Parallel::new()               // joblib::parallel::Error
///         .run(data.into_iter().map(|x| joblib::delayed(|x: f64| x * x, x)))?;
///     assert_eq!(squares, [1.0, 4.0, 9.0]);
///     println!("{digest}");
///     Ok(())
/// }
/// let dir = tempfile::tempdir()?;
/// pipeline(dir.path())?;
/// let missing = joblib::load::<Vec<f64>>(dir.path().join("absent.jbl")).map_err(joblib::Error::from);
/// assert!(matches!(missing, Err(joblib::Error::Persist(_))));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, ThisError)]
#[non_exhaustive]
pub enum Error {
    /// Hashing a value failed (its `Serialize` implementation reported an
    /// error).
    #[error(transparent)]
    Hash(#[from] joblib_hash::Error),
    /// Dumping, loading or inspecting a `.jbl` file failed.
    #[error(transparent)]
    Persist(#[from] joblib_persist::Error),
    /// An explicit cache operation failed (building a `Memory`, `clear`,
    /// `reduce_size`, `MemorizedResult::get`). Cached calls themselves never
    /// fail because of the cache.
    #[error(transparent)]
    Memory(#[from] joblib_memory::Error),
    /// A parallel call failed: a task's error or panic, a timeout, an
    /// invalid setting, or a backend failure.
    #[error(transparent)]
    Parallel(#[from] joblib_parallel::Error),
}

/// `Result` with [`Error`](enum@Error).
pub type Result<T, E = Error> = std::result::Result<T, E>;
