//! The dead-letter topic. A poison message is produced there with its original key and
//! bytes, untouched, and headers saying where it came from and why it was refused
//! (`weir_schemas::events::dead_letter_headers`), so it can be inspected and replayed.

use weir_schemas::events::dead_letter_headers as h;
use weir_schemas::EventError;

use crate::record::InputRecord;
use crate::error::Result;
use crate::producer::{EventProducer, OutgoingMessage};

pub struct DeadLetterSink {
    producer: EventProducer,
    topic: String,
}

impl DeadLetterSink {
    pub fn new(producer: EventProducer, topic: String) -> Self {
        DeadLetterSink { producer, topic }
    }

    /// Produces the dead letters and waits for their delivery.
    pub async fn send(&self, poison: &[(&InputRecord<'_>, &EventError)]) -> Result<()> {
        let now = weir_schemas::now_ms().to_string();
        let messages: Vec<OutgoingMessage> = poison
            .iter()
            .map(|(r, e)| OutgoingMessage {
                key: r.key.map(<[u8]>::to_vec),
                payload: r.payload.unwrap_or_default().to_vec(),
                headers: vec![
                    (h::SOURCE_TOPIC.into(), r.topic.as_bytes().to_vec()),
                    (h::SOURCE_PARTITION.into(), r.partition.to_string().into_bytes()),
                    (h::SOURCE_OFFSET.into(), r.offset.to_string().into_bytes()),
                    (h::ERROR_CLASS.into(), e.class.as_str().as_bytes().to_vec()),
                    (h::ERROR_MESSAGE.into(), e.message.as_bytes().to_vec()),
                    (h::FAILED_AT.into(), now.as_bytes().to_vec()),
                ],
            })
            .collect();
        self.producer.send_all(&self.topic, &messages).await?;
        Ok(())
    }
}
