//! DNS summaries in tcpdump's non-verbose style: `4660+ A? example.com. (29)` for a query,
//! `4660 1/0/0 A 93.184.216.34 (45)` for a response.

use std::fmt::{self, Write};
use std::net::{Ipv4Addr, Ipv6Addr};

use super::be16;

/// Most compression pointers followed in one name (a loop guard).
const MAX_POINTERS: usize = 32;

/// Why a DNS message could not be summarised completely.
pub(super) enum DnsError {
    /// The message ends early: tcpdump prints ` [|domain]`.
    Truncated,
    /// Writing failed.
    Fmt,
}

impl From<fmt::Error> for DnsError {
    fn from(_: fmt::Error) -> Self {
        DnsError::Fmt
    }
}

fn type_name(t: u16) -> Option<&'static str> {
    Some(match t {
        1 => "A",
        2 => "NS",
        5 => "CNAME",
        6 => "SOA",
        12 => "PTR",
        15 => "MX",
        16 => "TXT",
        28 => "AAAA",
        33 => "SRV",
        41 => "OPT",
        255 => "ANY",
        _ => return None,
    })
}

fn write_type(out: &mut String, t: u16) -> fmt::Result {
    match type_name(t) {
        Some(name) => write!(out, " {name}"),
        None => write!(out, " Type{t}"),
    }
}

/// Writes the name at `pos` (following compression pointers) and returns the offset just
/// after it in the message.
fn name(msg: &[u8], mut pos: usize, out: Option<&mut String>) -> Result<usize, DnsError> {
    let mut out = out;
    let mut end = None;
    let mut jumps = 0;
    let mut empty = true;
    loop {
        let len = *msg.get(pos).ok_or(DnsError::Truncated)?;
        match len & 0xc0 {
            0x00 if len == 0 => break,
            0x00 => {
                let label = msg
                    .get(pos + 1..pos + 1 + usize::from(len))
                    .ok_or(DnsError::Truncated)?;
                if let Some(out) = out.as_deref_mut() {
                    for &b in label {
                        if b.is_ascii_graphic() {
                            out.push(char::from(b));
                        } else {
                            write!(out, "\\{b:03}")?;
                        }
                    }
                    out.push('.');
                }
                empty = false;
                pos += 1 + usize::from(len);
            }
            0xc0 => {
                let lo = *msg.get(pos + 1).ok_or(DnsError::Truncated)?;
                end.get_or_insert(pos + 2);
                jumps += 1;
                if jumps > MAX_POINTERS {
                    return Err(DnsError::Truncated);
                }
                pos = (usize::from(len & 0x3f) << 8) | usize::from(lo);
            }
            _ => return Err(DnsError::Truncated),
        }
    }
    if empty && let Some(out) = out {
        out.push('.');
    }
    Ok(end.unwrap_or(pos + 1))
}

/// Summarises the DNS message `msg` whose UDP payload length is `length`.
pub(super) fn summary(out: &mut String, msg: &[u8], length: u32) -> Result<(), DnsError> {
    if msg.len() < 12 {
        return Err(DnsError::Truncated);
    }
    let id = be16(msg, 0);
    let flags = be16(msg, 2);
    let (qd, an, ns, ar) = (be16(msg, 4), be16(msg, 6), be16(msg, 8), be16(msg, 10));
    let opcode = match (flags >> 11) & 0xf {
        0 => "",
        1 => " inv_q",
        2 => " stat",
        4 => " notify",
        5 => " update",
        _ => " op?",
    };
    let mut pos = 12;
    if flags & 0x8000 == 0 {
        write!(
            out,
            "{id}{opcode}{}{}",
            if flags & 0x0100 != 0 { "+" } else { "" },
            if flags & 0x0010 != 0 { "%" } else { "" }
        )?;
        if qd != 1 {
            write!(out, " [{qd}q]")?;
        }
        for (n, tag) in [(an, "a"), (ns, "n"), (ar, "au")] {
            if n != 0 {
                write!(out, " [{n}{tag}]")?;
            }
        }
        if qd > 0 {
            let after = name(msg, pos, None)?;
            let q = msg.get(after..after + 4).ok_or(DnsError::Truncated)?;
            write_type(out, be16(q, 0))?;
            if be16(q, 2) != 1 {
                write!(out, " (Class {})", be16(q, 2))?;
            }
            out.push_str("? ");
            name(msg, pos, Some(out))?;
        }
    } else {
        let rcode = match flags & 0xf {
            0 => "",
            1 => " FormErr",
            2 => " ServFail",
            3 => " NXDomain",
            4 => " NotImp",
            5 => " Refused",
            _ => " Resv?",
        };
        write!(
            out,
            "{id}{opcode}{rcode}{}{}{}{}",
            if flags & 0x0400 != 0 { "*" } else { "" },
            if flags & 0x0080 != 0 { "" } else { "-" },
            if flags & 0x0200 != 0 { "|" } else { "" },
            if flags & 0x0020 != 0 { "$" } else { "" },
        )?;
        if qd != 1 {
            write!(out, " [{qd}q]")?;
        }
        for _ in 0..qd {
            pos = name(msg, pos, None)? + 4;
        }
        write!(out, " {an}/{ns}/{ar}")?;
        for i in 0..an {
            if i > 0 {
                out.push(',');
            }
            pos = record(out, msg, pos)?;
        }
    }
    write!(out, " ({length})")?;
    Ok(())
}

/// Writes one resource record (` A 1.2.3.4`) and returns the offset after it.
fn record(out: &mut String, msg: &[u8], pos: usize) -> Result<usize, DnsError> {
    let after = name(msg, pos, None)?;
    let h = msg.get(after..after + 10).ok_or(DnsError::Truncated)?;
    let (rtype, class, len) = (be16(h, 0), be16(h, 2), usize::from(be16(h, 8)));
    let data_at = after + 10;
    let data = msg.get(data_at..data_at + len).ok_or(DnsError::Truncated)?;
    if class != 1 && rtype != 41 {
        write!(out, " (Class {class})")?;
    }
    write_type(out, rtype)?;
    match (rtype, len) {
        (1, 4) => write!(
            out,
            " {}",
            Ipv4Addr::new(data[0], data[1], data[2], data[3])
        )?,
        (28, 16) => {
            let mut a = [0; 16];
            a.copy_from_slice(data);
            write!(out, " {}", Ipv6Addr::from(a))?;
        }
        (2 | 5 | 12, _) => {
            out.push(' ');
            name(msg, data_at, Some(out))?;
        }
        (15, 3..) => {
            out.push(' ');
            name(msg, data_at + 2, Some(out))?;
            write!(out, " {}", be16(data, 0))?;
        }
        (33, 7..) => {
            out.push(' ');
            name(msg, data_at + 6, Some(out))?;
            write!(
                out,
                ":{} {} {}",
                be16(data, 4),
                be16(data, 0),
                be16(data, 2)
            )?;
        }
        _ => {}
    }
    Ok(data_at + len)
}
