//! Feature definitions: what weir computes from an event, for any event schema.
//!
//! The `[features]` section names fields by *path* (record field names joined by dots,
//! `item.price`); the decoder materializes exactly [`FeatureDefinitions::paths`] into an
//! [`EventRecord`], and this module turns a record into entity [`Observation`]s for the
//! store and, with the store's answers, into the feature vector.
//!
//! ## Feature order
//!
//! 1. the event transforms (every kind but `ratio_to_mean`), in config order;
//! 2. per entity (config order), per window (the entity's order), per windowed
//!    aggregation (config order): `<entity>_count_<w>` or `<entity>_<alias>_<kind>_<w>`
//!    (alias: the field path with `.` as `_`, or `as`); then the entity's
//!    `<entity>_seconds_since_last` if it has one;
//! 3. the `ratio_to_mean` transforms, in config order.
//!
//! ## Transforms
//!
//! | kind | feature(s) |
//! |---|---|
//! | `log1p {field}` | `ln(1 + max(x, 0))`; 0 when the field is missing or null |
//! | `hour_of_day` | hour of the event time, UTC, 0–23 |
//! | `day_of_week` | day of the event time, UTC, 0 = Monday … 6 = Sunday |
//! | `one_hot {field, values}` | `<name>_<value>` per value: 1 when the field's text equals it, else 0 |
//! | `value {field, default}` | the number; `default` (0 if not given) when missing or null |
//! | `ratio_to_mean {field, entity, window}` | `x / m`, `m` the entity's mean of the field in that window as of this event (this event included); 1 when `m <= 0` or `x` is missing. The entity must aggregate `sum` or `mean` of that field. |
//!
//! ## Aggregations
//!
//! Per entity: `count`, `sum`, `mean`, `min`, `max`, `distinct` (windowed; their exact
//! definitions, the empty-window values and the distinct error are in
//! [`crate::windows`]) and `seconds_since_last` (not windowed). Every value is as of the
//! event's time, the event itself included.
//!
//! ## The default: weir's card features
//!
//! With neither `transforms` nor `entities` in the file, the definitions are weir's card
//! features (the baseline model's inputs), over the configured windows:
//! `amount_log` (log1p of `amount`), `hour_of_day`, `channel_ecom`, `channel_atm`
//! (one_hot of `channel`), per window `card_count_<w>` and `card_amount_sum_<w>` (entity
//! `card` keyed by `card_id`), and `amount_to_card_mean_<longest window>`.
//!
//! ## Checks on events
//!
//! [`FeatureDefinitions::check`]: the event time is present and an integer; every entity
//! key is present, non-empty and at most 256 bytes; every numeric field used is, when
//! present, a finite number. Anything else is `Invalid` (dead-lettered).

use std::collections::BTreeSet;

use weir_schemas::store::FeatureStore;
use weir_schemas::bounded::quote_debug;
use weir_schemas::{EventError, StoreError};
use weir_schemas::events::Transaction;
use weir_schemas::record::{EventRecord, FieldValue, intern_path};
use weir_schemas::store::{Observation, ObservationResult, SourcePosition};

use crate::transforms;
use crate::config::{AggregationConfig, EntityConfig, FeaturesConfig, TransformConfig};
use crate::windows::{AggKind, Aggregation, EngineSpec, EntityDef, WindowSpec, distinct_hash};

/// Longest entity key accepted, bytes.
pub const MAX_KEY_BYTES: usize = 256;

/// An event transform, fields resolved to path indices.
#[derive(Debug, Clone, PartialEq)]
enum Transform {
    Log1p(usize),
    HourOfDay,
    DayOfWeek,
    OneHot(usize, Vec<String>),
    Value(usize, f64),
}

/// A `ratio_to_mean`: field path index, entity index, index of the mean in its values.
#[derive(Debug, Clone, PartialEq)]
struct Ratio {
    field: usize,
    entity: usize,
    mean_at: usize,
}

#[derive(Debug, Clone, PartialEq)]
struct Entity {
    key: usize,
    /// Path indices of the numeric and distinct fields, in the definition's order.
    numeric: Vec<usize>,
    distinct: Vec<usize>,
    /// Values that are features (the rest are extra means for ratios).
    visible: usize,
}

/// Checked feature definitions (built from a [`FeaturesConfig`] with no problems).
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureDefinitions {
    paths: Vec<String>,
    /// The paths as `&'static str` for [`EventError::invalid`] ([`intern`]).
    static_paths: Vec<&'static str>,
    names: Vec<String>,
    event_time: usize,
    transforms: Vec<Transform>,
    entities: Vec<Entity>,
    ratios: Vec<Ratio>,
    /// Paths that must be numbers when present.
    numeric_paths: Vec<usize>,
    spec: EngineSpec,
}

/// The transforms and entities in effect: the file's, or weir's card defaults.
pub fn effective(config: &FeaturesConfig) -> (Vec<TransformConfig>, Vec<EntityConfig>) {
    if !config.transforms.is_empty() || !config.entities.is_empty() {
        return (config.transforms.clone(), config.entities.clone());
    }
    let longest = config.windows.iter().max_by_key(|w| w.length_secs).map(|w| w.name.clone());
    let t = |kind: &str, name: &str, field: Option<&str>| TransformConfig {
        kind: kind.into(),
        name: name.into(),
        field: field.map(str::to_string),
        values: None,
        default: None,
        entity: None,
        window: None,
    };
    let mut transforms = vec![
        t("log1p", "amount_log", Some("amount")),
        t("hour_of_day", "hour_of_day", None),
        TransformConfig { values: Some(vec!["ecom".into(), "atm".into()]), ..t("one_hot", "channel", Some("channel")) },
    ];
    if let Some(longest) = longest {
        transforms.push(TransformConfig {
            entity: Some("card".into()),
            window: Some(longest.clone()),
            ..t("ratio_to_mean", &format!("amount_to_card_mean_{longest}"), Some("amount"))
        });
    }
    let agg = |kind: &str, field: Option<&str>| AggregationConfig { kind: kind.into(), field: field.map(str::to_string), alias: None };
    let entities = vec![EntityConfig {
        name: "card".into(),
        key: "card_id".into(),
        windows: None,
        aggregations: vec![agg("count", None), agg("sum", Some("amount"))],
    }];
    (transforms, entities)
}

fn is_name(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

fn is_path(s: &str) -> bool {
    !s.is_empty()
        && s.split('.').all(|seg| {
            let mut b = seg.bytes();
            b.next().is_some_and(|c| c.is_ascii_alphabetic() || c == b'_') && b.all(|c| c.is_ascii_alphanumeric() || c == b'_')
        })
}

fn agg_kind(s: &str) -> Option<Option<AggKind>> {
    Some(Some(match s {
        "count" => AggKind::Count,
        "sum" => AggKind::Sum,
        "mean" => AggKind::Mean,
        "min" => AggKind::Min,
        "max" => AggKind::Max,
        "distinct" => AggKind::Distinct,
        "seconds_since_last" => return Some(None),
        _ => return None,
    }))
}

const TRANSFORM_KINDS: [&str; 6] = ["log1p", "hour_of_day", "day_of_week", "one_hot", "value", "ratio_to_mean"];

/// What of a [`FeaturesConfig`] needs the engine: here, so that `config` imports nothing of
/// the code it configures.
impl FeaturesConfig {
    /// Every problem with this configuration, each naming the entry: its settings', then
    /// its definitions'.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = self.settings_problems();
        // weir's default definitions follow the windows: with broken windows they would
        // only repeat the window problems.
        if problems.is_empty() || !self.transforms.is_empty() || !self.entities.is_empty() {
            problems.extend(definition_problems(self));
        }
        problems
    }

    /// The windows as the engine uses them. Call after [`FeaturesConfig::problems`] is empty.
    pub fn window_specs(&self) -> Vec<WindowSpec> {
        self.windows
            .iter()
            .map(|w| WindowSpec::new(&w.name, w.length_secs * 1000, w.pane_secs * 1000, self.allowed_lateness_ms()))
            .collect()
    }
}

/// Every problem with the definitions of `config` (its windows are checked by
/// [`FeaturesConfig::problems`], which includes these).
pub fn definition_problems(config: &FeaturesConfig) -> Vec<String> {
    match build(config) {
        Ok(_) => Vec::new(),
        Err(p) => p,
    }
}

/// Path indices, first come first numbered.
#[derive(Default)]
struct Paths(Vec<String>);

impl Paths {
    fn index(&mut self, path: &str) -> usize {
        match self.0.iter().position(|p| p == path) {
            Some(i) => i,
            None => {
                self.0.push(path.to_string());
                self.0.len() - 1
            }
        }
    }
}

fn build(config: &FeaturesConfig) -> Result<FeatureDefinitions, Vec<String>> {
    let (transforms, entities) = effective(config);
    let lateness = config.allowed_lateness_ms();
    let mut problems = Vec::new();
    let mut paths = Paths::default();
    let mut numeric_paths = BTreeSet::new();
    if !is_path(&config.event_time) {
        problems.push(format!("features.event_time {:?} is not a field path (names joined by dots)", config.event_time));
    }
    let event_time = paths.index(&config.event_time);
    let window_names: Vec<&str> = config.windows.iter().map(|w| w.name.as_str()).collect();

    // Event transforms first (their fields get the first path numbers after the time).
    let mut names: Vec<String> = Vec::new();
    let mut compiled = Vec::new();
    let field_of = |at: &str, t: &TransformConfig, problems: &mut Vec<String>, paths: &mut Paths| -> Option<usize> {
        match &t.field {
            Some(f) if is_path(f) => Some(paths.index(f)),
            Some(f) => {
                problems.push(format!("{at}: field {f:?} is not a field path (names joined by dots)"));
                None
            }
            None => {
                problems.push(format!("{at}: kind {:?} needs a field", t.kind));
                None
            }
        }
    };
    for (i, t) in transforms.iter().enumerate() {
        let at = format!("features.transforms[{i}] ({:?})", t.name);
        if !is_name(&t.name) {
            problems.push(format!("{at}: name must be letters, digits or _"));
        }
        if !TRANSFORM_KINDS.contains(&t.kind.as_str()) {
            problems.push(format!("{at}: unknown kind {:?} (one of {})", t.kind, TRANSFORM_KINDS.join(", ")));
            continue;
        }
        let takes = |what: &str, given: bool, wanted: &[&str], problems: &mut Vec<String>| {
            if given && !wanted.contains(&t.kind.as_str()) {
                problems.push(format!("{at}: kind {:?} does not take {what}", t.kind));
            }
        };
        takes("a field", t.field.is_some(), &["log1p", "one_hot", "value", "ratio_to_mean"], &mut problems);
        takes("values", t.values.is_some(), &["one_hot"], &mut problems);
        takes("a default", t.default.is_some(), &["value"], &mut problems);
        takes("an entity", t.entity.is_some(), &["ratio_to_mean"], &mut problems);
        takes("a window", t.window.is_some(), &["ratio_to_mean"], &mut problems);
        match t.kind.as_str() {
            "hour_of_day" => {
                compiled.push(Transform::HourOfDay);
                names.push(t.name.clone());
            }
            "day_of_week" => {
                compiled.push(Transform::DayOfWeek);
                names.push(t.name.clone());
            }
            "log1p" | "value" => {
                if let Some(f) = field_of(&at, t, &mut problems, &mut paths) {
                    numeric_paths.insert(f);
                    compiled.push(if t.kind == "log1p" { Transform::Log1p(f) } else { Transform::Value(f, t.default.unwrap_or(0.0)) });
                }
                if t.default.is_some_and(|d| !d.is_finite()) {
                    problems.push(format!("{at}: default must be a finite number"));
                }
                names.push(t.name.clone());
            }
            "one_hot" => {
                let values = t.values.clone().unwrap_or_default();
                if values.is_empty() {
                    problems.push(format!("{at}: one_hot needs a non-empty list of values"));
                }
                let mut seen = BTreeSet::new();
                for v in &values {
                    if !seen.insert(v) {
                        problems.push(format!("{at}: value {v:?} is listed twice"));
                    }
                    if !is_name(v) {
                        problems.push(format!("{at}: value {v:?} must be letters, digits or _ (it is part of the feature name)"));
                    }
                    names.push(format!("{}_{v}", t.name));
                }
                if let Some(f) = field_of(&at, t, &mut problems, &mut paths) {
                    compiled.push(Transform::OneHot(f, values));
                }
            }
            _ => {} // ratio_to_mean: after the entities
        }
    }

    // Entities.
    let mut defs = Vec::new();
    let mut compiled_entities = Vec::new();
    let mut entity_names = BTreeSet::new();
    for (i, e) in entities.iter().enumerate() {
        let at = format!("features.entities[{i}] ({:?})", e.name);
        if !is_name(&e.name) {
            problems.push(format!("{at}: name must be letters, digits or _"));
        }
        if !entity_names.insert(e.name.clone()) {
            problems.push(format!("{at}: name is used by another entity"));
        }
        if !is_path(&e.key) {
            problems.push(format!("{at}: key {:?} is not a field path (names joined by dots)", e.key));
        }
        let key = paths.index(&e.key);
        let mut windows: Vec<WindowSpec> = Vec::new();
        let chosen: Vec<String> = e.windows.clone().unwrap_or_else(|| window_names.iter().map(|s| s.to_string()).collect());
        if chosen.is_empty() {
            problems.push(format!("{at}: windows is empty (leave it out for all windows)"));
        }
        for w in &chosen {
            match config.windows.iter().find(|c| &c.name == w) {
                Some(c) if windows.iter().any(|x| &x.name == w) => {
                    let _ = c;
                    problems.push(format!("{at}: window {w:?} is listed twice"));
                }
                Some(c) => windows.push(WindowSpec::new(&c.name, c.length_secs * 1000, c.pane_secs.max(1) * 1000, lateness)),
                None => problems.push(format!("{at}: unknown window {w:?} (windows: {})", window_names.join(", "))),
            }
        }
        if e.aggregations.is_empty() {
            problems.push(format!("{at}: no aggregations"));
        }
        let mut numeric: Vec<String> = Vec::new(); // paths
        let mut distinct: Vec<String> = Vec::new();
        let mut aggs = Vec::new();
        let mut ssl = false;
        for (j, a) in e.aggregations.iter().enumerate() {
            let at = format!("{at}.aggregations[{j}]");
            let Some(kind) = agg_kind(&a.kind) else {
                problems.push(format!("{at}: unknown kind {:?} (one of count, sum, mean, min, max, distinct, seconds_since_last)", a.kind));
                continue;
            };
            if let Some(alias) = &a.alias
                && !is_name(alias)
            {
                problems.push(format!("{at}: as {alias:?} must be letters, digits or _"));
            }
            match kind {
                None | Some(AggKind::Count) => {
                    if a.field.is_some() {
                        problems.push(format!("{at}: kind {:?} does not take a field", a.kind));
                    }
                    if a.alias.is_some() {
                        problems.push(format!("{at}: kind {:?} does not take as", a.kind));
                    }
                    match kind {
                        None if ssl => problems.push(format!("{at}: seconds_since_last is listed twice")),
                        None => ssl = true,
                        _ => aggs.push(Aggregation { kind: AggKind::Count, field: 0, alias: String::new() }),
                    }
                }
                Some(kind) => {
                    let Some(field) = &a.field else {
                        problems.push(format!("{at}: kind {:?} needs a field", a.kind));
                        continue;
                    };
                    if !is_path(field) {
                        problems.push(format!("{at}: field {field:?} is not a field path (names joined by dots)"));
                        continue;
                    }
                    let alias = a.alias.clone().unwrap_or_else(|| field.replace('.', "_"));
                    let list = if kind == AggKind::Distinct { &mut distinct } else { &mut numeric };
                    let index = match list.iter().position(|f| f == field) {
                        Some(x) => x,
                        None => {
                            list.push(field.clone());
                            list.len() - 1
                        }
                    };
                    aggs.push(Aggregation { kind, field: index, alias });
                }
            }
        }
        let numeric_idx: Vec<usize> = numeric.iter().map(|f| paths.index(f)).collect();
        numeric_paths.extend(numeric_idx.iter().copied());
        let distinct_idx: Vec<usize> = distinct.iter().map(|f| paths.index(f)).collect();
        for w in &windows {
            for a in &aggs {
                names.push(match a.kind {
                    AggKind::Count => format!("{}_count_{}", e.name, w.name),
                    k => format!("{}_{}_{}_{}", e.name, a.alias, k.as_str(), w.name),
                });
            }
        }
        if ssl {
            names.push(format!("{}_seconds_since_last", e.name));
        }
        let visible = windows.len() * aggs.len() + ssl as usize;
        defs.push((e.name.clone(), windows, numeric, distinct.len(), aggs, ssl));
        compiled_entities.push(Entity { key, numeric: numeric_idx, distinct: distinct_idx, visible });
    }

    // Ratios, now that the entities are known.
    let mut extra: Vec<Vec<(usize, usize)>> = vec![Vec::new(); defs.len()];
    let mut ratios = Vec::new();
    for (i, t) in transforms.iter().enumerate() {
        if t.kind != "ratio_to_mean" {
            continue;
        }
        let at = format!("features.transforms[{i}] ({:?})", t.name);
        names.push(t.name.clone());
        let field = match &t.field {
            Some(f) if is_path(f) => f.clone(),
            Some(_) => continue, // reported above
            None => {
                problems.push(format!("{at}: kind \"ratio_to_mean\" needs a field"));
                continue;
            }
        };
        let (Some(entity), Some(window)) = (&t.entity, &t.window) else {
            problems.push(format!("{at}: ratio_to_mean needs an entity and a window"));
            continue;
        };
        let Some(ei) = defs.iter().position(|d| &d.0 == entity) else {
            problems.push(format!("{at}: unknown entity {entity:?}"));
            continue;
        };
        let (_, windows, numeric, _, aggs, ssl) = &defs[ei];
        let Some(wi) = windows.iter().position(|w| &w.name == window) else {
            problems.push(format!("{at}: entity {entity:?} has no window {window:?}"));
            continue;
        };
        let fi = numeric.iter().position(|f| f == &field);
        let mean = fi.and_then(|fi| aggs.iter().position(|a| a.kind == AggKind::Mean && a.field == fi));
        let sum = fi.and_then(|fi| aggs.iter().position(|a| a.kind == AggKind::Sum && a.field == fi));
        let mean_at = match (fi, mean, sum) {
            (_, Some(m), _) => wi * aggs.len() + m,
            (Some(fi), None, Some(_)) => {
                let list = &mut extra[ei];
                let k = match list.iter().position(|&x| x == (fi, wi)) {
                    Some(k) => k,
                    None => {
                        list.push((fi, wi));
                        list.len() - 1
                    }
                };
                windows.len() * aggs.len() + *ssl as usize + k
            }
            _ => {
                problems.push(format!("{at}: entity {entity:?} aggregates neither sum nor mean of {field:?}"));
                continue;
            }
        };
        let f = paths.index(&field);
        numeric_paths.insert(f);
        ratios.push(Ratio { field: f, entity: ei, mean_at });
    }

    let mut seen = BTreeSet::new();
    for n in &names {
        if !seen.insert(n) {
            problems.push(format!("features: feature name {n:?} is defined twice"));
        }
    }
    if names.is_empty() && problems.is_empty() {
        problems.push("features: no features are defined".to_string());
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let entities_defs = defs
        .into_iter()
        .zip(extra)
        .map(|((kind, windows, numeric, nd, aggs, ssl), extra)| {
            let aliases = numeric.iter().map(|f| f.replace('.', "_")).collect();
            EntityDef::new(&kind, windows, aliases, nd, aggs, ssl, extra, lateness, config.distinct_exact_limit)
        })
        .collect();
    let static_paths = paths.0.iter().map(|p| intern_path(p)).collect();
    Ok(FeatureDefinitions {
        paths: paths.0,
        static_paths,
        names,
        event_time,
        transforms: compiled,
        entities: compiled_entities,
        ratios,
        numeric_paths: numeric_paths.into_iter().collect(),
        spec: EngineSpec::new(entities_defs, lateness),
    })
}

/// The hash of a distinct value ([`distinct_hash`] of its text: strings as they are,
/// integers in decimal, booleans `true`/`false`, floats in Rust's shortest round-trip
/// form, bytes raw), or `None` when missing or null.
pub fn value_hash(v: &FieldValue) -> Option<u64> {
    match v {
        FieldValue::Missing | FieldValue::Null => None,
        FieldValue::Float(f) => Some(distinct_hash(f.to_string().as_bytes())),
        FieldValue::Bytes(b) => Some(distinct_hash(b)),
        other => other.as_key().map(|k| distinct_hash(k.as_bytes())),
    }
}

impl FeatureDefinitions {
    /// Checks `config` (all of it: windows too) and builds the definitions, or lists every
    /// problem.
    pub fn new(config: &FeaturesConfig) -> crate::Result<Self> {
        let problems = config.problems();
        if !problems.is_empty() {
            return Err(crate::Error::Config(problems));
        }
        build(config).map_err(crate::Error::Config)
    }

    /// The field paths the decoder must materialize, in [`EventRecord`] order: the event
    /// time first, then the others in order of first use.
    pub fn paths(&self) -> &[String] {
        &self.paths
    }

    /// Feature names, in vector order (module docs).
    pub fn names(&self) -> &[String] {
        &self.names
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// The paths of the entity keys, in entity (config) order.
    pub fn key_paths(&self) -> Vec<String> {
        self.entities.iter().map(|e| self.paths[e.key].clone()).collect()
    }

    /// The entity kinds, in config order.
    pub fn entity_kinds(&self) -> Vec<&str> {
        self.spec.entities.iter().map(|e| e.kind.as_str()).collect()
    }

    /// What the stores aggregate per entity kind.
    pub fn engine_spec(&self) -> &EngineSpec {
        &self.spec
    }

    /// The event time of a checked record.
    pub fn event_time(&self, record: &EventRecord) -> Option<i64> {
        match record.get(self.event_time) {
            FieldValue::Int(t) => Some(*t),
            _ => None,
        }
    }

    /// Whether an event can be featurized (module docs); an [`EventError`] of class
    /// `Invalid` naming the field otherwise.
    pub fn check(&self, record: &EventRecord) -> Result<(), EventError> {
        let time_path = self.static_paths[self.event_time];
        match record.get(self.event_time) {
            FieldValue::Int(_) => {}
            FieldValue::Missing | FieldValue::Null => {
                return Err(EventError::invalid(time_path, format!("event time {time_path} is missing")));
            }
            other => return Err(EventError::invalid(time_path, format!("event time {time_path} is not an integer: {}", quote_debug(other)))),
        }
        for e in &self.entities {
            let path = self.static_paths[e.key];
            match record.get(e.key).as_key() {
                None => return Err(EventError::invalid(path, format!("entity key {path} is missing or not text: {}", quote_debug(record.get(e.key))))),
                Some(k) if k.is_empty() => return Err(EventError::invalid(path, format!("entity key {path} is empty"))),
                Some(k) if k.len() > MAX_KEY_BYTES => {
                    return Err(EventError::invalid(path, format!("entity key {path} is {} bytes, at most {MAX_KEY_BYTES}", k.len())));
                }
                Some(_) => {}
            }
        }
        for &i in &self.numeric_paths {
            let v = record.get(i);
            if v.is_absent() {
                continue;
            }
            let path = self.static_paths[i];
            match v.as_f64() {
                Some(x) if x.is_finite() => {}
                Some(x) => return Err(EventError::invalid(path, format!("{path} is not finite: {x}"))),
                None => return Err(EventError::invalid(path, format!("{path} is not a number: {}", quote_debug(v)))),
            }
        }
        Ok(())
    }

    /// One observation per entity kind (config order) of a checked record.
    pub fn observations(&self, record: &EventRecord, position: SourcePosition) -> Vec<Observation> {
        let t = self.event_time(record).unwrap_or_default();
        self.entities
            .iter()
            .zip(&self.spec.entities)
            .map(|(e, def)| Observation {
                kind: def.kind.clone(),
                entity: record.get(e.key).as_key().map(|k| k.into_owned()).unwrap_or_default(),
                event_time_ms: t,
                values: e.numeric.iter().map(|&i| record.get(i).as_f64()).collect(),
                distinct: e.distinct.iter().map(|&i| value_hash(record.get(i))).collect(),
                position: position.clone(),
            })
            .collect()
    }

    /// The feature vector of `record` as of its event time, itself included (what the
    /// stream would compute if it came next), without writing anything: request-time
    /// scoring. One store round trip for all its entities ([`FeatureStore::preview`]).
    pub async fn vector_at<S: FeatureStore>(&self, store: &S, record: &EventRecord) -> Result<Vec<f32>, StoreError> {
        let observations = self.observations(record, crate::windows::preview_position());
        let results = store.preview(&observations).await?;
        let mut out = Vec::with_capacity(self.len());
        self.assemble(record, &results, &mut out);
        Ok(out)
    }

    /// Appends the feature vector of `record` to `out`; `results` are the store's answers
    /// for its [`FeatureDefinitions::observations`], in the same order.
    pub fn assemble(&self, record: &EventRecord, results: &[ObservationResult], out: &mut Vec<f32>) {
        let t = self.event_time(record).unwrap_or_default();
        for tr in &self.transforms {
            match tr {
                // The same functions the Arroyo UDFs run (`crate::transforms`).
                Transform::Log1p(f) => out.push(transforms::log1p(record.get(*f).as_f64().unwrap_or(0.0)) as f32),
                Transform::HourOfDay => out.push(transforms::hour_of_day(t) as f32),
                Transform::DayOfWeek => out.push(transforms::day_of_week(t) as f32),
                Transform::OneHot(f, values) => match record.get(*f).as_key() {
                    Some(v) => out.extend(values.iter().map(|x| transforms::one_hot(&v, x) as f32)),
                    None => out.extend(values.iter().map(|_| 0.0)),
                },
                Transform::Value(f, default) => out.push(record.get(*f).as_f64().unwrap_or(*default) as f32),
            }
        }
        for (i, e) in self.entities.iter().enumerate() {
            let values = results.get(i).map(|r| r.values.as_slice()).unwrap_or_default();
            out.extend((0..e.visible).map(|k| values.get(k).copied().unwrap_or(0.0) as f32));
        }
        for r in &self.ratios {
            let mean = results.get(r.entity).and_then(|x| x.values.get(r.mean_at)).copied().unwrap_or(0.0);
            out.push(match record.get(r.field).as_f64() {
                Some(x) => transforms::ratio_to_mean(x, mean) as f32,
                None => 1.0,
            });
        }
    }
}

/// The [`EventRecord`] of a typed transaction for `paths` (weir's transaction fields by
/// name; any other path is missing): the typed decoding path feeds the generic engine.
pub fn transaction_record(tx: &Transaction, paths: &[String]) -> EventRecord {
    let s = |v: &str| FieldValue::Str(v.to_string());
    EventRecord::new(
        paths
            .iter()
            .map(|p| match p.as_str() {
                "event_id" => s(&tx.event_id),
                "card_id" => s(&tx.card_id),
                "merchant_id" => s(&tx.merchant_id),
                "device_id" => s(&tx.device_id),
                "amount" => FieldValue::Float(tx.amount),
                "currency" => s(&tx.currency),
                "country" => s(&tx.country),
                "channel" => s(&tx.channel),
                "customer_segment" => s(&tx.customer_segment),
                "event_time" => FieldValue::Int(tx.event_time),
                _ => FieldValue::Missing,
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests;
