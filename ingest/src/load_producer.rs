//! The load generator's producer: sends generated messages to Kafka at a given rate, in
//! chunks, waiting for each chunk's delivery (`weir produce`, the demo, the tests). The
//! delivery-acknowledged producer itself is [`crate::producer`].

use std::time::{Duration, Instant};

use crate::config::TopicsConfig;
use crate::error::Result;
use crate::generator::interactions::{InteractionContent, InteractionMessage};
use crate::generator::{Content, GeneratedMessage, Stream};
use crate::producer::{EventProducer, OutgoingMessage};

/// What was sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProduceReport {
    /// Valid input events (transactions, or interactions).
    pub transactions: u64,
    pub labels: u64,
    pub poison: u64,
    pub elapsed_ms: u64,
}

/// A generated message as [`produce_all`] sends it: the messages of both generators.
pub trait Produced {
    /// The topic it goes to.
    fn stream(&self) -> Stream;
    /// Adds it to the report's counts.
    fn count(&self, report: &mut ProduceReport);
    fn into_outgoing(self) -> OutgoingMessage;
}

impl Produced for GeneratedMessage {
    fn stream(&self) -> Stream {
        self.stream
    }
    fn count(&self, report: &mut ProduceReport) {
        match self.content {
            Content::Transaction { .. } => report.transactions += 1,
            Content::Label(_) => report.labels += 1,
            Content::Poison(_) => report.poison += 1,
        }
    }
    fn into_outgoing(self) -> OutgoingMessage {
        OutgoingMessage::new(self.key, self.payload)
    }
}

impl Produced for InteractionMessage {
    fn stream(&self) -> Stream {
        self.stream
    }
    fn count(&self, report: &mut ProduceReport) {
        match self.content {
            InteractionContent::Interaction { .. } => report.transactions += 1,
            InteractionContent::Label(_) => report.labels += 1,
        }
    }
    fn into_outgoing(self) -> OutgoingMessage {
        OutgoingMessage::new(self.key, self.payload)
    }
}

/// Sends `messages` in chunks, waiting for delivery of each chunk, at most `rate`
/// messages per second on the transactions topic (`None`: as fast as the broker takes
/// them). `on_chunk` sees the running report after each chunk.
pub async fn produce_all(
    producer: &EventProducer,
    topics: &TopicsConfig,
    messages: impl IntoIterator<Item = Result<impl Produced>>,
    rate: Option<f64>,
    mut on_chunk: impl FnMut(&ProduceReport),
) -> Result<ProduceReport> {
    const CHUNK: usize = 500;
    let started = Instant::now();
    let mut report = ProduceReport::default();
    let mut tx_chunk = Vec::with_capacity(CHUNK);
    let mut label_chunk = Vec::with_capacity(CHUNK);
    let mut sent_tx = 0u64;
    let mut iter = messages.into_iter();
    loop {
        let next = iter.next().transpose()?;
        let end = next.is_none();
        if let Some(m) = next {
            m.count(&mut report);
            match m.stream() {
                Stream::Transactions => tx_chunk.push(m.into_outgoing()),
                Stream::Labels => label_chunk.push(m.into_outgoing()),
            }
        }
        if end || tx_chunk.len() >= CHUNK || label_chunk.len() >= CHUNK {
            if let Some(rate) = rate.filter(|r| *r > 0.0) {
                // Pace on the transactions topic: sleep until this chunk is due.
                let due = Duration::from_secs_f64((sent_tx + tx_chunk.len() as u64) as f64 / rate);
                if let Some(wait) = due.checked_sub(started.elapsed()) {
                    tokio::time::sleep(wait).await;
                }
            }
            let (a, b) = tokio::join!(
                producer.send_all(&topics.input, &tx_chunk),
                producer.send_all(&topics.labels, &label_chunk)
            );
            a?;
            b?;
            sent_tx += tx_chunk.len() as u64;
            tx_chunk.clear();
            label_chunk.clear();
            report.elapsed_ms = started.elapsed().as_millis() as u64;
            on_chunk(&report);
        }
        if end {
            return Ok(report);
        }
    }
}
