//! The synthetic load generator behind `weir produce` and `weir demo`.
//!
//! A seeded simulation of card payments in event time. Same [`GeneratorConfig`] (seed,
//! start time, sizes) → the same messages, byte for byte.
//!
//! The world: `cards` card holders, each with a home country, a customer segment, a usual
//! channel mix and a typical amount (log-normal); `merchants` merchants, a few of them
//! risky. Legitimate payments arrive as a Poisson process at `event_rate` per second of
//! event time, each from a random card. Fraud comes from three processes:
//!
//! - **bursts on compromised cards**: a card is compromised and, over one to three
//!   minutes, 4–12 card-not-present payments go out from a new device abroad;
//! - **risky merchants**: payments at a risky merchant are fraud with probability 0.3;
//! - **unusual amounts**: rarely, one payment of 8–30× the card's typical amount.
//!
//! Each transaction gets a label (`is_fraud`) that arrives `label_delay_secs_mean` later on
//! average (exponential), in event time; a fraction never arrives. With `poison_rate` > 0,
//! poison messages are mixed into the transactions stream, one of each [`PoisonKind`] in
//! turn, each knowing the error class weir must give it.
//!
//! [`interactions`] is the same kind of simulation for weir's second example schema
//! (recommendation-style interactions, purchases as labels).

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use weir_schemas::events::{Label, Transaction};
use weir_schemas::wire::{write_header, Encoder};
use weir_schemas::ErrorClass;

use crate::error::Result;

pub mod interactions;

#[derive(Debug, Clone, PartialEq)]
pub struct GeneratorConfig {
    pub seed: u64,
    /// Event time of the first transaction, ms since the epoch.
    pub start_ms: i64,
    /// Valid transactions to generate (poison comes on top).
    pub transactions: u64,
    pub cards: u32,
    pub merchants: u32,
    /// Legitimate transactions per second of event time.
    pub event_rate: f64,
    /// Compromised-card bursts started per legitimate transaction.
    pub burst_probability: f64,
    pub label_delay_secs_mean: f64,
    /// Fraction of labels that never arrive.
    pub label_missing_rate: f64,
    /// Fraction of poison messages among messages on the transactions topic.
    pub poison_rate: f64,
    /// From this transaction index on, the amount distribution shifts up and a new
    /// country appears (for drift tests). `None`: no drift.
    pub drift_at: Option<u64>,
    /// From this transaction index on, the fraud pattern moves (concept change, for the
    /// learner's tests): the risky merchants are other merchants, and compromised cards
    /// are drained slowly at ATMs — small amounts from the card's own device at home,
    /// spread over 10–30 minutes — instead of quick card-not-present bursts abroad.
    /// `None`: the pattern never changes.
    pub concept_change_at: Option<u64>,
}

impl GeneratorConfig {
    pub fn new(seed: u64, start_ms: i64, transactions: u64) -> Self {
        GeneratorConfig {
            seed,
            start_ms,
            transactions,
            cards: 2_000,
            merchants: 300,
            event_rate: 50.0,
            burst_probability: 0.002,
            label_delay_secs_mean: 60.0,
            label_missing_rate: 0.02,
            poison_rate: 0.0,
            drift_at: None,
            concept_change_at: None,
        }
    }

    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if self.cards == 0 || self.merchants < 10 {
            p.push(format!("need at least 1 card and 10 merchants, got {} and {}", self.cards, self.merchants));
        }
        if !(self.event_rate.is_finite() && self.event_rate > 0.0) {
            p.push(format!("event rate must be > 0, got {}", self.event_rate));
        }
        for (name, v) in [
            ("burst probability", self.burst_probability),
            ("label missing rate", self.label_missing_rate),
            ("poison rate", self.poison_rate),
        ] {
            if !(0.0..1.0).contains(&v) {
                p.push(format!("{name} must be in [0, 1), got {v}"));
            }
        }
        if !(self.label_delay_secs_mean.is_finite() && self.label_delay_secs_mean >= 0.0) {
            p.push(format!("label delay must be >= 0, got {}", self.label_delay_secs_mean));
        }
        p
    }
}

/// Ways a message can be poison, and the class weir must give each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PoisonKind {
    /// A valid framed transaction cut short.
    Truncated,
    /// First byte is not the Confluent magic byte.
    WrongMagicByte,
    /// A schema id no registry knows.
    UnknownSchemaId,
    /// A label (another subject's schema id) on the transactions topic.
    WrongSubject,
    /// Valid header, body of garbage that cannot decode.
    GarbageBody,
    /// Decodes, breaks a validation rule (negative or NaN amount, empty card, old time).
    InvalidField,
}

impl PoisonKind {
    pub const ALL: [PoisonKind; 6] = [
        PoisonKind::Truncated,
        PoisonKind::WrongMagicByte,
        PoisonKind::UnknownSchemaId,
        PoisonKind::WrongSubject,
        PoisonKind::GarbageBody,
        PoisonKind::InvalidField,
    ];

    pub fn expected_class(self) -> ErrorClass {
        match self {
            PoisonKind::Truncated | PoisonKind::WrongMagicByte | PoisonKind::GarbageBody => ErrorClass::Malformed,
            PoisonKind::UnknownSchemaId | PoisonKind::WrongSubject => ErrorClass::UnknownSchema,
            PoisonKind::InvalidField => ErrorClass::Invalid,
        }
    }
}

/// What a generated message is.
#[derive(Debug, Clone, PartialEq)]
pub enum Content {
    Transaction { tx: Transaction, is_fraud: bool },
    Label(Label),
    Poison(PoisonKind),
}

/// Which topic a message goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Transactions,
    Labels,
}

/// One message, encoded and ready to produce.
#[derive(Debug, Clone, PartialEq)]
pub struct GeneratedMessage {
    pub stream: Stream,
    pub key: Vec<u8>,
    pub payload: Vec<u8>,
    pub content: Content,
}

struct Card {
    home_country: &'static str,
    segment: &'static str,
    typical_amount: f64,
    ecom_share: f64,
}

const COUNTRIES: [&str; 8] = ["FR", "DE", "GB", "ES", "IT", "NL", "US", "PL"];
const FRAUD_COUNTRIES: [&str; 4] = ["BR", "NG", "RU", "VN"];
const SEGMENTS: [(&str, f64); 3] = [("retail", 0.7), ("premium", 0.2), ("business", 0.1)];
const CURRENCY: &str = "EUR";

/// Something scheduled at an event time; `seq` breaks ties deterministically.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Pending<K> {
    time: i64,
    seq: u64,
    what: K,
}

/// What a generator has scheduled, popped earliest event time first; ties come out in
/// scheduling order, so a seed always gives the same stream. Shared by both generators.
#[derive(Debug)]
struct Schedule<K> {
    queue: BinaryHeap<Reverse<Pending<K>>>,
    seq: u64,
}

impl<K: Ord> Schedule<K> {
    fn new() -> Self {
        Schedule { queue: BinaryHeap::new(), seq: 0 }
    }

    fn push(&mut self, time: i64, what: K) {
        self.seq += 1;
        self.queue.push(Reverse(Pending { time, seq: self.seq, what }));
    }

    fn pop(&mut self) -> Option<Pending<K>> {
        self.queue.pop().map(|Reverse(p)| p)
    }
}

/// An exponentially distributed gap with mean `mean_secs`, in whole milliseconds.
fn exp_ms(rng: &mut ChaCha8Rng, mean_secs: f64) -> i64 {
    let u: f64 = rng.random::<f64>().max(1e-12);
    (-u.ln() * mean_secs * 1000.0) as i64
}

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
enum PendingKind {
    /// The next legitimate arrival.
    Legit,
    /// One payment of a compromised-card burst (`atm`: the changed pattern).
    Burst { card: u32, device: u32, atm: bool },
    /// A label to release; index into `labels`.
    Label(usize),
}

pub struct Generator {
    cfg: GeneratorConfig,
    rng: ChaCha8Rng,
    cards: Vec<Card>,
    risky_merchants: u32,
    queue: Schedule<PendingKind>,
    labels: Vec<Option<Label>>,
    emitted_transactions: u64,
    poison_index: usize,
    tx_encoder: Encoder,
    label_encoder: Encoder,
}

impl Generator {
    pub fn new(cfg: GeneratorConfig, tx_encoder: Encoder, label_encoder: Encoder) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
        let cards = (0..cfg.cards)
            .map(|_| {
                let u: f64 = rng.random();
                let mut acc = 0.0;
                let segment = SEGMENTS.iter().find(|(_, w)| {
                    acc += w;
                    u < acc
                });
                let segment = segment.map(|s| s.0).unwrap_or("retail");
                let scale = match segment {
                    "premium" => 2.5,
                    "business" => 4.0,
                    _ => 1.0,
                };
                Card {
                    home_country: COUNTRIES[rng.random_range(0..6)],
                    segment,
                    typical_amount: scale * (3.0 + 0.6 * normal(&mut rng)).exp(),
                    ecom_share: rng.random_range(0.1..0.5),
                }
            })
            .collect();
        let risky_merchants = (cfg.merchants / 50).max(1);
        let mut g = Generator {
            queue: Schedule::new(),
            labels: Vec::new(),
            emitted_transactions: 0,
            poison_index: 0,
            cards,
            risky_merchants,
            rng,
            tx_encoder,
            label_encoder,
            cfg,
        };
        let start = g.cfg.start_ms;
        g.schedule(start, PendingKind::Legit);
        g
    }

    fn schedule(&mut self, time: i64, what: PendingKind) {
        self.queue.push(time, what);
    }

    /// Produces the next message, or `None` when all transactions and their labels are out.
    pub fn next_message(&mut self) -> Result<Option<GeneratedMessage>> {
        // Poison goes in between transactions, at the configured rate.
        if self.cfg.poison_rate > 0.0
            && self.emitted_transactions > 0
            && self.emitted_transactions < self.cfg.transactions
            && self.rng.random::<f64>() < self.cfg.poison_rate
        {
            return self.poison().map(Some);
        }
        loop {
            let Some(p) = self.queue.pop() else { return Ok(None) };
            let done = self.emitted_transactions >= self.cfg.transactions;
            match p.what {
                PendingKind::Legit if done => continue,
                PendingKind::Burst { .. } if done => continue,
                PendingKind::Legit => {
                    let gap = exp_ms(&mut self.rng, 1.0 / self.cfg.event_rate);
                    self.schedule(p.time + gap.max(1), PendingKind::Legit);
                    if self.rng.random::<f64>() < self.cfg.burst_probability {
                        self.start_burst(p.time);
                    }
                    return self.legit(p.time).map(Some);
                }
                PendingKind::Burst { card, device, atm } => {
                    return self.burst_payment(p.time, card, device, atm).map(Some);
                }
                PendingKind::Label(i) => {
                    if let Some(label) = self.labels[i].take() {
                        let payload = self.label_encoder.encode(&label)?;
                        return Ok(Some(GeneratedMessage {
                            stream: Stream::Labels,
                            key: label.card_id.clone().into_bytes(),
                            payload,
                            content: Content::Label(label),
                        }));
                    }
                }
            }
        }
    }

    fn start_burst(&mut self, now: i64) {
        let card = self.rng.random_range(0..self.cfg.cards);
        let device = self.rng.random_range(0..1_000_000);
        let n = self.rng.random_range(4..=12);
        let atm = self.concept_changed();
        let span_ms = if atm { self.rng.random_range(600_000..1_800_000) } else { self.rng.random_range(60_000..180_000) };
        for _ in 0..n {
            let at = now + self.rng.random_range(1_000..span_ms);
            self.schedule(at, PendingKind::Burst { card, device, atm });
        }
    }

    fn concept_changed(&self) -> bool {
        self.cfg.concept_change_at.is_some_and(|c| self.emitted_transactions >= c)
    }

    fn drifted(&self) -> bool {
        self.cfg.drift_at.is_some_and(|d| self.emitted_transactions >= d)
    }

    fn legit(&mut self, time: i64) -> Result<GeneratedMessage> {
        let card_ix = self.rng.random_range(0..self.cfg.cards);
        let merchant = self.rng.random_range(0..self.cfg.merchants);
        let card = &self.cards[card_ix as usize];
        let (typical, ecom_share, home) = (card.typical_amount, card.ecom_share, card.home_country);
        let mut amount = typical * (0.5 * normal(&mut self.rng)).exp();
        let mut is_fraud = false;
        let channel = if self.rng.random::<f64>() < ecom_share {
            "ecom"
        } else if self.rng.random::<f64>() < 0.05 {
            "atm"
        } else {
            "pos"
        };
        let mut country = if self.rng.random::<f64>() < 0.05 { COUNTRIES[self.rng.random_range(0..8)] } else { home };
        let risky = if self.concept_changed() {
            merchant >= self.cfg.merchants - self.risky_merchants
        } else {
            merchant < self.risky_merchants
        };
        if risky && self.rng.random::<f64>() < 0.3 {
            is_fraud = true;
        }
        if self.rng.random::<f64>() < 0.002 {
            amount = typical * self.rng.random_range(8.0..30.0);
            is_fraud = true;
        }
        if self.drifted() {
            amount *= 1.8;
            if self.rng.random::<f64>() < 0.2 {
                country = "MX";
            }
        }
        let device = format!("dev-{card_ix:05}-{}", self.rng.random_range(0..2));
        self.transaction(time, card_ix, merchant, device, amount, channel, country, is_fraud)
    }

    fn burst_payment(&mut self, time: i64, card_ix: u32, device: u32, atm: bool) -> Result<GeneratedMessage> {
        let typical = self.cards[card_ix as usize].typical_amount;
        if atm {
            let amount = typical * self.rng.random_range(0.3..0.8);
            let merchant = self.rng.random_range(0..self.cfg.merchants);
            let home = self.cards[card_ix as usize].home_country;
            return self.transaction(time, card_ix, merchant, format!("dev-{card_ix:05}-0"), amount, "atm", home, true);
        }
        let amount = typical * self.rng.random_range(1.5..6.0);
        let merchant = self.rng.random_range(0..self.cfg.merchants);
        let country = FRAUD_COUNTRIES[self.rng.random_range(0..FRAUD_COUNTRIES.len())];
        self.transaction(time, card_ix, merchant, format!("dev-x{device:06}"), amount, "ecom", country, true)
    }

    #[allow(clippy::too_many_arguments)]
    fn transaction(
        &mut self,
        time: i64,
        card_ix: u32,
        merchant: u32,
        device_id: String,
        amount: f64,
        channel: &str,
        country: &str,
        is_fraud: bool,
    ) -> Result<GeneratedMessage> {
        let index = self.emitted_transactions;
        self.emitted_transactions += 1;
        let tx = Transaction {
            event_id: format!("tx-{:x}-{index:08}", self.cfg.seed),
            card_id: format!("card-{card_ix:05}"),
            merchant_id: format!("m-{merchant:04}"),
            device_id,
            amount: (amount * 100.0).round() / 100.0,
            currency: CURRENCY.into(),
            country: country.into(),
            channel: channel.into(),
            customer_segment: self.cards[card_ix as usize].segment.into(),
            event_time: time,
        };
        if self.rng.random::<f64>() >= self.cfg.label_missing_rate {
            let delay = exp_ms(&mut self.rng, self.cfg.label_delay_secs_mean);
            let label = Label {
                event_id: tx.event_id.clone(),
                card_id: tx.card_id.clone(),
                is_fraud,
                event_time: time,
                label_time: time + delay,
            };
            self.labels.push(Some(label));
            let i = self.labels.len() - 1;
            self.schedule(time + delay, PendingKind::Label(i));
        }
        let payload = self.tx_encoder.encode(&tx)?;
        Ok(GeneratedMessage {
            stream: Stream::Transactions,
            key: tx.card_id.clone().into_bytes(),
            payload,
            content: Content::Transaction { tx, is_fraud },
        })
    }

    fn poison(&mut self) -> Result<GeneratedMessage> {
        let kind = PoisonKind::ALL[self.poison_index % PoisonKind::ALL.len()];
        self.poison_index += 1;
        let n = self.poison_index;
        let valid = Transaction {
            event_id: format!("poison-{:x}-{n:06}", self.cfg.seed),
            card_id: format!("card-{:05}", self.rng.random_range(0..self.cfg.cards)),
            merchant_id: "m-0000".into(),
            device_id: "dev-poison".into(),
            amount: 10.0,
            currency: CURRENCY.into(),
            country: "FR".into(),
            channel: "pos".into(),
            customer_segment: "retail".into(),
            event_time: self.cfg.start_ms,
        };
        let payload = match kind {
            PoisonKind::Truncated => {
                let full = self.tx_encoder.encode(&valid)?;
                let cut = self.rng.random_range(6..full.len() - 1);
                full[..cut].to_vec()
            }
            PoisonKind::WrongMagicByte => {
                let mut full = self.tx_encoder.encode(&valid)?;
                full[0] = self.rng.random_range(1..=255);
                full
            }
            PoisonKind::UnknownSchemaId => {
                let mut out = Vec::new();
                write_header(&mut out, 900_000 + n as u32);
                out.extend_from_slice(&self.tx_encoder.encode(&valid)?[5..]);
                out
            }
            PoisonKind::WrongSubject => {
                let label = Label {
                    event_id: valid.event_id.clone(),
                    card_id: valid.card_id.clone(),
                    is_fraud: false,
                    event_time: valid.event_time,
                    label_time: valid.event_time,
                };
                self.label_encoder.encode(&label)?
            }
            PoisonKind::GarbageBody => {
                let mut out = Vec::new();
                write_header(&mut out, self.tx_encoder.schema_id());
                // 0x01 is a zig-zag length of -1 for the first string: never decodable,
                // whatever random bytes follow.
                out.push(0x01);
                let len = self.rng.random_range(0..40);
                out.extend((0..len).map(|_| self.rng.random::<u8>()));
                out
            }
            PoisonKind::InvalidField => {
                let mut bad = valid.clone();
                match n % 4 {
                    0 => bad.amount = -5.0,
                    1 => bad.amount = f64::NAN,
                    2 => bad.card_id = String::new(),
                    _ => bad.event_time = 0,
                }
                self.tx_encoder.encode(&bad)?
            }
        };
        Ok(GeneratedMessage {
            stream: Stream::Transactions,
            key: valid.card_id.into_bytes(),
            payload,
            content: Content::Poison(kind),
        })
    }
}

impl Iterator for Generator {
    type Item = Result<GeneratedMessage>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_message().transpose()
    }
}

/// A standard normal deviate (Box–Muller), from `rng` only, so it is reproducible.
fn normal(rng: &mut ChaCha8Rng) -> f64 {
    let u1: f64 = rng.random::<f64>().max(1e-12);
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, HashSet};
    use std::sync::Arc;

    use weir_schemas::validate::ValidationRules;
    use weir_schemas::wire::{subjects, Decoder, LocalSchemaRegistry, SchemaRegistry};

    use super::*;

    const START_MS: i64 = 1_767_225_600_000;

    fn registry() -> Arc<dyn SchemaRegistry> {
        Arc::new(LocalSchemaRegistry::embedded().unwrap())
    }

    /// Built the way `weir produce` builds it.
    fn generator(cfg: GeneratorConfig) -> Generator {
        let reg = registry();
        Generator::new(
            cfg,
            Encoder::new(reg.as_ref(), subjects::TRANSACTION).unwrap(),
            Encoder::for_schema(reg.latest(subjects::LABEL).unwrap()),
        )
    }

    fn poisoned(seed: u64) -> GeneratorConfig {
        GeneratorConfig { poison_rate: 0.05, ..GeneratorConfig::new(seed, START_MS, 3_000) }
    }

    fn run(cfg: GeneratorConfig) -> Vec<GeneratedMessage> {
        generator(cfg).collect::<Result<Vec<_>>>().unwrap()
    }

    #[test]
    fn same_config_same_bytes() {
        let a = run(poisoned(42));
        let b = run(poisoned(42));
        assert_eq!(a.len(), b.len());
        for (i, (x, y)) in a.iter().zip(&b).enumerate() {
            assert_eq!(x.stream, y.stream, "message {i}");
            assert_eq!(x.key, y.key, "message {i}");
            assert_eq!(x.payload, y.payload, "message {i}");
        }
        let c = run(poisoned(43));
        assert_ne!(
            a.iter().map(|m| &m.payload).collect::<Vec<_>>(),
            c.iter().map(|m| &m.payload).collect::<Vec<_>>()
        );
        // Another start time shifts event times: different bytes too.
        let d = run(GeneratorConfig { start_ms: START_MS + 1, ..poisoned(42) });
        assert_ne!(a[0].payload, d[0].payload);
    }

    struct Parts {
        transactions: Vec<(Transaction, bool)>,
        labels: Vec<Label>,
        poison: Vec<(PoisonKind, Vec<u8>)>,
    }

    fn split(messages: &[GeneratedMessage]) -> Parts {
        let mut parts = Parts { transactions: vec![], labels: vec![], poison: vec![] };
        for m in messages {
            match &m.content {
                Content::Transaction { tx, is_fraud } => {
                    assert_eq!(m.stream, Stream::Transactions);
                    parts.transactions.push((tx.clone(), *is_fraud));
                }
                Content::Label(l) => {
                    assert_eq!(m.stream, Stream::Labels);
                    parts.labels.push(l.clone());
                }
                Content::Poison(kind) => {
                    assert_eq!(m.stream, Stream::Transactions);
                    parts.poison.push((*kind, m.payload.clone()));
                }
            }
        }
        parts
    }

    #[test]
    fn transactions_and_labels_are_consistent() {
        let messages = run(poisoned(7));
        let parts = split(&messages);
        assert_eq!(parts.transactions.len(), 3_000);

        // Transactions in non-decreasing event time, unique event ids, keyed by card.
        assert!(parts.transactions.windows(2).all(|w| w[0].0.event_time <= w[1].0.event_time));
        assert!(parts.transactions[0].0.event_time >= START_MS);
        let by_id: HashMap<&str, (&Transaction, bool)> =
            parts.transactions.iter().map(|(t, f)| (t.event_id.as_str(), (t, *f))).collect();
        assert_eq!(by_id.len(), 3_000);

        // Every label refers to an emitted transaction, agrees with it, and comes after it.
        let mut seen_tx = HashSet::new();
        let mut labelled = HashSet::new();
        for m in &messages {
            match &m.content {
                Content::Transaction { tx, .. } => {
                    assert_eq!(m.key, tx.card_id.as_bytes());
                    seen_tx.insert(tx.event_id.clone());
                }
                Content::Label(l) => {
                    assert_eq!(m.key, l.card_id.as_bytes());
                    assert!(seen_tx.contains(&l.event_id), "label {} before its transaction", l.event_id);
                    let (tx, is_fraud) = by_id[l.event_id.as_str()];
                    assert_eq!((&l.card_id, l.event_time, l.is_fraud), (&tx.card_id, tx.event_time, is_fraud));
                    assert!(l.label_time >= l.event_time);
                    assert!(labelled.insert(l.event_id.clone()), "two labels for {}", l.event_id);
                }
                Content::Poison(_) => {}
            }
        }
        // Labels come out in label-time order, and merged with the transactions the stream
        // is ordered by (event time of transactions, label time of labels): both are drawn
        // from one event-time queue.
        assert!(parts.labels.windows(2).all(|w| w[0].label_time <= w[1].label_time));
        let times: Vec<i64> = messages
            .iter()
            .filter_map(|m| match &m.content {
                Content::Transaction { tx, .. } => Some(tx.event_time),
                Content::Label(l) => Some(l.label_time),
                Content::Poison(_) => None,
            })
            .collect();
        assert!(times.windows(2).all(|w| w[0] <= w[1]));
        // About 2 % of labels never arrive.
        let missing = 3_000 - parts.labels.len();
        assert!((10..=150).contains(&missing), "{missing} labels missing");

        let fraud = parts.transactions.iter().filter(|(_, f)| *f).count() as f64 / 3_000.0;
        assert!((0.005..=0.10).contains(&fraud), "fraud rate {fraud}");
    }

    #[test]
    fn every_poison_kind_appears_in_turn() {
        let parts = split(&run(poisoned(7)));
        let kinds: Vec<PoisonKind> = parts.poison.iter().map(|(k, _)| *k).collect();
        // 5 % of the messages while transactions are out: well over one of each kind.
        assert!(kinds.len() >= 60, "{} poison messages", kinds.len());
        for (i, k) in kinds.iter().enumerate() {
            assert_eq!(*k, PoisonKind::ALL[i % PoisonKind::ALL.len()]);
        }
        // No poison without a poison rate.
        assert!(split(&run(GeneratorConfig::new(7, START_MS, 500))).poison.is_empty());
    }

    #[test]
    fn poison_gets_exactly_its_expected_class_and_the_rest_is_valid() {
        let reg = registry();
        let tx_decoder = Decoder::<Transaction>::new(reg.clone(), subjects::TRANSACTION, &reg.by_id(1).unwrap());
        let label_decoder = Decoder::<Label>::new(reg.clone(), subjects::LABEL, &reg.latest(subjects::LABEL).unwrap());
        let rules = ValidationRules::default();
        let now = START_MS + 3_600_000;
        let mut classes: HashMap<PoisonKind, usize> = HashMap::new();
        for m in run(poisoned(11)) {
            match &m.content {
                Content::Poison(kind) => {
                    let err = match tx_decoder.decode(&m.payload) {
                        Ok(tx) => rules.check(&tx, now).expect_err("poison must not validate"),
                        Err(e) => e,
                    };
                    assert_eq!(err.class, kind.expected_class(), "{kind:?}: {err}");
                    *classes.entry(*kind).or_default() += 1;
                }
                Content::Transaction { tx, .. } => {
                    let decoded = tx_decoder.decode(&m.payload).unwrap();
                    assert_eq!(&decoded, tx);
                    rules.check(&decoded, now).unwrap();
                }
                Content::Label(l) => assert_eq!(&label_decoder.decode(&m.payload).unwrap(), l),
            }
        }
        for kind in PoisonKind::ALL {
            assert!(classes.get(&kind).copied().unwrap_or(0) > 0, "{kind:?} never appeared");
        }
    }

    #[test]
    fn expected_classes() {
        use ErrorClass::*;
        assert_eq!(
            PoisonKind::ALL.map(PoisonKind::expected_class),
            [Malformed, Malformed, UnknownSchema, UnknownSchema, Malformed, Invalid]
        );
    }

    #[test]
    fn drift_changes_the_stream_from_its_index_on() {
        let cfg = GeneratorConfig { drift_at: Some(1_000), ..GeneratorConfig::new(3, START_MS, 3_000) };
        let parts = split(&run(cfg));
        let (before, after) = parts.transactions.split_at(1_000);
        assert!(before.iter().all(|(t, _)| t.country != "MX"));
        assert!(after.iter().any(|(t, _)| t.country == "MX"));
        let mean = |s: &[(Transaction, bool)]| s.iter().map(|(t, _)| t.amount).sum::<f64>() / s.len() as f64;
        assert!(mean(after) > 1.3 * mean(before), "{} vs {}", mean(after), mean(before));
    }

    #[test]
    fn concept_change_moves_the_fraud_pattern_from_its_index_on() {
        // A slow stream (50 minutes of event time), so the 10–30 minute drains finish.
        let cfg = GeneratorConfig { concept_change_at: Some(3_000), event_rate: 2.0, ..GeneratorConfig::new(5, START_MS, 6_000) };
        let parts = split(&run(cfg));
        let (before, after) = parts.transactions.split_at(3_000);
        let atm_fraud = |s: &[(Transaction, bool)]| s.iter().filter(|(t, f)| *f && t.channel == "atm").count();
        let abroad_fraud = |s: &[(Transaction, bool)]| {
            s.iter().filter(|(t, f)| *f && FRAUD_COUNTRIES.contains(&t.country.as_str())).count()
        };
        // Before: only the rare unusual-amount fraud happens to be at an ATM.
        assert!(atm_fraud(after) > 10 * atm_fraud(before).max(2), "{} vs {}", atm_fraud(after), atm_fraud(before));
        // Bursts started before the change may still finish abroad just after it.
        assert!(abroad_fraud(after) < abroad_fraud(before) / 4, "{} vs {}", abroad_fraud(after), abroad_fraud(before));
        // Without the option the stream is the same as it always was.
        assert_eq!(
            run(GeneratorConfig::new(5, START_MS, 500)).iter().map(|m| m.payload.clone()).collect::<Vec<_>>(),
            run(GeneratorConfig { concept_change_at: None, ..GeneratorConfig::new(5, START_MS, 500) })
                .iter()
                .map(|m| m.payload.clone())
                .collect::<Vec<_>>()
        );
    }

    #[test]
    fn generator_config_problems() {
        assert!(GeneratorConfig::new(1, START_MS, 10).problems().is_empty());
        let base = GeneratorConfig::new(1, START_MS, 10);
        let cases: Vec<(GeneratorConfig, &str)> = vec![
            (GeneratorConfig { cards: 0, ..base.clone() }, "at least 1 card"),
            (GeneratorConfig { merchants: 9, ..base.clone() }, "10 merchants"),
            (GeneratorConfig { event_rate: 0.0, ..base.clone() }, "event rate"),
            (GeneratorConfig { event_rate: f64::NAN, ..base.clone() }, "event rate"),
            (GeneratorConfig { burst_probability: 1.0, ..base.clone() }, "burst probability"),
            (GeneratorConfig { label_missing_rate: -0.1, ..base.clone() }, "label missing rate"),
            (GeneratorConfig { poison_rate: 1.0, ..base.clone() }, "poison rate"),
            (GeneratorConfig { label_delay_secs_mean: -1.0, ..base.clone() }, "label delay"),
            (GeneratorConfig { label_delay_secs_mean: f64::INFINITY, ..base.clone() }, "label delay"),
        ];
        for (cfg, needle) in cases {
            let p = cfg.problems();
            assert_eq!(p.len(), 1, "{p:?}");
            assert!(p[0].contains(needle), "{p:?}");
        }
    }

    #[test]
    fn zero_transactions_is_empty() {
        assert!(run(GeneratorConfig { poison_rate: 0.5, ..GeneratorConfig::new(1, START_MS, 0) }).is_empty());
    }
}
