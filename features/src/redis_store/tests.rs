use super::*;
use crate::config::FeaturesConfig;
use crate::definitions::FeatureDefinitions;

fn state() -> EntityState {
    let defs = FeatureDefinitions::new(&FeaturesConfig::default()).expect("default features");
    EntityState::new(&defs.engine_spec().entities[0])
}

#[test]
fn state_cache_takes_puts_and_drops_the_least_recently_used() {
    let mut cache = StateCache::new(10);
    for i in 0..10 {
        cache.put("card", &format!("c{i}"), format!("v{i}"), state());
    }
    // Taken out, not there for a second taker; put back under its new version.
    assert_eq!(cache.take("card", "c0").map(|(v, _)| v), Some("v0".to_string()));
    assert!(cache.take("card", "c0").is_none());
    cache.put("card", "c0", "v0b".into(), state());
    assert_eq!(cache.len, 10);
    // One over capacity: the least recently used tenth goes (c1, not c0, which was just
    // put back), the newest stays.
    cache.put("merchant", "m1", "w1".into(), state());
    assert!(cache.len <= 10, "{}", cache.len);
    assert!(cache.take("card", "c1").is_none());
    assert_eq!(cache.take("card", "c0").map(|(v, _)| v), Some("v0b".to_string()));
    assert_eq!(cache.take("merchant", "m1").map(|(v, _)| v), Some("w1".to_string()));
    assert_eq!((cache.hits, cache.misses), (3, 2));
    // Capacity 0: nothing is kept.
    let mut off = StateCache::new(0);
    off.put("card", "c", "v".into(), state());
    assert!(off.take("card", "c").is_none());
}
