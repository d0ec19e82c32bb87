//! The checks a program must pass before it runs: the kernel's `bpf_check_classic` for a live
//! socket, libpcap's `bpf_validate` for files.
//!
//! The compiler's output is checked against these rules by the fuzzer and the tests, so a
//! code-generator bug that would make `setsockopt(SO_ATTACH_FILTER)` fail with a bare
//! `EINVAL` shows up as an error naming the instruction instead.

use super::bpf::*;
use super::{BPF_MAXINSNS, Error, Instruction, Mode, Program, Result};

/// The ancillary loads the kernel knows (`bpf_anc_helper` in `net/core/filter.c`):
/// `SKF_AD_PROTOCOL` (0) to `SKF_AD_VLAN_TPID` (60), in steps of 4.
fn known_ancillary(k: u32) -> bool {
    let off = k.wrapping_sub(SKF_AD_OFF);
    off <= 60 && off.is_multiple_of(4)
}

/// Whether the kernel's `chk_code_allowed` table has `code` (exact values: bits beyond
/// the class, size, mode, operation and source are not allowed either).
fn code_allowed(code: u16) -> bool {
    const ALU_OPS: [u16; 10] = [ADD, SUB, MUL, DIV, MOD, AND, OR, XOR, LSH, RSH];
    const JMP_OPS: [u16; 4] = [JEQ, JGT, JGE, JSET];
    match code & 0x07 {
        LD => [
            IMM,
            ABS | W,
            ABS | H,
            ABS | B,
            IND | W,
            IND | H,
            IND | B,
            MEM,
            LEN,
        ]
        .contains(&code),
        LDX => [LDX | IMM, LDX | MEM, LDX | LEN, LDX | B | MSH].contains(&code),
        ST | STX => code & !0x07 == 0,
        ALU => {
            code == ALU | NEG
                || ALU_OPS
                    .iter()
                    .any(|&op| code == ALU | op | K || code == ALU | op | X)
        }
        JMP => {
            code == JMP | JA
                || JMP_OPS
                    .iter()
                    .any(|&op| code == JMP | op | K || code == JMP | op | X)
        }
        RET => code == RET | K || code == RET | A,
        _ => code == MISC | TAX || code == MISC | TXA,
    }
}

fn reject(pc: usize, ins: &Instruction, why: &str) -> Error {
    Error::InvalidProgram(format!(
        "instruction {pc} (code 0x{:02x} jt {} jf {} k 0x{:x}): {why}",
        ins.code, ins.jt, ins.jf, ins.k
    ))
}

impl Program {
    /// Checks the program as the place it will run does, before running it.
    ///
    /// [`Mode::Live`]: the kernel's rules for `SO_ATTACH_FILTER` (`bpf_check_classic` and
    /// `check_load_and_stores`): 1 to [`BPF_MAXINSNS`] instructions, known opcodes only,
    /// jumps that land inside the program and go forward, no division or modulo by a
    /// constant 0, no constant shift of 32 or more, scratch words 0 to 15 and never read
    /// before a store on every path, known ancillary loads only, and a `ret` last.
    ///
    /// [`Mode::File`]: the same, except that a `ja` may jump backwards to an instruction of
    /// the program, as libpcap's `bpf_validate` allows (its `protochain` loop needs it; the
    /// interpreter bounds the steps), and a scratch word may be read before any store (it
    /// reads 0: libpcap's `bpf_filter` and this crate's interpreter zero them). The error
    /// names the first instruction that fails and why.
    ///
    /// [`compile`](crate::compile) in [`Mode::Live`] stores 0 into the scratch words the
    /// program reads before any store (libpcap leaves that to user space: the kernel
    /// refuses its live `vlan and pppoes`, and libpcap then filters in user space).
    pub fn validate(&self, mode: Mode) -> Result<()> {
        let prog = &self.instructions;
        let len = prog.len();
        if len == 0 || len > BPF_MAXINSNS {
            return Err(Error::InvalidProgram(format!(
                "{len} instructions: a program has 1 to {BPF_MAXINSNS} (BPF_MAXINSNS)"
            )));
        }
        for (pc, ins) in prog.iter().enumerate() {
            if !code_allowed(ins.code) {
                return Err(reject(pc, ins, "unknown opcode"));
            }
            let after = len - pc - 1;
            let k = ins.k;
            let backward_inside = mode == Mode::File
                && (k as i32) < 0
                && (pc + 1).checked_add_signed(k as i32 as isize).is_some();
            let problem = match ins.code {
                c if c == ALU | DIV | K || c == ALU | MOD | K => {
                    (k == 0).then_some("division by a constant 0")
                }
                c if c == ALU | LSH | K || c == ALU | RSH | K => {
                    (k >= 32).then_some("constant shift of 32 or more")
                }
                c if c == LD | MEM || c == LDX | MEM || c == ST || c == STX => {
                    (k as usize >= MEMWORDS).then_some("scratch word past M[15]")
                }
                // The kernel ignores a `ja`'s jt and jf.
                c if c == JMP | JA => {
                    (k as usize >= after && !backward_inside).then_some("jump outside the program")
                }
                c if c & 0x07 == JMP => (usize::from(ins.jt) >= after
                    || usize::from(ins.jf) >= after)
                    .then_some("jump past the end of the program"),
                c if c & 0xe7 == LD | ABS => {
                    (k >= SKF_AD_OFF && !known_ancillary(k)).then_some("unknown ancillary load")
                }
                _ => None,
            };
            if let Some(why) = problem {
                return Err(reject(pc, ins, why));
            }
        }
        let last = &prog[len - 1];
        if last.code != RET | K && last.code != RET | A {
            return Err(reject(len - 1, last, "the last instruction must be a ret"));
        }
        match (mode, unstored_reads(prog)) {
            (Mode::Live, Some((pc, ins))) => {
                Err(reject(pc, ins, "scratch word read before any store"))
            }
            _ => Ok(()),
        }
    }
}

/// Makes a live program acceptable to the kernel's `check_load_and_stores` without changing
/// what it does: a `st M[k]` at the start for every scratch word some path reads before
/// storing it. A is 0 there (the kernel clears A and X before the first instruction), and 0
/// is what the word reads in libpcap's `bpf_filter` and the interpreter. Jumps are relative
/// and only go forward in live programs, so the prefix moves none of them.
pub(crate) fn store_scratch_first(prog: Vec<Instruction>) -> Vec<Instruction> {
    let mut words: u16 = 0;
    let mut probe = prog.clone();
    while let Some((_, ins)) = unstored_reads(&probe) {
        let word = ins.k & 0xf;
        words |= 1 << word;
        probe.insert(0, Instruction::new(ST, 0, 0, word));
    }
    if words == 0 {
        return prog;
    }
    (0..MEMWORDS as u32)
        .filter(|w| words & (1 << w) != 0)
        .map(|w| Instruction::new(ST, 0, 0, w))
        .chain(prog)
        .collect()
}

/// The kernel's `check_load_and_stores`: the first load of a scratch word that some path
/// reaches without a store to it (one bit per word, merged at jump targets), if any.
fn unstored_reads(prog: &[Instruction]) -> Option<(usize, &Instruction)> {
    // A backward `ja` (files only) has no forward target; the kernel never sees one.
    fn merge(masks: &mut [u16], target: usize, valid: u16) {
        if let Some(m) = masks.get_mut(target) {
            *m &= valid;
        }
    }
    let mut masks = vec![u16::MAX; prog.len()];
    let mut valid: u16 = 0;
    for (pc, ins) in prog.iter().enumerate() {
        valid &= masks[pc];
        match ins.code {
            c if c == ST || c == STX => valid |= 1 << (ins.k & 0xf),
            c if (c == LD | MEM || c == LDX | MEM) && valid & (1 << (ins.k & 0xf)) == 0 => {
                return Some((pc, ins));
            }
            c if c == JMP | JA => {
                merge(&mut masks, (pc + 1).wrapping_add(ins.k as usize), valid);
                valid = u16::MAX;
            }
            c if c & 0x07 == JMP => {
                merge(&mut masks, pc + 1 + usize::from(ins.jt), valid);
                merge(&mut masks, pc + 1 + usize::from(ins.jf), valid);
                valid = u16::MAX;
            }
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{LinkType, compile};

    /// `(code, jt, jf, k)` of each instruction.
    type Fields = (u16, u8, u8, u32);

    fn prog(ins: &[Fields]) -> Program {
        Program::new(
            ins.iter()
                .map(|&(c, jt, jf, k)| Instruction::new(c, jt, jf, k))
                .collect(),
        )
    }

    #[test]
    fn compiled_programs_pass_and_broken_ones_say_why() {
        for (expr, link) in [
            ("tcp port 80", LinkType::LinuxSll2),
            ("vlan 5 and udp", LinkType::Ethernet),
            ("ifindex 3 or inbound", LinkType::Ethernet),
            (
                "tcp[tcpflags] & tcp-syn != 0 and len > 100",
                LinkType::RawIp,
            ),
        ] {
            let p = compile(expr, link, Mode::Live, 65_535).unwrap();
            p.validate(Mode::Live).unwrap();
        }
        // protochain's loop jumps back: fine for libpcap, refused by the kernel.
        let p = compile("ip6 protochain 6", LinkType::Ethernet, Mode::File, 65_535).unwrap();
        p.validate(Mode::File).unwrap();
        let err = p.validate(Mode::Live).unwrap_err().to_string();
        assert!(err.contains("jump outside the program"), "{err}");

        let cases: &[(&[Fields], &str)] = &[
            (&[], "0 instructions"),
            (&[(0x28, 0, 0, 12)], "the last instruction must be a ret"),
            (&[(0x15, 0, 1, 0), (0x06, 0, 0, 0)], "jump past the end"),
            (
                &[(0x34, 0, 0, 0), (0x06, 0, 0, 0)],
                "division by a constant 0",
            ),
            (&[(0x64, 0, 0, 32), (0x06, 0, 0, 0)], "constant shift"),
            (&[(0x60, 0, 0, 3), (0x06, 0, 0, 0)], "read before any store"),
            (&[(0x02, 0, 0, 16), (0x06, 0, 0, 0)], "past M[15]"),
            (
                &[(0x20, 0, 0, SKF_AD_OFF + 64), (0x06, 0, 0, 0)],
                "unknown ancillary",
            ),
            (&[(0xff, 0, 0, 0), (0x06, 0, 0, 0)], "unknown opcode"),
        ];
        for (ins, why) in cases {
            let err = prog(ins).validate(Mode::Live).unwrap_err().to_string();
            assert!(err.contains(why), "{ins:?}: {err}");
        }
        // A store on one branch only does not make the read after the join valid.
        let one_branch = prog(&[
            (0x15, 0, 1, 0), // jeq #0, jt 1, jf 2
            (0x02, 0, 0, 1), // st M[1]
            (0x61, 0, 0, 1), // ldx M[1]
            (0x06, 0, 0, 0),
        ]);
        assert!(one_branch.validate(Mode::Live).is_err());
        one_branch.validate(Mode::File).unwrap();
        let fixed = Program::new(store_scratch_first(one_branch.instructions.clone()));
        assert_eq!(fixed.instructions[0], Instruction::new(ST, 0, 0, 1));
        assert_eq!(&fixed.instructions[1..], &one_branch.instructions[..]);
        fixed.validate(Mode::Live).unwrap();
    }

    #[test]
    fn live_programs_store_the_scratch_words_they_read_first() {
        // libpcap's live `vlan and pppoes` reads M[1] (the VLAN offset) before any store;
        // the kernel refuses it with EINVAL (tcpdump then filters in user space). Ours
        // stores 0 first and keeps libpcap's verdicts (tests/live.rs compares them).
        for expr in ["vlan and pppoes", "vlan and geneve 5 and tcp"] {
            let live = compile(expr, LinkType::Ethernet, Mode::Live, 65_535).unwrap();
            live.validate(Mode::Live).unwrap();
            assert_eq!(live.instructions[0].code, ST, "{expr}");
        }
    }
}
