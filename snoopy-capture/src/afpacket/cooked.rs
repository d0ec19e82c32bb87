//! Linux "cooked" (SLL2) headers for captures that have no link header of their own
//! (`-i any`, tunnels), and the filter fix-up libpcap applies to such sockets.
//!
//! A `SOCK_DGRAM` packet socket delivers packets from the network header on; the link-level
//! facts (protocol, interface, packet type, source address) come separately in a
//! `sockaddr_ll`. Like libpcap, we write an SLL2 header in front of each packet so files
//! and filters see `LINKTYPE_LINUX_SLL2`.

use crate::filter::{Instruction, Program};

/// Length of an SLL2 header.
pub(crate) const SLL2_HEADER_LEN: usize = 20;
/// Length of an SLL (v1) header.
pub(crate) const SLL_HEADER_LEN: u32 = 16;

/// The link-level facts the kernel reports for one packet (from its `sockaddr_ll`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LinkFacts {
    /// Ethertype, host order.
    pub(crate) protocol: u16,
    /// Interface index.
    pub(crate) ifindex: u32,
    /// ARPHRD_* type of the interface.
    pub(crate) hatype: u16,
    /// PACKET_HOST, PACKET_OUTGOING, ...
    pub(crate) pkttype: u8,
    /// Link-layer address length.
    pub(crate) halen: u8,
    /// Link-layer address (first `halen` bytes valid, at most 8).
    pub(crate) addr: [u8; 8],
}

impl LinkFacts {
    /// Parses the 20-byte `sockaddr_ll` the ring places after each frame header.
    pub(crate) fn from_sockaddr_ll(raw: &[u8]) -> Option<Self> {
        let raw = raw.get(..20)?;
        Some(LinkFacts {
            protocol: u16::from_be_bytes([raw[2], raw[3]]),
            ifindex: u32::from_ne_bytes([raw[4], raw[5], raw[6], raw[7]]),
            hatype: u16::from_ne_bytes([raw[8], raw[9]]),
            pkttype: raw[10],
            halen: raw[11],
            addr: raw[12..20].try_into().ok()?,
        })
    }

    /// Writes the SLL2 header for these facts into `out` (exactly 20 bytes), with
    /// `protocol` as the protocol field (the packet's, or a VLAN TPID when a tag follows).
    pub(crate) fn write_sll2(&self, protocol: u16, out: &mut [u8]) {
        out[0..2].copy_from_slice(&protocol.to_be_bytes());
        out[2..4].copy_from_slice(&[0, 0]);
        out[4..8].copy_from_slice(&self.ifindex.to_be_bytes());
        out[8..10].copy_from_slice(&self.hatype.to_be_bytes());
        out[10] = self.pkttype;
        out[11] = self.halen.min(8);
        out[12..20].copy_from_slice(&self.addr);
    }
}

const BPF_LD: u16 = 0x00;
const BPF_LDX: u16 = 0x01;
const BPF_RET: u16 = 0x06;
const BPF_K: u16 = 0x00;
const BPF_ABS: u16 = 0x20;
const BPF_IND: u16 = 0x40;
const BPF_MSH: u16 = 0xa0;
const SKF_AD_OFF: u32 = 0xffff_f000; // -0x1000 as u32
const SKF_AD_PROTOCOL: u32 = 0;
const SKF_AD_PKTTYPE: u32 = 4;
const SKF_AD_IFINDEX: u32 = 8;

/// Rewrites a program compiled for a cooked link type so the kernel can run it on a
/// `SOCK_DGRAM` socket, exactly as libpcap's `fix_program`/`fix_offset` do: packet loads
/// past the cooked header are shifted back by its length, and loads of the header's
/// protocol / packet type / interface fields become ancillary loads. Returns `None` when a
/// load touches any other header byte (libpcap then filters in user space).
pub(crate) fn fix_for_cooked_socket(program: &Program, sll2: bool) -> Option<Program> {
    let mut fixed = program.clone();
    for insn in &mut fixed.instructions {
        let class = insn.code & 0x07;
        let mode = insn.code & 0xe0;
        if (class == BPF_LD || class == BPF_LDX) && matches!(mode, BPF_ABS | BPF_IND | BPF_MSH) {
            insn.k = fix_offset(insn.k, sll2)?;
        }
    }
    Some(fixed)
}

fn fix_offset(k: u32, sll2: bool) -> Option<u32> {
    // Loads of kernel metadata (`ld #pkttype`, `ld #ifidx` after `pppoes` or `geneve`)
    // already are what the socket understands: libpcap leaves them alone.
    if k >= SKF_AD_OFF {
        return Some(k);
    }
    if sll2 {
        match k {
            k if k >= SLL2_HEADER_LEN as u32 => Some(k - SLL2_HEADER_LEN as u32),
            0 => Some(SKF_AD_OFF + SKF_AD_PROTOCOL),
            4 => Some(SKF_AD_OFF + SKF_AD_IFINDEX),
            10 => Some(SKF_AD_OFF + SKF_AD_PKTTYPE),
            _ => None,
        }
    } else {
        match k {
            k if k >= SLL_HEADER_LEN => Some(k - SLL_HEADER_LEN),
            0 => Some(SKF_AD_OFF + SKF_AD_PKTTYPE),
            14 => Some(SKF_AD_OFF + SKF_AD_PROTOCOL),
            _ => None,
        }
    }
}

/// Caps every constant return of `program` at `snaplen`, so the kernel itself truncates
/// packets to the snapshot length (a classic BPF filter's return value is the number of
/// bytes to keep).
pub(crate) fn cap_returns(program: &Program, snaplen: u32) -> Program {
    let mut capped = program.clone();
    for insn in &mut capped.instructions {
        if insn.code == BPF_RET | BPF_K && insn.k > snaplen {
            insn.k = snaplen;
        }
    }
    capped
}

/// The program that keeps every packet, truncated to `snaplen`.
pub(crate) fn snaplen_only(snaplen: u32) -> Program {
    Program::new(vec![Instruction::new(BPF_RET | BPF_K, 0, 0, snaplen)])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shifts_payload_loads_and_maps_header_fields_to_ancillary_loads() {
        // ldh [0] (SLL2 protocol); ldb [29] (IPv4 protocol after a 20-byte header);
        // ldxb 4*([20]&0xf); ldh [x + 22]; ret #262144
        let p = Program::new(vec![
            Instruction::new(0x28, 0, 0, 0),
            Instruction::new(0x30, 0, 0, 29),
            Instruction::new(0xb1, 0, 0, 20),
            Instruction::new(0x48, 0, 0, 22),
            Instruction::new(0x06, 0, 0, 262144),
        ]);
        let fixed = fix_for_cooked_socket(&p, true).unwrap();
        let ks: Vec<u32> = fixed.instructions.iter().map(|i| i.k).collect();
        assert_eq!(ks, vec![SKF_AD_OFF, 9, 0, 2, 262144]);
    }

    /// Kernel metadata loads pass unchanged (libpcap's `fix_offset` skips k >= SKF_AD_OFF),
    /// on both cooked types: they must not be shifted as if they were packet bytes.
    #[test]
    fn metadata_loads_are_left_alone() {
        for sll2 in [false, true] {
            for k in [SKF_AD_OFF + SKF_AD_PKTTYPE, SKF_AD_OFF + SKF_AD_IFINDEX] {
                assert_eq!(fix_offset(k, sll2), Some(k), "sll2={sll2} k={k:#x}");
            }
        }
    }

    #[test]
    fn refuses_loads_of_other_cooked_header_bytes() {
        let p = Program::new(vec![
            Instruction::new(0x30, 0, 0, 12),
            Instruction::new(0x06, 0, 0, 1),
        ]);
        assert!(fix_for_cooked_socket(&p, true).is_none());
    }

    #[test]
    fn caps_constant_returns_at_the_snaplen() {
        let p = Program::new(vec![
            Instruction::new(0x06, 0, 0, 262144),
            Instruction::new(0x06, 0, 0, 0),
        ]);
        let capped = cap_returns(&p, 96);
        assert_eq!(capped.instructions[0].k, 96);
        assert_eq!(capped.instructions[1].k, 0);
    }

    #[test]
    fn builds_an_sll2_header() {
        let mut raw = [0u8; 20];
        raw[2..4].copy_from_slice(&0x0800u16.to_be_bytes());
        raw[4..8].copy_from_slice(&7u32.to_ne_bytes());
        raw[8..10].copy_from_slice(&1u16.to_ne_bytes());
        raw[10] = 4;
        raw[11] = 6;
        raw[12..18].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
        let facts = LinkFacts::from_sockaddr_ll(&raw).unwrap();
        let mut out = [0u8; 20];
        facts.write_sll2(facts.protocol, &mut out);
        assert_eq!(&out[0..2], &[0x08, 0x00]);
        assert_eq!(&out[4..8], &[0, 0, 0, 7]);
        assert_eq!(&out[8..10], &[0, 1]);
        assert_eq!(out[10], 4);
        assert_eq!(&out[11..18], &[6, 2, 0, 0, 0, 0, 1]);
    }
}
