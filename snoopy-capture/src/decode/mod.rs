//! Decoding packets into tcpdump-style one-line summaries and JSON.
//!
//! [`decode`] is a zero-copy dissector: it walks the link header (Ethernet, Linux cooked v1
//! and v2, raw IP), any VLAN tags, the network layer (IPv4, IPv6 with its extension headers,
//! ARP) and the transport layer (TCP, UDP, ICMP, ICMPv6, SCTP), and returns a [`Decoded`]
//! that borrows the packet bytes. Flows and filters build on it: addresses, ports, protocol,
//! TCP flags/seq/ack/window/payload length and ICMP type/code/id/seq are all fields.
//!
//! It never panics, whatever the bytes (a proptest checks this for every link type): it
//! decodes what it can and records in [`Decoded::problem`] the first layer it could not
//! decode, where, and why ([`Problem`]). [`DecodeStats`] counts malformed packets for callers.
//!
//! On top of it, [`Summarizer`] writes tcpdump `-n` lines and every type here serialises to
//! JSON with serde.
//!
//! The parsing is by hand rather than with `pnet_packet`: pnet's accessors trust the length
//! fields (some of its `payload()` computations can index out of bounds on hostile input),
//! and every bounds check here must produce a [`Problem`] naming the layer and offset. The
//! tests build their packets independently of this code.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use serde::Serialize;

use crate::LinkType;

mod dns;
mod igmp;
mod ip;
mod link;
mod summary;
mod text;
pub mod time;
mod transport;
mod verbose;

pub use summary::{Payload, Summarizer, SummaryOptions};
pub use time::{TimeFormat, TimestampPrecision};

/// A 6-byte Ethernet (MAC) address, shown as `02:00:00:00:00:0a`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct MacAddr(pub [u8; 6]);

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

impl fmt::Debug for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl Serialize for MacAddr {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A link-layer address of up to 8 bytes (Linux cooked headers), shown colon-separated.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct LinkAddr {
    bytes: [u8; 8],
    len: u8,
}

impl LinkAddr {
    /// The address bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

impl fmt::Display for LinkAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, b) in self.as_bytes().iter().enumerate() {
            if i > 0 {
                f.write_str(":")?;
            }
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for LinkAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl Serialize for LinkAddr {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// The link layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Link {
    /// An Ethernet II header; `ethertype` is the outer one (0x8100 for a tagged frame).
    Ethernet {
        /// Source address.
        src: MacAddr,
        /// Destination address.
        dst: MacAddr,
        /// The EtherType field (or, up to 1500, an 802.3 length).
        ethertype: u16,
    },
    /// A Linux cooked v1 header (`-i any`).
    LinuxSll {
        /// `PACKET_HOST` (0), `PACKET_BROADCAST` (1), `PACKET_MULTICAST` (2),
        /// `PACKET_OTHERHOST` (3), `PACKET_OUTGOING` (4).
        packet_type: u16,
        /// The `ARPHRD_*` type of the interface.
        arphrd: u16,
        /// The sender's link-layer address.
        addr: LinkAddr,
        /// The protocol (an EtherType).
        protocol: u16,
    },
    /// A Linux cooked v2 header (`-i any` with interface indexes).
    LinuxSll2 {
        /// The protocol (an EtherType).
        protocol: u16,
        /// The interface index the packet was seen on.
        ifindex: u32,
        /// The `ARPHRD_*` type of the interface.
        arphrd: u16,
        /// Packet type, as in [`Link::LinuxSll`].
        packet_type: u8,
        /// The sender's link-layer address.
        addr: LinkAddr,
    },
    /// No link header: the packet starts with an IP header.
    RawIp,
    /// A link type this module does not decode.
    Unsupported {
        /// Its `LINKTYPE_*` number.
        link_type: u32,
    },
}

/// One 802.1Q / 802.1ad tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Vlan {
    /// The tag protocol identifier (0x8100, 0x88a8, 0x9100).
    pub tpid: u16,
    /// VLAN id (12 bits).
    pub id: u16,
    /// Priority code point (3 bits).
    pub priority: u8,
    /// Drop eligible indicator.
    pub dei: bool,
    /// The EtherType after this tag.
    pub ethertype: u16,
}

/// The most VLAN tags decoded; more is reported as a [`Problem`].
pub const MAX_VLANS: usize = 4;

/// The VLAN tags of a frame, outermost first (at most [`MAX_VLANS`], held inline).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Vlans {
    tags: [Option<Vlan>; MAX_VLANS],
}

impl Vlans {
    /// The tags, outermost first.
    pub fn iter(&self) -> impl Iterator<Item = &Vlan> {
        self.tags.iter().map_while(Option::as_ref)
    }

    /// Whether the frame had no tag.
    pub fn is_empty(&self) -> bool {
        self.tags[0].is_none()
    }

    fn push(&mut self, vlan: Vlan) -> bool {
        match self.tags.iter_mut().find(|t| t.is_none()) {
            Some(slot) => {
                *slot = Some(vlan);
                true
            }
            None => false,
        }
    }
}

impl Serialize for Vlans {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

/// An IPv4 header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Ipv4 {
    /// Source address.
    pub src: Ipv4Addr,
    /// Destination address.
    pub dst: Ipv4Addr,
    /// Header length in bytes (IHL × 4).
    pub header_len: u8,
    /// Type of service / DSCP+ECN byte.
    pub tos: u8,
    /// Total length field (header + payload).
    pub total_len: u16,
    /// Identification.
    pub id: u16,
    /// Don't-fragment flag.
    pub dont_fragment: bool,
    /// More-fragments flag.
    pub more_fragments: bool,
    /// Fragment offset in bytes.
    pub fragment_offset: u16,
    /// Time to live.
    pub ttl: u8,
    /// The payload protocol number.
    pub protocol: u8,
    /// Header checksum (not verified).
    pub checksum: u16,
}

/// An IPv6 fragment header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Ipv6Fragment {
    /// Fragment offset in bytes.
    pub offset: u16,
    /// More-fragments flag.
    pub more: bool,
    /// Identification.
    pub id: u32,
}

/// An IPv6 header and the extension headers skipped to reach the upper layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Ipv6 {
    /// Source address.
    pub src: Ipv6Addr,
    /// Destination address.
    pub dst: Ipv6Addr,
    /// Traffic class.
    pub traffic_class: u8,
    /// Flow label (20 bits).
    pub flow_label: u32,
    /// Payload length field (extension headers included).
    pub payload_len: u16,
    /// Hop limit.
    pub hop_limit: u8,
    /// The upper-layer protocol after the extension headers.
    pub protocol: u8,
    /// Whether a hop-by-hop options header was present.
    pub hop_by_hop: bool,
    /// Whether a destination options header was present.
    pub destination_options: bool,
    /// Whether a routing header was present.
    pub routing: bool,
    /// The fragment header, if any.
    pub fragment: Option<Ipv6Fragment>,
}

/// An ARP (or RARP) message; addresses are decoded for Ethernet/IPv4, the common case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Arp {
    /// Hardware type (1 = Ethernet).
    pub hardware_type: u16,
    /// Protocol type (0x0800 = IPv4).
    pub protocol_type: u16,
    /// Operation: 1 request, 2 reply, 3/4 RARP.
    pub operation: u16,
    /// Sender hardware address (Ethernet/IPv4 ARP only).
    pub sender_mac: Option<MacAddr>,
    /// Sender protocol address.
    pub sender_ip: Option<Ipv4Addr>,
    /// Target hardware address.
    pub target_mac: Option<MacAddr>,
    /// Target protocol address.
    pub target_ip: Option<Ipv4Addr>,
}

/// The network layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Network {
    /// IPv4.
    Ipv4(Ipv4),
    /// IPv6.
    Ipv6(Ipv6),
    /// ARP.
    Arp(Arp),
    /// An EtherType not decoded here.
    Other {
        /// The EtherType.
        ethertype: u16,
    },
}

/// TCP flags, the 9 bits after the data offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TcpFlags(pub u16);

impl TcpFlags {
    /// FIN.
    pub const FIN: u16 = 0x001;
    /// SYN.
    pub const SYN: u16 = 0x002;
    /// RST.
    pub const RST: u16 = 0x004;
    /// PSH.
    pub const PSH: u16 = 0x008;
    /// ACK.
    pub const ACK: u16 = 0x010;
    /// URG.
    pub const URG: u16 = 0x020;
    /// ECE.
    pub const ECE: u16 = 0x040;
    /// CWR.
    pub const CWR: u16 = 0x080;
    /// NS (ECN nonce, historic).
    pub const NS: u16 = 0x100;

    const NAMES: [(u16, &'static str, &'static str); 9] = [
        (Self::FIN, "F", "FIN"),
        (Self::SYN, "S", "SYN"),
        (Self::RST, "R", "RST"),
        (Self::PSH, "P", "PSH"),
        (Self::ACK, ".", "ACK"),
        (Self::URG, "U", "URG"),
        (Self::ECE, "E", "ECE"),
        (Self::CWR, "W", "CWR"),
        (Self::NS, "N", "NS"),
    ];

    /// Whether all the bits of `flag` are set.
    pub fn has(self, flag: u16) -> bool {
        self.0 & flag == flag
    }
}

/// tcpdump's notation: `S`, `S.`, `P.`, `F.`, `R.`, `none`.
impl fmt::Display for TcpFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 & 0xff == 0 {
            return f.write_str("none");
        }
        for (bit, short, _) in &Self::NAMES[..8] {
            if self.0 & bit != 0 {
                f.write_str(short)?;
            }
        }
        Ok(())
    }
}

impl Serialize for TcpFlags {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(
            Self::NAMES
                .iter()
                .filter(|(bit, _, _)| self.0 & bit != 0)
                .map(|(_, _, long)| long),
        )
    }
}

/// One TCP option.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TcpOption<'a> {
    /// End of option list.
    Eol,
    /// No-operation (padding).
    Nop,
    /// Maximum segment size.
    Mss {
        /// The MSS.
        value: u16,
    },
    /// Window scale shift count.
    WindowScale {
        /// The shift.
        shift: u8,
    },
    /// SACK permitted.
    SackPermitted,
    /// Selective acknowledgement blocks (pairs of left/right edges).
    Sack {
        /// The raw blocks, 8 bytes each.
        #[serde(skip)]
        blocks: &'a [u8],
    },
    /// Timestamps.
    Timestamp {
        /// TSval.
        val: u32,
        /// TSecr.
        ecr: u32,
    },
    /// Any other option.
    Other {
        /// The option kind.
        code: u8,
        /// Its data.
        #[serde(skip)]
        data: &'a [u8],
    },
    /// An option whose length runs past the header; iteration stops after it.
    Malformed {
        /// The option kind.
        code: u8,
    },
}

/// The options of a TCP header, iterated lazily (no allocation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpOptions<'a>(pub &'a [u8]);

impl<'a> TcpOptions<'a> {
    /// The options in order.
    pub fn iter(&self) -> TcpOptionIter<'a> {
        TcpOptionIter(self.0)
    }
}

impl Serialize for TcpOptions<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

/// Iterator over [`TcpOptions`].
#[derive(Debug, Clone)]
pub struct TcpOptionIter<'a>(&'a [u8]);

impl<'a> Iterator for TcpOptionIter<'a> {
    type Item = TcpOption<'a>;

    fn next(&mut self) -> Option<TcpOption<'a>> {
        let (&code, rest) = self.0.split_first()?;
        match code {
            0 => {
                // Everything after EOL is padding.
                self.0 = &[];
                return Some(TcpOption::Eol);
            }
            1 => {
                self.0 = rest;
                return Some(TcpOption::Nop);
            }
            _ => {}
        }
        let len = usize::from(*rest.first().unwrap_or(&0));
        if len < 2 || len > self.0.len() {
            self.0 = &[];
            return Some(TcpOption::Malformed { code });
        }
        let data = &self.0[2..len];
        self.0 = &self.0[len..];
        Some(match (code, data.len()) {
            (2, 2) => TcpOption::Mss {
                value: u16::from_be_bytes([data[0], data[1]]),
            },
            (3, 1) => TcpOption::WindowScale { shift: data[0] },
            (4, 0) => TcpOption::SackPermitted,
            (5, n) if n % 8 == 0 => TcpOption::Sack { blocks: data },
            (8, 8) => TcpOption::Timestamp {
                val: u32::from_be_bytes([data[0], data[1], data[2], data[3]]),
                ecr: u32::from_be_bytes([data[4], data[5], data[6], data[7]]),
            },
            _ => TcpOption::Other { code, data },
        })
    }
}

/// A TCP header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Tcp<'a> {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Sequence number (absolute).
    pub seq: u32,
    /// Acknowledgement number (absolute; meaningful with ACK).
    pub ack: u32,
    /// Header length in bytes (data offset × 4).
    pub header_len: u8,
    /// Flags.
    pub flags: TcpFlags,
    /// Window (not scaled).
    pub window: u16,
    /// Checksum (not verified).
    pub checksum: u16,
    /// Urgent pointer.
    pub urgent: u16,
    /// Options.
    pub options: TcpOptions<'a>,
    /// Payload length on the wire, from the IP lengths (the captured part may be shorter).
    pub payload_len: u32,
}

/// A UDP header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Udp {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Length field (header + payload).
    pub length: u16,
    /// Checksum (not verified).
    pub checksum: u16,
    /// Payload length on the wire.
    pub payload_len: u32,
}

/// An ICMP (v4) message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Icmp<'a> {
    /// Type.
    pub icmp_type: u8,
    /// Code.
    pub code: u8,
    /// Checksum (not verified).
    pub checksum: u16,
    /// Identifier, for echo / timestamp / information messages.
    pub id: Option<u16>,
    /// Sequence number, for echo / timestamp / information messages.
    pub seq: Option<u16>,
    /// The 4 bytes after the checksum (MTU for "need to frag", gateway for redirects).
    pub rest: u32,
    /// The message body after the 8-byte header (an echo's data, an error's quoted packet).
    #[serde(skip)]
    pub body: &'a [u8],
    /// Message length on the wire (IP payload length).
    pub length: u32,
}

/// An ICMPv6 message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Icmpv6<'a> {
    /// Type.
    pub icmp_type: u8,
    /// Code.
    pub code: u8,
    /// Checksum (not verified).
    pub checksum: u16,
    /// Identifier, for echo messages.
    pub id: Option<u16>,
    /// Sequence number, for echo messages.
    pub seq: Option<u16>,
    /// Target address of neighbour solicitations/advertisements and redirects.
    pub target: Option<Ipv6Addr>,
    /// The 4 bytes after the checksum (MTU for "packet too big").
    pub rest: u32,
    /// The message body after the 8-byte header.
    #[serde(skip)]
    pub body: &'a [u8],
    /// Message length on the wire.
    pub length: u32,
}

/// An SCTP common header and its first chunk type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Sctp {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Verification tag.
    pub verification_tag: u32,
    /// Type of the first chunk (0 DATA, 1 INIT, ...), if captured.
    pub first_chunk: Option<u8>,
    /// Number of chunks found in the captured bytes.
    pub chunks: u16,
}

/// The transport layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Transport<'a> {
    /// TCP.
    Tcp(Tcp<'a>),
    /// UDP.
    Udp(Udp),
    /// ICMP.
    Icmp(Icmp<'a>),
    /// ICMPv6.
    Icmpv6(Icmpv6<'a>),
    /// SCTP.
    Sctp(Sctp),
    /// A protocol not decoded here (or a non-first fragment).
    Other {
        /// The IP protocol number.
        protocol: u8,
    },
}

/// Why decoding stopped early.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    /// The capture ended before the header did (snaplen, or a cut packet).
    Truncated,
    /// A field has an impossible value (bad version, header length, ...).
    Invalid,
}

/// The first layer that could not be decoded: which, where, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// Truncated or invalid.
    pub kind: ProblemKind,
    /// The layer, as tcpdump names it in `[|tcp]`: `ether`, `vlan`, `sll`, `ip`, `ip6`,
    /// `arp`, `tcp`, `udp`, `icmp`, `icmp6`, `sctp`.
    pub layer: &'static str,
    /// Byte offset of the layer in the packet.
    pub offset: usize,
    /// Bytes the layer needed from `offset` (for truncation).
    pub needed: usize,
    /// Bytes available from `offset`.
    pub available: usize,
    /// What was wrong, for invalid fields.
    pub reason: &'static str,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            ProblemKind::Truncated => write!(
                f,
                "{} truncated at byte {}: needed {} bytes, {} captured",
                self.layer, self.offset, self.needed, self.available
            ),
            ProblemKind::Invalid => write!(
                f,
                "invalid {} header at byte {}: {}",
                self.layer, self.offset, self.reason
            ),
        }
    }
}

/// A decoded packet: every layer found, borrowing the packet bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Decoded<'a> {
    /// The link layer.
    pub link: Link,
    /// VLAN tags, outermost first.
    #[serde(skip_serializing_if = "Vlans::is_empty")]
    pub vlans: Vlans,
    /// The network layer, if reached.
    pub network: Option<Network>,
    /// Offset of the network header in the packet.
    #[serde(skip)]
    pub network_offset: usize,
    /// The transport layer, if reached.
    pub transport: Option<Transport<'a>>,
    /// The captured application payload (after the last decoded header, without link
    /// padding); empty when decoding stopped early.
    #[serde(skip)]
    pub payload: &'a [u8],
    /// The first layer that could not be decoded, if any.
    pub problem: Option<Problem>,
}

impl Decoded<'_> {
    /// Source and destination IP addresses, if the packet is IPv4 or IPv6.
    pub fn addresses(&self) -> Option<(std::net::IpAddr, std::net::IpAddr)> {
        match self.network? {
            Network::Ipv4(ip) => Some((ip.src.into(), ip.dst.into())),
            Network::Ipv6(ip) => Some((ip.src.into(), ip.dst.into())),
            _ => None,
        }
    }

    /// Source and destination ports, for TCP, UDP and SCTP.
    pub fn ports(&self) -> Option<(u16, u16)> {
        match self.transport? {
            Transport::Tcp(t) => Some((t.src_port, t.dst_port)),
            Transport::Udp(u) => Some((u.src_port, u.dst_port)),
            Transport::Sctp(s) => Some((s.src_port, s.dst_port)),
            _ => None,
        }
    }

    /// The IP protocol number of the transport layer.
    pub fn ip_protocol(&self) -> Option<u8> {
        match self.network? {
            Network::Ipv4(ip) => Some(ip.protocol),
            Network::Ipv6(ip) => Some(ip.protocol),
            _ => None,
        }
    }

    /// The TCP header, if this is a TCP segment.
    pub fn tcp(&self) -> Option<&Tcp<'_>> {
        match &self.transport {
            Some(Transport::Tcp(t)) => Some(t),
            _ => None,
        }
    }

    /// Whether some layer could not be decoded.
    pub fn is_malformed(&self) -> bool {
        self.problem.is_some()
    }
}

/// Counters of decoded packets, for callers that report malformed input.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct DecodeStats {
    /// Packets decoded.
    pub packets: u64,
    /// Packets some header of which was cut short by the capture length.
    pub truncated: u64,
    /// Packets with an impossible header field.
    pub invalid: u64,
}

impl DecodeStats {
    /// Counts one decoded packet.
    pub fn record(&mut self, decoded: &Decoded<'_>) {
        self.packets += 1;
        match decoded.problem.map(|p| p.kind) {
            Some(ProblemKind::Truncated) => self.truncated += 1,
            Some(ProblemKind::Invalid) => self.invalid += 1,
            None => {}
        }
    }

    /// Truncated plus invalid packets.
    pub fn malformed(&self) -> u64 {
        self.truncated + self.invalid
    }
}

/// Decodes a packet whose bytes start with a `link_type` header. Never panics.
pub fn decode(link_type: LinkType, data: &[u8]) -> Decoded<'_> {
    let mut d = Decoded {
        link: Link::Unsupported {
            link_type: link_type.number(),
        },
        vlans: Vlans::default(),
        network: None,
        network_offset: 0,
        transport: None,
        payload: &[],
        problem: None,
    };
    if let Err(problem) = decode_into(&mut d, link_type, data) {
        d.problem = Some(problem);
        d.payload = &[];
    }
    d
}

fn decode_into<'a>(
    d: &mut Decoded<'a>,
    link_type: LinkType,
    data: &'a [u8],
) -> Result<(), Problem> {
    let Some((ethertype, offset)) = link::decode(d, link_type, data)? else {
        return Ok(());
    };
    d.network_offset = offset;
    ip::decode(d, ethertype, data, offset)
}

/// Checks that `data[offset..offset + needed]` exists.
pub(crate) fn need<'a>(
    data: &'a [u8],
    layer: &'static str,
    offset: usize,
    needed: usize,
) -> Result<&'a [u8], Problem> {
    let available = data.len().saturating_sub(offset);
    if available < needed {
        return Err(Problem {
            kind: ProblemKind::Truncated,
            layer,
            offset,
            needed,
            available,
            reason: "",
        });
    }
    Ok(&data[offset..offset + needed])
}

/// An invalid-field problem.
pub(crate) fn invalid(
    data: &[u8],
    layer: &'static str,
    offset: usize,
    reason: &'static str,
) -> Problem {
    Problem {
        kind: ProblemKind::Invalid,
        layer,
        offset,
        needed: 0,
        available: data.len().saturating_sub(offset),
        reason,
    }
}

pub(crate) fn be16(b: &[u8], i: usize) -> u16 {
    u16::from_be_bytes([b[i], b[i + 1]])
}

pub(crate) fn be32(b: &[u8], i: usize) -> u32 {
    u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]])
}
