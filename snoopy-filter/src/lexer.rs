//! Splits a filter expression into tokens the way libpcap's `scanner.l` does.
//!
//! flex picks the longest match and, between matches of equal length, the rule written
//! first; so `1-5` is one name (a port range), `len-1` is a name too (not `len - 1`), and
//! `tcp-syn` is the constant 2. This lexer reproduces that by measuring every candidate
//! pattern at the current position and keeping the longest, ties broken in flex's rule order.

use std::net::Ipv6Addr;

use super::error::CompileError;
use super::names;

/// A keyword of the pcap-filter language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kw {
    // Protocol qualifiers (`pname` in grammar.y).
    Link,
    Ip,
    Ip6,
    Arp,
    Rarp,
    Tcp,
    Udp,
    Icmp,
    Icmp6,
    Sctp,
    Igmp,
    Igrp,
    Pim,
    Vrrp,
    Carp,
    Ah,
    Esp,
    Atalk,
    Aarp,
    Decnet,
    Lat,
    Sca,
    Moprc,
    Mopdl,
    Iso,
    Esis,
    Isis,
    Clnp,
    Stp,
    Ipx,
    Netbeui,
    IsisL1,
    IsisL2,
    IsisIih,
    IsisLsp,
    IsisSnp,
    IsisCsnp,
    IsisPsnp,
    // Direction and address qualifiers.
    Src,
    Dst,
    Host,
    Net,
    Port,
    Portrange,
    Mask,
    Proto,
    Protochain,
    // Primitives.
    Less,
    Greater,
    Broadcast,
    Multicast,
    Len,
    Vlan,
    Mpls,
    Pppoed,
    Pppoes,
    Geneve,
    Llc,
    Byte,
    Inbound,
    Outbound,
    Ifindex,
    /// `rnr`/`rulenum`: a pflog keyword, also an LLC S-frame subtype (`llc rnr`).
    Rnr,
    /// `gateway`: libpcap 1.10 built with IPv6 refuses it (`'gateway' not supported in this
    /// configuration`), and so does this compiler, with the same words.
    Gateway,
    /// A keyword of the language this compiler does not implement.
    Unsupported(&'static str),
}

/// A token and where it starts.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    Kw(Kw),
    Num(u32),
    /// A name (host, port or protocol name, port range `a-b`); a leading `\` is removed.
    Id(String),
    /// A dotted IPv4 address or prefix (`10`, `10.1`, `10.1.2.3`).
    Hid(String),
    /// An IPv6 address.
    Hid6(Ipv6Addr),
    /// A MAC address.
    Eid([u8; 6]),
    /// `and`, `&&`.
    And,
    /// `or`, `||`.
    Or,
    /// `not`, `!`.
    Not,
    Geq,
    Leq,
    Neq,
    Lsh,
    Rsh,
    /// One of `+ - * / % : [ ] < > ( ) & | ^ =` (`==` too).
    Sym(char),
    Eof,
}

/// A token with its 1-based column.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Token {
    pub tok: Tok,
    pub col: usize,
}

fn keyword(word: &str) -> Option<Tok> {
    use Kw::*;
    let kw = match word {
        "link" | "ether" | "ppp" | "slip" | "fddi" | "tr" | "wlan" => Link,
        "ip" => Ip,
        "ip6" => Ip6,
        "arp" => Arp,
        "rarp" => Rarp,
        "tcp" => Tcp,
        "udp" => Udp,
        "icmp" => Icmp,
        "icmp6" => Icmp6,
        "sctp" => Sctp,
        "igmp" => Igmp,
        "igrp" => Igrp,
        "pim" => Pim,
        "vrrp" => Vrrp,
        "carp" => Carp,
        "ah" => Ah,
        "esp" => Esp,
        "atalk" => Atalk,
        "aarp" => Aarp,
        "decnet" => Decnet,
        "lat" => Lat,
        "sca" => Sca,
        "moprc" => Moprc,
        "mopdl" => Mopdl,
        "iso" => Iso,
        "esis" | "es-is" => Esis,
        "isis" | "is-is" => Isis,
        "clnp" => Clnp,
        "stp" => Stp,
        "ipx" => Ipx,
        "netbeui" => Netbeui,
        "l1" => IsisL1,
        "l2" => IsisL2,
        "iih" => IsisIih,
        "lsp" => IsisLsp,
        "snp" => IsisSnp,
        "csnp" => IsisCsnp,
        "psnp" => IsisPsnp,
        "src" => Src,
        "dst" => Dst,
        "host" => Host,
        "net" => Net,
        "port" => Port,
        "portrange" => Portrange,
        "mask" => Mask,
        "proto" => Proto,
        "protochain" => Protochain,
        "less" => Less,
        "greater" => Greater,
        "broadcast" => Broadcast,
        "multicast" => Multicast,
        "len" | "length" => Len,
        "vlan" => Vlan,
        "mpls" => Mpls,
        "pppoed" => Pppoed,
        "pppoes" => Pppoes,
        "geneve" => Geneve,
        "llc" => Llc,
        "byte" => Byte,
        "rnr" | "rulenum" => Rnr,
        "inbound" => Inbound,
        "outbound" => Outbound,
        "ifindex" => Ifindex,
        "gateway" => Gateway,
        "and" => return Some(Tok::And),
        "or" => return Some(Tok::Or),
        "not" => return Some(Tok::Not),
        _ => {
            return UNSUPPORTED_KEYWORDS
                .iter()
                .find(|k| **k == word)
                .map(|k| Tok::Kw(Unsupported(k)));
        }
    };
    Some(Tok::Kw(kw))
}

/// Keywords of pcap-filter(7) that this compiler recognises but does not implement, so that
/// they give "not supported" instead of being taken for host names.
const UNSUPPORTED_KEYWORDS: &[&str] = &[
    "radio",
    "vxlan",
    "type",
    "subtype",
    "dir",
    "direction",
    "addr1",
    "address1",
    "addr2",
    "address2",
    "addr3",
    "address3",
    "addr4",
    "address4",
    "ra",
    "ta",
    "lane",
    "metac",
    "bcc",
    "oam",
    "oamf4",
    "oamf4ec",
    "oamf4sc",
    "sc",
    "ilmic",
    "vpi",
    "vci",
    "connectmsg",
    "metaconnect",
    "on",
    "ifname",
    "rset",
    "ruleset",
    "srnr",
    "subrulenum",
    "reason",
    "action",
    "fisu",
    "lssu",
    "lsu",
    "msu",
    "hfisu",
    "hlssu",
    "hmsu",
    "sio",
    "opc",
    "dpc",
    "sls",
    "hsio",
    "hopc",
    "hdpc",
    "hsls",
];

fn is_hex(c: u8) -> bool {
    c.is_ascii_hexdigit()
}

/// Length of the longest `N` (`[0-9]+ | 0x[0-9a-f]+`) at the start of `s`.
fn num_len(s: &[u8]) -> usize {
    if s.len() > 2 && s[0] == b'0' && (s[1] == b'x' || s[1] == b'X') && is_hex(s[2]) {
        2 + s[2..].iter().take_while(|c| is_hex(**c)).count()
    } else {
        s.iter().take_while(|c| c.is_ascii_digit()).count()
    }
}

/// Length of the longest `N.N`, `N.N.N` or `N.N.N.N` at the start of `s` (0 if none).
fn hid_len(s: &[u8]) -> usize {
    let mut best = 0;
    let mut pos = num_len(s);
    if pos == 0 {
        return 0;
    }
    for _ in 0..3 {
        if s.get(pos) != Some(&b'.') {
            break;
        }
        let n = num_len(&s[pos + 1..]);
        if n == 0 {
            break;
        }
        pos += 1 + n;
        best = pos;
    }
    best
}

/// Length of the name pattern `[A-Za-z0-9]([-_.A-Za-z0-9]*[.A-Za-z0-9])?`.
fn id_len(s: &[u8]) -> usize {
    if s.is_empty() || !s[0].is_ascii_alphanumeric() {
        return 0;
    }
    let run = s
        .iter()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
        .count();
    // The name cannot end with '-' or '_': back off to the last allowed final character.
    (1..=run)
        .rev()
        .find(|&n| s[n - 1].is_ascii_alphanumeric() || s[n - 1] == b'.')
        .unwrap_or(1)
}

/// A MAC address at the start of `s`: `B:B:B:B:B:B` (also with `-` or `.`), `W.W.W` or
/// twelve hex digits; returns its length and bytes.
fn mac(s: &[u8]) -> Option<(usize, [u8; 6])> {
    let mut best: Option<(usize, [u8; 6])> = None;
    for sep in [b':', b'-', b'.'] {
        let mut pos = 0;
        let mut out = [0u8; 6];
        let mut ok = true;
        for (i, byte) in out.iter_mut().enumerate() {
            if i > 0 {
                if s.get(pos) != Some(&sep) {
                    ok = false;
                    break;
                }
                pos += 1;
            }
            let n = s[pos..].iter().take(2).take_while(|c| is_hex(**c)).count();
            if n == 0 {
                ok = false;
                break;
            }
            *byte = u8::from_str_radix(std::str::from_utf8(&s[pos..pos + n]).ok()?, 16).ok()?;
            pos += n;
        }
        if ok && best.is_none_or(|(l, _)| pos > l) {
            best = Some((pos, out));
        }
    }
    // W.W.W with four hex digits each, or twelve hex digits.
    let hex4 = |p: usize| s.len() >= p + 4 && s[p..p + 4].iter().all(|c| is_hex(*c));
    let parse12 = |digits: &[u8]| {
        let mut out = [0u8; 6];
        for (i, b) in out.iter_mut().enumerate() {
            *b = u8::from_str_radix(std::str::from_utf8(&digits[2 * i..2 * i + 2]).ok()?, 16)
                .ok()?;
        }
        Some(out)
    };
    if hex4(0) && s.get(4) == Some(&b'.') && hex4(5) && s.get(9) == Some(&b'.') && hex4(10) {
        let digits: Vec<u8> = [&s[0..4], &s[5..9], &s[10..14]].concat();
        if best.is_none_or(|(l, _)| 14 > l) {
            best = parse12(&digits).map(|m| (14, m));
        }
    }
    if hex4(0) && hex4(4) && hex4(8) && best.is_none_or(|(l, _)| 12 > l) {
        best = parse12(&s[..12]).map(|m| (12, m)).or(best);
    }
    best
}

/// An IPv6 address at the start of `s`: the longest prefix of the run of hex digits, `:`
/// and `.` that is a valid address (flex's V6 pattern only matches valid forms).
fn v6(s: &[u8]) -> Option<(usize, Ipv6Addr)> {
    let run = s
        .iter()
        .take_while(|c| is_hex(**c) || **c == b':' || **c == b'.')
        .count();
    let text = std::str::from_utf8(&s[..run]).ok()?;
    (2..=run).rev().find_map(|n| {
        let t = &text[..n];
        if t.contains(':') {
            t.parse().ok().map(|a| (n, a))
        } else {
            None
        }
    })
}

/// Parses a `NUM` token's text: decimal, octal with a leading 0, hex with 0x.
fn number(text: &str, col: usize) -> Result<u32, CompileError> {
    let (digits, radix) = if let Some(h) = text.strip_prefix("0x").or(text.strip_prefix("0X")) {
        (h, 16)
    } else if text.len() > 1 && text.starts_with('0') {
        if text.bytes().any(|c| c > b'7') {
            return Err(CompileError::syntax(
                col,
                format!("number {text} contains non-octal digit"),
            ));
        }
        (&text[1..], 8)
    } else {
        (text, 10)
    };
    u32::from_str_radix(digits, radix)
        .map_err(|_| CompileError::syntax(col, format!("number {text} overflows 32 bits")))
}

/// Splits `expr` into tokens, ending with [`Tok::Eof`].
pub(crate) fn tokenize(expr: &str) -> Result<Vec<Token>, CompileError> {
    let s = expr.as_bytes();
    // Columns count characters, not bytes, so the caret lines up in a terminal. Counted
    // from the previous token on, not from the start each time (linear, not quadratic, in
    // the expression's length).
    let (mut counted_to, mut counted) = (0, 0);
    let mut col_of = |i: usize| {
        counted += expr[counted_to..i].chars().count();
        counted_to = i;
        counted + 1
    };
    let mut out = Vec::new();
    let mut i = 0;
    while i < s.len() {
        let c = s[i];
        let col = col_of(i);
        if matches!(c, b' ' | b'\t' | b'\n' | b'\r') {
            i += 1;
            continue;
        }
        let two = s.get(i..i + 2).unwrap_or(&[]);
        let op2 = match two {
            b">=" => Some(Tok::Geq),
            b"<=" => Some(Tok::Leq),
            b"!=" => Some(Tok::Neq),
            b"==" => Some(Tok::Sym('=')),
            b"<<" => Some(Tok::Lsh),
            b">>" => Some(Tok::Rsh),
            b"&&" => Some(Tok::And),
            b"||" => Some(Tok::Or),
            _ => None,
        };
        if let Some(tok) = op2 {
            out.push(Token { tok, col });
            i += 2;
            continue;
        }
        // `::1` starts with a colon: an IPv6 address, not the `:` of `ip[0:2]`.
        let v6_here = c == b':' && v6(&s[i..]).is_some();
        if b"+-*/%:[]<>()&|^=".contains(&c) && !v6_here {
            out.push(Token {
                tok: Tok::Sym(c as char),
                col,
            });
            i += 1;
            continue;
        }
        if c == b'!' {
            out.push(Token { tok: Tok::Not, col });
            i += 1;
            continue;
        }
        if c == b'\\' {
            // `\name`: a name even if it spells a keyword (`ip proto \tcp`).
            let n = s[i + 1..]
                .iter()
                .take_while(|c| !matches!(c, b' ' | b'!' | b'(' | b')' | b'\n' | b'\t'))
                .count();
            if n == 0 {
                return Err(CompileError::syntax(col, "illegal char '\\'"));
            }
            out.push(Token {
                tok: Tok::Id(expr[i + 1..i + 1 + n].to_string()),
                col,
            });
            i += 1 + n;
            continue;
        }
        let rest = &s[i..];
        let idl = id_len(rest);
        let numl = if c.is_ascii_digit() { num_len(rest) } else { 0 };
        let hidl = if c.is_ascii_digit() { hid_len(rest) } else { 0 };
        let macm = mac(rest);
        let v6m = v6(rest);
        let macl = macm.map_or(0, |m| m.0);
        let v6l = v6m.map_or(0, |m| m.0);
        let longest = idl.max(numl).max(hidl).max(macl).max(v6l);
        debug_assert!(longest > 0 || !v6_here);
        if longest == 0 {
            // flex: any run of characters that can start no token is one illegal token.
            let n = rest
                .iter()
                .take_while(|c| !b" []\t\n-_.!<>()&|=".contains(c) && !c.is_ascii_alphanumeric())
                .count()
                .max(1);
            let bad = String::from_utf8_lossy(&rest[..n.min(rest.len())]);
            return Err(CompileError::syntax(col, format!("illegal token: {bad}")));
        }
        let text = &expr[i..i + longest];
        // Equal lengths: flex takes the rule written first (keywords, MAC, NUM, HID, IPv6, name).
        let tok = if idl == longest && keyword(text).is_some() {
            keyword(text).expect("checked")
        } else if let (Some((l, m)), true) = (macm, macl == longest) {
            debug_assert_eq!(l, longest);
            Tok::Eid(m)
        } else if numl == longest {
            if let Some(v) = names::constant(text) {
                Tok::Num(v)
            } else {
                Tok::Num(number(text, col)?)
            }
        } else if hidl == longest {
            Tok::Hid(text.to_string())
        } else if v6l == longest {
            Tok::Hid6(v6m.expect("matched").1)
        } else if let Some(v) = names::constant(text) {
            Tok::Num(v)
        } else {
            Tok::Id(text.to_string())
        };
        out.push(Token { tok, col });
        i += longest;
    }
    out.push(Token {
        tok: Tok::Eof,
        col: col_of(s.len()),
    });
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<Tok> {
        tokenize(s).unwrap().into_iter().map(|t| t.tok).collect()
    }

    #[test]
    fn longest_match_like_flex() {
        assert_eq!(toks("1-5")[0], Tok::Id("1-5".into()));
        assert_eq!(toks("len-1")[0], Tok::Id("len-1".into()));
        assert_eq!(toks("tcp-syn")[0], Tok::Num(2));
        assert_eq!(toks("10.1.2.3")[0], Tok::Hid("10.1.2.3".into()));
        assert_eq!(toks("0x10")[0], Tok::Num(16));
        assert_eq!(toks("010")[0], Tok::Num(8));
        assert_eq!(toks("1:2:3:4:5:6")[0], Tok::Eid([1, 2, 3, 4, 5, 6]));
        assert_eq!(toks("::1")[0], Tok::Hid6("::1".parse().unwrap()));
        assert_eq!(toks("\\tcp")[0], Tok::Id("tcp".into()));
        assert_eq!(
            toks("ip[0]-1"),
            vec![
                Tok::Kw(Kw::Ip),
                Tok::Sym('['),
                Tok::Num(0),
                Tok::Sym(']'),
                Tok::Sym('-'),
                Tok::Num(1),
                Tok::Eof
            ]
        );
    }

    #[test]
    fn errors_have_columns() {
        let e = tokenize("port 08").unwrap_err();
        assert_eq!(e.column, Some(6));
        assert!(tokenize("host $").is_err());
    }
}
