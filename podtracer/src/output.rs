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
use snoopy_capture::sink::{
    FileFormat, FileRecord, JsonSink, PcapNgSink, PcapSink, RotatingSink, Rotation, TextSink,
    push_once,
};
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

    /// Verbose lines, as tcpdump's -v, for IPv4 and IPv6 with TCP, UDP or ICMP echo: the
    /// IP header (IPv4: tos, ttl, id, offset, flags, proto, length, then the packet on a
    /// second line; IPv6: class, flowlabel, hlim, next-header, payload length) and the
    /// checksums tcpdump checks. Other packets keep their usual line; -vv prints what -v
    /// prints.
    #[arg(short = 'v', action = ArgAction::Count)]
    pub verbose: u8,
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
            verbose: self.verbose,
        }
    }
}

/// tcpdump's file rotation flags (`-C`, `-G`, `-W`, `-z`), shared by `capture` and `read`.
#[derive(Debug, Clone, Default, Args)]
pub struct RotateArgs {
    /// With -w FILE: before writing a packet, start a new file when the current one is
    /// larger than SIZE millions of bytes. Files are FILE, FILE1, FILE2…; with -W N a ring
    /// FILE0…FILE{N-1} whose oldest file is overwritten.
    #[arg(short = 'C', value_name = "SIZE", value_parser = clap::value_parser!(u64).range(1..))]
    pub file_size: Option<u64>,

    /// With -w FILE: start a new file every SECS seconds (of packet time); FILE is a
    /// strftime pattern, expanded in UTC (e.g. trace-%Y%m%d-%H%M%S.pcap).
    #[arg(short = 'G', value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..))]
    pub rotate_seconds: Option<u64>,

    /// With -C: keep a ring of N files. With -G alone: stop after N files.
    #[arg(short = 'W', value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub file_count: Option<u32>,

    /// Run CMD FILE on each file rotation closes (e.g. -z gzip), as a program with that
    /// one argument, no shell; the last file, still open at the end, is left alone, as in
    /// tcpdump. podtracer waits for these commands before it exits.
    #[arg(short = 'z', value_name = "CMD")]
    pub post_rotate: Option<PathBuf>,
}

impl RotateArgs {
    /// The rotation asked for; an error for flags that need others (as tcpdump's).
    pub fn rotation(&self) -> Result<Rotation> {
        let rotation = Rotation {
            max_bytes: self.file_size.map(|m| m.saturating_mul(1_000_000)),
            every_secs: self.rotate_seconds,
            files: self.file_count,
        };
        if !rotation.is_active() {
            if self.file_count.is_some() {
                anyhow::bail!("-W needs -C or -G (it counts rotated files)");
            }
            if self.post_rotate.is_some() {
                anyhow::bail!("-z needs -C or -G (it runs on each rotated file)");
            }
        }
        Ok(rotation)
    }
}

/// Runs the `-z` command on closed files and waits for the ones still running when dropped.
struct PostRotate {
    program: PathBuf,
    running: Vec<std::process::Child>,
}

impl PostRotate {
    fn run(&mut self, file: &Path) {
        // Reap the ones that finished, so none lingers as a zombie.
        self.running
            .retain_mut(|child| matches!(child.try_wait(), Ok(None)));
        match std::process::Command::new(&self.program)
            .arg(file)
            .stdin(std::process::Stdio::null())
            .spawn()
        {
            Ok(child) => self.running.push(child),
            Err(e) => eprintln!(
                "podtracer: -z {} {}: cannot start it: {e} (is it on the PATH?)",
                self.program.display(),
                file.display()
            ),
        }
    }
}

impl Drop for PostRotate {
    fn drop(&mut self) {
        for child in &mut self.running {
            let _ = child.wait();
        }
    }
}

/// How text lines look (tcpdump's `-e`, `-S`, `-l`, `-t`, `-x`, `-X`, `-A`, `-v`).
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
    /// File rotation of the `-w` file (`-C`, `-G`, `-W`).
    pub rotation: Rotation,
    /// The `-z` command run on each rotated file.
    pub post_rotate: Option<PathBuf>,
    /// Set when `-G` with `-W` has written its last file (the capture's stop flag).
    pub stop_on_limit: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
    /// Set when `-G` with `-W` has written its last file: the packet just handed to the
    /// sink was not written, and is not to be counted.
    pub limit_reached: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// The files written (`-w`, each rotated file, `--sink file://`), for the report.
    pub written: FileRecord,
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
            rotation: Rotation::default(),
            post_rotate: None,
            stop_on_limit: None,
            limit_reached: Default::default(),
            written: FileRecord::default(),
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
                rotation: Rotation::default(),
                post_rotate: None,
                stop_on_limit: None,
                limit_reached: Default::default(),
                written: FileRecord::default(),
            };
            sinks.push(printer.open_main(text)?);
        }
        for path in &self.files {
            sinks.push(Box::new(PcapNgSink::create(path).with_context(|| {
                format!("--sink file://{}: cannot create", path.display())
            })?));
            push_once(&self.written, path);
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

    /// Adds the rotation flags; an error when they cannot apply to this output.
    pub fn with_rotation(mut self, args: &RotateArgs) -> Result<Self> {
        self.rotation = args.rotation()?;
        self.post_rotate = args.post_rotate.clone();
        if self.rotation.is_active() {
            if self.path.is_none() || !self.main {
                anyhow::bail!("-C and -G rotate the -w file: give -w FILE (not -w -)");
            }
            if !matches!(self.format, Format::Pcap | Format::Pcapng) {
                anyhow::bail!("-C and -G rotate pcap or pcapng files, not --format text or json");
            }
            if self.rotation.every_secs.is_some()
                && let Some(path) = &self.path
            {
                snoopy_capture::sink::strftime(&path.to_string_lossy(), 0)
                    .context("-G names files with strftime")?;
            }
        }
        Ok(self)
    }

    fn open_main(&self, text: TextLook) -> Result<Box<dyn PacketSink>> {
        if let (true, Some(path)) = (self.rotation.is_active(), &self.path) {
            let format = match self.format {
                Format::Pcapng => FileFormat::PcapNg,
                _ => FileFormat::Pcap,
            };
            let mut sink = RotatingSink::new(path, format, self.rotation)
                .with_context(|| format!("cannot write {}", path.display()))?
                .record_files(self.written.clone());
            if let Some(program) = &self.post_rotate {
                let mut post = PostRotate {
                    program: program.clone(),
                    running: Vec::new(),
                };
                sink = sink.on_close(Box::new(move |file| post.run(file)));
            }
            let stop = self.stop_on_limit.clone();
            let reached = self.limit_reached.clone();
            let files = self.rotation.files.unwrap_or(0);
            sink = sink.on_limit(Box::new(move || {
                eprintln!("podtracer: maximum file limit reached: {files}");
                reached.store(true, std::sync::atomic::Ordering::Relaxed);
                if let Some(stop) = &stop {
                    stop.store(true, std::sync::atomic::Ordering::Relaxed);
                }
            }));
            return Ok(Box::new(sink));
        }
        let (writer, name): (Box<dyn Write + Send>, String) = match &self.path {
            Some(path) => (
                Box::new(
                    File::create(path)
                        .with_context(|| format!("cannot create {}", path.display()))?,
                ),
                {
                    push_once(&self.written, path);
                    path.display().to_string()
                },
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
