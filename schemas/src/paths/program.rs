//! The decoding program: its ops, and the interpreter that runs them over an Avro body.
//! Nothing here knows about paths or schemas; the compiler makes the ops.

use std::fmt;

use crate::record::FieldValue;

/// Nesting of named-type calls while decoding (recursive types). The same limit as
/// `serde_avro_fast`'s default, so both decoders refuse the same depth bombs.
const MAX_DEPTH: u32 = 64;

/// One step of a decoding program. Skips consume bytes; reads also fill slot `.0`.
#[derive(Debug, Clone)]
pub(super) enum Op {
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
    /// The skip program of a record type at this index of [`PathDecoder`](super::PathDecoder)'s table.
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
pub(super) struct Fault {
    pub(super) kind: FaultKind,
    pub(super) remaining: usize,
}

#[derive(Debug, Clone, Copy)]
pub(super) enum FaultKind {
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
pub(super) fn put(out: &mut [FieldValue], slot: u32, value: FieldValue) {
    if let Some(v) = out.get_mut(slot as usize) {
        *v = value;
    }
}

/// Runs `ops` over `input`, filling `out`. `depth` counts [`Op::Call`]s only: every other
/// nesting is bounded by the (finite) program itself.
pub(super) fn exec(
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
