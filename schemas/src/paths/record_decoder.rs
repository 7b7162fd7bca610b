//! [`RecordDecoder`]: Confluent framing, one subject, and a [`PathDecoder`] per writer
//! schema id, compiled on first sight and shared by all threads.
//!
//! The id → decoder cache is read on every event, from as many threads as decode, so a
//! hit takes no lock and writes no shared memory: an [`IdTable`] of fill-once slots,
//! read with plain loads. A miss (a new writer schema: a few times in a topic's life)
//! takes a mutex, asks the registry, and fills a slot; threads that missed the same id
//! meanwhile wait on that mutex and then find it, so the registry is asked once per id.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use super::id_table::IdTable;

use super::decoder::PathDecoder;
use crate::error::{EventError, PathError};
use crate::record::EventRecord;
use crate::wire::{unframe, SchemaRegistry};

/// Schema ids of other subjects remembered by a [`RecordDecoder`] (they are refused
/// without asking the registry again); beyond this they are looked up each time.
const MAX_FOREIGN_IDS: usize = 1024;

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
/// threads at once (`&self`; a cache hit takes no lock, see the module docs).
pub struct RecordDecoder {
    registry: Arc<dyn SchemaRegistry>,
    subject: String,
    paths: Vec<String>,
    cache: IdTable<Arc<Verdict>>,
    /// Held while a missed id is looked up and cached (see the module docs).
    learning: Mutex<()>,
    /// Refused ids of other subjects cached so far (at most [`MAX_FOREIGN_IDS`]).
    foreign: std::sync::atomic::AtomicUsize,
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
        let cache = IdTable::new();
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
            cache.insert(writer.id, Arc::new(verdict));
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
        Ok(RecordDecoder {
            registry,
            subject: subject.to_string(),
            paths,
            cache,
            learning: Mutex::new(()),
            foreign: Default::default(),
        })
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
        if let Some(verdict) = self.cache.get(id) {
            return verdict.decode(body);
        }
        self.learn(id, body)
    }

    /// First sight of `id`: ask the registry, compile, remember, decode.
    #[cold]
    fn learn(&self, id: u32, body: &[u8]) -> Result<EventRecord, EventError> {
        let _learning = self.learning.lock().unwrap_or_else(PoisonError::into_inner);
        // Another thread may have learnt it while this one waited.
        if let Some(verdict) = self.cache.get(id) {
            return verdict.decode(body);
        }
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
        let verdict = Arc::new(verdict);
        use std::sync::atomic::Ordering::Relaxed;
        let foreign = writer.subject != self.subject;
        if (!foreign || self.foreign.load(Relaxed) < MAX_FOREIGN_IDS) && self.cache.insert(id, verdict.clone()) && foreign {
            self.foreign.fetch_add(1, Relaxed);
        }
        verdict.decode(body)
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
