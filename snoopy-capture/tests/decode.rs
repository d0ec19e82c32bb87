//! Decoding and summaries: hand-built packets of every protocol, tcpdump comparison, JSON,
//! and a property test that no input makes the decoder panic. Unprivileged; the tcpdump
//! comparisons need tcpdump installed (they fail when it is missing).

use std::path::Path;

use anyhow::{Context, Result};
use proptest::prelude::*;
use snoopy_capture::decode::{
    self, Link, Network, ProblemKind, Summarizer, SummaryOptions, TcpFlags, TcpOption,
    TimestampPrecision, Transport,
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

fn our_lines(
    interface: &Interface,
    packets: &[OwnedPacket],
    options: SummaryOptions,
) -> Result<Vec<String>> {
    let mut sink = TextSink::new(Vec::new(), "mem").with_options(options);
    sink.add_interface(interface)?;
    for p in packets {
        sink.write_packet(0, &p.as_packet())?;
    }
    Ok(String::from_utf8(sink.into_inner()?)?
        .lines()
        .map(str::to_string)
        .collect())
}

/// Compares our lines with `tcpdump -n -r` (in UTC) line by line.
pub(crate) fn compare_with_tcpdump(
    interface: &Interface,
    packets: &[OwnedPacket],
    options: SummaryOptions,
    flags: &[&str],
) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("cmp.pcap");
    write_pcap(&path, interface, packets)?;
    let mut args = vec!["-n", "-r", path.to_str().context("path")?];
    args.extend_from_slice(flags);
    let theirs = run("tcpdump", &args)?;
    let ours = our_lines(interface, packets, options)?;
    let theirs: Vec<&str> = theirs.lines().collect();
    anyhow::ensure!(
        ours.len() == theirs.len(),
        "{} lines, tcpdump printed {}",
        ours.len(),
        theirs.len()
    );
    let mut diffs = Vec::new();
    for (o, t) in ours.iter().zip(&theirs) {
        if o != t {
            diffs.push(format!("ours:    {o}\ntcpdump: {t}"));
        }
    }
    anyhow::ensure!(
        diffs.is_empty(),
        "{} lines differ from tcpdump {flags:?}:\n{}",
        diffs.len(),
        diffs.join("\n")
    );
    Ok(())
}

#[test]
fn summaries_match_tcpdump() -> Result<()> {
    compare_with_tcpdump(
        &ethernet("eth0"),
        &packets(&sample_frames(), 0),
        SummaryOptions::default(),
        &[],
    )
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

/// Frames built by an independent script (Python's struct, checksums by hand), whose
/// `tcpdump -v` lines were checked: IPv4 TCP with options and a right checksum, a wrong one
/// (with ECN CE in the tos), a segment without DF and with TTL 0, UDP, ICMP echo with a right
/// and a wrong checksum, a bad IPv4 header checksum, ECT(1); IPv6 TCP (class, flowlabel,
/// wrong checksum), UDP and ICMPv6 echo with right and wrong checksums.
const VERBOSE_FRAMES: &[&str] = &[
    "02000000000202000000000108004500003c00014000400626b90a0000010a0000029c401e61000003e800000000a002faf07a820000020405b40402080a000000010000000001030307",
    "02000000000202000000000108004503003c00014000400626b60a0000010a0000029c401e61000003e800000000a002faf0abcd0000020405b40402080a000000010000000001030307",
    "020000000002020000000001080045000039000100000006a6bc0a0000010a0000029c401e61000003e8000000058018faf0655900000101080a000000020000000168656c6c6f",
    "02000000000202000000000108004500002300014000401126c70a0000010a0000021388270f000f200961626364656667",
    "02000000000202000000000108004500004100014000400126b90a0000010a0000020800077f0007000178787878787878787878787878787878787878787878787878787878787878787878787878",
    "02000000000202000000000108004500004100014000400126b90a0000010a000002000000010007000178787878787878787878787878787878787878787878787878787878787878787878787878",
    "02000000000202000000000108004500002800014000400612340a0000010a0000029c401e61000003e8000000095010faf0e24e0000",
    "020000000002020000000001080045b9002800014000400626140a0000010a0000029c401e61000003e8000000095010faf0e24e0000",
    "02000000000202000000000186dd600000000028064020010db800000000000000000000000120010db80000000000000000000000029c401e61000003e800000000a002faf033100000020405b40402080a000000010000000001030307",
    "02000000000202000000000186dd6b8123450028064020010db800000000000000000000000120010db80000000000000000000000029c401e61000003e800000000a002faf0abcd0000020405b40402080a000000010000000001030307",
    "02000000000202000000000186dd60000000000a114020010db800000000000000000000000120010db80000000000000000000000021388270f000aeb4f7e7e",
    "02000000000202000000000186dd60000000000b114020010db800000000000000000000000120010db80000000000000000000000021388270f000b00017e7e7e",
    "02000000000202000000000186dd60000000000b3a4020010db800000000000000000000000120010db800000000000000000000000280005fda00070001616263",
    "02000000000202000000000186dd60000005000b3a4020010db800000000000000000000000120010db80000000000000000000000028100000100070001616263",
];

#[test]
fn verbose_summaries_match_tcpdump_v() -> Result<()> {
    let frames: Vec<Vec<u8>> = VERBOSE_FRAMES
        .iter()
        .map(|h| {
            (0..h.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&h[i..i + 2], 16).expect("hex"))
                .collect()
        })
        .collect();
    let options = SummaryOptions {
        verbose: 1,
        ..SummaryOptions::default()
    };
    compare_with_tcpdump(&ethernet("eth0"), &packets(&frames, 0), options, &["-v"])
}

#[test]
fn summaries_match_tcpdump_on_raw_ip() -> Result<()> {
    let raw: Vec<Vec<u8>> = sample_frames()
        .into_iter()
        .filter(|f| f[12..14] == [0x08, 0x00] || f[12..14] == [0x86, 0xdd])
        .map(|f| f[14..].to_vec())
        .collect();
    let interface = Interface::new("raw", LinkType::RawIp, 65_535);
    compare_with_tcpdump(
        &interface,
        &packets(&raw, 0),
        SummaryOptions::default(),
        &[],
    )
}

#[test]
fn summaries_match_tcpdump_on_linux_cooked_v1() -> Result<()> {
    // Without the VLAN frame: tcpdump prints cooked VLAN tags in its own way.
    let frames: Vec<Vec<u8>> = sample_frames()
        .iter()
        .filter(|f| f[12..14] != [0x81, 0x00])
        .map(|f| sll(4, MAC_A, u16::from_be_bytes([f[12], f[13]]), &f[14..]))
        .collect();
    let interface = Interface::new("any", LinkType::LinuxSll, 65_535);
    compare_with_tcpdump(
        &interface,
        &packets(&frames, 0),
        SummaryOptions::default(),
        &[],
    )
}

#[test]
fn summaries_match_tcpdump_on_odd_packets() -> Result<()> {
    let mut arp_padded = ether(BROADCAST, MAC_A, 0x0806, &arp(1, MAC_A, IP_A, [0; 6], IP_B));
    arp_padded.resize(60, 0);
    let mut udp_padded = ether(
        MAC_B,
        MAC_A,
        0x0800,
        &ipv4(IP_A, IP_B, 17, &udp(1000, 2000, b"x")),
    );
    udp_padded.resize(60, 0);
    let frames = vec![
        // Ethernet padding is not payload: ARP "length 46" is the wire length, UDP length 1.
        arp_padded,
        udp_padded,
        ether(MAC_B, MAC_A, 0x0800, &ipv4(IP_A, IP_B, 253, b"abcdefgh")),
        ether(MAC_B, MAC_A, 0x0806, &arp(1, MAC_A, IP_A, BROADCAST, IP_B)),
        ether(
            MAC_B,
            MAC_A,
            0x0800,
            &ipv4(IP_A, IP_B, 17, &udp(53, 40000, &dns_answer())),
        ),
    ];
    compare_with_tcpdump(
        &ethernet("eth0"),
        &packets(&frames, 0),
        SummaryOptions::default(),
        &[],
    )
}

/// A DNS response: example.com. A 93.184.216.34 and AAAA, with a compressed name.
fn dns_answer() -> Vec<u8> {
    let mut d = dns_query(0x1234, "example.com.", 1);
    d[2] = 0x81;
    d[3] = 0x80;
    d[7] = 2;
    d.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 93, 184, 216, 34]);
    d.extend_from_slice(&[0xc0, 12, 0, 28, 0, 1, 0, 0, 0, 60, 0, 16]);
    d.extend_from_slice(&IP6_B.octets());
    d
}

fn decode_eth(frame: &[u8]) -> decode::Decoded<'_> {
    decode::decode(LinkType::Ethernet, frame)
}

#[test]
fn decodes_tcp_fields() {
    let frame = ether(
        MAC_B,
        MAC_A,
        0x0800,
        &ipv4(
            IP_A,
            IP_B,
            6,
            &tcp(
                40000,
                5201,
                1001,
                5001,
                PSH | ACK,
                502,
                &ts_options(113, 222),
                b"hello",
            ),
        ),
    );
    let d = decode_eth(&frame);
    assert_eq!(d.problem, None);
    assert_eq!(d.addresses(), Some((IP_A.into(), IP_B.into())));
    assert_eq!(d.ports(), Some((40000, 5201)));
    assert_eq!(d.ip_protocol(), Some(6));
    let t = d.tcp().expect("tcp");
    assert_eq!(
        (t.seq, t.ack, t.window, t.header_len, t.payload_len),
        (1001, 5001, 502, 32, 5)
    );
    assert!(t.flags.has(TcpFlags::PSH | TcpFlags::ACK) && !t.flags.has(TcpFlags::SYN));
    assert_eq!(t.flags.to_string(), "P.");
    let options: Vec<TcpOption<'_>> = t.options.iter().collect();
    assert_eq!(
        options,
        [
            TcpOption::Nop,
            TcpOption::Nop,
            TcpOption::Timestamp { val: 113, ecr: 222 }
        ]
    );
    assert_eq!(d.payload, b"hello");
}

#[test]
fn decodes_icmp_udp_arp_icmpv6_sctp() {
    let frames = sample_frames();
    let Some(Transport::Icmp(i)) = decode_eth(&frames[0]).transport else {
        panic!("icmp")
    };
    assert_eq!(
        (i.icmp_type, i.code, i.id, i.seq, i.length),
        (8, 0, Some(5), Some(1), 64)
    );

    let Some(Transport::Udp(u)) = decode_eth(&frames[9]).transport else {
        panic!("udp")
    };
    assert_eq!(
        (u.src_port, u.dst_port, u.length, u.payload_len),
        (40000, 9999, 20, 12)
    );

    let Some(Network::Arp(a)) = decode_eth(&frames[11]).network else {
        panic!("arp")
    };
    assert_eq!(
        (a.operation, a.sender_ip, a.target_ip),
        (1, Some(IP_A), Some(IP_B))
    );

    let d = decode_eth(&frames[15]);
    let Some(Transport::Icmpv6(i)) = d.transport else {
        panic!("icmp6")
    };
    assert_eq!((i.icmp_type, i.target), (135, Some(IP6_B)));
    assert_eq!(d.addresses(), Some((IP6_A.into(), IP6_B.into())));

    let sctp_init = [
        0x13, 0x88, 0x13, 0x89, 0, 0, 0, 9, 0, 0, 0, 0, 1, 0, 0, 20, 0, 0, 0, 1, 0, 1, 0xa0, 0, 0,
        10, 0xff, 0xff, 0, 0, 0, 1,
    ];
    let frame = ether(MAC_B, MAC_A, 0x0800, &ipv4(IP_A, IP_B, 132, &sctp_init));
    let d = decode_eth(&frame);
    let Some(Transport::Sctp(s)) = d.transport else {
        panic!("sctp")
    };
    assert_eq!(
        (
            s.src_port,
            s.dst_port,
            s.verification_tag,
            s.first_chunk,
            s.chunks
        ),
        (5000, 5001, 9, Some(1), 1)
    );
    assert_eq!(d.ports(), Some((5000, 5001)));
}

#[test]
fn decodes_vlan_cooked_raw_and_ipv6_fragments() {
    let frames = sample_frames();
    let d = decode_eth(&frames[19]);
    let tags: Vec<_> = d.vlans.iter().collect();
    assert_eq!(
        (tags.len(), tags[0].id, tags[0].ethertype),
        (1, 100, 0x0800)
    );
    assert!(matches!(d.transport, Some(Transport::Icmp(_))));

    let cooked = sll2(0x0800, 7, 4, MAC_A, &frames[2][14..]);
    let d = decode::decode(LinkType::LinuxSll2, &cooked);
    assert!(matches!(
        d.link,
        Link::LinuxSll2 {
            ifindex: 7,
            packet_type: 4,
            ..
        }
    ));
    assert_eq!(d.ports(), Some((40000, 5201)));

    let d = decode::decode(LinkType::RawIp, &frames[17][14..]);
    assert_eq!(d.link, Link::RawIp);
    assert_eq!(d.ports(), Some((40002, 443)));

    // IPv6 hop-by-hop + fragment header (first fragment) before UDP.
    let mut ext = vec![44, 0, 1, 4, 0, 0, 0, 0];
    ext.extend_from_slice(&[17, 0, 0, 1, 0xde, 0xad, 0xbe, 0xef]);
    ext.extend_from_slice(&udp(1, 2, b"abc"));
    let frame = ether(MAC_B, MAC_A, 0x86dd, &ipv6(IP6_A, IP6_B, 0, &ext));
    let d = decode_eth(&frame);
    let Some(Network::Ipv6(ip)) = d.network else {
        panic!("ip6")
    };
    assert!(ip.hop_by_hop);
    assert_eq!(
        ip.fragment.map(|f| (f.offset, f.more, f.id)),
        Some((0, true, 0xdead_beef))
    );
    assert_eq!(ip.protocol, 17);
    assert_eq!(d.ports(), Some((1, 2)));
}

#[test]
fn truncated_and_invalid_packets_are_marked_and_counted() -> Result<()> {
    let frames = sample_frames();
    let syn = &frames[2];
    let d = decode_eth(&syn[..14 + 20 + 10]);
    let p = d.problem.context("problem")?;
    assert_eq!(
        (p.kind, p.layer, p.offset, p.needed, p.available),
        (ProblemKind::Truncated, "tcp", 34, 20, 10)
    );
    assert!(
        matches!(d.network, Some(Network::Ipv4(_))),
        "the IP layer is still decoded"
    );

    let mut bad = syn.clone();
    bad[14] = 0x43; // IHL 3
    let p = decode_eth(&bad).problem.context("problem")?;
    assert_eq!((p.kind, p.layer), (ProblemKind::Invalid, "ip"));
    assert!(p.to_string().contains("header length"), "{p}");

    let mut sink = TextSink::new(Vec::new(), "mem");
    sink.add_interface(&ethernet("eth0"))?;
    for (i, frame) in [&syn[..44], &bad[..], &syn[..], &syn[..5]]
        .iter()
        .enumerate()
    {
        let p = OwnedPacket {
            timestamp: timestamp(i),
            orig_len: syn.len() as u32,
            data: frame.to_vec(),
            interface: 0,
        };
        sink.write_packet(0, &p.as_packet())?;
    }
    let stats = sink.stats();
    assert_eq!(
        (
            stats.packets,
            stats.truncated,
            stats.invalid,
            stats.malformed()
        ),
        (4, 2, 1, 3)
    );
    let text = String::from_utf8(sink.into_inner()?)?;
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].ends_with("IP 10.0.0.1 > 10.0.0.2: [|tcp]"),
        "{}",
        lines[0]
    );
    assert!(
        lines[1].ends_with("[bad ip: header length below 20]"),
        "{}",
        lines[1]
    );
    assert!(lines[3].ends_with(" [|ether]"), "{}", lines[3]);
    Ok(())
}

#[test]
fn text_sink_prefixes_interface_names() -> Result<()> {
    let mut sink = TextSink::new(Vec::new(), "mem").prefix_interface(true);
    let web = sink.add_interface(&ethernet("shop/web-0"))?;
    let db = sink.add_interface(&Interface::new("shop/db-0", LinkType::RawIp, 65_535))?;
    let frames = sample_frames();
    let mut p = packets(&frames[..1], 0).remove(0);
    sink.write_packet(web, &p.as_packet())?;
    p.data = frames[0][14..].to_vec();
    sink.write_packet(db, &p.as_packet())?;
    let text = String::from_utf8(sink.into_inner()?)?;
    let expected = "IP 10.0.0.1 > 10.0.0.2: ICMP echo request, id 5, seq 1, length 64";
    assert_eq!(
        text,
        format!("shop/web-0 22:13:20.123456 {expected}\nshop/db-0 22:13:20.123456 {expected}\n")
    );
    Ok(())
}

#[test]
fn json_sink_writes_one_object_per_line() -> Result<()> {
    let mut sink = JsonSink::new(Vec::new(), "mem");
    sink.add_interface(&ethernet("shop/web-0"))?;
    let packets = packets(&sample_frames(), 0);
    for p in &packets {
        sink.write_packet(0, &p.as_packet())?;
    }
    let text = String::from_utf8(sink.into_inner()?)?;
    let values: Vec<serde_json::Value> = text
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    assert_eq!(values.len(), packets.len());
    let syn = &values[2];
    assert_eq!(syn["time"], "2023-11-14T22:13:22.123458791Z");
    assert_eq!(syn["ts_nsec"], 123_458_791);
    assert_eq!(syn["interface"], "shop/web-0");
    assert_eq!(syn["len"], 74);
    assert_eq!(syn["layers"]["link"]["type"], "ethernet");
    assert_eq!(syn["layers"]["link"]["src"], "02:00:00:00:00:0a");
    assert_eq!(syn["layers"]["network"]["type"], "ipv4");
    assert_eq!(syn["layers"]["network"]["src"], "10.0.0.1");
    let tcp = &syn["layers"]["transport"];
    assert_eq!(
        (
            tcp["type"].as_str(),
            tcp["dst_port"].as_u64(),
            tcp["seq"].as_u64()
        ),
        (Some("tcp"), Some(5201), Some(1000))
    );
    assert_eq!(tcp["flags"], serde_json::json!(["SYN"]));
    assert_eq!(
        tcp["options"][0],
        serde_json::json!({"kind": "mss", "value": 1460})
    );
    assert_eq!(syn["layers"]["problem"], serde_json::Value::Null);
    assert_eq!(values[11]["layers"]["network"]["type"], "arp");
    Ok(())
}

fn link_types() -> impl Strategy<Value = LinkType> {
    prop_oneof![
        Just(LinkType::Ethernet),
        Just(LinkType::RawIp),
        Just(LinkType::LinuxSll),
        Just(LinkType::LinuxSll2),
        Just(LinkType::Other(147)),
    ]
}

/// Decodes and summarises; must not panic.
fn exercise(link_type: LinkType, data: &[u8]) {
    let d = decode::decode(link_type, data);
    let mut line = String::new();
    let packet = snoopy_capture::Packet {
        timestamp: timestamp(0),
        orig_len: data.len() as u32,
        data,
        interface: 0,
    };
    for options in [
        SummaryOptions::default(),
        SummaryOptions {
            link_header: true,
            ..SummaryOptions::default()
        },
        SummaryOptions {
            verbose: 1,
            ..SummaryOptions::default()
        },
        SummaryOptions {
            link_header: true,
            verbose: 2,
            ..SummaryOptions::default()
        },
    ] {
        Summarizer::new(options).write_line(&mut line, &packet, &d);
    }
    serde_json::to_string(&d).expect("decoded packets serialise");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    #[test]
    fn never_panics_on_arbitrary_bytes(link_type in link_types(), data in proptest::collection::vec(any::<u8>(), 0..200)) {
        exercise(link_type, &data);
    }

    /// Random edits of real packets reach deep layers, which random bytes rarely do.
    #[test]
    fn never_panics_on_mutated_packets(
        index in 0usize..20,
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8),
        cut in any::<usize>(),
        link_type in link_types(),
    ) {
        let mut frame = sample_frames().swap_remove(index);
        for (at, value) in edits {
            let len = frame.len();
            frame[at % len] = value;
        }
        let keep = cut % (frame.len() + 1);
        exercise(LinkType::Ethernet, &frame[..keep]);
        exercise(link_type, &frame[..keep]);
        exercise(LinkType::RawIp, frame.get(14..keep.max(14)).unwrap_or_default());
    }
}
