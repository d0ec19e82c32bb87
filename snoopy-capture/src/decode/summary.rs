//! tcpdump-style one-line summaries (`tcpdump -n` output).
//!
//! What matches tcpdump 4.99 exactly (checked by the tests against the real binary):
//! ICMP echo, TCP (flags, relative or absolute seq/ack, window, the common options, payload
//! length, a header under 20 bytes), UDP, the application summaries tcpdump prints by port
//! (HTTP on 80 and 8080, DNS on UDP and TCP 53, mDNS on 5353), IGMP, ARP request/reply,
//! ICMPv6 echo and neighbour discovery (with the `HBH` of a hop-by-hop header), ICMPv6 port
//! unreachable, IPv6 TCP/UDP, the `-e` link header of Ethernet and VLAN frames, the payload
//! dumps of `-x`, `-xx`, `-X`, `-XX`, `-A`, `-AA` ([`Payload`]) and the times of `-t` to
//! `-ttttt` ([`TimeFormat`]). Other messages (ICMP errors, SCTP, unknown protocols, cooked
//! headers) are summarised in the same spirit, not byte for byte; the application printers
//! tcpdump has for other ports (SSH, SMTP, FTP, Redis, BGP, SMB, RTSP…) are not reproduced.
//!
//! VLAN tags, like in tcpdump, are only shown with the link header (`-e`):
//! `... ethertype 802.1Q (0x8100), length 102: vlan 100, p 0, ethertype IPv4 (0x0800), 10.0.0.1 > ...`.
//! Cooked v1 headers (`-i any`) show nothing without `-e`, as in tcpdump. Cooked v2 headers
//! show the interface index and direction, `ifindex 3 In IP ...`, where tcpdump shows the
//! name that index has on the machine reading the file (often not the capturing one).

use std::collections::HashMap;
use std::fmt::{self, Write};
use std::net::IpAddr;

use super::time::{DateTime, Elapsed, EpochSeconds, TimeFormat, TimeOfDay, TimestampPrecision};
use super::verbose::{self, Checksum};
use super::{
    Arp, Decoded, Icmp, Icmpv6, Ipv4, Ipv6, Link, Network, ProblemKind, Tcp, TcpFlags, TcpOption,
    Transport, Vlans, be16, dns, igmp, text,
};
use crate::Packet;
use text::TcpApplication;

/// How summaries look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SummaryOptions {
    /// Digits of the timestamp (tcpdump's default is microseconds).
    pub precision: TimestampPrecision,
    /// Which time starts each line (tcpdump's `-t`, `-tt`, `-ttt`, `-tttt`, `-ttttt`).
    pub time: TimeFormat,
    /// Print the link-level header (tcpdump `-e`).
    pub link_header: bool,
    /// Print absolute TCP sequence numbers (tcpdump `-S`); by default they are relative to
    /// the first ones seen in each connection, as tcpdump does.
    pub absolute_seq: bool,
    /// The packet's bytes after the line (tcpdump's `-x`, `-X`, `-A`).
    pub payload: Payload,
    /// Dump the link-level header too (tcpdump's `-xx`, `-XX`, `-AA`); by default the dump
    /// starts at the network layer, as in tcpdump.
    pub payload_link: bool,
    /// tcpdump's `-v` (the count of `v`s; 0 is off). From 1 on, IPv4 and IPv6 packets with
    /// TCP, UDP or an ICMP / ICMPv6 echo show what `tcpdump -v` shows: the IP header fields
    /// (for IPv4 on a line of their own, the packet on a second, indented one), the
    /// checksums tcpdump checks (`cksum 0x1234 (correct)` or `(incorrect -> 0x5678)` for
    /// TCP, `[udp sum ok]` and `[icmp6 sum ok]` for IPv6, a wrong ICMP checksum), DNS
    /// answers' owner names and HTTP's text lines. Other packets keep their line without
    /// `-v`. More than 1 shows what 1 shows (not the sections tcpdump's `-vv` adds to DNS).
    pub verbose: u8,
}

/// How a packet's bytes are shown after its line, in tcpdump's layouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Payload {
    /// Nothing (tcpdump's default).
    #[default]
    None,
    /// Hex, 16 bytes a line: `\t0x0000:  4500 0054 ...` (`-x`).
    Hex,
    /// Hex and ASCII side by side (`-X`).
    HexAscii,
    /// The bytes as ASCII, non-printable ones as `.` (`-A`).
    Ascii,
}

impl Default for SummaryOptions {
    fn default() -> Self {
        SummaryOptions {
            precision: TimestampPrecision::Micro,
            time: TimeFormat::Clock,
            link_header: false,
            absolute_seq: false,
            payload: Payload::None,
            payload_link: false,
            verbose: 0,
        }
    }
}

/// Connections whose initial sequence numbers are remembered; when full, the table is
/// cleared (later segments of old connections then show absolute numbers once, as for a
/// connection tcpdump joins in the middle).
const MAX_CONNECTIONS: usize = 1 << 16;

/// (lower endpoint address, other address, lower port, other port), tcpdump's ordering.
type ConnKey = ([u8; 16], [u8; 16], u16, u16);

/// Writes tcpdump-style lines; keeps the per-connection state tcpdump keeps (initial
/// sequence numbers for relative seq/ack).
#[derive(Debug, Default)]
pub struct Summarizer {
    options: SummaryOptions,
    /// Initial (seq, ack) of each connection, in tcpdump's "forward" direction.
    seqs: HashMap<ConnKey, (u32, u32)>,
    /// The time deltas are measured from (`-ttt`: the previous packet, `-ttttt`: the first),
    /// already cut to the printed precision as tcpdump's `struct timeval` is.
    reference: Option<std::time::Duration>,
    /// The transport checksum of the packet being written, when `-v` shows it.
    check: Option<Checksum>,
    /// Whether the packet being written gets `-v` lines (its IP header was printed);
    /// the application above then prints at the same verbosity, other packets at none.
    verbose_packet: bool,
}

impl Summarizer {
    /// A summarizer with these options.
    pub fn new(options: SummaryOptions) -> Self {
        Summarizer {
            options,
            seqs: HashMap::new(),
            reference: None,
            check: None,
            verbose_packet: false,
        }
    }

    /// The options.
    pub fn options(&self) -> SummaryOptions {
        self.options
    }

    /// Appends the line for `packet` (time, summary, then the payload dump if asked for;
    /// no final newline) to `out`.
    ///
    /// `decoded` must be `decode(link_type, packet.data)`.
    pub fn write_line(&mut self, out: &mut String, packet: &Packet<'_>, decoded: &Decoded<'_>) {
        self.time(out, packet.timestamp);
        // Writing to a String cannot fail.
        let _ = self.summary(out, packet.orig_len, packet.data, decoded);
        self.check = None;
        self.verbose_packet = false;
        let start = if self.options.payload_link {
            0
        } else {
            link_header_len(decoded)
        };
        // As tcpdump: nothing is dumped when nothing follows the link-level header.
        if let Some(bytes) = packet.data.get(start..).filter(|b| !b.is_empty()) {
            match self.options.payload {
                Payload::None => {}
                Payload::Hex => hex_dump(out, bytes),
                Payload::HexAscii => hex_ascii_dump(out, bytes),
                Payload::Ascii => ascii_dump(out, bytes),
            }
        }
    }

    /// The time at the start of a line, as tcpdump's `ts_print`.
    fn time(&mut self, out: &mut String, timestamp: std::time::Duration) {
        let precision = self.options.precision;
        let _ = match self.options.time {
            TimeFormat::None => Ok(()),
            TimeFormat::Clock => write!(out, "{} ", TimeOfDay(timestamp, precision)),
            TimeFormat::Epoch => write!(out, "{} ", EpochSeconds(timestamp, precision)),
            TimeFormat::Date => write!(out, "{} ", DateTime(timestamp, precision)),
            TimeFormat::SincePrevious | TimeFormat::SinceFirst => {
                // tcpdump subtracts timevals: both ends cut to the precision first.
                let now = match precision {
                    TimestampPrecision::Micro => std::time::Duration::new(
                        timestamp.as_secs(),
                        timestamp.subsec_micros() * 1000,
                    ),
                    TimestampPrecision::Nano => timestamp,
                };
                let reference = *self.reference.get_or_insert(now);
                if self.options.time == TimeFormat::SincePrevious {
                    self.reference = Some(now);
                }
                match now.checked_sub(reference) {
                    Some(delta) => write!(out, " {} ", Elapsed(delta, precision)),
                    None => write!(out, "-{} ", Elapsed(reference - now, precision)),
                }
            }
        };
    }

    fn summary(
        &mut self,
        out: &mut String,
        orig_len: u32,
        data: &[u8],
        d: &Decoded<'_>,
    ) -> fmt::Result {
        let e = self.options.link_header;
        let mut link_len = 0;
        match d.link {
            Link::Ethernet {
                src,
                dst,
                ethertype,
            } => {
                link_len = 14;
                if e {
                    write!(out, "{src} > {dst}, ")?;
                    ethertype_text(out, ethertype)?;
                    write!(out, ", length {orig_len}: ")?;
                    vlans(out, &d.vlans)?;
                }
                link_len += 4 * d.vlans.iter().count() as u32;
                if ethertype <= 1500 {
                    return write!(out, "802.3, length {ethertype}: LLC");
                }
            }
            Link::LinuxSll {
                packet_type,
                addr,
                protocol,
                ..
            } => {
                link_len = 16;
                // tcpdump shows nothing of a v1 cooked header without -e.
                if e {
                    write!(out, "{} {addr} ", direction(packet_type))?;
                    ethertype_text(out, protocol)?;
                    write!(out, ", length {orig_len}: ")?;
                }
            }
            Link::LinuxSll2 {
                ifindex,
                packet_type,
                addr,
                protocol,
                ..
            } => {
                link_len = 20;
                write!(
                    out,
                    "ifindex {ifindex} {} ",
                    direction(u16::from(packet_type))
                )?;
                if e {
                    write!(out, "{addr} ")?;
                    ethertype_text(out, protocol)?;
                    write!(out, ", length {orig_len}: ")?;
                }
            }
            Link::RawIp => {}
            // A link header too short to decode: only the problem marker follows.
            Link::Unsupported { .. } if d.problem.is_some() => {}
            Link::Unsupported { link_type } => {
                return write!(out, "link type {link_type} not decoded, length {orig_len}");
            }
        }
        let prefix = !e || matches!(d.link, Link::RawIp);
        match &d.network {
            None => {}
            Some(Network::Ipv4(ip)) => {
                if prefix {
                    out.push_str("IP ");
                }
                if self.options.verbose > 0 {
                    self.verbose_ipv4(out, data, d, ip)?;
                }
                self.ip(out, (IpAddr::V4(ip.src), IpAddr::V4(ip.dst)), data, d)?;
            }
            Some(Network::Ipv6(ip)) => {
                if prefix {
                    out.push_str("IP6 ");
                }
                // tcpdump names a lone hop-by-hop header (MLD reports carry one) after the
                // addresses, then prints the upper layer as usual: `a > b: HBH ICMP6, …`,
                // `a > b: HBH a.1 > b.2: UDP, …`.
                let hbh_only = ip.hop_by_hop
                    && !ip.destination_options
                    && !ip.routing
                    && ip.fragment.is_none();
                if self.options.verbose > 0 {
                    self.verbose_ipv6(out, data, d, ip)?;
                }
                if hbh_only && d.transport.is_some() {
                    write!(out, "{} > {}: HBH ", ip.src, ip.dst)?;
                    if matches!(
                        d.transport,
                        Some(Transport::Icmpv6(_)) | Some(Transport::Other { .. })
                    ) {
                        return self.upper(out, d);
                    }
                }
                self.ip(out, (IpAddr::V6(ip.src), IpAddr::V6(ip.dst)), data, d)?;
            }
            Some(Network::Arp(arp)) => {
                if prefix {
                    out.push_str("ARP, ");
                }
                // tcpdump -v names the address formats first; only Ethernet/IPv4 ARP
                // (decoded with its addresses, so 6- and 4-byte ones) is named here, other
                // forms keep their non-verbose line.
                if self.options.verbose > 0
                    && arp.hardware_type == 1
                    && arp.protocol_type == 0x0800
                    && arp.sender_mac.is_some()
                {
                    out.push_str("Ethernet (len 6), IPv4 (len 4), ");
                }
                let wire = orig_len.saturating_sub(link_len);
                arp_text(out, arp, wire)?;
            }
            Some(Network::Other { ethertype }) if !e => {
                ethertype_text(out, *ethertype)?;
                write!(out, ", length {}", orig_len.saturating_sub(link_len))?;
            }
            Some(Network::Other { .. }) => {}
        }
        if let Some(p) = d.problem.filter(|_| short_tcp_header(d, data).is_none()) {
            if !out.ends_with(' ') {
                out.push(' ');
            }
            match p.kind {
                ProblemKind::Truncated => write!(out, "[|{}]", p.layer)?,
                ProblemKind::Invalid => write!(out, "[bad {}: {}]", p.layer, p.reason)?,
            }
        }
        Ok(())
    }

    fn ip(
        &mut self,
        out: &mut String,
        (src, dst): (IpAddr, IpAddr),
        data: &[u8],
        d: &Decoded<'_>,
    ) -> fmt::Result {
        let Some(transport) = &d.transport else {
            if let Some((ports, wire, header_len)) = short_tcp_header(d, data) {
                return write!(
                    out,
                    "{src}.{} > {dst}.{}:  tcp {} [bad hdr length {header_len} - too short, < 20]",
                    ports.0,
                    ports.1,
                    wire.saturating_sub(header_len)
                );
            }
            return write!(out, "{src} > {dst}:");
        };
        match transport {
            Transport::Tcp(t) => {
                write!(out, "{src}.{} > {dst}.{}: ", t.src_port, t.dst_port)?;
                self.tcp(out, src, dst, t)?;
                if t.payload_len > 0 {
                    self.tcp_application(out, t, d.payload);
                }
                Ok(())
            }
            Transport::Udp(u) => {
                write!(out, "{src}.{} > {dst}.{}: ", u.src_port, u.dst_port)?;
                // Set for IPv6 only: tcpdump -v checks UDP over IPv4 from -vv on.
                match self.check {
                    Some(c) if c.result == 0 => out.push_str("[udp sum ok] "),
                    Some(c) => write!(
                        out,
                        "[bad udp cksum 0x{:04x} -> 0x{:04x}!] ",
                        c.stored,
                        c.should_be()
                    )?,
                    None => {}
                }
                // tcpdump's udp_print tests port 53 before 5353.
                let either = |port| u.src_port == port || u.dst_port == port;
                let mdns = match (either(53), either(5353)) {
                    (true, _) => Some(false),
                    (false, true) => Some(true),
                    _ => None,
                };
                match mdns {
                    Some(mdns) => dns::udp(out, d.payload, u.payload_len, self.dns_style(mdns)),
                    None => write!(out, "UDP, length {}", u.payload_len)?,
                }
                Ok(())
            }
            Transport::Icmp(i) => {
                write!(out, "{src} > {dst}: ICMP ")?;
                icmp_text(out, i)?;
                write!(out, ", length {}", i.length)?;
                match self.check {
                    Some(c) if c.result != 0 => {
                        write!(
                            out,
                            " (wrong icmp cksum {:x} (->{:x})!)",
                            c.stored,
                            c.should_be()
                        )
                    }
                    _ => Ok(()),
                }
            }
            Transport::Icmpv6(_) => {
                write!(out, "{src} > {dst}: ")?;
                self.upper(out, d)
            }
            Transport::Sctp(s) => {
                write!(
                    out,
                    "{src}.{} > {dst}.{}: sctp ({})",
                    s.src_port, s.dst_port, s.chunks
                )?;
                if let Some(c) = s.first_chunk {
                    write!(out, " [{}]", sctp_chunk(c))?;
                }
                Ok(())
            }
            Transport::Other { .. } => {
                write!(out, "{src} > {dst}: ")?;
                self.upper(out, d)
            }
        }
    }

    /// `-v` for an IPv4 packet it is supported for: the header fields, then the transport
    /// checksum (TCP, ICMP) kept for the transport's text.
    fn verbose_ipv4(
        &mut self,
        out: &mut String,
        data: &[u8],
        d: &Decoded<'_>,
        ip: &Ipv4,
    ) -> fmt::Result {
        if !verbose::supported_ipv4(d, ip) {
            return Ok(());
        }
        let start = d.network_offset;
        let Some(header) = data.get(start..start + 20) else {
            return Ok(());
        };
        verbose::ipv4_header(out, header, ip)?;
        self.verbose_packet = true;
        let (protocol, stored) = match &d.transport {
            Some(Transport::Tcp(t)) => (6, t.checksum),
            Some(Transport::Icmp(i)) => (1, i.checksum),
            _ => return Ok(()),
        };
        // As tcpdump: checked only when the whole segment was captured.
        let end = start + usize::from(ip.total_len);
        if let Some(segment) = data.get(start + 20..end) {
            self.check = Some(verbose::ipv4_transport_checksum(
                header, segment, protocol, stored,
            ));
        }
        Ok(())
    }

    /// `-v` for an IPv6 packet it is supported for: the header fields, then the transport
    /// checksum kept for the transport's text.
    fn verbose_ipv6(
        &mut self,
        out: &mut String,
        data: &[u8],
        d: &Decoded<'_>,
        ip: &Ipv6,
    ) -> fmt::Result {
        if !verbose::supported_ipv6(d, ip) {
            return Ok(());
        }
        let start = d.network_offset;
        let Some(header) = data.get(start..start + 40) else {
            return Ok(());
        };
        verbose::ipv6_header(out, ip)?;
        self.verbose_packet = true;
        let stored = match &d.transport {
            Some(Transport::Tcp(t)) => t.checksum,
            Some(Transport::Udp(u)) => u.checksum,
            Some(Transport::Icmpv6(i)) => i.checksum,
            _ => return Ok(()),
        };
        // As tcpdump: checked only when the whole segment was captured.
        let end = start + 40 + usize::from(ip.payload_len);
        if let Some(segment) = data.get(start + 40..end) {
            self.check = Some(verbose::ipv6_transport_checksum(
                header,
                segment,
                ip.protocol,
                stored,
            ));
        }
        Ok(())
    }

    /// How DNS is printed at this verbosity.
    fn dns_style(&self, mdns: bool) -> dns::Style {
        dns::Style {
            mdns,
            verbose: if self.verbose_packet {
                self.options.verbose
            } else {
                0
            },
        }
    }

    /// What tcpdump prints after a segment's `length N` for the application its ports name
    /// (HTTP, DNS over TCP); `payload` is the segment's payload as captured.
    fn tcp_application(&self, out: &mut String, t: &Tcp<'_>, payload: &[u8]) {
        match text::tcp_application(t.src_port, t.dst_port) {
            TcpApplication::Http => {
                out.push_str(": ");
                text::http(out, payload, t.payload_len, self.verbose_packet);
            }
            TcpApplication::Dns => dns::tcp(out, payload, t.payload_len, self.dns_style(false)),
            TcpApplication::None | TcpApplication::Unsupported => {}
        }
    }

    /// The part after the addresses of a protocol without ports.
    fn upper(&mut self, out: &mut String, d: &Decoded<'_>) -> fmt::Result {
        match &d.transport {
            Some(Transport::Icmpv6(i)) => {
                // tcpdump -v: the checksum first, and no length after an echo.
                if let Some(c) = self.check {
                    if c.result == 0 {
                        out.push_str("[icmp6 sum ok] ");
                    } else {
                        write!(
                            out,
                            "[bad icmp6 cksum 0x{:04x} -> 0x{:04x}!] ",
                            c.stored,
                            c.should_be()
                        )?;
                    }
                    out.push_str("ICMP6, ");
                    return icmpv6_text(out, i);
                }
                out.push_str("ICMP6, ");
                icmpv6_text(out, i)?;
                write!(out, ", length {}", i.length)
            }
            Some(Transport::Other { protocol }) => {
                match protocol {
                    2 => {
                        let len = match (ip_end(d), &d.network) {
                            (Some(end), Some(Network::Ipv4(ip))) => {
                                end.saturating_sub(d.network_offset + usize::from(ip.header_len))
                            }
                            _ => d.payload.len(),
                        };
                        if igmp::summary(out, d.payload, len as u32).is_err() {
                            out.push_str(" [|igmp]");
                        }
                        return Ok(());
                    }
                    47 => out.push_str("GREv0"),
                    50 => out.push_str("ESP"),
                    // tcpdump prints two spaces here.
                    p => write!(out, " ip-proto-{p}")?,
                }
                write!(out, " {}", d.payload.len())
            }
            _ => Ok(()),
        }
    }

    fn tcp(&mut self, out: &mut String, src: IpAddr, dst: IpAddr, t: &Tcp<'_>) -> fmt::Result {
        write!(out, "Flags [{}]", t.flags)?;
        if let Some(c) = self.check {
            write!(out, ", cksum 0x{:04x}", c.stored)?;
            if c.result == 0 {
                out.push_str(" (correct)");
            } else {
                write!(out, " (incorrect -> 0x{:04x})", c.should_be())?;
            }
        }
        let (mut seq, mut ack) = (t.seq, t.ack);
        let (mut base_seq, mut base_ack, mut rev) = (0, 0, false);
        if !self.options.absolute_seq && t.flags.has(TcpFlags::ACK) {
            // tcpdump's bookkeeping (print-tcp.c): one entry per connection, keyed with the
            // lower port first; set from the first ACK-bearing segment (or any SYN), which
            // is printed absolute; later segments are printed relative to it.
            let (s, d) = (octets(src), octets(dst));
            rev = t.src_port > t.dst_port || (t.src_port == t.dst_port && s > d);
            let key = if rev {
                (d, s, t.dst_port, t.src_port)
            } else {
                (s, d, t.src_port, t.dst_port)
            };
            match self.seqs.get(&key) {
                Some(&(bs, ba)) if !t.flags.has(TcpFlags::SYN) => {
                    if rev {
                        seq = seq.wrapping_sub(ba);
                        ack = ack.wrapping_sub(bs);
                    } else {
                        seq = seq.wrapping_sub(bs);
                        ack = ack.wrapping_sub(ba);
                    }
                    (base_seq, base_ack) = (bs, ba);
                }
                _ => {
                    if self.seqs.len() >= MAX_CONNECTIONS {
                        self.seqs.clear();
                    }
                    let entry = if rev {
                        (t.ack.wrapping_sub(1), t.seq)
                    } else {
                        (t.seq, t.ack.wrapping_sub(1))
                    };
                    self.seqs.insert(key, entry);
                    (base_seq, base_ack) = entry;
                }
            }
        }
        if t.payload_len > 0 || t.flags.0 & (TcpFlags::SYN | TcpFlags::FIN | TcpFlags::RST) != 0 {
            write!(out, ", seq {seq}")?;
            if t.payload_len > 0 {
                write!(out, ":{}", seq.wrapping_add(t.payload_len))?;
            }
        }
        if t.flags.has(TcpFlags::ACK) {
            write!(out, ", ack {ack}")?;
        }
        write!(out, ", win {}", t.window)?;
        if t.flags.has(TcpFlags::URG) {
            write!(out, ", urg {}", t.urgent)?;
        }
        if !t.options.0.is_empty() {
            out.push_str(", options [");
            for (i, option) in t.options.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                match option {
                    TcpOption::Eol => out.push_str("eol"),
                    TcpOption::Nop => out.push_str("nop"),
                    TcpOption::Mss { value } => write!(out, "mss {value}")?,
                    TcpOption::WindowScale { shift } => write!(out, "wscale {shift}")?,
                    TcpOption::SackPermitted => out.push_str("sackOK"),
                    TcpOption::Sack { blocks } => {
                        write!(out, "sack {} ", blocks.len() / 8)?;
                        let base = if rev { base_seq } else { base_ack };
                        for b in blocks.chunks_exact(8) {
                            let (s, e) = (super::be32(b, 0), super::be32(b, 4));
                            write!(out, "{{{}:{}}}", s.wrapping_sub(base), e.wrapping_sub(base))?;
                        }
                    }
                    TcpOption::Timestamp { val, ecr } => write!(out, "TS val {val} ecr {ecr}")?,
                    TcpOption::Other { code, data } => {
                        write!(out, "opt-{code}:")?;
                        for b in data {
                            write!(out, "{b:02x}")?;
                        }
                    }
                    TcpOption::Malformed { .. } => out.push_str("[bad opt]"),
                }
            }
            out.push(']');
        }
        write!(out, ", length {}", t.payload_len)
    }
}

/// Where the IP packet ends in the frame according to its header (None for a length of 0,
/// which segmentation offload leaves).
fn ip_end(d: &Decoded<'_>) -> Option<usize> {
    match &d.network {
        Some(Network::Ipv4(ip)) if ip.total_len != 0 => {
            Some(d.network_offset + usize::from(ip.total_len))
        }
        Some(Network::Ipv6(ip)) if ip.payload_len != 0 => {
            Some(d.network_offset + 40 + usize::from(ip.payload_len))
        }
        _ => None,
    }
}

/// A TCP header whose data offset says less than 20 bytes, which tcpdump prints with its
/// ports as `a.1 > b.2:  tcp 12 [bad hdr length 16 - too short, < 20]`: the ports, the TCP
/// length on the wire and the header length.
fn short_tcp_header(d: &Decoded<'_>, data: &[u8]) -> Option<((u16, u16), usize, usize)> {
    let p = d.problem?;
    if p.layer != "tcp" || p.reason != super::transport::TCP_HEADER_TOO_SHORT {
        return None;
    }
    let h = data.get(p.offset..p.offset + 13)?;
    let header_len = usize::from(h[12] >> 4) * 4;
    let wire = ip_end(d)?.checked_sub(p.offset)?;
    Some(((be16(h, 0), be16(h, 2)), wire, header_len))
}

/// Bytes of link-level header before the network layer, as tcpdump's link printers return
/// them (the dump of `-x`/`-X`/`-A` starts after them).
fn link_header_len(d: &Decoded<'_>) -> usize {
    match d.link {
        Link::Ethernet { .. } => 14 + 4 * d.vlans.iter().count(),
        Link::LinuxSll { .. } => 16,
        Link::LinuxSll2 { .. } => 20,
        Link::RawIp | Link::Unsupported { .. } => 0,
    }
}

/// Bytes per line of tcpdump's hex dumps.
const DUMP_LINE: usize = 16;

/// tcpdump's `isgraph` for the ASCII columns: printable and not a space.
fn graphic(b: u8) -> bool {
    b > b' ' && b <= b'~'
}

/// tcpdump's `-x` (`hex_print_with_offset`): `\n\t0xOOOO: ` then ` hhhh` per two bytes.
fn hex_dump(out: &mut String, bytes: &[u8]) {
    for (line, chunk) in bytes.chunks(DUMP_LINE).enumerate() {
        let _ = write!(out, "\n\t0x{:04x}: ", line * DUMP_LINE);
        for pair in chunk.chunks(2) {
            out.push(' ');
            for b in pair {
                let _ = write!(out, "{b:02x}");
            }
        }
    }
}

/// tcpdump's `-X` (`hex_and_ascii_print_with_offset`): the hex column padded to 40
/// characters, two spaces, then the bytes with non-graphic ones as `.`.
fn hex_ascii_dump(out: &mut String, bytes: &[u8]) {
    for (line, chunk) in bytes.chunks(DUMP_LINE).enumerate() {
        let _ = write!(out, "\n\t0x{:04x}: ", line * DUMP_LINE);
        let mut hex = String::with_capacity(40);
        for pair in chunk.chunks(2) {
            hex.push(' ');
            for b in pair {
                let _ = write!(hex, "{b:02x}");
            }
        }
        let _ = write!(out, "{hex:<40}  ");
        out.extend(
            chunk
                .iter()
                .map(|&b| if graphic(b) { char::from(b) } else { '.' }),
        );
    }
}

/// tcpdump's `-A` (`ascii_print`): a newline, then the bytes; tabs, spaces and newlines as
/// they are, a carriage return dropped before a newline (or as `.` elsewhere), other
/// non-graphic bytes as `.`.
fn ascii_dump(out: &mut String, bytes: &[u8]) {
    out.push('\n');
    for (i, &b) in bytes.iter().enumerate() {
        let rest = bytes.len() - i - 1;
        match b {
            b'\r' => {
                // tcpdump: `if (length > 1 && next != '\n') print '.'` with length the
                // bytes left after this one.
                if rest > 1 && bytes[i + 1] != b'\n' {
                    out.push('.');
                }
            }
            b'\t' | b' ' | b'\n' => out.push(char::from(b)),
            b if graphic(b) => out.push(char::from(b)),
            _ => out.push('.'),
        }
    }
}

fn octets(ip: IpAddr) -> [u8; 16] {
    match ip {
        IpAddr::V4(a) => {
            let mut o = [0; 16];
            o[..4].copy_from_slice(&a.octets());
            o
        }
        IpAddr::V6(a) => a.octets(),
    }
}

/// A cooked header's packet type as tcpdump shows it.
fn direction(packet_type: u16) -> &'static str {
    match packet_type {
        0 => "In",
        1 => "B",
        2 => "M",
        3 => "P",
        4 => "Out",
        _ => "?",
    }
}

fn ethertype_text(out: &mut String, ethertype: u16) -> fmt::Result {
    let name = match ethertype {
        0x0800 => "IPv4",
        0x86dd => "IPv6",
        0x0806 => "ARP",
        0x8035 => "Reverse ARP",
        0x8100 => "802.1Q",
        0x88a8 => "802.1Q-QinQ",
        0x9100 => "802.1Q-9100",
        0x88cc => "LLDP",
        0x8847 => "MPLS unicast",
        _ => "Unknown",
    };
    write!(out, "ethertype {name} (0x{ethertype:04x})")
}

fn vlans(out: &mut String, vlans: &Vlans) -> fmt::Result {
    for v in vlans.iter() {
        write!(out, "vlan {}, p {}", v.id, v.priority)?;
        if v.dei {
            out.push_str(", DEI");
        }
        out.push_str(", ");
        ethertype_text(out, v.ethertype)?;
        out.push_str(", ");
    }
    Ok(())
}

fn arp_text(out: &mut String, arp: &Arp, wire: u32) -> fmt::Result {
    let op = match arp.operation {
        1 => "Request",
        2 => "Reply",
        3 => "Reverse Request",
        4 => "Reverse Reply",
        8 => "Inverse Request",
        9 => "Inverse Reply",
        _ => "",
    };
    match (arp.sender_ip, arp.target_ip, arp.sender_mac, arp.target_mac) {
        (Some(spa), Some(tpa), Some(sha), Some(tha)) => match arp.operation {
            1 => {
                write!(out, "Request who-has {tpa}")?;
                if tha.0 != [0; 6] {
                    write!(out, " ({tha})")?;
                }
                write!(out, " tell {spa}")?;
            }
            2 => write!(out, "Reply {spa} is-at {sha}")?,
            3 => write!(out, "Reverse Request who-is {tha} tell {sha}")?,
            4 => write!(out, "Reverse Reply {tha} at {tpa}")?,
            n => write!(out, "Unknown ({n})")?,
        },
        _ if op.is_empty() => write!(out, "Unknown ({})", arp.operation)?,
        _ => write!(out, "{op}, hardware type {}", arp.hardware_type)?,
    }
    write!(out, ", length {wire}")
}

fn icmp_text(out: &mut String, i: &Icmp<'_>) -> fmt::Result {
    // The quoted packet of an error message: its destination and transport port.
    let quoted = || {
        let b = i.body;
        if b.len() < 20 || b[0] >> 4 != 4 {
            return None;
        }
        let hl = usize::from(b[0] & 0x0f) * 4;
        let dst = std::net::Ipv4Addr::new(b[16], b[17], b[18], b[19]);
        let port = b.get(hl + 2..hl + 4).map(|p| be16(p, 0));
        Some((dst, b[9], port))
    };
    match (i.icmp_type, i.code) {
        (0, _) => write!(
            out,
            "echo reply, id {}, seq {}",
            i.id.unwrap_or(0),
            i.seq.unwrap_or(0)
        ),
        (8, _) => write!(
            out,
            "echo request, id {}, seq {}",
            i.id.unwrap_or(0),
            i.seq.unwrap_or(0)
        ),
        (3, code) => match (code, quoted()) {
            (0, Some((dst, _, _))) => write!(out, "net {dst} unreachable"),
            (1, Some((dst, _, _))) => write!(out, "host {dst} unreachable"),
            (2, Some((dst, proto, _))) => write!(out, "{dst} protocol {proto} unreachable"),
            (3, Some((dst, proto, Some(port)))) => {
                let p = match proto {
                    6 => "tcp",
                    17 => "udp",
                    _ => "ip",
                };
                write!(out, "{dst} {p} port {port} unreachable")
            }
            (4, Some((dst, _, _))) => {
                write!(
                    out,
                    "{dst} unreachable - need to frag (mtu {})",
                    i.rest & 0xffff
                )
            }
            (code, _) => write!(out, "unreachable code {code}"),
        },
        (11, 0) => out.write_str("time exceeded in-transit"),
        (11, _) => out.write_str("ip reassembly time exceeded"),
        (5, _) => write!(out, "redirect to {}", std::net::Ipv4Addr::from(i.rest)),
        (13, _) => write!(
            out,
            "time stamp query id {} seq {}",
            i.id.unwrap_or(0),
            i.seq.unwrap_or(0)
        ),
        (14, _) => write!(
            out,
            "time stamp reply id {} seq {}",
            i.id.unwrap_or(0),
            i.seq.unwrap_or(0)
        ),
        (t, _) => write!(out, "type-#{t}"),
    }
}

fn icmpv6_text(out: &mut String, i: &Icmpv6<'_>) -> fmt::Result {
    match i.icmp_type {
        1 => {
            let why = match i.code {
                0 => "unreachable route",
                1 => "unreachable prohibited",
                2 => "beyond scope",
                3 => "unreachable address",
                4 => "unreachable port",
                _ => "unknown code",
            };
            write!(out, "destination unreachable, {why}")?;
            // tcpdump names the quoted packet's destination and port for "port
            // unreachable" (when the quoted header is followed directly by TCP or UDP).
            let b = i.body;
            if i.code == 4 && b.len() >= 44 && b[0] >> 4 == 6 {
                let mut dst = [0u8; 16];
                dst.copy_from_slice(&b[24..40]);
                let dst = std::net::Ipv6Addr::from(dst);
                let port = be16(b, 42);
                match b[6] {
                    6 => write!(out, ", {dst} tcp port {port}")?,
                    17 => write!(out, ", {dst} udp port {port}")?,
                    _ => {}
                }
            }
            Ok(())
        }
        2 => write!(out, "packet too big, mtu {}", i.rest),
        3 => out.write_str("time exceeded in-transit"),
        4 => out.write_str("parameter problem"),
        128 => write!(
            out,
            "echo request, id {}, seq {}",
            i.id.unwrap_or(0),
            i.seq.unwrap_or(0)
        ),
        129 => write!(
            out,
            "echo reply, id {}, seq {}",
            i.id.unwrap_or(0),
            i.seq.unwrap_or(0)
        ),
        130 => out.write_str("multicast listener query"),
        131 => out.write_str("multicast listener report"),
        132 => out.write_str("multicast listener done"),
        133 => out.write_str("router solicitation"),
        134 => out.write_str("router advertisement"),
        135 => match i.target {
            Some(t) => write!(out, "neighbor solicitation, who has {t}"),
            None => out.write_str("neighbor solicitation"),
        },
        136 => match i.target {
            Some(t) => write!(out, "neighbor advertisement, tgt is {t}"),
            None => out.write_str("neighbor advertisement"),
        },
        137 => out.write_str("redirect"),
        143 => write!(
            out,
            "multicast listener report v2, {} group record(s)",
            i.rest & 0xffff
        ),
        t => write!(out, "type-#{t}"),
    }
}

fn sctp_chunk(c: u8) -> &'static str {
    match c {
        0 => "DATA",
        1 => "INIT",
        2 => "INIT ACK",
        3 => "SACK",
        4 => "HB REQ",
        5 => "HB ACK",
        6 => "ABORT",
        7 => "SHUTDOWN",
        8 => "SHUTDOWN ACK",
        9 => "OP ERR",
        10 => "COOKIE ECHO",
        11 => "COOKIE ACK",
        14 => "SHUTDOWN COMPLETE",
        _ => "Unknown",
    }
}
