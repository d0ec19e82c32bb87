//! An in-memory packet source, for tests and for replaying packets already held.

use crate::{Interface, OwnedPacket, Packet, PacketSource, Result, SourceStats};

/// Packets held in memory, handed out in order.
#[derive(Debug, Clone)]
pub struct MemorySource {
    interfaces: Vec<Interface>,
    packets: Vec<OwnedPacket>,
    next: usize,
}

impl MemorySource {
    /// A source over `packets`, whose `interface` fields index `interfaces`.
    pub fn new(interfaces: Vec<Interface>, packets: Vec<OwnedPacket>) -> Self {
        MemorySource {
            interfaces,
            packets,
            next: 0,
        }
    }
}

impl PacketSource for MemorySource {
    fn interfaces(&self) -> &[Interface] {
        &self.interfaces
    }

    fn next_packet(&mut self) -> Result<Option<Packet<'_>>> {
        let packet = self.packets.get(self.next).map(OwnedPacket::as_packet);
        if packet.is_some() {
            self.next += 1;
        }
        Ok(packet)
    }

    fn stats(&mut self) -> Result<SourceStats> {
        Ok(SourceStats {
            captured: self.next as u64,
            received: None,
            dropped: None,
        })
    }
}
