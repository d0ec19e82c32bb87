//! IGMP as tcpdump 4.99 prints it without `-v` (`igmp_print` in print-igmp.c): the reports
//! and leaves hosts send when a socket joins or leaves a group (`igmp v3 report, 1 group
//! record(s)`, `igmp v2 report 224.0.0.251`, `igmp leave 224.0.0.251`) and the queries of
//! a multicast router.

use std::fmt::{self, Write};
use std::net::Ipv4Addr;

/// Writes tcpdump's text for the IGMP message `msg` (as captured) of `len` bytes on the
/// wire; Err when the capture ends first (tcpdump then prints ` [|igmp]`).
pub(super) fn summary(out: &mut String, msg: &[u8], len: u32) -> Result<(), fmt::Error> {
    let byte = |i: usize| msg.get(i).copied().ok_or(fmt::Error);
    let group = |i: usize| -> Result<Ipv4Addr, fmt::Error> {
        let b = msg.get(i..i + 4).ok_or(fmt::Error)?;
        Ok(Ipv4Addr::new(b[0], b[1], b[2], b[3]))
    };
    let u16_at = |i: usize| -> Result<u16, fmt::Error> {
        Ok(u16::from(byte(i)?) << 8 | u16::from(byte(i + 1)?))
    };
    match byte(0)? {
        0x11 => {
            out.push_str("igmp query");
            if len >= 12 {
                return v3_query(out, msg, len);
            }
            let max_resp = byte(1)?;
            if max_resp != 0 {
                out.push_str(" v2");
                if max_resp != 100 {
                    write!(out, " [max resp time {max_resp}]")?;
                }
            } else {
                out.push_str(" v1");
            }
            let g = group(4)?;
            if !g.is_unspecified() {
                write!(out, " [gaddr {g}]")?;
            }
            if len != 8 {
                write!(out, " [len {len}]")?;
            }
        }
        0x12 => {
            write!(out, "igmp v1 report {}", group(4)?)?;
            if len != 8 {
                write!(out, " [len {len}]")?;
            }
        }
        0x16 => write!(out, "igmp v2 report {}", group(4)?)?,
        0x17 => write!(out, "igmp leave {}", group(4)?)?,
        0x22 => {
            out.push_str("igmp v3 report");
            if len < 16 || len & 3 != 0 {
                write!(out, " [invalid len {len}]")?;
            } else {
                write!(out, ", {} group record(s)", u16_at(6)?)?;
            }
        }
        t => write!(out, "igmp-{t}")?,
    }
    Ok(())
}

/// The rest of a version 3 query: ` v3`, the maximum response time unless it is the
/// default 10 s, the group and its number of sources.
fn v3_query(out: &mut String, msg: &[u8], len: u32) -> fmt::Result {
    out.push_str(" v3");
    if len & 3 != 0 {
        return write!(out, " [invalid len {len}]");
    }
    let code = *msg.get(1).ok_or(fmt::Error)?;
    // RFC 3376 4.1.1: from 128 on, a floating-point exponent and mantissa.
    let tenths = if code < 128 {
        u32::from(code)
    } else {
        (u32::from(code & 0x0f) | 0x10) << (((code & 0x70) >> 4) + 3)
    };
    if code != 100 {
        out.push_str(" [max resp time ");
        if tenths < 600 {
            write!(out, "{}.{}s", tenths / 10, tenths % 10)?;
        } else {
            relative_seconds(out, tenths / 10)?;
        }
        out.push(']');
    }
    let g = msg.get(4..8).ok_or(fmt::Error)?;
    if g == [0; 4] {
        return Ok(());
    }
    write!(out, " [gaddr {}", Ipv4Addr::new(g[0], g[1], g[2], g[3]))?;
    let sources = msg.get(10..12).ok_or(fmt::Error)?;
    let sources = u16::from_be_bytes([sources[0], sources[1]]);
    if sources > 0 {
        if len < 12 + (u32::from(sources) << 2) {
            return out.write_str(" [invalid number of sources]");
        }
        write!(out, ", {sources} source(s)")?;
    }
    out.push(']');
    Ok(())
}

/// tcpdump's `unsigned_relts_print`: `5m7s`, `1d2h`, `0s`.
fn relative_seconds(out: &mut String, mut secs: u32) -> fmt::Result {
    if secs == 0 {
        return out.write_str("0s");
    }
    for (unit, size) in [
        ("y", 31_536_000),
        ("w", 604_800),
        ("d", 86_400),
        ("h", 3_600),
        ("m", 60),
        ("s", 1),
    ] {
        if secs >= size {
            write!(out, "{}{unit}", secs / size)?;
            secs %= size;
        }
    }
    Ok(())
}
