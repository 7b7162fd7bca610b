//! The synthetic interactions behind `weir produce --kind interactions`: recommendation
//! traffic in the shape of `interaction.avsc`, and purchases arriving later as labels.
//!
//! A seeded simulation in event time, like the transaction generator next door: same
//! [`InteractionsConfig`] (seed, start time, sizes) → the same messages, byte for byte.
//!
//! The world:
//!
//! - **users** in three segments (`new`, `casual`, `loyal`: the loyal ones come back more
//!   often and buy more), each with a country, a usual device and two favourite
//!   categories;
//! - **items** in twelve categories, each with a log-normal price around its category's
//!   and a popularity drawn from a Zipf law (a few items get most of the traffic);
//! - **sessions** start as a Poisson process (about `event_rate` interactions per second
//!   of event time in all). A session is one user on one device browsing: mostly their
//!   favourite categories, popular items first, coming back to items already seen (bursts
//!   of views of one item a few seconds apart), clicking some, adding a few to the cart.
//!   Some sessions have a hidden intent to buy, which shows as more returns to an item,
//!   longer dwell and more add-to-carts. `dwell_ms` is missing for a tenth of the events.
//!
//! Each interaction gets a [`Label`] later (`label_time` = event time + an exponential
//! delay; a fraction never arrives): `card_id` is the user id and `is_fraud` means *this
//! interaction led to a purchase*. The purchase probability depends on what weir's
//! feature definitions (`weir.interactions.toml`) can see: the action, the dwell, how much
//! the user looked at this item in the last minutes, the price against the prices the
//! user usually looks at, the item's popularity, the user's segment; and on the hidden
//! intent, which those features only reveal indirectly. A model trained on the features
//! therefore ranks purchases well but not perfectly (`tools/train/train_interactions.py`).
//!
//! Interactions are keyed by user id and come out in event-time order (labels in
//! label-time order, merged into the same sequence), so no event is late for weir.

use std::collections::VecDeque;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use weir_schemas::events::{Action, Interaction, Item, Label, User};
use weir_schemas::wire::Encoder;

use super::{exp_ms, normal, Schedule, Stream};
use crate::error::Result;

#[derive(Debug, Clone, PartialEq)]
pub struct InteractionsConfig {
    pub seed: u64,
    /// Event time of the first session, ms since the epoch.
    pub start_ms: i64,
    /// Interactions to generate.
    pub events: u64,
    pub users: u32,
    pub items: u32,
    /// Interactions per second of event time, on average over many sessions.
    pub event_rate: f64,
    pub label_delay_secs_mean: f64,
    /// Fraction of labels that never arrive.
    pub label_missing_rate: f64,
    /// Fraction of interactions whose `dwell_ms` is null.
    pub dwell_missing_rate: f64,
}

impl InteractionsConfig {
    pub fn new(seed: u64, start_ms: i64, events: u64) -> Self {
        InteractionsConfig {
            seed,
            start_ms,
            events,
            users: 1_000,
            items: 1_500,
            event_rate: 1.0,
            label_delay_secs_mean: 600.0,
            label_missing_rate: 0.02,
            dwell_missing_rate: 0.1,
        }
    }

    /// Every problem with these settings.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if self.users == 0 || (self.items as usize) < CATEGORIES.len() {
            p.push(format!(
                "need at least 1 user and {} items (one per category), got {} and {}",
                CATEGORIES.len(),
                self.users,
                self.items
            ));
        }
        if !(self.event_rate.is_finite() && self.event_rate > 0.0) {
            p.push(format!("event rate must be > 0, got {}", self.event_rate));
        }
        for (name, v) in [("label missing rate", self.label_missing_rate), ("dwell missing rate", self.dwell_missing_rate)] {
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

/// What a generated message is.
#[derive(Debug, Clone, PartialEq)]
pub enum InteractionContent {
    /// An interaction, and the generator's ground truth: whether it led to a purchase
    /// (what its label says, if the label arrives).
    Interaction { interaction: Interaction, purchased: bool },
    Label(Label),
}

/// One message, encoded and ready to produce: interactions go to the input topic
/// ([`Stream::Transactions`]), labels to the labels topic.
#[derive(Debug, Clone, PartialEq)]
pub struct InteractionMessage {
    pub stream: Stream,
    pub key: Vec<u8>,
    pub payload: Vec<u8>,
    pub content: InteractionContent,
}

/// Categories and the median price of their items.
const CATEGORIES: [(&str, f64); 12] = [
    ("electronics", 180.0),
    ("books", 15.0),
    ("fashion", 45.0),
    ("home", 60.0),
    ("beauty", 25.0),
    ("sports", 50.0),
    ("toys", 30.0),
    ("grocery", 8.0),
    ("garden", 40.0),
    ("music", 20.0),
    ("games", 50.0),
    ("auto", 70.0),
];
const COUNTRIES: [&str; 8] = ["FR", "DE", "GB", "ES", "IT", "NL", "US", "PL"];
/// Segment, share of users, relative session frequency, mean session length, chance a
/// session means to buy, purchase log-odds shift.
const SEGMENTS: [(&str, f64, f64, f64, f64, f64); 3] = [
    ("new", 0.3, 1.0, 5.0, 0.12, -0.3),
    ("casual", 0.5, 2.0, 7.0, 0.2, 0.0),
    ("loyal", 0.2, 5.0, 11.0, 0.35, 0.4),
];
const DEVICES: [&str; 3] = ["web", "ios", "android"];
/// Zipf exponent of item popularity.
const ZIPF_S: f64 = 0.9;
/// How far back the generator remembers a user's views of an item (its notion of "the
/// user's recent activity on the item"): as long as weir's shortest window.
const RECENT_MS: i64 = 600_000;

struct UserProfile {
    id: String,
    country: &'static str,
    segment: usize,
    device: usize,
    favourites: [usize; 2],
    /// Mean price of the items the user looked at, smoothed (0 before the first).
    usual_price: f64,
    /// (event time, item) of the user's recent interactions.
    recent: VecDeque<(i64, u32)>,
}

struct ItemProfile {
    id: String,
    category: usize,
    price: f64,
    /// log of the popularity weight relative to the mean weight.
    log_popularity: f64,
}

/// Items of one category for sampling by popularity: ids and cumulative weights.
struct CategoryItems {
    items: Vec<u32>,
    cumulative: Vec<f64>,
}

struct Session {
    user: u32,
    device: usize,
    intent: bool,
    category: usize,
    /// Items seen in this session.
    seen: Vec<u32>,
    steps_left: u32,
}

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
enum PendingKind {
    /// The next session start.
    NewSession,
    /// The next interaction of a session (index into `sessions`).
    Step(usize),
    /// A label to release (index into `labels`).
    Label(usize),
}

pub struct InteractionsGenerator {
    cfg: InteractionsConfig,
    rng: ChaCha8Rng,
    users: Vec<UserProfile>,
    /// Cumulative session weights of the users.
    user_weights: Vec<f64>,
    items: Vec<ItemProfile>,
    by_category: Vec<CategoryItems>,
    sessions: Vec<Option<Session>>,
    queue: Schedule<PendingKind>,
    labels: Vec<Option<Label>>,
    emitted: u64,
    interaction_encoder: Encoder,
    label_encoder: Encoder,
}

impl InteractionsGenerator {
    pub fn new(cfg: InteractionsConfig, interaction_encoder: Encoder, label_encoder: Encoder) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
        let users: Vec<UserProfile> = (0..cfg.users)
            .map(|u| {
                let segment = pick(&mut rng, &SEGMENTS.map(|s| s.1));
                let first = rng.random_range(0..CATEGORIES.len());
                let second = (first + rng.random_range(1..CATEGORIES.len())) % CATEGORIES.len();
                UserProfile {
                    id: format!("u-{u:05}"),
                    country: COUNTRIES[pick(&mut rng, &[0.3, 0.2, 0.15, 0.1, 0.1, 0.07, 0.05, 0.03])],
                    segment,
                    device: pick(&mut rng, &[0.45, 0.3, 0.25]),
                    favourites: [first, second],
                    usual_price: 0.0,
                    recent: VecDeque::new(),
                }
            })
            .collect();
        let user_weights = cumulative(users.iter().map(|u| SEGMENTS[u.segment].2));

        // Popularity ranks are a random permutation of the items: item ids say nothing.
        let mut ranks: Vec<u32> = (0..cfg.items).collect();
        for i in (1..ranks.len()).rev() {
            let j = rng.random_range(0..=i);
            ranks.swap(i, j);
        }
        let weights: Vec<f64> = ranks.iter().map(|r| (f64::from(*r) + 1.0).powf(-ZIPF_S)).collect();
        let mean_weight = weights.iter().sum::<f64>() / weights.len().max(1) as f64;
        let items: Vec<ItemProfile> = (0..cfg.items)
            .map(|i| {
                // Every category gets items: the first twelve go one to each.
                let category = if (i as usize) < CATEGORIES.len() { i as usize } else { rng.random_range(0..CATEGORIES.len()) };
                let price = CATEGORIES[category].1 * (0.6 * normal(&mut rng)).exp();
                ItemProfile {
                    id: format!("i-{i:05}"),
                    category,
                    price: (price * 100.0).round() / 100.0,
                    log_popularity: (weights[i as usize] / mean_weight).ln(),
                }
            })
            .collect();
        let by_category = (0..CATEGORIES.len())
            .map(|c| {
                let members: Vec<u32> = (0..cfg.items).filter(|i| items[*i as usize].category == c).collect();
                let cumulative = cumulative(members.iter().map(|i| weights[*i as usize]));
                CategoryItems { items: members, cumulative }
            })
            .collect();
        let mut g = InteractionsGenerator {
            rng,
            users,
            user_weights,
            items,
            by_category,
            sessions: Vec::new(),
            queue: Schedule::new(),
            labels: Vec::new(),
            emitted: 0,
            interaction_encoder,
            label_encoder,
            cfg,
        };
        let start = g.cfg.start_ms;
        g.schedule(start, PendingKind::NewSession);
        g
    }

    fn schedule(&mut self, time: i64, what: PendingKind) {
        self.queue.push(time, what);
    }

    /// Mean session length over session starts (segments weighted by how often they come;
    /// sessions meaning to buy are half as long again).
    fn mean_session_events() -> f64 {
        let starts: f64 = SEGMENTS.iter().map(|s| s.1 * s.2).sum();
        SEGMENTS.iter().map(|s| s.1 * s.2 * s.3 * (1.0 + 0.5 * s.4)).sum::<f64>() / starts
    }

    /// Produces the next message, or `None` when all interactions and their labels are out.
    pub fn next_message(&mut self) -> Result<Option<InteractionMessage>> {
        loop {
            let Some(p) = self.queue.pop() else { return Ok(None) };
            let done = self.emitted >= self.cfg.events;
            match p.what {
                PendingKind::NewSession | PendingKind::Step(_) if done => continue,
                PendingKind::NewSession => {
                    let gap = exp_ms(&mut self.rng, Self::mean_session_events() / self.cfg.event_rate);
                    self.schedule(p.time + gap.max(1), PendingKind::NewSession);
                    let s = self.start_session();
                    return self.step(p.time, s).map(Some);
                }
                PendingKind::Step(s) => return self.step(p.time, s).map(Some),
                PendingKind::Label(i) => {
                    if let Some(label) = self.labels[i].take() {
                        let payload = self.label_encoder.encode(&label)?;
                        return Ok(Some(InteractionMessage {
                            stream: Stream::Labels,
                            key: label.card_id.clone().into_bytes(),
                            payload,
                            content: InteractionContent::Label(label),
                        }));
                    }
                }
            }
        }
    }

    fn start_session(&mut self) -> usize {
        let user = sample(&mut self.rng, &self.user_weights) as u32;
        let u = &self.users[user as usize];
        let (segment, usual_device, favourites) = (u.segment, u.device, u.favourites);
        let device = if self.rng.random::<f64>() < 0.85 { usual_device } else { self.rng.random_range(0..DEVICES.len()) };
        let intent = self.rng.random::<f64>() < SEGMENTS[segment].4;
        let category = self.pick_category(favourites);
        // Geometric length with the segment's mean (at least one event); buyers look longer.
        let mean = SEGMENTS[segment].3 * if intent { 1.5 } else { 1.0 };
        let u: f64 = self.rng.random::<f64>().max(1e-12);
        let steps = 1 + (u.ln() / (1.0 - 1.0 / mean).ln()).floor() as u32;
        let session = Session { user, device, intent, category, seen: Vec::new(), steps_left: steps.min(60) };
        // Reuse a finished session's slot: the vector stays as long as the most sessions open at once.
        match self.sessions.iter().position(Option::is_none) {
            Some(i) => {
                self.sessions[i] = Some(session);
                i
            }
            None => {
                self.sessions.push(Some(session));
                self.sessions.len() - 1
            }
        }
    }

    fn pick_category(&mut self, favourites: [usize; 2]) -> usize {
        if self.rng.random::<f64>() < 0.7 {
            favourites[self.rng.random_range(0..2)]
        } else {
            self.rng.random_range(0..CATEGORIES.len())
        }
    }

    /// The session's next interaction at `time`; schedules the one after, if any.
    fn step(&mut self, time: i64, s: usize) -> Result<InteractionMessage> {
        let Some(mut session) = self.sessions[s].take() else {
            unreachable!("a step is scheduled only for an open session")
        };
        let user = session.user as usize;
        let favourites = self.users[user].favourites;
        // Come back to an item of this session (buyers more often), or look at a new one.
        let p_revisit = if session.intent { 0.45 } else { 0.25 };
        let revisit = !session.seen.is_empty() && self.rng.random::<f64>() < p_revisit;
        let item = if revisit {
            session.seen[self.rng.random_range(0..session.seen.len())]
        } else {
            if self.rng.random::<f64>() < 0.2 {
                session.category = self.pick_category(favourites);
            }
            let c = &self.by_category[session.category];
            let item = c.items[sample(&mut self.rng, &c.cumulative)];
            session.seen.push(item);
            item
        };

        // The user's recent activity on this item, before this event.
        let recent = &mut self.users[user].recent;
        while recent.front().is_some_and(|(t, _)| *t <= time - RECENT_MS) {
            recent.pop_front();
        }
        let recent_views = recent.iter().filter(|(_, i)| *i == item).count() as f64;
        recent.push_back((time, item));

        let it = &self.items[item as usize];
        let (price, log_popularity, category) = (it.price, it.log_popularity, it.category);
        let interest = recent_views + if session.intent { 1.0 } else { 0.0 };
        let p_cart = (0.02 + 0.05 * interest).min(0.4);
        let p_click = (0.25 + 0.1 * interest).min(0.7);
        let r: f64 = self.rng.random();
        let action = if r < p_cart {
            Action::AddToCart
        } else if r < p_cart + p_click {
            Action::Click
        } else {
            Action::View
        };
        let median_dwell_ms = match action {
            Action::View => 6_000.0,
            Action::Click => 15_000.0,
            Action::AddToCart => 25_000.0,
        } * if session.intent { 1.6 } else { 1.0 };
        let dwell = median_dwell_ms * (0.7 * normal(&mut self.rng)).exp();
        let dwell_ms = (self.rng.random::<f64>() >= self.cfg.dwell_missing_rate).then_some(dwell.round() as i64);

        // The purchase: what the features can see, plus the hidden intent.
        let u = &mut self.users[user];
        let usual = if u.usual_price > 0.0 { u.usual_price } else { price };
        u.usual_price = if u.usual_price > 0.0 { 0.8 * u.usual_price + 0.2 * price } else { price };
        let relative_price = if usual > 0.0 && price > 0.0 { (price / usual).ln().clamp(-2.0, 2.0) } else { 0.0 };
        let mut logit = -5.8
            + match action {
                Action::View => 0.0,
                Action::Click => 0.9,
                Action::AddToCart => 2.4,
            }
            + 0.6 * (1.0 + recent_views).ln()
            + if favourites.contains(&category) { 0.3 } else { 0.0 }
            - 0.9 * relative_price
            + 0.25 * log_popularity.clamp(-3.0, 3.0)
            + SEGMENTS[u.segment].5
            + if session.intent { 1.0 } else { 0.0 };
        if let Some(d) = dwell_ms {
            logit += 0.6 * (d.max(1) as f64 / 10_000.0).ln().clamp(-2.0, 2.0);
        }
        let purchased = self.rng.random::<f64>() < 1.0 / (1.0 + (-logit).exp());

        let device = DEVICES[session.device];
        session.steps_left -= 1;
        if session.steps_left > 0 {
            // Bursts: a return to an item, or a quick look after a view, comes seconds later.
            let gap = if revisit || self.rng.random::<f64>() < 0.3 { exp_ms(&mut self.rng, 4.0) } else { exp_ms(&mut self.rng, 25.0) };
            self.sessions[s] = Some(session);
            self.schedule(time + gap.max(1), PendingKind::Step(s));
        }

        let index = self.emitted;
        self.emitted += 1;
        let u = &self.users[user];
        let it = &self.items[item as usize];
        let interaction = Interaction {
            event_id: format!("ix-{:x}-{index:08}", self.cfg.seed),
            user: User { id: u.id.clone(), country: u.country.into(), segment: SEGMENTS[u.segment].0.into() },
            item: Item { id: it.id.clone(), category: CATEGORIES[it.category].0.into(), price: it.price },
            action,
            dwell_ms,
            device: device.into(),
            event_time: time,
        };
        let payload = self.interaction_encoder.encode(&interaction)?;
        if self.rng.random::<f64>() >= self.cfg.label_missing_rate {
            let delay = exp_ms(&mut self.rng, self.cfg.label_delay_secs_mean);
            self.labels.push(Some(Label {
                event_id: interaction.event_id.clone(),
                card_id: interaction.user.id.clone(),
                is_fraud: purchased,
                event_time: time,
                label_time: time + delay,
            }));
            let i = self.labels.len() - 1;
            self.schedule(time + delay, PendingKind::Label(i));
        }
        Ok(InteractionMessage {
            stream: Stream::Transactions,
            key: interaction.user.id.clone().into_bytes(),
            payload,
            content: InteractionContent::Interaction { interaction, purchased },
        })
    }
}

impl Iterator for InteractionsGenerator {
    type Item = Result<InteractionMessage>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_message().transpose()
    }
}

/// Index drawn with probability proportional to `weights` (which need not sum to 1).
fn pick(rng: &mut ChaCha8Rng, weights: &[f64]) -> usize {
    sample(rng, &cumulative(weights.iter().copied()))
}

fn cumulative(weights: impl Iterator<Item = f64>) -> Vec<f64> {
    weights
        .scan(0.0, |acc, w| {
            *acc += w;
            Some(*acc)
        })
        .collect()
}

/// Index drawn from cumulative weights.
fn sample(rng: &mut ChaCha8Rng, cumulative: &[f64]) -> usize {
    let total = cumulative.last().copied().unwrap_or(0.0);
    let x = rng.random::<f64>() * total;
    cumulative.partition_point(|c| *c <= x).min(cumulative.len().saturating_sub(1))
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, HashSet};
    use std::sync::Arc;

    use weir_schemas::wire::{subjects, Decoder, LocalSchemaRegistry, SchemaRegistry};

    use super::*;

    const START_MS: i64 = 1_767_225_600_000;

    fn generator(cfg: InteractionsConfig) -> InteractionsGenerator {
        let reg = LocalSchemaRegistry::embedded().unwrap();
        InteractionsGenerator::new(
            cfg,
            Encoder::new(&reg, subjects::INTERACTION).unwrap(),
            Encoder::for_schema(reg.latest(subjects::LABEL).unwrap()),
        )
    }

    fn run(cfg: InteractionsConfig) -> Vec<InteractionMessage> {
        generator(cfg).collect::<Result<Vec<_>>>().unwrap()
    }

    fn interactions(messages: &[InteractionMessage]) -> Vec<(Interaction, bool)> {
        messages
            .iter()
            .filter_map(|m| match &m.content {
                InteractionContent::Interaction { interaction, purchased } => Some((interaction.clone(), *purchased)),
                InteractionContent::Label(_) => None,
            })
            .collect()
    }

    #[test]
    fn same_config_same_bytes() {
        let a = run(InteractionsConfig::new(42, START_MS, 3_000));
        let b = run(InteractionsConfig::new(42, START_MS, 3_000));
        assert_eq!(a.len(), b.len());
        for (i, (x, y)) in a.iter().zip(&b).enumerate() {
            assert_eq!((x.stream, &x.key, &x.payload), (y.stream, &y.key, &y.payload), "message {i}");
        }
        let c = run(InteractionsConfig::new(43, START_MS, 3_000));
        assert_ne!(a.iter().map(|m| &m.payload).collect::<Vec<_>>(), c.iter().map(|m| &m.payload).collect::<Vec<_>>());
        // Another start shifts the event times and nothing else.
        let d = run(InteractionsConfig::new(42, START_MS + 7 * 86_400_000, 3_000));
        assert_ne!(a[0].payload, d[0].payload);
        let shifted: Vec<(Interaction, bool)> = interactions(&d)
            .into_iter()
            .map(|(mut ix, p)| {
                ix.event_time -= 7 * 86_400_000;
                (ix, p)
            })
            .collect();
        assert_eq!(interactions(&a), shifted);
    }

    #[test]
    fn interactions_and_labels_are_consistent_and_decode() {
        let messages = run(InteractionsConfig::new(7, START_MS, 5_000));
        let reg: Arc<dyn SchemaRegistry> = Arc::new(LocalSchemaRegistry::embedded().unwrap());
        let ix_decoder = Decoder::<Interaction>::new(reg.clone(), subjects::INTERACTION, &reg.latest(subjects::INTERACTION).unwrap());
        let label_decoder = Decoder::<Label>::new(reg.clone(), subjects::LABEL, &reg.latest(subjects::LABEL).unwrap());
        let mut seen: HashMap<String, (Interaction, bool)> = HashMap::new();
        let mut labelled = HashSet::new();
        let mut times = Vec::new();
        for m in &messages {
            match &m.content {
                InteractionContent::Interaction { interaction, purchased } => {
                    assert_eq!(m.stream, Stream::Transactions);
                    assert_eq!(m.key, interaction.user.id.as_bytes());
                    assert_eq!(&ix_decoder.decode(&m.payload).unwrap(), interaction);
                    assert!(interaction.item.price >= 0.0 && interaction.item.price.is_finite());
                    assert!(interaction.dwell_ms.is_none_or(|d| d >= 0));
                    times.push(interaction.event_time);
                    let fresh = seen.insert(interaction.event_id.clone(), (interaction.clone(), *purchased));
                    assert!(fresh.is_none(), "two interactions {}", interaction.event_id);
                }
                InteractionContent::Label(l) => {
                    assert_eq!(m.stream, Stream::Labels);
                    assert_eq!(m.key, l.card_id.as_bytes());
                    assert_eq!(&label_decoder.decode(&m.payload).unwrap(), l);
                    let (ix, purchased) = seen.get(&l.event_id).expect("label after its interaction");
                    assert_eq!((&l.card_id, l.event_time, l.is_fraud), (&ix.user.id, ix.event_time, *purchased));
                    assert!(l.label_time >= l.event_time);
                    assert!(labelled.insert(l.event_id.clone()));
                    times.push(l.label_time);
                }
            }
        }
        assert_eq!(seen.len(), 5_000);
        // One event-time sequence: no interaction is late, labels come in label-time order.
        assert!(times.windows(2).all(|w| w[0] <= w[1]));
        assert!(times[0] >= START_MS);
        let missing = 5_000 - labelled.len();
        assert!((40..=200).contains(&missing), "{missing} labels missing");

        let all: Vec<&(Interaction, bool)> = seen.values().collect();
        let share = |f: &dyn Fn(&Interaction) -> bool| all.iter().filter(|(ix, _)| f(ix)).count() as f64 / all.len() as f64;
        let no_dwell = share(&|ix| ix.dwell_ms.is_none());
        assert!((0.08..=0.12).contains(&no_dwell), "dwell missing {no_dwell}");
        for action in [Action::View, Action::Click, Action::AddToCart] {
            assert!(share(&|ix| ix.action == action) > 0.02, "{action:?} too rare");
        }
        for segment in ["new", "casual", "loyal"] {
            assert!(share(&|ix| ix.user.segment == segment) > 0.05, "{segment} too rare");
        }
        for device in DEVICES {
            assert!(share(&|ix| ix.device == device) > 0.05, "{device} too rare");
        }
        let rate = all.iter().filter(|(_, p)| *p).count() as f64 / all.len() as f64;
        assert!((0.02..=0.15).contains(&rate), "purchase rate {rate}");
        // Purchases follow what the features see: add-to-cart converts far better than a view.
        let conversion = |a: Action| {
            let of: Vec<_> = all.iter().filter(|(ix, _)| ix.action == a).collect();
            of.iter().filter(|(_, p)| *p).count() as f64 / of.len() as f64
        };
        assert!(conversion(Action::AddToCart) > 3.0 * conversion(Action::View));
    }

    #[test]
    fn event_time_advances_at_the_configured_rate() {
        for rate in [0.5, 4.0] {
            let cfg = InteractionsConfig { event_rate: rate, ..InteractionsConfig::new(3, START_MS, 20_000) };
            let ix = interactions(&run(cfg));
            let span_secs = (ix.last().unwrap().0.event_time - START_MS) as f64 / 1000.0;
            let observed = ix.len() as f64 / span_secs;
            assert!((0.75 * rate..=1.33 * rate).contains(&observed), "rate {rate}: observed {observed}");
        }
    }

    #[test]
    fn popular_items_take_most_views_and_no_user_floods() {
        let ix = interactions(&run(InteractionsConfig::new(9, START_MS, 20_000)));
        let mut per_item: HashMap<&str, usize> = HashMap::new();
        let mut per_user: HashMap<&str, usize> = HashMap::new();
        for (i, _) in &ix {
            *per_item.entry(&i.item.id).or_default() += 1;
            *per_user.entry(&i.user.id).or_default() += 1;
        }
        let mut counts: Vec<usize> = per_item.values().copied().collect();
        counts.sort_unstable_by(|a, b| b.cmp(a));
        let top_decile: usize = counts.iter().take(150).sum();
        assert!(top_decile as f64 > 0.3 * ix.len() as f64, "top 10 % of items: {top_decile} views");
        assert!(per_user.len() > 500, "{} users active", per_user.len());
    }

    #[test]
    fn config_problems() {
        assert!(InteractionsConfig::new(1, START_MS, 10).problems().is_empty());
        let base = InteractionsConfig::new(1, START_MS, 10);
        let cases: Vec<(InteractionsConfig, &str)> = vec![
            (InteractionsConfig { users: 0, ..base.clone() }, "at least 1 user"),
            (InteractionsConfig { items: 11, ..base.clone() }, "12 items"),
            (InteractionsConfig { event_rate: 0.0, ..base.clone() }, "event rate"),
            (InteractionsConfig { label_missing_rate: 1.0, ..base.clone() }, "label missing rate"),
            (InteractionsConfig { dwell_missing_rate: -0.1, ..base.clone() }, "dwell missing rate"),
            (InteractionsConfig { label_delay_secs_mean: f64::NAN, ..base.clone() }, "label delay"),
        ];
        for (cfg, needle) in cases {
            let p = cfg.problems();
            assert_eq!(p.len(), 1, "{p:?}");
            assert!(p[0].contains(needle), "{p:?}");
        }
    }

    #[test]
    fn zero_events_is_empty() {
        assert!(run(InteractionsConfig::new(1, START_MS, 0)).is_empty());
    }
}
