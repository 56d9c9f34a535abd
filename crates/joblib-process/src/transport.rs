//! How the process backend places the bytes of a request: shared values in
//! a private file written once per value, large arguments in a file per
//! batch, both mapped by the worker.

use std::sync::Arc;

use joblib_parallel::BoxError;
use joblib_parallel::remote::{ArgsPlacement, SharedValue, Transport};

use super::calls::{self, Segment};

/// The transport of one batch of one call. Keeps the batch's segment of
/// large arguments until it is dropped, after the reply. A shared value's
/// segment is attached to the value, and goes when its last clone is
/// dropped.
pub(crate) struct FileTransport {
    call_id: u64,
    args: Option<Arc<Segment>>,
}

impl FileTransport {
    pub(crate) fn new(call_id: u64) -> FileTransport {
        FileTransport {
            call_id,
            args: None,
        }
    }
}

impl Transport for FileTransport {
    fn place_shared(&mut self, value: &SharedValue<'_>) -> Result<Vec<u8>, BoxError> {
        let segment = value.attach(|| {
            // Serializing the value and writing it to the segment overlap.
            Ok(SharedSegment(Some(Segment::create(
                self.call_id,
                "shared",
                |f| {
                    crate::pipe::write_overlapped(f, |w| {
                        value.write_to(w).map_err(std::io::Error::other)
                    })
                },
            )?)))
        })?;
        Ok(segment.locator().to_vec())
    }

    fn args_buffer(&mut self) -> Vec<u8> {
        calls::args_buffer(self.call_id)
    }

    fn place_args(&mut self, encoded: Vec<u8>) -> Result<ArgsPlacement, BoxError> {
        match calls::spill(self.call_id, &encoded)? {
            None => Ok(ArgsPlacement::Inline(encoded)),
            Some(segment) => {
                let locator = segment.locator().to_vec();
                self.args = Some(segment);
                calls::give_back(self.call_id, encoded);
                Ok(ArgsPlacement::External(locator))
            }
        }
    }
}

/// The segment of a [`Shared`](joblib_parallel::Shared) value, attached to
/// it: when the value's last clone goes, the segment is closed and every
/// worker is told at once, so that an idle worker unmaps it (and the last
/// one frees its memory) while it waits, not at its next request.
struct SharedSegment(Option<Segment>);

impl SharedSegment {
    fn locator(&self) -> &[u8] {
        self.0.as_ref().map_or(&[], Segment::locator)
    }
}

impl Drop for SharedSegment {
    fn drop(&mut self) {
        // Closed first: a worker keeps a value while its file is open here.
        drop(self.0.take());
        crate::pool::tell_release();
    }
}
