//! Packets as self-contained pcapng messages.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::producer::{DeliveryHandle, Outgoing, Producer};
use super::{KafkaError, KafkaSettings};
use crate::sink::PcapNgSink;
use crate::sink::pcapng::write_epb;
use crate::{Interface, Packet, PacketSink, Result};

/// How packets are grouped into messages.
#[derive(Debug, Clone)]
pub struct BatchLimits {
    /// At most this many packets per message.
    pub max_packets: usize,
    /// A message is closed once it holds this many bytes.
    pub max_bytes: usize,
    /// A message is closed when its first packet is this old (checked on every packet and
    /// on every [`flush`](PacketSink::flush), which the capture loop calls when idle).
    pub max_age: Duration,
    /// Bytes of messages waiting for the brokers before new ones are dropped (counted).
    pub buffer_bytes: usize,
}

impl Default for BatchLimits {
    fn default() -> Self {
        BatchLimits {
            max_packets: 1000,
            max_bytes: 512 << 10,
            max_age: Duration::from_millis(200),
            buffer_bytes: 64 << 20,
        }
    }
}

/// What every message's headers say about the capture.
#[derive(Debug, Clone, Default)]
pub struct CaptureIdentity {
    /// The node the capture runs on (header `node`).
    pub node: String,
    /// The capture run's id, the same on every message of one run (header `run`).
    pub run: String,
    /// The key for interfaces whose name does not carry one (`NS/POD`, `pid:N`, a netns
    /// path): see [`KafkaPacketSink`].
    pub default_key: String,
}

/// One interface's message being filled.
struct Batch {
    key: String,
    snaplen: u32,
    /// Section header + interface description block: the start of every message.
    preamble: Vec<u8>,
    headers: BTreeMap<String, Vec<u8>>,
    buf: Vec<u8>,
    packets: usize,
    started: Option<Instant>,
    first_timestamp: Duration,
}

/// A [`PacketSink`] producing packets to Kafka, never blocking the capture.
///
/// Packets of each interface are gathered into messages of at most
/// [`max_packets`](BatchLimits::max_packets) packets / [`max_age`](BatchLimits::max_age);
/// each message is a complete pcapng file (section header, one interface description block,
/// the enhanced packet blocks), so any message alone opens in Wireshark, and the messages of
/// one key concatenated are one valid pcapng file (one section per message).
///
/// The message key is the pod: for an interface named `NS/POD/IFACE` it is `NS/POD`
/// (everything before the last `/`); for a plain interface name (`eth0`) it is
/// [`CaptureIdentity::default_key`] (`NS/POD`, `pid:N` or the namespace path). Headers:
/// `node`, `run`, `interface` (the interface name), `linktype` (the pcap LINKTYPE number),
/// `packets` (how many the message holds), `content-type` (`application/vnd.tcpdump.pcapng`).
pub struct KafkaPacketSink {
    producer: Producer,
    limits: BatchLimits,
    identity: CaptureIdentity,
    batches: Vec<Batch>,
    name: String,
}

impl std::fmt::Debug for KafkaPacketSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaPacketSink")
            .field("name", &self.name)
            .field("interfaces", &self.batches.len())
            .finish_non_exhaustive()
    }
}

impl KafkaPacketSink {
    /// Connects (an error within `settings.connect_timeout` when the brokers cannot be
    /// reached, TLS/SASL fails or the topic does not exist) and starts the producer.
    pub fn connect(
        settings: &KafkaSettings,
        identity: CaptureIdentity,
        limits: BatchLimits,
    ) -> Result<Self, KafkaError> {
        let producer = Producer::start(settings, limits.buffer_bytes)?;
        Ok(KafkaPacketSink {
            producer,
            limits,
            identity,
            batches: Vec::new(),
            name: format!("kafka://{}/{}", settings.brokers.join(","), settings.topic),
        })
    }

    /// Counts and the final flush ([`DeliveryHandle::finish`]); usable after the sink has
    /// been boxed or moved.
    pub fn delivery(&self) -> DeliveryHandle {
        self.producer.handle()
    }

    fn seal(&mut self, index: usize) {
        let batch = &mut self.batches[index];
        if batch.packets == 0 {
            return;
        }
        let mut value = Vec::with_capacity(batch.preamble.len() + batch.buf.len());
        value.extend_from_slice(&batch.preamble);
        value.extend_from_slice(&batch.buf);
        batch.buf.clear();
        let mut headers = batch.headers.clone();
        headers.insert("packets".into(), batch.packets.to_string().into_bytes());
        let timestamp = chrono::DateTime::from_timestamp_nanos(
            i64::try_from(batch.first_timestamp.as_nanos()).unwrap_or(i64::MAX),
        );
        let message = Outgoing {
            key: batch.key.clone(),
            value,
            headers,
            timestamp,
            items: batch.packets as u64,
        };
        batch.packets = 0;
        batch.started = None;
        // A full buffer drops the message; the producer counts it.
        self.producer.offer(message);
    }
}

impl PacketSink for KafkaPacketSink {
    fn add_interface(&mut self, interface: &Interface) -> Result<u32> {
        let key = match interface.name.rsplit_once('/') {
            Some((key, _)) if !key.is_empty() => key.to_string(),
            _ => self.identity.default_key.clone(),
        };
        let mut described = interface.clone();
        if described.description.is_none() {
            described.description = Some(format!("{} in {key}", interface.name));
        }
        let mut one = PcapNgSink::new(Vec::new(), self.name.clone())?;
        one.add_interface(&described)?;
        let preamble = one.into_inner()?;
        let mut headers = BTreeMap::new();
        headers.insert("node".into(), self.identity.node.clone().into_bytes());
        headers.insert("run".into(), self.identity.run.clone().into_bytes());
        headers.insert("interface".into(), interface.name.clone().into_bytes());
        headers.insert(
            "linktype".into(),
            interface.link_type.number().to_string().into_bytes(),
        );
        headers.insert(
            "content-type".into(),
            b"application/vnd.tcpdump.pcapng".to_vec(),
        );
        self.batches.push(Batch {
            key,
            snaplen: interface.snaplen,
            preamble,
            headers,
            buf: Vec::new(),
            packets: 0,
            started: None,
            first_timestamp: Duration::ZERO,
        });
        Ok(self.batches.len() as u32 - 1)
    }

    fn write_packet(&mut self, interface: u32, packet: &Packet<'_>) -> Result<()> {
        let index = interface as usize;
        let Some(batch) = self.batches.get_mut(index) else {
            return Err(crate::sink::unknown_interface(
                &self.name,
                interface,
                self.batches.len(),
            ));
        };
        if batch.packets == 0 {
            batch.started = Some(Instant::now());
            batch.first_timestamp = packet.timestamp;
            batch.buf.reserve(self.limits.max_bytes.min(1 << 20));
        }
        // Every message holds one interface, so its packets are all of interface 0.
        write_epb(&mut batch.buf, 0, batch.snaplen, packet)
            .map_err(|e| crate::Error::io(format!("encoding for {}", self.name), e))?;
        batch.packets += 1;
        if batch.packets >= self.limits.max_packets
            || batch.buf.len() >= self.limits.max_bytes
            || batch
                .started
                .is_some_and(|s| s.elapsed() >= self.limits.max_age)
        {
            self.seal(index);
        }
        Ok(())
    }

    /// Closes every message being filled and hands it to the producer: a flush makes the
    /// packets so far *leave* the capture, it does not wait for the brokers (see
    /// [`DeliveryHandle::finish`]).
    fn flush(&mut self) -> Result<()> {
        for index in 0..self.batches.len() {
            self.seal(index);
        }
        Ok(())
    }
}
