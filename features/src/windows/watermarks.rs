//! Per source partition watermarks: the lateness floor shared by every entity.

use weir_schemas::store::Observation;

/// Per source (topic, partition): the newest event time seen, so the *watermark*
/// `newest - lateness`. An event below its partition's watermark is late, whichever
/// entity it belongs to.
#[derive(Debug, Clone, Default)]
pub struct PartitionWatermarks {
    lateness_ms: i64,
    /// Newest event time by topic, then partition: looked up by `&str`, so an event
    /// allocates nothing (a topic is cloned once, when first seen).
    newest: foldhash::HashMap<String, foldhash::HashMap<i32, i64>>,
}

impl PartitionWatermarks {
    pub fn new(lateness_ms: i64) -> Self {
        PartitionWatermarks { lateness_ms, newest: Default::default() }
    }

    /// The watermark of `pos`'s partition, if an event was seen on it.
    pub fn watermark(&self, topic: &str, partition: i32) -> Option<i64> {
        self.newest.get(topic)?.get(&partition).map(|t| t.saturating_sub(self.lateness_ms))
    }

    /// Raises a partition's watermark to at least `watermark` (a persisted one).
    pub fn raise(&mut self, topic: &str, partition: i32, watermark: i64) {
        let t = watermark.saturating_add(self.lateness_ms);
        let e = self.partition(topic).entry(partition).or_insert(t);
        *e = (*e).max(t);
    }

    /// For each observation in batch order, its partition's watermark before it (the
    /// floor it is late below), advancing the watermarks over the batch.
    pub fn floors(&mut self, batch: &[Observation]) -> Vec<Option<i64>> {
        let lateness_ms = self.lateness_ms;
        let mut floors = Vec::with_capacity(batch.len());
        // A batch is runs of one topic (usually one run): its partitions are found once per run.
        for run in batch.chunk_by(|a, b| a.position.topic == b.position.topic) {
            let partitions = self.partition(&run[0].position.topic);
            for o in run {
                floors.push(match partitions.entry(o.position.partition) {
                    std::collections::hash_map::Entry::Occupied(mut e) => {
                        let floor = e.get().saturating_sub(lateness_ms);
                        *e.get_mut() = (*e.get()).max(o.event_time_ms);
                        Some(floor)
                    }
                    std::collections::hash_map::Entry::Vacant(e) => {
                        e.insert(o.event_time_ms);
                        None
                    }
                });
            }
        }
        floors
    }

    /// The partitions of `topic`, created on first sight.
    fn partition(&mut self, topic: &str) -> &mut foldhash::HashMap<i32, i64> {
        if !self.newest.contains_key(topic) {
            return self.newest.entry(topic.to_string()).or_default();
        }
        self.newest.get_mut(topic).unwrap_or_else(|| unreachable!("checked just above"))
    }

    /// The watermarks of the partitions in `batch` (after it): (topic, partition, watermark).
    pub fn of_batch(&self, batch: &[Observation]) -> Vec<(String, i32, i64)> {
        let mut seen: Vec<(String, i32, i64)> = Vec::new();
        for o in batch {
            let p = &o.position;
            if !seen.iter().any(|(t, q, _)| *q == p.partition && *t == p.topic)
                && let Some(w) = self.watermark(&p.topic, p.partition)
            {
                seen.push((p.topic.clone(), p.partition, w));
            }
        }
        seen
    }
}
