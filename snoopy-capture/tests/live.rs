//! Live AF_PACKET captures on real network namespaces joined by a veth pair (needs root).

use std::time::{Duration, Instant};

use anyhow::Result;
use snoopy_capture::afpacket::{CaptureBuilder, EndReason};
use snoopy_capture::{LinkType, OwnedPacket, PacketSource};
use snoopy_netns::{Namespace, NamespaceKind};
use snoopy_testkit::NetnsPair;

/// Reads until `want` packets that `keep` accepts arrived (others are dropped), the source
/// ends, or `timeout` passed.
fn collect(
    source: &mut impl PacketSource,
    want: usize,
    timeout: Duration,
    keep: impl Fn(&[u8]) -> bool,
) -> Result<Vec<OwnedPacket>> {
    let deadline = Instant::now() + timeout;
    let mut packets = Vec::new();
    while packets.len() < want && Instant::now() < deadline {
        match source.next_packet()? {
            Some(p) if keep(p.data) => packets.push(p.to_owned()),
            Some(_) => {}
            None => break,
        }
    }
    Ok(packets)
}

/// (type, id, seq) of an ICMP echo inside an untagged Ethernet/IPv4 frame.
fn icmp_echo(frame: &[u8]) -> Option<(u8, u16, u16)> {
    if frame.len() < 14 + 20 + 8 || frame[12..14] != [0x08, 0x00] || frame[23] != 1 {
        return None;
    }
    let icmp = &frame[14 + usize::from(frame[14] & 0x0f) * 4..];
    Some((
        icmp[0],
        u16::from_be_bytes([icmp[4], icmp[5]]),
        u16::from_be_bytes([icmp[6], icmp[7]]),
    ))
}

#[test]
fn captures_icmp_inside_a_namespace_opened_by_path() -> Result<()> {
    let pair = NetnsPair::new()?;
    let ns = Namespace::from_path(pair.b.netns_path(), NamespaceKind::Net)?;
    let mut capture = CaptureBuilder::new()
        .interface(&pair.b.interface)
        .namespace(ns)
        .open()?;
    assert_eq!(capture.link_type(), LinkType::Ethernet);
    let stopper = capture.stop_handle();
    let ping = pair.a.spawn(&[
        "ping",
        "-c",
        "3",
        "-i",
        "0.2",
        "-W",
        "1",
        &pair.b.ip.to_string(),
    ])?;
    let timer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(5));
        stopper.stop();
    });
    let packets = collect(&mut capture, 6, Duration::from_secs(5), |d| {
        icmp_echo(d).is_some()
    })?;
    let out = ping.wait_output()?;
    assert!(out.status.success(), "ping failed: {out:?}");
    let echoes: Vec<(u8, u16, u16)> = packets.iter().filter_map(|p| icmp_echo(&p.data)).collect();
    let requests: Vec<u16> = echoes.iter().filter(|e| e.0 == 8).map(|e| e.2).collect();
    let replies: Vec<u16> = echoes.iter().filter(|e| e.0 == 0).map(|e| e.2).collect();
    assert_eq!(requests, vec![1, 2, 3], "echo requests seen: {echoes:?}");
    assert_eq!(replies, vec![1, 2, 3], "echo replies seen: {echoes:?}");
    let ids: std::collections::HashSet<u16> = echoes.iter().map(|e| e.1).collect();
    assert_eq!(ids.len(), 1, "one ping, one ICMP id: {echoes:?}");
    for p in &packets {
        assert_eq!(
            p.orig_len as usize,
            p.data.len(),
            "whole packets with the default snaplen"
        );
        assert!(
            p.timestamp.as_secs() > 1_600_000_000,
            "wall-clock timestamps"
        );
    }
    let stats = capture.stats()?;
    assert!(stats.captured >= packets.len() as u64);
    assert!(stats.received.unwrap() >= packets.len() as u64);
    assert_eq!(stats.dropped, Some(0));
    drop(timer);
    Ok(())
}

#[test]
fn the_any_interface_gives_sll2_headers_and_snaplen_truncates() -> Result<()> {
    let pair = NetnsPair::new()?;
    let ns = Namespace::from_path(pair.a.netns_path(), NamespaceKind::Net)?;
    let mut capture = CaptureBuilder::new()
        .interface("any")
        .snaplen(60)
        .namespace(ns)
        .open()?;
    assert_eq!(capture.link_type(), LinkType::LinuxSll2);
    let ping = pair.a.spawn(&[
        "ping",
        "-c",
        "2",
        "-i",
        "0.2",
        "-s",
        "200",
        &pair.b.ip.to_string(),
    ])?;
    let packets = collect(&mut capture, 4, Duration::from_secs(5), |d| {
        d[0..2] == [0x08, 0x00]
    })?;
    assert!(ping.wait_output()?.status.success());
    assert_eq!(packets.len(), 4, "2 requests + 2 replies on veth-a");
    for p in &packets {
        assert_eq!(&p.data[0..2], &[0x08, 0x00], "SLL2 protocol field is IPv4");
        assert_eq!(p.data.len(), 60, "truncated to the snaplen");
        assert_eq!(
            p.orig_len,
            20 + 20 + 8 + 200,
            "wire length counts the cooked header"
        );
        assert_eq!(
            p.data[20] >> 4,
            4,
            "IPv4 header follows the 20-byte SLL2 header"
        );
    }
    // Packet types: outgoing (4) for the requests, host (0) for the replies.
    let kinds: Vec<u8> = packets.iter().map(|p| p.data[10]).collect();
    assert!(kinds.contains(&4) && kinds.contains(&0), "{kinds:?}");
    Ok(())
}

#[test]
fn a_deleted_namespace_ends_the_capture_with_packets_kept() -> Result<()> {
    let pair = NetnsPair::new()?;
    let ns = Namespace::from_path(pair.b.netns_path(), NamespaceKind::Net)?;
    let mut capture = CaptureBuilder::new()
        .interface(&pair.b.interface)
        .namespace(ns)
        .open()?;
    pair.a
        .run(&["ping", "-c", "2", "-i", "0.2", &pair.b.ip.to_string()])?;
    // Removing the veth (as deleting a pod does) must end the capture, not hang it.
    pair.b.run(&["ip", "link", "del", &pair.b.interface])?;
    let started = Instant::now();
    let mut seen = 0;
    while capture.next_packet()?.is_some() {
        seen += 1;
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "capture did not end"
        );
    }
    assert_eq!(capture.end_reason(), Some(EndReason::InterfaceGone));
    assert!(
        seen >= 4,
        "the 4 ICMP packets captured before the link went away: {seen}"
    );
    Ok(())
}

#[test]
fn a_missing_interface_is_named_with_the_ones_that_exist() -> Result<()> {
    let pair = NetnsPair::new()?;
    let ns = Namespace::from_path(pair.a.netns_path(), NamespaceKind::Net)?;
    let err = CaptureBuilder::new()
        .interface("eth9")
        .namespace(ns)
        .open()
        .unwrap_err()
        .to_string();
    assert!(err.contains("\"eth9\""), "{err}");
    assert!(err.contains("lo") && err.contains("veth-a"), "{err}");
    Ok(())
}

/// A UDP/IPv4 frame from a to b, optionally with 802.1Q tags after the MAC addresses.
fn udp_frame(pair: &NetnsPair, tags: &[u16], payload: &[u8]) -> Vec<u8> {
    let mac = |m: &str| -> Vec<u8> {
        m.split(':')
            .map(|h| u8::from_str_radix(h, 16).unwrap())
            .collect()
    };
    let mut f = mac(&pair.b.mac);
    f.extend(mac(&pair.a.mac));
    for tci in tags {
        f.extend([0x81, 0x00]);
        f.extend(tci.to_be_bytes());
    }
    f.extend([0x08, 0x00]);
    let total = (20 + 8 + payload.len()) as u16;
    let mut ip = vec![0x45, 0, 0, 0, 0, 1, 0, 0, 64, 17, 0, 0];
    ip[2..4].copy_from_slice(&total.to_be_bytes());
    ip.extend(pair.a.ip.octets());
    ip.extend(pair.b.ip.octets());
    let sum = ip
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
        .sum::<u32>();
    let sum = !(((sum & 0xffff) + (sum >> 16)) as u16);
    ip[10..12].copy_from_slice(&sum.to_be_bytes());
    f.extend(ip);
    f.extend(4000u16.to_be_bytes());
    f.extend(5000u16.to_be_bytes());
    f.extend((8 + payload.len() as u16).to_be_bytes());
    f.extend([0, 0]);
    f.extend(payload);
    f
}

#[test]
fn vlan_tags_stripped_by_the_kernel_are_put_back_into_the_frame() -> Result<()> {
    let pair = NetnsPair::new()?;
    let ns = Namespace::from_path(pair.b.netns_path(), NamespaceKind::Net)?;
    let mut capture = CaptureBuilder::new()
        .interface(&pair.b.interface)
        .namespace(ns)
        .open()?;
    let frames = vec![
        udp_frame(&pair, &[], b"untagged"),
        udp_frame(&pair, &[0x2064], b"tagged vlan 100 prio 1"),
        udp_frame(&pair, &[0x00c8, 0x012c], b"double tagged 200/300"),
    ];
    pair.a.send_raw_frames(&frames)?;
    let is_ours = |d: &[u8]| {
        d.len() >= 12
            && d[6..12] == frames[0][6..12]
            && d[12..14] != [0x08, 0x06]
            && d[12..14] != [0x86, 0xdd]
    };
    let packets = collect(&mut capture, 3, Duration::from_secs(5), is_ours)?;
    let got: Vec<&[u8]> = packets.iter().map(|p| p.data.as_slice()).collect();
    let want: Vec<&[u8]> = frames.iter().map(Vec::as_slice).collect();
    assert_eq!(
        got, want,
        "frames captured byte for byte as sent, tags included"
    );
    for (p, f) in packets.iter().zip(&frames) {
        assert_eq!(p.orig_len as usize, f.len());
    }
    Ok(())
}
