//! The packet and interface types every part of the crate shares.

use std::time::Duration;

pub use snoopy_filter::LinkType;

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
