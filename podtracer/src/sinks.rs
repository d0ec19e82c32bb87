//! `--sink URL`: where results go besides the terminal — Kafka topics (`kafka://…`) or
//! local files (`file://PATH`). Kafka's TLS and SASL settings come from the environment or
//! a settings file (see `snoopy_capture::sink::kafka::KafkaSettings::from_env`), never from
//! the command line.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;
use serde::Serialize;
use snoopy_capture::sink::kafka::{
    DeliveryHandle, DeliveryReport, KafkaRecordSink, KafkaSettings, url_with_topic,
};

/// The `--sink` options shared by `capture`, `flows` and `probe`.
#[derive(Debug, Clone, Args)]
pub struct SinkArgs {
    /// Also send results here (repeatable): `kafka://BROKER[:PORT][,BROKER…][/TOPIC]`
    /// (TLS with kafkas://; default topics snoopy.packets, snoopy.flows, snoopy.probes,
    /// snoopy.throughput) or file://PATH. Kafka TLS/SASL settings come from SNOOPY_KAFKA_*
    /// variables or the file SNOOPY_KAFKA_CONFIG names.
    #[arg(long = "sink", value_name = "URL", value_parser = parse_sink)]
    pub sinks: Vec<SinkUrl>,

    /// How long to keep sending what is buffered for Kafka once the work is done.
    #[arg(long, value_name = "DURATION", value_parser = snoopy_job::duration::parse, default_value = "10s")]
    pub sink_timeout: Duration,

    /// Bytes buffered for each Kafka sink while the brokers are slow or away; beyond it new
    /// messages are dropped (counted) so that the capture never waits.
    #[arg(long, value_name = "BYTES", default_value_t = 64 << 20)]
    pub sink_buffer: usize,

    /// Id of this run, in every Kafka message's `run` header (default: NODE-PID-TIME).
    #[arg(long, value_name = "ID", env = snoopy_job::env::RUN_ID)]
    pub run_id: Option<String>,
}

/// One `--sink`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SinkUrl {
    /// `kafka://…` or `kafkas://…`, as given (the topic may be missing: the default).
    Kafka(String),
    /// `file://PATH`.
    File(PathBuf),
}

fn parse_sink(s: &str) -> Result<SinkUrl, String> {
    if let Some(path) = s.strip_prefix("file://") {
        if path.is_empty() {
            return Err("file:// needs a path".into());
        }
        return Ok(SinkUrl::File(path.into()));
    }
    if s.starts_with("kafka://") || s.starts_with("kafkas://") {
        KafkaSettings::from_url(&url_with_topic(s, "t")).map_err(|e| e.to_string())?;
        return Ok(SinkUrl::Kafka(s.to_string()));
    }
    Err(format!(
        "{s:?}: expected kafka://BROKER[,BROKER…]/TOPIC or file://PATH"
    ))
}

impl SinkArgs {
    /// The Kafka settings of every kafka:// sink (`default_topic` when the URL has none),
    /// with TLS/SASL from the environment.
    pub fn kafka(&self, default_topic: &str) -> Result<Vec<KafkaSettings>> {
        self.sinks
            .iter()
            .filter_map(|s| match s {
                SinkUrl::Kafka(url) => Some(url),
                SinkUrl::File(_) => None,
            })
            .map(|url| {
                KafkaSettings::from_env(&url_with_topic(url, default_topic))
                    .with_context(|| format!("--sink {url}"))
            })
            .collect()
    }

    /// The file:// sinks.
    pub fn files(&self) -> Vec<PathBuf> {
        self.sinks
            .iter()
            .filter_map(|s| match s {
                SinkUrl::File(p) => Some(p.clone()),
                SinkUrl::Kafka(_) => None,
            })
            .collect()
    }

    /// The run id.
    pub fn run(&self) -> String {
        self.run_id.clone().unwrap_or_else(|| {
            let secs = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs();
            format!("{}-{}-{secs}", node_name(), std::process::id())
        })
    }
}

/// The node's name: `$NODE_NAME` (a Job sets it from the downward API), else the host name.
pub fn node_name() -> String {
    std::env::var(snoopy_job::env::NODE_NAME)
        .ok()
        .filter(|n| !n.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|h| h.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

/// Waits for every Kafka sink to send what it holds, prints one line per sink (unless
/// `quiet`) and returns the reports.
pub fn finish_all(
    deliveries: &[(String, DeliveryHandle)],
    timeout: Duration,
    quiet: bool,
) -> Vec<DeliveryReport> {
    deliveries
        .iter()
        .map(|(name, handle)| {
            let report = handle.finish(timeout);
            if !quiet {
                eprintln!("{}", describe(name, &report));
            }
            report
        })
        .collect()
}

/// `kafka://…: N sent in M messages, B buffered (unsent), D dropped`.
pub fn describe(name: &str, r: &DeliveryReport) -> String {
    let mut line = format!(
        "{name}: {} sent in {} messages, {} buffered (unsent), {} dropped",
        r.sent, r.sent_messages, r.buffered, r.dropped
    );
    if r.failed_attempts > 0 {
        line.push_str(&format!(", {} failed attempts", r.failed_attempts));
        if let Some(e) = &r.last_error {
            line.push_str(&format!(" (last: {e})"));
        }
    }
    line
}

/// The `"kafka"` member of the termination log: the reports summed.
pub fn total(reports: &[DeliveryReport]) -> Option<DeliveryReport> {
    if reports.is_empty() {
        return None;
    }
    let mut sum = DeliveryReport::default();
    for r in reports {
        sum.sent += r.sent;
        sum.sent_messages += r.sent_messages;
        sum.buffered += r.buffered;
        sum.dropped += r.dropped;
        sum.failed_attempts += r.failed_attempts;
        sum.last_error = r.last_error.clone().or(sum.last_error);
    }
    Some(sum)
}

/// JSON records (flows, probe results) to every `--sink`: Kafka messages keyed by the
/// target, or JSON lines in files.
pub struct RecordSinks {
    kafka: Vec<(String, KafkaRecordSink)>,
    files: Vec<(PathBuf, BufWriter<File>)>,
    key: String,
    timeout: Duration,
}

impl RecordSinks {
    /// Opens every sink of `args` (Kafka: connects and checks the topic, an error within
    /// seconds for bad settings); `key` is the target (`NS/POD`, `pid:N`, a netns path).
    pub fn open(args: &SinkArgs, default_topic: &str, key: &str) -> Result<Self> {
        let node = node_name();
        let run = args.run();
        let mut kafka = Vec::new();
        for settings in args.kafka(default_topic)? {
            let name = format!("kafka://{}/{}", settings.brokers.join(","), settings.topic);
            let sink = KafkaRecordSink::connect(&settings, &node, &run, args.sink_buffer)
                .with_context(|| format!("--sink {name}"))?;
            kafka.push((name, sink));
        }
        let mut files = Vec::new();
        for path in args.files() {
            let file = File::create(&path)
                .with_context(|| format!("--sink file://{}: cannot create", path.display()))?;
            files.push((path, BufWriter::new(file)));
        }
        Ok(RecordSinks {
            kafka,
            files,
            key: key.to_string(),
            timeout: args.sink_timeout,
        })
    }

    /// Whether there is any sink.
    pub fn is_empty(&self) -> bool {
        self.kafka.is_empty() && self.files.is_empty()
    }

    /// Sends one record (`kind` = its `"type"`). Never blocks on Kafka.
    pub fn send(&mut self, kind: &str, record: &impl Serialize) -> Result<()> {
        let key = std::mem::take(&mut self.key);
        let sent = self.send_as(&key, kind, record);
        self.key = key;
        sent
    }

    /// Sends one record under another key than the target's (a throughput pair's client).
    pub fn send_as(&mut self, key: &str, kind: &str, record: &impl Serialize) -> Result<()> {
        if self.is_empty() {
            return Ok(());
        }
        let json = serde_json::to_vec(record).context("encoding a record as JSON")?;
        for (_, sink) in &self.kafka {
            sink.send(key, kind, json.clone());
        }
        for (path, file) in &mut self.files {
            file.write_all(&json)
                .and_then(|()| file.write_all(b"\n"))
                .with_context(|| format!("writing {}", path.display()))?;
        }
        Ok(())
    }

    /// Flushes the files and waits (at most `--sink-timeout`) for Kafka to take the rest;
    /// prints one line per Kafka sink unless `quiet`.
    pub fn finish(&mut self, quiet: bool) -> Result<Vec<DeliveryReport>> {
        for (path, file) in &mut self.files {
            file.flush()
                .with_context(|| format!("writing {}", path.display()))?;
        }
        let handles: Vec<(String, DeliveryHandle)> = self
            .kafka
            .iter()
            .map(|(name, sink)| (name.clone(), sink.delivery()))
            .collect();
        Ok(finish_all(&handles, self.timeout, quiet))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sink_urls() {
        assert_eq!(
            parse_sink("file:///tmp/x.pcapng").unwrap(),
            SinkUrl::File("/tmp/x.pcapng".into())
        );
        assert!(matches!(
            parse_sink("kafka://a,b:9093/t").unwrap(),
            SinkUrl::Kafka(_)
        ));
        assert!(
            parse_sink("kafka://a").is_ok(),
            "the topic may be left to the default"
        );
        assert!(parse_sink("http://a/t").is_err());
        assert!(parse_sink("kafka:///t").is_err());
        assert_eq!(
            url_with_topic("kafka://a", "snoopy.flows"),
            "kafka://a/snoopy.flows"
        );
        assert_eq!(
            url_with_topic("kafka://a/", "snoopy.flows"),
            "kafka://a/snoopy.flows"
        );
        assert_eq!(url_with_topic("kafka://a/x", "snoopy.flows"), "kafka://a/x");
    }
}
