//! Classic BPF filter programs.
//!
//! A [`Program`] is a list of `struct sock_filter` instructions, attached to a capture
//! socket so the kernel drops unwanted packets before they reach the ring.

use crate::{Error, Result};

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
            .ok_or_else(|| Error::Filter("empty program text".into()))?
            .parse()
            .map_err(|_| Error::Filter("first line must be the instruction count".into()))?;
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
                Error::Filter(format!(
                    "line {}: expected `code jt jf k` in decimal, got {line:?}",
                    n + 2
                ))
            })?);
        }
        if instructions.len() != count {
            return Err(Error::Filter(format!(
                "the first line says {count} instructions, {} follow",
                instructions.len()
            )));
        }
        Ok(Program { instructions })
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

    #[test]
    fn rejects_a_wrong_count_and_bad_lines() {
        assert!(Program::from_ddd("2\n6 0 0 0\n").is_err());
        let err = Program::from_ddd("1\n6 0 x 0\n").unwrap_err().to_string();
        assert!(err.contains("line 2"), "{err}");
    }
}
