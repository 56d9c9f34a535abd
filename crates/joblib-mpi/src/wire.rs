//! The messages between rank 0 and the worker ranks: MPI tags, and the
//! rank's name added to a panic's message.
//!
//! Rank 0 sends a worker rank requests (`REQUEST`, the bytes of
//! `RemoteBatch::request`), releases of shared values (`RELEASE`, a `u64`
//! id, little-endian) and at the end `STOP`; the worker answers each
//! request, in order, with a reply (`REPLY`). MPI keeps the messages
//! between two ranks in order, so the n-th reply of a rank answers its n-th
//! request.

use joblib_parallel::remote::FORMAT_VERSION;
use mpi::Tag;

/// Rank 0 → worker: a request to serve.
pub(crate) const REQUEST: Tag = 1;
/// Worker → rank 0: the reply to the oldest request not answered yet.
pub(crate) const REPLY: Tag = 2;
/// Rank 0 → worker: the shared value with this id is no longer needed.
pub(crate) const RELEASE: Tag = 3;
/// Rank 0 → worker: the job is over; finalize MPI and exit.
pub(crate) const STOP: Tag = 4;

/// Byte offsets in a reply of `docs/remote.md` (the same in format
/// versions 1 and 2; the version checked is the one this build speaks).
const STATUS_AT: usize = 8;
const MESSAGE_LEN_AT: usize = 17;
const MESSAGE_AT: usize = 25;
/// Status of a reply whose task panicked.
const STATUS_PANIC: u8 = 2;
/// What separates a panic's message from the worker's backtrace.
const BACKTRACE_MARK: &str = "\n\nworker backtrace:\n";

/// The largest message MPI's `int` counts allow.
pub(crate) const MAX_MESSAGE: usize = i32::MAX as usize;

/// A reply (status 4: could not encode) saying that the real one, of
/// `len` bytes, is too large for one MPI message.
pub(crate) fn too_large_reply(len: usize, rank: i32) -> Vec<u8> {
    let message = format!(
        "the results of the batch on MPI rank {rank} take {len} bytes, more than the \
         {MAX_MESSAGE} bytes one MPI message can carry: return smaller results, or write \
         large ones to a shared file system and return their path"
    );
    let mut r = b"JLRP".to_vec();
    r.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    r.push(4);
    r.extend_from_slice(&0u64.to_le_bytes());
    r.extend_from_slice(&(message.len() as u64).to_le_bytes());
    r.extend_from_slice(message.as_bytes());
    r
}

/// `reply` with "(on MPI rank R, host H)" after its panic message, if its
/// task panicked; any other reply (or bytes that are not a reply of the
/// known format version) unchanged.
pub(crate) fn name_rank_in_panic(reply: Vec<u8>, rank: i32, host: &str) -> Vec<u8> {
    if reply.get(..4) != Some(b"JLRP")
        || reply.get(4..8) != Some(&FORMAT_VERSION.to_le_bytes()[..])
        || reply.get(STATUS_AT) != Some(&STATUS_PANIC)
    {
        return reply;
    }
    let Some(len) = reply
        .get(MESSAGE_LEN_AT..MESSAGE_AT)
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .and_then(|b| usize::try_from(u64::from_le_bytes(b)).ok())
    else {
        return reply;
    };
    let Some(end) = MESSAGE_AT.checked_add(len).filter(|&e| e <= reply.len()) else {
        return reply;
    };
    let Ok(message) = std::str::from_utf8(&reply[MESSAGE_AT..end]) else {
        return reply;
    };
    let note = format!(" (on MPI rank {rank}, host {host})");
    let cut = message.find(BACKTRACE_MARK).unwrap_or(message.len());
    let new_message = format!("{}{note}{}", &message[..cut], &message[cut..]);
    let mut out = Vec::with_capacity(reply.len() + note.len());
    out.extend_from_slice(&reply[..MESSAGE_LEN_AT]);
    out.extend_from_slice(&(new_message.len() as u64).to_le_bytes());
    out.extend_from_slice(new_message.as_bytes());
    out.extend_from_slice(&reply[end..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(status: u8, message: &str, results: &[u8]) -> Vec<u8> {
        let mut r = b"JLRP".to_vec();
        r.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        r.push(status);
        r.extend_from_slice(&3u64.to_le_bytes());
        r.extend_from_slice(&(message.len() as u64).to_le_bytes());
        r.extend_from_slice(message.as_bytes());
        r.extend_from_slice(results);
        r
    }

    #[test]
    fn a_panic_names_the_rank_before_the_backtrace() {
        let r = reply(2, "boom\n\nworker backtrace:\n  0: main", b"RES");
        let out = name_rank_in_panic(r, 2, "node7");
        let want = reply(
            2,
            "boom (on MPI rank 2, host node7)\n\nworker backtrace:\n  0: main",
            b"RES",
        );
        assert_eq!(out, want);
        let r = reply(2, "no trace", b"");
        let out = name_rank_in_panic(r, 1, "h");
        assert_eq!(out, reply(2, "no trace (on MPI rank 1, host h)", b""));
    }

    #[test]
    fn other_replies_and_garbage_are_left_alone() {
        for r in [
            reply(0, "", b"RESULTS"),
            reply(1, "task error", b""),
            b"JLRP".to_vec(),
            Vec::new(),
        ] {
            assert_eq!(name_rank_in_panic(r.clone(), 1, "h"), r);
        }
        let mut cut = reply(2, "boom", b"");
        cut.truncate(cut.len() - 2);
        assert_eq!(name_rank_in_panic(cut.clone(), 1, "h"), cut);
    }
}
