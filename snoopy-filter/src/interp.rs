//! A userspace interpreter of classic BPF, with the semantics of libpcap's `bpf_filter`
//! (and of the kernel, for the ancillary loads of the packet type, interface index and VLAN
//! tag).

use super::bpf::*;
use super::{Instruction, Program};

/// What the kernel knows about a packet besides its bytes: the metadata a
/// [`Mode::Live`](crate::Mode::Live) program loads with the Linux ancillary loads
/// (`SKF_AD_OFF + SKF_AD_*`). A file has none of it; [`Metadata::default`] is a packet
/// received for this host (`PACKET_HOST`), untagged, on no interface (index 0).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Metadata {
    /// The VLAN tag the kernel stripped from the frame, if any (`SKF_AD_VLAN_TAG`,
    /// `SKF_AD_VLAN_TAG_PRESENT`).
    pub vlan_tci: Option<u16>,
    /// The packet type, `skb->pkt_type` (`SKF_AD_PKTTYPE`): one of the `PACKET_*` constants
    /// of `linux/if_packet.h` ([`Metadata::PACKET_HOST`] ... [`Metadata::PACKET_OUTGOING`]).
    /// `inbound` and `outbound` test it on a live socket.
    pub pkt_type: u8,
    /// The index of the interface the packet was seen on (`SKF_AD_IFINDEX`), what
    /// `ifindex N` tests on a live socket.
    pub ifindex: u32,
}

impl Metadata {
    /// `PACKET_HOST`: addressed to this host.
    pub const PACKET_HOST: u8 = 0;
    /// `PACKET_BROADCAST`: a link-layer broadcast.
    pub const PACKET_BROADCAST: u8 = 1;
    /// `PACKET_MULTICAST`: a link-layer multicast.
    pub const PACKET_MULTICAST: u8 = 2;
    /// `PACKET_OTHERHOST`: addressed to another host (seen in promiscuous mode).
    pub const PACKET_OTHERHOST: u8 = 3;
    /// `PACKET_OUTGOING`: sent by this host (what `outbound` matches).
    pub const PACKET_OUTGOING: u8 = 4;
}

impl Program {
    /// Runs the program on one packet and returns what it returns: 0 to drop the packet,
    /// otherwise how many bytes to keep.
    ///
    /// `data` is the captured bytes, `wire_len` the packet's length on the wire (what `len`,
    /// `less` and `greater` test) and `vlan_tci` the VLAN tag the kernel stripped, if any
    /// (for [`super::Mode::Live`] programs; `None` for files). A load past the end of `data`
    /// rejects the packet, as in libpcap and the kernel; so does a division by zero.
    /// The other metadata are [`Metadata::default`]'s; [`Program::matches_with`] takes
    /// them all.
    ///
    /// A `ja` with a negative offset jumps backwards, as in libpcap's `bpf_filter` (the kernel
    /// refuses such programs; libpcap's `protochain` needs them). A program still running
    /// after 65 × its length + 64 × the packet's length steps rejects the packet.
    pub fn matches(&self, data: &[u8], wire_len: u32, vlan_tci: Option<u16>) -> u32 {
        let meta = Metadata {
            vlan_tci,
            ..Metadata::default()
        };
        run(&self.instructions, data, wire_len, &meta)
    }

    /// [`Program::matches`] for a packet with the kernel's metadata `meta`: what a live
    /// socket's program sees (the packet type for `inbound`/`outbound`, the interface for
    /// `ifindex`, the stripped VLAN tag). Ancillary loads of other metadata reject the
    /// packet.
    pub fn matches_with(&self, data: &[u8], wire_len: u32, meta: &Metadata) -> u32 {
        run(&self.instructions, data, wire_len, meta)
    }
}

fn load(data: &[u8], off: u64, size: u16) -> Option<u32> {
    let n = match size {
        W => 4,
        H => 2,
        _ => 1,
    };
    let start = usize::try_from(off).ok()?;
    let b = data.get(start..start.checked_add(n)?)?;
    Some(match n {
        4 => u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
        2 => u32::from(u16::from_be_bytes([b[0], b[1]])),
        _ => u32::from(b[0]),
    })
}

/// An ancillary load: the whole value whatever the load's size, as in the kernel.
fn ancillary(k: u32, meta: &Metadata) -> Option<u32> {
    match k.wrapping_sub(SKF_AD_OFF) {
        SKF_AD_PKTTYPE => Some(u32::from(meta.pkt_type)),
        SKF_AD_IFINDEX => Some(meta.ifindex),
        SKF_AD_VLAN_TAG => Some(meta.vlan_tci.map_or(0, u32::from)),
        SKF_AD_VLAN_TAG_PRESENT => Some(u32::from(meta.vlan_tci.is_some())),
        _ => None,
    }
}

/// How many instructions a program may execute on one packet. A program without backward
/// jumps executes each instruction at most once. libpcap's `protochain` loop moves X
/// forward by 8 or more bytes per turn of some 30 instructions and stops at the end of the
/// packet, so it stays far below this bound; a program that loops forever is stopped.
pub(crate) fn max_steps(prog_len: usize, data_len: usize) -> usize {
    prog_len + 64 * (data_len + prog_len)
}

/// Where a `ja` at `pc` (already advanced past it) goes: the offset is signed, as
/// libpcap's `bpf_filter` reads it.
fn ja_target(pc: usize, k: u32) -> Option<usize> {
    pc.checked_add_signed(k as i32 as isize)
}

fn run(prog: &[Instruction], data: &[u8], wire_len: u32, meta: &Metadata) -> u32 {
    let (mut a, mut x): (u32, u32) = (0, 0);
    let mut mem = [0u32; MEMWORDS];
    let mut pc = 0usize;
    let mut steps = max_steps(prog.len(), data.len());
    while let Some(ins) = prog.get(pc) {
        steps = match steps.checked_sub(1) {
            Some(s) => s,
            None => return 0,
        };
        pc += 1;
        let k = ins.k;
        match ins.code & 0x07 {
            LD | LDX => {
                let mode = ins.code & 0xe0;
                let size = ins.code & 0x18;
                let value = match mode {
                    IMM => k,
                    LEN => wire_len,
                    MEM => match mem.get(k as usize) {
                        Some(v) => *v,
                        None => return 0,
                    },
                    ABS if k >= SKF_AD_OFF => match ancillary(k, meta) {
                        Some(v) => v,
                        None => return 0,
                    },
                    ABS => match load(data, u64::from(k), size) {
                        Some(v) => v,
                        None => return 0,
                    },
                    IND => match load(data, u64::from(x) + u64::from(k), size) {
                        Some(v) => v,
                        None => return 0,
                    },
                    MSH => match load(data, u64::from(k), B) {
                        Some(v) => 4 * (v & 0xf),
                        None => return 0,
                    },
                    _ => return 0,
                };
                if ins.code & 0x07 == LD {
                    a = value;
                } else {
                    x = value;
                }
            }
            ST => match mem.get_mut(k as usize) {
                Some(m) => *m = a,
                None => return 0,
            },
            STX => match mem.get_mut(k as usize) {
                Some(m) => *m = x,
                None => return 0,
            },
            ALU => {
                let src = if ins.code & X != 0 { x } else { k };
                a = match ins.code & 0xf0 {
                    ADD => a.wrapping_add(src),
                    SUB => a.wrapping_sub(src),
                    MUL => a.wrapping_mul(src),
                    DIV => match a.checked_div(src) {
                        Some(v) => v,
                        None => return 0,
                    },
                    MOD => match a.checked_rem(src) {
                        Some(v) => v,
                        None => return 0,
                    },
                    AND => a & src,
                    OR => a | src,
                    XOR => a ^ src,
                    // libpcap defines shifts of 32 or more as giving 0.
                    LSH => a.checked_shl(src).unwrap_or(0),
                    RSH => a.checked_shr(src).unwrap_or(0),
                    NEG => a.wrapping_neg(),
                    _ => return 0,
                };
            }
            JMP => {
                let src = if ins.code & X != 0 { x } else { k };
                let taken = match ins.code & 0xf0 {
                    JA => {
                        pc = match ja_target(pc, k) {
                            Some(p) => p,
                            None => return 0,
                        };
                        continue;
                    }
                    JEQ => a == src,
                    JGT => a > src,
                    JGE => a >= src,
                    JSET => a & src != 0,
                    _ => return 0,
                };
                pc += usize::from(if taken { ins.jt } else { ins.jf });
            }
            RET => {
                return match ins.code & 0x18 {
                    K => k,
                    A => a,
                    _ => 0,
                };
            }
            _ => {
                // MISC
                match ins.code & 0xf8 {
                    TAX => x = a,
                    TXA => a = x,
                    _ => return 0,
                }
            }
        }
    }
    // Falling off the end is not a valid program; treat it as a rejection.
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_packets_and_division_by_zero_reject() {
        // ldh [12]; ret #1
        let p = Program::new(vec![
            Instruction::new(LD | H | ABS, 0, 0, 12),
            Instruction::new(RET | K, 0, 0, 1),
        ]);
        assert_eq!(p.matches(&[0; 13], 13, None), 0);
        assert_eq!(p.matches(&[0; 14], 14, None), 1);
        // ld #1; ldx #0; div x; ret #1
        let p = Program::new(vec![
            Instruction::new(LD | IMM, 0, 0, 1),
            Instruction::new(LDX | IMM, 0, 0, 0),
            Instruction::new(ALU | DIV | X, 0, 0, 0),
            Instruction::new(RET | K, 0, 0, 1),
        ]);
        assert_eq!(p.matches(&[], 0, None), 0);
    }

    #[test]
    fn backward_jumps_loop_and_a_loop_without_end_rejects() {
        // Walks a chain of bytes: X = 0; again: A = P[X]; if A == 0 accept; X = A; ja again.
        // The packet [2, 0, 4, 0, 0] ends at its byte 4: a loop of three turns.
        let back = |from: usize, to: usize| (to as i64 - from as i64 - 1) as i32 as u32;
        let p = Program::new(vec![
            Instruction::new(LDX | IMM, 0, 0, 0),
            Instruction::new(LD | B | IND, 0, 0, 0),
            Instruction::new(JMP | JEQ | K, 2, 0, 0),
            Instruction::new(MISC | TAX, 0, 0, 0),
            Instruction::new(JMP | JA, 0, 0, back(4, 1)),
            Instruction::new(RET | K, 0, 0, 7),
        ]);
        let m = p.matcher();
        for (data, verdict) in [(&[2u8, 0, 4, 0, 0][..], 7), (&[2, 0, 9][..], 0)] {
            assert_eq!(
                p.matches(data, data.len() as u32, None),
                verdict,
                "{data:?}"
            );
            assert_eq!(
                m.matches(data, data.len() as u32, None),
                verdict,
                "{data:?}"
            );
        }
        assert!(
            p.disassemble().contains("ja       1"),
            "{}",
            p.disassemble()
        );
        // A byte pointing at itself: the loop never ends, the step bound rejects.
        let data = [1u8, 1, 1];
        assert_eq!(p.matches(&data, 3, None), 0);
        assert_eq!(m.matches(&data, 3, None), 0);
        // A jump before the first instruction rejects too.
        let p = Program::new(vec![Instruction::new(JMP | JA, 0, 0, back(0, 0) - 1)]);
        assert_eq!(p.matches(&[], 0, None), 0);
        assert_eq!(p.matcher().matches(&[], 0, None), 0);
    }

    #[test]
    fn vlan_metadata_loads() {
        let p = Program::new(vec![
            Instruction::new(LD | B | ABS, 0, 0, SKF_AD_OFF + SKF_AD_VLAN_TAG),
            Instruction::new(RET | A, 0, 0, 0),
        ]);
        assert_eq!(p.matches(&[], 0, Some(0x2005)), 0x2005);
    }

    #[test]
    fn packet_type_and_interface_metadata_loads() {
        // What libpcap's live `outbound` and `ifindex` load, each returned whole.
        for (k, size) in [
            (SKF_AD_PKTTYPE, H),
            (SKF_AD_IFINDEX, W),
            (SKF_AD_IFINDEX, B),
        ] {
            let p = Program::new(vec![
                Instruction::new(LD | size | ABS, 0, 0, SKF_AD_OFF + k),
                Instruction::new(RET | A, 0, 0, 0),
            ]);
            let meta = Metadata {
                vlan_tci: None,
                pkt_type: Metadata::PACKET_OUTGOING,
                ifindex: 0x1_0203,
            };
            let want = if k == SKF_AD_PKTTYPE { 4 } else { 0x1_0203 };
            assert_eq!(p.matches_with(&[], 0, &meta), want);
            assert_eq!(p.matcher().matches_with(&[], 0, &meta), want);
            // Without metadata: a packet for this host, on no interface.
            assert_eq!(p.matches(&[], 0, None), 0);
        }
        // Metadata the interpreter does not model rejects the packet.
        let p = Program::new(vec![
            Instruction::new(LD | W | ABS, 0, 0, SKF_AD_OFF + 28),
            Instruction::new(RET | K, 0, 0, 1),
        ]);
        assert_eq!(p.matches_with(&[], 0, &Metadata::default()), 0);
    }
}

/// One decoded instruction of a [`Matcher`]: the opcode's fields resolved once, so the
/// per-packet loop dispatches on a dense enum instead of re-decoding bits.
#[derive(Debug, Clone, Copy)]
enum Op {
    LdAbs(u8, u32),
    LdInd(u8, u32),
    LdAnc(u32),
    Msh(u32),
    LdImm(u32),
    LdxImm(u32),
    LdLen,
    LdxLen,
    LdMem(u8),
    LdxMem(u8),
    St(u8),
    Stx(u8),
    AluK(u16, u32),
    AluX(u16),
    Neg,
    Ja(u32),
    /// Conditional jump: operation, constant (or X), jt, jf.
    JmpK(u16, u32, u8, u8),
    JmpX(u16, u8, u8),
    RetK(u32),
    RetA,
    Tax,
    Txa,
    /// A packet load fused with the conditional jump after it (the commonest pair), when
    /// nothing jumps to that jump: size, offset, operation, constant, jt, jf.
    LdAbsJmpK(u8, u32, u16, u32, u8, u8),
    /// The same for an indexed load (`ldh [x + 14]; jeq #80`).
    LdIndJmpK(u8, u32, u16, u32, u8, u8),
    /// Anything invalid: rejects the packet, as the kernel refuses to run it.
    Bad,
}

/// A [`Program`] decoded for fast repeated use on many packets (`podtracer read`); it
/// accepts exactly what [`Program::matches`] accepts.
#[derive(Debug, Clone)]
pub struct Matcher {
    ops: Vec<Op>,
}

impl Program {
    /// The program decoded for running on many packets.
    pub fn matcher(&self) -> Matcher {
        let mut ops: Vec<Op> = self.instructions.iter().map(decode).collect();
        // Instructions something jumps to cannot be fused into the one before them.
        let mut target = vec![false; ops.len() + 1];
        for (i, op) in ops.iter().enumerate() {
            let mut mark = |to: Option<usize>| {
                if let Some(t) = to.and_then(|to| target.get_mut(to)) {
                    *t = true;
                }
            };
            match *op {
                Op::Ja(k) => mark(ja_target(i + 1, k)),
                Op::JmpK(_, _, jt, jf) | Op::JmpX(_, jt, jf) => {
                    mark(Some(i + 1 + usize::from(jt)));
                    mark(Some(i + 1 + usize::from(jf)));
                }
                _ => {}
            }
        }
        for i in 0..ops.len().saturating_sub(1) {
            if target[i + 1] {
                continue;
            }
            match (ops[i], ops[i + 1]) {
                (Op::LdAbs(size, off), Op::JmpK(op, k, jt, jf)) => {
                    ops[i] = Op::LdAbsJmpK(size, off, op, k, jt, jf);
                }
                (Op::LdInd(size, off), Op::JmpK(op, k, jt, jf)) => {
                    ops[i] = Op::LdIndJmpK(size, off, op, k, jt, jf);
                }
                _ => {}
            }
        }
        Matcher { ops }
    }
}

fn decode(i: &Instruction) -> Op {
    let k = i.k;
    let size = |code: u16| match code & 0x18 {
        W => 4,
        H => 2,
        B => 1,
        _ => 0,
    };
    let mem = |k: u32| u8::try_from(k).ok().filter(|m| usize::from(*m) < MEMWORDS);
    match i.code & 0x07 {
        LD => match i.code & 0xe0 {
            IMM => Op::LdImm(k),
            LEN => Op::LdLen,
            MEM => mem(k).map_or(Op::Bad, Op::LdMem),
            ABS if k >= SKF_AD_OFF => Op::LdAnc(k),
            ABS if size(i.code) > 0 => Op::LdAbs(size(i.code), k),
            IND if size(i.code) > 0 => Op::LdInd(size(i.code), k),
            _ => Op::Bad,
        },
        LDX => match i.code & 0xe0 {
            IMM => Op::LdxImm(k),
            LEN => Op::LdxLen,
            MEM => mem(k).map_or(Op::Bad, Op::LdxMem),
            MSH => Op::Msh(k),
            _ => Op::Bad,
        },
        ST => mem(k).map_or(Op::Bad, Op::St),
        STX => mem(k).map_or(Op::Bad, Op::Stx),
        ALU => match i.code & 0xf0 {
            NEG => Op::Neg,
            op if i.code & X != 0 => Op::AluX(op),
            op => Op::AluK(op, k),
        },
        JMP => match i.code & 0xf0 {
            JA => Op::Ja(k),
            op if i.code & X != 0 => Op::JmpX(op, i.jt, i.jf),
            op => Op::JmpK(op, k, i.jt, i.jf),
        },
        RET => match i.code & 0x18 {
            K => Op::RetK(k),
            A => Op::RetA,
            _ => Op::Bad,
        },
        _ => match i.code & 0xf8 {
            TAX => Op::Tax,
            TXA => Op::Txa,
            _ => Op::Bad,
        },
    }
}

#[inline]
fn fetch(data: &[u8], off: usize, size: u8) -> Option<u32> {
    match size {
        4 => {
            let b = data.get(off..off.checked_add(4)?)?;
            Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        }
        2 => {
            let b = data.get(off..off.checked_add(2)?)?;
            Some(u32::from(u16::from_be_bytes([b[0], b[1]])))
        }
        _ => data.get(off).map(|b| u32::from(*b)),
    }
}

#[inline]
fn alu(op: u16, a: u32, v: u32) -> Option<u32> {
    Some(match op {
        ADD => a.wrapping_add(v),
        SUB => a.wrapping_sub(v),
        MUL => a.wrapping_mul(v),
        DIV => a.checked_div(v)?,
        MOD => a.checked_rem(v)?,
        AND => a & v,
        OR => a | v,
        XOR => a ^ v,
        LSH => a.checked_shl(v).unwrap_or(0),
        RSH => a.checked_shr(v).unwrap_or(0),
        _ => return None,
    })
}

#[inline]
fn cond(op: u16, a: u32, v: u32) -> Option<bool> {
    Some(match op {
        JEQ => a == v,
        JGT => a > v,
        JGE => a >= v,
        JSET => a & v != 0,
        _ => return None,
    })
}

impl Matcher {
    /// Same as [`Program::matches`].
    pub fn matches(&self, data: &[u8], wire_len: u32, vlan_tci: Option<u16>) -> u32 {
        let meta = Metadata {
            vlan_tci,
            ..Metadata::default()
        };
        self.run(data, wire_len, &meta).unwrap_or(0)
    }

    /// Same as [`Program::matches_with`].
    pub fn matches_with(&self, data: &[u8], wire_len: u32, meta: &Metadata) -> u32 {
        self.run(data, wire_len, meta).unwrap_or(0)
    }

    fn run(&self, data: &[u8], wire_len: u32, meta: &Metadata) -> Option<u32> {
        let (mut a, mut x) = (0u32, 0u32);
        let mut mem = [0u32; MEMWORDS];
        let mut pc = 0usize;
        let mut steps = max_steps(self.ops.len(), data.len());
        loop {
            let op = *self.ops.get(pc)?;
            steps = steps.checked_sub(1)?;
            pc += 1;
            match op {
                Op::LdAbs(size, k) => a = fetch(data, k as usize, size)?,
                Op::LdInd(size, k) => {
                    let off = usize::try_from(u64::from(x) + u64::from(k)).ok()?;
                    a = fetch(data, off, size)?;
                }
                Op::LdAnc(k) => a = ancillary(k, meta)?,
                Op::Msh(k) => x = 4 * (u32::from(*data.get(k as usize)?) & 0xf),
                Op::LdImm(k) => a = k,
                Op::LdxImm(k) => x = k,
                Op::LdLen => a = wire_len,
                Op::LdxLen => x = wire_len,
                Op::LdMem(m) => a = mem[usize::from(m)],
                Op::LdxMem(m) => x = mem[usize::from(m)],
                Op::St(m) => mem[usize::from(m)] = a,
                Op::Stx(m) => mem[usize::from(m)] = x,
                Op::AluK(op, k) => a = alu(op, a, k)?,
                Op::AluX(op) => a = alu(op, a, x)?,
                Op::Neg => a = a.wrapping_neg(),
                Op::Ja(k) => pc = ja_target(pc, k)?,
                Op::JmpK(op, k, jt, jf) => {
                    pc += usize::from(if cond(op, a, k)? { jt } else { jf });
                }
                Op::JmpX(op, jt, jf) => {
                    pc += usize::from(if cond(op, a, x)? { jt } else { jf });
                }
                Op::LdAbsJmpK(size, off, op, k, jt, jf) => {
                    // Two instructions, counted as such (see `max_steps`).
                    steps = steps.checked_sub(1)?;
                    a = fetch(data, off as usize, size)?;
                    // Skip the jump this op stands for, then take it.
                    pc += 1 + usize::from(if cond(op, a, k)? { jt } else { jf });
                }
                Op::LdIndJmpK(size, off, op, k, jt, jf) => {
                    steps = steps.checked_sub(1)?;
                    let at = usize::try_from(u64::from(x) + u64::from(off)).ok()?;
                    a = fetch(data, at, size)?;
                    pc += 1 + usize::from(if cond(op, a, k)? { jt } else { jf });
                }
                Op::RetK(k) => return Some(k),
                Op::RetA => return Some(a),
                Op::Tax => x = a,
                Op::Txa => a = x,
                Op::Bad => return None,
            }
        }
    }
}
