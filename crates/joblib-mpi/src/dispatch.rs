//! Rank 0's side: one thread makes every MPI call, sending the batches of
//! all calls to the worker ranks (about two in flight per rank) and
//! completing them from the replies.

use std::collections::{BTreeSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TryRecvError};
use joblib_parallel::remote::{SharedValue, Transport};
use joblib_parallel::{BoxError, RemoteBatch};
use mpi::point_to_point::{Destination, MatchedReceiveVec, Source};
use mpi::request::{Request, StaticScope};
use mpi::topology::{Communicator, SimpleCommunicator};

use crate::last_words::{self, OnRank};
use crate::launch::Backoff;
use crate::wire;

/// Batches sent to a rank and not answered yet, at most: one running, one
/// waiting on the rank so that it starts at once when the first ends.
const IN_FLIGHT_PER_RANK: usize = 2;

/// Requests larger than this are sent only to a rank with nothing in
/// flight, and rank 0 polls without sleeping until they are through. Open
/// MPI moves a large message in fragments, each needing the sender to call
/// into MPI: a sender that sleeps between polls would stretch a 10 MiB
/// send over hundreds of milliseconds, and one sent to a busy rank would
/// keep rank 0 polling for the length of a task.
const LARGE: usize = 64 << 10;

/// Times a shared value's bytes were sent to a rank (see
/// [`shared_values_sent`](crate::shared_values_sent)).
pub(crate) static SHARED_SENT: AtomicU64 = AtomicU64::new(0);

/// What the rest of the program asks of the MPI thread.
pub(crate) enum Command {
    /// Run this batch on one of the first `n_jobs` worker ranks.
    Submit { batch: RemoteBatch, n_jobs: usize },
    /// The last clone of shared value `id` was dropped: these ranks may
    /// forget it.
    Release { id: u64, ranks: Vec<i32> },
    /// The job is ending: answer the batches in flight, fail the queued
    /// ones, stop the workers. (The channel itself stays open: shared
    /// values and this thread hold senders.)
    Stop,
}

/// The MPI thread's loop: returns after `Stop`, once every batch in flight has been answered, after telling the worker ranks
/// to stop.
pub(crate) fn run(commands: Receiver<Command>, release: Sender<Command>, workers: usize) {
    let world = SimpleCommunicator::world();
    let mut d = Dispatcher {
        world,
        queue: VecDeque::new(),
        flights: (0..workers).map(|_| VecDeque::new()).collect(),
        parked: (0..workers).map(|_| None).collect(),
        sends: Vec::new(),
        release,
    };
    let mut backoff = Backoff::new();
    let mut closing = false;
    loop {
        let mut progressed = false;
        loop {
            match commands.try_recv() {
                Ok(Command::Stop) => closing = true,
                Ok(command) => {
                    d.handle(command);
                    progressed = true;
                }
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    closing = true;
                    break;
                }
            }
        }
        progressed |= d.dispatch();
        progressed |= d.receive_replies();
        progressed |= d.finish_sends();
        let busy = !d.sends.is_empty() || d.flights.iter().any(|f| !f.is_empty());
        if closing {
            for (batch, _) in d.queue.drain(..) {
                batch.fail(
                    "the MPI job is ending: the value returned by joblib_mpi::init() was dropped",
                );
            }
            if !busy {
                break;
            }
        }
        if progressed {
            backoff.reset();
            continue;
        }
        if d.sends.iter().any(|s| s.large) {
            // A large message is on its way to a rank that is receiving it.
            std::thread::yield_now();
            continue;
        }
        let waited = if busy || closing {
            commands.recv_timeout(backoff.next_wait())
        } else {
            // Nothing on the way anywhere: sleep until there is work.
            commands.recv().map_err(|_| RecvTimeoutError::Disconnected)
        };
        match waited {
            Ok(Command::Stop) => closing = true,
            Ok(command) => {
                d.handle(command);
                backoff.reset();
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => closing = true,
        }
    }
    for rank in 1..=d.flights.len() {
        let rank = i32::try_from(rank).unwrap_or(i32::MAX);
        d.world
            .process_at_rank(rank)
            .send_with_tag(&[0u8; 0][..], wire::STOP);
    }
}

/// A message on its way out, whose bytes must live until MPI is done with
/// them.
struct Outgoing {
    request: Request<'static, [u8]>,
    bytes: *mut [u8],
    large: bool,
}

impl Outgoing {
    fn start(world: &SimpleCommunicator, rank: i32, bytes: Vec<u8>, tag: mpi::Tag) -> Outgoing {
        let large = bytes.len() > LARGE;
        let bytes = Box::into_raw(bytes.into_boxed_slice());
        // SAFETY: `bytes` comes from `Box::into_raw`, so it is valid and
        // unaliased; it is freed only in `finish`, after MPI reported the
        // send complete and the request holding this reference is gone.
        let view: &'static [u8] = unsafe { &*bytes };
        let request = world
            .process_at_rank(rank)
            .immediate_send_with_tag(StaticScope, view, tag);
        Outgoing {
            request,
            bytes,
            large,
        }
    }

    /// Whether the send is complete (then the bytes are freed), or the
    /// message still on its way.
    fn finish(self) -> Result<(), Outgoing> {
        let Outgoing {
            request,
            bytes,
            large,
        } = self;
        match request.test() {
            Ok(_) => {
                // SAFETY: the send is complete and its request consumed, so
                // nothing refers to the bytes any more; they were made by
                // `Box::into_raw` in `start` and are freed once, here.
                drop(unsafe { Box::from_raw(bytes) });
                Ok(())
            }
            Err(request) => Err(Outgoing {
                request,
                bytes,
                large,
            }),
        }
    }
}

struct Dispatcher {
    world: SimpleCommunicator,
    /// Batches waiting for a rank, oldest first.
    queue: VecDeque<(RemoteBatch, usize)>,
    /// Per worker rank (rank r at r - 1): its batches not answered yet, in
    /// the order they were sent (the order of its replies).
    flights: Vec<VecDeque<RemoteBatch>>,
    /// Per worker rank: a large request (the last of its flights) waiting
    /// until the rank has answered the others.
    parked: Vec<Option<Vec<u8>>>,
    sends: Vec<Outgoing>,
    /// Handed to shared values, which send a `Release` when dropped.
    release: Sender<Command>,
}

impl Dispatcher {
    fn handle(&mut self, command: Command) {
        match command {
            Command::Submit { batch, n_jobs } => self.queue.push_back((batch, n_jobs.max(1))),
            Command::Stop => {}
            Command::Release { id, ranks } => {
                for rank in ranks {
                    let bytes = id.to_le_bytes().to_vec();
                    self.sends
                        .push(Outgoing::start(&self.world, rank, bytes, wire::RELEASE));
                }
            }
        }
    }

    /// Sends queued batches to ranks with room, the least loaded first;
    /// whether anything happened.
    fn dispatch(&mut self) -> bool {
        let mut progressed = false;
        while let Some((batch, n_jobs)) = self.queue.front() {
            if batch.is_cancelled() {
                if let Some((batch, _)) = self.queue.pop_front() {
                    batch.skip();
                }
                progressed = true;
                continue;
            }
            let eligible = (*n_jobs).min(self.flights.len());
            let Some((slot, _)) = self.flights[..eligible]
                .iter()
                .enumerate()
                .map(|(i, f)| (i, f.len()))
                .filter(|&(_, n)| n < IN_FLIGHT_PER_RANK)
                .min_by_key(|&(_, n)| n)
            else {
                break;
            };
            let Some((mut batch, _)) = self.queue.pop_front() else {
                break;
            };
            progressed = true;
            let rank = i32::try_from(slot + 1).unwrap_or(i32::MAX);
            let mut transport = RankTransport {
                rank,
                release: &self.release,
            };
            match batch.request(&mut transport) {
                Err(e) => batch.fail(e),
                Ok(request) if request.len() > wire::MAX_MESSAGE => batch.fail(format!(
                    "the request of this batch takes {} bytes, more than the {} bytes one MPI \
                     message can carry: pass smaller arguments per task (a path on a shared \
                     file system, or a smaller batch_size)",
                    request.len(),
                    wire::MAX_MESSAGE
                )),
                Ok(request) => {
                    if request.len() > LARGE && !self.flights[slot].is_empty() {
                        self.parked[slot] = Some(request);
                    } else {
                        self.sends
                            .push(Outgoing::start(&self.world, rank, request, wire::REQUEST));
                    }
                    last_words::sent(
                        slot,
                        OnRank {
                            call_id: batch.call_id(),
                            first: batch.first_index(),
                            len: batch.len(),
                        },
                    );
                    self.flights[slot].push_back(batch);
                }
            }
        }
        progressed
    }

    /// Completes the batches whose replies arrived; whether any did.
    fn receive_replies(&mut self) -> bool {
        let mut progressed = false;
        while let Some(probed) = self
            .world
            .any_process()
            .immediate_matched_probe_with_tag(wire::REPLY)
        {
            progressed = true;
            let (reply, status) = probed.matched_receive_vec::<u8>();
            let source = status.source_rank();
            let slot = usize::try_from(source)
                .ok()
                .and_then(|r| r.checked_sub(1))
                .filter(|&s| s < self.flights.len());
            match slot.and_then(|s| self.flights[s].pop_front()) {
                Some(batch) => {
                    if let Some(s) = slot {
                        last_words::answered(s);
                    }
                    batch.complete(&reply);
                    if let Some(s) = slot
                        && self.flights[s].len() == 1
                        && let Some(request) = self.parked[s].take()
                    {
                        self.sends.push(Outgoing::start(
                            &self.world,
                            source,
                            request,
                            wire::REQUEST,
                        ));
                    }
                }
                None => eprintln!(
                    "joblib-mpi: rank 0 received a reply from rank {source}, which had no \
                     batch to answer; ignored"
                ),
            }
        }
        progressed
    }

    /// Frees the bytes of the sends MPI is done with; whether any were.
    fn finish_sends(&mut self) -> bool {
        let before = self.sends.len();
        let mut still = Vec::with_capacity(before);
        for send in self.sends.drain(..) {
            if let Err(send) = send.finish() {
                still.push(send);
            }
        }
        self.sends = still;
        self.sends.len() != before
    }
}

/// The ranks that hold a shared value, attached to the value: when its
/// last clone is dropped, they are told to forget it.
struct Holders {
    id: u64,
    ranks: Mutex<BTreeSet<i32>>,
    release: Sender<Command>,
}

impl Drop for Holders {
    fn drop(&mut self) {
        let ranks: Vec<i32> = self
            .ranks
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .copied()
            .collect();
        if !ranks.is_empty() {
            // After the job ended nobody listens, and nobody needs to.
            let _ = self.release.send(Command::Release { id: self.id, ranks });
        }
    }
}

/// How a request to one rank carries shared values: their bytes the first
/// time that rank needs them, an empty locator after (the rank keeps
/// them).
struct RankTransport<'a> {
    rank: i32,
    release: &'a Sender<Command>,
}

impl Transport for RankTransport<'_> {
    fn place_shared(&mut self, value: &SharedValue<'_>) -> Result<Vec<u8>, BoxError> {
        let holders: Arc<Holders> = value.attach(|| {
            Ok(Holders {
                id: value.id(),
                ranks: Mutex::new(BTreeSet::new()),
                release: self.release.clone(),
            })
        })?;
        let mut ranks = holders.ranks.lock().unwrap_or_else(PoisonError::into_inner);
        if ranks.contains(&self.rank) {
            return Ok(Vec::new());
        }
        let bytes = value.to_bytes()?;
        ranks.insert(self.rank);
        SHARED_SENT.fetch_add(1, Ordering::Relaxed);
        Ok(bytes)
    }
}
