//! pcap / pcapng writing and reading, checked against the real tcpdump, tshark, editcap.
//! Unprivileged; needs tcpdump and tshark installed (the tests fail when they are missing).

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result};
use snoopy_capture::sink::{PcapNgSink, PcapSink};
use snoopy_capture::source::{FileFormat, FileSource};
use snoopy_capture::{Interface, LinkType, OwnedPacket, PacketSink, PacketSource};

use crate::fixtures::{self, epoch, ethernet, packets, sample_frames, tshark_fields};

fn write_all(
    sink: &mut dyn PacketSink,
    interfaces: &[Interface],
    packets: &[OwnedPacket],
) -> Result<()> {
    let ids = interfaces
        .iter()
        .map(|i| sink.add_interface(i))
        .collect::<snoopy_capture::Result<Vec<u32>>>()?;
    for p in packets {
        sink.write_packet(ids[p.interface as usize], &p.as_packet())?;
    }
    sink.flush()?;
    Ok(())
}

fn read_all(source: &mut FileSource) -> Result<Vec<OwnedPacket>> {
    let mut out = Vec::new();
    while let Some(p) = source.next_packet()? {
        out.push(p.to_owned());
    }
    Ok(out)
}

/// Checks tcpdump's and tshark's view of `path` against `expected`, to the nanosecond.
fn check_with_tools(path: &Path, expected: &[OwnedPacket], tcpdump: bool) -> Result<()> {
    let fields = tshark_fields(path, &["frame.time_epoch", "frame.len", "frame.cap_len"])?;
    assert_eq!(fields.len(), expected.len(), "tshark packet count");
    for (f, p) in fields.iter().zip(expected) {
        assert_eq!(f[0], epoch(p.timestamp), "tshark timestamp");
        assert_eq!(f[1], p.orig_len.to_string(), "tshark frame.len");
        assert_eq!(f[2], p.data.len().to_string(), "tshark frame.cap_len");
    }
    if tcpdump {
        let seen = fixtures::tcpdump_packets(path)?;
        assert_eq!(seen.len(), expected.len(), "tcpdump packet count");
        for (i, ((ts, bytes), p)) in seen.iter().zip(expected).enumerate() {
            assert_eq!(*ts, epoch(p.timestamp), "tcpdump timestamp of packet {i}");
            assert_eq!(*bytes, p.data, "tcpdump bytes of packet {i}");
        }
    }
    Ok(())
}

#[test]
fn pcap_sink_is_read_by_tcpdump_tshark_and_file_source() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("out.pcap");
    let expected = packets(&sample_frames(), 0);
    let mut sink = PcapSink::create(&path)?;
    write_all(&mut sink, &[ethernet("eth0")], &expected)?;
    drop(sink);

    check_with_tools(&path, &expected, true)?;
    let bytes = std::fs::read(&path)?;
    assert_eq!(
        &bytes[..4],
        &0xa1b2_3c4du32.to_le_bytes(),
        "nanosecond magic"
    );

    let mut source = FileSource::open(&path)?;
    assert_eq!(source.format(), FileFormat::Pcap { nanosecond: true });
    assert_eq!(source.interfaces()[0].link_type, LinkType::Ethernet);
    assert_eq!(read_all(&mut source)?, expected);
    assert_eq!(source.truncated(), None);
    assert_eq!(source.stats()?.captured, expected.len() as u64);
    Ok(())
}

#[test]
fn pcap_sink_refuses_a_second_link_type() -> Result<()> {
    let mut sink = PcapSink::new(Vec::new(), "mem");
    assert_eq!(sink.add_interface(&ethernet("eth0"))?, 0);
    assert_eq!(
        sink.add_interface(&ethernet("eth1"))?,
        1,
        "same link type is fine"
    );
    let err = sink
        .add_interface(&Interface::new("any", LinkType::LinuxSll2, 262_144))
        .unwrap_err();
    assert!(
        matches!(err, snoopy_capture::Error::Unsupported(_)),
        "{err}"
    );
    assert!(
        err.to_string().contains("pcapng"),
        "the message says what to do: {err}"
    );
    Ok(())
}

#[test]
fn pcap_sink_applies_snaplen() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("short.pcap");
    let full = packets(&sample_frames(), 0);
    let mut sink = PcapSink::create(&path)?;
    write_all(
        &mut sink,
        &[Interface::new("eth0", LinkType::Ethernet, 64)],
        &full,
    )?;
    drop(sink);
    let cut: Vec<OwnedPacket> = full
        .iter()
        .map(|p| OwnedPacket {
            data: p.data[..p.data.len().min(64)].to_vec(),
            ..p.clone()
        })
        .collect();
    check_with_tools(&path, &cut, true)?;
    assert_eq!(
        read_all(&mut FileSource::open(&path)?)?,
        cut,
        "orig_len > snaplen is read fine"
    );
    Ok(())
}

#[test]
fn pcapng_sink_attributes_interfaces_in_tshark() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("pods.pcapng");
    let frames = sample_frames();
    let mut raw = Interface::new("shop/db-0/eth0", LinkType::RawIp, 262_144);
    raw.description = Some("pod shop/db-0 (uid 1234)".into());
    let interfaces = [
        ethernet("shop/web-0/eth0"),
        raw,
        Interface::new("kube-system/any", LinkType::LinuxSll2, 65_535),
    ];
    let mut expected = Vec::new();
    for (i, frame) in frames.iter().enumerate() {
        let interface = (i % 3) as u32;
        let data = match interface {
            0 => frame.clone(),
            1 => frame[14..].to_vec(),
            _ => fixtures::sll2(
                u16::from_be_bytes([frame[12], frame[13]]),
                3,
                4,
                fixtures::MAC_A,
                &frame[14..],
            ),
        };
        expected.push(OwnedPacket {
            timestamp: fixtures::timestamp(i),
            orig_len: data.len() as u32,
            data,
            interface,
        });
    }
    let mut sink = PcapNgSink::create(&path)?;
    write_all(&mut sink, &interfaces, &expected)?;
    drop(sink);

    check_with_tools(&path, &expected, false)?;
    let fields = tshark_fields(
        &path,
        &[
            "frame.interface_name",
            "frame.interface_description",
            "frame.interface_id",
        ],
    )?;
    for (f, p) in fields.iter().zip(&expected) {
        let interface = &interfaces[p.interface as usize];
        assert_eq!(f[0], interface.name);
        assert_eq!(f[1], interface.description.clone().unwrap_or_default());
        assert_eq!(f[2], p.interface.to_string());
    }
    let appl = fixtures::run("capinfos", &["-F", path.to_str().context("path")?])?;
    assert!(
        appl.contains("podtracer"),
        "shb_userappl in capinfos:\n{appl}"
    );

    let mut source = FileSource::open(&path)?;
    assert_eq!(source.format(), FileFormat::PcapNg);
    assert_eq!(read_all(&mut source)?, expected);
    assert_eq!(source.interfaces(), &interfaces);
    Ok(())
}

#[test]
fn pcapng_sink_is_read_by_tcpdump() -> Result<()> {
    // libpcap reads pcapng only when all interfaces have one link type.
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("same.pcapng");
    let mut expected = packets(&sample_frames(), 0);
    for (i, p) in expected.iter_mut().enumerate() {
        p.interface = (i % 2) as u32;
    }
    let mut sink = PcapNgSink::with_application(std::fs::File::create(&path)?, "x", "snoopy-test")?;
    write_all(
        &mut sink,
        &[ethernet("a/eth0"), ethernet("b/eth0")],
        &expected,
    )?;
    drop(sink);
    check_with_tools(&path, &expected, true)
}

#[test]
fn reads_files_written_by_tcpdump_tshark_and_editcap() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let ours = dir.path().join("ours.pcap");
    let expected = packets(&sample_frames(), 0);
    let mut sink = PcapSink::create(&ours)?;
    write_all(&mut sink, &[ethernet("eth0")], &expected)?;
    drop(sink);
    let ours_s = ours.to_str().context("path")?;
    let micro: Vec<OwnedPacket> = expected
        .iter()
        .map(|p| OwnedPacket {
            timestamp: Duration::new(p.timestamp.as_secs(), p.timestamp.subsec_micros() * 1000),
            ..p.clone()
        })
        .collect();

    let cases: &[(&str, &[&str], FileFormat, bool)] = &[
        (
            "tcpdump.pcap",
            &["tcpdump", "-r", ours_s, "-w"],
            FileFormat::Pcap { nanosecond: false },
            false,
        ),
        (
            "tcpdump-nano.pcap",
            &["tcpdump", "--time-stamp-precision=nano", "-r", ours_s, "-w"],
            FileFormat::Pcap { nanosecond: true },
            true,
        ),
        (
            "tshark.pcapng",
            &["tshark", "-r", ours_s, "-F", "pcapng", "-w"],
            FileFormat::PcapNg,
            true,
        ),
        (
            "editcap-us.pcap",
            &["editcap", "-F", "pcap", ours_s],
            FileFormat::Pcap { nanosecond: false },
            false,
        ),
        (
            "editcap.pcapng",
            &["editcap", "-F", "pcapng", ours_s],
            FileFormat::PcapNg,
            true,
        ),
    ];
    for (name, command, format, nanos) in cases {
        let out = dir.path().join(name);
        let mut args: Vec<&str> = command[1..].to_vec();
        args.push(out.to_str().context("path")?);
        fixtures::run(command[0], &args)?;
        let mut source = FileSource::open(&out)?;
        assert_eq!(source.format(), *format, "{name}");
        let got = read_all(&mut source)?;
        let want = if *nanos { &expected } else { &micro };
        assert_eq!(got.len(), want.len(), "{name}");
        for (g, w) in got.iter().zip(want.iter()) {
            assert_eq!(g.timestamp, w.timestamp, "{name}");
            assert_eq!(g.data, w.data, "{name}");
            assert_eq!(g.orig_len, w.orig_len, "{name}");
        }
    }

    // A microsecond pcapng (if_tsresol 6): pcap-file alone would read these 1000x off.
    let us_ng = dir.path().join("us.pcapng");
    let us_pcap = dir.path().join("editcap-us.pcap");
    fixtures::run(
        "editcap",
        &[
            "-F",
            "pcapng",
            us_pcap.to_str().context("p")?,
            us_ng.to_str().context("p")?,
        ],
    )?;
    let got = read_all(&mut FileSource::open(&us_ng)?)?;
    let times: Vec<Duration> = got.iter().map(|p| p.timestamp).collect();
    let want: Vec<Duration> = micro.iter().map(|p| p.timestamp).collect();
    assert_eq!(times, want, "microsecond pcapng");
    Ok(())
}

#[test]
fn reads_a_pipe_from_tcpdump() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let ours = dir.path().join("ours.pcap");
    let expected = packets(&sample_frames(), 0);
    let mut sink = PcapSink::create(&ours)?;
    write_all(&mut sink, &[ethernet("eth0")], &expected)?;
    drop(sink);
    // `tcpdump -w - | podtracer read -`: a pipe delivers records in arbitrary pieces.
    let mut child = Command::new("tcpdump")
        .args([
            "--time-stamp-precision=nano",
            "-r",
            ours.to_str().context("path")?,
            "-w",
            "-",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("running tcpdump: is it installed?")?;
    let stdout = child.stdout.take().context("stdout")?;
    let mut source = FileSource::from_reader(stdout, "-")?;
    let got = read_all(&mut source)?;
    assert!(child.wait()?.success());
    assert_eq!(got, expected);
    Ok(())
}

/// Reads in one-byte pieces, the worst case of a slow pipe.
struct Trickle(std::io::Cursor<Vec<u8>>);

impl Read for Trickle {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min(1);
        self.0.read(&mut buf[..n])
    }
}

#[test]
fn truncated_last_record_ends_cleanly() -> Result<()> {
    let expected = packets(&sample_frames(), 0);
    for pcapng in [false, true] {
        let bytes = if pcapng {
            let mut sink = PcapNgSink::new(Vec::new(), "mem")?;
            write_all(&mut sink, &[ethernet("eth0")], &expected)?;
            sink.into_inner()?
        } else {
            let mut sink = PcapSink::new(Vec::new(), "mem");
            write_all(&mut sink, &[ethernet("eth0")], &expected)?;
            sink.into_inner()?
        };
        let full = read_all(&mut FileSource::from_reader(
            Trickle(std::io::Cursor::new(bytes.clone())),
            "t",
        )?)?;
        assert_eq!(full, expected, "byte-by-byte reading, pcapng={pcapng}");
        for cut in [1, 5, 17, 40] {
            let short = bytes[..bytes.len() - cut].to_vec();
            let mut source = FileSource::from_reader(std::io::Cursor::new(short), "cut")?;
            let got = read_all(&mut source)?;
            assert_eq!(
                got,
                expected[..expected.len() - 1],
                "pcapng={pcapng} cut={cut}"
            );
            let truncation = source.truncated().context("truncation reported")?;
            let last_len = expected.last().context("packets")?.data.len();
            let record = if pcapng {
                32 + last_len.next_multiple_of(4)
            } else {
                16 + last_len
            };
            assert_eq!(truncation.bytes, record - cut);
            assert_eq!(truncation.offset as usize, bytes.len() - record);
        }
    }
    Ok(())
}

#[test]
fn garbage_in_the_middle_is_an_error_with_its_offset() -> Result<()> {
    let expected = packets(&sample_frames(), 0);
    let mut sink = PcapSink::new(Vec::new(), "mem");
    write_all(&mut sink, &[ethernet("eth0")], &expected)?;
    let mut bytes = sink.into_inner()?;
    // Corrupt the caplen of the third record.
    let third = 24
        + expected[..2]
            .iter()
            .map(|p| 16 + p.data.len())
            .sum::<usize>();
    bytes[third + 8..third + 12].copy_from_slice(&0x7fff_ffffu32.to_le_bytes());
    let mut source = FileSource::from_reader(std::io::Cursor::new(bytes), "bad.pcap")?;
    assert!(source.next_packet()?.is_some());
    assert!(source.next_packet()?.is_some());
    let err = source.next_packet().unwrap_err().to_string();
    assert!(err.contains(&format!("at byte {third}")), "{err}");
    assert!(err.contains("corrupt"), "{err}");
    Ok(())
}

#[test]
fn big_endian_microsecond_pcap() -> Result<()> {
    // Hand-built: no tool here writes big-endian files.
    let frames = sample_frames();
    let mut bytes = 0xa1b2_c3d4u32.to_be_bytes().to_vec();
    bytes.extend_from_slice(&2u16.to_be_bytes());
    bytes.extend_from_slice(&4u16.to_be_bytes());
    for word in [0u32, 0, 65_535, 1] {
        bytes.extend_from_slice(&word.to_be_bytes());
    }
    for (i, f) in frames.iter().enumerate() {
        for word in [
            1_700_000_000 + i as u32,
            654_321,
            f.len() as u32,
            f.len() as u32,
        ] {
            bytes.extend_from_slice(&word.to_be_bytes());
        }
        bytes.extend_from_slice(f);
    }
    let mut source = FileSource::from_reader(std::io::Cursor::new(bytes), "be")?;
    assert_eq!(source.format(), FileFormat::Pcap { nanosecond: false });
    let got = read_all(&mut source)?;
    assert_eq!(got.len(), frames.len());
    assert_eq!(got[3].timestamp, Duration::new(1_700_000_003, 654_321_000));
    assert_eq!(got[3].data, frames[3]);
    Ok(())
}

#[test]
fn flush_makes_a_valid_file_while_writing() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let all = packets(&sample_frames(), 0);
    let (first, second) = all.split_at(7);
    for pcapng in [false, true] {
        let path = dir
            .path()
            .join(if pcapng { "live.pcapng" } else { "live.pcap" });
        let mut sink: Box<dyn PacketSink> = if pcapng {
            Box::new(PcapNgSink::create(&path)?)
        } else {
            Box::new(PcapSink::create(&path)?)
        };
        // The sink stays open (as in a running capture) while tshark reads the file.
        write_all(sink.as_mut(), &[ethernet("eth0")], first)?;
        assert_eq!(
            tshark_fields(&path, &["frame.number"])?.len(),
            first.len(),
            "pcapng={pcapng}"
        );
        for p in second {
            sink.write_packet(0, &p.as_packet())?;
        }
        sink.flush()?;
        check_with_tools(&path, &all, !pcapng)?;
    }
    Ok(())
}

/// `(incl_len, orig_len)` of every record of a little-endian pcap.
fn record_lengths(bytes: &[u8]) -> Vec<(u32, u32)> {
    let word = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
    let mut out = Vec::new();
    let mut at = 24;
    while at + 16 <= bytes.len() {
        let (incl, orig) = (word(at + 8), word(at + 12));
        out.push((incl, orig));
        at += 16 + incl as usize;
    }
    out
}

#[test]
fn odd_records_are_taken_as_tcpdump_takes_them() -> Result<()> {
    // tcpdump keeps reading past a timestamp fraction of 1.5 s, and keeps a `len` below the
    // captured length as the file has it, through -w too. So do FileSource and PcapSink.
    let frame = &sample_frames()[0];
    let n = frame.len() as u32;
    let mut bytes = 0xa1b2_c3d4u32.to_le_bytes().to_vec();
    bytes.extend_from_slice(&2u16.to_le_bytes());
    bytes.extend_from_slice(&4u16.to_le_bytes());
    for word in [0u32, 0, 65_535, 1] {
        bytes.extend_from_slice(&word.to_le_bytes());
    }
    for (sec, frac, orig) in [
        (1_700_000_000, 10, n),
        (1_700_000_001, 1_500_000, n),
        (1_700_000_002, 20, n - 10),
    ] {
        for word in [sec, frac, n, orig] {
            bytes.extend_from_slice(&word.to_le_bytes());
        }
        bytes.extend_from_slice(frame);
    }
    let dir = tempfile::tempdir()?;
    let input = dir.path().join("odd.pcap");
    std::fs::write(&input, &bytes)?;

    let theirs = fixtures::tcpdump_packets(&input)?;
    assert_eq!(theirs.len(), 3, "tcpdump reads every record");
    let mut source = FileSource::open(&input)?;
    let ours = read_all(&mut source)?;
    assert_eq!(ours.len(), 3);
    assert_eq!(source.invalid_fractions(), 1);
    assert_eq!(ours[1].timestamp, Duration::new(1_700_000_002, 500_000_000));
    // (tcpdump prints no bytes for the third: its printer stops at `len`.)
    for (p, (_, data)) in ours.iter().zip(&theirs).take(2) {
        assert_eq!(&p.data, data);
    }
    assert_eq!(ours[2].orig_len, n - 10);

    // Written back: the lengths are the file's, as tcpdump -w writes them.
    let mut sink = PcapSink::new(Vec::new(), "mem");
    write_all(&mut sink, source.interfaces(), &ours)?;
    let mine = sink.into_inner()?;
    let tcpdump_w = dir.path().join("tcpdump.pcap");
    let status = Command::new("tcpdump")
        .args([
            "-r",
            input.to_str().unwrap(),
            "-w",
            tcpdump_w.to_str().unwrap(),
        ])
        .stderr(Stdio::null())
        .status()
        .context("running tcpdump")?;
    assert!(status.success());
    let expected = vec![(n, n), (n, n), (n, n - 10)];
    assert_eq!(record_lengths(&std::fs::read(&tcpdump_w)?), expected);
    assert_eq!(record_lengths(&mine), expected);
    Ok(())
}

/// A pcap file header (little-endian, microseconds) with this link-type field and snaplen.
fn pcap_header(linktype: u32, snaplen: u32) -> Vec<u8> {
    let mut bytes = 0xa1b2_c3d4u32.to_le_bytes().to_vec();
    bytes.extend_from_slice(&2u16.to_le_bytes());
    bytes.extend_from_slice(&4u16.to_le_bytes());
    for word in [0u32, 0, snaplen, linktype] {
        bytes.extend_from_slice(&word.to_le_bytes());
    }
    bytes
}

/// What tcpdump says a file's link type is (`reading from file F, link-type NAME (...)`).
fn tcpdump_link_type(path: &Path) -> Result<String> {
    let out = Command::new("tcpdump")
        .args(["-r", path.to_str().context("utf-8 path")?, "-c", "1", "-n"])
        .output()
        .context("running tcpdump (apt-get install tcpdump)")?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    let (_, after) = stderr
        .split_once("link-type ")
        .with_context(|| format!("no link-type in tcpdump's stderr: {stderr}"))?;
    Ok(after
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_owned())
}

#[test]
fn the_fcs_bits_of_a_pcap_link_type_are_not_the_link_type() -> Result<()> {
    // Found by the `read` fuzz target (fuzz/regressions/read/crash-f4deeb3f…): a header
    // whose link-type field was 0xcc000071 was read as an unknown link type 3422552177, and
    // written to pcapng as 113 (16 bits): another link type than the reader's. libpcap reads
    // the top 6 bits as the FCS length.
    let frame = &sample_frames()[0];
    let dir = tempfile::tempdir()?;
    for (field, ours) in [
        (0xcc00_0001u32, LinkType::Ethernet),
        (0xcc00_0071, LinkType::LinuxSll),
        (0x0400_0001, LinkType::Ethernet),
        (1, LinkType::Ethernet),
    ] {
        let mut bytes = pcap_header(field, 65_535);
        for word in [1_700_000_000u32, 0, frame.len() as u32, frame.len() as u32] {
            bytes.extend_from_slice(&word.to_le_bytes());
        }
        bytes.extend_from_slice(frame);
        let path = dir.path().join(format!("{field:08x}.pcap"));
        std::fs::write(&path, &bytes)?;
        let source = FileSource::open(&path)?;
        let read = source.interfaces()[0].link_type;
        assert_eq!(read, ours, "0x{field:08x}");
        assert_eq!(tcpdump_link_type(&path)?, read.name(), "0x{field:08x}");
    }
    // What pcapng cannot describe is refused, not cut to 16 bits.
    let mut sink = PcapNgSink::new(Vec::new(), "mem")?;
    let err = sink
        .add_interface(&Interface::new("x", LinkType::Other(0x1_0071), 100))
        .unwrap_err();
    assert!(err.to_string().contains("16 bits"), "{err}");
    Ok(())
}

#[test]
fn pcapng_snaplen_zero_to_pcap_keeps_every_byte() -> Result<()> {
    // Found writing the `read` fuzz target's round trip: a pcapng interface with snaplen 0
    // ("no limit") became a pcap with snaplen 0 whose records had no bytes at all.
    // tcpdump -w keeps them.
    let frames = sample_frames();
    let expected = packets(&frames[..3], 0);
    let mut ng = PcapNgSink::new(Vec::new(), "mem")?;
    write_all(
        &mut ng,
        &[Interface::new("eth0", LinkType::Ethernet, 0)],
        &expected,
    )?;
    let dir = tempfile::tempdir()?;
    let input = dir.path().join("zero.pcapng");
    std::fs::write(&input, ng.into_inner()?)?;

    let mut source = FileSource::open(&input)?;
    let read = read_all(&mut source)?;
    let ours = dir.path().join("ours.pcap");
    let mut sink = PcapSink::create(&ours)?;
    write_all(&mut sink, source.interfaces(), &read)?;
    drop(sink);
    let theirs = dir.path().join("tcpdump.pcap");
    let status = Command::new("tcpdump")
        .args([
            "-r",
            input.to_str().unwrap(),
            "-w",
            theirs.to_str().unwrap(),
        ])
        .stderr(Stdio::null())
        .status()
        .context("running tcpdump")?;
    assert!(status.success());
    let (ours, theirs) = (
        fixtures::tcpdump_packets(&ours)?,
        fixtures::tcpdump_packets(&theirs)?,
    );
    // The same bytes (tcpdump -w writes microseconds, so only the bytes are compared).
    let bytes = |v: &[(String, Vec<u8>)]| v.iter().map(|(_, b)| b.clone()).collect::<Vec<_>>();
    assert_eq!(bytes(&ours), bytes(&theirs));
    for ((_, bytes), p) in ours.iter().zip(&expected) {
        assert_eq!(*bytes, p.data);
    }
    Ok(())
}

/// 2107-12-22T12:26:40Z: past the last second pcap's 32-bit field holds (2106-02-07T06:28:15Z).
const AFTER_2106: u64 = 4_354_000_000;

#[test]
fn pcapng_after_2106_reads_and_writes_pcapng_but_pcap_refuses_it() -> Result<()> {
    let frames = sample_frames();
    let mut expected = packets(&frames[..3], 0);
    expected[1].timestamp = Duration::new(AFTER_2106, 123_456_789);
    let dir = tempfile::tempdir()?;
    let input = dir.path().join("late.pcapng");
    let mut ng = PcapNgSink::create(&input)?;
    write_all(&mut ng, &[ethernet("eth0")], &expected)?;
    drop(ng);
    // Read: the times tshark reads, to the nanosecond, and the date tcpdump -tttt prints
    // (libpcap reads it right; tcpdump's -tt printer casts the seconds to 32 bits).
    let mut source = FileSource::open(&input)?;
    assert_eq!(read_all(&mut source)?, expected);
    check_with_tools(&input, &expected, false)?;
    let dates = fixtures::run("tcpdump", &["-r", input.to_str().unwrap(), "-tttt", "-n"])?;
    let second = dates
        .lines()
        .nth(1)
        .context("tcpdump printed a second packet")?;
    assert!(
        second.starts_with("2107-12-22 12:26:40.123456 "),
        "{second}"
    );

    // pcap: tcpdump -w and editcap write the low 32 bits (the packet reads back as 1971);
    // the sink refuses the packet instead, after writing the one before it.
    let out = dir.path().join("late.pcap");
    let mut sink = PcapSink::create(&out)?;
    let id = sink.add_interface(&ethernet("eth0"))?;
    sink.write_packet(id, &expected[0].as_packet())?;
    let err = sink.write_packet(id, &expected[1].as_packet()).unwrap_err();
    let message = err.to_string();
    assert!(
        matches!(
            err,
            snoopy_capture::Error::TimestampOutOfRange { written: 1, .. }
        ),
        "{err:?}"
    );
    for part in [
        "packet 2 is from 2107-12-22T12:26:40.123456789Z",
        "after 2106-02-07T06:28:15Z",
        "the 1 packet(s) before it are written",
        "write pcapng",
    ] {
        assert!(message.contains(part), "{part:?} not in {message:?}");
    }
    sink.flush()?;
    drop(sink);
    check_with_tools(&out, &expected[..1], true)?;
    let tcpdump_w = dir.path().join("tcpdump.pcap");
    let status = Command::new("tcpdump")
        .args([
            "-r",
            input.to_str().unwrap(),
            "-w",
            tcpdump_w.to_str().unwrap(),
        ])
        .stderr(Stdio::null())
        .status()
        .context("running tcpdump")?;
    assert!(status.success());
    let wrapped = fixtures::tcpdump_packets(&tcpdump_w)?;
    assert_eq!(
        wrapped[1].0,
        epoch(Duration::new(AFTER_2106 - (1 << 32), 123_456_000)),
        "tcpdump -w wraps the seconds (why the sink refuses instead)"
    );
    Ok(())
}

#[test]
fn pcapng_refuses_times_its_nanoseconds_cannot_hold() -> Result<()> {
    let frames = sample_frames();
    let mut sink = PcapNgSink::new(Vec::new(), "mem")?;
    let id = sink.add_interface(&ethernet("eth0"))?;
    let mut p = packets(&frames[..1], 0).remove(0);
    // 2554-07-21T23:34:33.709551615Z is the last nanosecond of a u64.
    p.timestamp = Duration::from_nanos(u64::MAX);
    sink.write_packet(id, &p.as_packet())?;
    p.timestamp += Duration::from_nanos(1);
    let err = sink
        .write_packet(id, &p.as_packet())
        .unwrap_err()
        .to_string();
    assert!(err.contains("after 2554-07-21T23:34:33Z"), "{err}");
    assert!(err.contains("the 1 packet(s) before it"), "{err}");
    Ok(())
}
