//! Throughput of the pcap/pcapng writers (ours vs. pcap-file's) and of decoding +
//! summarising. Run with `cargo bench -p snoopy-capture --bench writers`.

use std::borrow::Cow;
use std::hint::black_box;
use std::io::{self, BufWriter};
use std::time::{Duration, Instant};

use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
use pcap_file::pcapng::PcapNgWriter;
use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketBlock;
use pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionBlock;
use pcap_file::{DataLink, TsResolution};
use snoopy_capture::decode::{self, Summarizer, SummaryOptions};
use snoopy_capture::sink::{PcapNgSink, PcapSink, TextSink};
use snoopy_capture::{Interface, LinkType, Packet, PacketSink};

const PACKETS: u32 = 2_000_000;

/// A 98-byte ICMP echo frame, about the median packet of the 240 kpps target.
fn frame() -> Vec<u8> {
    let mut f = vec![2, 0, 0, 0, 0, 0xb, 2, 0, 0, 0, 0, 0xa, 8, 0];
    f.extend_from_slice(&[
        0x45, 0, 0, 84, 0x12, 0x34, 0x40, 0, 64, 1, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
    ]);
    f.extend_from_slice(&[8, 0, 0, 0, 0, 5, 0, 1]);
    f.extend((0..56).map(|i| i as u8));
    f
}

fn report(name: &str, elapsed: Duration) {
    let pps = f64::from(PACKETS) / elapsed.as_secs_f64();
    println!(
        "{name:<40} {:>8.1} Mpps  {:>6.0} ns/packet",
        pps / 1e6,
        1e9 / pps
    );
}

fn run(name: &str, mut write: impl FnMut(&Packet<'_>)) {
    let data = frame();
    let start = Instant::now();
    for i in 0..PACKETS {
        let packet = Packet {
            timestamp: Duration::new(1_700_000_000 + u64::from(i / 1000), i * 7),
            orig_len: data.len() as u32,
            data: &data,
            interface: 0,
        };
        write(black_box(&packet));
    }
    report(name, start.elapsed());
}

fn main() {
    let eth = Interface::new("eth0", LinkType::Ethernet, 262_144);

    let mut sink = PcapSink::new(io::sink(), "sink");
    sink.add_interface(&eth).unwrap();
    run("PcapSink (ours)", |p| sink.write_packet(0, p).unwrap());

    let header = PcapHeader {
        ts_resolution: TsResolution::NanoSecond,
        snaplen: 262_144,
        ..PcapHeader::default()
    };
    let mut writer =
        PcapWriter::with_header(BufWriter::with_capacity(1 << 20, io::sink()), header).unwrap();
    run("pcap-file PcapWriter", |p| {
        writer
            .write_packet(&PcapPacket::new(p.timestamp, p.orig_len, p.data))
            .unwrap();
    });

    let mut sink = PcapNgSink::new(io::sink(), "sink").unwrap();
    sink.add_interface(&eth).unwrap();
    run("PcapNgSink (ours)", |p| sink.write_packet(0, p).unwrap());

    let mut writer = PcapNgWriter::new(BufWriter::with_capacity(1 << 20, io::sink())).unwrap();
    writer
        .write_pcapng_block(InterfaceDescriptionBlock::new(DataLink::ETHERNET, 262_144))
        .unwrap();
    run("pcap-file PcapNgWriter (EPB)", |p| {
        let block = EnhancedPacketBlock {
            interface_id: 0,
            timestamp: p.timestamp,
            original_len: p.orig_len,
            data: Cow::Borrowed(p.data),
            options: vec![],
        };
        writer.write_pcapng_block(block).unwrap();
    });

    run("decode only", |p| {
        black_box(decode::decode(LinkType::Ethernet, p.data));
    });

    let mut summarizer = Summarizer::new(SummaryOptions::default());
    let mut line = String::new();
    run("decode + summary line", |p| {
        line.clear();
        let d = decode::decode(LinkType::Ethernet, p.data);
        summarizer.write_line(&mut line, p, &d);
        black_box(&line);
    });

    let mut sink = TextSink::new(io::sink(), "sink");
    sink.add_interface(&eth).unwrap();
    run("TextSink", |p| sink.write_packet(0, p).unwrap());
}
