//! How the process backend places the bytes of a request: shared values in
//! a private file written once per value, large arguments in a file per
//! batch, both mapped by the worker.

use std::io::{BufWriter, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use joblib_parallel::BoxError;
use joblib_parallel::remote::{ArgsPlacement, SharedValue, Transport};

use super::calls::{self, ArgsFile};

/// A shared value's file, removed when the value's last clone is dropped
/// (it is attached to the value).
struct SharedFile {
    path: PathBuf,
}

impl Drop for SharedFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The transport of one batch of one call. Keeps the batch's file of large
/// arguments until it is dropped, after the reply.
pub(crate) struct FileTransport {
    call_id: u64,
    args_file: Option<ArgsFile>,
}

impl FileTransport {
    pub(crate) fn new(call_id: u64) -> FileTransport {
        FileTransport {
            call_id,
            args_file: None,
        }
    }
}

impl Transport for FileTransport {
    fn place_shared(&mut self, value: &SharedValue<'_>) -> Result<Vec<u8>, BoxError> {
        let file = value.attach(|| {
            let folder = calls::shared_folder(self.call_id)?;
            let path = folder.join(format!("shared-{:x}.jbl", calls::random()));
            let path = calls::create_private(&path, |f| {
                let mut w = BufWriter::with_capacity(1 << 20, f);
                value.write_to(&mut w).map_err(std::io::Error::other)?;
                w.flush()
            })?;
            Ok(SharedFile { path })
        })?;
        Ok(file.path.as_os_str().as_bytes().to_vec())
    }

    fn place_args(&mut self, encoded: Vec<u8>) -> Result<ArgsPlacement, BoxError> {
        match calls::spill(self.call_id, &encoded)? {
            None => Ok(ArgsPlacement::Inline(encoded)),
            Some(file) => {
                let locator = file.path().as_os_str().as_bytes().to_vec();
                self.args_file = Some(file);
                Ok(ArgsPlacement::External(locator))
            }
        }
    }
}
