//! Decoding and summaries: hand-built packets of every protocol, tcpdump comparison, JSON,
//! and a property test that no input makes the decoder panic. Unprivileged; the tcpdump
//! comparisons need tcpdump installed (they fail when it is missing).

use std::path::Path;

use anyhow::{Context, Result};
use proptest::prelude::*;
use snoopy_capture::decode::{
    self, Link, Network, ProblemKind, Summarizer, SummaryOptions, TcpFlags, TcpOption, TimestampPrecision, Transport,
};
use snoopy_capture::sink::{JsonSink, PcapSink, TextSink};
use snoopy_capture::{Interface, LinkType, OwnedPacket, PacketSink};

use crate::fixtures::*;

fn write_pcap(path: &Path, interface: &Interface, packets: &[OwnedPacket]) -> Result<()> {
    let mut sink = PcapSink::create(path)?;
    sink.add_interface(interface)?;
    for p in packets {
        sink.write_packet(0, &p.as_packet())?;
    }
    sink.flush()?;
    Ok(())
}

fn our_lines(interface: &Interface, packets: &[OwnedPacket], options: SummaryOptions) -> Result<Vec<String>> {
    let mut sink = TextSink::new(Vec::new(), "mem").with_options(options);
    sink.add_interface(interface)?;
    for p in packets {
        sink.write_packet(0, &p.as_packet())?;
    }
    Ok(String::from_utf8(sink.into_inner()?)?.lines().map(str::to_string).collect())
}

/// Compares our lines with `tcpdump -n -r` (in UTC) line by line.
fn compare_with_tcpdump(interface: &Interface, packets: &[OwnedPacket], options: SummaryOptions, flags: &[&str]) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("cmp.pcap");
    write_pcap(&path, interface, packets)?;
    let mut args = vec!["-n", "-r", path.to_str().context("path")?];
    args.extend_from_slice(flags);
    let theirs = run("tcpdump", &args)?;
    let ours = our_lines(interface, packets, options)?;
    let theirs: Vec<&str> = theirs.lines().collect();
    assert_eq!(ours.len(), theirs.len());
    let mut diffs = Vec::new();
    for (o, t) in ours.iter().zip(&theirs) {
        if o != t {
            diffs.push(format!("ours:    {o}\ntcpdump: {t}"));
        }
    }
    assert!(diffs.is_empty(), "{} lines differ from tcpdump {flags:?}:\n{}", diffs.len(), diffs.join("\n"));
    Ok(())
}

#[test]
fn summaries_match_tcpdump() -> Result<()> {
    compare_with_tcpdump(&ethernet("eth0"), &packets(&sample_frames(), 0), SummaryOptions::default(), &[])
}

#[test]
fn summaries_match_tcpdump_absolute_seq_nano_and_link_header() -> Result<()> {
    let packets = packets(&sample_frames(), 0);
    let options = SummaryOptions {
        absolute_seq: true,
        ..SummaryOptions::default()
    };
    compare_with_tcpdump(&ethernet("eth0"), &packets, options, &["-S"])?;
    let options = SummaryOptions {
        precision: TimestampPrecision::Nano,
        link_header: true,
        ..SummaryOptions::default()
    };
    compare_with_tcpdump(&ethernet("eth0"), &packets, options, &["--nano", "-e"])
}

#[test]
fn summaries_match_tcpdump_on_raw_ip() -> Result<()> {
    let raw: Vec<Vec<u8>> = sample_frames()
        .into_iter()
        .filter(|f| f[12..14] == [0x08, 0x00] || f[12..14] == [0x86, 0xdd])
        .map(|f| f[14..].to_vec())
        .collect();
    let interface = Interface::new("raw", LinkType::RawIp, 65_535);
    compare_with_tcpdump(&interface, &packets(&raw, 0), SummaryOptions::default(), &[])
}
