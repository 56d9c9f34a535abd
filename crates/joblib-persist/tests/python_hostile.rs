//! Hostile and damaged Python pickles: every cap of the reader is an error,
//! never a panic, an abort, a hang or an unbounded allocation.
#![cfg(feature = "python")]

mod python_common;

use joblib_persist::{Error, PyLoadOptions, PyValue};

use python_common::fixture;

fn load(bytes: &[u8]) -> Result<PyValue, Error> {
    PyLoadOptions::new().load_value_from_reader(bytes)
}

/// The message of a `Pickle` error (panics on any other result).
fn pickle_err(r: Result<PyValue, Error>) -> String {
    match r {
        Err(Error::Pickle { what, .. }) => what,
        other => panic!("expected a pickle error, got {other:?}"),
    }
}

#[test]
fn empty_and_legacy_files_are_refused() {
    assert!(pickle_err(load(b"")).contains("empty"));
    assert!(pickle_err(load(b"ZF\x00\x00\x00")).contains("0.9.3"));
}

#[cfg(not(feature = "bz2"))]
#[test]
fn a_compressor_without_its_feature_is_named() {
    let err = PyLoadOptions::new()
        .load_value(fixture("v16_mixed_bz2.pkl"))
        .unwrap_err();
    assert!(err.to_string().contains("feature `bz2`"), "{err}");
}

#[test]
fn every_truncation_and_byte_flip_is_an_error_or_a_value() {
    let whole = std::fs::read(fixture("v16_mixed_p4.pkl")).unwrap();
    for cut in 0..whole.len() {
        assert!(load(&whole[..cut]).is_err(), "a file cut at {cut} loaded");
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cut.pkl");
    std::fs::write(&path, &whole[..whole.len() - 40]).unwrap();
    assert!(PyLoadOptions::new().load_value(&path).is_err());
    for i in 0..whole.len() {
        let mut b = whole.clone();
        b[i] ^= 0xa5;
        let _ = load(&b);
    }
}

#[test]
fn unknown_globals_are_named_and_never_called() {
    let err = load(b"cos\nsystem\n(S'echo hi'\ntR.").unwrap_err();
    assert!(
        matches!(&err, Error::PythonGlobal { global, .. } if global == "os.system"),
        "{err}"
    );
    // Opaque mode records the call without making it.
    let v = PyLoadOptions::new()
        .opaque_objects(true)
        .load_value_from_reader(&b"cos\nsystem\n(S'echo hi'\ntR."[..])
        .unwrap();
    let PyValue::Object {
        module, name, args, ..
    } = v
    else {
        panic!("{v:?}")
    };
    assert_eq!((module.as_str(), name.as_str()), ("os", "system"));
    assert_eq!(*args, PyValue::Tuple(vec![PyValue::Str("echo hi".into())]));
}

#[test]
fn refused_opcodes() {
    assert!(pickle_err(load(b"\x80\x02P1\n.")).contains("PERSID"));
    assert!(pickle_err(load(b"\x80\x02\x82\x01.")).contains("EXT"));
    assert!(pickle_err(load(b"\x80\x05\x97.")).contains("out-of-band"));
    assert!(pickle_err(load(b"\x80\x06N.")).contains("protocol 6"));
    assert!(pickle_err(load(b"\x80\x02\xff.")).contains("0xff"));
}

#[test]
fn a_huge_memo_index_allocates_nothing() {
    // LONG_BINPUT 0x7fffffff: one entry, not a 2^31-slot table.
    assert_eq!(
        load(b"\x80\x02Nr\xff\xff\xff\x7fj\xff\xff\xff\x7f0.").unwrap(),
        PyValue::None
    );
    assert!(pickle_err(load(b"\x80\x02j\x05\x00\x00\x00.")).contains("never stored"));
}

#[test]
fn memo_entries_are_capped() {
    let mut p = b"\x80\x04(".to_vec();
    for _ in 0..11 {
        p.extend_from_slice(b"N\x94");
    }
    p.extend_from_slice(b"l.");
    let opts = PyLoadOptions::new().max_memo_entries(10);
    let err = opts.load_value_from_reader(&p[..]).unwrap_err();
    assert!(err.to_string().contains("max_memo_entries"), "{err}");
    assert!(PyLoadOptions::new().load_value_from_reader(&p[..]).is_ok());
}

#[test]
fn objects_are_capped() {
    let mut p = b"\x80\x04(".to_vec();
    p.extend(std::iter::repeat_n(b'N', 1000));
    p.extend_from_slice(b"l.");
    let err = PyLoadOptions::new()
        .max_objects(100)
        .load_value_from_reader(&p[..])
        .unwrap_err();
    assert!(err.to_string().contains("max_objects"), "{err}");
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    let n = 1_000_000;
    let mut p = b"\x80\x02".to_vec();
    p.extend(std::iter::repeat_n(b']', n));
    p.extend(std::iter::repeat_n(b'a', n - 1));
    p.push(b'.');
    assert!(pickle_err(load(&p)).contains("nest more than 256"));
    // 256 levels are fine.
    let mut p = b"\x80\x02".to_vec();
    p.extend(std::iter::repeat_n(b']', 256));
    p.extend(std::iter::repeat_n(b'a', 255));
    p.push(b'.');
    assert!(load(&p).is_ok());
}

#[test]
fn a_billion_laughs_is_stopped_by_the_expansion_budget() {
    // L0 = []; L(i) = [L(i-1), L(i-1)]: 2^40 leaves from a few hundred bytes.
    let mut p = b"\x80\x02]q\x000".to_vec();
    for i in 1u8..=40 {
        p.extend_from_slice(&[b'(', b'h', i - 1, b'h', i - 1, b'l', b'q', i, b'0']);
    }
    p.extend_from_slice(b"h\x28.");
    assert!(p.len() < 400);
    let msg = pickle_err(load(&p));
    assert!(msg.contains("max_expanded_values"), "{msg}");
    // Shared strings are copied under the byte budget too.
    let mut p = b"\x80\x02X\x00\x00\x10\x00".to_vec();
    p.extend(std::iter::repeat_n(b'a', 1 << 20));
    p.extend_from_slice(b"q\x000(");
    for _ in 0..64 {
        p.extend_from_slice(b"h\x00");
    }
    p.extend_from_slice(b"l.");
    let opts = PyLoadOptions::new().max_decompressed_bytes(32 << 20);
    let err = opts.load_value_from_reader(&p[..]).unwrap_err();
    assert!(err.to_string().contains("copies of shared data"), "{err}");
}

#[test]
fn cycles_are_an_error() {
    assert!(pickle_err(load(b"\x80\x02]q\x00h\x00a.")).contains("cycle"));
}

#[test]
fn length_prefixes_are_read_in_steps() {
    // BINBYTES8 claiming 2^60 bytes: refused by the budget, nothing allocated.
    let mut p = b"\x80\x04\x8e".to_vec();
    p.extend_from_slice(&(1u64 << 60).to_le_bytes());
    assert!(pickle_err(load(&p)).contains("max_decompressed_bytes"));
    // 4 GiB claimed by a stream of a few bytes: fails at the end of the data.
    let mut p = b"\x80\x04X\xff\xff\xff\xff".to_vec();
    p.extend_from_slice(b"abc");
    assert!(pickle_err(load(&p)).contains("truncated"));
    // The same in a file: the claim is checked against the file's size.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("claim.pkl");
    std::fs::write(&path, &p).unwrap();
    let err = PyLoadOptions::new().load_value(&path).unwrap_err();
    assert!(err.to_string().contains("ends early"), "{err}");
}

#[test]
fn integer_sizes_are_capped() {
    let mut p = b"I".to_vec();
    p.extend(std::iter::repeat_n(b'7', 4301));
    p.extend_from_slice(b"\n.");
    assert!(pickle_err(load(&p)).contains("4301 digits"));
    let mut p = b"L".to_vec();
    p.extend(std::iter::repeat_n(b'7', 4300));
    p.extend_from_slice(b"L\n.");
    assert!(matches!(load(&p).unwrap(), PyValue::BigInt(_)));
    assert!(pickle_err(load(b"\x80\x02\x8b\x00\x00\x10\x00.")).contains("LONG4"));
    assert_eq!(
        load(b"I-12345678901234567890\n.").unwrap().as_i128(),
        Some(-12345678901234567890)
    );
    assert_eq!(
        load(b"\x80\x02\x8a\x02\x00\x80.").unwrap(),
        PyValue::Int(-32768)
    );
}

/// Found by the fuzz target: a bad text int with a multi-byte character
/// around its 40th byte, quoted in the message.
#[test]
fn bad_text_ints_with_any_characters_are_errors() {
    let mut p = b"I".to_vec();
    p.extend(std::iter::repeat_n(b'1', 39));
    p.extend_from_slice("ϰϰ\n.".as_bytes());
    assert!(pickle_err(load(&p)).contains("bad int"));
    // The fuzzer's input itself.
    let found = b"\x4c\x2d\x38\x34\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x34\x36\x39\xcf\xb0\x27\x46\x5c\x27\x0a\x2d\x36\x36\x36\x36\x36\xaf\xff\xff\xff\x0a";
    assert!(pickle_err(load(found)).contains("bad int"));
}

#[test]
fn text_lines_are_capped() {
    let mut p = b"F".to_vec();
    p.extend(std::iter::repeat_n(b'1', 70_000));
    p.extend_from_slice(b"\n.");
    assert!(pickle_err(load(&p)).contains("longer than"));
}

#[test]
fn frames_cannot_nest_or_hold_a_payload() {
    let mut p = b"\x80\x04\x95\x0a\x00\x00\x00\x00\x00\x00\x00".to_vec();
    p.extend_from_slice(b"\x95\x01\x00\x00\x00\x00\x00\x00\x00N.");
    assert!(pickle_err(load(&p)).contains("FRAME"));
}

#[test]
fn array_shapes_and_padding_are_checked() {
    let opts = PyLoadOptions::new();
    let err = opts
        .load_value(fixture("hostile_shape_overflow.pkl"))
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("more elements than can be addressed"),
        "{err}"
    );
    // 8 GB claimed by a file of a few hundred bytes: refused before allocating.
    let err = opts
        .load_value(fixture("hostile_shape_huge.pkl"))
        .unwrap_err();
    assert!(err.to_string().contains("ends early"), "{err}");
    // The same through a stream, where the size is unknown: read in steps.
    let bytes = std::fs::read(fixture("hostile_shape_huge.pkl")).unwrap();
    assert!(pickle_err(opts.load_value_from_reader(&bytes[..])).contains("truncated"));
    let err = opts
        .load_value(fixture("hostile_padding_zero.pkl"))
        .unwrap_err();
    assert!(err.to_string().contains("padding of 0 bytes"), "{err}");
    let err = opts
        .load_value(fixture("hostile_padding_17.pkl"))
        .unwrap_err();
    assert!(err.to_string().contains("padding of 17 bytes"), "{err}");
}

#[cfg(feature = "zlib")]
#[test]
fn decompression_is_budgeted() {
    let opts = PyLoadOptions::new().max_decompressed_bytes(200);
    let err = opts.load_value(fixture("v16_mixed_zlib.pkl")).unwrap_err();
    assert!(err.to_string().contains("max_decompressed_bytes"), "{err}");
}
