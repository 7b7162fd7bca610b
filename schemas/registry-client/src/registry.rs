//! [`ConfluentRegistry`]: the [`SchemaRegistry`] seam over a Confluent-compatible registry.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use weir_schemas::error::SchemaError;
use weir_schemas::wire::{RegisteredSchema, SchemaRegistry};
use weir_schemas::EventError;

use crate::error::{codes, Error, Result};
use crate::plan::SubjectPlan;
use crate::rest::RestClient;
use crate::retry::{with_backoff, Budget};
use crate::settings::ClientSettings;

/// First wait between start-up tries (doubled each time, up to 5 s).
const STARTUP_FIRST_WAIT: Duration = Duration::from_millis(200);
/// Ids remembered as unknown beyond which expired ones are dropped (a stream of random
/// ids must not grow memory without bound).
const MAX_UNKNOWN_IDS: usize = 4096;

/// A Confluent Schema Registry, as weir uses it.
///
/// Built by [`ConfluentRegistry::connect`], which registers weir's output schemas and
/// fetches its inputs' latest schemas (retrying an unreachable registry within
/// [`ClientSettings::startup_timeout`]). Then:
///
/// - [`SchemaRegistry::by_id`] answers from an id → schema map behind an [`ArcSwap`]: a
///   hit takes no lock. A miss fetches the schema once (`GET /schemas/ids/{id}`, and the
///   subjects it is registered under); concurrent misses of one id wait for that one
///   fetch. A fetch that fails every try ([`ClientSettings::lookup_attempts`]: the
///   registry does not know the id, or cannot be reached) is an
///   [`ErrorClass::UnknownSchema`](weir_schemas::ErrorClass::UnknownSchema) event error,
///   remembered for [`ClientSettings::unknown_id_ttl`];
/// - [`SchemaRegistry::latest`] gives, for an output, weir's schema with the id the
///   registry assigned (so [`weir_schemas::wire::Encoder`] frames with it), and for an
///   input, the latest schema at start-up;
/// - [`SchemaRegistry::versions`] gives the schemas of a subject seen so far.
pub struct ConfluentRegistry {
    rest: RestClient,
    settings: ClientSettings,
    /// Registry subject → weir's subject.
    subject_of: HashMap<String, String>,
    /// weir's subject → its schema as of start-up.
    latest: HashMap<String, Arc<RegisteredSchema>>,
    by_id: ArcSwap<HashMap<u32, Arc<RegisteredSchema>>>,
    /// One lock per id being fetched: concurrent misses of an id wait on it.
    in_flight: Mutex<HashMap<u32, Arc<Mutex<()>>>>,
    /// Ids that failed every try, when, and the error given for them meanwhile.
    unknown: Mutex<HashMap<u32, (Instant, EventError)>>,
    fetches: AtomicU64,
}

impl std::fmt::Debug for ConfluentRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfluentRegistry").field("url", &self.rest.url()).field("subjects", &self.subject_of).finish()
    }
}

impl ConfluentRegistry {
    /// Registers `plan`'s outputs and fetches its inputs' latest schemas.
    ///
    /// Errors (stop): the registry unreachable for the whole start-up budget, refused
    /// credentials, an output schema the registry finds incompatible (with its reasons),
    /// an input subject with no schema, a schema that is not Avro or does not parse.
    pub fn connect(settings: ClientSettings, plan: &SubjectPlan) -> Result<Self> {
        let rest = RestClient::new(&settings)?;
        let budget = Budget::Time(settings.startup_timeout);
        let mut subject_of = HashMap::new();
        let mut latest = HashMap::new();
        let mut by_id = HashMap::new();
        for output in &plan.outputs {
            let text = &output.schema.text;
            let mut assigned: Option<u32> = None;
            for registry_subject in &output.registry_subjects {
                let verdict = at_startup(budget, || {
                    rest.check_compatibility(registry_subject, text).map(|v| v.map(|r| r.join("; ")))
                });
                match verdict {
                    Ok(None) => {}
                    Ok(Some(reasons)) => {
                        return Err(Error::Schema(format!(
                            "weir's {} schema cannot be registered under subject {registry_subject} of {}: the registry finds it incompatible with the latest version: {}",
                            output.subject,
                            rest.url(),
                            if reasons.is_empty() { "no reason given".to_string() } else { reasons },
                        )));
                    }
                    // A subject with no version yet: nothing to be compatible with.
                    Err(e) if matches!(e.code(), Some(codes::SUBJECT_NOT_FOUND | codes::VERSION_NOT_FOUND)) => {}
                    Err(e) => return Err(e),
                }
                let id = at_startup(budget, || rest.register(registry_subject, text))?;
                match assigned {
                    None => assigned = Some(id),
                    // Confluent gives one schema one id whatever the subject; a registry
                    // that does not is still usable (every id resolves), only noted.
                    Some(first) if first != id => tracing::warn!(
                        subject = %registry_subject, id, first,
                        "the registry gave weir's {} schema different ids under different subjects; framing with {first}",
                        output.subject
                    ),
                    Some(_) => {}
                }
                subject_of.insert(registry_subject.clone(), output.subject.clone());
            }
            let Some(id) = assigned else {
                return Err(Error::Settings(format!("output subject {} has no registry subject", output.subject)));
            };
            let schema = Arc::new(parse(id, &output.subject, rest.url(), text.clone(), None)?);
            tracing::info!(subject = %output.subject, id, registry_subjects = ?output.registry_subjects, "registered weir's schema");
            latest.insert(output.subject.clone(), schema.clone());
            by_id.insert(id, schema);
        }
        for input in &plan.inputs {
            let version = at_startup(budget, || rest.latest(&input.registry_subject)).map_err(|e| match e.code() {
                Some(codes::SUBJECT_NOT_FOUND | codes::VERSION_NOT_FOUND) => Error::Schema(format!(
                    "input subject {} has no schema in the registry {}: producers register theirs there first (or set schemas.subjects.input to the subject they use)",
                    input.registry_subject,
                    rest.url()
                )),
                _ => e,
            })?;
            let schema =
                Arc::new(parse(version.id, &input.subject, rest.url(), version.schema, version.schema_type.as_deref())?);
            tracing::info!(subject = %input.subject, registry_subject = %input.registry_subject, id = version.id, version = version.version, "fetched the input's latest schema");
            subject_of.insert(input.registry_subject.clone(), input.subject.clone());
            latest.insert(input.subject.clone(), schema.clone());
            by_id.insert(version.id, schema);
        }
        Ok(ConfluentRegistry {
            rest,
            settings,
            subject_of,
            latest,
            by_id: ArcSwap::from_pointee(by_id),
            in_flight: Mutex::new(HashMap::new()),
            unknown: Mutex::new(HashMap::new()),
            fetches: AtomicU64::new(0),
        })
    }

    /// The registry's URL.
    pub fn url(&self) -> &str {
        self.rest.url()
    }

    /// Schemas fetched by id since start-up (successful `GET /schemas/ids/{id}` calls):
    /// with the cache working, one per new id.
    pub fn fetches(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }

    /// First sight of `id`: one fetch, however many threads ask at once.
    #[cold]
    fn fetch(&self, id: u32) -> std::result::Result<Arc<RegisteredSchema>, EventError> {
        if let Some(e) = self.still_unknown(id) {
            return Err(e);
        }
        let slot = self.in_flight.lock().unwrap_or_else(PoisonError::into_inner).entry(id).or_default().clone();
        let result = {
            let _fetching = slot.lock().unwrap_or_else(PoisonError::into_inner);
            // Whoever held the slot before may have settled it either way.
            if let Some(schema) = self.by_id.load().get(&id) {
                return Ok(schema.clone());
            }
            if let Some(e) = self.still_unknown(id) {
                return Err(e);
            }
            self.fetch_now(id)
        };
        self.in_flight.lock().unwrap_or_else(PoisonError::into_inner).remove(&id);
        result
    }

    fn fetch_now(&self, id: u32) -> std::result::Result<Arc<RegisteredSchema>, EventError> {
        let retry = |e: &Error| e.is_transient() || e.code() == Some(codes::SCHEMA_NOT_FOUND);
        let attempts = self.settings.lookup_attempts.max(1);
        let fetched = with_backoff(Budget::Tries(attempts), self.settings.lookup_backoff, retry, || self.rest.schema_by_id(id))
            .and_then(|fetched| {
                // The subject, so that decoders can tell their own subject's versions from
                // other schemas. A registry without this call leaves it unknown ("").
                let subject = match self.rest.subjects_of_id(id) {
                    Ok(subjects) => subjects
                        .iter()
                        .find_map(|s| self.subject_of.get(&s.subject).cloned())
                        .or_else(|| subjects.first().map(|s| s.subject.clone()))
                        .unwrap_or_default(),
                    Err(e) => {
                        tracing::warn!(id, error = %e, "cannot list the subjects of a schema id");
                        String::new()
                    }
                };
                parse(id, &subject, self.rest.url(), fetched.schema, fetched.schema_type.as_deref())
            });
        match fetched {
            Ok(schema) => {
                self.fetches.fetch_add(1, Ordering::Relaxed);
                let schema = Arc::new(schema);
                let mut next = HashMap::clone(&self.by_id.load());
                next.insert(id, schema.clone());
                self.by_id.store(Arc::new(next));
                tracing::info!(id, subject = %schema.subject, "fetched a new writer schema from the registry");
                Ok(schema)
            }
            Err(e) => {
                let message = match &e {
                    Error::Api { code: codes::SCHEMA_NOT_FOUND, .. } => {
                        format!("schema id {id} is not in the schema registry {} ({attempts} tries)", self.rest.url())
                    }
                    other => format!("schema id {id} could not be read from the schema registry: {other}"),
                };
                tracing::warn!(id, "{message}");
                let error = EventError::unknown_schema(message);
                let mut unknown = self.unknown.lock().unwrap_or_else(PoisonError::into_inner);
                if unknown.len() >= MAX_UNKNOWN_IDS {
                    let ttl = self.settings.unknown_id_ttl;
                    unknown.retain(|_, (at, _)| at.elapsed() < ttl);
                }
                unknown.insert(id, (Instant::now(), error.clone()));
                Err(error)
            }
        }
    }

    fn still_unknown(&self, id: u32) -> Option<EventError> {
        let unknown = self.unknown.lock().unwrap_or_else(PoisonError::into_inner);
        unknown.get(&id).filter(|(at, _)| at.elapsed() < self.settings.unknown_id_ttl).map(|(_, e)| e.clone())
    }
}

/// Start-up calls: the registry may be starting too, so keep trying for the budget.
fn at_startup<T>(budget: Budget, op: impl FnMut() -> Result<T>) -> Result<T> {
    with_backoff(budget, STARTUP_FIRST_WAIT, Error::is_transient, op)
}

/// A schema from the registry (or weir's own, with the registry's id), parsed.
fn parse(
    id: u32,
    subject: &str,
    url: &str,
    text: String,
    schema_type: Option<&str>,
) -> Result<RegisteredSchema> {
    if let Some(t) = schema_type.filter(|t| !t.eq_ignore_ascii_case("AVRO")) {
        return Err(Error::Schema(format!("schema id {id} in the registry {url} is {t}, not Avro")));
    }
    RegisteredSchema::parse(id, subject, &format!("schema registry {url}"), text).map_err(|e| Error::Schema(e.to_string()))
}

impl SchemaRegistry for ConfluentRegistry {
    fn by_id(&self, id: u32) -> std::result::Result<Arc<RegisteredSchema>, EventError> {
        if let Some(schema) = self.by_id.load().get(&id) {
            return Ok(schema.clone());
        }
        self.fetch(id)
    }

    fn latest(&self, subject: &str) -> weir_schemas::error::Result<Arc<RegisteredSchema>> {
        self.latest.get(subject).cloned().ok_or_else(|| SchemaError::MissingSubject { subject: subject.to_string() })
    }

    fn versions(&self, subject: &str) -> Vec<Arc<RegisteredSchema>> {
        self.by_id.load().values().filter(|s| s.subject == subject).cloned().collect()
    }
}
