//! Hosts, ethers and networks files read as glibc's `files` service reads them, and a
//! [`Resolve`] that answers from them.
//!
//! Usable on their own: [`Hosts::parse`] then [`Hosts::lookup`] gives what `getaddrinfo`
//! would give from that file; [`Ethers`] what `ether_hostton` would, [`Networks`] what
//! `getnetbyname` would. [`Files::read`] reads the three from a root directory (`/` for the
//! machine, `/proc/PID/root` for a container) — the only I/O here, outside the compiler.
//!
//! glibc's rules, kept: `#` starts a comment anywhere on a line; fields are separated by
//! blanks; the first field is the address and the others are the canonical name and its
//! aliases, compared without regard to case; a line that does not parse is skipped; every
//! line naming a host counts, in file order (`getaddrinfo` returns all of them), while
//! ethers and networks answer with their first match.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use crate::resolve::{LookupError, Resolve};

/// The entries of a hosts file (`/etc/hosts`): addresses and the names they carry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hosts {
    entries: Vec<(IpAddr, Vec<String>)>,
}

impl Hosts {
    /// Reads hosts-file text; lines that do not parse are skipped, as glibc skips them.
    pub fn parse(text: &str) -> Self {
        let mut entries = Vec::new();
        for line in text.lines() {
            let mut words = strip_comment(line).split_whitespace();
            let Some(addr) = words.next() else { continue };
            let names: Vec<String> = words.map(str::to_string).collect();
            if names.is_empty() {
                continue;
            }
            // glibc tries IPv6 first, then inet_aton's forms for IPv4 (`10.1` is 10.0.0.1).
            let ip = match addr.parse::<Ipv6Addr>() {
                Ok(v6) => IpAddr::V6(v6),
                Err(_) => match inet_aton(addr) {
                    Some(v4) => IpAddr::V4(Ipv4Addr::from(v4)),
                    None => continue,
                },
            };
            entries.push((ip, names));
        }
        Hosts { entries }
    }

    /// Every address the file gives `name` (canonical name or alias, any case), in file
    /// order. [`getaddrinfo_order`] then orders them as `getaddrinfo` returns them.
    pub fn lookup(&self, name: &str) -> Vec<IpAddr> {
        self.entries
            .iter()
            .filter(|(_, names)| names.iter().any(|n| n.eq_ignore_ascii_case(name)))
            .map(|(ip, _)| *ip)
            .collect()
    }
}

/// The entries of an ethers file (`/etc/ethers`): `MAC name` lines.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ethers {
    entries: Vec<([u8; 6], String)>,
}

impl Ethers {
    /// Reads ethers-file text: six hexadecimal bytes separated by `:`, then the name.
    pub fn parse(text: &str) -> Self {
        let mut entries = Vec::new();
        for line in text.lines() {
            let mut words = strip_comment(line).split_whitespace();
            let (Some(mac), Some(name)) = (words.next(), words.next()) else {
                continue;
            };
            if let Some(mac) = parse_mac(mac) {
                entries.push((mac, name.to_string()));
            }
        }
        Ethers { entries }
    }

    /// The address of the first line naming `name` (any case), as `ether_hostton` finds it.
    pub fn lookup(&self, name: &str) -> Option<[u8; 6]> {
        self.entries
            .iter()
            .find(|(_, n)| n.eq_ignore_ascii_case(name))
            .map(|(mac, _)| *mac)
    }
}

/// The entries of a networks file (`/etc/networks`): `name number aliases...` lines.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Networks {
    entries: Vec<(u32, Vec<String>)>,
}

impl Networks {
    /// Reads networks-file text. The number is completed to four parts and read by
    /// `inet_network`, as glibc does: `loopback 127` is 127.0.0.0.
    pub fn parse(text: &str) -> Self {
        let mut entries = Vec::new();
        for line in text.lines() {
            let mut words = strip_comment(line).split_whitespace();
            let (Some(name), Some(number)) = (words.next(), words.next()) else {
                continue;
            };
            let parts = number.matches('.').count() + 1;
            let padded = format!("{number}{}", ".0".repeat(4usize.saturating_sub(parts)));
            let net = inet_network(&padded).unwrap_or(u32::MAX); // INADDR_NONE, as glibc
            let names = std::iter::once(name).chain(words).map(str::to_string);
            entries.push((net, names.collect()));
        }
        Networks { entries }
    }

    /// The number of the first network named `name` (any case), as `getnetbyname` finds it.
    pub fn lookup(&self, name: &str) -> Option<u32> {
        self.entries
            .iter()
            .find(|(_, names)| names.iter().any(|n| n.eq_ignore_ascii_case(name)))
            .map(|(net, _)| *net)
    }
}

/// A file that could not be read.
#[derive(Debug, thiserror::Error)]
#[error("reading {path}: {source}")]
pub struct ReadError {
    /// The file.
    pub path: PathBuf,
    /// Why.
    #[source]
    pub source: io::Error,
}

/// Names from hosts, ethers and networks files: the machine's (`Files::read("/")`) or a
/// container's (`/proc/PID/root`), as `getaddrinfo`, `ether_hostton` and `getnetbyname`
/// find them with `files` in `nsswitch.conf`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Files {
    /// `ROOT/etc/hosts`.
    pub hosts: Hosts,
    /// `ROOT/etc/ethers`.
    pub ethers: Ethers,
    /// `ROOT/etc/networks`.
    pub networks: Networks,
}

impl Files {
    /// Reads `ROOT/etc/hosts`, `ROOT/etc/ethers` and `ROOT/etc/networks`; a missing file
    /// has no entries (many images have no ethers or networks file).
    pub fn read(root: &Path) -> Result<Self, ReadError> {
        let read = |name: &str| {
            let path = root.join("etc").join(name);
            match std::fs::read_to_string(&path) {
                Ok(text) => Ok(text),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(String::new()),
                Err(source) => Err(ReadError { path, source }),
            }
        };
        Ok(Files {
            hosts: Hosts::parse(&read("hosts")?),
            ethers: Ethers::parse(&read("ethers")?),
            networks: Networks::parse(&read("networks")?),
        })
    }
}

impl Resolve for Files {
    fn host(&self, name: &str) -> Result<Vec<IpAddr>, LookupError> {
        let mut addrs = self.hosts.lookup(name);
        getaddrinfo_order(&mut addrs);
        Ok(addrs)
    }

    fn ether(&self, name: &str) -> Result<Option<[u8; 6]>, LookupError> {
        Ok(self.ethers.lookup(name))
    }

    fn network(&self, name: &str) -> Result<Option<u32>, LookupError> {
        Ok(self.networks.lookup(name))
    }
}

/// Orders addresses as glibc's `getaddrinfo` does when it knows no route to any of them
/// (RFC 3484 destination selection with glibc's default tables: rule 6, higher precedence
/// first — `::1`, other IPv6, then IPv4 —, rule 8, smaller scope first — loopback and
/// link-local before global —, then the order given). libpcap tests a name's addresses in
/// `getaddrinfo`'s order; on a machine with routes glibc also puts reachable destinations
/// first (rules 1, 2, 5, 9), so tcpdump there may order them differently. The order only
/// changes the program's layout, not which packets it accepts.
pub fn getaddrinfo_order(addrs: &mut [IpAddr]) {
    // A stable sort: rule 10 keeps the given order of equals.
    addrs.sort_by_key(|a| (std::cmp::Reverse(precedence(a)), scope(a)));
}

/// glibc's `default_precedence` table (RFC 3484), IPv4 as `::ffff:a.b.c.d`.
fn precedence(addr: &IpAddr) -> u8 {
    let v6 = match addr {
        IpAddr::V4(_) => return 10,
        IpAddr::V6(v6) => v6.octets(),
    };
    if v6 == Ipv6Addr::LOCALHOST.octets() {
        50
    } else if v6[..2] == [0x20, 0x02] {
        30
    } else if v6[..12] == [0; 12] {
        20
    } else if v6[..10] == [0; 10] && v6[10..12] == [0xff, 0xff] {
        10
    } else {
        40
    }
}

/// glibc's `get_scope`: 2 link-local (and loopback), 5 site-local, 14 global; multicast
/// carries its own.
fn scope(addr: &IpAddr) -> u8 {
    match addr {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            if o[0] == 127 || (o[0] == 169 && o[1] == 254) {
                2
            } else {
                14
            }
        }
        IpAddr::V6(v6) => {
            let o = v6.octets();
            if o[0] == 0xff {
                o[1] & 0x0f
            } else if (o[0] == 0xfe && o[1] & 0xc0 == 0x80) || *v6 == Ipv6Addr::LOCALHOST {
                2
            } else if o[0] == 0xfe && o[1] & 0xc0 == 0xc0 {
                5
            } else {
                14
            }
        }
    }
}

fn strip_comment(line: &str) -> &str {
    line.split('#').next().unwrap_or("")
}

/// One number of `inet_aton`/`inet_network`: `0x` hexadecimal, leading `0` octal, else
/// decimal; `None` unless the whole text is digits of its base.
fn c_number(text: &str) -> Option<u64> {
    let (digits, radix) =
        if let Some(hex) = text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
            (hex, 16)
        } else if text.len() > 1 && text.starts_with('0') {
            (&text[1..], 8)
        } else {
            (text, 10)
        };
    if digits.is_empty() && radix != 8 {
        return None;
    }
    if !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    // Saturating: an overlong number is out of range, whatever its value.
    Some(
        digits
            .chars()
            .fold(0u64, |n, c| {
                n.saturating_mul(u64::from(radix))
                    .saturating_add(u64::from(c.to_digit(radix).unwrap_or(0)))
            })
            .min(u64::from(u32::MAX) + 1),
    )
}

/// glibc's `inet_aton` (the whole text): `a.b.c.d`, `a.b.c` (c 16 bits), `a.b` (b 24
/// bits) or `a` (32 bits), each part decimal, octal or hexadecimal.
fn inet_aton(text: &str) -> Option<u32> {
    let parts: Vec<u64> = text.split('.').map(c_number).collect::<Option<_>>()?;
    let (last, first) = parts.split_last()?;
    if first.len() > 3 || first.iter().any(|&p| p > 0xff) {
        return None;
    }
    let room = 32 - 8 * first.len() as u32;
    if *last >= 1u64 << room {
        return None;
    }
    let head = first
        .iter()
        .enumerate()
        .fold(0u32, |v, (i, &p)| v | (p as u32) << (24 - 8 * i as u32));
    Some(head | *last as u32)
}

/// glibc's `inet_network`: up to four parts of at most 255, joined left to right
/// (`10.1` is 0x0a01).
fn inet_network(text: &str) -> Option<u32> {
    let parts: Vec<u64> = text.split('.').map(c_number).collect::<Option<_>>()?;
    if parts.len() > 4 || parts.iter().any(|&p| p > 0xff) {
        return None;
    }
    Some(parts.iter().fold(0u32, |v, &p| v << 8 | p as u32))
}

/// `xx:xx:xx:xx:xx:xx`, each byte one or two hexadecimal digits.
fn parse_mac(text: &str) -> Option<[u8; 6]> {
    let mut mac = [0u8; 6];
    let mut parts = text.split(':');
    for byte in &mut mac {
        let part = parts.next()?;
        if part.is_empty() || part.len() > 2 {
            return None;
        }
        *byte = u8::from_str_radix(part, 16).ok()?;
    }
    parts.next().is_none().then_some(mac)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ips(list: &[&str]) -> Vec<IpAddr> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    #[test]
    fn hosts_lines_comments_aliases_and_order() {
        let hosts = Hosts::parse(
            "# a comment line\n\
             127.0.0.1\tlocalhost\n\
             10.0.0.7 web.shop.svc web # the pod\n\
             fd00::7 web\n\
             10.0.0.8 WEB\n\
             not-an-address web\n\
             10.0.0.9\n\
             10.1 short # inet_aton: 10.0.0.1\n\
             0x0a.010.0.1 oddly # hex and octal parts\n",
        );
        assert_eq!(
            hosts.lookup("web"),
            ips(&["10.0.0.7", "fd00::7", "10.0.0.8"])
        );
        assert_eq!(hosts.lookup("Web.Shop.Svc"), ips(&["10.0.0.7"]));
        assert_eq!(hosts.lookup("short"), ips(&["10.0.0.1"]));
        assert_eq!(hosts.lookup("oddly"), ips(&["10.8.0.1"]));
        assert!(hosts.lookup("comment").is_empty());
        assert!(hosts.lookup("pod").is_empty());
    }

    #[test]
    fn ipv4_forms_are_inet_atons() {
        assert_eq!(inet_aton("1.2.3.4"), Some(0x0102_0304));
        assert_eq!(inet_aton("1.2.300"), Some(0x0102_012c));
        assert_eq!(inet_aton("16777217"), Some(0x0100_0001));
        assert_eq!(inet_aton("1.2.3.256"), None);
        assert_eq!(inet_aton("1.2.3.4.5"), None);
        assert_eq!(inet_aton("08.1.1.1"), None); // 8 is no octal digit
        assert_eq!(inet_aton("1..2"), None);
        assert_eq!(inet_aton(""), None);
    }

    #[test]
    fn ethers_take_the_first_match() {
        let ethers = Ethers::parse(
            "02:00:00:00:00:01 gw # router\n\
             2:0:0:0:0:2 GW\n\
             02:00:00:00:00:03\n\
             02:00:00:00:00:0g bad\n\
             02:00:00:00:00 short\n\
             02:00:00:00:00:04:05 long\n",
        );
        assert_eq!(ethers.lookup("gw"), Some([2, 0, 0, 0, 0, 1]));
        assert_eq!(
            Ethers::parse("2:0:0:0:0:2 GW").lookup("gw"),
            Some([2, 0, 0, 0, 0, 2])
        );
        for name in ["bad", "short", "long", "router"] {
            assert_eq!(ethers.lookup(name), None, "{name}");
        }
    }

    #[test]
    fn networks_are_padded_then_read_by_inet_network() {
        let networks = Networks::parse(
            "default 0.0.0.0\nloopback 127 lo # alias\nlink-local 169.254.0.0\nten 10.1\nhex 0x0a\n",
        );
        assert_eq!(networks.lookup("loopback"), Some(0x7f00_0000));
        assert_eq!(networks.lookup("LO"), Some(0x7f00_0000));
        assert_eq!(networks.lookup("link-local"), Some(0xa9fe_0000));
        assert_eq!(networks.lookup("ten"), Some(0x0a01_0000));
        assert_eq!(networks.lookup("hex"), Some(0x0a00_0000));
        assert_eq!(networks.lookup("default"), Some(0));
        assert_eq!(networks.lookup("nowhere"), None);
    }

    #[test]
    fn addresses_come_in_getaddrinfos_order() {
        let mut addrs = ips(&[
            "10.0.0.1",
            "fd00::1",
            "127.0.0.1",
            "2002::1",
            "::1",
            "10.0.0.2",
            "fe80::1",
        ]);
        getaddrinfo_order(&mut addrs);
        assert_eq!(
            addrs,
            ips(&[
                "::1",
                "fe80::1",
                "fd00::1",
                "2002::1",
                "127.0.0.1",
                "10.0.0.1",
                "10.0.0.2"
            ])
        );
    }

    #[test]
    fn missing_files_are_empty() {
        let dir = std::env::temp_dir().join(format!("snoopy-filter-files-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("etc")).unwrap();
        std::fs::write(dir.join("etc/hosts"), "10.9.8.7 db\n").unwrap();
        let files = Files::read(&dir).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(files.host("db"), Ok(ips(&["10.9.8.7"])));
        assert_eq!(files.ether("db"), Ok(None));
        assert_eq!(files.network("db"), Ok(None));
    }
}
