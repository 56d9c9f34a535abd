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

    /// Whether [`put`](Self::put) of borrowed bytes costs no more than
    /// [`put_owned`](Self::put_owned) of a copy of them: then the block
    /// writer hands it an uncompressed block's bytes where they lie instead
    /// of copying them into chunk buffers first.
    fn takes_borrowed(&self) -> bool {
        false
    }
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

    fn takes_borrowed(&self) -> bool {
        true
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

/// Writes on the calling thread until more than `direct` bytes went out,
/// then hands the rest to a writer thread: a small dump (most of a cache's
/// results) does not pay for starting a thread, a large one still overlaps
/// serializing and writing.
pub(crate) struct Lazy<'scope, 'env, W: Write + Send + 'scope> {
    scope: &'scope Scope<'scope, 'env>,
    /// Bytes still written on this thread before the switch.
    direct: usize,
    state: LazyState<'scope, W>,
}

enum LazyState<'scope, W: Write + Send + 'scope> {
    /// Writing on this thread (`None` only while switching).
    Direct(Option<W>),
    Threaded(Threaded<'scope, W>),
}

impl<'scope, 'env, W: Write + Send + 'scope> Lazy<'scope, 'env, W> {
    pub(crate) fn new(scope: &'scope Scope<'scope, 'env>, out: W, direct: usize) -> Self {
        Lazy {
            scope,
            direct,
            state: LazyState::Direct(Some(out)),
        }
    }

    /// Spends `len` bytes of the budget, or starts the writer thread when
    /// they do not fit: the state to write them to.
    fn route(&mut self, len: usize) -> io::Result<&mut LazyState<'scope, W>> {
        if let LazyState::Direct(out) = &mut self.state {
            if len <= self.direct {
                self.direct -= len;
            } else {
                let out = out.take().ok_or_else(lost)?;
                self.state = LazyState::Threaded(Threaded::spawn(self.scope, out));
            }
        }
        Ok(&mut self.state)
    }

    /// Flushes and returns the writer (stopping the writer thread if one
    /// was started), or the first error.
    pub(crate) fn finish(self) -> io::Result<W> {
        match self.state {
            LazyState::Direct(Some(mut out)) => {
                out.flush()?;
                Ok(out)
            }
            LazyState::Direct(None) => Err(lost()),
            LazyState::Threaded(t) => t.finish(),
        }
    }
}

/// The error of a [`Lazy`] sink whose writer went missing (a panic while
/// it switched to the writer thread).
fn lost() -> io::Error {
    io::Error::other("the writer was lost while switching to the writer thread")
}

impl<'scope, 'env, W: Write + Send + 'scope> Sink for Lazy<'scope, 'env, W> {
    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        match self.route(bytes.len())? {
            LazyState::Direct(Some(out)) => out.write_all(bytes),
            LazyState::Direct(None) => Err(lost()),
            LazyState::Threaded(t) => t.put(bytes),
        }
    }

    fn put_owned(&mut self, buf: Vec<u8>) -> io::Result<Option<Vec<u8>>> {
        match self.route(buf.len())? {
            LazyState::Direct(Some(out)) => out.write_all(&buf).map(|()| Some(buf)),
            LazyState::Direct(None) => Err(lost()),
            LazyState::Threaded(t) => t.put_owned(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.state {
            LazyState::Direct(Some(out)) => out.flush(),
            _ => Ok(()),
        }
    }
}

impl<'scope, W: Write + Send + 'scope> Drop for Threaded<'scope, W> {
    fn drop(&mut self) {
        drop(self.tx.take());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lazy_writes_small_output_here_and_hands_large_output_on() {
        let small: Vec<u8> = (0..100u8).collect();
        let large: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let (direct, threaded) = std::thread::scope(|scope| {
            let mut sink = Lazy::new(scope, Vec::new(), 1024);
            sink.put(&small).unwrap();
            let direct = matches!(sink.state, LazyState::Direct(Some(_)));
            sink.put_owned(large.clone()).unwrap();
            sink.put(&small).unwrap();
            let threaded = matches!(sink.state, LazyState::Threaded(_));
            let out = sink.finish().unwrap();
            assert_eq!(out.len(), 2 * small.len() + large.len());
            assert_eq!(&out[..100], &small[..]);
            assert_eq!(&out[100..300_100], &large[..]);
            assert_eq!(&out[300_100..], &small[..]);
            (direct, threaded)
        });
        assert!(
            direct,
            "100 bytes of a 1024-byte budget stay on this thread"
        );
        assert!(threaded, "300 kB past the budget go to the writer thread");
    }
}
