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
    /// A job serving several pods (a per-node Job): each pod's counts, problems first, as
    /// many as fit in the termination message ([`Report::with_pods`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pods: Vec<PodCount>,
    /// Pods whose counts did not fit.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub pods_omitted: u32,
}

/// One pod's counts in a job that served several, written compactly —
/// `["UID8",captured,dropped]`, with a fourth element for flags — so that a hundred pods fit
/// in a 4 KiB termination message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "PodCountWire", into = "PodCountWire")]
pub struct PodCount {
    /// The pod's UID as 8 hex digits of a hash of it ([`PodCount::key`]): short enough for
    /// a hundred pods in 4 KiB, and unique among the pods of a node in practice (32 bits;
    /// UIDs that share a prefix still differ).
    pub uid: String,
    /// Packets written for it (flows: packets seen).
    pub captured: u64,
    /// Packets the kernel dropped on its socket.
    pub dropped: u64,
    /// The pod went away during the job; what it captured until then was written.
    pub gone: bool,
    /// It could not be captured at all (its error is in the job's log).
    pub failed: bool,
}

impl PodCount {
    /// The short key of a pod UID: 8 hex digits of its 32-bit FNV-1a hash.
    pub fn key(uid: &str) -> String {
        let mut h: u32 = 0x811c_9dc5;
        for b in uid.bytes() {
            h ^= u32::from(b);
            h = h.wrapping_mul(0x0100_0193);
        }
        format!("{h:08x}")
    }

    /// The counts of the pod with UID `uid`.
    pub fn new(uid: &str, captured: u64, dropped: u64) -> Self {
        Self {
            uid: Self::key(uid),
            captured,
            dropped,
            gone: false,
            failed: false,
        }
    }

    /// Whether this entry is the pod with the full UID `uid`.
    pub fn is_pod(&self, uid: &str) -> bool {
        self.uid == Self::key(uid)
    }
}

const GONE: u8 = 1;
const FAILED: u8 = 2;

#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum PodCountWire {
    Flagged(String, u64, u64, u8),
    Plain(String, u64, u64),
}

impl From<PodCountWire> for PodCount {
    fn from(wire: PodCountWire) -> Self {
        let (uid, captured, dropped, flags) = match wire {
            PodCountWire::Flagged(u, c, d, f) => (u, c, d, f),
            PodCountWire::Plain(u, c, d) => (u, c, d, 0),
        };
        Self {
            uid,
            captured,
            dropped,
            gone: flags & GONE != 0,
            failed: flags & FAILED != 0,
        }
    }
}

impl From<PodCount> for PodCountWire {
    fn from(p: PodCount) -> Self {
        let flags = u8::from(p.gone) * GONE + u8::from(p.failed) * FAILED;
        if flags == 0 {
            Self::Plain(p.uid, p.captured, p.dropped)
        } else {
            Self::Flagged(p.uid, p.captured, p.dropped, flags)
        }
    }
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

    /// The termination message's size: kubelet keeps at most 4096 bytes of it; the report
    /// stays below this.
    pub const MESSAGE_BYTES: usize = 4000;

    /// Sets `pods` to as many of `counts` as fit in the termination message next to what
    /// the report already holds (call it last), problems (failed, gone) first, counting the
    /// rest in `pods_omitted`.
    pub fn with_pods(mut self, counts: impl IntoIterator<Item = PodCount>) -> Self {
        let mut counts: Vec<PodCount> = counts.into_iter().collect();
        counts.sort_by_key(|c| (!c.failed, !c.gone));
        // `,"pods":[…],"pods_omitted":NNNNNNNNNN`
        let mut used = self.to_json().len() + 40;
        for count in counts {
            let size = serde_json::to_string(&count).map_or(usize::MAX, |s| s.len() + 1);
            if used + size <= Self::MESSAGE_BYTES {
                used += size;
                self.pods.push(count);
            } else {
                self.pods_omitted += 1;
            }
        }
        self
    }

    /// The report as podtracer writes it (one JSON line; [`Self::with_files`] and
    /// [`Self::with_pods`] keep it within the 4 KiB termination message).
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
    fn a_hundred_pods_fit_next_to_a_ring_of_files() {
        let uid = |n: usize| format!("{n:08x}-1111-2222-3333-444455556666");
        let counts = (0..100).map(|n| {
            let mut c = PodCount::new(&uid(n), 4_000_000_000 + n as u64, 12_345);
            c.gone = n == 57;
            c.failed = n == 99;
            c
        });
        let report = Report {
            captured: Some(400_000_000_000),
            received: Some(400_000_000_000),
            dropped: Some(1_234_500),
            ..Report::default()
        }
        .with_files((0..10).map(|n| format!("node-worker-0042_1733300000.pcapng{n}")))
        .with_pods(counts);
        let json = report.to_json();
        assert!(json.len() <= Report::MESSAGE_BYTES, "{} bytes", json.len());
        assert_eq!((report.pods.len(), report.pods_omitted), (100, 0));
        let read = Report::parse(&json);
        assert_eq!(read, report);
        // Problems first, then in the order given.
        assert!(read.pods[0].failed && read.pods[1].gone);
        assert!(read.pods[1].is_pod(&uid(57)) && !read.pods[1].is_pod(&uid(58)));
        assert_eq!(read.pods[2].captured, 4_000_000_000);
        let first = PodCount::key(&uid(0));
        assert!(
            json.contains(&format!(r#"["{first}",4000000000,12345]"#)),
            "{json}"
        );
    }

    #[test]
    fn pods_that_do_not_fit_are_counted_problems_kept() {
        let counts = (0..400).map(|n| {
            let mut c = PodCount::new(&format!("{n:08x}"), 1, 0);
            c.gone = n % 100 == 99;
            c
        });
        let report = Report::default()
            .with_files((0..1000).map(|n| format!("{n:0>40}")))
            .with_pods(counts);
        assert!(report.to_json().len() <= Report::MESSAGE_BYTES);
        assert_eq!(report.pods.len() as u32 + report.pods_omitted, 400);
        assert!(report.pods_omitted > 0);
        assert_eq!(
            report.pods.iter().filter(|p| p.gone).count(),
            4,
            "gone first"
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
