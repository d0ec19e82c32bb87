//! tcpdump-style text lines.

use std::io::{BufWriter, Write};

use crate::decode::{self, DecodeStats, Summarizer, SummaryOptions};
use crate::{Error, Interface, Packet, PacketSink, Result};

/// Buffer for text output; lines are small, a write(2) per 64 KiB is plenty.
const BUF_SIZE: usize = 64 * 1024;

/// One tcpdump `-n` style line per packet (see [`crate::decode::Summarizer`]), to any writer.
///
/// With [`TextSink::prefix_interface`], each line starts with the packet's interface name;
/// multi-pod captures name interfaces `NS/POD` so lines read `shop/web-0 12:34:56.789012 IP ...`.
/// Output is buffered: call [`PacketSink::flush`] (or set [`TextSink::line_buffered`], like
/// tcpdump `-l`) to see lines as they come.
pub struct TextSink<W: Write> {
    out: BufWriter<W>,
    interfaces: Vec<Interface>,
    summarizer: Summarizer,
    prefix: bool,
    line_buffered: bool,
    /// Reused for every line, so formatting allocates only until it has grown once.
    line: String,
    stats: DecodeStats,
    name: String,
}

impl<W: Write> std::fmt::Debug for TextSink<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TextSink")
            .field("name", &self.name)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl<W: Write> TextSink<W> {
    /// A sink with tcpdump's default look; `name` labels the writer in error messages.
    pub fn new(writer: W, name: impl Into<String>) -> Self {
        TextSink {
            out: BufWriter::with_capacity(BUF_SIZE, writer),
            interfaces: Vec::new(),
            summarizer: Summarizer::new(SummaryOptions::default()),
            prefix: false,
            line_buffered: false,
            line: String::with_capacity(256),
            stats: DecodeStats::default(),
            name: name.into(),
        }
    }

    /// Sets the summary options (timestamp precision, `-e`, `-S`, ...).
    pub fn with_options(mut self, options: SummaryOptions) -> Self {
        self.summarizer = Summarizer::new(options);
        self
    }

    /// Starts every line with the interface name and a space.
    pub fn prefix_interface(mut self, prefix: bool) -> Self {
        self.prefix = prefix;
        self
    }

    /// Flushes after every line.
    pub fn line_buffered(mut self, line_buffered: bool) -> Self {
        self.line_buffered = line_buffered;
        self
    }

    /// Counts of packets decoded and malformed so far.
    pub fn stats(&self) -> DecodeStats {
        self.stats
    }

    /// Flushes and returns the writer.
    pub fn into_inner(mut self) -> Result<W> {
        self.flush()?;
        let name = self.name;
        self.out
            .into_inner()
            .map_err(|e| Error::io(format!("writing {name}"), e.into_error()))
    }
}

impl<W: Write> PacketSink for TextSink<W> {
    fn add_interface(&mut self, interface: &Interface) -> Result<u32> {
        self.interfaces.push(interface.clone());
        Ok(self.interfaces.len() as u32 - 1)
    }

    fn write_packet(&mut self, interface: u32, packet: &Packet<'_>) -> Result<()> {
        let Some(iface) = self.interfaces.get(interface as usize) else {
            return Err(super::unknown_interface(
                &self.name,
                interface,
                self.interfaces.len(),
            ));
        };
        let decoded = decode::decode(iface.link_type, packet.data);
        self.stats.record(&decoded);
        self.line.clear();
        if self.prefix {
            self.line.push_str(&iface.name);
            self.line.push(' ');
        }
        self.summarizer.write_line(&mut self.line, packet, &decoded);
        self.line.push('\n');
        self.out
            .write_all(self.line.as_bytes())
            .map_err(|e| Error::io(format!("writing {}", self.name), e))?;
        if self.line_buffered {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        self.out
            .flush()
            .map_err(|e| Error::io(format!("flushing {}", self.name), e))
    }
}
