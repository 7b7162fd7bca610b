//! Decoding any Avro record into the values of named field paths.
//!
//! weir's feature definitions name the fields they read by path (`amount`, `user.id`,
//! `dwell_ms`), so weir needs no Rust type per event schema. This module owns that
//! decoding:
//!
//! - [`PathDecoder`]: for ONE writer schema and a list of paths, a flat program compiled
//!   once. Each writer field, in write order, is either skipped (as cheaply as its encoding
//!   allows: a varint, a fixed width, a length prefix, array/map blocks, by byte size when
//!   the writer gave one) or materialized into its slot of the [`EventRecord`]. Nothing
//!   that is not asked for is allocated.
//! - [`RecordDecoder`]: what the pipeline holds. Confluent framing, one accepted subject,
//!   and a [`PathDecoder`] per writer schema id, built on first sight and shared by all
//!   threads; so producers on v1 and v2 of a subject decode with the same paths.
//!
//! What a path means, for a writer schema:
//! - segments are record field names; a path goes through records and through unions of
//!   `null` and records (a null record gives [`FieldValue::Missing`] for every path below
//!   it; a record branch without the field likewise);
//! - the last segment names a value: `int`/`long` (and their logical types) give
//!   [`FieldValue::Int`], `float`/`double` [`FieldValue::Float`], `boolean`
//!   [`FieldValue::Bool`], `string` [`FieldValue::Str`], an enum the symbol as a
//!   [`FieldValue::Str`], `bytes`/`fixed` (decimals, durations) [`FieldValue::Bytes`]; a
//!   union of such (`["null", "long"]`) gives [`FieldValue::Null`] or the branch's value;
//! - a field the writer lacks is [`FieldValue::Missing`] (an older producer; the feature
//!   definitions decide what that means);
//! - a path that goes through a scalar, an array or a map, or names a record, an array or
//!   a map, is refused when the decoder is built ([`PathError`]), never per event.
//!
//! Decoding never panics: truncation, bad varints, lengths past the end, bad union or
//! enum indexes, invalid UTF-8 and trailing bytes are [`ErrorClass::Malformed`]
//! events; a schema id of another subject, or one the paths cannot be read from, is
//! [`ErrorClass::UnknownSchema`].
//!
//! ```
//! use std::sync::Arc;
//! use weir_schemas::events::Transaction;
//! use weir_schemas::paths::RecordDecoder;
//! use weir_schemas::record::FieldValue;
//! use weir_schemas::wire::{Encoder, LocalSchemaRegistry, SchemaRegistry, subjects};
//!
//! let registry: Arc<dyn SchemaRegistry> = Arc::new(LocalSchemaRegistry::embedded().unwrap());
//! let decoder = RecordDecoder::new(registry.clone(), subjects::TRANSACTION, &["amount", "card_id", "mcc"]).unwrap();
//! # let tx = Transaction { event_id: "e1".into(), card_id: "c1".into(), merchant_id: "m1".into(),
//! #   device_id: "d1".into(), amount: 12.5, currency: "EUR".into(), country: "FR".into(),
//! #   channel: "pos".into(), customer_segment: "retail".into(), event_time: 1_700_000_000_000 };
//! let v1 = Encoder::for_schema(registry.by_id(1).unwrap()).encode(&tx).unwrap();
//! let record = decoder.decode(&v1).unwrap();
//! assert_eq!(record.values, [FieldValue::Float(12.5), FieldValue::Str("c1".into()), FieldValue::Missing]);
//! let v2 = Encoder::for_schema(registry.by_id(6).unwrap()).encode(&tx).unwrap();
//! assert_eq!(decoder.decode(&v2).unwrap().get(2), &FieldValue::Null); // v2 has mcc, null here
//! ```
//!
//! [`ErrorClass::Malformed`]: crate::error::ErrorClass::Malformed
//! [`ErrorClass::UnknownSchema`]: crate::error::ErrorClass::UnknownSchema

use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{Arc, PoisonError, RwLock};

use serde_avro_fast::schema::{RegularType, SchemaKey, SchemaMut};

use crate::error::{EventError, PathError};
use crate::record::{EventRecord, FieldValue};
use crate::wire::{unframe, RegisteredSchema, SchemaRegistry};

/// Nesting of named-type calls while decoding (recursive types). The same limit as
/// `serde_avro_fast`'s default, so both decoders refuse the same depth bombs.
const MAX_DEPTH: u32 = 64;

/// A record's skip program up to this many ops is copied into its user's program; a bigger
/// one (or a recursive one) is called. Keeps programs linear in the schema's size.
const INLINE_MAX: usize = 32;

/// Schema ids of other subjects remembered by a [`RecordDecoder`] (they are refused
/// without asking the registry again); beyond this they are looked up each time.
const MAX_FOREIGN_IDS: usize = 1024;

// ---------------------------------------------------------------------------------------
// The program.

/// One step of a decoding program. Skips consume bytes; reads also fill slot `.0`.
#[derive(Debug, Clone)]
enum Op {
    /// `int`, `long`, enum index.
    SkipVarint,
    /// `float`, `double`, `boolean`, `fixed`; consecutive ones are merged.
    SkipFixed(usize),
    /// `string`, `bytes`: a length, then that many bytes.
    SkipBytes,
    /// Array (item program) or map (`SkipBytes` for the key, then the value's program).
    SkipBlocks(Box<[Op]>),
    /// A union: the branch index, then the program of that branch.
    Union(Box<[Box<[Op]>]>),
    /// The skip program of a record type at this index of [`PathDecoder::table`].
    Call(usize),
    Null(u32),
    Bool(u32),
    /// Avro `int`: checked to fit 32 bits.
    Int(u32),
    Long(u32),
    Float(u32),
    Double(u32),
    Str(u32),
    Bytes(u32),
    Fixed(u32, usize),
    Enum(u32, Box<[String]>),
}

/// Why a body did not decode, and how many bytes were left when it was noticed (cheap to
/// build on the hot path; turned into an [`EventError`] message once).
#[derive(Debug, Clone, Copy)]
struct Fault {
    kind: FaultKind,
    remaining: usize,
}

#[derive(Debug, Clone, Copy)]
enum FaultKind {
    Truncated { need: u64 },
    TruncatedVarint,
    VarintTooLong,
    NegativeLength(i64),
    UnionIndex { index: i64, branches: usize },
    EnumIndex { index: i64, symbols: usize },
    Bool(u8),
    IntRange(i64),
    Utf8,
    TooDeep,
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FaultKind::Truncated { need } => write!(f, "truncated: {need} more bytes needed"),
            FaultKind::TruncatedVarint => f.write_str("truncated inside a varint"),
            FaultKind::VarintTooLong => f.write_str("varint longer than 10 bytes or over 64 bits"),
            FaultKind::NegativeLength(n) => write!(f, "negative length or block size {n}"),
            FaultKind::UnionIndex { index, branches } => {
                write!(f, "union branch index {index} is not in 0..{branches}")
            }
            FaultKind::EnumIndex { index, symbols } => write!(f, "enum index {index} is not in 0..{symbols}"),
            FaultKind::Bool(b) => write!(f, "boolean byte {b:#04x} is neither 0 nor 1"),
            FaultKind::IntRange(v) => write!(f, "int value {v} does not fit 32 bits"),
            FaultKind::Utf8 => f.write_str("string is not valid utf-8"),
            FaultKind::TooDeep => write!(f, "nesting of recursive types deeper than {MAX_DEPTH}"),
        }
    }
}

#[inline(always)]
fn fault(kind: FaultKind, input: &[u8]) -> Fault {
    Fault { kind, remaining: input.len() }
}

#[inline(always)]
fn read_varint(input: &mut &[u8]) -> Result<u64, Fault> {
    match input.first() {
        Some(&b) if b < 0x80 => {
            *input = &input[1..];
            Ok(u64::from(b))
        }
        _ => read_varint_slow(input),
    }
}

#[inline(never)]
fn read_varint_slow(input: &mut &[u8]) -> Result<u64, Fault> {
    let mut value = 0u64;
    for (i, &b) in input.iter().enumerate().take(10) {
        value |= u64::from(b & 0x7f) << (7 * i);
        if b < 0x80 {
            // The 10th byte carries the 64th bit only.
            if i == 9 && b > 1 {
                return Err(fault(FaultKind::VarintTooLong, input));
            }
            *input = &input[i + 1..];
            return Ok(value);
        }
    }
    let kind = if input.len() >= 10 { FaultKind::VarintTooLong } else { FaultKind::TruncatedVarint };
    Err(fault(kind, input))
}

/// Avro `long` (zig-zag varint).
#[inline(always)]
fn read_long(input: &mut &[u8]) -> Result<i64, Fault> {
    let v = read_varint(input)?;
    Ok((v >> 1) as i64 ^ -((v & 1) as i64))
}

#[inline(always)]
fn take<'a>(input: &mut &'a [u8], n: usize) -> Result<&'a [u8], Fault> {
    if n > input.len() {
        return Err(fault(FaultKind::Truncated { need: (n - input.len()) as u64 }, input));
    }
    let (head, tail) = input.split_at(n);
    *input = tail;
    Ok(head)
}

/// A length prefix and the bytes it announces.
#[inline(always)]
fn take_prefixed<'a>(input: &mut &'a [u8]) -> Result<&'a [u8], Fault> {
    let len = read_long(input)?;
    if len < 0 {
        return Err(fault(FaultKind::NegativeLength(len), input));
    }
    if len as u64 > input.len() as u64 {
        return Err(fault(FaultKind::Truncated { need: len as u64 - input.len() as u64 }, input));
    }
    take(input, len as usize)
}

#[inline(always)]
fn put(out: &mut [FieldValue], slot: u32, value: FieldValue) {
    if let Some(v) = out.get_mut(slot as usize) {
        *v = value;
    }
}

/// Runs `ops` over `input`, filling `out`. `depth` counts [`Op::Call`]s only: every other
/// nesting is bounded by the (finite) program itself.
fn exec(
    ops: &[Op],
    table: &[Box<[Op]>],
    input: &mut &[u8],
    out: &mut [FieldValue],
    depth: u32,
) -> Result<(), Fault> {
    for op in ops {
        match op {
            Op::SkipVarint => {
                read_varint(input)?;
            }
            Op::SkipFixed(n) => {
                take(input, *n)?;
            }
            Op::SkipBytes => {
                take_prefixed(input)?;
            }
            Op::SkipBlocks(item) => skip_blocks(item, table, input, depth)?,
            Op::Union(branches) => {
                let index = read_long(input)?;
                let branch = usize::try_from(index).ok().and_then(|i| branches.get(i)).ok_or_else(|| {
                    fault(FaultKind::UnionIndex { index, branches: branches.len() }, input)
                })?;
                exec(branch, table, input, out, depth)?;
            }
            Op::Call(t) => {
                if depth >= MAX_DEPTH {
                    return Err(fault(FaultKind::TooDeep, input));
                }
                // Table indexes are made by the compiler; an empty program is never wrong.
                let program = table.get(*t).map(|p| &p[..]).unwrap_or(&[]);
                exec(program, table, input, out, depth + 1)?;
            }
            Op::Null(slot) => put(out, *slot, FieldValue::Null),
            Op::Bool(slot) => {
                let b = match take(input, 1)? {
                    [0] => false,
                    [1] => true,
                    [other] => return Err(fault(FaultKind::Bool(*other), input)),
                    _ => unreachable!("take(1) gives one byte"),
                };
                put(out, *slot, FieldValue::Bool(b));
            }
            Op::Int(slot) => {
                let v = read_long(input)?;
                if i32::try_from(v).is_err() {
                    return Err(fault(FaultKind::IntRange(v), input));
                }
                put(out, *slot, FieldValue::Int(v));
            }
            Op::Long(slot) => {
                let v = read_long(input)?;
                put(out, *slot, FieldValue::Int(v));
            }
            Op::Float(slot) => {
                let b = take(input, 4)?;
                let v = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                put(out, *slot, FieldValue::Float(f64::from(v)));
            }
            Op::Double(slot) => {
                let b = take(input, 8)?;
                let v = f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]);
                put(out, *slot, FieldValue::Float(v));
            }
            Op::Str(slot) => {
                let bytes = take_prefixed(input)?;
                let s = std::str::from_utf8(bytes).map_err(|_| fault(FaultKind::Utf8, input))?;
                put(out, *slot, FieldValue::Str(s.to_owned()));
            }
            Op::Bytes(slot) => {
                let bytes = take_prefixed(input)?;
                put(out, *slot, FieldValue::Bytes(bytes.to_vec()));
            }
            Op::Fixed(slot, n) => {
                let bytes = take(input, *n)?;
                put(out, *slot, FieldValue::Bytes(bytes.to_vec()));
            }
            Op::Enum(slot, symbols) => {
                let index = read_long(input)?;
                let symbol = usize::try_from(index).ok().and_then(|i| symbols.get(i)).ok_or_else(|| {
                    fault(FaultKind::EnumIndex { index, symbols: symbols.len() }, input)
                })?;
                put(out, *slot, FieldValue::Str(symbol.clone()));
            }
        }
    }
    Ok(())
}

/// Skips an array or a map: blocks of `count` items until a zero count; a negative count
/// comes with the block's byte size, which is skipped in one step.
fn skip_blocks(item: &[Op], table: &[Box<[Op]>], input: &mut &[u8], depth: u32) -> Result<(), Fault> {
    loop {
        let count = read_long(input)?;
        if count == 0 {
            return Ok(());
        }
        if count < 0 {
            let size = read_long(input)?;
            if size < 0 {
                return Err(fault(FaultKind::NegativeLength(size), input));
            }
            if size as u64 > input.len() as u64 {
                return Err(fault(FaultKind::Truncated { need: size as u64 - input.len() as u64 }, input));
            }
            take(input, size as usize)?;
            continue;
        }
        // Items of zero width (`null`, an empty record) cost nothing: the count can be
        // anything. Every other item consumes at least one byte (or fails), so the loop
        // below is bounded by the input's length whatever the count says.
        if item.is_empty() {
            continue;
        }
        for _ in 0..count {
            exec(item, table, input, &mut [], depth)?;
        }
    }
}

// ---------------------------------------------------------------------------------------
// Paths and the compiler.

/// The requested paths as a tree of field names.
#[derive(Debug, Default)]
struct PathTree {
    /// The dotted prefix that leads here (`user.id`), for messages.
    prefix: String,
    /// Index of the first requested path at or below this node, for messages.
    first: usize,
    /// Slots of the paths that end here (several when a path is listed twice).
    slots: Vec<u32>,
    children: Vec<(String, PathTree)>,
}

impl PathTree {
    fn child(&self, name: &str) -> Option<&PathTree> {
        self.children.iter().find(|(n, _)| n == name).map(|(_, t)| t)
    }

    fn parse(paths: &[String], schema_id: Option<u32>) -> Result<PathTree, PathError> {
        let mut root = PathTree::default();
        for (i, path) in paths.iter().enumerate() {
            let err = |message: String| PathError::Path { path: path.clone(), schema_id, message };
            let slot = u32::try_from(i).map_err(|_| err("too many paths".into()))?;
            let mut node = &mut root;
            for segment in path.split('.') {
                if !is_avro_name(segment) {
                    return Err(err(if segment.is_empty() {
                        "empty segment: a path is field names joined by single dots".into()
                    } else {
                        format!("segment {segment:?} is not an avro field name ([A-Za-z_][A-Za-z0-9_]*)")
                    }));
                }
                let at = match node.children.iter().position(|(n, _)| n == segment) {
                    Some(at) => at,
                    None => {
                        let prefix = if node.prefix.is_empty() {
                            segment.to_string()
                        } else {
                            format!("{}.{segment}", node.prefix)
                        };
                        node.children.push((segment.to_string(), PathTree { prefix, first: i, ..PathTree::default() }));
                        node.children.len() - 1
                    }
                };
                node = &mut node.children[at].1;
            }
            node.slots.push(slot);
        }
        root.check_prefixes(paths, schema_id)?;
        Ok(root)
    }

    /// `user` and `user.id` cannot both be values, whatever the writer schema.
    fn check_prefixes(&self, paths: &[String], schema_id: Option<u32>) -> Result<(), PathError> {
        for (_, child) in &self.children {
            if !child.slots.is_empty() && !child.children.is_empty() {
                let deeper = child.children.first().map(|(_, t)| t.first).unwrap_or(child.first);
                return Err(PathError::Path {
                    path: child.prefix.clone(),
                    schema_id,
                    message: format!(
                        "is also a prefix of {:?}: a path names either a value or a record, not both",
                        paths.get(deeper).map(String::as_str).unwrap_or_default()
                    ),
                });
            }
            child.check_prefixes(paths, schema_id)?;
        }
        Ok(())
    }
}

fn is_avro_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn kind_name(t: &RegularType) -> String {
    match t {
        RegularType::Null => "null".into(),
        RegularType::Boolean => "boolean".into(),
        RegularType::Int => "int".into(),
        RegularType::Long => "long".into(),
        RegularType::Float => "float".into(),
        RegularType::Double => "double".into(),
        RegularType::Bytes => "bytes".into(),
        RegularType::String => "string".into(),
        RegularType::Array(_) => "an array".into(),
        RegularType::Map(_) => "a map".into(),
        RegularType::Union(_) => "a union".into(),
        RegularType::Record(r) => format!("record {}", r.name.fully_qualified_name()),
        RegularType::Enum(e) => format!("enum {}", e.name.fully_qualified_name()),
        RegularType::Fixed(f) => format!("fixed {}", f.name.fully_qualified_name()),
    }
}

enum RecordState {
    InProgress(usize),
    Done(usize),
}

struct Compiler<'s> {
    schema: &'s SchemaMut,
    paths: &'s [String],
    schema_id: Option<u32>,
    /// Skip programs of record types, called by [`Op::Call`].
    table: Vec<Box<[Op]>>,
    /// Record node index -> its entry in `table`.
    records: HashMap<usize, RecordState>,
    /// Which slots this writer can fill.
    present: Vec<bool>,
}

/// Appends `op`, merging consecutive fixed-width skips.
fn push(out: &mut Vec<Op>, op: Op) {
    match (out.last_mut(), &op) {
        (_, Op::SkipFixed(0)) => {}
        (Some(Op::SkipFixed(a)), Op::SkipFixed(b)) => *a += *b,
        _ => out.push(op),
    }
}

impl<'s> Compiler<'s> {
    fn node(&self, key: SchemaKey) -> Result<&'s RegularType, PathError> {
        let schema = self.schema;
        schema.get(key).map(|n| &n.type_).ok_or_else(|| PathError::Schema {
            schema_id: self.schema_id,
            message: format!("dangling schema node {}", key.idx()),
        })
    }

    fn path_err(&self, tree: &PathTree, message: String) -> PathError {
        PathError::Path {
            path: self.paths.get(tree.first).cloned().unwrap_or_else(|| tree.prefix.clone()),
            schema_id: self.schema_id,
            message,
        }
    }

    /// The program that skips a value of type `key`.
    fn skip(&mut self, key: SchemaKey, out: &mut Vec<Op>) -> Result<(), PathError> {
        match self.node(key)? {
            RegularType::Null => {}
            RegularType::Boolean => push(out, Op::SkipFixed(1)),
            RegularType::Int | RegularType::Long | RegularType::Enum(_) => push(out, Op::SkipVarint),
            RegularType::Float => push(out, Op::SkipFixed(4)),
            RegularType::Double => push(out, Op::SkipFixed(8)),
            RegularType::Fixed(f) => push(out, Op::SkipFixed(f.size)),
            RegularType::Bytes | RegularType::String => push(out, Op::SkipBytes),
            RegularType::Array(a) => {
                let mut item = Vec::new();
                self.skip(a.items, &mut item)?;
                push(out, Op::SkipBlocks(item.into()));
            }
            RegularType::Map(m) => {
                let mut item = vec![Op::SkipBytes];
                self.skip(m.values, &mut item)?;
                push(out, Op::SkipBlocks(item.into()));
            }
            RegularType::Union(u) => {
                let mut branches = Vec::with_capacity(u.variants.len());
                for &v in &u.variants {
                    let mut branch = Vec::new();
                    self.skip(v, &mut branch)?;
                    branches.push(branch.into_boxed_slice());
                }
                push(out, Op::Union(branches.into()));
            }
            RegularType::Record(_) => self.skip_record(key, out)?,
        }
        Ok(())
    }

    /// Skip of a record: its program is compiled once into the table, then copied in when
    /// small, called when big or recursive.
    fn skip_record(&mut self, key: SchemaKey, out: &mut Vec<Op>) -> Result<(), PathError> {
        let t = match self.records.get(&key.idx()) {
            Some(RecordState::InProgress(t)) => {
                push(out, Op::Call(*t));
                return Ok(());
            }
            Some(RecordState::Done(t)) => *t,
            None => {
                let t = self.table.len();
                self.table.push(Box::new([]));
                self.records.insert(key.idx(), RecordState::InProgress(t));
                let RegularType::Record(record) = self.node(key)? else { unreachable!("called on records") };
                let mut program = Vec::new();
                for field in &record.fields {
                    self.skip(field.type_, &mut program)?;
                }
                self.table[t] = program.into();
                self.records.insert(key.idx(), RecordState::Done(t));
                t
            }
        };
        if self.table[t].len() <= INLINE_MAX {
            for op in self.table[t].clone() {
                push(out, op);
            }
        } else {
            push(out, Op::Call(t));
        }
        Ok(())
    }

    /// The program of a record some requested paths go into.
    fn record(&mut self, key: SchemaKey, tree: &PathTree, out: &mut Vec<Op>) -> Result<(), PathError> {
        let RegularType::Record(record) = self.node(key)? else { unreachable!("called on records") };
        for field in &record.fields {
            match tree.child(&field.name) {
                None => self.skip(field.type_, out)?,
                Some(sub) => self.field(field.type_, sub, out)?,
            }
        }
        Ok(())
    }

    /// The program of a field that requested paths end at or go through.
    fn field(&mut self, key: SchemaKey, tree: &PathTree, out: &mut Vec<Op>) -> Result<(), PathError> {
        let ty = self.node(key)?;
        if tree.children.is_empty() {
            // The paths end here: a value.
            let slot = tree.slots[0];
            let op = match ty {
                RegularType::Union(u) => {
                    let mut branches = Vec::with_capacity(u.variants.len());
                    for &v in &u.variants {
                        let op = self.leaf(v, slot, tree, " as a union branch")?;
                        branches.push(vec![op].into_boxed_slice());
                    }
                    Op::Union(branches.into())
                }
                _ => self.leaf(key, slot, tree, "")?,
            };
            push(out, op);
            for &s in &tree.slots {
                self.present[s as usize] = true;
            }
            return Ok(());
        }
        match ty {
            RegularType::Record(_) => self.record(key, tree, out),
            RegularType::Union(u) => {
                let mut branches = Vec::with_capacity(u.variants.len());
                for &v in &u.variants {
                    let mut branch = Vec::new();
                    match self.node(v)? {
                        // A null record: every path below stays Missing.
                        RegularType::Null => {}
                        RegularType::Record(_) => self.record(v, tree, &mut branch)?,
                        other => {
                            return Err(self.path_err(
                                tree,
                                format!(
                                    "goes through {:?}, a union with a branch that is {}, not a record or null",
                                    tree.prefix,
                                    kind_name(other)
                                ),
                            ));
                        }
                    }
                    branches.push(branch.into_boxed_slice());
                }
                push(out, Op::Union(branches.into()));
                Ok(())
            }
            other => Err(self.path_err(
                tree,
                format!("goes through {:?}, which is {}, not a record", tree.prefix, kind_name(other)),
            )),
        }
    }

    fn leaf(&self, key: SchemaKey, slot: u32, tree: &PathTree, context: &str) -> Result<Op, PathError> {
        Ok(match self.node(key)? {
            RegularType::Null => Op::Null(slot),
            RegularType::Boolean => Op::Bool(slot),
            RegularType::Int => Op::Int(slot),
            RegularType::Long => Op::Long(slot),
            RegularType::Float => Op::Float(slot),
            RegularType::Double => Op::Double(slot),
            RegularType::Bytes => Op::Bytes(slot),
            RegularType::String => Op::Str(slot),
            RegularType::Fixed(f) => Op::Fixed(slot, f.size),
            RegularType::Enum(e) => Op::Enum(slot, e.symbols.clone().into()),
            RegularType::Record(r) => {
                return Err(self.path_err(
                    tree,
                    format!(
                        "names record {}{context}, not a value: name one of its fields ({}.<field>)",
                        r.name.fully_qualified_name(),
                        tree.prefix
                    ),
                ));
            }
            other => {
                return Err(self.path_err(
                    tree,
                    format!("names {}{context}, which a field path cannot read", kind_name(other)),
                ));
            }
        })
    }
}

// ---------------------------------------------------------------------------------------
// PathDecoder.

/// Decodes Avro bodies written with one writer schema into the values of a list of field
/// paths. Built once per (writer schema, paths); immutable, so shareable between threads.
#[derive(Debug)]
pub struct PathDecoder {
    schema_id: Option<u32>,
    paths: Vec<String>,
    program: Box<[Op]>,
    table: Box<[Box<[Op]>]>,
    /// `(from, to)`: a path listed twice is read once and copied.
    copies: Box<[(u32, u32)]>,
    present: Box<[bool]>,
}

impl PathDecoder {
    /// For the writer schema `writer` (its id goes into messages).
    pub fn new<S: AsRef<str>>(writer: &RegisteredSchema, paths: &[S]) -> Result<PathDecoder, PathError> {
        Self::build(&writer.text, Some(writer.id), paths)
    }

    /// For a writer schema given as `.avsc` text, with no schema id.
    pub fn from_avsc<S: AsRef<str>>(avsc: &str, paths: &[S]) -> Result<PathDecoder, PathError> {
        Self::build(avsc, None, paths)
    }

    fn build<S: AsRef<str>>(avsc: &str, schema_id: Option<u32>, paths: &[S]) -> Result<PathDecoder, PathError> {
        let paths: Vec<String> = paths.iter().map(|p| p.as_ref().to_string()).collect();
        let tree = PathTree::parse(&paths, schema_id)?;
        let schema_err = |message: String| PathError::Schema { schema_id, message };
        let schema: SchemaMut = avsc.parse().map_err(|e| schema_err(format!("does not parse: {e}")))?;
        // Freezing checks the graph (dangling keys, records that contain themselves
        // unconditionally); the program is compiled from the editable form.
        schema.clone().freeze().map_err(|e| schema_err(format!("is not usable: {e}")))?;
        let root = SchemaKey::root();
        match schema.get(root).map(|n| &n.type_) {
            Some(RegularType::Record(_)) => {}
            Some(other) => return Err(schema_err(format!("is {}, not a record", kind_name(other)))),
            None => return Err(schema_err("is empty".into())),
        }
        let mut compiler = Compiler {
            schema: &schema,
            paths: &paths,
            schema_id,
            table: Vec::new(),
            records: HashMap::new(),
            present: vec![false; paths.len()],
        };
        let mut program = Vec::new();
        compiler.record(root, &tree, &mut program)?;
        let (table, present) = (compiler.table, compiler.present);
        let mut copies = Vec::new();
        collect_copies(&tree, &mut copies);
        Ok(PathDecoder {
            schema_id,
            paths,
            program: program.into(),
            table: table.into(),
            copies: copies.into(),
            present: present.into(),
        })
    }

    /// The paths, in slot order.
    pub fn paths(&self) -> &[String] {
        &self.paths
    }

    /// The writer schema's id (`None` when built from `.avsc` text).
    pub fn schema_id(&self) -> Option<u32> {
        self.schema_id
    }

    /// Whether this writer schema has path `i` at all (when not, slot `i` is always
    /// [`FieldValue::Missing`]).
    pub fn has_path(&self, i: usize) -> bool {
        self.present.get(i).copied().unwrap_or(false)
    }

    /// Decodes one Avro body (no framing). Never panics; the whole body must be one record.
    pub fn decode(&self, body: &[u8]) -> Result<EventRecord, EventError> {
        let mut values = vec![FieldValue::Missing; self.paths.len()];
        let mut input = body;
        if let Err(f) = exec(&self.program, &self.table, &mut input, &mut values, 0) {
            let at = body.len() - f.remaining.min(body.len());
            return Err(self.malformed(format!("{} at byte {at} of {}", f.kind, body.len())));
        }
        if !input.is_empty() {
            return Err(self.malformed(format!(
                "{} trailing bytes after the record (it ends at byte {} of {})",
                input.len(),
                body.len() - input.len(),
                body.len()
            )));
        }
        for &(from, to) in self.copies.iter() {
            if let Some(v) = values.get(from as usize).cloned() {
                put(&mut values, to, v);
            }
        }
        Ok(EventRecord::new(values))
    }

    #[cold]
    fn malformed(&self, what: String) -> EventError {
        match self.schema_id {
            Some(id) => EventError::malformed(format!("avro body does not decode with schema id {id}: {what}")),
            None => EventError::malformed(format!("avro body does not decode: {what}")),
        }
    }
}

fn collect_copies(tree: &PathTree, out: &mut Vec<(u32, u32)>) {
    if let Some((&first, rest)) = tree.slots.split_first() {
        out.extend(rest.iter().map(|&s| (first, s)));
    }
    for (_, child) in &tree.children {
        collect_copies(child, out);
    }
}

// ---------------------------------------------------------------------------------------
// RecordDecoder.

/// Hashes a schema id by one multiplication (ids are small integers chosen by a registry;
/// SipHash would cost more than the rest of the lookup).
#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8 | u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_u32(&mut self, id: u32) {
        self.0 = u64::from(id).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// What a [`RecordDecoder`] knows about one schema id.
#[derive(Debug)]
enum Verdict {
    Read(PathDecoder),
    /// Another subject's id, or a writer the paths cannot be read from.
    Refused(EventError),
}

/// Decodes framed events of one subject into [`EventRecord`]s of a fixed list of paths,
/// whatever registered writer schema of the subject produced them.
///
/// Every registered version of the subject is compiled when the decoder is built (so a
/// bad path is a start-up error); an id first seen later (a producer registered a new
/// version) is looked up and compiled on first sight, then cached. Usable from many
/// threads at once (`&self`; the cache is behind a read-mostly lock).
pub struct RecordDecoder {
    registry: Arc<dyn SchemaRegistry>,
    subject: String,
    paths: Vec<String>,
    cache: RwLock<HashMap<u32, Verdict, BuildHasherDefault<IdHasher>>>,
}

impl fmt::Debug for RecordDecoder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecordDecoder").field("subject", &self.subject).field("paths", &self.paths).finish()
    }
}

impl RecordDecoder {
    /// Compiles `paths` for every registered schema of `subject`.
    ///
    /// Errors (configuration; stop): a malformed path, a path the latest schema cannot
    /// read (through a scalar, naming a record/array/map), a path no registered version
    /// has (a typo: it would be `Missing` in every event), no schema for `subject`. An
    /// older version that cannot read a path is not an error here: its events are
    /// refused as `UnknownSchema`.
    pub fn new<S: AsRef<str>>(
        registry: Arc<dyn SchemaRegistry>,
        subject: &str,
        paths: &[S],
    ) -> Result<RecordDecoder, PathError> {
        let paths: Vec<String> = paths.iter().map(|p| p.as_ref().to_string()).collect();
        let mut versions = registry.versions(subject);
        versions.sort_by_key(|s| s.id);
        let Some(latest) = versions.last().cloned() else {
            return Err(PathError::Subject {
                subject: subject.to_string(),
                message: "no schema is registered for it".into(),
            });
        };
        let mut cache = HashMap::default();
        let mut found = vec![false; paths.len()];
        for writer in &versions {
            let verdict = match PathDecoder::new(writer, &paths) {
                Ok(decoder) => {
                    for (i, f) in found.iter_mut().enumerate() {
                        *f |= decoder.has_path(i);
                    }
                    Verdict::Read(decoder)
                }
                Err(e) if writer.id == latest.id => return Err(e),
                Err(e) => Verdict::Refused(refusal(writer.id, subject, &e)),
            };
            cache.insert(writer.id, verdict);
        }
        if let Some(i) = found.iter().position(|f| !f) {
            let ids: Vec<String> = versions.iter().map(|s| s.id.to_string()).collect();
            return Err(PathError::Path {
                path: paths[i].clone(),
                schema_id: None,
                message: format!(
                    "no registered schema of subject {subject} (ids {}) has this field: it would be missing from every event",
                    ids.join(", ")
                ),
            });
        }
        Ok(RecordDecoder { registry, subject: subject.to_string(), paths, cache: RwLock::new(cache) })
    }

    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// The paths, in the order of [`EventRecord::values`].
    pub fn paths(&self) -> &[String] {
        &self.paths
    }

    /// Decodes one framed value (Confluent header + Avro body). Never panics.
    pub fn decode(&self, framed: &[u8]) -> Result<EventRecord, EventError> {
        let (id, body) = unframe(framed)?;
        {
            let cache = self.cache.read().unwrap_or_else(PoisonError::into_inner);
            if let Some(verdict) = cache.get(&id) {
                return verdict.decode(body);
            }
        }
        self.learn(id, body)
    }

    /// First sight of `id`: ask the registry, compile, remember, decode.
    #[cold]
    fn learn(&self, id: u32, body: &[u8]) -> Result<EventRecord, EventError> {
        // An unregistered id is not remembered: the registry may learn it later.
        let writer = self.registry.by_id(id)?;
        let verdict = if writer.subject != self.subject {
            Verdict::Refused(EventError::unknown_schema(format!(
                "schema id {id} belongs to subject {}, expected {}",
                writer.subject, self.subject
            )))
        } else {
            match PathDecoder::new(&writer, &self.paths) {
                Ok(decoder) => Verdict::Read(decoder),
                Err(e) => Verdict::Refused(refusal(id, &self.subject, &e)),
            }
        };
        let mut cache = self.cache.write().unwrap_or_else(PoisonError::into_inner);
        let foreign = cache.values().filter(|v| matches!(v, Verdict::Refused(_))).count();
        if writer.subject != self.subject && foreign >= MAX_FOREIGN_IDS && !cache.contains_key(&id) {
            return verdict.decode(body);
        }
        cache.entry(id).or_insert(verdict).decode(body)
    }
}

fn refusal(id: u32, subject: &str, e: &PathError) -> EventError {
    EventError::unknown_schema(format!("schema id {id} of subject {subject} cannot be read with the field paths: {e}"))
}

impl Verdict {
    #[inline]
    fn decode(&self, body: &[u8]) -> Result<EventRecord, EventError> {
        match self {
            Verdict::Read(decoder) => decoder.decode(body),
            Verdict::Refused(e) => Err(e.clone()),
        }
    }
}
