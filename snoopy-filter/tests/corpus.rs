//! A packet corpus for the filter differential tests, built by hand from raw bytes, and the
//! small pcap reader/writer and tcpdump runners those tests need.

use std::io::Write;
use std::path::Path;
use std::process::Command;

use snoopy_filter::LinkType;
use snoopy_filter::Program;

/// One corpus packet: captured bytes, length on the wire, and (for live-mode tests) the
/// VLAN tag the kernel would have stripped.
#[derive(Debug, Clone)]
pub struct Pkt {
    pub data: Vec<u8>,
    pub wire_len: u32,
}

pub const MACS: [[u8; 6]; 5] = [
    [0x02, 0x00, 0x00, 0x00, 0x00, 0x01],
    [0x02, 0x00, 0x00, 0x00, 0x00, 0x02],
    [0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
    [0x01, 0x00, 0x5e, 0x00, 0x00, 0x01],
    [0x33, 0x33, 0x00, 0x00, 0x00, 0x01],
];
pub const IPS: [[u8; 4]; 7] = [
    [10, 0, 0, 1],
    [10, 0, 0, 2],
    [192, 168, 1, 1],
    [1, 2, 3, 4],
    [224, 0, 0, 1],
    [255, 255, 255, 255],
    [10, 1, 2, 3],
];
pub const IP6S: [&str; 5] = ["::1", "fe80::1", "2001:db8::1", "2001:db8::2", "ff02::1"];
pub const PORTS: [u16; 10] = [22, 53, 80, 443, 8080, 1, 5, 1024, 65535, 123];

/// A tiny deterministic generator (xorshift64*), so corpora and random expressions are
/// reproducible from a printed seed.
#[derive(Debug, Clone)]
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    pub fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len())]
    }
    pub fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
}

fn ether(dst: [u8; 6], src: [u8; 6], ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend(dst);
    f.extend(src);
    f.extend(ethertype.to_be_bytes());
    f.extend(payload);
    f
}

/// Ethernet with VLAN tags (outermost first): `(tpid, tci)`.
fn ether_tagged(
    dst: [u8; 6],
    src: [u8; 6],
    tags: &[(u16, u16)],
    ethertype: u16,
    payload: &[u8],
) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend(dst);
    f.extend(src);
    for (tpid, tci) in tags {
        f.extend(tpid.to_be_bytes());
        f.extend(tci.to_be_bytes());
    }
    f.extend(ethertype.to_be_bytes());
    f.extend(payload);
    f
}

#[allow(clippy::too_many_arguments)]
fn ipv4(
    src: [u8; 4],
    dst: [u8; 4],
    proto: u8,
    options: usize,
    frag: u16,
    payload: &[u8],
) -> Vec<u8> {
    let ihl = 5 + options / 4;
    let total = (ihl * 4 + payload.len()) as u16;
    let mut h = vec![(0x40 | ihl) as u8, 0];
    h.extend(total.to_be_bytes());
    h.extend([0x12, 0x34]);
    h.extend(frag.to_be_bytes());
    h.extend([64, proto, 0, 0]);
    h.extend(src);
    h.extend(dst);
    h.extend(std::iter::repeat_n(1u8, options)); // NOP options
    h.extend(payload);
    h
}

fn ipv6(src: &str, dst: &str, next: u8, payload: &[u8]) -> Vec<u8> {
    let s: std::net::Ipv6Addr = src.parse().unwrap();
    let d: std::net::Ipv6Addr = dst.parse().unwrap();
    let mut h = vec![0x60, 0, 0, 0];
    h.extend((payload.len() as u16).to_be_bytes());
    h.extend([next, 64]);
    h.extend(s.octets());
    h.extend(d.octets());
    h.extend(payload);
    h
}

fn tcp(sport: u16, dport: u16, flags: u8, data: &[u8]) -> Vec<u8> {
    let mut h = Vec::new();
    h.extend(sport.to_be_bytes());
    h.extend(dport.to_be_bytes());
    h.extend([0, 0, 0, 1, 0, 0, 0, 0, 0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
    h.extend(data);
    h
}

fn udp(sport: u16, dport: u16, data: &[u8]) -> Vec<u8> {
    let mut h = Vec::new();
    h.extend(sport.to_be_bytes());
    h.extend(dport.to_be_bytes());
    h.extend(((8 + data.len()) as u16).to_be_bytes());
    h.extend([0, 0]);
    h.extend(data);
    h
}

fn sctp(sport: u16, dport: u16) -> Vec<u8> {
    let mut h = Vec::new();
    h.extend(sport.to_be_bytes());
    h.extend(dport.to_be_bytes());
    h.extend([0; 8]);
    h
}

fn icmp(ty: u8, code: u8) -> Vec<u8> {
    vec![ty, code, 0, 0, 0, 1, 0, 1, 0xde, 0xad, 0xbe, 0xef]
}

fn arp(op: u16, sha: [u8; 6], spa: [u8; 4], tha: [u8; 6], tpa: [u8; 4]) -> Vec<u8> {
    let mut h = vec![0, 1, 8, 0, 6, 4];
    h.extend(op.to_be_bytes());
    h.extend(sha);
    h.extend(spa);
    h.extend(tha);
    h.extend(tpa);
    h
}

/// One of the corpus IPv6 addresses.
fn v6(rng: &mut Rng) -> &'static str {
    IP6S[rng.below(IP6S.len())]
}

/// An MPLS label stack (outermost first) in front of `payload`; the last label has the
/// bottom-of-stack bit unless `bottom` is false.
fn mpls(labels: &[u32], bottom: bool, payload: &[u8]) -> Vec<u8> {
    let mut h = Vec::new();
    for (i, label) in labels.iter().enumerate() {
        let s = u32::from(bottom && i == labels.len() - 1);
        h.extend(((label << 12) | (s << 8) | 64).to_be_bytes());
    }
    h.extend(payload);
    h
}

/// A PPPoE session packet carrying a PPP frame of protocol `proto`.
fn pppoe_session(session: u16, proto: u16, payload: &[u8]) -> Vec<u8> {
    let mut h = vec![0x11, 0x00];
    h.extend(session.to_be_bytes());
    h.extend(((2 + payload.len()) as u16).to_be_bytes());
    h.extend(proto.to_be_bytes());
    h.extend(payload);
    h
}

/// A PPPoE discovery packet (PADI 0x09, PADO 0x07, ...) with a Service-Name tag.
fn pppoe_discovery(code: u8, session: u16) -> Vec<u8> {
    let mut h = vec![0x11, code];
    h.extend(session.to_be_bytes());
    h.extend(4u16.to_be_bytes());
    h.extend([0x01, 0x01, 0x00, 0x00]);
    h
}

/// A DECnet routing packet: little-endian length, an optional padding byte, then a short
/// (flags 0x02: dst, src) or long (flags 0x06: area, subarea, HIORD + address each) header.
/// Addresses are `area << 10 | node`, little-endian on the wire.
fn decnet(long: bool, pad: bool, dst: u16, src: u16) -> Vec<u8> {
    let mut h = vec![0, 0];
    if pad {
        h.push(0x81);
    }
    if long {
        h.extend([0x06, 0, 0]);
        h.extend([0xaa, 0x00, 0x04, 0x00]);
        h.extend(dst.to_le_bytes());
        h.extend([0, 0]);
        h.extend([0xaa, 0x00, 0x04, 0x00]);
        h.extend(src.to_le_bytes());
        h.extend([0, 0, 0, 0]);
    } else {
        h.push(0x02);
        h.extend(dst.to_le_bytes());
        h.extend(src.to_le_bytes());
        h.push(0);
    }
    let len = (h.len() - 2) as u16;
    h[..2].copy_from_slice(&len.to_le_bytes());
    h.extend([0x5a; 8]);
    h
}

/// A Geneve header (version `ver`, `opt_words` 4-byte words of options, protocol type,
/// VNI) and its payload.
fn geneve(ver: u8, opt_words: u8, proto: u16, vni: u32, payload: &[u8]) -> Vec<u8> {
    let mut h = vec![(ver << 6) | opt_words, 0];
    h.extend(proto.to_be_bytes());
    h.extend((vni << 8).to_be_bytes());
    h.extend(std::iter::repeat_n(0x77u8, usize::from(opt_words) * 4));
    h.extend(payload);
    h
}

/// DECnet addresses the corpus uses: 1.2, 10.1023, 63.1, and 5 (area 0).
pub const DECNET_ADDRS: [u16; 4] = [(1 << 10) | 2, (10 << 10) | 1023, (63 << 10) | 1, 5];

/// The network-layer packets (ethertype, bytes) the corpus is made of.
fn l3_packets(rng: &mut Rng) -> Vec<(u16, Vec<u8>)> {
    let mut out = Vec::new();
    // TCP over IPv4 with every flag combination, over a spread of ports and addresses.
    for flags in 0..=255u8 {
        let (s, d) = (*rng.pick(&IPS), *rng.pick(&IPS));
        let (sp, dp) = (*rng.pick(&PORTS), *rng.pick(&PORTS));
        out.push((0x0800, ipv4(s, d, 6, 0, 0x4000, &tcp(sp, dp, flags, b"hi"))));
    }
    for _ in 0..120 {
        let (s, d) = (*rng.pick(&IPS), *rng.pick(&IPS));
        let (sp, dp) = (*rng.pick(&PORTS), *rng.pick(&PORTS));
        let options = *rng.pick(&[0usize, 0, 4, 8, 40]);
        let frag = *rng.pick(&[0u16, 0x4000, 0x2000, 0x0001, 0x00b9, 0x2010]);
        let l4 = match rng.below(5) {
            0 => (6, tcp(sp, dp, rng.next() as u8, b"data")),
            1 => (17, udp(sp, dp, b"payload")),
            2 => (132, sctp(sp, dp)),
            3 => (1, icmp(*rng.pick(&[0u8, 3, 8, 11, 13]), rng.below(3) as u8)),
            _ => (
                *rng.pick(&[2u8, 9, 47, 50, 51, 103, 112, 89]),
                vec![0x11; 20],
            ),
        };
        out.push((0x0800, ipv4(s, d, l4.0, options, frag, &l4.1)));
    }
    // IPv6: TCP, UDP, SCTP, ICMPv6, with and without a fragment header, and other headers.
    for _ in 0..120 {
        let (s, d) = (*rng.pick(&IP6S), *rng.pick(&IP6S));
        let (sp, dp) = (*rng.pick(&PORTS), *rng.pick(&PORTS));
        let (next, l4) = match rng.below(5) {
            0 => (6u8, tcp(sp, dp, rng.next() as u8, b"x")),
            1 => (17, udp(sp, dp, b"y")),
            2 => (132, sctp(sp, dp)),
            3 => (58, icmp(*rng.pick(&[1u8, 128, 129, 135, 136]), 0)),
            _ => (
                *rng.pick(&[0u8, 43, 50, 51, 59, 103]),
                vec![6, 0, 0, 0, 0, 0, 0, 0, 0, 80, 0, 80],
            ),
        };
        let pkt = if rng.chance(25) {
            // A fragment header (44) in front.
            let mut fh = vec![next, 0, 0, *rng.pick(&[0u8, 1, 8]), 0, 0, 0, 7];
            fh.extend(&l4);
            ipv6(s, d, 44, &fh)
        } else {
            ipv6(s, d, next, &l4)
        };
        out.push((0x86dd, pkt));
    }
    // ARP and RARP.
    for _ in 0..30 {
        let (s, d) = (*rng.pick(&IPS), *rng.pick(&IPS));
        let ty = *rng.pick(&[0x0806u16, 0x0806, 0x8035]);
        out.push((ty, arp(rng.below(4) as u16, MACS[0], s, MACS[1], d)));
    }
    // Other ethertypes (DEC's LAT, MOP and SCA among them).
    for ty in [
        0x6003u16, 0x6004, 0x809b, 0x80f3, 0x8137, 0x9000, 0x88cc, 0x0801, 0x0600, 0x6001, 0x6002,
        0x6007, 0x8847, 0x8863, 0x8864,
    ] {
        out.push((ty, vec![0x45; 40]));
    }
    // MPLS: one or two labels over IPv4/IPv6 TCP/UDP, over other payloads, and a stack whose
    // last label lacks the bottom-of-stack bit.
    for _ in 0..40 {
        let labels: Vec<u32> = (0..1 + rng.below(2))
            .map(|_| *rng.pick(&[5u32, 6, 100, 0xfffff, 0]))
            .collect();
        let (sp, dp) = (*rng.pick(&PORTS), *rng.pick(&PORTS));
        let inner = match rng.below(4) {
            0 => ipv4(
                *rng.pick(&IPS),
                *rng.pick(&IPS),
                6,
                0,
                0,
                &tcp(sp, dp, 2, b"m"),
            ),
            1 => ipv4(
                *rng.pick(&IPS),
                *rng.pick(&IPS),
                17,
                0,
                0,
                &udp(sp, dp, b"m"),
            ),
            2 => ipv6(v6(rng), v6(rng), 6, &tcp(sp, dp, 2, b"m")),
            _ => vec![0x11; 30],
        };
        out.push((0x8847, mpls(&labels, !rng.chance(15), &inner)));
    }
    // PPPoE discovery, and sessions carrying IPv4, IPv6, MPLS, OSI, DECnet, AppleTalk, IPX,
    // bridged STP and other PPP protocols.
    for code in [0x09u8, 0x07, 0x19, 0xa7] {
        out.push((0x8863, pppoe_discovery(code, *rng.pick(&[0u16, 3, 5]))));
    }
    for i in 0..36 {
        // Every kind of payload in every session.
        let session = [3u16, 5, 0xffff, 0x1234][i / 9];
        let (sp, dp) = (*rng.pick(&PORTS), *rng.pick(&PORTS));
        let (proto, payload) = match i % 9 {
            0 | 1 => (
                0x0021u16,
                ipv4(
                    *rng.pick(&IPS),
                    *rng.pick(&IPS),
                    6,
                    0,
                    0,
                    &tcp(sp, dp, 2, b"p"),
                ),
            ),
            2 => (
                0x0021,
                ipv4(
                    *rng.pick(&IPS),
                    *rng.pick(&IPS),
                    17,
                    0,
                    0,
                    &udp(sp, dp, b"p"),
                ),
            ),
            3 => (0x0057, ipv6(v6(rng), v6(rng), 17, &udp(sp, dp, b"p"))),
            4 => (
                0x0281,
                mpls(
                    &[[3u32, 5][i % 2]],
                    true,
                    &ipv4(
                        *rng.pick(&IPS),
                        *rng.pick(&IPS),
                        6,
                        0,
                        0,
                        &tcp(sp, dp, 2, b"p"),
                    ),
                ),
            ),
            5 => (
                0x0023,
                vec![[0x81u8, 0x82, 0x83, 0x81][i / 9], 27, 1, 0, 18, 0, 0],
            ),
            6 => (
                *rng.pick(&[0x0027u16, 0x0029, 0x002b, 0x0031]),
                vec![0x42; 20],
            ),
            7 => (0x8864, pppoe_session(5, 0x0021, &[0x45; 24])),
            _ => (
                *rng.pick(&[0xc021u16, 0x8021, 0x80f3, 0x00f0]),
                vec![1, 2, 3, 4],
            ),
        };
        out.push((0x8864, pppoe_session(session, proto, &payload)));
    }
    // Header chains for protochain: IPv6 extension headers (hop-by-hop, destination
    // options, routing, fragment) in front of TCP/UDP/ICMPv6, AH over IPv4 and IPv6, and
    // "no next header".
    let ext = |next: u8, len8: u8| {
        let mut h = vec![next, len8];
        h.extend(std::iter::repeat_n(0u8, 6 + 8 * usize::from(len8)));
        h
    };
    // AH with payload length 4 (24 bytes); its SPI and sequence number start with 6 and 17,
    // which is what libpcap reads as the next header behind a second AH (see below).
    let ah = |next: u8| {
        let mut h = vec![next, 4, 0, 0, 6, 4, 0, 0, 17, 4, 0, 0];
        h.extend([0u8; 12]);
        h
    };
    for chain in [
        vec![(0u8, 0u8), (60, 1), (43, 0), (44, 0)],
        vec![(60, 0)],
        vec![(43, 2), (51, 0)],
        vec![(0, 0), (51, 0)],
        vec![(51, 0)],
        vec![(44, 0), (60, 0)],
        vec![(0, 0), (59, 0)],
    ] {
        for last in [6u8, 17, 58] {
            let (sp, dp) = (*rng.pick(&PORTS), *rng.pick(&PORTS));
            let mut body = match last {
                6 => tcp(sp, dp, 2, b"c"),
                17 => udp(sp, dp, b"c"),
                _ => icmp(128, 0),
            };
            // Build from the innermost header outwards: each names the one after it.
            let mut next = last;
            for &(ty, len) in chain.iter().rev() {
                let mut h = if ty == 51 { ah(next) } else { ext(next, len) };
                if ty == 59 {
                    h = Vec::new();
                }
                h.extend(body);
                body = h;
                next = ty;
            }
            out.push((0x86dd, ipv6(v6(rng), v6(rng), next, &body)));
        }
    }
    // Behind AH, libpcap looks for the next header at (AH length + 2) * 4 bytes from the
    // start of the IP payload, not from the AH header: a second AH right after the first
    // (24 bytes) is where it looks. (Behind an IPv6 extension header that offset points
    // back into the headers, and libpcap can loop forever: no such packet here.)
    for last in [6u8, 17, 1] {
        let (sp, dp) = (*rng.pick(&PORTS), *rng.pick(&PORTS));
        let mut h = ah(51);
        h.extend(ah(last));
        h.extend(tcp(sp, dp, 2, b"a"));
        out.push((0x0800, ipv4(*rng.pick(&IPS), *rng.pick(&IPS), 51, 0, 0, &h)));
    }
    for last in [6u8, 17, 1] {
        let (sp, dp) = (*rng.pick(&PORTS), *rng.pick(&PORTS));
        let mut h = ah(last);
        h.extend(if last == 6 {
            tcp(sp, dp, 2, b"a")
        } else {
            udp(sp, dp, b"a")
        });
        out.push((0x0800, ipv4(*rng.pick(&IPS), *rng.pick(&IPS), 51, 0, 0, &h)));
    }
    // Geneve (UDP to 6081) over IPv4 and IPv6: Ethernet (TEB) or bare IP inside, with and
    // without options, VNIs 5 and others, version 0 and (not Geneve for libpcap) 1.
    for i in 0..48 {
        let (sp, dp) = (*rng.pick(&PORTS), *rng.pick(&PORTS));
        let inner_ip = match i % 3 {
            0 => ipv4(
                *rng.pick(&IPS),
                *rng.pick(&IPS),
                6,
                0,
                0,
                &tcp(sp, dp, 2, b"g"),
            ),
            1 => ipv4(
                *rng.pick(&IPS),
                *rng.pick(&IPS),
                17,
                0,
                0,
                &udp(sp, dp, b"g"),
            ),
            _ => ipv6(v6(rng), v6(rng), 6, &tcp(sp, dp, 2, b"g")),
        };
        let ty: u16 = if i % 3 == 2 { 0x86dd } else { 0x0800 };
        let (proto, payload) = if (i / 3) % 2 == 0 {
            (
                0x6558,
                ether(*rng.pick(&MACS), *rng.pick(&MACS), ty, &inner_ip),
            )
        } else {
            (ty, inner_ip)
        };
        let ver = u8::from(i % 11 == 10);
        let opts = [0u8, 33, 2][(i / 6) % 3];
        let vni = [5u32, 5, 100, 0xff_ffff][(i / 12) % 4];
        let g = udp(
            *rng.pick(&PORTS),
            6081,
            &geneve(ver, opts, proto, vni, &payload),
        );
        if (i / 24) % 2 == 0 {
            out.push((0x0800, ipv4(*rng.pick(&IPS), *rng.pick(&IPS), 17, 0, 0, &g)));
        } else {
            out.push((0x86dd, ipv6(v6(rng), v6(rng), 17, &g)));
        }
    }
    // A bare (not TEB) Geneve payload whose first bytes look like a broadcast address:
    // libpcap's Ethernet-address tests check that an Ethernet header is there at all.
    let g = udp(53, 6081, &geneve(0, 0, 0x0800, 5, &[0xff; 30]));
    out.push((0x0800, ipv4(IPS[0], IPS[1], 17, 0, 0, &g)));
    // DECnet routing headers: long and short, padded or not, between the corpus addresses.
    for long in [false, true] {
        for pad in [false, true] {
            for _ in 0..4 {
                let (d, s) = (*rng.pick(&DECNET_ADDRS), *rng.pick(&DECNET_ADDRS));
                out.push((0x6003, decnet(long, pad, d, s)));
            }
        }
    }
    out
}

/// The Ethernet corpus: every network-layer packet in a frame, plus VLAN-tagged and
/// double-tagged frames, 802.3/LLC/SNAP frames, truncated frames and random bytes.
pub fn ethernet_corpus(seed: u64) -> Vec<Pkt> {
    let mut rng = Rng(seed | 1);
    let mut out = Vec::new();
    let l3 = l3_packets(&mut rng);
    let whole = |data: Vec<u8>| Pkt {
        wire_len: data.len() as u32,
        data,
    };
    for (ty, p) in &l3 {
        let (dst, src) = (*rng.pick(&MACS), *rng.pick(&MACS));
        out.push(whole(ether(dst, src, *ty, p)));
    }
    for (i, (ty, p)) in l3.iter().enumerate().filter(|(i, _)| i % 3 == 0) {
        let (dst, src) = (*rng.pick(&MACS), *rng.pick(&MACS));
        let vid = *rng.pick(&[1u16, 5, 100, 4095, 0]);
        let pcp = (rng.below(8) as u16) << 13;
        let tpid = *rng.pick(&[0x8100u16, 0x8100, 0x88a8, 0x9100]);
        let tags: Vec<(u16, u16)> = if i % 2 == 0 {
            vec![(tpid, pcp | vid)]
        } else {
            vec![(0x88a8, vid), (0x8100, *rng.pick(&[5u16, 7, 100]))]
        };
        out.push(whole(ether_tagged(dst, src, &tags, *ty, p)));
    }
    // 802.3 frames with LLC (IP SAP, ISO, NetBEUI, IPX, STP) and SNAP (AppleTalk, AARP, IPX).
    let llc_payloads: Vec<Vec<u8>> = vec![
        vec![0x06, 0x06, 0x03, 1, 2, 3],
        vec![0xfe, 0xfe, 0x03, 0x81, 1, 2],
        vec![0xf0, 0xf0, 0x03, 1, 2, 3],
        vec![0xe0, 0xe0, 0x03, 0xff, 0xff, 0],
        vec![0xff, 0xff, 0, 0, 0, 0],
        vec![0x42, 0x42, 0x03, 0, 0, 0],
        vec![0x64, 0x64, 0x03, 0, 0, 0],
        vec![0xaa, 0xaa, 0x03, 0x08, 0x00, 0x07, 0x80, 0x9b, 1, 2],
        vec![0xaa, 0xaa, 0x03, 0, 0, 0, 0x80, 0xf3, 1, 2],
        vec![0xaa, 0xaa, 0x03, 0, 0, 0, 0x81, 0x37, 1, 2],
        // OSI: ES-IS, and IS-IS with every PDU type (at offset 4 of the IS-IS header).
        vec![0xfe, 0xfe, 0x03, 0x82, 9, 1, 0, 2],
        vec![0xfe, 0xfe, 0x03, 0x83, 27, 1, 0, 14],
        vec![0xfe, 0xfe, 0x03, 0x83, 27, 1, 0, 15],
        vec![0xfe, 0xfe, 0x03, 0x83, 27, 1, 0, 16],
        vec![0xfe, 0xfe, 0x03, 0x83, 27, 1, 0, 17],
        vec![0xfe, 0xfe, 0x03, 0x83, 27, 1, 0, 18],
        vec![0xfe, 0xfe, 0x03, 0x83, 27, 1, 0, 20],
        vec![0xfe, 0xfe, 0x03, 0x83, 27, 1, 0, 24],
        vec![0xfe, 0xfe, 0x03, 0x83, 27, 1, 0, 25],
        vec![0xfe, 0xfe, 0x03, 0x83, 27, 1, 0, 26],
        vec![0xfe, 0xfe, 0x03, 0x83, 27, 1, 0, 27],
        // LLC control bytes: I frames, S frames (RR, RNR, REJ), U frames (UI with and
        // without the P/F bit, UA, DISC, DM, SABME, TEST, XID, FRMR).
        vec![0x42, 0x42, 0x00, 0x02, 0, 0],
        vec![0x42, 0x42, 0x01, 0x00, 0, 0],
        vec![0xf0, 0xf0, 0x05, 0x00, 0, 0],
        vec![0xf0, 0xf0, 0x09, 0x00, 0, 0],
        vec![0x06, 0x06, 0x13, 0, 0, 0],
        vec![0x06, 0x06, 0x63, 0, 0, 0],
        vec![0x06, 0x06, 0x43, 0, 0, 0],
        vec![0x06, 0x06, 0x0f, 0, 0, 0],
        vec![0xfe, 0xfe, 0x6f, 0, 0, 0],
        vec![0xfe, 0xfe, 0xe3, 0, 0, 0],
        vec![0xfe, 0xfe, 0xf3, 0, 0, 0],
        vec![0xe0, 0xe0, 0xaf, 0, 0, 0],
        vec![0xe0, 0xe0, 0x87, 0, 0, 0],
    ];
    for p in &llc_payloads {
        let mut body = p.clone();
        body.resize(46, 0);
        let frame = ether(MACS[0], MACS[1], body.len() as u16, &body);
        // Cut inside the LLC/SNAP header too: which test loads first decides these.
        for cut in [15, 17, 19, 21] {
            out.push(Pkt {
                data: frame[..cut].to_vec(),
                wire_len: frame.len() as u32,
            });
        }
        out.push(whole(frame));
    }
    // Truncated captures (snaplen cut) of some frames, and short frames.
    for i in (0..out.len()).step_by(7).collect::<Vec<_>>() {
        let full = out[i].clone();
        let cut = *rng.pick(&[6usize, 12, 13, 14, 20, 23, 30, 34, 38, 40, 54, 56]);
        if cut < full.data.len() {
            out.push(Pkt {
                data: full.data[..cut].to_vec(),
                wire_len: full.wire_len,
            });
        }
    }
    for n in [0usize, 1, 5, 13, 14, 15] {
        out.push(whole(vec![0x08; n]));
    }
    // Random bytes, some of them with an IP ethertype.
    for _ in 0..60 {
        let n = rng.below(90);
        let mut data: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
        if n >= 14 && rng.chance(50) {
            let ty: [u8; 2] = *rng.pick(&[[8u8, 0], [0x86, 0xdd], [8, 6], [0x81, 0]]);
            data[12..14].copy_from_slice(&ty);
        }
        out.push(whole(data));
    }
    out
}

/// Converts an Ethernet frame to the same packet under another link type (`None` when the
/// frame has no equivalent there, e.g. a VLAN-tagged frame under raw IP).
pub fn convert(p: &Pkt, link: LinkType, seed: usize) -> Option<Pkt> {
    if link == LinkType::Ethernet {
        return Some(p.clone());
    }
    let d = &p.data;
    let cut = d.len() < p.wire_len as usize;
    if d.len() < 14 {
        return (link == LinkType::RawIp).then(|| p.clone());
    }
    let ty = u16::from_be_bytes([d[12], d[13]]);
    let (proto, payload) = if ty <= 1500 {
        (0x0004, &d[14..])
    } else {
        (ty, &d[14..])
    };
    let grow = |hdr: Vec<u8>| {
        let mut data = hdr;
        let extra = data.len() as u32;
        data.extend(payload);
        Some(Pkt {
            data,
            wire_len: p.wire_len - 14 + extra,
        })
    };
    match link {
        LinkType::LinuxSll => {
            let mut h = vec![0, (seed % 5) as u8, 0, 1, 0, 6];
            h.extend(&d[6..12]);
            h.extend([0, 0]);
            h.extend(proto.to_be_bytes());
            grow(h)
        }
        LinkType::LinuxSll2 => {
            // Packet types 0 to 4 (host ... outgoing) and interface indices 1 to 3, so that
            // `inbound`, `outbound` and `ifindex N` each keep some packets and drop others.
            let ifindex = (seed % 3) as u32 + 1;
            let mut h = proto.to_be_bytes().to_vec();
            h.extend([0, 0]);
            h.extend(ifindex.to_be_bytes());
            h.extend([0, 1, (seed % 5) as u8, 6]);
            h.extend(&d[6..12]);
            h.extend([0, 0]);
            grow(h)
        }
        LinkType::RawIp => {
            if (ty == 0x0800 || ty == 0x86dd) && !cut {
                Some(Pkt {
                    data: payload.to_vec(),
                    wire_len: payload.len() as u32,
                })
            } else if seed.is_multiple_of(4) {
                Some(Pkt {
                    data: payload.to_vec(),
                    wire_len: p.wire_len - 14,
                })
            } else {
                None
            }
        }
        _ => None,
    }
}

/// Writes a classic pcap file; packet `i` gets the timestamp `i` seconds, so tcpdump's
/// output maps back to indices.
pub fn write_pcap(path: &Path, link: LinkType, pkts: &[Pkt]) -> std::io::Result<()> {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    f.write_all(&0xa1b2_c3d4u32.to_le_bytes())?;
    f.write_all(&2u16.to_le_bytes())?;
    f.write_all(&4u16.to_le_bytes())?;
    f.write_all(&[0; 8])?;
    f.write_all(&262_144u32.to_le_bytes())?;
    f.write_all(&link.number().to_le_bytes())?;
    for (i, p) in pkts.iter().enumerate() {
        f.write_all(&(i as u32).to_le_bytes())?;
        f.write_all(&0u32.to_le_bytes())?;
        f.write_all(&(p.data.len() as u32).to_le_bytes())?;
        f.write_all(&p.wire_len.to_le_bytes())?;
        f.write_all(&p.data)?;
    }
    f.flush()
}

/// The timestamps (= indices) of the packets in a classic pcap byte stream.
pub fn pcap_indices(bytes: &[u8]) -> Result<Vec<usize>, String> {
    if bytes.len() < 24 {
        return Err(format!("pcap output too short ({} bytes)", bytes.len()));
    }
    let mut out = Vec::new();
    let mut pos = 24;
    while pos + 16 <= bytes.len() {
        let ts = u32::from_le_bytes(bytes[pos..pos + 4].try_into().unwrap());
        let caplen = u32::from_le_bytes(bytes[pos + 8..pos + 12].try_into().unwrap()) as usize;
        out.push(ts as usize);
        pos += 16 + caplen;
    }
    Ok(out)
}

/// Fails the test when tcpdump is not installed: these tests must not pass silently.
pub fn require_tcpdump() {
    let ok = Command::new("tcpdump")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "tcpdump is required for the filter differential tests (apt-get install tcpdump)"
    );
}

/// What tcpdump does with `expr`: the indices it keeps from `pcap`, or its error.
pub fn tcpdump_keeps(pcap: &Path, expr_file: &Path, expr: &str) -> Result<Vec<usize>, String> {
    std::fs::write(expr_file, expr).map_err(|e| e.to_string())?;
    let out = Command::new("tcpdump")
        .args(["-r"])
        .arg(pcap)
        .args(["-w", "-", "-F"])
        .arg(expr_file)
        .output()
        .map_err(|e| format!("running tcpdump: {e}"))?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
    }
    pcap_indices(&out.stdout)
}

/// libpcap's own program for `expr` (`tcpdump -ddd -y LINK`), or its error.
pub fn libpcap_program(link: LinkType, expr_file: &Path, expr: &str) -> Result<Program, String> {
    libpcap_program_with(link, expr_file, expr, true)
}

/// [`libpcap_program`], optionally without libpcap's optimizer (`tcpdump -O`).
pub fn libpcap_program_with(
    link: LinkType,
    expr_file: &Path,
    expr: &str,
    optimize: bool,
) -> Result<Program, String> {
    std::fs::write(expr_file, expr).map_err(|e| e.to_string())?;
    let mut tcpdump = Command::new("tcpdump");
    if !optimize {
        tcpdump.arg("-O");
    }
    let out = tcpdump
        .args(["-ddd", "-y", link.name(), "-F"])
        .arg(expr_file)
        .output()
        .map_err(|e| format!("running tcpdump: {e}"))?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
    }
    Program::from_ddd(&String::from_utf8_lossy(&out.stdout)).map_err(|e| e.to_string())
}

/// The indices of the packets `prog` accepts; also checks that the decoded fast path
/// ([`Program::matcher`]) returns exactly what the reference interpreter returns.
pub fn keeps(prog: &Program, pkts: &[Pkt]) -> Vec<usize> {
    let fast = prog.matcher();
    pkts.iter()
        .enumerate()
        .filter(|(i, p)| {
            let slow = prog.matches(&p.data, p.wire_len, None);
            assert_eq!(
                fast.matches(&p.data, p.wire_len, None),
                slow,
                "Matcher and Program::matches disagree on packet {i}"
            );
            slow != 0
        })
        .map(|(i, _)| i)
        .collect()
}
