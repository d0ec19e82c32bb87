//! `podtracer collect`: read a Kafka topic back — packets into one pcapng (one interface per
//! pod and interface, time-ordered across pods), flow and probe records as JSON lines or a
//! summary table.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use snoopy_capture::sink::PcapNgSink;
use snoopy_capture::sink::kafka::merge::{
    MessagePackets, PCAPNG_MAGIC, PodInterfaces, merge_by_time, message_packets,
};
use snoopy_capture::sink::kafka::{ConsumeOptions, KafkaSettings, Message, consume};
use snoopy_capture::{Interface, OwnedPacket, PacketSink};

/// Arguments of `podtracer collect`.
#[derive(Debug, Args)]
pub struct CollectArgs {
    /// The topic: `kafka://BROKER[:PORT][,BROKER…]/TOPIC` (kafkas:// for TLS; TLS/SASL settings
    /// from SNOOPY_KAFKA_* variables, as for --sink).
    #[arg(value_name = "URL")]
    pub url: String,

    /// Only the messages of this key (NS/POD, pid:N, a netns path).
    #[arg(long, value_name = "KEY")]
    pub key: Option<String>,

    /// Only messages from this time on: RFC 3339 (2024-05-01T12:00:00Z) or an age (10m, 2h).
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,

    /// Keep reading new messages until interrupted (packets are then written in arrival
    /// order, message by message, instead of merged by time).
    #[arg(short = 'f', long)]
    pub follow: bool,

    /// Write packets to this pcapng file (`-` = stdout), or records as JSON lines.
    #[arg(short = 'w', value_name = "FILE")]
    pub write: Option<PathBuf>,

    /// Records (flows, probes): JSON lines (default when stdout is not a terminal) or a
    /// summary table.
    #[arg(short = 'o', long = "output", value_enum, value_name = "FORMAT")]
    pub output: Option<RecordsOutput>,
}

/// How records are shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RecordsOutput {
    /// One JSON record per line, as produced.
    Json,
    /// Success rate per destination / probe target, and the top talkers.
    Table,
}

/// Runs `collect`.
pub fn run(args: CollectArgs) -> Result<ExitCode> {
    let settings = KafkaSettings::from_env(&args.url)?;
    let since = args.since.as_deref().map(parse_since).transpose()?;
    let options = ConsumeOptions {
        key: args.key.clone(),
        since,
        follow: args.follow,
        share: None,
    };
    let stop = crate::signals::stop_on_signals()?.flag();
    let mut collector = Collector::new(&args);
    consume(&settings, &options, &stop, |batch| collector.take(batch))??;
    let summary = collector.finish()?;
    eprintln!("podtracer: {summary}");
    Ok(ExitCode::SUCCESS)
}

/// `--since`: an RFC 3339 time or an age before now.
fn parse_since(text: &str) -> Result<chrono::DateTime<chrono::Utc>> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&chrono::Utc));
    }
    let age = snoopy_job::duration::parse(text).map_err(|e| {
        anyhow::anyhow!("--since {text:?}: neither an RFC 3339 time nor an age ({e})")
    })?;
    Ok(chrono::Utc::now() - chrono::Duration::from_std(age).context("--since: too long ago")?)
}

/// What the command line asks for; what it means depends on what the topic holds.
struct Options {
    follow: bool,
    /// `-w`: the pcapng file (required for packets) or the JSON lines file (`-` = stdout).
    write: Option<PathBuf>,
    /// Records as a summary table instead of JSON lines (printed at the end in any case).
    table: bool,
}

struct Collector {
    options: Options,
    /// What the topic holds: `None` until its first message says.
    topic: Option<Topic>,
    messages: u64,
}

/// What the topic holds, decided by its first message.
enum Topic {
    /// pcapng messages (podtracer capture --sink kafka://…).
    Packets(Packets),
    /// JSON flow and probe records.
    Records(Records),
}

impl Collector {
    fn new(args: &CollectArgs) -> Self {
        let table = match args.output {
            Some(RecordsOutput::Table) => true,
            Some(RecordsOutput::Json) => false,
            None => args.write.is_none() && std::io::stdout().is_terminal(),
        };
        Collector {
            options: Options {
                follow: args.follow,
                write: args.write.clone(),
                table,
            },
            topic: None,
            messages: 0,
        }
    }

    fn take(&mut self, batch: Vec<Message>) -> Result<()> {
        for message in batch {
            self.messages += 1;
            let topic = match &mut self.topic {
                Some(topic) => topic,
                None => self.topic.insert(Topic::decide(&message, &self.options)?),
            };
            match topic {
                Topic::Packets(packets) => packets.message(&message)?,
                Topic::Records(records) => records.message(&message)?,
            }
        }
        match &mut self.topic {
            Some(Topic::Packets(packets)) => packets.flush(),
            Some(Topic::Records(records)) => records.flush(),
            None => Ok(()),
        }
    }

    /// Writes what was gathered; returns the closing line.
    fn finish(self) -> Result<String> {
        let messages = self.messages;
        let (line, table) = match self.topic {
            None => (format!("{messages} messages"), None),
            Some(Topic::Packets(packets)) => (packets.finish(messages)?, None),
            Some(Topic::Records(records)) => records.finish(messages)?,
        };
        if self.options.table {
            // Shown without records too: an empty topic at a terminal still gets the header.
            let mut stdout = std::io::stdout();
            stdout.write_all(table.unwrap_or_default().render().as_bytes())?;
            stdout.flush()?;
        }
        Ok(line)
    }
}

impl Topic {
    /// Packets when the first message is pcapng, records otherwise.
    fn decide(first: &Message, options: &Options) -> Result<Self> {
        Ok(if first.value.starts_with(&PCAPNG_MAGIC) {
            Topic::Packets(Packets::new(options)?)
        } else {
            Topic::Records(Records::new(options))
        })
    }
}

/// `, N unreadable` for the closing line, when some messages were.
fn unreadable(bad: u64) -> String {
    if bad > 0 {
        format!(", {bad} unreadable")
    } else {
        String::new()
    }
}

/// A packets topic, written to one pcapng file with one interface per pod and interface.
struct Packets {
    /// The pcapng file (`-` = stdout).
    path: PathBuf,
    interfaces: PodInterfaces,
    output: PacketsOutput,
    packets: u64,
    bad: u64,
}

/// When packets are written.
enum PacketsOutput {
    /// At the end, each key's packets (in message order) merged by time.
    Merge(BTreeMap<String, VecDeque<OwnedPacket>>),
    /// Message by message (`--follow`), to a file created at the first readable message.
    Follow(Option<PcapWriter>),
}

impl Packets {
    fn new(options: &Options) -> Result<Self> {
        let Some(path) = options.write.clone() else {
            bail!(
                "the topic holds packets (pcapng messages): give -w FILE.pcapng (or -w - for stdout)"
            );
        };
        Ok(Packets {
            path,
            interfaces: PodInterfaces::default(),
            output: if options.follow {
                PacketsOutput::Follow(None)
            } else {
                PacketsOutput::Merge(BTreeMap::new())
            },
            packets: 0,
            bad: 0,
        })
    }

    fn message(&mut self, message: &Message) -> Result<()> {
        let key = message.key.clone().unwrap_or_default();
        let owned = match message_packets(message, &mut self.interfaces) {
            Ok(MessagePackets { packets, error }) => {
                if let Some(e) = error {
                    self.bad += 1;
                    eprintln!(
                        "podtracer: message {}/{}: {e}",
                        message.partition, message.offset
                    );
                }
                packets
            }
            Err(e) => {
                self.bad += 1;
                eprintln!("podtracer: skipping a message that is not pcapng: {e}");
                return Ok(());
            }
        };
        self.packets += owned.len() as u64;
        match &mut self.output {
            PacketsOutput::Follow(writer) => {
                let writer = match writer {
                    Some(writer) => writer,
                    None => writer.insert(PcapWriter::create(&self.path)?),
                };
                writer.add_interfaces(self.interfaces.described())?;
                for p in &owned {
                    writer.write(p)?;
                }
            }
            PacketsOutput::Merge(by_key) => by_key.entry(key).or_default().extend(owned),
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        match &mut self.output {
            PacketsOutput::Follow(Some(writer)) => writer.flush(),
            PacketsOutput::Follow(None) | PacketsOutput::Merge(_) => Ok(()),
        }
    }

    /// Writes the merged packets (when not following); returns the closing line.
    fn finish(self, messages: u64) -> Result<String> {
        match self.output {
            PacketsOutput::Merge(by_key) if !by_key.is_empty() => {
                let mut writer = PcapWriter::create(&self.path)?;
                writer.add_interfaces(self.interfaces.described())?;
                merge_by_time(by_key.into_values().collect(), |p| writer.write(&p))?;
                writer.flush()?;
            }
            PacketsOutput::Follow(Some(mut writer)) => writer.flush()?,
            PacketsOutput::Merge(_) | PacketsOutput::Follow(None) => {}
        }
        Ok(format!(
            "{messages} messages, {} packets on {} interfaces{}",
            self.packets,
            self.interfaces.described().len(),
            unreadable(self.bad)
        ))
    }
}

/// The open pcapng output.
struct PcapWriter {
    sink: Box<dyn PacketSink>,
    /// How many of the described interfaces `sink` has been given.
    added: usize,
}

impl PcapWriter {
    fn create(path: &Path) -> Result<Self> {
        let sink: Box<dyn PacketSink> = if path.as_os_str() == "-" {
            Box::new(PcapNgSink::new(std::io::stdout(), "stdout")?)
        } else {
            Box::new(
                PcapNgSink::create(path)
                    .with_context(|| format!("cannot create {}", path.display()))?,
            )
        };
        Ok(PcapWriter { sink, added: 0 })
    }

    /// Gives the sink the interfaces described since the last call.
    fn add_interfaces(&mut self, described: &[Interface]) -> Result<()> {
        for interface in described.iter().skip(self.added) {
            let id = self.sink.add_interface(interface)?;
            debug_assert_eq!(id as usize, self.added);
            self.added += 1;
        }
        Ok(())
    }

    fn write(&mut self, p: &OwnedPacket) -> Result<()> {
        Ok(self.sink.write_packet(p.interface, &p.as_packet())?)
    }

    fn flush(&mut self) -> Result<()> {
        Ok(self.sink.flush()?)
    }
}

/// A records topic: JSON lines (flows, probes) passed through, or summed into a table.
struct Records {
    shown: Shown,
    bad: u64,
}

/// How records are shown.
enum Shown {
    /// Summed, the table printed at the end.
    Table(RecordsTable),
    /// One JSON line per record, as produced.
    Lines {
        /// `-w FILE`; stdout when `None`.
        file: Option<PathBuf>,
        /// The output, created at the first readable record.
        out: Option<Box<dyn Write>>,
    },
}

impl Records {
    fn new(options: &Options) -> Self {
        let shown = if options.table {
            Shown::Table(RecordsTable::default())
        } else {
            Shown::Lines {
                file: options.write.clone().filter(|path| path.as_os_str() != "-"),
                out: None,
            }
        };
        Records { shown, bad: 0 }
    }

    fn message(&mut self, message: &Message) -> Result<()> {
        let value: serde_json::Value = match serde_json::from_slice(&message.value) {
            Ok(v) => v,
            Err(e) => {
                self.bad += 1;
                eprintln!(
                    "podtracer: message {}/{} is neither pcapng nor JSON: {e}",
                    message.partition, message.offset
                );
                return Ok(());
            }
        };
        match &mut self.shown {
            Shown::Table(table) => {
                table.add(&message.key.clone().unwrap_or_default(), &value);
            }
            Shown::Lines { file, out } => {
                let out = match out {
                    Some(out) => out,
                    None => out.insert(match file {
                        Some(path) => Box::new(std::io::BufWriter::new(
                            std::fs::File::create(&*path)
                                .with_context(|| format!("cannot create {}", path.display()))?,
                        )),
                        None => Box::new(std::io::BufWriter::new(std::io::stdout())),
                    }),
                };
                out.write_all(&message.value)?;
                out.write_all(b"\n")?;
            }
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        if let Shown::Lines { out: Some(out), .. } = &mut self.shown {
            out.flush()?;
        }
        Ok(())
    }

    /// Flushes the lines; returns the closing line and the table to print.
    fn finish(mut self, messages: u64) -> Result<(String, Option<RecordsTable>)> {
        self.flush()?;
        let line = format!("{messages} messages{}", unreadable(self.bad));
        Ok(match self.shown {
            Shown::Table(table) => (line, Some(table)),
            Shown::Lines { .. } => (line, None),
        })
    }
}

/// The summary of flow and probe records.
#[derive(Default)]
struct RecordsTable {
    /// Per (source key, destination): attempts, successes, from the latest summary or
    /// snapshot of each key, plus probe results.
    destinations: BTreeMap<(String, String), (u64, u64)>,
    /// Latest summary/snapshot destinations per key (a later one replaces an earlier one).
    latest: BTreeMap<String, Vec<(String, u64, u64)>>,
    /// Bytes per (initiator, responder), from flow records.
    talkers: HashMap<(String, String), u64>,
}

fn endpoint(v: &serde_json::Value) -> String {
    let name = v.get("name").and_then(|n| n.as_str());
    let ip = v.get("ip").and_then(|n| n.as_str()).unwrap_or("?");
    let port = v.get("port").and_then(|n| n.as_u64()).unwrap_or(0);
    let addr = if ip.contains(':') {
        format!("[{ip}]:{port}")
    } else {
        format!("{ip}:{port}")
    };
    match name {
        Some(n) => format!("{n} ({addr})"),
        None => addr,
    }
}

impl RecordsTable {
    fn add(&mut self, key: &str, v: &serde_json::Value) {
        let u = |v: &serde_json::Value, k: &str| v.get(k).and_then(|x| x.as_u64()).unwrap_or(0);
        match v.get("type").and_then(|t| t.as_str()) {
            Some("probe") => {
                let check = v.get("check").and_then(|c| c.as_str()).unwrap_or("?");
                let target = v.get("target").and_then(|c| c.as_str()).unwrap_or("?");
                let e = self
                    .destinations
                    .entry((key.to_string(), format!("{check} {target}")))
                    .or_default();
                e.0 += u(v, "attempts");
                e.1 += u(v, "successes");
            }
            Some("summary" | "snapshot") => {
                let rows = v
                    .get("destinations")
                    .and_then(|d| d.as_array())
                    .map(|rows| {
                        rows.iter()
                            .map(|r| {
                                let proto =
                                    r.get("protocol").and_then(|p| p.as_str()).unwrap_or("?");
                                (
                                    format!("{proto} {}", endpoint(r)),
                                    u(r, "attempts"),
                                    u(r, "successes"),
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                self.latest.insert(key.to_string(), rows);
            }
            Some("flow") => {
                let (Some(i), Some(r)) = (v.get("initiator"), v.get("responder")) else {
                    return;
                };
                let bytes = v.get("fwd").map_or(0, |d| u(d, "bytes"))
                    + v.get("rev").map_or(0, |d| u(d, "bytes"));
                *self.talkers.entry((endpoint(i), endpoint(r))).or_default() += bytes;
            }
            _ => {}
        }
    }

    fn render(&self) -> String {
        let mut rows: BTreeMap<(String, String), (u64, u64)> = self.destinations.clone();
        for (key, dests) in &self.latest {
            for (dest, attempts, successes) in dests {
                let e = rows.entry((key.clone(), dest.clone())).or_default();
                e.0 += attempts;
                e.1 += successes;
            }
        }
        let mut s = format!(
            "{:<28} {:<44} {:>8} {:>8} {:>6}\n",
            "SOURCE", "DESTINATION", "ATTEMPTS", "OK", "RATE"
        );
        for ((key, dest), (attempts, ok)) in &rows {
            let rate = if *attempts == 0 {
                "-".to_string()
            } else {
                format!("{:.0}%", *ok as f64 * 100.0 / *attempts as f64)
            };
            s.push_str(&format!(
                "{key:<28} {dest:<44} {attempts:>8} {ok:>8} {rate:>6}\n"
            ));
        }
        if !self.talkers.is_empty() {
            let mut talkers: Vec<_> = self.talkers.iter().collect();
            talkers.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
            s.push_str(&format!(
                "\n{:<36} {:<36} {:>12}\n",
                "TOP TALKERS: INITIATOR", "RESPONDER", "BYTES"
            ));
            for ((i, r), bytes) in talkers.into_iter().take(20) {
                s.push_str(&format!("{i:<36} {r:<36} {bytes:>12}\n"));
            }
        }
        s
    }
}
