//! A batch: consecutive tasks of one call, type-erased so any backend can
//! run them.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;

use super::collect::{Collector, Sink, Slot};

use crate::error::{BoxError, Error, panic_message};
use crate::nesting;
use crate::task::{Task, infallible};

/// Consecutive tasks of one parallel call, ready to run on any thread.
///
/// A [`ParallelBackend`](crate::ParallelBackend) receives batches in
/// [`submit`](crate::ParallelBackend::submit) and must eventually call
/// [`run`](Batch::run) or [`fail`](Batch::fail) on each. Running a batch
/// catches task panics, skips the tasks of a call that was aborted, applies
/// the nesting rules to `Parallel` calls made inside the tasks, and sends the
/// results back to the call; the backend has nothing else to do.
pub struct Batch {
    pub(crate) job: Box<dyn Job>,
    first_index: usize,
    len: usize,
    call_id: u64,
    nesting_level: usize,
    n_jobs: usize,
}

impl std::fmt::Debug for Batch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batch")
            .field("call_id", &self.call_id)
            .field("first_index", &self.first_index)
            .field("len", &self.len)
            .field("nesting_level", &self.nesting_level)
            .finish_non_exhaustive()
    }
}

impl Batch {
    /// Index (position in the call's input) of the first task.
    pub fn first_index(&self) -> usize {
        self.first_index
    }

    /// Number of tasks in the batch (at least 1).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Always `false`: a call never submits an empty batch.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The call this batch belongs to (see [`CallInfo`](crate::CallInfo)).
    pub fn call_id(&self) -> u64 {
        self.call_id
    }

    /// The nesting level of the call that made this batch (0 at top level).
    pub fn nesting_level(&self) -> usize {
        self.nesting_level
    }

    /// The number of workers the call that made this batch may use.
    pub fn n_jobs(&self) -> usize {
        self.n_jobs
    }

    /// Runs the tasks in order on the current thread and sends their results
    /// to the call. Never panics because of a task: a panic is caught and
    /// reported as [`Error::Panic`](crate::Error::Panic).
    pub fn run(self) {
        let _level = nesting::enter_task(self.nesting_level + 1, self.n_jobs);
        self.job.run();
    }

    /// Reports that the backend could not run this batch; the call stops
    /// with [`Error::Backend`](crate::Error::Backend) naming the batch's first
    /// task.
    pub fn fail(self, backend: &str, error: impl Into<BoxError>) {
        self.job.fail(backend, error.into());
    }
}

/// The result of one batch, sent from the worker to the call.
pub(crate) struct Outcome<R> {
    pub(crate) seq: usize,
    /// The results, unless they went into the call's collector.
    pub(crate) results: Vec<R>,
    /// Number of tasks that completed.
    pub(crate) completed: usize,
    pub(crate) error: Option<Error>,
    /// Time spent running the tasks, for auto-batching.
    pub(crate) elapsed: Duration,
    /// Whether some tasks were skipped because the call was aborted.
    pub(crate) cancelled: bool,
}

/// State of one call shared with its batches.
pub(crate) struct CallShared<R> {
    pub(crate) tx: Sender<Outcome<R>>,
    /// Tasks with an index at or above this do not start.
    pub(crate) cancel_from: AtomicUsize,
    pub(crate) epoch: Instant,
    /// For `run`: workers write results here, in place and in order (see
    /// [`Collector`]).
    pub(crate) collector: Option<Mutex<Collector<R>>>,
}

/// Which task of a batch is running, and since when; read by the call to
/// enforce its timeout.
#[derive(Default)]
pub(crate) struct TaskClock {
    /// Index + 1 of the running task, 0 when none is.
    pub(crate) running: AtomicUsize,
    /// Start of the running task, in nanoseconds since the call's epoch.
    pub(crate) started_ns: AtomicU64,
}

pub(crate) trait Job: Send {
    fn run(self: Box<Self>);
    fn fail(self: Box<Self>, backend: &str, error: BoxError);
    /// The task type's name, for messages.
    #[cfg(feature = "remote")]
    fn task_type(&self) -> &'static str;
    /// The entry point's offset and the task type's digest, if the tasks
    /// can run in another process.
    #[cfg(feature = "remote")]
    fn remote_entry(&self) -> Option<(i64, u64)>;
    /// Whether the call was aborted before the batch's first task.
    #[cfg(feature = "remote")]
    fn is_cancelled(&self) -> bool;
    /// Encodes the arguments of the tasks and starts the task clock.
    #[cfg(feature = "remote")]
    fn encode_args(&mut self, out: &mut Vec<u8>) -> Result<(), BoxError>;
    /// Completes the batch from how it ended elsewhere.
    #[cfg(feature = "remote")]
    fn finish_remote(self: Box<Self>, end: crate::remote::RemoteEnd<'_>, backend: &str);
}

pub(crate) struct TypedJob<T: Task> {
    tasks: Vec<T>,
    /// Tasks run between two checks of `cancel_from`.
    check_every: usize,
    seq: usize,
    first: usize,
    shared: Arc<CallShared<T::Output>>,
    clock: Option<Arc<TaskClock>>,
    /// Set once an outcome was sent, so that `Drop` does not send another.
    sent: bool,
    /// When the batch was sent elsewhere.
    #[cfg(feature = "remote")]
    sent_at: Option<Instant>,
}

impl<T: Task> TypedJob<T> {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn into_batch(
        tasks: Vec<T>,
        check_every: usize,
        seq: usize,
        first: usize,
        shared: Arc<CallShared<T::Output>>,
        clock: Option<Arc<TaskClock>>,
        call_id: u64,
        nesting_level: usize,
        n_jobs: usize,
    ) -> Batch {
        let len = tasks.len();
        Batch {
            job: Box::new(TypedJob {
                tasks,
                check_every: check_every.max(1),
                seq,
                first,
                shared,
                clock,
                sent: false,
                #[cfg(feature = "remote")]
                sent_at: None,
            }),
            first_index: first,
            len,
            call_id,
            nesting_level,
            n_jobs,
        }
    }

    /// Hands a batch's results to the call: into the collector (for `run`)
    /// when the batch is complete, and as an outcome. `slot` is where the
    /// results were written in place, if they were.
    fn deliver(
        &mut self,
        mut results: Vec<T::Output>,
        slot: Option<Slot<T::Output>>,
        completed: usize,
        error: Option<Error>,
        elapsed: Duration,
        cancelled: bool,
    ) {
        let seq = self.seq;
        let complete = error.is_none() && !cancelled;
        if let Some(collector) = &self.shared.collector {
            let mut collector = collector.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(slot) = slot {
                // Handed back even after a failure, which drops its results.
                collector.place(seq, slot, complete);
            } else if complete {
                collector.add(seq, std::mem::take(&mut results));
            }
        }
        self.send(Outcome {
            seq,
            results,
            completed,
            error,
            elapsed,
            cancelled,
        });
    }

    /// Runs the tasks in order into `out`, until the end, an error, a panic
    /// or the call's abort; returns how many completed, the error, and
    /// whether the abort cut the batch short.
    fn run_into<S: Sink<T::Output>>(
        &self,
        tasks: Vec<T>,
        out: &mut S,
    ) -> (usize, Option<Error>, bool) {
        let first = self.first;
        let mut error = None;
        let mut cancelled = false;
        let cancel_from = &self.shared.cancel_from;
        let check_every = if self.clock.is_some() {
            1
        } else {
            self.check_every
        };
        let caught = catch_unwind(AssertUnwindSafe(|| {
            let mut tasks = tasks.into_iter();
            while tasks.len() > 0 {
                // Tasks succeed in order, so the next task's index is the
                // number of results so far.
                let index = first + out.written();
                if cancel_from.load(Ordering::Relaxed) <= index {
                    cancelled = true;
                    return;
                }
                if let Some(clock) = &self.clock {
                    let ns =
                        u64::try_from(self.shared.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX);
                    clock.started_ns.store(ns, Ordering::Relaxed);
                    clock.running.store(index + 1, Ordering::Release);
                }
                let chunk = tasks.by_ref().take(check_every);
                if T::INFALLIBLE {
                    // `TrustedLen`: a loop with the length in a register.
                    out.put_all(chunk.map(|task| infallible(task.run())));
                    continue;
                }
                for task in chunk {
                    match task.run() {
                        Ok(r) => out.put(r),
                        Err(source) => {
                            error = Some(Error::Task {
                                index: first + out.written(),
                                source,
                            });
                            return;
                        }
                    }
                }
            }
        }));
        let index = first + out.written();
        if let Some(clock) = &self.clock {
            clock.running.store(0, Ordering::Release);
        }
        if let Err(payload) = caught {
            error = Some(Error::Panic {
                index,
                message: panic_message(payload.as_ref()),
            });
        }
        if error.is_some() {
            // Later tasks of the call are not worth starting.
            cancel_from.fetch_min(index, Ordering::Relaxed);
        }
        (out.written(), error, cancelled)
    }

    fn send(&mut self, outcome: Outcome<T::Output>) {
        self.sent = true;
        // The call may be gone (it returned early); nobody wants the result.
        let _ = self.shared.tx.send(outcome);
    }
}

impl<T: Task> Job for TypedJob<T> {
    fn run(mut self: Box<Self>) {
        let tasks = std::mem::take(&mut self.tasks);
        let slot = self.shared.collector.as_ref().and_then(|c| {
            c.lock()
                .unwrap_or_else(PoisonError::into_inner)
                .slot(self.first, tasks.len())
        });
        let start = Instant::now();
        let (results, slot, ended) = match slot {
            Some(mut slot) => {
                let ended = self.run_into(tasks, &mut slot);
                (Vec::new(), Some(slot), ended)
            }
            None => {
                let mut results = Vec::with_capacity(tasks.len());
                let ended = self.run_into(tasks, &mut results);
                (results, None, ended)
            }
        };
        let elapsed = start.elapsed();
        let (completed, error, cancelled) = ended;
        self.deliver(results, slot, completed, error, elapsed, cancelled);
    }

    #[cfg(feature = "remote")]
    fn task_type(&self) -> &'static str {
        std::any::type_name::<T>()
    }

    #[cfg(feature = "remote")]
    fn remote_entry(&self) -> Option<(i64, u64)> {
        let codec = T::remote_codec()?;
        Some((crate::remote::entry_offset(codec.entry), codec.type_hash))
    }

    #[cfg(feature = "remote")]
    fn is_cancelled(&self) -> bool {
        self.shared.cancel_from.load(Ordering::Relaxed) <= self.first
    }

    #[cfg(feature = "remote")]
    fn encode_args(&mut self, out: &mut Vec<u8>) -> Result<(), BoxError> {
        let Some(codec) = T::remote_codec() else {
            return Err("the tasks cannot run in another process".into());
        };
        if let Some(clock) = &self.clock {
            let ns = u64::try_from(self.shared.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX);
            clock.started_ns.store(ns, Ordering::Relaxed);
            clock.running.store(self.first + 1, Ordering::Release);
        }
        self.sent_at = Some(Instant::now());
        (codec.encode)(&self.tasks, out)
    }

    #[cfg(feature = "remote")]
    fn finish_remote(mut self: Box<Self>, end: crate::remote::RemoteEnd<'_>, backend: &str) {
        use crate::remote::{RemoteEnd, Status};
        let first = self.first;
        let elapsed = self.sent_at.map(|t| t.elapsed()).unwrap_or_default();
        if let Some(clock) = &self.clock {
            clock.running.store(0, Ordering::Release);
        }
        // Kept until now, so that what the arguments point to stays put.
        let len = std::mem::take(&mut self.tasks).len();
        let backend_error = |index: usize, source: BoxError| Error::Backend {
            backend: backend.to_owned(),
            index,
            source,
        };
        let (encoded, error): (&[u8], Option<Error>) = match end {
            RemoteEnd::Skipped => {
                return self.deliver(Vec::new(), None, 0, None, Duration::ZERO, true);
            }
            RemoteEnd::Died { pid, reason } => (
                &[],
                Some(Error::WorkerDied {
                    index: first,
                    tasks: len,
                    pid,
                    reason,
                }),
            ),
            RemoteEnd::Failed(source) => (&[], Some(backend_error(first, source))),
            RemoteEnd::Reply(reply) => {
                let completed = usize::try_from(reply.completed).unwrap_or(usize::MAX);
                let index = first.saturating_add(completed);
                let message = reply.message.to_owned();
                let error = match reply.status {
                    Status::Done => None,
                    Status::TaskError => Some(Error::Task {
                        index,
                        source: message.into(),
                    }),
                    Status::Panic => Some(Error::Panic { index, message }),
                    Status::Refused | Status::Transport => {
                        Some(backend_error(index, message.into()))
                    }
                };
                (reply.results, error)
            }
        };
        let decoded = if encoded.is_empty() {
            Ok(Vec::new())
        } else {
            T::remote_codec()
                .ok_or_else(|| BoxError::from("the tasks cannot run in another process"))
                .and_then(|codec| (codec.decode)(encoded))
        };
        let (results, error) = match decoded {
            Ok(results) if error.is_some() || results.len() == len => (results, error),
            Ok(results) => (
                Vec::new(),
                Some(backend_error(
                    first,
                    format!("the reply holds {} results for {len} tasks", results.len()).into(),
                )),
            ),
            Err(e) => (
                Vec::new(),
                Some(error.unwrap_or_else(|| {
                    backend_error(first, format!("cannot decode the results: {e}").into())
                })),
            ),
        };
        let index = first + results.len();
        if error.is_some() {
            self.shared.cancel_from.fetch_min(index, Ordering::Relaxed);
        }
        let completed = results.len();
        self.deliver(results, None, completed, error, elapsed, false);
    }

    fn fail(mut self: Box<Self>, backend: &str, source: BoxError) {
        let (seq, index) = (self.seq, self.first);
        self.send(Outcome {
            seq,
            results: Vec::new(),
            completed: 0,
            error: Some(Error::Backend {
                backend: backend.to_owned(),
                index,
                source,
            }),
            elapsed: Duration::ZERO,
            cancelled: false,
        });
    }
}

impl<T: Task> Drop for TypedJob<T> {
    fn drop(&mut self) {
        if !self.sent {
            let (seq, index) = (self.seq, self.first);
            self.send(Outcome {
                seq,
                results: Vec::new(),
                completed: 0,
                error: Some(Error::Backend {
                    backend: "<unknown>".to_owned(),
                    index,
                    source: "the backend dropped the batch without running it".into(),
                }),
                elapsed: Duration::ZERO,
                cancelled: false,
            });
        }
    }
}
