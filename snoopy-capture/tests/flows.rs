//! The flow table against tshark: per-conversation packet and byte counts (`-z conv,tcp`,
//! `-z conv,udp`), handshake RTT (`tcp.analysis.initial_rtt`), retransmissions
//! (`tcp.analysis.retransmission`), out-of-order segments and zero windows, on a large
//! generated pcap and on real traffic between network namespaces (accepting server, closed
//! port, nftables DROP, nftables random loss); and the memory bound under a flood.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use snoopy_capture::flow::{
    Aggregates, Destination, EndReason, FlowConfig, FlowRecord, FlowTable, PodNames, Protocol,
    TcpOutcome,
};
use snoopy_capture::sink::PcapSink;
use snoopy_capture::source::FileSource;
use snoopy_capture::{Interface, LinkType, OwnedPacket, PacketSink, PacketSource};

use crate::fixtures::{ACK, FIN, MAC_A, MAC_B, PSH, RST, SYN, ether, ipv4, syn_options, tcp, udp};

// ---------------------------------------------------------------------------------------
// Running the table and the oracle
// ---------------------------------------------------------------------------------------

/// Every record of a pcap file, read through the same `FileSource` podtracer uses.
fn flows_of_file(path: &Path, config: FlowConfig) -> Result<(Vec<FlowRecord>, FlowTable)> {
    let mut source = FileSource::open(path)?;
    let mut table = FlowTable::new(config);
    let mut records = Vec::new();
    snoopy_capture::flow::feed(&mut source, &mut table, |r| records.push(r))?;
    table.finish();
    records.extend(table.drain_finished());
    Ok((records, table))
}

fn write_pcap(path: &Path, link_type: LinkType, packets: &[OwnedPacket]) -> Result<()> {
    let mut sink = PcapSink::create(path)?;
    let id = sink.add_interface(&Interface::new("gen", link_type, 262_144))?;
    for p in packets {
        sink.write_packet(id, &p.as_packet())?;
    }
    sink.flush()?;
    Ok(())
}

fn tshark(args: &[&str]) -> Result<String> {
    snoopy_testkit::require_tool("tshark")?;
    let out = Command::new("tshark")
        .args(args)
        .output()
        .context("running tshark")?;
    if !out.status.success() {
        bail!(
            "tshark {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8(out.stdout)?)
}

/// How tshark prints a byte count in conversation tables (`format_size` with SI prefixes:
/// exact below 10 000, then truncated kB, MB, GB).
fn tshark_size(n: u64) -> String {
    if n / 1_000_000_000 / 10 > 0 {
        format!("{} GB", n / 1_000_000_000)
    } else if n / 1_000_000 / 10 > 0 {
        format!("{} MB", n / 1_000_000)
    } else if n / 1000 / 10 > 0 {
        format!("{} kB", n / 1000)
    } else {
        format!("{n} bytes")
    }
}

/// One row of `tshark -q -z conv,PROTO`: A, B, then frames/bytes B→A ("<-") and A→B ("->").
#[derive(Debug)]
struct Conversation {
    a: String,
    b: String,
    frames_to_a: u64,
    bytes_to_a: String,
    frames_to_b: u64,
    bytes_to_b: String,
}

/// `tshark -q -z conv,tcp -z conv,udp` in one run: the rows of each table.
fn tshark_conversations(file: &Path) -> Result<HashMap<&'static str, Vec<Conversation>>> {
    let text = tshark(&[
        "-n",
        "-q",
        "-r",
        file.to_str().unwrap(),
        "-z",
        "conv,tcp",
        "-z",
        "conv,udp",
    ])?;
    let mut tables: HashMap<&'static str, Vec<Conversation>> = HashMap::new();
    let mut current = None;
    for line in text.lines() {
        if line.starts_with("TCP Conversations") {
            current = Some("tcp");
        } else if line.starts_with("UDP Conversations") {
            current = Some("udp");
        }
        if !line.contains("<->") {
            continue;
        }
        let proto = current.context("conversation row before a table title")?;
        let t: Vec<&str> = line.split_whitespace().collect();
        ensure!(t.len() >= 12, "unexpected conv line: {line}");
        tables.entry(proto).or_default().push(Conversation {
            a: t[0].to_string(),
            b: t[2].to_string(),
            frames_to_a: t[3].parse()?,
            bytes_to_a: format!("{} {}", t[4], t[5]),
            frames_to_b: t[6].parse()?,
            bytes_to_b: format!("{} {}", t[7], t[8]),
        });
    }
    Ok(tables)
}

/// An unordered endpoint pair as tshark writes endpoints (`ip:port`).
fn pair_key(x: String, y: String) -> (String, String) {
    if x <= y { (x, y) } else { (y, x) }
}

fn record_key(r: &FlowRecord) -> (String, String) {
    pair_key(r.initiator.label(), r.responder.label())
}

/// Per TCP stream, from tshark's per-packet fields.
#[derive(Debug, Default)]
struct Stream {
    key: (String, String),
    frames: u64,
    bytes: u64,
    initial_rtt_ns: Option<u64>,
    retransmissions: u64,
    out_of_order: u64,
    zero_window: u64,
}

fn seconds_to_ns(text: &str) -> Result<u64> {
    let (s, frac) = text.split_once('.').unwrap_or((text, "0"));
    let frac = format!("{frac:0<9}");
    Ok(s.parse::<u64>()? * 1_000_000_000 + frac[..9].parse::<u64>()?)
}

/// Per TCP stream, from one tshark pass over the packets (flag fields print `1` when set).
fn tshark_streams(file: &Path) -> Result<HashMap<u32, Stream>> {
    let mut streams: HashMap<u32, Stream> = HashMap::new();
    let text = tshark(&[
        "-n",
        "-r",
        file.to_str().unwrap(),
        "-Y",
        "tcp",
        "-T",
        "fields",
        "-E",
        "separator=|",
        "-e",
        "tcp.stream",
        "-e",
        "ip.src",
        "-e",
        "tcp.srcport",
        "-e",
        "ip.dst",
        "-e",
        "tcp.dstport",
        "-e",
        "frame.len",
        "-e",
        "tcp.analysis.initial_rtt",
        "-e",
        "tcp.analysis.retransmission",
        "-e",
        "tcp.analysis.out_of_order",
        "-e",
        "tcp.analysis.zero_window",
    ])?;
    for line in text.lines() {
        let t: Vec<&str> = line.split('|').collect();
        ensure!(t.len() == 10, "unexpected tshark line: {line}");
        let s = streams.entry(t[0].parse()?).or_default();
        s.key = pair_key(format!("{}:{}", t[1], t[2]), format!("{}:{}", t[3], t[4]));
        s.frames += 1;
        s.bytes += t[5].parse::<u64>()?;
        if s.initial_rtt_ns.is_none() && !t[6].is_empty() {
            s.initial_rtt_ns = Some(seconds_to_ns(t[6])?);
        }
        s.retransmissions += u64::from(!t[7].is_empty());
        s.out_of_order += u64::from(!t[8].is_empty());
        s.zero_window += u64::from(!t[9].is_empty());
    }
    Ok(streams)
}

/// Merges the active-timeout slices of a flow (none with the default config) and keys the
/// records by endpoint pair; fails on two flows with one pair (the tests never reuse ports).
fn by_pair(
    records: &[FlowRecord],
    protocol: Protocol,
) -> Result<HashMap<(String, String), &FlowRecord>> {
    let mut map = HashMap::new();
    for r in records.iter().filter(|r| r.protocol == protocol) {
        if map.insert(record_key(r), r).is_some() {
            bail!("two {protocol} flows for {:?}", record_key(r));
        }
    }
    Ok(map)
}

/// What a comparison covered: conversations compared and tshark's flag totals.
#[derive(Debug, Default)]
struct Compared {
    tcp: usize,
    udp: usize,
    initial_rtts: usize,
    retransmissions: u64,
    out_of_order: u64,
    zero_window: u64,
}

/// Checks the records of a pcap against tshark.
fn compare_with_tshark(file: &Path, records: &[FlowRecord]) -> Result<Compared> {
    let tcp_flows = by_pair(records, Protocol::Tcp)?;
    let udp_flows = by_pair(records, Protocol::Udp)?;
    let mut tables = tshark_conversations(file)?;
    for (proto, flows) in [("tcp", &tcp_flows), ("udp", &udp_flows)] {
        let convs = tables.remove(proto).unwrap_or_default();
        assert_eq!(
            convs.len(),
            flows.len(),
            "{proto}: tshark counts {} conversations, the flow table {}",
            convs.len(),
            flows.len()
        );
        for c in &convs {
            let r = flows
                .get(&pair_key(c.a.clone(), c.b.clone()))
                .with_context(|| format!("{proto} conversation {} <-> {} has no flow", c.a, c.b))?;
            let (to_b, to_a) = if r.initiator.label() == c.a {
                (r.fwd, r.rev)
            } else {
                (r.rev, r.fwd)
            };
            assert_eq!(
                (c.frames_to_b, c.frames_to_a),
                (to_b.packets, to_a.packets),
                "{proto} {} <-> {}: frames",
                c.a,
                c.b
            );
            assert_eq!(
                (c.bytes_to_b.as_str(), c.bytes_to_a.as_str()),
                (
                    tshark_size(to_b.bytes).as_str(),
                    tshark_size(to_a.bytes).as_str()
                ),
                "{proto} {} <-> {}: bytes",
                c.a,
                c.b
            );
        }
    }
    let streams = tshark_streams(file)?;
    assert_eq!(
        streams.len(),
        tcp_flows.len(),
        "one flow per tshark TCP stream"
    );
    let mut compared = Compared {
        tcp: tcp_flows.len(),
        udp: udp_flows.len(),
        ..Compared::default()
    };
    for (id, s) in &streams {
        compared.retransmissions += s.retransmissions;
        compared.out_of_order += s.out_of_order;
        compared.zero_window += s.zero_window;
        let r = tcp_flows
            .get(&s.key)
            .with_context(|| format!("tcp stream {id} {:?} has no flow", s.key))?;
        let t = r.tcp.expect("tcp record");
        assert_eq!(s.frames, r.packets(), "stream {id}: frames");
        assert_eq!(s.bytes, r.bytes(), "stream {id}: exact bytes");
        match (t.handshake, s.initial_rtt_ns) {
            (Some(h), Some(irtt)) => {
                assert_eq!(
                    h.rtt.as_nanos() as u64,
                    irtt,
                    "stream {id} {:?}: handshake RTT vs tcp.analysis.initial_rtt",
                    s.key
                );
                compared.initial_rtts += 1;
            }
            (Some(h), None) => panic!("stream {id}: handshake {h:?} but tshark has no iRTT"),
            // tshark's iRTT of a refused connection is SYN → RST (the RST carries ACK).
            (None, Some(_)) => assert_eq!(t.outcome, TcpOutcome::Refused, "stream {id}"),
            (None, None) => {}
        }
        assert_eq!(
            u64::from(t.fwd.retransmissions + t.rev.retransmissions),
            s.retransmissions,
            "stream {id} {:?}: retransmissions",
            s.key
        );
        assert_eq!(
            u64::from(t.fwd.out_of_order + t.rev.out_of_order),
            s.out_of_order,
            "stream {id}: out of order"
        );
        assert_eq!(
            u64::from(t.fwd.zero_window + t.rev.zero_window),
            s.zero_window,
            "stream {id}: zero window"
        );
    }
    Ok(compared)
}

// ---------------------------------------------------------------------------------------
// A large generated trace
// ---------------------------------------------------------------------------------------

/// A tiny deterministic generator (xorshift), so the trace is the same on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

struct Trace {
    packets: Vec<(Duration, Vec<u8>)>,
}

/// One TCP connection's packets, from the client's point of view.
struct Conn {
    client: (Ipv4Addr, u16),
    server: (Ipv4Addr, u16),
}

impl Conn {
    #[allow(clippy::too_many_arguments)]
    fn seg(
        &self,
        trace: &mut Trace,
        at: Duration,
        from_client: bool,
        seq: u32,
        ack: u32,
        flags: u8,
        win: u16,
        len: usize,
    ) {
        let options = if flags & SYN != 0 {
            syn_options(1, 0)
        } else {
            Vec::new()
        };
        let payload = vec![0x5a; len];
        let ((sip, sport), (dip, dport), (smac, dmac)) = if from_client {
            (self.client, self.server, (MAC_A, MAC_B))
        } else {
            (self.server, self.client, (MAC_B, MAC_A))
        };
        let segment = tcp(sport, dport, seq, ack, flags, win, &options, &payload);
        trace
            .packets
            .push((at, ether(dmac, smac, 0x0800, &ipv4(sip, dip, 6, &segment))));
    }
}

fn us(n: u64) -> Duration {
    Duration::from_micros(n)
}

/// About `flows` conversations: TCP connections that complete (some after a retried SYN),
/// exchange data with lost-and-fast-retransmitted, late-retransmitted and reordered
/// segments, zero windows and keep-alives, then close, reset or stay open; refused and
/// unanswered connections; answered and unanswered UDP.
fn generate(flows: u32, seed: u64) -> Vec<OwnedPacket> {
    let mut rng = Rng(seed);
    let mut trace = Trace {
        packets: Vec::new(),
    };
    let base = Duration::from_secs(1_700_000_000);
    let servers = [
        (Ipv4Addr::new(10, 2, 0, 1), 80),
        (Ipv4Addr::new(10, 2, 0, 2), 443),
        (Ipv4Addr::new(10, 2, 0, 3), 5432),
    ];
    for i in 0..flows {
        let start = base + us(u64::from(i) * 1500 + rng.below(1000));
        let client = (
            Ipv4Addr::new(10, 1, (i / 250) as u8, (i % 250) as u8 + 1),
            20_000 + (i % 40_000) as u16,
        );
        let kind = i % 10;
        if kind >= 8 {
            let server = (Ipv4Addr::new(10, 2, 0, 53), 53);
            let query = udp(client.1, server.1, &vec![1; 20 + rng.below(40) as usize]);
            trace.packets.push((
                start,
                ether(MAC_B, MAC_A, 0x0800, &ipv4(client.0, server.0, 17, &query)),
            ));
            if rng.chance(80) {
                let answer = udp(server.1, client.1, &vec![2; 60 + rng.below(200) as usize]);
                trace.packets.push((
                    start + us(100 + rng.below(900)),
                    ether(MAC_A, MAC_B, 0x0800, &ipv4(server.0, client.0, 17, &answer)),
                ));
            }
            continue;
        }
        let server = servers[rng.below(3) as usize];
        let c = Conn { client, server };
        let cseq = rng.next() as u32;
        let sseq = rng.next() as u32;
        let mut t = start;
        c.seg(&mut trace, t, true, cseq, 0, SYN, 64240, 0);
        match kind {
            6 => {
                t += us(20 + rng.below(200));
                c.seg(
                    &mut trace,
                    t,
                    false,
                    0,
                    cseq.wrapping_add(1),
                    RST | ACK,
                    0,
                    0,
                );
                continue;
            }
            7 => {
                c.seg(&mut trace, t + us(1_000_000), true, cseq, 0, SYN, 64240, 0);
                c.seg(&mut trace, t + us(3_000_000), true, cseq, 0, SYN, 64240, 0);
                continue;
            }
            _ => {}
        }
        if rng.chance(10) {
            t += us(1_000_000);
            c.seg(&mut trace, t, true, cseq, 0, SYN, 64240, 0);
        }
        let (c1, s1) = (cseq.wrapping_add(1), sseq.wrapping_add(1));
        t += us(30 + rng.below(3000));
        c.seg(&mut trace, t, false, sseq, c1, SYN | ACK, 65160, 0);
        t += us(5 + rng.below(300));
        c.seg(&mut trace, t, true, c1, s1, ACK, 502, 0);
        // The request.
        let q = 50 + rng.below(1400) as u32;
        t += us(50);
        c.seg(&mut trace, t, true, c1, s1, PSH | ACK, 502, q as usize);
        let cn = c1.wrapping_add(q);
        // The response: m segments; maybe one lost before the capture point and
        // fast-retransmitted after three duplicate ACKs.
        let m = 2 + rng.below(10) as u32;
        let lost = rng.chance(15).then(|| rng.below(u64::from(m - 1)) as u32);
        let mss = 1448u32;
        let mut acked = s1;
        t += us(200 + rng.below(2000));
        for j in 0..m {
            let seq = s1.wrapping_add(j * mss);
            t += us(10 + rng.below(40));
            if Some(j) != lost {
                c.seg(&mut trace, t, false, seq, cn, ACK, 509, mss as usize);
            }
            if lost.is_some_and(|k| j >= k) {
                // Everything after the hole is acknowledged up to the hole: duplicate ACKs.
                if j > lost.unwrap() {
                    t += us(5);
                    c.seg(&mut trace, t, true, cn, acked, ACK, 502, 0);
                }
            } else {
                acked = seq.wrapping_add(mss);
                if j % 2 == 1 {
                    t += us(5);
                    c.seg(&mut trace, t, true, cn, acked, ACK, 502, 0);
                }
            }
        }
        let end = s1.wrapping_add(m * mss);
        if let Some(k) = lost {
            // Two more duplicate ACKs for sure, then the fast retransmission.
            for _ in 0..2 {
                t += us(5);
                c.seg(&mut trace, t, true, cn, acked, ACK, 502, 0);
            }
            t += us(100 + rng.below(500));
            c.seg(
                &mut trace,
                t,
                false,
                s1.wrapping_add(k * mss),
                cn,
                ACK,
                509,
                mss as usize,
            );
            t += us(20);
            c.seg(&mut trace, t, true, cn, end, ACK, 502, 0);
        } else {
            t += us(20);
            c.seg(&mut trace, t, true, cn, end, ACK, 502, 0);
        }
        if rng.chance(15) {
            // A late (RTO) retransmission of the first response segment: already ACKed,
            // so Wireshark calls it spurious — still a retransmission.
            t += us(200_000 + rng.below(100_000));
            c.seg(&mut trace, t, false, s1, cn, ACK, 509, mss as usize);
            t += us(20);
            c.seg(&mut trace, t, true, cn, end, ACK, 502, 0);
        }
        let mut s_final = end;
        if rng.chance(10) {
            // Two segments sent out of order within the RTT: the second one arrives first.
            let b = end.wrapping_add(100);
            t += us(1000);
            c.seg(&mut trace, t, false, b, cn, ACK, 509, 100);
            t += us(1);
            c.seg(&mut trace, t, false, end, cn, ACK, 509, 100);
            s_final = end.wrapping_add(200);
            t += us(20);
            c.seg(&mut trace, t, true, cn, s_final, ACK, 502, 0);
        }
        if rng.chance(5) {
            // The client's buffer fills: a zero window, then a window update.
            t += us(500);
            c.seg(&mut trace, t, true, cn, s_final, ACK, 0, 0);
            t += us(5000);
            c.seg(&mut trace, t, true, cn, s_final, ACK, 502, 0);
        }
        if rng.chance(5) {
            // A keep-alive and its ACK.
            t += us(2_000_000);
            c.seg(
                &mut trace,
                t,
                true,
                cn.wrapping_sub(1),
                s_final,
                ACK,
                502,
                0,
            );
            t += us(30);
            c.seg(&mut trace, t, false, s_final, cn, ACK, 509, 0);
        }
        match rng.below(10) {
            0..=6 => {
                t += us(100);
                c.seg(&mut trace, t, true, cn, s_final, FIN | ACK, 502, 0);
                t += us(30);
                c.seg(
                    &mut trace,
                    t,
                    false,
                    s_final,
                    cn.wrapping_add(1),
                    FIN | ACK,
                    509,
                    0,
                );
                t += us(10);
                c.seg(
                    &mut trace,
                    t,
                    true,
                    cn.wrapping_add(1),
                    s_final.wrapping_add(1),
                    ACK,
                    502,
                    0,
                );
            }
            7 | 8 => {
                t += us(100);
                c.seg(&mut trace, t, false, s_final, cn, RST | ACK, 0, 0);
            }
            _ => {}
        }
    }
    trace.packets.sort_by_key(|p| p.0);
    trace
        .packets
        .into_iter()
        .map(|(timestamp, data)| OwnedPacket {
            timestamp,
            orig_len: data.len() as u32,
            data,
            interface: 0,
        })
        .collect()
}

#[test]
fn a_large_generated_trace_agrees_with_tshark() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("generated.pcap");
    let packets = generate(1500, 0x5eed_f10f);
    assert!(packets.len() > 15_000, "{} packets", packets.len());
    write_pcap(&file, LinkType::Ethernet, &packets)?;
    let (records, table) = flows_of_file(&file, FlowConfig::default())?;
    assert_eq!(table.stats().packets, packets.len() as u64);
    assert_eq!(table.stats().evicted, 0);
    let compared = compare_with_tshark(&file, &records)?;
    assert_eq!(
        (compared.tcp, compared.udp),
        (1200, 300),
        "every generated conversation compared"
    );
    // The comparison is not vacuous: tshark found every kind of event in this trace.
    assert!(compared.initial_rtts > 800, "{compared:?}");
    assert!(compared.retransmissions > 200, "{compared:?}");
    assert!(compared.out_of_order > 50, "{compared:?}");
    assert!(compared.zero_window > 20, "{compared:?}");

    // The generated mix shows up in the outcomes and the counters.
    let count = |o| {
        records
            .iter()
            .filter(|r| r.tcp.is_some_and(|t| t.outcome == o))
            .count()
    };
    assert_eq!(count(TcpOutcome::Refused), 150);
    assert_eq!(count(TcpOutcome::Unanswered), 150);
    assert!(count(TcpOutcome::Closed) > 500);
    assert!(count(TcpOutcome::Reset) > 100);
    assert!(count(TcpOutcome::Established) > 25);
    let retransmitted = records.iter().filter(|r| r.retransmissions() > 0).count();
    assert!(
        retransmitted > 250,
        "{retransmitted} flows with retransmissions"
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Real traffic between namespaces
// ---------------------------------------------------------------------------------------

/// The server side in namespace b: 8080 accepts and echoes a short reply, 8083 swallows a
/// bulk upload; 8081 has no listener (RST); nftables drops everything to 8082 and one in
/// four packets to 8083.
const SERVER: &str = r#"
import socket, threading
def serve(port, reply):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(('0.0.0.0', port)); s.listen(16)
    while True:
        c, _ = s.accept()
        def handle(c):
            while True:
                d = c.recv(65536)
                if not d: break
                if reply: c.sendall(b'ok'); 
            c.close()
        threading.Thread(target=handle, args=(c,), daemon=True).start()
threading.Thread(target=serve, args=(8083, False), daemon=True).start()
serve(8080, True)
"#;

const RULES: &str = "table inet snoopytest {
  chain input {
    type filter hook input priority 0; policy accept;
    tcp dport 8082 drop
    tcp dport 8083 numgen random mod 4 0 drop
  }
}";

/// The client side in namespace a: 3 good connections, 2 refused, 2 dropped (given up after
/// 1.5 s, after one SYN retry), one 200 KB upload through the lossy rule.
fn client(to: Ipv4Addr) -> String {
    format!(
        r#"
import socket, threading, time
def wait_up():
    for _ in range(100):
        try:
            socket.create_connection(('{to}', 8080), timeout=1).close(); return
        except OSError: time.sleep(0.05)
def good():
    c = socket.create_connection(('{to}', 8080), timeout=5)
    c.sendall(b'hello'); c.recv(10); c.close()
def refused():
    try: socket.create_connection(('{to}', 8081), timeout=5)
    except ConnectionRefusedError: pass
def dropped():
    try: socket.create_connection(('{to}', 8082), timeout=1.5)
    except OSError: pass
def bulk():
    c = socket.create_connection(('{to}', 8083), timeout=10)
    for _ in range(100): c.sendall(b'x' * 2000)
    c.shutdown(socket.SHUT_WR); c.recv(10); c.close()
time.sleep(0.2)
threads = [threading.Thread(target=f) for f in [good, good, good, refused, refused, dropped, dropped, bulk]]
for t in threads: t.start(); time.sleep(0.02)
for t in threads: t.join()
time.sleep(0.3)
"#
    )
}

#[test]
fn real_connections_accepted_refused_dropped_and_lossy() -> Result<()> {
    use snoopy_capture::afpacket::CaptureBuilder;
    use snoopy_netns::{Namespace, NamespaceKind};

    let pair = snoopy_testkit::NetnsPair::new()?;
    snoopy_testkit::require_tool("python3")?;
    pair.b.nft(RULES)?;
    let _server = pair.b.spawn(&["python3", "-c", SERVER])?;
    // Wait for the server from inside a (the connection is not captured: capture starts later).
    pair.a.run(&[
        "python3",
        "-c",
        &format!(
            "import socket,time\nfor _ in range(100):\n  try:\n    socket.create_connection(('{}',8080),timeout=1).close(); break\n  except OSError: time.sleep(0.05)",
            pair.b.ip
        ),
    ])?;

    let ns = Namespace::from_path(pair.a.netns_path(), NamespaceKind::Net)?;
    let mut capture = CaptureBuilder::new()
        .interface(&pair.a.interface)
        .namespace(ns)
        .block_timeout(Duration::from_millis(20))
        .open()?;
    let stop = capture.stop_handle();
    let link_type = capture.link_type();
    let reader = std::thread::spawn(move || -> Result<Vec<OwnedPacket>> {
        let mut packets = Vec::new();
        while let Some(p) = capture.next_packet()? {
            packets.push(p.to_owned());
        }
        Ok(packets)
    });
    let started = Instant::now();
    pair.a.run(&["python3", "-c", &client(pair.b.ip)])?;
    stop.stop();
    let packets = reader.join().expect("reader thread")?;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "traffic took {:?}",
        started.elapsed()
    );

    // Live path: the table fed directly from the capture.
    let mut table = FlowTable::new(FlowConfig::default());
    let mut records = Vec::new();
    for p in &packets {
        table.observe(link_type, &p.as_packet());
        records.extend(table.drain_finished());
    }
    table.finish();
    records.extend(table.drain_finished());
    let tcp_to = |port: u16| -> Vec<&FlowRecord> {
        records
            .iter()
            .filter(|r| r.protocol == Protocol::Tcp && r.responder.port == port)
            .collect()
    };
    let outcomes = |port| {
        tcp_to(port)
            .iter()
            .map(|r| r.tcp.unwrap().outcome)
            .collect::<Vec<_>>()
    };
    assert_eq!(outcomes(8080), vec![TcpOutcome::Closed; 3], "{records:#?}");
    assert!(
        tcp_to(8080)
            .iter()
            .all(|r| r.tcp.unwrap().handshake.is_some())
    );
    assert_eq!(outcomes(8081), vec![TcpOutcome::Refused; 2]);
    assert_eq!(outcomes(8082), vec![TcpOutcome::Unanswered; 2]);
    assert!(
        tcp_to(8082)
            .iter()
            .all(|r| r.tcp.unwrap().syns >= 2 && r.rev.packets == 0)
    );
    let bulk = tcp_to(8083);
    assert_eq!(bulk.len(), 1);
    let bulk_tcp = bulk[0].tcp.unwrap();
    assert!(
        bulk_tcp.fwd.retransmissions > 0,
        "random loss must cause counted retransmissions: {bulk_tcp:?}"
    );

    let mut aggregates = Aggregates::new(PodNames::new(), 1000);
    for r in &mut records {
        aggregates.add(r);
    }
    let dest = |port| {
        aggregates
            .destination(&Destination {
                protocol: Protocol::Tcp,
                ip: pair.b.ip.into(),
                port,
            })
            .cloned()
            .with_context(|| format!("no aggregate for port {port}"))
    };
    let ok = dest(8080)?;
    assert_eq!((ok.attempts, ok.successes), (3, 3));
    assert_eq!(ok.success_rate(), Some(1.0));
    assert_eq!(ok.rtt.count(), 3);
    let refused = dest(8081)?;
    assert_eq!(
        (
            refused.attempts,
            refused.successes,
            refused.failures.refused
        ),
        (2, 0, 2)
    );
    let dropped = dest(8082)?;
    assert_eq!(
        (
            dropped.attempts,
            dropped.successes,
            dropped.failures.unanswered
        ),
        (2, 0, 2)
    );

    // Offline path and the oracle: the same packets through a pcap file.
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("live.pcap");
    write_pcap(&file, link_type, &packets)?;
    let (offline, _) = flows_of_file(&file, FlowConfig::default())?;
    let summary = |rs: &[FlowRecord]| {
        let mut v: Vec<String> = rs
            .iter()
            .map(|r| serde_json::to_string(r).unwrap())
            .collect();
        v.sort();
        v
    };
    assert_eq!(
        summary(&offline),
        summary(&records),
        "live and file give the same records"
    );
    let compared = compare_with_tshark(&file, &offline)?;
    assert!(compared.retransmissions > 0, "{compared:?}");
    assert!(compared.initial_rtts >= 4, "{compared:?}");
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Memory bound
// ---------------------------------------------------------------------------------------

#[test]
fn a_flood_of_distinct_flows_stays_bounded() -> Result<()> {
    let max = 1000;
    let mut table = FlowTable::new(FlowConfig {
        max_flows: max,
        ..FlowConfig::default()
    });
    let base = Duration::from_secs(1_700_000_000);
    let mut records = 0u64;
    let flood = 200_000u32;
    for i in 0..flood {
        let src = Ipv4Addr::from(0x0a00_0000 | (i >> 8));
        let frame = ether(
            MAC_B,
            MAC_A,
            0x0800,
            &ipv4(
                src,
                Ipv4Addr::new(10, 9, 9, 9),
                17,
                &udp(1024 + (i & 0xff) as u16, 53, b"x"),
            ),
        );
        let packet = OwnedPacket {
            timestamp: base + Duration::from_micros(u64::from(i)),
            orig_len: frame.len() as u32,
            data: frame,
            interface: 0,
        };
        table.observe(LinkType::Ethernet, &packet.as_packet());
        assert!(table.len() <= max);
        records += table.drain_finished().count() as u64;
    }
    let stats = table.stats();
    assert_eq!(stats.flows, u64::from(flood));
    assert_eq!(stats.evicted, u64::from(flood) - max as u64);
    assert_eq!(records, stats.evicted, "every evicted flow is reported");
    table.finish();
    let rest: Vec<FlowRecord> = table.drain_finished().collect();
    assert_eq!(rest.len(), max);
    assert!(rest.iter().all(|r| r.reason == EndReason::End));
    Ok(())
}

#[test]
fn pcapng_and_pcap_files_give_the_same_records() -> Result<()> {
    use snoopy_capture::sink::PcapNgSink;
    let dir = tempfile::tempdir()?;
    let packets = generate(200, 7);
    let pcap = dir.path().join("t.pcap");
    write_pcap(&pcap, LinkType::Ethernet, &packets)?;
    let pcapng = dir.path().join("t.pcapng");
    let mut sink = PcapNgSink::new(std::fs::File::create(&pcapng)?, "t.pcapng")?;
    let id = sink.add_interface(&Interface::new("eth0", LinkType::Ethernet, 262_144))?;
    for p in &packets {
        sink.write_packet(id, &p.as_packet())?;
    }
    sink.flush()?;
    drop(sink);
    let json = |records: Vec<FlowRecord>| -> Vec<String> {
        records
            .iter()
            .map(|r| serde_json::to_string(r).unwrap())
            .collect()
    };
    let (from_pcap, _) = flows_of_file(&pcap, FlowConfig::default())?;
    let (from_pcapng, _) = flows_of_file(&pcapng, FlowConfig::default())?;
    assert_eq!(from_pcap.len(), 200);
    assert_eq!(json(from_pcap), json(from_pcapng));
    Ok(())
}
