//! From the interpreter's arena (objects shared through the memo) to a
//! [`PyValue`] tree, with caps on depth and on how much shared data may
//! expand, and cycles refused.

use super::value::{ArrayData, PyArray, PyValue};
use super::vm::{Id, Node};
use super::{PErr, PY_MAX_DEPTH, PyLoadOptions};

struct Tree {
    nodes: Vec<Node>,
    /// References to each object not yet turned into a value; the last one
    /// moves the value out instead of copying it.
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
    t.value(root, 0)
}

impl Tree {
    fn err(&self, what: impl Into<String>) -> PErr {
        PErr::pickle(self.at, what)
    }

    fn value(&mut self, id: Id, depth: usize) -> Result<PyValue, PErr> {
        let i = id as usize;
        if depth > PY_MAX_DEPTH {
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
        self.refs[i] = self.refs[i].saturating_sub(1);
        let last = self.refs[i] == 0;
        if let Node::Value(v) = &mut self.nodes[i] {
            if last {
                return Ok(std::mem::replace(v, PyValue::None));
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
            return Ok(v);
        }
        self.busy[i] = true;
        let out = self.container(i, depth)?;
        self.busy[i] = false;
        Ok(out)
    }

    fn list(&mut self, ids: &[Id], depth: usize) -> Result<Vec<PyValue>, PErr> {
        ids.iter().map(|&c| self.value(c, depth + 1)).collect()
    }

    fn container(&mut self, i: usize, depth: usize) -> Result<PyValue, PErr> {
        // The children are looked up by index, so the node stays in place
        // for later references; only its child list is copied.
        Ok(match &self.nodes[i] {
            Node::List(v) => PyValue::List(self.list(&v.clone(), depth)?),
            Node::Tuple(v) => PyValue::Tuple(self.list(&v.clone(), depth)?),
            Node::Set(v) => PyValue::Set(self.list(&v.clone(), depth)?),
            Node::FrozenSet(v) => PyValue::FrozenSet(self.list(&v.clone(), depth)?),
            Node::Dict(p) => {
                let p = p.clone();
                let mut out = Vec::with_capacity(p.len());
                for (k, v) in p {
                    out.push((self.value(k, depth + 1)?, self.value(v, depth + 1)?));
                }
                PyValue::Dict(out)
            }
            Node::ObjArray {
                dtype,
                shape,
                items,
            } => {
                let (dtype, shape, items) = (dtype.clone(), shape.clone(), items.clone());
                let data = ArrayData::Object(self.list(&items, depth)?);
                PyValue::Array(PyArray { dtype, shape, data })
            }
            Node::Object {
                module,
                name,
                args,
                state,
            } => {
                let (module, name, args, state) = (module.clone(), name.clone(), *args, *state);
                let args = Box::new(self.value(args, depth + 1)?);
                let state = match state {
                    Some(s) => Some(Box::new(self.value(s, depth + 1)?)),
                    None => None,
                };
                PyValue::Object {
                    module,
                    name,
                    args,
                    state,
                }
            }
            Node::Global { module, name, .. } => PyValue::Global {
                module: module.clone(),
                name: name.clone(),
            },
            Node::Dtype(d) => {
                return Err(self.err(format!(
                    "a bare numpy dtype ({d}) as a value is not supported"
                )));
            }
            Node::Wrapper | Node::NdPending => {
                return Err(self.err("an array never got its state (BUILD)"));
            }
            Node::Value(_) => return Err(self.err("internal: value handled above")),
        })
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
