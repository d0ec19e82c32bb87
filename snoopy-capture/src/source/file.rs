//! Reading pcap and pcapng files (or streams such as `tcpdump -w - | podtracer read -`).
//!
//! The record layouts are parsed with `pcap-file` 2.0 (`PcapHeader`, `RawPcapPacket`,
//! `RawBlock`, `Block`), but the buffering is ours, for three reasons:
//! - a packet must borrow the read buffer (our [`PacketSource`] lends packets), which
//!   `pcap-file`'s readers do not allow across calls;
//! - a truncated last record (a writer still writing, or killed) must end the stream
//!   cleanly, and a record claiming an absurd length must be reported as corruption with its
//!   offset rather than make the reader swallow the rest of the file looking for its end;
//! - `pcap-file` 2.0 has two bugs we must avoid: its pcap reader rejects records whose
//!   `orig_len` exceeds the snaplen (every capture taken with `-s`), and its pcapng reader
//!   ignores `if_tsresol` (every timestamp of a microsecond-resolution file is 1000x off).
//!   So pcap records are validated here, and EPB/SPB/PB bodies are decoded here with the
//!   interface's resolution.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;
use std::time::Duration;

use pcap_file::pcap::{PcapHeader, RawPcapPacket};
use pcap_file::pcapng::blocks::interface_description::{
    InterfaceDescriptionBlock, InterfaceDescriptionOption,
};
use pcap_file::pcapng::{Block, RawBlock};
use pcap_file::{Endianness, PcapError, TsResolution};

use crate::{Error, Interface, LinkType, Packet, PacketSource, Result, SourceStats};

/// Initial read buffer size; it grows (up to [`MAX_RECORD`]) only for records larger than
/// it, and only as their bytes arrive.
const BUF_SIZE: usize = 1 << 20;

/// The largest record accepted. libpcap refuses records larger than 256 KiB (its
/// `MAXIMUM_SNAPLEN`); we allow more for pcapng blocks carrying options, but anything beyond
/// this is certainly corruption, not a packet.
const MAX_RECORD: usize = 16 << 20;

/// pcapng block types we handle (the pcapng specification, section 11.1).
const SHB: u32 = 0x0A0D_0D0A;
const IDB: u32 = 1;
const PB: u32 = 2;
const SPB: u32 = 3;
const EPB: u32 = 6;

/// The format of a capture file, detected from its first four bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    /// Classic libpcap format; `nanosecond` is true for the `0xa1b23c4d` magic.
    Pcap {
        /// Whether timestamps have nanosecond (true) or microsecond (false) resolution.
        nanosecond: bool,
    },
    /// pcapng (one or more sections, any number of interfaces).
    PcapNg,
}

/// Where a stream ended in the middle of a record (see [`FileSource::truncated`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Truncation {
    /// Byte offset in the stream where the incomplete record starts.
    pub offset: u64,
    /// How many bytes of it were present.
    pub bytes: usize,
}

/// How a pcapng interface's timestamps are to be read.
#[derive(Debug, Clone, Copy)]
struct TsUnit {
    /// `if_tsresol`: bit 7 clear = 10^-n seconds, set = 2^-n seconds.
    resol: u8,
    /// `if_tsoffset`: seconds to add to every timestamp.
    offset: i64,
}

impl Default for TsUnit {
    fn default() -> Self {
        // The pcapng default resolution is microseconds.
        TsUnit {
            resol: 6,
            offset: 0,
        }
    }
}

impl TsUnit {
    /// Converts a raw EPB timestamp to time since the epoch.
    fn to_duration(self, ticks: u64) -> Duration {
        let (secs, nanos) = if self.resol & 0x80 == 0 {
            let exp = u32::from(self.resol);
            match 10u64.checked_pow(exp) {
                Some(per_sec) => {
                    let frac = u128::from(ticks % per_sec) * 1_000_000_000 / u128::from(per_sec);
                    (ticks / per_sec, frac as u32)
                }
                // A resolution finer than 10^-19 s cannot fit a u64 tick count per second.
                None => (0, 0),
            }
        } else {
            let exp = u32::from(self.resol & 0x7f);
            if exp >= 64 {
                (0, 0)
            } else {
                let mask = (1u64 << exp) - 1;
                let frac = (u128::from(ticks & mask) * 1_000_000_000) >> exp;
                (ticks >> exp, frac as u32)
            }
        };
        let secs = secs.checked_add_signed(self.offset).unwrap_or(secs);
        Duration::new(secs, nanos)
    }
}

/// Per-format parser state.
#[derive(Debug)]
enum State {
    Pcap {
        header: PcapHeader,
    },
    PcapNg {
        endianness: Endianness,
        /// Index in `interfaces` of the current section's interface 0: interface ids
        /// restart at each section header, ours keep counting.
        section_base: usize,
        /// Timestamp units, parallel to `interfaces`.
        units: Vec<TsUnit>,
    },
}

/// A packet found in the buffer: where its bytes are and its metadata.
struct Found {
    start: usize,
    end: usize,
    timestamp: Duration,
    orig_len: u32,
    interface: u32,
}

/// Packets read from a pcap or pcapng file or stream.
///
/// The format is detected from the magic number: pcap with microsecond or nanosecond
/// timestamps in either byte order, or pcapng (several sections, several interface
/// description blocks, `if_tsresol`/`if_tsoffset`, enhanced, simple and obsolete packet
/// blocks). Other pcapng blocks (statistics, name resolution, ...) are skipped.
///
/// **End of stream.** A stream that ends in the middle of a record — a file still being
/// written, or a writer that was killed — ends cleanly after the last complete packet;
/// [`FileSource::truncated`] then says where the partial record starts.
///
/// **Garbage in the middle.** Neither format has synchronisation markers, so reading cannot
/// resume after corruption: a record with an impossible length (more than the snaplen or
/// 256 KiB for pcap, and never more than 16 MiB; not a multiple of 4 or more than 16 MiB
/// for pcapng), mismatched pcapng block lengths, or a packet of an undeclared interface ends
/// the stream with an [`Error::Pcap`] naming the byte offset. Every packet before it has
/// been returned already.
///
/// **Records as tcpdump reads them.** A pcap record whose timestamp fraction is a second or
/// more (≥ 10^6 µs or 10^9 ns) is kept, as libpcap keeps it, its time read as seconds plus
/// that fraction; [`FileSource::invalid_fractions`] counts them so that a caller can warn.
/// A record's original length is passed on as the file has it, even when it is smaller than
/// the captured length. Memory follows the bytes actually read: a header's snaplen or a
/// record's claimed length never sizes a buffer before the bytes arrive.
pub struct FileSource {
    reader: Box<dyn Read + Send>,
    /// Label for messages: the path, or `-` for stdin.
    name: String,
    buf: Vec<u8>,
    /// Unconsumed bytes are `buf[pos..len]`.
    pos: usize,
    len: usize,
    /// Stream offset of `buf[0]`.
    buf_offset: u64,
    eof: bool,
    format: FileFormat,
    state: State,
    interfaces: Vec<Interface>,
    captured: u64,
    truncated: Option<Truncation>,
    /// pcap records kept with a timestamp fraction of a second or more.
    invalid_fractions: u64,
}

impl std::fmt::Debug for FileSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileSource")
            .field("name", &self.name)
            .field("format", &self.format)
            .field("interfaces", &self.interfaces)
            .field("captured", &self.captured)
            .finish_non_exhaustive()
    }
}

impl FileSource {
    /// Opens a pcap or pcapng file; the path `-` reads standard input.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        if path == Path::new("-") {
            return Self::from_reader(io::stdin(), "-");
        }
        let name = path.display().to_string();
        let file = File::open(path).map_err(|e| Error::io(format!("opening {name}"), e))?;
        Self::from_reader(file, name)
    }

    /// Reads a pcap or pcapng stream from any reader; `name` labels it in error messages.
    ///
    /// Reads the file header (blocking until it arrives, for a pipe).
    pub fn from_reader(
        reader: impl Read + Send + 'static,
        name: impl Into<String>,
    ) -> Result<Self> {
        let mut source = FileSource {
            reader: Box::new(reader),
            name: name.into(),
            buf: vec![0; BUF_SIZE],
            pos: 0,
            len: 0,
            buf_offset: 0,
            eof: false,
            format: FileFormat::PcapNg,
            state: State::Pcap {
                header: PcapHeader::default(),
            },
            interfaces: Vec::new(),
            captured: 0,
            truncated: None,
            invalid_fractions: 0,
        };
        source.read_file_header()?;
        Ok(source)
    }

    /// The detected format.
    pub fn format(&self) -> FileFormat {
        self.format
    }

    /// Where the stream ended in the middle of a record, once [`PacketSource::next_packet`]
    /// has returned `Ok(None)`; `None` when it ended on a record boundary.
    pub fn truncated(&self) -> Option<Truncation> {
        self.truncated
    }

    /// How many pcap records so far had a timestamp fraction of a second or more (≥ 10^6
    /// µs, ≥ 10^9 ns). tcpdump keeps such records and so does this reader, adding the
    /// fraction to the seconds; the count lets a caller say so.
    pub fn invalid_fractions(&self) -> u64 {
        self.invalid_fractions
    }

    fn read_file_header(&mut self) -> Result<()> {
        if !self.fill(4)? {
            return Err(self.corrupt(0, "the stream is empty or shorter than a file header"));
        }
        let magic = [self.buf[0], self.buf[1], self.buf[2], self.buf[3]];
        match u32::from_be_bytes(magic) {
            0xA1B2_C3D4 | 0xD4C3_B2A1 | 0xA1B2_3C4D | 0x4D3C_B2A1 => {
                if !self.fill(24)? {
                    return Err(self.corrupt(0, "the pcap file header is cut short"));
                }
                let (_, header) = PcapHeader::from_slice(&self.buf[..self.len])
                    .map_err(|e| Error::pcap(format!("reading {} header", self.name), e))?;
                self.pos = 24;
                self.format = FileFormat::Pcap {
                    nanosecond: header.ts_resolution == TsResolution::NanoSecond,
                };
                // libpcap's LT_LINKTYPE: the top 6 bits of the field say whether and how many
                // FCS bytes end each frame, not which link type it is (tcpdump reads
                // 0xcc000071 as LINUX_SLL).
                let link = u32::from(header.datalink) & crate::sink::MAX_PCAP_LINKTYPE;
                self.interfaces.push(Interface::new(
                    self.name.clone(),
                    LinkType::from_number(link),
                    header.snaplen,
                ));
                self.state = State::Pcap { header };
                Ok(())
            }
            SHB => {
                self.format = FileFormat::PcapNg;
                self.state = State::PcapNg {
                    endianness: Endianness::Big,
                    section_base: 0,
                    units: Vec::new(),
                };
                // The section header is consumed like any other block, by next_packet; but
                // fail now if it is not one, so that `from_reader` rejects non-pcapng data.
                if !self.fill(12)? {
                    return Err(self.corrupt(0, "the pcapng section header is cut short"));
                }
                match &self.buf[8..12] {
                    [0x1A, 0x2B, 0x3C, 0x4D] | [0x4D, 0x3C, 0x2B, 0x1A] => Ok(()),
                    _ => Err(self.corrupt(0, "bad pcapng byte-order magic")),
                }
            }
            other => Err(Error::pcap(
                format!(
                    "reading {}: not a pcap or pcapng file (magic 0x{other:08x}; expected a1b2c3d4, a1b23c4d or 0a0d0d0a in either byte order)",
                    self.name
                ),
                PcapError::InvalidField("magic number"),
            )),
        }
    }

    /// Makes at least `need` unconsumed bytes available; false at end of stream.
    ///
    /// The buffer grows only when it is full, doubling towards `need`: a record that claims
    /// megabytes in a 40-byte file costs nothing beyond the initial buffer.
    fn fill(&mut self, need: usize) -> Result<bool> {
        while self.len - self.pos < need {
            if self.eof {
                return Ok(false);
            }
            if self.pos > 0 && self.pos + need > self.buf.len() {
                // Move the partial record to the front.
                self.buf.copy_within(self.pos..self.len, 0);
                self.buf_offset += self.pos as u64;
                self.len -= self.pos;
                self.pos = 0;
            }
            if self.len == self.buf.len() {
                let grown = (self.buf.len() * 2).min(need.next_power_of_two());
                self.buf.resize(grown.max(self.len + 1), 0);
            }
            match self.reader.read(&mut self.buf[self.len..]) {
                Ok(0) => self.eof = true,
                Ok(n) => self.len += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Error::io(format!("reading {}", self.name), e)),
            }
        }
        Ok(true)
    }

    /// Ends the stream: records a partial record if bytes are left over.
    fn end(&mut self) -> Option<Found> {
        let left = self.len - self.pos;
        if left > 0 && self.truncated.is_none() {
            self.truncated = Some(Truncation {
                offset: self.offset(),
                bytes: left,
            });
        }
        self.pos = self.len;
        None
    }

    /// Stream offset of the next unconsumed byte.
    fn offset(&self) -> u64 {
        self.buf_offset + self.pos as u64
    }

    fn corrupt(&self, offset: u64, what: &str) -> Error {
        Error::pcap(
            format!(
                "reading {} at byte {offset}: {what}; the file is corrupt from here on",
                self.name
            ),
            PcapError::InvalidField("record"),
        )
    }

    fn next_pcap(&mut self, header: PcapHeader) -> Result<Option<Found>> {
        if !self.fill(16)? {
            return Ok(self.end());
        }
        let rec = &self.buf[self.pos..self.pos + 16];
        let word = |i: usize| {
            let b = [rec[i], rec[i + 1], rec[i + 2], rec[i + 3]];
            match header.endianness {
                Endianness::Big => u32::from_be_bytes(b),
                Endianness::Little => u32::from_le_bytes(b),
            }
        };
        let incl_len = word(8) as usize;
        // libpcap accepts records up to 256 KiB whatever the snaplen says; we take up to
        // the header's snaplen too, but never beyond MAX_RECORD (a header is data too: a
        // snaplen of 4 GiB must not let a record claim that much).
        let limit = (header.snaplen as usize).clamp(256 * 1024, MAX_RECORD);
        if incl_len > limit {
            let msg = format!("record claims {incl_len} captured bytes, more than {limit}");
            return Err(self.corrupt(self.offset(), &msg));
        }
        if !self.fill(16 + incl_len)? {
            return Ok(self.end());
        }
        let avail = &self.buf[self.pos..self.len];
        let parsed = match header.endianness {
            Endianness::Big => RawPcapPacket::from_slice::<byteorder::Big>(avail),
            Endianness::Little => RawPcapPacket::from_slice::<byteorder::Little>(avail),
        };
        let raw = parsed
            .map_err(|e| {
                Error::pcap(
                    format!("reading {} at byte {}", self.name, self.offset()),
                    e,
                )
            })?
            .1;
        let per_sec: u64 = match header.ts_resolution {
            TsResolution::MicroSecond => 1_000_000,
            TsResolution::NanoSecond => 1_000_000_000,
        };
        let frac = u64::from(raw.ts_frac);
        if frac >= per_sec {
            // libpcap keeps the record (tcpdump prints and writes it); so do we, counted.
            self.invalid_fractions += 1;
        }
        let timestamp = Duration::from_secs(u64::from(raw.ts_sec))
            + Duration::from_nanos(frac * (1_000_000_000 / per_sec));
        let start = self.pos + 16;
        let found = Found {
            start,
            end: start + incl_len,
            timestamp,
            // As the file says, even below caplen (tcpdump keeps it too: data is not ours
            // to change, and a filter's `len` must see what libpcap's sees).
            orig_len: raw.orig_len,
            interface: 0,
        };
        self.pos = start + incl_len;
        Ok(Some(found))
    }

    fn next_pcapng(&mut self) -> Result<Option<Found>> {
        loop {
            if !self.fill(12)? {
                return Ok(self.end());
            }
            let at = self.offset();
            let head = &self.buf[self.pos..self.pos + 12];
            let block_type_be = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
            let State::PcapNg { endianness, .. } = &mut self.state else {
                unreachable!("next_pcapng is only called for pcapng")
            };
            // A section header may switch the byte order; its own magic says which.
            if block_type_be == SHB {
                *endianness = match &head[8..12] {
                    [0x1A, 0x2B, 0x3C, 0x4D] => Endianness::Big,
                    [0x4D, 0x3C, 0x2B, 0x1A] => Endianness::Little,
                    _ => return Err(self.corrupt(at, "bad pcapng byte-order magic")),
                };
            }
            let endianness = *endianness;
            let read32 = |b: &[u8]| {
                let b = [b[0], b[1], b[2], b[3]];
                match endianness {
                    Endianness::Big => u32::from_be_bytes(b),
                    Endianness::Little => u32::from_le_bytes(b),
                }
            };
            let block_type = read32(&head[0..4]);
            let total = read32(&head[4..8]) as usize;
            if total < 12 || !total.is_multiple_of(4) || total > MAX_RECORD {
                let msg = format!("pcapng block of type {block_type} claims length {total}");
                return Err(self.corrupt(at, &msg));
            }
            if !self.fill(total)? {
                return Ok(self.end());
            }
            let block = &self.buf[self.pos..self.pos + total];
            if read32(&block[total - 4..]) as usize != total {
                return Err(self.corrupt(at, "pcapng block lengths at start and end differ"));
            }
            let body_start = self.pos + 8;
            let body = &block[8..total - 4];
            let found = match block_type {
                SHB | IDB => {
                    self.header_block(block_type, total, endianness, at)?;
                    None
                }
                EPB | PB => {
                    if body.len() < 20 {
                        return Err(self.corrupt(at, "packet block shorter than its header"));
                    }
                    let (iface, ts_hi, ts_lo) = if block_type == EPB {
                        (
                            read32(&body[0..4]),
                            read32(&body[4..8]),
                            read32(&body[8..12]),
                        )
                    } else {
                        // Obsolete Packet Block: 16-bit interface id, 16-bit drop count.
                        let id = read32(&body[0..4]);
                        let id = match endianness {
                            Endianness::Big => id >> 16,
                            Endianness::Little => id & 0xffff,
                        };
                        (id, read32(&body[4..8]), read32(&body[8..12]))
                    };
                    let caplen = read32(&body[12..16]) as usize;
                    let orig_len = read32(&body[16..20]);
                    if caplen > body.len() - 20 {
                        let msg = format!(
                            "packet block claims {caplen} captured bytes, holds {}",
                            body.len() - 20
                        );
                        return Err(self.corrupt(at, &msg));
                    }
                    let ticks = (u64::from(ts_hi) << 32) | u64::from(ts_lo);
                    let (index, unit) = self.interface_for(iface, at)?;
                    Some(Found {
                        start: body_start + 20,
                        end: body_start + 20 + caplen,
                        timestamp: unit.to_duration(ticks),
                        orig_len,
                        interface: index,
                    })
                }
                SPB => {
                    if body.len() < 4 {
                        return Err(self.corrupt(at, "simple packet block shorter than its header"));
                    }
                    let orig_len = read32(&body[0..4]);
                    let (index, _) = self.interface_for(0, at)?;
                    // An SPB holds min(orig_len, snaplen) bytes plus padding, and no timestamp.
                    let snaplen = match self.interfaces[index as usize].snaplen {
                        0 => u32::MAX,
                        s => s,
                    };
                    let caplen = (orig_len.min(snaplen) as usize).min(body.len() - 4);
                    Some(Found {
                        start: body_start + 4,
                        end: body_start + 4 + caplen,
                        timestamp: Duration::ZERO,
                        // caplen is at most orig_len here.
                        orig_len,
                        interface: index,
                    })
                }
                _ => None,
            };
            self.pos += total;
            if found.is_some() {
                return Ok(found);
            }
        }
    }

    /// Maps a section-relative interface id to our index and its timestamp unit.
    fn interface_for(&self, id: u32, at: u64) -> Result<(u32, TsUnit)> {
        let State::PcapNg {
            section_base,
            units,
            ..
        } = &self.state
        else {
            unreachable!("pcapng only")
        };
        let index = section_base + id as usize;
        match units.get(index) {
            Some(unit) if index >= *section_base => Ok((index as u32, *unit)),
            _ => {
                let msg = format!(
                    "packet of interface {id}, but this section declares {}",
                    units.len() - section_base
                );
                Err(self.corrupt(at, &msg))
            }
        }
    }

    /// Handles a section header or interface description block at `self.pos`.
    fn header_block(
        &mut self,
        block_type: u32,
        total: usize,
        endianness: Endianness,
        at: u64,
    ) -> Result<()> {
        let bytes = &self.buf[self.pos..self.pos + total];
        let parsed = match endianness {
            Endianness::Big => RawBlock::from_slice::<byteorder::Big>(bytes)
                .and_then(|(_, raw)| raw.try_into_block::<byteorder::Big>()),
            Endianness::Little => RawBlock::from_slice::<byteorder::Little>(bytes)
                .and_then(|(_, raw)| raw.try_into_block::<byteorder::Little>()),
        };
        let State::PcapNg {
            section_base,
            units,
            ..
        } = &mut self.state
        else {
            unreachable!("pcapng only")
        };
        if block_type == SHB {
            // A new section: its interface ids start again at 0. Its options are not needed.
            *section_base = self.interfaces.len();
            return Ok(());
        }
        let idb = match parsed {
            Ok(Block::InterfaceDescription(idb)) => idb,
            Ok(_) => unreachable!("block type checked by the caller"),
            // pcap-file rejects option lists without opt_endofopt, which the specification
            // allows; keep the fixed fields and use default options then.
            Err(_) if bytes.len() >= 20 => {
                let word = |b: &[u8]| {
                    let b = [b[0], b[1], b[2], b[3]];
                    match endianness {
                        Endianness::Big => u32::from_be_bytes(b),
                        Endianness::Little => u32::from_le_bytes(b),
                    }
                };
                let lt = word(&bytes[8..12]);
                let link = match endianness {
                    Endianness::Big => lt >> 16,
                    Endianness::Little => lt & 0xffff,
                };
                InterfaceDescriptionBlock::new(link.into(), word(&bytes[12..16]))
            }
            Err(e) => {
                return Err(Error::pcap(
                    format!(
                        "reading {} at byte {at}: interface description block",
                        self.name
                    ),
                    e,
                ));
            }
        };
        let mut unit = TsUnit::default();
        let mut interface = Interface::new(
            String::new(),
            LinkType::from_number(u32::from(idb.linktype)),
            idb.snaplen,
        );
        for option in &idb.options {
            match option {
                InterfaceDescriptionOption::IfName(name) => interface.name = name.to_string(),
                InterfaceDescriptionOption::IfDescription(d) => {
                    interface.description = Some(d.to_string());
                }
                InterfaceDescriptionOption::IfTsResol(r) => unit.resol = *r,
                InterfaceDescriptionOption::IfTsOffset(o) => unit.offset = *o as i64,
                _ => {}
            }
        }
        if interface.name.is_empty() {
            // Wireshark shows unnamed interfaces by index; keep that recognisable.
            interface.name = format!("if{}", self.interfaces.len() - *section_base);
        }
        units.push(unit);
        self.interfaces.push(interface);
        Ok(())
    }
}

/// Byte-order types of the `byteorder` crate re-exported by `pcap-file`.
mod byteorder {
    pub(super) type Big = byteorder_slice::BigEndian;
    pub(super) type Little = byteorder_slice::LittleEndian;
}

impl PacketSource for FileSource {
    fn interfaces(&self) -> &[Interface] {
        &self.interfaces
    }

    fn next_packet(&mut self) -> Result<Option<Packet<'_>>> {
        let found = match &self.state {
            State::Pcap { header } => {
                let header = *header;
                self.next_pcap(header)?
            }
            State::PcapNg { .. } => self.next_pcapng()?,
        };
        Ok(found.map(|f| {
            self.captured += 1;
            Packet {
                timestamp: f.timestamp,
                orig_len: f.orig_len,
                data: &self.buf[f.start..f.end],
                interface: f.interface,
            }
        }))
    }

    fn stats(&mut self) -> Result<SourceStats> {
        Ok(SourceStats {
            captured: self.captured,
            received: None,
            dropped: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tsresol_decimal_and_binary() {
        let micro = TsUnit::default();
        assert_eq!(micro.to_duration(1_500_000), Duration::new(1, 500_000_000));
        let nano = TsUnit {
            resol: 9,
            offset: 0,
        };
        assert_eq!(nano.to_duration(1_000_000_001), Duration::new(1, 1));
        let binary = TsUnit {
            resol: 0x80 | 10,
            offset: 0,
        };
        assert_eq!(
            binary.to_duration(1024 + 512),
            Duration::new(1, 500_000_000)
        );
        let offset = TsUnit {
            resol: 6,
            offset: 100,
        };
        assert_eq!(offset.to_duration(1), Duration::new(100, 1000));
        // Absurd resolutions do not panic.
        assert_eq!(
            TsUnit {
                resol: 30,
                offset: 0
            }
            .to_duration(5),
            Duration::ZERO
        );
        assert_eq!(
            TsUnit {
                resol: 0xff,
                offset: 0
            }
            .to_duration(5),
            Duration::ZERO
        );
    }

    /// A little-endian pcap: header with `magic` and `snaplen`, then `(sec, frac, incl,
    /// orig, data)` records.
    fn pcap(magic: u32, snaplen: u32, records: &[(u32, u32, u32, u32, &[u8])]) -> Vec<u8> {
        let mut b = magic.to_le_bytes().to_vec();
        b.extend_from_slice(&2u16.to_le_bytes());
        b.extend_from_slice(&4u16.to_le_bytes());
        for word in [0u32, 0, snaplen, 1] {
            b.extend_from_slice(&word.to_le_bytes());
        }
        for (sec, frac, incl, orig, data) in records {
            for word in [*sec, *frac, *incl, *orig] {
                b.extend_from_slice(&word.to_le_bytes());
            }
            b.extend_from_slice(data);
        }
        b
    }

    #[test]
    fn a_fraction_of_a_second_or_more_is_kept_and_counted() {
        let data = [0u8; 20];
        for (magic, frac, extra) in [
            (0xa1b2_c3d4u32, 1_500_000u32, Duration::from_millis(1500)),
            (0xa1b2_3c4d, 1_000_000_005, Duration::new(1, 5)),
            // The largest fraction: 4295 s of microseconds, no overflow.
            (
                0xa1b2_c3d4,
                u32::MAX,
                Duration::from_micros(u64::from(u32::MAX)),
            ),
        ] {
            let bytes = pcap(
                magic,
                65_535,
                &[
                    (100, 1, 20, 20, &data),
                    (200, frac, 20, 20, &data),
                    (300, 2, 20, 20, &data),
                ],
            );
            let mut source = FileSource::from_reader(io::Cursor::new(bytes), "frac").unwrap();
            let mut times = Vec::new();
            while let Some(p) = source.next_packet().unwrap() {
                times.push(p.timestamp);
            }
            assert_eq!(
                times.len(),
                3,
                "every record is read, as tcpdump reads them"
            );
            assert_eq!(times[1], Duration::from_secs(200) + extra);
            assert_eq!(source.invalid_fractions(), 1);
        }
    }

    #[test]
    fn the_original_length_is_never_rewritten() {
        let data = [7u8; 60];
        let bytes = pcap(
            0xa1b2_c3d4,
            65_535,
            &[
                (1, 0, 60, 40, &data),
                (2, 0, 60, 0, &data),
                (3, 0, 60, 1500, &data),
            ],
        );
        let mut source = FileSource::from_reader(io::Cursor::new(bytes), "len").unwrap();
        let mut lens = Vec::new();
        while let Some(p) = source.next_packet().unwrap() {
            assert_eq!(p.data.len(), 60);
            lens.push(p.orig_len);
        }
        assert_eq!(lens, [40, 0, 1500]);
    }

    #[test]
    fn a_header_snaplen_never_sizes_a_buffer() {
        // 40 bytes: a header claiming a 4 GiB snaplen, a record header claiming 15 MiB
        // (within the 16 MiB bound) and no data. Nothing is allocated for the claim.
        let bytes = pcap(0xa1b2_c3d4, u32::MAX, &[(1, 0, 15 << 20, 15 << 20, &[])]);
        assert_eq!(bytes.len(), 40);
        let mut source = FileSource::from_reader(io::Cursor::new(bytes), "tiny").unwrap();
        assert!(source.next_packet().unwrap().is_none());
        assert_eq!(
            source.truncated().map(|t| (t.offset, t.bytes)),
            Some((24, 16))
        );
        assert_eq!(source.buf.len(), BUF_SIZE, "the buffer did not grow");
        // A claim beyond the bound is corruption, whatever the header's snaplen.
        let bytes = pcap(
            0xa1b2_c3d4,
            u32::MAX,
            &[(1, 0, 0xffff_0000, 0xffff_0000, &[])],
        );
        let mut source = FileSource::from_reader(io::Cursor::new(bytes), "tiny").unwrap();
        let err = source.next_packet().unwrap_err().to_string();
        assert!(err.contains("more than 16777216"), "{err}");
        assert_eq!(source.buf.len(), BUF_SIZE);
        // A real record larger than the initial buffer still reads: the buffer grows as
        // its bytes arrive.
        let big = vec![1u8; 3 << 20];
        let bytes = pcap(0xa1b2_c3d4, 4 << 20, &[(1, 0, 3 << 20, 3 << 20, &big)]);
        let mut source = FileSource::from_reader(io::Cursor::new(bytes), "big").unwrap();
        assert_eq!(source.next_packet().unwrap().unwrap().data.len(), 3 << 20);
        assert!(source.buf.len() >= (3 << 20) + 16 && source.buf.len() <= 4 << 20);
    }

    #[test]
    fn rejects_non_capture_data() {
        let err =
            FileSource::from_reader(io::Cursor::new(b"hello world, not a pcap".to_vec()), "x")
                .unwrap_err()
                .to_string();
        assert!(err.contains("not a pcap or pcapng file"), "{err}");
        let err = FileSource::from_reader(io::Cursor::new(Vec::new()), "empty")
            .unwrap_err()
            .to_string();
        assert!(err.contains("empty"), "{err}");
    }
}

#[cfg(test)]
mod block_tests {
    use super::*;

    fn block(kind: u32, body: &[u8]) -> Vec<u8> {
        let total = (12 + body.len()) as u32;
        let mut b = kind.to_le_bytes().to_vec();
        b.extend_from_slice(&total.to_le_bytes());
        b.extend_from_slice(body);
        b.extend_from_slice(&total.to_le_bytes());
        b
    }

    /// Hand-built pcapng: no tool here writes simple packet blocks or binary resolutions.
    #[test]
    fn simple_packet_blocks_and_binary_tsresol() {
        let mut file = block(
            SHB,
            &[
                0x4D, 0x3C, 0x2B, 0x1A, 1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            ],
        );
        // IDB: Ethernet, snaplen 8, if_tsresol = 2^-10, if_name "a", end of options.
        let mut idb = vec![1, 0, 0, 0, 8, 0, 0, 0];
        idb.extend_from_slice(&[
            9,
            0,
            1,
            0,
            0x80 | 10,
            0,
            0,
            0,
            2,
            0,
            1,
            0,
            b'a',
            0,
            0,
            0,
            0,
            0,
            0,
            0,
        ]);
        file.extend(block(IDB, &idb));
        // SPB: orig_len 10, 8 bytes kept (snaplen).
        let mut spb = 10u32.to_le_bytes().to_vec();
        spb.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8]);
        file.extend(block(SPB, &spb));
        // EPB: interface 0, timestamp 1536 ticks of 1/1024 s, 3 bytes.
        let mut epb = Vec::new();
        for w in [0u32, 0, 1536, 3, 3] {
            epb.extend_from_slice(&w.to_le_bytes());
        }
        epb.extend_from_slice(&[9, 9, 9, 0]);
        file.extend(block(EPB, &epb));
        // An unknown block is skipped.
        file.extend(block(0x0BAD, &[0; 4]));

        let mut source = FileSource::from_reader(io::Cursor::new(file), "hand").unwrap();
        let p = source.next_packet().unwrap().unwrap().to_owned();
        assert_eq!(
            (p.data.as_slice(), p.orig_len, p.timestamp),
            (&[1, 2, 3, 4, 5, 6, 7, 8][..], 10, Duration::ZERO)
        );
        let p = source.next_packet().unwrap().unwrap().to_owned();
        assert_eq!(
            (p.data.as_slice(), p.timestamp),
            (&[9, 9, 9][..], Duration::new(1, 500_000_000))
        );
        assert!(source.next_packet().unwrap().is_none());
        assert_eq!(source.interfaces()[0].name, "a");
        assert_eq!(source.truncated(), None);
    }
}
