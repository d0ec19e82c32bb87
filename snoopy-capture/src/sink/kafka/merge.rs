//! Many pods' packet messages (`snoopy.packets`) into one capture: each message decoded with
//! its interfaces renamed per pod (one interface per key, interface name and link type), and
//! the pods' packets merged by time. `podtracer collect` and the dashboard's pcapng download
//! both use it.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::time::Duration;

use super::Message;
use crate::source::FileSource;
use crate::{Interface, OwnedPacket, PacketSource};

/// The first bytes of every packets message (a pcapng section header block): what tells a
/// packets topic from a records topic.
pub const PCAPNG_MAGIC: [u8; 4] = [0x0a, 0x0d, 0x0d, 0x0a];

/// The output's interfaces: one per (key, interface name, link type).
#[derive(Debug, Default)]
pub struct PodInterfaces {
    ids: HashMap<(String, String, u32), u32>,
    /// In order of first appearance (the index is the output interface id).
    described: Vec<Interface>,
}

impl PodInterfaces {
    /// The output id of `interface` as seen in `key`'s messages, described on first sight.
    pub fn id_for(&mut self, key: &str, interface: &Interface) -> u32 {
        let ident = (
            key.to_string(),
            interface.name.clone(),
            interface.link_type.number(),
        );
        if let Some(&id) = self.ids.get(&ident) {
            return id;
        }
        let mut named = interface.clone();
        // One interface per pod: a plain name (eth0) gets the key in front, as podtracer
        // names the interfaces of a multi-pod capture.
        if !named.name.contains('/') && !key.is_empty() {
            named.name = format!("{key}/{}", interface.name);
        }
        let id = self.described.len() as u32;
        self.described.push(named);
        self.ids.insert(ident, id);
        id
    }

    /// Every interface described so far, in output id order.
    pub fn described(&self) -> &[Interface] {
        &self.described
    }
}

/// The packets of one message, their interfaces mapped through `interfaces`.
#[derive(Debug)]
pub struct MessagePackets {
    /// The packets read (all of them, or those before `error`).
    pub packets: Vec<OwnedPacket>,
    /// Why the message ended early, if it did.
    pub error: Option<crate::Error>,
}

/// Decodes one packets message; `Err` when it is not a pcapng at all.
pub fn message_packets(
    message: &Message,
    interfaces: &mut PodInterfaces,
) -> Result<MessagePackets, crate::Error> {
    let key = message.key.clone().unwrap_or_default();
    let mut source = FileSource::from_reader(
        std::io::Cursor::new(message.value.clone()),
        format!("message {}/{}", message.partition, message.offset),
    )?;
    let mut ids: Vec<u32> = source
        .interfaces()
        .iter()
        .map(|i| interfaces.id_for(&key, i))
        .collect();
    let mut packets = Vec::new();
    loop {
        let packet = match source.next_packet() {
            Ok(Some(p)) => p,
            Ok(None) => break,
            Err(e) => {
                return Ok(MessagePackets {
                    packets,
                    error: Some(e),
                });
            }
        };
        let mut p = packet.to_owned();
        // Interfaces seen later in the message (pcapng allows it) are mapped too.
        while ids.len() < source.interfaces().len() {
            let interface = source.interfaces()[ids.len()].clone();
            ids.push(interfaces.id_for(&key, &interface));
        }
        p.interface = ids.get(p.interface as usize).copied().unwrap_or(0);
        packets.push(p);
    }
    Ok(MessagePackets {
        packets,
        error: None,
    })
}

/// A k-way merge by time, packet by packet into `each`: across pods packets are
/// time-ordered, and each pod's packets stay in the order they were captured (even with equal
/// timestamps, or a timestamp going backwards).
pub fn merge_by_time<E>(
    keys: Vec<VecDeque<OwnedPacket>>,
    mut each: impl FnMut(OwnedPacket) -> Result<(), E>,
) -> Result<(), E> {
    let mut keys: Vec<_> = keys.into_iter().map(VecDeque::into_iter).collect();
    let mut heap = BinaryHeap::new();
    for (key, packets) in keys.iter_mut().enumerate() {
        if let Some(packet) = packets.next() {
            heap.push(Reverse(Head { key, packet }));
        }
    }
    while let Some(Reverse(Head { key, packet })) = heap.pop() {
        each(packet)?;
        if let Some(packet) = keys[key].next() {
            heap.push(Reverse(Head { key, packet }));
        }
    }
    Ok(())
}

/// The next packet of one key in [`merge_by_time`], ordered by (time, key).
struct Head {
    key: usize,
    packet: OwnedPacket,
}

impl Head {
    fn order(&self) -> (Duration, usize) {
        (self.packet.timestamp, self.key)
    }
}

impl Ord for Head {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.order().cmp(&other.order())
    }
}

impl PartialOrd for Head {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Head {
    fn eq(&self, other: &Self) -> bool {
        self.order() == other.order()
    }
}

impl Eq for Head {}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(millis: u64, interface: u32) -> OwnedPacket {
        OwnedPacket {
            timestamp: Duration::from_millis(millis),
            orig_len: 0,
            data: Vec::new(),
            interface,
        }
    }

    #[test]
    fn the_merge_orders_by_time_and_keeps_each_keys_order() {
        let keys = vec![
            VecDeque::from([packet(1, 0), packet(3, 0), packet(3, 0), packet(2, 0)]),
            VecDeque::new(),
            VecDeque::from([packet(0, 2), packet(3, 2), packet(5, 2)]),
        ];
        let mut out = Vec::new();
        merge_by_time(keys, |p| {
            out.push((p.timestamp.as_millis(), p.interface));
            Ok::<(), ()>(())
        })
        .unwrap();
        // Equal times: the first key first; key 0's 2 ms packet stays after its 3 ms ones.
        assert_eq!(
            out,
            [(0, 2), (1, 0), (3, 0), (3, 0), (2, 0), (3, 2), (5, 2)]
        );
    }
}
