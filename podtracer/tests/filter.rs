//! Filters in podtracer: `capture … FILTER` attaches the program in the kernel (on a veth
//! pair with mixed traffic, exactly the matching packets arrive, and the kernel counts no
//! others), `read FILE FILTER` keeps what `tcpdump -r FILE FILTER` keeps, `-d` prints the
//! program, and a bad expression is one error with a caret under the column.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result};
use snoopy_testkit::NetnsPair;

use crate::support::*;

fn received_by_filter(stderr: &str) -> Result<u64> {
    stderr
        .lines()
        .find_map(|l| l.strip_suffix(" packets received by filter"))
        .and_then(|n| n.trim().parse().ok())
        .with_context(|| format!("no 'packets received by filter' line in: {stderr}"))
}

#[test]
fn capture_with_a_filter_keeps_exactly_the_matching_packets_in_the_kernel() -> Result<()> {
    let pair = NetnsPair::new()?;
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("filtered.pcap");
    let netns = pair.b.netns_path();
    let server = tcp_server(&pair.b)?;
    let capture = start_capture(&[
        "--netns",
        netns.to_str().unwrap(),
        "-i",
        &pair.b.interface,
        "-w",
        file.to_str().unwrap(),
        "tcp",
        "port",
        "8080",
    ])?;
    // Mixed traffic: ICMP, TCP to 8080, UDP to 9999.
    pair.a
        .run(&["ping", "-c", "3", "-i", "0.2", &pair.b.ip.to_string()])?;
    tcp_and_udp_client(&pair.a, &pair.b.ip.to_string())?;
    pair.a
        .run(&["ping", "-c", "2", "-i", "0.2", &pair.b.ip.to_string()])?;
    drop(server);
    std::thread::sleep(Duration::from_millis(300));
    signal(&capture, "INT")?;
    let out = wait_with_timeout(capture, Duration::from_secs(10))?;
    assert!(out.status.success(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let captured = captured_count(&stderr)?;
    let all = tcpdump_keeps(&file, "")?;
    let matching = tcpdump_keeps(&file, "tcp port 8080")?;
    assert!(captured >= 5, "the TCP connection was captured: {stderr}");
    assert_eq!(all as u64, captured, "every captured packet is in the file");
    assert_eq!(matching, all, "only tcp port 8080 packets were captured");
    // The kernel ran the filter: it counted only what passed it (ICMP and UDP never
    // reached the socket), so "received by filter" is what was captured.
    assert_eq!(received_by_filter(&stderr)?, captured, "{stderr}");
    Ok(())
}

/// A small pcap of hand-made Ethernet frames: TCP to 80 and 8080, UDP to 53, ICMP, ARP,
/// a short frame.
pub(crate) fn write_sample(path: &Path) -> Result<usize> {
    let ipv4 = |proto: u8, payload: &[u8]| {
        let mut p = vec![
            0x45,
            0,
            0,
            (20 + payload.len()) as u8,
            0,
            1,
            0x40,
            0,
            64,
            proto,
            0,
            0,
        ];
        p.extend([10, 0, 0, 1, 10, 0, 0, 2]);
        p.extend(payload);
        p
    };
    let frame = |ethertype: u16, payload: &[u8]| {
        let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1];
        f.extend(ethertype.to_be_bytes());
        f.extend(payload);
        f
    };
    let tcp = |dport: u16, flags: u8| {
        let mut t = vec![0x9c, 0x40];
        t.extend(dport.to_be_bytes());
        t.extend([0, 0, 0, 1, 0, 0, 0, 0, 0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
        t
    };
    let frames = [
        frame(0x0800, &ipv4(6, &tcp(80, 0x02))),
        frame(0x0800, &ipv4(6, &tcp(80, 0x10))),
        frame(0x0800, &ipv4(6, &tcp(8080, 0x02))),
        frame(0x0800, &ipv4(17, &[0x30, 0x39, 0, 53, 0, 8, 0, 0])),
        frame(0x0800, &ipv4(1, &[8, 0, 0, 0, 0, 1, 0, 1])),
        frame(
            0x0806,
            &[
                0, 1, 8, 0, 6, 4, 0, 1, 2, 0, 0, 0, 0, 1, 10, 0, 0, 1, 0, 0, 0, 0, 0, 0, 10, 0, 0,
                2,
            ],
        ),
        frame(0x0800, &[0x45, 0, 0]),
    ];
    let mut out = Vec::new();
    out.extend(0xa1b2_c3d4u32.to_le_bytes());
    out.extend(2u16.to_le_bytes());
    out.extend(4u16.to_le_bytes());
    out.extend([0; 8]);
    out.extend(262_144u32.to_le_bytes());
    out.extend(1u32.to_le_bytes());
    for (i, f) in frames.iter().enumerate() {
        out.extend((i as u32).to_le_bytes());
        out.extend(0u32.to_le_bytes());
        out.extend((f.len() as u32).to_le_bytes());
        out.extend((f.len() as u32).to_le_bytes());
        out.extend(f);
    }
    std::fs::write(path, out)?;
    Ok(frames.len())
}

#[test]
fn read_keeps_what_tcpdump_keeps() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let input = dir.path().join("in.pcap");
    let total = write_sample(&input)?;
    for expr in [
        "",
        "tcp port 80",
        "tcp",
        "udp port domain",
        "icmp or arp",
        "not tcp",
        "tcp[tcpflags] & tcp-syn != 0",
        "less 20",
    ] {
        let output = dir.path().join("out.pcap");
        let mut cmd = podtracer();
        cmd.arg("read").arg(&input).arg("-w").arg(&output);
        cmd.args(expr.split_whitespace());
        let out = cmd.output()?;
        assert!(out.status.success(), "{expr:?}: {out:?}");
        let ours = tcpdump_keeps(&output, "")?;
        let theirs = tcpdump_keeps(&input, expr)?;
        assert_eq!(ours, theirs, "{expr:?}");
        if expr.is_empty() {
            assert_eq!(ours, total);
        }
    }
    Ok(())
}

#[test]
fn reading_a_file_without_packets_writes_a_valid_empty_file() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let input = dir.path().join("empty.pcap");
    // A pcap header alone: Ethernet, snaplen 65535, no records.
    let mut header = 0xa1b2_c3d4u32.to_le_bytes().to_vec();
    header.extend(2u16.to_le_bytes());
    header.extend(4u16.to_le_bytes());
    for word in [0u32, 0, 65_535, 1] {
        header.extend(word.to_le_bytes());
    }
    std::fs::write(&input, &header)?;
    for (name, filter) in [
        ("out.pcap", ""),
        ("out.pcapng", ""),
        ("filtered.pcap", "tcp"),
    ] {
        let output = dir.path().join(name);
        let out = podtracer()
            .arg("read")
            .arg(&input)
            .arg("-w")
            .arg(&output)
            .args(filter.split_whitespace())
            .output()?;
        assert!(out.status.success(), "{name}: {out:?}");
        assert!(
            std::fs::metadata(&output)?.len() > 0,
            "{name}: empty output"
        );
        let check = Command::new("tcpdump").arg("-r").arg(&output).output()?;
        assert!(
            check.status.success(),
            "{name}: tcpdump cannot read it: {check:?}"
        );
        assert!(check.stdout.is_empty(), "{name}: no packets");
        let stderr = String::from_utf8_lossy(&check.stderr);
        assert!(stderr.contains("EN10MB"), "{name}: {stderr}");
    }
    // A bad filter is still an error, packets or not.
    let out = podtracer()
        .arg("read")
        .arg(&input)
        .args(["-w", "/dev/null", "tcp", "and", "and"])
        .output()?;
    assert!(!out.status.success(), "{out:?}");
    Ok(())
}

#[test]
fn dash_d_prints_the_program_and_bad_filters_point_at_the_column() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let input = dir.path().join("in.pcap");
    write_sample(&input)?;
    let out = podtracer()
        .arg("read")
        .arg(&input)
        .args(["-d", "ip"])
        .output()?;
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout)?;
    assert_eq!(
        text,
        "(000) ldh      [12]\n(001) jeq      #0x800           jt 2\tjf 3\n(002) ret      #262144\n(003) ret      #0\n"
    );
    let out = podtracer()
        .arg("read")
        .arg(&input)
        .args(["tcp", "and", "and"])
        .output()?;
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr)?;
    assert!(err.contains("syntax error"), "{err}");
    assert!(err.contains("tcp and and\n        ^"), "{err}");
    Ok(())
}
