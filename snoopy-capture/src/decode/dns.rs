//! DNS and mDNS as tcpdump 4.99 prints them (`domain_print` in print-domain.c): a query is
//! `4660+ [1au] A? example.com. (41)`, a response `4660 1/0/1 A 93.184.216.34 (45)`.
//! mDNS (port 5353) adds `(QM)`/`(QU)` to questions and `(Cache flush)` to records; over
//! TCP the message follows a two-byte length. `-v` names each answer's owner
//! (`4660 1/0/1 example.com. A 93.184.216.34`). What `-vv` adds (the question of a
//! response `q: A? example.com.`, the authority and additional sections `ns:` and `ar:`, EDNS
//! options) and `-vvv` (TTLs) is not printed.

use std::fmt::{self, Write};
use std::net::{Ipv4Addr, Ipv6Addr};

use super::be16;

/// Most compression pointers followed in one name (a loop guard; tcpdump's rule that a
/// pointer goes backwards ends loops too).
const MAX_POINTERS: usize = 64;

/// How a message is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Style {
    /// Multicast DNS (port 5353): the top bit of a class is QU or cache flush.
    pub mdns: bool,
    /// tcpdump's `-v` count.
    pub verbose: u8,
}

/// A read past the captured bytes or a name tcpdump gives up on: ` [|domain]` follows what
/// was printed.
#[derive(Debug)]
pub(super) struct Truncated;

impl From<fmt::Error> for Truncated {
    fn from(_: fmt::Error) -> Self {
        Truncated
    }
}

type Result<T, E = Truncated> = std::result::Result<T, E>;

/// tcpdump's `ns_type2str`.
fn type_name(t: u16) -> Option<&'static str> {
    Some(match t {
        1 => "A",
        2 => "NS",
        3 => "MD",
        4 => "MF",
        5 => "CNAME",
        6 => "SOA",
        7 => "MB",
        8 => "MG",
        9 => "MR",
        10 => "NULL",
        11 => "WKS",
        12 => "PTR",
        13 => "HINFO",
        14 => "MINFO",
        15 => "MX",
        16 => "TXT",
        17 => "RP",
        18 => "AFSDB",
        19 => "X25",
        20 => "ISDN",
        21 => "RT",
        22 => "NSAP",
        23 => "NSAP_PTR",
        24 => "SIG",
        25 => "KEY",
        26 => "PX",
        27 => "GPOS",
        28 => "AAAA",
        29 => "LOC",
        30 => "NXT",
        31 => "EID",
        32 => "NIMLOC",
        33 => "SRV",
        34 => "ATMA",
        35 => "NAPTR",
        36 => "KX",
        37 => "CERT",
        38 => "A6",
        39 => "DNAME",
        40 => "SINK",
        41 => "OPT",
        42 => "APL",
        43 => "DS",
        44 => "SSHFP",
        45 => "IPSECKEY",
        46 => "RRSIG",
        47 => "NSEC",
        48 => "DNSKEY",
        99 => "SPF",
        100 => "UINFO",
        101 => "UID",
        102 => "GID",
        103 => "UNSPEC",
        104 => "UNSPECA",
        249 => "TKEY",
        250 => "TSIG",
        251 => "IXFR",
        252 => "AXFR",
        253 => "MAILB",
        254 => "MAILA",
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

/// tcpdump's `ns_class2str`, with the leading space.
fn write_class(out: &mut String, class: u16) -> fmt::Result {
    match class {
        1 => out.write_str(" IN"),
        3 => out.write_str(" CHAOS"),
        4 => out.write_str(" HS"),
        255 => out.write_str(" ANY"),
        c => write!(out, " (Class {c})"),
    }
}

/// tcpdump's `ns_ops`.
const OPCODES: [&str; 16] = [
    "",
    " inv_q",
    " stat",
    " op3",
    " notify",
    " update",
    " op6",
    " op7",
    " op8",
    " updateA",
    " updateD",
    " updateDA",
    " updateM",
    " updateMA",
    " zoneInit",
    " zoneRef",
];

/// tcpdump's `ns_rcode` (its table spells 17 and 21 without the space).
fn write_rcode(out: &mut String, rcode: u16) -> fmt::Result {
    let name = match rcode {
        0 => "",
        1 => " FormErr",
        2 => " ServFail",
        3 => " NXDomain",
        4 => " NotImp",
        5 => " Refused",
        6 => " YXDomain",
        7 => " YXRRSet",
        8 => " NXRRSet",
        9 => " NotAuth",
        10 => " NotZone",
        15 => " NoChange",
        16 => " BadVers",
        17 => "Resp17",
        21 => "Resp21",
        23 => " BadCookie",
        n => return write!(out, " Resp{}", n & 0xfff),
    };
    out.write_str(name)
}

/// tcpdump's `fn_print_char`: printable ASCII as is, `M-` for the top bit, `^X` for
/// control characters.
fn write_char(out: &mut String, mut c: u8) {
    if !c.is_ascii() {
        c &= 0x7f;
        out.push_str("M-");
    }
    if c == 0x7f || c < 0x20 {
        out.push('^');
        out.push(char::from(c ^ 0x40));
    } else {
        out.push(char::from(c));
    }
}

/// A message as captured: reads past the captured bytes are truncation.
struct Message<'a>(&'a [u8]);

impl Message<'_> {
    fn u8(&self, at: usize) -> Result<u8> {
        self.0.get(at).copied().ok_or(Truncated)
    }

    fn u16(&self, at: usize) -> Result<u16> {
        Ok(u16::from(self.u8(at)?) << 8 | u16::from(self.u8(at + 1)?))
    }

    fn bytes(&self, at: usize, len: usize) -> Result<&[u8]> {
        self.0.get(at..at + len).ok_or(Truncated)
    }

    /// tcpdump's `ns_nskip`: the offset after the name at `at`, without printing it.
    fn skip_name(&self, mut at: usize) -> Result<usize> {
        loop {
            let len = self.u8(at)?;
            at += 1;
            match len & 0xc0 {
                _ if len == 0 => return Ok(at),
                0xc0 => return Ok(at + 1),
                0x40 if len == 0x41 => {
                    // An EDNS0 bit label: a bit count (0 means 256), then the bits.
                    let bits = match self.u8(at)? {
                        0 => 256,
                        b => usize::from(b),
                    };
                    at += 1 + bits.div_ceil(8);
                }
                0x00 => at += usize::from(len),
                _ => return Err(Truncated),
            }
        }
    }

    /// tcpdump's `fqdn_print`: the name at `at` (labels each followed by `.`, the root as
    /// `.`, pointers followed backwards only) and the offset after it.
    fn name(&self, out: &mut String, at: usize) -> Result<usize> {
        let mut pos = at;
        let mut max_offset = at;
        let mut after = None;
        let mut pointers = 0;
        let first = self.u8(pos)?;
        if first == 0 {
            out.push('.');
            return Ok(at + 1);
        }
        loop {
            let len = self.u8(pos)?;
            match len & 0xc0 {
                _ if len == 0 => return Ok(after.unwrap_or(pos + 1)),
                0xc0 => {
                    let offset = usize::from(self.u16(pos)? & 0x3fff);
                    after.get_or_insert(pos + 2);
                    if offset >= max_offset {
                        out.push_str("<BAD PTR>");
                        return Err(Truncated);
                    }
                    pointers += 1;
                    if pointers > MAX_POINTERS {
                        return Err(Truncated);
                    }
                    max_offset = offset;
                    pos = offset;
                }
                0x00 => {
                    let label = self.bytes(pos + 1, usize::from(len))?;
                    for &c in label {
                        write_char(out, c);
                    }
                    out.push('.');
                    pos += 1 + usize::from(len);
                }
                // EDNS0 extended labels (bit labels) are printed by tcpdump in a form of
                // their own; they are gone from the DNS in use.
                _ => return Err(Truncated),
            }
        }
    }

    /// tcpdump's `ns_qprint`: ` A? name.` (with the class unless IN, and `(QM)`/`(QU)` for
    /// mDNS); the offset after the question.
    fn question(&self, out: &mut String, at: usize, style: Style) -> Result<usize> {
        let after = self.skip_name(at)?;
        self.bytes(after, 4)?;
        let (qtype, raw_class) = (self.u16(after)?, self.u16(after + 2)?);
        write_type(out, qtype)?;
        let class = if style.mdns {
            raw_class & 0x7fff
        } else {
            raw_class
        };
        if class != 1 {
            write_class(out, class)?;
        }
        if style.mdns {
            out.push_str(if raw_class & 0x8000 != 0 {
                " (QU)"
            } else {
                " (QM)"
            });
        }
        out.push_str("? ");
        self.name(out, at)?;
        Ok(after + 4)
    }

    /// tcpdump's `ns_rprint`: one resource record (` A 1.2.3.4`, with `-v` its owner name
    /// first) and the offset after it. Ok(None) when the fixed part is not captured (tcpdump
    /// stops printing records there).
    fn record(&self, out: &mut String, at: usize, style: Style) -> Result<Option<usize>> {
        let at = if style.verbose > 0 {
            out.push(' ');
            self.name(out, at)?
        } else {
            self.skip_name(at)?
        };
        if self.bytes(at, 10).is_err() {
            return Ok(None);
        }
        let rtype = self.u16(at)?;
        let raw_class = self.u16(at + 2)?;
        let class = if style.mdns {
            raw_class & 0x7fff
        } else {
            raw_class
        };
        if class != 1 && rtype != 41 {
            write_class(out, class)?;
        }
        if style.mdns && raw_class & 0x8000 != 0 {
            out.push_str(" (Cache flush)");
        }
        let opt_flags = self.u16(at + 6)?;
        let len = usize::from(self.u16(at + 8)?);
        let data = at + 10;
        let end = data + len;
        write_type(out, rtype)?;
        if end > self.0.len() {
            return Err(Truncated);
        }
        match rtype {
            1 => {
                let a = self.bytes(data, 4)?;
                write!(out, " {}", Ipv4Addr::new(a[0], a[1], a[2], a[3]))?;
            }
            2 | 5 | 12 | 39 => {
                out.push(' ');
                self.name(out, data)?;
            }
            6 if style.verbose > 0 => {
                out.push(' ');
                let next = self.name(out, data)?;
                out.push(' ');
                let next = self.name(out, next)?;
                let numbers = self.bytes(next, 20)?;
                for n in numbers.chunks_exact(4) {
                    write!(out, " {}", u32::from_be_bytes([n[0], n[1], n[2], n[3]]))?;
                }
            }
            15 => {
                out.push(' ');
                self.name(out, data + 2)?;
                write!(out, " {}", self.u16(data)?)?;
            }
            16 => {
                let mut pos = data;
                while pos < end {
                    out.push_str(" \"");
                    let n = usize::from(self.u8(pos)?);
                    for &c in self.bytes(pos + 1, n)? {
                        write_char(out, c);
                    }
                    out.push('"');
                    pos += 1 + n;
                }
            }
            28 => {
                let b: [u8; 16] = self.bytes(data, 16)?.try_into().map_err(|_| Truncated)?;
                write!(out, " {}", Ipv6Addr::from(b))?;
            }
            33 => {
                out.push(' ');
                self.name(out, data + 6)?;
                write!(
                    out,
                    ":{} {} {}",
                    self.u16(data + 4)?,
                    self.u16(data)?,
                    self.u16(data + 2)?
                )?;
            }
            41 => {
                write!(out, " UDPsize={raw_class}")?;
                if opt_flags & 0x8000 != 0 {
                    out.push_str(" DO");
                }
                // EDNS options, printed by tcpdump in forms of their own: not reproduced.
                if len > 0 {
                    return Err(Truncated);
                }
            }
            _ => {}
        }
        Ok(Some(end))
    }

    /// The extended response code bits of an OPT record in the additional section, found
    /// as tcpdump looks for it (giving up quietly at the end of the captured bytes).
    fn extended_rcode(&self, counts: [u16; 4]) -> u16 {
        let end = self.0.len();
        let mut at = 12;
        for _ in 0..counts[0] {
            match self.skip_name(at) {
                Ok(after) if after + 4 < end => at = after + 4,
                _ => return 0,
            }
        }
        for _ in 0..u32::from(counts[1]) + u32::from(counts[2]) {
            let Ok(after) = self.skip_name(at) else {
                return 0;
            };
            let Ok(len) = self.u16(after + 8) else {
                return 0;
            };
            at = after + 10 + usize::from(len);
            if at >= end {
                return 0;
            }
        }
        for _ in 0..counts[3] {
            let Ok(after) = self.skip_name(at) else {
                return 0;
            };
            let Ok(rtype) = self.u16(after) else {
                return 0;
            };
            let Ok(high) = self.u8(after + 4) else {
                return 0;
            };
            if rtype == 41 {
                return u16::from(high) << 4;
            }
            let Ok(len) = self.u16(after + 8) else {
                return 0;
            };
            at = after + 10 + usize::from(len);
            if at >= end {
                return 0;
            }
        }
        0
    }
}

/// Writes tcpdump's text for a DNS message over UDP: `msg` is the message as captured,
/// `length` its length on the wire.
pub(super) fn udp(out: &mut String, msg: &[u8], length: u32, style: Style) {
    message(out, msg, length, style);
}

/// Writes tcpdump's text for DNS over TCP, after `length N`: `segment` is the TCP payload
/// as captured, `length` its length on the wire (the two-byte message length included).
pub(super) fn tcp(out: &mut String, segment: &[u8], length: u32, style: Style) {
    if length < 2 {
        let _ = write!(out, " [DNS over TCP: length {length} < 2] (invalid)");
        return;
    }
    let length = length - 2;
    let Some(prefix) = segment.get(..2) else {
        out.push_str(" [|domain]");
        return;
    };
    let prefix = be16(prefix, 0);
    if u32::from(prefix) != length {
        let _ = write!(
            out,
            " [prefix length({prefix}) != length({length})] (invalid)"
        );
        return;
    }
    out.push(' ');
    message(out, &segment[2..], length, style);
}

/// `domain_print` after the TCP length: the header, the questions or answers, the length.
fn message(out: &mut String, msg: &[u8], length: u32, style: Style) {
    if length < 12 {
        let _ = write!(out, "domain [length {length} < 12] (invalid)");
        return;
    }
    if summary(out, &Message(msg), length, style).is_err() {
        out.push_str(" [|domain]");
    }
}

fn summary(out: &mut String, m: &Message<'_>, length: u32, style: Style) -> Result<()> {
    m.bytes(0, 12)?;
    let id = m.u16(0)?;
    let flags = m.u16(2)?;
    let counts = [m.u16(4)?, m.u16(6)?, m.u16(8)?, m.u16(10)?];
    let [qd, an, ns, ar] = counts;
    let opcode = OPCODES[usize::from((flags >> 11) & 0xf)];
    let mut pos = 12;
    if flags & 0x8000 != 0 {
        write!(out, "{id}{opcode}")?;
        write_rcode(out, (flags & 0xf) | m.extended_rcode(counts))?;
        write!(
            out,
            "{}{}{}{}",
            if flags & 0x0400 != 0 { "*" } else { "" },
            if flags & 0x0080 != 0 { "" } else { "-" },
            if flags & 0x0200 != 0 { "|" } else { "" },
            if flags & 0x0020 != 0 { "$" } else { "" },
        )?;
        if qd != 1 {
            write!(out, " [{qd}q]")?;
        }
        for _ in 0..qd {
            pos = m.skip_name(pos)? + 4;
        }
        write!(out, " {an}/{ns}/{ar}")?;
        let mut left = an;
        while left > 0 && (left == an || pos < m.0.len()) {
            if left != an {
                out.push(',');
            }
            match m.record(out, pos, style)? {
                Some(next) => pos = next,
                None => return Err(Truncated),
            }
            left -= 1;
        }
        if left > 0 {
            return Err(Truncated);
        }
    } else {
        write!(
            out,
            "{id}{opcode}{}{}",
            if flags & 0x0100 != 0 { "+" } else { "" },
            if flags & 0x0010 != 0 { "%" } else { "" }
        )?;
        if flags & 0x6cf != 0 {
            write!(out, " [b2&3=0x{flags:x}]")?;
        }
        if (flags >> 11) & 0xf == 1 {
            if qd != 0 {
                write!(out, " [{qd}q]")?;
            }
            if an != 1 {
                write!(out, " [{an}a]")?;
            }
        } else {
            if an != 0 {
                write!(out, " [{an}a]")?;
            }
            if qd != 1 {
                write!(out, " [{qd}q]")?;
            }
        }
        if ns != 0 {
            write!(out, " [{ns}n]")?;
        }
        if ar != 0 {
            write!(out, " [{ar}au]")?;
        }
        let mut left = qd;
        while left > 0 && (left == qd || pos < m.0.len()) {
            pos = m.question(out, pos, style)?;
            left -= 1;
        }
        if left > 0 {
            return Err(Truncated);
        }
    }
    write!(out, " ({length})")?;
    Ok(())
}
