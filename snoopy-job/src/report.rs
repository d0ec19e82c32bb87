//! What podtracer writes to `--termination-log` when it ends: the counters the operator
//! reads back from the container's termination message into the CR's status.

use serde::{Deserialize, Serialize};

/// The end-of-job report: `{"captured":N,"received":M,"dropped":K}`, plus
/// `"target_gone":true` when the pod went away during the job, and `"kafka":{…}` with a
/// Kafka sink.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// Packets delivered to the output (flows: packets seen).
    pub captured: Option<u64>,
    /// Packets that passed the filter (tcpdump's "received by filter").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub received: Option<u64>,
    /// Packets the kernel dropped (ring full).
    pub dropped: Option<u64>,
    /// The job ended because the target pod's interface went away (the pod was deleted);
    /// what was captured until then was written.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub target_gone: bool,
    /// What the Kafka sink(s) delivered, summed, when there was one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kafka: Option<KafkaReport>,
    /// The files written (names, without the directory), as many as fit in
    /// [`Report::FILES_BYTES`]; the rest are counted in `files_omitted`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<String>,
    /// Files written but not named (the termination message holds 4 KiB in all).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub files_omitted: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// A Kafka sink's delivery counts: packets or records.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct KafkaReport {
    /// Acknowledged by the brokers.
    pub sent: u64,
    /// Messages they came in.
    pub sent_messages: u64,
    /// Still buffered (unsent) when podtracer had to end.
    pub buffered: u64,
    /// Dropped because the buffer was full.
    pub dropped: u64,
    /// Produce attempts that failed and were retried.
    pub failed_attempts: u64,
}

impl Report {
    /// Bytes of file names a report carries at most.
    pub const FILES_BYTES: usize = 2048;

    /// Sets `files` to the names in `names`, in order, as many as fit in
    /// [`Self::FILES_BYTES`], counting the rest in `files_omitted`.
    pub fn with_files(mut self, names: impl IntoIterator<Item = String>) -> Self {
        let mut used = 0;
        for name in names {
            if used + name.len() <= Self::FILES_BYTES {
                used += name.len();
                self.files.push(name);
            } else {
                self.files_omitted += 1;
            }
        }
        self
    }

    /// The report as podtracer writes it (one JSON line; the termination message holds
    /// 4 KiB, which this never nears).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a report serializes")
    }

    /// Reads a termination message: the JSON report, else tcpdump's closing lines (`N
    /// packets captured`, `N packets dropped by kernel`), which the log tail holds when
    /// podtracer failed before writing its report.
    pub fn parse(message: &str) -> Self {
        if let Some(report) = Self::parse_json(message) {
            return report;
        }
        Self {
            captured: number_before(message, " packets captured")
                .or_else(|| number_before(message, " packet captured")),
            received: number_before(message, " packets received by filter"),
            dropped: number_before(message, " packets dropped by kernel")
                .or_else(|| number_before(message, " packet dropped by kernel")),
            ..Self::default()
        }
    }

    /// The JSON report, if `message` is one.
    pub fn parse_json(message: &str) -> Option<Self> {
        serde_json::from_str(message.trim()).ok()
    }
}

fn number_before(text: &str, suffix: &str) -> Option<u64> {
    let end = text.rfind(suffix)?;
    let head = &text[..end];
    let start = head
        .rfind(|c: char| !c.is_ascii_digit())
        .map_or(0, |i| i + 1);
    head[start..].parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_podtracer_writes_the_operator_reads() {
        let report = Report {
            captured: Some(50),
            received: Some(52),
            dropped: Some(0),
            target_gone: true,
            kafka: Some(KafkaReport {
                sent: 50,
                sent_messages: 3,
                ..KafkaReport::default()
            }),
            ..Report::default()
        };
        assert_eq!(Report::parse(&report.to_json()), report);
        let files = Report::default().with_files(["a.pcapng0".to_owned(), "a.pcapng1".to_owned()]);
        assert_eq!(
            Report::parse(&files.to_json()).files,
            ["a.pcapng0", "a.pcapng1"]
        );
        let many = Report::default().with_files((0..1000).map(|n| format!("{n:0>40}")));
        assert_eq!(
            (many.files.len(), many.files_omitted),
            (
                Report::FILES_BYTES / 40,
                1000 - (Report::FILES_BYTES / 40) as u32
            )
        );
        assert!(many.to_json().len() < 4096, "fits a termination message");
        let plain = Report {
            captured: Some(3),
            received: Some(3),
            dropped: Some(0),
            ..Report::default()
        };
        assert_eq!(
            plain.to_json(),
            r#"{"captured":3,"received":3,"dropped":0}"#
        );
    }

    #[test]
    fn tcpdumps_closing_lines_are_read_when_there_is_no_report() {
        let log = "podtracer: capturing\n7 packets captured\n9 packets received by filter\n1 packet dropped by kernel\npodtracer: the pod is gone\n";
        assert_eq!(
            Report::parse(log),
            Report {
                captured: Some(7),
                received: Some(9),
                dropped: Some(1),
                ..Report::default()
            }
        );
        assert_eq!(Report::parse("no counts"), Report::default());
    }
}
