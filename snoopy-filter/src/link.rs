//! Link-layer header types: what a filter's offsets are relative to.

use std::fmt;

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
