//! A worker rank (rank > 0): serves rank 0's requests until it says stop.

use std::borrow::Cow;
use std::collections::HashSet;

use joblib_parallel::BoxError;
use joblib_parallel::remote::{Blob, Resolver};
use mpi::point_to_point::{Destination, MatchedReceiveVec, Source};
use mpi::topology::{Communicator, SimpleCommunicator};

use crate::launch::Backoff;
use crate::wire;

/// A worker rank's side of the shared values: a value's first request
/// carries its bytes and the rank keeps it until rank 0 releases it.
#[derive(Debug, Default)]
struct RankResolver {
    /// Ids rank 0 released since the last call began.
    released: HashSet<u64>,
}

impl Resolver for RankResolver {
    fn fetch<'a>(&mut self, locator: &'a [u8]) -> Result<Blob<'a>, BoxError> {
        if locator.is_empty() {
            // Rank 0 sends a value's bytes once and an empty locator after;
            // it is kept (see `keep`), so only a value that could not be
            // decoded the first time ends here.
            return Err(
                "rank 0 counted on this rank holding a shared value it does not \
                        hold (its first request failed before the value was decoded)"
                    .into(),
            );
        }
        Ok(Blob::Bytes(Cow::Borrowed(locator)))
    }

    fn keep(&mut self, id: u64, _locator: &[u8]) -> bool {
        !self.released.remove(&id)
    }
}

/// Serves requests from rank 0 until it sends `STOP` (then returns), with
/// non-blocking probes and a backoff so that an idle rank sleeps.
pub(crate) fn serve(world: &SimpleCommunicator) {
    let rank = world.rank();
    let host = mpi::environment::processor_name().unwrap_or_else(|_| "?".to_owned());
    let root = world.process_at_rank(0);
    let mut resolver = RankResolver::default();
    let mut backoff = Backoff::new();
    loop {
        let Some(probed) = root.immediate_matched_probe() else {
            std::thread::sleep(backoff.next_wait());
            continue;
        };
        backoff.reset();
        let tag = probed.1.tag();
        let (bytes, _) = probed.matched_receive_vec::<u8>();
        match tag {
            wire::REQUEST => {
                // SAFETY: the request comes from rank 0 of this MPI job,
                // which runs this same executable (the build identity in
                // the request is checked before anything runs), through
                // MPI, which delivers the bytes unaltered.
                let reply = unsafe { joblib_parallel::serve_request_with(&bytes, &mut resolver) };
                let mut reply = wire::name_rank_in_panic(reply, rank, &host);
                if reply.len() > wire::MAX_MESSAGE {
                    reply = wire::too_large_reply(reply.len(), rank);
                }
                root.send_with_tag(&reply[..], wire::REPLY);
            }
            wire::RELEASE => {
                if let Ok(id) = <[u8; 8]>::try_from(&bytes[..]) {
                    resolver.released.insert(u64::from_le_bytes(id));
                }
            }
            wire::STOP => return,
            other => {
                eprintln!("joblib-mpi: rank {rank} ignores a message with unknown tag {other}")
            }
        }
    }
}
