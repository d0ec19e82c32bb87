//! Success rates and round-trip percentiles per destination and per pod pair.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::key::Protocol;
use super::record::FlowRecord;

/// Names of known pods by IP address (`NAMESPACE/POD`), supplied by the caller (from the
/// container runtime); records whose endpoints are pod IPs are named with them.
#[derive(Debug, Clone, Default)]
pub struct PodNames(HashMap<IpAddr, String>);

impl PodNames {
    /// No names.
    pub fn new() -> Self {
        PodNames::default()
    }

    /// Adds or replaces a name.
    pub fn insert(&mut self, ip: IpAddr, name: impl Into<String>) {
        self.0.insert(ip, name.into());
    }

    /// The name of `ip`, if known.
    pub fn get(&self, ip: &IpAddr) -> Option<&str> {
        self.0.get(ip).map(String::as_str)
    }

    /// Fills in the endpoint names of a record.
    pub fn name(&self, record: &mut FlowRecord) {
        if self.0.is_empty() {
            return;
        }
        record.initiator.name = self.get(&record.initiator.ip).map(str::to_string);
        record.responder.name = self.get(&record.responder.ip).map(str::to_string);
    }
}

impl FromIterator<(IpAddr, String)> for PodNames {
    fn from_iter<I: IntoIterator<Item = (IpAddr, String)>>(iter: I) -> Self {
        PodNames(iter.into_iter().collect())
    }
}

/// Sub-buckets per power of two: values are kept to within 1/128 (< 0.8 %).
const SUB_BITS: u32 = 7;

/// A log-linear histogram of durations (HDR-style): exact below 128 ns, within 0.8 %
/// above, at most a few thousand buckets whatever the number of samples.
///
/// The buckets in use are a sorted vector: a histogram with a handful of samples (one per
/// time window in the dashboard, thousands of them) costs a few dozen bytes, not a tree node.
///
/// It serializes as its buckets, so that histograms made in different processes (the
/// dashboard's replicas) merge exactly; deserializing checks that the buckets are sorted
/// and add up to the count.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawHistogram")]
pub struct Histogram {
    /// (bucket, samples), sorted by bucket.
    buckets: Vec<(u32, u64)>,
    count: u64,
}

/// A histogram as it arrives, before its buckets are checked.
#[derive(Deserialize)]
struct RawHistogram {
    buckets: Vec<(u32, u64)>,
    count: u64,
}

impl TryFrom<RawHistogram> for Histogram {
    type Error = String;

    fn try_from(raw: RawHistogram) -> Result<Self, String> {
        if !raw.buckets.windows(2).all(|w| w[0].0 < w[1].0) {
            return Err("histogram buckets are not in increasing order".into());
        }
        let sum = raw
            .buckets
            .iter()
            .try_fold(0u64, |acc, &(_, n)| acc.checked_add(n));
        if sum != Some(raw.count) {
            return Err(format!(
                "histogram buckets hold {sum:?} samples, its count says {}",
                raw.count
            ));
        }
        Ok(Histogram {
            buckets: raw.buckets,
            count: raw.count,
        })
    }
}

impl Histogram {
    /// Bytes its buckets take on the heap (capacity, not length: what the allocator holds).
    pub fn heap_bytes(&self) -> usize {
        self.buckets.capacity() * std::mem::size_of::<(u32, u64)>()
    }

    fn bucket(ns: u64) -> u32 {
        if ns < (1 << SUB_BITS) {
            return ns as u32;
        }
        let exp = 63 - ns.leading_zeros();
        let shift = exp - SUB_BITS;
        let mantissa = (ns >> shift) & ((1 << SUB_BITS) - 1);
        ((shift + 1) << SUB_BITS) | mantissa as u32
    }

    /// The smallest value of a bucket.
    fn lower_bound(bucket: u32) -> u64 {
        let shift = bucket >> SUB_BITS;
        let mantissa = u64::from(bucket & ((1 << SUB_BITS) - 1));
        if shift == 0 {
            return mantissa;
        }
        ((1 << SUB_BITS) | mantissa) << (shift - 1)
    }

    fn add_to(&mut self, bucket: u32, n: u64) {
        match self.buckets.binary_search_by_key(&bucket, |&(b, _)| b) {
            Ok(i) => self.buckets[i].1 += n,
            Err(i) => self.buckets.insert(i, (bucket, n)),
        }
    }

    /// Adds one sample.
    pub fn record(&mut self, value: Duration) {
        let ns = u64::try_from(value.as_nanos()).unwrap_or(u64::MAX);
        self.add_to(Self::bucket(ns), 1);
        self.count += 1;
    }

    /// Samples recorded.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Adds every sample of `other` (same precision: merging is exact).
    pub fn merge(&mut self, other: &Histogram) {
        for &(bucket, n) in &other.buckets {
            self.add_to(bucket, n);
        }
        self.count += other.count;
    }

    /// Samples at or below `limit` (to the bucket's precision: a sample counts when its
    /// bucket's smallest value is), as a Prometheus histogram's cumulative `le` buckets need.
    pub fn count_at_most(&self, limit: Duration) -> u64 {
        let ns = u64::try_from(limit.as_nanos()).unwrap_or(u64::MAX);
        let limit = Self::bucket(ns);
        self.buckets
            .iter()
            .take_while(|&&(b, _)| b <= limit)
            .map(|&(_, n)| n)
            .sum()
    }

    /// The nearest-rank percentile (`p` in 0..=100): the smallest recorded value (to the
    /// bucket's precision) with at least `p` % of the samples at or below it.
    pub fn percentile(&self, p: f64) -> Option<Duration> {
        if self.count == 0 {
            return None;
        }
        let rank = ((p / 100.0) * self.count as f64).ceil().max(1.0) as u64;
        let mut seen = 0;
        for &(bucket, n) in &self.buckets {
            seen += n;
            if seen >= rank {
                return Some(Duration::from_nanos(Self::lower_bound(bucket)));
            }
        }
        self.buckets
            .last()
            .map(|&(b, _)| Duration::from_nanos(Self::lower_bound(b)))
    }

    /// p50, p90 and p99 for reports.
    pub fn summary(&self) -> Percentiles {
        let ns = |p| {
            self.percentile(p)
                .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        };
        Percentiles {
            samples: self.count,
            p50: ns(50.0),
            p90: ns(90.0),
            p99: ns(99.0),
        }
    }
}

/// Percentiles of a set of durations, in nanoseconds (`null` without samples).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Percentiles {
    /// Number of samples.
    pub samples: u64,
    /// Median.
    pub p50: Option<u64>,
    /// 90th percentile.
    pub p90: Option<u64>,
    /// 99th percentile.
    pub p99: Option<u64>,
}

/// Why attempts failed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failures {
    /// TCP: RST answering the SYN.
    pub refused: u64,
    /// TCP: SYNs never answered.
    pub unanswered: u64,
    /// TCP: reset before the handshake completed (e.g. by the initiator).
    pub reset: u64,
    /// UDP / ICMP / other: no packet came back.
    pub no_reply: u64,
}

/// Counters of one aggregate (a destination or a pod pair).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tally {
    /// Flow records counted.
    pub flows: u64,
    /// Connection attempts ([`FlowRecord::is_attempt`]).
    pub attempts: u64,
    /// Successful attempts ([`FlowRecord::is_success`]).
    pub successes: u64,
    /// Failed attempts by reason.
    pub failures: Failures,
    /// Packets both ways.
    pub packets: u64,
    /// Bytes both ways.
    pub bytes: u64,
    /// TCP retransmissions both ways.
    pub retransmissions: u64,
    /// Handshake RTTs (TCP) or first-answer delays (others).
    pub rtt: Histogram,
}

impl Tally {
    /// Counts one flow record: its traffic always, and, unless it continues an earlier
    /// record of the same connection, its attempt, outcome and round trip.
    pub fn add(&mut self, record: &FlowRecord) {
        self.flows += 1;
        self.packets += record.packets();
        self.bytes += record.bytes();
        self.retransmissions += record.retransmissions();
        // A later slice of a long flow (after an active timeout) is the same connection:
        // its traffic counts, not a new attempt.
        if record.continued || !record.is_attempt() {
            return;
        }
        self.attempts += 1;
        if record.is_success() {
            self.successes += 1;
        }
        match record.failure() {
            Some("refused") => self.failures.refused += 1,
            Some("unanswered") => self.failures.unanswered += 1,
            Some("reset") => self.failures.reset += 1,
            Some(_) => self.failures.no_reply += 1,
            None => {}
        }
        if let Some(rtt) = record.rtt() {
            self.rtt.record(rtt);
        }
    }

    /// Adds the counts of `other` (e.g. the time windows of one pair, summed for a view).
    pub fn merge(&mut self, other: &Tally) {
        self.flows += other.flows;
        self.attempts += other.attempts;
        self.successes += other.successes;
        self.failures.refused += other.failures.refused;
        self.failures.unanswered += other.failures.unanswered;
        self.failures.reset += other.failures.reset;
        self.failures.no_reply += other.failures.no_reply;
        self.packets += other.packets;
        self.bytes += other.bytes;
        self.retransmissions += other.retransmissions;
        self.rtt.merge(&other.rtt);
    }

    /// Successes over attempts (`None` without attempts).
    pub fn success_rate(&self) -> Option<f64> {
        (self.attempts > 0).then(|| self.successes as f64 / self.attempts as f64)
    }

    /// Failed attempts, all reasons.
    pub fn failed(&self) -> u64 {
        let f = &self.failures;
        f.refused + f.unanswered + f.reset + f.no_reply
    }
}

/// What a [`Tally`] says, as reports show it (the counts of a destination or a pair line).
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// Flow records counted.
    pub flows: u64,
    /// Connection attempts.
    pub attempts: u64,
    /// Successful attempts.
    pub successes: u64,
    /// `successes / attempts`, `null` without attempts.
    pub success_rate: Option<f64>,
    /// Failures by reason.
    pub failures: Failures,
    /// Packets both ways.
    pub packets: u64,
    /// Bytes both ways.
    pub bytes: u64,
    /// TCP retransmissions both ways.
    pub retransmissions: u64,
    /// Handshake RTT (TCP) / first-answer delay percentiles, nanoseconds.
    pub rtt_ns: Percentiles,
}

impl From<&Tally> for Summary {
    fn from(t: &Tally) -> Self {
        Summary {
            flows: t.flows,
            attempts: t.attempts,
            successes: t.successes,
            success_rate: t.success_rate(),
            failures: t.failures,
            packets: t.packets,
            bytes: t.bytes,
            retransmissions: t.retransmissions,
            rtt_ns: t.rtt.summary(),
        }
    }
}

/// A destination: the responder's address and port (0 for ICMP and port-less protocols).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Destination {
    /// The protocol.
    pub protocol: Protocol,
    /// The responder's address.
    pub ip: IpAddr,
    /// The responder's port.
    pub port: u16,
}

impl Destination {
    /// Where a record's attempt went: ICMP echo flows are keyed by identifier, not port, so
    /// their destination has port 0 (one per address, not one per ping).
    pub fn of(record: &FlowRecord) -> Self {
        Destination {
            protocol: record.protocol,
            ip: record.responder.ip,
            port: match record.protocol {
                Protocol::Icmp | Protocol::Icmpv6 => 0,
                _ => record.responder.port,
            },
        }
    }
}

/// One line of the per-destination report (JSON `"type": "destination"`).
#[derive(Debug, Clone, Serialize)]
pub struct DestinationSummary {
    /// Always `"destination"`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The protocol.
    pub protocol: Protocol,
    /// The responder's address.
    pub ip: IpAddr,
    /// The responder's port.
    pub port: u16,
    /// `NAMESPACE/POD` when the address is a known pod's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Its counts.
    #[serde(flatten)]
    pub counts: Summary,
}

/// One line of the per-pod-pair report (JSON `"type": "pod_pair"`); hosts that are not
/// known pods are named by their address.
#[derive(Debug, Clone, Serialize)]
pub struct PairSummary {
    /// Always `"pod_pair"`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The initiating side: `NAMESPACE/POD`, or an address.
    pub source: String,
    /// The responding side: `NAMESPACE/POD`, or an address.
    pub destination: String,
    /// Its counts.
    #[serde(flatten)]
    pub counts: Summary,
}

/// Aggregates of finished flow records per destination and per pod pair, bounded in size.
#[derive(Debug, Clone)]
pub struct Aggregates {
    names: PodNames,
    destinations: HashMap<Destination, Tally>,
    pairs: HashMap<(String, String), Tally>,
    max_keys: usize,
    overflow: u64,
}

impl Aggregates {
    /// Empty aggregates naming endpoints with `names`, keeping at most `max_keys`
    /// destinations and `max_keys` pairs (records beyond are counted in
    /// [`Aggregates::overflow`]).
    pub fn new(names: PodNames, max_keys: usize) -> Self {
        Aggregates {
            names,
            destinations: HashMap::new(),
            pairs: HashMap::new(),
            max_keys,
            overflow: 0,
        }
    }

    /// The pod names used.
    pub fn names(&self) -> &PodNames {
        &self.names
    }

    /// Records that found no room in a full aggregate map.
    pub fn overflow(&self) -> u64 {
        self.overflow
    }

    /// Counts a flow record (naming its endpoints first). Finished records are what
    /// aggregates are made of; to show open flows too, add snapshot records to a clone.
    pub fn add(&mut self, record: &mut FlowRecord) {
        self.names.name(record);
        let destination = Destination::of(record);
        let len = self.destinations.len();
        match self.destinations.get_mut(&destination) {
            Some(tally) => tally.add(record),
            None if len < self.max_keys => self
                .destinations
                .entry(destination)
                .or_default()
                .add(record),
            None => self.overflow += 1,
        }
        let pair = (record.initiator.host(), record.responder.host());
        let len = self.pairs.len();
        match self.pairs.get_mut(&pair) {
            Some(tally) => tally.add(record),
            None if len < self.max_keys => self.pairs.entry(pair).or_default().add(record),
            None => self.overflow += 1,
        }
    }

    /// The tally of one destination.
    pub fn destination(&self, destination: &Destination) -> Option<&Tally> {
        self.destinations.get(destination)
    }

    /// Per-destination summaries, most failures first, then most bytes.
    pub fn destinations(&self) -> Vec<DestinationSummary> {
        let mut out: Vec<DestinationSummary> = self
            .destinations
            .iter()
            .map(|(d, t)| DestinationSummary {
                kind: "destination",
                protocol: d.protocol,
                ip: d.ip,
                port: d.port,
                name: self.names.get(&d.ip).map(str::to_string),
                counts: Summary::from(t),
            })
            .collect();
        out.sort_by(|a, b| {
            let fa = a.counts.attempts - a.counts.successes;
            let fb = b.counts.attempts - b.counts.successes;
            fb.cmp(&fa)
                .then(b.counts.bytes.cmp(&a.counts.bytes))
                .then((a.protocol, a.ip, a.port).cmp(&(b.protocol, b.ip, b.port)))
        });
        out
    }

    /// Per-pair summaries, most failures first, then most bytes.
    pub fn pairs(&self) -> Vec<PairSummary> {
        let mut out: Vec<PairSummary> = self
            .pairs
            .iter()
            .map(|((s, d), t)| PairSummary {
                kind: "pod_pair",
                source: s.clone(),
                destination: d.clone(),
                counts: Summary::from(t),
            })
            .collect();
        out.sort_by(|a, b| {
            (b.counts.attempts - b.counts.successes)
                .cmp(&(a.counts.attempts - a.counts.successes))
                .then(b.counts.bytes.cmp(&a.counts.bytes))
                .then((&a.source, &a.destination).cmp(&(&b.source, &b.destination)))
        });
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_histogram_crosses_a_process_boundary_exactly_and_bad_ones_are_refused() {
        let mut h = Histogram::default();
        for us in [3, 250, 250, 9000] {
            h.record(Duration::from_micros(us));
        }
        let text = serde_json::to_string(&h).unwrap();
        let back: Histogram = serde_json::from_str(&text).unwrap();
        assert_eq!(back, h);
        assert_eq!(back.summary(), h.summary());
        let unsorted = r#"{"buckets":[[900,1],[800,1]],"count":2}"#;
        assert!(serde_json::from_str::<Histogram>(unsorted).is_err());
        let miscounted = r#"{"buckets":[[800,1]],"count":5}"#;
        assert!(serde_json::from_str::<Histogram>(miscounted).is_err());
    }

    #[test]
    fn histogram_buckets_round_trip_within_precision() {
        for ns in [
            0u64,
            1,
            127,
            128,
            129,
            1000,
            65_432,
            1_000_000,
            123_456_789_012,
        ] {
            let b = Histogram::bucket(ns);
            let lo = Histogram::lower_bound(b);
            assert!(lo <= ns, "{ns}: {lo}");
            assert!((ns - lo) as f64 <= ns as f64 / 128.0, "{ns}: {lo}");
            assert_eq!(Histogram::bucket(lo), b);
        }
    }

    #[test]
    fn merged_histograms_count_as_one() {
        let (mut a, mut b, mut both) = (
            Histogram::default(),
            Histogram::default(),
            Histogram::default(),
        );
        for ms in [1, 2, 3, 50] {
            a.record(Duration::from_millis(ms));
            both.record(Duration::from_millis(ms));
        }
        for ms in [4, 200] {
            b.record(Duration::from_millis(ms));
            both.record(Duration::from_millis(ms));
        }
        a.merge(&b);
        assert_eq!(a, both);
        assert_eq!(a.count_at_most(Duration::from_millis(3)), 3);
        assert_eq!(a.count_at_most(Duration::from_millis(100)), 5);
        assert_eq!(a.count_at_most(Duration::from_secs(1)), 6);
        assert_eq!(a.count_at_most(Duration::ZERO), 0);
    }

    #[test]
    fn percentiles_by_nearest_rank() {
        let mut h = Histogram::default();
        for us in 1..=100u64 {
            h.record(Duration::from_micros(us));
        }
        let near = |p: f64, want_us: u64| {
            let got = h.percentile(p).unwrap().as_nanos() as f64;
            let want = (want_us * 1000) as f64;
            assert!((want - got).abs() <= want / 128.0, "p{p}: {got} vs {want}");
        };
        near(50.0, 50);
        near(90.0, 90);
        near(99.0, 99);
        near(100.0, 100);
        assert_eq!(Histogram::default().percentile(50.0), None);
    }
}
