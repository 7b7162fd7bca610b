//! The promotion comparison window is checkpointed incrementally (its own Redis list,
//! appended per batch, emptied when the champion changes) instead of inside the state
//! JSON on every write: written and read back on a real Redis, it restores exactly.

use weir_online_learner::checkpoint::{Acquire, RedisCheckpoint};
use weir_online_learner::config::LearnerConfig;
use weir_online_learner::learner::{Input, Learner, Position};
use weir_schemas::events::{FeatureValue, Label, ModelOutput, Score};
use weir_tests::{unique, Services};

fn batch(from: usize, n: usize, version: &str) -> Vec<(Position, Input)> {
    let mut out = Vec::new();
    for i in from..from + n {
        let (id, t, x) = (format!("e{i}"), 1_000_000 + i as i64, (i % 7) as f64);
        let y = i % 3 == 0;
        out.push((
            Position { topic: "scores".into(), partition: 0, offset: i as i64 },
            Input::Score(Score {
                event_id: id.clone(),
                key: "c".into(),
                event_time: t,
                model_name: "fraud".into(),
                model_version: version.into(),
                output: ModelOutput::binary(if y { 0.7 } else { 0.2 }),
                decision: "approve".into(),
                features: vec![FeatureValue { name: "a".into(), value: x }, FeatureValue { name: "b".into(), value: 1.0 }],
                reasons: vec![],
                scored_at: t,
                attributes: Default::default(),
            }),
        ));
        out.push((
            Position { topic: "labels".into(), partition: 0, offset: i as i64 },
            Input::Label(Label { event_id: id, card_id: "c".into(), is_fraud: y, event_time: t, label_time: t + 1 }),
        ));
    }
    out
}

#[tokio::test]
async fn comparison_window_is_written_incrementally_and_restores_exactly() -> anyhow::Result<()> {
    let services = Services::start()?;
    let mut lc = LearnerConfig { key_prefix: unique("cmp"), ..LearnerConfig::default() };
    lc.promotion.compare_labels = 50;
    let mut cp = RedisCheckpoint::connect(&services.redis_url, &lc.key_prefix, &lc.name).await?;
    assert!(matches!(cp.acquire("test", 10_000).await?, Acquire::Acquired(_)));

    let mut learner = Learner::restore(lc.clone(), None, vec![], vec![], vec![], vec![])?;
    learner.state_mut().promotion.set_champion("v1");
    // Three batches of 30 labels served by v1: the window keeps the last 50.
    for b in 0..3 {
        let mut c = learner.apply(batch(b * 30, 30, "v1"))?;
        assert_eq!(c.compare.len(), 30, "only the batch's new entries are written");
        assert!(!c.state_json.contains("compare\""), "the window is not in the state JSON");
        if b == 0 {
            // The champion was set before the first batch: that write empties the list first.
            assert!(c.compare_reset);
        }
        c.then(learner.commit(0));
        cp.commit(&c).await?;
    }
    let r = cp.load().await?;
    assert_eq!(r.compare.len(), 50);
    let mut restored = Learner::restore(lc.clone(), r.state, r.scores, r.labels, r.joined, r.eval)?;
    restored.restore_compare(r.compare);
    assert_eq!(restored.state().promotion.compare, learner.state().promotion.compare);
    assert_eq!(restored.state().promotion.champion_version.as_deref(), Some("v1"));

    // A new champion empties the window, in Redis too.
    learner.state_mut().promotion.set_champion("v2");
    let mut c = learner.apply(batch(90, 5, "v2"))?;
    c.then(learner.commit(0));
    assert!(c.compare_reset);
    cp.commit(&c).await?;
    let r = cp.load().await?;
    assert_eq!(r.compare.len(), 5);
    let mut restored = Learner::restore(lc, r.state, r.scores, r.labels, r.joined, r.eval)?;
    restored.restore_compare(r.compare);
    assert_eq!(restored.state().promotion.compare, learner.state().promotion.compare);

    // What a batch of 50 labels writes with a full 2000-label window (the figure).
    let mut lc = LearnerConfig { key_prefix: unique("cmp"), ..LearnerConfig::default() };
    lc.promotion.compare_labels = 2_000;
    let mut learner = Learner::restore(lc, None, vec![], vec![], vec![], vec![])?;
    learner.state_mut().promotion.set_champion("v1");
    learner.apply(batch(0, 2_000, "v1"))?;
    let c = learner.apply(batch(2_000, 50, "v1"))?;
    let window_json = serde_json::to_string(&learner.state().promotion.compare)?.len();
    let written: usize = c.compare.iter().map(String::len).sum();
    eprintln!(
        "batch of 50 with a full 2000-label window: state JSON {} bytes + {written} bytes of new window entries \
         (the whole window in the state JSON would add {window_json} bytes per write)",
        c.state_json.len()
    );
    assert_eq!(learner.state().promotion.compare.len(), 2_000);
    assert!(written * 10 < window_json);
    Ok(())
}
