//! Reading a topic back (`podtracer collect`): every partition from its start, up to the end
//! the brokers know now or, when following, for as long as the caller wants.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use rskafka::client::partition::{OffsetAt, PartitionClient, UnknownTopicHandling};

use super::{KafkaError, KafkaSettings, client};

/// Bytes one fetch asks for at most.
const FETCH_BYTES: i32 = 8 << 20;

/// One message read from the topic.
#[derive(Debug, Clone)]
pub struct Message {
    /// The partition it was in.
    pub partition: i32,
    /// Its offset there.
    pub offset: i64,
    /// Its key (lossy UTF-8), if any.
    pub key: Option<String>,
    /// Its value.
    pub value: Vec<u8>,
    /// Its headers.
    pub headers: BTreeMap<String, Vec<u8>>,
    /// Its timestamp.
    pub timestamp: DateTime<Utc>,
}

/// What to read.
#[derive(Debug, Clone, Default)]
pub struct ConsumeOptions {
    /// Only messages with this key.
    pub key: Option<String>,
    /// Only messages whose timestamp is at or after this (the packet sink stamps each
    /// message with its first packet's time). Filtered here, not with a broker offset
    /// lookup, so it works the same on every broker.
    pub since: Option<DateTime<Utc>>,
    /// Keep reading new messages until `stop` is set, instead of ending at the end the
    /// brokers reported when reading started.
    pub follow: bool,
    /// Only the partitions of this share (one reader of several splitting the topic).
    pub share: Option<Share>,
}

/// One reader's part of a topic that `of` readers split among themselves: partition `p`
/// is read by reader `p % of`. Keys map to one partition each ([`super::partition_of`]),
/// so all the messages of a key reach one reader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Share {
    /// This reader, `0..of`.
    pub index: u32,
    /// The readers.
    pub of: u32,
}

impl Share {
    /// Whether this reader reads `partition`.
    pub fn owns(&self, partition: i32) -> bool {
        u32::try_from(partition).is_ok_and(|p| p % self.of.max(1) == self.index)
    }
}

/// Reads the topic, calling `each` with every batch of messages (in offset order within a
/// partition); stops at the end (or, with `follow`, when `stop` is set) or at the first
/// error `each` returns.
pub fn consume<E>(
    settings: &KafkaSettings,
    options: &ConsumeOptions,
    stop: &Arc<AtomicBool>,
    mut each: impl FnMut(Vec<Message>) -> Result<(), E>,
) -> Result<Result<(), E>, KafkaError> {
    let runtime = client::runtime()?;
    runtime.block_on(async {
        let (client, partitions) = client::connect(settings).await?;
        let mut readers = Vec::new();
        let partitions = partitions
            .into_iter()
            .filter(|p| options.share.is_none_or(|s| s.owns(*p)));
        for partition in partitions {
            let pc = client
                .partition_client(
                    settings.topic.clone(),
                    partition,
                    UnknownTopicHandling::Retry,
                )
                .await
                .map_err(|source| KafkaError::Kafka {
                    context: format!("opening {}/{partition}", settings.topic),
                    source,
                })?;
            let start = offset(&pc, OffsetAt::Earliest).await?;
            // The end is the high watermark of the first fetch, not ListOffsets(latest):
            // tansu 0.6 answers that with the last batch's base offset + 1, short of the
            // end when a batch holds several records.
            readers.push((pc, start, None::<i64>));
        }
        loop {
            let mut pending = false;
            for (pc, next, end) in readers.iter_mut() {
                if !options.follow && end.is_some_and(|end| *next >= end) {
                    continue;
                }
                pending = true;
                let wait_ms = if options.follow { 100 } else { 10 };
                // rskafka retries a lost connection forever; a broker that went away is an
                // error after the connect timeout, so a follower can say so (and retry).
                let fetch = pc.fetch_records(*next, 1..FETCH_BYTES, wait_ms);
                let (records, high) = tokio::time::timeout(settings.connect_timeout, fetch)
                    .await
                    .map_err(|_| KafkaError::Timeout {
                        what: format!("fetching {}/{} at {next}", pc.topic(), pc.partition()),
                        brokers: settings.brokers.join(","),
                        after: settings.connect_timeout,
                    })?
                    .map_err(|source| KafkaError::Kafka {
                        context: format!("fetching {}/{} at {next}", pc.topic(), pc.partition()),
                        source,
                    })?;
                // Ends at the end known when reading started, even if it grows.
                let end = *end.get_or_insert(high.max(*next));
                let mut batch = Vec::with_capacity(records.len());
                for r in records {
                    if r.offset < *next {
                        continue; // a fetch can start at the batch holding `next`
                    }
                    if !options.follow && r.offset >= end {
                        *next = end;
                        break;
                    }
                    *next = r.offset + 1;
                    let key = r
                        .record
                        .key
                        .map(|k| String::from_utf8_lossy(&k).into_owned());
                    if options.key.is_some() && key != options.key {
                        continue;
                    }
                    if options
                        .since
                        .is_some_and(|since| r.record.timestamp < since)
                    {
                        continue;
                    }
                    batch.push(Message {
                        partition: pc.partition(),
                        offset: r.offset,
                        key,
                        value: r.record.value.unwrap_or_default(),
                        headers: r.record.headers,
                        timestamp: r.record.timestamp,
                    });
                }
                if !batch.is_empty()
                    && let Err(e) = each(batch)
                {
                    return Ok(Err(e));
                }
            }
            if !pending || stop.load(Ordering::Relaxed) {
                return Ok(Ok(()));
            }
            if options.follow {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    })
}

async fn offset(pc: &PartitionClient, at: OffsetAt) -> Result<i64, KafkaError> {
    pc.get_offset(at).await.map_err(|source| KafkaError::Kafka {
        context: format!("asking the offsets of {}/{}", pc.topic(), pc.partition()),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::Share;

    #[test]
    fn every_partition_has_exactly_one_reader() {
        for of in 1..5u32 {
            for partition in 0..12 {
                let readers = (0..of)
                    .filter(|&index| Share { index, of }.owns(partition))
                    .count();
                assert_eq!(readers, 1, "partition {partition} of {of} readers");
            }
        }
        let first = Share { index: 0, of: 2 };
        assert!(first.owns(0) && !first.owns(1) && first.owns(2));
        assert!(!first.owns(-1));
    }
}
