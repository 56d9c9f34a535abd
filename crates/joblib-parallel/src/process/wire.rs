//! The messages between a parent and its worker processes, and their
//! framing on the socket: a tag byte, a little-endian `u64` body length,
//! the body. Arguments and results inside the bodies are in
//! joblib-persist's format.

use std::io::{self, Read, Write};
use std::path::Path;

/// Worker to parent, once, when it is ready: its process id.
const HELLO: u8 = b'H';
/// Worker to parent, instead of `HELLO`: it refuses to serve (another build).
const REFUSE: u8 = b'X';
/// Parent to worker: run a batch.
const RUN: u8 = b'R';
/// Worker to parent: the batch ran; the body is the encoded results.
const DONE: u8 = b'D';
/// Worker to parent: the batch stopped at a failure.
const FAILED: u8 = b'F';

/// Largest body accepted (a sanity bound against a garbled length).
const MAX_BODY: u64 = 1 << 40;

/// How a batch failed in the worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FailureKind {
    /// A task returned `Err`.
    Task,
    /// A task panicked.
    Panic,
    /// Arguments or results could not be decoded or encoded, or the entry
    /// point was not the one expected.
    Transport,
}

/// A batch that did not run to its end, as reported by the worker.
#[derive(Debug)]
pub(crate) struct Failure {
    /// Tasks that completed before the failure.
    pub(crate) completed: usize,
    pub(crate) kind: FailureKind,
    pub(crate) message: String,
    /// The encoded results of the completed tasks.
    pub(crate) results: Vec<u8>,
}

/// A batch to run, as sent to a worker.
#[derive(Debug)]
pub(crate) struct Run<'a> {
    pub(crate) call_id: u64,
    pub(crate) entry_offset: i64,
    pub(crate) type_hash: u64,
    pub(crate) nesting_level: u32,
    pub(crate) n_jobs: u32,
    pub(crate) args: Args<'a>,
}

/// Where the encoded arguments of a batch are: in the message, or in a
/// file for the worker to map.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Args<'a> {
    Inline(&'a [u8]),
    File(&'a Path),
}

/// A message read from a worker.
#[derive(Debug)]
pub(crate) enum FromWorker {
    Hello { pid: u32 },
    Refuse { message: String },
    Done { results: Vec<u8> },
    Failed(Failure),
}

/// A message read by a worker: its body, to decode with [`parse_run`].
pub(crate) struct RunFrame {
    body: Vec<u8>,
}

fn bad(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_owned())
}

fn frame(tag: u8, parts: &[&[u8]]) -> Vec<u8> {
    let len: usize = parts.iter().map(|p| p.len()).sum();
    let mut out = Vec::with_capacity(9 + len);
    out.push(tag);
    out.extend_from_slice(&(len as u64).to_le_bytes());
    for p in parts {
        out.extend_from_slice(p);
    }
    out
}

/// Reads one frame; `Ok(None)` at a clean end of stream.
fn read_frame(r: &mut impl Read) -> io::Result<Option<(u8, Vec<u8>)>> {
    let mut head = [0u8; 9];
    match r.read_exact(&mut head[..1]) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    r.read_exact(&mut head[1..])?;
    let len = u64::from_le_bytes(head[1..].try_into().unwrap_or_default());
    if len > MAX_BODY {
        return Err(bad("a message claims an impossible length"));
    }
    let len = usize::try_from(len).map_err(|_| bad("a message is too long for this machine"))?;
    let mut body = Vec::new();
    body.try_reserve_exact(len)
        .map_err(|_| io::Error::new(io::ErrorKind::OutOfMemory, "no memory for a message"))?;
    r.take(len as u64).read_to_end(&mut body)?;
    if body.len() != len {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    Ok(Some((head[0], body)))
}

/// A cursor over a body.
struct Body<'a>(&'a [u8]);

impl<'a> Body<'a> {
    fn take(&mut self, n: usize) -> io::Result<&'a [u8]> {
        if self.0.len() < n {
            return Err(bad("a message is shorter than its fields"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn u64(&mut self) -> io::Result<u64> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().unwrap_or_default(),
        ))
    }
    fn u32(&mut self) -> io::Result<u32> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().unwrap_or_default(),
        ))
    }
    fn u8(&mut self) -> io::Result<u8> {
        Ok(self.take(1)?[0])
    }
}

// ---- parent side ----

pub(crate) fn write_run(w: &mut impl Write, run: &Run<'_>) -> io::Result<()> {
    let (kind, bytes): (u8, &[u8]) = match run.args {
        Args::Inline(b) => (0, b),
        Args::File(p) => (1, p.as_os_str().as_encoded_bytes()),
    };
    let msg = frame(
        RUN,
        &[
            &run.call_id.to_le_bytes(),
            &run.entry_offset.to_le_bytes(),
            &run.type_hash.to_le_bytes(),
            &run.nesting_level.to_le_bytes(),
            &run.n_jobs.to_le_bytes(),
            &[kind],
            bytes,
        ],
    );
    w.write_all(&msg)?;
    w.flush()
}

/// Reads the worker's next message; an end of stream is an error (the
/// worker is gone).
pub(crate) fn read_from_worker(r: &mut impl Read) -> io::Result<FromWorker> {
    let Some((tag, body)) = read_frame(r)? else {
        return Err(io::ErrorKind::UnexpectedEof.into());
    };
    Ok(match tag {
        HELLO => FromWorker::Hello {
            pid: Body(&body).u32()?,
        },
        REFUSE => FromWorker::Refuse {
            message: String::from_utf8_lossy(&body).into_owned(),
        },
        DONE => FromWorker::Done { results: body },
        FAILED => {
            let mut b = Body(&body);
            let kind = match b.u8()? {
                0 => FailureKind::Task,
                1 => FailureKind::Panic,
                _ => FailureKind::Transport,
            };
            let completed = usize::try_from(b.u64()?).map_err(|_| bad("bad task count"))?;
            let msg_len = usize::try_from(b.u64()?).map_err(|_| bad("bad message length"))?;
            let message = String::from_utf8_lossy(b.take(msg_len)?).into_owned();
            FromWorker::Failed(Failure {
                completed,
                kind,
                message,
                results: b.0.to_vec(),
            })
        }
        other => return Err(bad(&format!("unknown message tag {other}"))),
    })
}

// ---- worker side ----

pub(crate) fn write_hello(w: &mut impl Write, pid: u32) -> io::Result<()> {
    w.write_all(&frame(HELLO, &[&pid.to_le_bytes()]))?;
    w.flush()
}

pub(crate) fn write_refuse(w: &mut impl Write, message: &str) -> io::Result<()> {
    w.write_all(&frame(REFUSE, &[message.as_bytes()]))?;
    w.flush()
}

pub(crate) fn write_reply(w: &mut impl Write, reply: &Result<Vec<u8>, Failure>) -> io::Result<()> {
    let msg = match reply {
        Ok(results) => frame(DONE, &[results]),
        Err(f) => {
            let kind = match f.kind {
                FailureKind::Task => 0u8,
                FailureKind::Panic => 1,
                FailureKind::Transport => 2,
            };
            frame(
                FAILED,
                &[
                    &[kind],
                    &(f.completed as u64).to_le_bytes(),
                    &(f.message.len() as u64).to_le_bytes(),
                    f.message.as_bytes(),
                    &f.results,
                ],
            )
        }
    };
    w.write_all(&msg)?;
    w.flush()
}

/// Reads the next batch for a worker; `Ok(None)` when the parent closed the
/// socket (time to exit).
pub(crate) fn read_run(r: &mut impl Read) -> io::Result<Option<RunFrame>> {
    match read_frame(r)? {
        None => Ok(None),
        Some((RUN, body)) => Ok(Some(RunFrame { body })),
        Some((tag, _)) => Err(bad(&format!("unexpected message tag {tag} for a worker"))),
    }
}

/// The fields of a run message, borrowing its body.
pub(crate) struct ParsedRun<'a> {
    pub(crate) call_id: u64,
    pub(crate) entry_offset: i64,
    pub(crate) type_hash: u64,
    pub(crate) nesting_level: u32,
    pub(crate) n_jobs: u32,
    pub(crate) args: Args<'a>,
}

pub(crate) fn parse_run(frame: &RunFrame) -> io::Result<ParsedRun<'_>> {
    let mut b = Body(&frame.body);
    let call_id = b.u64()?;
    let entry_offset = b.u64()? as i64;
    let type_hash = b.u64()?;
    let nesting_level = b.u32()?;
    let n_jobs = b.u32()?;
    let kind = b.u8()?;
    let rest = b.0;
    let args = match kind {
        0 => Args::Inline(rest),
        1 => {
            use std::os::unix::ffi::OsStrExt;
            Args::File(Path::new(std::ffi::OsStr::from_bytes(rest)))
        }
        _ => return Err(bad("unknown argument kind")),
    };
    Ok(ParsedRun {
        call_id,
        entry_offset,
        type_hash,
        nesting_level,
        n_jobs,
        args,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip() {
        let mut buf = Vec::new();
        write_run(
            &mut buf,
            &Run {
                call_id: 5,
                entry_offset: -42,
                type_hash: 7,
                nesting_level: 1,
                n_jobs: 3,
                args: Args::Inline(b"abc"),
            },
        )
        .unwrap();
        let frame = read_run(&mut &buf[..]).unwrap().unwrap();
        let run = parse_run(&frame).unwrap();
        assert_eq!((run.call_id, run.entry_offset, run.type_hash), (5, -42, 7));
        assert_eq!((run.nesting_level, run.n_jobs), (1, 3));
        assert_eq!(run.args, Args::Inline(&b"abc"[..]));

        let mut buf = Vec::new();
        let failure = Failure {
            completed: 2,
            kind: FailureKind::Panic,
            message: "boom".into(),
            results: vec![1, 2, 3],
        };
        write_reply(&mut buf, &Err(failure)).unwrap();
        write_hello(&mut buf, 99).unwrap();
        let mut r = &buf[..];
        match read_from_worker(&mut r).unwrap() {
            FromWorker::Failed(f) => {
                assert_eq!((f.completed, f.kind), (2, FailureKind::Panic));
                assert_eq!(
                    (f.message.as_str(), &f.results[..]),
                    ("boom", &[1, 2, 3][..])
                );
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            read_from_worker(&mut r).unwrap(),
            FromWorker::Hello { pid: 99 }
        ));
        // The end of the stream is an error for the parent.
        assert!(read_from_worker(&mut r).is_err());
    }

    #[test]
    fn garbled_frames_are_errors() {
        // A length far beyond the bound.
        let mut msg = vec![DONE];
        msg.extend_from_slice(&u64::MAX.to_le_bytes());
        assert!(read_from_worker(&mut &msg[..]).is_err());
        // A body shorter than its length.
        let mut msg = vec![DONE];
        msg.extend_from_slice(&10u64.to_le_bytes());
        msg.extend_from_slice(b"abc");
        assert!(read_from_worker(&mut &msg[..]).is_err());
        // A run message cut inside its fields.
        let frame = RunFrame { body: vec![1, 2] };
        assert!(parse_run(&frame).is_err());
    }
}
