//! Writing classic pcap files with nanosecond timestamps.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use pcap_file::pcap::PcapHeader;
use pcap_file::{DataLink, Endianness, TsResolution};

use crate::{Error, Interface, LinkType, Packet, PacketSink, Result};

/// Output buffer size: at 240 kpps of ~100-byte packets this is a write(2) every ~40 packets
/// at worst, ~4 ms of traffic, small enough to lose little when killed without a flush.
pub(crate) const BUF_SIZE: usize = 1 << 20;

/// The largest link type a pcap header holds: libpcap reads the top 6 bits of the field as
/// the FCS length (`LT_LINKTYPE` masks them off).
pub(crate) const MAX_PCAP_LINKTYPE: u32 = 0x03FF_FFFF;

/// A pcap file (magic `0xa1b23c4d`: nanosecond timestamps, little-endian).
///
/// pcap holds one link type: every interface added must have the link type of the first
/// (adding one with another link type is [`Error::Unsupported`]; use
/// [`PcapNgSink`](super::PcapNgSink) for mixed captures). The file header is written when
/// the first interface is added, since it carries the link type and snaplen; the snaplen is
/// the largest of the interfaces added before the first packet, and a later interface with
/// a larger one is refused, because libpcap cuts records longer than the header's snaplen.
///
/// Records are buffered; [`PacketSink::flush`] pushes them to the writer, after which the
/// bytes written are a complete, valid pcap file.
pub struct PcapSink<W: Write> {
    out: super::Counted<BufWriter<W>>,
    /// Link type and snaplen, once the header is decided.
    link: Option<(LinkType, u32)>,
    header_written: bool,
    interfaces: u32,
    /// Packets written, for the error at a timestamp pcap cannot hold.
    packets: u64,
    name: String,
}

impl<W: Write> std::fmt::Debug for PcapSink<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PcapSink")
            .field("name", &self.name)
            .field("link", &self.link)
            .field("interfaces", &self.interfaces)
            .finish_non_exhaustive()
    }
}

impl PcapSink<File> {
    /// Creates (or truncates) the file at `path`.
    pub fn create(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let name = path.display().to_string();
        let file = File::create(path).map_err(|e| Error::io(format!("creating {name}"), e))?;
        Ok(Self::new(file, name))
    }
}

impl<W: Write> PcapSink<W> {
    /// A sink writing to `writer`; `name` labels it in error messages (`-` for stdout).
    pub fn new(writer: W, name: impl Into<String>) -> Self {
        PcapSink {
            out: super::Counted::new(BufWriter::with_capacity(BUF_SIZE, writer)),
            link: None,
            header_written: false,
            interfaces: 0,
            packets: 0,
            name: name.into(),
        }
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

    fn write_header(&mut self) -> Result<()> {
        let Some((link, snaplen)) = self.link else {
            return Ok(());
        };
        let header = PcapHeader {
            snaplen,
            datalink: DataLink::from(link.number()),
            ts_resolution: TsResolution::NanoSecond,
            endianness: Endianness::Little,
            ..PcapHeader::default()
        };
        header
            .write_to(&mut self.out)
            .map_err(|e| Error::pcap(format!("writing {} header", self.name), e))?;
        self.header_written = true;
        Ok(())
    }
}

impl<W: Write> PacketSink for PcapSink<W> {
    fn add_interface(&mut self, interface: &Interface) -> Result<u32> {
        if interface.link_type.number() > MAX_PCAP_LINKTYPE {
            return Err(Error::Unsupported(format!(
                "{}: interface {:?} has link type {}, more than pcap's 26 bits (the bits above \
                 hold the FCS length)",
                self.name,
                interface.name,
                interface.link_type.number()
            )));
        }
        match &mut self.link {
            None => self.link = Some((interface.link_type, interface.snaplen)),
            Some((link, _)) if *link != interface.link_type => {
                return Err(Error::Unsupported(format!(
                    "{}: a pcap file holds one link type; interface {:?} is {}, the file is {}; write pcapng to mix them",
                    self.name, interface.name, interface.link_type, link
                )));
            }
            Some((_, snaplen)) if !self.header_written => {
                *snaplen = (*snaplen).max(interface.snaplen)
            }
            Some((_, snaplen)) if interface.snaplen > *snaplen => {
                return Err(Error::Unsupported(format!(
                    "{}: interface {:?} has snaplen {}, but the pcap header already says {}; write pcapng, or add all interfaces before the first packet",
                    self.name, interface.name, interface.snaplen, snaplen
                )));
            }
            Some(_) => {}
        }
        self.interfaces += 1;
        Ok(self.interfaces - 1)
    }

    fn write_packet(&mut self, interface: u32, packet: &Packet<'_>) -> Result<()> {
        if interface >= self.interfaces {
            return Err(super::unknown_interface(
                &self.name,
                interface,
                self.interfaces as usize,
            ));
        }
        if !self.header_written {
            self.write_header()?;
        }
        // tcpdump and editcap write the low 32 bits of such a time (2107 reads back as 1971);
        // refusing it, with what was written so far, is the only way not to lie.
        let secs =
            u32::try_from(packet.timestamp.as_secs()).map_err(|_| Error::TimestampOutOfRange {
                sink: self.name.clone(),
                format: "pcap",
                timestamp: packet.timestamp,
                last: "2106-02-07T06:28:15Z",
                written: self.packets,
                hint: "write pcapng (-w FILE.pcapng), which holds it",
            })?;
        let data = match self.link.map_or(0, |(_, s)| s) {
            // A snaplen of 0 means no limit, as in libpcap (a pcapng interface may say 0).
            0 => packet.data,
            snaplen => &packet.data[..packet.data.len().min(snaplen as usize)],
        };
        // One 16-byte header and one data copy into the buffer. pcap-file's
        // PcapPacket::write_to makes four write calls per header and validates against the
        // header again; this is the same layout in two calls, 27 vs 36 ns/packet (benches/writers.rs).
        let caplen = data.len() as u32;
        let mut header = [0u8; 16];
        header[0..4].copy_from_slice(&secs.to_le_bytes());
        header[4..8].copy_from_slice(&packet.timestamp.subsec_nanos().to_le_bytes());
        header[8..12].copy_from_slice(&caplen.to_le_bytes());
        // The original length as given, never rewritten (tcpdump -w keeps a file's value).
        header[12..16].copy_from_slice(&packet.orig_len.to_le_bytes());
        self.out
            .write_all(&header)
            .and_then(|()| self.out.write_all(data))
            .map_err(|e| Error::io(format!("writing {}", self.name), e))?;
        self.packets += 1;
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        // A file with interfaces but no packet yet is still a valid (empty) capture.
        if !self.header_written && self.link.is_some() {
            self.write_header()?;
        }
        self.out
            .flush()
            .map_err(|e| Error::io(format!("flushing {}", self.name), e))
    }
}
