//! Writes packets to a pcapng (one interface per pod) and reads them back as tcpdump lines.
//!
//! Runs anywhere, no privileges: `cargo run -p snoopy-examples --example pcapng_roundtrip`.
//! With a file argument it prints that pcap/pcapng instead (`-` reads stdin).

use std::time::Duration;

use snoopy_capture::sink::{PcapNgSink, TextSink};
use snoopy_capture::source::FileSource;
use snoopy_capture::{Interface, LinkType, Packet, PacketSink, PacketSource};

/// An ICMP echo request from 198.18.0.1 to 198.18.0.2 in an Ethernet frame.
fn echo_request(seq: u16) -> Vec<u8> {
    let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00];
    let mut ip = vec![
        0x45, 0, 0, 28, 0, 0, 0x40, 0, 64, 1, 0, 0, 198, 18, 0, 1, 198, 18, 0, 2,
    ];
    let sum = checksum(&ip);
    ip[10..12].copy_from_slice(&sum.to_be_bytes());
    let mut icmp = vec![8, 0, 0, 0, 0x12, 0x34];
    icmp.extend(seq.to_be_bytes());
    let sum = checksum(&icmp);
    icmp[2..4].copy_from_slice(&sum.to_be_bytes());
    f.extend(ip);
    f.extend(icmp);
    f
}

fn checksum(bytes: &[u8]) -> u16 {
    let sum: u32 = bytes
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    !(((sum & 0xffff) + (sum >> 16)) as u16)
}

fn main() -> anyhow::Result<()> {
    let mut source = match std::env::args().nth(1) {
        Some(path) => FileSource::open(path)?,
        None => {
            // Two "pods", one interface block each, as podtracer writes multi-pod captures.
            let mut sink = PcapNgSink::new(Vec::new(), "memory")?;
            let web = sink.add_interface(&Interface::new(
                "shop/web-0/eth0",
                LinkType::Ethernet,
                262_144,
            ))?;
            let db = sink.add_interface(&Interface::new(
                "shop/db-0/eth0",
                LinkType::Ethernet,
                262_144,
            ))?;
            for seq in 1..=3u16 {
                let data = echo_request(seq);
                let packet = Packet {
                    timestamp: Duration::new(1_790_000_000 + u64::from(seq), 123_456_789),
                    orig_len: data.len() as u32,
                    data: &data,
                    interface: 0,
                };
                sink.write_packet(if seq == 2 { db } else { web }, &packet)?;
            }
            let bytes = sink.into_inner()?;
            FileSource::from_reader(std::io::Cursor::new(bytes), "memory")?
        }
    };
    let mut text = TextSink::new(std::io::stdout(), "stdout").prefix_interface(true);
    let mut ids = Vec::new();
    // The packet borrows the source, so copy it out to look at the interfaces, which can
    // appear in the middle of a pcapng: register them as they come.
    while let Some(packet) = source.next_packet()?.map(|p| p.to_owned()) {
        while ids.len() < source.interfaces().len() {
            ids.push(text.add_interface(&source.interfaces()[ids.len()])?);
        }
        text.write_packet(ids[packet.interface as usize], &packet.as_packet())?;
    }
    text.flush()?;
    Ok(())
}
