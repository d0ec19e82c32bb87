//! What `flows` shows: finished flows as JSON lines or a top-like table on the terminal,
//! periodic snapshots and a final summary, and the same records to every `--sink`.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use anyhow::Result;
use serde::Serialize;
use snoopy_capture::flow::{
    Aggregates, DestinationSummary, FlowRecord, PairSummary, PodNames, TableStats,
};

use super::{FlowsOutput, SortBy};

/// A periodic snapshot or the final summary (JSON `"type": "snapshot" | "summary"`).
#[derive(Debug, Serialize)]
struct Snapshot<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    /// Wall clock (live) or last packet time (files), nanoseconds since the epoch.
    time_ns: u64,
    table: TableStats,
    destinations: &'a [DestinationSummary],
    pod_pairs: &'a [PairSummary],
}

/// Where records and tables go.
pub(super) struct View {
    format: FlowsOutput,
    sort: SortBy,
    top: usize,
    terminal: bool,
    out: std::io::BufWriter<std::io::Stdout>,
    aggregates: Aggregates,
    /// Finished records not yet written (JSON) — written at each flush.
    pending: Vec<FlowRecord>,
    /// The latest finished records, for the table.
    recent: std::collections::VecDeque<FlowRecord>,
    /// `--sink`s: every record, snapshot and summary as JSON.
    pub(super) sinks: crate::sinks::RecordSinks,
}

/// Records held before they are written (JSON).
const PENDING_LIMIT: usize = 1024;

/// Most destinations and pairs kept in the aggregates.
const MAX_AGGREGATE_KEYS: usize = 10_000;

impl View {
    pub(super) fn new(
        format: FlowsOutput,
        sort: SortBy,
        top: usize,
        names: PodNames,
        sinks: crate::sinks::RecordSinks,
    ) -> Self {
        View {
            format,
            sort,
            top,
            terminal: std::io::stdout().is_terminal(),
            out: std::io::BufWriter::new(std::io::stdout()),
            aggregates: Aggregates::new(names, MAX_AGGREGATE_KEYS),
            pending: Vec::new(),
            recent: std::collections::VecDeque::new(),
            sinks,
        }
    }

    pub(super) fn finished(&mut self, record: FlowRecord) {
        self.finished_as(None, record);
    }

    /// A finished record seen by pod `key` (Kafka's message key), or by the target.
    pub(super) fn finished_as(&mut self, key: Option<&str>, mut record: FlowRecord) {
        self.aggregates.add(&mut record);
        let sent = match key {
            Some(key) => self.sinks.send_as(key, "flow", &record),
            None => self.sinks.send("flow", &record),
        };
        if let Err(e) = sent {
            // A file sink that cannot be written is reported, not fatal to the capture.
            eprintln!("podtracer: {e:#}");
        }
        match self.format {
            FlowsOutput::Json => {
                self.pending.push(record);
                if self.pending.len() >= PENDING_LIMIT {
                    // Keep memory flat on big files: write out as we go. A write error
                    // shows up again at the next explicit flush.
                    let _ = self.flush_records();
                }
            }
            FlowsOutput::Table => {
                if self.recent.len() >= self.top.max(1) {
                    self.recent.pop_front();
                }
                self.recent.push_back(record);
            }
        }
    }

    pub(super) fn flush_records(&mut self) -> Result<()> {
        for record in self.pending.drain(..) {
            serde_json::to_writer(&mut self.out, &record)?;
            self.out.write_all(b"\n")?;
        }
        self.out.flush()?;
        Ok(())
    }

    fn sorted_destinations(&self, aggregates: &Aggregates) -> Vec<DestinationSummary> {
        let mut rows = aggregates.destinations();
        if self.sort == SortBy::Bytes {
            rows.sort_by_key(|r| std::cmp::Reverse(r.counts.bytes));
        }
        rows
    }

    /// A periodic snapshot: the finished aggregates plus the `open` flows, with the
    /// table's (or tables') `stats`.
    pub(super) fn snapshot(
        &mut self,
        open: Vec<FlowRecord>,
        stats: TableStats,
        label: &str,
        elapsed: Duration,
        now: Duration,
    ) -> Result<()> {
        // Open flows count in what is shown, not in the finished aggregates.
        let mut shown = self.aggregates.clone();
        let mut open_named = open;
        for r in &mut open_named {
            shown.add(r);
        }
        let json = matches!(self.format, FlowsOutput::Json);
        if !self.sinks.is_empty() || json {
            let destinations = self.sorted_destinations(&shown);
            let pairs = shown.pairs();
            let snapshot = Snapshot {
                kind: "snapshot",
                time_ns: nanos(now),
                table: stats,
                destinations: &destinations,
                pod_pairs: &pairs,
            };
            self.sinks.send("snapshot", &snapshot)?;
            if json {
                self.write_json(&snapshot)?;
            }
        }
        if !json && self.terminal {
            // Clear the screen and home the cursor, like top.
            self.out.write_all(b"\x1b[2J\x1b[H")?;
            let text = self.render(&shown, &open_named, stats, label, Some(elapsed));
            self.out.write_all(text.as_bytes())?;
            self.out.flush()?;
        }
        Ok(())
    }

    pub(super) fn summary(
        &mut self,
        stats: TableStats,
        label: &str,
        elapsed: Option<Duration>,
        now: Duration,
    ) -> Result<()> {
        let destinations = self.sorted_destinations(&self.aggregates);
        let pairs = self.aggregates.pairs();
        let summary = Snapshot {
            kind: "summary",
            time_ns: nanos(now),
            table: stats,
            destinations: &destinations,
            pod_pairs: &pairs,
        };
        self.sinks.send("summary", &summary)?;
        match self.format {
            FlowsOutput::Json => self.write_json(&summary),
            FlowsOutput::Table => {
                if self.terminal {
                    self.out.write_all(b"\x1b[2J\x1b[H")?;
                }
                let text = self.render(&self.aggregates, &[], stats, label, elapsed);
                self.out.write_all(text.as_bytes())?;
                self.out.flush()?;
                Ok(())
            }
        }
    }

    fn write_json(&mut self, value: &impl Serialize) -> Result<()> {
        serde_json::to_writer(&mut self.out, value)?;
        self.out.write_all(b"\n")?;
        self.out.flush()?;
        Ok(())
    }

    fn render(
        &self,
        aggregates: &Aggregates,
        open: &[FlowRecord],
        stats: TableStats,
        label: &str,
        elapsed: Option<Duration>,
    ) -> String {
        let mut s = String::new();
        let when = elapsed
            .map(|e| format!(", {:.0} s", e.as_secs_f64()))
            .unwrap_or_default();
        s.push_str(&format!(
            "podtracer flows: {label}{when} — {} packets, {} flows ({} open, {} evicted)\n\n",
            stats.packets, stats.flows, stats.active, stats.evicted
        ));
        s.push_str(&format!(
            "{:<30} {:>5} {:>8} {:>8} {:>6} {:>7} {:>7} {:>6} {:>7} {:>9} {:>9} {:>9} {:>7} {:>10}\n",
            "DESTINATION", "PROTO", "ATTEMPTS", "OK", "RATE", "REFUSED", "NO-ANS", "RESET", "NOREPLY",
            "RTT-P50", "RTT-P90", "RTT-P99", "RETRANS", "BYTES"
        ));
        for d in self.sorted_destinations(aggregates).iter().take(self.top) {
            let host = match &d.name {
                Some(name) => format!("{name}:{}", d.port),
                None if d.ip.is_ipv6() => format!("[{}]:{}", d.ip, d.port),
                None => format!("{}:{}", d.ip, d.port),
            };
            s.push_str(&format!(
                "{:<30} {:>5} {:>8} {:>8} {:>6} {:>7} {:>7} {:>6} {:>7} {:>9} {:>9} {:>9} {:>7} {:>10}\n",
                host,
                d.protocol.to_string(),
                d.counts.attempts,
                d.counts.successes,
                d.counts.success_rate
                    .map(|r| format!("{:.0}%", r * 100.0))
                    .unwrap_or_else(|| "-".into()),
                d.counts.failures.refused,
                d.counts.failures.unanswered,
                d.counts.failures.reset,
                d.counts.failures.no_reply,
                ms(d.counts.rtt_ns.p50),
                ms(d.counts.rtt_ns.p90),
                ms(d.counts.rtt_ns.p99),
                d.counts.retransmissions,
                d.counts.bytes
            ));
        }
        let pairs = aggregates.pairs();
        if pairs.len() > 1 || pairs.iter().any(|p| p.source.contains('/')) {
            s.push_str(&format!(
                "\n{:<40} {:>8} {:>8} {:>6} {:>9} {:>10}\n",
                "SOURCE -> DESTINATION", "ATTEMPTS", "OK", "RATE", "RTT-P50", "BYTES"
            ));
            for p in pairs.iter().take(self.top) {
                s.push_str(&format!(
                    "{:<40} {:>8} {:>8} {:>6} {:>9} {:>10}\n",
                    format!("{} -> {}", p.source, p.destination),
                    p.counts.attempts,
                    p.counts.successes,
                    p.counts
                        .success_rate
                        .map(|r| format!("{:.0}%", r * 100.0))
                        .unwrap_or_else(|| "-".into()),
                    ms(p.counts.rtt_ns.p50),
                    p.counts.bytes
                ));
            }
        }
        let mut flows: Vec<&FlowRecord> = open.iter().chain(self.recent.iter().rev()).collect();
        if !flows.is_empty() {
            match self.sort {
                SortBy::Bytes => flows.sort_by_key(|r| std::cmp::Reverse(r.bytes())),
                SortBy::Failures => flows.sort_by_key(|r| {
                    (
                        std::cmp::Reverse(r.failure().is_some()),
                        std::cmp::Reverse(r.bytes()),
                    )
                }),
            }
            s.push_str(&format!(
                "\n{:<28} {:<28} {:>5} {:<11} {:>7} {:>10} {:>9} {:>7}\n",
                "INITIATOR", "RESPONDER", "PROTO", "STATE", "PACKETS", "BYTES", "RTT", "RETRANS"
            ));
            for r in flows.iter().take(self.top) {
                let state = match (&r.tcp, r.answered) {
                    (Some(t), _) => t.outcome.as_str(),
                    (None, true) => "answered",
                    (None, false) => "no reply",
                };
                s.push_str(&format!(
                    "{:<28} {:<28} {:>5} {:<11} {:>7} {:>10} {:>9} {:>7}\n",
                    r.initiator.label(),
                    r.responder.label(),
                    r.protocol.to_string(),
                    state,
                    r.packets(),
                    r.bytes(),
                    ms(r.rtt().map(nanos)),
                    r.retransmissions()
                ));
            }
        }
        s
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Nanoseconds as milliseconds for the table.
fn ms(ns: Option<u64>) -> String {
    match ns {
        Some(ns) => format!("{:.3}ms", ns as f64 / 1e6),
        None => "-".to_string(),
    }
}
