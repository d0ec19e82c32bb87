//! tcpdump filter expressions compiled to classic BPF, in pure Rust.
//!
//! `snoopy-filter` is Snoopy's filter compiler, a crate of its own because it needs nothing
//! else of Snoopy: `snoopy-capture` attaches its programs to AF_PACKET sockets and runs them
//! on files, and `snoopy-operator` uses it alone to validate the filters of custom resources
//! before any Job exists. It has no I/O beyond reading `/etc/services` and `/etc/protocols`
//! (as libpcap does), and no `unsafe`. Host, Ethernet host and network names are looked up
//! through a [`Resolve`] the caller gives [`compile_with`] (a pod's names are not the
//! node's); [`files`] reads hosts, ethers and networks files as glibc does.
//!
//! [`compile`] turns a pcap-filter(7) expression into a [`Program`] of `struct sock_filter`
//! instructions, for the kernel ([`Mode::Live`], attached to an AF_PACKET socket) or for
//! files ([`Mode::File`], run by [`Program::matches`], or by a [`Matcher`] when the same
//! program runs on many packets). The truth is libpcap 1.10: for every expression this
//! crate accepts, the program accepts exactly the packets libpcap's program for it
//! accepts, and it rejects what libpcap rejects. That is checked by differential tests
//! against `tcpdump -r` on a generated corpus (hand-written and random expressions, every
//! supported link type) and against libpcap's live programs (`tcpdump -i lo -ddd`, `-i any`)
//! for the live dialect: VLAN metadata, packet type and interface index.
//!
//! How: the code generator mirrors `gencode.c` function for function (test order,
//! scratch registers, quirks), and the `opt` module replays the passes of libpcap's optimizer that
//! decide verdicts. The optimizer matters: a load past the end of a short packet rejects
//! it, and libpcap drops loads it proves useless (`ip[40] = 1 or ip` accepts every IPv4
//! packet, even one shorter than 40 bytes), so an unoptimized program would disagree with
//! tcpdump on truncated packets. The programs come out as compact as tcpdump's.
//!
//! ```
//! use snoopy_filter::{LinkType, Mode, compile};
//!
//! let prog = compile("tcp port 80 or 443", LinkType::Ethernet, Mode::File, 262144).unwrap();
//! let short = [0u8; 10];
//! assert_eq!(prog.matches(&short, 10, None), 0);
//! ```
//!
//! # Coverage
//!
//! Qualifiers `host net port portrange proto`, `src dst`, `src or dst`, `src and dst`;
//! protocols `ether ip ip6 arp rarp tcp udp icmp icmp6 sctp igmp igrp pim vrrp carp ah
//! esp`; IPv4 and IPv6 addresses, `net A/len`, `net A mask M`, short nets (`net 10`);
//! port names and protocol names (from `/etc/services` and `/etc/protocols`, as libpcap,
//! with built-in fallbacks); MAC addresses in all libpcap spellings; `ether proto`,
//! `ip proto`, `ip6 proto`, `proto` (`\tcp` escapes); `vlan [id]` (shifting what follows);
//! `less`, `greater`, `len`; `broadcast`, `multicast`, `ip multicast`, `ip6 multicast`,
//! `ip broadcast` (files: netmask 0, as tcpdump `-r`); `proto[expr]`, `proto[expr:size]`
//! with `+ - * / % & | ^ << >>`, unary minus and `> < >= <= = == !=`; the named constants
//! (`tcpflags`, `tcp-syn`, `icmptype`, `icmp-echo`, `icmp6-echo`, ...); `and && or || not
//! !`, parentheses and tcpdump's qualifier inheritance (`host a or b`,
//! `tcp port 80 or 443`). Encapsulations shifting what follows: `mpls [label]`, `pppoed`,
//! `pppoes [session]`, `geneve [vni]`. Non-IP families: `decnet` (with `decnet src|dst|host
//! A.N`), `atalk`, `aarp`, `lat`, `sca`, `mopdl`, `moprc`, `iso`, `esis`, `isis`, `clnp`,
//! `l1 l2 iih lsp snp csnp psnp`, `stp`, `ipx`, `netbeui`; `llc [i|s|u|command]`;
//! `byte N =|<|>|&|| V` (`&` and `|` test `(byte N op V) != 0`, as libpcap does since it
//! loads the byte: 1.10.3 tested a stale accumulator; see the README); `[ip|ip6] protochain P` (files: a loop, a backward jump the kernel
//! refuses). `inbound`, `outbound`, `ifindex N`: from the Linux cooked headers (packet type;
//! v2's interface index), and on a live socket from the kernel's metadata
//! (`SKF_AD_PKTTYPE`, `SKF_AD_IFINDEX`; run them with [`Program::matches_with`]); from a
//! file where the frame has neither, libpcap's error ("... when reading savefiles").
//! Link types: Ethernet, Linux cooked v1 and v2, raw IP. Names through [`compile_with`]:
//! `host NAME` (every address, libpcap's order and qualifiers), `ether host NAME`,
//! `net NAME`; `gateway` is libpcap 1.10's own error.
//!
//! # Not supported
//!
//! Each gives a "not supported: ..." [`CompileError`] (kind [`ErrorKind::NotSupported`]),
//! never a different filter:
//!
//! - `protochain` in [`Mode::Live`] (a loop: a backward jump the kernel refuses);
//!   `ip broadcast` in [`Mode::Live`] (needs the interface netmask);
//! - `vxlan` (not in libpcap 1.10 either);
//! - 802.11, ATM, SS7, pflog keywords;
//! - link types other than Ethernet, Linux cooked v1/v2 and raw IP.
//!
//! # Limits
//!
//! Every input gets an answer, never a crash: an expression longer than
//! [`MAX_EXPRESSION_LEN`] ([`ErrorKind::TooLong`]), nested deeper than
//! [`MAX_NESTING_DEPTH`] ([`ErrorKind::TooDeep`]; libpcap says "memory exhausted" for
//! very deep ones), needing more than [`MAX_UNOPTIMIZED_INSNS`] instructions before
//! optimisation ([`ErrorKind::TooComplex`]) or more than the kernel's [`BPF_MAXINSNS`]
//! after ([`ErrorKind::TooManyInstructions`]) is refused with a message naming the limit.
//! Compiling runs in bounded stack (a 256 KiB thread is enough) and the refusals take
//! milliseconds.
//!
//! One deliberate difference from libpcap: in live mode, a `vlan ID` after another test
//! (`ip6 and vlan 5`). libpcap 1.10's optimizer jumps into the middle of the VLAN-ID
//! block there, testing the "tag present" flag instead of the tag (so `ip and vlan 1`
//! matches every tagged IPv4 packet); we keep the meaning of libpcap's unoptimized program
//! (`tcpdump -O`), which the live test checks.

#![forbid(unsafe_code)]

mod bpf;
mod codegen;
mod disasm;
mod error;
pub mod files;
mod interp;
mod lexer;
mod link;
mod names;
mod node;
mod opt;
mod parser;
mod resolve;
mod validate;

pub use error::{CompileError, Error, ErrorKind, Result};
pub use interp::{Matcher, Metadata};
pub use link::LinkType;
pub use resolve::{LookupError, NoNames, Resolve};

// The README's example runs as a doctest, so it cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

/// One classic BPF instruction (`struct sock_filter`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Instruction {
    /// Opcode (class, size, mode, operation).
    pub code: u16,
    /// Jump offset if true.
    pub jt: u8,
    /// Jump offset if false.
    pub jf: u8,
    /// Generic field: constant, offset, ...
    pub k: u32,
}

impl Instruction {
    /// An instruction from its four fields.
    pub const fn new(code: u16, jt: u8, jf: u8, k: u32) -> Self {
        Instruction { code, jt, jf, k }
    }
}

/// A classic BPF program.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Program {
    /// The instructions, executed from the first.
    pub instructions: Vec<Instruction>,
}

impl Program {
    /// A program from its instructions.
    pub fn new(instructions: Vec<Instruction>) -> Self {
        Program { instructions }
    }

    /// Parses the decimal form `tcpdump -ddd` prints: the instruction count on the first
    /// line, then one `code jt jf k` line per instruction.
    pub fn from_ddd(text: &str) -> Result<Self> {
        let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
        let count: usize = lines
            .next()
            .ok_or_else(|| Error::ProgramText("empty program text".into()))?
            .parse()
            .map_err(|_| Error::ProgramText("first line must be the instruction count".into()))?;
        let mut instructions = Vec::with_capacity(count);
        for (n, line) in lines.enumerate() {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let parsed = match fields.as_slice() {
                [code, jt, jf, k] => (|| {
                    Some(Instruction::new(
                        code.parse().ok()?,
                        jt.parse().ok()?,
                        jf.parse().ok()?,
                        k.parse().ok()?,
                    ))
                })(),
                _ => None,
            };
            instructions.push(parsed.ok_or_else(|| {
                Error::ProgramText(format!(
                    "line {}: expected `code jt jf k` in decimal, got {line:?}",
                    n + 2
                ))
            })?);
        }
        if instructions.len() != count {
            return Err(Error::ProgramText(format!(
                "the first line says {count} instructions, {} follow",
                instructions.len()
            )));
        }
        Ok(Program { instructions })
    }

    /// The program as `tcpdump -ddd` prints it: the count, then `code jt jf k` lines.
    pub fn to_ddd(&self) -> String {
        let mut out = format!("{}\n", self.instructions.len());
        for i in &self.instructions {
            out.push_str(&format!("{} {} {} {}\n", i.code, i.jt, i.jf, i.k));
        }
        out
    }

    /// The program as `tcpdump -d` prints it (one mnemonic line per instruction).
    pub fn disassemble(&self) -> String {
        disasm::disassemble(&self.instructions)
    }

    /// The program that accepts every packet whole (what no filter means).
    pub fn accept_all() -> Self {
        // BPF_RET | BPF_K, 0x40000 = 262144 bytes, libpcap's default snapshot length.
        Program::new(vec![Instruction::new(0x06, 0, 0, 0x0004_0000)])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_tcpdump_ddd_output() {
        // `tcpdump -ddd -y EN10MB udp` (IPv4 and IPv6 UDP)
        let text = "4\n40 0 0 12\n21 0 1 2048\n6 0 0 262144\n6 0 0 0\n";
        let p = Program::from_ddd(text).unwrap();
        assert_eq!(p.instructions.len(), 4);
        assert_eq!(p.instructions[1], Instruction::new(21, 0, 1, 2048));
    }

    fn eth(expr: &str) -> Program {
        compile(expr, LinkType::Ethernet, Mode::File, 262_144)
            .unwrap_or_else(|e| panic!("{expr:?}: {e}"))
    }

    #[test]
    fn identifiers_inherit_the_qualifiers_before_them() {
        assert_eq!(
            eth("host 10.0.0.1 or 10.0.0.2"),
            eth("host 10.0.0.1 or host 10.0.0.2")
        );
        assert_eq!(
            eth("tcp port 80 or 443"),
            eth("tcp port 80 or tcp port 443")
        );
        assert_eq!(
            eth("not port 22 and not 53"),
            eth("not port 22 and not port 53")
        );
        assert_eq!(
            eth("host (10.0.0.1 or 10.0.0.2)"),
            eth("host 10.0.0.1 or 10.0.0.2")
        );
        // A term that sets no qualifiers leaves none to inherit, as in tcpdump.
        assert!(compile("tcp or 80", LinkType::Ethernet, Mode::File, 262_144).is_err());
    }

    #[test]
    fn programs_are_libpcaps() {
        // `tcpdump -d -y EN10MB 'vlan 5 and tcp'` (libpcap 1.10), instruction for instruction.
        let listing = "(000) ldh      [12]
(001) jeq      #0x8100          jt 4\tjf 2
(002) jeq      #0x88a8          jt 4\tjf 3
(003) jeq      #0x9100          jt 4\tjf 18
(004) ldh      [14]
(005) and      #0xfff
(006) jeq      #0x5             jt 7\tjf 18
(007) ldh      [16]
(008) jeq      #0x800           jt 9\tjf 11
(009) ldb      [27]
(010) jeq      #0x6             jt 17\tjf 18
(011) jeq      #0x86dd          jt 12\tjf 18
(012) ldb      [24]
(013) jeq      #0x6             jt 17\tjf 14
(014) jeq      #0x2c            jt 15\tjf 18
(015) ldb      [58]
(016) jeq      #0x6             jt 17\tjf 18
(017) ret      #262144
(018) ret      #0
";
        assert_eq!(eth("vlan 5 and tcp").disassemble(), listing);
    }

    #[test]
    fn short_packets_get_libpcaps_verdicts() {
        // libpcap's optimizer drops the load of ip[40] (every IPv4 packet passes `ip`), so a
        // 30-byte IPv4 frame is accepted; without that, the load would reject it.
        let mut frame = vec![0u8; 30];
        frame[12] = 0x08;
        frame[14] = 0x45;
        assert_ne!(eth("ip[40] = 1 or ip").matches(&frame, 30, None), 0);
        assert_eq!(eth("ip[20] = 1 and ip").matches(&frame, 30, None), 0);
        // `expression rejects all packets`, as tcpdump says.
        assert!(compile("tcp and udp", LinkType::Ethernet, Mode::File, 262_144).is_err());
    }

    #[test]
    fn unsupported_constructs_say_so() {
        for expr in ["vxlan", "type mgt", "tcp and radio"] {
            let e = compile(expr, LinkType::Ethernet, Mode::File, 262_144).unwrap_err();
            assert_eq!(e.kind, ErrorKind::NotSupported, "{expr:?}: {e}");
            assert!(e.message.starts_with("not supported: "), "{e}");
        }
        // A file has no netmask and tcpdump reads it with 0; a live socket's is not known.
        assert!(compile("ip broadcast", LinkType::Ethernet, Mode::File, 262_144).is_ok());
        let e = compile("ip broadcast", LinkType::Ethernet, Mode::Live, 262_144).unwrap_err();
        assert_eq!(e.kind, ErrorKind::NotSupported, "{e}");
        // protochain is a loop: a backward jump the kernel refuses to attach.
        assert!(compile("protochain 6", LinkType::Ethernet, Mode::File, 262_144).is_ok());
        let e = compile("protochain 6", LinkType::Ethernet, Mode::Live, 262_144).unwrap_err();
        assert_eq!(e.kind, ErrorKind::NotSupported, "{e}");
    }

    #[test]
    fn direction_and_interface_programs_are_libpcaps() {
        // `tcpdump -d` (libpcap 1.10): from the cooked headers in files and live (`-r`,
        // `-i any -y LINUX_SLL[2]`), from the kernel's metadata live (`-i lo`, `-y RAW`).
        let inbound = |load: &str| {
            format!(
                "(000) {load}\n(001) jeq      #0x4             jt 2\tjf 3\n\
                 (002) ret      #0\n(003) ret      #262144\n"
            )
        };
        let ifindex = |load: &str| {
            format!(
                "(000) {load}\n(001) jeq      #0x3             jt 2\tjf 3\n\
                 (002) ret      #262144\n(003) ret      #0\n"
            )
        };
        let listing = |expr: &str, link, mode| {
            compile(expr, link, mode, 262_144)
                .unwrap_or_else(|e| panic!("{expr:?} {link} {mode:?}: {e}"))
                .disassemble()
        };
        for mode in [Mode::File, Mode::Live] {
            let sll = listing("inbound", LinkType::LinuxSll, mode);
            assert_eq!(sll, inbound("ldh      [0]"));
            let sll2 = listing("inbound", LinkType::LinuxSll2, mode);
            assert_eq!(sll2, inbound("ldb      [10]"));
            let sll2 = listing("ifindex 3", LinkType::LinuxSll2, mode);
            assert_eq!(sll2, ifindex("ld       [4]"));
        }
        for link in [LinkType::Ethernet, LinkType::RawIp] {
            let live = listing("inbound", link, Mode::Live);
            assert_eq!(live, inbound("ldh      [type]"));
        }
        for link in [LinkType::Ethernet, LinkType::RawIp, LinkType::LinuxSll] {
            let live = listing("ifindex 3", link, Mode::Live);
            assert_eq!(live, ifindex("ld       [ifidx]"));
        }
        // libpcap's offset from the current link-layer header, names and all: inside one,
        // two, ... PPPoE sessions, live on Ethernet (`tcpdump -i lo -d`).
        let mut expr = String::new();
        for (pkttype, ifidx) in [
            ("queue", "hatype"),
            ("rxhash", "cpu"),
            ("xor_x", "vlan_tci"),
            ("vlanp", "poff"),
            ("random", "vlan_tpid"),
        ] {
            expr.push_str("pppoes and ");
            let out = listing(&format!("{expr}outbound"), LinkType::Ethernet, Mode::Live);
            assert!(out.contains(&format!("ldh      [{pkttype}]\n")), "{out}");
            let out = listing(&format!("{expr}ifindex 1"), LinkType::Ethernet, Mode::Live);
            assert!(out.contains(&format!("ld       [{ifidx}]\n")), "{out}");
        }
    }

    #[test]
    fn names_are_their_addresses_in_getaddrinfos_order() {
        let files = files::Files {
            hosts: files::Hosts::parse(
                "10.0.0.1 multi\n2001:db8::1 multi\n10.0.0.2 multi\nfe80::1 multi\n",
            ),
            ethers: files::Ethers::parse("02:00:00:00:00:01 gw\n"),
            networks: files::Networks::parse("corp 172.16\n"),
        };
        let named = |expr: &str| {
            compile_with(expr, LinkType::Ethernet, Mode::File, 262_144, &files)
                .unwrap_or_else(|e| panic!("{expr:?}: {e}"))
        };
        assert_eq!(
            named("host multi"),
            eth("host fe80::1 or 2001:db8::1 or 10.0.0.1 or 10.0.0.2")
        );
        assert_eq!(named("ip host multi"), eth("ip host 10.0.0.1 or 10.0.0.2"));
        assert_eq!(
            named("ip6 src multi"),
            eth("ip6 src fe80::1 or 2001:db8::1")
        );
        assert_eq!(named("ether host gw"), eth("ether host 02:00:00:00:00:01"));
        // glibc completes 172.16 to 172.16.0.0, which libpcap then takes as a /32.
        assert_eq!(named("net corp"), eth("net 172.16.0.0/32"));
        // Without a resolver, libpcap's errors.
        for (expr, message) in [
            ("host multi", "unknown host 'multi'"),
            ("ether host gw", "unknown ether host 'gw'"),
            ("net corp", "unknown network 'corp'"),
        ] {
            let e = compile(expr, LinkType::Ethernet, Mode::File, 262_144).unwrap_err();
            assert_eq!((e.kind, e.message.as_str()), (ErrorKind::Invalid, message));
        }
    }

    #[test]
    fn a_failed_lookup_says_what_was_tried() {
        struct Down;
        impl Resolve for Down {
            fn host(&self, name: &str) -> std::result::Result<Vec<std::net::IpAddr>, LookupError> {
                Err(LookupError(format!(
                    "DNS 10.96.0.10: no answer for {name}.svc"
                )))
            }
        }
        let e =
            compile_with("tcp and host web", LinkType::Ethernet, Mode::File, 1, &Down).unwrap_err();
        assert_eq!(
            e.message,
            "unknown host 'web' (DNS 10.96.0.10: no answer for web.svc)"
        );
        assert_eq!(e.column, Some(14));
    }

    #[test]
    fn rejects_a_wrong_count_and_bad_lines() {
        assert!(Program::from_ddd("2\n6 0 0 0\n").is_err());
        let err = Program::from_ddd("1\n6 0 x 0\n").unwrap_err().to_string();
        assert!(err.contains("line 2"), "{err}");
    }
}

/// Which BPF dialect to compile for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    /// For packets read from a file (or memory): VLAN tags are in the frame.
    File,
    /// For a live Linux socket: the kernel strips the outer VLAN tag into metadata, so
    /// `vlan` reads it with the `SKF_AD_VLAN_TAG*` ancillary loads, and `inbound`,
    /// `outbound` and `ifindex N` read the packet type and interface index
    /// (`SKF_AD_PKTTYPE`, `SKF_AD_IFINDEX`) where the frame has no cooked header carrying
    /// them (as libpcap does). In [`Mode::File`] those are libpcap's errors instead.
    Live,
}

/// The longest expression [`compile`] takes, in bytes (64 KiB): a filter is typed or
/// generated by a person's tool, and a longer one is a mistake (or an attack on a service
/// that compiles filters it is given, like the operator).
pub const MAX_EXPRESSION_LEN: usize = 64 * 1024;

/// How deep parentheses, `not`s and arithmetic may nest. The parser recurses once per
/// level: 200 levels stay far inside a 256 KiB thread stack (a test checks that), where
/// 1,500 nested parentheses used to overflow a 2 MiB tokio worker's stack and abort.
pub const MAX_NESTING_DEPTH: usize = 200;

/// The kernel's limit on a classic BPF program (`BPF_MAXINSNS` in `linux/bpf_common.h`):
/// a longer program cannot be attached to a socket, so it is refused at compile time.
pub const BPF_MAXINSNS: usize = 4096;

/// The most instructions the code generator may produce before optimisation: 8 × 4,096.
///
/// The optimiser's time grows faster than the program (release build: an OR of 2,000
/// `tcp port N`, 40,000 instructions before, took 12 s, for 15,767 after, which the kernel
/// refuses anyway); a program this large is refused at once instead.
///
/// The price: an expression that the optimiser would shrink more than eight times, to
/// within [`BPF_MAXINSNS`], is refused here where libpcap accepts it. ORs of hosts, nets,
/// ports or lengths shrink at most about seven times, so they are refused only when they would
/// exceed the kernel's limit anyway; what shrinks more is an OR repeating one test
/// (`tcp or tcp or ...` 5,000 times) or testing many bytes of one header
/// (`tcp[20] = 1 or tcp[21] = 7 or ...`: some 30 instructions a term before, under 2 after;
/// refused from about 1,100 terms, where libpcap gives some 2,000 instructions). Below the bound,
/// compiling can still take seconds. The largest program of the differential test corpora
/// has 409 instructions before optimisation.
pub const MAX_UNOPTIMIZED_INSNS: usize = 8 * BPF_MAXINSNS;

/// Compiles a tcpdump filter expression for packets of `link` type, knowing no names
/// ([`NoNames`]: `host example.com` is libpcap's `unknown host 'example.com'`; see
/// [`compile_with`]).
///
/// Accepted packets make the program return `snaplen`, rejected ones 0. An empty (or
/// all-blank) expression accepts everything.
///
/// Besides libpcap's own errors, an expression is refused (each with its own
/// [`ErrorKind`], the message naming the limit) when it is longer than
/// [`MAX_EXPRESSION_LEN`], nests deeper than [`MAX_NESTING_DEPTH`], would need more than
/// [`MAX_UNOPTIMIZED_INSNS`] before optimisation, or more than [`BPF_MAXINSNS`] after.
/// Compiling never overflows the stack, even on a thread with a small one.
pub fn compile(
    expr: &str,
    link: LinkType,
    mode: Mode,
    snaplen: u32,
) -> std::result::Result<Program, CompileError> {
    compile_with(expr, link, mode, snaplen, &NoNames)
}

/// [`compile`], with host, Ethernet host and network names looked up through `names`, as
/// libpcap looks them up while compiling: `host NAME` tests every address `names` gives,
/// in its order (`ip host NAME` only the IPv4 ones, `ip6 host NAME` the IPv6 ones),
/// `ether host NAME` its MAC address, `net NAME` its network number. A name `names` does
/// not know is libpcap's error (`unknown host 'NAME'`); one it could not look up, the same
/// with what was tried. Each name is looked up once per compile.
///
/// ```
/// use snoopy_filter::files::{Files, Hosts};
/// use snoopy_filter::{LinkType, Mode, compile, compile_with};
///
/// let files = Files { hosts: Hosts::parse("10.0.0.7 web\n"), ..Files::default() };
/// let named = compile_with("host web", LinkType::Ethernet, Mode::File, 65535, &files).unwrap();
/// let numbered = compile("host 10.0.0.7", LinkType::Ethernet, Mode::File, 65535).unwrap();
/// assert_eq!(named, numbered);
/// ```
pub fn compile_with(
    expr: &str,
    link: LinkType,
    mode: Mode,
    snaplen: u32,
    names: &dyn Resolve,
) -> std::result::Result<Program, CompileError> {
    if expr.len() > MAX_EXPRESSION_LEN {
        return Err(CompileError::limit(
            ErrorKind::TooLong,
            None,
            format!(
                "expression too long: {} bytes, the limit is {MAX_EXPRESSION_LEN} (64 KiB)",
                expr.len()
            ),
        ));
    }
    let tokens = lexer::tokenize(expr)?;
    let names = resolve::Cached::new(names);
    let generator = codegen::Gen::new(link, mode, &names)?;
    let mut parser = parser::Parser::new(tokens, generator);
    let root = parser.program()?;
    let prologue = parser.generator.prologue();
    let unoptimized = prologue.len() + root.instruction_count();
    if unoptimized > MAX_UNOPTIMIZED_INSNS {
        return Err(CompileError::limit(
            ErrorKind::TooComplex,
            None,
            format!(
                "expression too complex: {unoptimized} instructions before optimisation, \
                 the limit is {MAX_UNOPTIMIZED_INSNS} (the kernel takes at most \
                 {BPF_MAXINSNS} after)"
            ),
        ));
    }
    let protected = parser.generator.protected_regs();
    let optimize = parser.generator.optimize();
    let mut instructions = opt::compile_tree(&root, &prologue, protected, snaplen, optimize)?;
    if mode == Mode::Live {
        // The kernel refuses a read of a scratch word no store precedes (libpcap's live
        // `vlan and pppoes` falls back to user space for it); store 0 first instead.
        instructions = validate::store_scratch_first(instructions);
    }
    if instructions.len() > BPF_MAXINSNS {
        return Err(CompileError::limit(
            ErrorKind::TooManyInstructions,
            None,
            format!(
                "program too large: {} instructions, the kernel's limit (BPF_MAXINSNS) is \
                 {BPF_MAXINSNS}",
                instructions.len()
            ),
        ));
    }
    Ok(Program::new(instructions))
}

/// Compiles the trailing words of a command line the way tcpdump does: joined by spaces.
pub fn compile_words<S: AsRef<str>>(
    words: &[S],
    link: LinkType,
    mode: Mode,
    snaplen: u32,
) -> std::result::Result<Program, CompileError> {
    compile_words_with(words, link, mode, snaplen, &NoNames)
}

/// [`compile_words`] with names looked up through `names` (see [`compile_with`]).
pub fn compile_words_with<S: AsRef<str>>(
    words: &[S],
    link: LinkType,
    mode: Mode,
    snaplen: u32,
    names: &dyn Resolve,
) -> std::result::Result<Program, CompileError> {
    let expr = words
        .iter()
        .map(AsRef::as_ref)
        .collect::<Vec<_>>()
        .join(" ");
    compile_with(&expr, link, mode, snaplen, names)
}
