//! The [`Compressor`] trait, the built-in methods and the process-wide
//! registry that maps the method name stored in a file to its implementation.

use std::collections::HashMap;
use std::io;
use std::path::Path;
use std::sync::{Arc, OnceLock, RwLock};

use crate::error::Error;
use crate::format::valid_method_name;

/// A compression method for the chunks of a `.jbl` file.
///
/// Each chunk (at most the file's chunk size, 1 MiB by default) is
/// compressed on its own, so implementations are called from several threads
/// at once and must be `Send + Sync`. The method is identified in the file by
/// the name it was registered under.
///
/// ```
/// use std::io;
/// use std::sync::Arc;
/// use joblib_persist::{register_compressor, Compressor};
///
/// /// Stores chunks reversed: not useful, but a compressor all the same.
/// struct Reverse;
///
/// impl Compressor for Reverse {
///     fn compress(&self, input: &[u8], _level: Option<i32>, out: &mut Vec<u8>) -> io::Result<()> {
///         out.extend(input.iter().rev());
///         Ok(())
///     }
///     fn decompress(&self, input: &[u8], out: &mut [u8]) -> io::Result<()> {
///         if input.len() != out.len() {
///             return Err(io::Error::new(io::ErrorKind::InvalidData, "wrong length"));
///         }
///         out.iter_mut().zip(input.iter().rev()).for_each(|(o, i)| *o = *i);
///         Ok(())
///     }
/// }
///
/// register_compressor("reverse-doc", Arc::new(Reverse), false)?;
/// assert!(register_compressor("reverse-doc", Arc::new(Reverse), false).is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait Compressor: Send + Sync {
    /// Appends the compressed form of `input` to `out`. `level` is the
    /// user's level, `None` for the method's default.
    fn compress(&self, input: &[u8], level: Option<i32>, out: &mut Vec<u8>) -> io::Result<()>;

    /// Decompresses `input` into `out`, which has exactly the original
    /// length. Must fail (not panic) when `input` is malformed or does not
    /// decompress to exactly `out.len()` bytes, and must never write more
    /// than `out.len()` bytes: the input comes from a file that may be hostile.
    fn decompress(&self, input: &[u8], out: &mut [u8]) -> io::Result<()>;
}

/// The compression method of a dump.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Compression {
    /// No compression: blocks are stored raw and can be memory-mapped.
    #[default]
    None,
    /// zlib (RFC 1950), feature `zlib`.
    Zlib,
    /// gzip (RFC 1952), feature `zlib`.
    Gzip,
    /// bzip2, feature `bz2`.
    Bz2,
    /// xz, feature `xz`.
    Xz,
    /// The legacy lzma ("lzma alone") format, feature `xz`.
    Lzma,
    /// lz4 block format, feature `lz4`.
    Lz4,
    /// Zstandard, feature `zstd`.
    Zstd,
    /// A compressor registered with [`register_compressor`] under this name.
    Custom(String),
}

impl Compression {
    /// The name stored in the file header.
    pub fn name(&self) -> &str {
        match self {
            Compression::None => "none",
            Compression::Zlib => "zlib",
            Compression::Gzip => "gzip",
            Compression::Bz2 => "bz2",
            Compression::Xz => "xz",
            Compression::Lzma => "lzma",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
            Compression::Custom(name) => name,
        }
    }

    /// The method for a stored name.
    pub fn from_name(name: &str) -> Compression {
        match name {
            "none" => Compression::None,
            "zlib" => Compression::Zlib,
            "gzip" => Compression::Gzip,
            "bz2" => Compression::Bz2,
            "xz" => Compression::Xz,
            "lzma" => Compression::Lzma,
            "lz4" => Compression::Lz4,
            "zstd" => Compression::Zstd,
            other => Compression::Custom(other.to_string()),
        }
    }

    /// The method joblib picks for a file name: `.z` zlib, `.gz` gzip, `.bz2`,
    /// `.xz`, `.lzma`, `.lz4`, `.zst` zstd; `None` for any other extension.
    pub fn from_extension(path: &Path) -> Option<Compression> {
        let ext = path.extension()?.to_str()?;
        Some(match ext {
            "z" => Compression::Zlib,
            "gz" => Compression::Gzip,
            "bz2" => Compression::Bz2,
            "xz" => Compression::Xz,
            "lzma" => Compression::Lzma,
            "lz4" => Compression::Lz4,
            "zst" => Compression::Zstd,
            _ => return None,
        })
    }
}

type Registry = RwLock<HashMap<String, Arc<dyn Compressor>>>;

fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        #[allow(unused_mut)]
        let mut map: HashMap<String, Arc<dyn Compressor>> = HashMap::new();
        #[cfg(feature = "zlib")]
        {
            map.insert("zlib".into(), Arc::new(builtin::Zlib));
            map.insert("gzip".into(), Arc::new(builtin::Gzip));
        }
        #[cfg(feature = "bz2")]
        map.insert("bz2".into(), Arc::new(builtin::Bz2));
        #[cfg(feature = "xz")]
        {
            map.insert("xz".into(), Arc::new(builtin::Xz));
            map.insert("lzma".into(), Arc::new(builtin::Lzma));
        }
        #[cfg(feature = "lz4")]
        map.insert("lz4".into(), Arc::new(builtin::Lz4));
        #[cfg(feature = "zstd")]
        map.insert("zstd".into(), Arc::new(builtin::Zstd));
        RwLock::new(map)
    })
}

/// Registers `compressor` under `name` for this process, so that
/// [`Compression::Custom`]`(name)` can be dumped and files written with it
/// are loaded.
///
/// The name is stored in each file: 1 to 32 ASCII letters, digits, `-`, `_`
/// or `.`; `"none"` is reserved. Replacing a name already registered
/// (including a built-in method) is refused unless `force` is true.
pub fn register_compressor(
    name: &str,
    compressor: Arc<dyn Compressor>,
    force: bool,
) -> Result<(), Error> {
    let refuse = |reason| Error::Register {
        name: name.to_string(),
        reason,
    };
    if !valid_method_name(name) {
        return Err(refuse(
            "a name is 1 to 32 ASCII letters, digits, '-', '_' or '.'",
        ));
    }
    if name == "none" {
        return Err(refuse("\"none\" means no compression"));
    }
    let mut map = registry()
        .write()
        .unwrap_or_else(|poison| poison.into_inner());
    if map.contains_key(name) && !force {
        return Err(refuse(
            "the name is taken (pass force = true to replace it)",
        ));
    }
    map.insert(name.to_string(), compressor);
    Ok(())
}

/// The compressor registered under `name`, if any.
pub(crate) fn lookup(name: &str) -> Option<Arc<dyn Compressor>> {
    let map = registry()
        .read()
        .unwrap_or_else(|poison| poison.into_inner());
    map.get(name).cloned()
}

/// Reads from `r` until `out` is full, then checks that `r` has nothing
/// more: the shape every streaming decoder is checked with.
#[allow(dead_code)]
fn read_exactly(mut r: impl io::Read, out: &mut [u8]) -> io::Result<()> {
    r.read_exact(out)?;
    let mut extra = [0u8; 1];
    if r.read(&mut extra)? != 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "the chunk decompresses to more bytes than recorded",
        ));
    }
    Ok(())
}

#[allow(dead_code)]
fn invalid(msg: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.to_string())
}

/// The built-in methods, each behind its cargo feature.
mod builtin {
    #[allow(unused_imports)]
    use super::{Compressor, invalid, read_exactly};
    #[allow(unused_imports)]
    use std::io::{self, Write};

    /// Clamps a user level into `lo..=hi`, with `default` for `None`.
    #[allow(dead_code)]
    fn level(level: Option<i32>, default: i32, lo: i32, hi: i32) -> u32 {
        level.unwrap_or(default).clamp(lo, hi).unsigned_abs()
    }

    #[cfg(feature = "zlib")]
    pub(super) struct Zlib;

    #[cfg(feature = "zlib")]
    impl Compressor for Zlib {
        fn compress(&self, input: &[u8], lvl: Option<i32>, out: &mut Vec<u8>) -> io::Result<()> {
            let mut e =
                flate2::write::ZlibEncoder::new(out, flate2::Compression::new(level(lvl, 3, 0, 9)));
            e.write_all(input)?;
            e.finish()?;
            Ok(())
        }
        fn decompress(&self, input: &[u8], out: &mut [u8]) -> io::Result<()> {
            read_exactly(flate2::read::ZlibDecoder::new(input), out)
        }
    }

    #[cfg(feature = "zlib")]
    pub(super) struct Gzip;

    #[cfg(feature = "zlib")]
    impl Compressor for Gzip {
        fn compress(&self, input: &[u8], lvl: Option<i32>, out: &mut Vec<u8>) -> io::Result<()> {
            let mut e =
                flate2::write::GzEncoder::new(out, flate2::Compression::new(level(lvl, 3, 0, 9)));
            e.write_all(input)?;
            e.finish()?;
            Ok(())
        }
        fn decompress(&self, input: &[u8], out: &mut [u8]) -> io::Result<()> {
            read_exactly(flate2::read::GzDecoder::new(input), out)
        }
    }

    #[cfg(feature = "bz2")]
    pub(super) struct Bz2;

    #[cfg(feature = "bz2")]
    impl Compressor for Bz2 {
        fn compress(&self, input: &[u8], lvl: Option<i32>, out: &mut Vec<u8>) -> io::Result<()> {
            let mut e =
                bzip2::write::BzEncoder::new(out, bzip2::Compression::new(level(lvl, 3, 1, 9)));
            e.write_all(input)?;
            e.finish()?;
            Ok(())
        }
        fn decompress(&self, input: &[u8], out: &mut [u8]) -> io::Result<()> {
            read_exactly(bzip2::read::BzDecoder::new(input), out)
        }
    }

    #[cfg(feature = "xz")]
    pub(super) struct Xz;

    #[cfg(feature = "xz")]
    impl Compressor for Xz {
        fn compress(&self, input: &[u8], lvl: Option<i32>, out: &mut Vec<u8>) -> io::Result<()> {
            let mut e = liblzma::write::XzEncoder::new(out, level(lvl, 3, 0, 9));
            e.write_all(input)?;
            e.finish()?;
            Ok(())
        }
        fn decompress(&self, input: &[u8], out: &mut [u8]) -> io::Result<()> {
            read_exactly(liblzma::read::XzDecoder::new(input), out)
        }
    }

    #[cfg(feature = "xz")]
    pub(super) struct Lzma;

    #[cfg(feature = "xz")]
    impl Compressor for Lzma {
        fn compress(&self, input: &[u8], lvl: Option<i32>, out: &mut Vec<u8>) -> io::Result<()> {
            let opts =
                liblzma::stream::LzmaOptions::new_preset(level(lvl, 3, 0, 9)).map_err(invalid)?;
            let stream = liblzma::stream::Stream::new_lzma_encoder(&opts).map_err(invalid)?;
            let mut e = liblzma::write::XzEncoder::new_stream(out, stream);
            e.write_all(input)?;
            e.finish()?;
            Ok(())
        }
        fn decompress(&self, input: &[u8], out: &mut [u8]) -> io::Result<()> {
            // The memory limit bounds what a hostile dictionary size can make
            // liblzma allocate.
            let stream = liblzma::stream::Stream::new_lzma_decoder(256 << 20).map_err(invalid)?;
            read_exactly(liblzma::read::XzDecoder::new_stream(input, stream), out)
        }
    }

    #[cfg(feature = "lz4")]
    pub(super) struct Lz4;

    #[cfg(feature = "lz4")]
    impl Compressor for Lz4 {
        fn compress(&self, input: &[u8], _level: Option<i32>, out: &mut Vec<u8>) -> io::Result<()> {
            let start = out.len();
            out.resize(
                start + lz4_flex::block::get_maximum_output_size(input.len()),
                0,
            );
            let n = lz4_flex::block::compress_into(input, &mut out[start..]).map_err(invalid)?;
            out.truncate(start + n);
            Ok(())
        }
        fn decompress(&self, input: &[u8], out: &mut [u8]) -> io::Result<()> {
            let n = lz4_flex::block::decompress_into(input, out).map_err(invalid)?;
            if n != out.len() {
                return Err(invalid(
                    "the chunk decompresses to fewer bytes than recorded",
                ));
            }
            Ok(())
        }
    }

    #[cfg(feature = "zstd")]
    pub(super) struct Zstd;

    /// A thread's zstd contexts: the compression one with its level, and
    /// the decompression one, each made on first use.
    #[cfg(feature = "zstd")]
    type ZstdContexts = (
        Option<(i32, zstd::bulk::Compressor<'static>)>,
        Option<zstd::bulk::Decompressor<'static>>,
    );

    #[cfg(feature = "zstd")]
    thread_local! {
        /// Each thread's zstd contexts, reused from chunk to chunk: creating
        /// a context per chunk (tables allocated and cleared each time) is a
        /// large part of the cost of compressing a 1 MiB chunk.
        static ZSTD_CONTEXTS: std::cell::RefCell<ZstdContexts> =
            const { std::cell::RefCell::new((None, None)) };
    }

    #[cfg(feature = "zstd")]
    impl Compressor for Zstd {
        fn compress(&self, input: &[u8], lvl: Option<i32>, out: &mut Vec<u8>) -> io::Result<()> {
            let l = lvl.unwrap_or(3).clamp(-7, 22);
            let start = out.len();
            out.resize(start + zstd::zstd_safe::compress_bound(input.len()), 0);
            let n = ZSTD_CONTEXTS.with(|cx| -> io::Result<usize> {
                let Ok(mut cx) = cx.try_borrow_mut() else {
                    // Re-entered on this thread (not expected): a fresh context.
                    return zstd::bulk::compress_to_buffer(input, &mut out[start..], l);
                };
                let (level, c) = match &mut cx.0 {
                    Some(both) => both,
                    slot => slot.insert((l, zstd::bulk::Compressor::new(l)?)),
                };
                if *level != l {
                    c.set_compression_level(l)?;
                    *level = l;
                }
                c.compress_to_buffer(input, &mut out[start..])
            })?;
            out.truncate(start + n);
            Ok(())
        }
        fn decompress(&self, input: &[u8], out: &mut [u8]) -> io::Result<()> {
            let n = ZSTD_CONTEXTS.with(|cx| -> io::Result<usize> {
                let Ok(mut cx) = cx.try_borrow_mut() else {
                    return zstd::bulk::decompress_to_buffer(input, out);
                };
                let d = match &mut cx.1 {
                    Some(d) => d,
                    slot => slot.insert(zstd::bulk::Decompressor::new()?),
                };
                d.decompress_to_buffer(input, out)
            })?;
            if n != out.len() {
                return Err(invalid(
                    "the chunk decompresses to fewer bytes than recorded",
                ));
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extensions_pick_joblib_methods() {
        let m = |p: &str| Compression::from_extension(Path::new(p));
        assert_eq!(m("a.jbl.gz"), Some(Compression::Gzip));
        assert_eq!(m("a.z"), Some(Compression::Zlib));
        assert_eq!(m("a.zst"), Some(Compression::Zstd));
        assert_eq!(m("a.lz4"), Some(Compression::Lz4));
        assert_eq!(m("a.jbl"), None);
    }

    #[test]
    fn builtin_methods_round_trip_and_reject_garbage() {
        let data: Vec<u8> = (0..100_000u32)
            .flat_map(|i| (i / 7).to_le_bytes())
            .collect();
        for name in ["zlib", "gzip", "bz2", "xz", "lzma", "lz4", "zstd"] {
            let Some(c) = lookup(name) else { continue };
            let mut packed = Vec::new();
            c.compress(&data, None, &mut packed).unwrap();
            assert!(packed.len() < data.len() / 2, "{name} did not compress");
            let mut back = vec![0u8; data.len()];
            c.decompress(&packed, &mut back).unwrap();
            assert_eq!(back, data, "{name}");
            let mut short = vec![0u8; data.len() - 1];
            assert!(
                c.decompress(&packed, &mut short).is_err(),
                "{name} overflow"
            );
            let mut long = vec![0u8; data.len() + 1];
            assert!(
                c.decompress(&packed, &mut long).is_err(),
                "{name} underflow"
            );
            let garbage = vec![0x5au8; 300];
            assert!(c.decompress(&garbage, &mut back).is_err(), "{name} garbage");
        }
    }

    #[test]
    fn names_are_validated() {
        struct Nop;
        impl Compressor for Nop {
            fn compress(&self, i: &[u8], _: Option<i32>, o: &mut Vec<u8>) -> io::Result<()> {
                o.extend_from_slice(i);
                Ok(())
            }
            fn decompress(&self, i: &[u8], o: &mut [u8]) -> io::Result<()> {
                o.copy_from_slice(i);
                Ok(())
            }
        }
        assert!(register_compressor("", Arc::new(Nop), false).is_err());
        assert!(register_compressor("none", Arc::new(Nop), true).is_err());
        assert!(register_compressor("has space", Arc::new(Nop), false).is_err());
        assert!(register_compressor(&"x".repeat(33), Arc::new(Nop), false).is_err());
    }
}
