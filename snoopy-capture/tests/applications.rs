//! What tcpdump prints above TCP and UDP, against tcpdump itself on hand-built frames: DNS
//! (UDP and TCP port 53) and mDNS (5353) with the message forms print-domain.c tells apart,
//! HTTP (80, 8080) requests, responses and other payloads, IGMP, and a TCP header shorter
//! than 20 bytes. Default lines and, for the packets `-v` covers, `-v` lines.

use anyhow::Result;
use snoopy_capture::decode::SummaryOptions;

use crate::decode::compare_with_tcpdump;
use crate::fixtures::*;

/// A DNS name in wire form (`""` is the root).
fn name(n: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for label in n.split('.').filter(|l| !l.is_empty()) {
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
    out
}

/// A question: name, type, class.
fn question(n: &str, qtype: u16, class: u16) -> Vec<u8> {
    let mut q = name(n);
    q.extend_from_slice(&qtype.to_be_bytes());
    q.extend_from_slice(&class.to_be_bytes());
    q
}

/// A resource record with its owner already in wire form (a pointer like `[0xc0, 12]`).
fn record(owner: &[u8], rtype: u16, class: u16, ttl: u32, data: &[u8]) -> Vec<u8> {
    let mut r = owner.to_vec();
    r.extend_from_slice(&rtype.to_be_bytes());
    r.extend_from_slice(&class.to_be_bytes());
    r.extend_from_slice(&ttl.to_be_bytes());
    r.extend_from_slice(&(data.len() as u16).to_be_bytes());
    r.extend_from_slice(data);
    r
}

/// An EDNS OPT record: UDP size, extended rcode and flags in the TTL, options.
fn opt(size: u16, ttl: u32, options: &[u8]) -> Vec<u8> {
    record(&[0], 41, size, ttl, options)
}

/// A message: id, flags, the four sections (counts from their lengths).
fn message(id: u16, flags: u16, sections: [&[Vec<u8>]; 4]) -> Vec<u8> {
    let mut m = Vec::new();
    m.extend_from_slice(&id.to_be_bytes());
    m.extend_from_slice(&flags.to_be_bytes());
    for s in sections {
        m.extend_from_slice(&(s.len() as u16).to_be_bytes());
    }
    for s in sections {
        for part in s {
            m.extend_from_slice(part);
        }
    }
    m
}

const PTR: [u8; 2] = [0xc0, 12];

fn udp4(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    ether(
        MAC_B,
        MAC_A,
        0x0800,
        &ipv4(IP_A, IP_B, 17, &udp(sport, dport, payload)),
    )
}

fn udp6(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut u = udp(sport, dport, payload);
    // IPv6 UDP needs its checksum (tcpdump -v checks it): over the pseudo-header.
    let mut pseudo = IP6_A.octets().to_vec();
    pseudo.extend_from_slice(&IP6_B.octets());
    pseudo.extend_from_slice(&(u.len() as u32).to_be_bytes());
    pseudo.extend_from_slice(&[0, 0, 0, 17]);
    pseudo.extend_from_slice(&u);
    u[6..8].copy_from_slice(&checksum(&pseudo).to_be_bytes());
    ether(MAC_B, MAC_A, 0x86dd, &ipv6(IP6_A, IP6_B, 17, &u))
}

fn tcp4(sport: u16, dport: u16, flags: u8, payload: &[u8]) -> Vec<u8> {
    let segment = tcp(sport, dport, 1000, 2000, flags, 512, &[], payload);
    ether(MAC_B, MAC_A, 0x0800, &ipv4(IP_A, IP_B, 6, &segment))
}

/// DNS and mDNS messages, over UDP and TCP.
fn dns_frames() -> Vec<Vec<u8>> {
    let a = [192, 0, 2, 1];
    let mut frames = vec![
        // Two questions; a question with an answer and AA set (tcpdump's "weirdness");
        // CD, a label with control and high bytes, an unknown type and EDNS; another class.
        udp4(
            40000,
            53,
            &message(
                1,
                0x0100,
                [
                    &[question("a.example", 1, 1), question("b.example", 28, 1)],
                    &[],
                    &[],
                    &[],
                ],
            ),
        ),
        udp4(
            40000,
            53,
            &message(
                2,
                0x0500,
                [
                    &[question("a.example", 1, 1)],
                    &[record(&PTR, 1, 1, 300, &a)],
                    &[],
                    &[opt(1232, 0, &[])],
                ],
            ),
        ),
        udp4(
            40000,
            53,
            &message(
                3,
                0x0110,
                [
                    &[question("we ird\u{1}.example", 64, 1)],
                    &[],
                    &[],
                    &[opt(1232, 0, &[])],
                ],
            ),
        ),
        udp4(
            40000,
            53,
            &message(4, 0x0100, [&[question("x.example", 65, 3)], &[], &[], &[]]),
        ),
        // NXDOMAIN with an extended rcode from OPT (shown as Resp19) and an SOA.
        udp4(
            53,
            40000,
            &message(
                5,
                0x8183,
                [
                    &[question("x.example", 1, 1)],
                    &[],
                    &[record(
                        &name("example"),
                        6,
                        1,
                        300,
                        &[
                            name("ns.example"),
                            name("host.example"),
                            vec![0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4, 0, 0, 0, 5],
                        ]
                        .concat(),
                    )],
                    &[opt(1232, 0x0100_8000, &[])],
                ],
            ),
        ),
        // MX, SRV, TXT (a quote and control bytes inside), SPF and HINFO (no data shown).
        udp4(
            53,
            40000,
            &message(
                6,
                0x8580,
                [
                    &[question("x.example", 15, 1)],
                    &[
                        record(
                            &PTR,
                            15,
                            1,
                            300,
                            &[vec![0, 10], name("mx.example")].concat(),
                        ),
                        record(
                            &PTR,
                            33,
                            1,
                            300,
                            &[vec![0, 1, 0, 2, 1, 0xbb], name("srv.example")].concat(),
                        ),
                        record(&PTR, 16, 1, 300, b"\x03a\"b\x02\x01\x7f"),
                        record(&PTR, 99, 1, 300, b"\x01z"),
                        record(&PTR, 13, 1, 300, b"\x01a\x01b"),
                    ],
                    &[],
                    &[opt(1232, 0, &[])],
                ],
            ),
        ),
        // No question, a CHAOS record; a CNAME chain with an AAAA; NS and additional records.
        udp4(
            53,
            40000,
            &message(7, 0x8180, [&[], &[record(&[0], 1, 3, 300, &a)], &[], &[]]),
        ),
        udp4(
            53,
            40000,
            &message(
                8,
                0x8180,
                [
                    &[question("www.example", 28, 1)],
                    &[
                        record(&PTR, 5, 1, 300, &name("web.example")),
                        record(
                            &name("web.example"),
                            28,
                            1,
                            300,
                            &[0x20, 1, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
                        ),
                    ],
                    &[record(&PTR, 2, 1, 300, &name("ns1.example"))],
                    &[record(&name("ns1.example"), 1, 1, 300, &a)],
                ],
            ),
        ),
        // Too short for a header; an update; the root; a PTR answer.
        udp4(40000, 53, &[0, 1, 2]),
        udp4(
            40000,
            53,
            &message(9, 0x2800, [&[question("x.example", 6, 1)], &[], &[], &[]]),
        ),
        udp4(
            40000,
            53,
            &message(10, 0x0100, [&[question("", 2, 1)], &[], &[], &[]]),
        ),
        udp4(
            53,
            40000,
            &message(
                11,
                0x8180,
                [
                    &[question("1.2.0.192.in-addr.arpa", 12, 1)],
                    &[record(&PTR, 12, 1, 300, &name("host.example"))],
                    &[],
                    &[],
                ],
            ),
        ),
        // Two answers announced, one there; a pointer forwards (tcpdump: <BAD PTR>).
        udp4(
            53,
            40000,
            &message(
                12,
                0x8180,
                [
                    &[question("x.example", 1, 1)],
                    &[record(&PTR, 1, 1, 300, &a)],
                    &[],
                    &[],
                ],
            )
            .into_iter()
            .enumerate()
            .map(|(i, b)| if i == 7 { 2 } else { b })
            .collect::<Vec<u8>>(),
        ),
        udp4(
            53,
            40000,
            &message(
                13,
                0x8180,
                [
                    &[question("x.example", 1, 1)],
                    &[record(&[0xc0, 200], 1, 1, 300, &a)],
                    &[],
                    &[],
                ],
            ),
        ),
        // mDNS: QU and QM questions, an answer with cache flush (IPv4 and IPv6).
        udp4(
            5353,
            5353,
            &message(
                0,
                0,
                [
                    &[question("a.local", 255, 0x8001), question("b.local", 12, 1)],
                    &[],
                    &[],
                    &[],
                ],
            ),
        ),
        udp6(
            5353,
            5353,
            &message(
                0,
                0x8400,
                [
                    &[],
                    &[
                        record(&name("a.local"), 1, 0x8001, 120, &a),
                        record(&PTR, 16, 0x8001, 4500, b"\x09path=/api"),
                    ],
                    &[],
                    &[],
                ],
            ),
        ),
        udp6(
            40000,
            53,
            &message(
                14,
                0x0100,
                [
                    &[question("a.example", 28, 1)],
                    &[],
                    &[],
                    &[opt(1232, 0, &[])],
                ],
            ),
        ),
    ];
    // Over TCP: a message with its length, a length that disagrees, a one-byte segment.
    let query = message(15, 0x0100, [&[question("t.example", 1, 1)], &[], &[], &[]]);
    let mut framed = (query.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(&query);
    frames.push(tcp4(40001, 53, PSH | ACK, &framed));
    frames.push(tcp4(40001, 53, PSH | ACK, b"\x00\x05abcde"));
    frames.push(tcp4(40001, 53, PSH | ACK, b"\x00\x09abc"));
    frames.push(tcp4(40001, 53, PSH | ACK, b"\x00"));
    frames
}

/// HTTP requests, responses and payloads that are neither, on 80 and 8080.
fn http_frames() -> Vec<Vec<u8>> {
    let payloads: [(u16, u16, &[u8]); 12] = [
        (40000, 80, b"GET / HTTP/1.1\r\nHost: x\r\nA: b\r\n\r\n"),
        (
            80,
            40000,
            b"HTTP/1.1 404 Not Found\r\nServer: y\r\n\r\nbody\r\nmore",
        ),
        (40000, 8080, b"hello world\r\n"),
        (40000, 8080, b"get /x HTTP/1.0\r\n"),
        (40000, 80, b"GET /no-newline"),
        (40000, 80, b"GET /a\rb\r\n"),
        (40000, 80, b"POST /a\x01b\r\n"),
        (40000, 80, b"\x16\x03\x01\x00\x05"),
        (40000, 80, b"X 200\r\n"),
        (40000, 80, b"GET\r\n"),
        (40000, 80, b"GET \t /x\tHTTP/1.1\nHost: x\n\n"),
        // SSH's port is tested first: no HTTP.
        (22, 80, b"GET / HTTP/1.1\r\n"),
    ];
    payloads
        .iter()
        .map(|(s, d, p)| tcp4(*s, *d, PSH | ACK, p))
        .collect()
}

/// IGMP messages (with a right checksum), TCP headers shorter than 20 bytes and a reset
/// carrying data: packets whose default line is compared, not their `-v` one.
fn other_frames() -> Vec<Vec<u8>> {
    let igmp = |hex: &str| {
        let mut m: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
            .collect();
        let sum = checksum(&m);
        m[2..4].copy_from_slice(&sum.to_be_bytes());
        ether(
            MAC_B,
            MAC_A,
            0x0800,
            &ipv4(IP_A, std::net::Ipv4Addr::new(224, 0, 0, 22), 2, &m),
        )
    };
    let mut frames = Vec::new();
    for hex in [
        "2200 0000 0000 0001 0400 0000 e00000fb",
        "1600 0000 e00000fb",
        "1700 0000 e00000fb",
        "1200 0000 e00000fb 0000",
        "1132 0000 e00000fb",
        "1100 0000 e00000fb",
        "1100 0000 e00000fb 00",
        "1164 0000 00000000",
        "1132 0000 00000000 0200 0000 0000",
        "1164 0000 e00000fb 0200 0001 c0a80001",
        "11c8 0000 e00000fb 0200 0000",
        "2200 0000 0000 0001 0500 000a e00000fb",
        "2200 0000 0000 0001 0400 00",
        "3300 0000",
    ] {
        frames.push(igmp(&hex.replace(' ', "")));
    }
    for offset_words in [4u8, 0] {
        let mut t = tcp4(40000, 80, PSH | ACK, b"abcdefgh");
        t[14 + 20 + 12] = offset_words << 4;
        frames.push(t);
    }
    frames.push(tcp4(40000, 80, RST | ACK, b"GET / HTTP/1.1\r\n"));
    frames
}

#[test]
fn application_lines_match_tcpdump() -> Result<()> {
    let frames = [dns_frames(), http_frames(), other_frames()].concat();
    compare_with_tcpdump(
        &ethernet("eth0"),
        &packets(&frames, 0),
        SummaryOptions::default(),
        &[],
    )
}

#[test]
fn application_verbose_lines_match_tcpdump_v() -> Result<()> {
    let frames = [dns_frames(), http_frames()].concat();
    let options = SummaryOptions {
        verbose: 1,
        ..SummaryOptions::default()
    };
    compare_with_tcpdump(&ethernet("eth0"), &packets(&frames, 0), options, &["-v"])
}
