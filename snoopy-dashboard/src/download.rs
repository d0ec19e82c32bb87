//! A capture run's packets as one pcapng: read back from the packets topics (the messages
//! whose `run` header names it) and merged by time with one interface per pod, exactly as
//! `podtracer collect` merges them (the same code, in snoopy-capture).

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use snoopy_capture::sink::PcapNgSink;
use snoopy_capture::sink::kafka::merge::{
    PCAPNG_MAGIC, PodInterfaces, merge_by_time, message_packets,
};
use snoopy_capture::sink::kafka::{ConsumeOptions, KafkaError, KafkaSettings, consume};
use snoopy_capture::{OwnedPacket, PacketSink};

/// Why a download failed.
#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    /// The dashboard follows no packets topic.
    #[error(
        "no packets topic is followed: start the dashboard with --kafka kafka://BROKER (or …/snoopy.packets)"
    )]
    NoTopics,
    /// No message of the run is on the topics (any more).
    #[error("no packets of run {0:?} on the packets topics (the broker may have dropped them)")]
    NotFound(String),
    /// The run's messages are more than the download may hold.
    #[error(
        "run {run:?} is more than {limit} bytes of messages: use podtracer collect --key … instead"
    )]
    TooLarge {
        /// The run.
        run: String,
        /// The limit, bytes.
        limit: usize,
    },
    /// Reading the topic failed.
    #[error(transparent)]
    Kafka(#[from] KafkaError),
    /// Writing the pcapng failed.
    #[error("writing the pcapng: {0}")]
    Write(#[from] snoopy_capture::Error),
}

/// The pcapng of `run`, at most `limit` bytes of messages.
pub fn run_pcapng(
    topics: &[KafkaSettings],
    run: &str,
    limit: usize,
) -> Result<Vec<u8>, DownloadError> {
    if topics.is_empty() {
        return Err(DownloadError::NoTopics);
    }
    let mut interfaces = PodInterfaces::default();
    let mut by_key: BTreeMap<String, VecDeque<OwnedPacket>> = BTreeMap::new();
    let (mut found, mut bytes) = (0u64, 0usize);
    for settings in topics {
        let stop = Arc::new(AtomicBool::new(false));
        consume(settings, &ConsumeOptions::default(), &stop, |batch| {
            for m in batch {
                let of_run = m.headers.get("run").is_some_and(|r| r == run.as_bytes());
                if !of_run || !m.value.starts_with(&PCAPNG_MAGIC) {
                    continue;
                }
                found += 1;
                bytes += m.value.len();
                if bytes > limit {
                    return Err(DownloadError::TooLarge {
                        run: run.to_string(),
                        limit,
                    });
                }
                // An unreadable message is skipped, as collect skips it; the rest still merge.
                if let Ok(read) = message_packets(&m, &mut interfaces) {
                    let key = m.key.clone().unwrap_or_default();
                    by_key.entry(key).or_default().extend(read.packets);
                }
            }
            Ok(())
        })??;
    }
    if found == 0 {
        return Err(DownloadError::NotFound(run.to_string()));
    }
    let mut sink = PcapNgSink::with_application(Vec::new(), "download", "snoopy-dashboard")?;
    for interface in interfaces.described() {
        sink.add_interface(interface)?;
    }
    merge_by_time(by_key.into_values().collect(), |p| {
        sink.write_packet(p.interface, &p.as_packet())
    })?;
    Ok(sink.into_inner()?)
}
