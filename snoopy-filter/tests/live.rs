//! Live-socket VLAN semantics: programs compiled with [`Mode::Live`] must accept the same
//! packets as libpcap's program for a live Linux socket, where the kernel has moved the
//! outer VLAN tag into metadata (`SKF_AD_VLAN_TAG*`). libpcap's live program comes from
//! `tcpdump -i lo -ddd` (opening `lo` needs root: the test fails without it); both run in
//! our interpreter on frames presented as the kernel presents them.
//!
//! `inbound`, `outbound` and `ifindex N` are checked the same way on every link type, on
//! packets carrying the kernel's packet type and interface index as metadata.
//!
//! The kernel-side test (the program attached to a real socket on a veth pair) belongs with
//! the AF_PACKET capture.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::Command;

use snoopy_filter::LinkType;
use snoopy_filter::{Metadata, Mode, Program, compile};

use crate::corpus::*;

/// A frame as a live socket sees it: data, and the tag the kernel stripped, if any.
struct LivePkt {
    data: Vec<u8>,
    tci: Option<u16>,
}

/// Whether the kernel attaches `program` (`SO_ATTACH_FILTER` on a UDP socket: no packet is
/// sent and no privilege is needed); any refusal but EINVAL fails the test.
fn kernel_attaches(program: &Program) -> bool {
    let filter: Vec<libc::sock_filter> = program
        .instructions
        .iter()
        .map(|i| libc::sock_filter {
            code: i.code,
            jt: i.jt,
            jf: i.jf,
            k: i.k,
        })
        .collect();
    let fprog = libc::sock_fprog {
        len: u16::try_from(filter.len()).expect("at most 65535 instructions"),
        filter: filter.as_ptr().cast_mut(),
    };
    // SAFETY: socket(2) takes no pointers; the result is checked before use.
    let raw = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    assert!(
        raw >= 0,
        "socket(AF_INET, SOCK_DGRAM): {}",
        std::io::Error::last_os_error()
    );
    // SAFETY: `raw` is a new descriptor nothing else owns; OwnedFd closes it once.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    // SAFETY: `fprog` points at `filter`, both alive for the call, with its exact length.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_ATTACH_FILTER,
            (&raw const fprog).cast(),
            std::mem::size_of::<libc::sock_fprog>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        let err = std::io::Error::last_os_error();
        assert_eq!(
            err.raw_os_error(),
            Some(libc::EINVAL),
            "setsockopt(SO_ATTACH_FILTER): {err}"
        );
    }
    rc == 0
}

/// The validator against the kernel, on libpcap's live program and ours: each must get the
/// same answer from both, and ours must be attached wherever libpcap's is. (Ours is attached
/// where libpcap's `vlan and pppoes` is not: libpcap reads a scratch word no store precedes
/// and falls back to user space. Both are refused where libpcap's offset after `pppoes`
/// lands between the kernel's ancillary loads, as for `pppoes and inbound` on cooked v1.)
fn check_kernel(tag: &str, ours: &Program, libpcap: &Program, failures: &mut Vec<String>) {
    let mut attached = [false; 2];
    for (n, (whose, program)) in [("ours", ours), ("libpcap's", libpcap)]
        .into_iter()
        .enumerate()
    {
        attached[n] = kernel_attaches(program);
        let validator = program.validate(Mode::Live);
        if attached[n] != validator.is_ok() {
            failures.push(format!(
                "{tag}: the kernel {} {whose} program, Program::validate says {validator:?}",
                if attached[n] { "attaches" } else { "refuses" }
            ));
        }
    }
    if attached[1] && !attached[0] {
        failures.push(format!(
            "{tag}: the kernel attaches libpcap's program but refuses ours:\n{}",
            ours.disassemble()
        ));
    }
}

fn live_corpus() -> Vec<LivePkt> {
    let mut out = Vec::new();
    for p in ethernet_corpus(0x11fe) {
        let d = &p.data;
        if p.data.len() as u32 != p.wire_len {
            continue; // a live socket's frames are whole up to the snaplen
        }
        out.push(LivePkt {
            data: d.clone(),
            tci: None,
        });
        if d.len() >= 18 && matches!(u16::from_be_bytes([d[12], d[13]]), 0x8100 | 0x88a8) {
            // The kernel strips the outer tag into metadata.
            let tci = u16::from_be_bytes([d[14], d[15]]);
            let mut stripped = d[..12].to_vec();
            stripped.extend(&d[16..]);
            out.push(LivePkt {
                data: stripped,
                tci: Some(tci),
            });
        }
    }
    out
}

fn libpcap_live_program(
    scratch: &std::path::Path,
    expr: &str,
    optimize: bool,
) -> Result<Program, String> {
    libpcap_program_on(&["-i", "lo"], scratch, expr, optimize)
}

/// libpcap's program for `expr` on the handle tcpdump opens with `handle` (`-i lo`, ...).
fn libpcap_program_on(
    handle: &[&str],
    scratch: &std::path::Path,
    expr: &str,
    optimize: bool,
) -> Result<Program, String> {
    std::fs::write(scratch, expr).map_err(|e| e.to_string())?;
    let mut args = handle.to_vec();
    args.extend(["-ddd", "-F"]);
    if !optimize {
        args.insert(0, "-O");
    }
    let out = Command::new("tcpdump")
        .args(&args)
        .arg(scratch)
        .output()
        .map_err(|e| format!("running tcpdump: {e}"))?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
    }
    Program::from_ddd(&String::from_utf8_lossy(&out.stdout)).map_err(|e| e.to_string())
}

#[test]
fn live_vlan_programs_match_libpcap() {
    require_tcpdump();
    // SAFETY: geteuid has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(
        euid, 0,
        "this test needs root: libpcap only compiles its live-socket VLAN code for an open interface (run as root)"
    );
    let exprs = [
        "vlan",
        "vlan 5",
        "vlan 100",
        "vlan 0",
        "vlan 4095",
        "vlan and tcp",
        "vlan and ip",
        "vlan and ip6",
        "vlan 5 and tcp",
        "vlan 100 and udp",
        "vlan and port 80",
        "vlan and host 10.0.0.1",
        "vlan 5 and host 10.0.0.1",
        "vlan and vlan",
        "vlan and vlan 5",
        "vlan 5 and vlan 7",
        "vlan and vlan and ip",
        "vlan 5 or vlan 100",
        "not vlan",
        "not vlan and tcp",
        "tcp and vlan",
        "vlan or tcp",
        "vlan or ip",
        "vlan and not ip",
        "(vlan) and tcp",
        "(vlan or arp) and ip",
        "vlan and ether proto 0x0806",
        "vlan and ether host 02:00:00:00:00:01",
        "vlan and tcp[13] = 2",
        "vlan and ip[9] = 6",
        "vlan and tcp port 80 and tcp[tcpflags] & tcp-syn != 0",
        "vlan and ether[12:2] = 0x0800",
        "vlan and len > 100",
        "ip and vlan",
        "tcp port 80",
        "host 10.0.0.1 or vlan",
        "ether[12:2] = 0x8100",
        "ip6 and vlan 5",
        "vlan and net 10.0.0.0/8",
        "vlan and icmp",
        "vlan and ip multicast",
        "vlan 5 and not vlan 5",
        // What follows a live `vlan` at run-time offsets: MPLS, PPPoE (its PPP header then
        // starts at a run-time offset too), LLC, the non-IP families, DECnet addresses.
        "vlan and mpls",
        "vlan and mpls 100 and ip",
        "vlan 5 and mpls and tcp port 80",
        "vlan and pppoes",
        "vlan and pppoes 5 and ip",
        "vlan and pppoes and tcp port 80",
        "vlan and pppoes and ether[0] = 0x11",
        "vlan and pppoed",
        "vlan and llc",
        "vlan and llc ui",
        "vlan and iso",
        "vlan and isis",
        "vlan and decnet host 1.2",
        "vlan and atalk",
        "vlan and ipx",
        "vlan and stp",
        "vlan and byte 14 = 1",
        "pppoes and vlan",
        "vlan and geneve",
        "vlan and geneve 5 and tcp",
        "geneve and vlan",
        "geneve and ether host 02:00:00:00:00:01",
        "ip6 and vlan 5",
        "ip and vlan 5",
        "not ip and vlan 100",
        "tcp and vlan 5 and port 80",
    ];
    // libpcap 1.10's optimizer mangles the live `vlan ID` block when another test comes
    // before it (it jumps into the middle of the block, so A holds the "tag present" flag
    // instead of the tag): `ip6 and vlan 5` then matches no tagged packet, `ip6 and vlan 1`
    // every one. We follow libpcap's unoptimized program (`tcpdump -O`) for these.
    let optimizer_bug = ["ip6 and vlan 5", "ip and vlan 5"];
    let pkts = live_corpus();
    let dir = tempfile::tempdir().unwrap();
    let scratch = dir.path().join("expr");
    let mut failures = Vec::new();
    // What the scratch-word prefix is for: libpcap's program is refused, ours attached.
    let libpcap = libpcap_live_program(&scratch, "vlan and pppoes", true).unwrap();
    let ours = compile("vlan and pppoes", LinkType::Ethernet, Mode::Live, 262_144).unwrap();
    assert!(!kernel_attaches(&libpcap) && kernel_attaches(&ours));
    for expr in exprs {
        let theirs = libpcap_live_program(&scratch, expr, !optimizer_bug.contains(&expr));
        let ours = compile(expr, LinkType::Ethernet, Mode::Live, 262_144);
        match (theirs, ours) {
            (Err(_), Err(_)) => {}
            (Err(t), Ok(_)) => failures.push(format!("{expr:?}: libpcap rejects ({t}), we accept")),
            (Ok(_), Err(e)) => failures.push(format!("{expr:?}: libpcap accepts, we reject: {e}")),
            (Ok(lp), Ok(op)) => {
                check_kernel(&format!("{expr:?}"), &op, &lp, &mut failures);
                let mut bad = Vec::new();
                for (i, p) in pkts.iter().enumerate() {
                    let n = p.data.len() as u32;
                    let a = lp.matches(&p.data, n, p.tci) != 0;
                    let b = op.matches(&p.data, n, p.tci) != 0;
                    if a != b {
                        bad.push((i, p.tci, a, b));
                    }
                }
                if !bad.is_empty() {
                    failures.push(format!(
                        "{expr:?}: {} packets differ, e.g. {:?}",
                        bad.len(),
                        &bad[..bad.len().min(5)]
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// What the random live tests share: tcpdump and root (they open `device`), the seed
/// (`FILTER_SEED`), the number of cases (`FILTER_LIVE_CASES`, 200) and a live-dialect
/// expression generator seeded for this test (`salt`).
fn random_live_setup(device: &str, salt: u64) -> (u64, usize, crate::random::G) {
    require_tcpdump();
    // SAFETY: geteuid has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(euid, 0, "this test needs root (it opens {device})");
    let seed = crate::random::seed();
    let cases: usize = std::env::var("FILTER_LIVE_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200);
    let g = crate::random::G {
        rng: Rng(crate::random::mix(seed ^ salt)),
        live: true,
    };
    (seed, cases, g)
}

/// Random expressions around `vlan` (before, after, twice, negated), live dialect: ours
/// must agree with libpcap's live program on every frame, or (for the optimizer bug above,
/// which random expressions hit) with libpcap's unoptimized live program.
#[test]
fn random_live_vlan_expressions_match_libpcap() {
    let (seed, cases, mut g) = random_live_setup("lo", 0x11fe);
    // With the kernel's packet type and interface index, for `inbound`, `outbound` and
    // `ifindex`, which the generator also writes.
    let pkts = live_metadata_corpus(LinkType::Ethernet);
    let dir = tempfile::tempdir().unwrap();
    let scratch = dir.path().join("expr");
    let mut failures = Vec::new();
    for _ in 0..cases {
        let e = g.expr(2);
        let vid = *g.rng.pick(&["vlan", "vlan 5", "vlan 100", "vlan 7"]);
        let expr = match g.rng.below(5) {
            0 => format!("{vid} and {e}"),
            1 => format!("({e}) and {vid}"),
            2 => format!("{vid} and ({e}) or {vid}"),
            3 => format!("not {vid} and ({e})"),
            _ => format!("{vid} and {vid} and ({e})"),
        };
        let ours = compile(&expr, LinkType::Ethernet, Mode::Live, 262_144);
        let theirs = libpcap_live_program(&scratch, &expr, true);
        let verdicts = |p: &Program| -> Vec<bool> {
            pkts.iter()
                .map(|(d, m)| p.matches_with(d, d.len() as u32, m) != 0)
                .collect()
        };
        match (theirs, ours) {
            (Err(_), Err(_)) => {}
            // libpcap's optimizer itself can fail ("no destination found for block-local
            // relative jump"); then its unoptimized program (`tcpdump -O`) is the reference,
            // as for the optimizer bug below.
            (Err(t), Ok(op)) => match libpcap_live_program(&scratch, &expr, false) {
                Ok(unopt) if verdicts(&unopt) == verdicts(&op) => {}
                Ok(_) => failures.push(format!(
                    "{expr:?}: libpcap's optimizer fails ({t}); verdicts differ from its unoptimized program"
                )),
                Err(_) => failures.push(format!("{expr:?}: libpcap rejects ({t}), we accept")),
            },
            (Ok(_), Err(e)) => failures.push(format!("{expr:?}: libpcap accepts, we reject: {e}")),
            (Ok(lp), Ok(op)) => {
                check_kernel(&expr, &op, &lp, &mut failures);
                let mine = verdicts(&op);
                if mine != verdicts(&lp) {
                    let unopt = libpcap_live_program(&scratch, &expr, false)
                        .map(|p| verdicts(&p))
                        .unwrap_or_default();
                    if mine != unopt {
                        failures.push(format!(
                            "{expr:?}: verdicts differ from libpcap's live program"
                        ));
                    }
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "FILTER_SEED={seed}: {} of {cases} disagree:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The handle tcpdump opens for libpcap's live program on `link`: `lo` for Ethernet, the
/// `any` device in cooked v1 or v2 (opening a device sends nothing). No Linux device
/// captures raw IP without creating one, so raw IP takes `-y RAW` alone (a dead handle):
/// libpcap chooses between the metadata and its "when reading savefiles" error by whether
/// it reads a file, which a dead handle does not, so the program is a live socket's.
fn live_handle(link: LinkType) -> &'static [&'static str] {
    match link {
        LinkType::Ethernet => &["-i", "lo"],
        LinkType::LinuxSll => &["-i", "any", "-y", "LINUX_SLL"],
        LinkType::LinuxSll2 => &["-i", "any", "-y", "LINUX_SLL2"],
        _ => &["-y", "RAW"],
    }
}

/// Packets as a live socket of `link` presents them, with the kernel's metadata: every
/// packet type (0 host ... 4 outgoing) and interface indices 1 to 3. In the cooked headers
/// they are the metadata's values, as the kernel writes them; an Ethernet frame also comes
/// with its outer tag stripped, as in [`live_corpus`].
fn live_metadata_corpus(link: LinkType) -> Vec<(Vec<u8>, Metadata)> {
    let mut out = Vec::new();
    if link == LinkType::Ethernet {
        for (i, p) in live_corpus().into_iter().enumerate() {
            let meta = Metadata {
                vlan_tci: p.tci,
                pkt_type: (i % 5) as u8,
                ifindex: (i % 3) as u32 + 1,
            };
            out.push((p.data, meta));
        }
        return out;
    }
    for (i, p) in ethernet_corpus(0x11fe).iter().enumerate() {
        if p.data.len() as u32 != p.wire_len {
            continue;
        }
        let Some(c) = convert(p, link, i) else {
            continue;
        };
        let d = c.data;
        let meta = match link {
            LinkType::LinuxSll => Metadata {
                vlan_tci: None,
                pkt_type: d[1],
                ifindex: (i % 3) as u32 + 1,
            },
            LinkType::LinuxSll2 => Metadata {
                vlan_tci: None,
                pkt_type: d[10],
                ifindex: u32::from_be_bytes([d[4], d[5], d[6], d[7]]),
            },
            _ => Metadata {
                vlan_tci: None,
                pkt_type: (i % 5) as u8,
                ifindex: (i % 3) as u32 + 1,
            },
        };
        out.push((d, meta));
    }
    out
}

/// `inbound`, `outbound` and `ifindex N` in the live dialect, on every link type: accepted
/// and refused as libpcap's live program is, with the same verdict on every packet, and for
/// the plain keywords the very instructions `tcpdump -ddd` prints.
#[test]
fn live_direction_and_interface_match_libpcap() {
    require_tcpdump();
    // SAFETY: geteuid has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(euid, 0, "this test needs root (it opens lo and any)");
    let exprs = [
        "inbound",
        "outbound",
        "not inbound",
        "not outbound",
        "ifindex 1",
        "ifindex 2",
        "ifindex 3",
        "ifindex 0",
        "ifindex 4294967295",
        "ifindex 0x2",
        "ifindex 03",
        "inbound and tcp",
        "outbound or udp",
        "tcp port 80 and outbound",
        "inbound and ifindex 2",
        "ifindex 1 or ifindex 3",
        "not ifindex 2 and ip",
        "(inbound or arp) and not ifindex 3",
        "inbound and outbound",
        "vlan and inbound",
        "vlan 5 and outbound",
        "outbound and vlan",
        "vlan and ifindex 2",
        "mpls and inbound",
        "pppoes and inbound",
        "pppoes and ifindex 1",
        "inbound and pppoes and ip",
        "geneve and inbound",
        "geneve and ifindex 2",
        "ifindex 2 and geneve and tcp",
        "inbound or 80",
        "inbound 3",
        "ifindex",
        "ifindex (3)",
        "ifindex 4294967296",
        "ifindex 08",
    ];
    // The plain keywords compile to libpcap's program, instruction for instruction (and
    // the first four keep some packets, not all).
    let exact = [
        "inbound",
        "outbound",
        "not inbound",
        "ifindex 2",
        "ifindex 4294967295",
    ];
    let links = [
        LinkType::Ethernet,
        LinkType::LinuxSll,
        LinkType::LinuxSll2,
        LinkType::RawIp,
    ];
    let dir = tempfile::tempdir().unwrap();
    let scratch = dir.path().join("expr");
    let mut failures = Vec::new();
    let mut compared = 0;
    for link in links {
        let pkts = live_metadata_corpus(link);
        let tag = |expr: &str| format!("[{}] {expr:?}", link.name());
        for expr in exprs {
            let theirs = libpcap_program_on(live_handle(link), &scratch, expr, true);
            let ours = compile(expr, link, Mode::Live, 262_144);
            match (theirs, ours) {
                (Err(_), Err(_)) => {}
                (Err(t), Ok(_)) => {
                    failures.push(format!("{}: libpcap rejects ({t}), we accept", tag(expr)))
                }
                (Ok(_), Err(e)) => {
                    failures.push(format!("{}: libpcap accepts, we reject: {e}", tag(expr)))
                }
                (Ok(lp), Ok(op)) => {
                    check_kernel(&tag(expr), &op, &lp, &mut failures);
                    compared += 1;
                    if exact.contains(&expr) && lp != op {
                        failures.push(format!(
                            "{}: not libpcap's program:\n{}ours:\n{}",
                            tag(expr),
                            lp.disassemble(),
                            op.disassemble()
                        ));
                    }
                    let verdicts = |p: &Program| -> Vec<bool> {
                        pkts.iter()
                            .map(|(d, m)| p.matches_with(d, d.len() as u32, m) != 0)
                            .collect()
                    };
                    let (mine, want) = (verdicts(&op), verdicts(&lp));
                    let fast: Vec<bool> = {
                        let m = op.matcher();
                        pkts.iter()
                            .map(|(d, meta)| m.matches_with(d, d.len() as u32, meta) != 0)
                            .collect()
                    };
                    assert_eq!(fast, mine, "{}: Matcher and Program disagree", tag(expr));
                    if mine != want {
                        let bad: Vec<_> = (0..pkts.len())
                            .filter(|&i| mine[i] != want[i])
                            .map(|i| (i, pkts[i].1, want[i]))
                            .take(4)
                            .collect();
                        failures.push(format!("{}: verdicts differ, e.g. {bad:?}", tag(expr)));
                    }
                    // A wrong test of the metadata must show: the plain keywords keep some
                    // packets and drop others.
                    let kept = mine.iter().filter(|v| **v).count();
                    if exact[..4].contains(&expr) && (kept == 0 || kept == mine.len()) {
                        failures.push(format!(
                            "{}: keeps {kept} of {} packets",
                            tag(expr),
                            mine.len()
                        ));
                    }
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(compared >= 80, "only {compared} comparisons");
}

/// The interpreter's metadata model against libpcap's own reading of the cooked headers:
/// the kernel writes the packet type and interface index it holds into those headers, so
/// libpcap's metadata program (`tcpdump -i lo`) and its header program (cooked v1/v2) must
/// give every cooked packet the same verdict. Both are libpcap's, so this checks only how
/// the interpreter answers `ld [type]` and `ld [ifidx]`.
#[test]
fn metadata_loads_agree_with_the_cooked_headers() {
    require_tcpdump();
    // SAFETY: geteuid has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(euid, 0, "this test needs root (it opens lo and any)");
    let dir = tempfile::tempdir().unwrap();
    let scratch = dir.path().join("expr");
    let mut failures = Vec::new();
    for (link, exprs) in [
        (LinkType::LinuxSll, &["inbound", "outbound"][..]),
        (
            LinkType::LinuxSll2,
            &["inbound", "outbound", "ifindex 1", "ifindex 2", "ifindex 3"][..],
        ),
    ] {
        let pkts = live_metadata_corpus(link);
        for expr in exprs {
            let from_meta =
                libpcap_program_on(live_handle(LinkType::Ethernet), &scratch, expr, true)
                    .unwrap_or_else(|e| panic!("{expr:?} on lo: {e}"));
            let from_header = libpcap_program_on(live_handle(link), &scratch, expr, true)
                .unwrap_or_else(|e| panic!("{expr:?} on {link}: {e}"));
            assert_ne!(from_meta, from_header, "{expr:?}: the same program twice");
            let differ = pkts
                .iter()
                .filter(|(d, m)| {
                    let n = d.len() as u32;
                    (from_meta.matches_with(d, n, m) != 0)
                        != (from_header.matches_with(d, n, m) != 0)
                })
                .count();
            if differ > 0 {
                failures.push(format!(
                    "[{}] {expr:?}: {differ} packets differ",
                    link.name()
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Random expressions with `inbound`, `outbound` or `ifindex N` in them, live dialect, on
/// the cooked link types and raw IP (Ethernet's are in the random VLAN test above): ours
/// must agree with libpcap's live program on every packet and on whether it compiles.
#[test]
fn random_live_direction_expressions_match_libpcap() {
    let (seed, cases, mut g) = random_live_setup("any", 0xd1ec);
    let links = [LinkType::LinuxSll, LinkType::LinuxSll2, LinkType::RawIp];
    let corpora: Vec<_> = links.iter().map(|l| live_metadata_corpus(*l)).collect();
    let dir = tempfile::tempdir().unwrap();
    let scratch = dir.path().join("expr");
    let (mut failures, mut compared) = (Vec::new(), 0);
    for i in 0..cases {
        let (link, pkts) = (links[i % links.len()], &corpora[i % links.len()]);
        let e = g.expr(2);
        let kw = match g.rng.below(3) {
            0 => "inbound".to_string(),
            1 => "outbound".to_string(),
            _ => format!("ifindex {}", g.rng.below(4)),
        };
        let expr = match g.rng.below(4) {
            0 => format!("{kw} and {e}"),
            1 => format!("({e}) and {kw}"),
            2 => format!("{kw} or ({e})"),
            _ => format!("not {kw} and ({e})"),
        };
        let tag = format!("[{}] {expr:?}", link.name());
        let theirs = libpcap_program_on(live_handle(link), &scratch, &expr, true);
        let ours = compile(&expr, link, Mode::Live, 262_144);
        match (theirs, ours) {
            (Err(_), Err(_)) => {}
            (Err(t), Ok(_)) => failures.push(format!("{tag}: libpcap rejects ({t}), we accept")),
            (Ok(_), Err(e)) => failures.push(format!("{tag}: libpcap accepts, we reject: {e}")),
            (Ok(lp), Ok(op)) => {
                check_kernel(&tag, &op, &lp, &mut failures);
                compared += 1;
                if let Some(i) = pkts.iter().position(|(d, m)| {
                    let n = d.len() as u32;
                    (lp.matches_with(d, n, m) != 0) != (op.matches_with(d, n, m) != 0)
                }) {
                    failures.push(format!("{tag}: packet {i} ({:?}) differs", pkts[i].1));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "FILTER_SEED={seed}: {} of {cases} disagree:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(
        compared >= cases / 4,
        "only {compared} of {cases} compiled in both"
    );
}
