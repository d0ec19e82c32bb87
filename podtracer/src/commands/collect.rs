//! `podtracer collect`: read a Kafka topic back — packets into one pcapng (one interface per
//! pod and interface, time-ordered across pods), flow and probe records as JSON lines or a
//! summary table.

use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use snoopy_capture::sink::PcapNgSink;
use snoopy_capture::sink::kafka::{ConsumeOptions, KafkaSettings, Message, consume};
use snoopy_capture::source::FileSource;
use snoopy_capture::{Interface, OwnedPacket, PacketSink, PacketSource};

/// pcapng's section header block type, the first four bytes of every packets message.
const PCAPNG_MAGIC: [u8; 4] = [0x0a, 0x0d, 0x0d, 0x0a];

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
    };
    let stop = crate::signals::stop_on_signals()?.flag();
    let mut collector = Collector::new(&args)?;
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

/// The packets of one key, in message order.
struct KeyPackets {
    packets: std::collections::VecDeque<OwnedPacket>,
}

/// What the messages are, decided by the first one.
enum Kind {
    Unknown,
    Packets,
    Records,
}

struct Collector {
    kind: Kind,
    follow: bool,
    write: Option<PathBuf>,
    table: bool,
    /// Output interface per (key, interface name, link type).
    interfaces: HashMap<(String, String, u32), u32>,
    /// Output interfaces in order of first appearance.
    described: Vec<Interface>,
    /// Packets per key, until the end (merged by time there), when not following.
    by_key: BTreeMap<String, KeyPackets>,
    /// The pcapng output, once open (following: from the first message).
    sink: Option<Box<dyn PacketSink>>,
    /// Interfaces already added to `sink`.
    added: usize,
    records: Option<Box<dyn Write>>,
    summary: RecordsTable,
    messages: u64,
    packets: u64,
    bad: u64,
}

impl Collector {
    fn new(args: &CollectArgs) -> Result<Self> {
        let table = match args.output {
            Some(RecordsOutput::Table) => true,
            Some(RecordsOutput::Json) => false,
            None => args.write.is_none() && std::io::stdout().is_terminal(),
        };
        Ok(Collector {
            kind: Kind::Unknown,
            follow: args.follow,
            write: args.write.clone(),
            table,
            interfaces: HashMap::new(),
            described: Vec::new(),
            by_key: BTreeMap::new(),
            sink: None,
            added: 0,
            records: None,
            summary: RecordsTable::default(),
            messages: 0,
            packets: 0,
            bad: 0,
        })
    }

    fn take(&mut self, batch: Vec<Message>) -> Result<()> {
        for message in batch {
            self.messages += 1;
            if matches!(self.kind, Kind::Unknown) {
                self.kind = if message.value.starts_with(&PCAPNG_MAGIC) {
                    Kind::Packets
                } else {
                    Kind::Records
                };
            }
            match self.kind {
                Kind::Packets => self.packets_message(&message)?,
                Kind::Records | Kind::Unknown => self.record_message(&message)?,
            }
        }
        if let Some(sink) = self.sink.as_mut() {
            sink.flush()?;
        }
        if let Some(out) = self.records.as_mut() {
            out.flush()?;
        }
        Ok(())
    }

    fn packets_message(&mut self, message: &Message) -> Result<()> {
        if self.write.is_none() {
            bail!(
                "the topic holds packets (pcapng messages): give -w FILE.pcapng (or -w - for stdout)"
            );
        }
        let key = message.key.clone().unwrap_or_default();
        let mut source = match FileSource::from_reader(
            std::io::Cursor::new(message.value.clone()),
            format!("message {}/{}", message.partition, message.offset),
        ) {
            Ok(s) => s,
            Err(e) => {
                self.bad += 1;
                eprintln!("podtracer: skipping a message that is not pcapng: {e}");
                return Ok(());
            }
        };
        let mut ids = Vec::new();
        for interface in source.interfaces() {
            ids.push(self.interface_for(&key, interface));
        }
        let mut owned = Vec::new();
        loop {
            let packet = match source.next_packet() {
                Ok(Some(p)) => p,
                Ok(None) => break,
                Err(e) => {
                    self.bad += 1;
                    eprintln!(
                        "podtracer: message {}/{}: {e}",
                        message.partition, message.offset
                    );
                    break;
                }
            };
            let mut p = packet.to_owned();
            // Interfaces seen later in the message (pcapng allows it) are mapped too.
            while ids.len() < source.interfaces().len() {
                let interface = source.interfaces()[ids.len()].clone();
                ids.push(self.interface_for(&key, &interface));
            }
            p.interface = ids.get(p.interface as usize).copied().unwrap_or(0);
            owned.push(p);
        }
        self.packets += owned.len() as u64;
        if self.follow {
            self.sink_open()?;
            self.add_new_interfaces()?;
            let sink = self.sink.as_mut().expect("opened");
            for p in &owned {
                sink.write_packet(p.interface, &p.as_packet())?;
            }
        } else {
            self.by_key
                .entry(key)
                .or_insert_with(|| KeyPackets {
                    packets: Default::default(),
                })
                .packets
                .extend(owned);
        }
        Ok(())
    }

    fn interface_for(&mut self, key: &str, interface: &Interface) -> u32 {
        let ident = (
            key.to_string(),
            interface.name.clone(),
            interface.link_type.number(),
        );
        if let Some(&id) = self.interfaces.get(&ident) {
            return id;
        }
        let mut named = interface.clone();
        // One interface per pod: a plain name (eth0) gets the key in front, as podtracer
        // names the interfaces of a multi-pod capture.
        if !named.name.contains('/') && !key.is_empty() {
            named.name = format!("{key}/{}", interface.name);
        }
        let id = self.described.len() as u32;
        self.described.push(named);
        self.interfaces.insert(ident, id);
        id
    }

    fn sink_open(&mut self) -> Result<&mut Box<dyn PacketSink>> {
        if self.sink.is_none() {
            let path = self.write.as_ref().expect("checked");
            let sink: Box<dyn PacketSink> = if path.as_os_str() == "-" {
                Box::new(PcapNgSink::new(std::io::stdout(), "stdout")?)
            } else {
                Box::new(
                    PcapNgSink::create(path)
                        .with_context(|| format!("cannot create {}", path.display()))?,
                )
            };
            self.sink = Some(sink);
        }
        Ok(self.sink.as_mut().expect("just opened"))
    }

    fn add_new_interfaces(&mut self) -> Result<()> {
        let sink = self.sink.as_mut().expect("opened");
        while self.added < self.described.len() {
            let id = sink.add_interface(&self.described[self.added])?;
            debug_assert_eq!(id as usize, self.added);
            self.added += 1;
        }
        Ok(())
    }

    fn record_message(&mut self, message: &Message) -> Result<()> {
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
        let key = message.key.clone().unwrap_or_default();
        if self.table {
            self.summary.add(&key, &value);
            return Ok(());
        }
        if self.records.is_none() {
            self.records = Some(match &self.write {
                Some(path) if path.as_os_str() != "-" => Box::new(std::io::BufWriter::new(
                    std::fs::File::create(path)
                        .with_context(|| format!("cannot create {}", path.display()))?,
                )),
                _ => Box::new(std::io::BufWriter::new(std::io::stdout())),
            });
        }
        let out = self.records.as_mut().expect("opened");
        out.write_all(&message.value)?;
        out.write_all(b"\n")?;
        Ok(())
    }

    /// Writes what was gathered; returns the closing line.
    fn finish(&mut self) -> Result<String> {
        if !self.follow && !self.by_key.is_empty() {
            self.sink_open()?;
            self.add_new_interfaces()?;
            let mut keys: Vec<KeyPackets> =
                std::mem::take(&mut self.by_key).into_values().collect();
            // A k-way merge by time: across pods packets are time-ordered, and each pod's
            // packets stay in the order they were captured (even with equal timestamps).
            let mut heap = BinaryHeap::new();
            for (i, k) in keys.iter().enumerate() {
                if let Some(p) = k.packets.front() {
                    heap.push(std::cmp::Reverse((p.timestamp, i)));
                }
            }
            let sink = self.sink.as_mut().expect("opened");
            while let Some(std::cmp::Reverse((_, i))) = heap.pop() {
                let p = keys[i].packets.pop_front().expect("non-empty");
                sink.write_packet(p.interface, &p.as_packet())?;
                if let Some(next) = keys[i].packets.front() {
                    heap.push(std::cmp::Reverse((next.timestamp, i)));
                }
            }
        }
        if let Some(sink) = self.sink.as_mut() {
            sink.flush()?;
        }
        if let Some(out) = self.records.as_mut() {
            out.flush()?;
        }
        if self.table {
            let mut stdout = std::io::stdout();
            stdout.write_all(self.summary.render().as_bytes())?;
            stdout.flush()?;
        }
        let bad = if self.bad > 0 {
            format!(", {} unreadable", self.bad)
        } else {
            String::new()
        };
        Ok(match self.kind {
            Kind::Packets => format!(
                "{} messages, {} packets on {} interfaces{bad}",
                self.messages,
                self.packets,
                self.described.len()
            ),
            _ => format!("{} messages{bad}", self.messages),
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
