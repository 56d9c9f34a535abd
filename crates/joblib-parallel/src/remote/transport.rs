//! The hooks through which a backend decides how the bytes of a request
//! travel: [`Transport`] on the calling side, [`Resolver`] on the worker's.

use std::borrow::Cow;
use std::path::PathBuf;

use super::shared::SharedValue;
use crate::error::BoxError;

/// How the bytes of a request travel, on the calling side: consulted by
/// [`RemoteBatch::request`](crate::RemoteBatch::request) for each [`Shared`](crate::Shared)
/// value the request names and for the encoded arguments.
///
/// Each method returns a *locator*: bytes placed in the request, which the
/// worker's [`Resolver::fetch`] turns back into the bytes themselves. The
/// defaults put everything in the request ([`InlineTransport`]); the
/// `"processes"` backend writes shared values once to a file and passes
/// the path, and an MPI backend could send each value to each rank once
/// and pass only its id afterwards.
pub trait Transport {
    /// The locator of a shared value. The default is the value's bytes
    /// ([`SharedValue::to_bytes`]), so each request carries them.
    ///
    /// # Errors
    ///
    /// The request cannot be made; the batch fails with this error.
    fn place_shared(&mut self, value: &SharedValue<'_>) -> Result<Vec<u8>, BoxError> {
        value.to_bytes()
    }

    /// A buffer to encode the next request's arguments into, handed back
    /// through [`place_args`](Transport::place_args) (it is cleared
    /// first). The default is a new vector; a transport that places large
    /// arguments elsewhere may hand out one that an earlier request of the
    /// call used, whose memory is already there: encoding 100 MB into it
    /// does not pay for 100 MB of new pages.
    fn args_buffer(&mut self) -> Vec<u8> {
        Vec::new()
    }

    /// Where the encoded arguments (joblib-persist's format) go: in the
    /// request (the default), or elsewhere with a locator in the request.
    ///
    /// # Errors
    ///
    /// The request cannot be made; the batch fails with this error.
    fn place_args(&mut self, encoded: Vec<u8>) -> Result<ArgsPlacement, BoxError> {
        Ok(ArgsPlacement::Inline(encoded))
    }
}

/// Where a request's encoded arguments are, as decided by
/// [`Transport::place_args`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArgsPlacement {
    /// In the request.
    Inline(Vec<u8>),
    /// Elsewhere: the request carries this locator, for
    /// [`Resolver::fetch`].
    External(Vec<u8>),
}

/// The transport that puts everything in the request: each request stands
/// alone, at the cost of carrying every shared value every time.
#[derive(Debug, Clone, Copy, Default)]
pub struct InlineTransport;

impl Transport for InlineTransport {}

/// Bytes a worker decodes: in memory, or in a file of joblib-persist's
/// format that it maps (fields of type `MmapArray`, joblib-persist's, are
/// then views of the file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Blob<'a> {
    /// The bytes themselves.
    Bytes(Cow<'a, [u8]>),
    /// A file to map read-only. It must not change while the worker holds
    /// values decoded from it.
    File(PathBuf),
}

impl Blob<'_> {
    /// The same blob, owning its bytes.
    pub fn into_owned(self) -> Blob<'static> {
        match self {
            Blob::Bytes(b) => Blob::Bytes(Cow::Owned(b.into_owned())),
            Blob::File(p) => Blob::File(p),
        }
    }
}

/// How the bytes of a request are found, on the worker's side: the
/// counterpart of the caller's [`Transport`], passed to
/// [`serve_request_with`](crate::serve_request_with).
pub trait Resolver {
    /// The bytes a locator stands for. The default takes the locator as the
    /// bytes themselves ([`InlineTransport`]'s way).
    ///
    /// # Errors
    ///
    /// The bytes cannot be found; the worker replies with this error and
    /// runs nothing.
    fn fetch<'a>(&mut self, locator: &'a [u8]) -> Result<Blob<'a>, BoxError> {
        Ok(Blob::Bytes(Cow::Borrowed(locator)))
    }

    /// At the first request of a new call: whether to keep the shared value
    /// `id`, loaded from `locator`, for later calls. A kept value is not
    /// fetched again when a request names it. The default keeps nothing.
    fn keep(&mut self, id: u64, locator: &[u8]) -> bool {
        let _ = (id, locator);
        false
    }
}

/// The resolver of [`InlineTransport`]: locators are the bytes.
#[derive(Debug, Clone, Copy, Default)]
pub struct InlineResolver;

impl Resolver for InlineResolver {}
