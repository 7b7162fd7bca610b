//! The compiler: one writer schema and the tree of requested paths in, a flat program of
//! [`Op`]s out (skips for what is not asked for, reads into slots for what is).

use std::collections::HashMap;

use serde_avro_fast::schema::{RegularType, SchemaKey, SchemaMut};

use super::program::Op;
use super::tree::PathTree;
use crate::error::PathError;

/// A record's skip program up to this many ops is copied into its user's program; a bigger
/// one (or a recursive one) is called. Keeps programs linear in the schema's size.
const INLINE_MAX: usize = 32;

pub(super) fn kind_name(t: &RegularType) -> String {
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

pub(super) enum RecordState {
    InProgress(usize),
    Done(usize),
}

pub(super) struct Compiler<'s> {
    pub(super) schema: &'s SchemaMut,
    pub(super) paths: &'s [String],
    pub(super) schema_id: Option<u32>,
    /// Skip programs of record types, called by [`Op::Call`].
    pub(super) table: Vec<Box<[Op]>>,
    /// Record node index -> its entry in `table`.
    pub(super) records: HashMap<usize, RecordState>,
    /// Which slots this writer can fill.
    pub(super) present: Vec<bool>,
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
    pub(super) fn record(&mut self, key: SchemaKey, tree: &PathTree, out: &mut Vec<Op>) -> Result<(), PathError> {
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
