//! tcpdump's output flags, line by line against tcpdump 4.99 on the same file of real
//! namespace traffic: `-x`/`-xx`, `-X`/`-XX`, `--ascii` (tcpdump's `-A`), the `-t` family,
//! `--nano`, `-v` (for the packets it covers: TCP, UDP, ICMP echo, ARP, DNS and mDNS,
//! 802.1Q-tagged frames, with and without `-e`), and `capture -r FILE` printing what
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

/// Sends 802.1Q-tagged frames (VLAN 10, priority 0 and 5) from the interface in argv[1]
/// to the MAC in argv[2], with the right checksums: an ICMP echo request, a UDP datagram and
/// a DNS question over IPv4, an ICMPv6 echo request. This kernel has no 8021q module (no
/// `ip link add ... type vlan`), so the frames are written to a packet socket; the capture
/// on the peer sees them as a VLAN sub-interface would send them.
const TAGGED_FRAMES: &str = r#"import socket,struct,sys
def cs(b):
    b+=b'\0'*(len(b)%2); s=sum(struct.unpack('>%dH'%(len(b)//2),b))
    while s>>16: s=(s&0xffff)+(s>>16)
    return ~s&0xffff
S4,D4=bytes([198,18,10,1]),bytes([198,18,10,2])
S6,D6=socket.inet_pton(socket.AF_INET6,'fd53:10::1'),socket.inet_pton(socket.AF_INET6,'fd53:10::2')
def ip4(proto,p):
    h=struct.pack('>BBHHHBBH4s4s',0x45,0,20+len(p),7,0x4000,64,proto,0,S4,D4)
    return h[:10]+struct.pack('>H',cs(h))+h[12:]+p
def udp4(sp,dp,data):
    u=struct.pack('>HHHH',sp,dp,8+len(data),0)+data
    c=cs(S4+D4+struct.pack('>BBH',0,17,len(u))+u) or 0xffff
    return ip4(17,u[:6]+struct.pack('>H',c)+data)
def icmp4():
    m=struct.pack('>BBHHH',8,0,0,0x1234,1)+b'tagged'
    return ip4(1,m[:2]+struct.pack('>H',cs(m))+m[4:])
def icmp6():
    m=struct.pack('>BBHHH',128,0,0,0x1234,1)+b'tagged'
    c=cs(S6+D6+struct.pack('>IxxxB',len(m),58)+m)
    m=m[:2]+struct.pack('>H',c)+m[4:]
    return struct.pack('>IHBB',0x60000000,len(m),58,64)+S6+D6+m
q=struct.pack('>6H',4670,0x0100,1,0,0,0)+b'\x06tagged\x03pod\x04test\x00'+struct.pack('>HH',1,1)
s=socket.socket(socket.AF_PACKET,socket.SOCK_RAW); s.bind((sys.argv[1],0))
src=s.getsockname()[4]; dst=bytes.fromhex(sys.argv[2].replace(':',''))
for tci,et,p in ((10,0x0800,icmp4()),(10,0x0800,udp4(40000,9999,b'tagged')),(0xa00a,0x0800,udp4(40001,53,q)),(10,0x86dd,icmp6())):
    s.send(dst+src+struct.pack('>HHH',0x8100,tci,et)+p)
"#;

/// Captures TCP with payloads, UDP, ICMP and ICMPv6 between the pair into `file`, DNS and
/// mDNS questions and answers, and VLAN-tagged frames.
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
    pair.a.run(&[
        "python3",
        "-c",
        TAGGED_FRAMES,
        &pair.a.interface,
        &pair.b.mac,
    ])?;
    let dns = crate::pod_lines::dns_responder(&pair.b)?;
    crate::pod_lines::dns_client(&pair.a, &pair.b)?;
    drop(dns);
    drop(server);
    std::thread::sleep(Duration::from_millis(300));
    signal(&capture, "INT")?;
    let out = wait_with_timeout(capture, Duration::from_secs(10))?;
    if !out.status.success() {
        bail!("capture failed: {out:?}");
    }
    Ok(())
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
/// TCP (and HTTP or DNS above it), UDP (and DNS or mDNS above it) or an ICMP / ICMPv6 echo,
/// and Ethernet/IPv4 ARP.
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
            || [".53: ", ".53 > ", ".5353: ", ".5353 > "]
                .iter()
                .any(|port| rest.contains(port))
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
    (
        "IGMP (its IPv4 header carries the router alert option)",
        ": igmp ",
    ),
];

/// Compares `read FILE -v`/`-vv` and `capture -r FILE -v`/`-vv` with `tcpdump -n -v -r FILE`
/// (and with `-e` when `link_header`) record by record: packets [`verbose_covers`] must be
/// identical, the others must be listed in [`VERBOSE_NOT_COVERED`] and keep their line.
/// Returns tcpdump's compared records (of the last run), for the caller to check coverage.
pub(crate) fn assert_verbose_lines(file: &Path, link_header: bool) -> Result<Vec<String>> {
    let e: &[&str] = if link_header { &["-e"] } else { &[] };
    let plain = records(&tcpdump_lines(file, &[])?);
    let theirs = records(&tcpdump_lines(file, &[e, &["-v"]].concat())?);
    assert_eq!(plain.len(), theirs.len(), "records of tcpdump -n and -v");
    let mut read = podtracer();
    read.arg("read").arg(file).args(e);
    let ours_plain = records(&stdout_of(read)?);
    let mut compared = Vec::new();
    for ours_flags in [&["-v"][..], &["-vv"][..]] {
        for subcommand in [&["read"][..], &["capture", "-r"][..]] {
            let mut command = podtracer();
            command.args(subcommand).arg(file).args(e).args(ours_flags);
            let ours = records(&stdout_of(command)?);
            let what = format!("{subcommand:?} {e:?} {ours_flags:?}");
            assert_eq!(ours.len(), theirs.len(), "{what}: packets");
            compared.clear();
            for (i, ((o, t), p)) in ours.iter().zip(&theirs).zip(&plain).enumerate() {
                if verbose_covers(p) {
                    assert_eq!(o, t, "{what}: packet {} differs from tcpdump -v", i + 1);
                    compared.push(t.clone());
                } else {
                    assert!(
                        VERBOSE_NOT_COVERED.iter().any(|(_, part)| p.contains(part)),
                        "{what}: packet {} is neither covered nor listed as not covered: {p}",
                        i + 1
                    );
                    assert_eq!(o, &ours_plain[i], "{what}: packet {} falls back", i + 1);
                }
            }
        }
    }
    Ok(compared)
}

#[test]
fn verbose_prints_tcpdumps_v_lines_for_tcp_udp_icmp_echo_arp_dns_and_vlan() -> Result<()> {
    let pair = NetnsPair::new()?;
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("traffic.pcap");
    record_traffic(&pair, &file)?;
    let mut read = podtracer();
    read.arg("read").arg(&file);
    assert_same_lines(&stdout_of(read)?, &tcpdump_lines(&file, &[])?, "read");
    let compared = assert_verbose_lines(&file, false)?;
    // The comparison covered what -v is for: TCP with options and checksums, UDP, ICMP
    // echo, each with the IP header line, ARP, DNS and mDNS questions and answers (with the
    // answers' owner names that -v adds).
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
        "4660+ [1au] A? api.pod.test. (41)",
        " 4660 1/0/1 api.pod.test. A 198.18.0.2 (",
        " web.pod.test. CNAME api.pod.test., api.pod.test. A 198.18.0.2",
        "udp cksum 0x",
        "] 4663+ [1au] AAAA? api.pod.test. (41)",
        " NXDomain",
        "0 A (QM)? api.local. (27)",
        " api.local. (Cache flush) A 198.18.0.2, api.local. (Cache flush) TXT \"path=/api\" \"v=1.0\"",
        " > 198.18.10.2: ICMP echo request",
        " > fd53:10::2: [icmp6 sum ok] ICMP6, echo request",
        "198.18.10.1.40001 > 198.18.10.2.53: 4670+ A? tagged.pod.test. (33)",
    ] {
        assert!(
            compared.iter().any(|r| r.contains(needle)),
            "no compared packet with {needle:?}"
        );
    }
    // With the link header, tagged frames show their tag before the IP header fields.
    let compared = assert_verbose_lines(&file, true)?;
    for needle in [
        ": vlan 10, p 0, ethertype IPv4 (0x0800), (tos 0x0, ttl 64, id 7, offset 0, flags [DF], proto ICMP (1)",
        ": vlan 10, p 5, ethertype IPv4 (0x0800), (tos 0x0, ttl 64, id 7, offset 0, flags [DF], proto UDP (17)",
        ": vlan 10, p 0, ethertype IPv6 (0x86dd), (hlim 64, next-header ICMPv6 (58)",
    ] {
        assert!(
            compared.iter().any(|r| r.contains(needle)),
            "-e: no compared packet with {needle:?}"
        );
    }
    Ok(())
}
