//! `filter`: any text compiled in every mode for the link type the first byte picks, then the
//! program run on the rest of the bytes as a packet.
//!
//! Layout: link/mode byte, snaplen (4 bytes), packet type, interface index (1 byte), VLAN
//! tag (2 bytes, the top bit of the link byte says whether there is one), wire-length excess
//! (1 byte), then the expression up to the first NUL byte, then the packet.

use snoopy_filter::{BPF_MAXINSNS, CompileError, LinkType, Metadata, Mode, Program, compile};

use crate::Bytes;

/// The `filter` target.
pub fn filter(data: &[u8]) {
    let mut bytes = Bytes(data);
    let selector = bytes.u8();
    let link = [
        LinkType::Ethernet,
        LinkType::RawIp,
        LinkType::LinuxSll,
        LinkType::LinuxSll2,
    ][usize::from(selector & 3)];
    let snaplen = bytes.u32();
    let meta = Metadata {
        pkt_type: bytes.u8() % 8,
        ifindex: u32::from(bytes.u8()),
        vlan_tci: Some(bytes.u16()).filter(|_| selector & 0x80 != 0),
    };
    let excess = bytes.u8();
    let rest = bytes.0;
    let (expr, packet) = match rest.iter().position(|&b| b == 0) {
        Some(nul) => (&rest[..nul], &rest[nul + 1..]),
        None => (rest, &[][..]),
    };
    let expr = String::from_utf8_lossy(expr);
    let wire_len = (packet.len() as u32).saturating_add(u32::from(excess));
    for mode in [Mode::File, Mode::Live] {
        match compile(&expr, link, mode, snaplen) {
            Ok(program) => check_program(&program, mode, snaplen, packet, wire_len, &meta),
            Err(err) => check_error(&expr, &err),
        }
    }
}

fn check_program(
    program: &Program,
    mode: Mode,
    snaplen: u32,
    packet: &[u8],
    wire_len: u32,
    meta: &Metadata,
) {
    let len = program.instructions.len();
    assert!(
        (1..=BPF_MAXINSNS).contains(&len),
        "{len} instructions ({mode:?})"
    );
    if let Err(e) = program.validate(mode) {
        panic!(
            "{mode:?} program fails validation: {e}\n{}",
            program.disassemble()
        );
    }
    // Two interpreters, one verdict.
    let slow = program.matches_with(packet, wire_len, meta);
    let fast = program.matcher().matches_with(packet, wire_len, meta);
    assert_eq!(slow, fast, "Program::matches_with and Matcher disagree");
    // Compiled filters return the snapshot length or 0, as libpcap's do.
    assert!(
        slow == 0 || slow == snaplen,
        "returned {slow}, snaplen {snaplen}"
    );
    // The text forms: `-ddd` reads back to the same program, `-d` has one line an instruction.
    let again = Program::from_ddd(&program.to_ddd()).expect("to_ddd output parses");
    assert_eq!(&again, program, "from_ddd(to_ddd(p)) != p");
    assert_eq!(program.disassemble().lines().count(), len);
}

fn check_error(expr: &str, err: &CompileError) {
    assert!(!err.message.is_empty(), "empty message: {err:?}");
    if let Some(column) = err.column {
        // One past the last character: "end of expression".
        let chars = expr.chars().count();
        assert!(
            (1..=chars + 1).contains(&column),
            "column {column} of a {chars}-character expression: {err:?}"
        );
        assert!(err.pointer(expr).is_some(), "no pointer for {err:?}");
    }
}
