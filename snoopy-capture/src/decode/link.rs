//! Link layers: Ethernet (with VLAN tags), Linux cooked v1/v2, raw IP.

use super::{Decoded, Link, LinkAddr, MacAddr, Problem, Vlan, be16, be32, invalid, need};
use crate::LinkType;

/// EtherTypes of VLAN tags: 802.1Q, 802.1ad, and the pre-standard QinQ 0x9100.
const VLAN_TPIDS: [u16; 3] = [0x8100, 0x88a8, 0x9100];

/// Pseudo-EtherType for "IPv4 or IPv6, look at the version nibble" (raw IP).
pub(crate) const RAW_IP: u16 = 0;

/// Decodes the link header into `d.link` and VLAN tags into `d.vlans`; returns the
/// EtherType of the network layer and its offset, or `None` when there is nothing more to
/// decode (unsupported link type, 802.3 frame).
pub(super) fn decode(
    d: &mut Decoded<'_>,
    link_type: LinkType,
    data: &[u8],
) -> Result<Option<(u16, usize)>, Problem> {
    let (ethertype, offset) = match link_type {
        LinkType::Ethernet => {
            let h = need(data, "ether", 0, 14)?;
            let mut dst = [0; 6];
            let mut src = [0; 6];
            dst.copy_from_slice(&h[0..6]);
            src.copy_from_slice(&h[6..12]);
            let ethertype = be16(h, 12);
            d.link = Link::Ethernet {
                src: MacAddr(src),
                dst: MacAddr(dst),
                ethertype,
            };
            if ethertype <= 1500 {
                // An 802.3 length field: LLC follows, which we do not decode.
                return Ok(None);
            }
            (ethertype, 14)
        }
        LinkType::LinuxSll => {
            let h = need(data, "sll", 0, 16)?;
            d.link = Link::LinuxSll {
                packet_type: be16(h, 0),
                arphrd: be16(h, 2),
                addr: link_addr(&h[6..14], be16(h, 4)),
                protocol: be16(h, 14),
            };
            (be16(h, 14), 16)
        }
        LinkType::LinuxSll2 => {
            let h = need(data, "sll2", 0, 20)?;
            d.link = Link::LinuxSll2 {
                protocol: be16(h, 0),
                ifindex: be32(h, 4),
                arphrd: be16(h, 8),
                packet_type: h[10],
                addr: link_addr(&h[12..20], u16::from(h[11])),
            };
            (be16(h, 0), 20)
        }
        LinkType::RawIp => {
            d.link = Link::RawIp;
            (RAW_IP, 0)
        }
        LinkType::Other(_) => return Ok(None),
    };
    vlans(d, data, ethertype, offset).map(Some)
}

fn link_addr(bytes: &[u8], len: u16) -> LinkAddr {
    let len = usize::from(len).min(8);
    let mut addr = [0; 8];
    addr[..len].copy_from_slice(&bytes[..len]);
    LinkAddr {
        bytes: addr,
        len: len as u8,
    }
}

/// Walks VLAN tags starting at `offset`.
fn vlans(
    d: &mut Decoded<'_>,
    data: &[u8],
    mut ethertype: u16,
    mut offset: usize,
) -> Result<(u16, usize), Problem> {
    while VLAN_TPIDS.contains(&ethertype) {
        let tag = need(data, "vlan", offset, 4)?;
        let tci = be16(tag, 0);
        let vlan = Vlan {
            tpid: ethertype,
            id: tci & 0x0fff,
            priority: (tci >> 13) as u8,
            dei: tci & 0x1000 != 0,
            ethertype: be16(tag, 2),
        };
        if !d.vlans.push(vlan) {
            return Err(invalid(data, "vlan", offset, "more than 4 VLAN tags"));
        }
        ethertype = vlan.ethertype;
        offset += 4;
    }
    Ok((ethertype, offset))
}
