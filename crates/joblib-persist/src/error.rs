use std::fmt::Display;
use std::io;
use std::path::PathBuf;

/// Everything that can go wrong while dumping or loading a `.jbl` file.
///
/// Variants that concern a file carry its path; values written to or read
/// from a stream (`dump_to_writer`, `load_from_reader`) report the path as
/// `<stream>`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The operating system reported an error reading, writing, creating,
    /// renaming or mapping the file.
    #[error("{}: {action}: {source}", path.display())]
    Io {
        /// The file involved.
        path: PathBuf,
        /// What was being done, for example "writing" or "renaming into place".
        action: &'static str,
        /// The underlying error.
        source: io::Error,
    },
    /// The file does not start with the `.jbl` magic number. When `mangled`
    /// is true, the bytes look like a `.jbl` file whose line endings were
    /// rewritten by a text-mode transfer.
    #[error("{}: not a .jbl file{}", path.display(), if *mangled { " (its line endings were rewritten by a text-mode copy)" } else { "" })]
    NotJbl {
        /// The file involved.
        path: PathBuf,
        /// Whether the magic number shows text-mode mangling.
        mangled: bool,
    },
    /// The file was written by a newer version of the format than this
    /// library reads.
    #[error("{}: written by a newer version of the .jbl format ({found}); this library reads up to version {supported}", path.display())]
    NewerVersion {
        /// The file involved.
        path: PathBuf,
        /// The version in the file.
        found: u16,
        /// The newest version this library reads.
        supported: u16,
    },
    /// The file is truncated, inconsistent or was tampered with: a length or
    /// offset it claims is impossible, a structure does not parse, or a
    /// field holds a value the format does not allow.
    #[error("{}: corrupt .jbl file: {what}", path.display())]
    Corrupt {
        /// The file involved.
        path: PathBuf,
        /// What was wrong, naming the part of the file.
        what: String,
    },
    /// A checksum did not match: the bytes of the named part of the file were
    /// changed after it was written.
    #[error("{}: checksum mismatch in {part}: the file was modified or damaged", path.display())]
    Checksum {
        /// The file involved.
        path: PathBuf,
        /// The part whose checksum failed, for example "block 3, chunk 0".
        part: String,
    },
    /// The file names a compression method that is not registered (its cargo
    /// feature is off, or it is a custom compressor not registered in this
    /// process).
    #[error("{}: compression method {method:?} is not available (enable its cargo feature or register it)", path.display())]
    UnknownCompressor {
        /// The file involved.
        path: PathBuf,
        /// The method name.
        method: String,
    },
    /// A compressor failed on a chunk.
    #[error("{}: {method} failed on block {block}, chunk {chunk}: {message}", path.display())]
    Compression {
        /// The file involved.
        path: PathBuf,
        /// The method name.
        method: String,
        /// The block index (the structure is block `u32::MAX`).
        block: u32,
        /// The chunk index within the block.
        chunk: u64,
        /// What the compressor reported.
        message: String,
    },
    /// The value's `Serialize` implementation reported an error.
    #[error("{}: the value could not be serialized: {message}", path.display())]
    Serialize {
        /// The file involved.
        path: PathBuf,
        /// The message of the `Serialize` implementation.
        message: String,
    },
    /// The file is intact but does not hold a value of the requested type.
    ///
    /// Element types are never converted: an array of `f32` loaded as an
    /// array of `f64` is this error, not a widened copy.
    #[error("{}: cannot load {}: {message}{}", path.display(), at_field(field), holds(found))]
    Deserialize {
        /// The file involved.
        path: PathBuf,
        /// Where in the requested type the mismatch is, as a path of field
        /// names, variant names and `[index]`es (`model.layers[2].weights`);
        /// empty for the value as a whole.
        field: String,
        /// What the file holds there, for example "an array of shape
        /// [40, 7] with f32 elements" or "a struct with fields `a`, `b`";
        /// `None` when it could not be told.
        found: Option<String>,
        /// What does not match.
        message: String,
    },
    /// [`load_mmap_strict`](crate::load_mmap_strict) was given a compressed
    /// file, which cannot be memory-mapped.
    #[error("{}: compressed with {method}, so it cannot be memory-mapped (dump it uncompressed, or use load_mmap to load it into memory)", path.display())]
    NotMappable {
        /// The file involved.
        path: PathBuf,
        /// Its compression method.
        method: String,
    },
    /// The file is already memory-mapped in a way that conflicts with the
    /// requested mapping: a read-write mapping must be the only mapping of
    /// its file, in this process or any other (an advisory lock held while
    /// the mapping lives), so that no two hold aliasing data.
    #[error("{}: cannot map it {mode:?}: {reason}", path.display())]
    MappingConflict {
        /// The file involved.
        path: PathBuf,
        /// The mode that was refused.
        mode: crate::MmapMode,
        /// Why, for example that it is mapped read-write elsewhere.
        reason: String,
    },
    /// A compressor name given to `register_compressor` is invalid or already
    /// taken (and registration was not forced).
    #[error("cannot register compressor {name:?}: {reason}")]
    Register {
        /// The name.
        name: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// A `DumpOptions` setting is out of range.
    #[error("invalid dump options: {0}")]
    Options(String),
    /// A file written by Python's `joblib.dump` is damaged, hostile, goes
    /// over one of the caps of `PyLoadOptions`, or uses a part of the
    /// pickle format this reader refuses.
    #[error("{}: cannot read Python joblib file at byte {offset}: {what}", path.display())]
    Pickle {
        /// The file involved.
        path: PathBuf,
        /// Offset in the (decompressed) pickle stream where it went wrong.
        offset: u64,
        /// What was wrong.
        what: String,
    },
    /// A Python pickle names a class or function that is not on the
    /// whitelist. Nothing is ever called; `PyLoadOptions::opaque_objects`
    /// records such objects as inert values instead.
    #[error("{}: the pickle uses {global} (at byte {offset}), which is not allowed: only plain data, numpy arrays and joblib's array wrapper are read (PyLoadOptions::opaque_objects records other objects without calling them)", path.display())]
    PythonGlobal {
        /// The file involved.
        path: PathBuf,
        /// Offset in the (decompressed) pickle stream of the global.
        offset: u64,
        /// The dotted name, for example `sklearn.linear_model.Ridge`.
        global: String,
    },
}

fn at_field(field: &str) -> String {
    if field.is_empty() {
        "the value".into()
    } else {
        format!("field `{field}`")
    }
}

fn holds(found: &Option<String>) -> String {
    found
        .as_ref()
        .map(|f| format!("; the file holds {f} there"))
        .unwrap_or_default()
}

/// The error type of the serde (de)serializers inside the crate; it is turned
/// into [`Error`] with the path once the operation ends.
#[derive(Debug)]
pub(crate) enum Inner {
    /// A complete error produced by the file machinery.
    Full(Box<Error>),
    /// A message from serde: serialization when writing, type mismatch when reading.
    Message(String),
    /// A structural problem in the file, found while deserializing.
    Corrupt(String),
    /// A type mismatch, with where it happened and what the file holds there.
    Located {
        field: String,
        found: Option<String>,
        message: String,
    },
}

impl Display for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Inner::Full(e) => e.fmt(f),
            Inner::Message(m) | Inner::Corrupt(m) => f.write_str(m),
            Inner::Located { message, .. } => f.write_str(message),
        }
    }
}

impl std::error::Error for Inner {}

impl serde::ser::Error for Inner {
    fn custom<T: Display>(msg: T) -> Self {
        Inner::Message(msg.to_string())
    }
}

impl serde::de::Error for Inner {
    fn custom<T: Display>(msg: T) -> Self {
        Inner::Message(msg.to_string())
    }
}

impl From<Error> for Inner {
    fn from(e: Error) -> Self {
        Inner::Full(Box::new(e))
    }
}

impl Inner {
    /// The public error, as a serialization failure.
    pub(crate) fn into_ser(self, path: &std::path::Path) -> Error {
        match self {
            Inner::Full(e) => *e,
            Inner::Message(message) | Inner::Corrupt(message) | Inner::Located { message, .. } => {
                Error::Serialize {
                    path: path.to_path_buf(),
                    message,
                }
            }
        }
    }

    /// The public error, as a load failure.
    pub(crate) fn into_de(self, path: &std::path::Path) -> Error {
        match self {
            Inner::Full(e) => *e,
            Inner::Message(message) => Error::Deserialize {
                path: path.to_path_buf(),
                field: String::new(),
                found: None,
                message,
            },
            Inner::Located {
                field,
                found,
                message,
            } => Error::Deserialize {
                path: path.to_path_buf(),
                field,
                found,
                message,
            },
            Inner::Corrupt(what) => Error::Corrupt {
                path: path.to_path_buf(),
                what,
            },
        }
    }
}

/// Shorthand for a [`Error::Corrupt`].
pub(crate) fn corrupt(path: &std::path::Path, what: impl Into<String>) -> Error {
    Error::Corrupt {
        path: path.to_path_buf(),
        what: what.into(),
    }
}

/// Shorthand for a [`Error::Io`].
pub(crate) fn io_err(path: &std::path::Path, action: &'static str, source: io::Error) -> Error {
    Error::Io {
        path: path.to_path_buf(),
        action,
        source,
    }
}
