//! The producer thread: messages from the capture thread, produced to the topic in order per
//! key, retried while the brokers are away, bounded in memory.
//!
//! The capture thread never waits for Kafka: [`Producer::offer`] only counts bytes against
//! the buffer bound and hands the message to an unbounded channel; when the bound would be
//! exceeded the message is dropped and counted. The thread runs a single-threaded tokio
//! runtime; each partition keeps a FIFO of its messages and only the head of that FIFO is
//! ever in flight, so a key's messages (one key, one partition) arrive in order even across
//! retries (at-least-once: a produce that timed out after the broker wrote it is sent again).

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use rskafka::client::Client;
use rskafka::client::partition::{Compression, PartitionClient, UnknownTopicHandling};
use rskafka::record::Record;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, error::TryRecvError};

use super::{KafkaError, KafkaSettings, client};

/// Bytes of messages one produce request carries at most.
const REQUEST_BYTES: usize = 1 << 20;
/// Longest wait between two attempts while the brokers are away.
const MAX_BACKOFF: Duration = Duration::from_secs(2);
/// How long one produce request may take before it is retried.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// One message to produce.
#[derive(Debug)]
pub(crate) struct Outgoing {
    pub key: String,
    pub value: Vec<u8>,
    pub headers: BTreeMap<String, Vec<u8>>,
    pub timestamp: DateTime<Utc>,
    /// The items (packets, records) it carries, for the counts.
    pub items: u64,
}

impl Outgoing {
    fn size(&self) -> usize {
        self.key.len()
            + self.value.len()
            + self
                .headers
                .iter()
                .map(|(k, v)| k.len() + v.len())
                .sum::<usize>()
    }
}

enum Command {
    Send(Outgoing),
    Close { deadline: Instant },
}

/// Counts kept by the producer; read at any time through [`DeliveryReport`].
#[derive(Debug, Default)]
struct Counters {
    sent_messages: AtomicU64,
    sent_items: AtomicU64,
    dropped_messages: AtomicU64,
    dropped_items: AtomicU64,
    unsent_messages: AtomicU64,
    unsent_items: AtomicU64,
    failed_attempts: AtomicU64,
    queued_bytes: AtomicUsize,
    queued_items: AtomicU64,
}

/// What happened to the messages handed to a Kafka sink.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct DeliveryReport {
    /// Messages the brokers acknowledged.
    pub sent_messages: u64,
    /// Packets (or records) in them.
    pub sent: u64,
    /// Packets (or records) waiting in the buffer right now (after
    /// [`finish`](DeliveryHandle::finish): those the deadline left unsent).
    pub buffered: u64,
    /// Packets (or records) dropped because the buffer was full.
    pub dropped: u64,
    /// Produce attempts that failed (and were retried).
    pub failed_attempts: u64,
    /// The last produce error, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

struct Shared {
    counters: Counters,
    last_error: std::sync::Mutex<Option<String>>,
    buffer_limit: usize,
}

/// The capture side of the producer.
pub(crate) struct Producer {
    tx: UnboundedSender<Command>,
    shared: Arc<Shared>,
    thread: Arc<std::sync::Mutex<Option<JoinHandle<()>>>>,
}

/// A handle on a Kafka sink's producer: live counts, and the final flush.
#[derive(Clone)]
pub struct DeliveryHandle {
    tx: UnboundedSender<Command>,
    shared: Arc<Shared>,
    thread: Arc<std::sync::Mutex<Option<JoinHandle<()>>>>,
}

impl std::fmt::Debug for DeliveryHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeliveryHandle")
            .field("report", &self.report())
            .finish()
    }
}

impl DeliveryHandle {
    /// The counts so far.
    pub fn report(&self) -> DeliveryReport {
        let c = &self.shared.counters;
        DeliveryReport {
            sent_messages: c.sent_messages.load(Ordering::Relaxed),
            sent: c.sent_items.load(Ordering::Relaxed),
            buffered: c.queued_items.load(Ordering::Relaxed)
                + c.unsent_items.load(Ordering::Relaxed),
            dropped: c.dropped_items.load(Ordering::Relaxed),
            failed_attempts: c.failed_attempts.load(Ordering::Relaxed),
            last_error: self.shared.last_error.lock().ok().and_then(|e| e.clone()),
        }
    }

    /// Sends what is buffered, waiting at most `timeout`, stops the producer and returns the
    /// final counts (`buffered` = what the deadline left unsent). Flush the sink first: a
    /// batch still being filled is not yet buffered here. Calling it again returns the
    /// counts again.
    pub fn finish(&self, timeout: Duration) -> DeliveryReport {
        let deadline = Instant::now() + timeout;
        let _ = self.tx.send(Command::Close { deadline });
        let thread = self.thread.lock().ok().and_then(|mut t| t.take());
        if let Some(thread) = thread {
            // The thread gives up at the deadline (every request has a timeout), so this
            // join is bounded.
            let _ = thread.join();
        }
        self.report()
    }
}

impl Producer {
    /// Connects (within `settings.connect_timeout`, checking that the topic exists) and
    /// starts the producer thread. `buffer_limit` bounds the bytes waiting to be sent.
    pub fn start(settings: &KafkaSettings, buffer_limit: usize) -> Result<Self, KafkaError> {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            counters: Counters::default(),
            last_error: std::sync::Mutex::new(None),
            buffer_limit,
        });
        let (ready_tx, ready_rx) = std::sync::mpsc::sync_channel(1);
        let settings = settings.clone();
        let thread_shared = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("kafka-producer".into())
            .spawn(move || {
                let runtime = match client::runtime() {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                runtime.block_on(async move {
                    let partitions = match connect(&settings).await {
                        Ok(p) => {
                            let _ = ready_tx.send(Ok(()));
                            p
                        }
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                            return;
                        }
                    };
                    run(partitions, rx, &thread_shared).await;
                });
            })
            .map_err(|e| KafkaError::Runtime(format!("spawning the producer thread: {e}")))?;
        ready_rx
            .recv()
            .map_err(|_| KafkaError::Runtime("the producer thread ended at start".into()))??;
        Ok(Producer {
            tx,
            shared,
            thread: Arc::new(std::sync::Mutex::new(Some(thread))),
        })
    }

    /// Queues a message; `false` when the buffer is full and the message was dropped
    /// (counted). Never blocks.
    pub fn offer(&self, message: Outgoing) -> bool {
        let c = &self.shared.counters;
        let size = message.size();
        let queued = c.queued_bytes.fetch_add(size, Ordering::Relaxed);
        if queued + size > self.shared.buffer_limit && queued > 0 {
            c.queued_bytes.fetch_sub(size, Ordering::Relaxed);
            c.dropped_messages.fetch_add(1, Ordering::Relaxed);
            c.dropped_items.fetch_add(message.items, Ordering::Relaxed);
            return false;
        }
        c.queued_items.fetch_add(message.items, Ordering::Relaxed);
        let items = message.items;
        if self.tx.send(Command::Send(message)).is_err() {
            // The producer thread has ended (finished): the message cannot go anywhere.
            c.queued_bytes.fetch_sub(size, Ordering::Relaxed);
            c.queued_items.fetch_sub(items, Ordering::Relaxed);
            c.dropped_messages.fetch_add(1, Ordering::Relaxed);
            c.dropped_items.fetch_add(items, Ordering::Relaxed);
            return false;
        }
        true
    }

    /// A handle for the counts and the final flush.
    pub fn handle(&self) -> DeliveryHandle {
        DeliveryHandle {
            tx: self.tx.clone(),
            shared: Arc::clone(&self.shared),
            thread: Arc::clone(&self.thread),
        }
    }
}

/// The partition a key goes to: FNV-1a of the key, so a key always maps to one partition
/// (and its messages stay in order) for a given partition count. Consumers that split a
/// topic's partitions among themselves ([`super::Share`]) rely on it: one key, one reader.
pub fn partition_of(key: &str, partitions: usize) -> usize {
    let mut hash: u32 = 0x811c_9dc5;
    for b in key.bytes() {
        hash ^= u32::from(b);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash as usize % partitions.max(1)
}

async fn connect(settings: &KafkaSettings) -> Result<Vec<PartitionClient>, KafkaError> {
    let (client, partitions) = client::connect(settings).await?;
    let mut clients = Vec::with_capacity(partitions.len());
    for partition in partitions {
        clients.push(partition_client(&client, settings, partition).await?);
    }
    Ok(clients)
}

async fn partition_client(
    client: &Client,
    settings: &KafkaSettings,
    partition: i32,
) -> Result<PartitionClient, KafkaError> {
    tokio::time::timeout(
        settings.connect_timeout,
        client.partition_client(
            settings.topic.clone(),
            partition,
            UnknownTopicHandling::Retry,
        ),
    )
    .await
    .map_err(|_| KafkaError::Timeout {
        what: format!("finding the leader of {}/{partition}", settings.topic),
        brokers: settings.brokers.join(","),
        after: settings.connect_timeout,
    })?
    .map_err(|source| KafkaError::Kafka {
        context: format!("finding the leader of {}/{partition}", settings.topic),
        source,
    })
}

async fn run(
    partitions: Vec<PartitionClient>,
    mut rx: UnboundedReceiver<Command>,
    shared: &Shared,
) {
    let c = &shared.counters;
    let mut queues: Vec<VecDeque<Outgoing>> =
        (0..partitions.len()).map(|_| VecDeque::new()).collect();
    let mut deadline: Option<Instant> = None;
    let mut backoff = Duration::ZERO;
    let mut open = true;
    loop {
        // Take everything waiting; block only when there is nothing to send.
        loop {
            let command = if open && queues.iter().all(VecDeque::is_empty) && deadline.is_none() {
                match rx.recv().await {
                    Some(c) => c,
                    None => {
                        open = false;
                        break;
                    }
                }
            } else {
                match rx.try_recv() {
                    Ok(c) => c,
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        open = false;
                        break;
                    }
                }
            };
            match command {
                Command::Send(m) => {
                    let p = partition_of(&m.key, partitions.len());
                    queues[p].push_back(m);
                }
                Command::Close { deadline: d } => deadline = Some(d),
            }
        }
        if queues.iter().all(VecDeque::is_empty) {
            if deadline.is_some() || !open {
                return;
            }
            continue;
        }
        if let Some(d) = deadline
            && Instant::now() >= d
        {
            for m in queues.iter_mut().flat_map(|q| q.drain(..)) {
                c.unsent_messages.fetch_add(1, Ordering::Relaxed);
                c.unsent_items.fetch_add(m.items, Ordering::Relaxed);
                c.queued_items.fetch_sub(m.items, Ordering::Relaxed);
                c.queued_bytes.fetch_sub(m.size(), Ordering::Relaxed);
            }
            return;
        }
        if !backoff.is_zero() {
            let wait = deadline.map_or(backoff, |d| {
                backoff.min(d.saturating_duration_since(Instant::now()))
            });
            tokio::time::sleep(wait).await;
        }
        let mut failed = false;
        for (queue, client) in queues.iter_mut().zip(&partitions) {
            if queue.is_empty() {
                continue;
            }
            let mut bytes = 0;
            let take = queue
                .iter()
                .take_while(|m| {
                    bytes += m.size();
                    bytes <= REQUEST_BYTES
                })
                .count()
                .max(1);
            let records: Vec<Record> = queue
                .iter()
                .take(take)
                .map(|m| Record {
                    key: Some(m.key.as_bytes().to_vec()),
                    value: Some(m.value.clone()),
                    headers: m.headers.clone(),
                    timestamp: m.timestamp,
                })
                .collect();
            let limit = deadline.map_or(REQUEST_TIMEOUT, |d| {
                REQUEST_TIMEOUT.min(d.saturating_duration_since(Instant::now()))
            });
            let outcome =
                tokio::time::timeout(limit, client.produce(records, Compression::NoCompression))
                    .await;
            match outcome {
                Ok(Ok(_offsets)) => {
                    for m in queue.drain(..take) {
                        c.sent_messages.fetch_add(1, Ordering::Relaxed);
                        c.sent_items.fetch_add(m.items, Ordering::Relaxed);
                        c.queued_items.fetch_sub(m.items, Ordering::Relaxed);
                        c.queued_bytes.fetch_sub(m.size(), Ordering::Relaxed);
                    }
                }
                Ok(Err(e)) => {
                    failed = true;
                    record_error(
                        shared,
                        format!(
                            "producing to {}/{}: {e}",
                            client.topic(),
                            client.partition()
                        ),
                    );
                }
                Err(_) => {
                    failed = true;
                    record_error(
                        shared,
                        format!(
                            "producing to {}/{}: no answer within {limit:?}",
                            client.topic(),
                            client.partition()
                        ),
                    );
                }
            }
        }
        backoff = if failed {
            (backoff * 2).clamp(Duration::from_millis(100), MAX_BACKOFF)
        } else {
            Duration::ZERO
        };
    }
}

fn record_error(shared: &Shared, error: String) {
    shared
        .counters
        .failed_attempts
        .fetch_add(1, Ordering::Relaxed);
    if let Ok(mut last) = shared.last_error.lock() {
        *last = Some(error);
    }
}

#[cfg(test)]
mod tests {
    use super::partition_of;

    #[test]
    fn a_key_always_lands_on_one_partition() {
        assert_eq!(partition_of("shop/web-0", 3), partition_of("shop/web-0", 3));
        assert!(partition_of("shop/web-0", 3) < 3);
        assert_eq!(partition_of("anything", 1), 0);
        let spread: std::collections::BTreeSet<usize> = (0..50)
            .map(|i| partition_of(&format!("ns/pod-{i}"), 3))
            .collect();
        assert_eq!(spread.len(), 3, "keys spread over the partitions");
    }
}
