//! Choosing and opening where captured packets go (`-w`, `--format`).

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::ValueEnum;
use snoopy_capture::PacketSink;
use snoopy_capture::decode::SummaryOptions;
use snoopy_capture::sink::{JsonSink, PcapNgSink, PcapSink, TextSink};

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// One tcpdump-style line per packet.
    Text,
    /// One JSON object per line.
    Json,
    /// pcap with nanosecond timestamps (what tcpdump -w writes, at higher resolution).
    Pcap,
    /// pcapng, one interface block per captured interface.
    Pcapng,
}

/// How text lines look (tcpdump's `-e`, `-S`, `-l`).
#[derive(Debug, Clone, Copy, Default)]
pub struct TextLook {
    /// Print the link-level header (`-e`).
    pub link_header: bool,
    /// Absolute TCP sequence numbers (`-S`).
    pub absolute_seq: bool,
    /// Start each line with the interface (pod) name.
    pub prefix_interface: bool,
    /// Flush after every line (`-l`, or stdout is a terminal).
    pub line_buffered: bool,
}

/// Where and how to write: the resolved `-w` and `--format`.
#[derive(Debug, Clone)]
pub struct OutputSpec {
    /// The format.
    pub format: Format,
    /// The file, or `None` for stdout (`-w -` or no `-w`).
    pub path: Option<PathBuf>,
}

impl OutputSpec {
    /// Without `-w`: text on stdout. With `-w FILE`: pcap, or pcapng for a `.pcapng` name;
    /// `--format` overrides either.
    pub fn resolve(write: Option<&Path>, format: Option<Format>) -> Self {
        let path = write
            .filter(|p| *p != Path::new("-"))
            .map(Path::to_path_buf);
        let format = format.unwrap_or(match write {
            None => Format::Text,
            Some(p) if p.extension().is_some_and(|e| e == "pcapng") => Format::Pcapng,
            Some(_) => Format::Pcap,
        });
        OutputSpec { format, path }
    }

    /// Whether packets go to stdout as text (then stdout may be a terminal).
    pub fn is_text_on_stdout(&self) -> bool {
        self.path.is_none() && matches!(self.format, Format::Text | Format::Json)
    }

    /// Opens the sink. Output is buffered; `flush` on the sink pushes it out.
    pub fn open(&self, text: TextLook) -> Result<Box<dyn PacketSink>> {
        let (writer, name): (Box<dyn Write + Send>, String) = match &self.path {
            Some(path) => (
                Box::new(
                    File::create(path)
                        .with_context(|| format!("cannot create {}", path.display()))?,
                ),
                path.display().to_string(),
            ),
            None => (Box::new(io::stdout()), "stdout".to_string()),
        };
        Ok(match self.format {
            Format::Pcap => Box::new(PcapSink::new(writer, name)),
            Format::Pcapng => Box::new(PcapNgSink::new(writer, name)?),
            Format::Text => Box::new(
                TextSink::new(writer, name)
                    .with_options(SummaryOptions {
                        link_header: text.link_header,
                        absolute_seq: text.absolute_seq,
                        ..SummaryOptions::default()
                    })
                    .prefix_interface(text.prefix_interface)
                    .line_buffered(text.line_buffered),
            ),
            Format::Json => Box::new(JsonSink::new(writer, name)),
        })
    }
}
