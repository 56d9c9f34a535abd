//! Where the block writer's bytes go: straight into a `Write` on the
//! calling thread, or to a writer thread so that serializing, compressing
//! and writing a dump to a file overlap.

use std::io::{self, Write};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::{Scope, ScopedJoinHandle};

/// The output of a `BlockWriter`.
pub(crate) trait Sink {
    /// Writes borrowed bytes.
    fn put(&mut self, bytes: &[u8]) -> io::Result<()>;

    /// Writes an owned buffer, perhaps handing back an emptied one to reuse.
    fn put_owned(&mut self, buf: Vec<u8>) -> io::Result<Option<Vec<u8>>> {
        self.put(&buf)?;
        Ok(Some(buf))
    }

    /// Flushes everything written so far.
    fn flush(&mut self) -> io::Result<()>;
}

/// Writes on the calling thread.
pub(crate) struct Direct<W: Write>(pub(crate) W);

impl<W: Write> Sink for Direct<W> {
    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.0.write_all(bytes)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

/// How many buffers may wait for the writer thread: bounds the memory a
/// slow disk makes us hold (a few chunks).
const QUEUE: usize = 4;

/// Hands buffers to a writer thread.
pub(crate) struct Threaded<'scope, W: Write + Send + 'scope> {
    tx: Option<SyncSender<Vec<u8>>>,
    back: Receiver<Vec<u8>>,
    handle: Option<ScopedJoinHandle<'scope, io::Result<W>>>,
}

impl<'scope, W: Write + Send + 'scope> Threaded<'scope, W> {
    pub(crate) fn spawn<'env>(scope: &'scope Scope<'scope, 'env>, mut out: W) -> Self {
        let (tx, rx) = sync_channel::<Vec<u8>>(QUEUE);
        let (back_tx, back) = sync_channel::<Vec<u8>>(QUEUE);
        let handle = scope.spawn(move || {
            for buf in rx {
                out.write_all(&buf)?;
                // The main thread may not want it back; dropping is fine.
                let _ = back_tx.try_send(buf);
            }
            out.flush()?;
            Ok(out)
        });
        Threaded {
            tx: Some(tx),
            back,
            handle: Some(handle),
        }
    }

    /// Stops the writer thread and returns its writer, or its first error.
    pub(crate) fn finish(mut self) -> io::Result<W> {
        self.join()
    }

    fn join(&mut self) -> io::Result<W> {
        drop(self.tx.take());
        match self.handle.take() {
            Some(h) => h
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("the writer thread panicked"))),
            None => Err(io::Error::other("the writer thread already stopped")),
        }
    }

    fn send(&mut self, buf: Vec<u8>) -> io::Result<()> {
        let sent = match &self.tx {
            Some(tx) => tx.send(buf).is_ok(),
            None => false,
        };
        if sent {
            return Ok(());
        }
        // The thread stopped early: its error says why.
        match self.join() {
            Err(e) => Err(e),
            Ok(_) => Err(io::Error::other("the writer thread stopped")),
        }
    }
}

impl<'scope, W: Write + Send + 'scope> Sink for Threaded<'scope, W> {
    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        let mut buf = self.back.try_recv().unwrap_or_default();
        buf.clear();
        buf.extend_from_slice(bytes);
        self.send(buf)
    }

    fn put_owned(&mut self, buf: Vec<u8>) -> io::Result<Option<Vec<u8>>> {
        self.send(buf)?;
        Ok(self.back.try_recv().ok())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'scope, W: Write + Send + 'scope> Drop for Threaded<'scope, W> {
    fn drop(&mut self) {
        drop(self.tx.take());
    }
}
