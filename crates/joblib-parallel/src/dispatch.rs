//! The engine of a call: reads the input into batches, submits them, and
//! collects outcomes, with pre_dispatch, timeouts and aborts.

use std::any::TypeId;
use std::ops::ControlFlow;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError};

use crate::backend::{
    CallInfo, CallShared, Collector, Outcome, ParallelBackend, TaskClock, TypedJob,
};
use crate::batching::{BatchSizer, Timings};
use crate::config::BatchSize;
use crate::error::{Error, panic_message};
use crate::progress::{Counts, Progress};
use crate::task::{IntoTask, Task, infallible};

/// Everything a call needs to know, resolved from the builder, the
/// thread's configuration and the nesting level.
pub(crate) struct Plan {
    pub(crate) backend: Arc<dyn ParallelBackend>,
    pub(crate) n_jobs_arg: i32,
    pub(crate) workers: usize,
    pub(crate) batch_size: BatchSize,
    pub(crate) pre_dispatch: usize,
    pub(crate) timeout: Option<Duration>,
    pub(crate) verbose: u32,
    pub(crate) level: usize,
    /// Times per task measured by earlier calls of the same `Parallel`.
    pub(crate) timings: Arc<Timings>,
    #[cfg(feature = "indicatif")]
    pub(crate) progress_bar: bool,
}

pub(crate) fn next_call_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

pub(crate) type Output<I> = <<<I as Iterator>::Item as IntoTask>::Task as Task>::Output;
type TaskOf<I> = <<I as Iterator>::Item as IntoTask>::Task;

struct InFlight {
    seq: usize,
    clock: Option<Arc<TaskClock>>,
}

/// What waiting for the call's workers produced.
pub(crate) enum Event<R> {
    /// A batch finished (possibly with an error, possibly cut short).
    Done(Outcome<R>),
    /// A task of batch `seq` ran past the timeout.
    TimedOut { seq: usize, error: Error },
}

pub(crate) struct Engine<I>
where
    I: Iterator,
    I::Item: IntoTask,
{
    plan: Plan,
    call: CallInfo,
    input: I,
    shared: Arc<CallShared<Output<I>>>,
    rx: Receiver<Outcome<Output<I>>>,
    next_index: usize,
    next_seq: usize,
    in_flight: Vec<InFlight>,
    sizer: BatchSizer,
    input_error: Option<Error>,
    counts: Counts,
    progress: Progress,
    /// No more batches are dispatched (error, timeout or abort).
    stopped: bool,
    /// A task ran past the timeout: its batch, no longer in flight, may
    /// still be running in the backend.
    timed_out: bool,
}

impl<I> Engine<I>
where
    I: Iterator,
    I::Item: IntoTask,
{
    /// Starts a call; with `collect`, results are assembled in order by the
    /// workers (see [`take_collected`](Engine::take_collected)) instead of
    /// being sent back batch by batch.
    pub(crate) fn start(plan: Plan, input: I, collect: Option<usize>) -> Result<Self, Error> {
        let call = CallInfo {
            call_id: next_call_id(),
            n_jobs: plan.workers,
            nesting_level: plan.level,
            timeout: plan.timeout,
        };
        plan.backend
            .start(&call)
            .map_err(|source| Error::BackendStart {
                backend: plan.backend.name().to_owned(),
                source,
            })?;
        let (tx, rx) = crossbeam_channel::unbounded();
        let shared = Arc::new(CallShared {
            tx,
            cancel_from: AtomicUsize::new(usize::MAX),
            epoch: Instant::now(),
            collector: collect.map(|capacity| Mutex::new(Collector::with_capacity(capacity))),
        });
        let known = plan
            .timings
            .get(TypeId::of::<TaskOf<I>>(), plan.backend.name());
        let sizer = BatchSizer::new(
            plan.batch_size,
            plan.backend.target_batch_duration(),
            plan.workers,
            known,
        );
        #[allow(unused_mut)]
        let mut progress = Progress::new(plan.verbose, plan.n_jobs_arg, plan.pre_dispatch);
        #[cfg(feature = "indicatif")]
        if plan.progress_bar {
            progress = progress.with_bar(indicatif::ProgressBar::new(0));
        }
        progress.started(plan.backend.name(), plan.workers);
        Ok(Engine {
            plan,
            call,
            input,
            shared,
            rx,
            next_index: 0,
            next_seq: 0,
            in_flight: Vec::new(),
            sizer,
            input_error: None,
            counts: Counts::default(),
            progress,
            stopped: false,
            timed_out: false,
        })
    }

    /// Number of batches dispatched so far.
    pub(crate) fn dispatched_batches(&self) -> usize {
        self.next_seq
    }

    /// Whether batches are still running.
    pub(crate) fn has_in_flight(&self) -> bool {
        !self.in_flight.is_empty()
    }

    /// The error met while reading the input, once, after which the input is
    /// not read again.
    pub(crate) fn take_input_error(&mut self) -> Option<Error> {
        self.input_error.take()
    }

    /// Dispatches batches while fewer than `pre_dispatch` are in flight or
    /// (`ahead`) completed but not consumed.
    pub(crate) fn fill(&mut self, ahead: usize) -> Result<(), Error> {
        while !self.stopped
            && !self.counts.input_exhausted
            && self.in_flight.len().saturating_add(ahead) < self.plan.pre_dispatch
        {
            self.dispatch_one()?;
        }
        Ok(())
    }

    fn dispatch_one(&mut self) -> Result<(), Error> {
        let size = self.sizer.next_size(self.input.size_hint().0);
        let first = self.next_index;
        let mut tasks = Vec::with_capacity(size);
        let mut failure = None;
        let input = &mut self.input;
        let caught = catch_unwind(AssertUnwindSafe(|| {
            if <I::Item as IntoTask>::INFALLIBLE {
                // Ranges and slices mapped to tasks are `TrustedLen`: this
                // becomes a loop with no per-item capacity check.
                tasks.extend(
                    input
                        .by_ref()
                        .take(size)
                        .map(|item| infallible(item.into_task())),
                );
                return;
            }
            let _ = input
                .by_ref()
                .take(size)
                .try_for_each(|item| match item.into_task() {
                    Ok(task) => {
                        tasks.push(task);
                        ControlFlow::Continue(())
                    }
                    Err(source) => {
                        failure = Some(source);
                        ControlFlow::Break(())
                    }
                });
        }));
        let mut exhausted = tasks.len() < size;
        let at = first + tasks.len();
        if let Err(payload) = caught {
            self.input_error = Some(Error::InputPanic {
                index: at,
                message: panic_message(payload.as_ref()),
            });
            exhausted = true;
        } else if let Some(source) = failure {
            self.input_error = Some(Error::Input { index: at, source });
            exhausted = true;
        }
        self.counts.input_exhausted = exhausted;
        if tasks.is_empty() {
            return Ok(());
        }
        let len = tasks.len();
        let seq = self.next_seq;
        let clock = self.plan.timeout.map(|_| Arc::new(TaskClock::default()));
        let batch = TypedJob::into_batch(
            tasks,
            self.sizer.check_every(),
            seq,
            first,
            Arc::clone(&self.shared),
            clock.clone(),
            self.call.call_id,
            self.plan.level,
            self.plan.workers,
        );
        self.next_seq += 1;
        self.next_index += len;
        self.counts.dispatched_batches += 1;
        self.counts.dispatched_tasks += len;
        self.in_flight.push(InFlight { seq, clock });
        self.plan
            .backend
            .submit(batch)
            .map_err(|source| Error::Backend {
                backend: self.plan.backend.name().to_owned(),
                index: first,
                source,
            })
    }

    /// Waits for the next batch to finish or a task to time out; `None` when
    /// nothing is in flight.
    pub(crate) fn wait(&mut self) -> Option<Event<Output<I>>> {
        loop {
            if self.in_flight.is_empty() {
                return None;
            }
            let received = match self.plan.timeout {
                // The call holds a sender, so the channel never disconnects.
                None => self.rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
                Some(timeout) => {
                    let wait = match self.check_clocks(timeout) {
                        Err(event) => return Some(event),
                        Ok(wait) => wait,
                    };
                    self.rx.recv_timeout(wait)
                }
            };
            match received {
                Ok(outcome) => {
                    if let Some(done) = self.complete(outcome) {
                        return Some(Event::Done(done));
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return None,
            }
        }
    }

    /// Books a received outcome; `None` if it belongs to a batch already
    /// given up (timed out).
    fn complete(&mut self, outcome: Outcome<Output<I>>) -> Option<Outcome<Output<I>>> {
        let pos = self.in_flight.iter().position(|f| f.seq == outcome.seq)?;
        self.in_flight.swap_remove(pos);
        let len = outcome.completed;
        if outcome.error.is_none() && !outcome.cancelled {
            self.sizer.observe(len, outcome.elapsed);
        }
        self.counts.completed_batches += 1;
        self.counts.completed_tasks += len;
        self.progress.batch_done(&self.counts, len, outcome.elapsed);
        Some(outcome)
    }

    /// The time until the next running task could time out, or the timeout
    /// event of one that did.
    fn check_clocks(&mut self, timeout: Duration) -> Result<Duration, Event<Output<I>>> {
        let now = self.shared.epoch.elapsed();
        let mut wait = timeout;
        for (pos, flight) in self.in_flight.iter().enumerate() {
            let Some(clock) = &flight.clock else { continue };
            let running = clock.running.load(Ordering::Acquire);
            if running == 0 {
                continue;
            }
            let started = Duration::from_nanos(clock.started_ns.load(Ordering::Relaxed));
            let ran = now.saturating_sub(started);
            if ran >= timeout {
                let seq = flight.seq;
                self.in_flight.swap_remove(pos);
                self.timed_out = true;
                return Err(Event::TimedOut {
                    seq,
                    error: Error::Timeout {
                        index: running - 1,
                        timeout,
                    },
                });
            }
            wait = wait.min(timeout - ran);
        }
        Ok(wait.max(Duration::from_millis(1)))
    }

    /// Dispatches nothing more, and keeps tasks at `from_index` or later from
    /// starting. With `from_index == 0`, the backend is told the call is
    /// over.
    pub(crate) fn stop(&mut self, from_index: usize) {
        self.stopped = true;
        self.shared
            .cancel_from
            .fetch_min(from_index, Ordering::Relaxed);
        if from_index == 0 && (!self.in_flight.is_empty() || self.timed_out) {
            self.in_flight.clear();
            self.timed_out = false;
            self.plan.backend.abort(&self.call);
        }
    }

    /// The results assembled by the workers, once every batch is done.
    pub(crate) fn take_collected(&self) -> Option<Vec<Output<I>>> {
        let collector = self.shared.collector.as_ref()?;
        let mut collector = collector.lock().unwrap_or_else(PoisonError::into_inner);
        debug_assert!(collector.is_complete());
        Some(collector.take())
    }

    /// Reports the end of a call in which every task ran.
    pub(crate) fn finished(&self) {
        self.progress.finished(self.counts.completed_tasks);
    }
}

impl<I> Drop for Engine<I>
where
    I: Iterator,
    I::Item: IntoTask,
{
    fn drop(&mut self) {
        // Results nobody will read: do not start the tasks still queued.
        self.stop(0);
        self.plan.backend.finish(&self.call);
        if self.counts.completed_batches > 0
            && let Some(per_task) = self.sizer.per_task()
        {
            self.plan.timings.record(
                TypeId::of::<TaskOf<I>>(),
                self.plan.backend.name(),
                per_task,
            );
        }
    }
}
