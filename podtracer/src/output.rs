//! Choosing and opening where captured packets go (`-w`, `--format`).

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::{ArgAction, Args, ValueEnum};
use snoopy_capture::decode::{Payload, SummaryOptions, TimeFormat, TimestampPrecision};
use snoopy_capture::sink::kafka::{
    BatchLimits, CaptureIdentity, DeliveryHandle, KafkaPacketSink, KafkaSettings,
};
use snoopy_capture::sink::{JsonSink, PcapNgSink, PcapSink, TextSink};
use snoopy_capture::{Interface, Packet, PacketSink};

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

/// tcpdump's flags for how text lines look, shared by `capture` and `read`.
#[derive(Debug, Clone, Default, Args)]
pub struct LookArgs {
    /// Time format, as tcpdump: -t none, -tt seconds since the epoch, -ttt since the
    /// previous packet, -tttt date and time, -ttttt since the first packet (all UTC).
    #[arg(short = 't', action = ArgAction::Count)]
    pub time: u8,

    /// Print each packet's bytes in hex after its line, from the network layer on
    /// (-xx: from the link-level header on).
    #[arg(short = 'x', action = ArgAction::Count)]
    pub hex: u8,

    /// Print each packet's bytes in hex and ASCII after its line, from the network layer
    /// on (-XX: from the link-level header on).
    #[arg(short = 'X', action = ArgAction::Count)]
    pub hex_ascii: u8,

    /// Print each packet's bytes as ASCII after its line (tcpdump's -A; -A itself is
    /// --all-namespaces, as in kubectl). Given twice: from the link-level header on.
    #[arg(long = "ascii", action = ArgAction::Count)]
    pub ascii: u8,

    /// Timestamps with nanoseconds (tcpdump's --nano).
    #[arg(long = "nano")]
    pub nano: bool,
}

impl LookArgs {
    /// The summary options these flags ask for, on top of `-e` and `-S`. As in tcpdump,
    /// -X wins over -x, and either over the ASCII dump.
    pub fn options(&self, link_header: bool, absolute_seq: bool) -> SummaryOptions {
        let (payload, count) = if self.hex_ascii > 0 {
            (Payload::HexAscii, self.hex_ascii)
        } else if self.hex > 0 {
            (Payload::Hex, self.hex)
        } else if self.ascii > 0 {
            (Payload::Ascii, self.ascii)
        } else {
            (Payload::None, 0)
        };
        SummaryOptions {
            precision: if self.nano {
                TimestampPrecision::Nano
            } else {
                TimestampPrecision::Micro
            },
            time: TimeFormat::from_t_count(self.time),
            link_header,
            absolute_seq,
            payload,
            payload_link: count > 1,
        }
    }
}

/// How text lines look (tcpdump's `-e`, `-S`, `-l`, `-t`, `-x`, `-X`, `-A`).
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
    /// Everything else about the lines (time format, payload dumps); its `link_header`
    /// and `absolute_seq` are replaced by the fields above.
    pub summary: SummaryOptions,
}

/// Where and how to write: the resolved `-w`, `--format` and `--print`.
#[derive(Debug, Clone)]
pub struct OutputSpec {
    /// Also print text lines on stdout while writing a file (tcpdump's `--print`).
    pub print: bool,
    /// The format.
    pub format: Format,
    /// The file, or `None` for stdout (`-w -` or no `-w`).
    pub path: Option<PathBuf>,
    /// Whether the main output (the file, or stdout) is written at all: not when only
    /// `--sink`s are given.
    pub main: bool,
    /// Kafka topics (`--sink kafka://…`).
    pub kafka: Vec<KafkaSettings>,
    /// pcapng files (`--sink file://…`).
    pub files: Vec<PathBuf>,
    /// Node, run and default key of the Kafka messages.
    pub identity: CaptureIdentity,
    /// Bytes each Kafka sink buffers while the brokers are away.
    pub kafka_buffer: usize,
}

/// The opened sinks: what packets go to, and the Kafka sinks' handles for the final flush.
pub struct Opened {
    /// Every sink, behind one.
    pub sink: Box<dyn PacketSink>,
    /// `(name, handle)` of each Kafka sink.
    pub deliveries: Vec<(String, DeliveryHandle)>,
}

impl OutputSpec {
    /// Without `-w`: text on stdout. With `-w FILE`: pcap, or pcapng for a `.pcapng` name
    /// or when capturing several pods (only pcapng attributes each packet to its pod);
    /// `--format` overrides either.
    pub fn resolve(write: Option<&Path>, format: Option<Format>, many: bool, print: bool) -> Self {
        let path = write
            .filter(|p| *p != Path::new("-"))
            .map(Path::to_path_buf);
        let format = format.unwrap_or(match write {
            None => Format::Text,
            Some(_) if many => Format::Pcapng,
            Some(p) if p.extension().is_some_and(|e| e == "pcapng") => Format::Pcapng,
            Some(_) => Format::Pcap,
        });
        OutputSpec {
            print: print && write.is_some(),
            format,
            path,
            main: true,
            kafka: Vec::new(),
            files: Vec::new(),
            identity: CaptureIdentity::default(),
            kafka_buffer: BatchLimits::default().buffer_bytes,
        }
    }

    /// Adds the `--sink`s. Without `-w`, only they are written (and text lines on stdout
    /// only with `--print`).
    pub fn with_sinks(
        mut self,
        write: Option<&Path>,
        print: bool,
        kafka: Vec<KafkaSettings>,
        files: Vec<PathBuf>,
        identity: CaptureIdentity,
    ) -> Self {
        if (!kafka.is_empty() || !files.is_empty()) && write.is_none() {
            self.main = false;
            self.print = print;
        }
        self.kafka = kafka;
        self.files = files;
        self.identity = identity;
        self
    }

    /// Whether any `--sink` is given.
    pub fn has_sinks(&self) -> bool {
        !self.kafka.is_empty() || !self.files.is_empty()
    }

    /// Whether text lines go to stdout (then stdout may be a terminal).
    pub fn is_text_on_stdout(&self) -> bool {
        self.print
            || (self.main
                && self.path.is_none()
                && matches!(self.format, Format::Text | Format::Json))
    }

    /// Opens the sinks (Kafka ones connect now: bad settings fail here, within seconds).
    /// Output is buffered; `flush` on the sink pushes it out.
    pub fn open(&self, text: TextLook) -> Result<Opened> {
        let mut sinks: Vec<Box<dyn PacketSink>> = Vec::new();
        if self.main {
            sinks.push(self.open_main(text)?);
        }
        if self.print {
            let printer = OutputSpec {
                print: false,
                format: Format::Text,
                path: None,
                main: true,
                kafka: Vec::new(),
                files: Vec::new(),
                identity: CaptureIdentity::default(),
                kafka_buffer: 0,
            };
            sinks.push(printer.open_main(text)?);
        }
        for path in &self.files {
            sinks.push(Box::new(PcapNgSink::create(path).with_context(|| {
                format!("--sink file://{}: cannot create", path.display())
            })?));
        }
        let mut deliveries = Vec::new();
        for settings in &self.kafka {
            let name = format!("kafka://{}/{}", settings.brokers.join(","), settings.topic);
            let sink = KafkaPacketSink::connect(
                settings,
                self.identity.clone(),
                BatchLimits {
                    buffer_bytes: self.kafka_buffer,
                    ..BatchLimits::default()
                },
            )
            .with_context(|| format!("--sink {name}"))?;
            deliveries.push((name, sink.delivery()));
            sinks.push(Box::new(sink));
        }
        let sink = if sinks.len() == 1 {
            sinks.pop().expect("one sink")
        } else {
            Box::new(FanOut {
                sinks,
                ids: Vec::new(),
            })
        };
        Ok(Opened { sink, deliveries })
    }

    fn open_main(&self, text: TextLook) -> Result<Box<dyn PacketSink>> {
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
                        ..text.summary
                    })
                    .prefix_interface(text.prefix_interface)
                    .line_buffered(text.line_buffered),
            ),
            Format::Json => Box::new(JsonSink::new(writer, name)),
        })
    }
}

/// Several sinks fed the same packets (a file and the terminal, for `-w FILE --print`).
struct FanOut {
    sinks: Vec<Box<dyn PacketSink>>,
    /// For each interface id handed out, the id each sink gave it.
    ids: Vec<Vec<u32>>,
}

impl PacketSink for FanOut {
    fn add_interface(&mut self, interface: &Interface) -> snoopy_capture::Result<u32> {
        let ids = self
            .sinks
            .iter_mut()
            .map(|sink| sink.add_interface(interface))
            .collect::<snoopy_capture::Result<Vec<u32>>>()?;
        self.ids.push(ids);
        Ok(self.ids.len() as u32 - 1)
    }

    fn write_packet(&mut self, interface: u32, packet: &Packet<'_>) -> snoopy_capture::Result<()> {
        let ids = self.ids.get(interface as usize).ok_or_else(|| {
            snoopy_capture::Error::Unsupported(format!(
                "output: packet of interface {interface}, but only {} were added",
                self.ids.len()
            ))
        })?;
        for (sink, id) in self.sinks.iter_mut().zip(ids) {
            sink.write_packet(*id, packet)?;
        }
        Ok(())
    }

    fn flush(&mut self) -> snoopy_capture::Result<()> {
        self.sinks.iter_mut().try_for_each(|sink| sink.flush())
    }
}
