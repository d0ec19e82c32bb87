//! Code generation: libpcap's `gencode.c`, function for function.
//!
//! Each `gen_*` here mirrors the libpcap function of the same name, including its order of
//! tests (which decides what happens on a short packet: a load past the end rejects the
//! packet at once, even under a `not`), its scratch-register allocation (which decides when
//! an arithmetic expression is too large) and its quirks (an arithmetic operation keeps only
//! its left operand's protocol checks; `/ 0` is detected on the right operand's first
//! statement). The parser calls these in source order, as yacc actions do, because a
//! `vlan` shifts the offsets of everything that follows it.

use super::Instruction;
use super::Mode;
use super::bpf::*;
use super::error::CompileError;
use super::names::{self, PortProto};
use super::node::Node;
use super::resolve::{LookupError, Names, Resolve};
use crate::LinkType;

type R<T> = Result<T, CompileError>;

/// Protocol qualifier (`Q_*` protocol values).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Proto {
    Default,
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
    Undef,
}

impl Proto {
    fn name(self) -> &'static str {
        match self {
            Proto::Default | Proto::Undef => "",
            Proto::Link => "link",
            Proto::Ip => "ip",
            Proto::Ip6 => "ip6",
            Proto::Arp => "arp",
            Proto::Rarp => "rarp",
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
            Proto::Icmp => "icmp",
            Proto::Icmp6 => "icmp6",
            Proto::Sctp => "sctp",
            Proto::Igmp => "igmp",
            Proto::Igrp => "igrp",
            Proto::Pim => "pim",
            Proto::Vrrp => "vrrp",
            Proto::Carp => "carp",
            Proto::Ah => "ah",
            Proto::Esp => "esp",
            Proto::Atalk => "atalk",
            Proto::Aarp => "aarp",
            Proto::Decnet => "decnet",
            Proto::Lat => "lat",
            Proto::Sca => "sca",
            Proto::Moprc => "moprc",
            Proto::Mopdl => "mopdl",
            Proto::Iso => "iso",
            Proto::Esis => "esis",
            Proto::Isis => "isis",
            Proto::Clnp => "clnp",
            Proto::Stp => "stp",
            Proto::Ipx => "ipx",
            Proto::Netbeui => "netbeui",
            Proto::IsisL1 => "isis l1",
            Proto::IsisL2 => "isis l2",
            Proto::IsisIih => "isis iih",
            Proto::IsisLsp => "isis lsp",
            Proto::IsisSnp => "isis snp",
            Proto::IsisCsnp => "isis csnp",
            Proto::IsisPsnp => "isis psnp",
        }
    }
}

/// Direction qualifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dir {
    Default,
    Src,
    Dst,
    Or,
    And,
    Undef,
}

/// Address-type qualifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Addr {
    Default,
    Host,
    Net,
    Port,
    Portrange,
    Proto,
    Protochain,
    /// `gateway`: a name that is both an Ethernet and an IP host (libpcap's `Q_GATEWAY`).
    Gateway,
    Undef,
}

/// The three qualifiers an identifier is read with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Qual {
    pub proto: Proto,
    pub dir: Dir,
    pub addr: Addr,
}

impl Qual {
    /// libpcap's `qerr`: what follows a term that sets no qualifiers.
    pub(crate) const ERR: Qual = Qual {
        proto: Proto::Undef,
        dir: Dir::Undef,
        addr: Addr::Undef,
    };
}

/// A value of an arithmetic expression: statements that leave it in scratch register `reg`,
/// plus the protocol checks that must hold for it to mean anything.
#[derive(Debug, Clone)]
pub(crate) struct Arth {
    stmts: Vec<Instruction>,
    reg: u32,
    checks: Option<Node>,
}

/// Where an offset counts from (`OR_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OffRel {
    LinkHdr,
    LinkType,
    LinkPl,
    /// The network layer without an 802.2 SNAP header (`OR_LINKPL_NOSNAP`, ISO protocols).
    LinkPlNoSnap,
    /// The MPLS label before the current one (`OR_PREVMPLSHDR`).
    PrevMplsHdr,
    Llc,
    TranIpv4,
    TranIpv6,
}

/// An offset known partly at compile time and, after a live-mode `vlan`, partly at run
/// time in a scratch register (`bpf_abs_offset`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct AbsOffset {
    constant: u32,
    reg: Option<u32>,
}

const ETHERTYPE_IP: u32 = 0x0800;
const ETHERTYPE_ARP: u32 = 0x0806;
const ETHERTYPE_REVARP: u32 = 0x8035;
const ETHERTYPE_IPV6: u32 = 0x86dd;
const ETHERTYPE_ATALK: u32 = 0x809b;
const ETHERTYPE_AARP: u32 = 0x80f3;
const ETHERTYPE_IPX: u32 = 0x8137;
const ETHERTYPE_8021Q: u32 = 0x8100;
const ETHERTYPE_8021AD: u32 = 0x88a8;
const ETHERTYPE_8021QINQ: u32 = 0x9100;
const ETHERTYPE_DN: u32 = 0x6003;
const ETHERTYPE_LAT: u32 = 0x6004;
const ETHERTYPE_SCA: u32 = 0x6007;
const ETHERTYPE_MOPDL: u32 = 0x6001;
const ETHERTYPE_MOPRC: u32 = 0x6002;
const ETHERTYPE_MPLS: u32 = 0x8847;
const ETHERTYPE_PPPOED: u32 = 0x8863;
const ETHERTYPE_PPPOES: u32 = 0x8864;
const PPP_MPLS_UCAST: u32 = 0x0281;
const GENEVE_PORT: u32 = 6081;
/// Transparent Ethernet Bridging: a Geneve payload that is an Ethernet frame.
const ETHERTYPE_TEB: u32 = 0x6558;
const LLCSAP_8021D: u32 = 0x42;
const ISO8473_CLNP: u32 = 0x81;
const ISO9542_ESIS: u32 = 0x82;
const ISO10589_ISIS: u32 = 0x83;
const ISIS_L1_LAN_IIH: u32 = 15;
const ISIS_L2_LAN_IIH: u32 = 16;
const ISIS_PTP_IIH: u32 = 17;
const ISIS_L1_LSP: u32 = 18;
const ISIS_L2_LSP: u32 = 20;
const ISIS_L1_CSNP: u32 = 24;
const ISIS_L2_CSNP: u32 = 25;
const ISIS_L1_PSNP: u32 = 26;
const ISIS_L2_PSNP: u32 = 27;
const ETHERMTU: u32 = 1500;
const LLCSAP_IP: u32 = 0x06;
const LLCSAP_ISONS: u32 = 0xfe;
const LLCSAP_NETBEUI: u32 = 0xf0;
const LLCSAP_IPX: u32 = 0xe0;
const LLCSAP_SNAP: u8 = 0xaa;
const LINUX_SLL_P_802_2: u32 = 0x0004;
const IPPROTO_ICMP: u32 = 1;
const IPPROTO_IGMP: u32 = 2;
const IPPROTO_TCP: u32 = 6;
const IPPROTO_IGRP: u32 = 9;
const IPPROTO_UDP: u32 = 17;
const IPPROTO_HOPOPTS: u32 = 0;
const IPPROTO_ROUTING: u32 = 43;
const IPPROTO_FRAGMENT: u32 = 44;
const IPPROTO_NONE: u32 = 59;
const IPPROTO_DSTOPTS: u32 = 60;
const IPPROTO_ESP: u32 = 50;
const IPPROTO_AH: u32 = 51;
const IPPROTO_ICMPV6: u32 = 58;
const IPPROTO_PIM: u32 = 103;
const IPPROTO_VRRP: u32 = 112;
const IPPROTO_CARP: u32 = 112;
const IPPROTO_SCTP: u32 = 132;
/// libpcap's `PROTO_UNDEF` for ports: any of TCP, UDP, SCTP.
const PROTO_UNDEF: u32 = u32::MAX;

fn stmt(code: u16, k: u32) -> Instruction {
    Instruction::new(code, 0, 0, k)
}

/// The link-layer header the offsets currently point into (libpcap's `cstate->linktype`):
/// the capture's, or PPP inside a PPPoE session once `pppoes` has been read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dlt {
    Ethernet,
    LinuxSll,
    LinuxSll2,
    Raw,
    Ppp,
}

impl Dlt {
    /// The name libpcap's errors give it (`pcap_datalink_val_to_description`).
    fn description(self) -> &'static str {
        match self {
            Dlt::Ethernet => "Ethernet",
            Dlt::LinuxSll => "Linux cooked v1",
            Dlt::LinuxSll2 => "Linux cooked v2",
            Dlt::Raw => "Raw IP",
            Dlt::Ppp => "PPP",
        }
    }
}

/// `ethertype_to_ppptype`: the PPP protocol number for a protocol libpcap names by its
/// Ethernet type (or LLC SAP).
fn ethertype_to_ppptype(ll_proto: u32) -> u32 {
    match ll_proto {
        ETHERTYPE_IP => 0x0021,
        ETHERTYPE_IPV6 => 0x0057,
        ETHERTYPE_DN => 0x0027,
        ETHERTYPE_ATALK => 0x0029,
        0x0600 => 0x0025, // ETHERTYPE_NS -> PPP_NS
        LLCSAP_ISONS => 0x0023,
        LLCSAP_8021D => 0x0031,
        LLCSAP_IPX => 0x002b,
        other => other,
    }
}

/// The code generator's state (`compiler_state_t`); cloned by the parser to backtrack.
#[derive(Debug, Clone)]
pub(crate) struct Gen<'r> {
    /// What host, Ethernet host and network names mean (the caller's resolver).
    names: Names<'r>,
    dlt: Dlt,
    mode: Mode,
    off_linkhdr: AbsOffset,
    /// `None` for link types without a link-layer type field (raw IP).
    off_linktype: Option<AbsOffset>,
    off_linkpl: AbsOffset,
    off_nl: u32,
    /// Where the network layer starts when no SNAP header precedes it (`off_nl_nosnap`).
    off_nl_nosnap: u32,
    /// How many `mpls` have been read: each moves the network layer 4 bytes further.
    label_stack_depth: u32,
    regused: [bool; MEMWORDS],
    curreg: usize,
    vlan_stack_depth: u32,
    is_vlan_vloffset: bool,
    /// Set by `geneve`: its offset code has a jump inside a block, and libpcap then does
    /// not optimise the program at all.
    no_optimize: bool,
    /// Whether the offsets point inside a Geneve packet (libpcap's `is_geneve`).
    is_geneve: bool,
}

impl<'r> Gen<'r> {
    pub(crate) fn new(link: LinkType, mode: Mode, names: &'r dyn Resolve) -> R<Gen<'r>> {
        let (dlt, linktype, linkpl, nosnap) = match link {
            LinkType::Ethernet => (Dlt::Ethernet, Some(12), 14, 3),
            LinkType::LinuxSll => (Dlt::LinuxSll, Some(14), 16, 0),
            LinkType::LinuxSll2 => (Dlt::LinuxSll2, Some(0), 20, 0),
            LinkType::RawIp => (Dlt::Raw, None, 0, 0),
            LinkType::Other(n) => {
                return Err(CompileError::unsupported(format!(
                    "filters on link type {n} (supported: Ethernet, Linux cooked v1/v2, raw IP)"
                )));
            }
        };
        let fixed = |constant| AbsOffset {
            constant,
            reg: None,
        };
        Ok(Gen {
            names: Names(names),
            dlt,
            mode,
            off_linkhdr: fixed(0),
            off_linktype: linktype.map(fixed),
            off_linkpl: fixed(linkpl),
            off_nl: 0,
            off_nl_nosnap: nosnap,
            label_stack_depth: 0,
            regused: [false; MEMWORDS],
            curreg: 0,
            vlan_stack_depth: 0,
            is_vlan_vloffset: false,
            no_optimize: false,
            is_geneve: false,
        })
    }

    /// Statements to run before the filter: zero the run-time VLAN offsets, if any.
    pub(crate) fn prologue(&self) -> Vec<Instruction> {
        if !self.is_vlan_vloffset {
            return Vec::new();
        }
        let mut s = vec![stmt(LD | W | IMM, 0)];
        if let Some(r) = self.off_linkpl.reg {
            s.push(stmt(ST, r));
        }
        if let Some(r) = self.off_linktype.and_then(|o| o.reg) {
            s.push(stmt(ST, r));
        }
        s
    }

    /// Whether libpcap would run its optimiser on this program (not after `geneve`).
    pub(crate) fn optimize(&self) -> bool {
        !self.no_optimize
    }

    /// The scratch words holding run-time VLAN offsets (live mode), which the optimiser
    /// must preserve.
    pub(crate) fn protected_regs(&self) -> Vec<u32> {
        [self.off_linkpl.reg, self.off_linktype.and_then(|o| o.reg)]
            .into_iter()
            .flatten()
            .collect()
    }

    // ---- registers -------------------------------------------------------------------

    fn alloc_reg(&mut self) -> R<u32> {
        for _ in 0..MEMWORDS {
            if self.regused[self.curreg] {
                self.curreg = (self.curreg + 1) % MEMWORDS;
            } else {
                self.regused[self.curreg] = true;
                return Ok(self.curreg as u32);
            }
        }
        Err(CompileError::invalid(
            "too many registers needed to evaluate expression",
        ))
    }

    fn free_reg(&mut self, r: u32) {
        self.regused[r as usize] = false;
    }

    // ---- loads and comparisons ---------------------------------------------------------

    fn linktype_off(&self) -> AbsOffset {
        // Only reached for link types that have one; raw IP never loads it.
        self.off_linktype.unwrap_or(AbsOffset {
            constant: 0,
            reg: None,
        })
    }

    fn load_absoffsetrel(&self, abs: AbsOffset, offset: u32, size: u16) -> Vec<Instruction> {
        match abs.reg {
            Some(r) => vec![
                stmt(LDX | MEM, r),
                stmt(LD | IND | size, abs.constant.wrapping_add(offset)),
            ],
            None => vec![stmt(LD | ABS | size, abs.constant.wrapping_add(offset))],
        }
    }

    /// `gen_loadx_iphdrlen`: X = the IPv4 header length (plus the run-time offset).
    fn loadx_iphdrlen(&self) -> Vec<Instruction> {
        let k = self.off_linkpl.constant + self.off_nl;
        match self.off_linkpl.reg {
            Some(r) => vec![
                stmt(LDX | MEM, r),
                stmt(LD | IND | B, k),
                stmt(ALU | AND | K, 0xf),
                stmt(ALU | LSH | K, 2),
                stmt(ALU | ADD | X, 0),
                stmt(MISC | TAX, 0),
            ],
            None => vec![stmt(LDX | MSH | B, k)],
        }
    }

    fn load_a(&self, rel: OffRel, offset: u32, size: u16) -> Vec<Instruction> {
        match rel {
            OffRel::LinkHdr => self.load_absoffsetrel(self.off_linkhdr, offset, size),
            OffRel::LinkType => self.load_absoffsetrel(self.linktype_off(), offset, size),
            OffRel::LinkPl => {
                self.load_absoffsetrel(self.off_linkpl, self.off_nl.wrapping_add(offset), size)
            }
            OffRel::LinkPlNoSnap => self.load_absoffsetrel(
                self.off_linkpl,
                self.off_nl_nosnap.wrapping_add(offset),
                size,
            ),
            OffRel::PrevMplsHdr => self.load_absoffsetrel(
                self.off_linkpl,
                self.off_nl.wrapping_sub(4).wrapping_add(offset),
                size,
            ),
            OffRel::Llc => self.load_absoffsetrel(self.off_linkpl, offset, size),
            OffRel::TranIpv4 => {
                let mut s = self.loadx_iphdrlen();
                s.push(stmt(
                    LD | IND | size,
                    self.off_linkpl.constant + self.off_nl + offset,
                ));
                s
            }
            OffRel::TranIpv6 => {
                self.load_absoffsetrel(self.off_linkpl, self.off_nl + 40 + offset, size)
            }
        }
    }

    #[allow(clippy::too_many_arguments)] // mirrors gen_ncmp
    fn ncmp(
        &self,
        rel: OffRel,
        off: u32,
        size: u16,
        mask: u32,
        op: u16,
        rev: bool,
        v: u32,
    ) -> Node {
        let mut s = self.load_a(rel, off, size);
        if mask != 0xffff_ffff {
            s.push(stmt(ALU | AND | K, mask));
        }
        let b = Node::test(s, op, K, v);
        if rev && (op == JGT || op == JGE) {
            Node::not(b)
        } else {
            b
        }
    }

    fn cmp(&self, rel: OffRel, off: u32, size: u16, v: u32) -> Node {
        self.ncmp(rel, off, size, 0xffff_ffff, JEQ, false, v)
    }

    fn cmp_gt(&self, rel: OffRel, off: u32, size: u16, v: u32) -> Node {
        self.ncmp(rel, off, size, 0xffff_ffff, JGT, false, v)
    }

    fn cmp_ge(&self, rel: OffRel, off: u32, size: u16, v: u32) -> Node {
        self.ncmp(rel, off, size, 0xffff_ffff, JGE, false, v)
    }

    fn mcmp(&self, rel: OffRel, off: u32, size: u16, v: u32, mask: u32) -> Node {
        self.ncmp(rel, off, size, mask, JEQ, false, v)
    }

    /// `gen_bcmp`: compares bytes, last word first (libpcap's order).
    fn bcmp(&self, rel: OffRel, off: u32, bytes: &[u8]) -> Node {
        let mut size = bytes.len();
        let mut b: Option<Node> = None;
        let chain = |b: &mut Option<Node>, tmp: Node| {
            *b = Some(match b.take() {
                Some(prev) => Node::and(prev, tmp),
                None => tmp,
            });
        };
        while size >= 4 {
            let p = &bytes[size - 4..size];
            let v = u32::from_be_bytes([p[0], p[1], p[2], p[3]]);
            let tmp = self.cmp(rel, off + size as u32 - 4, W, v);
            chain(&mut b, tmp);
            size -= 4;
        }
        while size >= 2 {
            let p = &bytes[size - 2..size];
            let v = u32::from(u16::from_be_bytes([p[0], p[1]]));
            let tmp = self.cmp(rel, off + size as u32 - 2, H, v);
            chain(&mut b, tmp);
            size -= 2;
        }
        if size > 0 {
            let tmp = self.cmp(rel, off, B, u32::from(bytes[0]));
            chain(&mut b, tmp);
        }
        b.unwrap_or(Node::Const(true))
    }

    // ---- link layer --------------------------------------------------------------------

    fn snap(&self, orgcode: u32, ptype: u32) -> Node {
        let block = [
            LLCSAP_SNAP,
            LLCSAP_SNAP,
            0x03,
            (orgcode >> 16) as u8,
            (orgcode >> 8) as u8,
            orgcode as u8,
            (ptype >> 8) as u8,
            ptype as u8,
        ];
        self.bcmp(OffRel::Llc, 0, &block)
    }

    fn not_llc(&self) -> Node {
        // "not (type/length > 1500)": an 802.3 length field, so an LLC header follows.
        Node::not(self.cmp_gt(OffRel::LinkType, 0, H, ETHERMTU))
    }

    fn ether_linktype(&self, ll_proto: u32) -> Node {
        match ll_proto {
            LLCSAP_ISONS | LLCSAP_IP | LLCSAP_NETBEUI => Node::and(
                self.not_llc(),
                self.cmp(OffRel::Llc, 0, H, (ll_proto << 8) | ll_proto),
            ),
            LLCSAP_IPX => {
                let b0 = self.cmp(OffRel::Llc, 0, B, LLCSAP_IPX);
                let b1 = self.cmp(OffRel::Llc, 0, H, 0xffff);
                let b1 = Node::or(b0, b1);
                let b1 = Node::or(self.snap(0, ETHERTYPE_IPX), b1);
                let b1 = Node::and(self.not_llc(), b1);
                Node::or(self.cmp(OffRel::LinkType, 0, H, ETHERTYPE_IPX), b1)
            }
            ETHERTYPE_ATALK | ETHERTYPE_AARP => {
                let snap = if ll_proto == ETHERTYPE_ATALK {
                    self.snap(0x080007, ETHERTYPE_ATALK)
                } else {
                    self.snap(0, ETHERTYPE_AARP)
                };
                let b1 = Node::and(self.not_llc(), snap);
                Node::or(self.cmp(OffRel::LinkType, 0, H, ll_proto), b1)
            }
            _ if ll_proto <= ETHERMTU => {
                Node::and(self.not_llc(), self.cmp(OffRel::LinkType, 2, B, ll_proto))
            }
            _ => self.cmp(OffRel::LinkType, 0, H, ll_proto),
        }
    }

    fn sll_linktype(&self, ll_proto: u32) -> Node {
        let p8022 = |g: &Gen<'_>| g.cmp(OffRel::LinkType, 0, H, LINUX_SLL_P_802_2);
        match ll_proto {
            LLCSAP_ISONS | LLCSAP_IP | LLCSAP_NETBEUI => Node::and(
                p8022(self),
                self.cmp(OffRel::LinkPl, 0, H, (ll_proto << 8) | ll_proto),
            ),
            LLCSAP_IPX => {
                let b0 = self.cmp(OffRel::LinkPl, 0, B, LLCSAP_IPX);
                let b1 = Node::or(b0, self.snap(0, ETHERTYPE_IPX));
                let b1 = Node::and(p8022(self), b1);
                // 802.3 "raw" IPX (Novell): LINUX_SLL_P_802_3.
                let b0 = self.cmp(OffRel::LinkType, 0, H, 0x0001);
                let b1 = Node::or(b0, b1);
                Node::or(self.cmp(OffRel::LinkType, 0, H, ETHERTYPE_IPX), b1)
            }
            ETHERTYPE_ATALK | ETHERTYPE_AARP => {
                let snap = if ll_proto == ETHERTYPE_ATALK {
                    self.snap(0x080007, ETHERTYPE_ATALK)
                } else {
                    self.snap(0, ETHERTYPE_AARP)
                };
                let b1 = Node::and(p8022(self), snap);
                Node::or(self.cmp(OffRel::LinkType, 0, H, ll_proto), b1)
            }
            _ if ll_proto <= ETHERMTU => {
                let off = self.off_linkpl.constant;
                Node::and(p8022(self), self.cmp(OffRel::LinkHdr, off, B, ll_proto))
            }
            _ => self.cmp(OffRel::LinkType, 0, H, ll_proto),
        }
    }

    /// `gen_linktype`: the link layer says the payload is `ll_proto`. Inside MPLS only
    /// IPv4 and IPv6 can be recognised (by the IP version), anything else is an error.
    fn linktype(&self, ll_proto: u32) -> R<Node> {
        if self.label_stack_depth > 0 {
            return self.mpls_linktype(ll_proto);
        }
        Ok(match self.dlt {
            Dlt::Ethernet => self.ether_linktype(ll_proto),
            Dlt::LinuxSll => self.sll_linktype(ll_proto),
            Dlt::LinuxSll2 => self.cmp(OffRel::LinkType, 0, H, ll_proto),
            Dlt::Ppp => self.cmp(OffRel::LinkType, 0, H, ethertype_to_ppptype(ll_proto)),
            Dlt::Raw => match ll_proto {
                ETHERTYPE_IP => self.mcmp(OffRel::LinkHdr, 0, B, 0x40, 0xf0),
                ETHERTYPE_IPV6 => self.mcmp(OffRel::LinkHdr, 0, B, 0x60, 0xf0),
                _ => Node::Const(false),
            },
        })
    }

    /// `gen_mpls_linktype`: the bottom-of-stack bit of the last label, then the IP version.
    fn mpls_linktype(&self, ll_proto: u32) -> R<Node> {
        let version = match ll_proto {
            ETHERTYPE_IP => 0x40,
            ETHERTYPE_IPV6 => 0x60,
            _ => return Err(CompileError::invalid("unsupported protocol over mpls")),
        };
        let b0 = self.mcmp(OffRel::LinkPl, 2u32.wrapping_neg(), B, 0x01, 0x01);
        let b1 = self.mcmp(OffRel::LinkPl, 0, B, version, 0xf0);
        Ok(Node::and(b0, b1))
    }

    // ---- protocols -----------------------------------------------------------------------

    fn ipfrag(&self) -> Node {
        // Not a later fragment: the fragment offset is zero.
        let s = self.load_a(OffRel::LinkPl, 6, H);
        Node::not(Node::test(s, JSET, K, 0x1fff))
    }

    /// `gen_proto`: `[ip|ip6|ether] proto N`.
    pub(crate) fn proto(&self, v: u32, proto: Proto, dir: Dir) -> R<Node> {
        if dir != Dir::Default {
            return Err(CompileError::invalid("direction applied to 'proto'"));
        }
        match proto {
            Proto::Default => {
                let b0 = self.proto(v, Proto::Ip, dir)?;
                let b1 = self.proto(v, Proto::Ip6, dir)?;
                Ok(Node::or(b0, b1))
            }
            Proto::Link => self.linktype(v),
            Proto::Ip => Ok(Node::and(
                self.linktype(ETHERTYPE_IP)?,
                self.cmp(OffRel::LinkPl, 9, B, v),
            )),
            Proto::Ip6 => {
                let b0 = self.linktype(ETHERTYPE_IPV6)?;
                // Also look behind one fragment header, as libpcap does.
                let b2 = self.cmp(OffRel::LinkPl, 6, B, IPPROTO_FRAGMENT);
                let b1 = Node::and(b2, self.cmp(OffRel::LinkPl, 40, B, v));
                let b2 = self.cmp(OffRel::LinkPl, 6, B, v);
                Ok(Node::and(b0, Node::or(b2, b1)))
            }
            Proto::Arp => Err(CompileError::invalid(
                "arp does not encapsulate another protocol",
            )),
            Proto::Rarp => Err(CompileError::invalid(
                "rarp does not encapsulate another protocol",
            )),
            Proto::Iso => Ok(Node::and(
                self.linktype(LLCSAP_ISONS)?,
                self.cmp(OffRel::LinkPlNoSnap, 0, B, v),
            )),
            Proto::Isis => {
                let b0 = self.proto(ISO10589_ISIS, Proto::Iso, Dir::Default)?;
                // The PDU type is 4 bytes into the IS-IS header.
                Ok(Node::and(b0, self.cmp(OffRel::LinkPlNoSnap, 4, B, v)))
            }
            Proto::Atalk => Err(CompileError::invalid(
                "AppleTalk encapsulation is not specifiable",
            )),
            Proto::Decnet => Err(CompileError::invalid(
                "DECNET encapsulation is not specifiable",
            )),
            Proto::Aarp | Proto::Sca | Proto::Lat | Proto::Mopdl | Proto::Moprc => {
                Err(CompileError::invalid(format!(
                    "{} does not encapsulate another protocol",
                    p_name_upper(proto)
                )))
            }
            Proto::Clnp => Err(CompileError::invalid("'clnp proto' is not supported")),
            Proto::Undef => Err(CompileError::invalid("syntax error in filter expression")),
            p => Err(CompileError::invalid(format!(
                "'{} proto' is bogus",
                p.name()
            ))),
        }
    }

    /// An IS-IS PDU of any of `types`, tested in that order.
    fn isis_any(&self, types: &[u32]) -> R<Node> {
        let mut b: Option<Node> = None;
        for &t in types.iter().rev() {
            let tmp = self.proto(t, Proto::Isis, Dir::Default)?;
            b = Some(match b {
                Some(rest) => Node::or(tmp, rest),
                None => tmp,
            });
        }
        Ok(b.unwrap_or(Node::Const(false)))
    }

    /// `gen_proto_abbrev`: a protocol name on its own (`tcp`, `ip6`, `arp`).
    pub(crate) fn proto_abbrev(&self, p: Proto) -> R<Node> {
        let d = Dir::Default;
        match p {
            Proto::Sctp => self.proto(IPPROTO_SCTP, Proto::Default, d),
            Proto::Tcp => self.proto(IPPROTO_TCP, Proto::Default, d),
            Proto::Udp => self.proto(IPPROTO_UDP, Proto::Default, d),
            Proto::Icmp => self.proto(IPPROTO_ICMP, Proto::Ip, d),
            Proto::Igmp => self.proto(IPPROTO_IGMP, Proto::Ip, d),
            Proto::Igrp => self.proto(IPPROTO_IGRP, Proto::Ip, d),
            Proto::Pim => self.proto(IPPROTO_PIM, Proto::Default, d),
            Proto::Vrrp => self.proto(IPPROTO_VRRP, Proto::Ip, d),
            Proto::Carp => self.proto(IPPROTO_CARP, Proto::Ip, d),
            Proto::Ip => self.linktype(ETHERTYPE_IP),
            Proto::Arp => self.linktype(ETHERTYPE_ARP),
            Proto::Rarp => self.linktype(ETHERTYPE_REVARP),
            Proto::Ip6 => self.linktype(ETHERTYPE_IPV6),
            Proto::Icmp6 => self.proto(IPPROTO_ICMPV6, Proto::Ip6, d),
            Proto::Ah => self.proto(IPPROTO_AH, Proto::Default, d),
            Proto::Esp => self.proto(IPPROTO_ESP, Proto::Default, d),
            Proto::Atalk => self.linktype(ETHERTYPE_ATALK),
            Proto::Aarp => self.linktype(ETHERTYPE_AARP),
            Proto::Decnet => self.linktype(ETHERTYPE_DN),
            Proto::Sca => self.linktype(ETHERTYPE_SCA),
            Proto::Lat => self.linktype(ETHERTYPE_LAT),
            Proto::Mopdl => self.linktype(ETHERTYPE_MOPDL),
            Proto::Moprc => self.linktype(ETHERTYPE_MOPRC),
            Proto::Iso => self.linktype(LLCSAP_ISONS),
            Proto::Esis => self.proto(ISO9542_ESIS, Proto::Iso, d),
            Proto::Isis => self.proto(ISO10589_ISIS, Proto::Iso, d),
            Proto::Clnp => self.proto(ISO8473_CLNP, Proto::Iso, d),
            Proto::Stp => self.linktype(LLCSAP_8021D),
            Proto::Ipx => self.linktype(LLCSAP_IPX),
            Proto::Netbeui => self.linktype(LLCSAP_NETBEUI),
            // libpcap's order of tests, which decides the verdict on a short packet.
            Proto::IsisL1 => self.isis_any(&[
                ISIS_L1_PSNP,
                ISIS_L1_CSNP,
                ISIS_L1_LSP,
                ISIS_L1_LAN_IIH,
                ISIS_PTP_IIH,
            ]),
            Proto::IsisL2 => self.isis_any(&[
                ISIS_L2_PSNP,
                ISIS_L2_CSNP,
                ISIS_L2_LSP,
                ISIS_L2_LAN_IIH,
                ISIS_PTP_IIH,
            ]),
            Proto::IsisIih => self.isis_any(&[ISIS_PTP_IIH, ISIS_L1_LAN_IIH, ISIS_L2_LAN_IIH]),
            Proto::IsisLsp => self.isis_any(&[ISIS_L1_LSP, ISIS_L2_LSP]),
            Proto::IsisSnp => {
                self.isis_any(&[ISIS_L2_PSNP, ISIS_L1_PSNP, ISIS_L1_CSNP, ISIS_L2_CSNP])
            }
            Proto::IsisCsnp => self.isis_any(&[ISIS_L1_CSNP, ISIS_L2_CSNP]),
            Proto::IsisPsnp => self.isis_any(&[ISIS_L1_PSNP, ISIS_L2_PSNP]),
            Proto::Link => Err(CompileError::invalid("link layer applied in wrong context")),
            Proto::Default | Proto::Undef => {
                Err(CompileError::invalid("syntax error in filter expression"))
            }
        }
    }

    // ---- hosts and networks --------------------------------------------------------------

    fn hostop(&self, addr: u32, mask: u32, dir: Dir, ll: u32, src: u32, dst: u32) -> R<Node> {
        let offset = match dir {
            Dir::Src => src,
            Dir::Dst => dst,
            Dir::And => {
                let b0 = self.hostop(addr, mask, Dir::Src, ll, src, dst)?;
                let b1 = self.hostop(addr, mask, Dir::Dst, ll, src, dst)?;
                return Ok(Node::and(b0, b1));
            }
            Dir::Default | Dir::Or => {
                let b0 = self.hostop(addr, mask, Dir::Src, ll, src, dst)?;
                let b1 = self.hostop(addr, mask, Dir::Dst, ll, src, dst)?;
                return Ok(Node::or(b0, b1));
            }
            Dir::Undef => return Err(CompileError::invalid("syntax error in filter expression")),
        };
        Ok(Node::and(
            self.linktype(ll)?,
            self.mcmp(OffRel::LinkPl, offset, W, addr, mask),
        ))
    }

    fn host(&self, addr: u32, mask: u32, proto: Proto, dir: Dir, what: &str) -> R<Node> {
        match proto {
            Proto::Default => {
                let b0 = self.host(addr, mask, Proto::Ip, dir, what)?;
                if self.label_stack_depth > 0 {
                    // Inside MPLS only IPv4 can be told apart.
                    return Ok(b0);
                }
                let b1 = self.host(addr, mask, Proto::Arp, dir, what)?;
                let b1 = Node::or(b0, b1);
                let b0 = self.host(addr, mask, Proto::Rarp, dir, what)?;
                Ok(Node::or(b1, b0))
            }
            Proto::Ip => self.hostop(addr, mask, dir, ETHERTYPE_IP, 12, 16),
            Proto::Arp => self.hostop(addr, mask, dir, ETHERTYPE_ARP, 14, 24),
            Proto::Rarp => self.hostop(addr, mask, dir, ETHERTYPE_REVARP, 14, 24),
            Proto::Link => Err(CompileError::invalid(format!(
                "link-layer modifier applied to {what}"
            ))),
            Proto::Ip6 => Err(CompileError::invalid("'ip6' modifier applied to ip host")),
            Proto::Decnet => self.dnhostop(addr, dir),
            Proto::Atalk => Err(CompileError::invalid(
                "AppleTalk host filtering not implemented",
            )),
            Proto::Iso | Proto::Esis | Proto::Isis | Proto::Clnp => {
                Err(CompileError::invalid("ISO host filtering not implemented"))
            }
            Proto::Ipx => Err(CompileError::invalid("IPX host filtering not implemented")),
            Proto::Undef => Err(CompileError::invalid("syntax error in filter expression")),
            p => Err(CompileError::invalid(format!(
                "'{}' modifier applied to {what}",
                p.name()
            ))),
        }
    }

    /// `gen_dnhostop`: a DECnet node address (16 bits, little-endian on the wire) as source
    /// or destination of a DECnet routing header, long or short, with or without the padding
    /// byte; the four forms are tested in libpcap's order.
    fn dnhostop(&self, addr: u32, dir: Dir) -> R<Node> {
        let (offset_sh, offset_lh) = match dir {
            Dir::Dst => (1, 7),
            Dir::Src => (3, 15),
            Dir::And => {
                let b0 = self.dnhostop(addr, Dir::Src)?;
                let b1 = self.dnhostop(addr, Dir::Dst)?;
                return Ok(Node::and(b0, b1));
            }
            Dir::Default | Dir::Or => {
                let b0 = self.dnhostop(addr, Dir::Src)?;
                let b1 = self.dnhostop(addr, Dir::Dst)?;
                return Ok(Node::or(b0, b1));
            }
            Dir::Undef => return Err(CompileError::invalid("syntax error in filter expression")),
        };
        // libpcap compares with ntohs() of the values on a little-endian host.
        let swap = |v: u32| u32::from((v as u16).swap_bytes());
        let a = swap(addr);
        let b0 = self.linktype(ETHERTYPE_DN)?;
        // Padding byte, long header.
        let tmp = self.mcmp(OffRel::LinkPl, 2, H, swap(0x0681), swap(0x07ff));
        let b1 = Node::and(tmp, self.cmp(OffRel::LinkPl, 2 + 1 + offset_lh, H, a));
        // No padding, long header.
        let tmp = self.mcmp(OffRel::LinkPl, 2, B, 0x06, 0x07);
        let b2 = Node::and(tmp, self.cmp(OffRel::LinkPl, 2 + offset_lh, H, a));
        let b1 = Node::or(b2, b1);
        // Padding byte, short header.
        let tmp = self.mcmp(OffRel::LinkPl, 2, H, swap(0x0281), swap(0x07ff));
        let b2 = Node::and(tmp, self.cmp(OffRel::LinkPl, 2 + 1 + offset_sh, H, a));
        let b1 = Node::or(b2, b1);
        // No padding, short header.
        let tmp = self.mcmp(OffRel::LinkPl, 2, B, 0x02, 0x07);
        let b2 = Node::and(tmp, self.cmp(OffRel::LinkPl, 2 + offset_sh, H, a));
        let b1 = Node::or(b2, b1);
        Ok(Node::and(b0, b1))
    }

    fn hostop6(&self, addr: &[u32; 4], mask: &[u32; 4], dir: Dir, src: u32, dst: u32) -> R<Node> {
        let offset = match dir {
            Dir::Src => src,
            Dir::Dst => dst,
            Dir::And => {
                let b0 = self.hostop6(addr, mask, Dir::Src, src, dst)?;
                let b1 = self.hostop6(addr, mask, Dir::Dst, src, dst)?;
                return Ok(Node::and(b0, b1));
            }
            Dir::Default | Dir::Or => {
                let b0 = self.hostop6(addr, mask, Dir::Src, src, dst)?;
                let b1 = self.hostop6(addr, mask, Dir::Dst, src, dst)?;
                return Ok(Node::or(b0, b1));
            }
            Dir::Undef => return Err(CompileError::invalid("syntax error in filter expression")),
        };
        let word = |i: usize| self.mcmp(OffRel::LinkPl, offset + 4 * i as u32, W, addr[i], mask[i]);
        // libpcap builds word 3, then and-s 2, 1, 0 in front of it: the order run is 0..3.
        let b = Node::and(word(0), Node::and(word(1), Node::and(word(2), word(3))));
        Ok(Node::and(self.linktype(ETHERTYPE_IPV6)?, b))
    }

    fn host6(
        &self,
        addr: &[u32; 4],
        mask: &[u32; 4],
        proto: Proto,
        dir: Dir,
        what: &str,
    ) -> R<Node> {
        match proto {
            Proto::Default | Proto::Ip6 => self.hostop6(addr, mask, dir, 8, 24),
            Proto::Link => Err(CompileError::invalid(format!(
                "link-layer modifier applied to ip6 {what}"
            ))),
            Proto::Undef => Err(CompileError::invalid("syntax error in filter expression")),
            p => Err(CompileError::invalid(format!(
                "'{}' modifier applied to ip6 {what}",
                p.name()
            ))),
        }
    }

    fn ehostop(&self, mac: &[u8; 6], dir: Dir) -> R<Node> {
        match dir {
            Dir::Src => Ok(self.bcmp(OffRel::LinkHdr, 6, mac)),
            Dir::Dst => Ok(self.bcmp(OffRel::LinkHdr, 0, mac)),
            Dir::And => Ok(Node::and(
                self.ehostop(mac, Dir::Src)?,
                self.ehostop(mac, Dir::Dst)?,
            )),
            Dir::Default | Dir::Or => Ok(Node::or(
                self.ehostop(mac, Dir::Src)?,
                self.ehostop(mac, Dir::Dst)?,
            )),
            Dir::Undef => Err(CompileError::invalid("syntax error in filter expression")),
        }
    }

    /// `gen_ecode`: a MAC address.
    pub(crate) fn ecode(&self, mac: &[u8; 6], q: Qual) -> R<Node> {
        if matches!(q.addr, Addr::Host | Addr::Default) && q.proto == Proto::Link {
            if self.dlt != Dlt::Ethernet {
                return Err(CompileError::invalid(
                    "ethernet addresses supported only on ethernet/FDDI/token ring/802.11/ATM LANE/Fibre Channel",
                ));
            }
            let b = self.ehostop(mac, q.dir)?;
            return Ok(self.after_prevlinkhdr_check(b));
        }
        Err(CompileError::invalid(
            "ethernet address used in non-ether expression",
        ))
    }

    // ---- ports ---------------------------------------------------------------------------

    fn portatom(&self, off: u32, v: u32) -> Node {
        self.cmp(OffRel::TranIpv4, off, H, v)
    }

    fn portatom6(&self, off: u32, v: u32) -> Node {
        self.cmp(OffRel::TranIpv6, off, H, v)
    }

    fn port_dir(&self, dir: Dir, atom: &dyn Fn(u32) -> Node) -> R<Node> {
        Ok(match dir {
            Dir::Src => atom(0),
            Dir::Dst => atom(2),
            Dir::And => Node::and(atom(0), atom(2)),
            Dir::Default | Dir::Or => Node::or(atom(0), atom(2)),
            Dir::Undef => return Err(CompileError::invalid("syntax error in filter expression")),
        })
    }

    fn portop(&self, port: u32, proto: u32, dir: Dir) -> R<Node> {
        let tmp = self.cmp(OffRel::LinkPl, 9, B, proto);
        let b0 = Node::and(tmp, self.ipfrag());
        let b1 = self.port_dir(dir, &|off| self.portatom(off, port))?;
        Ok(Node::and(b0, b1))
    }

    fn portop6(&self, port: u32, proto: u32, dir: Dir) -> R<Node> {
        let tmp = self.cmp(OffRel::LinkPl, 6, B, proto);
        let b1 = self.port_dir(dir, &|off| self.portatom6(off, port))?;
        Ok(Node::and(tmp, b1))
    }

    fn rangeop(&self, lo: u32, hi: u32, dir: Dir, v6: bool) -> R<Node> {
        let (lo, hi) = if lo > hi { (hi, lo) } else { (lo, hi) };
        let rel = if v6 {
            OffRel::TranIpv6
        } else {
            OffRel::TranIpv4
        };
        let atom = |off: u32| -> Node {
            let b1 = self.cmp_ge(rel, off, H, lo);
            let b2 = Node::not(self.cmp_gt(rel, off, H, hi));
            Node::and(b1, b2)
        };
        self.port_dir(dir, &atom)
    }

    fn any_transport(&self, ip_proto: u32, one: &dyn Fn(u32) -> R<Node>) -> R<Node> {
        match ip_proto {
            PROTO_UNDEF => {
                let tmp = one(IPPROTO_TCP)?;
                let b1 = Node::or(tmp, one(IPPROTO_UDP)?);
                Ok(Node::or(one(IPPROTO_SCTP)?, b1))
            }
            p => one(p),
        }
    }

    /// `gen_port` (IPv4) or-ed after `gen_port6`, as `gen_ncode`/`gen_scode` do.
    fn port(&self, port: u32, ip_proto: u32, dir: Dir) -> R<Node> {
        let v4 = Node::and(
            self.linktype(ETHERTYPE_IP)?,
            self.any_transport(ip_proto, &|p| self.portop(port, p, dir))?,
        );
        let v6 = Node::and(
            self.linktype(ETHERTYPE_IPV6)?,
            self.any_transport(ip_proto, &|p| self.portop6(port, p, dir))?,
        );
        Ok(Node::or(v6, v4))
    }

    fn portrange(&self, lo: u32, hi: u32, ip_proto: u32, dir: Dir) -> R<Node> {
        let v4 = Node::and(
            self.linktype(ETHERTYPE_IP)?,
            self.any_transport(ip_proto, &|p| {
                let tmp = self.cmp(OffRel::LinkPl, 9, B, p);
                let b0 = Node::and(tmp, self.ipfrag());
                Ok(Node::and(b0, self.rangeop(lo, hi, dir, false)?))
            })?,
        );
        let v6 = Node::and(
            self.linktype(ETHERTYPE_IPV6)?,
            self.any_transport(ip_proto, &|p| {
                let tmp = self.cmp(OffRel::LinkPl, 6, B, p);
                Ok(Node::and(tmp, self.rangeop(lo, hi, dir, true)?))
            })?,
        );
        Ok(Node::or(v6, v4))
    }

    fn port_proto(proto: Proto) -> R<u32> {
        match proto {
            Proto::Udp => Ok(IPPROTO_UDP),
            Proto::Tcp => Ok(IPPROTO_TCP),
            Proto::Sctp => Ok(IPPROTO_SCTP),
            Proto::Default => Ok(PROTO_UNDEF),
            _ => Err(CompileError::invalid("illegal qualifier of 'port'")),
        }
    }

    /// Combines the protocol qualifier with the protocol a port name was found for.
    fn named_port_proto(proto: Proto, found: PortProto, name: &str, what: &str) -> R<u32> {
        let want = Self::port_proto(proto)?;
        let found = match found {
            PortProto::Any => PROTO_UNDEF,
            PortProto::Tcp => IPPROTO_TCP,
            PortProto::Udp => IPPROTO_UDP,
        };
        if want == PROTO_UNDEF {
            return Ok(found);
        }
        if found != PROTO_UNDEF && found != want {
            let is = if found == IPPROTO_TCP { "tcp" } else { "udp" };
            return Err(CompileError::invalid(format!("{what} '{name}' is {is}")));
        }
        Ok(want)
    }

    // ---- identifiers with qualifiers ------------------------------------------------------

    /// `gen_ncode`: a number or dotted address (`s`) read with qualifiers `q`.
    pub(crate) fn ncode(&mut self, s: Option<&str>, v: u32, q: Qual) -> R<Node> {
        let (mut v, vlen) = match s {
            None => (v, 32),
            Some(text) if q.proto == Proto::Decnet => (
                atodn(text).ok_or_else(|| {
                    CompileError::invalid(format!("malformed decnet address '{text}'"))
                })?,
                32,
            ),
            Some(text) => atoin(text)
                .ok_or_else(|| CompileError::invalid(format!("invalid IPv4 address '{text}'")))?,
        };
        match q.addr {
            Addr::Default | Addr::Host | Addr::Net => {
                if q.proto == Proto::Decnet {
                    return self.dnhostop(v, q.dir);
                }
                if q.proto == Proto::Link {
                    return Err(CompileError::invalid("illegal link layer address"));
                }
                let mut mask: u32 = 0xffff_ffff;
                if s.is_none() && q.addr == Addr::Net {
                    // Promote a short net number: `net 10` is 10.0.0.0/8.
                    while v != 0 && (v & 0xff00_0000) == 0 {
                        v <<= 8;
                        mask <<= 8;
                    }
                } else {
                    v = v.checked_shl(32 - vlen).unwrap_or(0);
                    mask = mask.checked_shl(32 - vlen).unwrap_or(0);
                }
                let what = if q.addr == Addr::Net { "net" } else { "host" };
                self.host(v, mask, q.proto, q.dir, what)
            }
            Addr::Port => {
                let p = Self::port_proto(q.proto)?;
                if v > 65535 {
                    return Err(CompileError::invalid(format!(
                        "illegal port number {v} > 65535"
                    )));
                }
                self.port(v, p, q.dir)
            }
            Addr::Portrange => {
                let p = Self::port_proto(q.proto)?;
                if v > 65535 {
                    return Err(CompileError::invalid(format!(
                        "illegal port number {v} > 65535"
                    )));
                }
                self.portrange(v, v, p, q.dir)
            }
            Addr::Proto => self.proto(v, q.proto, q.dir),
            Addr::Protochain => self.protochain(v, q.proto),
            Addr::Gateway => Err(CompileError::invalid("'gateway' requires a name")),
            Addr::Undef => Err(CompileError::invalid("syntax error in filter expression")),
        }
    }

    /// `ether host NAME`: the name's MAC address from the resolver (`pcap_ether_hostton`).
    fn ether_host_name(&self, name: &str, dir: Dir) -> R<Node> {
        if self.dlt != Dlt::Ethernet {
            // libpcap refuses before looking the name up.
            return Err(CompileError::invalid(
                "only ethernet/FDDI/token ring/802.11/ATM LANE/Fibre Channel supports link-level host name",
            ));
        }
        let mac = self
            .names
            .0
            .ether(name)
            .map_err(|e| lookup_failed("ether host", name, e))?
            .ok_or_else(|| CompileError::invalid(format!("unknown ether host '{name}'")))?;
        let b = self.ehostop(&mac, dir)?;
        Ok(self.after_prevlinkhdr_check(b))
    }

    /// `host NAME`: every address the resolver gives, in its order, OR-ed as libpcap's
    /// `gen_scode` does: IPv4 addresses as `host A.B.C.D` (with ARP and RARP unless a
    /// protocol says otherwise), IPv6 ones as `host X::Y`. `ip host` keeps the IPv4
    /// addresses, `ip6 host` the IPv6 ones; on a link type without a type field (raw IP)
    /// an unqualified name means `ip` for IPv4 and `ip6` for IPv6.
    fn host_name(&self, name: &str, q: Qual) -> R<Node> {
        let addrs = self
            .names
            .0
            .host(name)
            .map_err(|e| lookup_failed("host", name, e))?;
        if addrs.is_empty() {
            return Err(CompileError::invalid(format!("unknown host '{name}'")));
        }
        let (mut proto4, mut proto6) = (q.proto, q.proto);
        if self.off_linktype.is_none() && q.proto == Proto::Default {
            proto4 = Proto::Ip;
            proto6 = Proto::Ip6;
        }
        let mut b: Option<Node> = None;
        for addr in addrs {
            let tmp = match addr {
                std::net::IpAddr::V4(v4) if proto4 != Proto::Ip6 => {
                    self.host(u32::from(v4), 0xffff_ffff, proto4, q.dir, "host")?
                }
                std::net::IpAddr::V6(v6) if proto6 != Proto::Ip => {
                    let bits = u128::from(v6);
                    let words = [
                        (bits >> 96) as u32,
                        (bits >> 64) as u32,
                        (bits >> 32) as u32,
                        bits as u32,
                    ];
                    self.host6(&words, &[u32::MAX; 4], proto6, q.dir, "host")?
                }
                _ => continue,
            };
            b = Some(match b {
                Some(prev) => Node::or(prev, tmp),
                None => tmp,
            });
        }
        b.ok_or_else(|| {
            let family = if q.proto == Proto::Default {
                ""
            } else {
                " for specified address family"
            };
            CompileError::invalid(format!("unknown host '{name}'{family}"))
        })
    }

    /// `gen_scode`: a name read with qualifiers `q`.
    pub(crate) fn scode(&mut self, name: &str, q: Qual) -> R<Node> {
        match q.addr {
            Addr::Net => {
                // `pcap_nametonetaddr`: 0 means not found, for libpcap as here.
                let found = self
                    .names
                    .0
                    .network(name)
                    .map_err(|e| lookup_failed("network", name, e))?;
                let mut addr = found
                    .filter(|&n| n != 0)
                    .ok_or_else(|| CompileError::invalid(format!("unknown network '{name}'")))?;
                // Left-justify the network number, its mask with it.
                let mut mask: u32 = 0xffff_ffff;
                while addr != 0 && addr & 0xff00_0000 == 0 {
                    addr <<= 8;
                    mask <<= 8;
                }
                self.host(addr, mask, q.proto, q.dir, "net")
            }
            Addr::Default | Addr::Host => {
                if q.proto == Proto::Decnet {
                    // libpcap on Linux has no DECnet name database.
                    Err(CompileError::invalid(format!(
                        "decnet name support not included, '{name}' cannot be translated"
                    )))
                } else if q.proto == Proto::Link {
                    self.ether_host_name(name, q.dir)
                } else {
                    self.host_name(name, q)
                }
            }
            // libpcap 1.10 built with IPv6 support (as every distribution builds it) refuses
            // `gateway NAME` before looking anything up.
            Addr::Gateway => Err(CompileError::invalid(
                "'gateway' not supported in this configuration",
            )),
            Addr::Port => {
                // Check the qualifier before the name, as libpcap does.
                Self::port_proto(q.proto)?;
                let (port, found) = names::port(name)
                    .ok_or_else(|| CompileError::invalid(format!("unknown port '{name}'")))?;
                let p = Self::named_port_proto(q.proto, found, name, "port")?;
                self.port(port.into(), p, q.dir)
            }
            Addr::Portrange => {
                Self::port_proto(q.proto)?;
                let (lo, hi, found) = names::port_range(name).ok_or_else(|| {
                    CompileError::invalid(format!("unknown port in range '{name}'"))
                })?;
                let p = Self::named_port_proto(q.proto, found, name, "port in range")?;
                for n in [lo, hi] {
                    if n > 65535 {
                        return Err(CompileError::invalid(format!(
                            "illegal port number {n} > 65535"
                        )));
                    }
                }
                self.portrange(lo, hi, p, q.dir)
            }
            Addr::Proto | Addr::Protochain => {
                let v = match q.proto {
                    Proto::Default | Proto::Ip | Proto::Ip6 => {
                        names::ip_proto(name).ok_or_else(|| {
                            CompileError::invalid(format!("unknown ip proto '{name}'"))
                        })?
                    }
                    Proto::Link => names::ether_proto(name).ok_or_else(|| {
                        CompileError::invalid(format!("unknown ether proto '{name}'"))
                    })?,
                    Proto::Iso => match name {
                        "esis" => ISO9542_ESIS,
                        "isis" => ISO10589_ISIS,
                        "clnp" => ISO8473_CLNP,
                        _ => {
                            return Err(CompileError::invalid(format!(
                                "unknown osi proto '{name}'"
                            )));
                        }
                    },
                    _ => {
                        return Err(CompileError::invalid(format!("unknown protocol: {name}")));
                    }
                };
                if q.addr == Addr::Protochain {
                    self.protochain(v, q.proto)
                } else {
                    self.proto(v, q.proto, q.dir)
                }
            }
            Addr::Undef => Err(CompileError::invalid("syntax error in filter expression")),
        }
    }

    /// `gen_inbound`: `inbound` (`outbound` false) or `outbound` (true).
    ///
    /// The Linux cooked headers carry the packet type (4 = `LINUX_SLL_OUTGOING`) and libpcap
    /// tests it there, in files and live alike. Other link types have no direction in the
    /// frame: on a live socket libpcap reads the kernel's packet type (`SKF_AD_PKTTYPE`,
    /// 4 = `PACKET_OUTGOING`), and from a file it refuses. The test is relative to the
    /// current link-layer header, as in libpcap, so inside a PPPoE session or a Geneve
    /// packet it reads PPP or Ethernet's "header" at that offset from the metadata base
    /// (libpcap's quirk, reproduced: the same program as `tcpdump -d`).
    pub(crate) fn inbound(&self, outbound: bool) -> R<Node> {
        const OUTGOING: u32 = 4;
        let b0 = match self.dlt {
            Dlt::LinuxSll => self.cmp(OffRel::LinkHdr, 0, H, OUTGOING),
            Dlt::LinuxSll2 => self.cmp(OffRel::LinkHdr, 10, B, OUTGOING),
            Dlt::Ethernet | Dlt::Raw | Dlt::Ppp => {
                self.live_metadata("inbound/outbound")?;
                self.cmp(OffRel::LinkHdr, SKF_AD_OFF + SKF_AD_PKTTYPE, H, OUTGOING)
            }
        };
        Ok(if outbound { b0 } else { Node::not(b0) })
    }

    /// `gen_ifindex`: `ifindex N`, the interface the packet was captured on. Only the
    /// cooked v2 header carries it; elsewhere, as for [`Gen::inbound`], libpcap reads the
    /// kernel's metadata (`SKF_AD_IFINDEX`) on a live socket and refuses a file.
    pub(crate) fn ifindex(&self, index: u32) -> R<Node> {
        match self.dlt {
            Dlt::LinuxSll2 => Ok(self.cmp(OffRel::LinkHdr, 4, W, index)),
            Dlt::Ethernet | Dlt::Raw | Dlt::Ppp | Dlt::LinuxSll => {
                self.live_metadata("ifindex")?;
                Ok(self.cmp(OffRel::LinkHdr, SKF_AD_OFF + SKF_AD_IFINDEX, W, index))
            }
        }
    }

    /// libpcap's refusal, for a file, of a keyword it can only answer from a live socket's
    /// metadata (its words: it checks whether the handle reads a savefile).
    fn live_metadata(&self, what: &str) -> R<()> {
        match self.mode {
            Mode::Live => Ok(()),
            Mode::File => Err(CompileError::invalid(format!(
                "{what} not supported on {} when reading savefiles",
                self.dlt.description()
            ))),
        }
    }

    /// `gen_protochain`: the IPv4 or IPv6 packet carries protocol `v`, directly or behind
    /// IPv6 extension headers and AH headers. libpcap compiles this to a loop over the
    /// headers, with jumps inside one block and a backward jump; it then does not optimise
    /// the program, and the kernel refuses it (libpcap filters in user space then).
    pub(crate) fn protochain(&mut self, v: u32, proto: Proto) -> R<Node> {
        if self.mode == Mode::Live {
            return Err(CompileError::unsupported(
                "`protochain` on a live socket (libpcap's loop is a backward jump, which the \
                 kernel refuses)",
            ));
        }
        // Allocated before the protocol is checked, and not freed for `protochain` without
        // a protocol (which recurses), as in libpcap.
        let reg2 = self.alloc_reg()?;
        let v6 = match proto {
            Proto::Ip => false,
            Proto::Ip6 => true,
            Proto::Default => {
                let b0 = self.protochain(v, Proto::Ip)?;
                let b = self.protochain(v, Proto::Ip6)?;
                return Ok(Node::or(b0, b));
            }
            _ => {
                return Err(CompileError::invalid(
                    "bad protocol applied for 'protochain'",
                ));
            }
        };
        if self.off_linkpl.reg.is_some() {
            return Err(CompileError::invalid(
                "'protochain' not supported with variable length headers",
            ));
        }
        self.no_optimize = true;
        let base = self.off_linkpl.constant + self.off_nl;

        // The block's statements, with jumps between them: `Jump` targets are labels
        // resolved to relative offsets below.
        enum Item {
            Stmt(Instruction),
            /// `jeq #k`, true and false targets.
            Jeq(u32, Label, Label),
            /// `ja` (backwards, to `again`).
            Ja(Label),
        }
        #[derive(Clone, Copy, PartialEq)]
        enum Label {
            Next,
            Again,
            V6Advance,
            AhCheck,
            End,
        }
        let st = |code: u16, k: u32| Item::Stmt(stmt(code, k));
        let b0;
        let mut items = Vec::new();
        if v6 {
            b0 = self.linktype(ETHERTYPE_IPV6)?;
            items.push(st(LD | ABS | B, base + 6)); // A = ip6->ip6_nxt
            items.push(st(LDX | IMM, 40)); // X = sizeof(struct ip6_hdr)
        } else {
            b0 = self.linktype(ETHERTYPE_IP)?;
            items.push(st(LD | ABS | B, base + 9)); // A = ip->ip_p
            items.push(st(LDX | MSH | B, base)); // X = ip->ip_hl << 2
        }
        let again = items.len();
        items.push(Item::Jeq(v, Label::End, Label::Next));
        items.push(Item::Jeq(IPPROTO_NONE, Label::End, Label::Next));
        let mut v6advance = None;
        if v6 {
            for p in [IPPROTO_HOPOPTS, IPPROTO_DSTOPTS, IPPROTO_ROUTING] {
                items.push(Item::Jeq(p, Label::V6Advance, Label::Next));
            }
            items.push(Item::Jeq(
                IPPROTO_FRAGMENT,
                Label::V6Advance,
                Label::AhCheck,
            ));
            // Next header and length (in 8-byte units, less one) of the extension header.
            v6advance = Some(items.len());
            items.extend([
                st(LD | IND | B, base),
                st(ST, reg2),
                st(LD | IND | B, base + 1),
                st(ALU | ADD | K, 1),
                st(ALU | MUL | K, 8),
                st(ALU | ADD | X, 0),
                st(MISC | TAX, 0),
                st(LD | MEM, reg2),
                Item::Ja(Label::Again),
            ]);
        } else {
            items.push(st(ALU | ADD | K, 0));
        }
        let ahcheck = items.len();
        // AH: next header, and X set to (length + 2) * 4, as libpcap does (it does not add
        // the offset of the AH header).
        items.push(Item::Jeq(IPPROTO_AH, Label::Next, Label::End));
        items.extend([
            st(MISC | TXA, 0),
            st(LD | IND | B, base),
            st(ST, reg2),
            st(MISC | TXA, 0),
            st(ALU | ADD | K, 1),
            st(MISC | TAX, 0),
            st(LD | IND | B, base),
            st(ALU | ADD | K, 2),
            st(ALU | MUL | K, 4),
            st(MISC | TAX, 0),
            st(LD | MEM, reg2),
            Item::Ja(Label::Again),
        ]);
        let end = items.len();
        items.push(st(ALU | ADD | K, 0));

        let at = |i: usize, l: Label| -> usize {
            match l {
                Label::Next => i + 1,
                Label::Again => again,
                Label::V6Advance => v6advance.unwrap_or(end),
                Label::AhCheck => ahcheck,
                Label::End => end,
            }
        };
        let rel = |i: usize, target: usize| -> R<u8> {
            u8::try_from(target - i - 1)
                .map_err(|_| CompileError::invalid("protochain jump out of range"))
        };
        let mut stmts = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            stmts.push(match *item {
                Item::Stmt(ins) => ins,
                Item::Jeq(k, t, f) => {
                    Instruction::new(JMP | JEQ | K, rel(i, at(i, t))?, rel(i, at(i, f))?, k)
                }
                Item::Ja(l) => {
                    let back = at(i, l) as i64 - i as i64 - 1;
                    Instruction::new(JMP | JA, 0, 0, back as i32 as u32)
                }
            });
        }
        self.free_reg(reg2);
        Ok(Node::and(b0, Node::test(stmts, JEQ, K, v)))
    }

    /// `gen_mcode`: `a.b.c.d/len` or `a.b.c.d mask m.m.m.m`.
    pub(crate) fn mcode(&self, s1: &str, s2: Option<&str>, masklen: u32, q: Qual) -> R<Node> {
        let bad = |s: &str| CompileError::invalid(format!("invalid IPv4 address '{s}'"));
        let (n, nlen) = atoin(s1).ok_or_else(|| bad(s1))?;
        let n = n.checked_shl(32 - nlen).unwrap_or(0);
        let m = match s2 {
            Some(s2) => {
                let (m, mlen) = atoin(s2).ok_or_else(|| bad(s2))?;
                let m = m.checked_shl(32 - mlen).unwrap_or(0);
                if n & !m != 0 {
                    return Err(CompileError::invalid(format!(
                        "non-network bits set in \"{s1} mask {s2}\""
                    )));
                }
                m
            }
            None => {
                if masklen > 32 {
                    return Err(CompileError::invalid("mask length must be <= 32"));
                }
                let m = if masklen == 0 {
                    0
                } else {
                    0xffff_ffffu32 << (32 - masklen)
                };
                if n & !m != 0 {
                    return Err(CompileError::invalid(format!(
                        "non-network bits set in \"{s1}/{masklen}\""
                    )));
                }
                m
            }
        };
        match q.addr {
            Addr::Net => self.host(n, m, q.proto, q.dir, "net"),
            _ => Err(CompileError::invalid("Mask syntax for networks only")),
        }
    }

    /// `gen_mcode6`: an IPv6 address, with a prefix length (128 without).
    pub(crate) fn mcode6(&self, a: std::net::Ipv6Addr, masklen: u32, q: Qual) -> R<Node> {
        if masklen > 128 {
            return Err(CompileError::invalid("mask length must be <= 128"));
        }
        let bits = u128::from(a);
        let mask: u128 = if masklen == 0 {
            0
        } else {
            u128::MAX << (128 - masklen)
        };
        if bits & !mask != 0 {
            return Err(CompileError::invalid(format!(
                "non-network bits set in \"{a}/{masklen}\""
            )));
        }
        let words = |x: u128| {
            [
                (x >> 96) as u32,
                (x >> 64) as u32,
                (x >> 32) as u32,
                x as u32,
            ]
        };
        match q.addr {
            Addr::Default | Addr::Host | Addr::Net => {
                if q.addr != Addr::Net && masklen != 128 {
                    return Err(CompileError::invalid("Mask syntax for networks only"));
                }
                let what = if q.addr == Addr::Net { "net" } else { "host" };
                self.host6(&words(bits), &words(mask), q.proto, q.dir, what)
            }
            Addr::Undef => Err(CompileError::invalid("syntax error in filter expression")),
            _ => Err(CompileError::invalid(
                "invalid qualifier against IPv6 address",
            )),
        }
    }

    // ---- other primitives ------------------------------------------------------------------

    pub(crate) fn less(&self, n: u32) -> Node {
        Node::not(Node::test(vec![stmt(LD | W | LEN, 0)], JGT, K, n))
    }

    pub(crate) fn greater(&self, n: u32) -> Node {
        Node::test(vec![stmt(LD | W | LEN, 0)], JGE, K, n)
    }

    pub(crate) fn broadcast(&self, proto: Proto) -> R<Node> {
        match proto {
            Proto::Default | Proto::Link => {
                if self.dlt != Dlt::Ethernet {
                    return Err(CompileError::invalid("not a broadcast link"));
                }
                let b0 = self.bcmp(OffRel::LinkHdr, 0, &[0xff; 6]);
                Ok(self.after_prevlinkhdr_check(b0))
            }
            Proto::Ip => {
                // libpcap needs the netmask of the network: tcpdump reading a file (or
                // printing a program) gives it 0, so the broadcast addresses are 0.0.0.0 and
                // 255.255.255.255. A live socket's netmask is not known here.
                if self.mode == Mode::Live {
                    return Err(CompileError::unsupported(
                        "`ip broadcast` on a live socket (it needs the interface's netmask)",
                    ));
                }
                let b0 = self.linktype(ETHERTYPE_IP)?;
                let hostmask = !0u32;
                let b1 = self.mcmp(OffRel::LinkPl, 16, W, 0, hostmask);
                let b2 = self.mcmp(OffRel::LinkPl, 16, W, hostmask, hostmask);
                Ok(Node::and(b0, Node::or(b1, b2)))
            }
            _ => Err(CompileError::invalid(
                "only link-layer/IP broadcast filters supported",
            )),
        }
    }

    pub(crate) fn multicast(&self, proto: Proto) -> R<Node> {
        match proto {
            Proto::Default | Proto::Link => {
                if self.dlt != Dlt::Ethernet {
                    return Err(CompileError::invalid(
                        "link-layer multicast filters supported only on ethernet/FDDI/token ring/ARCNET/802.11/ATM LANE/Fibre Channel",
                    ));
                }
                // ether[0] & 1 != 0
                let b0 = Node::test(self.load_a(OffRel::LinkHdr, 0, B), JSET, K, 1);
                Ok(self.after_prevlinkhdr_check(b0))
            }
            Proto::Ip => Ok(Node::and(
                self.linktype(ETHERTYPE_IP)?,
                self.cmp_ge(OffRel::LinkPl, 16, B, 224),
            )),
            Proto::Ip6 => Ok(Node::and(
                self.linktype(ETHERTYPE_IPV6)?,
                self.cmp(OffRel::LinkPl, 24, B, 255),
            )),
            _ => Err(CompileError::invalid(
                "link-layer multicast filters supported only on ethernet/FDDI/token ring/ARCNET/802.11/ATM LANE/Fibre Channel",
            )),
        }
    }

    /// `gen_mpls`: `mpls` or `mpls LABEL`; what follows is looked for after the label.
    pub(crate) fn mpls(&mut self, label: Option<u32>) -> R<Node> {
        let mut b0 = if self.label_stack_depth > 0 {
            // Not the bottom of the stack: the previous label's S bit is clear.
            self.mcmp(OffRel::PrevMplsHdr, 2, B, 0, 0x01)
        } else {
            match self.dlt {
                Dlt::Ethernet => self.linktype(ETHERTYPE_MPLS)?,
                Dlt::Ppp => self.linktype(PPP_MPLS_UCAST)?,
                other => {
                    return Err(CompileError::invalid(format!(
                        "no MPLS support for {}",
                        other.description()
                    )));
                }
            }
        };
        if let Some(label) = label {
            if label > 0xfffff {
                return Err(CompileError::invalid(format!(
                    "MPLS label {label} greater than maximum 1048575"
                )));
            }
            let b1 = self.mcmp(OffRel::LinkPl, 0, W, label << 12, 0xffff_f000);
            b0 = Node::and(b0, b1);
        }
        self.off_nl_nosnap += 4;
        self.off_nl += 4;
        self.label_stack_depth += 1;
        Ok(b0)
    }

    /// `gen_pppoed`: a PPPoE discovery packet.
    pub(crate) fn pppoed(&self) -> R<Node> {
        self.linktype(ETHERTYPE_PPPOED)
    }

    /// `gen_pppoes`: a PPPoE session packet, optionally of one session; what follows is
    /// read in the PPP frame inside it.
    pub(crate) fn pppoes(&mut self, session: Option<u32>) -> R<Node> {
        let mut b0 = self.linktype(ETHERTYPE_PPPOES)?;
        if let Some(id) = session {
            if id > 0xffff {
                return Err(CompileError::invalid(format!(
                    "PPPoE session number {id} greater than maximum 65535"
                )));
            }
            let b1 = self.mcmp(OffRel::LinkPl, 0, W, id, 0x0000_ffff);
            b0 = Node::and(b0, b1);
        }
        // The PPP header is 6 bytes past the start of the PPPoE header; its protocol field
        // is the new link-layer type, and the network layer is 2 bytes further.
        let hdr = AbsOffset {
            constant: self.off_linkpl.constant + self.off_nl + 6,
            reg: self.off_linkpl.reg,
        };
        self.dlt = Dlt::Ppp;
        self.is_geneve = false;
        self.off_linkhdr = hdr;
        self.off_linktype = Some(hdr);
        self.off_linkpl.constant = hdr.constant + 2;
        self.off_nl = 0;
        self.off_nl_nosnap = 0;
        Ok(b0)
    }

    /// `gen_llc`: an 802.2 LLC frame (an 802.3 length, and not Novell's raw 802.3 IPX).
    pub(crate) fn llc(&self) -> R<Node> {
        if self.dlt != Dlt::Ethernet {
            return Err(CompileError::invalid(format!(
                "'llc' not supported for {}",
                self.dlt.description()
            )));
        }
        let b0 = Node::not(self.cmp_gt(OffRel::LinkType, 0, H, ETHERMTU));
        let b1 = Node::not(self.cmp(OffRel::Llc, 0, H, 0xffff));
        Ok(Node::and(b0, b1))
    }

    /// `llc i|s|u|SUBTYPE`: the LLC frame format, or an S or U frame's command.
    pub(crate) fn llc_kind(&self, name: &str) -> R<Node> {
        let b0 = self.llc()?;
        let name = name.to_ascii_lowercase();
        let name = name.as_str();
        let b1 = match name {
            "i" => {
                // I frames have the low bit of the control byte clear.
                let s = self.load_a(OffRel::Llc, 2, B);
                Node::not(Node::test(s, JSET, K, 0x01))
            }
            "s" => self.mcmp(OffRel::Llc, 2, B, 0x01, 0x03),
            "u" => self.mcmp(OffRel::Llc, 2, B, 0x03, 0x03),
            _ => {
                if let Some(sub) = llc_s_subtype(name) {
                    self.mcmp(OffRel::Llc, 2, B, sub, 0x0f)
                } else if let Some(sub) = llc_u_subtype(name) {
                    self.mcmp(OffRel::Llc, 2, B, sub, 0xef)
                } else {
                    return Err(CompileError::invalid(format!(
                        "unknown LLC type name \"{name}\""
                    )));
                }
            }
        };
        Ok(Node::and(b0, b1))
    }

    /// `gen_byteop`: `byte IDX OP VAL`, on the link-layer header.
    ///
    /// `&` and `|` test `(byte IDX OP VAL) != 0`, as libpcap does since it loads the byte
    /// first. libpcap 1.10.3 (Debian 12's) loaded nothing and tested whatever its optimiser
    /// had left in the accumulator (`tcpdump -d 'byte 5 & 3'` rejects every packet); that
    /// was a bug, and a filter that depends on it is no one's intent (the README says more).
    pub(crate) fn byteop(&self, op: char, idx: u32, val: u32) -> R<Node> {
        let alu = match op {
            '=' => return Ok(self.cmp(OffRel::LinkHdr, idx, B, val)),
            '<' => return Ok(self.ncmp(OffRel::LinkHdr, idx, B, 0xffff_ffff, JGE, true, val)),
            '>' => return Ok(self.cmp_gt(OffRel::LinkHdr, idx, B, val)),
            '&' => AND,
            '|' => OR,
            _ => {
                return Err(CompileError::invalid(format!(
                    "`byte` takes one of = < > & | (got {op:?})"
                )));
            }
        };
        let mut s = self.load_a(OffRel::LinkHdr, idx, B);
        s.push(stmt(ALU | K | alu, val));
        Ok(Node::not(Node::test(s, JEQ, K, 0)))
    }

    /// `gen_prevlinkhdr_check` and `b`: inside Geneve, an Ethernet address test first checks
    /// that there is an Ethernet header (the link header does not start where the payload
    /// does, which is the case when the Geneve payload is bare IP).
    fn after_prevlinkhdr_check(&self, b: Node) -> Node {
        match (self.is_geneve, self.off_linkhdr.reg, self.off_linkpl.reg) {
            (true, Some(hdr), Some(pl)) => {
                let same = Node::test(vec![stmt(LD | MEM, hdr), stmt(LDX | MEM, pl)], JEQ, X, 0);
                Node::and(Node::not(same), b)
            }
            _ => b,
        }
    }

    /// `gen_geneve_check`: UDP to port 6081, Geneve version 0, optionally the VNI.
    fn geneve_check(&self, v6: bool, vni: Option<u32>) -> R<Node> {
        let (ll, rel) = if v6 {
            (ETHERTYPE_IPV6, OffRel::TranIpv6)
        } else {
            (ETHERTYPE_IP, OffRel::TranIpv4)
        };
        let port = if v6 {
            self.portop6(GENEVE_PORT, IPPROTO_UDP, Dir::Dst)?
        } else {
            self.portop(GENEVE_PORT, IPPROTO_UDP, Dir::Dst)?
        };
        let b0 = Node::and(self.linktype(ll)?, port);
        // The version is the top 2 bits of the first byte of the Geneve header.
        let mut b0 = Node::and(b0, self.mcmp(rel, 8, B, 0, 0xc0));
        if let Some(vni) = vni {
            if vni > 0xff_ffff {
                return Err(CompileError::invalid(format!(
                    "Geneve VNI {vni} greater than maximum 16777215"
                )));
            }
            b0 = Node::and(b0, self.mcmp(rel, 12, W, vni << 8, 0xffff_ff00));
        }
        Ok(b0)
    }

    /// `gen_geneve`: a Geneve packet (over IPv4 or IPv6), optionally of one VNI; what
    /// follows is read in the encapsulated frame (Ethernet, or whatever its protocol type
    /// says), at offsets computed at run time into scratch registers.
    pub(crate) fn geneve(&mut self, vni: Option<u32>) -> R<Node> {
        // The IPv4 check leaves the IP header length (plus any variable link prefix) in A
        // and X; `jeq x` after `txa` always holds (libpcap's "forcibly appended" block).
        let mut s4 = self.loadx_iphdrlen();
        s4.push(stmt(MISC | TXA, 0));
        let b4 = Node::and(self.geneve_check(false, vni)?, Node::test(s4, JEQ, X, 0));
        let mut s6 = match self.off_linkpl.reg {
            Some(r) => vec![
                stmt(LDX | MEM, r),
                stmt(LD | IMM, 40),
                stmt(ALU | ADD | X, 0),
            ],
            None => vec![stmt(LD | IMM, 40)],
        };
        s6.push(stmt(MISC | TAX, 0));
        let b6 = Node::and(self.geneve_check(true, vni)?, Node::test(s6, JEQ, X, 0));
        let b0 = Node::or(b4, b6);

        // gen_geneve_offsets. The Geneve header starts after the IP header in A plus the
        // fixed part of the link layer and the UDP header.
        let linktype_reg = self.alloc_reg()?;
        let mut pre = vec![
            stmt(ALU | ADD | K, self.off_linkpl.constant + self.off_nl + 8),
            stmt(MISC | TAX, 0),
            // The protocol type is 2 bytes into the Geneve header.
            stmt(ALU | ADD | K, 2),
            stmt(ST, linktype_reg),
            // Option length (in 4-byte words) and the 8-byte base header.
            stmt(LD | IND | B, 0),
            stmt(ALU | AND | K, 0x3f),
            stmt(ALU | MUL | K, 4),
            stmt(ALU | ADD | K, 8),
            stmt(ALU | ADD | X, 0),
        ];
        let linkhdr_reg = self.alloc_reg()?;
        pre.extend([
            stmt(ST, linkhdr_reg),
            stmt(LD | IND | H, 2),
            stmt(LDX | MEM, linkhdr_reg),
        ]);
        let linkpl_reg = self.alloc_reg()?;
        // libpcap jumps inside the block on the protocol type; as blocks: an Ethernet
        // payload (TEB) moves the link-layer type and payload 12 and 14 bytes further.
        let is_teb = Node::test(pre, JEQ, K, ETHERTYPE_TEB);
        let teb = Node::test(
            vec![
                stmt(MISC | TXA, 0),
                stmt(ALU | ADD | K, 12),
                stmt(ST, linktype_reg),
                stmt(ALU | ADD | K, 2),
                stmt(MISC | TAX, 0),
                stmt(STX, linkpl_reg),
                stmt(LD | IMM, 0),
            ],
            JEQ,
            K,
            0,
        );
        let other = Node::test(vec![stmt(STX, linkpl_reg), stmt(LD | IMM, 0)], JEQ, K, 0);
        let offsets = Node::or(Node::and(is_teb, teb), other);

        self.dlt = Dlt::Ethernet;
        self.off_linktype = Some(AbsOffset {
            constant: 0,
            reg: Some(linktype_reg),
        });
        self.off_linkhdr = AbsOffset {
            constant: 0,
            reg: Some(linkhdr_reg),
        };
        self.off_linkpl = AbsOffset {
            constant: 0,
            reg: Some(linkpl_reg),
        };
        self.off_nl = 0;
        self.no_optimize = true;
        self.is_geneve = true;
        Ok(Node::and(b0, offsets))
    }

    fn vlan_tpid_test(&self) -> R<Node> {
        let b0 = self.linktype(ETHERTYPE_8021Q)?;
        let b1 = Node::or(b0, self.linktype(ETHERTYPE_8021AD)?);
        Ok(Node::or(b1, self.linktype(ETHERTYPE_8021QINQ)?))
    }

    fn vlan_vid_test(&self, vid: u32) -> Node {
        self.mcmp(OffRel::LinkPl, 0, H, vid, 0x0fff)
    }

    /// `gen_vlan`: `vlan` or `vlan ID`; shifts the offsets of what follows by the tag.
    pub(crate) fn vlan(&mut self, vid: Option<u32>) -> R<Node> {
        if let Some(v) = vid
            && v > 0x0fff
        {
            return Err(CompileError::invalid(format!(
                "VLAN tag {v} greater than maximum 4095"
            )));
        }
        if self.label_stack_depth > 0 {
            return Err(CompileError::invalid("no VLAN match after MPLS"));
        }
        if self.dlt != Dlt::Ethernet {
            return Err(CompileError::invalid(format!(
                "no VLAN support for {}",
                self.dlt.description()
            )));
        }
        let outermost = self.vlan_stack_depth == 0
            && self.off_linkpl.reg.is_none()
            && self.off_linkpl.constant == 14;
        let b = if self.mode == Mode::Live && outermost {
            self.vlan_bpf_extensions(vid)?
        } else {
            let b0 = self.vlan_tpid_test()?;
            let b = match vid {
                Some(v) => Node::and(b0, self.vlan_vid_test(v)),
                None => b0,
            };
            self.off_linkpl.constant += 4;
            if let Some(o) = self.off_linktype.as_mut() {
                o.constant += 4;
            }
            b
        };
        self.vlan_stack_depth += 1;
        Ok(b)
    }

    /// Live sockets: the kernel took the outer tag off the frame and keeps it in metadata
    /// (`SKF_AD_VLAN_TAG_PRESENT`/`SKF_AD_VLAN_TAG`); a tag still in the frame shifts the
    /// offsets at run time, through scratch registers.
    fn vlan_bpf_extensions(&mut self, vid: Option<u32>) -> R<Node> {
        let present = vec![stmt(LD | B | ABS, SKF_AD_OFF + SKF_AD_VLAN_TAG_PRESENT)];
        let b0 = Node::test(present, JEQ, K, 1);
        let mut b_tpid = self.vlan_tpid_test()?;
        let b_vid = vid.map(|v| self.vlan_vid_test(v));

        // gen_vlan_patch_tpid_test: when no tag is in the metadata, the tag is in the frame:
        // add 4 to both run-time offsets before testing its TPID.
        self.is_vlan_vloffset = true;
        let mut patch = Vec::new();
        for which in 0..2 {
            let reg = {
                let cur = if which == 0 {
                    self.off_linkpl.reg
                } else {
                    self.off_linktype.and_then(|o| o.reg)
                };
                match cur {
                    Some(r) => r,
                    None => {
                        let r = self.alloc_reg()?;
                        if which == 0 {
                            self.off_linkpl.reg = Some(r);
                        } else if let Some(o) = self.off_linktype.as_mut() {
                            o.reg = Some(r);
                        }
                        r
                    }
                }
            };
            patch.extend([stmt(LD | MEM, reg), stmt(ALU | ADD | K, 4), stmt(ST, reg)]);
        }
        b_tpid.prepend(patch);
        let mut b = Node::or(b0, b_tpid);

        if let Some(Node::Test { stmts, code, k }) = b_vid.as_ref() {
            let (stmts, code, k) = (stmts.clone(), *code, *k);
            // gen_vlan_patch_vid_test: A = the metadata TCI if present, else the frame's.
            // As a tree: (present ? tci : frame) & 0xfff == vid, each side its own test.
            let tci = vec![
                stmt(LD | B | ABS, SKF_AD_OFF + SKF_AD_VLAN_TAG),
                stmt(ALU | AND | K, 0x0fff),
            ];
            let present = Node::test(
                vec![stmt(LD | B | ABS, SKF_AD_OFF + SKF_AD_VLAN_TAG_PRESENT)],
                JEQ,
                K,
                1,
            );
            let from_meta = Node::Test {
                stmts: tci,
                code,
                k,
            };
            let from_frame = Node::Test { stmts, code, k };
            let vid_test = Node::or(
                Node::and(present.clone(), from_meta),
                Node::and(Node::not(present), from_frame),
            );
            b = Node::and(b, vid_test);
        }
        Ok(b)
    }

    // ---- arithmetic ------------------------------------------------------------------------

    pub(crate) fn loadi(&mut self, v: u32) -> R<Arth> {
        let reg = self.alloc_reg()?;
        Ok(Arth {
            stmts: vec![stmt(LD | IMM, v), stmt(ST, reg)],
            reg,
            checks: None,
        })
    }

    pub(crate) fn loadlen(&mut self) -> R<Arth> {
        let reg = self.alloc_reg()?;
        Ok(Arth {
            stmts: vec![stmt(LD | W | LEN, 0), stmt(ST, reg)],
            reg,
            checks: None,
        })
    }

    /// `gen_load`: `proto[index : size]`.
    pub(crate) fn load(&mut self, proto: Proto, mut inst: Arth, size: u32) -> R<Arth> {
        let size = match size {
            1 => B,
            2 => H,
            4 => W,
            _ => return Err(CompileError::invalid("data size must be 1, 2, or 4")),
        };
        let index_to_x = |inst: &Arth| stmt(LDX | MEM, inst.reg);
        let index_to_a = |inst: &Arth| stmt(LD | MEM, inst.reg);
        match proto {
            Proto::Link => {
                // The link header moves only into a PPPoE session (a VLAN tag is after the
                // addresses); after a live-mode `vlan` its start is in a register.
                let mut s = match self.off_linkhdr.reg {
                    Some(r) => vec![
                        stmt(LDX | MEM, r),
                        index_to_a(&inst),
                        stmt(ALU | ADD | X, 0),
                        stmt(MISC | TAX, 0),
                    ],
                    None => vec![index_to_x(&inst)],
                };
                s.push(stmt(LD | IND | size, self.off_linkhdr.constant));
                inst.stmts.extend(s);
            }
            Proto::Ip
            | Proto::Arp
            | Proto::Rarp
            | Proto::Ip6
            | Proto::Atalk
            | Proto::Decnet
            | Proto::Sca
            | Proto::Lat
            | Proto::Moprc
            | Proto::Mopdl => {
                let mut s = match self.off_linkpl.reg {
                    Some(r) => vec![
                        stmt(LDX | MEM, r),
                        index_to_a(&inst),
                        stmt(ALU | ADD | X, 0),
                        stmt(MISC | TAX, 0),
                    ],
                    None => vec![index_to_x(&inst)],
                };
                s.push(stmt(
                    LD | IND | size,
                    self.off_linkpl.constant + self.off_nl,
                ));
                inst.stmts.extend(s);
                let b = self.proto_abbrev(proto)?;
                inst.checks = Some(match inst.checks.take() {
                    Some(c) => Node::and(c, b),
                    None => b,
                });
            }
            Proto::Sctp
            | Proto::Tcp
            | Proto::Udp
            | Proto::Icmp
            | Proto::Igmp
            | Proto::Igrp
            | Proto::Pim
            | Proto::Vrrp
            | Proto::Carp => {
                let mut s = self.loadx_iphdrlen();
                s.extend([
                    index_to_a(&inst),
                    stmt(ALU | ADD | X, 0),
                    stmt(MISC | TAX, 0),
                    stmt(LD | IND | size, self.off_linkpl.constant + self.off_nl),
                ]);
                inst.stmts.extend(s);
                let mut b = Node::and(self.proto_abbrev(proto)?, self.ipfrag());
                if let Some(c) = inst.checks.take() {
                    b = Node::and(c, b);
                }
                inst.checks = Some(Node::and(self.proto_abbrev(Proto::Ip)?, b));
            }
            Proto::Icmp6 => {
                let mut s = match self.off_linkpl.reg {
                    Some(r) => vec![
                        stmt(LDX | MEM, r),
                        index_to_a(&inst),
                        stmt(ALU | ADD | X, 0),
                        stmt(MISC | TAX, 0),
                    ],
                    None => vec![index_to_x(&inst)],
                };
                s.push(stmt(
                    LD | IND | size,
                    self.off_linkpl.constant + self.off_nl + 40,
                ));
                inst.stmts.extend(s);
                let b = Node::and(
                    self.linktype(ETHERTYPE_IPV6)?,
                    self.cmp(OffRel::LinkPl, 6, B, IPPROTO_ICMPV6),
                );
                inst.checks = Some(match inst.checks.take() {
                    Some(c) => Node::and(c, b),
                    None => b,
                });
            }
            _ => return Err(CompileError::invalid("unsupported index operation")),
        }
        let reg = self.alloc_reg()?;
        self.free_reg(inst.reg);
        inst.reg = reg;
        inst.stmts.push(stmt(ST, reg));
        Ok(inst)
    }

    pub(crate) fn neg(&mut self, mut a: Arth) -> Arth {
        a.stmts
            .extend([stmt(LD | MEM, a.reg), stmt(ALU | NEG, 0), stmt(ST, a.reg)]);
        a
    }

    /// `gen_arth`. Like libpcap, keeps only the left operand's protocol checks, and rejects
    /// division by zero / big shifts when the right operand *starts* with that constant.
    pub(crate) fn arth(&mut self, op: u16, mut a0: Arth, a1: Arth) -> R<Arth> {
        let first_imm = match a1.stmts.first() {
            Some(s) if s.code == LD | IMM => Some(s.k),
            _ => None,
        };
        match (op, first_imm) {
            (DIV, Some(0)) => return Err(CompileError::invalid("division by zero")),
            (MOD, Some(0)) => return Err(CompileError::invalid("modulus by zero")),
            (LSH | RSH, Some(k)) if k > 31 => {
                return Err(CompileError::invalid("shift by more than 31 bits"));
            }
            _ => {}
        }
        a0.stmts.extend(a1.stmts);
        a0.stmts.extend([
            stmt(LDX | MEM, a1.reg),
            stmt(LD | MEM, a0.reg),
            stmt(ALU | X | op, 0),
        ]);
        self.free_reg(a0.reg);
        self.free_reg(a1.reg);
        a0.reg = self.alloc_reg()?;
        a0.stmts.push(stmt(ST, a0.reg));
        Ok(a0)
    }

    /// `gen_relation`: `a0 op a1`, negated for `<`, `<=` and `!=`.
    pub(crate) fn relation(&mut self, op: u16, a0: Arth, a1: Arth, reversed: bool) -> Node {
        let mut s = a0.stmts;
        s.extend(a1.stmts);
        s.push(stmt(LDX | MEM, a1.reg));
        s.push(stmt(LD | MEM, a0.reg));
        let mut b = if op == JEQ {
            s.push(stmt(ALU | SUB | X, 0));
            Node::test(s, JEQ, K, 0)
        } else {
            Node::test(s, op, X, 0)
        };
        if reversed {
            b = Node::not(b);
        }
        self.free_reg(a0.reg);
        self.free_reg(a1.reg);
        let checks = match (a0.checks, a1.checks) {
            (Some(c0), Some(c1)) => Some(Node::and(c0, c1)),
            (c0, c1) => c0.or(c1),
        };
        match checks {
            Some(c) => Node::and(c, b),
            None => b,
        }
    }
}

/// LLC S-frame commands (`llc_s_subtypes`).
fn llc_s_subtype(name: &str) -> Option<u32> {
    Some(match name {
        "rr" => 0x01,
        "rnr" => 0x05,
        "rej" => 0x09,
        _ => return None,
    })
}

/// LLC U-frame commands (`llc_u_subtypes`).
fn llc_u_subtype(name: &str) -> Option<u32> {
    Some(match name {
        "ui" => 0x03,
        "ua" => 0x63,
        "disc" => 0x43,
        "dm" => 0x0f,
        "sabme" => 0x6f,
        "test" => 0xe3,
        "xid" => 0xaf,
        "frmr" => 0x87,
        _ => return None,
    })
}

/// The protocol's name as libpcap's errors spell it.
fn p_name_upper(p: Proto) -> &'static str {
    match p {
        Proto::Aarp => "AARP",
        Proto::Sca => "SCA",
        Proto::Lat => "LAT",
        Proto::Mopdl => "MOPDL",
        Proto::Moprc => "MOPRC",
        other => other.name(),
    }
}

/// A lookup the resolver could not answer: libpcap's "unknown" error, with what was tried.
fn lookup_failed(what: &str, name: &str, e: LookupError) -> CompileError {
    CompileError::invalid(format!("unknown {what} '{name}' ({e})"))
}

/// `__pcap_atodn`: a DECnet address `area.node` (what `sscanf("%d.%d")` reads of it).
fn atodn(s: &str) -> Option<u32> {
    let mut parts = s.split('.');
    let num = |p: Option<&str>| -> Option<u32> {
        let p = p?;
        if p.is_empty() || !p.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        Some(p.bytes().fold(0u32, |n, c| {
            n.wrapping_mul(10).wrapping_add(u32::from(c - b'0'))
        }))
    };
    let area = num(parts.next())?;
    let node = num(parts.next())?;
    Some(((area << 10) & 0o176000) | (node & 0o1777))
}

/// `__pcap_atoin`: a dotted decimal address of 1 to 4 parts, and its length in bits.
fn atoin(s: &str) -> Option<(u32, u32)> {
    let mut addr: u32 = 0;
    let mut len = 0;
    for part in s.split('.') {
        let mut n: u32 = 0;
        for c in part.bytes() {
            if n > 25 {
                return None;
            }
            n = n * 10 + u32::from(c.wrapping_sub(b'0'));
        }
        if n > 255 {
            return None;
        }
        addr = (addr << 8) | n;
        len += 8;
    }
    Some((addr, len))
}
