//! [`StoreBackend`], where cached results live.

use std::fmt;
use std::io::Write;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use joblib_hash::Digest;
use serde::de::{self, Deserialize, Deserializer, SeqAccess, Visitor};

use crate::encode::Hex;
use crate::error::Error;
use crate::metadata::Metadata;

/// What `output.jbl` holds: the sequence (digest, result, compute
/// seconds). The hex digest of the entry it was stored for recognises a
/// result copied over another entry's; the compute time lets a hit's run
/// log record say what the cache saved without reading `metadata.json`.
/// Entries written before the compute time was added hold only (digest,
/// result) and load with `seconds` `None`.
pub(crate) struct Stamped<R> {
    digest: String,
    value: R,
    seconds: Option<f64>,
}

impl<'de, R: Deserialize<'de>> Deserialize<'de> for Stamped<R> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit<R>(PhantomData<R>);
        impl<'de, R: Deserialize<'de>> Visitor<'de> for Visit<R> {
            type Value = Stamped<R>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an entry digest, a result and optionally its compute time")
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Stamped<R>, A::Error> {
                let digest = seq
                    .next_element()?
                    .ok_or_else(|| de::Error::invalid_length(0, &self))?;
                let value = seq
                    .next_element()?
                    .ok_or_else(|| de::Error::invalid_length(1, &self))?;
                let seconds = seq.next_element()?;
                Ok(Stamped {
                    digest,
                    value,
                    seconds,
                })
            }
        }
        d.deserialize_tuple(3, Visit(PhantomData))
    }
}

/// What a new entry's `output.jbl` is written as (see [`Stamped`]).
pub(crate) fn stamp<'a, R>(digest: &'a str, value: &'a R, took: Duration) -> (&'a str, &'a R, f64) {
    (digest, value, took.as_secs_f64())
}

/// The result in `stamped`, if it was stored for the entry `digest`, and
/// the entry's compute time when it was recorded.
pub(crate) fn unstamp<R>(
    function: &str,
    digest: &Digest,
    stamped: Stamped<R>,
) -> Result<(R, Option<f64>), Error> {
    if stamped.digest == Hex::of(digest).as_str() {
        Ok((stamped.value, stamped.seconds))
    } else {
        Err(Error::WrongEntry {
            function: function.to_string(),
            expected: digest.to_hex(),
            found: stamped.digest,
        })
    }
}

/// A stored result, as a backend hands it out for loading.
#[derive(Debug)]
#[non_exhaustive]
pub enum StoredOutput {
    /// A `.jbl` file: loaded with `joblib_persist::load`, or memory-mapped
    /// when the memory has an `mmap_mode`. The file must never be
    /// rewritten in place (replace it with a new file instead): a memory
    /// keeps the bytes of small results it has read and uses them again
    /// while the file's device, inode, size and change time are unchanged.
    File(PathBuf),
    /// The bytes of a `.jbl` stream, for stores without files.
    Bytes(Vec<u8>),
}

/// Where a backend wants a result written: the memory serializes the value
/// with joblib-persist into it.
#[non_exhaustive]
pub enum OutputSink<'a> {
    /// A path (which does not exist yet) to dump the `.jbl` file to.
    File(&'a Path),
    /// Any writer, for stores without files.
    Writer(&'a mut dyn Write),
}

/// The result of [`StoreBackend::put`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PutOutcome {
    /// The entry was stored.
    Stored,
    /// Another writer stored the same entry first; this one was discarded.
    AlreadyPresent,
}

/// One stored entry, as listed for `reduce_size`.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct EntryInfo {
    /// The function's name.
    pub function: String,
    /// The argument digest.
    pub digest: Digest,
    /// The size of the stored result in bytes.
    pub size: u64,
    /// When the entry was last written or read.
    pub last_access: SystemTime,
}

impl EntryInfo {
    /// An entry description (for backends outside this crate).
    pub fn new(function: String, digest: Digest, size: u64, last_access: SystemTime) -> EntryInfo {
        EntryInfo {
            function,
            digest,
            size,
            last_access,
        }
    }
}

/// The write callback given to [`StoreBackend::put`]: serializes the value
/// into the sink.
pub type WriteOutput<'a> = dyn FnMut(OutputSink<'_>) -> Result<(), Error> + 'a;

/// Where cached results are kept. [`FsStore`](crate::FsStore), a directory,
/// is the default; implement this trait to keep them elsewhere (a
/// database, an object store, memory) and pass it to
/// [`MemoryBuilder::backend`](crate::MemoryBuilder::backend).
///
/// Entries are named by a function name (`module::path::name`) and an
/// argument digest. Implementations must be safe to call from many threads
/// at once, and a reader must never see a half-written entry: `put` makes
/// an entry appear whole or not at all.
pub trait StoreBackend: Send + Sync + fmt::Debug {
    /// The stored result of an entry, `None` if there is none.
    ///
    /// A store of files may answer with the path an entry would have
    /// without checking that it exists (saving a `stat` on every hit): a
    /// load that then finds no file counts as a miss.
    fn output(&self, function: &str, digest: &Digest) -> Result<Option<StoredOutput>, Error>;

    /// Whether the entry exists.
    fn contains(&self, function: &str, digest: &Digest) -> Result<bool, Error> {
        Ok(self.output(function, digest)?.is_some())
    }

    /// The metadata of an entry, with `last_access` filled in; `None` if
    /// there is no such entry.
    fn metadata(&self, function: &str, digest: &Digest) -> Result<Option<Metadata>, Error>;

    /// Records that the entry was read just now (for least-recently-used
    /// eviction). Must be cheap: it runs on cache hits (at most once a
    /// second per entry and process).
    fn record_access(&self, function: &str, digest: &Digest) -> Result<(), Error>;

    /// Records an access while the entry's [`StoredOutput::File`] is still
    /// open after being read: a store that keeps the last access in the
    /// file's own modification time sets it on `output` and saves an
    /// `open`. The default calls [`record_access`](Self::record_access).
    ///
    /// A hit calls this only when the file's modification time is more
    /// than a second old (or unreadable): the time is the last access for
    /// [`FsStore`](crate::FsStore), and otherwise the file was written
    /// less than a second ago.
    fn record_access_open(
        &self,
        function: &str,
        digest: &Digest,
        output: &std::fs::File,
    ) -> Result<(), Error> {
        let _ = output;
        self.record_access(function, digest)
    }

    /// Stores an entry: calls `write` once with a sink of the backend's
    /// choice, sets `metadata.size` to the size of what was written, and
    /// makes output and metadata appear together. If the entry already
    /// exists, keeps the existing one and returns
    /// [`PutOutcome::AlreadyPresent`].
    fn put(
        &self,
        function: &str,
        digest: &Digest,
        metadata: &mut Metadata,
        write: &mut WriteOutput<'_>,
    ) -> Result<PutOutcome, Error>;

    /// Removes an entry; `false` if there was none.
    fn remove(&self, function: &str, digest: &Digest) -> Result<bool, Error>;

    /// The fingerprint recorded for a function, `None` if none is.
    fn fingerprint(&self, function: &str) -> Result<Option<String>, Error>;

    /// Records a function's fingerprint.
    fn set_fingerprint(&self, function: &str, fingerprint: &str) -> Result<(), Error>;

    /// Removes all entries of one function (not those of functions nested
    /// below its name); returns how many were removed.
    fn clear_function(&self, function: &str) -> Result<usize, Error>;

    /// Removes everything: all entries and fingerprints.
    fn clear(&self) -> Result<(), Error>;

    /// Every entry with its size and last access, for `reduce_size`. Must
    /// not read the results themselves.
    fn entries(&self) -> Result<Vec<EntryInfo>, Error>;

    /// Removes what interrupted writes and deletions left behind (for
    /// example by a process killed mid-write) and is older than `age`;
    /// returns how many leftovers were removed. Called by `reduce_size`.
    fn remove_leftovers(&self, age: std::time::Duration) -> Result<usize, Error> {
        let _ = age;
        Ok(0)
    }

    /// The directory of the store, if it has one: recorded in
    /// [`MemorizedResult`](crate::MemorizedResult)s so another process can
    /// open the entry.
    fn location(&self) -> Option<&Path> {
        None
    }
}
