//! Replay fences' shared topic names, and the position no fence refuses.

use std::collections::HashSet;
use std::sync::{Arc, LazyLock, Mutex};

use weir_schemas::store::SourcePosition;

/// The one shared copy of a topic name, for replay fences. Taken when an entity first sees
/// a partition or is read back, not per event; a process knows a handful of topics.
pub(super) fn intern_topic(topic: &str) -> Arc<str> {
    static TOPICS: LazyLock<Mutex<HashSet<Arc<str>>>> = LazyLock::new(Default::default);
    let mut topics = TOPICS.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(t) = topics.get(topic) {
        return t.clone();
    }
    let t: Arc<str> = topic.into();
    topics.insert(t.clone());
    t
}

/// A position that no fence ever refuses (for previews).
pub fn preview_position() -> SourcePosition {
    SourcePosition { topic: String::new(), partition: -1, offset: i64::MAX }
}
