//! The store behind a lock, the signals that it (or another replica's) changed (what live
//! pages wait on), and the replicas this dashboard is one of.

use std::sync::{Mutex, MutexGuard};

use snoopy_capture::sink::kafka::merge::PCAPNG_MAGIC;
use snoopy_capture::sink::kafka::{KafkaSettings, Message};
use tokio::sync::watch;

use crate::input::{Origin, kafka_origin};
use crate::replicas::Replicas;
use crate::store::{Limits, Store};

/// The store shared by the inputs and the web server.
#[derive(Debug)]
pub struct Shared {
    store: Mutex<Store>,
    /// This store's version, when it changes.
    changed: watch::Sender<u64>,
    /// Changes of this store or another replica's: a counter, when either changes.
    any_changed: watch::Sender<u64>,
    /// The packets topics followed: where a capture run's packets are read back from.
    packet_topics: Vec<KafkaSettings>,
    replicas: Replicas,
}

/// Nanoseconds since the Unix epoch, now.
pub fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

impl Shared {
    /// An empty store with these limits.
    pub fn new(limits: Limits) -> Self {
        Shared {
            store: Mutex::new(Store::new(limits)),
            changed: watch::Sender::new(0),
            any_changed: watch::Sender::new(0),
            packet_topics: Vec::new(),
            replicas: Replicas::alone(),
        }
    }

    /// The same, as one of these replicas.
    pub fn with_replicas(mut self, replicas: Replicas) -> Self {
        self.replicas = replicas;
        self
    }

    /// The replicas this dashboard is one of.
    pub fn replicas(&self) -> &Replicas {
        &self.replicas
    }

    /// Another replica changed: wakes the live pages.
    pub fn peer_changed(&self) {
        self.any_changed.send_modify(|n| *n += 1);
    }

    /// The same, reading capture runs' packets back from these topics.
    pub fn with_packet_topics(mut self, topics: Vec<KafkaSettings>) -> Self {
        self.packet_topics = topics;
        self
    }

    /// The packets topics followed.
    pub fn packet_topics(&self) -> &[KafkaSettings] {
        &self.packet_topics
    }

    /// Counts a batch of Kafka messages under one lock: packet messages (pcapng, by their
    /// headers) into capture runs, the rest as records.
    pub fn ingest_messages(&self, messages: &[Message]) {
        self.update(|store, received| {
            for m in messages {
                let origin = kafka_origin(m.key.as_deref(), &m.headers);
                // When it was sent: a probe report's time, a capture message's first packet.
                let at = m
                    .timestamp
                    .timestamp_nanos_opt()
                    .map_or(received, |ns| u64::try_from(ns).unwrap_or(0));
                if m.value.starts_with(&PCAPNG_MAGIC) {
                    let packets = m
                        .headers
                        .get("packets")
                        .and_then(|v| std::str::from_utf8(v).ok()?.parse().ok())
                        .unwrap_or(0);
                    store.add_packets(&origin, packets, at);
                } else {
                    store.ingest(&m.value, &origin, at);
                }
            }
        });
    }

    /// The store, locked. A panic while it was held leaves counts, not broken invariants
    /// worth stopping the dashboard for, so a poisoned lock is taken over.
    pub fn lock(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts a batch of lines or messages under one lock, then tells the pages.
    pub fn ingest_batch<'a>(&self, items: impl IntoIterator<Item = (&'a [u8], &'a Origin)>) {
        self.update(|store, received| {
            for (json, origin) in items {
                store.ingest(json, origin, received);
            }
        });
    }

    /// Counts an error of an input, then tells the pages.
    pub fn input_error(&self, what: String) {
        self.update(|store, _| store.input_error(what));
    }

    /// Changes the store under one lock (`change` gets the time now, ns), then wakes the
    /// pages with its new version.
    fn update(&self, change: impl FnOnce(&mut Store, u64)) {
        let version = {
            let mut store = self.lock();
            change(&mut store, now_ns());
            store.version()
        };
        self.changed.send_replace(version);
        self.any_changed.send_modify(|n| *n += 1);
    }

    /// A receiver that wakes when this store changes (its version).
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// A receiver that wakes when this store or another replica's changes (a counter).
    pub fn subscribe_any(&self) -> watch::Receiver<u64> {
        self.any_changed.subscribe()
    }
}
