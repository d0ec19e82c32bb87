//! Differential tests of the filter compiler against libpcap (through tcpdump).
//!
//! - Hand-written expressions (`exprs.txt`), for every supported link type: the
//!   packets `tcpdump -r corpus.pcap -w - EXPR` keeps must be exactly the packets our
//!   compiled program keeps in our interpreter. The same run checks the interpreter itself:
//!   libpcap's own program for EXPR (`tcpdump -ddd`) run by our interpreter must keep that
//!   same set too.
//! - Random expressions generated from the grammar (seeded; `FILTER_SEED` and
//!   `FILTER_CASES` override): our program and libpcap's program, both in the interpreter
//!   proven above, must agree on every corpus packet, and on whether the expression is valid.
//! - Expressions libpcap rejects must be rejected by us.
//!
//! tcpdump is required: the tests fail, not skip, without it.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use snoopy_filter::LinkType;
use snoopy_filter::{CompileError, ErrorKind, Mode, compile};

use crate::corpus::*;

const LINKS: [LinkType; 4] = [
    LinkType::Ethernet,
    LinkType::LinuxSll,
    LinkType::LinuxSll2,
    LinkType::RawIp,
];
const SNAPLEN: u32 = 262_144;

fn hand_written() -> Vec<String> {
    include_str!("exprs.txt")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(String::from)
        .collect()
}

struct Corpus {
    _dir: tempfile::TempDir,
    files: Vec<(LinkType, PathBuf, Vec<Pkt>)>,
    dir: PathBuf,
}

fn corpus() -> Corpus {
    let dir = tempfile::tempdir().expect("tempdir");
    let eth = ethernet_corpus(0x5eed_f11e);
    let mut files = Vec::new();
    for link in LINKS {
        let pkts: Vec<Pkt> = eth
            .iter()
            .enumerate()
            .filter_map(|(i, p)| convert(p, link, i))
            .collect();
        let path = dir.path().join(format!("{}.pcap", link.name()));
        write_pcap(&path, link, &pkts).expect("write corpus");
        files.push((link, path, pkts));
    }
    Corpus {
        dir: dir.path().to_path_buf(),
        _dir: dir,
        files,
    }
}

/// Runs `f` over `items` on a few threads; `f` gets a per-thread scratch file path.
fn par_map<T: Sync, U: Send>(items: &[T], dir: &Path, f: impl Fn(&T, &Path) -> U + Sync) -> Vec<U> {
    let threads = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .clamp(2, 8);
    let chunk = items.len().div_ceil(threads).max(1);
    std::thread::scope(|s| {
        let handles: Vec<_> = items
            .chunks(chunk)
            .enumerate()
            .map(|(t, part)| {
                let f = &f;
                let scratch = dir.join(format!("expr-{t}-{:?}", std::thread::current().id()));
                s.spawn(move || part.iter().map(|x| f(x, &scratch)).collect::<Vec<U>>())
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("worker panicked"))
            .collect()
    })
}

fn diff(a: &[usize], b: &[usize]) -> String {
    let (sa, sb): (BTreeSet<_>, BTreeSet<_>) = (a.iter().collect(), b.iter().collect());
    let only_a: Vec<_> = sa.difference(&sb).take(8).collect();
    let only_b: Vec<_> = sb.difference(&sa).take(8).collect();
    format!("only tcpdump/libpcap: {only_a:?}, only ours: {only_b:?}")
}

#[test]
fn hand_written_expressions_match_tcpdump() {
    require_tcpdump();
    let exprs = hand_written();
    assert!(exprs.len() >= 300, "{} expressions", exprs.len());
    let c = corpus();
    let mut failures = Vec::new();
    let mut compared = 0;
    let mut unsupported = BTreeSet::new();
    for (link, path, pkts) in &c.files {
        let results = par_map(&exprs, &c.dir, |expr, scratch| {
            let truth = tcpdump_keeps(path, scratch, expr);
            let theirs = libpcap_program(*link, scratch, expr);
            let ours = compile(expr, *link, Mode::File, SNAPLEN);
            (expr.clone(), truth, theirs, ours)
        });
        for (expr, truth, theirs, ours) in results {
            let tag = format!("[{}] {expr:?}", link.name());
            match (&truth, &ours) {
                (Err(_), Err(_)) => {}
                (Err(t), Ok(_)) => {
                    failures.push(format!("{tag}: tcpdump rejects ({t}), we accept"))
                }
                (Ok(_), Err(e)) if e.kind == ErrorKind::NotSupported => {
                    unsupported.insert(expr.clone());
                }
                (Ok(_), Err(e)) => failures.push(format!("{tag}: tcpdump accepts, we reject: {e}")),
                (Ok(t), Ok(prog)) => {
                    compared += 1;
                    // The validator against libpcap's programs and ours: both must pass
                    // (libpcap's bpf_validate accepted its own, or tcpdump would have failed).
                    for (whose, p) in [("ours", Some(prog)), ("libpcap's", theirs.as_ref().ok())] {
                        if let Some(Err(e)) = p.map(|p| p.validate(Mode::File)) {
                            failures.push(format!("{tag}: {whose} program fails validation: {e}"));
                        }
                    }
                    let mine = keeps(prog, pkts);
                    if *t != mine {
                        failures.push(format!("{tag}: ours differs: {}", diff(t, &mine)));
                    }
                    match &theirs {
                        Ok(lp) => {
                            let via = keeps(lp, pkts);
                            if *t != via {
                                failures.push(format!(
                                    "{tag}: interpreter running libpcap's program differs from tcpdump: {}",
                                    diff(t, &via)
                                ));
                            }
                        }
                        Err(e) => failures.push(format!("{tag}: tcpdump -ddd failed: {e}")),
                    }
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} disagreements with tcpdump:\n{}",
        failures.len(),
        failures.join("\n")
    );
    // Most expressions must have been compared for real, not just rejected by both.
    assert!(compared > exprs.len() * 2, "only {compared} comparisons");
    // Every hand-written expression is implemented: none may be "not supported" where
    // tcpdump accepts it (the unsupported constructs are tested on their own).
    assert!(
        unsupported.is_empty(),
        "tcpdump accepts these, we say not supported: {unsupported:?}"
    );
}

#[test]
fn rejected_expressions_are_rejected() {
    require_tcpdump();
    let bad = [
        "", // placeholder replaced below: the empty expression is valid (accept all)
        "tcp and",
        "and tcp",
        "tcp or or udp",
        "(tcp",
        "tcp)",
        "host",
        "port",
        "port 70000",
        "port 08",
        "portrange 1-70000",
        "tcp and 80",
        "1.2.3.4",
        "80",
        "not 80",
        "(port 22) or 23",
        "less 1 or greater 2 or 3",
        "udp proto 6",
        "tcp proto 6",
        "arp proto 6",
        "ip6 host 1.2.3.4",
        "ip host ::1",
        "tcp host 1.2.3.4",
        "host 1:2:3:4:5:6",
        "ether host 1.2.3.4",
        "ether proto ip",
        "ip proto igmp",
        "net 10.0.0.1/8",
        "net 10.0.0.0/33",
        "host 10.0.0.0/8",
        "net 2001:db8::1/32",
        "port 1.2.3.4",
        "src proto 6",
        "ether[0:3] = 1",
        "ether[0] / 0 = 1",
        "ether[0] % 0 = 1",
        "ether[1] / ether[0] = 1",
        "ether[0] << 32 = 1",
        "ether[0] >> 40 = 1",
        "ether[0] = 5-1",
        "len-1 > 5",
        "ether[0] =",
        "= 1",
        "ip[0] = 1 or 2",
        "tcp port 80 and 1.2.3.4",
        "port foo-bar-nope",
        "tcp portrange ftp-data-telnet",
        "portrange ftp-data-ftp-data",
        "portrange smtp-nosuch",
        "portrange nosuch-25",
        "tcp portrange smtp-4294967295",
        "tcp portrange smtp-2147483648",
        "portrange 0x10-0x20",
        "udp portrange smtp-ssh",
        "tcp portrange smtp-",
        "tcp portrange 1--5",
        "tcp portrange 65536-70000",
        "port nosuchservice",
        "udp port ssh",
        "tcp port ntp",
        "vlan 5000",
        "ip multicast or ether[",
        "host 999.1.1.1",
        "link",
        "ah[0] = 1",
        "host 1.2.3.4 $",
        // Non-IP families, MPLS, PPPoE, LLC, byte.
        "mpls 1048576",
        "pppoes 65536",
        "mpls and arp",
        "mpls and rarp host 10.0.0.1",
        "mpls and iso",
        "mpls and vlan",
        "mpls and pppoes",
        "pppoes and vlan",
        "pppoes and llc",
        "pppoes and broadcast",
        "pppoes and multicast",
        "pppoes and ether host 1:2:3:4:5:6",
        "atalk proto 5",
        "decnet proto 5",
        "lat proto 5",
        "stp proto 3",
        "clnp proto 3",
        "esis proto 3",
        "l1 proto 3",
        "iso proto \\foo",
        "aarp[0] = 1",
        "iso[0] = 1",
        "stp[0] = 1",
        "atalk host 1.2",
        "iso host 1.2.3.4",
        "ipx host 1.2.3.4",
        "decnet port 1",
        "decnet host fe80::1",
        "decnet host 1:2:3:4:5:6",
        "decnet host foo",
        "decnet 1.2",
        "llc foo",
        "llc 5",
        "llc host",
        "byte 5 + 3",
        "byte = 3",
        "byte 5 =",
        "iso broadcast",
        "decnet multicast",
        "ip[0] = 1 and decnet",
        "ether protochain 6",
        "arp protochain 6",
        "src protochain 6",
        "protochain 1.2.3.4",
        "protochain \\nosuch",
        "geneve and protochain 6",
        // `IFINDEX NUM` in libpcap's grammar: a bare number; the direction takes none.
        "ifindex",
        "ifindex (3)",
        "ifindex -1",
        "ifindex 4294967296",
        "ifindex 08",
        "ifindex 1.2",
        "ifindex eth0",
        "ifindex 1 2",
        "inbound 3",
        "outbound outbound",
        "inbound or 80",
        "not ifindex",
        "src inbound",
        "ip inbound",
    ];
    let dir = tempfile::tempdir().unwrap();
    let scratch = dir.path().join("expr");
    let mut failures = Vec::new();
    for expr in bad.iter().skip(1) {
        let theirs = libpcap_program(LinkType::Ethernet, &scratch, expr);
        let ours = compile(expr, LinkType::Ethernet, Mode::File, SNAPLEN);
        match (&theirs, &ours) {
            (Err(_), Err(_)) => {}
            (Ok(_), _) => failures.push(format!(
                "{expr:?}: expected tcpdump to reject it, it accepts"
            )),
            (Err(t), Ok(_)) => failures.push(format!("{expr:?}: tcpdump rejects ({t}), we accept")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // The empty expression accepts everything, in both.
    let all = compile("", LinkType::Ethernet, Mode::File, SNAPLEN).unwrap();
    assert_ne!(all.matches(&[], 0, None), 0);
}

/// Keywords libpcap refuses on some link types are refused here with libpcap's words, and
/// point at the keyword.
#[test]
fn link_type_errors_say_which_link_type() {
    let cases: [(&str, LinkType, &str, usize); 7] = [
        (
            "tcp or mpls",
            LinkType::RawIp,
            "no MPLS support for Raw IP",
            8,
        ),
        (
            "mpls 5",
            LinkType::LinuxSll,
            "no MPLS support for Linux cooked v1",
            1,
        ),
        (
            "llc i",
            LinkType::LinuxSll2,
            "'llc' not supported for Linux cooked v2",
            1,
        ),
        (
            "pppoes and llc",
            LinkType::Ethernet,
            "'llc' not supported for PPP",
            12,
        ),
        (
            "mpls and vlan",
            LinkType::Ethernet,
            "no VLAN match after MPLS",
            10,
        ),
        (
            "mpls and arp",
            LinkType::Ethernet,
            "unsupported protocol over mpls",
            10,
        ),
        (
            "pppoes and ether host 1:2:3:4:5:6",
            LinkType::Ethernet,
            "ethernet addresses supported only on",
            23,
        ),
    ];
    for (expr, link, message, column) in cases {
        let e = compile(expr, link, Mode::File, SNAPLEN).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Invalid, "{expr:?}: {e}");
        assert!(e.message.starts_with(message), "{expr:?}: {e}");
        assert_eq!(e.column, Some(column), "{expr:?}: {e}");
    }
}

#[test]
fn syntax_errors_point_at_the_column() {
    let e: CompileError =
        compile("tcp and and udp", LinkType::Ethernet, Mode::File, SNAPLEN).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Syntax);
    assert_eq!(e.column, Some(9), "{e}");
    let e = compile(
        "port 80 or (443 and tcp)",
        LinkType::Ethernet,
        Mode::File,
        SNAPLEN,
    )
    .unwrap_err();
    assert_eq!(e.column, Some(21), "{e}");
    // Without a resolver a name is unknown (libpcap's words), and the caret is under it.
    let e = compile(
        "tcp and host example.com",
        LinkType::Ethernet,
        Mode::File,
        SNAPLEN,
    )
    .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Invalid);
    assert_eq!(e.message, "unknown host 'example.com'");
    assert_eq!(
        e.pointer("tcp and host example.com").unwrap(),
        "tcp and host example.com\n             ^"
    );
    let e = compile("gateway foo", LinkType::Ethernet, Mode::File, SNAPLEN).unwrap_err();
    assert_eq!(
        e.message, "'gateway' not supported in this configuration",
        "{e}"
    );
    assert_eq!(e.pointer("gateway foo").unwrap(), "gateway foo\n        ^");
}

/// The keywords for non-IP families and encapsulations, with the link types where tcpdump
/// must keep some corpus packets (and not all) for them: the differential test above can
/// only catch a wrong verdict if the corpus has packets on both sides. (Where a link type is
/// missing, libpcap's test cannot match there: on Linux cooked v1 it looks for the ES-IS,
/// IS-IS or CLNP protocol byte where the LLC DSAP is; on v2 an LLC SAP is compared with the
/// protocol field.)
const ALL_LINKS: &[LinkType] = &LINKS;
const EXERCISED: &[(&str, &[LinkType])] = &[
    (
        "decnet",
        &[LinkType::Ethernet, LinkType::LinuxSll, LinkType::LinuxSll2],
    ),
    (
        "decnet host 1.2",
        &[LinkType::Ethernet, LinkType::LinuxSll, LinkType::LinuxSll2],
    ),
    (
        "decnet src 10.1023",
        &[LinkType::Ethernet, LinkType::LinuxSll],
    ),
    (
        "decnet dst 63.1",
        &[LinkType::Ethernet, LinkType::LinuxSll2],
    ),
    (
        "atalk",
        &[LinkType::Ethernet, LinkType::LinuxSll, LinkType::LinuxSll2],
    ),
    (
        "aarp",
        &[LinkType::Ethernet, LinkType::LinuxSll, LinkType::LinuxSll2],
    ),
    (
        "lat",
        &[LinkType::Ethernet, LinkType::LinuxSll, LinkType::LinuxSll2],
    ),
    (
        "sca",
        &[LinkType::Ethernet, LinkType::LinuxSll, LinkType::LinuxSll2],
    ),
    (
        "mopdl",
        &[LinkType::Ethernet, LinkType::LinuxSll, LinkType::LinuxSll2],
    ),
    (
        "moprc",
        &[LinkType::Ethernet, LinkType::LinuxSll, LinkType::LinuxSll2],
    ),
    ("iso", &[LinkType::Ethernet, LinkType::LinuxSll]),
    ("esis", &[LinkType::Ethernet]),
    ("isis", &[LinkType::Ethernet]),
    ("clnp", &[LinkType::Ethernet]),
    ("l1", &[LinkType::Ethernet]),
    ("l2", &[LinkType::Ethernet]),
    ("iih", &[LinkType::Ethernet]),
    ("lsp", &[LinkType::Ethernet]),
    ("snp", &[LinkType::Ethernet]),
    ("csnp", &[LinkType::Ethernet]),
    ("psnp", &[LinkType::Ethernet]),
    ("stp", &[LinkType::Ethernet, LinkType::LinuxSll]),
    ("ipx", &[LinkType::Ethernet, LinkType::LinuxSll]),
    ("netbeui", &[LinkType::Ethernet, LinkType::LinuxSll]),
    ("mpls", &[LinkType::Ethernet]),
    ("mpls 5 and mpls 6", &[LinkType::Ethernet]),
    ("mpls and tcp port 80", &[LinkType::Ethernet]),
    ("mpls and ip6", &[LinkType::Ethernet]),
    (
        "pppoed",
        &[LinkType::Ethernet, LinkType::LinuxSll, LinkType::LinuxSll2],
    ),
    (
        "pppoes 5",
        &[LinkType::Ethernet, LinkType::LinuxSll, LinkType::LinuxSll2],
    ),
    (
        "pppoes and tcp",
        &[LinkType::Ethernet, LinkType::LinuxSll, LinkType::LinuxSll2],
    ),
    ("pppoes and ip6", &[LinkType::Ethernet, LinkType::LinuxSll2]),
    ("pppoes and clnp", &[LinkType::Ethernet, LinkType::LinuxSll]),
    (
        "pppoes and mpls 3 and ip",
        &[LinkType::Ethernet, LinkType::LinuxSll],
    ),
    ("pppoes and decnet", &[LinkType::Ethernet]),
    ("pppoes and pppoes 5", &[LinkType::Ethernet]),
    ("llc", &[LinkType::Ethernet]),
    ("llc i", &[LinkType::Ethernet]),
    ("llc s", &[LinkType::Ethernet]),
    ("llc u", &[LinkType::Ethernet]),
    ("llc rr", &[LinkType::Ethernet]),
    ("llc rnr", &[LinkType::Ethernet]),
    ("llc rej", &[LinkType::Ethernet]),
    ("llc ui", &[LinkType::Ethernet]),
    ("llc ua", &[LinkType::Ethernet]),
    ("llc disc", &[LinkType::Ethernet]),
    ("llc dm", &[LinkType::Ethernet]),
    ("llc sabme", &[LinkType::Ethernet]),
    ("llc test", &[LinkType::Ethernet]),
    ("llc xid", &[LinkType::Ethernet]),
    ("llc frmr", &[LinkType::Ethernet]),
    ("byte 12 = 8", &[LinkType::Ethernet, LinkType::RawIp]),
    ("protochain 6", ALL_LINKS),
    ("ip6 protochain 17", ALL_LINKS),
    ("ip protochain 6", ALL_LINKS),
    ("protochain 58", ALL_LINKS),
    ("geneve", ALL_LINKS),
    ("geneve 5", ALL_LINKS),
    ("geneve and tcp", ALL_LINKS),
    ("geneve and ip6", ALL_LINKS),
    (
        "geneve 5 and tcp port 80",
        &[LinkType::Ethernet, LinkType::LinuxSll],
    ),
    (
        "geneve and ether host 02:00:00:00:00:01",
        &[LinkType::Ethernet],
    ),
    (
        "ip broadcast",
        &[LinkType::Ethernet, LinkType::LinuxSll, LinkType::RawIp],
    ),
    ("inbound", &[LinkType::LinuxSll, LinkType::LinuxSll2]),
    ("outbound", &[LinkType::LinuxSll, LinkType::LinuxSll2]),
    (
        "inbound and tcp",
        &[LinkType::LinuxSll, LinkType::LinuxSll2],
    ),
    ("ifindex 1", &[LinkType::LinuxSll2]),
    ("ifindex 2", &[LinkType::LinuxSll2]),
    ("ifindex 3", &[LinkType::LinuxSll2]),
    ("ifindex 2 and outbound", &[LinkType::LinuxSll2]),
];

#[test]
fn the_corpus_exercises_every_new_keyword() {
    require_tcpdump();
    let c = corpus();
    let mut failures = Vec::new();
    for (link, path, pkts) in &c.files {
        let scratch = c.dir.join(format!("exercised-{}", link.name()));
        for (expr, _) in EXERCISED.iter().filter(|(_, ls)| ls.contains(link)) {
            match tcpdump_keeps(path, &scratch, expr) {
                Ok(kept) if kept.is_empty() || kept.len() == pkts.len() => failures.push(format!(
                    "[{}] {expr:?}: tcpdump keeps {} of {} packets",
                    link.name(),
                    kept.len(),
                    pkts.len()
                )),
                Ok(_) => {}
                Err(e) => failures.push(format!("[{}] {expr:?}: tcpdump: {e}", link.name())),
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// From a file, libpcap refuses `inbound`/`outbound` where the frame carries no direction
/// (Ethernet, raw IP; PPP inside PPPoE, Ethernet inside Geneve) and `ifindex` where it
/// carries no interface index (all but cooked v2). Ours are refused with libpcap's words,
/// pointing at the keyword; for a live socket (kernel metadata) they compile.
#[test]
fn direction_and_interface_errors_are_libpcaps() {
    require_tcpdump();
    use LinkType::{Ethernet, LinuxSll, LinuxSll2, RawIp};
    let cases: &[(&str, &[LinkType], usize)] = &[
        ("inbound", &[Ethernet, RawIp], 1),
        ("outbound", &[Ethernet, RawIp], 1),
        ("tcp and not outbound", &[Ethernet, RawIp], 13),
        ("ifindex 3", &[Ethernet, RawIp, LinuxSll], 1),
        ("ip or ifindex 4294967295", &[Ethernet, RawIp, LinuxSll], 7),
        ("pppoes and inbound", &[Ethernet, LinuxSll, LinuxSll2], 12),
        ("pppoes and ifindex 2", &[Ethernet, LinuxSll, LinuxSll2], 12),
        ("geneve and outbound", &[LinuxSll, LinuxSll2, RawIp], 12),
        ("geneve and ifindex 2", &[LinuxSll, LinuxSll2, RawIp], 12),
    ];
    let c = corpus();
    let mut failures = Vec::new();
    let mut checked = 0;
    for (link, path, _) in &c.files {
        let scratch = c.dir.join(format!("direction-{}", link.name()));
        for (expr, _, column) in cases.iter().filter(|(_, ls, _)| ls.contains(link)) {
            let tag = format!("[{}] {expr:?}", link.name());
            let theirs = match tcpdump_keeps(path, &scratch, expr) {
                Ok(_) => {
                    failures.push(format!("{tag}: expected tcpdump -r to reject it"));
                    continue;
                }
                Err(e) => e
                    .lines()
                    .last()
                    .unwrap_or("")
                    .trim_start_matches("tcpdump: ")
                    .to_string(),
            };
            match compile(expr, *link, Mode::File, SNAPLEN) {
                Ok(_) => failures.push(format!("{tag}: tcpdump rejects ({theirs}), we accept")),
                Err(e) => {
                    if e.message != theirs || e.kind != ErrorKind::Invalid {
                        failures.push(format!("{tag}: we say {e:?}, tcpdump says {theirs:?}"));
                    }
                    if e.column != Some(*column) {
                        failures.push(format!("{tag}: column {:?}, not {column}", e.column));
                    }
                }
            }
            if let Err(e) = compile(expr, *link, Mode::Live, SNAPLEN) {
                failures.push(format!("{tag}: a live socket has the metadata, yet: {e}"));
            }
            checked += 1;
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(checked, 24, "every case ran on each of its link types");
}

/// `byte N & V` and `byte N | V` test `(byte N op V) != 0`, as libpcap has since it loads
/// the byte. The installed libpcap (1.10.3) loads nothing and tests a stale accumulator, so
/// tcpdump is the oracle for the expression that says it outright: `link[N] op V != 0`,
/// alone and inside the compound expressions where 1.10.3's stale accumulator showed.
#[test]
fn byte_and_or_test_the_byte_itself() {
    require_tcpdump();
    let mut pairs = Vec::new();
    for (idx, val) in [
        (0, 1),
        (5, 3),
        (12, 8),
        (14, 0x45),
        (20, 0xf0),
        (23, 6),
        (39, 0xff),
    ] {
        for op in ['&', '|'] {
            let ours = format!("byte {idx} {op} {val}");
            let oracle = format!("link[{idx}] {op} {val} != 0");
            for (a, b) in [
                ("", ""),
                ("ip[0] = 0x45 and ", "ip[0] = 0x45 and "),
                ("1 = 1 and ", "1 = 1 and "),
                ("ether[0] = 2 and ", "ether[0] = 2 and "),
                ("not ", "not "),
                ("tcp or ", "tcp or "),
            ] {
                pairs.push((format!("{a}{ours}"), format!("{b}{oracle}")));
            }
        }
    }
    pairs.push(("byte 0 | 0".into(), "link[0] | 0 != 0".into()));
    pairs.push(("byte 1 & 0".into(), "link[1] & 0 != 0".into()));
    let c = corpus();
    let mut failures = Vec::new();
    let mut compared = 0;
    for (link, path, pkts) in &c.files {
        let results = par_map(&pairs, &c.dir, |(ours, oracle), scratch| {
            let truth = tcpdump_keeps(path, scratch, oracle);
            (
                ours.clone(),
                truth,
                compile(ours, *link, Mode::File, SNAPLEN),
            )
        });
        for (expr, truth, ours) in results {
            let tag = format!("[{}] {expr:?}", link.name());
            match (truth, ours) {
                (Ok(t), Ok(prog)) => {
                    compared += 1;
                    let mine = keeps(&prog, pkts);
                    if t != mine {
                        failures.push(format!("{tag}: ours differs: {}", diff(&t, &mine)));
                    }
                }
                // `ether[0] = 2` on raw IP: both refuse.
                (Err(_), Err(_)) => {}
                (t, o) => failures.push(format!("{tag}: tcpdump {t:?}, ours {:?}", o.err())),
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(compared > pairs.len() * 3, "only {compared} comparisons");
}
