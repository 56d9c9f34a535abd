//! Arbitrary structured values: hashing is deterministic, never panics, and
//! does not depend on the map type holding the entries or on their order.
#![no_main]

use std::collections::{BTreeMap, HashMap};

use arbitrary::Arbitrary;
use joblib_hash::{Algorithm, Hasher, hash, hash_with};
use libfuzzer_sys::fuzz_target;
use serde::Serialize;

#[derive(Debug, Clone, Arbitrary, Serialize)]
enum Value {
    Unit,
    Bool(bool),
    U8(u8),
    I32(i32),
    U64(u64),
    I128(i128),
    F32(f32),
    F64(f64),
    Char(char),
    Text(String),
    Bytes(#[serde(with = "serde_bytes")] Vec<u8>),
    Maybe(Option<Box<Value>>),
    List(Vec<Value>),
    Floats(Vec<f64>),
    Ints(Vec<i16>),
    Pair(Box<Value>, Box<Value>),
    Record { name: String, items: Vec<Value> },
    Map(BTreeMap<String, Value>),
    Unit2,
}

/// The same value with every map as a `HashMap`, filled in reverse order.
#[derive(Serialize)]
#[serde(rename = "Value")]
enum Hashed {
    Unit,
    Bool(bool),
    U8(u8),
    I32(i32),
    U64(u64),
    I128(i128),
    F32(f32),
    F64(f64),
    Char(char),
    Text(String),
    Bytes(#[serde(with = "serde_bytes")] Vec<u8>),
    Maybe(Option<Box<Hashed>>),
    List(Vec<Hashed>),
    Floats(Vec<f64>),
    Ints(Vec<i16>),
    Pair(Box<Hashed>, Box<Hashed>),
    Record { name: String, items: Vec<Hashed> },
    Map(HashMap<String, Hashed>),
    Unit2,
}

fn hashed(v: &Value) -> Hashed {
    match v {
        Value::Unit => Hashed::Unit,
        Value::Bool(x) => Hashed::Bool(*x),
        Value::U8(x) => Hashed::U8(*x),
        Value::I32(x) => Hashed::I32(*x),
        Value::U64(x) => Hashed::U64(*x),
        Value::I128(x) => Hashed::I128(*x),
        Value::F32(x) => Hashed::F32(*x),
        Value::F64(x) => Hashed::F64(*x),
        Value::Char(x) => Hashed::Char(*x),
        Value::Text(x) => Hashed::Text(x.clone()),
        Value::Bytes(x) => Hashed::Bytes(x.clone()),
        Value::Maybe(x) => Hashed::Maybe(x.as_ref().map(|v| Box::new(hashed(v)))),
        Value::List(x) => Hashed::List(x.iter().map(hashed).collect()),
        Value::Floats(x) => Hashed::Floats(x.clone()),
        Value::Ints(x) => Hashed::Ints(x.clone()),
        Value::Pair(a, b) => Hashed::Pair(Box::new(hashed(a)), Box::new(hashed(b))),
        Value::Record { name, items } => Hashed::Record {
            name: name.clone(),
            items: items.iter().map(hashed).collect(),
        },
        Value::Map(m) => {
            let mut out = HashMap::new();
            for (k, v) in m.iter().rev() {
                out.insert(k.clone(), hashed(v));
            }
            Hashed::Map(out)
        }
        Value::Unit2 => Hashed::Unit2,
    }
}

fuzz_target!(|value: Value| {
    let first = hash(&value).expect("plain data always serializes");
    assert_eq!(first, hash(&value.clone()).expect("serializes"));
    assert_eq!(first, hash(&hashed(&value)).expect("serializes"));
    let mut h = Hasher::new();
    h.update(&value).expect("serializes");
    assert_eq!(first, h.finish().expect("not poisoned"));
    let long = hash_with(Algorithm::Blake3, &value).expect("serializes");
    assert_eq!(
        long,
        hash_with(Algorithm::Blake3, &hashed(&value)).expect("serializes")
    );
    assert_ne!(first, long);
});
