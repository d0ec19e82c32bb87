//! Where packets come from.
//!
//! Everything downstream (writers, decoding, flows) reads from a [`PacketSource`], so it is
//! tested the same way whether packets come from a live AF_PACKET ring (needs root), a pcap
//! or pcapng file, or memory.

use crate::{Interface, Packet, Result};

mod file;
mod memory;

pub use file::{FileFormat, FileSource, Truncation};
pub use memory::MemorySource;

/// Counters a source keeps, reported the way tcpdump reports them at exit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SourceStats {
    /// Packets handed to the caller ("packets captured").
    pub captured: u64,
    /// Packets the kernel accepted through the filter, dropped ones included
    /// ("packets received by filter"); `None` for sources without kernel counters.
    pub received: Option<u64>,
    /// Packets the kernel dropped because the ring was full ("packets dropped by kernel").
    pub dropped: Option<u64>,
}

/// A stream of captured packets.
///
/// `next_packet` lends a packet that borrows the source (a ring block, a read buffer), so
/// the hot path copies nothing; the borrow ends before the next call.
pub trait PacketSource {
    /// The interfaces seen so far; a packet's `interface` indexes this slice.
    fn interfaces(&self) -> &[Interface];

    /// The next packet; `Ok(None)` at the end (end of file, or a live capture stopped).
    fn next_packet(&mut self) -> Result<Option<Packet<'_>>>;

    /// The source's counters so far.
    fn stats(&mut self) -> Result<SourceStats>;
}
