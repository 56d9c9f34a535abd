//! [`Shared`]: one value given to many tasks, written once per call for
//! worker processes.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::fmt;
use std::ops::Deref;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use serde::de::{self, DeserializeOwned, Deserializer, Visitor};
use serde::ser::{self, Serializer};
use serde::{Deserialize, Serialize};

use super::calls;

/// The newtype name under which a `Shared` travels as a file path.
const TOKEN: &str = "$joblib_parallel::Shared";

/// A value shared by many tasks, such as a large array: the
/// `"processes"` backend writes it to a file **once** (when it is first
/// sent to workers), and each worker maps that file once and keeps the
/// mapping, however many tasks and calls receive it.
///
/// Cloning a `Shared` clones an `Arc`, so the thread backend shares it
/// too, without a copy. Fields of type
/// [`MmapArray`](joblib_persist::MmapArray) inside are views of the mapped
/// file in the workers: no copy at all. Outside a call to worker processes
/// (hashed by a cache, dumped to a file, sent through another serde
/// format) it serializes exactly like the value it holds.
///
/// The file lives in a private folder (0700, the file 0600) under the
/// backend's temporary folder and is removed when the last clone of the
/// `Shared` is dropped; workers release their mapping at their next call.
/// The value is written as it is when first sent: changes made later
/// through interior mutability are not seen by workers.
///
/// ```
/// use joblib_parallel::{Parallel, Shared, delayed_remote};
/// use joblib_persist::MmapArray;
/// use ndarray::{Array2, Ix2};
///
/// let data: MmapArray<f64, Ix2> = Array2::from_elem((1000, 100), 0.5).into();
/// let data = Shared::new(data);
/// let column_sums = Parallel::new()
///     .n_jobs(2)
///     .run((0..4).map(|j| {
///         delayed_remote(
///             |(d, j): (Shared<MmapArray<f64, Ix2>>, usize)| d.view().column(j).sum(),
///             (data.clone(), j),
///         )
///     }))?;
/// assert_eq!(column_sums, [500.0; 4]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Shared<T>(Arc<Inner<T>>);

struct Inner<T> {
    value: T,
    /// The file workers map, once written.
    file: OnceLock<Result<SharedFile, String>>,
}

/// A shared value's file, removed when the value is dropped.
struct SharedFile {
    path: PathBuf,
}

impl Drop for SharedFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

impl<T> Shared<T> {
    /// Wraps `value` to be shared.
    pub fn new(value: T) -> Self {
        Shared(Arc::new(Inner {
            value,
            file: OnceLock::new(),
        }))
    }

    /// The value.
    pub fn get(&self) -> &T {
        &self.0.value
    }
}

impl<T> Clone for Shared<T> {
    fn clone(&self) -> Self {
        Shared(Arc::clone(&self.0))
    }
}

impl<T> Deref for Shared<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0.value
    }
}

impl<T: fmt::Debug> fmt::Debug for Shared<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Shared").field(&self.0.value).finish()
    }
}

/// A worker's shared values, by file.
type Loaded = HashMap<PathBuf, Arc<dyn Any + Send + Sync>>;

thread_local! {
    /// Set while the parent encodes a batch of this call.
    static ENCODING: Cell<Option<u64>> = const { Cell::new(None) };
    /// Set while a worker decodes a batch.
    static DECODING: Cell<bool> = const { Cell::new(false) };
    /// The shared values this worker loaded, by file, and the call that
    /// last looked at them.
    static LOADED: RefCell<(u64, Loaded)> = RefCell::new((0, HashMap::new()));
}

/// Runs `f` with shared values written to `call_id`'s folder.
pub(crate) fn encoding<R>(call_id: u64, f: impl FnOnce() -> R) -> R {
    let previous = ENCODING.with(|e| e.replace(Some(call_id)));
    let r = f();
    ENCODING.with(|e| e.set(previous));
    r
}

/// Runs `f` (a worker decoding the arguments of a batch of `call_id`) with
/// shared values read from their files.
pub(crate) fn decoding<R>(call_id: u64, f: impl FnOnce() -> R) -> R {
    LOADED.with(|l| {
        let mut l = l.borrow_mut();
        if l.0 != call_id {
            // A value whose file the parent removed (the value was dropped
            // there) is released here too.
            l.0 = call_id;
            l.1.retain(|path, _| path.exists());
        }
    });
    let previous = DECODING.with(|d| d.replace(true));
    let r = f();
    DECODING.with(|d| d.set(previous));
    r
}

impl<T: Serialize + Send + Sync + 'static> Serialize for Shared<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let Some(call_id) = ENCODING.with(Cell::get) else {
            return self.0.value.serialize(s);
        };
        let file = self.0.file.get_or_init(|| {
            let folder = calls::shared_folder(call_id).map_err(|e| e.to_string())?;
            let path = folder.join(format!("shared-{:x}.jbl", calls::random()));
            joblib_persist::dump(&self.0.value, &path).map_err(|e| e.to_string())?;
            Ok(SharedFile { path })
        });
        let path = &file.as_ref().map_err(ser::Error::custom)?.path;
        let path = path.to_str().ok_or_else(|| {
            ser::Error::custom(format!(
                "the temporary folder's path is not UTF-8: {}",
                path.display()
            ))
        })?;
        s.serialize_newtype_struct(TOKEN, path)
    }
}

impl<'de, T: DeserializeOwned + Send + Sync + 'static> Deserialize<'de> for Shared<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if !DECODING.with(Cell::get) {
            return T::deserialize(d).map(Shared::new);
        }
        let path = PathBuf::from(d.deserialize_newtype_struct(TOKEN, PathVisitor)?);
        if let Some(found) = LOADED.with(|l| l.borrow().1.get(&path).cloned()) {
            return found.downcast::<Inner<T>>().map(Shared).map_err(|_| {
                de::Error::custom(format!(
                    "{} holds another type than {}",
                    path.display(),
                    std::any::type_name::<T>()
                ))
            });
        }
        let value: T = joblib_persist::load_mmap(&path, joblib_persist::MmapMode::ReadOnly)
            .map_err(de::Error::custom)?;
        // The worker's copy has no file of its own: the parent's owns it.
        let shared = Shared::new(value);
        LOADED.with(|l| {
            let any: Arc<dyn Any + Send + Sync> = shared.0.clone();
            l.borrow_mut().1.insert(path, any);
        });
        Ok(shared)
    }
}

struct PathVisitor;

impl<'de> Visitor<'de> for PathVisitor {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the path of a shared value's file")
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<String, D::Error> {
        String::deserialize(d)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
        Ok(v.to_owned())
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<String, E> {
        Ok(v)
    }
}
