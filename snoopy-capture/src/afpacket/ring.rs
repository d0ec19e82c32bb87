//! Walking a TPACKET_V3 receive ring: blocks handed over by the kernel, frames inside them.
//!
//! The kernel fills fixed-size blocks with variable-size frames and hands a whole block to
//! user space by setting `TP_STATUS_USER` in its descriptor; user space gives it back by
//! writing `TP_STATUS_KERNEL`. One block is held at a time, and it is given back only when
//! the caller asks for the next frame, so the frame last returned stays valid meanwhile.

use super::sys::{RingMap, TP_STATUS_KERNEL, TP_STATUS_USER};

/// Offsets inside `struct tpacket_block_desc`.
const BLOCK_STATUS: usize = 8;
const BLOCK_NUM_PKTS: usize = 12;
const BLOCK_FIRST_PKT: usize = 16;

/// Size of `struct tpacket3_hdr`; the `sockaddr_ll` follows it.
pub(crate) const TPACKET3_HDR_LEN: usize = 48;

/// The fields of one `struct tpacket3_hdr` that capture needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FrameHeader {
    pub(crate) sec: u32,
    pub(crate) nsec: u32,
    pub(crate) snaplen: u32,
    pub(crate) len: u32,
    pub(crate) status: u32,
    pub(crate) mac: u16,
    pub(crate) vlan_tci: u32,
    pub(crate) vlan_tpid: u16,
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_ne_bytes([b[at], b[at + 1]])
}

impl FrameHeader {
    fn parse(frame: &[u8]) -> Self {
        FrameHeader {
            sec: u32_at(frame, 4),
            nsec: u32_at(frame, 8),
            snaplen: u32_at(frame, 12),
            len: u32_at(frame, 16),
            status: u32_at(frame, 20),
            mac: u16_at(frame, 24),
            vlan_tci: u32_at(frame, 32),
            vlan_tpid: u16_at(frame, 36),
        }
    }
}

/// A frame borrowed from the block being read: its header and the block bytes from the
/// frame's start to the block's end (the packet lies at `header.mac`).
pub(crate) struct Frame<'a> {
    pub(crate) header: FrameHeader,
    pub(crate) bytes: &'a mut [u8],
}

#[derive(Debug, Clone, Copy)]
struct Cursor {
    block: usize,
    remaining: u32,
    offset: usize,
}

/// A mapped TPACKET_V3 ring and the position of the reader in it.
pub(crate) struct Ring {
    map: RingMap,
    block_size: usize,
    block_count: usize,
    next_block: usize,
    cursor: Option<Cursor>,
    /// Block and offset of the frame last returned by `next_frame`.
    last: Option<(usize, usize)>,
}

impl Ring {
    pub(crate) fn new(map: RingMap, block_size: usize, block_count: usize) -> Self {
        Ring {
            map,
            block_size,
            block_count,
            next_block: 0,
            cursor: None,
            last: None,
        }
    }

    /// The next frame, or `None` when the kernel has handed over no further block yet
    /// (the caller then polls the socket).
    pub(crate) fn next_frame(&mut self) -> Option<Frame<'_>> {
        let (block, offset) = self.advance()?;
        self.last = Some((block, offset));
        let start = block * self.block_size;
        // SAFETY: `advance` returned this block only after seeing TP_STATUS_USER on it, and it
        // is handed back to the kernel only by a later `advance`, which needs `&mut self` and
        // therefore cannot run while this borrow lives. It is the only slice of the block.
        let block_bytes = unsafe { self.map.user_block(start, self.block_size) };
        let frame = &mut block_bytes[offset..];
        if frame.len() < TPACKET3_HDR_LEN {
            return None; // a corrupt offset; never happens with a sane kernel
        }
        let header = FrameHeader::parse(frame);
        Some(Frame {
            header,
            bytes: frame,
        })
    }

    /// The bytes of the frame last returned by `next_frame`, again (from its start to the
    /// end of its block); `None` before the first frame or once its block was handed back.
    pub(crate) fn last_frame(&mut self) -> Option<&mut [u8]> {
        let (block, offset) = self.last?;
        if self.cursor.is_none_or(|c| c.block != block) {
            return None;
        }
        // SAFETY: the block is still owned by user space: it is handed back only in
        // `advance`, which clears `cursor` for it first (checked above).
        let block_bytes = unsafe {
            self.map
                .user_block(block * self.block_size, self.block_size)
        };
        Some(&mut block_bytes[offset..])
    }

    /// Moves the cursor to the next frame, handing finished blocks back to the kernel.
    fn advance(&mut self) -> Option<(usize, usize)> {
        loop {
            if let Some(cursor) = self.cursor.as_mut() {
                if cursor.remaining > 0 {
                    let here = (cursor.block, cursor.offset);
                    cursor.remaining -= 1;
                    if cursor.remaining > 0 {
                        let start = cursor.block * self.block_size + cursor.offset;
                        // SAFETY: same block as above, still owned by user space; read only.
                        let block = unsafe { self.map.user_block(start, TPACKET3_HDR_LEN) };
                        let next = u32_at(block, 0) as usize;
                        if next == 0 || cursor.offset + next >= self.block_size {
                            cursor.remaining = 0; // malformed chain: stop at this frame
                        } else {
                            cursor.offset += next;
                        }
                    }
                    return Some(here);
                }
                let done = cursor.block;
                self.map
                    .store_status(done * self.block_size + BLOCK_STATUS, TP_STATUS_KERNEL);
                self.cursor = None;
                self.next_block = (done + 1) % self.block_count;
            }
            let start = self.next_block * self.block_size;
            if self.map.load_status(start + BLOCK_STATUS) & TP_STATUS_USER == 0 {
                return None;
            }
            // SAFETY: the kernel handed this block over (TP_STATUS_USER, loaded with Acquire).
            let desc = unsafe { self.map.user_block(start, BLOCK_FIRST_PKT + 4) };
            let num = u32_at(desc, BLOCK_NUM_PKTS);
            let first = u32_at(desc, BLOCK_FIRST_PKT) as usize;
            let remaining = if first >= self.block_size { 0 } else { num };
            self.cursor = Some(Cursor {
                block: self.next_block,
                remaining,
                offset: first,
            });
        }
    }
}
