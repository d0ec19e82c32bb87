//! Connecting: bootstrap brokers, TLS, SASL, and the topic's partitions — all within a
//! deadline, so bad settings are an error at start and never a hang.

use rskafka::BackoffConfig;
use rskafka::client::{Client, ClientBuilder};

use super::{KafkaError, KafkaSettings};

/// The single-threaded runtime a producer or consumer thread runs on.
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, KafkaError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| KafkaError::Runtime(format!("building the tokio runtime: {e}")))
}

/// Connects to the brokers and returns the client and the topic's partitions.
pub(crate) async fn connect(settings: &KafkaSettings) -> Result<(Client, Vec<i32>), KafkaError> {
    let brokers = settings.brokers.join(",");
    let mut builder = ClientBuilder::new(settings.brokers.clone())
        .client_id(settings.client_id.as_str())
        // rskafka retries forever by default; with a deadline an unreachable broker is an
        // error (at start) and a failed produce comes back to our own retry loop, which
        // keeps accepting and counting while the brokers are away.
        .backoff_config(BackoffConfig {
            deadline: Some(settings.connect_timeout),
            max_backoff: std::time::Duration::from_secs(1),
            ..BackoffConfig::default()
        });
    if let Some(tls) = settings.tls_config()? {
        builder = builder.tls_config(tls);
    }
    if let Some(sasl) = settings.sasl_config() {
        builder = builder.sasl_config(sasl);
    }
    let timeout = settings.connect_timeout;
    let client = tokio::time::timeout(timeout, builder.build())
        .await
        .map_err(|_| KafkaError::Timeout {
            what: "connecting".into(),
            brokers: brokers.clone(),
            after: timeout,
        })?
        .map_err(|source| KafkaError::Kafka {
            context: format!("connecting to {brokers}"),
            source,
        })?;
    let topics = tokio::time::timeout(timeout, client.list_topics())
        .await
        .map_err(|_| KafkaError::Timeout {
            what: "listing topics".into(),
            brokers: brokers.clone(),
            after: timeout,
        })?
        .map_err(|source| KafkaError::Kafka {
            context: format!("listing the topics of {brokers}"),
            source,
        })?;
    let Some(topic) = topics.iter().find(|t| t.name == settings.topic) else {
        return Err(KafkaError::NoSuchTopic {
            topic: settings.topic.clone(),
            brokers,
            available: topics.iter().map(|t| t.name.clone()).collect(),
        });
    };
    if topic.partitions.is_empty() {
        return Err(KafkaError::NoSuchTopic {
            topic: settings.topic.clone(),
            brokers,
            available: topics.iter().map(|t| t.name.clone()).collect(),
        });
    }
    Ok((client, topic.partitions.iter().copied().collect()))
}
