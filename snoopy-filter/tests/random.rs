//! Random filter expressions generated from the pcap-filter grammar, compared with
//! libpcap's own program for the same expression (`tcpdump -ddd`), both run by our
//! interpreter on the corpus. The interpreter itself is checked against `tcpdump -r` by
//! `diff::hand_written_expressions_match_tcpdump`.
//!
//! `FILTER_SEED=N` replays a run, `FILTER_CASES=N` changes how many expressions (default
//! 3000); the seed is printed on failure.

use snoopy_filter::LinkType;
use snoopy_filter::{Mode, compile};

use crate::corpus::*;

const PNAMES_ADDR: [&str; 4] = ["ip", "arp", "rarp", "ip6"];
const PNAMES_PORT: [&str; 3] = ["tcp", "udp", "sctp"];
const PNAMES_ALL: [&str; 17] = [
    "ether", "ip", "ip6", "arp", "rarp", "tcp", "udp", "icmp", "icmp6", "sctp", "igmp", "igrp",
    "pim", "vrrp", "carp", "ah", "esp",
];
const PNAMES_INDEX: [&str; 16] = [
    "ether", "ip", "ip6", "arp", "tcp", "udp", "icmp", "icmp6", "sctp", "igmp", "atalk", "decnet",
    "lat", "sca", "mopdl", "moprc",
];
/// Protocols of the non-IP families, on their own.
const PNAMES_OTHER: [&str; 23] = [
    "atalk", "aarp", "decnet", "lat", "sca", "moprc", "mopdl", "iso", "esis", "isis", "is-is",
    "clnp", "stp", "ipx", "netbeui", "l1", "l2", "iih", "lsp", "snp", "csnp", "psnp", "es-is",
];
const LLC_KINDS: [&str; 15] = [
    "i", "s", "u", "rr", "rnr", "rej", "ui", "ua", "disc", "dm", "sabme", "test", "xid", "frmr", "",
];
const PORT_NAMES: [&str; 8] = [
    "http", "https", "ssh", "domain", "ntp", "snmp", "bgp", "telnet",
];
const CONSTS: [&str; 10] = [
    "tcpflags",
    "tcp-syn",
    "tcp-ack",
    "tcp-fin",
    "tcp-rst",
    "icmptype",
    "icmp-echo",
    "icmp-echoreply",
    "icmp6-echo",
    "tcp-push",
];

/// splitmix64, so that nearby seeds give unrelated streams.
pub(crate) fn mix(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    (z ^ (z >> 31)) | 1
}

pub(crate) struct G {
    pub(crate) rng: Rng,
    /// For the live dialect: leaves out `ip broadcast` (it needs the interface's netmask)
    /// and `protochain` (a backward jump), both refused in `Mode::Live`.
    pub(crate) live: bool,
}

impl G {
    fn ipv4(&mut self) -> String {
        let ip = *self.rng.pick(&IPS);
        format!("{}.{}.{}.{}", ip[0], ip[1], ip[2], ip[3])
    }

    fn id(&mut self, depth: usize) -> String {
        match self.rng.below(if depth > 2 { 11 } else { 14 }) {
            0 | 1 => self.ipv4(),
            2 => {
                let ip = *self.rng.pick(&IPS);
                let len = *self.rng.pick(&[0u32, 8, 16, 24, 32, 12]);
                let m = if len == 0 { 0 } else { u32::MAX << (32 - len) };
                let n = u32::from_be_bytes(ip) & m;
                let n = n.to_be_bytes();
                format!("{}.{}.{}.{}/{len}", n[0], n[1], n[2], n[3])
            }
            3 => format!("{}", self.rng.pick(&PORTS)),
            4 => self.rng.pick(&IP6S).to_string(),
            5 => {
                let m = *self.rng.pick(&MACS);
                format!(
                    "{:x}:{:x}:{:x}:{:x}:{:x}:{:x}",
                    m[0], m[1], m[2], m[3], m[4], m[5]
                )
            }
            6 => self.rng.pick(&PORT_NAMES).to_string(),
            7 => {
                let (a, b) = (*self.rng.pick(&PORTS), *self.rng.pick(&PORTS));
                let (a, b) = (self.range_end(a), self.range_end(b));
                format!("{a}-{b}")
            }
            8 => format!("{}", self.rng.below(4)),
            9 => {
                let ip = *self.rng.pick(&IPS);
                format!("{}.{}", ip[0], ip[1])
            }
            10 => format!(
                "{}/{}",
                self.rng.pick(&["2001:db8::", "fe80::", "::"]),
                self.rng.pick(&[0, 10, 32, 64])
            ),
            11 => format!("not {}", self.id(depth + 1)),
            _ => format!(
                "({} {} {})",
                self.id(depth + 1),
                self.rng.pick(&["and", "or"]),
                self.id(depth + 1)
            ),
        }
    }

    /// One end of a port range: mostly the number, sometimes a service name (a name with a
    /// hyphen too: libpcap cuts the range at its first hyphen, so `ftp-data` is fine at the
    /// end and wrong at the start).
    fn range_end(&mut self, port: u16) -> String {
        if self.rng.chance(30) {
            (*self
                .rng
                .pick(&["http", "ssh", "domain", "ntp", "smtp", "ftp-data"]))
            .to_string()
        } else {
            port.to_string()
        }
    }

    fn head(&mut self) -> String {
        let mut parts: Vec<String> = Vec::new();
        let aqual = *self
            .rng
            .pick(&["host", "net", "port", "portrange", "proto", "", ""]);
        let pq = match aqual {
            "port" | "portrange" => *self.rng.pick(&PNAMES_PORT),
            "proto" => *self.rng.pick(&["ip", "ip6", "ether", ""]),
            _ => *self.rng.pick(&PNAMES_ADDR),
        };
        if self.rng.chance(50) || aqual.is_empty() {
            parts.push(pq.to_string());
        }
        if aqual != "proto" && (self.rng.chance(40) || aqual.is_empty()) {
            parts.push(
                self.rng
                    .pick(&["src", "dst", "src or dst", "src and dst", "dst or src"])
                    .to_string(),
            );
        }
        if !aqual.is_empty() {
            parts.push(aqual.to_string());
        }
        parts.retain(|p| !p.is_empty());
        if parts.is_empty() {
            parts.push("host".into());
        }
        parts.join(" ")
    }

    fn arth(&mut self, depth: usize) -> String {
        match self.rng.below(if depth > 2 { 4 } else { 9 }) {
            0 => format!("{}", self.rng.below(300)),
            1 => self.rng.pick(&CONSTS).to_string(),
            2 => format!(
                "{}",
                self.rng
                    .pick(&[0, 1, 2, 6, 12, 13, 14, 20, 23, 0x800, 0x45])
            ),
            3 => {
                let p = *self.rng.pick(&PNAMES_INDEX);
                let idx = if self.rng.chance(70) {
                    format!("{}", self.rng.below(60))
                } else {
                    self.arth(depth + 1)
                };
                if self.rng.chance(40) {
                    format!("{p}[{idx}:{}]", self.rng.pick(&[1, 2, 4]))
                } else {
                    format!("{p}[{idx}]")
                }
            }
            4 | 5 => format!(
                "{} {} {}",
                self.arth(depth + 1),
                self.rng
                    .pick(&["+", "-", "*", "/", "%", "&", "|", "^", "<<", ">>"]),
                self.arth(depth + 1)
            ),
            6 => format!("({})", self.arth(depth + 1)),
            7 => "len".into(),
            _ => format!("-{}", self.arth(depth + 1)),
        }
    }

    fn term(&mut self, depth: usize) -> String {
        match self.rng.below(if depth > 3 { 9 } else { 12 }) {
            0..=2 => format!("{} {}", self.head(), self.id(depth)),
            3 => self.rng.pick(&PNAMES_ALL).to_string(),
            4 | 5 => format!(
                "{} {} {}",
                self.arth(depth),
                self.rng.pick(&["=", "==", "!=", ">", "<", ">=", "<="]),
                self.arth(depth)
            ),
            6 if self.rng.chance(50) => self.other_primitive(),
            6 => self
                .rng
                .pick(&[
                    "broadcast",
                    "multicast",
                    "ip multicast",
                    "ip6 multicast",
                    "ether broadcast",
                ])
                .to_string(),
            7 => format!(
                "{} {}",
                self.rng.pick(&["less", "greater"]),
                self.rng.below(120)
            ),
            8 => match self.rng.below(10) {
                9 => format!("ifindex {}", self.rng.pick(&[0u32, 1, 2, 3, u32::MAX])),
                8 => self.rng.pick(&["inbound", "outbound"]).to_string(),
                7 => format!("geneve {}", self.rng.pick(&["", "5", "100"])),
                0 => "vlan".into(),
                1 | 2 => format!("vlan {}", self.rng.pick(&[0, 1, 5, 100, 4095])),
                3 => "mpls".into(),
                4 => format!("mpls {}", self.rng.pick(&[0, 5, 6, 100, 0xfffff])),
                5 => format!("pppoes {}", self.rng.pick(&[3, 5, 0xffff])),
                _ => self.rng.pick(&["pppoes", "pppoed"]).to_string(),
            },
            9 => format!("not {}", self.term(depth + 1)),
            _ => format!("({})", self.expr(depth + 1)),
        }
    }

    /// Keywords of the non-IP families, LLC, `byte`, `ip broadcast`, DECnet addresses.
    fn other_primitive(&mut self) -> String {
        match self.rng.below(7) {
            0 | 1 => self.rng.pick(&PNAMES_OTHER).to_string(),
            2 => format!("llc {}", self.rng.pick(&LLC_KINDS)),
            3 => format!(
                "byte {} {} {}",
                self.rng.below(40),
                self.rng.pick(&["=", "<", ">"]),
                self.rng.pick(&[0, 1, 3, 8, 0x45, 0xaa, 0xfe])
            ),
            4 if !self.live => {
                if self.rng.chance(50) {
                    "ip broadcast".into()
                } else {
                    format!(
                        "{}protochain {}",
                        self.rng.pick(&["", "ip ", "ip6 "]),
                        self.rng.pick(&[6, 17, 58, 51, 44, 0])
                    )
                }
            }
            4 => "ip multicast".into(),
            5 => {
                let a = *self.rng.pick(&DECNET_ADDRS);
                format!(
                    "decnet {} {}.{}",
                    self.rng.pick(&[
                        "host",
                        "src",
                        "dst",
                        "src or dst",
                        "src and dst",
                        "dst host"
                    ]),
                    a >> 10,
                    a & 0x3ff
                )
            }
            _ => format!(
                "{} proto {}",
                self.rng.pick(&["iso", "isis"]),
                self.rng.pick(&[0x81, 0x82, 0x83, 15, 18, 26, 3])
            ),
        }
    }

    pub(crate) fn expr(&mut self, depth: usize) -> String {
        let mut s = self.term(depth);
        let n = self.rng.below(if depth > 1 { 2 } else { 4 });
        for _ in 0..n {
            let op = *self.rng.pick(&["and", "or", "&&", "||"]);
            let rhs = if self.rng.chance(30) {
                self.id(depth + 1)
            } else {
                self.term(depth + 1)
            };
            s = format!("{s} {op} {rhs}");
        }
        s
    }
}

/// `FILTER_SEED`, or a fresh seed from the clock.
pub(crate) fn seed() -> u64 {
    std::env::var("FILTER_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        })
}

#[test]
fn random_expressions_agree_with_libpcap() {
    require_tcpdump();
    let seed = seed();
    let cases: usize = std::env::var("FILTER_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3000);
    let mut g = G {
        rng: Rng(mix(seed)),
        live: false,
    };
    let exprs: Vec<(LinkType, String)> = (0..cases)
        .map(|i| {
            // Mostly Ethernet (where everything applies), some of each other link type.
            let link = match i % 8 {
                5 => LinkType::LinuxSll,
                6 => LinkType::LinuxSll2,
                7 => LinkType::RawIp,
                _ => LinkType::Ethernet,
            };
            (link, g.expr(0))
        })
        .collect();
    let eth = ethernet_corpus(mix(seed ^ 0x9e37_79b9_7f4a_7c15));
    let corpora: Vec<(LinkType, Vec<Pkt>)> = [
        LinkType::Ethernet,
        LinkType::LinuxSll,
        LinkType::LinuxSll2,
        LinkType::RawIp,
    ]
    .into_iter()
    .map(|l| {
        (
            l,
            eth.iter()
                .enumerate()
                .filter_map(|(i, p)| convert(p, l, i))
                .collect(),
        )
    })
    .collect();
    let dir = tempfile::tempdir().unwrap();
    // An empty capture of each link type, for what only `tcpdump -r` answers.
    let files: Vec<(LinkType, std::path::PathBuf)> = corpora
        .iter()
        .map(|(l, _)| {
            let path = dir.path().join(format!("{}.pcap", l.name()));
            write_pcap(&path, *l, &[]).expect("write an empty capture");
            (*l, path)
        })
        .collect();
    let threads = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .clamp(2, 8);
    let chunk = exprs.len().div_ceil(threads);
    let failures: Vec<String> = std::thread::scope(|s| {
        let hs: Vec<_> = exprs
            .chunks(chunk)
            .enumerate()
            .map(|(t, part)| {
                let scratch = dir.path().join(format!("e{t}"));
                let (corpora, files) = (&corpora, &files);
                s.spawn(move || {
                    let mut fails = Vec::new();
                    for (link, expr) in part {
                        let pkts = &corpora.iter().find(|(l, _)| l == link).unwrap().1;
                        let theirs = libpcap_program(*link, &scratch, expr);
                        let ours = compile(expr, *link, Mode::File, 262_144);
                        let tag = format!("[{}] {expr:?}", link.name());
                        match (theirs, ours) {
                            (Err(_), Err(_)) => {}
                            // libpcap's optimizer itself can fail ("no destination found for
                            // block-local relative jump", seen in live mode); its unoptimized
                            // program (`tcpdump -O`) is then the reference, as in `live`.
                            (Err(t), Ok(op)) => match libpcap_program_with(*link, &scratch, expr, false) {
                                Ok(unopt) => {
                                    if let Some(i) = pkts.iter().position(|p| {
                                        (unopt.matches(&p.data, p.wire_len, None) != 0)
                                            != (op.matches(&p.data, p.wire_len, None) != 0)
                                    }) {
                                        fails.push(format!(
                                            "{tag}: libpcap's optimizer fails ({t}); packet {i} differs from its unoptimized program"
                                        ));
                                    }
                                }
                                Err(_) => fails.push(format!("{tag}: libpcap rejects ({t}), we accept")),
                            },
                            // `tcpdump -d -y` compiles on a dead handle, which libpcap
                            // does not take for a file: it answers `inbound`, `outbound` and
                            // `ifindex` from a live socket's metadata there. What reads a
                            // file, `tcpdump -r`, must refuse them as we do, word for word.
                            (Ok(_), Err(e)) if e.message.ends_with("when reading savefiles") => {
                                let empty = &files.iter().find(|(l, _)| l == link).unwrap().1;
                                match tcpdump_keeps(empty, &scratch, expr) {
                                    Err(t) if t.ends_with(&format!("tcpdump: {}", e.message)) => {}
                                    Err(t) => fails.push(format!("{tag}: we say {e}, tcpdump -r says {t}")),
                                    Ok(_) => fails.push(format!("{tag}: tcpdump -r accepts, we reject: {e}")),
                                }
                            }
                            (Ok(_), Err(e)) => fails.push(format!("{tag}: libpcap accepts, we reject: {e}")),
                            (Ok(lp), Ok(op)) => {
                                for (i, p) in pkts.iter().enumerate() {
                                    let a = lp.matches(&p.data, p.wire_len, None) != 0;
                                    let b = op.matches(&p.data, p.wire_len, None) != 0;
                                    if a != b {
                                        fails.push(format!(
                                            "{tag}: packet {i} ({} of {} bytes): libpcap {a}, ours {b}",
                                            p.data.len(),
                                            p.wire_len
                                        ));
                                        break;
                                    }
                                }
                            }
                        }
                    }
                    fails
                })
            })
            .collect();
        hs.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    assert!(
        failures.is_empty(),
        "FILTER_SEED={seed}: {} of {cases} random expressions disagree with libpcap:\n{}",
        failures.len(),
        failures
            .iter()
            .take(60)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// Debugging aid: `FILTER_EXPR='...' cargo test -p snoopy-capture --test tests show_program
/// -- --ignored --nocapture` prints our program and libpcap's.
#[test]
#[ignore]
fn show_program() {
    let expr = std::env::var("FILTER_EXPR").unwrap_or_else(|_| "tcp port 80".into());
    let link = match std::env::var("FILTER_LINK").as_deref() {
        Ok("RAW") => LinkType::RawIp,
        Ok("LINUX_SLL") => LinkType::LinuxSll,
        Ok("LINUX_SLL2") => LinkType::LinuxSll2,
        _ => LinkType::Ethernet,
    };
    match compile(&expr, link, Mode::File, 262_144) {
        Ok(p) => println!("ours:\n{}", p.disassemble()),
        Err(e) => println!("ours: {e}"),
    }
    let dir = tempfile::tempdir().unwrap();
    match libpcap_program(link, &dir.path().join("e"), &expr) {
        Ok(p) => println!("libpcap:\n{}", p.disassemble()),
        Err(e) => println!("libpcap: {e}"),
    }
}
