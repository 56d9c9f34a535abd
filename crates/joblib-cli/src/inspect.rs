//! `joblib inspect FILE.jbl [--verify]`.

use std::fmt::Write as _;
use std::process::ExitCode;

use joblib_persist::{BlockInfo, FileInfo, Node, Outline};
use serde::Serialize;

use crate::cli::InspectArgs;
use crate::failure::{DAMAGED, Failure};
use crate::output::{Table, print, print_json};
use crate::units::format_size;

/// The JSON of `joblib inspect`.
#[derive(Serialize)]
struct Report<'a> {
    file: String,
    bytes: u64,
    format_version: u16,
    compression: &'a str,
    chunk_size: u32,
    structure_bytes: u64,
    blocks: Vec<BlockJson>,
    outline: &'a Node,
    outline_complete: bool,
    /// `None` without `--verify`.
    verified: Option<bool>,
    verify_error: Option<String>,
}

#[derive(Serialize)]
struct BlockJson {
    id: u32,
    dtype: &'static str,
    shape: Vec<u64>,
    bytes: u64,
    stored_bytes: u64,
    offset: u64,
    chunks: usize,
}

impl From<&BlockInfo> for BlockJson {
    fn from(b: &BlockInfo) -> BlockJson {
        BlockJson {
            id: b.id,
            dtype: b.dtype.name(),
            shape: b.shape.clone(),
            bytes: b.bytes,
            stored_bytes: b.stored_bytes,
            offset: b.offset,
            chunks: b.chunks,
        }
    }
}

pub(crate) fn run(args: &InspectArgs, json: bool) -> Result<ExitCode, Failure> {
    let path = &args.file;
    if path.is_dir() {
        return Err(Failure::bad_input(format!(
            "{}: is a directory, not a .jbl file (for a cache use `joblib cache ls`)",
            path.display()
        )));
    }
    let info = match joblib_persist::inspect(path) {
        Err(e @ joblib_persist::Error::NotJbl { mangled: false, .. }) if !args.verify => {
            return python(path, json, e);
        }
        r => r.map_err(Failure::persist)?,
    };
    let outline = joblib_persist::outline(path).map_err(Failure::persist)?;
    let verify_error = if args.verify {
        joblib_persist::verify(path).err().map(Failure::persist)
    } else {
        None
    };
    let code = if verify_error.is_some() {
        ExitCode::from(DAMAGED)
    } else {
        ExitCode::SUCCESS
    };
    if let Some(f) = &verify_error {
        eprintln!("joblib: error: {}", f.message);
    }
    if json {
        let report = Report {
            file: path.display().to_string(),
            bytes: info.file_len,
            format_version: info.format_version,
            compression: info.compression.name(),
            chunk_size: info.chunk_size,
            structure_bytes: info.structure_bytes,
            blocks: info.blocks.iter().map(BlockJson::from).collect(),
            outline: &outline.root,
            outline_complete: outline.complete,
            verified: args.verify.then_some(verify_error.is_none()),
            verify_error: verify_error.map(|f| f.message),
        };
        return print_json(&report, code);
    }
    let mut out = String::new();
    header(&mut out, &args.file.display().to_string(), &info);
    if args.verify {
        let verdict = match &verify_error {
            None => "every checksum matches".to_string(),
            Some(_) => "FAILED (see the error below)".to_string(),
        };
        let _ = writeln!(out, "verified     {verdict}");
    }
    if !info.blocks.is_empty() {
        out.push_str("\nblocks\n");
        let mut table = Table::new(&[
            ">id", "dtype", "shape", ">bytes", ">stored", ">offset", ">chunks",
        ]);
        for b in &info.blocks {
            table.row(vec![
                b.id.to_string(),
                b.dtype.name().to_string(),
                shape(&b.shape),
                b.bytes.to_string(),
                b.stored_bytes.to_string(),
                b.offset.to_string(),
                b.chunks.to_string(),
            ]);
        }
        table.render(&mut out);
    }
    out.push_str("\nvalue\n");
    render_outline(&mut out, &outline);
    print(&out)?;
    Ok(code)
}

fn header(out: &mut String, file: &str, info: &FileInfo) {
    let _ = writeln!(out, "file         {file} ({} bytes)", info.file_len);
    let _ = writeln!(out, "format       .jbl version {}", info.format_version);
    let _ = writeln!(
        out,
        "compression  {} (chunks of {})",
        info.compression.name(),
        format_size(u64::from(info.chunk_size))
    );
    let _ = writeln!(out, "structure    {} bytes", info.structure_bytes);
    let _ = writeln!(
        out,
        "blocks       {} ({} of data, {} stored)",
        info.blocks.len(),
        format_size(info.blocks.iter().map(|b| b.bytes).sum()),
        format_size(info.blocks.iter().map(|b| b.stored_bytes).sum()),
    );
}

/// `(300, 20)`, numpy's way.
fn shape(dims: &[u64]) -> String {
    let inner: Vec<String> = dims.iter().map(u64::to_string).collect();
    if dims.len() == 1 {
        format!("({},)", inner[0])
    } else {
        format!("({})", inner.join(", "))
    }
}

fn render_outline(out: &mut String, outline: &Outline) {
    line(out, 1, "", &outline.root);
    if !outline.complete {
        out.push_str("  (long sequences and maps are cut; counts are exact)\n");
    }
}

/// A string key's text, when `key` is a complete string.
fn key_text(key: &Node) -> Option<&str> {
    match key {
        Node::Str {
            preview,
            complete: true,
            ..
        } => Some(preview),
        _ => None,
    }
}

/// An ndarray array as serde writes it, `{v: 1, dim: [..], data: [run]}`,
/// with its data in one block: `(element type, shape, block)`.
fn as_ndarray(entries: &[(Node, Node)]) -> Option<(&'static str, &[u64], u32)> {
    let keys: Vec<&str> = entries
        .iter()
        .map(|(k, _)| key_text(k))
        .collect::<Option<_>>()?;
    if keys != ["v", "dim", "data"] {
        return None;
    }
    match &entries[2].1 {
        Node::Seq { items, .. } => match &items[..] {
            [
                Node::Run {
                    dtype,
                    shape,
                    block,
                    ..
                },
            ] => Some((dtype.name(), shape, *block)),
            _ => None,
        },
        _ => None,
    }
}

/// One line for `node` (prefixed by `label`), then its children indented.
fn line(out: &mut String, depth: usize, label: &str, node: &Node) {
    let indent = "  ".repeat(depth);
    let (summary, children) = describe(node);
    let _ = writeln!(out, "{indent}{label}{summary}");
    if children.is_empty() {
        return;
    }
    for (child_label, child) in children {
        line(out, depth + 1, &child_label, child);
    }
    match node {
        Node::Seq {
            len,
            items,
            complete: false,
        } => {
            let shown: u64 = items.iter().map(elements).sum();
            let _ = writeln!(out, "{indent}  ... {} more", len.saturating_sub(shown));
        }
        Node::Map {
            len,
            entries,
            complete: false,
        } => {
            let _ = writeln!(
                out,
                "{indent}  ... {} more entries",
                len.saturating_sub(entries.len() as u64)
            );
        }
        _ => {}
    }
}

/// How many items of a sequence a node stands for.
fn elements(node: &Node) -> u64 {
    match node {
        Node::Run { elements, .. } => *elements,
        _ => 1,
    }
}

/// When every item is a number or boolean of one kind: that kind and the
/// values, for a one-line `seq of 20 f32 [0.25, 0.25, ...]`.
fn scalars(items: &[Node]) -> Option<(&'static str, Vec<String>)> {
    let one = |node: &Node| -> Option<(&'static str, String)> {
        Some(match node {
            Node::Bool { value } => ("bool", value.to_string()),
            Node::Int { value } => ("int", value.to_string()),
            Node::Uint { value } => ("uint", value.to_string()),
            Node::F32 { value } => ("f32", value.to_string()),
            Node::F64 { value } => ("f64", value.to_string()),
            _ => return None,
        })
    };
    let all: Vec<(&'static str, String)> = items.iter().map(one).collect::<Option<_>>()?;
    let kind = all.first()?.0;
    // Integers of both signs are one kind to a reader.
    let same =
        |k: &str| k == kind || (matches!(k, "int" | "uint") && matches!(kind, "int" | "uint"));
    if !all.iter().all(|(k, _)| same(k)) {
        return None;
    }
    Some((kind, all.into_iter().map(|(_, v)| v).collect()))
}

/// A node's one-line summary and the children to print below it.
fn describe(node: &Node) -> (String, Vec<(String, &Node)>) {
    let leaf = |s: String| (s, Vec::new());
    match node {
        Node::Nil => leaf("nil".into()),
        Node::SomeNil => leaf("Some(nil)".into()),
        Node::Bool { value } => leaf(format!("bool {value}")),
        Node::Int { value } => leaf(format!("int {value}")),
        Node::Uint { value } => leaf(format!("uint {value}")),
        Node::Int128 { signed } => leaf(if *signed { "i128" } else { "u128" }.into()),
        Node::F32 { value } => leaf(format!("f32 {value}")),
        Node::F64 { value } => leaf(format!("f64 {value}")),
        Node::Str {
            len,
            preview,
            complete,
        } => leaf(if *complete {
            format!("str {preview:?}")
        } else {
            format!("str {preview:?}... ({len} bytes)")
        }),
        Node::Bytes { len } => leaf(format!("bytes ({len})")),
        Node::BytesBlock { block, len } => leaf(format!("bytes ({len}), block {block}")),
        Node::Run {
            block,
            dtype,
            shape: dims,
            elements,
        } => leaf(format!(
            "{elements} x {} {}, block {block}",
            dtype.name(),
            shape(dims)
        )),
        Node::Seq { len, items, .. } => match &items[..] {
            [
                Node::Run {
                    block,
                    dtype,
                    elements,
                    ..
                },
            ] if elements == len => leaf(format!("seq of {len} {}, block {block}", dtype.name())),
            _ if *len == 0 => leaf("seq (empty)".into()),
            _ if let Some((kind, values)) = scalars(items) => {
                let more = if (items.len() as u64) < *len {
                    ", ..."
                } else {
                    ""
                };
                leaf(format!("seq of {len} {kind} [{}{more}]", values.join(", ")))
            }
            _ => {
                let mut at = 0u64;
                let children = items
                    .iter()
                    .map(|item| {
                        let label = format!("[{at}] ");
                        at += elements(item);
                        (label, item)
                    })
                    .collect();
                (format!("seq of {len}"), children)
            }
        },
        Node::Map { len, entries, .. } => {
            if let Some((dtype, dims, block)) = as_ndarray(entries) {
                return leaf(format!("ndarray {dtype} {}, block {block}", shape(dims)));
            }
            let all_str = entries.iter().all(|(k, _)| key_text(k).is_some());
            let what = if all_str && *len == 1 {
                "struct or variant, 1 field".to_string()
            } else if all_str {
                format!("struct or map, {len} fields")
            } else {
                format!("map, {len} entries")
            };
            let children = entries
                .iter()
                .map(|(k, v)| {
                    let label = match key_text(k) {
                        Some(name) => format!("{name}: "),
                        None => format!("[{}] ", describe(k).0),
                    };
                    (label, v)
                })
                .collect();
            (what, children)
        }
        _ => leaf("(unknown)".into()),
    }
}

/// The JSON of `joblib inspect` for a file written by Python's joblib.
#[derive(Serialize)]
struct PythonReport {
    file: String,
    format: &'static str,
    compression: String,
    pickle_bytes: u64,
    outline: String,
}

/// `joblib inspect` of a file that is not a `.jbl`: read it as a Python
/// joblib pickle (whitelisted, nothing called) and show its outline; if it
/// is not one either, fail with `not_jbl` and why it is not a pickle.
fn python(
    path: &std::path::Path,
    json: bool,
    not_jbl: joblib_persist::Error,
) -> Result<ExitCode, Failure> {
    let info = joblib_persist::inspect_python(path).map_err(|e| {
        let mut f = Failure::persist(not_jbl);
        let why = match e {
            joblib_persist::Error::Pickle { what, offset, .. } => {
                format!("{what} at byte {offset}")
            }
            e => e.to_string(),
        };
        f.message = format!("{}, nor a Python joblib file ({why})", f.message);
        f
    })?;
    if json {
        let report = PythonReport {
            file: path.display().to_string(),
            format: "python-joblib",
            compression: info.compression.name().to_string(),
            pickle_bytes: info.pickle_bytes,
            outline: info.value.outline(),
        };
        return print_json(&report, ExitCode::SUCCESS);
    }
    let mut out = String::new();
    let _ = writeln!(out, "file         {}", path.display());
    let _ = writeln!(
        out,
        "format       Python joblib pickle (read without running it)"
    );
    let _ = writeln!(out, "compression  {}", info.compression.name());
    let _ = writeln!(out, "pickle       {}", format_size(info.pickle_bytes));
    out.push_str("\nvalue\n");
    for line in info.value.outline().lines() {
        let _ = writeln!(out, "  {line}");
    }
    print(&out)?;
    Ok(ExitCode::SUCCESS)
}
