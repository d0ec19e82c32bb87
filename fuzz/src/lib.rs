//! The checks of Snoopy's fuzz targets, one module per target, as plain functions.
//!
//! Each function takes the fuzzer's bytes, drives one part of Snoopy with them and panics
//! when an invariant breaks (a panic inside the code under test is a finding too). The
//! libFuzzer binaries in `fuzz_targets/` only call them, and `tests/replay.rs` runs them on
//! every committed corpus and regression input with plain `cargo test`.
//!
//! The packet-driven targets (`decode`, `flows`) read their bytes as a few option bytes and
//! then [`Records`]: a timestamp, a length and the frame, so that a mutation changes one
//! frame, not the framing of all that follow.

#![forbid(unsafe_code)]

use std::time::Duration;

mod decode;
mod filter;
mod flows;
mod read;

pub use decode::decode;
pub use filter::filter;
pub use flows::flows;
pub use read::read;

use snoopy_capture::LinkType;

/// Reads fixed-size fields off the front of the fuzzer's bytes; missing bytes read as 0, so
/// every input means something.
#[derive(Debug, Clone)]
pub struct Bytes<'a>(pub &'a [u8]);

impl<'a> Bytes<'a> {
    /// The next `n` bytes (fewer at the end).
    pub fn take(&mut self, n: usize) -> &'a [u8] {
        let (head, rest) = self.0.split_at(n.min(self.0.len()));
        self.0 = rest;
        head
    }

    /// The next byte.
    pub fn u8(&mut self) -> u8 {
        self.take(1).first().copied().unwrap_or(0)
    }

    /// The next two bytes, little-endian.
    pub fn u16(&mut self) -> u16 {
        let mut b = [0u8; 2];
        let head = self.take(2);
        b[..head.len()].copy_from_slice(head);
        u16::from_le_bytes(b)
    }

    /// The next four bytes, little-endian.
    pub fn u32(&mut self) -> u32 {
        let mut b = [0u8; 4];
        let head = self.take(4);
        b[..head.len()].copy_from_slice(head);
        u32::from_le_bytes(b)
    }

    /// The next eight bytes, little-endian.
    pub fn u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        let head = self.take(8);
        b[..head.len()].copy_from_slice(head);
        u64::from_le_bytes(b)
    }

    /// Whether all bytes have been read.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The link types the decoder and the filter compiler know, plus one they do not.
pub fn link_type(selector: u8) -> LinkType {
    match selector % 5 {
        0 => LinkType::Ethernet,
        1 => LinkType::RawIp,
        2 => LinkType::LinuxSll,
        3 => LinkType::LinuxSll2,
        _ => LinkType::Other(u32::from(selector)),
    }
}

/// One frame of a packet-driven target.
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    /// Capture time: any `Duration` a file can give, up to `u64::MAX` seconds.
    pub timestamp: Duration,
    /// The length on the wire: the captured length plus an arbitrary excess (or less: files
    /// may say anything).
    pub orig_len: u32,
    /// The frame.
    pub data: &'a [u8],
    /// A free byte the target may use (flags of what to do around this frame).
    pub flags: u8,
}

/// The frames after the option bytes. Each record is 8 bytes of seconds, 4 of nanoseconds
/// (reduced below one second), 2 of captured length, 2 of wire length minus captured length
/// (as a signed excess), 1 of flags, then the frame.
#[derive(Debug, Clone)]
pub struct Records<'a>(pub Bytes<'a>);

impl<'a> Iterator for Records<'a> {
    type Item = Record<'a>;

    fn next(&mut self) -> Option<Record<'a>> {
        if self.0.is_empty() {
            return None;
        }
        let secs = self.0.u64();
        let nanos = self.0.u32() % 1_000_000_000;
        let caplen = usize::from(self.0.u16());
        let excess = self.0.u16() as i16;
        let flags = self.0.u8();
        let data = self.0.take(caplen);
        let orig_len = (data.len() as u32).saturating_add_signed(i32::from(excess));
        Some(Record {
            timestamp: Duration::new(secs, nanos),
            orig_len,
            data,
            flags,
        })
    }
}

/// Writes records in the layout [`Records`] reads: how the seed corpora are made.
pub fn encode_record(out: &mut Vec<u8>, timestamp: Duration, orig_len: u32, data: &[u8]) {
    out.extend_from_slice(&timestamp.as_secs().to_le_bytes());
    out.extend_from_slice(&timestamp.subsec_nanos().to_le_bytes());
    out.extend_from_slice(&(data.len() as u16).to_le_bytes());
    let excess = i64::from(orig_len) - data.len() as i64;
    out.extend_from_slice(&(excess.clamp(-32768, 32767) as i16).to_le_bytes());
    out.push(0);
    out.extend_from_slice(data);
}
