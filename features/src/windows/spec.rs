//! What the engine computes: windows, aggregations, entity kinds and their value layout.

use weir_schemas::StoreError;

use super::answers::{ValueOp, WindowAnswers};

/// Version of the binary state format; part of the fingerprint.
pub(super) const FORMAT_VERSION: u8 = 4;

/// One window, in milliseconds.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowSpec {
    pub name: String,
    pub length_ms: i64,
    pub pane_ms: i64,
    /// Panes per window, `length / pane`.
    pub panes: i64,
    /// Panes kept: panes + lateness panes + 1.
    pub slots: i64,
}

impl WindowSpec {
    pub fn new(name: &str, length_ms: u64, pane_ms: u64, lateness_ms: i64) -> Self {
        let (length_ms, pane_ms) = (length_ms as i64, pane_ms as i64);
        let panes = length_ms / pane_ms;
        let slots = panes + (lateness_ms + pane_ms - 1) / pane_ms + 1;
        WindowSpec { name: name.to_string(), length_ms, pane_ms, panes, slots }
    }

    pub fn pane_of(&self, t: i64) -> i64 {
        t.div_euclid(self.pane_ms)
    }

    /// [`WindowSpec::pane_of`], without a division when `t` is in pane `near` or the next
    /// (most events of a busy entity): a 64-bit division costs tens of cycles, and an
    /// event needs one per window.
    pub(super) fn pane_near(&self, t: i64, near: i64) -> i64 {
        if let Some(from) = near.checked_mul(self.pane_ms)
            && let Some(d) = t.checked_sub(from)
            && (0..2 * self.pane_ms).contains(&d)
        {
            return near + i64::from(d >= self.pane_ms);
        }
        self.pane_of(t)
    }
}

/// What a windowed aggregation computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AggKind {
    Count,
    Sum,
    Mean,
    Min,
    Max,
    Distinct,
}

impl AggKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AggKind::Count => "count",
            AggKind::Sum => "sum",
            AggKind::Mean => "mean",
            AggKind::Min => "min",
            AggKind::Max => "max",
            AggKind::Distinct => "distinct",
        }
    }
}

/// One windowed aggregation of an entity kind.
#[derive(Debug, Clone, PartialEq)]
pub struct Aggregation {
    pub kind: AggKind,
    /// Index into the kind's numeric fields (sum, mean, min, max) or distinct fields
    /// (distinct); unused for count.
    pub field: usize,
    /// The name part of the value: `<alias>_<kind>_<window>` (unused for count).
    pub alias: String,
}

/// What one entity kind aggregates, and how its values are named and ordered.
///
/// Value order: per window (in this order), per aggregation (in this order); then
/// `seconds_since_last` if asked; then the extra means (`<alias>_mean_<w>`) that
/// transforms need but no aggregation declares.
#[derive(Debug, Clone, PartialEq)]
pub struct EntityDef {
    pub kind: String,
    pub windows: Vec<WindowSpec>,
    /// Aliases of the numeric fields (in [`Observation::values`](weir_schemas::store::Observation::values) order).
    pub numeric: Vec<String>,
    /// Number of distinct fields (in [`Observation::distinct`](weir_schemas::store::Observation::distinct) order).
    pub distinct: usize,
    pub aggregations: Vec<Aggregation>,
    pub seconds_since_last: bool,
    /// (numeric field, window index) means appended after everything else.
    pub extra_means: Vec<(usize, usize)>,
    pub lateness_ms: i64,
    pub distinct_exact_limit: usize,
    pub(super) extremes: Vec<bool>,
    pub(super) names: Vec<String>,
    /// The aggregations compiled for the per-event fast path (one window's values).
    pub(super) value_ops: Vec<ValueOp>,
    /// Per aggregation, where its value sits in a window's [`WindowAnswers`](super::answers::WindowAnswers); empty when
    /// the kind has too many fields for them (then [`EntityState::values_at`](super::EntityState::values_at) evaluates
    /// the aggregations one by one).
    pub(super) answer_slots: Vec<u8>,
    pub(super) fingerprint: u32,
}


impl EntityDef {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        kind: &str,
        windows: Vec<WindowSpec>,
        numeric: Vec<String>,
        distinct: usize,
        aggregations: Vec<Aggregation>,
        seconds_since_last: bool,
        extra_means: Vec<(usize, usize)>,
        lateness_ms: i64,
        distinct_exact_limit: usize,
    ) -> Self {
        let mut extremes = vec![false; numeric.len()];
        for a in &aggregations {
            if matches!(a.kind, AggKind::Min | AggKind::Max) {
                extremes[a.field] = true;
            }
        }
        let mut names = Vec::new();
        for w in &windows {
            for a in &aggregations {
                names.push(match a.kind {
                    AggKind::Count => format!("count_{}", w.name),
                    k => format!("{}_{}_{}", a.alias, k.as_str(), w.name),
                });
            }
        }
        if seconds_since_last {
            names.push("seconds_since_last".to_string());
        }
        for &(f, w) in &extra_means {
            names.push(format!("{}_mean_{}", numeric[f], windows[w].name));
        }
        let mut def = EntityDef {
            kind: kind.to_string(),
            windows,
            numeric,
            distinct,
            aggregations,
            seconds_since_last,
            extra_means,
            lateness_ms,
            distinct_exact_limit,
            extremes,
            names,
            value_ops: Vec::new(),
            answer_slots: Vec::new(),
            fingerprint: 0,
        };
        def.value_ops = def
            .aggregations
            .iter()
            .map(|a| match a.kind {
                AggKind::Count => ValueOp::Count,
                AggKind::Sum => ValueOp::Sum(a.field),
                AggKind::Mean => ValueOp::Mean(a.field),
                AggKind::Min => ValueOp::Min(a.field),
                AggKind::Max => ValueOp::Max(a.field),
                AggKind::Distinct => ValueOp::Distinct(a.field),
            })
            .collect();
        if WindowAnswers::fits(def.numeric.len(), def.distinct) {
            let nf = def.numeric.len();
            def.answer_slots = def.value_ops.iter().map(|&op| WindowAnswers::slot(op, nf)).collect();
        }
        def.fingerprint = def.compute_fingerprint();
        def
    }

    /// Names of the values, in order (without the `<kind>_` prefix of feature names).
    pub fn value_names(&self) -> &[String] {
        &self.names
    }

    /// A number that changes whenever the state layout does: format version, lateness,
    /// distinct limit, per window its pane length, panes and ring, the numeric fields and
    /// which keep min/max, the distinct fields, `seconds_since_last`. Not names or the
    /// aggregation list (the same state answers any of them). FNV-1a, 32 bits.
    pub fn fingerprint(&self) -> u32 {
        self.fingerprint
    }

    fn compute_fingerprint(&self) -> u32 {
        self.fingerprint_of_format(FORMAT_VERSION)
    }

    /// The fingerprint a state of format `format` carries under this definition.
    pub(super) fn fingerprint_of_format(&self, format: u8) -> u32 {
        let mut h: u32 = 0x811c_9dc5;
        let mut eat = |x: i64| {
            for b in x.to_le_bytes() {
                h ^= u32::from(b);
                h = h.wrapping_mul(0x0100_0193);
            }
        };
        eat(i64::from(format));
        eat(self.lateness_ms);
        eat(self.distinct_exact_limit as i64);
        eat(self.windows.len() as i64);
        for w in &self.windows {
            eat(w.pane_ms);
            eat(w.panes);
            eat(w.slots);
        }
        eat(self.numeric.len() as i64);
        for &e in &self.extremes {
            eat(e as i64);
        }
        eat(self.distinct as i64);
        eat(self.seconds_since_last as i64);
        h
    }

    /// The longest window plus the lateness, ms: how long an entity's state matters.
    pub fn horizon_ms(&self) -> i64 {
        self.windows.iter().map(|w| w.length_ms).max().unwrap_or(0) + self.lateness_ms
    }
}

/// The entity kinds a store aggregates, by name.
#[derive(Debug, Clone, PartialEq)]
pub struct EngineSpec {
    pub entities: Vec<EntityDef>,
    pub lateness_ms: i64,
}

impl EngineSpec {
    pub fn new(entities: Vec<EntityDef>, lateness_ms: i64) -> Self {
        EngineSpec { entities, lateness_ms }
    }

    /// The definition of `kind`, or a protocol error naming it.
    pub fn def(&self, kind: &str) -> Result<&EntityDef, StoreError> {
        Ok(&self.entities[self.index(kind)?])
    }

    /// The position of `kind`'s definition in `entities`.
    pub fn index(&self, kind: &str) -> Result<usize, StoreError> {
        self.entities
            .iter()
            .position(|e| e.kind == kind)
            .ok_or_else(|| StoreError::Protocol(format!("no feature definition for entity kind {kind:?}")))
    }

    /// The longest horizon of any kind.
    pub fn horizon_ms(&self) -> i64 {
        self.entities.iter().map(EntityDef::horizon_ms).max().unwrap_or(0)
    }
}
