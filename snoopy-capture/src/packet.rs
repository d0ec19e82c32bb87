//! The packet and interface types every part of the crate shares.

use std::fmt;
use std::time::Duration;

/// The link-layer header type of captured frames, as pcap `LINKTYPE_*` numbers define it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LinkType {
    /// `LINKTYPE_ETHERNET` (1): Ethernet II / 802.3 frames.
    Ethernet,
    /// `LINKTYPE_RAW` (101): raw IPv4 or IPv6, no link header.
    RawIp,
    /// `LINKTYPE_LINUX_SLL` (113): Linux "cooked" v1 header, what `-i any` gives.
    LinuxSll,
    /// `LINKTYPE_LINUX_SLL2` (276): Linux "cooked" v2 header (carries the interface index).
    LinuxSll2,
    /// Any other `LINKTYPE_*` value; packets are kept but not decoded.
    Other(u32),
}

impl LinkType {
    /// The pcap `LINKTYPE_*` number.
    pub fn number(self) -> u32 {
        match self {
            LinkType::Ethernet => 1,
            LinkType::RawIp => 101,
            LinkType::LinuxSll => 113,
            LinkType::LinuxSll2 => 276,
            LinkType::Other(n) => n,
        }
    }

    /// The link type for a pcap `LINKTYPE_*` number.
    pub fn from_number(n: u32) -> Self {
        match n {
            1 => LinkType::Ethernet,
            101 => LinkType::RawIp,
            113 => LinkType::LinuxSll,
            276 => LinkType::LinuxSll2,
            n => LinkType::Other(n),
        }
    }

    /// The name tcpdump prints for it (`EN10MB`, `LINUX_SLL2`, ...).
    pub fn name(self) -> &'static str {
        match self {
            LinkType::Ethernet => "EN10MB",
            LinkType::RawIp => "RAW",
            LinkType::LinuxSll => "LINUX_SLL",
            LinkType::LinuxSll2 => "LINUX_SLL2",
            LinkType::Other(_) => "OTHER",
        }
    }

    /// What tcpdump prints after the name (`Ethernet`, `Linux cooked v2`, ...).
    pub fn description(self) -> &'static str {
        match self {
            LinkType::Ethernet => "Ethernet",
            LinkType::RawIp => "Raw IP",
            LinkType::LinuxSll => "Linux cooked v1",
            LinkType::LinuxSll2 => "Linux cooked v2",
            LinkType::Other(_) => "unknown link type",
        }
    }
}

impl fmt::Display for LinkType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name(), self.description())
    }
}

/// An interface packets were captured on.
///
/// In pcapng this becomes one Interface Description Block; its `name` can carry a pod's
/// identity (`shop/web-0/eth0`) so that Wireshark attributes every packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    /// The interface name, or a qualified name such as `NS/POD/IFACE`.
    pub name: String,
    /// A free-form description (pcapng `if_description`).
    pub description: Option<String>,
    /// The link-layer header type of its packets.
    pub link_type: LinkType,
    /// The maximum number of bytes kept of each packet.
    pub snaplen: u32,
}

impl Interface {
    /// An interface with no description.
    pub fn new(name: impl Into<String>, link_type: LinkType, snaplen: u32) -> Self {
        Interface {
            name: name.into(),
            description: None,
            link_type,
            snaplen,
        }
    }
}

/// A captured packet borrowed from its source (a ring block, a file buffer).
///
/// Borrowed so the hot path copies nothing; call [`Packet::to_owned`] to keep it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet<'a> {
    /// Capture time since the Unix epoch, with nanosecond resolution.
    pub timestamp: Duration,
    /// The packet's length on the wire; `data` may be shorter (snaplen).
    pub orig_len: u32,
    /// The captured bytes, starting with the link-layer header of `interface`.
    pub data: &'a [u8],
    /// Index of the interface in the source's [`crate::PacketSource::interfaces`].
    pub interface: u32,
}

impl Packet<'_> {
    /// A copy that owns its bytes.
    pub fn to_owned(&self) -> OwnedPacket {
        OwnedPacket {
            timestamp: self.timestamp,
            orig_len: self.orig_len,
            data: self.data.to_vec(),
            interface: self.interface,
        }
    }
}

/// A captured packet that owns its bytes (for channels between threads, and tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedPacket {
    /// Capture time since the Unix epoch.
    pub timestamp: Duration,
    /// The packet's length on the wire.
    pub orig_len: u32,
    /// The captured bytes.
    pub data: Vec<u8>,
    /// Index of the interface in its source.
    pub interface: u32,
}

impl OwnedPacket {
    /// A borrowed view of this packet.
    pub fn as_packet(&self) -> Packet<'_> {
        Packet {
            timestamp: self.timestamp,
            orig_len: self.orig_len,
            data: &self.data,
            interface: self.interface,
        }
    }
}
