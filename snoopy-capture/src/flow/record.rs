//! The flow records the table writes: what is sent to sinks, the terminal, the bus.

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::key::{Endpoint, Protocol};
use super::tcp::{Handshake, TcpCounters, TcpOutcome};

pub(crate) fn as_nanos<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

pub(crate) fn from_nanos<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    u64::deserialize(d).map(Duration::from_nanos)
}

/// Packets and bytes one way.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectionStats {
    /// Packets.
    pub packets: u64,
    /// Bytes on the wire (each packet's original length, link header included, as tshark's
    /// conversation statistics count them).
    pub bytes: u64,
    /// Capture time of the first packet, nanoseconds since the Unix epoch (0: none).
    #[serde(
        rename = "first_ns",
        serialize_with = "as_nanos",
        deserialize_with = "from_nanos"
    )]
    pub first: Duration,
    /// Capture time of the last packet, nanoseconds since the Unix epoch (0: none).
    #[serde(
        rename = "last_ns",
        serialize_with = "as_nanos",
        deserialize_with = "from_nanos"
    )]
    pub last: Duration,
}

impl DirectionStats {
    pub(crate) fn add(&mut self, wire_len: u32, ts: Duration) {
        if self.packets == 0 {
            self.first = ts;
        }
        self.packets += 1;
        self.bytes += u64::from(wire_len);
        self.last = ts;
    }
}

/// One endpoint in a record, with its pod name when the caller knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamedEndpoint {
    /// The IP address.
    pub ip: std::net::IpAddr,
    /// The port (ICMP echo identifier; 0 for protocols without ports).
    pub port: u16,
    /// `NAMESPACE/POD` when the address is a known pod's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

impl NamedEndpoint {
    pub(crate) fn new(endpoint: Endpoint) -> Self {
        NamedEndpoint {
            ip: endpoint.ip,
            port: endpoint.port,
            name: None,
        }
    }

    /// The pod name if known, else the address.
    pub fn host(&self) -> String {
        self.name.clone().unwrap_or_else(|| self.ip.to_string())
    }

    /// `host:port` (IPv6 addresses in brackets).
    pub fn label(&self) -> String {
        match (&self.name, self.ip) {
            (Some(name), _) => format!("{name}:{}", self.port),
            (None, std::net::IpAddr::V6(ip)) => format!("[{ip}]:{}", self.port),
            (None, ip) => format!("{ip}:{}", self.port),
        }
    }
}

/// Why a record was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    /// No packet for the idle timeout (or, for a closed or reset TCP connection, for the
    /// shorter linger time).
    Idle,
    /// The flow lasted longer than the active timeout: this record covers one slice of it
    /// and the flow goes on with fresh counters.
    ActiveTimeout,
    /// The table was full and this was the least recently seen flow.
    Evicted,
    /// A new SYN reused the ports of a finished connection.
    PortReuse,
    /// The capture or file ended.
    End,
    /// A periodic snapshot of a flow still in the table (not a final record).
    Snapshot,
}

/// The `"type"` member of a flow record: always `"flow"` (reading anything else back as a
/// flow record is an error).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum FlowType {
    /// `"flow"`.
    #[default]
    #[serde(rename = "flow")]
    Flow,
}

/// TCP details of a flow record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TcpRecord {
    /// How the connection went ([`TcpOutcome`]).
    pub outcome: TcpOutcome,
    /// SYNs the initiator sent (more than one: retries).
    pub syns: u32,
    /// The handshake timings, when the whole handshake was seen.
    pub handshake: Option<Handshake>,
    /// Initiator → responder counters.
    pub fwd: TcpCounters,
    /// Responder → initiator counters.
    pub rev: TcpCounters,
}

/// One flow: a bidirectional conversation between two endpoints over one protocol.
///
/// Serialised as one JSON object ("flow record"); see the crate's flow documentation for
/// the schema. Consumers of the stream (the dashboard) read it back with the same type, so
/// the success and failure rules of [`FlowRecord::failure`] live here only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowRecord {
    /// Always `"flow"`, so records can share a stream with snapshots.
    #[serde(rename = "type")]
    pub kind: FlowType,
    /// Why the record was written.
    pub reason: EndReason,
    /// The protocol.
    pub protocol: Protocol,
    /// The side that started the flow: the sender of the SYN (TCP) or of the first packet.
    pub initiator: NamedEndpoint,
    /// The other side.
    pub responder: NamedEndpoint,
    /// First packet of the flow (either way), nanoseconds since the Unix epoch.
    #[serde(
        rename = "first_ns",
        serialize_with = "as_nanos",
        deserialize_with = "from_nanos"
    )]
    pub first: Duration,
    /// Last packet of the flow, nanoseconds since the Unix epoch.
    #[serde(
        rename = "last_ns",
        serialize_with = "as_nanos",
        deserialize_with = "from_nanos"
    )]
    pub last: Duration,
    /// Initiator → responder.
    pub fwd: DirectionStats,
    /// Responder → initiator.
    pub rev: DirectionStats,
    /// Whether this record continues an earlier record of the same flow (written at an
    /// active timeout); its counters cover only the time since.
    pub continued: bool,
    /// Whether the responder sent anything back.
    pub answered: bool,
    /// The first answer's delay after the first packet (UDP, ICMP, other), nanoseconds.
    #[serde(
        rename = "response_ns",
        serialize_with = "opt_nanos",
        deserialize_with = "opt_from_nanos",
        skip_serializing_if = "Option::is_none",
        default
    )]
    pub response_time: Option<Duration>,
    /// TCP details (`null` for other protocols).
    pub tcp: Option<TcpRecord>,
}

fn opt_nanos<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => as_nanos(d, s),
        None => s.serialize_none(),
    }
}

fn opt_from_nanos<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    Option::<u64>::deserialize(d).map(|ns| ns.map(Duration::from_nanos))
}

impl FlowRecord {
    /// Packets both ways.
    pub fn packets(&self) -> u64 {
        self.fwd.packets + self.rev.packets
    }

    /// Bytes both ways.
    pub fn bytes(&self) -> u64 {
        self.fwd.bytes + self.rev.bytes
    }

    /// Whether this flow counts as a connection attempt for the success statistics: a TCP
    /// flow whose SYN was seen; an ICMP / ICMPv6 echo exchange; a UDP or other flow to a
    /// unicast address. (Multicast and broadcast traffic — neighbour discovery, MLD, mDNS —
    /// expects no answer, and ICMP messages other than echo are not attempts.)
    pub fn is_attempt(&self) -> bool {
        if let Some(tcp) = &self.tcp {
            return tcp.syns > 0;
        }
        let unicast = match self.responder.ip {
            std::net::IpAddr::V4(ip) => !(ip.is_multicast() || ip.is_broadcast()),
            std::net::IpAddr::V6(ip) => !ip.is_multicast(),
        };
        match self.protocol {
            // Echo flows are keyed by identifier (the "port"); other ICMP messages by 0.
            Protocol::Icmp | Protocol::Icmpv6 => unicast && self.initiator.port != 0,
            _ => unicast,
        }
    }

    /// Whether the attempt succeeded: a TCP handshake completed, or any answer came back.
    pub fn is_success(&self) -> bool {
        match &self.tcp {
            Some(tcp) => tcp.handshake.is_some(),
            None => self.answered,
        }
    }

    /// Why an attempt failed (`refused`, `unanswered`, `no_reply`), or `None`.
    pub fn failure(&self) -> Option<&'static str> {
        if !self.is_attempt() || self.is_success() {
            return None;
        }
        match &self.tcp {
            Some(tcp) => match tcp.outcome {
                TcpOutcome::Refused => Some("refused"),
                TcpOutcome::Unanswered => Some("unanswered"),
                TcpOutcome::Open => None, // still waiting: neither success nor failure
                _ => Some("reset"),
            },
            None => Some("no_reply"),
        }
    }

    /// The round trip used for percentiles: the TCP handshake RTT, or the first answer's
    /// delay for other protocols.
    pub fn rtt(&self) -> Option<Duration> {
        match &self.tcp {
            Some(tcp) => tcp.handshake.map(|h| h.rtt),
            None => self.response_time,
        }
    }

    /// Retransmissions both ways (0 for non-TCP flows).
    pub fn retransmissions(&self) -> u64 {
        self.tcp.map_or(0, |t| {
            u64::from(t.fwd.retransmissions) + u64::from(t.rev.retransmissions)
        })
    }
}
