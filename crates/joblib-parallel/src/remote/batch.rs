//! [`RemoteBatch`]: a batch on its way to another process.

use std::fmt;

use super::format::{self, ArgsRef, Header, ReplyRef, Request};
use super::serve::build_identity;
use super::shared;
use super::transport::{ArgsPlacement, InlineTransport, Transport};
use crate::backend::Batch;
use crate::error::BoxError;

/// How a remote batch ended, for the job that completes it.
pub(crate) enum RemoteEnd<'a> {
    /// The call was aborted before the batch started: nothing ran.
    Skipped,
    /// The worker replied.
    Reply(ReplyRef<'a>),
    /// The worker died.
    Died { pid: u32, reason: String },
    /// The transport could not run the batch.
    Failed(BoxError),
}

/// A batch whose tasks can run in another process, made by
/// [`Batch::into_remote`]: its [`request`](RemoteBatch::request) bytes go to
/// any process of the same program, which runs them with
/// [`serve_request`](crate::serve_request), and the reply bytes that come
/// back [`complete`](RemoteBatch::complete) it.
///
/// Exactly one of [`complete`](RemoteBatch::complete),
/// [`worker_died`](RemoteBatch::worker_died), [`fail`](RemoteBatch::fail)
/// or [`skip`](RemoteBatch::skip) must be called; a `RemoteBatch` dropped
/// without one reports an [`Error::Backend`](crate::Error::Backend) to its
/// call, as a dropped [`Batch`] does. See `docs/remote.md` for the format
/// and "Writing a backend that runs tasks elsewhere" in `docs/parallel.md`.
pub struct RemoteBatch {
    batch: Batch,
    backend: String,
    entry_offset: i64,
    type_hash: u64,
}

impl fmt::Debug for RemoteBatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteBatch")
            .field("batch", &self.batch)
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

/// A batch whose tasks cannot run in another process (they were not made
/// by `delayed_remote`), handed back by [`Batch::into_remote`].
pub struct NotRemote {
    /// The batch, to run here or to fail.
    pub batch: Batch,
    message: String,
}

impl NotRemote {
    /// Fails the batch with this error: the call stops with
    /// [`Error::Backend`](crate::Error::Backend) naming `backend` and saying
    /// that the tasks must be made by `delayed_remote`.
    pub fn fail(self, backend: &str) {
        let NotRemote { batch, message } = self;
        batch.fail(backend, message);
    }
}

impl fmt::Debug for NotRemote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NotRemote")
            .field("batch", &self.batch)
            .field("message", &self.message)
            .finish()
    }
}

impl fmt::Display for NotRemote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for NotRemote {}

impl Batch {
    /// This batch as a [`RemoteBatch`], for a backend that runs tasks in
    /// another process; `backend` names the backend in the errors the call
    /// may report.
    ///
    /// # Errors
    ///
    /// [`NotRemote`], holding the batch, if its tasks were not made by
    /// [`delayed_remote`](fn@crate::delayed_remote) or
    /// [`try_delayed_remote`](fn@crate::try_delayed_remote); its message names
    /// the task type and says so.
    pub fn into_remote(self, backend: &str) -> Result<RemoteBatch, NotRemote> {
        match self.job.remote_entry() {
            Some((entry_offset, type_hash)) => Ok(RemoteBatch {
                batch: self,
                backend: backend.to_owned(),
                entry_offset,
                type_hash,
            }),
            None => {
                let message = format!(
                    "tasks of type {} cannot run in another process: make them with \
                     delayed_remote(f, args) or try_delayed_remote(f, args), whose function \
                     captures nothing and whose arguments and result are serializable",
                    self.job.task_type()
                );
                Err(NotRemote {
                    batch: self,
                    message,
                })
            }
        }
    }
}

impl RemoteBatch {
    /// Index (position in the call's input) of the first task.
    pub fn first_index(&self) -> usize {
        self.batch.first_index()
    }

    /// Number of tasks in the batch (at least 1).
    pub fn len(&self) -> usize {
        self.batch.len()
    }

    /// Always `false`: a call never submits an empty batch.
    pub fn is_empty(&self) -> bool {
        self.batch.is_empty()
    }

    /// The call this batch belongs to.
    pub fn call_id(&self) -> u64 {
        self.batch.call_id()
    }

    /// The Rust type of the batch's tasks, for messages.
    pub fn task_type(&self) -> &'static str {
        self.batch.job.task_type()
    }

    /// Whether the call stopped (first error, timeout, results dropped)
    /// before this batch started: then [`skip`](RemoteBatch::skip) it
    /// rather than send it.
    pub fn is_cancelled(&self) -> bool {
        self.batch.job.is_cancelled()
    }

    /// The request bytes, with shared values and arguments placed by
    /// `transport`. Starts the clock of the call's timeout for this batch.
    ///
    /// # Errors
    ///
    /// The arguments could not be serialized, or `transport` failed; the
    /// batch is still to be completed (typically with
    /// [`fail`](RemoteBatch::fail)).
    pub fn request(&mut self, transport: &mut dyn Transport) -> Result<Vec<u8>, BoxError> {
        let job = &mut self.batch.job;
        let mut args = transport.args_buffer();
        args.clear();
        let (encoded, met) = shared::encoding(|| job.encode_args(&mut args));
        encoded.map_err(|e| format!("cannot serialize the arguments: {e}"))?;
        let mut locators = Vec::with_capacity(met.len());
        for value in &met {
            let locator = transport.place_shared(&shared::SharedValue(value.as_ref()))?;
            locators.push((value.id(), locator));
        }
        let args = transport.place_args(args)?;
        let mut out = Vec::new();
        format::write_request(
            &mut out,
            &Request {
                header: Header {
                    build: build_identity(),
                    call_id: self.batch.call_id(),
                    first_index: self.batch.first_index() as u64,
                    entry_offset: self.entry_offset,
                    type_hash: self.type_hash,
                    nesting_level: u32::try_from(self.batch.nesting_level() + 1)
                        .unwrap_or(u32::MAX),
                    n_jobs: u32::try_from(self.batch.n_jobs()).unwrap_or(u32::MAX),
                },
                shared: locators.iter().map(|(id, l)| (*id, &l[..])).collect(),
                args: match &args {
                    ArgsPlacement::Inline(b) => ArgsRef::Inline(b),
                    ArgsPlacement::External(l) => ArgsRef::External(l),
                },
            },
        );
        Ok(out)
    }

    /// The request bytes with everything in them ([`InlineTransport`]).
    ///
    /// # Errors
    ///
    /// As [`request`](RemoteBatch::request).
    pub fn request_bytes(&mut self) -> Result<Vec<u8>, BoxError> {
        self.request(&mut InlineTransport)
    }

    /// Completes the batch from the reply bytes of
    /// [`serve_request`](crate::serve_request): its results go to the call,
    /// or its task error, panic (with the worker's backtrace) or refusal
    /// stops the call. Bytes that are not a reply of this format version
    /// stop the call with an [`Error::Backend`](crate::Error::Backend)
    /// saying why.
    pub fn complete(self, reply: &[u8]) {
        let end = match format::read_reply(reply) {
            Ok(reply) => RemoteEnd::Reply(reply),
            Err(e) => RemoteEnd::Failed(format!("cannot read the worker's reply: {e}").into()),
        };
        self.batch.job.finish_remote(end, &self.backend);
    }

    /// Completes the batch when the process running it died (or was lost):
    /// the call stops with [`Error::WorkerDied`](crate::Error::WorkerDied)
    /// naming `pid`, the batch's tasks and `reason` ("was killed by signal
    /// 9 (SIGKILL)", ...).
    pub fn worker_died(self, pid: u32, reason: impl Into<String>) {
        let reason = reason.into();
        self.batch
            .job
            .finish_remote(RemoteEnd::Died { pid, reason }, &self.backend);
    }

    /// Completes the batch when the backend could not run it: the call
    /// stops with [`Error::Backend`](crate::Error::Backend).
    pub fn fail(self, error: impl Into<BoxError>) {
        self.batch
            .job
            .finish_remote(RemoteEnd::Failed(error.into()), &self.backend);
    }

    /// Completes a batch of a call that stopped, without running it (see
    /// [`is_cancelled`](RemoteBatch::is_cancelled)).
    pub fn skip(self) {
        self.batch
            .job
            .finish_remote(RemoteEnd::Skipped, &self.backend);
    }
}
