//! A serde adapter that makes a sequence hash as a set.
//!
//! The standard set types (`HashSet`, `BTreeSet`, and `IndexSet` by name) are
//! recognised on their own. A set type of your own, which serializes its
//! elements as a sequence in an order that does not matter, can say so with
//! this adapter; its digest then ignores that order, and equals the digest of
//! a `HashSet` of the same elements.
//!
//! Other serde formats see a newtype struct around the same sequence, which
//! most of them (JSON, MessagePack, bincode) write as the sequence alone; the
//! adapter reads back what it wrote in every format.
//!
//! ```
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Serialize, Deserialize)]
//! struct Tags {
//!     #[serde(with = "joblib_hash::unordered")]
//!     names: Vec<String>,
//! }
//!
//! let a = Tags { names: vec!["x".into(), "y".into()] };
//! let b = Tags { names: vec!["y".into(), "x".into()] };
//! assert_eq!(joblib_hash::hash(&a)?, joblib_hash::hash(&b)?);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;
use std::marker::PhantomData;

use serde::de::Visitor;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::encoder::UNORDERED;

/// Serializes `value` marked as a set; for `#[serde(with = "…")]`.
///
/// # Errors
///
/// Whatever the serializer reports.
pub fn serialize<T, S>(value: &T, serializer: S) -> Result<S::Ok, S::Error>
where
    T: Serialize + ?Sized,
    S: Serializer,
{
    serializer.serialize_newtype_struct(UNORDERED, value)
}

/// Deserializes what [`serialize`] wrote; for `#[serde(with = "…")]`.
///
/// # Errors
///
/// Whatever `T`'s deserialization reports.
pub fn deserialize<'de, T, D>(deserializer: D) -> Result<T, D::Error>
where
    T: Deserialize<'de>,
    D: Deserializer<'de>,
{
    deserializer.deserialize_newtype_struct(UNORDERED, Inner(PhantomData))
}

struct Inner<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de>> Visitor<'de> for Inner<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a set serialized by joblib_hash::unordered")
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, deserializer: D) -> Result<T, D::Error> {
        T::deserialize(deserializer)
    }
}
