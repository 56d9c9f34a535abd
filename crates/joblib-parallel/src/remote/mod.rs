//! Tasks that run in another process, and the public request/reply API
//! through which any backend sends them there.
//!
//! A task made by [`delayed_remote`] names its function by its place in the
//! binary and carries serialized arguments, so any process started from the
//! same executable can run it. A backend turns each [`Batch`](crate::Batch)
//! into a [`RemoteBatch`] ([`Batch::into_remote`](crate::Batch::into_remote)),
//! carries its [`request`](RemoteBatch::request) bytes to such a process by
//! any means (a pipe, a socket, MPI), runs them there with
//! [`serve_request`], and completes the batch from the reply bytes
//! ([`RemoteBatch::complete`]) or reports that the worker died
//! ([`RemoteBatch::worker_died`]). [`Transport`] and [`Resolver`] decide
//! how [`Shared`] values and large arguments travel.
//!
//! The format of requests and replies is specified and versioned in
//! `docs/remote.md` ([`FORMAT_VERSION`]); a request from another build of
//! the program ([`build_identity`]) or another format version is refused
//! with an error naming both, never run.

mod batch;
mod format;
mod serve;
mod shared;
mod task;
mod transport;

pub use batch::{NotRemote, RemoteBatch};
pub use format::FORMAT_VERSION;
pub use serve::{build_identity, check_executable, serve_request, serve_request_with};
pub use shared::{Shared, SharedValue, release_shared};
pub use task::{DelayedRemote, RemoteCodec, TryDelayedRemote, delayed_remote, try_delayed_remote};
pub use transport::{ArgsPlacement, Blob, InlineResolver, InlineTransport, Resolver, Transport};

pub(crate) use batch::RemoteEnd;
pub(crate) use format::Status;
pub(crate) use task::entry_offset;
