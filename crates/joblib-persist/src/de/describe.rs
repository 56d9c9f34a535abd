//! What the file holds at a place in the structure, in words, for errors
//! that say where a load went wrong and what was found there.

use super::{De, Tok};
use crate::ser::{EXT_BYTES, EXT_I128, EXT_RUN, EXT_SOME_NIL, EXT_U128};
use crate::source::Opened;

/// How many field names a description lists before "and N more".
const MAX_FIELDS: usize = 8;

/// A description of the value at `start`.
pub(super) struct Found {
    /// For example "an array of shape [40, 7] with f32 elements".
    pub(super) text: String,
    /// Whether the value is an ndarray array (a map of `v`, `dim`, `data`).
    pub(super) array: bool,
}

/// Describes the value starting at byte `start` of `input`; `None` when it
/// does not parse (the error being reported says why).
pub(super) fn describe(input: &[u8], start: usize, file: &Opened<'_>) -> Option<Found> {
    let mut de = De::new(input, file);
    de.pos = start;
    let text = match de.next().ok()? {
        Tok::Nil => "nothing (a unit or `None`)".into(),
        Tok::Bool(_) => "a bool".into(),
        Tok::U(u) => format!("the integer {u}"),
        Tok::I(i) => format!("the integer {i}"),
        Tok::F32(_) => "an f32".into(),
        Tok::F64(_) => "an f64".into(),
        Tok::Str(_) => "a string".into(),
        Tok::Bin(b) => format!("{} bytes", b.len()),
        Tok::Ext(EXT_BYTES, _) => "a byte string".into(),
        Tok::Ext(EXT_SOME_NIL, _) => "`Some(())`".into(),
        Tok::Ext(EXT_U128 | EXT_I128, _) => "a 128-bit integer".into(),
        Tok::Ext(EXT_RUN, p) => elements(&block_of(p, file)?),
        Tok::Ext(..) => return None,
        Tok::Arr(n) => sequence(&mut de, n)?,
        Tok::Map(n) => return map(&mut de, n),
    };
    Some(Found { text, array: false })
}

/// The element count and type of the run block a reference names.
fn block_of(payload: &[u8], file: &Opened<'_>) -> Option<(u64, &'static str)> {
    let id = u32::from_le_bytes(payload.try_into().ok()?);
    let block = file.blocks.get(id as usize)?;
    let width = block.dtype.width() as u64;
    Some((block.len / width.max(1), block.dtype.name()))
}

fn elements((count, dtype): &(u64, &'static str)) -> String {
    format!("{count} {dtype} elements")
}

/// "a sequence of 1000 f64 elements" or "a sequence of 3 items".
fn sequence(de: &mut De<'_, '_>, n: u32) -> Option<String> {
    let mut items = 0u64;
    let mut runs: Vec<(u64, &'static str)> = Vec::new();
    for _ in 0..n {
        let save = de.pos;
        if let Ok(Tok::Ext(EXT_RUN, p)) = de.next() {
            runs.push(block_of(p, de.file)?);
        } else {
            de.pos = save;
            de.skip().ok()?;
            items += 1;
        }
    }
    match (items, runs.as_slice()) {
        (0, [(count, dtype)]) => Some(format!("a sequence of {count} {dtype} elements")),
        (0, []) => Some("an empty sequence".into()),
        _ => {
            let total = items + runs.iter().map(|r| r.0).sum::<u64>();
            Some(format!("a sequence of {total} items"))
        }
    }
}

/// An ndarray array (`v`, `dim`, `data`) by shape and element type, or a
/// struct or map by its field names.
fn map(de: &mut De<'_, '_>, n: u32) -> Option<Found> {
    let mut keys = Vec::new();
    let mut shape = None;
    let mut dtype = None;
    for _ in 0..n {
        let key = match de.next().ok()? {
            Tok::Str(s) => String::from_utf8_lossy(s).into_owned(),
            Tok::U(u) => u.to_string(),
            Tok::I(i) => i.to_string(),
            _ => {
                // Keys that are not names: say how many entries there are.
                return Some(Found {
                    text: format!("a map of {n} entries"),
                    array: false,
                });
            }
        };
        let save = de.pos;
        match key.as_str() {
            "dim" => shape = dims(de),
            "data" => dtype = data_type(de),
            _ => {}
        }
        de.pos = save;
        de.skip().ok()?;
        keys.push(key);
    }
    let mut sorted: Vec<&str> = keys.iter().map(String::as_str).collect();
    sorted.sort_unstable();
    if sorted == ["data", "dim", "v"] {
        let shape = shape.map_or_else(|| "unknown shape".into(), |s| format!("shape {s:?}"));
        let dtype = dtype.unwrap_or("unknown");
        return Some(Found {
            text: format!("an array of {shape} with {dtype} elements"),
            array: true,
        });
    }
    let mut names: Vec<String> = keys
        .iter()
        .take(MAX_FIELDS)
        .map(|k| format!("`{k}`"))
        .collect();
    if keys.len() > MAX_FIELDS {
        names.push(format!("and {} more", keys.len() - MAX_FIELDS));
    }
    let text = if keys.is_empty() {
        "a struct or map with no fields".into()
    } else {
        format!("a struct or map with fields {}", names.join(", "))
    };
    Some(Found { text, array: false })
}

/// An array's `dim`: a sequence of lengths.
fn dims(de: &mut De<'_, '_>) -> Option<Vec<u64>> {
    let Tok::Arr(n) = de.next().ok()? else {
        return None;
    };
    (0..n)
        .map(|_| match de.next().ok()? {
            Tok::U(u) => Some(u),
            _ => None,
        })
        .collect()
}

/// The element type of an array's `data`: its run's block, or its first
/// inline element.
fn data_type(de: &mut De<'_, '_>) -> Option<&'static str> {
    let Tok::Arr(n) = de.next().ok()? else {
        return None;
    };
    if n == 0 {
        return Some("no");
    }
    Some(match de.next().ok()? {
        Tok::Ext(EXT_RUN, p) => block_of(p, de.file)?.1,
        Tok::F64(_) => "f64",
        Tok::F32(_) => "f32",
        Tok::U(_) | Tok::I(_) => "integer",
        Tok::Bool(_) => "bool",
        Tok::Str(_) => "string",
        _ => return None,
    })
}
