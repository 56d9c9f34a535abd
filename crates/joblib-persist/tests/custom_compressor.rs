//! A registered compressor is usable in `DumpOptions` and detected on load.
//! Its own file: the registry is process-wide.

use std::io;
use std::sync::Arc;

use joblib_persist::{
    Compression, Compressor, DumpOptions, Error, inspect, load, register_compressor,
};

/// Run-length encoding: (count, byte) pairs.
struct Rle;

impl Compressor for Rle {
    fn compress(&self, input: &[u8], _level: Option<i32>, out: &mut Vec<u8>) -> io::Result<()> {
        let mut i = 0;
        while i < input.len() {
            let b = input[i];
            let n = input[i..].iter().take(255).take_while(|&&x| x == b).count();
            out.extend_from_slice(&[n as u8, b]);
            i += n;
        }
        Ok(())
    }

    fn decompress(&self, input: &[u8], out: &mut [u8]) -> io::Result<()> {
        let bad = || io::Error::new(io::ErrorKind::InvalidData, "bad rle");
        let mut at = 0;
        for pair in input.chunks(2) {
            let [n, b] = *pair else { return Err(bad()) };
            let end = at + n as usize;
            out.get_mut(at..end).ok_or_else(bad)?.fill(b);
            at = end;
        }
        if at != out.len() {
            return Err(bad());
        }
        Ok(())
    }
}

#[test]
fn custom_compressors_register_dump_and_load() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rle.jbl");
    let value = vec![7u8; 100_000];

    // Not registered yet: dumping with it is an error naming it.
    let err = DumpOptions::new()
        .compress(Compression::Custom("rle".into()))
        .dump(&value, &path)
        .unwrap_err();
    assert!(
        matches!(err, Error::UnknownCompressor { ref method, .. } if method == "rle"),
        "{err}"
    );

    register_compressor("rle", Arc::new(Rle), false).unwrap();
    DumpOptions::new()
        .compress(Compression::Custom("rle".into()))
        .dump(&value, &path)
        .unwrap();
    let info = inspect(&path).unwrap();
    assert_eq!(info.compression, Compression::Custom("rle".into()));
    assert!(info.file_len < 5_000, "{}", info.file_len);
    assert_eq!(load::<Vec<u8>>(&path).unwrap(), value);

    // Taken names are refused unless forced, built-in ones included.
    assert!(matches!(
        register_compressor("rle", Arc::new(Rle), false),
        Err(Error::Register { .. })
    ));
    register_compressor("rle", Arc::new(Rle), true).unwrap();
    if cfg!(feature = "zstd") {
        assert!(register_compressor("zstd", Arc::new(Rle), false).is_err());
    }
}
