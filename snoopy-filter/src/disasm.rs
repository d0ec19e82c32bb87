//! The `tcpdump -d` listing of a program (libpcap's `bpf_image`).

use super::Instruction;
use super::bpf::*;

fn operand_k_abs(k: u32) -> String {
    if k >= SKF_AD_OFF {
        // libpcap 1.10's names for the Linux ancillary offsets (a live `inbound` inside a
        // PPPoE session reads `[queue]`, as libpcap computes it).
        let name = match k - SKF_AD_OFF {
            SKF_AD_PROTOCOL => "proto",
            SKF_AD_PKTTYPE => "type",
            SKF_AD_IFINDEX => "ifidx",
            12 => "nla",
            16 => "nlan",
            20 => "mark",
            24 => "queue",
            28 => "hatype",
            32 => "rxhash",
            36 => "cpu",
            40 => "xor_x",
            SKF_AD_VLAN_TAG => "vlan_tci",
            SKF_AD_VLAN_TAG_PRESENT => "vlanp",
            52 => "poff",
            56 => "random",
            60 => "vlan_tpid",
            _ => return format!("[{}]", k as i32),
        };
        return format!("[{name}]");
    }
    format!("[{k}]")
}

fn image(n: usize, i: &Instruction) -> String {
    let k = i.k;
    let (op, operand): (&str, String) = match i.code {
        c if c == RET | K => ("ret", format!("#{k}")),
        c if c == RET | A => ("ret", String::new()),
        c if c == LD | W | ABS => ("ld", operand_k_abs(k)),
        c if c == LD | H | ABS => ("ldh", operand_k_abs(k)),
        c if c == LD | B | ABS => ("ldb", operand_k_abs(k)),
        c if c == LD | W | LEN => ("ld", "#pktlen".into()),
        c if c == LD | W | IND => ("ld", format!("[x + {k}]")),
        c if c == LD | H | IND => ("ldh", format!("[x + {k}]")),
        c if c == LD | B | IND => ("ldb", format!("[x + {k}]")),
        c if c == LD | IMM => ("ld", format!("#0x{k:x}")),
        c if c == LDX | IMM => ("ldx", format!("#0x{k:x}")),
        c if c == LDX | W | LEN => ("ldx", "#pktlen".into()),
        c if c == LDX | MSH | B => ("ldxb", format!("4*([{k}]&0xf)")),
        c if c == LD | MEM => ("ld", format!("M[{k}]")),
        c if c == LDX | MEM => ("ldx", format!("M[{k}]")),
        c if c == ST => ("st", format!("M[{k}]")),
        c if c == STX => ("stx", format!("M[{k}]")),
        // 32-bit arithmetic, as bpf_image: a backward jump (protochain) prints its target.
        c if c == JMP | JA => (
            "ja",
            format!("{}", (n as u32).wrapping_add(1).wrapping_add(k)),
        ),
        c if c & 0x07 == JMP => {
            let op = match c & 0xf0 {
                JEQ => "jeq",
                JGT => "jgt",
                JGE => "jge",
                JSET => "jset",
                _ => "unimp",
            };
            let operand = if c & X != 0 {
                "x".to_string()
            } else {
                format!("#0x{k:x}")
            };
            return format!(
                "({n:03}) {op:<8} {operand:<16} jt {}\tjf {}",
                n + 1 + usize::from(i.jt),
                n + 1 + usize::from(i.jf)
            );
        }
        c if c & 0x07 == ALU => {
            let op = match c & 0xf0 {
                ADD => "add",
                SUB => "sub",
                MUL => "mul",
                DIV => "div",
                MOD => "mod",
                AND => "and",
                OR => "or",
                XOR => "xor",
                LSH => "lsh",
                RSH => "rsh",
                NEG => return format!("({n:03}) neg      "),
                _ => "unimp",
            };
            let operand = if c & X != 0 {
                "x".to_string()
            } else if matches!(c & 0xf0, AND | OR | XOR) {
                format!("#0x{k:x}")
            } else {
                format!("#{k}")
            };
            (op, operand)
        }
        c if c == MISC | TAX => ("tax", String::new()),
        c if c == MISC | TXA => ("txa", String::new()),
        _ => ("unimp", format!("0x{:x}", i.code)),
    };
    format!("({n:03}) {op:<8} {operand}")
}

/// One line per instruction, as `tcpdump -d` prints them.
pub(crate) fn disassemble(prog: &[Instruction]) -> String {
    let mut out = String::new();
    for (n, i) in prog.iter().enumerate() {
        out.push_str(&image(n, i));
        out.push('\n');
    }
    out
}
