//! A userspace interpreter of classic BPF, with the semantics of libpcap's `bpf_filter`
//! (and of the kernel, for the ancillary VLAN loads).

use super::bpf::*;
use super::{Instruction, Program};

impl Program {
    /// Runs the program on one packet and returns what it returns: 0 to drop the packet,
    /// otherwise how many bytes to keep.
    ///
    /// `data` is the captured bytes, `wire_len` the packet's length on the wire (what `len`,
    /// `less` and `greater` test) and `vlan_tci` the VLAN tag the kernel stripped, if any
    /// (for [`super::Mode::Live`] programs; `None` for files). A load past the end of `data`
    /// rejects the packet, as in libpcap and the kernel; so does a division by zero.
    pub fn matches(&self, data: &[u8], wire_len: u32, vlan_tci: Option<u16>) -> u32 {
        run(&self.instructions, data, wire_len, vlan_tci)
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

fn ancillary(k: u32, vlan_tci: Option<u16>) -> Option<u32> {
    match k.wrapping_sub(SKF_AD_OFF) {
        SKF_AD_VLAN_TAG => Some(vlan_tci.map_or(0, u32::from)),
        SKF_AD_VLAN_TAG_PRESENT => Some(u32::from(vlan_tci.is_some())),
        _ => None,
    }
}

fn run(prog: &[Instruction], data: &[u8], wire_len: u32, vlan_tci: Option<u16>) -> u32 {
    let (mut a, mut x): (u32, u32) = (0, 0);
    let mut mem = [0u32; MEMWORDS];
    let mut pc = 0usize;
    while let Some(ins) = prog.get(pc) {
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
                    ABS if k >= SKF_AD_OFF => match ancillary(k, vlan_tci) {
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
                        pc = match pc.checked_add(k as usize) {
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
    fn vlan_metadata_loads() {
        let p = Program::new(vec![
            Instruction::new(LD | B | ABS, 0, 0, SKF_AD_OFF + SKF_AD_VLAN_TAG),
            Instruction::new(RET | A, 0, 0, 0),
        ]);
        assert_eq!(p.matches(&[], 0, Some(0x2005)), 0x2005);
    }
}
