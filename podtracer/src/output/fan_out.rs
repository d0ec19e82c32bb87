//! One sink in front of several: every interface and packet goes to each of them.

use snoopy_capture::{Interface, Packet, PacketSink};

/// Several sinks fed the same packets (a file and the terminal, for `-w FILE --print`).
pub(super) struct FanOut {
    sinks: Vec<Box<dyn PacketSink>>,
    /// For each interface id handed out, the id each sink gave it.
    ids: Vec<Vec<u32>>,
}

impl FanOut {
    /// The sinks, fed in this order.
    pub(super) fn new(sinks: Vec<Box<dyn PacketSink>>) -> Self {
        FanOut {
            sinks,
            ids: Vec::new(),
        }
    }
}

impl PacketSink for FanOut {
    fn add_interface(&mut self, interface: &Interface) -> snoopy_capture::Result<u32> {
        let ids = self
            .sinks
            .iter_mut()
            .map(|sink| sink.add_interface(interface))
            .collect::<snoopy_capture::Result<Vec<u32>>>()?;
        self.ids.push(ids);
        Ok(self.ids.len() as u32 - 1)
    }

    fn write_packet(&mut self, interface: u32, packet: &Packet<'_>) -> snoopy_capture::Result<()> {
        let ids = self.ids.get(interface as usize).ok_or_else(|| {
            snoopy_capture::Error::Unsupported(format!(
                "output: packet of interface {interface}, but only {} were added",
                self.ids.len()
            ))
        })?;
        for (sink, id) in self.sinks.iter_mut().zip(ids) {
            sink.write_packet(*id, packet)?;
        }
        Ok(())
    }

    fn flush(&mut self) -> snoopy_capture::Result<()> {
        self.sinks.iter_mut().try_for_each(|sink| sink.flush())
    }
}
