//! The bytes of requests and replies (specified in `docs/remote.md`).
//!
//! Every integer is little-endian. Lengths are checked against the bytes
//! that remain before anything is read, so a garbled or hostile message is
//! an error, never a panic or a large allocation.

use std::fmt;

/// The version of the request and reply format. A worker refuses a
/// request of another version, naming both.
pub const FORMAT_VERSION: u32 = 2;

/// The first bytes of a request.
const REQUEST_MAGIC: [u8; 4] = *b"JLRQ";
/// The first bytes of a reply.
const REPLY_MAGIC: [u8; 4] = *b"JLRP";
/// At most this many shared values in one request.
const MAX_SHARED: u64 = 1 << 20;

/// The fixed fields of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Header<'a> {
    pub(crate) build: &'a str,
    pub(crate) call_id: u64,
    pub(crate) first_index: u64,
    pub(crate) entry_offset: i64,
    pub(crate) type_hash: u64,
    pub(crate) nesting_level: u32,
    pub(crate) n_jobs: u32,
}

/// Where a request's arguments are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ArgsRef<'a> {
    Inline(&'a [u8]),
    External(&'a [u8]),
}

/// A request, borrowing its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Request<'a> {
    pub(crate) header: Header<'a>,
    /// (id, locator) of each shared value named.
    pub(crate) shared: Vec<(u64, &'a [u8])>,
    pub(crate) args: ArgsRef<'a>,
}

/// How a batch ended in the worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
    /// Every task ran.
    Done = 0,
    /// A task returned `Err`.
    TaskError = 1,
    /// A task panicked.
    Panic = 2,
    /// The worker refused the request (another build or format version)
    /// and ran nothing.
    Refused = 3,
    /// The arguments or results could not be decoded or encoded.
    Transport = 4,
}

/// A reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Reply {
    pub(crate) status: Status,
    /// Tasks that completed.
    pub(crate) completed: u64,
    pub(crate) message: String,
    /// The results of the completed tasks, in joblib-persist's format.
    pub(crate) results: Vec<u8>,
}

/// A reply, borrowing its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ReplyRef<'a> {
    pub(crate) status: Status,
    pub(crate) completed: u64,
    pub(crate) message: &'a str,
    pub(crate) results: &'a [u8],
}

/// Why request bytes could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ReadError {
    /// Not a request or reply at all.
    NotOurs,
    /// Another version of the format.
    Version(u32),
    /// Cut short or inconsistent.
    Garbled(&'static str),
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadError::NotOurs => f.write_str("the bytes are not a joblib remote message"),
            ReadError::Version(v) => write!(
                f,
                "the message is in remote format version {v}, and this build of \
                 joblib-parallel reads version {FORMAT_VERSION}"
            ),
            ReadError::Garbled(what) => write!(f, "the message is garbled: {what}"),
        }
    }
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
    out.extend_from_slice(bytes);
}

/// Writes a request.
pub(crate) fn write_request(out: &mut Vec<u8>, request: &Request<'_>) {
    let h = &request.header;
    out.extend_from_slice(&REQUEST_MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    put_bytes(out, h.build.as_bytes());
    out.extend_from_slice(&h.call_id.to_le_bytes());
    out.extend_from_slice(&h.first_index.to_le_bytes());
    out.extend_from_slice(&h.entry_offset.to_le_bytes());
    out.extend_from_slice(&h.type_hash.to_le_bytes());
    out.extend_from_slice(&h.nesting_level.to_le_bytes());
    out.extend_from_slice(&h.n_jobs.to_le_bytes());
    out.extend_from_slice(&(request.shared.len() as u64).to_le_bytes());
    for (id, locator) in &request.shared {
        out.extend_from_slice(&id.to_le_bytes());
        put_bytes(out, locator);
    }
    let (kind, bytes) = match request.args {
        ArgsRef::Inline(b) => (0u8, b),
        ArgsRef::External(b) => (1, b),
    };
    out.push(kind);
    put_bytes(out, bytes);
}

/// Writes a reply.
pub(crate) fn write_reply(reply: &Reply) -> Vec<u8> {
    let mut out = Vec::with_capacity(29 + reply.message.len() + reply.results.len());
    out.extend_from_slice(&REPLY_MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.push(reply.status as u8);
    out.extend_from_slice(&reply.completed.to_le_bytes());
    put_bytes(&mut out, reply.message.as_bytes());
    out.extend_from_slice(&reply.results);
    out
}

/// A cursor over a message.
struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], ReadError> {
        if self.0.len() < n {
            return Err(ReadError::Garbled("shorter than its fields"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], ReadError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }
    fn u64(&mut self) -> Result<u64, ReadError> {
        self.array().map(u64::from_le_bytes)
    }
    fn u32(&mut self) -> Result<u32, ReadError> {
        self.array().map(u32::from_le_bytes)
    }
    fn u8(&mut self) -> Result<u8, ReadError> {
        self.array::<1>().map(|[b]| b)
    }
    fn bytes(&mut self) -> Result<&'a [u8], ReadError> {
        let len = usize::try_from(self.u64()?).map_err(|_| ReadError::Garbled("a length"))?;
        self.take(len)
    }
    /// The magic and version every message starts with.
    fn start(&mut self, magic: [u8; 4]) -> Result<(), ReadError> {
        if self.0.get(..4) != Some(&magic[..]) {
            return Err(ReadError::NotOurs);
        }
        self.take(4)?;
        match self.u32()? {
            FORMAT_VERSION => Ok(()),
            other => Err(ReadError::Version(other)),
        }
    }
}

/// Reads a request.
pub(crate) fn read_request(bytes: &[u8]) -> Result<Request<'_>, ReadError> {
    let mut c = Cursor(bytes);
    c.start(REQUEST_MAGIC)?;
    let build = std::str::from_utf8(c.bytes()?)
        .map_err(|_| ReadError::Garbled("the build identity is not UTF-8"))?;
    let header = Header {
        build,
        call_id: c.u64()?,
        first_index: c.u64()?,
        entry_offset: i64::from_le_bytes(c.array()?),
        type_hash: c.u64()?,
        nesting_level: c.u32()?,
        n_jobs: c.u32()?,
    };
    let count = c.u64()?;
    if count > MAX_SHARED {
        return Err(ReadError::Garbled("too many shared values"));
    }
    let mut shared = Vec::new();
    for _ in 0..count {
        let id = c.u64()?;
        shared.push((id, c.bytes()?));
    }
    let args = match c.u8()? {
        0 => ArgsRef::Inline(c.bytes()?),
        1 => ArgsRef::External(c.bytes()?),
        _ => return Err(ReadError::Garbled("an unknown kind of arguments")),
    };
    if !c.0.is_empty() {
        return Err(ReadError::Garbled("bytes after the arguments"));
    }
    Ok(Request {
        header,
        shared,
        args,
    })
}

/// Reads a reply.
pub(crate) fn read_reply(bytes: &[u8]) -> Result<ReplyRef<'_>, ReadError> {
    let mut c = Cursor(bytes);
    c.start(REPLY_MAGIC)?;
    let status = match c.u8()? {
        0 => Status::Done,
        1 => Status::TaskError,
        2 => Status::Panic,
        3 => Status::Refused,
        4 => Status::Transport,
        _ => return Err(ReadError::Garbled("an unknown status")),
    };
    let completed = c.u64()?;
    let message = std::str::from_utf8(c.bytes()?)
        .map_err(|_| ReadError::Garbled("the message is not UTF-8"))?;
    Ok(ReplyRef {
        status,
        completed,
        message,
        results: c.0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Request<'static> {
        Request {
            header: Header {
                build: "abc-1",
                call_id: 5,
                first_index: 9,
                entry_offset: -42,
                type_hash: 7,
                nesting_level: 1,
                n_jobs: 3,
            },
            shared: vec![(11, b"/dev/shm/x"), (12, b"")],
            args: ArgsRef::Inline(b"args"),
        }
    }

    #[test]
    fn requests_and_replies_round_trip() {
        let mut out = Vec::new();
        write_request(&mut out, &sample());
        assert_eq!(read_request(&out).unwrap(), sample());
        let reply = Reply {
            status: Status::Panic,
            completed: 2,
            message: "boom".into(),
            results: vec![1, 2, 3],
        };
        let bytes = write_reply(&reply);
        let read = read_reply(&bytes).unwrap();
        assert_eq!(
            (read.status, read.completed, read.message, read.results),
            (Status::Panic, 2, "boom", &[1u8, 2, 3][..])
        );
    }

    #[test]
    fn every_cut_of_a_request_is_an_error() {
        let mut out = Vec::new();
        write_request(&mut out, &sample());
        for n in 0..out.len() {
            assert!(read_request(&out[..n]).is_err(), "cut at {n}");
        }
        out.push(0);
        assert!(read_request(&out).is_err(), "trailing bytes");
    }

    #[test]
    fn other_versions_and_garbage_are_named() {
        let mut out = Vec::new();
        write_request(&mut out, &sample());
        out[4..8].copy_from_slice(&7u32.to_le_bytes());
        let err = read_request(&out).unwrap_err();
        assert_eq!(err, ReadError::Version(7));
        assert!(err.to_string().contains("version 7"), "{err}");
        assert!(
            err.to_string()
                .contains(&format!("version {FORMAT_VERSION}"))
        );
        assert_eq!(read_request(b"GET / HTTP/1.1"), Err(ReadError::NotOurs));
        // A length far beyond the bytes that follow.
        let mut bad = REQUEST_MAGIC.to_vec();
        bad.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        bad.extend_from_slice(&u64::MAX.to_le_bytes());
        assert!(matches!(read_request(&bad), Err(ReadError::Garbled(_))));
    }
}
