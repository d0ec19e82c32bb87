//! Hand-built packets (with correct IPv4 header checksums) and helpers to run the real
//! tcpdump / tshark on files, shared by the file and decode tests.

#![allow(dead_code)]

use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use snoopy_capture::{Interface, LinkType, OwnedPacket};

pub(crate) const MAC_A: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x0a];
pub(crate) const MAC_B: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x0b];
pub(crate) const BROADCAST: [u8; 6] = [0xff; 6];
pub(crate) const IP_A: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
pub(crate) const IP_B: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
pub(crate) const IP6_A: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
pub(crate) const IP6_B: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);

pub(crate) const SYN: u8 = 0x02;
pub(crate) const ACK: u8 = 0x10;
pub(crate) const PSH: u8 = 0x08;
pub(crate) const FIN: u8 = 0x01;
pub(crate) const RST: u8 = 0x04;

/// The internet checksum (RFC 1071).
pub(crate) fn checksum(bytes: &[u8]) -> u16 {
    let mut sum = 0u32;
    for chunk in bytes.chunks(2) {
        let word = u16::from_be_bytes([chunk[0], *chunk.get(1).unwrap_or(&0)]);
        sum += u32::from(word);
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

pub(crate) fn ether(dst: [u8; 6], src: [u8; 6], ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// An 802.1Q tag + inner ethertype + payload, to put after an Ethernet header of type 0x8100.
pub(crate) fn vlan_tag(vid: u16, pcp: u8, inner: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&((u16::from(pcp) << 13) | vid).to_be_bytes());
    f.extend_from_slice(&inner.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

pub(crate) fn ipv4(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, payload: &[u8]) -> Vec<u8> {
    let total = (20 + payload.len()) as u16;
    let mut h = vec![0x45, 0, 0, 0, 0x12, 0x34, 0x40, 0, 64, proto, 0, 0];
    h[2..4].copy_from_slice(&total.to_be_bytes());
    h.extend_from_slice(&src.octets());
    h.extend_from_slice(&dst.octets());
    let sum = checksum(&h);
    h[10..12].copy_from_slice(&sum.to_be_bytes());
    h.extend_from_slice(payload);
    h
}

pub(crate) fn ipv6(src: Ipv6Addr, dst: Ipv6Addr, next: u8, payload: &[u8]) -> Vec<u8> {
    let mut h = vec![0x60, 0, 0, 0];
    h.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    h.push(next);
    h.push(64);
    h.extend_from_slice(&src.octets());
    h.extend_from_slice(&dst.octets());
    h.extend_from_slice(payload);
    h
}

/// TCP options of a Linux SYN: mss 1460, sackOK, TS val/ecr, nop, wscale 7.
pub(crate) fn syn_options(tsval: u32, tsecr: u32) -> Vec<u8> {
    let mut o = vec![2, 4, 0x05, 0xb4, 4, 2, 8, 10];
    o.extend_from_slice(&tsval.to_be_bytes());
    o.extend_from_slice(&tsecr.to_be_bytes());
    o.extend_from_slice(&[1, 3, 3, 7]);
    o
}

/// TCP options of an established segment: nop, nop, TS val/ecr.
pub(crate) fn ts_options(tsval: u32, tsecr: u32) -> Vec<u8> {
    let mut o = vec![1, 1, 8, 10];
    o.extend_from_slice(&tsval.to_be_bytes());
    o.extend_from_slice(&tsecr.to_be_bytes());
    o
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn tcp(
    sport: u16,
    dport: u16,
    seq: u32,
    ack: u32,
    flags: u8,
    win: u16,
    options: &[u8],
    payload: &[u8],
) -> Vec<u8> {
    assert_eq!(options.len() % 4, 0, "pad TCP options to 4 bytes");
    let mut t = Vec::new();
    t.extend_from_slice(&sport.to_be_bytes());
    t.extend_from_slice(&dport.to_be_bytes());
    t.extend_from_slice(&seq.to_be_bytes());
    t.extend_from_slice(&ack.to_be_bytes());
    t.push((((20 + options.len()) / 4) as u8) << 4);
    t.push(flags);
    t.extend_from_slice(&win.to_be_bytes());
    t.extend_from_slice(&[0, 0, 0, 0]);
    t.extend_from_slice(options);
    t.extend_from_slice(payload);
    t
}

pub(crate) fn udp(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut u = Vec::new();
    u.extend_from_slice(&sport.to_be_bytes());
    u.extend_from_slice(&dport.to_be_bytes());
    u.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    u.extend_from_slice(payload);
    u
}

/// ICMP (or ICMPv6, with the v6 type numbers) echo with a checksum over the message.
pub(crate) fn icmp_echo(icmp_type: u8, id: u16, seq: u16, data_len: usize) -> Vec<u8> {
    let mut m = vec![icmp_type, 0, 0, 0];
    m.extend_from_slice(&id.to_be_bytes());
    m.extend_from_slice(&seq.to_be_bytes());
    m.extend((0..data_len).map(|i| i as u8));
    let sum = checksum(&m);
    m[2..4].copy_from_slice(&sum.to_be_bytes());
    m
}

pub(crate) fn arp(op: u16, sha: [u8; 6], spa: Ipv4Addr, tha: [u8; 6], tpa: Ipv4Addr) -> Vec<u8> {
    let mut a = vec![0, 1, 0x08, 0, 6, 4];
    a.extend_from_slice(&op.to_be_bytes());
    a.extend_from_slice(&sha);
    a.extend_from_slice(&spa.octets());
    a.extend_from_slice(&tha);
    a.extend_from_slice(&tpa.octets());
    a
}

/// A DNS query for `name` (type A, recursion desired).
pub(crate) fn dns_query(id: u16, name: &str, qtype: u16) -> Vec<u8> {
    let mut d = Vec::new();
    d.extend_from_slice(&id.to_be_bytes());
    d.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.split('.').filter(|l| !l.is_empty()) {
        d.push(label.len() as u8);
        d.extend_from_slice(label.as_bytes());
    }
    d.push(0);
    d.extend_from_slice(&qtype.to_be_bytes());
    d.extend_from_slice(&[0, 1]);
    d
}

/// Linux cooked v1 header: packet type, ARPHRD_ETHER, 6-byte address, protocol.
pub(crate) fn sll(packet_type: u16, addr: [u8; 6], protocol: u16, payload: &[u8]) -> Vec<u8> {
    let mut h = Vec::new();
    h.extend_from_slice(&packet_type.to_be_bytes());
    h.extend_from_slice(&1u16.to_be_bytes());
    h.extend_from_slice(&6u16.to_be_bytes());
    h.extend_from_slice(&addr);
    h.extend_from_slice(&[0, 0]);
    h.extend_from_slice(&protocol.to_be_bytes());
    h.extend_from_slice(payload);
    h
}

/// Linux cooked v2 header.
pub(crate) fn sll2(
    protocol: u16,
    ifindex: u32,
    packet_type: u8,
    addr: [u8; 6],
    payload: &[u8],
) -> Vec<u8> {
    let mut h = Vec::new();
    h.extend_from_slice(&protocol.to_be_bytes());
    h.extend_from_slice(&[0, 0]);
    h.extend_from_slice(&ifindex.to_be_bytes());
    h.extend_from_slice(&1u16.to_be_bytes());
    h.push(packet_type);
    h.push(6);
    h.extend_from_slice(&addr);
    h.extend_from_slice(&[0, 0]);
    h.extend_from_slice(payload);
    h
}

/// A realistic set of Ethernet frames: ICMP echo, a TCP handshake with data and close,
/// UDP, DNS, ARP, ICMPv6 echo and neighbour discovery, IPv6 TCP, a VLAN-tagged frame.
pub(crate) fn sample_frames() -> Vec<Vec<u8>> {
    let v4 = |src, dst, proto, payload: &[u8], from_a: bool| {
        let (d, s) = if from_a {
            (MAC_B, MAC_A)
        } else {
            (MAC_A, MAC_B)
        };
        ether(d, s, 0x0800, &ipv4(src, dst, proto, payload))
    };
    let v6 = |src, dst, next, payload: &[u8], from_a: bool| {
        let (d, s) = if from_a {
            (MAC_B, MAC_A)
        } else {
            (MAC_A, MAC_B)
        };
        ether(d, s, 0x86dd, &ipv6(src, dst, next, payload))
    };
    let mut ns = vec![135, 0, 0, 0, 0, 0, 0, 0];
    ns.extend_from_slice(&IP6_B.octets());
    ns.extend_from_slice(&[1, 1]);
    ns.extend_from_slice(&MAC_A);
    let mut na = vec![136, 0, 0, 0, 0x60, 0, 0, 0];
    na.extend_from_slice(&IP6_B.octets());
    vec![
        v4(IP_A, IP_B, 1, &icmp_echo(8, 5, 1, 56), true),
        v4(IP_B, IP_A, 1, &icmp_echo(0, 5, 1, 56), false),
        v4(
            IP_A,
            IP_B,
            6,
            &tcp(40000, 5201, 1000, 0, SYN, 64240, &syn_options(111, 0), b""),
            true,
        ),
        v4(
            IP_B,
            IP_A,
            6,
            &tcp(
                5201,
                40000,
                5000,
                1001,
                SYN | ACK,
                65160,
                &syn_options(222, 111),
                b"",
            ),
            false,
        ),
        v4(
            IP_A,
            IP_B,
            6,
            &tcp(
                40000,
                5201,
                1001,
                5001,
                ACK,
                502,
                &ts_options(112, 222),
                b"",
            ),
            true,
        ),
        v4(
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
                b"hello snoopy",
            ),
            true,
        ),
        v4(
            IP_B,
            IP_A,
            6,
            &tcp(
                5201,
                40000,
                5001,
                1013,
                ACK,
                509,
                &ts_options(223, 113),
                b"",
            ),
            false,
        ),
        v4(
            IP_A,
            IP_B,
            6,
            &tcp(
                40000,
                5201,
                1013,
                5001,
                FIN | ACK,
                502,
                &ts_options(114, 223),
                b"",
            ),
            true,
        ),
        v4(
            IP_B,
            IP_A,
            6,
            &tcp(5201, 40001, 0, 77, RST | ACK, 0, &[], b""),
            false,
        ),
        v4(IP_A, IP_B, 17, &udp(40000, 9999, b"twelve bytes"), true),
        v4(
            IP_A,
            IP_B,
            17,
            &udp(40000, 53, &dns_query(0x1234, "example.com.", 1)),
            true,
        ),
        ether(BROADCAST, MAC_A, 0x0806, &arp(1, MAC_A, IP_A, [0; 6], IP_B)),
        ether(MAC_A, MAC_B, 0x0806, &arp(2, MAC_B, IP_B, MAC_A, IP_A)),
        v6(IP6_A, IP6_B, 58, &icmp_echo(128, 7, 3, 56), true),
        v6(IP6_B, IP6_A, 58, &icmp_echo(129, 7, 3, 56), false),
        v6(IP6_A, IP6_B, 58, &ns, true),
        v6(IP6_B, IP6_A, 58, &na, false),
        v6(
            IP6_A,
            IP6_B,
            6,
            &tcp(40002, 443, 9000, 0, SYN, 64800, &syn_options(333, 0), b""),
            true,
        ),
        v6(IP6_A, IP6_B, 17, &udp(40003, 9999, b"v6 data"), true),
        ether(
            MAC_B,
            MAC_A,
            0x8100,
            &vlan_tag(
                100,
                0,
                0x0800,
                &ipv4(IP_A, IP_B, 1, &icmp_echo(8, 6, 2, 56)),
            ),
        ),
    ]
}

/// Timestamps with every nanosecond digit significant.
pub(crate) fn timestamp(i: usize) -> Duration {
    Duration::new(1_700_000_000 + i as u64, 123_456_789 + (i as u32) * 1_001)
}

/// The sample frames as packets on interface `interface` (snaplen not applied).
pub(crate) fn packets(frames: &[Vec<u8>], interface: u32) -> Vec<OwnedPacket> {
    frames
        .iter()
        .enumerate()
        .map(|(i, f)| OwnedPacket {
            timestamp: timestamp(i),
            orig_len: f.len() as u32,
            data: f.clone(),
            interface,
        })
        .collect()
}

pub(crate) fn ethernet(name: &str) -> Interface {
    Interface::new(name, LinkType::Ethernet, 262_144)
}

/// Runs a tool (which must be installed: the test fails otherwise) and returns its stdout.
pub(crate) fn run(program: &str, args: &[&str]) -> Result<String> {
    let output = Command::new(program)
        .args(args)
        .env("TZ", "UTC")
        .output()
        .with_context(|| {
            format!("running {program}: is it installed? (apt-get install tcpdump tshark)")
        })?;
    if !output.status.success() {
        bail!(
            "{program} {args:?} failed: {}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(String::from_utf8(output.stdout)?)
}

/// `tshark -r path -T fields -e ...`, one Vec of fields per packet.
pub(crate) fn tshark_fields(path: &Path, fields: &[&str]) -> Result<Vec<Vec<String>>> {
    let path = path.to_str().context("utf-8 path")?;
    let mut args = vec!["-r", path, "-T", "fields", "-E", "separator=\t"];
    for f in fields {
        args.push("-e");
        args.push(f);
    }
    Ok(run("tshark", &args)?
        .lines()
        .map(|l| l.split('\t').map(str::to_string).collect())
        .collect())
}

/// Packets as tcpdump sees them: (epoch timestamp with 9 decimals, bytes) from
/// `tcpdump -r path -tt --nano -xx -n`.
pub(crate) fn tcpdump_packets(path: &Path) -> Result<Vec<(String, Vec<u8>)>> {
    let path = path.to_str().context("utf-8 path")?;
    let out = run("tcpdump", &["-r", path, "-tt", "--nano", "-xx", "-n"])?;
    let mut packets: Vec<(String, Vec<u8>)> = Vec::new();
    for line in out.lines() {
        if let Some(hex) = line.trim_start().strip_prefix("0x") {
            let (_, bytes) = hex.split_once(':').context("hex line")?;
            let packet = packets.last_mut().context("hex before a packet")?;
            for group in bytes.split_whitespace() {
                for i in (0..group.len()).step_by(2) {
                    packet.1.push(u8::from_str_radix(&group[i..i + 2], 16)?);
                }
            }
        } else if !line.starts_with(char::is_whitespace) {
            let ts = line
                .split_whitespace()
                .next()
                .context("timestamp")?
                .to_string();
            packets.push((ts, Vec::new()));
        }
    }
    Ok(packets)
}

/// `secs.nanos` as tshark and tcpdump print epoch timestamps.
pub(crate) fn epoch(ts: Duration) -> String {
    format!("{}.{:09}", ts.as_secs(), ts.subsec_nanos())
}
