//! Property tests over a rich recursive type: equal values have equal
//! digests, unequal values have different ones, and a map's digest does not
//! depend on which map type holds it.

use std::collections::{BTreeMap, HashMap};

use joblib_hash::hash;
use proptest::prelude::*;
use serde::Serialize;

/// A value with every kind of serde data: primitives, strings, bytes,
/// options, sequences, tuples, maps and enum variants, nested.
#[derive(Debug, Clone, Serialize)]
enum Value {
    Unit,
    Bool(bool),
    Small(u8),
    Int(i64),
    Float(f64),
    Text(String),
    Blob(#[serde(with = "serde_bytes")] Vec<u8>),
    Maybe(Option<Box<Value>>),
    List(Vec<Value>),
    Floats(Vec<f64>),
    Pair(Box<Value>, Box<Value>),
    Record { name: String, items: Vec<Value> },
    Map(BTreeMap<String, Value>),
}

/// The same as `Value`, with `HashMap` in place of `BTreeMap`.
#[derive(Serialize)]
#[serde(rename = "Value")]
enum Mirror {
    Unit,
    Bool(bool),
    Small(u8),
    Int(i64),
    Float(f64),
    Text(String),
    Blob(#[serde(with = "serde_bytes")] Vec<u8>),
    Maybe(Option<Box<Mirror>>),
    List(Vec<Mirror>),
    Floats(Vec<f64>),
    Pair(Box<Mirror>, Box<Mirror>),
    Record { name: String, items: Vec<Mirror> },
    Map(HashMap<String, Mirror>),
}

fn mirror(v: &Value) -> Mirror {
    match v {
        Value::Unit => Mirror::Unit,
        Value::Bool(b) => Mirror::Bool(*b),
        Value::Small(x) => Mirror::Small(*x),
        Value::Int(x) => Mirror::Int(*x),
        Value::Float(x) => Mirror::Float(*x),
        Value::Text(s) => Mirror::Text(s.clone()),
        Value::Blob(b) => Mirror::Blob(b.clone()),
        Value::Maybe(o) => Mirror::Maybe(o.as_ref().map(|x| Box::new(mirror(x)))),
        Value::List(l) => Mirror::List(l.iter().map(mirror).collect()),
        Value::Floats(f) => Mirror::Floats(f.clone()),
        Value::Pair(a, b) => Mirror::Pair(Box::new(mirror(a)), Box::new(mirror(b))),
        Value::Record { name, items } => Mirror::Record {
            name: name.clone(),
            items: items.iter().map(mirror).collect(),
        },
        Value::Map(m) => Mirror::Map(m.iter().map(|(k, v)| (k.clone(), mirror(v))).collect()),
    }
}

/// Equality as the hash defines it: floats by bits, all NaNs one value.
fn same(a: &Value, b: &Value) -> bool {
    fn float(x: f64, y: f64) -> bool {
        (x.is_nan() && y.is_nan()) || x.to_bits() == y.to_bits()
    }
    match (a, b) {
        (Value::Unit, Value::Unit) => true,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::Small(x), Value::Small(y)) => x == y,
        (Value::Int(x), Value::Int(y)) => x == y,
        (Value::Float(x), Value::Float(y)) => float(*x, *y),
        (Value::Text(x), Value::Text(y)) => x == y,
        (Value::Blob(x), Value::Blob(y)) => x == y,
        (Value::Maybe(x), Value::Maybe(y)) => match (x, y) {
            (Some(x), Some(y)) => same(x, y),
            (None, None) => true,
            _ => false,
        },
        (Value::List(x), Value::List(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same(x, y))
        }
        (Value::Floats(x), Value::Floats(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| float(*x, *y))
        }
        (Value::Pair(a1, b1), Value::Pair(a2, b2)) => same(a1, a2) && same(b1, b2),
        (
            Value::Record {
                name: n1,
                items: i1,
            },
            Value::Record {
                name: n2,
                items: i2,
            },
        ) => n1 == n2 && i1.len() == i2.len() && i1.iter().zip(i2).all(|(x, y)| same(x, y)),
        (Value::Map(x), Value::Map(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y)
                    .all(|((k1, v1), (k2, v2))| k1 == k2 && same(v1, v2))
        }
        _ => false,
    }
}

fn float() -> impl Strategy<Value = f64> {
    prop_oneof![
        Just(0.0),
        Just(-0.0),
        Just(f64::NAN),
        Just(f64::INFINITY),
        (-3i8..3).prop_map(f64::from),
        any::<f64>(),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    // Small alphabets, so that unequal values often look alike.
    let text = "[ab]{0,3}";
    let leaf = prop_oneof![
        Just(Value::Unit),
        any::<bool>().prop_map(Value::Bool),
        (0u8..3).prop_map(Value::Small),
        (-2i64..3).prop_map(Value::Int),
        float().prop_map(Value::Float),
        text.prop_map(Value::Text),
        prop::collection::vec(0u8..3, 0..4).prop_map(Value::Blob),
        prop::collection::vec(float(), 0..6).prop_map(Value::Floats),
    ];
    leaf.prop_recursive(4, 48, 4, move |inner| {
        prop_oneof![
            prop::option::of(inner.clone()).prop_map(|o| Value::Maybe(o.map(Box::new))),
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::List),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| Value::Pair(Box::new(a), Box::new(b))),
            (text, prop::collection::vec(inner.clone(), 0..3))
                .prop_map(|(name, items)| Value::Record { name, items }),
            prop::collection::btree_map(text, inner, 0..4).prop_map(Value::Map),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn digests_are_equal_exactly_when_values_are(a in value(), b in value()) {
        let (da, db) = (hash(&a).unwrap(), hash(&b).unwrap());
        prop_assert_eq!(da == db, same(&a, &b), "a = {:?}, b = {:?}", a, b);
    }

    #[test]
    fn a_value_and_its_clone_agree(a in value()) {
        prop_assert_eq!(hash(&a).unwrap(), hash(&a.clone()).unwrap());
    }

    #[test]
    fn map_types_do_not_matter(a in value()) {
        prop_assert_eq!(hash(&a).unwrap(), hash(&mirror(&a)).unwrap());
    }
}
