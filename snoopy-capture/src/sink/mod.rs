//! Where packets go: pcap and pcapng files, tcpdump-style text, JSON lines, and (feature
//! `kafka`) Kafka topics.

use crate::{Interface, Packet, Result};

mod json;
#[cfg(feature = "kafka")]
pub mod kafka;
mod pcap;
mod pcapng;
mod rotate;
mod text;

pub use json::{JsonRecord, JsonSink};
pub(crate) use pcap::MAX_PCAP_LINKTYPE;
pub use pcap::PcapSink;
pub use pcapng::{DEFAULT_APPLICATION, PcapNgSink};
pub use rotate::{FileFormat, FileRecord, RotatingSink, Rotation, push_once, strftime};
pub use text::TextSink;

/// The default Kafka topic for packets (the node-job contract's, `snoopy_job::topics`).
pub const DEFAULT_PACKETS_TOPIC: &str = snoopy_job::topics::PACKETS;
/// The default Kafka topic for flow records.
pub const DEFAULT_FLOWS_TOPIC: &str = snoopy_job::topics::FLOWS;
/// The default Kafka topic for probe results.
pub const DEFAULT_PROBES_TOPIC: &str = snoopy_job::topics::PROBES;

/// A destination for captured packets.
pub trait PacketSink {
    /// Registers an interface and returns the id to pass with its packets. Interfaces may be
    /// added at any time (a pod that appears in the middle of a capture).
    fn add_interface(&mut self, interface: &Interface) -> Result<u32>;

    /// Writes one packet captured on interface `interface` (an id from `add_interface`).
    fn write_packet(&mut self, interface: u32, packet: &Packet<'_>) -> Result<()>;

    /// Pushes everything buffered to the underlying writer, so that what was written so far
    /// is a valid file even if the process is killed next.
    fn flush(&mut self) -> Result<()>;
}

/// A writer that counts the bytes it was given (a sink's position, buffered bytes included).
#[derive(Debug)]
pub(crate) struct Counted<W> {
    pub(crate) inner: W,
    pub(crate) count: u64,
}

impl<W> Counted<W> {
    pub(crate) fn new(inner: W) -> Self {
        Counted { inner, count: 0 }
    }
}

impl<W: std::io::Write> std::io::Write for Counted<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.count += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// The error for a packet whose interface id was never handed out by `add_interface`.
pub(crate) fn unknown_interface(sink: &str, interface: u32, added: usize) -> crate::Error {
    crate::Error::Unsupported(format!(
        "{sink}: packet of interface {interface}, but only {added} were added"
    ))
}
