//! From the interpreter's arena (objects shared through the memo) to a
//! [`PyValue`] tree, with caps on depth and on how much shared data may
//! expand, and cycles refused.

use super::value::{ArrayData, PyArray, PyDtype, PyValue};
use super::vm::{Id, Node};
use super::{PErr, PY_MAX_DEPTH, PyLoadOptions};

struct Tree {
    nodes: Vec<Node>,
    /// References to each object. An object referenced once, under
    /// ancestors each referenced once, becomes a value exactly once: its
    /// value is moved out instead of copied.
    refs: Vec<u32>,
    busy: Vec<bool>,
    values: u64,
    max_values: u64,
    copied: u64,
    max_copied: u64,
    at: u64,
}

/// Turns the objects reachable from `root` into a tree.
pub(crate) fn build(
    nodes: Vec<Node>,
    root: Id,
    opts: &PyLoadOptions,
    at: u64,
) -> Result<PyValue, PErr> {
    let mut refs = vec![0u32; nodes.len()];
    let mut bump = |id: Id| {
        let r = &mut refs[id as usize];
        *r = r.saturating_add(1);
    };
    bump(root);
    for n in &nodes {
        match n {
            Node::List(v) | Node::Tuple(v) | Node::Set(v) | Node::FrozenSet(v) => {
                v.iter().copied().for_each(&mut bump)
            }
            Node::ObjArray { items, .. } => items.iter().copied().for_each(&mut bump),
            Node::Dict(p) => p.iter().for_each(|&(k, v)| {
                bump(k);
                bump(v);
            }),
            Node::Object { args, state, .. } => {
                bump(*args);
                state.iter().copied().for_each(&mut bump);
            }
            _ => {}
        }
    }
    let max_values = opts.max_values.max((nodes.len() as u64).saturating_mul(4));
    let mut t = Tree {
        busy: vec![false; nodes.len()],
        nodes,
        refs,
        values: 0,
        max_values,
        copied: 0,
        max_copied: opts.max_decompressed,
        at,
    };
    t.run(root)
}

/// What a container in progress becomes once its children are values.
enum Kind {
    List,
    Tuple,
    Set,
    FrozenSet,
    /// Children are key, value, key, value, ...
    Dict,
    ObjArray(PyDtype, Vec<usize>),
    /// Children are the arguments, then the state if any.
    Object(String, String),
}

/// A container whose children are being turned into values. The walk
/// keeps these on a heap stack, not the call stack, so the depth cap (not
/// the thread's stack size) bounds nesting.
struct Frame {
    id: usize,
    kind: Kind,
    children: Vec<Id>,
    next: usize,
    out: Vec<PyValue>,
    shared: bool,
}

impl Tree {
    fn err(&self, what: impl Into<String>) -> PErr {
        PErr::pickle(self.at, what)
    }

    fn run(&mut self, root: Id) -> Result<PyValue, PErr> {
        let mut stack: Vec<Frame> = Vec::new();
        let mut ready = self.enter(root, false, &mut stack)?;
        loop {
            if let Some(v) = ready.take() {
                match stack.last_mut() {
                    None => return Ok(v),
                    Some(f) => f.out.push(v),
                }
            }
            let Some(f) = stack.last_mut() else {
                return Err(self.err("internal: the walk ended without a value"));
            };
            if let Some(&c) = f.children.get(f.next) {
                f.next += 1;
                let shared = f.shared;
                ready = self.enter(c, shared, &mut stack)?;
            } else if let Some(f) = stack.pop() {
                self.busy[f.id] = false;
                ready = Some(finish(f));
            }
        }
    }

    /// Starts on object `id`: a leaf is returned as a value, a container
    /// is pushed on `stack`.
    fn enter(
        &mut self,
        id: Id,
        shared: bool,
        stack: &mut Vec<Frame>,
    ) -> Result<Option<PyValue>, PErr> {
        let i = id as usize;
        if stack.len() > PY_MAX_DEPTH {
            return Err(self.err(format!("values nest more than {PY_MAX_DEPTH} deep")));
        }
        if self.busy[i] {
            return Err(self.err(
                "the pickle holds a cycle (a container inside itself), which a tree cannot hold",
            ));
        }
        self.values += 1;
        if self.values > self.max_values {
            return Err(self.err(format!(
                "shared data expands to more than {} values (max_expanded_values)",
                self.max_values
            )));
        }
        let shared = shared || self.refs[i] > 1;
        let (kind, children) = match &mut self.nodes[i] {
            Node::Value(v) => {
                if !shared {
                    return Ok(Some(std::mem::replace(v, PyValue::None)));
                }
                let bytes = value_bytes(v);
                let v = v.clone();
                self.copied = self.copied.saturating_add(bytes);
                if self.copied > self.max_copied {
                    return Err(self.err(format!(
                        "copies of shared data go over max_decompressed_bytes ({} bytes)",
                        self.max_copied
                    )));
                }
                return Ok(Some(v));
            }
            Node::Global { module, name, .. } => {
                return Ok(Some(PyValue::Global {
                    module: module.clone(),
                    name: name.clone(),
                }));
            }
            Node::List(v) => (Kind::List, v.clone()),
            Node::Tuple(v) => (Kind::Tuple, v.clone()),
            Node::Set(v) => (Kind::Set, v.clone()),
            Node::FrozenSet(v) => (Kind::FrozenSet, v.clone()),
            Node::Dict(p) => (Kind::Dict, p.iter().flat_map(|&(k, v)| [k, v]).collect()),
            Node::ObjArray {
                dtype,
                shape,
                items,
            } => (Kind::ObjArray(dtype.clone(), shape.clone()), items.clone()),
            Node::Object {
                module,
                name,
                args,
                state,
            } => {
                let mut c = vec![*args];
                c.extend(*state);
                (Kind::Object(module.clone(), name.clone()), c)
            }
            Node::Dtype(d) => {
                let d = d.to_string();
                return Err(self.err(format!(
                    "a bare numpy dtype ({d}) as a value is not supported"
                )));
            }
            Node::Wrapper | Node::NdPending => {
                return Err(self.err("an array never got its state (BUILD)"));
            }
        };
        self.busy[i] = true;
        stack.push(Frame {
            id: i,
            kind,
            out: Vec::with_capacity(children.len()),
            children,
            next: 0,
            shared,
        });
        Ok(None)
    }
}

/// The value of a container whose children are all values.
fn finish(f: Frame) -> PyValue {
    let mut out = f.out;
    match f.kind {
        Kind::List => PyValue::List(out),
        Kind::Tuple => PyValue::Tuple(out),
        Kind::Set => PyValue::Set(out),
        Kind::FrozenSet => PyValue::FrozenSet(out),
        Kind::Dict => {
            let mut pairs = Vec::with_capacity(out.len() / 2);
            let mut it = out.into_iter();
            while let (Some(k), Some(v)) = (it.next(), it.next()) {
                pairs.push((k, v));
            }
            PyValue::Dict(pairs)
        }
        Kind::ObjArray(dtype, shape) => {
            PyValue::Array(PyArray::new(dtype, shape, ArrayData::Object(out)))
        }
        Kind::Object(module, name) => {
            let state = if out.len() > 1 {
                out.pop().map(Box::new)
            } else {
                None
            };
            let args = Box::new(out.pop().unwrap_or(PyValue::None));
            PyValue::Object {
                module,
                name,
                args,
                state,
            }
        }
    }
}

/// Rough bytes held by a leaf value, for the copy budget.
fn value_bytes(v: &PyValue) -> u64 {
    let n = match v {
        PyValue::Str(s) => s.len(),
        PyValue::Bytes(b) | PyValue::ByteArray(b) | PyValue::BigInt(b) => b.len(),
        PyValue::Array(a) | PyValue::Scalar(a) => {
            a.data.len().saturating_mul(a.dtype.itemsize.max(1))
        }
        _ => 8,
    };
    n as u64
}
