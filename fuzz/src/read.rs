//! `read`: any bytes read as a pcap or pcapng file, every packet; then what was read is
//! written with the pcapng and pcap sinks and read back, and must come back the same.

use std::io::Cursor;
use std::time::Duration;

use snoopy_capture::sink::{PcapNgSink, PcapSink};
use snoopy_capture::source::FileSource;
use snoopy_capture::{Interface, OwnedPacket, PacketSink, PacketSource};

/// The largest record the reader accepts (its `MAX_RECORD`, 16 MiB).
const MAX_RECORD: usize = 16 << 20;

/// The `read` target.
pub fn read(data: &[u8]) {
    let Some((interfaces, packets)) = read_all(data, "input") else {
        return;
    };
    round_trip_pcapng(&interfaces, &packets);
    round_trip_pcap(&interfaces, &packets);
}

/// Every packet of `data` up to the end or the first error, with the invariants of a read.
fn read_all(data: &[u8], name: &str) -> Option<(Vec<Interface>, Vec<OwnedPacket>)> {
    let mut source = FileSource::from_reader(Cursor::new(data.to_vec()), name).ok()?;
    let mut packets = Vec::new();
    loop {
        match source.next_packet() {
            Ok(Some(packet)) => {
                let packet = packet.to_owned();
                let interfaces = source.interfaces().len();
                assert!(
                    (packet.interface as usize) < interfaces,
                    "packet of interface {} with {interfaces} interfaces",
                    packet.interface
                );
                assert!(packet.data.len() <= MAX_RECORD.min(data.len()));
                packets.push(packet);
                // Every record has a header of at least 12 bytes besides its data.
                assert!(
                    packets.len() <= data.len() / 12,
                    "more packets than records fit"
                );
            }
            Ok(None) => break,
            Err(_) => return None,
        }
    }
    let stats = source.stats().expect("a file source's stats");
    assert_eq!(stats.captured, packets.len() as u64);
    if let Some(t) = source.truncated() {
        assert!(
            t.bytes > 0 && t.offset + t.bytes as u64 <= data.len() as u64,
            "{t:?}"
        );
    }
    Some((source.interfaces().to_vec(), packets))
}

/// What a sink keeps of a packet: at most the interface's snaplen bytes (0: all).
fn cut(interface: &Interface, packet: &OwnedPacket) -> Vec<u8> {
    let keep = match interface.snaplen {
        0 => packet.data.len(),
        s => packet.data.len().min(s as usize),
    };
    packet.data[..keep].to_vec()
}

fn round_trip_pcapng(interfaces: &[Interface], packets: &[OwnedPacket]) {
    let mut sink = PcapNgSink::new(Vec::new(), "out.pcapng").expect("a pcapng sink in memory");
    for interface in interfaces {
        if sink.add_interface(interface).is_err() {
            // Refusing an interface pcapng cannot describe is allowed; writing it wrong is not.
            assert!(
                interface.link_type.number() > u32::from(u16::MAX),
                "{interface:?}"
            );
            return;
        }
    }
    let mut written = Vec::new();
    for packet in packets {
        match sink.write_packet(packet.interface, &packet.as_packet()) {
            Ok(()) => written.push(packet),
            Err(_) => {
                // Only a time nanoseconds since 1970 in 64 bits cannot hold (after 2554).
                assert!(
                    packet.timestamp.as_nanos() > u128::from(u64::MAX),
                    "{packet:?}"
                );
                break;
            }
        }
    }
    let bytes = sink.into_inner().expect("flushing to memory");
    let (back_interfaces, back) = read_all(&bytes, "out.pcapng").expect("reading our pcapng");
    assert_eq!(back_interfaces.len(), interfaces.len());
    for (a, b) in interfaces.iter().zip(&back_interfaces) {
        assert_eq!((a.link_type, a.snaplen), (b.link_type, b.snaplen));
    }
    compare(interfaces, &written, &back);
}

fn round_trip_pcap(interfaces: &[Interface], packets: &[OwnedPacket]) {
    let Some(first) = interfaces.first() else {
        return;
    };
    let mut sink = PcapSink::new(Vec::new(), "out.pcap");
    let mut refused = false;
    for interface in interfaces {
        refused |= sink.add_interface(interface).is_err();
    }
    if refused {
        // pcap holds one link type and one snaplen (the largest, from before the first packet).
        assert!(interfaces.iter().any(|i| i.link_type != first.link_type));
        return;
    }
    let snaplen = interfaces.iter().map(|i| i.snaplen).max().unwrap_or(0);
    let mut written = Vec::new();
    for packet in packets {
        match sink.write_packet(packet.interface, &packet.as_packet()) {
            Ok(()) => written.push(packet),
            Err(e) => {
                assert!(
                    packet.timestamp >= Duration::from_secs(1 << 32),
                    "{packet:?}: {e}"
                );
                break;
            }
        }
    }
    let bytes = sink.into_inner().expect("flushing to memory");
    let (back_interfaces, back) = read_all(&bytes, "out.pcap").expect("reading our pcap");
    assert_eq!(back_interfaces.len(), 1);
    assert_eq!(back_interfaces[0].link_type, first.link_type);
    assert_eq!(back_interfaces[0].snaplen, snaplen);
    let one = Interface::new("out", first.link_type, snaplen);
    let merged: Vec<OwnedPacket> = written
        .iter()
        .map(|p| OwnedPacket {
            interface: 0,
            ..(*p).clone()
        })
        .collect();
    let merged: Vec<&OwnedPacket> = merged.iter().collect();
    compare(std::slice::from_ref(&one), &merged, &back);
}

/// The packets read back are the packets written, cut to their interface's snaplen.
fn compare(interfaces: &[Interface], written: &[&OwnedPacket], back: &[OwnedPacket]) {
    assert_eq!(written.len(), back.len(), "packets written vs read back");
    for (w, b) in written.iter().zip(back) {
        let interface = &interfaces[w.interface as usize];
        assert_eq!(cut(interface, w), b.data, "data of {w:?}");
        assert_eq!(
            (w.timestamp, w.orig_len, w.interface),
            (b.timestamp, b.orig_len, b.interface)
        );
    }
}
