//! Throughput and latency between two pods: what `podtracer throughput` measures for one
//! ordered pair (client → server) and prints as one JSON line. A failed test is a result too
//! (`error` and `reason` set), so a matrix of pairs always has one record per pair.

use serde::{Deserialize, Serialize};

/// Transport of a throughput test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// TCP (iperf3's default).
    Tcp,
    /// UDP at a set bitrate (iperf3 `-u -b`).
    Udp,
}

/// Which way the data flows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Client to server (iperf3's default).
    Forward,
    /// Server to client (iperf3 `-R`).
    Reverse,
    /// Both at once (iperf3 `--bidir`).
    Both,
}

/// What a test was asked to do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestSettings {
    /// TCP or UDP.
    pub protocol: Protocol,
    /// Which way the data flows.
    pub direction: Direction,
    /// Parallel streams (iperf3 `-P`).
    pub streams: u32,
    /// Seconds of traffic (iperf3 `-t`).
    pub seconds: u32,
    /// Target bitrate in bits per second (UDP; `None`: iperf3's default of 1 Mbit/s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bitrate: Option<u64>,
    /// Request–response round trips measured before the throughput test (0: none).
    pub round_trips: u32,
}

/// Why a test failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureReason {
    /// The server side never listened (iperf3 missing or failing in the server's namespace).
    ServerNotListening,
    /// The server's address refused the connection (RST).
    Refused,
    /// No answer within the timeout (a firewall DROP, no route).
    Timeout,
    /// The test started but iperf3 reported an error, or its output could not be read.
    Error,
}

impl FailureReason {
    /// The reason as it is spelled in JSON (`server_not_listening`, `refused`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            FailureReason::ServerNotListening => "server_not_listening",
            FailureReason::Refused => "refused",
            FailureReason::Timeout => "timeout",
            FailureReason::Error => "error",
        }
    }
}

/// Throughput one way.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Flow {
    /// What the sender sent, in bits per second.
    pub sent_bits_per_second: f64,
    /// What the receiver received, in bits per second.
    pub received_bits_per_second: f64,
    /// TCP retransmissions the sender counted (TCP only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retransmits: Option<u64>,
    /// The sender's smoothed TCP round-trip times over the test, in microseconds (TCP only,
    /// from the kernel's TCP_INFO as iperf3 reports it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtt_us: Option<Spread>,
    /// Datagram loss and jitter (UDP only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub udp: Option<UdpLoss>,
}

/// UDP datagrams lost and their jitter, as the receiver saw them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UdpLoss {
    /// Datagrams sent.
    pub packets: u64,
    /// Datagrams that did not arrive.
    pub lost_packets: u64,
    /// `lost_packets` as a percentage of `packets`.
    pub lost_percent: f64,
    /// Inter-arrival jitter in milliseconds (RFC 1889).
    pub jitter_ms: f64,
}

/// Minimum, middle and maximum of a set of samples.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Spread {
    /// The smallest sample.
    pub min: f64,
    /// The median (or, for iperf3's RTTs, the mean of the streams' means).
    pub mid: f64,
    /// The largest sample.
    pub max: f64,
}

impl Spread {
    /// The spread of `samples`; `None` when there are none.
    pub fn of(samples: &[f64]) -> Option<Spread> {
        if samples.is_empty() {
            return None;
        }
        let mut sorted = samples.to_vec();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        let mid = if n % 2 == 1 {
            sorted[n / 2]
        } else {
            (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
        };
        Some(Spread {
            min: sorted[0],
            mid,
            max: sorted[n - 1],
        })
    }
}

/// Latency between the pair, measured on an idle path before the throughput test.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    /// Time for `connect()` to complete (SYN to SYN-ACK), in microseconds.
    pub connect_us: Spread,
    /// One-byte request, one-byte response on one connection (netperf's TCP_RR), in
    /// microseconds.
    pub round_trip_us: Spread,
    /// Round trips measured.
    pub round_trips: u32,
}

/// One test between a client and a server. Its JSON starts with `"type": "throughput"`, as
/// podtracer's flow and probe records name their type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename = "throughput")]
pub struct PairResult {
    /// The client: `NS/POD`, `pid:N` or a namespace path.
    pub client: String,
    /// The server, named the same way.
    pub server: String,
    /// The server's address the client connected to.
    pub server_address: String,
    /// The server's iperf3 port.
    pub port: u16,
    /// What was asked.
    pub settings: TestSettings,
    /// When the test started and ended, in milliseconds since the Unix epoch.
    pub started_ms: u64,
    /// See `started_ms`.
    pub ended_ms: u64,
    /// Client to server (absent with `Direction::Reverse` or on failure).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forward: Option<Flow>,
    /// Server to client (with `Direction::Reverse` or `Both`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reverse: Option<Flow>,
    /// Connect and request–response latency (absent when not asked or when it failed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency: Option<Latency>,
    /// Why the test failed (absent on success).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<FailureReason>,
    /// The failure in words (absent on success).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// iperf3's own JSON report of the test (`iperf3 -J`), unchanged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iperf3: Option<serde_json::Value>,
}

impl PairResult {
    /// Whether the test succeeded.
    pub fn ok(&self) -> bool {
        self.reason.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spreads_take_the_median_of_sorted_samples() {
        assert_eq!(Spread::of(&[]), None);
        let s = Spread::of(&[5.0, 1.0, 3.0]).unwrap();
        assert_eq!((s.min, s.mid, s.max), (1.0, 3.0, 5.0));
        let s = Spread::of(&[4.0, 1.0, 3.0, 2.0]).unwrap();
        assert_eq!((s.min, s.mid, s.max), (1.0, 2.5, 4.0));
    }

    #[test]
    fn a_failed_result_round_trips_through_json_without_empty_fields() {
        let r = PairResult {
            client: "shop/a".into(),
            server: "shop/b".into(),
            server_address: "10.0.0.2".into(),
            port: 5201,
            settings: TestSettings {
                protocol: Protocol::Tcp,
                direction: Direction::Forward,
                streams: 1,
                seconds: 1,
                bitrate: None,
                round_trips: 0,
            },
            started_ms: 1,
            ended_ms: 2,
            forward: None,
            reverse: None,
            latency: None,
            reason: Some(FailureReason::Timeout),
            error: Some("no answer".into()),
            iperf3: None,
        };
        let text = serde_json::to_string(&r).unwrap();
        assert!(
            !text.contains(r#""forward":"#) && !text.contains("null"),
            "{text}"
        );
        assert!(text.contains(r#""reason":"timeout""#), "{text}");
        assert!(text.starts_with(r#"{"type":"throughput","#), "{text}");
        assert_eq!(serde_json::from_str::<PairResult>(&text).unwrap(), r);
        assert!(!r.ok());
        for reason in [
            FailureReason::ServerNotListening,
            FailureReason::Refused,
            FailureReason::Timeout,
            FailureReason::Error,
        ] {
            assert_eq!(serde_json::to_value(reason).unwrap(), reason.as_str());
        }
    }
}
