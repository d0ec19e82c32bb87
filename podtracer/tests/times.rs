//! Capture times past 2106-02-07T06:28:15Z, the last second pcap's 32-bit field holds:
//! pcapng carries them, and `podtracer read` reads them as tcpdump and tshark do; converting
//! them to pcap is a clear error where tcpdump -w and editcap silently wrap them to 1970s dates.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result};
use snoopy_capture::sink::PcapNgSink;
use snoopy_capture::{Interface, LinkType, Packet, PacketSink};

use crate::support::{podtracer, tcpdump_count, tshark_fields};

/// 2107-12-22T12:26:40Z.
const AFTER_2106: u64 = 4_354_000_000;

/// UDP 10.0.0.1.1000 > 10.0.0.2.2000 in Ethernet, 4 bytes of payload (checksums are not
/// looked at without -v).
fn udp_frame() -> Vec<u8> {
    let mut f = vec![0x02, 0, 0, 0, 0, 0x0b, 0x02, 0, 0, 0, 0, 0x0a, 0x08, 0x00];
    f.extend_from_slice(&[
        0x45, 0, 0, 32, 0, 1, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
    ]);
    f.extend_from_slice(&[0x03, 0xe8, 0x07, 0xd0, 0, 12, 0, 0, 1, 2, 3, 4]);
    f
}

/// A pcapng of three packets, in 2020, 2107 and 2020.
fn late_pcapng(path: &Path) -> Result<Vec<Duration>> {
    let times = vec![
        Duration::new(1_600_000_000, 123_456_789),
        Duration::new(AFTER_2106, 987_654_321),
        Duration::new(1_600_000_001, 5_000),
    ];
    let frame = udp_frame();
    let mut sink = PcapNgSink::create(path)?;
    let id = sink.add_interface(&Interface::new("eth0", LinkType::Ethernet, 262_144))?;
    for &timestamp in &times {
        let packet = Packet {
            timestamp,
            orig_len: frame.len() as u32,
            data: &frame,
            interface: id,
        };
        sink.write_packet(id, &packet)?;
    }
    sink.flush()?;
    Ok(times)
}

fn epochs(file: &Path) -> Result<Vec<String>> {
    Ok(tshark_fields(file, &["frame.time_epoch"])?
        .into_iter()
        .map(|f| f[0].clone())
        .collect())
}

#[test]
fn after_2106_pcapng_reads_and_converts_to_pcapng_and_pcap_says_why_it_cannot() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let input = dir.path().join("late.pcapng");
    let times = late_pcapng(&input)?;
    let expected: Vec<String> = times
        .iter()
        .map(|t| format!("{}.{:09}", t.as_secs(), t.subsec_nanos()))
        .collect();
    assert_eq!(epochs(&input)?, expected, "tshark reads the input");

    // Text: the dates tcpdump -tttt prints (libpcap reads the 64-bit time right).
    let ours = podtracer().arg("read").arg(&input).arg("-tttt").output()?;
    assert!(ours.status.success(), "{ours:?}");
    let theirs = Command::new("tcpdump")
        .env("TZ", "UTC")
        .args(["-n", "-tttt", "-r"])
        .arg(&input)
        .output()
        .context("running tcpdump")?;
    assert!(theirs.status.success(), "{theirs:?}");
    let (ours, theirs) = (
        String::from_utf8(ours.stdout)?,
        String::from_utf8(theirs.stdout)?,
    );
    assert_eq!(ours, theirs);
    assert!(
        ours.lines()
            .nth(1)
            .is_some_and(|l| l.starts_with("2107-12-22 12:26:40.987654 "))
    );

    // pcapng out: every time kept, to the nanosecond.
    let out = dir.path().join("out.pcapng");
    let run = podtracer()
        .arg("read")
        .arg(&input)
        .arg("-w")
        .arg(&out)
        .output()?;
    assert!(run.status.success(), "{run:?}");
    assert_eq!(epochs(&out)?, expected);

    // pcap out: an error naming the packet, its time, the limit, what was written and the
    // way out; the file holds the packet before it and is valid.
    let out = dir.path().join("out.pcap");
    let run = podtracer()
        .arg("read")
        .arg(&input)
        .arg("-w")
        .arg(&out)
        .output()?;
    assert!(!run.status.success(), "{run:?}");
    let stderr = String::from_utf8(run.stderr)?;
    for part in [
        "packet 2 is from 2107-12-22T12:26:40.987654321Z",
        "after 2106-02-07T06:28:15Z",
        "the 1 packet(s) before it are written",
        "write pcapng (-w FILE.pcapng)",
    ] {
        assert!(stderr.contains(part), "{part:?} not in {stderr:?}");
    }
    assert_eq!(tcpdump_count(&out)?, 1);
    assert_eq!(epochs(&out)?, expected[..1]);
    Ok(())
}
