//! Packet capture for pods.
//!
//! `snoopy-capture` is the capture core of Snoopy: it opens AF_PACKET sockets with a
//! TPACKET_V3 memory-mapped ring (optionally inside another network namespace, through
//! [`snoopy_netns`]), attaches classic BPF filters in the kernel (compiled from tcpdump
//! expressions by [`snoopy_filter`], re-exported as [`filter`]), writes pcap and pcapng,
//! decodes packets into tcpdump-style lines and JSON, and computes flows ([`flow`]: per
//! conversation counters, TCP handshake outcomes and RTTs, retransmissions, success rates).
//!
//! Everything after the socket works on the [`PacketSource`] trait, which has three
//! implementations: the live ring ([`afpacket::Capture`]), pcap/pcapng files
//! ([`source::FileSource`]) and memory ([`MemorySource`]); so decoding, writers and flows are
//! tested without privileges.

pub mod afpacket;
pub mod decode;
mod error;
/// Filter expressions compiled to classic BPF: the [`snoopy_filter`] crate, re-exported so
/// that `snoopy_capture::filter::compile` needs no second dependency.
pub use snoopy_filter as filter;
pub mod flow;
mod packet;
pub mod sink;
pub mod source;

pub use error::{Error, Result};
pub use packet::{Interface, LinkType, OwnedPacket, Packet};
pub use sink::PacketSink;
pub use source::{MemorySource, PacketSource, SourceStats};
