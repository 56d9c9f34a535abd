//! The framing of messages between a parent and its worker processes on
//! their socket: a tag byte, a little-endian `u64` body length, the body.
//! The body of `RUN` is the size from which the worker sends its reply
//! through shared memory (a little-endian `u64`) and joblib-parallel's
//! request bytes; that of `REPLY` the reply bytes (`docs/remote.md`), and
//! that of `REPLY_SHARED` the locator of a segment that holds them (see
//! [`Segment`](crate::calls::Segment)).

use std::io::{self, Read, Write};

/// Worker to parent, once, when it is ready: its process id.
const HELLO: u8 = b'H';
/// Worker to parent, instead of `HELLO`: it refuses to serve (another build).
const REFUSE: u8 = b'X';
/// Parent to worker: a request.
const RUN: u8 = b'R';
/// Parent to worker, a lone byte with no length or body: shared values
/// were released; drop those no longer kept. Sent without waiting, so one
/// byte, which a socket takes whole or not at all.
const RELEASE: u8 = b'F';
/// Worker to parent: the reply to the last request.
const REPLY: u8 = b'D';
/// Worker to parent: the reply to the last request is in a segment, which
/// the worker keeps open until it reads its next request.
const REPLY_SHARED: u8 = b'M';

/// Worker to parent: the reply to the last request is in the worker's
/// reply arena (see [`arena`](crate::arena)); the body is its length (a
/// little-endian `u64`) and the arena's locator.
const REPLY_ARENA: u8 = b'A';

/// Largest body accepted (a sanity bound against a garbled length).
const MAX_BODY: u64 = 1 << 40;

/// A message read from a worker.
#[derive(Debug)]
pub(crate) enum FromWorker {
    Hello {
        pid: u32,
    },
    Refuse {
        message: String,
    },
    Reply(Vec<u8>),
    /// The reply is the first `len` bytes of the worker's arena, named by
    /// `locator`.
    ReplyArena {
        len: u64,
        locator: Vec<u8>,
    },
    /// The locator of a segment holding the reply.
    ReplyShared(Vec<u8>),
}

fn bad(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_owned())
}

/// Writes one frame in one `write_all` (a single `send` for small ones).
fn write_frame(w: &mut impl Write, tag: u8, body: &[u8]) -> io::Result<()> {
    let mut msg = Vec::with_capacity(9 + body.len());
    msg.push(tag);
    msg.extend_from_slice(&(body.len() as u64).to_le_bytes());
    msg.extend_from_slice(body);
    w.write_all(&msg)?;
    w.flush()
}

/// Reads one frame; `Ok(None)` at a clean end of stream.
fn read_frame(r: &mut impl Read) -> io::Result<Option<(u8, Vec<u8>)>> {
    match read_tag(r)? {
        Some(tag) => read_frame_after(r, tag).map(Some),
        None => Ok(None),
    }
}

/// Reads a frame's tag; `Ok(None)` at a clean end of stream.
fn read_tag(r: &mut impl Read) -> io::Result<Option<u8>> {
    let mut tag = [0u8; 1];
    match r.read_exact(&mut tag) {
        Ok(()) => Ok(Some(tag[0])),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(None),
        Err(e) => Err(e),
    }
}

/// Reads the length and body of a frame whose tag was read.
fn read_frame_after(r: &mut impl Read, tag: u8) -> io::Result<(u8, Vec<u8>)> {
    let mut head = [0u8; 9];
    head[0] = tag;
    r.read_exact(&mut head[1..])?;
    let mut len = [0u8; 8];
    len.copy_from_slice(&head[1..]);
    let len = u64::from_le_bytes(len);
    if len > MAX_BODY {
        return Err(bad("a message claims an impossible length"));
    }
    let len_usize =
        usize::try_from(len).map_err(|_| bad("a message is too long for this machine"))?;
    let mut body = Vec::new();
    body.try_reserve_exact(len_usize)
        .map_err(|_| io::Error::new(io::ErrorKind::OutOfMemory, "no memory for a message"))?;
    r.take(len).read_to_end(&mut body)?;
    if body.len() != len_usize {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    Ok((head[0], body))
}

// ---- parent side ----

/// Sends a request; a reply of `shared_from` bytes or more is to come
/// back through shared memory.
pub(crate) fn write_run(w: &mut impl Write, request: &[u8], shared_from: u64) -> io::Result<()> {
    let mut body = Vec::with_capacity(8 + request.len());
    body.extend_from_slice(&shared_from.to_le_bytes());
    body.extend_from_slice(request);
    write_frame(w, RUN, &body)
}

/// Tells a worker that shared values were released, without waiting: the
/// byte is sent whole or not at all (`false` when the socket is full or
/// gone; the worker then releases them at its next call anyway).
pub(crate) fn send_release(stream: &std::os::unix::net::UnixStream) -> bool {
    use rustix::net::SendFlags;
    #[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
    let flags = SendFlags::NOSIGNAL | SendFlags::DONTWAIT;
    #[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd")))]
    let flags = SendFlags::DONTWAIT;
    matches!(rustix::net::send(stream, &[RELEASE], flags), Ok(1))
}

/// Reads the worker's next message; an end of stream is an error (the
/// worker is gone).
pub(crate) fn read_from_worker(r: &mut impl Read) -> io::Result<FromWorker> {
    let Some((tag, body)) = read_frame(r)? else {
        return Err(io::ErrorKind::UnexpectedEof.into());
    };
    Ok(match tag {
        HELLO => {
            let pid: [u8; 4] = body
                .get(..4)
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| bad("a greeting without a pid"))?;
            FromWorker::Hello {
                pid: u32::from_le_bytes(pid),
            }
        }
        REFUSE => FromWorker::Refuse {
            message: String::from_utf8_lossy(&body).into_owned(),
        },
        REPLY => FromWorker::Reply(body),
        REPLY_SHARED => FromWorker::ReplyShared(body),
        REPLY_ARENA => {
            let len: [u8; 8] = body
                .get(..8)
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| bad("an arena reply without its length"))?;
            FromWorker::ReplyArena {
                len: u64::from_le_bytes(len),
                locator: body[8..].to_vec(),
            }
        }
        other => return Err(bad(&format!("unknown message tag {other}"))),
    })
}

// ---- worker side ----

pub(crate) fn write_hello(w: &mut impl Write, pid: u32) -> io::Result<()> {
    write_frame(w, HELLO, &pid.to_le_bytes())
}

pub(crate) fn write_refuse(w: &mut impl Write, message: &str) -> io::Result<()> {
    write_frame(w, REFUSE, message.as_bytes())
}

pub(crate) fn write_reply(w: &mut impl Write, reply: &[u8]) -> io::Result<()> {
    write_frame(w, REPLY, reply)
}

pub(crate) fn write_reply_shared(w: &mut impl Write, locator: &[u8]) -> io::Result<()> {
    write_frame(w, REPLY_SHARED, locator)
}

pub(crate) fn write_reply_arena(w: &mut impl Write, len: u64, locator: &[u8]) -> io::Result<()> {
    let mut body = Vec::with_capacity(8 + locator.len());
    body.extend_from_slice(&len.to_le_bytes());
    body.extend_from_slice(locator);
    write_frame(w, REPLY_ARENA, &body)
}

/// What a worker reads from its parent.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum FromParent {
    /// A request to serve.
    Run(Run),
    /// Shared values were released: drop those no longer kept.
    Release,
}

/// A request read by a worker.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Run {
    /// Replies of this many bytes or more go through shared memory.
    pub(crate) shared_from: u64,
    pub(crate) request: Vec<u8>,
}

/// Reads the next message for a worker; `Ok(None)` when the parent closed
/// the socket (time to exit).
pub(crate) fn read_from_parent(r: &mut impl Read) -> io::Result<Option<FromParent>> {
    let Some(tag) = read_tag(r)? else {
        return Ok(None);
    };
    if tag == RELEASE {
        return Ok(Some(FromParent::Release));
    }
    match read_frame_after(r, tag)? {
        (RUN, mut body) => {
            let shared_from: [u8; 8] = body
                .get(..8)
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| bad("a request without its reply threshold"))?;
            body.drain(..8);
            Ok(Some(FromParent::Run(Run {
                shared_from: u64::from_le_bytes(shared_from),
                request: body,
            })))
        }
        (tag, _) => Err(bad(&format!("unexpected message tag {tag} for a worker"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip() {
        let mut buf = Vec::new();
        write_run(&mut buf, b"request", 1 << 20).unwrap();
        buf.push(RELEASE);
        write_run(&mut buf, b"next", 7).unwrap();
        let mut r = &buf[..];
        assert_eq!(
            read_from_parent(&mut r).unwrap().unwrap(),
            FromParent::Run(Run {
                shared_from: 1 << 20,
                request: b"request".to_vec()
            })
        );
        assert_eq!(
            read_from_parent(&mut r).unwrap().unwrap(),
            FromParent::Release
        );
        assert_eq!(
            read_from_parent(&mut r).unwrap().unwrap(),
            FromParent::Run(Run {
                shared_from: 7,
                request: b"next".to_vec()
            })
        );
        assert!(read_from_parent(&mut r).unwrap().is_none());

        let mut buf = Vec::new();
        write_reply(&mut buf, b"reply").unwrap();
        write_reply_shared(&mut buf, b"/proc/1/fd/3").unwrap();
        write_reply_arena(&mut buf, 1 << 20, b"/proc/2/fd/4").unwrap();
        write_hello(&mut buf, 99).unwrap();
        write_refuse(&mut buf, "other build").unwrap();
        let mut r = &buf[..];
        assert!(matches!(read_from_worker(&mut r).unwrap(), FromWorker::Reply(b) if b == b"reply"));
        assert!(matches!(
            read_from_worker(&mut r).unwrap(),
            FromWorker::ReplyShared(l) if l == b"/proc/1/fd/3"
        ));
        assert!(matches!(
            read_from_worker(&mut r).unwrap(),
            FromWorker::ReplyArena { len: 1_048_576, locator } if locator == b"/proc/2/fd/4"
        ));
        assert!(matches!(
            read_from_worker(&mut r).unwrap(),
            FromWorker::Hello { pid: 99 }
        ));
        assert!(matches!(
            read_from_worker(&mut r).unwrap(),
            FromWorker::Refuse { message } if message == "other build"
        ));
        // The end of the stream is an error for the parent.
        assert!(read_from_worker(&mut r).is_err());
    }

    #[test]
    fn garbled_frames_are_errors() {
        // A length far beyond the bound.
        let mut msg = vec![REPLY];
        msg.extend_from_slice(&u64::MAX.to_le_bytes());
        assert!(read_from_worker(&mut &msg[..]).is_err());
        // A body shorter than its length.
        let mut msg = vec![REPLY];
        msg.extend_from_slice(&10u64.to_le_bytes());
        msg.extend_from_slice(b"abc");
        assert!(read_from_worker(&mut &msg[..]).is_err());
        // A greeting cut inside its pid.
        let mut msg = vec![HELLO];
        msg.extend_from_slice(&2u64.to_le_bytes());
        msg.extend_from_slice(b"ab");
        assert!(read_from_worker(&mut &msg[..]).is_err());
        // An arena reply cut inside its length.
        let mut msg = vec![REPLY_ARENA];
        msg.extend_from_slice(&3u64.to_le_bytes());
        msg.extend_from_slice(b"abc");
        assert!(read_from_worker(&mut &msg[..]).is_err());
        // A worker is never sent a reply.
        let mut msg = Vec::new();
        write_reply(&mut msg, b"x").unwrap();
        assert!(read_from_parent(&mut &msg[..]).is_err());
        // A request cut inside its threshold.
        let mut msg = vec![RUN];
        msg.extend_from_slice(&3u64.to_le_bytes());
        msg.extend_from_slice(b"abc");
        assert!(read_from_parent(&mut &msg[..]).is_err());
    }
}
