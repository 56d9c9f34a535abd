//! The pickle interpreter: the opcodes of protocols 0-5 (except persistent
//! ids, extension codes and out-of-band buffers) over an arena of objects,
//! with a whitelist of globals. Nothing is ever called.

use std::collections::HashMap;

use super::numpy::{Raw, count, data_fortran_to_c, mappable, read_data};
use super::source::Source;
use super::tree;
use super::value::{ArrayData, PyArray, PyDtype, PyValue};
use super::{PErr, PyLoadOptions};

/// Index of an object in the arena.
pub(crate) type Id = u32;

/// The whitelisted globals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Known {
    Set,
    FrozenSet,
    ByteArray,
    Bytes,
    Complex,
    List,
    Dict,
    Tuple,
    Object,
    Encode,
    Reconstructor,
    Dtype,
    /// `numpy.ndarray`, `numpy.matrix`, `numpy.memmap`: markers only.
    ArrayClass,
    Reconstruct,
    FromBuffer,
    Scalar,
    Wrapper,
}

/// Maps a global to its whitelisted meaning, with Python 2 spellings.
fn known(module: &str, name: &str) -> Option<Known> {
    let module = match module {
        "__builtin__" => "builtins",
        "copy_reg" => "copyreg",
        m => m,
    };
    Some(match (module, name) {
        ("builtins", "set") => Known::Set,
        ("builtins", "frozenset") => Known::FrozenSet,
        ("builtins", "bytearray") => Known::ByteArray,
        ("builtins", "bytes") => Known::Bytes,
        ("builtins", "complex") => Known::Complex,
        ("builtins", "list") => Known::List,
        ("builtins", "dict") => Known::Dict,
        ("builtins", "tuple") => Known::Tuple,
        ("builtins", "object") => Known::Object,
        ("_codecs", "encode") => Known::Encode,
        ("copyreg", "_reconstructor") => Known::Reconstructor,
        ("numpy", "dtype") => Known::Dtype,
        ("numpy", "ndarray" | "matrix" | "memmap") => Known::ArrayClass,
        ("numpy.core.multiarray" | "numpy._core.multiarray", "_reconstruct") => Known::Reconstruct,
        ("numpy.core.numeric" | "numpy._core.numeric", "_frombuffer") => Known::FromBuffer,
        ("numpy.core.multiarray" | "numpy._core.multiarray", "scalar") => Known::Scalar,
        ("numpy.core.multiarray" | "numpy._core.multiarray", "dtype") => Known::Dtype,
        ("joblib.numpy_pickle", "NumpyArrayWrapper") => Known::Wrapper,
        _ => return None,
    })
}

/// One object of the pickle.
#[derive(Debug)]
pub(crate) enum Node {
    /// A finished value with no references to other objects.
    Value(PyValue),
    List(Vec<Id>),
    Tuple(Vec<Id>),
    Dict(Vec<(Id, Id)>),
    Set(Vec<Id>),
    FrozenSet(Vec<Id>),
    Global {
        module: String,
        name: String,
        known: Option<Known>,
    },
    Dtype(PyDtype),
    /// A `NumpyArrayWrapper` waiting for its state (BUILD).
    Wrapper,
    /// A `_reconstruct`ed ndarray waiting for its state (BUILD).
    NdPending,
    /// An object-dtype array whose elements are objects of the arena.
    ObjArray {
        dtype: PyDtype,
        shape: Vec<usize>,
        items: Vec<Id>,
    },
    /// An object of a class not on the whitelist (opaque mode only).
    Object {
        module: String,
        name: String,
        args: Id,
        state: Option<Id>,
    },
}

struct Vm<'a, 'r> {
    src: &'a mut Source<'r>,
    opts: &'a PyLoadOptions,
    /// Nesting of object-array pickles (0 for the file's own).
    nested: usize,
    nodes: Vec<Node>,
    stack: Vec<Id>,
    marks: Vec<usize>,
    memo: HashMap<u64, Id>,
    /// Offset of the opcode being run.
    at: u64,
}

/// Runs the pickle at the source's position to its STOP and returns its
/// value. `nested` is 0 for a file's pickle; object arrays' pickles run
/// nested, without joblib's wrapper.
pub(crate) fn run(
    src: &mut Source<'_>,
    opts: &PyLoadOptions,
    nested: usize,
) -> Result<PyValue, PErr> {
    let mut vm = Vm {
        src,
        opts,
        nested,
        nodes: Vec::new(),
        stack: Vec::new(),
        marks: Vec::new(),
        memo: HashMap::new(),
        at: 0,
    };
    let root = vm.execute()?;
    let nodes = std::mem::take(&mut vm.nodes);
    tree::build(nodes, root, opts, vm.at)
}

impl Vm<'_, '_> {
    fn err(&self, what: impl Into<String>) -> PErr {
        PErr::pickle(self.at, what)
    }

    fn add(&mut self, node: Node) -> Result<Id, PErr> {
        if self.nodes.len() >= self.opts.max_nodes {
            return Err(self.err(format!(
                "the pickle creates more than max_objects ({}) objects",
                self.opts.max_nodes
            )));
        }
        let id = Id::try_from(self.nodes.len()).map_err(|_| self.err("too many objects"))?;
        self.nodes.push(node);
        Ok(id)
    }

    fn push(&mut self, node: Node) -> Result<(), PErr> {
        let id = self.add(node)?;
        self.stack.push(id);
        Ok(())
    }

    fn push_value(&mut self, v: PyValue) -> Result<(), PErr> {
        self.push(Node::Value(v))
    }

    fn pop(&mut self) -> Result<Id, PErr> {
        let floor = self.marks.last().copied().unwrap_or(0);
        if self.stack.len() <= floor {
            return Err(self.err("pop from an empty stack"));
        }
        self.stack
            .pop()
            .ok_or_else(|| self.err("pop from an empty stack"))
    }

    fn top(&self) -> Result<Id, PErr> {
        let floor = self.marks.last().copied().unwrap_or(0);
        if self.stack.len() <= floor {
            return Err(self.err("the stack is empty"));
        }
        self.stack
            .last()
            .copied()
            .ok_or_else(|| self.err("the stack is empty"))
    }

    fn pop_mark(&mut self) -> Result<Vec<Id>, PErr> {
        let mark = self
            .marks
            .pop()
            .ok_or_else(|| self.err("no MARK on the stack"))?;
        Ok(self.stack.split_off(mark))
    }

    fn node(&self, id: Id) -> &Node {
        &self.nodes[id as usize]
    }

    fn memo_put(&mut self, key: u64) -> Result<(), PErr> {
        let id = self.top()?;
        if self.memo.len() >= self.opts.max_memo && !self.memo.contains_key(&key) {
            return Err(self.err(format!(
                "the pickle makes more than max_memo_entries ({}) memo entries",
                self.opts.max_memo
            )));
        }
        self.memo.insert(key, id);
        Ok(())
    }

    fn memo_get(&mut self, key: u64) -> Result<(), PErr> {
        let id = *self
            .memo
            .get(&key)
            .ok_or_else(|| self.err(format!("memo entry {key} was never stored")))?;
        self.stack.push(id);
        Ok(())
    }

    fn len_u32(&mut self) -> Result<u64, PErr> {
        Ok(u64::from(u32::from_le_bytes(self.src.array()?)))
    }

    fn len_u64(&mut self) -> Result<u64, PErr> {
        Ok(u64::from_le_bytes(self.src.array()?))
    }

    fn utf8(&mut self, n: u64) -> Result<String, PErr> {
        let bytes = self.src.bytes(n)?;
        String::from_utf8(bytes).map_err(|_| self.err("a str is not valid UTF-8"))
    }

    fn line_str(&mut self) -> Result<String, PErr> {
        let line = self.src.line()?;
        String::from_utf8(line).map_err(|_| self.err("a text opcode holds non-UTF-8 bytes"))
    }

    fn execute(&mut self) -> Result<Id, PErr> {
        loop {
            self.at = self.src.pos();
            let op = self.src.byte()?;
            match op {
                b'(' => self.marks.push(self.stack.len()),
                b'.' => {
                    let id = self.pop()?;
                    if !self.stack.is_empty() || !self.marks.is_empty() {
                        return Err(self.err("STOP with objects left on the stack"));
                    }
                    return Ok(id);
                }
                b'0' => {
                    if self.stack.len() > self.marks.last().copied().unwrap_or(0) {
                        self.stack.pop();
                    } else {
                        self.pop_mark()?;
                    }
                }
                b'1' => {
                    self.pop_mark()?;
                }
                b'2' => {
                    let id = self.top()?;
                    self.stack.push(id);
                }
                b'F' => {
                    let s = self.line_str()?;
                    let f: f64 = s
                        .trim()
                        .parse()
                        .map_err(|_| self.err(format!("bad FLOAT {s:?}")))?;
                    self.push_value(PyValue::Float(f))?;
                }
                b'I' => {
                    let s = self.line_str()?;
                    let v = match s.as_str() {
                        "00" => PyValue::Bool(false),
                        "01" => PyValue::Bool(true),
                        _ => parse_int(&s, self.at)?,
                    };
                    self.push_value(v)?;
                }
                b'J' => {
                    let v = i32::from_le_bytes(self.src.array()?);
                    self.push_value(PyValue::Int(i64::from(v)))?;
                }
                b'K' => {
                    let v = self.src.byte()?;
                    self.push_value(PyValue::Int(i64::from(v)))?;
                }
                b'M' => {
                    let v = u16::from_le_bytes(self.src.array()?);
                    self.push_value(PyValue::Int(i64::from(v)))?;
                }
                b'L' => {
                    let s = self.line_str()?;
                    let v = parse_int(s.strip_suffix('L').unwrap_or(&s), self.at)?;
                    self.push_value(v)?;
                }
                b'N' => self.push_value(PyValue::None)?,
                b'P' | b'Q' => return Err(self.err("persistent ids (PERSID) are not supported")),
                0x82..=0x84 => return Err(self.err("extension codes (EXT1/2/4) are not supported")),
                0x97 | 0x98 => {
                    return Err(self.err("out-of-band buffers (NEXT_BUFFER) are not supported"));
                }
                b'R' => {
                    let args = self.pop()?;
                    let func = self.pop()?;
                    let node = self.reduce(func, args)?;
                    self.push(node)?;
                }
                b'S' => {
                    let line = self.src.line()?;
                    let v = bytes_to_value(unquote(&line, self.at)?);
                    self.push_value(v)?;
                }
                b'T' => {
                    let n = self.len_u32()?;
                    let b = self.src.bytes(n)?;
                    self.push_value(bytes_to_value(b))?;
                }
                b'U' => {
                    let n = u64::from(self.src.byte()?);
                    let b = self.src.bytes(n)?;
                    self.push_value(bytes_to_value(b))?;
                }
                b'V' => {
                    let line = self.src.line()?;
                    let s = raw_unicode_escape(&line, self.at)?;
                    self.push_value(PyValue::Str(s))?;
                }
                b'X' => {
                    let n = self.len_u32()?;
                    let s = self.utf8(n)?;
                    self.push_value(PyValue::Str(s))?;
                }
                0x8c => {
                    let n = u64::from(self.src.byte()?);
                    let s = self.utf8(n)?;
                    self.push_value(PyValue::Str(s))?;
                }
                0x8d => {
                    let n = self.len_u64()?;
                    let s = self.utf8(n)?;
                    self.push_value(PyValue::Str(s))?;
                }
                b'B' => {
                    let n = self.len_u32()?;
                    let b = self.src.bytes(n)?;
                    self.push_value(PyValue::Bytes(b))?;
                }
                b'C' => {
                    let n = u64::from(self.src.byte()?);
                    let b = self.src.bytes(n)?;
                    self.push_value(PyValue::Bytes(b))?;
                }
                0x8e => {
                    let n = self.len_u64()?;
                    let b = self.src.bytes(n)?;
                    self.push_value(PyValue::Bytes(b))?;
                }
                0x96 => {
                    let n = self.len_u64()?;
                    let b = self.src.bytes(n)?;
                    self.push_value(PyValue::ByteArray(b))?;
                }
                b'a' => {
                    let item = self.pop()?;
                    let list = self.top()?;
                    self.append(list, vec![item])?;
                }
                b'e' => {
                    let items = self.pop_mark()?;
                    let list = self.top()?;
                    self.append(list, items)?;
                }
                b'b' => {
                    let state = self.pop()?;
                    let obj = self.top()?;
                    self.build(obj, state)?;
                }
                b'c' => {
                    let module = self.line_str()?;
                    let name = self.line_str()?;
                    let node = self.global(module, name)?;
                    self.push(node)?;
                }
                0x93 => {
                    let name = self.pop()?;
                    let module = self.pop()?;
                    let (Node::Value(PyValue::Str(m)), Node::Value(PyValue::Str(n))) =
                        (self.node(module), self.node(name))
                    else {
                        return Err(self.err("STACK_GLOBAL needs two str"));
                    };
                    let (m, n) = (m.clone(), n.clone());
                    let node = self.global(m, n)?;
                    self.push(node)?;
                }
                b'd' => {
                    let items = self.pop_mark()?;
                    let pairs = pairs(items, self.at)?;
                    self.push(Node::Dict(pairs))?;
                }
                b'}' => self.push(Node::Dict(Vec::new()))?,
                b'l' => {
                    let items = self.pop_mark()?;
                    self.push(Node::List(items))?;
                }
                b']' => self.push(Node::List(Vec::new()))?,
                b't' => {
                    let items = self.pop_mark()?;
                    self.push(Node::Tuple(items))?;
                }
                b')' => self.push(Node::Tuple(Vec::new()))?,
                0x85..=0x87 => {
                    let n = usize::from(op - 0x84);
                    let mut items = Vec::with_capacity(n);
                    for _ in 0..n {
                        items.push(self.pop()?);
                    }
                    items.reverse();
                    self.push(Node::Tuple(items))?;
                }
                0x8f => self.push(Node::Set(Vec::new()))?,
                0x91 => {
                    let items = self.pop_mark()?;
                    self.push(Node::FrozenSet(items))?;
                }
                0x90 => {
                    let items = self.pop_mark()?;
                    let set = self.top()?;
                    match &mut self.nodes[set as usize] {
                        Node::Set(v) => v.extend(items),
                        _ => return Err(self.err("ADDITEMS to something that is not a set")),
                    }
                }
                b's' => {
                    let v = self.pop()?;
                    let k = self.pop()?;
                    let d = self.top()?;
                    self.set_items(d, vec![(k, v)])?;
                }
                b'u' => {
                    let items = self.pop_mark()?;
                    let pairs = pairs(items, self.at)?;
                    let d = self.top()?;
                    self.set_items(d, pairs)?;
                }
                b'g' => {
                    let s = self.line_str()?;
                    let key = s
                        .trim()
                        .parse()
                        .map_err(|_| self.err(format!("bad GET {s:?}")))?;
                    self.memo_get(key)?;
                }
                b'h' => {
                    let key = u64::from(self.src.byte()?);
                    self.memo_get(key)?;
                }
                b'j' => {
                    let key = self.len_u32()?;
                    self.memo_get(key)?;
                }
                b'p' => {
                    let s = self.line_str()?;
                    let key = s
                        .trim()
                        .parse()
                        .map_err(|_| self.err(format!("bad PUT {s:?}")))?;
                    self.memo_put(key)?;
                }
                b'q' => {
                    let key = u64::from(self.src.byte()?);
                    self.memo_put(key)?;
                }
                b'r' => {
                    let key = self.len_u32()?;
                    self.memo_put(key)?;
                }
                0x94 => {
                    let key = self.memo.len() as u64;
                    self.memo_put(key)?;
                }
                b'G' => {
                    let f = f64::from_be_bytes(self.src.array()?);
                    self.push_value(PyValue::Float(f))?;
                }
                0x80 => {
                    let proto = self.src.byte()?;
                    if proto > 5 {
                        return Err(self.err(format!(
                            "pickle protocol {proto} is not supported (0-5 are)"
                        )));
                    }
                }
                0x81 => {
                    let args = self.pop()?;
                    let cls = self.pop()?;
                    let node = self.new_obj(cls, args)?;
                    self.push(node)?;
                }
                0x92 => {
                    let kwargs = self.pop()?;
                    let args = self.pop()?;
                    let cls = self.pop()?;
                    if !matches!(self.node(kwargs), Node::Dict(d) if d.is_empty()) {
                        return Err(self.err("NEWOBJ_EX with keyword arguments is not supported"));
                    }
                    let node = self.new_obj(cls, args)?;
                    self.push(node)?;
                }
                0x88 => self.push_value(PyValue::Bool(true))?,
                0x89 => self.push_value(PyValue::Bool(false))?,
                0x8a => {
                    let n = u64::from(self.src.byte()?);
                    let b = self.src.bytes(n)?;
                    self.push_value(long_value(b))?;
                }
                0x8b => {
                    let n = self.len_u32()?;
                    if n > 2048 {
                        return Err(self.err(format!("a LONG4 of {n} bytes is longer than 2048")));
                    }
                    let b = self.src.bytes(n)?;
                    self.push_value(long_value(b))?;
                }
                0x95 => {
                    let n = self.len_u64()?;
                    self.src.frame(n)?;
                }
                b'i' => {
                    let module = self.line_str()?;
                    let name = self.line_str()?;
                    let args = self.pop_mark()?;
                    let cls = self.global(module, name)?;
                    let cls = self.add(cls)?;
                    let args = self.add(Node::Tuple(args))?;
                    let node = self.new_obj(cls, args)?;
                    self.push(node)?;
                }
                b'o' => {
                    let mut items = self.pop_mark()?;
                    if items.is_empty() {
                        return Err(self.err("OBJ without a class"));
                    }
                    let cls = items.remove(0);
                    let args = self.add(Node::Tuple(items))?;
                    let node = self.new_obj(cls, args)?;
                    self.push(node)?;
                }
                _ => return Err(self.err(format!("unknown pickle opcode 0x{op:02x}"))),
            }
            if self.stack.len() > self.opts.max_nodes || self.marks.len() > self.opts.max_nodes {
                return Err(self.err("the pickle's stack grows past max_objects"));
            }
        }
    }

    fn global(&self, module: String, name: String) -> Result<Node, PErr> {
        let k = known(&module, &name);
        if k.is_none() && !self.opts.opaque {
            return Err(PErr::global(self.at, format!("{module}.{name}")));
        }
        if k == Some(Known::Wrapper) && self.nested > 0 {
            return Err(PErr::global(
                self.at,
                format!("{module}.{name} (inside an object array)"),
            ));
        }
        Ok(Node::Global {
            module,
            name,
            known: k,
        })
    }

    fn append(&mut self, list: Id, items: Vec<Id>) -> Result<(), PErr> {
        match &mut self.nodes[list as usize] {
            Node::List(v) => {
                v.extend(items);
                Ok(())
            }
            _ => Err(self.err("APPEND to something that is not a list")),
        }
    }

    fn set_items(&mut self, dict: Id, items: Vec<(Id, Id)>) -> Result<(), PErr> {
        match &mut self.nodes[dict as usize] {
            Node::Dict(v) => {
                v.extend(items);
                Ok(())
            }
            _ => Err(self.err("SETITEM on something that is not a dict")),
        }
    }

    fn items_of(&self, id: Id) -> Result<Vec<Id>, PErr> {
        match self.node(id) {
            Node::Tuple(v) | Node::List(v) | Node::Set(v) | Node::FrozenSet(v) => Ok(v.clone()),
            _ => Err(self.err("expected a tuple or list")),
        }
    }

    fn value(&self, id: Id) -> Option<&PyValue> {
        match self.node(id) {
            Node::Value(v) => Some(v),
            _ => None,
        }
    }

    fn int_of(&self, id: Id, what: &str) -> Result<i64, PErr> {
        match self.value(id) {
            Some(PyValue::Int(i)) => Ok(*i),
            Some(PyValue::Bool(b)) => Ok(i64::from(*b)),
            _ => Err(self.err(format!("{what} is not an int"))),
        }
    }

    fn dtype_of(&self, id: Id) -> Result<PyDtype, PErr> {
        match self.node(id) {
            Node::Dtype(d) => Ok(d.clone()),
            _ => Err(self.err("expected a numpy dtype")),
        }
    }

    fn shape_of(&self, id: Id) -> Result<Vec<usize>, PErr> {
        let items = match self.node(id) {
            Node::Value(PyValue::Int(_)) => vec![id],
            _ => self.items_of(id)?,
        };
        items
            .into_iter()
            .map(|d| {
                let d = self.int_of(d, "an array dimension")?;
                usize::try_from(d).map_err(|_| self.err(format!("negative array dimension {d}")))
            })
            .collect()
    }

    fn bytes_of(&self, id: Id, what: &str) -> Result<Vec<u8>, PErr> {
        match self.value(id) {
            Some(PyValue::Bytes(b) | PyValue::ByteArray(b)) => Ok(b.clone()),
            Some(PyValue::Str(s)) => latin1(s, self.at),
            _ => Err(self.err(format!("{what} is not bytes"))),
        }
    }

    fn str_of(&self, id: Id) -> Option<&str> {
        match self.value(id) {
            Some(PyValue::Str(s)) => Some(s),
            _ => None,
        }
    }

    fn known_of(&self, id: Id) -> Result<(Option<Known>, String, String), PErr> {
        match self.node(id) {
            Node::Global {
                module,
                name,
                known,
            } => Ok((*known, module.clone(), name.clone())),
            _ => Err(self.err("calls something that is not a class or function")),
        }
    }

    fn opaque(&self, module: String, name: String, args: Id) -> Result<Node, PErr> {
        if !self.opts.opaque {
            return Err(PErr::global(self.at, format!("{module}.{name}")));
        }
        Ok(Node::Object {
            module,
            name,
            args,
            state: None,
        })
    }

    fn reduce(&mut self, func: Id, args: Id) -> Result<Node, PErr> {
        let (k, module, name) = self.known_of(func)?;
        let a = self.items_of(args)?;
        let Some(k) = k else {
            return self.opaque(module, name, args);
        };
        let bad = |vm: &Self| vm.err(format!("unexpected arguments to {module}.{name}"));
        Ok(match (k, a.as_slice()) {
            (Known::Set, []) => Node::Set(Vec::new()),
            (Known::Set, [it]) => Node::Set(self.items_of(*it)?),
            (Known::FrozenSet, []) => Node::FrozenSet(Vec::new()),
            (Known::FrozenSet, [it]) => Node::FrozenSet(self.items_of(*it)?),
            (Known::List, []) => Node::List(Vec::new()),
            (Known::List, [it]) => Node::List(self.items_of(*it)?),
            (Known::Tuple, []) => Node::Tuple(Vec::new()),
            (Known::Tuple, [it]) => Node::Tuple(self.items_of(*it)?),
            (Known::Dict, []) => Node::Dict(Vec::new()),
            (Known::Bytes, []) => Node::Value(PyValue::Bytes(Vec::new())),
            (Known::ByteArray, []) => Node::Value(PyValue::ByteArray(Vec::new())),
            (Known::ByteArray, [b]) => {
                Node::Value(PyValue::ByteArray(self.bytes_of(*b, "bytearray data")?))
            }
            (Known::ByteArray, [s, _enc]) => {
                Node::Value(PyValue::ByteArray(self.bytes_of(*s, "bytearray data")?))
            }
            (Known::Complex, [re, im]) => {
                let f = |id: Id| match self.value(id) {
                    Some(PyValue::Float(f)) => Ok(*f),
                    Some(PyValue::Int(i)) => Ok(*i as f64),
                    _ => Err(bad(self)),
                };
                Node::Value(PyValue::Complex(f(*re)?, f(*im)?))
            }
            (Known::Encode, [s, enc]) => {
                let enc = self.str_of(*enc).unwrap_or_default().to_ascii_lowercase();
                let s = self.str_of(*s).ok_or_else(|| bad(self))?;
                let b = match enc.as_str() {
                    "latin1" | "latin-1" | "iso-8859-1" => latin1(s, self.at)?,
                    "utf8" | "utf-8" => s.as_bytes().to_vec(),
                    _ => return Err(self.err(format!("_codecs.encode with encoding {enc:?}"))),
                };
                Node::Value(PyValue::Bytes(b))
            }
            (Known::Reconstructor, [cls, base, state]) => {
                let base_ok = matches!(self.known_of(*base)?.0, Some(Known::Object));
                let state_ok = matches!(self.value(*state), Some(PyValue::None));
                if !base_ok || !state_ok {
                    return Err(bad(self));
                }
                let empty = self.add(Node::Tuple(Vec::new()))?;
                return self.new_obj(*cls, empty);
            }
            (Known::Dtype, [s, ..]) => {
                let s = self.str_of(*s).ok_or_else(|| bad(self))?;
                Node::Dtype(PyDtype::from_typestr(s, self.at)?)
            }
            (Known::Reconstruct, [cls, _shape, _tag]) => {
                if self.known_of(*cls)?.0 != Some(Known::ArrayClass) {
                    return Err(bad(self));
                }
                Node::NdPending
            }
            (Known::FromBuffer, [buf, dtype, shape, order]) => {
                let bytes = self.bytes_of(*buf, "_frombuffer data")?;
                let dtype = self.dtype_of(*dtype)?;
                let shape = self.shape_of(*shape)?;
                let fortran = self.str_of(*order) == Some("F");
                Node::Value(PyValue::Array(
                    self.array_from(dtype, shape, fortran, &bytes)?,
                ))
            }
            (Known::Scalar, [dtype, data]) => {
                let dtype = self.dtype_of(*dtype)?;
                if dtype.is_object() {
                    return Err(self.err("numpy object scalars are not supported"));
                }
                let bytes = self.bytes_of(*data, "scalar data")?;
                Node::Value(PyValue::Scalar(self.array_from(
                    dtype,
                    Vec::new(),
                    false,
                    &bytes,
                )?))
            }
            _ => {
                return Err(self.err(format!(
                    "{module}.{name} cannot be called with {} arguments",
                    a.len()
                )));
            }
        })
    }

    fn new_obj(&mut self, cls: Id, args: Id) -> Result<Node, PErr> {
        let (k, module, name) = self.known_of(cls)?;
        let empty = self.items_of(args)?.is_empty();
        match k {
            Some(Known::Wrapper) if empty => Ok(Node::Wrapper),
            Some(Known::Set) if empty => Ok(Node::Set(Vec::new())),
            Some(Known::List) if empty => Ok(Node::List(Vec::new())),
            Some(Known::Dict) if empty => Ok(Node::Dict(Vec::new())),
            Some(_) => Err(self.err(format!("{module}.{name} cannot be created this way"))),
            None => self.opaque(module, name, args),
        }
    }

    fn array_from(
        &self,
        dtype: PyDtype,
        shape: Vec<usize>,
        fortran: bool,
        bytes: &[u8],
    ) -> Result<PyArray, PErr> {
        let n = count(&shape, self.at)?;
        let mut data = read_data(&dtype, n, Raw::Slice(bytes), self.at)?;
        if fortran {
            data = data_fortran_to_c(data, &shape, self.at)?;
        }
        Ok(PyArray::new(dtype, shape, data))
    }

    fn build(&mut self, obj: Id, state: Id) -> Result<(), PErr> {
        let node = match self.node(obj) {
            Node::Wrapper => self.wrapper(state)?,
            Node::Dtype(d) => Node::Dtype(self.dtype_state(d.clone(), state)?),
            Node::NdPending => self.nd_state(state)?,
            Node::Object {
                module,
                name,
                args,
                state: None,
            } => Node::Object {
                module: module.clone(),
                name: name.clone(),
                args: *args,
                state: Some(state),
            },
            _ => return Err(self.err("BUILD on an object that takes no state")),
        };
        self.nodes[obj as usize] = node;
        Ok(())
    }

    /// Applies numpy's dtype state `(version, byteorder, subarray, names,
    /// fields, elsize, alignment, flags[, metadata])`.
    fn dtype_state(&self, mut d: PyDtype, state: Id) -> Result<PyDtype, PErr> {
        let s = self.items_of(state)?;
        if s.len() < 8 {
            return Err(self.err("a numpy dtype state has fewer than 8 items"));
        }
        if let Some(bo) = self.str_of(s[1]) {
            d.byteorder = match bo {
                "<" | ">" | "|" => bo.chars().next().unwrap_or('|'),
                "=" => {
                    if cfg!(target_endian = "big") {
                        '>'
                    } else {
                        '<'
                    }
                }
                _ => return Err(self.err(format!("unknown dtype byte order {bo:?}"))),
            };
        }
        let none = |id: Id| matches!(self.value(id), Some(PyValue::None));
        if !none(s[2]) || !none(s[3]) || !none(s[4]) {
            d.structured = true;
        }
        if matches!(d.kind, 'U' | 'S' | 'V') {
            let elsize = self.int_of(s[5], "a dtype's element size")?;
            if elsize >= 0 {
                d.itemsize = usize::try_from(elsize).map_err(|_| self.err("bad element size"))?;
            }
        }
        if matches!(d.kind, 'M' | 'm')
            && let Some(&meta) = s.get(8)
        {
            // (None, (unit bytes, num, den, events)) or the unit tuple itself.
            let mut unit = self.items_of(meta).ok();
            if let Some(u) = &unit
                && u.len() == 2
            {
                unit = self.items_of(u[1]).ok();
            }
            if let Some(u) = unit.and_then(|u| u.first().copied()) {
                let b = self.bytes_of(u, "a datetime unit")?;
                d.unit = Some(String::from_utf8_lossy(&b).into_owned());
            }
        }
        Ok(d)
    }

    /// Applies ndarray's state `(version, shape, dtype, is_fortran, data)`.
    fn nd_state(&mut self, state: Id) -> Result<Node, PErr> {
        let s = self.items_of(state)?;
        let [_, shape, dtype, fortran, data] = s.as_slice() else {
            return Err(self.err("an ndarray state is not a 5-tuple"));
        };
        let shape = self.shape_of(*shape)?;
        let dtype = self.dtype_of(*dtype)?;
        let fortran = matches!(self.value(*fortran), Some(PyValue::Bool(true)));
        if dtype.is_object() {
            let items = self.items_of(*data)?;
            let n = count(&shape, self.at)?;
            if items.len() != n {
                return Err(self.err(format!(
                    "an object array of shape {shape:?} holds {} items",
                    items.len()
                )));
            }
            let items = if fortran {
                super::numpy::fortran_to_c(items, &shape, self.at)?
            } else {
                items
            };
            return Ok(Node::ObjArray {
                dtype,
                shape,
                items,
            });
        }
        let bytes = self.bytes_of(*data, "ndarray data")?;
        Ok(Node::Value(PyValue::Array(
            self.array_from(dtype, shape, fortran, &bytes)?,
        )))
    }

    /// joblib's `NumpyArrayWrapper` BUILD: the array's bytes follow in the stream.
    fn wrapper(&mut self, state: Id) -> Result<Node, PErr> {
        let Node::Dict(pairs) = self.node(state) else {
            return Err(self.err("a NumpyArrayWrapper state is not a dict"));
        };
        let mut get = HashMap::new();
        for &(k, v) in pairs {
            if let Some(k) = self.str_of(k) {
                get.insert(k.to_owned(), v);
            }
        }
        let need = |k: &str| {
            get.get(k)
                .copied()
                .ok_or_else(|| self.err(format!("a NumpyArrayWrapper state has no `{k}`")))
        };
        let dtype = self.dtype_of(need("dtype")?)?;
        let shape = self.shape_of(need("shape")?)?;
        let fortran = match self.str_of(need("order")?) {
            Some("C") => false,
            Some("F") => true,
            _ => return Err(self.err("a NumpyArrayWrapper order is not 'C' or 'F'")),
        };
        if let Some(&sub) = get.get("subclass")
            && self.known_of(sub)?.0 != Some(Known::ArrayClass)
        {
            return Err(self.err("a NumpyArrayWrapper subclass is not a numpy array class"));
        }
        let align = match get
            .get("numpy_array_alignment_bytes")
            .map(|&a| self.value(a))
        {
            None | Some(Some(PyValue::None)) => None,
            Some(Some(PyValue::Int(a))) if (1..=255).contains(a) => Some(*a as u8),
            Some(_) => return Err(self.err("bad numpy_array_alignment_bytes")),
        };
        self.src.outside_frame()?;
        let at = self.src.pos();
        if dtype.is_object() {
            if self.nested + 1 > self.opts.max_nested {
                return Err(self.err(format!(
                    "object arrays nest more than {} deep",
                    self.opts.max_nested
                )));
            }
            let v = run(self.src, self.opts, self.nested + 1)?;
            return match v {
                PyValue::Array(a) if matches!(a.data, ArrayData::Object(_)) => {
                    Ok(Node::Value(PyValue::Array(a)))
                }
                other => Err(PErr::pickle(
                    at,
                    format!("an object array's pickle holds {}", other.describe()),
                )),
            };
        }
        if let Some(align) = align {
            let pad = self.src.byte()?;
            if pad == 0 || pad > align {
                return Err(PErr::pickle(
                    at,
                    format!("array padding of {pad} bytes (1 to {align} allowed)"),
                ));
            }
            let mut skip = [0u8; 255];
            self.src.fill(&mut skip[..usize::from(pad)])?;
        }
        let n = count(&shape, at)?;
        let at = self.src.pos();
        if self.src.is_mapped()
            && n > 0
            && let Some(empty) = mappable(&dtype, &shape, fortran, at)
        {
            // Left in the mapped file for `MmapArray` fields to view.
            let bytes = n
                .checked_mul(dtype.itemsize)
                .and_then(|b| u64::try_from(b).ok())
                .ok_or_else(|| PErr::pickle(at, "an array's length overflows"))?;
            self.src.skip(bytes)?;
            let mut a = PyArray::new(dtype, shape, empty);
            a.mapped = Some(at);
            return Ok(Node::Value(PyValue::Array(a)));
        }
        let mut data = read_data(&dtype, n, Raw::Stream(self.src), at)?;
        if fortran {
            data = data_fortran_to_c(data, &shape, at)?;
        }
        Ok(Node::Value(PyValue::Array(PyArray::new(
            dtype, shape, data,
        ))))
    }
}

fn pairs(items: Vec<Id>, at: u64) -> Result<Vec<(Id, Id)>, PErr> {
    if !items.len().is_multiple_of(2) {
        return Err(PErr::pickle(at, "a dict gets an odd number of items"));
    }
    Ok(items.chunks_exact(2).map(|c| (c[0], c[1])).collect())
}

/// An int from little-endian two's-complement bytes (LONG1, LONG4), in
/// its shortest form so that equal ints compare equal.
fn long_value(mut b: Vec<u8>) -> PyValue {
    while b.len() > 1 {
        let (last, prev) = (b[b.len() - 1], b[b.len() - 2]);
        if (last == 0 && prev & 0x80 == 0) || (last == 0xff && prev & 0x80 != 0) {
            b.pop();
        } else {
            break;
        }
    }
    match super::value::bigint_i128(&b).and_then(|v| i64::try_from(v).ok()) {
        Some(v) => PyValue::Int(v),
        None => PyValue::BigInt(b),
    }
}

/// Most decimal digits in a text int, as CPython limits them.
const MAX_DIGITS: usize = 4300;

/// A decimal int (INT, LONG).
fn parse_int(s: &str, at: u64) -> Result<PyValue, PErr> {
    let t = s.trim();
    if let Ok(v) = t.parse::<i64>() {
        return Ok(PyValue::Int(v));
    }
    let (neg, digits) = match t.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(PErr::pickle(
            at,
            format!("bad int {:?}", t.chars().take(40).collect::<String>()),
        ));
    }
    if digits.len() > MAX_DIGITS {
        return Err(PErr::pickle(
            at,
            format!("an int of {} digits (at most {MAX_DIGITS})", digits.len()),
        ));
    }
    // Magnitude in base 2^32, little-endian.
    let mut limbs: Vec<u32> = vec![0];
    for d in digits.bytes() {
        let mut carry = u64::from(d - b'0');
        for l in &mut limbs {
            let v = u64::from(*l) * 10 + carry;
            *l = v as u32;
            carry = v >> 32;
        }
        if carry > 0 {
            limbs.push(carry as u32);
        }
    }
    let mut bytes: Vec<u8> = limbs.iter().flat_map(|l| l.to_le_bytes()).collect();
    bytes.push(0);
    if neg {
        let mut carry = true;
        for b in &mut bytes {
            let (v, c) = (!*b).overflowing_add(u8::from(carry));
            *b = v;
            carry = c;
        }
    }
    Ok(long_value(bytes))
}

/// A Python 2 `str` (bytes): a str when it is ASCII, as Python 3 loads it.
fn bytes_to_value(b: Vec<u8>) -> PyValue {
    if b.is_ascii() {
        PyValue::Str(String::from_utf8(b).unwrap_or_default())
    } else {
        PyValue::Bytes(b)
    }
}

/// The bytes of a str whose characters are all below 256.
fn latin1(s: &str, at: u64) -> Result<Vec<u8>, PErr> {
    s.chars()
        .map(|c| {
            u8::try_from(u32::from(c))
                .map_err(|_| PErr::pickle(at, "a latin-1 str holds a character above U+00FF"))
        })
        .collect()
}

/// The body of a quoted Python 2 string literal (STRING), unescaped.
fn unquote(line: &[u8], at: u64) -> Result<Vec<u8>, PErr> {
    let bad = || PErr::pickle(at, "a STRING opcode is not a quoted literal");
    let (&q, rest) = line.split_first().ok_or_else(bad)?;
    if !(q == b'\'' || q == b'"') || rest.last() != Some(&q) {
        return Err(bad());
    }
    let body = &rest[..rest.len() - 1];
    let mut out = Vec::with_capacity(body.len());
    let mut i = 0;
    while i < body.len() {
        let c = body[i];
        i += 1;
        if c != b'\\' {
            out.push(c);
            continue;
        }
        let e = *body.get(i).ok_or_else(bad)?;
        i += 1;
        match e {
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'\\' | b'\'' | b'"' => out.push(e),
            b'x' => {
                let h = body.get(i..i + 2).ok_or_else(bad)?;
                let v = std::str::from_utf8(h)
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(bad)?;
                out.push(v);
                i += 2;
            }
            b'0'..=b'7' => {
                let mut v = u32::from(e - b'0');
                for _ in 0..2 {
                    match body.get(i) {
                        Some(&d @ b'0'..=b'7') => {
                            v = v * 8 + u32::from(d - b'0');
                            i += 1;
                        }
                        _ => break,
                    }
                }
                out.push(u8::try_from(v).map_err(|_| bad())?);
            }
            _ => {
                out.push(b'\\');
                out.push(e);
            }
        }
    }
    Ok(out)
}

/// Python's raw-unicode-escape (UNICODE): latin-1 bytes with `\uXXXX`
/// and `\UXXXXXXXX` escapes.
fn raw_unicode_escape(line: &[u8], at: u64) -> Result<String, PErr> {
    let mut out = String::with_capacity(line.len());
    let mut i = 0;
    while i < line.len() {
        let c = line[i];
        let width = match (c, line.get(i + 1)) {
            (b'\\', Some(b'u')) => 4,
            (b'\\', Some(b'U')) => 8,
            _ => 0,
        };
        if width == 0 {
            out.push(char::from(c));
            i += 1;
            continue;
        }
        let hex = line
            .get(i + 2..i + 2 + width)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u32::from_str_radix(h, 16).ok())
            .and_then(char::from_u32)
            .ok_or_else(|| PErr::pickle(at, "a bad \\u escape in a UNICODE opcode"))?;
        out.push(hex);
        i += 2 + width;
    }
    Ok(out)
}
