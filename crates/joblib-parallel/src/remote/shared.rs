//! [`Shared`]: one value given to many tasks, sent to each remote worker
//! once however many tasks and calls receive it.

use std::any::Any;
use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::io::Write;
use std::ops::Deref;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use serde::de::{self, DeserializeOwned, Deserializer, Visitor};
use serde::ser::Serializer;
use serde::{Deserialize, Serialize};

use super::transport::Blob;
use crate::error::BoxError;

/// The newtype name under which a `Shared` travels as its id.
const TOKEN: &str = "$joblib_parallel::Shared";

/// A value shared by many tasks, such as a large array: sent to each
/// remote worker **once**, however many tasks and calls receive it.
///
/// Cloning a `Shared` clones an `Arc`, so the thread backend shares it
/// too, without a copy. Inside a remote request a `Shared` travels as an
/// id; the backend's [`Transport`](crate::remote::Transport) decides how the value's
/// bytes reach the worker (the `"processes"` backend writes them once to a
/// private, unnamed file in shared memory that each worker maps, and fields of type
/// `MmapArray` (joblib-persist's) are then views of that mapping:
/// no copy at all), and the worker keeps the decoded value for the next
/// tasks. Outside a remote request (hashed by a cache, dumped to a file,
/// sent through another serde format) it serializes exactly like the value
/// it holds.
///
/// The value is encoded as it is when first sent: changes made later
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
    id: u64,
    value: T,
    /// What transports attached to the value (a file, a record of the
    /// workers that hold it), dropped with the value.
    attached: Mutex<Vec<Arc<dyn Any + Send + Sync>>>,
}

/// A fresh id, unlikely to meet another process's ids too.
fn new_id() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    static KEYS: OnceLock<RandomState> = OnceLock::new();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    KEYS.get_or_init(RandomState::new)
        .hash_one((std::process::id(), n))
}

impl<T> Shared<T> {
    /// Wraps `value` to be shared.
    pub fn new(value: T) -> Self {
        Shared::with_id(new_id(), value)
    }

    fn with_id(id: u64, value: T) -> Self {
        Shared(Arc::new(Inner {
            id,
            value,
            attached: Mutex::new(Vec::new()),
        }))
    }

    /// The value.
    pub fn get(&self) -> &T {
        &self.0.value
    }

    /// The id under which the value travels in remote requests: the same in
    /// every clone, and in the copy a worker decodes.
    pub fn id(&self) -> u64 {
        self.0.id
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

/// A `Shared` value whatever its type, as a transport sees it.
pub(crate) trait ErasedShared: Send + Sync {
    fn id(&self) -> u64;
    fn type_name(&self) -> &'static str;
    fn write(&self, out: &mut dyn Write) -> Result<(), BoxError>;
    fn attached(&self) -> &Mutex<Vec<Arc<dyn Any + Send + Sync>>>;
}

impl<T: Serialize + Send + Sync + 'static> ErasedShared for Inner<T> {
    fn id(&self) -> u64 {
        self.id
    }
    fn type_name(&self) -> &'static str {
        std::any::type_name::<T>()
    }
    fn write(&self, out: &mut dyn Write) -> Result<(), BoxError> {
        joblib_persist::dump_to_writer(&self.value, out)?;
        Ok(())
    }
    fn attached(&self) -> &Mutex<Vec<Arc<dyn Any + Send + Sync>>> {
        &self.attached
    }
}

/// One [`Shared`] value named by a request, handed to
/// [`Transport::place_shared`](crate::remote::Transport::place_shared) to decide
/// how its bytes travel.
pub struct SharedValue<'a>(pub(crate) &'a dyn ErasedShared);

impl fmt::Debug for SharedValue<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedValue")
            .field("id", &self.id())
            .field("type", &self.type_name())
            .finish()
    }
}

impl SharedValue<'_> {
    /// The value's id, as the request names it.
    pub fn id(&self) -> u64 {
        self.0.id()
    }

    /// The Rust type of the value, for messages.
    pub fn type_name(&self) -> &'static str {
        self.0.type_name()
    }

    /// Writes the value in joblib-persist's format: what a worker decodes
    /// from the [`Blob`] its [`Resolver`](crate::remote::Resolver) returns.
    ///
    /// # Errors
    ///
    /// The value's `Serialize` implementation failed, or `out` did.
    pub fn write_to(&self, out: &mut dyn Write) -> Result<(), BoxError> {
        self.0.write(out)
    }

    /// The value in joblib-persist's format, in memory.
    ///
    /// # Errors
    ///
    /// As [`write_to`](SharedValue::write_to).
    pub fn to_bytes(&self) -> Result<Vec<u8>, BoxError> {
        let mut out = Vec::new();
        self.write_to(&mut out)?;
        Ok(out)
    }

    /// The transport's attachment of type `A` to this value, made by `init`
    /// the first time it is asked for: a file the value was written to, a
    /// record of the workers that already hold it. It lives as long as the
    /// value (until its last clone is dropped), so a `Drop` of `A` can
    /// clean up. Concurrent callers wait for the first `init`.
    ///
    /// # Errors
    ///
    /// What `init` returned; it is called again next time.
    pub fn attach<A: Any + Send + Sync>(
        &self,
        init: impl FnOnce() -> Result<A, BoxError>,
    ) -> Result<Arc<A>, BoxError> {
        let mut attached = self
            .0
            .attached()
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for a in attached.iter() {
            if let Ok(found) = Arc::clone(a).downcast::<A>() {
                return Ok(found);
            }
        }
        let made = Arc::new(init()?);
        attached.push(made.clone());
        Ok(made)
    }
}

thread_local! {
    /// Set while a request is encoded: the shared values it names.
    static ENCODING: RefCell<Option<Vec<Arc<dyn ErasedShared>>>> = const { RefCell::new(None) };
    /// Set while a worker decodes the arguments of a request: the values
    /// it names that are not loaded yet, by id.
    static DECODING: RefCell<Option<Pending>> = const { RefCell::new(None) };
}

/// Runs `f` (encoding a request's arguments) and returns what it returned
/// and the shared values it met, each once.
pub(crate) fn encoding<R>(f: impl FnOnce() -> R) -> (R, Vec<Arc<dyn ErasedShared>>) {
    let previous = ENCODING.with(|e| e.replace(Some(Vec::new())));
    let r = f();
    let met = ENCODING.with(|e| e.replace(previous)).unwrap_or_default();
    (r, met)
}

/// The shared values of a request that a worker has not loaded yet: their
/// bytes, and the locator they came with.
pub(crate) type Pending = HashMap<u64, (Vec<u8>, Blob<'static>)>;

/// A worker's loaded shared values, by id: the locator each came with, and
/// the value.
type Loaded = HashMap<u64, (Vec<u8>, Arc<dyn Any + Send + Sync>)>;

fn loaded() -> std::sync::MutexGuard<'static, (u64, Loaded)> {
    static LOADED: OnceLock<Mutex<(u64, Loaded)>> = OnceLock::new();
    LOADED
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
}

/// At the first request of a new call, forgets the loaded values that
/// `keep` does not keep.
pub(crate) fn new_call(call_id: u64, mut keep: impl FnMut(u64, &[u8]) -> bool) {
    let mut l = loaded();
    if l.0 != call_id {
        l.0 = call_id;
        l.1.retain(|id, (locator, _)| keep(*id, locator));
    }
}

/// Drops the [`Shared`] values this worker process holds that `keep` does
/// not keep (called with each value's id and the locator it came with),
/// as happens anyway at the first request of the next call. A backend calls
/// it while its worker is idle, when told that values were released on the
/// calling side, so that freeing a large value (unmapping its file) does
/// not delay the next request. A value a running task still holds a clone
/// of lives on until that clone goes.
pub fn release_shared(mut keep: impl FnMut(u64, &[u8]) -> bool) {
    let released: Vec<_> = {
        let mut l = loaded();
        let stale: Vec<u64> =
            l.1.iter()
                .filter(|(id, (locator, _))| !keep(**id, locator))
                .map(|(id, _)| *id)
                .collect();
        stale.into_iter().filter_map(|id| l.1.remove(&id)).collect()
    };
    // Dropped outside the lock: freeing a large value takes a while.
    drop(released);
}

/// Whether a worker holds the shared value `id`.
pub(crate) fn is_loaded(id: u64) -> bool {
    loaded().1.contains_key(&id)
}

/// Runs `f` (a worker decoding the arguments of a request) with the
/// request's shared values found by id.
pub(crate) fn decoding<R>(pending: Pending, f: impl FnOnce() -> R) -> R {
    let previous = DECODING.with(|d| d.replace(Some(pending)));
    let r = f();
    DECODING.with(|d| d.replace(previous));
    r
}

impl<T: Serialize + Send + Sync + 'static> Serialize for Shared<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let recorded = ENCODING.with(|e| {
            let mut e = e.borrow_mut();
            let met = e.as_mut()?;
            if !met.iter().any(|m| m.id() == self.0.id) {
                let erased: Arc<dyn ErasedShared> = self.0.clone();
                met.push(erased);
            }
            Some(())
        });
        match recorded {
            Some(()) => s.serialize_newtype_struct(TOKEN, &self.0.id),
            None => self.0.value.serialize(s),
        }
    }
}

impl<'de, T: DeserializeOwned + Send + Sync + 'static> Deserialize<'de> for Shared<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if DECODING.with(|d| d.borrow().is_none()) {
            return T::deserialize(d).map(Shared::new);
        }
        let id = d.deserialize_newtype_struct(TOKEN, IdVisitor)?;
        let wrong_type = || {
            de::Error::custom(format!(
                "shared value {id:x} holds another type than {}",
                std::any::type_name::<T>()
            ))
        };
        if let Some((_, found)) = loaded().1.get(&id).cloned() {
            return found
                .downcast::<Inner<T>>()
                .map(Shared)
                .map_err(|_| wrong_type());
        }
        let Some((locator, blob)) = DECODING.with(|d| d.borrow_mut().as_mut()?.remove(&id)) else {
            return Err(de::Error::custom(format!(
                "the request names shared value {id:x} but carries no locator for it"
            )));
        };
        let value: T = match &blob {
            Blob::Bytes(bytes) => joblib_persist::load_from_reader(&bytes[..]),
            Blob::File(path) => joblib_persist::load_mmap(path, joblib_persist::MmapMode::ReadOnly),
        }
        .map_err(|e| de::Error::custom(format!("shared value {id:x}: {e}")))?;
        let shared = Shared::with_id(id, value);
        let any: Arc<dyn Any + Send + Sync> = shared.0.clone();
        loaded().1.insert(id, (locator, any));
        Ok(shared)
    }
}

struct IdVisitor;

impl<'de> Visitor<'de> for IdVisitor {
    type Value = u64;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the id of a shared value")
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<u64, D::Error> {
        u64::deserialize(d)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<u64, E> {
        Ok(v)
    }
}
