//! JSON records (flows, probe results) as Kafka messages.

use std::collections::BTreeMap;

use super::producer::{DeliveryHandle, Outgoing, Producer};
use super::{KafkaError, KafkaSettings};

/// Produces one message per JSON record (the value is the record's JSON text, no newline),
/// keyed by the target (`NS/POD`, `pid:N`, a netns path), with headers `node`, `run`,
/// `kind` (the record's `type`, e.g. `flow`, `summary`, `probe`) and `content-type`
/// (`application/json`). Never blocks: a full buffer drops records, counted.
pub struct KafkaRecordSink {
    producer: Producer,
    node: String,
    run: String,
}

impl std::fmt::Debug for KafkaRecordSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaRecordSink")
            .field("node", &self.node)
            .field("run", &self.run)
            .finish_non_exhaustive()
    }
}

impl KafkaRecordSink {
    /// Connects (an error within `settings.connect_timeout` for bad settings or a missing
    /// topic) and starts the producer; `buffer_bytes` bounds what waits for the brokers.
    pub fn connect(
        settings: &KafkaSettings,
        node: impl Into<String>,
        run: impl Into<String>,
        buffer_bytes: usize,
    ) -> Result<Self, KafkaError> {
        Ok(KafkaRecordSink {
            producer: Producer::start(settings, buffer_bytes)?,
            node: node.into(),
            run: run.into(),
        })
    }

    /// Queues one record; `false` if it was dropped because the buffer is full.
    pub fn send(&self, key: &str, kind: &str, json: Vec<u8>) -> bool {
        let mut headers = BTreeMap::new();
        headers.insert("node".into(), self.node.clone().into_bytes());
        headers.insert("run".into(), self.run.clone().into_bytes());
        headers.insert("kind".into(), kind.as_bytes().to_vec());
        headers.insert("content-type".into(), b"application/json".to_vec());
        self.producer.offer(Outgoing {
            key: key.to_string(),
            value: json,
            headers,
            timestamp: chrono::Utc::now(),
            items: 1,
        })
    }

    /// Counts and the final flush.
    pub fn delivery(&self) -> DeliveryHandle {
        self.producer.handle()
    }
}
