use super::*;
use crate::config::WindowConfig;
use weir_schemas::store::Applied;

const T0: i64 = 1_767_225_600_000;

fn tx(amount: f64, channel: &str, event_time: i64) -> Transaction {
    Transaction {
        event_id: "e".into(),
        card_id: "c".into(),
        merchant_id: "m".into(),
        device_id: "d".into(),
        amount,
        currency: "EUR".into(),
        country: "FR".into(),
        channel: channel.into(),
        customer_segment: "retail".into(),
        event_time,
    }
}

fn defaults() -> FeatureDefinitions {
    FeatureDefinitions::new(&FeaturesConfig::default()).unwrap()
}

/// The card vector for `tx` given its store answer [count_1m, sum_1m, count_1h, sum_1h,
/// mean_1h].
fn card_vector(defs: &FeatureDefinitions, tx: &Transaction, values: [f64; 5]) -> Vec<f32> {
    let record = transaction_record(tx, defs.paths());
    let mut out = Vec::new();
    defs.assemble(&record, &[ObservationResult { applied: Applied::Applied, values: values.to_vec() }], &mut out);
    out
}

fn interactions() -> FeaturesConfig {
    #[derive(serde::Deserialize)]
    struct File {
        features: FeaturesConfig,
    }
    let text = include_str!("../../../weir.interactions.toml");
    toml::from_str::<File>(text).unwrap().features
}

#[test]
fn default_names_are_the_baseline_models() {
    let defs = defaults();
    assert_eq!(
        defs.names(),
        [
            "amount_log",
            "hour_of_day",
            "channel_ecom",
            "channel_atm",
            "card_count_1m",
            "card_amount_sum_1m",
            "card_count_1h",
            "card_amount_sum_1h",
            "amount_to_card_mean_1h",
        ]
    );
    assert_eq!(defs.paths(), ["event_time", "amount", "channel", "card_id"]);
    assert_eq!(defs.entity_kinds(), ["card"]);
    let card = &defs.engine_spec().entities[0];
    assert_eq!(card.value_names(), ["count_1m", "amount_sum_1m", "count_1h", "amount_sum_1h", "amount_mean_1h"]);
}

#[test]
fn default_ratio_uses_the_longest_window_wherever_it_is() {
    let config = FeaturesConfig {
        windows: vec![
            WindowConfig { name: "1d".into(), length_secs: 86_400, pane_secs: 3_600 },
            WindowConfig { name: "5m".into(), length_secs: 300, pane_secs: 10 },
        ],
        ..FeaturesConfig::default()
    };
    let defs = FeatureDefinitions::new(&config).unwrap();
    assert_eq!(defs.names().last().unwrap(), "amount_to_card_mean_1d");
    // 1d: mean 25 -> 50 / 25 = 2.
    let out = card_vector(&defs, &tx(50.0, "pos", 0), [4.0, 100.0, 1.0, 50.0, 25.0]);
    assert_eq!(out.last(), Some(&2.0));
}

#[test]
fn assemble_known_transaction_like_the_baseline() {
    let defs = defaults();
    // 2026-01-01T13:45:00.5Z: hour 13. 1h: 4 events, 200 -> mean 50; 75 / 50 = 1.5.
    let t = T0 + 13 * 3_600_000 + 45 * 60_000 + 500;
    let out = card_vector(&defs, &tx(75.0, "ecom", t), [2.0, 120.0, 4.0, 200.0, 50.0]);
    let expected: Vec<f32> = vec![(76.0f64).ln() as f32, 13.0, 1.0, 0.0, 2.0, 120.0, 4.0, 200.0, 1.5];
    assert_eq!(out, expected);
}

#[test]
fn channels_hours_amounts_and_ratio_edges() {
    let defs = defaults();
    for (channel, ecom, atm) in [("pos", 0.0, 0.0), ("ecom", 1.0, 0.0), ("atm", 0.0, 1.0), ("other", 0.0, 0.0)] {
        let out = card_vector(&defs, &tx(1.0, channel, 0), [1.0, 1.0, 1.0, 1.0, 1.0]);
        assert_eq!((out[2], out[3]), (ecom, atm), "{channel}");
    }
    for (t, hour) in [(0, 0.0), (3_599_999, 0.0), (3_600_000, 1.0), (86_399_999, 23.0), (-1, 23.0), (-3_600_001, 22.0)] {
        assert_eq!(card_vector(&defs, &tx(1.0, "pos", t), [1.0; 5])[1], hour, "t = {t}");
    }
    for (amount, expected) in [(0.0, 0.0), (-3.0, 0.0), (std::f64::consts::E - 1.0, 1.0), (999.0, 1000f64.ln())] {
        let out = card_vector(&defs, &tx(amount, "pos", 0), [0.0; 5]);
        assert!((out[0] - expected as f32).abs() < 1e-6, "amount {amount}: {}", out[0]);
    }
    for mean in [0.0, -2.0] {
        assert_eq!(card_vector(&defs, &tx(10.0, "pos", 0), [1.0, 5.0, 2.0, -4.0, mean])[8], 1.0);
    }
    assert_eq!(card_vector(&defs, &tx(0.0, "pos", 0), [1.0, 10.0, 3.0, 90.0, 30.0])[8], 0.0);
}

/// End to end on the embedded store: the default vector equals the old hand formula.
#[test]
fn default_vector_through_the_store() {
    use weir_schemas::store::FeatureStore;
    let defs = defaults();
    let store = crate::embedded::EmbeddedStore::new(defs.engine_spec().clone());
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let mut last = Vec::new();
    for (i, (dt, amount)) in [(0, 10.0), (30_000, 30.0), (90_000, 20.0)].into_iter().enumerate() {
        let t = tx(amount, "atm", T0 + dt);
        let record = transaction_record(&t, defs.paths());
        defs.check(&record).unwrap();
        let obs = defs.observations(&record, SourcePosition { topic: "t".into(), partition: 0, offset: i as i64 });
        let r = rt.block_on(store.observe(&obs)).unwrap();
        last.clear();
        defs.assemble(&record, &r.results, &mut last);
    }
    // 1m as of T0 + 90 s: only itself (20); 1h: 60, mean 20 -> ratio 1.
    assert_eq!(last, vec![(21.0f64).ln() as f32, 0.0, 0.0, 1.0, 1.0, 20.0, 3.0, 60.0, 1.0]);
}

#[test]
fn interactions_example_parses_with_the_documented_names() {
    let config = interactions();
    assert_eq!(config.problems(), Vec::<String>::new());
    let defs = FeatureDefinitions::new(&config).unwrap();
    let mut expected: Vec<String> = [
        "hour_of_day",
        "day_of_week",
        "price_log",
        "action_click",
        "action_add_to_cart",
        "device_ios",
        "device_android",
        "dwell_ms",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for w in ["10m", "1h", "24h"] {
        for f in ["count", "dwell_ms_mean", "item_id_distinct", "item_category_distinct", "item_price_mean", "item_price_max"] {
            expected.push(format!("user_{f}_{w}"));
        }
    }
    expected.push("user_seconds_since_last".into());
    for w in ["1h", "24h"] {
        for f in ["count", "user_id_distinct", "dwell_ms_mean"] {
            expected.push(format!("item_{f}_{w}"));
        }
    }
    expected.push("price_to_user_mean_24h".into());
    assert_eq!(defs.names(), expected);
    assert_eq!(defs.entity_kinds(), ["user", "item"]);
    assert_eq!(defs.paths(), ["event_time", "item.price", "action", "device", "dwell_ms", "user.id", "item.id", "item.category"]);

    // A record through it: the ratio uses the user's declared mean of item.price in 24h.
    let record = EventRecord::new(vec![
        FieldValue::Int(T0 + 26 * 3_600_000 + 5), // Friday 2026-01-02, 02:00
        FieldValue::Float(30.0),
        FieldValue::Str("click".into()),
        FieldValue::Null,
        FieldValue::Missing,
        FieldValue::Int(42),
        FieldValue::Str("i-9".into()),
        FieldValue::Str("books".into()),
    ]);
    defs.check(&record).unwrap();
    let obs = defs.observations(&record, SourcePosition { topic: "t".into(), partition: 0, offset: 0 });
    assert_eq!(obs.len(), 2);
    assert_eq!((obs[0].kind.as_str(), obs[0].entity.as_str(), obs[0].values.clone()), ("user", "42", vec![None, Some(30.0)]));
    assert_eq!(obs[0].distinct, vec![Some(distinct_hash(b"i-9")), Some(distinct_hash(b"books"))]);
    assert_eq!((obs[1].kind.as_str(), obs[1].entity.as_str(), obs[1].values.clone()), ("item", "i-9", vec![None]));
    assert_eq!(obs[1].distinct, vec![Some(distinct_hash(b"42"))]);
    let mut user = vec![0.0; 19];
    user[12 + 4] = 20.0; // user_item_price_mean_24h
    let item = vec![0.0; 6];
    let mut out = Vec::new();
    let r = |values: Vec<f64>| ObservationResult { applied: Applied::Applied, values };
    defs.assemble(&record, &[r(user), r(item)], &mut out);
    assert_eq!(out.len(), 34);
    assert_eq!(out[..8], [2.0, 4.0, (31.0f64).ln() as f32, 1.0, 0.0, 0.0, 0.0, 0.0]);
    assert_eq!(out[33], 1.5);
}

#[test]
fn day_of_week_is_monday_zero_in_utc() {
    let mut config = interactions();
    config.transforms.retain(|t| t.kind == "day_of_week");
    config.entities.truncate(1);
    config.entities[0].aggregations.truncate(1);
    let defs = FeatureDefinitions::new(&config).unwrap();
    // 2026-01-01 is a Thursday; 1970-01-01 was one too; 1969-12-31 a Wednesday.
    for (t, day) in [(T0, 3.0), (T0 + 4 * 86_400_000, 0.0), (T0 + 3 * 86_400_000 + 86_399_999, 6.0), (0, 3.0), (-1, 2.0)] {
        let mut values = vec![FieldValue::Missing; defs.paths().len()];
        values[0] = FieldValue::Int(t);
        let mut out = Vec::new();
        defs.assemble(&EventRecord::new(values), &[ObservationResult { applied: Applied::Applied, values: vec![1.0; 3] }], &mut out);
        assert_eq!(out[0], day, "t = {t}");
    }
}

#[test]
fn value_transform_default_and_check_of_events() {
    let defs = defaults();
    let ok = transaction_record(&tx(1.0, "pos", T0), defs.paths());
    defs.check(&ok).unwrap();
    let with = |i: usize, v: FieldValue| {
        let mut r = ok.clone();
        r.values[i] = v;
        defs.check(&r).unwrap_err()
    };
    let e = with(0, FieldValue::Missing);
    assert_eq!((e.class, e.field), (weir_schemas::ErrorClass::Invalid, Some("event_time")));
    assert!(with(0, FieldValue::Float(1.5)).message.contains("not an integer"));
    assert!(with(3, FieldValue::Null).message.contains("card_id is missing"));
    assert!(with(3, FieldValue::Str(String::new())).message.contains("empty"));
    assert!(with(3, FieldValue::Str("x".repeat(257))).message.contains("257 bytes"));
    defs.check(&{
        let mut r = ok.clone();
        r.values[3] = FieldValue::Str("x".repeat(256));
        r
    })
    .unwrap();
    assert_eq!(with(1, FieldValue::Float(f64::NAN)).field, Some("amount"));
    assert!(with(1, FieldValue::Float(f64::INFINITY)).message.contains("not finite"));
    assert!(with(1, FieldValue::Str("12".into())).message.contains("not a number"));
    // Absent numeric fields are fine: log1p and the ratio have neutral values.
    let mut r = ok.clone();
    r.values[1] = FieldValue::Null;
    defs.check(&r).unwrap();
    let mut out = Vec::new();
    defs.assemble(&r, &[ObservationResult { applied: Applied::Applied, values: vec![1.0, 1.0, 1.0, 1.0, 1.0] }], &mut out);
    assert_eq!((out[0], out[8]), (0.0, 1.0));
}

fn transform(kind: &str, name: &str, field: Option<&str>) -> TransformConfig {
    TransformConfig { kind: kind.into(), name: name.into(), field: field.map(str::to_string), values: None, default: None, entity: None, window: None }
}

fn agg(kind: &str, field: Option<&str>) -> AggregationConfig {
    AggregationConfig { kind: kind.into(), field: field.map(str::to_string), alias: None }
}

fn entity(name: &str, aggregations: Vec<AggregationConfig>) -> EntityConfig {
    EntityConfig { name: name.into(), key: format!("{name}.id"), windows: None, aggregations }
}

fn with(transforms: Vec<TransformConfig>, entities: Vec<EntityConfig>) -> FeaturesConfig {
    FeaturesConfig { transforms, entities, ..FeaturesConfig::default() }
}

use crate::config::one_problem;

#[test]
fn value_transform_with_a_default() {
    let mut t = transform("value", "dwell", Some("dwell_ms"));
    t.default = Some(-1.0);
    let defs = FeatureDefinitions::new(&with(vec![t], vec![entity("u", vec![agg("count", None)])])).unwrap();
    assert_eq!(defs.names(), ["dwell", "u_count_1m", "u_count_1h"]);
    let results = [ObservationResult { applied: Applied::Applied, values: vec![1.0, 1.0] }];
    for (v, expected) in [(FieldValue::Int(250), 250.0), (FieldValue::Null, -1.0), (FieldValue::Missing, -1.0)] {
        let mut out = Vec::new();
        defs.assemble(&EventRecord::new(vec![FieldValue::Int(T0), v, FieldValue::Str("u1".into())]), &results, &mut out);
        assert_eq!(out, vec![expected, 1.0, 1.0]);
    }
}

#[test]
fn aliases_windows_and_extra_means() {
    let mut e = entity("m", vec![agg("sum", Some("a.b")), AggregationConfig { alias: Some("amt".into()), ..agg("max", Some("a.b")) }, agg("seconds_since_last", None)]);
    e.windows = Some(vec!["1h".into()]);
    let mut ratio = transform("ratio_to_mean", "r", Some("a.b"));
    ratio.entity = Some("m".into());
    ratio.window = Some("1h".into());
    let defs = FeatureDefinitions::new(&with(vec![ratio], vec![e])).unwrap();
    assert_eq!(defs.names(), ["m_a_b_sum_1h", "m_amt_max_1h", "m_seconds_since_last", "r"]);
    assert_eq!(defs.engine_spec().entities[0].value_names(), ["a_b_sum_1h", "amt_max_1h", "seconds_since_last", "a_b_mean_1h"]);
}

#[test]
fn definition_problems_name_the_entry() {
    let counting = || entity("u", vec![agg("count", None)]);
    one_problem(&with(vec![transform("sqrt", "x", Some("a"))], vec![counting()]), "features.transforms[0] (\"x\"): unknown kind \"sqrt\"");
    one_problem(&with(vec![transform("log1p", "x", None)], vec![counting()]), "features.transforms[0] (\"x\"): kind \"log1p\" needs a field");
    one_problem(&with(vec![transform("hour_of_day", "x", Some("t"))], vec![counting()]), "does not take a field");
    one_problem(&with(vec![transform("log1p", "bad name", Some("a"))], vec![counting()]), "name must be letters");
    one_problem(&with(vec![transform("log1p", "x", Some("a..b"))], vec![counting()]), "not a field path");
    one_problem(&with(vec![transform("one_hot", "x", Some("a"))], vec![counting()]), "non-empty list of values");
    let mut oh = transform("one_hot", "x", Some("a"));
    oh.values = Some(vec![]);
    one_problem(&with(vec![oh.clone()], vec![counting()]), "non-empty list of values");
    oh.values = Some(vec!["p".into(), "p".into()]);
    let p = with(vec![oh], vec![counting()]).problems();
    assert!(p.iter().any(|p| p.contains("listed twice")) && p.iter().any(|p| p.contains("\"x_p\" is defined twice")), "{p:?}");

    one_problem(&with(vec![], vec![entity("u", vec![agg("median", Some("a"))])]), "features.entities[0] (\"u\").aggregations[0]: unknown kind \"median\"");
    one_problem(&with(vec![], vec![entity("u", vec![agg("count", None), agg("sum", None)])]), "features.entities[0] (\"u\").aggregations[1]: kind \"sum\" needs a field");
    one_problem(&with(vec![], vec![entity("u", vec![agg("count", Some("a"))])]), "kind \"count\" does not take a field");
    let mut twice = entity("u", vec![agg("count", None), agg("count", None)]);
    twice.windows = Some(vec!["1m".into()]);
    one_problem(&with(vec![], vec![twice]), "\"u_count_1m\" is defined twice");
    one_problem(&with(vec![], vec![entity("u", vec![agg("seconds_since_last", None), agg("seconds_since_last", None)])]), "seconds_since_last is listed twice");
    one_problem(&with(vec![], vec![entity("u", vec![AggregationConfig { alias: Some("a-b".into()), ..agg("sum", Some("a")) }])]), "as \"a-b\" must be letters");
    one_problem(&with(vec![], vec![entity("u", vec![])]), "features.entities[0] (\"u\"): no aggregations");
    let mut colon = entity("u", vec![agg("count", None)]);
    colon.name = "u:x".into();
    one_problem(&with(vec![], vec![colon]), "name must be letters");
    let p = with(vec![], vec![counting(), counting()]).problems();
    assert_eq!(p[0], "features.entities[1] (\"u\"): name is used by another entity", "{p:?}");
    let mut e = counting();
    e.windows = Some(vec!["1m".into(), "2h".into()]);
    one_problem(&with(vec![], vec![e.clone()]), "features.entities[0] (\"u\"): unknown window \"2h\" (windows: 1m, 1h)");
    e.windows = Some(vec![]);
    one_problem(&with(vec![], vec![e.clone()]), "windows is empty");
    e.windows = Some(vec!["1m".into(), "1m".into()]);
    let p = with(vec![], vec![e.clone()]).problems();
    assert!(p.iter().any(|p| p.contains("window \"1m\" is listed twice")), "{p:?}");
    e.windows = None;
    e.key = "".into();
    one_problem(&with(vec![], vec![e]), "key \"\" is not a field path");

    let ratio = |entity: &str, window: &str| {
        let mut t = transform("ratio_to_mean", "r", Some("x"));
        t.entity = Some(entity.into());
        t.window = Some(window.into());
        t
    };
    let summing = || entity("u", vec![agg("sum", Some("x"))]);
    assert!(with(vec![ratio("u", "1h")], vec![summing()]).problems().is_empty());
    one_problem(&with(vec![ratio("v", "1h")], vec![summing()]), "features.transforms[0] (\"r\"): unknown entity \"v\"");
    one_problem(&with(vec![ratio("u", "2h")], vec![summing()]), "entity \"u\" has no window \"2h\"");
    one_problem(&with(vec![ratio("u", "1h")], vec![counting()]), "entity \"u\" aggregates neither sum nor mean of \"x\"");
    one_problem(&with(vec![ratio("u", "1h")], vec![entity("u", vec![agg("max", Some("x"))])]), "neither sum nor mean");
    one_problem(&with(vec![transform("ratio_to_mean", "r", Some("x"))], vec![summing()]), "needs an entity and a window");
    one_problem(&FeaturesConfig { event_time: "".into(), ..FeaturesConfig::default() }, "features.event_time");
}

#[test]
fn every_definition_problem_is_reported_at_once() {
    let c = with(
        vec![transform("sqrt", "x", None), transform("log1p", "y", None)],
        vec![entity("u", vec![agg("median", None), agg("sum", None)]), entity("u", vec![])],
    );
    // unknown transform kind, missing field, unknown agg kind, missing agg field, duplicate
    // entity, no aggregations.
    assert_eq!(c.problems().len(), 6, "{:?}", c.problems());
    assert!(matches!(FeatureDefinitions::new(&c), Err(crate::Error::Config(p)) if p.len() == 6));
}

#[test]
fn config_round_trips_through_toml() {
    #[derive(serde::Serialize, serde::Deserialize)]
    struct File {
        features: FeaturesConfig,
    }
    for config in [FeaturesConfig::default(), interactions()] {
        let text = toml::to_string(&File { features: config.clone() }).unwrap();
        assert_eq!(toml::from_str::<File>(&text).unwrap().features, config);
    }
}
