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

#[inline(always)]
fn take_array<const N: usize>(input: &mut &[u8]) -> Result<[u8; N], Fault> {
    match input.split_first_chunk::<N>() {
        Some((head, tail)) => {
            *input = tail;
            Ok(*head)
        }
        None => Err(fault(FaultKind::Truncated { need: (N - input.len()) as u64 }, input)),
    }
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
                let b = match take_array::<1>(input)? {
                    [0] => false,
                    [1] => true,
                    [other] => return Err(fault(FaultKind::Bool(other), input)),
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
                let v = f32::from_le_bytes(take_array(input)?);
                put(out, *slot, FieldValue::Float(f64::from(v)));
            }
            Op::Double(slot) => {
                let v = f64::from_le_bytes(take_array(input)?);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorClass;
    use crate::events::Transaction;
    use crate::wire::{subjects, write_header, Decoder, Encoder, LocalSchemaRegistry};
    use apache_avro::types::Value;
    use proptest::prelude::*;
    use std::collections::HashMap as StdHashMap;

    fn registry() -> Arc<dyn SchemaRegistry> {
        Arc::new(LocalSchemaRegistry::embedded().expect("embedded registry parses"))
    }

    fn s(v: &str) -> FieldValue {
        FieldValue::Str(v.to_string())
    }

    /// Every Avro type: primitives, named types, containers, unions, logical types, a
    /// recursive record; `tail` comes last so that any skip that is off by a byte shows.
    const ALL_TYPES: &str = r#"{"type": "record", "name": "All", "namespace": "t", "fields": [
        {"name": "n", "type": "null"},
        {"name": "b", "type": "boolean"},
        {"name": "i", "type": "int"},
        {"name": "l", "type": "long"},
        {"name": "f", "type": "float"},
        {"name": "d", "type": "double"},
        {"name": "by", "type": "bytes"},
        {"name": "s", "type": "string"},
        {"name": "e", "type": {"type": "enum", "name": "Color", "symbols": ["red", "green", "blue"]}},
        {"name": "fx", "type": {"type": "fixed", "name": "Three", "size": 3}},
        {"name": "arr", "type": {"type": "array", "items": "long"}},
        {"name": "arr_rec", "type": {"type": "array", "items": {"type": "record", "name": "Pair", "fields": [
            {"name": "k", "type": "string"}, {"name": "v", "type": "double"}]}}},
        {"name": "arr_arr", "type": {"type": "array", "items": {"type": "array", "items": "string"}}},
        {"name": "arr_null", "type": {"type": "array", "items": "null"}},
        {"name": "m", "type": {"type": "map", "values": "int"}},
        {"name": "m_rec", "type": {"type": "map", "values": "Pair"}},
        {"name": "u", "type": ["null", "string", "long", "Pair"]},
        {"name": "u2", "type": ["null", "string", "long", "double", "boolean", "bytes", "Color", "Three", "float", "int"]},
        {"name": "opt_l", "type": ["null", "long"]},
        {"name": "opt_rec", "type": ["null", {"type": "record", "name": "Inner", "fields": [
            {"name": "x", "type": "long"},
            {"name": "y", "type": "string"},
            {"name": "deep", "type": ["null", {"type": "record", "name": "Deep", "fields": [{"name": "z", "type": "int"}]}]}]}]},
        {"name": "rec", "type": "Inner"},
        {"name": "date", "type": {"type": "int", "logicalType": "date"}},
        {"name": "tmillis", "type": {"type": "int", "logicalType": "time-millis"}},
        {"name": "tmicros", "type": {"type": "long", "logicalType": "time-micros"}},
        {"name": "ts_ms", "type": {"type": "long", "logicalType": "timestamp-millis"}},
        {"name": "ts_us", "type": {"type": "long", "logicalType": "timestamp-micros"}},
        {"name": "dec_b", "type": {"type": "bytes", "logicalType": "decimal", "precision": 9, "scale": 2}},
        {"name": "dec_f", "type": {"type": "fixed", "name": "Dec", "size": 4, "logicalType": "decimal", "precision": 8, "scale": 2}},
        {"name": "uuid", "type": {"type": "string", "logicalType": "uuid"}},
        {"name": "dur", "type": {"type": "fixed", "name": "Dur", "size": 12, "logicalType": "duration"}},
        {"name": "tree", "type": {"type": "record", "name": "Node", "fields": [
            {"name": "value", "type": "long"},
            {"name": "children", "type": {"type": "array", "items": "Node"}},
            {"name": "next", "type": ["null", "Node"]}]}},
        {"name": "tail", "type": "long"}
    ]}"#;

    /// Every scalar path of [`ALL_TYPES`].
    const ALL_PATHS: &[&str] = &[
        "n", "b", "i", "l", "f", "d", "by", "s", "e", "fx", "u2", "opt_l", "opt_rec.x", "opt_rec.y",
        "opt_rec.deep.z", "rec.x", "rec.y", "rec.deep.z", "date", "tmillis", "tmicros", "ts_ms", "ts_us",
        "dec_b", "dec_f", "uuid", "dur", "tree.value", "tree.next.value", "tree.next.next.value", "tail",
    ];

    /// [`ALL_TYPES`] without logical types, for apache-avro's writer: the same bytes on the
    /// wire, and apache-avro's writer then takes plain values (it reads a `uuid` on a fixed
    /// as length-prefixed, which is why the decoder walks `serde_avro_fast`'s schema).
    fn plain_schema(avsc: &str) -> apache_avro::Schema {
        fn strip(v: &mut serde_json::Value) {
            match v {
                serde_json::Value::Object(o) => {
                    o.remove("logicalType");
                    o.values_mut().for_each(strip);
                }
                serde_json::Value::Array(a) => a.iter_mut().for_each(strip),
                _ => {}
            }
        }
        let mut json: serde_json::Value = serde_json::from_str(avsc).unwrap();
        strip(&mut json);
        apache_avro::Schema::parse(&json).unwrap()
    }

    fn rec(fields: Vec<(&str, Value)>) -> Value {
        Value::Record(fields.into_iter().map(|(n, v)| (n.to_string(), v)).collect())
    }

    fn node(value: i64, children: Vec<Value>, next: Option<Value>) -> Value {
        rec(vec![
            ("value", Value::Long(value)),
            ("children", Value::Array(children)),
            ("next", match next {
                None => Value::Union(0, Box::new(Value::Null)),
                Some(n) => Value::Union(1, Box::new(n)),
            }),
        ])
    }

    fn pair(k: &str, v: f64) -> Value {
        rec(vec![("k", Value::String(k.into())), ("v", Value::Double(v))])
    }

    fn inner(x: i64, y: &str, z: Option<i32>) -> Value {
        let deep = match z {
            None => Value::Union(0, Box::new(Value::Null)),
            Some(z) => Value::Union(1, Box::new(rec(vec![("z", Value::Int(z))]))),
        };
        rec(vec![("x", Value::Long(x)), ("y", Value::String(y.into())), ("deep", deep)])
    }

    const UUID: &str = "123e4567-e89b-12d3-a456-426614174000";

    /// A full value of [`ALL_TYPES`] and the expected value of each of [`ALL_PATHS`].
    fn rich() -> (Value, Vec<FieldValue>) {
        let value = rec(vec![
            ("n", Value::Null),
            ("b", Value::Boolean(true)),
            ("i", Value::Int(-123_456)),
            ("l", Value::Long(i64::MIN)),
            ("f", Value::Float(1.5)),
            ("d", Value::Double(-2.25e300)),
            ("by", Value::Bytes(vec![0, 255, 7])),
            ("s", Value::String("héllo".into())),
            ("e", Value::Enum(1, "green".into())),
            ("fx", Value::Fixed(3, vec![1, 2, 3])),
            ("arr", Value::Array(vec![Value::Long(1), Value::Long(-1), Value::Long(i64::MAX)])),
            ("arr_rec", Value::Array(vec![pair("a", 1.0), pair("b", 2.0)])),
            (
                "arr_arr",
                Value::Array(vec![
                    Value::Array(vec![Value::String("x".into())]),
                    Value::Array(vec![]),
                    Value::Array(vec![Value::String("y".into()), Value::String("zz".into())]),
                ]),
            ),
            ("arr_null", Value::Array(vec![Value::Null, Value::Null, Value::Null])),
            ("m", Value::Map(StdHashMap::from([("a".into(), Value::Int(1)), ("b".into(), Value::Int(-2))]))),
            ("m_rec", Value::Map(StdHashMap::from([("p".into(), pair("q", 0.5))]))),
            ("u", Value::Union(3, Box::new(pair("in-union", 3.0)))),
            ("u2", Value::Union(6, Box::new(Value::Enum(2, "blue".into())))),
            ("opt_l", Value::Union(1, Box::new(Value::Long(42)))),
            ("opt_rec", Value::Union(1, Box::new(inner(7, "why", Some(-9))))),
            ("rec", inner(8, "", None)),
            ("date", Value::Int(19_000)),
            ("tmillis", Value::Int(3_600_000)),
            ("tmicros", Value::Long(5)),
            ("ts_ms", Value::Long(1_767_225_600_123)),
            ("ts_us", Value::Long(1_767_225_600_123_456)),
            ("dec_b", Value::Bytes(vec![0x01, 0x02])),
            ("dec_f", Value::Fixed(4, vec![0, 0, 1, 0])),
            ("uuid", Value::String(UUID.into())),
            ("dur", Value::Fixed(12, (1..=12).collect())),
            (
                "tree",
                node(
                    1,
                    vec![node(2, vec![], None), node(3, vec![node(4, vec![], None)], None)],
                    Some(node(5, vec![], Some(node(6, vec![], None)))),
                ),
            ),
            ("tail", Value::Long(99)),
        ]);
        let expected = vec![
            FieldValue::Null,
            FieldValue::Bool(true),
            FieldValue::Int(-123_456),
            FieldValue::Int(i64::MIN),
            FieldValue::Float(1.5),
            FieldValue::Float(-2.25e300),
            FieldValue::Bytes(vec![0, 255, 7]),
            s("héllo"),
            s("green"),
            FieldValue::Bytes(vec![1, 2, 3]),
            s("blue"),
            FieldValue::Int(42),
            FieldValue::Int(7),
            s("why"),
            FieldValue::Int(-9),
            FieldValue::Int(8),
            s(""),
            FieldValue::Missing,
            FieldValue::Int(19_000),
            FieldValue::Int(3_600_000),
            FieldValue::Int(5),
            FieldValue::Int(1_767_225_600_123),
            FieldValue::Int(1_767_225_600_123_456),
            FieldValue::Bytes(vec![1, 2]),
            FieldValue::Bytes(vec![0, 0, 1, 0]),
            s(UUID),
            FieldValue::Bytes((1..=12).collect()),
            FieldValue::Int(1),
            FieldValue::Int(5),
            FieldValue::Int(6),
            FieldValue::Int(99),
        ];
        (value, expected)
    }

    /// The same schema with nulls, empties and extremes.
    fn sparse() -> (Value, Vec<FieldValue>) {
        let null = || Value::Union(0, Box::new(Value::Null));
        let value = rec(vec![
            ("n", Value::Null),
            ("b", Value::Boolean(false)),
            ("i", Value::Int(i32::MIN)),
            ("l", Value::Long(0)),
            ("f", Value::Float(f32::MAX)),
            ("d", Value::Double(f64::INFINITY)),
            ("by", Value::Bytes(vec![])),
            ("s", Value::String(String::new())),
            ("e", Value::Enum(0, "red".into())),
            ("fx", Value::Fixed(3, vec![0, 0, 0])),
            ("arr", Value::Array(vec![])),
            ("arr_rec", Value::Array(vec![])),
            ("arr_arr", Value::Array(vec![])),
            ("arr_null", Value::Array(vec![])),
            ("m", Value::Map(StdHashMap::new())),
            ("m_rec", Value::Map(StdHashMap::new())),
            ("u", null()),
            ("u2", null()),
            ("opt_l", null()),
            ("opt_rec", null()),
            ("rec", inner(i64::MAX, "r", Some(i32::MAX))),
            ("date", Value::Int(0)),
            ("tmillis", Value::Int(0)),
            ("tmicros", Value::Long(-1)),
            ("ts_ms", Value::Long(i64::MAX)),
            ("ts_us", Value::Long(i64::MIN)),
            ("dec_b", Value::Bytes(vec![])),
            ("dec_f", Value::Fixed(4, vec![255; 4])),
            ("uuid", Value::String(UUID.into())),
            ("dur", Value::Fixed(12, vec![0; 12])),
            ("tree", node(0, vec![], None)),
            ("tail", Value::Long(-1)),
        ]);
        let m = FieldValue::Missing;
        let expected = vec![
            FieldValue::Null,
            FieldValue::Bool(false),
            FieldValue::Int(i64::from(i32::MIN)),
            FieldValue::Int(0),
            FieldValue::Float(f64::from(f32::MAX)),
            FieldValue::Float(f64::INFINITY),
            FieldValue::Bytes(vec![]),
            s(""),
            s("red"),
            FieldValue::Bytes(vec![0, 0, 0]),
            FieldValue::Null,
            FieldValue::Null,
            m.clone(),
            m.clone(),
            m.clone(),
            FieldValue::Int(i64::MAX),
            s("r"),
            FieldValue::Int(i64::from(i32::MAX)),
            FieldValue::Int(0),
            FieldValue::Int(0),
            FieldValue::Int(-1),
            FieldValue::Int(i64::MAX),
            FieldValue::Int(i64::MIN),
            FieldValue::Bytes(vec![]),
            FieldValue::Bytes(vec![255; 4]),
            s(UUID),
            FieldValue::Bytes(vec![0; 12]),
            FieldValue::Int(0),
            m.clone(),
            m,
            FieldValue::Int(-1),
        ];
        (value, expected)
    }

    fn encode(avsc: &str, value: Value) -> Vec<u8> {
        apache_avro::to_avro_datum(&plain_schema(avsc), value).expect("test value matches its schema")
    }

    fn set_field(value: &mut Value, name: &str, to: Value) {
        let Value::Record(fields) = value else { panic!("not a record") };
        fields.iter_mut().find(|(n, _)| n == name).expect("field exists").1 = to;
    }

    #[test]
    fn every_type_is_materialized_and_skipped() {
        for (label, (value, expected)) in [("rich", rich()), ("sparse", sparse())] {
            assert_eq!(expected.len(), ALL_PATHS.len());
            let body = encode(ALL_TYPES, value);
            let all = PathDecoder::from_avsc(ALL_TYPES, ALL_PATHS).unwrap();
            assert_eq!(all.decode(&body).unwrap().values, expected, "{label}: all paths");
            // One path at a time: everything before and after it is skipped.
            for (i, path) in ALL_PATHS.iter().enumerate() {
                let one = PathDecoder::from_avsc(ALL_TYPES, &[path]).unwrap();
                assert_eq!(one.decode(&body).unwrap().values, [expected[i].clone()], "{label}: {path}");
            }
            // Nothing requested: the whole record is skipped, and must end exactly.
            let none = PathDecoder::from_avsc::<&str>(ALL_TYPES, &[]).unwrap();
            assert_eq!(none.decode(&body).unwrap().values, []);
            // In reverse order, with a duplicate: slots follow the list, not the schema.
            let mut rev: Vec<&str> = ALL_PATHS.iter().rev().copied().collect();
            rev.push("s");
            let dec = PathDecoder::from_avsc(ALL_TYPES, &rev).unwrap();
            let mut want: Vec<FieldValue> = expected.iter().rev().cloned().collect();
            want.push(expected[7].clone());
            assert_eq!(dec.decode(&body).unwrap().values, want, "{label}: reversed");
        }
    }

    #[test]
    fn every_branch_of_a_leaf_union() {
        let branches: Vec<(Value, FieldValue)> = vec![
            (Value::Null, FieldValue::Null),
            (Value::String("x".into()), s("x")),
            (Value::Long(-5), FieldValue::Int(-5)),
            (Value::Double(0.25), FieldValue::Float(0.25)),
            (Value::Boolean(true), FieldValue::Bool(true)),
            (Value::Bytes(vec![9]), FieldValue::Bytes(vec![9])),
            (Value::Enum(0, "red".into()), s("red")),
            (Value::Fixed(3, vec![7, 8, 9]), FieldValue::Bytes(vec![7, 8, 9])),
            (Value::Float(-1.5), FieldValue::Float(-1.5)),
            (Value::Int(77), FieldValue::Int(77)),
        ];
        let dec = PathDecoder::from_avsc(ALL_TYPES, &["u2", "tail"]).unwrap();
        for (i, (branch, want)) in branches.into_iter().enumerate() {
            let (mut value, _) = rich();
            set_field(&mut value, "u2", Value::Union(i as u32, Box::new(branch)));
            let got = dec.decode(&encode(ALL_TYPES, value)).unwrap();
            assert_eq!(got.values, [want, FieldValue::Int(99)], "branch {i}");
        }
    }

    #[test]
    fn presence_per_writer() {
        let dec = PathDecoder::from_avsc(ALL_TYPES, &["tail", "nope", "rec.nope", "opt_rec.x"]).unwrap();
        assert_eq!((0..5).map(|i| dec.has_path(i)).collect::<Vec<_>>(), [true, false, false, true, false]);
        assert_eq!(dec.schema_id(), None);
        assert_eq!(dec.paths(), ["tail", "nope", "rec.nope", "opt_rec.x"]);
        let (value, _) = rich();
        let got = dec.decode(&encode(ALL_TYPES, value)).unwrap();
        assert_eq!(got.values, [FieldValue::Int(99), FieldValue::Missing, FieldValue::Missing, FieldValue::Int(7)]);
    }

    /// Writers may send array and map blocks with a negative count followed by the block's
    /// byte size (the Avro spec's fast-skip form); apache-avro's reader checks the bytes.
    #[test]
    fn negative_block_counts_are_skipped_by_size() {
        const AVSC: &str = r#"{"type": "record", "name": "B", "fields": [
            {"name": "arr", "type": {"type": "array", "items": "long"}},
            {"name": "m", "type": {"type": "map", "values": "string"}},
            {"name": "tail", "type": "long"}]}"#;
        let body = [
            0x03, 0x04, 0x02, 0x01, // arr: count -2, 2 bytes: 1, -1
            0x02, 0xd8, 0x04, // count 1: 300
            0x00, // end of arr
            0x01, 0x0a, 0x02, b'a', 0x04, b'b', b'c', // m: count -1, 5 bytes: "a" -> "bc"
            0x02, 0x02, b'd', 0x00, // count 1: "d" -> ""
            0x00, // end of m
            0x0e, // tail 7
        ];
        let schema = apache_avro::Schema::parse_str(AVSC).unwrap();
        let check = apache_avro::from_avro_datum(&schema, &mut &body[..], None).unwrap();
        let Value::Record(fields) = check else { panic!() };
        assert_eq!(fields[0].1, Value::Array(vec![Value::Long(1), Value::Long(-1), Value::Long(300)]));
        assert_eq!(fields[2].1, Value::Long(7));
        let dec = PathDecoder::from_avsc(AVSC, &["tail"]).unwrap();
        assert_eq!(dec.decode(&body).unwrap().values, [FieldValue::Int(7)]);
        // A block size past the end, or negative, is malformed.
        for (bad, what) in [(&[0x03, 0x40, 0x02][..], "truncated"), (&[0x03, 0x03, 0x02][..], "negative")] {
            let err = dec.decode(bad).unwrap_err();
            assert_eq!(err.class, ErrorClass::Malformed);
            assert!(err.message.contains(what), "{}", err.message);
        }
    }

    #[test]
    fn interaction_nested_paths() {
        let reg = registry();
        let writer = reg.by_id(8).unwrap();
        let paths = [
            "event_id", "user.id", "user.country", "user.segment", "item.id", "item.category", "item.price",
            "action", "dwell_ms", "device", "event_time",
        ];
        let dec = PathDecoder::new(&writer, &paths).unwrap();
        assert_eq!(dec.schema_id(), Some(8));
        for (dwell, want) in [(None, FieldValue::Null), (Some(1500), FieldValue::Int(1500))] {
            let value = interaction_value(&Interaction {
                event_id: "i-1".into(),
                user: ("u-7".into(), "FR".into(), "loyal".into()),
                item: ("it-3".into(), "books".into(), 12.5),
                action: 2,
                dwell_ms: dwell,
                device: "ios".into(),
                event_time: 1_767_225_600_000,
            });
            let body = apache_avro::to_avro_datum(&writer.canonical, value).unwrap();
            let got = dec.decode(&body).unwrap();
            assert_eq!(
                got.values,
                [
                    s("i-1"),
                    s("u-7"),
                    s("FR"),
                    s("loyal"),
                    s("it-3"),
                    s("books"),
                    FieldValue::Float(12.5),
                    s("add_to_cart"),
                    want,
                    s("ios"),
                    FieldValue::Int(1_767_225_600_000),
                ]
            );
        }
    }

    #[test]
    fn null_record_on_the_path_is_missing_below() {
        let (mut value, _) = rich();
        set_field(&mut value, "opt_rec", Value::Union(1, Box::new(inner(1, "a", None))));
        let dec = PathDecoder::from_avsc(ALL_TYPES, &["opt_rec.deep.z", "opt_rec.y", "tail"]).unwrap();
        let got = dec.decode(&encode(ALL_TYPES, value.clone())).unwrap();
        assert_eq!(got.values, [FieldValue::Missing, s("a"), FieldValue::Int(99)]);
        set_field(&mut value, "opt_rec", Value::Union(0, Box::new(Value::Null)));
        let got = dec.decode(&encode(ALL_TYPES, value)).unwrap();
        assert_eq!(got.values, [FieldValue::Missing, FieldValue::Missing, FieldValue::Int(99)]);
    }

    #[test]
    fn older_writer_lacks_the_field() {
        let reg = registry();
        let t = tx();
        let paths = ["ip_country", "mcc", "amount"];
        let v1 = PathDecoder::new(&reg.by_id(1).unwrap(), &paths).unwrap();
        let v2 = PathDecoder::new(&reg.by_id(6).unwrap(), &paths).unwrap();
        assert!(!v1.has_path(0) && !v1.has_path(1) && v1.has_path(2));
        assert!(v2.has_path(0) && v2.has_path(1));
        let body1 = &Encoder::for_schema(reg.by_id(1).unwrap()).encode(&t).unwrap()[5..];
        assert_eq!(v1.decode(body1).unwrap().values, [FieldValue::Missing, FieldValue::Missing, FieldValue::Float(t.amount)]);
        let body2 = &Encoder::for_schema(reg.by_id(6).unwrap()).encode(&t).unwrap()[5..];
        assert_eq!(v2.decode(body2).unwrap().values, [FieldValue::Null, FieldValue::Null, FieldValue::Float(t.amount)]);
    }

    #[test]
    fn bad_paths_are_refused_at_build() {
        let reg = registry();
        let tx_schema = reg.by_id(6).unwrap();
        let cases: &[(&[&str], &str, &str)] = &[
            (&["amount.x"], "amount.x", "goes through \"amount\", which is double, not a record"),
            (&["card_id.a.b"], "card_id.a.b", "goes through \"card_id\", which is string"),
            (&["mcc.x"], "mcc.x", "a union with a branch that is int"),
            (&[""], "", "empty segment"),
            (&["a..b"], "a..b", "empty segment"),
            (&["amount."], "amount.", "empty segment"),
            (&["1st"], "1st", "not an avro field name"),
            (&["am ount"], "am ount", "not an avro field name"),
            (&["card_id", "card_id.x"], "card_id", "also a prefix of \"card_id.x\""),
        ];
        for (paths, bad, why) in cases {
            let err = PathDecoder::new(&tx_schema, paths).unwrap_err();
            match &err {
                PathError::Path { path, schema_id, message } => {
                    assert_eq!((path.as_str(), *schema_id), (*bad, Some(6)), "{err}");
                    assert!(message.contains(why), "{paths:?}: {err}");
                }
                other => panic!("{paths:?}: expected a path error, got {other:?}"),
            }
            assert!(err.to_string().contains("(schema id 6)"), "{err}");
        }
        let cases: &[(&str, &str)] = &[
            ("rec", "names record t.Inner, not a value: name one of its fields (rec.<field>)"),
            ("opt_rec", "names record t.Inner as a union branch"),
            ("u", "names record t.Pair as a union branch"),
            ("arr", "names an array, which a field path cannot read"),
            ("m", "names a map"),
            ("arr.k", "goes through \"arr\", which is an array, not a record"),
            ("m_rec.p", "goes through \"m_rec\", which is a map"),
            ("u.k", "a union with a branch that is string"),
            ("tree.children", "names an array"),
            ("n.x", "goes through \"n\", which is null"),
        ];
        for (bad, why) in cases {
            let err = PathDecoder::from_avsc(ALL_TYPES, &["tail", bad]).unwrap_err();
            assert!(
                matches!(&err, PathError::Path { path, message, schema_id: None } if path == bad && message.contains(why)),
                "{bad}: {err}"
            );
        }
        for (avsc, why) in [(r#""long""#, "is long, not a record"), ("{", "does not parse"), (r#"["null", "string"]"#, "is a union")] {
            let err = PathDecoder::from_avsc(avsc, &["x"]).unwrap_err();
            assert!(matches!(&err, PathError::Schema { message, .. } if message.contains(why)), "{avsc}: {err}");
        }
    }

    fn malformed(dec: &PathDecoder, body: &[u8], what: &str) {
        match dec.decode(body) {
            Err(e) => {
                assert_eq!(e.class, ErrorClass::Malformed, "{body:?}: {e}");
                assert!(e.message.contains(what), "{body:?}: expected {what:?} in {:?}", e.message);
            }
            Ok(r) => panic!("{body:?} decoded to {r:?}, expected malformed ({what})"),
        }
    }

    #[test]
    fn bad_bodies_are_malformed_with_a_reason() {
        let one = |ty: &str| format!(r#"{{"type": "record", "name": "R", "fields": [{{"name": "v", "type": {ty}}}]}}"#);
        for paths in [&["v"][..], &[][..]] {
            let long = PathDecoder::from_avsc(&one(r#""long""#), paths).unwrap();
            malformed(&long, &[], "truncated inside a varint at byte 0 of 0");
            malformed(&long, &[0x80, 0x80], "truncated inside a varint");
            malformed(&long, &[0xff; 11], "varint longer than 10 bytes");
            malformed(&long, &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02], "over 64 bits");
            malformed(&long, &[0x02, 0x00], "1 trailing bytes after the record (it ends at byte 1 of 2)");
            let string = PathDecoder::from_avsc(&one(r#""string""#), paths).unwrap();
            malformed(&string, &[0x01], "negative length or block size -1");
            malformed(&string, &[0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01], "more bytes needed");
            malformed(&string, &[0x06, b'a'], "truncated: 2 more bytes needed at byte 1 of 2");
            let union = PathDecoder::from_avsc(&one(r#"["null", "long"]"#), paths).unwrap();
            malformed(&union, &[0x04], "union branch index 2 is not in 0..2");
            malformed(&union, &[0x01], "union branch index -1");
            let double = PathDecoder::from_avsc(&one(r#""double""#), paths).unwrap();
            malformed(&double, &[0; 7], "truncated: 1 more bytes needed");
        }
        let arr = PathDecoder::from_avsc(&one(r#"{"type": "array", "items": "string"}"#), &[] as &[&str]).unwrap();
        // A count of 2^62 items that are not there: stops at the end of the input.
        malformed(&arr, &[0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01], "truncated inside a varint");
        malformed(&arr, &[0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01, 0x02, b'a'], "at byte 12 of 12");
        // Materialized only: the decoder checks what it builds values from.
        let enum_ = PathDecoder::from_avsc(&one(r#"{"type": "enum", "name": "E", "symbols": ["a", "b", "c"]}"#), &["v"]).unwrap();
        malformed(&enum_, &[0x06], "enum index 3 is not in 0..3");
        malformed(&enum_, &[0x01], "enum index -1");
        let boolean = PathDecoder::from_avsc(&one(r#""boolean""#), &["v"]).unwrap();
        malformed(&boolean, &[0x02], "boolean byte 0x02 is neither 0 nor 1");
        let int = PathDecoder::from_avsc(&one(r#""int""#), &["v"]).unwrap();
        malformed(&int, &[0x80, 0x80, 0x80, 0x80, 0x10], "int value 2147483648 does not fit 32 bits");
        let string = PathDecoder::from_avsc(&one(r#""string""#), &["v"]).unwrap();
        malformed(&string, &[0x04, 0xc3, 0x28], "not valid utf-8");
        // Null items cost no bytes: any count is skipped at once.
        let nulls = PathDecoder::from_avsc(&one(r#"{"type": "array", "items": "null"}"#), &[] as &[&str]).unwrap();
        assert!(nulls.decode(&[0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0x00]).is_ok());
        // A registered schema's id is named.
        let reg = registry();
        let dec = PathDecoder::new(&reg.by_id(1).unwrap(), &["amount"]).unwrap();
        malformed(&dec, &[0x02], "avro body does not decode with schema id 1: truncated");
    }

    /// A chain of `next` records `n` deep, then `tail`.
    fn chain(n: usize) -> Vec<u8> {
        let mut body = Vec::new();
        for _ in 0..n {
            body.extend_from_slice(&[0x00, 0x00, 0x02]); // value 0, no children, next: branch 1
        }
        body.extend_from_slice(&[0x00, 0x00, 0x00]); // the last node: next is null
        body
    }

    #[test]
    fn recursion_is_depth_limited() {
        const AVSC: &str = r#"{"type": "record", "name": "Node", "fields": [
            {"name": "value", "type": "long"},
            {"name": "children", "type": {"type": "array", "items": "Node"}},
            {"name": "next", "type": ["null", "Node"]}]}"#;
        for paths in [&[][..], &["value", "next.value", "next.next.next.value"][..]] {
            let dec = PathDecoder::from_avsc(AVSC, paths).unwrap();
            assert!(dec.decode(&chain(60)).is_ok(), "{paths:?}");
            malformed(&dec, &chain(200), "nesting of recursive types deeper than 64");
        }
        let dec = PathDecoder::from_avsc(AVSC, &["next.next.value", "next.next.next.next.value"]).unwrap();
        assert_eq!(dec.decode(&chain(2)).unwrap().values, [FieldValue::Int(0), FieldValue::Missing]);
    }

    #[test]
    fn every_truncation_is_malformed() {
        let (value, _) = rich();
        let body = encode(ALL_TYPES, value);
        for paths in [ALL_PATHS, &["tail"][..], &[][..]] {
            let dec = PathDecoder::from_avsc(ALL_TYPES, paths).unwrap();
            assert!(dec.decode(&body).is_ok());
            for cut in 0..body.len() {
                let err = dec.decode(&body[..cut]).unwrap_err();
                assert_eq!(err.class, ErrorClass::Malformed, "cut {cut}: {err}");
            }
        }
    }

    // ---- RecordDecoder ----

    fn tx() -> Transaction {
        Transaction::sample()
    }

    const TX_PATHS: [&str; 12] = [
        "event_id", "card_id", "merchant_id", "device_id", "amount", "currency", "country", "channel",
        "customer_segment", "event_time", "ip_country", "mcc",
    ];

    fn tx_values(t: &Transaction) -> Vec<FieldValue> {
        vec![
            s(&t.event_id),
            s(&t.card_id),
            s(&t.merchant_id),
            s(&t.device_id),
            FieldValue::Float(t.amount),
            s(&t.currency),
            s(&t.country),
            s(&t.channel),
            s(&t.customer_segment),
            FieldValue::Int(t.event_time),
        ]
    }

    #[test]
    fn record_decoder_reads_v1_and_v2_with_the_same_paths() {
        let reg = registry();
        let dec = RecordDecoder::new(reg.clone(), subjects::TRANSACTION, &TX_PATHS).unwrap();
        assert_eq!((dec.subject(), dec.paths().len()), ("transaction", 12));
        let t = tx();
        let v1 = Encoder::for_schema(reg.by_id(1).unwrap()).encode(&t).unwrap();
        let mut want = tx_values(&t);
        want.extend([FieldValue::Missing, FieldValue::Missing]);
        assert_eq!(dec.decode(&v1).unwrap().values, want);
        let v2 = Encoder::for_schema(reg.by_id(6).unwrap()).encode(&t).unwrap();
        want[10..].clone_from_slice(&[FieldValue::Null, FieldValue::Null]);
        assert_eq!(dec.decode(&v2).unwrap().values, want);
        // v2 with the optional fields set, written by apache-avro.
        let body = apache_avro::to_avro_datum(&reg.by_id(6).unwrap().canonical, tx_v2_value(&t, Some("DE"), Some(5411))).unwrap();
        let mut framed = Vec::new();
        write_header(&mut framed, 6);
        framed.extend_from_slice(&body);
        want[10..].clone_from_slice(&[s("DE"), FieldValue::Int(5411)]);
        assert_eq!(dec.decode(&framed).unwrap().values, want);
    }

    #[test]
    fn record_decoder_refuses_other_ids_and_bad_frames() {
        let reg = registry();
        let dec = RecordDecoder::new(reg.clone(), subjects::TRANSACTION, &["amount"]).unwrap();
        let label = crate::events::Label { event_id: "e".into(), card_id: "c".into(), is_fraud: true, event_time: 1, label_time: 2 };
        let bytes = Encoder::new(reg.as_ref(), subjects::LABEL).unwrap().encode(&label).unwrap();
        for _ in 0..2 {
            // The second time from the cache: same answer.
            let err = dec.decode(&bytes).unwrap_err();
            assert_eq!(err.class, ErrorClass::UnknownSchema);
            assert!(err.message.contains("schema id 2 belongs to subject label, expected transaction"), "{}", err.message);
        }
        for id in [0u32, 9, u32::MAX] {
            let mut framed = Vec::new();
            write_header(&mut framed, id);
            framed.push(0);
            let err = dec.decode(&framed).unwrap_err();
            assert_eq!(err.class, ErrorClass::UnknownSchema, "{id}");
            assert!(err.message.contains(&format!("schema id {id}")), "{}", err.message);
        }
        for short in [&[][..], &[0, 0, 0, 1][..]] {
            assert_eq!(dec.decode(short).unwrap_err().class, ErrorClass::Malformed);
        }
        let err = dec.decode(&[1, 0, 0, 0, 1, 0]).unwrap_err();
        assert!(err.class == ErrorClass::Malformed && err.message.contains("magic byte is 0x01"), "{err}");
        let v1 = Encoder::for_schema(reg.by_id(1).unwrap()).encode(&tx()).unwrap();
        for cut in 5..v1.len() {
            let err = dec.decode(&v1[..cut]).unwrap_err();
            assert_eq!(err.class, ErrorClass::Malformed, "cut {cut}");
            assert!(err.message.contains("schema id 1"), "{}", err.message);
        }
    }

    #[test]
    fn record_decoder_construction_errors() {
        let reg = registry();
        let err = RecordDecoder::new(reg.clone(), subjects::TRANSACTION, &["amout"]).unwrap_err();
        assert!(
            matches!(&err, PathError::Path { path, message, .. } if path == "amout" && message.contains("no registered schema of subject transaction (ids 1, 6)")),
            "{err}"
        );
        let err = RecordDecoder::new(reg.clone(), subjects::TRANSACTION, &["amount.x"]).unwrap_err();
        assert!(matches!(&err, PathError::Path { schema_id: Some(6), .. }), "{err}");
        let err = RecordDecoder::new(reg.clone(), "nope", &["amount"]).unwrap_err();
        assert_eq!(err, PathError::Subject { subject: "nope".into(), message: "no schema is registered for it".into() });
        assert_eq!(err.to_string(), "subject nope: no schema is registered for it");
        // A path only the newer version has is fine.
        RecordDecoder::new(reg, subjects::TRANSACTION, &["mcc"]).unwrap();
    }

    /// Serves every schema of the embedded registry but lists only `listed` as versions,
    /// like a registry that learns of a new producer's schema after start-up.
    struct LateRegistry {
        inner: LocalSchemaRegistry,
        listed: Vec<u32>,
        lookups: std::sync::atomic::AtomicUsize,
    }

    impl SchemaRegistry for LateRegistry {
        fn by_id(&self, id: u32) -> Result<Arc<RegisteredSchema>, EventError> {
            self.lookups.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            self.inner.by_id(id)
        }
        fn latest(&self, subject: &str) -> crate::error::Result<Arc<RegisteredSchema>> {
            self.inner.latest(subject)
        }
        fn versions(&self, subject: &str) -> Vec<Arc<RegisteredSchema>> {
            self.inner.versions(subject).into_iter().filter(|s| self.listed.contains(&s.id)).collect()
        }
    }

    #[test]
    fn record_decoder_compiles_a_new_id_on_first_sight_from_many_threads() {
        let late = Arc::new(LateRegistry {
            inner: LocalSchemaRegistry::embedded().unwrap(),
            listed: vec![1],
            lookups: Default::default(),
        });
        let dec = RecordDecoder::new(late.clone(), subjects::TRANSACTION, &TX_PATHS[..10]).unwrap();
        let t = tx();
        let v1 = Encoder::for_schema(late.inner.by_id(1).unwrap()).encode(&t).unwrap();
        let v2 = Encoder::for_schema(late.inner.by_id(6).unwrap()).encode(&t).unwrap();
        std::thread::scope(|scope| {
            for k in 0..4 {
                let (dec, v1, v2, t) = (&dec, &v1, &v2, &t);
                scope.spawn(move || {
                    for i in 0..200 {
                        let bytes = if (i + k) % 2 == 0 { v1 } else { v2 };
                        assert_eq!(dec.decode(bytes).unwrap().values, tx_values(t));
                    }
                });
            }
        });
        let lookups = late.lookups.load(std::sync::atomic::Ordering::Relaxed);
        assert!((1..=4).contains(&lookups), "id 6 looked up {lookups} times, then cached");
        fn shareable<T: Send + Sync>() {}
        shareable::<RecordDecoder>();
        shareable::<PathDecoder>();
    }

    #[test]
    fn an_older_version_the_paths_cannot_read_is_refused_per_event() {
        let mut reg = LocalSchemaRegistry::default();
        let old = r#"{"type": "record", "name": "P", "fields": [{"name": "amount", "type": {"type": "record", "name": "M", "fields": [{"name": "units", "type": "long"}]}}]}"#;
        let new = r#"{"type": "record", "name": "P", "fields": [{"name": "amount", "type": "double"}]}"#;
        reg.register(1, "pay", "old.avsc", old.into()).unwrap();
        reg.register(2, "pay", "new.avsc", new.into()).unwrap();
        let reg: Arc<dyn SchemaRegistry> = Arc::new(reg);
        let dec = RecordDecoder::new(reg, "pay", &["amount"]).unwrap();
        let err = dec.decode(&[0, 0, 0, 0, 1, 0x02]).unwrap_err();
        assert_eq!(err.class, ErrorClass::UnknownSchema);
        assert!(err.message.contains("schema id 1 of subject pay cannot be read with the field paths"), "{}", err.message);
        assert!(err.message.contains("names record M"), "{}", err.message);
        let ok = dec.decode(&[0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f]).unwrap();
        assert_eq!(ok.values, [FieldValue::Float(1.0)]);
    }

    // ---- property tests ----

    /// The example interaction, built independently of the decoder.
    #[derive(Debug, Clone)]
    struct Interaction {
        event_id: String,
        user: (String, String, String),
        item: (String, String, f64),
        action: u32,
        dwell_ms: Option<i64>,
        device: String,
        event_time: i64,
    }

    const ACTIONS: [&str; 3] = ["view", "click", "add_to_cart"];

    fn interaction_value(i: &Interaction) -> Value {
        rec(vec![
            ("event_id", Value::String(i.event_id.clone())),
            (
                "user",
                rec(vec![
                    ("id", Value::String(i.user.0.clone())),
                    ("country", Value::String(i.user.1.clone())),
                    ("segment", Value::String(i.user.2.clone())),
                ]),
            ),
            (
                "item",
                rec(vec![
                    ("id", Value::String(i.item.0.clone())),
                    ("category", Value::String(i.item.1.clone())),
                    ("price", Value::Double(i.item.2)),
                ]),
            ),
            ("action", Value::Enum(i.action, ACTIONS[i.action as usize].into())),
            ("dwell_ms", match i.dwell_ms {
                None => Value::Union(0, Box::new(Value::Null)),
                Some(d) => Value::Union(1, Box::new(Value::Long(d))),
            }),
            ("device", Value::String(i.device.clone())),
            ("event_time", Value::TimestampMillis(i.event_time)),
        ])
    }

    fn arb_interaction() -> impl Strategy<Value = Interaction> {
        (
            (any::<String>(), (any::<String>(), any::<String>(), any::<String>())),
            (any::<String>(), any::<String>(), any::<f64>().prop_filter("not nan", |p| !p.is_nan())),
            (0u32..3, proptest::option::of(any::<i64>()), any::<String>(), any::<i64>()),
        )
            .prop_map(|((event_id, user), item, (action, dwell_ms, device, event_time))| Interaction {
                event_id,
                user,
                item,
                action,
                dwell_ms,
                device,
                event_time,
            })
    }

    fn tx_v2_value(t: &Transaction, ip_country: Option<&str>, mcc: Option<i32>) -> Value {
        rec(vec![
            ("event_id", Value::String(t.event_id.clone())),
            ("card_id", Value::String(t.card_id.clone())),
            ("merchant_id", Value::String(t.merchant_id.clone())),
            ("device_id", Value::String(t.device_id.clone())),
            ("amount", Value::Double(t.amount)),
            ("currency", Value::String(t.currency.clone())),
            ("country", Value::String(t.country.clone())),
            ("channel", Value::String(t.channel.clone())),
            ("customer_segment", Value::String(t.customer_segment.clone())),
            ("event_time", Value::TimestampMillis(t.event_time)),
            ("ip_country", match ip_country {
                None => Value::Union(0, Box::new(Value::Null)),
                Some(c) => Value::Union(1, Box::new(Value::String(c.into()))),
            }),
            ("mcc", match mcc {
                None => Value::Union(0, Box::new(Value::Null)),
                Some(m) => Value::Union(1, Box::new(Value::Int(m))),
            }),
        ])
    }

    fn arb_transaction() -> impl Strategy<Value = Transaction> {
        (
            (any::<String>(), any::<String>(), any::<String>(), any::<String>()),
            any::<f64>().prop_filter("not nan", |a| !a.is_nan()),
            (any::<String>(), any::<String>(), any::<String>(), any::<String>()),
            any::<i64>(),
        )
            .prop_map(|((event_id, card_id, merchant_id, device_id), amount, (currency, country, channel, customer_segment), event_time)| {
                Transaction { event_id, card_id, merchant_id, device_id, amount, currency, country, channel, customer_segment, event_time }
            })
    }

    /// The typed struct's fields as the path decoder's values (the typed decoder is the
    /// reference here, not this decoder's own encoding).
    fn typed_values(t: &Transaction) -> Vec<FieldValue> {
        tx_values(t)
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        #[test]
        fn random_bodies_never_panic(body in proptest::collection::vec(any::<u8>(), 0..300), which in 0usize..4) {
            let reg = registry();
            let dec = match which {
                0 => PathDecoder::new(&reg.by_id(1).unwrap(), &TX_PATHS).unwrap(),
                1 => PathDecoder::new(&reg.by_id(6).unwrap(), &TX_PATHS).unwrap(),
                2 => PathDecoder::new(&reg.by_id(8).unwrap(), &["user.id", "item.price", "action", "dwell_ms"]).unwrap(),
                _ => PathDecoder::from_avsc(ALL_TYPES, ALL_PATHS).unwrap(),
            };
            if let Err(e) = dec.decode(&body) {
                prop_assert_eq!(e.class, ErrorClass::Malformed, "{}", e);
            }
        }

        #[test]
        fn random_frames_never_panic(id in prop_oneof![Just(1u32), Just(2), Just(6), Just(8), any::<u32>()], body in proptest::collection::vec(any::<u8>(), 0..200)) {
            let dec = RecordDecoder::new(registry(), subjects::TRANSACTION, &TX_PATHS).unwrap();
            let mut framed = Vec::new();
            write_header(&mut framed, id);
            framed.extend_from_slice(&body);
            let _ = dec.decode(&framed);
            let _ = dec.decode(&body);
        }

        #[test]
        fn mutated_valid_bodies_never_panic(flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4), cut in any::<prop::sample::Index>()) {
            let (value, _) = rich();
            let mut body = encode(ALL_TYPES, value);
            for (at, byte) in flips {
                let i = at.index(body.len());
                body[i] = byte;
            }
            let dec = PathDecoder::from_avsc(ALL_TYPES, ALL_PATHS).unwrap();
            let _ = dec.decode(&body);
            let _ = dec.decode(&body[..cut.index(body.len())]);
        }

        #[test]
        fn paths_equal_the_typed_decoder(t in arb_transaction(), v1_writer in any::<bool>(), cut in any::<prop::sample::Index>()) {
            let reg = registry();
            let writer = reg.by_id(if v1_writer { 1 } else { 6 }).unwrap();
            let bytes = Encoder::for_schema(writer).encode(&t).unwrap();
            let typed = Decoder::<Transaction>::new(reg.clone(), subjects::TRANSACTION, &reg.by_id(1).unwrap())
                .decode(&bytes)
                .unwrap();
            let paths = RecordDecoder::new(reg, subjects::TRANSACTION, &TX_PATHS).unwrap();
            let record = paths.decode(&bytes).unwrap();
            let want = typed_values(&typed);
            for (i, w) in want.iter().enumerate() {
                prop_assert_eq!(record.get(i), w, "path {}", TX_PATHS[i]);
            }
            prop_assert_eq!(record.get(4).as_f64().map(f64::to_bits), Some(typed.amount.to_bits()));
            let optional = if v1_writer { FieldValue::Missing } else { FieldValue::Null };
            prop_assert_eq!(record.get(10), &optional);
            prop_assert_eq!(record.get(11), &optional);
            // And every strict prefix is malformed.
            let cut = HEADER_MIN + cut.index(bytes.len() - HEADER_MIN);
            prop_assert_eq!(paths.decode(&bytes[..cut]).unwrap_err().class, ErrorClass::Malformed);
        }

        #[test]
        fn v2_optional_fields_by_apache_avro(t in arb_transaction(), ip in proptest::option::of(any::<String>()), mcc in proptest::option::of(any::<i32>())) {
            let reg = registry();
            let body = apache_avro::to_avro_datum(&reg.by_id(6).unwrap().canonical, tx_v2_value(&t, ip.as_deref(), mcc)).unwrap();
            let dec = PathDecoder::new(&reg.by_id(6).unwrap(), &TX_PATHS).unwrap();
            let mut want = tx_values(&t);
            want.push(ip.map_or(FieldValue::Null, FieldValue::Str));
            want.push(mcc.map_or(FieldValue::Null, |m| FieldValue::Int(m.into())));
            prop_assert_eq!(dec.decode(&body).unwrap().values, want);
        }

        #[test]
        fn interactions_by_apache_avro(i in arb_interaction()) {
            let reg = registry();
            let writer = reg.by_id(8).unwrap();
            let body = apache_avro::to_avro_datum(&writer.canonical, interaction_value(&i)).unwrap();
            let paths = ["event_time", "item.price", "user.segment", "dwell_ms", "action", "user.id", "item.category", "device", "event_id", "item.id", "user.country"];
            let dec = PathDecoder::new(&writer, &paths).unwrap();
            let want = vec![
                FieldValue::Int(i.event_time),
                FieldValue::Float(i.item.2),
                s(&i.user.2),
                i.dwell_ms.map_or(FieldValue::Null, FieldValue::Int),
                s(ACTIONS[i.action as usize]),
                s(&i.user.0),
                s(&i.item.1),
                s(&i.device),
                s(&i.event_id),
                s(&i.item.0),
                s(&i.user.1),
            ];
            prop_assert_eq!(dec.decode(&body).unwrap().values, want);
            // Through the framed decoder too.
            let mut framed = Vec::new();
            write_header(&mut framed, 8);
            framed.extend_from_slice(&body);
            let rd = RecordDecoder::new(reg, subjects::INTERACTION, &paths).unwrap();
            prop_assert_eq!(rd.decode(&framed).unwrap(), dec.decode(&body).unwrap());
        }
    }

    const HEADER_MIN: usize = crate::wire::HEADER_LEN;
}
