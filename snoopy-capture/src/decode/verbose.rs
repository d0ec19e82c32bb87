//! tcpdump's `-v` additions: the IPv4 header line and the transport checksums.
//!
//! Which packets get them (the others keep their `-n` line, see [`supported_ipv4`] and
//! [`supported_ipv6`]): IPv4 without options and IPv6 without extension headers, not
//! fragmented, carrying TCP (not a reset with data, which tcpdump `-v` dumps instead), UDP
//! or an ICMP / ICMPv6 echo request or reply, decoded without a problem. What is above TCP
//! and UDP (DNS, HTTP) is printed at the same verbosity by its own module.

use std::fmt::{self, Write};

use super::{Decoded, Ipv4, Ipv6, Tcp, TcpFlags, Transport, be16};

/// A transport checksum as tcpdump checks it: the stored value and `in_cksum` over the
/// segment (0 when correct).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Checksum {
    /// The checksum field.
    pub stored: u16,
    /// The ones' complement of the ones' complement sum (0 when the checksum is right).
    pub result: u16,
}

impl Checksum {
    /// What the field should hold (tcpdump's `in_cksum_shouldbe`).
    pub fn should_be(self) -> u16 {
        let mut s = u32::from(self.stored) + u32::from(self.result);
        s = (s & 0xffff) + (s >> 16);
        s = (s & 0xffff) + (s >> 16);
        s as u16
    }
}

/// Adds big-endian 16-bit words of `bytes` (an odd last byte padded with zero) to `sum`.
fn add_words(mut sum: u32, bytes: &[u8]) -> u32 {
    let mut chunks = bytes.chunks_exact(2);
    for w in &mut chunks {
        sum += u32::from(u16::from_be_bytes([w[0], w[1]]));
        // Fold now and then so the sum never overflows.
        if sum > 0xffff_0000 {
            sum = (sum & 0xffff) + (sum >> 16);
        }
    }
    if let [last] = chunks.remainder() {
        sum += u32::from(*last) << 8;
    }
    sum
}

/// tcpdump's `in_cksum`: the ones' complement of the folded sum.
fn finish(mut sum: u32) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Whether tcpdump 4.99 `-v` output is reproduced for this packet: IPv4 (no options, not a
/// fragment, length not 0) with TCP, UDP or an ICMP echo, fully decoded.
pub(super) fn supported_ipv4(d: &Decoded<'_>, ip: &Ipv4) -> bool {
    if d.problem.is_some()
        || ip.header_len != 20
        || ip.more_fragments
        || ip.fragment_offset != 0
        || ip.total_len == 0
    {
        return false;
    }
    match &d.transport {
        Some(Transport::Tcp(t)) => tcp_supported(t),
        Some(Transport::Udp(_)) => true,
        Some(Transport::Icmp(i)) => matches!(i.icmp_type, 0 | 8),
        _ => false,
    }
}

/// Whether tcpdump 4.99 `-v` output is reproduced for this packet: IPv6 without extension
/// headers (payload length not 0) with TCP, UDP or an ICMPv6 echo.
pub(super) fn supported_ipv6(d: &Decoded<'_>, ip: &Ipv6) -> bool {
    if d.problem.is_some()
        || ip.hop_by_hop
        || ip.destination_options
        || ip.routing
        || ip.fragment.is_some()
        || ip.payload_len == 0
    {
        return false;
    }
    match &d.transport {
        Some(Transport::Tcp(t)) => tcp_supported(t),
        Some(Transport::Udp(_)) => true,
        Some(Transport::Icmpv6(i)) => matches!(i.icmp_type, 128 | 129),
        _ => false,
    }
}

/// tcpdump `-v` prints the data of a reset as `[RST …]` in place of the application: not
/// reproduced, such segments keep their line.
fn tcp_supported(t: &Tcp<'_>) -> bool {
    !(t.flags.has(TcpFlags::RST) && t.payload_len > 0)
}

/// The IPv6 header as `-v` shows it, before the addresses: `(class 0xb8, flowlabel
/// 0x12345, hlim 64, next-header TCP (6) payload length: 40) `.
pub(super) fn ipv6_header(out: &mut String, ip: &Ipv6) -> fmt::Result {
    out.push('(');
    if ip.traffic_class != 0 {
        write!(out, "class 0x{:02x}, ", ip.traffic_class)?;
    }
    if ip.flow_label != 0 {
        write!(out, "flowlabel 0x{:05x}, ", ip.flow_label)?;
    }
    write!(
        out,
        "hlim {}, next-header {} ({}) payload length: {}) ",
        ip.hop_limit,
        ip_protocol_name(ip.protocol),
        ip.protocol,
        ip.payload_len
    )
}

/// The checksum of an IPv6 upper-layer `segment` (TCP, UDP, ICMPv6), with the
/// pseudo-header; `header` is the 40-byte IPv6 header.
pub(super) fn ipv6_transport_checksum(
    header: &[u8],
    segment: &[u8],
    protocol: u8,
    stored: u16,
) -> Checksum {
    let len = segment.len() as u32;
    let mut sum = add_words(0, &header[8..40]);
    sum += (len >> 16) + (len & 0xffff) + u32::from(protocol);
    sum = add_words(sum, segment);
    Checksum {
        stored,
        result: finish(sum),
    }
}

/// The IPv4 header as `-v` shows it, before the addresses:
/// `(tos 0x0, ttl 64, id 1, offset 0, flags [DF], proto TCP (6), length 60)` and the
/// newline and indent of the second line. `header` is the 20-byte header.
pub(super) fn ipv4_header(out: &mut String, header: &[u8], ip: &Ipv4) -> fmt::Result {
    write!(out, "(tos 0x{:x}", ip.tos)?;
    match ip.tos & 0x03 {
        1 => out.push_str(",ECT(1)"),
        2 => out.push_str(",ECT(0)"),
        3 => out.push_str(",CE"),
        _ => {}
    }
    if ip.ttl >= 1 {
        write!(out, ", ttl {}", ip.ttl)?;
    }
    let off = be16(header, 6);
    let mut flags = Vec::with_capacity(3);
    if off & 0x2000 != 0 {
        flags.push("+");
    }
    if off & 0x4000 != 0 {
        flags.push("DF");
    }
    if off & 0x8000 != 0 {
        flags.push("rsvd");
    }
    let flags = if flags.is_empty() {
        "none".to_string()
    } else {
        flags.join(", ")
    };
    write!(
        out,
        ", id {}, offset {}, flags [{flags}], proto {} ({}), length {}",
        ip.id,
        ip.fragment_offset,
        ip_protocol_name(ip.protocol),
        ip.protocol,
        ip.total_len
    )?;
    let result = finish(add_words(0, header));
    if result != 0 {
        let sum = Checksum {
            stored: ip.checksum,
            result,
        };
        write!(
            out,
            ", bad cksum {:x} (->{:x})!",
            sum.stored,
            sum.should_be()
        )?;
    }
    out.push_str(")\n    ");
    Ok(())
}

/// tcpdump's names of IP protocols (`ipproto_values`), for the ones `-v` lines show.
fn ip_protocol_name(protocol: u8) -> &'static str {
    match protocol {
        1 => "ICMP",
        2 => "IGMP",
        6 => "TCP",
        17 => "UDP",
        41 => "IPv6",
        47 => "GRE",
        50 => "ESP",
        58 => "ICMPv6",
        132 => "SCTP",
        _ => "unknown",
    }
}

/// The checksum of the transport segment of an IPv4 packet, if all of it was captured:
/// with the pseudo-header for TCP and UDP, without for ICMP. `header` is the IPv4 header,
/// `segment` what follows it up to the IP total length.
pub(super) fn ipv4_transport_checksum(
    header: &[u8],
    segment: &[u8],
    protocol: u8,
    stored: u16,
) -> Checksum {
    let mut sum = 0;
    if protocol != 1 {
        sum = add_words(sum, &header[12..20]);
        sum += u32::from(protocol);
        sum += segment.len() as u32 & 0xffff;
        sum += (segment.len() as u32) >> 16;
    }
    sum = add_words(sum, segment);
    Checksum {
        stored,
        result: finish(sum),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_of_a_correct_header_is_zero_and_a_wrong_one_says_what_it_should_be() {
        // A UDP packet's IPv4 header, 192.168.0.1 > 192.168.0.199, with its checksum 0xb861.
        let mut h = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        assert_eq!(finish(add_words(0, &h)), 0);
        h[10] = 0x12;
        h[11] = 0x34;
        let c = Checksum {
            stored: 0x1234,
            result: finish(add_words(0, &h)),
        };
        assert_eq!(c.should_be(), 0xb861);
    }
}
