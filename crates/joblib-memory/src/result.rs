//! [`MemorizedResult`], a handle to a stored result.

use std::fmt;
use std::marker::PhantomData;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use joblib_hash::Digest;
use joblib_persist::MmapMode;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::fs_store::FsStore;
use crate::memory::Memory;
use crate::metadata::Metadata;
use crate::store::{Stamped, StoreBackend, StoredOutput, unstamp};

/// A handle to the result of a call, returned by
/// [`MemorizedFunc::call_and_shelve`](crate::MemorizedFunc::call_and_shelve):
/// the value stays in the store until [`get`](Self::get) loads it.
///
/// It serializes to the function name, argument digest, cache location and
/// `mmap_mode`, so it can be sent to another process that opens the same
/// directory and maps the result as the memory it came from would. A
/// result that could not be stored (a disabled memory, a failing store) is
/// carried inside the handle until [`clear`](Self::clear), as joblib's.
#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
pub struct MemorizedResult<R> {
    function: String,
    digest: Option<Digest>,
    location: Option<PathBuf>,
    /// The memory's `mmap_mode`, as joblib names it (`r`, `c`).
    #[serde(default)]
    mmap_mode: Option<String>,
    /// The value as a `.jbl` stream when it is not in the store; taken
    /// away by `clear`.
    inline: Mutex<Option<Vec<u8>>>,
    #[serde(skip)]
    memory: Option<Memory>,
    #[serde(skip)]
    marker: PhantomData<fn() -> R>,
}

impl<R> fmt::Debug for MemorizedResult<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemorizedResult")
            .field("function", &self.function)
            .field("digest", &self.digest)
            .field("location", &self.location)
            .field("mmap_mode", &self.mmap_mode)
            .field("inline", &self.inline_bytes().as_ref().map(Vec::len))
            .finish_non_exhaustive()
    }
}

impl<R> MemorizedResult<R> {
    pub(crate) fn stored(memory: &Memory, function: &str, digest: Digest) -> MemorizedResult<R> {
        MemorizedResult {
            function: function.to_string(),
            digest: Some(digest),
            location: memory.location().map(Into::into),
            mmap_mode: memory.inner.mmap_mode.map(|m| mode_name(m).to_string()),
            inline: Mutex::new(None),
            memory: Some(memory.clone()),
            marker: PhantomData,
        }
    }

    pub(crate) fn inline(function: &str, value: &R) -> MemorizedResult<R>
    where
        R: Serialize,
    {
        let inline = match joblib_persist::dump_to_writer(value, Vec::new()) {
            Ok(bytes) => Some(bytes),
            Err(e) => {
                tracing::warn!(function, error = %e, "cannot serialize the result into its handle");
                None
            }
        };
        MemorizedResult {
            function: function.to_string(),
            digest: None,
            location: None,
            mmap_mode: None,
            inline: Mutex::new(inline),
            memory: None,
            marker: PhantomData,
        }
    }

    /// The value carried by the handle, if any.
    fn inline_bytes(&self) -> std::sync::MutexGuard<'_, Option<Vec<u8>>> {
        self.inline.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The mapping mode of the loads: the memory's, or the one recorded in
    /// a handle received from elsewhere.
    fn mmap(&self) -> Option<MmapMode> {
        match &self.memory {
            Some(m) => m.inner.mmap_mode,
            None => self.mmap_mode.as_deref().and_then(mode_from_name),
        }
    }

    /// The cached function's name.
    pub fn function(&self) -> &str {
        &self.function
    }

    /// The argument digest naming the entry; `None` when the result is not
    /// in a store but carried by the handle.
    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// The store: the memory's, or (for a handle received from another
    /// process) the directory it names.
    fn backend(&self) -> Option<Arc<dyn StoreBackend>> {
        if let Some(b) = self.memory.as_ref().and_then(Memory::backend) {
            return Some(Arc::clone(b));
        }
        let root = self.location.as_ref()?;
        Some(Arc::new(FsStore::existing(root.clone())))
    }

    fn not_cached(&self) -> Error {
        Error::NotCached {
            function: self.function.clone(),
            digest: self.digest.map(|d| d.to_hex()).unwrap_or_default(),
        }
    }

    /// Loads the value.
    ///
    /// # Errors
    ///
    /// [`Error::NotCached`] if the entry was removed meanwhile,
    /// [`Error::Persist`] if it cannot be read.
    pub fn get(&self) -> Result<R, Error>
    where
        R: DeserializeOwned,
    {
        let persist = |source| Error::Persist {
            function: self.function.clone(),
            source,
        };
        if let Some(bytes) = self.inline_bytes().as_ref() {
            return joblib_persist::load_from_reader(bytes.as_slice()).map_err(persist);
        }
        let (Some(backend), Some(digest)) = (self.backend(), self.digest) else {
            return Err(self.not_cached());
        };
        let mmap = self.mmap();
        let stamped: Stamped<R> = match backend.output(&self.function, &digest)? {
            None => return Err(self.not_cached()),
            Some(StoredOutput::File(path)) => match mmap {
                Some(mode) => joblib_persist::load_mmap(&path, mode),
                None => joblib_persist::load(&path),
            },
            Some(StoredOutput::Bytes(bytes)) => joblib_persist::load_from_reader(bytes.as_slice()),
        }
        .map_err(|e| match &e {
            joblib_persist::Error::Io { source, .. }
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                self.not_cached()
            }
            _ => persist(e),
        })?;
        let (value, _) = unstamp(&self.function, &digest, stamped)?;
        if let Err(e) = backend.record_access(&self.function, &digest) {
            tracing::debug!(function = %self.function, error = %e, "cannot record the access");
        }
        Ok(value)
    }

    /// The stored entry's metadata; `None` when it is not stored.
    ///
    /// # Errors
    ///
    /// What the store reports when reading it.
    pub fn metadata(&self) -> Result<Option<Metadata>, Error> {
        match (self.backend(), self.digest) {
            (Some(b), Some(d)) => b.metadata(&self.function, &d),
            _ => Ok(None),
        }
    }

    /// Removes the stored result (or drops the one the handle carries);
    /// `false` if there was none. A later [`get`](Self::get) fails with
    /// [`Error::NotCached`].
    ///
    /// # Errors
    ///
    /// What the store reports when deleting.
    pub fn clear(&self) -> Result<bool, Error> {
        if self.inline_bytes().take().is_some() {
            return Ok(true);
        }
        match (self.backend(), self.digest) {
            (Some(b), Some(d)) => b.remove(&self.function, &d),
            _ => Ok(false),
        }
    }
}

/// joblib's name of a mapping mode.
fn mode_name(mode: MmapMode) -> &'static str {
    match mode {
        MmapMode::ReadOnly => "r",
        MmapMode::ReadWrite => "r+",
        MmapMode::CopyOnWrite => "c",
        // A mode added later travels as read-only, the safe choice.
        _ => "r",
    }
}

/// The inverse of [`mode_name`]; `None` for a name it does not produce.
fn mode_from_name(name: &str) -> Option<MmapMode> {
    match name {
        "r" => Some(MmapMode::ReadOnly),
        "r+" => Some(MmapMode::ReadWrite),
        "c" => Some(MmapMode::CopyOnWrite),
        _ => None,
    }
}
