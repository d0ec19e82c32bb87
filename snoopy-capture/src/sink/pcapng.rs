//! Writing pcapng files: one interface description block per interface (pod), nanosecond
//! timestamps.

use std::borrow::Cow;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use byteorder_slice::LittleEndian;
use pcap_file::pcapng::PcapNgBlock;
use pcap_file::pcapng::blocks::interface_description::{
    InterfaceDescriptionBlock, InterfaceDescriptionOption,
};
use pcap_file::pcapng::blocks::section_header::{SectionHeaderBlock, SectionHeaderOption};
use pcap_file::{DataLink, Endianness};

use super::pcap::BUF_SIZE;
use crate::{Error, Interface, Packet, PacketSink, Result};

/// The default `shb_userappl`.
pub const DEFAULT_APPLICATION: &str = "podtracer";

/// `if_tsresol` = 9: timestamps count nanoseconds.
const TSRESOL_NANOS: u8 = 9;

/// Enhanced Packet Block type.
const EPB: u32 = 6;

/// A pcapng file: a section header, one interface description block per
/// [`add_interface`](PacketSink::add_interface) (with `if_name`, `if_description` when set,
/// `if_tsresol` = 9, snaplen and link type) and enhanced packet blocks with nanosecond
/// timestamps. Interfaces may be added at any point; each block is written when added.
///
/// Records are buffered; [`PacketSink::flush`] pushes them to the writer, after which the
/// bytes written are a complete, valid pcapng file (pcapng needs no trailer).
pub struct PcapNgSink<W: Write> {
    out: super::Counted<BufWriter<W>>,
    /// Snaplen of each interface, indexed by interface id.
    snaplens: Vec<u32>,
    /// Packets written, for the error at a timestamp pcapng cannot hold.
    packets: u64,
    name: String,
}

impl<W: Write> std::fmt::Debug for PcapNgSink<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PcapNgSink")
            .field("name", &self.name)
            .field("interfaces", &self.snaplens.len())
            .finish_non_exhaustive()
    }
}

impl PcapNgSink<File> {
    /// Creates (or truncates) the file at `path` and writes the section header.
    pub fn create(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let name = path.display().to_string();
        let file = File::create(path).map_err(|e| Error::io(format!("creating {name}"), e))?;
        Self::new(file, name)
    }
}

impl<W: Write> PcapNgSink<W> {
    /// A sink writing to `writer` with `shb_userappl` "podtracer"; `name` labels it in
    /// error messages.
    pub fn new(writer: W, name: impl Into<String>) -> Result<Self> {
        Self::with_application(writer, name, DEFAULT_APPLICATION)
    }

    /// A sink whose section header names `application` as the writer (`shb_userappl`).
    pub fn with_application(writer: W, name: impl Into<String>, application: &str) -> Result<Self> {
        let mut sink = PcapNgSink {
            out: super::Counted::new(BufWriter::with_capacity(BUF_SIZE, writer)),
            snaplens: Vec::new(),
            packets: 0,
            name: name.into(),
        };
        let section = SectionHeaderBlock {
            endianness: Endianness::Little,
            major_version: 1,
            minor_version: 0,
            section_length: -1,
            options: vec![SectionHeaderOption::UserApplication(Cow::Borrowed(
                application,
            ))],
        };
        section
            .into_block()
            .write_to::<LittleEndian, _>(&mut sink.out)
            .map_err(|e| Error::io(format!("writing {} section header", sink.name), e))?;
        Ok(sink)
    }

    /// Bytes written so far, buffered ones included: the file's size once flushed (what
    /// tcpdump's `-C` compares, as `pcap_dump_ftell`).
    pub fn position(&self) -> u64 {
        self.out.count
    }

    /// Flushes and returns the underlying writer.
    pub fn into_inner(mut self) -> Result<W> {
        self.flush()?;
        let name = self.name;
        self.out
            .inner
            .into_inner()
            .map_err(|e| Error::io(format!("writing {name}"), e.into_error()))
    }
}

impl<W: Write> PacketSink for PcapNgSink<W> {
    fn add_interface(&mut self, interface: &Interface) -> Result<u32> {
        if interface.link_type.number() > u32::from(u16::MAX) {
            return Err(Error::Unsupported(format!(
                "{}: interface {:?} has link type {}, but pcapng's link type field has 16 bits",
                self.name,
                interface.name,
                interface.link_type.number()
            )));
        }
        let mut options = vec![InterfaceDescriptionOption::IfName(Cow::Borrowed(
            &interface.name,
        ))];
        if let Some(description) = &interface.description {
            options.push(InterfaceDescriptionOption::IfDescription(Cow::Borrowed(
                description,
            )));
        }
        options.push(InterfaceDescriptionOption::IfTsResol(TSRESOL_NANOS));
        let idb = InterfaceDescriptionBlock {
            linktype: DataLink::from(interface.link_type.number()),
            snaplen: interface.snaplen,
            options,
        };
        idb.into_block()
            .write_to::<LittleEndian, _>(&mut self.out)
            .map_err(|e| {
                Error::io(
                    format!("writing {} interface {:?}", self.name, interface.name),
                    e,
                )
            })?;
        self.snaplens.push(interface.snaplen);
        Ok(self.snaplens.len() as u32 - 1)
    }

    fn write_packet(&mut self, interface: u32, packet: &Packet<'_>) -> Result<()> {
        let Some(&snaplen) = self.snaplens.get(interface as usize) else {
            return Err(super::unknown_interface(
                &self.name,
                interface,
                self.snaplens.len(),
            ));
        };
        if epb_timestamp(packet.timestamp).is_none() {
            return Err(Error::TimestampOutOfRange {
                sink: self.name.clone(),
                format: "pcapng (nanosecond)",
                timestamp: packet.timestamp,
                last: "2554-07-21T23:34:33Z",
                written: self.packets,
                hint: "no capture format podtracer writes holds it",
            });
        }
        write_epb(&mut self.out, interface, snaplen, packet)
            .map_err(|e| Error::io(format!("writing {}", self.name), e))?;
        self.packets += 1;
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        self.out
            .flush()
            .map_err(|e| Error::io(format!("flushing {}", self.name), e))
    }
}

/// A time as the 64-bit nanosecond count of an EPB (`if_tsresol` = 9); `None` after
/// 2554-07-21T23:34:33Z, where the count overflows.
pub(crate) fn epb_timestamp(timestamp: std::time::Duration) -> Option<u64> {
    u64::try_from(timestamp.as_nanos()).ok()
}

/// Writes one Enhanced Packet Block for `interface` (timestamps in nanoseconds, so the
/// interface must say `if_tsresol` = 9), keeping at most `snaplen` bytes (0 = all).
///
/// Written by hand rather than with pcap-file's EnhancedPacketBlock: its Block::write_to
/// serialises every block twice (once into io::sink() to learn the length) with one write
/// call per field, about 2x slower (65 vs 34 ns/packet, benches/writers.rs). Its timestamp
/// encoding (nanoseconds, which is right only with if_tsresol = 9, as here) is the same.
pub(crate) fn write_epb<W: Write>(
    out: &mut W,
    interface: u32,
    snaplen: u32,
    packet: &Packet<'_>,
) -> std::io::Result<()> {
    let data = match snaplen {
        0 => packet.data,
        s => &packet.data[..packet.data.len().min(s as usize)],
    };
    let caplen = data.len();
    let pad = (4 - caplen % 4) % 4;
    let total = (32 + caplen + pad) as u32;
    let ts = epb_timestamp(packet.timestamp).ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "a timestamp after 2554-07-21T23:34:33Z does not fit pcapng's 64-bit nanoseconds",
        )
    })?;
    let mut head = [0u8; 28];
    head[0..4].copy_from_slice(&EPB.to_le_bytes());
    head[4..8].copy_from_slice(&total.to_le_bytes());
    head[8..12].copy_from_slice(&interface.to_le_bytes());
    head[12..16].copy_from_slice(&((ts >> 32) as u32).to_le_bytes());
    head[16..20].copy_from_slice(&(ts as u32).to_le_bytes());
    head[20..24].copy_from_slice(&(caplen as u32).to_le_bytes());
    // The original length as given, never rewritten (tcpdump -w keeps a file's value).
    head[24..28].copy_from_slice(&packet.orig_len.to_le_bytes());
    let mut tail = [0u8; 7];
    tail[pad..pad + 4].copy_from_slice(&total.to_le_bytes());
    out.write_all(&head)?;
    out.write_all(data)?;
    out.write_all(&tail[..pad + 4])
}
