//! Kafka: packets, flow records and probe results from every pod onto topics, and reading
//! them back (feature `kafka`).
//!
//! * [`KafkaPacketSink`]: a [`PacketSink`](crate::PacketSink) whose messages are small
//!   self-contained pcapng files (topic `snoopy.packets`, key `NS/POD`);
//! * [`KafkaRecordSink`]: JSON records (`snoopy.flows`, `snoopy.probes`);
//! * [`consume()`]: every message of a topic, for `podtracer collect`.
//!
//! Settings come from a URL (`kafka://BROKER[,BROKER…]/TOPIC`) plus the environment or a
//! settings file ([`KafkaSettings::from_env`]): TLS (CA, client certificate) and SASL
//! (PLAIN, SCRAM-SHA-256/512), never from a command line.
//!
//! ## Delivery
//!
//! At least once, in order per key. The capture thread never waits for Kafka: it hands
//! finished messages to a producer thread through an unbounded channel whose *bytes* are
//! bounded ([`BatchLimits::buffer_bytes`]); when the brokers are slow or gone the buffer
//! fills, then new messages are dropped and counted ([`DeliveryReport::dropped`]). The
//! producer retries (with backoff up to 2 s) until the brokers answer again, so when they
//! come back in time nothing is lost; only the head of each partition's queue is ever in
//! flight, which keeps a key's order across retries. [`DeliveryHandle::finish`] sends what
//! is left within a deadline and reports sent / buffered (unsent) / dropped.
//!
//! ## Why rskafka
//!
//! The client is [rskafka](https://docs.rs/rskafka) (pure Rust, tokio, rustls), not
//! rdkafka (bindings to librdkafka):
//!
//! * **images**: no C library to build or ship, so podtracer stays one static binary (musl
//!   or glibc) like the rest of Snoopy, which needs no libpcap either; rdkafka either
//!   compiles librdkafka with cmake (minutes, a C toolchain in every build) or links the
//!   distribution's (Debian 12: 2.0.2) and ties the image to it;
//! * **TLS / SASL**: rustls with the ring provider (the operator's kube client uses the
//!   same), SASL PLAIN and SCRAM-SHA-256/512 — what clusters use;
//! * **maturity**: librdkafka is the more complete client (idempotent and transactional
//!   producing, consumer groups). rskafka is smaller but is InfluxDB IOx's production
//!   client; we need neither transactions nor group coordination, and the ordering that
//!   idempotent producing would give across retries is obtained here by keeping one
//!   request in flight per partition (duplicates after a lost acknowledgement remain
//!   possible: at-least-once);
//! * **the test broker**: it produces to and fetches from tansu 0.6.0, the Kafka-protocol
//!   broker the tests run (checked by `podtracer`'s kafka tests).

mod client;
mod consume;
mod packets;
mod producer;
mod records;
mod settings;

use std::path::PathBuf;
use std::time::Duration;

pub use super::{DEFAULT_FLOWS_TOPIC, DEFAULT_PACKETS_TOPIC, DEFAULT_PROBES_TOPIC};
pub use consume::{ConsumeOptions, Message, Share, consume};

pub mod merge;
pub use packets::{BatchLimits, CaptureIdentity, KafkaPacketSink};
pub use producer::{DeliveryHandle, DeliveryReport, partition_of};
pub use records::KafkaRecordSink;
pub use settings::{
    ENV_CLIENT_ID, ENV_CONFIG, ENV_SASL_MECHANISM, ENV_SASL_PASSWORD, ENV_SASL_PASSWORD_FILE,
    ENV_SASL_USERNAME, ENV_TLS_CA_FILE, ENV_TLS_CERT_FILE, ENV_TLS_KEY_FILE, KafkaSettings, Sasl,
    SaslMechanism, Tls, url_names_topic, url_with_topic,
};

/// What can go wrong talking to Kafka.
#[derive(Debug, thiserror::Error)]
pub enum KafkaError {
    /// The URL or a setting is wrong; the message says which and what is expected.
    #[error("kafka settings: {0}")]
    Settings(String),

    /// A file named by the settings could not be read.
    #[error("kafka: reading the {what} file {}: {source}", path.display())]
    ReadFile {
        /// What the file is for (`TLS CA`, `SASL password`…).
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why it could not be read.
        #[source]
        source: std::io::Error,
    },

    /// The TLS configuration was refused.
    #[error("kafka TLS: {0}")]
    Tls(String),

    /// The brokers did not answer in time.
    #[error(
        "kafka: {what} ({brokers}): no answer after {after:?} — is the broker running and reachable from here?"
    )]
    Timeout {
        /// What was being done.
        what: String,
        /// The brokers.
        brokers: String,
        /// How long we waited.
        after: Duration,
    },

    /// The topic does not exist (podtracer does not create topics: their partitions and
    /// retention are the cluster's decision).
    #[error("kafka: no topic {topic:?} on {brokers} (topics: {}); create it first", if available.is_empty() { "none".to_string() } else { available.join(", ") })]
    NoSuchTopic {
        /// The topic asked for.
        topic: String,
        /// The brokers.
        brokers: String,
        /// The topics that exist.
        available: Vec<String>,
    },

    /// A request failed.
    #[error("kafka: {context}: {source}")]
    Kafka {
        /// What was being done.
        context: String,
        /// The client's error.
        #[source]
        source: rskafka::client::error::Error,
    },

    /// The producer or consumer thread could not run.
    #[error("kafka: {0}")]
    Runtime(String),
}
