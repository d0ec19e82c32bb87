//! Choosing and opening where captured packets go (`-w`, `--format`).

mod fan_out;
mod look;
mod rotate;

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::ValueEnum;
use snoopy_capture::PacketSink;
use snoopy_capture::decode::SummaryOptions;
use snoopy_capture::sink::kafka::{
    BatchLimits, CaptureIdentity, DeliveryHandle, KafkaPacketSink, KafkaSettings,
};
use snoopy_capture::sink::{
    FileFormat, FileRecord, JsonSink, PcapNgSink, PcapSink, RotatingSink, Rotation, TextSink,
    push_once,
};

use self::fan_out::FanOut;
pub use self::look::{LookArgs, TextLook};
use self::rotate::PostRotate;
pub use self::rotate::RotateArgs;

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
            Box::new(FanOut::new(sinks))
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
                let mut post = PostRotate::new(program.clone());
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
