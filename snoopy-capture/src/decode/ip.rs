//! Network layers: IPv4, IPv6 (with extension headers), ARP.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::link::RAW_IP;
use super::{
    Arp, Decoded, Ipv4, Ipv6, Ipv6Fragment, MacAddr, Network, Problem, Transport, be16, be32,
    invalid, need, transport,
};

/// Most IPv6 extension headers followed before giving up (a loop guard).
const MAX_EXTENSIONS: usize = 8;

/// Decodes the network layer at `offset` and what is above it.
pub(super) fn decode<'a>(
    d: &mut Decoded<'a>,
    ethertype: u16,
    data: &'a [u8],
    offset: usize,
) -> Result<(), Problem> {
    let ethertype = if ethertype == RAW_IP {
        match need(data, "ip", offset, 1)?[0] >> 4 {
            4 => 0x0800,
            6 => 0x86dd,
            _ => return Err(invalid(data, "ip", offset, "IP version is neither 4 nor 6")),
        }
    } else {
        ethertype
    };
    match ethertype {
        0x0800 => ipv4(d, data, offset),
        0x86dd => ipv6(d, data, offset),
        0x0806 | 0x8035 => arp(d, data, offset),
        _ => {
            d.network = Some(Network::Other { ethertype });
            d.payload = data.get(offset..).unwrap_or_default();
            Ok(())
        }
    }
}

fn ipv4<'a>(d: &mut Decoded<'a>, data: &'a [u8], offset: usize) -> Result<(), Problem> {
    let h = need(data, "ip", offset, 20)?;
    if h[0] >> 4 != 4 {
        return Err(invalid(data, "ip", offset, "version is not 4"));
    }
    let header_len = usize::from(h[0] & 0x0f) * 4;
    if header_len < 20 {
        return Err(invalid(data, "ip", offset, "header length below 20"));
    }
    let mut total_len = usize::from(be16(h, 2));
    if total_len == 0 {
        // Segmentation offload: the kernel hands over a 64 KiB "packet" with length 0.
        total_len = data.len() - offset;
    }
    if total_len < header_len {
        return Err(invalid(
            data,
            "ip",
            offset,
            "total length shorter than the header",
        ));
    }
    let frag = be16(h, 6);
    let ip = Ipv4 {
        src: Ipv4Addr::new(h[12], h[13], h[14], h[15]),
        dst: Ipv4Addr::new(h[16], h[17], h[18], h[19]),
        header_len: header_len as u8,
        tos: h[1],
        total_len: be16(h, 2),
        id: be16(h, 4),
        dont_fragment: frag & 0x4000 != 0,
        more_fragments: frag & 0x2000 != 0,
        fragment_offset: (frag & 0x1fff) * 8,
        ttl: h[8],
        protocol: h[9],
        checksum: be16(h, 10),
    };
    d.network = Some(Network::Ipv4(ip));
    need(data, "ip", offset, header_len)?;
    let l4 = offset + header_len;
    let wire = (total_len - header_len) as u32;
    if ip.fragment_offset != 0 {
        d.transport = Some(Transport::Other {
            protocol: ip.protocol,
        });
        d.payload = captured(data, l4, wire);
        return Ok(());
    }
    transport::decode(d, ip.protocol, data, l4, wire)
}

fn ipv6<'a>(d: &mut Decoded<'a>, data: &'a [u8], offset: usize) -> Result<(), Problem> {
    let h = need(data, "ip6", offset, 40)?;
    if h[0] >> 4 != 6 {
        return Err(invalid(data, "ip6", offset, "version is not 6"));
    }
    let mut src = [0; 16];
    let mut dst = [0; 16];
    src.copy_from_slice(&h[8..24]);
    dst.copy_from_slice(&h[24..40]);
    let payload_len = be16(h, 4);
    let mut ip = Ipv6 {
        src: Ipv6Addr::from(src),
        dst: Ipv6Addr::from(dst),
        traffic_class: ((be16(h, 0) >> 4) & 0xff) as u8,
        flow_label: be32(h, 0) & 0x000f_ffff,
        payload_len,
        hop_limit: h[7],
        protocol: h[6],
        hop_by_hop: false,
        destination_options: false,
        routing: false,
        fragment: None,
    };
    let mut wire = if payload_len == 0 {
        // A jumbogram or offloaded segment: trust the capture.
        (data.len() - offset - 40) as u32
    } else {
        u32::from(payload_len)
    };
    let mut l4 = offset + 40;
    for _ in 0..MAX_EXTENSIONS {
        let len = match ip.protocol {
            0 | 43 | 60 => {
                let e = need(data, "ip6", l4, 2)?;
                match ip.protocol {
                    0 => ip.hop_by_hop = true,
                    43 => ip.routing = true,
                    _ => ip.destination_options = true,
                }
                (usize::from(e[1]) + 1) * 8
            }
            44 => {
                let e = need(data, "ip6", l4, 8)?;
                let off = be16(e, 2);
                ip.fragment = Some(Ipv6Fragment {
                    offset: off & 0xfff8,
                    more: off & 1 != 0,
                    id: be32(e, 4),
                });
                8
            }
            51 => (usize::from(need(data, "ip6", l4, 2)?[1]) + 2) * 4,
            _ => break,
        };
        need(data, "ip6", l4, len)?;
        ip.protocol = data[l4];
        l4 += len;
        wire = wire.saturating_sub(len as u32);
    }
    d.network = Some(Network::Ipv6(ip));
    if ip.fragment.is_some_and(|f| f.offset != 0) {
        d.transport = Some(Transport::Other {
            protocol: ip.protocol,
        });
        d.payload = captured(data, l4, wire);
        return Ok(());
    }
    transport::decode(d, ip.protocol, data, l4, wire)
}

fn arp<'a>(d: &mut Decoded<'a>, data: &'a [u8], offset: usize) -> Result<(), Problem> {
    let h = need(data, "arp", offset, 8)?;
    let (htype, ptype, hlen, plen) = (be16(h, 0), be16(h, 2), h[4], h[5]);
    let mut arp = Arp {
        hardware_type: htype,
        protocol_type: ptype,
        operation: be16(h, 6),
        sender_mac: None,
        sender_ip: None,
        target_mac: None,
        target_ip: None,
    };
    if hlen == 6 && plen == 4 && ptype == 0x0800 {
        let b = need(data, "arp", offset, 28)?;
        let mac = |i: usize| {
            let mut m = [0; 6];
            m.copy_from_slice(&b[i..i + 6]);
            MacAddr(m)
        };
        arp.sender_mac = Some(mac(8));
        arp.sender_ip = Some(Ipv4Addr::new(b[14], b[15], b[16], b[17]));
        arp.target_mac = Some(mac(18));
        arp.target_ip = Some(Ipv4Addr::new(b[24], b[25], b[26], b[27]));
    } else {
        need(
            data,
            "arp",
            offset,
            8 + 2 * (usize::from(hlen) + usize::from(plen)),
        )?;
    }
    d.network = Some(Network::Arp(arp));
    Ok(())
}

/// The captured part of `wire` bytes starting at `offset` (link padding excluded).
pub(super) fn captured(data: &[u8], offset: usize, wire: u32) -> &[u8] {
    let end = offset.saturating_add(wire as usize).min(data.len());
    data.get(offset..end).unwrap_or_default()
}
