//! Flow identity: the protocol and the two endpoints, the same whichever way a packet goes.

use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::decode::{Decoded, Transport};

/// The transport protocol of a flow, serialised as `tcp`, `udp`, `icmp`, `icmpv6`, `sctp`
/// or the IP protocol number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Protocol {
    /// TCP (6).
    Tcp,
    /// UDP (17).
    Udp,
    /// ICMP (1); flows are echo exchanges keyed by identifier.
    Icmp,
    /// ICMPv6 (58); flows are echo exchanges keyed by identifier.
    Icmpv6,
    /// SCTP (132).
    Sctp,
    /// Any other IP protocol: one flow per address pair and protocol.
    Other(u8),
}

impl Protocol {
    /// The IP protocol number.
    pub fn number(self) -> u8 {
        match self {
            Protocol::Tcp => 6,
            Protocol::Udp => 17,
            Protocol::Icmp => 1,
            Protocol::Icmpv6 => 58,
            Protocol::Sctp => 132,
            Protocol::Other(n) => n,
        }
    }

    /// The protocol for an IP protocol number.
    pub fn from_number(n: u8) -> Self {
        match n {
            6 => Protocol::Tcp,
            17 => Protocol::Udp,
            1 => Protocol::Icmp,
            58 => Protocol::Icmpv6,
            132 => Protocol::Sctp,
            n => Protocol::Other(n),
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Protocol::Tcp => f.write_str("tcp"),
            Protocol::Udp => f.write_str("udp"),
            Protocol::Icmp => f.write_str("icmp"),
            Protocol::Icmpv6 => f.write_str("icmpv6"),
            Protocol::Sctp => f.write_str("sctp"),
            Protocol::Other(n) => write!(f, "{n}"),
        }
    }
}

impl Serialize for Protocol {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Protocol::Other(n) => s.serialize_u8(*n),
            p => s.collect_str(p),
        }
    }
}

impl<'de> Deserialize<'de> for Protocol {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        /// A name (`tcp`, …) or an IP protocol number, as [`Protocol`] serialises.
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Wire<'a> {
            Number(u8),
            Name(std::borrow::Cow<'a, str>),
        }
        match Wire::deserialize(d)? {
            Wire::Number(n) => Ok(Protocol::from_number(n)),
            Wire::Name(name) => match &*name {
                "tcp" => Ok(Protocol::Tcp),
                "udp" => Ok(Protocol::Udp),
                "icmp" => Ok(Protocol::Icmp),
                "icmpv6" => Ok(Protocol::Icmpv6),
                "sctp" => Ok(Protocol::Sctp),
                other => Err(serde::de::Error::unknown_variant(
                    other,
                    &["tcp", "udp", "icmp", "icmpv6", "sctp", "a protocol number"],
                )),
            },
        }
    }
}

/// One end of a flow: an address and a port (the ICMP echo identifier for ICMP, 0 for
/// protocols without ports).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Endpoint {
    /// The IP address.
    pub ip: IpAddr,
    /// The port, ICMP echo identifier, or 0.
    pub port: u16,
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.ip {
            IpAddr::V4(ip) => write!(f, "{ip}:{}", self.port),
            IpAddr::V6(ip) => write!(f, "[{ip}]:{}", self.port),
        }
    }
}

/// A packet's place in a flow: its key, and whether it goes from the key's `lo` endpoint to
/// its `hi` endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Oriented {
    /// The direction-free key.
    pub key: FlowKey,
    /// Whether the packet's source is `key.lo`.
    pub from_lo: bool,
}

/// The direction-free identity of a flow: the protocol and both endpoints, the smaller one
/// first, so that both directions of a conversation find the same entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FlowKey {
    /// The protocol.
    pub protocol: Protocol,
    /// The smaller endpoint.
    pub lo: Endpoint,
    /// The larger endpoint.
    pub hi: Endpoint,
}

impl FlowKey {
    /// The key of a decoded packet, or `None` when it is not IP (ARP, truncated headers).
    ///
    /// TCP, UDP and SCTP use ports; ICMP and ICMPv6 echo messages use their identifier on
    /// both sides (so a ping and its replies are one flow); other ICMP messages and other
    /// protocols use port 0 (one flow per address pair and protocol).
    pub fn of(decoded: &Decoded<'_>) -> Option<Oriented> {
        let (src, dst) = decoded.addresses()?;
        let protocol = Protocol::from_number(decoded.ip_protocol()?);
        let (sport, dport) = match (protocol, decoded.transport) {
            (Protocol::Tcp | Protocol::Udp | Protocol::Sctp, _) => decoded.ports()?,
            (Protocol::Icmp, Some(Transport::Icmp(icmp))) => {
                let id = icmp.id.unwrap_or(0);
                (id, id)
            }
            (Protocol::Icmpv6, Some(Transport::Icmpv6(icmp))) => {
                let id = icmp.id.unwrap_or(0);
                (id, id)
            }
            _ => (0, 0),
        };
        let a = Endpoint {
            ip: src,
            port: sport,
        };
        let b = Endpoint {
            ip: dst,
            port: dport,
        };
        Some(if a <= b {
            Oriented {
                key: FlowKey {
                    protocol,
                    lo: a,
                    hi: b,
                },
                from_lo: true,
            }
        } else {
            Oriented {
                key: FlowKey {
                    protocol,
                    lo: b,
                    hi: a,
                },
                from_lo: false,
            }
        })
    }
}

/// A fast, non-cryptographic hasher for flow keys (the rustc "Fx" multiply-rotate scheme).
///
/// The table hashes every packet's key; SipHash costs more than the rest of the per-packet
/// work. Flooding attacks on the hash are bounded by the table's `max_flows` anyway.
#[derive(Debug, Default, Clone, Copy)]
pub struct FxHasher {
    hash: u64,
}

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl FxHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            self.add(u64::from_le_bytes(chunk.try_into().expect("8 bytes")));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut buf = [0u8; 8];
            buf[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(buf));
        }
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u16(&mut self, i: u16) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.hash
    }
}

/// A `BuildHasher` for [`FxHasher`].
pub type FxBuildHasher = BuildHasherDefault<FxHasher>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::LinkType;

    fn ipv4_udp(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16) -> Vec<u8> {
        let mut p = vec![0x45, 0, 0, 28, 0, 0, 0, 0, 64, 17, 0, 0];
        p.extend_from_slice(&src);
        p.extend_from_slice(&dst);
        p.extend_from_slice(&sport.to_be_bytes());
        p.extend_from_slice(&dport.to_be_bytes());
        p.extend_from_slice(&[0, 8, 0, 0]);
        p
    }

    #[test]
    fn both_directions_share_one_key() {
        let there = ipv4_udp([10, 0, 0, 1], [10, 0, 0, 2], 40000, 53);
        let back = ipv4_udp([10, 0, 0, 2], [10, 0, 0, 1], 53, 40000);
        let a = FlowKey::of(&crate::decode::decode(LinkType::RawIp, &there)).unwrap();
        let b = FlowKey::of(&crate::decode::decode(LinkType::RawIp, &back)).unwrap();
        assert_eq!(a.key, b.key);
        assert_ne!(a.from_lo, b.from_lo);
        assert_eq!(a.key.protocol, Protocol::Udp);
    }

    #[test]
    fn non_ip_has_no_key() {
        let d = crate::decode::decode(LinkType::RawIp, &[0x45]);
        assert!(FlowKey::of(&d).is_none());
    }

    #[test]
    fn protocol_numbers_round_trip() {
        for n in 0..=255u8 {
            assert_eq!(Protocol::from_number(n).number(), n);
        }
        assert_eq!(serde_json::to_string(&Protocol::Tcp).unwrap(), "\"tcp\"");
        assert_eq!(serde_json::to_string(&Protocol::Other(47)).unwrap(), "47");
    }
}
