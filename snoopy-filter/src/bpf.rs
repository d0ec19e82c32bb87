//! Classic BPF opcode values (`linux/filter.h`, `pcap/bpf.h`).

// Instruction classes.
pub const LD: u16 = 0x00;
pub const LDX: u16 = 0x01;
pub const ST: u16 = 0x02;
pub const STX: u16 = 0x03;
pub const ALU: u16 = 0x04;
pub const JMP: u16 = 0x05;
pub const RET: u16 = 0x06;
pub const MISC: u16 = 0x07;

// Load sizes.
pub const W: u16 = 0x00;
pub const H: u16 = 0x08;
pub const B: u16 = 0x10;

// Load modes.
pub const IMM: u16 = 0x00;
pub const ABS: u16 = 0x20;
pub const IND: u16 = 0x40;
pub const MEM: u16 = 0x60;
pub const LEN: u16 = 0x80;
pub const MSH: u16 = 0xa0;

// ALU operations.
pub const ADD: u16 = 0x00;
pub const SUB: u16 = 0x10;
pub const MUL: u16 = 0x20;
pub const DIV: u16 = 0x30;
pub const OR: u16 = 0x40;
pub const AND: u16 = 0x50;
pub const LSH: u16 = 0x60;
pub const RSH: u16 = 0x70;
pub const NEG: u16 = 0x80;
pub const MOD: u16 = 0x90;
pub const XOR: u16 = 0xa0;

// Jumps.
pub const JA: u16 = 0x00;
pub const JEQ: u16 = 0x10;
pub const JGT: u16 = 0x20;
pub const JGE: u16 = 0x30;
pub const JSET: u16 = 0x40;

// Operand source.
pub const K: u16 = 0x00;
pub const X: u16 = 0x08;
pub const A: u16 = 0x10;

// MISC operations.
pub const TAX: u16 = 0x00;
pub const TXA: u16 = 0x80;

/// Number of scratch memory words (`BPF_MEMWORDS`).
pub const MEMWORDS: usize = 16;

/// Base of the Linux ancillary-data offsets (`SKF_AD_OFF`).
pub const SKF_AD_OFF: u32 = 0xffff_f000;
/// `SKF_AD_PROTOCOL`: the skb protocol (ethertype).
pub const SKF_AD_PROTOCOL: u32 = 0;
/// `SKF_AD_PKTTYPE`: the packet type (host, broadcast, outgoing...).
pub const SKF_AD_PKTTYPE: u32 = 4;
/// `SKF_AD_IFINDEX`: the receiving interface index.
pub const SKF_AD_IFINDEX: u32 = 8;
/// `SKF_AD_VLAN_TAG`: the TCI of the VLAN tag the kernel stripped.
pub const SKF_AD_VLAN_TAG: u32 = 44;
/// `SKF_AD_VLAN_TAG_PRESENT`: 1 if the kernel stripped a VLAN tag.
pub const SKF_AD_VLAN_TAG_PRESENT: u32 = 48;
