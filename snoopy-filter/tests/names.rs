//! Names in filters against libpcap: `host NAME`, `ether host NAME`, `net NAME`,
//! `gateway NAME`, with known hosts, ethers and networks files.
//!
//! tcpdump resolves names through glibc, so it must see our files and nothing else: it runs
//! in a mount namespace of its own where an overlay puts the test's `hosts`, `ethers`,
//! `networks`, `nsswitch.conf` (`files` only) and `resolv.conf` over the machine's `/etc`,
//! and in a network namespace of its own with nothing but a down loopback, so no DNS query
//! can leave (the machine's `/etc` is not touched). Our compiler reads the same files
//! through [`snoopy_filter::files::Files`]. For every link type, our program must be
//! libpcap's instruction for instruction, or our error libpcap's word for word.
//!
//! Needs root (namespaces and mounts): fails, not skips, without it.

use std::ffi::CString;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

use snoopy_filter::files::{Ethers, Files, Hosts, Networks};
use snoopy_filter::{LinkType, Mode, Program, compile_with};

use crate::corpus::{convert, ethernet_corpus, keeps, require_tcpdump};

// The corpus's addresses, so that the programs' verdicts on it tell them apart.
const HOSTS: &str = "\
127.0.0.1 localhost
10.1.2.3 one
# several lines for one name: getaddrinfo returns them all, IPv6 first
10.0.0.1 multi
2001:db8::1 multi
10.0.0.2 multi  # a comment after the names
# link-local before global (smaller scope first)
2001:db8::2 six
fe80::1 six
192.168.1.1 Mixed.Case alias1
";

const ETHERS: &str = "\
02:00:00:00:00:01 gw1
2:0:0:0:0:2 gw2 # short bytes
";

// glibc completes every number to four parts (`ten 10` is 10.0.0.0), so libpcap never
// shifts it and `net NAME` tests all 32 bits.
const NETWORKS: &str = "\
loopback 127
link-local 169.254.0.0
ten 10
home 192.168.1.1
";

const LINKS: [LinkType; 4] = [
    LinkType::Ethernet,
    LinkType::LinuxSll,
    LinkType::LinuxSll2,
    LinkType::RawIp,
];

/// A directory whose files tcpdump sees over `/etc`.
fn etc_overlay() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, text) in [
        ("hosts", HOSTS),
        ("ethers", ETHERS),
        ("networks", NETWORKS),
        // Files only: a name the files do not know is unknown, never asked of DNS.
        (
            "nsswitch.conf",
            "hosts: files\nnetworks: files\nethers: files\n",
        ),
        ("resolv.conf", "nameserver 127.0.0.1\n"),
    ] {
        std::fs::write(dir.path().join(name), text).expect("write overlay file");
    }
    dir
}

/// `tcpdump -ddd -y LINK -F FILE` in private mount and network namespaces seeing `overlay`
/// over `/etc`: libpcap's program, or its error.
fn libpcap_program(overlay: &Path, link: LinkType, expr_file: &Path) -> Result<Program, String> {
    let root = CString::new("/").unwrap();
    let etc = CString::new("/etc").unwrap();
    let overlay_fs = CString::new("overlay").unwrap();
    let options = CString::new(format!("lowerdir={}:/etc", overlay.display())).unwrap();
    let mut tcpdump = Command::new("tcpdump");
    tcpdump
        .args(["-ddd", "-y", link.name(), "-F"])
        .arg(expr_file);
    // SAFETY: between fork and exec the child only makes system calls (unshare, mount)
    // with arguments prepared before the fork; it allocates nothing and takes no lock.
    unsafe {
        tcpdump.pre_exec(move || {
            if libc::unshare(libc::CLONE_NEWNS | libc::CLONE_NEWNET) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // Private first, so the overlay does not propagate to the machine's namespace.
            let private = libc::MS_REC | libc::MS_PRIVATE;
            if libc::mount(
                std::ptr::null(),
                root.as_ptr(),
                std::ptr::null(),
                private,
                std::ptr::null(),
            ) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            if libc::mount(
                overlay_fs.as_ptr(),
                etc.as_ptr(),
                overlay_fs.as_ptr(),
                libc::MS_RDONLY,
                options.as_ptr().cast(),
            ) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = tcpdump
        .output()
        .unwrap_or_else(|e| panic!("starting tcpdump in private namespaces: {e}"));
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let error = stderr.lines().find_map(|l| l.strip_prefix("tcpdump: "));
        return Err(error.unwrap_or(&stderr).trim().to_string());
    }
    Program::from_ddd(&String::from_utf8_lossy(&out.stdout)).map_err(|e| e.to_string())
}

fn require_root() {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(
        euid, 0,
        "this test needs root: tcpdump must run in private mount and network namespaces to \
         see the test's hosts files and no DNS"
    );
}

#[test]
fn names_compile_as_libpcap_compiles_them() {
    require_tcpdump();
    require_root();
    let overlay = etc_overlay();
    let files = Files {
        hosts: Hosts::parse(HOSTS),
        ethers: Ethers::parse(ETHERS),
        networks: Networks::parse(NETWORKS),
    };
    let exprs = [
        // One address, several, IPv4 and IPv6 together, only IPv6.
        "host one",
        "host multi",
        "host six",
        "host localhost",
        "src host multi",
        "dst host one or multi",
        "host one and not host six",
        "src and dst host multi",
        "host (one or six)",
        "host one or 10.1.2.9",
        "tcp port 80 and host multi",
        "ip host multi",
        "ip6 host multi",
        "ip6 host six",
        "arp host one",
        "rarp src host one",
        "host mixed.case",
        "host ALIAS1",
        // Encapsulations move the offsets the name's tests read.
        "vlan and host multi",
        "vlan 5 and host six",
        "mpls and host multi",
        "pppoes and host multi",
        "geneve and host one",
        "geneve and ether host gw1",
        // Ethernet host names.
        "ether host gw1",
        "ether src gw2",
        "ether dst gw1 and host one",
        "ether host gw1 or gw2",
        // Network names, left-justified as libpcap does (or not: `link-local` is /32).
        "net loopback",
        "net link-local",
        "net ten",
        "src net home",
        "ip net ten",
        "arp net home",
        // Errors, word for word.
        "host nosuch",
        "ip6 host one",
        "ip host six",
        "arp host multi",
        "tcp host one",
        "ether host nosuch",
        "ether host one",
        "net nosuch",
        "ip6 net ten",
        "gateway gw1",
        "gateway one",
        "ip gateway one",
        "gateway 10.1.2.3",
        "gateway 2001:db8::1",
        "gateway 02:00:00:00:00:01",
        "gateway 10/8",
        "decnet host one",
    ];
    let scratch = tempfile::tempdir().expect("tempdir");
    let expr_file = scratch.path().join("expr");
    let mut failures = Vec::new();
    let (mut identical, mut same_verdicts, mut errors, mut selective) = (0, 0, 0, 0);
    let eth = ethernet_corpus(0x5eed_f11e);
    for link in LINKS {
        let pkts: Vec<_> = eth
            .iter()
            .enumerate()
            .filter_map(|(i, p)| convert(p, link, i))
            .collect();
        for expr in exprs {
            std::fs::write(&expr_file, expr).expect("write expression");
            let theirs = libpcap_program(overlay.path(), link, &expr_file);
            let ours = compile_with(expr, link, Mode::File, 262_144, &files);
            let tag = format!("[{}] {expr:?}", link.name());
            match (theirs, ours) {
                (Ok(t), Ok(o)) => {
                    // The same program, or (where this crate's optimiser lays the same
                    // tests out differently, as for the numeric addresses) the same
                    // verdict on every corpus packet, both run by the interpreter.
                    let (kept_t, kept_o) = (keeps(&t, &pkts), keeps(&o, &pkts));
                    if kept_t != kept_o {
                        failures.push(format!(
                            "{tag}: verdicts differ on packets {:?}\nlibpcap:\n{}ours:\n{}",
                            kept_t
                                .iter()
                                .filter(|i| !kept_o.contains(i))
                                .chain(kept_o.iter().filter(|i| !kept_t.contains(i)))
                                .take(8)
                                .collect::<Vec<_>>(),
                            t.disassemble(),
                            o.disassemble()
                        ));
                    } else if t == o {
                        identical += 1;
                    } else {
                        same_verdicts += 1;
                    }
                    if !kept_t.is_empty() && kept_t.len() < pkts.len() {
                        selective += 1;
                    }
                }
                (Err(t), Err(o)) if t == o.message => errors += 1,
                (Err(t), Err(o)) => {
                    failures.push(format!("{tag}: libpcap says {t:?}, we say {:?}", o.message))
                }
                (Ok(_), Err(o)) => failures.push(format!("{tag}: libpcap compiles it, we say {o}")),
                (Err(t), Ok(_)) => {
                    failures.push(format!("{tag}: libpcap says {t:?}, we compile it"))
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} differ:\n{}",
        failures.len(),
        exprs.len() * LINKS.len(),
        failures.join("\n")
    );
    // Both sides exercised on every link type: names that compile (most of them to
    // libpcap's very instructions, and choosing some corpus packets but not all, so a
    // wrong address would show) and names that do not.
    eprintln!(
        "{identical} identical programs, {same_verdicts} with the same verdicts, {selective} selective, {errors} errors alike"
    );
    assert!(
        identical >= 50 && identical + same_verdicts >= 100 && selective >= 90 && errors >= 60,
        "{identical} identical, {same_verdicts} same verdicts, {selective} selective, {errors} errors"
    );
}
