//! [`PathDecoder`]: one writer schema and a list of paths, compiled once, run per body.

use std::collections::HashMap;

use serde_avro_fast::schema::{RegularType, SchemaKey, SchemaMut};

use super::compile::{kind_name, Compiler};
use super::program::{exec, put, Op};
use super::tree::{collect_copies, PathTree};
use crate::error::{EventError, PathError};
use crate::record::{EventRecord, FieldValue};
use crate::wire::RegisteredSchema;

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
