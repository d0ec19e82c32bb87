//! Transport layers: TCP, UDP, ICMP, ICMPv6, SCTP.

use std::net::Ipv6Addr;

use super::ip::captured;
use super::{
    Decoded, Icmp, Icmpv6, Problem, Sctp, Tcp, TcpFlags, TcpOptions, Transport, Udp, be16, be32,
    invalid, need,
};

/// Decodes the transport header at `offset`; `wire` is its length on the wire according
/// to the IP header.
pub(super) fn decode<'a>(
    d: &mut Decoded<'a>,
    protocol: u8,
    data: &'a [u8],
    offset: usize,
    wire: u32,
) -> Result<(), Problem> {
    match protocol {
        6 => tcp(d, data, offset, wire),
        17 => udp(d, data, offset, wire),
        1 => icmp(d, data, offset, wire),
        58 => icmpv6(d, data, offset, wire),
        132 => sctp(d, data, offset, wire),
        _ => {
            d.transport = Some(Transport::Other { protocol });
            d.payload = captured(data, offset, wire);
            Ok(())
        }
    }
}

/// The reason of the problem a TCP header with a data offset below 5 words is; tcpdump
/// still prints its ports, and so does the summary.
pub(super) const TCP_HEADER_TOO_SHORT: &str = "header length below 20";

fn tcp<'a>(d: &mut Decoded<'a>, data: &'a [u8], offset: usize, wire: u32) -> Result<(), Problem> {
    let h = need(data, "tcp", offset, 20)?;
    let header_len = usize::from(h[12] >> 4) * 4;
    if header_len < 20 {
        return Err(invalid(data, "tcp", offset, TCP_HEADER_TOO_SHORT));
    }
    if wire < header_len as u32 {
        return Err(invalid(
            data,
            "tcp",
            offset,
            "header longer than the IP payload",
        ));
    }
    let full = need(data, "tcp", offset, header_len)?;
    let tcp = Tcp {
        src_port: be16(h, 0),
        dst_port: be16(h, 2),
        seq: be32(h, 4),
        ack: be32(h, 8),
        header_len: header_len as u8,
        flags: TcpFlags(be16(h, 12) & 0x01ff),
        window: be16(h, 14),
        checksum: be16(h, 16),
        urgent: be16(h, 18),
        options: TcpOptions(&full[20..]),
        payload_len: wire - header_len as u32,
    };
    d.transport = Some(Transport::Tcp(tcp));
    d.payload = captured(data, offset + header_len, tcp.payload_len);
    Ok(())
}

fn udp<'a>(d: &mut Decoded<'a>, data: &'a [u8], offset: usize, wire: u32) -> Result<(), Problem> {
    let h = need(data, "udp", offset, 8)?;
    let length = be16(h, 4);
    // Trust the UDP length when it fits in the IP payload (tcpdump does the same).
    let payload_len = if length >= 8 && u32::from(length) <= wire {
        u32::from(length) - 8
    } else {
        wire.saturating_sub(8)
    };
    d.transport = Some(Transport::Udp(Udp {
        src_port: be16(h, 0),
        dst_port: be16(h, 2),
        length,
        checksum: be16(h, 6),
        payload_len,
    }));
    d.payload = captured(data, offset + 8, payload_len);
    Ok(())
}

fn icmp<'a>(d: &mut Decoded<'a>, data: &'a [u8], offset: usize, wire: u32) -> Result<(), Problem> {
    let h = need(data, "icmp", offset, 8)?;
    let icmp_type = h[0];
    // Echo, timestamp, information and address-mask messages carry an id and a sequence.
    let has_id = matches!(icmp_type, 0 | 8 | 13..=18);
    let body = captured(data, offset + 8, wire.saturating_sub(8));
    d.transport = Some(Transport::Icmp(Icmp {
        icmp_type,
        code: h[1],
        checksum: be16(h, 2),
        id: has_id.then(|| be16(h, 4)),
        seq: has_id.then(|| be16(h, 6)),
        rest: be32(h, 4),
        body,
        length: wire,
    }));
    d.payload = body;
    Ok(())
}

fn icmpv6<'a>(
    d: &mut Decoded<'a>,
    data: &'a [u8],
    offset: usize,
    wire: u32,
) -> Result<(), Problem> {
    let h = need(data, "icmp6", offset, 8)?;
    let icmp_type = h[0];
    let is_echo = matches!(icmp_type, 128 | 129);
    let target = if matches!(icmp_type, 135..=137) {
        let t = need(data, "icmp6", offset, 24)?;
        let mut a = [0; 16];
        a.copy_from_slice(&t[8..24]);
        Some(Ipv6Addr::from(a))
    } else {
        None
    };
    let body = captured(data, offset + 8, wire.saturating_sub(8));
    d.transport = Some(Transport::Icmpv6(Icmpv6 {
        icmp_type,
        code: h[1],
        checksum: be16(h, 2),
        id: is_echo.then(|| be16(h, 4)),
        seq: is_echo.then(|| be16(h, 6)),
        target,
        rest: be32(h, 4),
        body,
        length: wire,
    }));
    d.payload = body;
    Ok(())
}

fn sctp<'a>(d: &mut Decoded<'a>, data: &'a [u8], offset: usize, wire: u32) -> Result<(), Problem> {
    let h = need(data, "sctp", offset, 12)?;
    let chunks_bytes = captured(data, offset + 12, wire.saturating_sub(12));
    let mut first_chunk = None;
    let mut chunks = 0u16;
    let mut rest = chunks_bytes;
    while rest.len() >= 4 {
        let len = usize::from(be16(rest, 2));
        if len < 4 {
            return Err(invalid(data, "sctp", offset, "chunk length below 4"));
        }
        first_chunk.get_or_insert(rest[0]);
        chunks = chunks.saturating_add(1);
        let padded = len.next_multiple_of(4);
        rest = rest.get(padded..).unwrap_or_default();
    }
    d.transport = Some(Transport::Sctp(Sctp {
        src_port: be16(h, 0),
        dst_port: be16(h, 2),
        verification_tag: be32(h, 4),
        first_chunk,
        chunks,
    }));
    d.payload = chunks_bytes;
    Ok(())
}
