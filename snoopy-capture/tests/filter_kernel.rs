//! The kernel runs our programs as our interpreter does: each expression's `Mode::Live`
//! program is attached to its own AF_PACKET socket on the receiving end of a veth pair, the
//! corpus frames are sent once through the pair, and the frames each socket receives must be
//! exactly those our interpreter accepts when given each frame as the kernel presents it
//! (outer 802.1Q/802.1ad tag moved into metadata). Together with `filter_live` (our live
//! programs agree with libpcap's) this ties the kernel to libpcap. Needs root.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use snoopy_capture::LinkType;
use snoopy_capture::afpacket::{Capture, CaptureBuilder, Event};
use snoopy_capture::filter::{Mode, compile};
use snoopy_netns::{Namespace, NamespaceKind};
use snoopy_testkit::NetnsPair;

use crate::filter_corpus::*;

const EXPRESSIONS: &[&str] = &[
    "tcp",
    "udp",
    "icmp",
    "ip6",
    "arp",
    "tcp port 80",
    "port 53 or port 443",
    "tcp dst port 8080",
    "portrange 1-1024",
    "host 10.0.0.1",
    "src net 192.168.0.0/16",
    "host 2001:db8::1",
    "ether host 02:00:00:00:00:01",
    "ether broadcast",
    "multicast",
    "ip multicast",
    "ether proto 0x88cc",
    "ether proto 100",
    "ip proto 47",
    "ip6 proto 58",
    "tcp[tcpflags] & tcp-syn != 0",
    "tcp[tcpflags] & (tcp-syn|tcp-ack) == tcp-syn",
    "icmp[icmptype] = icmp-echo",
    "ip[6:2] & 0x1fff != 0",
    "len > 100",
    "less 60",
    "ether[0] & 1 = 0",
    "ip[0] & 0xf > 5",
    "vlan",
    "vlan 5",
    "vlan 100 and udp",
    "vlan and tcp port 80",
    "vlan and vlan",
    "vlan and vlan 5",
    "not vlan",
    "vlan or arp",
    "ip",
    "not ip and not ip6",
    "tcp and not port 22",
    "ip[40] = 1 or ip",
];

/// The corpus frames a capture's ring holds, each with how often: read until a few idle
/// polls in a row (the sender has exited, so every frame is in the ring) or 10 s.
fn corpus_frames_kept(capture: &mut Capture, frames: &[Vec<u8>]) -> HashMap<Vec<u8>, usize> {
    let mut got: HashMap<Vec<u8>, usize> = HashMap::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut idles = 0;
    while Instant::now() < deadline && idles < 3 {
        match capture.next_event_or_idle().expect("reading the ring") {
            Event::Packet(p) => {
                idles = 0;
                if frames.iter().any(|f| f.as_slice() == p.data) {
                    *got.entry(p.data.to_vec()).or_default() += 1;
                }
            }
            Event::Idle => idles += 1,
            Event::End => break,
        }
    }
    got
}

#[test]
fn kernel_keeps_what_the_interpreter_keeps() {
    let pair = NetnsPair::new().expect("this test needs root and iproute2 (veth pair)");
    let eth = ethernet_corpus(0x6b65_726e);
    // Whole frames the kernel will carry, as sent. A frame that says 802.1Q/802.1ad but is
    // too short to hold the tag and an inner type (under 20 bytes) is dropped by the
    // kernel's untagging before any socket sees it, so it is not a filter question.
    let frames: Vec<Vec<u8>> = eth
        .iter()
        .filter(|p| p.data.len() as u32 == p.wire_len && p.data.len() >= 14)
        .filter(|p| {
            let tpid = u16::from_be_bytes([p.data[12], p.data[13]]);
            !(matches!(tpid, 0x8100 | 0x88a8) && p.data.len() < 20)
        })
        .map(|p| p.data.clone())
        .collect();
    let mut captures = Vec::new();
    for expr in EXPRESSIONS {
        let program = compile(expr, LinkType::Ethernet, Mode::Live, 262_144)
            .unwrap_or_else(|e| panic!("{expr:?}: {e}"));
        let ns = Namespace::from_path(pair.b.netns_path(), NamespaceKind::Net).unwrap();
        let capture = CaptureBuilder::new()
            .interface(&pair.b.interface)
            .namespace(ns)
            .buffer_size(4 << 20)
            .block_timeout(Duration::from_millis(50))
            .filter(program.clone())
            .open()
            .unwrap_or_else(|e| panic!("{expr:?}: opening the capture: {e}"));
        captures.push((expr, program, capture));
    }
    pair.a.send_raw_frames(&frames).expect("sending the corpus");

    let mut failures = Vec::new();
    for (expr, program, mut capture) in captures {
        // What the interpreter keeps, each frame presented as the kernel does.
        let mut want: HashMap<Vec<u8>, usize> = HashMap::new();
        for f in &frames {
            let tagged =
                f.len() >= 18 && matches!(u16::from_be_bytes([f[12], f[13]]), 0x8100 | 0x88a8);
            let verdict = if tagged {
                let tci = u16::from_be_bytes([f[14], f[15]]);
                let mut stripped = f[..12].to_vec();
                stripped.extend(&f[16..]);
                program.matches(&stripped, stripped.len() as u32, Some(tci))
            } else {
                program.matches(f, f.len() as u32, None)
            };
            if verdict != 0 {
                *want.entry(f.clone()).or_default() += 1;
            }
        }
        // What the kernel let through (the capture puts stripped tags back), corpus frames
        // only: the namespaces' own IPv6 housekeeping may pass a filter too.
        let got = corpus_frames_kept(&mut capture, &frames);
        if got != want {
            let missing_frames: Vec<String> = want
                .keys()
                .filter(|f| !got.contains_key(*f))
                .take(3)
                .map(|f| format!("{} bytes {:02x?}", f.len(), &f[..f.len().min(20)]))
                .collect();
            let missing = want.iter().filter(|(f, n)| got.get(*f) != Some(n)).count();
            let extra = got.iter().filter(|(f, n)| want.get(*f) != Some(n)).count();
            let stats = snoopy_capture::PacketSource::stats(&mut capture).ok();
            failures.push(format!(
                "{expr:?}: kernel kept {} frames, interpreter {} ({missing} frame kinds missing, {extra} unexpected; {stats:?}) e.g. {missing_frames:?}",
                got.values().sum::<usize>(),
                want.values().sum::<usize>()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// `inbound` and `outbound` as the kernel runs them (the packet type, `SKF_AD_PKTTYPE`): the
/// corpus frames sent from one end of a veth pair are outgoing on that end and incoming on
/// the other, and a socket on each end keeps exactly what the interpreter keeps given that
/// packet type — all of them or none.
#[test]
fn the_kernel_tells_inbound_from_outbound() {
    use snoopy_capture::filter::Metadata;
    let pair = NetnsPair::new().expect("this test needs root and iproute2 (veth pair)");
    let frames: Vec<Vec<u8>> = ethernet_corpus(0x696e_626f)
        .iter()
        .filter(|p| p.data.len() as u32 == p.wire_len && p.data.len() >= 14)
        .filter(|p| {
            !matches!(
                u16::from_be_bytes([p.data[12], p.data[13]]),
                0x8100 | 0x88a8
            )
        })
        .take(40)
        .map(|p| p.data.clone())
        .collect();
    assert!(frames.len() >= 20, "only {} untagged frames", frames.len());
    let expressions = ["inbound", "outbound", "not inbound", "outbound and not arp"];
    // The sender's end sees its frames as PACKET_OUTGOING; the receiver's as for this host,
    // broadcast, multicast or another host — never outgoing.
    let ends = [
        (&pair.a, Metadata::PACKET_OUTGOING),
        (&pair.b, Metadata::PACKET_HOST),
    ];
    let mut captures = Vec::new();
    for (end, pkt_type) in ends {
        for expr in expressions {
            let program = compile(expr, LinkType::Ethernet, Mode::Live, 262_144)
                .unwrap_or_else(|e| panic!("{expr:?}: {e}"));
            let ns = Namespace::from_path(end.netns_path(), NamespaceKind::Net).unwrap();
            let capture = CaptureBuilder::new()
                .interface(&end.interface)
                .namespace(ns)
                .block_timeout(Duration::from_millis(50))
                .filter(program.clone())
                .open()
                .unwrap_or_else(|e| panic!("{expr:?}: opening the capture: {e}"));
            captures.push((end.interface.clone(), pkt_type, expr, program, capture));
        }
    }
    pair.a.send_raw_frames(&frames).expect("sending the corpus");

    let mut failures = Vec::new();
    for (interface, pkt_type, expr, program, mut capture) in captures {
        let meta = Metadata {
            pkt_type,
            ..Metadata::default()
        };
        let want = frames
            .iter()
            .filter(|f| program.matches_with(f, f.len() as u32, &meta) != 0)
            .count();
        let got: usize = corpus_frames_kept(&mut capture, &frames).values().sum();
        if got != want {
            failures.push(format!(
                "{expr:?} on {interface} (pkt_type {pkt_type}): kernel kept {got} corpus frames, interpreter {want}"
            ));
        }
        if expr == "inbound" || expr == "outbound" {
            let all = (pkt_type == Metadata::PACKET_OUTGOING) == (expr == "outbound");
            assert_eq!(
                want,
                if all { frames.len() } else { 0 },
                "{expr:?} on {interface}"
            );
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
