//! tcpdump's output flags, line by line against tcpdump 4.99 on the same file of real
//! namespace traffic: `-x`/`-xx`, `-X`/`-XX`, `--ascii` (tcpdump's `-A`), the `-t` family,
//! `--nano`, `-v` (for the packets it covers), and `capture -r FILE` printing what
//! `read FILE` prints.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use snoopy_testkit::NetnsPair;

use crate::support::*;

/// A server on b port 7777 (a port tcpdump decodes no application protocol on) that reads a
/// request and answers with text holding CR, LF, tabs and binary bytes.
const SERVER: &str = "import socket\ns=socket.socket()\ns.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\ns.bind(('0.0.0.0',7777))\ns.listen(1)\nc,_=s.accept()\nc.recv(1000)\nc.sendall(b'HTTP/1.1 200 OK\\r\\nContent-Type:\\ttext/plain\\r\\n\\r\\nhello\\x00\\x01\\xff world\\r')\nc.recv(10)\nc.close()";

/// From a: the request, then UDP datagrams of odd and even sizes, over IPv4 and IPv6.
fn client(to: &str, to6: &str) -> String {
    format!(
        "import socket,time\nfor i in range(50):\n  try:\n    c=socket.create_connection(('{to}',7777),timeout=1); break\n  except OSError: time.sleep(0.1)\nc.sendall(b'GET / HTTP/1.1\\r\\nHost: b\\r\\nX-Mid: a\\rb\\r\\n\\r\\n'); c.recv(1000); time.sleep(0.1); c.close()\nu=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\nfor n in (1,7,16,33): u.sendto(bytes(range(n)),('{to}',9999))\nv=socket.socket(socket.AF_INET6,socket.SOCK_DGRAM)\nfor n in (2,15): v.sendto(b'~'*n,('{to6}',9999))\ntime.sleep(0.3)"
    )
}

/// Captures TCP with payloads, UDP, ICMP and ICMPv6 between the pair into `file`.
fn record_traffic(pair: &NetnsPair, file: &Path) -> Result<()> {
    let netns = pair.b.netns_path();
    let server = pair.b.spawn(&["python3", "-c", SERVER])?;
    let capture = start_capture(&[
        "--netns",
        netns.to_str().context("netns path")?,
        "-i",
        &pair.b.interface,
        "-w",
        file.to_str().context("file path")?,
    ])?;
    pair.a.run(&[
        "ping",
        "-c",
        "3",
        "-i",
        "0.2",
        "-s",
        "37",
        &pair.b.ip.to_string(),
    ])?;
    pair.a.run(&[
        "ping",
        "-6",
        "-c",
        "2",
        "-i",
        "0.2",
        &pair.b.ip6.to_string(),
    ])?;
    pair.a.run(&[
        "python3",
        "-c",
        &client(&pair.b.ip.to_string(), &pair.b.ip6.to_string()),
    ])?;
    drop(server);
    std::thread::sleep(Duration::from_millis(300));
    signal(&capture, "INT")?;
    let out = wait_with_timeout(capture, Duration::from_secs(10))?;
    if !out.status.success() {
        bail!("capture failed: {out:?}");
    }
    Ok(())
}

/// stdout of a program that must succeed.
fn stdout_of(mut command: Command) -> Result<String> {
    let out = command
        .output()
        .with_context(|| format!("spawning {command:?}"))?;
    if !out.status.success() {
        bail!(
            "{command:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8(out.stdout)?)
}

/// `tcpdump -n -r FILE FLAGS` in UTC, as podtracer prints times.
fn tcpdump_lines(file: &Path, flags: &[&str]) -> Result<String> {
    snoopy_testkit::require_tool("tcpdump")?;
    let mut command = Command::new("tcpdump");
    command
        .env("TZ", "UTC")
        .arg("-n")
        .arg("-r")
        .arg(file)
        .args(flags);
    stdout_of(command)
}

/// Asserts that podtracer's output equals tcpdump's, line for line.
fn assert_same_lines(ours: &str, theirs: &str, what: &str) {
    let (ours, theirs): (Vec<&str>, Vec<&str>) = (ours.lines().collect(), theirs.lines().collect());
    let diffs: Vec<String> = ours
        .iter()
        .zip(&theirs)
        .enumerate()
        .filter(|(_, (o, t))| o != t)
        .map(|(i, (o, t))| format!("line {}:\n  ours:    {o:?}\n  tcpdump: {t:?}", i + 1))
        .collect();
    assert!(
        diffs.is_empty() && ours.len() == theirs.len(),
        "{what}: {} lines vs tcpdump's {}; {} differ:\n{}",
        ours.len(),
        theirs.len(),
        diffs.len(),
        diffs.join("\n")
    );
}

/// (podtracer flags, tcpdump flags) pairs that must print the same lines.
const FLAG_PAIRS: &[(&[&str], &[&str])] = &[
    (&[], &[]),
    (&["-x"], &["-x"]),
    (&["-xx"], &["-xx"]),
    (&["-X"], &["-X"]),
    (&["-XX"], &["-XX"]),
    (&["--ascii"], &["-A"]),
    (&["--ascii", "--ascii"], &["-AA"]),
    (&["-t"], &["-t"]),
    (&["-tt"], &["-tt"]),
    (&["-ttt"], &["-ttt"]),
    (&["-tttt"], &["-tttt"]),
    (&["-ttttt"], &["-ttttt"]),
    (&["-tt", "--nano"], &["-tt", "--nano"]),
    (&["-ttt", "--nano"], &["-ttt", "--nano"]),
    (&["-ttttt", "--nano", "-X"], &["-ttttt", "--nano", "-X"]),
    (&["-e", "-X"], &["-e", "-X"]),
];

#[test]
fn read_and_capture_r_print_tcpdumps_lines_for_every_output_flag() -> Result<()> {
    let pair = NetnsPair::new()?;
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("traffic.pcap");
    record_traffic(&pair, &file)?;
    let plain = tcpdump_lines(&file, &[])?;
    // The traffic the comparison needs is there: payloads with CR/LF, odd lengths, IPv6.
    for needle in [
        "Flags [P.]",
        "UDP, length 7",
        "UDP, length 15",
        "ICMP6, echo request",
    ] {
        assert!(plain.contains(needle), "no {needle:?} in:\n{plain}");
    }
    for (ours, theirs) in FLAG_PAIRS {
        let expected = tcpdump_lines(&file, theirs)?;
        let mut read = podtracer();
        read.arg("read").arg(&file).args(*ours);
        assert_same_lines(&stdout_of(read)?, &expected, &format!("read {ours:?}"));
        let mut capture_r = podtracer();
        capture_r.args(["capture", "-r"]).arg(&file).args(*ours);
        assert_same_lines(
            &stdout_of(capture_r)?,
            &expected,
            &format!("capture -r {ours:?}"),
        );
    }
    Ok(())
}

#[test]
fn capture_r_filters_counts_and_writes_like_read() -> Result<()> {
    let pair = NetnsPair::new()?;
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("traffic.pcap");
    record_traffic(&pair, &file)?;
    let udp = dir.path().join("udp.pcapng");
    let mut command = podtracer();
    command
        .args(["capture", "-r"])
        .arg(&file)
        .arg("-w")
        .arg(&udp)
        .args(["-c", "3", "udp", "port", "9999"]);
    stdout_of(command)?;
    let rows = tshark_fields(&udp, &["udp.dstport"])?;
    assert_eq!(rows.len(), 3, "-c 3 of the UDP datagrams: {rows:?}");
    assert!(rows.iter().all(|r| r[0] == "9999"), "{rows:?}");
    let expected = tcpdump_lines(&file, &["-c", "3", "udp", "port", "9999"])?;
    assert_same_lines(
        &tcpdump_lines(&udp, &[])?,
        &expected,
        "capture -r -w -c FILTER",
    );
    // Neither a target nor -r: a usage error that names both.
    let out = podtracer().args(["capture", "-c", "1"]).output()?;
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--pid") && stderr.contains("-r FILE"),
        "{stderr}"
    );
    Ok(())
}

/// Splits tcpdump-style output into one record per packet: a line that starts with the
/// time, and the indented lines after it (`-v` puts the packet on a second line).
fn records(output: &str) -> Vec<String> {
    let mut records: Vec<String> = Vec::new();
    for line in output.lines() {
        match records.last_mut() {
            Some(last) if line.starts_with([' ', '\t']) => {
                last.push('\n');
                last.push_str(line);
            }
            _ => records.push(line.to_string()),
        }
    }
    records
}

/// Whether podtracer's `-v` covers the packet of this `tcpdump -n` line: IPv4 or IPv6 with
/// TCP, UDP or an ICMP / ICMPv6 echo, and Ethernet/IPv4 ARP.
fn verbose_covers(plain: &str) -> bool {
    let Some((_, rest)) = plain.split_once(' ') else {
        return false;
    };
    if rest.starts_with("ARP, ") {
        return !rest.contains("[|");
    }
    (rest.starts_with("IP ") || rest.starts_with("IP6 "))
        && !rest.contains("[|")
        && !rest.contains(": HBH ")
        && (rest.contains(": Flags [")
            || rest.contains(": UDP, length")
            || rest.contains(": ICMP echo ")
            || rest.contains(": ICMP6, echo "))
}

/// The packets of the recorded traffic `-v` does not cover yet, as (what, a part of their
/// `tcpdump -n` line): they keep their line without `-v` and are left out of the comparison
/// with `tcpdump -v`. ICMPv6 other than echo (neighbour discovery, MLD), and ICMP errors
/// (port unreachable for the UDP to a closed port), whose quoted packet `tcpdump -v` prints.
const VERBOSE_NOT_COVERED: &[(&str, &str)] = &[
    ("ICMPv6 other than echo", " ICMP6, "),
    ("ICMP errors", " unreachable, length "),
];

#[test]
fn verbose_prints_tcpdumps_v_lines_for_tcp_udp_icmp_echo_and_arp() -> Result<()> {
    let pair = NetnsPair::new()?;
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("traffic.pcap");
    record_traffic(&pair, &file)?;
    let plain = records(&tcpdump_lines(&file, &[])?);
    let theirs = records(&tcpdump_lines(&file, &["-v"])?);
    assert_eq!(plain.len(), theirs.len(), "records of tcpdump -n and -v");
    let mut read = podtracer();
    read.arg("read").arg(&file);
    let ours_plain = records(&stdout_of(read)?);
    assert_same_lines(&ours_plain.join("\n"), &plain.join("\n"), "read");
    for ours_flags in [&["-v"][..], &["-vv"][..]] {
        for subcommand in [&["read"][..], &["capture", "-r"][..]] {
            let mut command = podtracer();
            command.args(subcommand).arg(&file).args(ours_flags);
            let ours = records(&stdout_of(command)?);
            let what = format!("{subcommand:?} {ours_flags:?}");
            assert_eq!(ours.len(), theirs.len(), "{what}: packets");
            let mut compared = Vec::new();
            for (i, ((o, t), p)) in ours.iter().zip(&theirs).zip(&plain).enumerate() {
                if verbose_covers(p) {
                    assert_eq!(o, t, "{what}: packet {} differs from tcpdump -v", i + 1);
                    compared.push(t.as_str());
                } else {
                    assert!(
                        VERBOSE_NOT_COVERED.iter().any(|(_, part)| p.contains(part)),
                        "{what}: packet {} is neither covered nor listed as not covered: {p}",
                        i + 1
                    );
                    assert_eq!(o, &ours_plain[i], "{what}: packet {} falls back", i + 1);
                }
            }
            // The comparison covered what -v is for: TCP with options and checksums, UDP,
            // ICMP echo, each with the IPv4 header line.
            for needle in [
                "options [mss",
                "sackOK",
                "wscale",
                "TS val",
                ", cksum 0x",
                "flags [DF], proto TCP (6)",
                "proto UDP (17)",
                "ICMP echo request",
                "ICMP echo reply",
                "next-header ICMPv6 (58)",
                "[icmp6 sum ok] ICMP6, echo request",
                "next-header UDP (17)",
                "UDP, length 15",
                ": UDP, length 7",
                "ARP, Ethernet (len 6), IPv4 (len 4), Request who-has",
                "ARP, Ethernet (len 6), IPv4 (len 4), Reply",
            ] {
                assert!(
                    compared.iter().any(|r| r.contains(needle)),
                    "{what}: no compared packet with {needle:?}"
                );
            }
        }
    }
    Ok(())
}
