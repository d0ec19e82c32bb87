//! The aggregates: every conversation (source host → destination host, protocol and port)
//! and every probe check counted per time window, conversations with their recent failures;
//! capture runs; throughput pairs; what was read and dropped. Bounded twice: at most
//! `max_conversations` and `max_probes` keys (the least recently seen evicted, and counted,
//! to make room), and at most `max_bytes` of aggregates (estimated as they grow: past it the
//! oldest windows of every key go first, so memory pressure shortens the history shown
//! rather than losing pairs; see [`Store::memory_bytes`]).
//!
//! Time is the data's time (flow records carry capture timestamps, probe reports the time
//! their Kafka message was sent, or else the time they were read): windows age out relative
//! to the newest record seen, so a replayed file shows as it happened.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::IpAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use snoopy_capture::flow::{Destination, FlowRecord, FxBuildHasher, Histogram, Protocol, Tally};
use snoopy_job::throughput::PairResult;

use crate::input::{InputError, Origin, ProbeAttempt, ProbeRecord, Record};

/// How much the store keeps.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Width of a time window.
    pub window: Duration,
    /// How far back windows are kept (relative to the newest record).
    pub retention: Duration,
    /// Conversations kept at most.
    pub max_conversations: usize,
    /// Probe checks kept at most.
    pub max_probes: usize,
    /// Failed flows kept per conversation (the most recent).
    pub failed_per_conversation: usize,
    /// Capture runs (on `snoopy.packets`) kept at most.
    pub max_runs: usize,
    /// Throughput pairs (client, server) kept at most.
    pub max_throughput_pairs: usize,
    /// Bytes of conversation and probe aggregates kept at most (an estimate from the
    /// sizes and capacities of what they hold; the process's resident memory is this plus
    /// the allocator's overhead and the fixed part, measured by `make bench-dashboard`).
    pub max_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            window: Duration::from_secs(10),
            retention: Duration::from_secs(3600),
            max_conversations: 20_000,
            max_probes: 2_000,
            failed_per_conversation: 20,
            max_runs: 500,
            max_throughput_pairs: 10_000,
            max_bytes: 256 << 20,
        }
    }
}

/// One conversation: who talked to which service.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConversationKey {
    /// The initiator: `NAMESPACE/POD`, or its address.
    pub source: String,
    /// The responder: `NAMESPACE/POD`, or its address.
    pub destination: String,
    /// The protocol.
    pub protocol: Protocol,
    /// The responder's address.
    pub ip: IpAddr,
    /// The responder's port (0 for ICMP and port-less protocols).
    pub port: u16,
}

/// A failed attempt, as the page lists it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FailedFlow {
    /// When the attempt started, nanoseconds since the Unix epoch.
    pub time_ns: u64,
    /// The protocol.
    pub protocol: Protocol,
    /// `host:port` of the initiator.
    pub initiator: String,
    /// `host:port` of the responder.
    pub responder: String,
    /// `refused`, `unanswered`, `reset` or `no_reply`.
    #[serde(deserialize_with = "outcome")]
    pub outcome: Outcome,
    /// The node that saw it, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
}

/// A failed attempt's outcome: one of four names. (An alias, so that serde does not take a
/// `&'static str` field as one borrowed from its input.)
pub type Outcome = &'static str;

/// A failed attempt's outcome, read back as one of the four names it can have.
fn outcome<'de, D: serde::Deserializer<'de>>(d: D) -> Result<&'static str, D::Error> {
    const OUTCOMES: [&str; 4] = ["refused", "unanswered", "reset", "no_reply"];
    let name = String::deserialize(d)?;
    OUTCOMES
        .into_iter()
        .find(|o| *o == name)
        .ok_or_else(|| serde::de::Error::unknown_variant(&name, &OUTCOMES))
}

impl FailedFlow {
    fn heap_bytes(&self) -> usize {
        self.initiator.capacity()
            + self.responder.capacity()
            + self.node.as_ref().map_or(0, String::capacity)
    }
}

/// Counters that only grow, for Prometheus (windows age out; counters must not).
#[derive(Debug, Clone, Default)]
pub struct Lifetime {
    /// TCP handshakes by result: `success`, `refused`, `unanswered`, `reset`.
    pub handshakes: BTreeMap<&'static str, u64>,
    /// TCP handshake round trips.
    pub handshake_rtt: Histogram,
    /// Their sum, ns (a Prometheus histogram's `_sum`).
    pub handshake_rtt_sum_ns: u64,
    /// TCP retransmissions both ways.
    pub retransmissions: u64,
    /// Bytes initiator → responder.
    pub bytes_egress: u64,
    /// Bytes responder → initiator.
    pub bytes_ingress: u64,
}

/// What the store keeps of one conversation.
#[derive(Debug, Clone, Default)]
pub struct Conversation {
    /// Window start (ns since the epoch) → counts, oldest first.
    pub windows: VecDeque<(u64, Tally)>,
    /// The most recent failures, oldest first.
    pub failed: VecDeque<FailedFlow>,
    /// Nodes that reported it.
    pub nodes: Vec<String>,
    /// Newest record time, ns.
    pub last_ns: u64,
    /// Counters since the dashboard started.
    pub lifetime: Lifetime,
    /// What it holds, bytes (estimated; see [`Store::memory_bytes`]).
    pub bytes: usize,
}

impl Conversation {
    /// The heap it holds, bytes, from its collections' capacities.
    fn heap_bytes(&self) -> usize {
        self.windows.capacity() * size_of::<(u64, Tally)>()
            + self
                .windows
                .iter()
                .map(|(_, t)| t.rtt.heap_bytes())
                .sum::<usize>()
            + self.failed.capacity() * size_of::<FailedFlow>()
            + self
                .failed
                .iter()
                .map(FailedFlow::heap_bytes)
                .sum::<usize>()
            + strings_bytes(&self.nodes)
            + self.lifetime.handshakes.len() * MAP_ENTRY_BYTES
            + self.lifetime.handshake_rtt.heap_bytes()
    }
}

/// What a B-tree map entry costs beyond its key and value, roughly (its node's share).
const MAP_ENTRY_BYTES: usize = 48;

/// The heap of a list of strings (its capacity counts, hence the `Vec`).
fn strings_bytes(list: &Vec<String>) -> usize {
    list.capacity() * size_of::<String>() + list.iter().map(String::capacity).sum::<usize>()
}

/// A probe check, keyed by the pod that ran it, the check and its target.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProbeKey {
    /// The pod (or target) that ran the check: the record's origin key, `-` if unknown.
    pub source: String,
    /// `tcp`, `http` or `dns`.
    pub check: String,
    /// The target as given.
    pub target: String,
}

/// Probe attempts counted: one time window's, or a check's since the dashboard started.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProbeCounts {
    /// Attempts.
    pub attempts: u64,
    /// Successful attempts.
    pub successes: u64,
    /// Failed attempts by reason.
    pub failures: BTreeMap<String, u64>,
    /// Latencies of the successful attempts.
    pub latency: Histogram,
    /// Their sum, ns.
    pub latency_sum_ns: u64,
}

impl ProbeCounts {
    fn add(&mut self, attempt: &ProbeAttempt) {
        self.attempts += 1;
        if attempt.ok {
            self.successes += 1;
            if let Some(ns) = attempt.latency_ns {
                self.latency.record(Duration::from_nanos(ns));
                self.latency_sum_ns += ns;
            }
        } else {
            let reason = attempt.reason.as_deref().unwrap_or("error");
            *self.failures.entry(reason.to_string()).or_default() += 1;
        }
    }

    /// Adds the counts of `other`.
    pub fn merge(&mut self, other: &ProbeCounts) {
        self.attempts += other.attempts;
        self.successes += other.successes;
        for (reason, n) in &other.failures {
            *self.failures.entry(reason.clone()).or_default() += n;
        }
        self.latency.merge(&other.latency);
        self.latency_sum_ns += other.latency_sum_ns;
    }

    fn heap_bytes(&self) -> usize {
        self.failures
            .keys()
            .map(|k| k.capacity() + MAP_ENTRY_BYTES)
            .sum::<usize>()
            + self.latency.heap_bytes()
    }
}

/// What the store keeps of one probe check.
#[derive(Debug, Clone, Default)]
pub struct ProbeTally {
    /// Window start (ns since the epoch) → counts, oldest first.
    pub windows: VecDeque<(u64, ProbeCounts)>,
    /// Counters since the dashboard started (for Prometheus: windows age out).
    pub lifetime: ProbeCounts,
    /// Addresses the attempts went to (`ip:port`), to set the check beside the passive
    /// numbers of the same destination.
    pub addresses: Vec<String>,
    /// Nodes that reported it.
    pub nodes: Vec<String>,
    /// When it was last reported, ns.
    pub last_ns: u64,
    /// What it holds, bytes (estimated).
    pub bytes: usize,
}

impl ProbeTally {
    fn heap_bytes(&self) -> usize {
        self.windows.capacity() * size_of::<(u64, ProbeCounts)>()
            + self
                .windows
                .iter()
                .map(|(_, c)| c.heap_bytes())
                .sum::<usize>()
            + self.lifetime.heap_bytes()
            + strings_bytes(&self.addresses)
            + strings_bytes(&self.nodes)
    }
}

/// The latest throughput test of one ordered pair (`snoopy.throughput`), without iperf3's
/// own report (kept on Kafka: it is most of the record's size).
#[derive(Debug, Clone)]
pub struct ThroughputCell {
    /// The test.
    pub result: PairResult,
    /// The node that ran it.
    pub node: Option<String>,
    /// Tests of this pair seen.
    pub tests: u64,
    /// Of those, failed.
    pub failed: u64,
}

/// A capture run seen on `snoopy.packets` (its messages' headers: the packets stay on Kafka
/// until someone downloads them).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RunTally {
    /// Packets per key (`NS/POD`, or the target podtracer was given).
    pub keys: BTreeMap<String, u64>,
    /// Nodes that captured.
    pub nodes: Vec<String>,
    /// Messages.
    pub messages: u64,
    /// Packets, all keys.
    pub packets: u64,
    /// The first message's time, ns since the epoch.
    pub first_ns: u64,
    /// The last message's time, ns.
    pub last_ns: u64,
}

/// What was read, and what could not be used.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct IngestStats {
    /// Flow records counted.
    pub flows: u64,
    /// Probe reports counted.
    pub probes: u64,
    /// Summaries podtracer computed (snapshots, summaries), skipped: the dashboard makes its
    /// own from the flow records.
    pub summaries: u64,
    /// Packet messages (`snoopy.packets`) counted into capture runs.
    pub packet_messages: u64,
    /// Capture runs evicted to stay within the limit.
    pub evicted_runs: u64,
    /// Lines or messages that were not JSON or did not fit their type's schema.
    pub malformed: u64,
    /// Records of a type the dashboard does not read.
    pub unknown_type: u64,
    /// Conversations evicted to stay within the key limit.
    pub evicted_conversations: u64,
    /// Probe checks evicted to stay within the key limit.
    pub evicted_probes: u64,
    /// Throughput test results counted.
    pub throughput: u64,
    /// Throughput pairs evicted to stay within the limit.
    pub evicted_throughput: u64,
    /// Errors of the inputs themselves (a broker going away, an unreadable file).
    pub input_errors: u64,
    /// Time windows dropped before their retention to stay within the memory limit.
    pub evicted_windows: u64,
    /// When windows were last dropped for memory: data before this time (ns since the
    /// epoch) is no longer complete.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shortened_before_ns: Option<u64>,
    /// Bytes the conversation and probe aggregates hold (estimated).
    pub memory_bytes: u64,
    /// The most they may hold.
    pub max_memory_bytes: u64,
    /// The most recent problem, for the page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_problem: Option<String>,
}

/// The aggregates.
#[derive(Debug)]
pub struct Store {
    limits: Limits,
    // Fx: these keys are hashed once per record, and nobody chooses them adversarially
    // enough to matter (the key count is capped).
    conversations: HashMap<ConversationKey, Conversation, FxBuildHasher>,
    probes: HashMap<ProbeKey, ProbeTally, FxBuildHasher>,
    runs: HashMap<String, RunTally, FxBuildHasher>,
    throughput: HashMap<(String, String), ThroughputCell, FxBuildHasher>,
    stats: IngestStats,
    now_ns: u64,
    /// The window (of data time) of the last sweep for expired windows.
    swept_window: u64,
    version: u64,
    /// Bytes of conversations and probe checks, keys included (estimated).
    bytes: usize,
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Adds `item` to `list` unless it is there or the list is full; the bytes it added.
fn push_unique(list: &mut Vec<String>, item: &Option<String>, cap: usize) -> usize {
    if let Some(item) = item
        && list.len() < cap
        && !list.contains(item)
    {
        let before = strings_bytes(list);
        list.push(item.clone());
        return strings_bytes(list) - before;
    }
    0
}

/// The counts of the window starting at `start`, made if missing. Windows arrive in order
/// nearly always; a late one is inserted in place.
fn window_mut<T: Default>(windows: &mut VecDeque<(u64, T)>, start: u64) -> &mut T {
    let at = windows.iter().rposition(|(s, _)| *s <= start);
    let i = match at {
        Some(i) if windows[i].0 == start => i,
        Some(i) => {
            windows.insert(i + 1, (start, T::default()));
            i + 1
        }
        None => {
            windows.push_front((start, T::default()));
            0
        }
    };
    &mut windows[i].1
}

/// What a conversation's key costs in its map, bytes.
fn conversation_key_bytes(key: &ConversationKey) -> usize {
    size_of::<(ConversationKey, Conversation)>()
        + key.source.capacity()
        + key.destination.capacity()
}

/// What a probe check's key costs in its map, bytes.
fn probe_key_bytes(key: &ProbeKey) -> usize {
    size_of::<(ProbeKey, ProbeTally)>()
        + key.source.capacity()
        + key.check.capacity()
        + key.target.capacity()
}

/// Makes room in a full map: removes the entry `last_seen` says is the oldest.
fn evict_oldest<K: Clone + Eq + std::hash::Hash, V>(
    map: &mut HashMap<K, V, FxBuildHasher>,
    last_seen: impl Fn(&V) -> u64,
) -> Option<(K, V)> {
    let oldest = map
        .iter()
        .min_by_key(|(_, v)| last_seen(v))
        .map(|(k, _)| k.clone())?;
    map.remove_entry(&oldest)
}

/// Nodes remembered per key: a conversation is seen from one or two nodes.
const NODES_PER_KEY: usize = 8;
/// Addresses remembered per probe check.
const ADDRESSES_PER_PROBE: usize = 8;

impl Store {
    /// An empty store.
    pub fn new(limits: Limits) -> Self {
        Store {
            limits,
            conversations: HashMap::default(),
            probes: HashMap::default(),
            runs: HashMap::default(),
            throughput: HashMap::default(),
            stats: IngestStats::default(),
            now_ns: 0,
            swept_window: 0,
            version: 0,
            bytes: 0,
        }
    }

    /// The limits it keeps to.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Counts one line or message: a record, or the reason it is not one. `received_ns` is
    /// when it was sent or arrived (the time of a probe report, which carries none).
    pub fn ingest(&mut self, json: &[u8], origin: &Origin, received_ns: u64) {
        match crate::input::parse(json) {
            Ok(record) => self.add(record, origin, received_ns),
            Err(e) => self.reject(&e),
        }
    }

    /// Counts a line or message that was not a record.
    pub fn reject(&mut self, error: &InputError) {
        match error {
            InputError::Malformed(_) => self.stats.malformed += 1,
            InputError::UnknownType(_) => self.stats.unknown_type += 1,
        }
        self.stats.last_problem = Some(error.to_string());
        self.version += 1;
    }

    /// Counts an error of an input (a broker that went away, an unreadable file).
    pub fn input_error(&mut self, what: String) {
        self.stats.input_errors += 1;
        self.stats.last_problem = Some(what);
        self.version += 1;
    }

    /// Counts one record.
    pub fn add(&mut self, record: Record, origin: &Origin, received_ns: u64) {
        match record {
            Record::Flow(flow) => self.add_flow(&flow, origin),
            Record::Probe(probe) => self.add_probe(&probe, origin, received_ns),
            Record::Throughput(result) => self.add_throughput(*result, origin),
            Record::Summary => self.stats.summaries += 1,
        }
        if self.bytes > self.limits.max_bytes {
            self.shed();
        }
        self.version += 1;
    }

    fn add_flow(&mut self, record: &FlowRecord, origin: &Origin) {
        self.stats.flows += 1;
        let to = Destination::of(record);
        let key = ConversationKey {
            source: record.initiator.host(),
            destination: record.responder.host(),
            protocol: to.protocol,
            ip: to.ip,
            port: to.port,
        };
        let first_ns = nanos(record.first);
        let last_ns = nanos(record.last).max(first_ns);
        self.now_ns = self.now_ns.max(last_ns);
        if !self.conversations.contains_key(&key) {
            if self.conversations.len() >= self.limits.max_conversations {
                self.evict_conversation();
            }
            self.bytes += conversation_key_bytes(&key);
        }
        let window = nanos(self.limits.window).max(1);
        let start = first_ns - first_ns % window;
        let failed_cap = self.limits.failed_per_conversation;
        let entry = self.conversations.entry(key).or_default();
        // Bytes are counted as they change (a full count would walk every window).
        let mut grew = 0isize;
        let mut delta = |before: usize, after: usize| grew += after as isize - before as isize;
        entry.last_ns = entry.last_ns.max(last_ns);
        delta(
            0,
            push_unique(&mut entry.nodes, &origin.node, NODES_PER_KEY),
        );
        let windows_before = entry.windows.capacity() * size_of::<(u64, Tally)>();
        let tally = window_mut(&mut entry.windows, start);
        let rtt_before = tally.rtt.heap_bytes();
        tally.add(record);
        delta(rtt_before, tally.rtt.heap_bytes());
        delta(
            windows_before,
            entry.windows.capacity() * size_of::<(u64, Tally)>(),
        );
        let lifetime = &mut entry.lifetime;
        lifetime.bytes_egress += record.fwd.bytes;
        lifetime.bytes_ingress += record.rev.bytes;
        lifetime.retransmissions += record.retransmissions();
        if record.tcp.is_some() && record.is_attempt() && !record.continued {
            let result = if record.is_success() {
                Some("success")
            } else {
                record.failure()
            };
            if let Some(result) = result {
                let results = lifetime.handshakes.len();
                *lifetime.handshakes.entry(result).or_default() += 1;
                delta(0, (lifetime.handshakes.len() - results) * MAP_ENTRY_BYTES);
            }
            if let Some(rtt) = record.rtt() {
                let before = lifetime.handshake_rtt.heap_bytes();
                lifetime.handshake_rtt.record(rtt);
                lifetime.handshake_rtt_sum_ns += nanos(rtt);
                delta(before, lifetime.handshake_rtt.heap_bytes());
            }
        }
        if !record.continued
            && let Some(outcome) = record.failure()
        {
            let before = entry.failed.capacity() * size_of::<FailedFlow>();
            if entry.failed.len() >= failed_cap
                && let Some(dropped) = entry.failed.pop_front()
            {
                delta(dropped.heap_bytes(), 0);
            }
            let failed = FailedFlow {
                time_ns: first_ns,
                protocol: record.protocol,
                initiator: record.initiator.label(),
                responder: record.responder.label(),
                outcome,
                node: origin.node.clone(),
            };
            delta(0, failed.heap_bytes());
            entry.failed.push_back(failed);
            delta(before, entry.failed.capacity() * size_of::<FailedFlow>());
        }
        entry.bytes = entry.bytes.saturating_add_signed(grew);
        self.bytes = self.bytes.saturating_add_signed(grew);
        self.expire();
    }

    /// Evicts the least recently seen conversation (to make room for a new one).
    fn evict_conversation(&mut self) {
        if let Some((key, c)) = evict_oldest(&mut self.conversations, |c| c.last_ns) {
            self.bytes -= (conversation_key_bytes(&key) + c.bytes).min(self.bytes);
            self.stats.evicted_conversations += 1;
        }
    }

    /// Counts a probe report at `at_ns` (when its message was sent, or read).
    fn add_probe(&mut self, probe: &ProbeRecord, origin: &Origin, at_ns: u64) {
        self.stats.probes += 1;
        self.now_ns = self.now_ns.max(at_ns);
        let key = ProbeKey {
            source: origin.key.clone().unwrap_or_else(|| "-".into()),
            check: probe.check.clone(),
            target: probe.target.clone(),
        };
        if !self.probes.contains_key(&key) {
            if self.probes.len() >= self.limits.max_probes
                && let Some((old, p)) = evict_oldest(&mut self.probes, |p| p.last_ns)
            {
                self.bytes -= (probe_key_bytes(&old) + p.bytes).min(self.bytes);
                self.stats.evicted_probes += 1;
            }
            self.bytes += probe_key_bytes(&key);
        }
        let window = nanos(self.limits.window).max(1);
        let entry = self.probes.entry(key).or_default();
        entry.last_ns = entry.last_ns.max(at_ns);
        push_unique(&mut entry.nodes, &origin.node, NODES_PER_KEY);
        let counts = window_mut(&mut entry.windows, at_ns - at_ns % window);
        for attempt in &probe.results {
            counts.add(attempt);
            entry.lifetime.add(attempt);
            push_unique(&mut entry.addresses, &attempt.address, ADDRESSES_PER_PROBE);
        }
        // Probe reports are few (one per check and run): counting all is cheap.
        let bytes = entry.heap_bytes();
        self.bytes = (self.bytes + bytes).saturating_sub(entry.bytes);
        entry.bytes = bytes;
        self.expire();
    }

    /// Keeps a throughput test as its pair's latest (by its end time).
    fn add_throughput(&mut self, mut result: PairResult, origin: &Origin) {
        self.stats.throughput += 1;
        result.iperf3 = None;
        let key = (result.client.clone(), result.server.clone());
        if !self.throughput.contains_key(&key)
            && self.throughput.len() >= self.limits.max_throughput_pairs
            && evict_oldest(&mut self.throughput, |c| c.result.ended_ms).is_some()
        {
            self.stats.evicted_throughput += 1;
        }
        let failed = u64::from(!result.ok());
        match self.throughput.entry(key) {
            std::collections::hash_map::Entry::Occupied(mut e) => {
                let cell = e.get_mut();
                cell.tests += 1;
                cell.failed += failed;
                if result.ended_ms >= cell.result.ended_ms {
                    cell.result = result;
                    cell.node = origin.node.clone();
                }
            }
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(ThroughputCell {
                    result,
                    node: origin.node.clone(),
                    tests: 1,
                    failed,
                });
            }
        }
    }

    /// Every throughput pair's latest test.
    pub fn throughput(&self) -> impl Iterator<Item = &ThroughputCell> {
        self.throughput.values()
    }

    /// Counts a packets message of a capture run (from its headers: `packets`, and the
    /// origin's run, key and node) received at `at_ns`.
    pub fn add_packets(&mut self, origin: &Origin, packets: u64, at_ns: u64) {
        self.stats.packet_messages += 1;
        let run = origin.run.clone().unwrap_or_else(|| "-".into());
        if !self.runs.contains_key(&run)
            && self.runs.len() >= self.limits.max_runs
            && evict_oldest(&mut self.runs, |r| r.last_ns).is_some()
        {
            self.stats.evicted_runs += 1;
        }
        let entry = self.runs.entry(run).or_default();
        if entry.messages == 0 || at_ns < entry.first_ns {
            entry.first_ns = at_ns;
        }
        entry.last_ns = entry.last_ns.max(at_ns);
        entry.messages += 1;
        entry.packets += packets;
        *entry
            .keys
            .entry(origin.key.clone().unwrap_or_else(|| "-".into()))
            .or_default() += packets;
        push_unique(&mut entry.nodes, &origin.node, NODES_PER_KEY);
        self.version += 1;
    }

    /// Every capture run.
    pub fn runs(&self) -> impl Iterator<Item = (&String, &RunTally)> {
        self.runs.iter()
    }

    /// Drops windows older than the retention; conversations and probe checks left without
    /// any window go (their Prometheus series with them: the grace period is the retention).
    fn expire(&mut self) {
        let oldest = self.now_ns.saturating_sub(nanos(self.limits.retention));
        let window = nanos(self.limits.window).max(1);
        // A full sweep at most once per window of data time.
        if self.now_ns / window == self.swept_window {
            return;
        }
        self.swept_window = self.now_ns / window;
        self.drop_windows(|start| start + window <= oldest, false);
    }

    /// Drops the windows whose start `old` says are too old, everywhere, and the keys left
    /// without any; recounts the bytes of what remains. The windows dropped. With `shrink`
    /// (memory is short), every collection that lost windows gives their room back; else
    /// only one left mostly empty does (expiry drops as many windows as arrive).
    fn drop_windows(&mut self, old: impl Fn(u64) -> bool, shrink: bool) -> u64 {
        let mut dropped = 0;
        let mut bytes = 0;
        self.conversations.retain(|key, c| {
            let n = c.windows.len();
            while c.windows.front().is_some_and(|(s, _)| old(*s)) {
                c.windows.pop_front();
            }
            dropped += (n - c.windows.len()) as u64;
            if c.windows.is_empty() {
                return false;
            }
            if c.windows.len() != n {
                if shrink || c.windows.len() < c.windows.capacity() / 4 {
                    c.windows.shrink_to_fit();
                }
                c.bytes = c.heap_bytes();
            }
            bytes += conversation_key_bytes(key) + c.bytes;
            true
        });
        self.probes.retain(|key, p| {
            let n = p.windows.len();
            while p.windows.front().is_some_and(|(s, _)| old(*s)) {
                p.windows.pop_front();
            }
            dropped += (n - p.windows.len()) as u64;
            if p.windows.is_empty() {
                return false;
            }
            if p.windows.len() != n {
                if shrink || p.windows.len() < p.windows.capacity() / 4 {
                    p.windows.shrink_to_fit();
                }
                p.bytes = p.heap_bytes();
            }
            bytes += probe_key_bytes(key) + p.bytes;
            true
        });
        self.bytes = bytes;
        dropped
    }

    /// Over the memory limit: drops the oldest windows of every conversation and probe
    /// check, one window of time at a time, until a tenth of the limit is free again (so
    /// that the next record does not start over). When only the newest window is left, the
    /// least recently seen conversations go.
    fn shed(&mut self) {
        let target = self.limits.max_bytes / 10 * 9;
        let window = nanos(self.limits.window).max(1);
        let newest = self.now_ns - self.now_ns % window;
        while self.bytes > target {
            let oldest = self
                .conversations
                .values()
                .filter_map(|c| c.windows.front().map(|(s, _)| *s))
                .chain(
                    self.probes
                        .values()
                        .filter_map(|p| p.windows.front().map(|(s, _)| *s)),
                )
                .min();
            match oldest {
                Some(oldest) if oldest < newest => {
                    self.stats.evicted_windows += self.drop_windows(|s| s <= oldest, true);
                    self.stats.shortened_before_ns = Some(oldest + window);
                }
                _ if !self.conversations.is_empty() => self.evict_conversation(),
                _ => break,
            }
        }
    }

    /// Bytes the conversations and probe checks hold, estimated as they change from the
    /// sizes and capacities of their collections (the allocator's own overhead is not in
    /// it). At most [`Limits::max_bytes`] after every record.
    pub fn memory_bytes(&self) -> usize {
        self.bytes
    }

    /// Changes so far: grows with every record or problem (what live updates wait on).
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The newest record's time, ns since the epoch.
    pub fn now_ns(&self) -> u64 {
        self.now_ns
    }

    /// What was read and dropped, and the memory held.
    pub fn stats(&self) -> IngestStats {
        IngestStats {
            memory_bytes: self.bytes as u64,
            max_memory_bytes: self.limits.max_bytes as u64,
            ..self.stats.clone()
        }
    }

    /// Every conversation.
    pub fn conversations(&self) -> impl Iterator<Item = (&ConversationKey, &Conversation)> {
        self.conversations.iter()
    }

    /// Every probe check.
    pub fn probes(&self) -> impl Iterator<Item = (&ProbeKey, &ProbeTally)> {
        self.probes.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::parse;

    /// A TCP flow record from `src` to `dst:port` starting at `t` seconds: `ok` completes
    /// the handshake (1 ms RTT), otherwise it was refused.
    fn tcp(src: &str, dst: &str, port: u16, t: u64, ok: bool) -> Vec<u8> {
        let ns = t * 1_000_000_000;
        let handshake = if ok {
            r#"{"syn_to_synack_ns":800000,"synack_to_ack_ns":200000,"rtt_ns":1000000}"#
        } else {
            "null"
        };
        let outcome = if ok { "closed" } else { "refused" };
        format!(
            r#"{{"type":"flow","reason":"idle","protocol":"tcp","initiator":{{"ip":"10.0.0.1","port":40000,"name":"{src}"}},"responder":{{"ip":"10.0.0.2","port":{port},"name":"{dst}"}},"first_ns":{ns},"last_ns":{ns},"fwd":{{"packets":3,"bytes":200,"first_ns":{ns},"last_ns":{ns}}},"rev":{{"packets":2,"bytes":100,"first_ns":{ns},"last_ns":{ns}}},"continued":false,"answered":true,"tcp":{{"outcome":"{outcome}","syns":1,"handshake":{handshake},"fwd":{{"retransmissions":1,"out_of_order":0,"zero_window":0}},"rev":{{"retransmissions":0,"out_of_order":0,"zero_window":0}}}}}}"#
        )
        .into_bytes()
    }

    fn add(store: &mut Store, json: &[u8], node: &str) {
        let origin = Origin {
            node: Some(node.into()),
            ..Origin::default()
        };
        store.add(parse(json).unwrap(), &origin, 0);
    }

    fn limits() -> Limits {
        Limits {
            window: Duration::from_secs(10),
            retention: Duration::from_secs(60),
            max_conversations: 3,
            max_probes: 2,
            failed_per_conversation: 2,
            max_runs: 2,
            max_throughput_pairs: 2,
            max_bytes: usize::MAX,
        }
    }

    #[test]
    fn counts_per_window_and_keeps_the_latest_failures() {
        let mut store = Store::new(limits());
        for (t, ok) in [
            (100, true),
            (101, false),
            (112, false),
            (125, false),
            (105, true),
        ] {
            add(
                &mut store,
                &tcp("shop/web-0", "shop/db-0", 5432, t, ok),
                "n1",
            );
        }
        let (_, c) = store.conversations().next().unwrap();
        let starts: Vec<u64> = c.windows.iter().map(|(s, _)| s / 1_000_000_000).collect();
        assert_eq!(
            starts,
            [100, 110, 120],
            "a late record lands in its own window"
        );
        assert_eq!(c.windows[0].1.attempts, 3);
        assert_eq!(c.windows[0].1.successes, 2);
        let failed: Vec<u64> = c.failed.iter().map(|f| f.time_ns / 1_000_000_000).collect();
        assert_eq!(failed, [112, 125], "the two most recent failures");
        assert_eq!(c.lifetime.handshakes["success"], 2);
        assert_eq!(c.lifetime.handshakes["refused"], 3);
        assert_eq!(c.lifetime.retransmissions, 5);
        assert_eq!(c.nodes, ["n1"]);
    }

    #[test]
    fn windows_age_out_with_the_data_and_empty_conversations_go() {
        let mut store = Store::new(limits());
        add(&mut store, &tcp("a/x", "a/old", 1, 100, true), "n1");
        add(&mut store, &tcp("a/x", "a/new", 1, 150, true), "n1");
        assert_eq!(store.conversations().count(), 2);
        // 60 s of retention: at t=171 the window starting at 100 (ending 110) is gone.
        add(&mut store, &tcp("a/x", "a/new", 1, 171, true), "n1");
        let left: Vec<&str> = store
            .conversations()
            .map(|(k, _)| k.destination.as_str())
            .collect();
        assert_eq!(left, ["a/new"]);
    }

    #[test]
    fn the_least_recently_seen_conversation_makes_room_and_is_counted() {
        let mut store = Store::new(limits());
        for (i, dst) in ["a/1", "a/2", "a/3"].iter().enumerate() {
            add(&mut store, &tcp("a/x", dst, 1, 100 + i as u64, true), "n1");
        }
        add(&mut store, &tcp("a/x", "a/1", 1, 104, true), "n1");
        add(&mut store, &tcp("a/x", "a/4", 1, 105, true), "n1");
        let mut left: Vec<&str> = store
            .conversations()
            .map(|(k, _)| k.destination.as_str())
            .collect();
        left.sort();
        assert_eq!(
            left,
            ["a/1", "a/3", "a/4"],
            "a/2 was the least recently seen"
        );
        assert_eq!(store.stats().evicted_conversations, 1);
    }

    #[test]
    fn probes_count_each_attempt_by_reason() {
        let mut store = Store::new(limits());
        let origin = Origin {
            key: Some("shop/web-0".into()),
            ..Origin::default()
        };
        let report = br#"{"type":"probe","check":"http","target":"http://db/","results":[
            {"ok":true,"latency_ns":2000000,"address":"10.0.0.2:80"},
            {"ok":false,"reason":"timeout","address":"10.0.0.2:80"},
            {"ok":false,"reason":"timeout"}]}"#;
        store.ingest(report, &origin, 7);
        let (key, p) = store.probes().next().unwrap();
        assert_eq!(key.source, "shop/web-0");
        let l = &p.lifetime;
        assert_eq!((l.attempts, l.successes), (3, 1));
        assert_eq!(l.failures["timeout"], 2);
        assert_eq!(p.addresses, ["10.0.0.2:80"]);
        assert_eq!(l.latency_sum_ns, 2_000_000);
        assert_eq!(p.windows.len(), 1);
        assert_eq!(p.windows[0].1, *l);
    }

    #[test]
    fn probes_are_windowed_and_age_out_like_flows() {
        let mut store = Store::new(limits());
        let origin = Origin {
            key: Some("shop/web-0".into()),
            ..Origin::default()
        };
        let ok = br#"{"type":"probe","check":"tcp","target":"db:5432","results":[{"ok":true,"latency_ns":1000}]}"#;
        let refused = br#"{"type":"probe","check":"tcp","target":"db:5432","results":[{"ok":false,"reason":"refused"}]}"#;
        let s = 1_000_000_000;
        store.ingest(ok, &origin, 100 * s);
        store.ingest(refused, &origin, 105 * s);
        store.ingest(refused, &origin, 112 * s);
        let (_, p) = store.probes().next().unwrap();
        let windows: Vec<(u64, u64, u64)> = p
            .windows
            .iter()
            .map(|(start, c)| (start / s, c.attempts, c.successes))
            .collect();
        assert_eq!(windows, [(100, 2, 1), (110, 1, 0)]);
        // A flow 60 s later: the window at 100 leaves the retention, the one at 110 stays.
        add(&mut store, &tcp("a/x", "a/y", 1, 171, true), "n1");
        let (_, p) = store.probes().next().unwrap();
        assert_eq!(p.windows.len(), 1);
        assert_eq!(p.lifetime.attempts, 3, "the lifetime counters do not age");
        // And later still, the check goes with its last window.
        add(&mut store, &tcp("a/x", "a/y", 1, 190, true), "n1");
        assert_eq!(store.probes().count(), 0);
    }

    /// A flow record with its own RTT, so that every record adds a histogram bucket.
    fn tcp_rtt(src: &str, dst: &str, t_ms: u64, rtt_ns: u64) -> Vec<u8> {
        let ns = t_ms * 1_000_000;
        format!(
            r#"{{"type":"flow","reason":"idle","protocol":"tcp","initiator":{{"ip":"10.0.0.1","port":40000,"name":"{src}"}},"responder":{{"ip":"10.0.0.2","port":80,"name":"{dst}"}},"first_ns":{ns},"last_ns":{ns},"fwd":{{"packets":3,"bytes":200,"first_ns":{ns},"last_ns":{ns}}},"rev":{{"packets":2,"bytes":100,"first_ns":{ns},"last_ns":{ns}}},"continued":false,"answered":true,"tcp":{{"outcome":"closed","syns":1,"handshake":{{"syn_to_synack_ns":1,"synack_to_ack_ns":1,"rtt_ns":{rtt_ns}}},"fwd":{{"retransmissions":0,"out_of_order":0,"zero_window":0}},"rev":{{"retransmissions":0,"out_of_order":0,"zero_window":0}}}}}}"#
        )
        .into_bytes()
    }

    /// The estimate counted as things change equals a count of everything from scratch.
    fn recount(store: &Store) -> usize {
        store
            .conversations()
            .map(|(k, c)| conversation_key_bytes(k) + c.heap_bytes())
            .sum::<usize>()
            + store
                .probes()
                .map(|(k, p)| probe_key_bytes(k) + p.heap_bytes())
                .sum::<usize>()
    }

    #[test]
    fn memory_stays_under_its_limit_by_dropping_the_oldest_windows_first() {
        let mut limits = limits();
        limits.max_conversations = 100;
        limits.retention = Duration::from_secs(3600);
        limits.max_bytes = 200_000;
        let mut store = Store::new(limits);
        // 20 conversations, a record each every second for 400 s, every RTT different.
        let mut peak = 0;
        for t in 0..400u64 {
            for c in 0..20u64 {
                let json = tcp_rtt("a/x", &format!("a/{c}"), t * 1000 + c, 1_000 + t * 37 + c);
                add(&mut store, &json, "n1");
                peak = peak.max(store.memory_bytes());
                assert!(
                    store.memory_bytes() <= 200_000,
                    "{} at {t}",
                    store.memory_bytes()
                );
            }
            if t % 50 == 0 {
                assert_eq!(store.memory_bytes(), recount(&store), "at {t}");
            }
        }
        assert!(peak > 150_000, "the limit was reached: {peak}");
        let stats = store.stats();
        assert!(stats.evicted_windows > 0);
        assert_eq!(stats.evicted_conversations, 0, "windows went, not pairs");
        assert_eq!(store.conversations().count(), 20);
        // What was dropped is the oldest: every conversation still has its newest windows.
        let cut = stats.shortened_before_ns.unwrap();
        for (_, c) in store.conversations() {
            assert!(c.windows.front().unwrap().0 >= cut);
            assert_eq!(c.windows.back().unwrap().0, 390_000_000_000);
        }
        assert_eq!(stats.memory_bytes, store.memory_bytes() as u64);
    }

    #[test]
    fn the_estimate_follows_evictions_and_expiry() {
        let mut store = Store::new(limits());
        for (i, dst) in ["a/1", "a/2", "a/3", "a/4", "a/5"].iter().enumerate() {
            add(
                &mut store,
                &tcp("a/x", dst, 1, 100 + i as u64, i % 2 == 0),
                "n1",
            );
            assert_eq!(store.memory_bytes(), recount(&store));
        }
        add(&mut store, &tcp("a/x", "a/5", 1, 200, false), "n2");
        assert_eq!(store.memory_bytes(), recount(&store));
        assert_eq!(store.conversations().count(), 1);
    }

    #[test]
    fn a_throughput_pair_keeps_its_latest_test_and_counts_failures() {
        let test = |ended: u64, failed: bool| {
            let outcome = if failed {
                r#""reason":"timeout","error":"no answer""#.to_owned()
            } else {
                format!(
                    r#""forward":{{"sent_bits_per_second":{ended}e9,"received_bits_per_second":{ended}e9}}"#
                )
            };
            format!(
                r#"{{"type":"throughput","client":"shop/a","server":"shop/b","server_address":"10.0.0.2","port":5201,"settings":{{"protocol":"tcp","direction":"forward","streams":1,"seconds":1,"round_trips":0}},"started_ms":0,"ended_ms":{ended},{outcome},"iperf3":{{"big":"report"}}}}"#
            )
        };
        let mut store = Store::new(limits());
        let node = Origin {
            node: Some("node-1".into()),
            ..Origin::default()
        };
        store.ingest(test(3, false).as_bytes(), &node, 0);
        store.ingest(test(5, true).as_bytes(), &node, 0);
        // An older test arriving late does not replace the latest.
        store.ingest(test(4, false).as_bytes(), &node, 0);
        let cells: Vec<_> = store.throughput().collect();
        assert_eq!(cells.len(), 1);
        let c = cells[0];
        assert_eq!((c.tests, c.failed, c.result.ended_ms), (3, 1, 5));
        assert!(!c.result.ok());
        assert_eq!(c.node.as_deref(), Some("node-1"));
        assert_eq!(c.result.iperf3, None, "iperf3's report is not kept");
        assert_eq!(store.stats().throughput, 3);
    }
}
