//! Writing large encodings into a segment fast: the bytes reach the file
//! on another thread while the caller produces the next ones, and bytes
//! already in memory are written by two threads at once.

use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::FileExt;

use crossbeam_channel::{Receiver, Sender};

/// Size of the buffers handed to the writing thread.
const BUFFER: usize = 4 << 20;
/// Below this, bytes in memory are written by the calling thread alone.
const SPLIT_FROM: usize = 8 << 20;

/// Writes `bytes` to `file` (empty) from offset 0, half of them on a
/// helper thread when they are large: the copy and the page faults of the
/// file's new pages are shared by two cores. The halves are copied into a
/// shared mapping of the file, as `write` would take the file's lock and
/// make them wait for each other.
pub(crate) fn write_split(file: &File, bytes: &[u8]) -> io::Result<()> {
    if bytes.len() < SPLIT_FROM {
        return file.write_all_at(bytes, 0);
    }
    file.set_len(bytes.len() as u64)?;
    // SAFETY: the file was just made by this process for these bytes and
    // has no name; nothing else maps or resizes it while the mapping lives.
    let mut map = unsafe { memmap2::MmapMut::map_mut(file)? };
    let (first, second) = bytes.split_at(bytes.len() / 2);
    let (to_first, to_second) = map.split_at_mut(first.len());
    std::thread::scope(|s| {
        s.spawn(|| to_second.copy_from_slice(second));
        to_first.copy_from_slice(first);
    });
    Ok(())
}

/// Runs `produce` with a writer whose bytes a helper thread writes to
/// `file` while `produce` goes on: serializing a large value and writing it
/// overlap.
pub(crate) fn write_overlapped<R>(
    file: &mut File,
    produce: impl FnOnce(&mut dyn Write) -> io::Result<R>,
) -> io::Result<R> {
    let (full_tx, full_rx) = crossbeam_channel::bounded::<Vec<u8>>(2);
    let (empty_tx, empty_rx) = crossbeam_channel::bounded::<Vec<u8>>(3);
    std::thread::scope(|s| {
        let file = &mut *file;
        let writer = s.spawn(move || -> io::Result<()> {
            for mut buf in full_rx {
                file.write_all(&buf)?;
                buf.clear();
                // The producer may be gone already; the buffer is dropped.
                let _ = empty_tx.try_send(buf);
            }
            Ok(())
        });
        let mut out = Handoff {
            buf: Vec::with_capacity(BUFFER),
            full: Some(full_tx),
            empty: empty_rx,
        };
        let produced = produce(&mut out).and_then(|r| out.finish().map(|()| r));
        // Closes the channel (if `finish` did not), so the writer ends.
        drop(out);
        let written = writer
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("the writing thread panicked")));
        match (produced, written) {
            (Ok(r), Ok(())) => Ok(r),
            // The writer's error is the cause of a send that failed.
            (_, Err(e)) | (Err(e), Ok(())) => Err(e),
        }
    })
}

/// The producer's end of [`write_overlapped`].
struct Handoff {
    buf: Vec<u8>,
    full: Option<Sender<Vec<u8>>>,
    empty: Receiver<Vec<u8>>,
}

impl Handoff {
    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let next = self
            .empty
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(BUFFER));
        let full = std::mem::replace(&mut self.buf, next);
        let sent = self.full.as_ref().map(|tx| tx.send(full).is_ok());
        match sent {
            Some(true) => Ok(()),
            _ => Err(io::Error::other("the writing thread stopped")),
        }
    }

    fn finish(&mut self) -> io::Result<()> {
        self.send()?;
        self.full = None;
        Ok(())
    }
}

impl Write for Handoff {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let room = BUFFER - self.buf.len();
        let n = room.min(bytes.len());
        self.buf.extend_from_slice(&bytes[..n]);
        if self.buf.len() == BUFFER {
            self.send()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn pattern(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 7 + i / 4096) as u8).collect()
    }

    fn contents(file: &mut File) -> Vec<u8> {
        let mut out = Vec::new();
        let mut f = file.try_clone().unwrap();
        std::io::Seek::rewind(&mut f).unwrap();
        f.read_to_end(&mut out).unwrap();
        out
    }

    #[test]
    fn split_writes_land_in_order() {
        for n in [0, 100, SPLIT_FROM - 1, SPLIT_FROM + 12_345] {
            let mut file = tempfile::tempfile().unwrap();
            let bytes = pattern(n);
            write_split(&file, &bytes).unwrap();
            assert_eq!(contents(&mut file), bytes, "{n} bytes");
        }
    }

    #[test]
    fn overlapped_writes_land_in_order_and_return_the_result() {
        let mut file = tempfile::tempfile().unwrap();
        let bytes = pattern(3 * BUFFER + 77);
        let r = write_overlapped(&mut file, |w| {
            for piece in bytes.chunks(1000) {
                w.write_all(piece)?;
            }
            Ok(42)
        })
        .unwrap();
        assert_eq!(r, 42);
        assert_eq!(contents(&mut file), bytes);
    }

    #[test]
    fn a_failing_producer_or_file_is_an_error() {
        let mut file = tempfile::tempfile().unwrap();
        let err = write_overlapped(&mut file, |w| -> io::Result<()> {
            w.write_all(b"partial")?;
            Err(io::Error::other("the value cannot be serialized"))
        })
        .unwrap_err();
        assert!(err.to_string().contains("cannot be serialized"), "{err}");
        // A file opened read-only cannot be written: an error, not a hang.
        let path = tempfile::NamedTempFile::new().unwrap();
        let mut read_only = File::open(path.path()).unwrap();
        let bytes = pattern(4 * BUFFER + 1);
        assert!(write_overlapped(&mut read_only, |w| w.write_all(&bytes)).is_err());
        assert!(write_split(&read_only, &bytes).is_err());
    }
}
