//! What the page shows, computed from the store for one filter: pod pairs (the map's
//! edges), destinations (the table), probe checks, and one pair's time series and
//! failures.
//!
//! In two steps, so that replicas that split the Kafka partitions show one page: each store
//! gives its [`Partial`] (counts with their histograms, not yet percentiles), the partials
//! are [`merge`]d, and [`finish`] turns the sum into the [`View`]. One store alone is the same
//! path with one partial ([`view`]).

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};

use serde::{Deserialize, Serialize};
use snoopy_capture::flow::{Percentiles, Protocol, Summary, Tally};

use crate::store::{
    Conversation, FailedFlow, IngestStats, ProbeCounts, ProbeKey, ProbeTally, RunTally, Store,
    ThroughputCell,
};

/// Which part of the data to show; every member is optional and they combine with AND.
/// These are the page's URL query parameters, so a view can be shared.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Filter {
    /// Only conversations with an end in this namespace.
    #[serde(
        default,
        deserialize_with = "non_empty",
        skip_serializing_if = "Option::is_none"
    )]
    pub namespace: Option<String>,
    /// Only conversations with this pod (`POD` or `NAMESPACE/POD`) or address at an end.
    #[serde(
        default,
        deserialize_with = "non_empty",
        skip_serializing_if = "Option::is_none"
    )]
    pub pod: Option<String>,
    /// Only what this node reported.
    #[serde(
        default,
        deserialize_with = "non_empty",
        skip_serializing_if = "Option::is_none"
    )]
    pub node: Option<String>,
    /// Only the last this many seconds (of data time).
    #[serde(
        default,
        deserialize_with = "number",
        skip_serializing_if = "Option::is_none"
    )]
    pub since: Option<u64>,
    /// The time `since` counts back from, ns since the epoch: by default the store's newest
    /// record; replicas are given the newest of them all, so they cut at the same time.
    #[serde(
        default,
        deserialize_with = "number",
        skip_serializing_if = "Option::is_none"
    )]
    pub now_ns: Option<u64>,
}

fn non_empty<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let s = Option::<String>::deserialize(d)?;
    Ok(s.map(|s| s.trim().to_string()).filter(|s| !s.is_empty()))
}

/// A number, or a string of one: a query string's numbers are strings, and the filter
/// flattened into another query (`/api/pair`) reaches serde as strings only.
fn number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Wire {
        Number(u64),
        Text(String),
    }
    match Option::<Wire>::deserialize(d)? {
        None => Ok(None),
        Some(Wire::Number(n)) => Ok(Some(n)),
        Some(Wire::Text(t)) if t.trim().is_empty() => Ok(None),
        Some(Wire::Text(t)) => t
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| serde::de::Error::custom(format!("{t:?} is not a whole number"))),
    }
}

impl Filter {
    fn host_matches(&self, host: &str) -> bool {
        let namespace_ok = self
            .namespace
            .as_ref()
            .is_none_or(|ns| host.split_once('/').is_some_and(|(n, _)| n == ns));
        let pod_ok = self
            .pod
            .as_ref()
            .is_none_or(|pod| host == pod || host.split_once('/').is_some_and(|(_, p)| p == pod));
        namespace_ok && pod_ok
    }

    /// Whether something with these hosts (a conversation's ends, a probe's pod, a run's
    /// pods), reported by these nodes, is shown: some host matches the namespace and pod
    /// (when either is set), and the node is among them (when set).
    fn matches<'a>(&self, mut hosts: impl Iterator<Item = &'a str>, nodes: &[String]) -> bool {
        let ends =
            (self.namespace.is_none() && self.pod.is_none()) || hosts.any(|h| self.host_matches(h));
        ends && self.node_matches(nodes)
    }

    /// Whether the node filter (if any) is among `nodes`.
    fn node_matches(&self, nodes: &[String]) -> bool {
        self.node.as_ref().is_none_or(|n| nodes.contains(n))
    }

    /// The oldest window start this filter keeps.
    fn oldest_ns(&self, store: &Store) -> u64 {
        match self.since {
            Some(s) => self
                .now_ns
                .unwrap_or(store.now_ns())
                .saturating_sub(s.saturating_mul(1_000_000_000)),
            None => 0,
        }
    }
}

/// A pod pair: an edge of the map.
#[derive(Debug, Clone, Serialize)]
pub struct PairView {
    /// The initiator: `NAMESPACE/POD` or an address.
    pub source: String,
    /// The responder: `NAMESPACE/POD` or an address.
    pub destination: String,
    /// Nodes that reported it.
    pub nodes: Vec<String>,
    /// Its counts.
    #[serde(flatten)]
    pub summary: Summary,
}

/// A destination (responder address, protocol, port): a row of the table.
#[derive(Debug, Clone, Serialize)]
pub struct DestinationView {
    /// `NAMESPACE/POD:PORT`, or `ADDRESS:PORT`.
    pub label: String,
    /// The protocol.
    pub protocol: Protocol,
    /// The responder's address.
    pub ip: IpAddr,
    /// The responder's port.
    pub port: u16,
    /// The sources that tried it.
    pub sources: Vec<String>,
    /// Its counts.
    #[serde(flatten)]
    pub summary: Summary,
    /// Probe checks that went to the same address and port.
    pub probes: Vec<ProbeView>,
}

/// A probe check, over the filter's time range.
#[derive(Debug, Clone, Serialize)]
pub struct ProbeView {
    /// The pod that ran it.
    pub source: String,
    /// `tcp`, `http` or `dns`.
    pub check: String,
    /// Its target as given.
    pub target: String,
    /// Attempts.
    pub attempts: u64,
    /// Successes.
    pub successes: u64,
    /// `successes / attempts`.
    pub success_rate: Option<f64>,
    /// Failures by reason.
    pub failures: BTreeMap<String, u64>,
    /// Latency percentiles of the successes, ns.
    pub latency_ns: Percentiles,
    /// Addresses it went to.
    pub addresses: Vec<String>,
}

/// A capture run on `snoopy.packets`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunView {
    /// The run id (the messages' `run` header: `NS/NAME/once` for an operator Job).
    pub run: String,
    /// What its messages said.
    #[serde(flatten)]
    pub tally: RunTally,
}

/// The latest throughput test of an ordered pair: one cell of the matrix.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ThroughputView {
    /// The client (row).
    pub client: String,
    /// The server (column).
    pub server: String,
    /// The node that ran the test.
    pub node: Option<String>,
    /// Whether the latest test succeeded.
    pub ok: bool,
    /// Received Gbit/s, client to server.
    pub forward_gbps: Option<f64>,
    /// Received Gbit/s, server to client.
    pub reverse_gbps: Option<f64>,
    /// TCP retransmissions, both ways.
    pub retransmits: Option<u64>,
    /// UDP datagrams lost, percent (the worse direction).
    pub lost_percent: Option<f64>,
    /// Median connect time, ms.
    pub connect_ms: Option<f64>,
    /// Median request–response round trip, ms.
    pub round_trip_ms: Option<f64>,
    /// Why the latest test failed.
    pub reason: Option<String>,
    /// The failure in words.
    pub error: Option<String>,
    /// When the latest test ended, ms since the epoch.
    pub ended_ms: u64,
    /// Tests of this pair seen, and how many failed.
    pub tests: u64,
    /// See `tests`.
    pub failed: u64,
}

fn throughput_view(cell: &ThroughputCell) -> ThroughputView {
    let r = &cell.result;
    let flows = [r.forward.as_ref(), r.reverse.as_ref()];
    let flows = flows.iter().flatten();
    ThroughputView {
        client: r.client.clone(),
        server: r.server.clone(),
        node: cell.node.clone(),
        ok: r.ok(),
        forward_gbps: r.forward.as_ref().map(|f| f.received_bits_per_second / 1e9),
        reverse_gbps: r.reverse.as_ref().map(|f| f.received_bits_per_second / 1e9),
        retransmits: flows
            .clone()
            .filter_map(|f| f.retransmits)
            .reduce(|a, b| a + b),
        lost_percent: flows
            .filter_map(|f| f.udp.as_ref().map(|u| u.lost_percent))
            .reduce(f64::max),
        connect_ms: r.latency.as_ref().map(|l| l.connect_us.mid / 1000.0),
        round_trip_ms: r.latency.as_ref().map(|l| l.round_trip_us.mid / 1000.0),
        reason: r.reason.map(|reason| reason.as_str().to_owned()),
        error: r.error.clone(),
        ended_ms: r.ended_ms,
        tests: cell.tests,
        failed: cell.failed,
    }
}

/// Everything the page shows for a filter.
#[derive(Debug, Clone, Serialize)]
pub struct View {
    /// The store's version this was computed at (with replicas, the sum of theirs).
    pub version: u64,
    /// The newest record's time, ns.
    pub now_ns: u64,
    /// The window width, seconds.
    pub window_seconds: f64,
    /// What was read and dropped.
    pub stats: IngestStats,
    /// Pod pairs, busiest first.
    pub pairs: Vec<PairView>,
    /// Destinations, the most failing first.
    pub destinations: Vec<DestinationView>,
    /// Probe checks.
    pub probes: Vec<ProbeView>,
    /// Capture runs, the most recent first.
    pub runs: Vec<RunView>,
    /// Throughput tests, the latest per ordered pair, by client then server.
    pub throughput: Vec<ThroughputView>,
    /// Namespaces and nodes seen (for the filter's choices).
    pub namespaces: Vec<String>,
    /// Nodes seen.
    pub nodes: Vec<String>,
    /// Replicas whose part is missing from this view, with why (empty when all answered).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub missing: Vec<String>,
}

/// A pod pair's counts over the filter's time range, before they are summarized.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PairPart {
    /// Nodes that reported it.
    pub nodes: BTreeSet<String>,
    /// Its counts.
    pub tally: Tally,
}

/// A destination's counts, before they are summarized.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DestinationPart {
    /// `NAMESPACE/POD:PORT`, or `ADDRESS:PORT`.
    pub label: String,
    /// The sources that tried it.
    pub sources: BTreeSet<String>,
    /// Its counts.
    pub tally: Tally,
}

/// A probe check's counts, before they are summarized.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ProbePart {
    /// Its counts.
    pub counts: ProbeCounts,
    /// Addresses it went to.
    pub addresses: Vec<String>,
}

/// One store's part of a view: counts with their histograms (percentiles do not add up;
/// histograms do), so the parts of several replicas merge exactly. It crosses between
/// replicas as JSON, hence the keys as strings.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Partial {
    /// The store's version (summed over replicas).
    pub version: u64,
    /// The newest record's time, ns.
    pub now_ns: u64,
    /// The window width, seconds.
    pub window_seconds: f64,
    /// What was read and dropped.
    pub stats: IngestStats,
    /// Pod pairs by `SOURCE\tDESTINATION`.
    pub pairs: BTreeMap<String, PairPart>,
    /// Destinations by `PROTOCOL ADDRESS:PORT`.
    pub destinations: BTreeMap<String, DestinationPart>,
    /// Probe checks by `SOURCE\tCHECK\tTARGET`.
    pub probes: BTreeMap<String, ProbePart>,
    /// Capture runs by id.
    pub runs: BTreeMap<String, RunTally>,
    /// Throughput tests by `CLIENT\tSERVER`.
    pub throughput: BTreeMap<String, ThroughputView>,
    /// Namespaces seen.
    pub namespaces: BTreeSet<String>,
    /// Nodes seen.
    pub nodes: BTreeSet<String>,
}

fn sum_windows(c: &Conversation, from_ns: u64) -> Option<Tally> {
    let mut total: Option<Tally> = None;
    for (_, t) in c.windows.iter().filter(|(s, _)| *s >= from_ns) {
        total.get_or_insert_with(Tally::default).merge(t);
    }
    total
}

fn sum_probe_windows(p: &ProbeTally, from_ns: u64) -> Option<ProbeCounts> {
    let mut total: Option<ProbeCounts> = None;
    for (_, c) in p.windows.iter().filter(|(s, _)| *s >= from_ns) {
        total.get_or_insert_with(ProbeCounts::default).merge(c);
    }
    total
}

fn probe_view(key: &str, part: &ProbePart) -> ProbeView {
    let mut fields = key.splitn(3, '\t');
    let mut next = || fields.next().unwrap_or_default().to_string();
    let c = &part.counts;
    ProbeView {
        source: next(),
        check: next(),
        target: next(),
        attempts: c.attempts,
        successes: c.successes,
        success_rate: (c.attempts > 0).then(|| c.successes as f64 / c.attempts as f64),
        failures: c.failures.clone(),
        latency_ns: c.latency.summary(),
        addresses: part.addresses.clone(),
    }
}

fn probe_key(key: &ProbeKey) -> String {
    format!("{}\t{}\t{}", key.source, key.check, key.target)
}

fn label(host: &str, ip: IpAddr, port: u16) -> String {
    if host.parse::<IpAddr>().is_ok() {
        SocketAddr::new(ip, port).to_string()
    } else {
        format!("{host}:{port}")
    }
}

/// The key of a destination in a [`Partial`]: `PROTOCOL-NUMBER ADDRESS:PORT` (IPv6
/// addresses in brackets, as a `SocketAddr` writes them).
fn destination_key(protocol: Protocol, ip: IpAddr, port: u16) -> String {
    format!("{:03} {}", protocol.number(), SocketAddr::new(ip, port))
}

fn parse_destination_key(key: &str) -> Option<(Protocol, SocketAddr)> {
    let (protocol, address) = key.split_once(' ')?;
    Some((
        Protocol::from_number(protocol.parse().ok()?),
        address.parse().ok()?,
    ))
}

/// This store's part of the view of `filter`.
pub fn partial(store: &Store, filter: &Filter) -> Partial {
    let from_ns = filter.oldest_ns(store);
    let mut part = Partial {
        version: store.version(),
        now_ns: store.now_ns(),
        window_seconds: store.limits().window.as_secs_f64(),
        stats: store.stats(),
        ..Partial::default()
    };
    for (key, c) in store.conversations() {
        for host in [&key.source, &key.destination] {
            if let Some((ns, _)) = host.split_once('/') {
                part.namespaces.insert(ns.to_string());
            }
        }
        part.nodes.extend(c.nodes.iter().cloned());
        if !filter.matches(
            [key.source.as_str(), &key.destination].into_iter(),
            &c.nodes,
        ) {
            continue;
        }
        let Some(total) = sum_windows(c, from_ns) else {
            continue;
        };
        let pair = part
            .pairs
            .entry(format!("{}\t{}", key.source, key.destination))
            .or_default();
        pair.tally.merge(&total);
        pair.nodes.extend(c.nodes.iter().cloned());
        let dest = part
            .destinations
            .entry(destination_key(key.protocol, key.ip, key.port))
            .or_insert_with(|| DestinationPart {
                label: label(&key.destination, key.ip, key.port),
                sources: BTreeSet::new(),
                tally: Tally::default(),
            });
        dest.tally.merge(&total);
        dest.sources.insert(key.source.clone());
    }
    for (key, p) in store.probes() {
        part.nodes.extend(p.nodes.iter().cloned());
        if !filter.matches(std::iter::once(key.source.as_str()), &p.nodes) {
            continue;
        }
        if let Some(counts) = sum_probe_windows(p, from_ns) {
            part.probes.insert(
                probe_key(key),
                ProbePart {
                    counts,
                    addresses: p.addresses.clone(),
                },
            );
        }
    }
    for (run, r) in store.runs() {
        if filter.matches(r.keys.keys().map(String::as_str), &r.nodes) {
            part.runs.insert(run.clone(), r.clone());
        }
    }
    for c in store.throughput() {
        for pod in [&c.result.client, &c.result.server] {
            if let Some((ns, _)) = pod.split_once('/') {
                part.namespaces.insert(ns.to_string());
            }
        }
        part.nodes.extend(c.node.iter().cloned());
        let node: Vec<String> = c.node.iter().cloned().collect();
        if filter.matches(
            [c.result.client.as_str(), &c.result.server].into_iter(),
            &node,
        ) {
            part.throughput.insert(
                format!("{}\t{}", c.result.client, c.result.server),
                throughput_view(c),
            );
        }
    }
    part
}

/// Adds the counters of `other` to `stats` (the replicas' together).
fn merge_stats(stats: &mut IngestStats, other: IngestStats) {
    let IngestStats {
        flows,
        probes,
        summaries,
        packet_messages,
        evicted_runs,
        malformed,
        unknown_type,
        evicted_conversations,
        evicted_probes,
        throughput,
        evicted_throughput,
        input_errors,
        evicted_windows,
        shortened_before_ns,
        memory_bytes,
        max_memory_bytes,
        last_problem,
    } = other;
    stats.flows += flows;
    stats.probes += probes;
    stats.summaries += summaries;
    stats.packet_messages += packet_messages;
    stats.evicted_runs += evicted_runs;
    stats.malformed += malformed;
    stats.unknown_type += unknown_type;
    stats.evicted_conversations += evicted_conversations;
    stats.evicted_probes += evicted_probes;
    stats.throughput += throughput;
    stats.evicted_throughput += evicted_throughput;
    stats.input_errors += input_errors;
    stats.evicted_windows += evicted_windows;
    stats.shortened_before_ns = stats.shortened_before_ns.max(shortened_before_ns);
    stats.memory_bytes += memory_bytes;
    stats.max_memory_bytes += max_memory_bytes;
    if stats.last_problem.is_none() {
        stats.last_problem = last_problem;
    }
}

/// The sum of the parts (of replicas that each read some of the partitions).
pub fn merge(parts: impl IntoIterator<Item = Partial>) -> Partial {
    let mut total = Partial::default();
    for part in parts {
        total.version += part.version;
        total.now_ns = total.now_ns.max(part.now_ns);
        total.window_seconds = total.window_seconds.max(part.window_seconds);
        merge_stats(&mut total.stats, part.stats);
        for (key, p) in part.pairs {
            let pair = total.pairs.entry(key).or_default();
            pair.tally.merge(&p.tally);
            pair.nodes.extend(p.nodes);
        }
        for (key, d) in part.destinations {
            match total.destinations.entry(key) {
                std::collections::btree_map::Entry::Occupied(mut e) => {
                    let dest = e.get_mut();
                    dest.tally.merge(&d.tally);
                    dest.sources.extend(d.sources);
                }
                std::collections::btree_map::Entry::Vacant(e) => {
                    e.insert(d);
                }
            }
        }
        for (key, p) in part.probes {
            let probe = total.probes.entry(key).or_default();
            probe.counts.merge(&p.counts);
            for a in p.addresses {
                if !probe.addresses.contains(&a) {
                    probe.addresses.push(a);
                }
            }
        }
        for (run, r) in part.runs {
            let tally = total.runs.entry(run).or_default();
            if tally.messages == 0 || (r.messages > 0 && r.first_ns < tally.first_ns) {
                tally.first_ns = r.first_ns;
            }
            tally.last_ns = tally.last_ns.max(r.last_ns);
            tally.messages += r.messages;
            tally.packets += r.packets;
            for (key, n) in r.keys {
                *tally.keys.entry(key).or_default() += n;
            }
            for node in r.nodes {
                if !tally.nodes.contains(&node) {
                    tally.nodes.push(node);
                }
            }
        }
        for (key, t) in part.throughput {
            match total.throughput.entry(key) {
                std::collections::btree_map::Entry::Occupied(mut e) => {
                    let (tests, failed) = (e.get().tests + t.tests, e.get().failed + t.failed);
                    if t.ended_ms >= e.get().ended_ms {
                        e.insert(t);
                    }
                    let cell = e.get_mut();
                    (cell.tests, cell.failed) = (tests, failed);
                }
                std::collections::btree_map::Entry::Vacant(e) => {
                    e.insert(t);
                }
            }
        }
        total.namespaces.extend(part.namespaces);
        total.nodes.extend(part.nodes);
    }
    total
}

/// The view the (merged) part shows.
pub fn finish(part: Partial) -> View {
    let probes: Vec<ProbeView> = part
        .probes
        .iter()
        .map(|(key, p)| probe_view(key, p))
        .collect();
    let mut pairs: Vec<PairView> = part
        .pairs
        .into_iter()
        .map(|(key, p)| {
            let (source, destination) = key.split_once('\t').unwrap_or((&key, ""));
            PairView {
                source: source.to_string(),
                destination: destination.to_string(),
                nodes: p.nodes.into_iter().collect(),
                summary: Summary::from(&p.tally),
            }
        })
        .collect();
    pairs.sort_by(|a, b| {
        b.summary
            .bytes
            .cmp(&a.summary.bytes)
            .then_with(|| (&a.source, &a.destination).cmp(&(&b.source, &b.destination)))
    });
    let mut destinations: Vec<DestinationView> = part
        .destinations
        .into_iter()
        .filter_map(|(key, d)| {
            let (protocol, address) = parse_destination_key(&key)?;
            let at = address.to_string();
            Some(DestinationView {
                label: d.label,
                protocol,
                ip: address.ip(),
                port: address.port(),
                sources: d.sources.into_iter().collect(),
                summary: Summary::from(&d.tally),
                probes: probes
                    .iter()
                    .filter(|p| p.addresses.contains(&at))
                    .cloned()
                    .collect(),
            })
        })
        .collect();
    destinations.sort_by(|a, b| {
        let failed = |d: &DestinationView| d.summary.attempts - d.summary.successes;
        failed(b)
            .cmp(&failed(a))
            .then_with(|| a.label.cmp(&b.label))
    });
    let mut runs: Vec<RunView> = part
        .runs
        .into_iter()
        .map(|(run, tally)| RunView { run, tally })
        .collect();
    runs.sort_by(|a, b| (b.tally.last_ns.cmp(&a.tally.last_ns)).then_with(|| a.run.cmp(&b.run)));
    View {
        version: part.version,
        now_ns: part.now_ns,
        window_seconds: part.window_seconds,
        stats: part.stats,
        pairs,
        destinations,
        // Sorted by source, check and target: the keys' order.
        probes,
        runs,
        // By client, then server: the keys' order.
        throughput: part.throughput.into_values().collect(),
        namespaces: part.namespaces.into_iter().collect(),
        nodes: part.nodes.into_iter().collect(),
        missing: Vec::new(),
    }
}

/// Computes the view of `filter` from one store.
pub fn view(store: &Store, filter: &Filter) -> View {
    finish(partial(store, filter))
}

/// One window of a pair's time series.
#[derive(Debug, Clone, Serialize)]
pub struct Point {
    /// The window's start, ns since the epoch.
    pub start_ns: u64,
    /// Its counts.
    #[serde(flatten)]
    pub summary: Summary,
}

/// One pair in detail: its time series and its recent failures.
#[derive(Debug, Clone, Serialize)]
pub struct PairDetail {
    /// The initiator.
    pub source: String,
    /// The responder.
    pub destination: String,
    /// Per window, oldest first.
    pub series: Vec<Point>,
    /// Recent failed attempts, newest first.
    pub failed: Vec<FailedFlow>,
    /// Replicas whose part is missing, with why.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub missing: Vec<String>,
}

/// One store's part of a pair's detail (see [`Partial`]).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PairPartial {
    /// Window start, ns → counts.
    pub windows: BTreeMap<u64, Tally>,
    /// Failed attempts.
    pub failed: Vec<FailedFlow>,
}

/// This store's part of the pair `source` → `destination` under `filter` (node and time).
pub fn pair_partial(
    store: &Store,
    filter: &Filter,
    source: &str,
    destination: &str,
) -> PairPartial {
    let from_ns = filter.oldest_ns(store);
    let mut part = PairPartial::default();
    for (key, c) in store.conversations() {
        if key.source != source || key.destination != destination {
            continue;
        }
        if !filter.node_matches(&c.nodes) {
            continue;
        }
        for (start, t) in c.windows.iter().filter(|(s, _)| *s >= from_ns) {
            part.windows.entry(*start).or_default().merge(t);
        }
        part.failed
            .extend(c.failed.iter().filter(|f| f.time_ns >= from_ns).cloned());
    }
    part
}

/// The detail the parts of a pair show together.
pub fn pair_finish(
    source: &str,
    destination: &str,
    parts: impl IntoIterator<Item = PairPartial>,
) -> PairDetail {
    let mut windows: BTreeMap<u64, Tally> = BTreeMap::new();
    let mut failed = Vec::new();
    for part in parts {
        for (start, t) in part.windows {
            windows.entry(start).or_default().merge(&t);
        }
        failed.extend(part.failed);
    }
    failed.sort_by_key(|f| std::cmp::Reverse(f.time_ns));
    PairDetail {
        source: source.to_string(),
        destination: destination.to_string(),
        series: windows
            .into_iter()
            .map(|(start_ns, t)| Point {
                start_ns,
                summary: Summary::from(&t),
            })
            .collect(),
        failed,
        missing: Vec::new(),
    }
}

/// The detail of the pair `source` → `destination` under `filter` (node and time range).
pub fn pair(store: &Store, filter: &Filter, source: &str, destination: &str) -> PairDetail {
    pair_finish(
        source,
        destination,
        [pair_partial(store, filter, source, destination)],
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::Origin;
    use crate::store::Limits;

    fn flow(src: &str, dst: &str, ip: &str, port: u16, t: u64, ok: bool) -> String {
        let ns = t * 1_000_000_000;
        let (handshake, outcome) = if ok {
            (
                r#"{"syn_to_synack_ns":1,"synack_to_ack_ns":1,"rtt_ns":2000000}"#,
                "closed",
            )
        } else {
            ("null", "unanswered")
        };
        let name = |n: &str| {
            if n.contains('/') {
                format!(r#","name":"{n}""#)
            } else {
                String::new()
            }
        };
        format!(
            r#"{{"type":"flow","reason":"idle","protocol":"tcp","initiator":{{"ip":"10.0.0.1","port":40000{}}},"responder":{{"ip":"{ip}","port":{port}{}}},"first_ns":{ns},"last_ns":{ns},"fwd":{{"packets":1,"bytes":60,"first_ns":{ns},"last_ns":{ns}}},"rev":{{"packets":0,"bytes":0,"first_ns":0,"last_ns":0}},"continued":false,"answered":{ok},"tcp":{{"outcome":"{outcome}","syns":1,"handshake":{handshake},"fwd":{{"retransmissions":0,"out_of_order":0,"zero_window":0}},"rev":{{"retransmissions":0,"out_of_order":0,"zero_window":0}}}}}}"#,
            name(src),
            name(dst)
        )
    }

    fn store() -> Store {
        let mut store = Store::new(Limits::default());
        let n1 = Origin {
            node: Some("n1".into()),
            ..Origin::default()
        };
        let n2 = Origin {
            node: Some("n2".into()),
            ..Origin::default()
        };
        for (src, dst, ip, port, t, ok, origin) in [
            ("shop/web-0", "shop/db-0", "10.0.0.2", 5432, 100, true, &n1),
            ("shop/web-0", "shop/db-0", "10.0.0.2", 5432, 200, false, &n1),
            ("shop/web-0", "shop/db-0", "10.0.0.2", 9187, 200, true, &n1),
            (
                "pay/api-0",
                "203.0.113.9",
                "203.0.113.9",
                443,
                300,
                false,
                &n2,
            ),
        ] {
            store.ingest(flow(src, dst, ip, port, t, ok).as_bytes(), origin, 0);
        }
        store
    }

    #[test]
    fn pairs_and_destinations_roll_up_conversations() {
        let v = view(&store(), &Filter::default());
        let pairs: Vec<(&str, &str, u64, u64)> = v
            .pairs
            .iter()
            .map(|p| {
                (
                    p.source.as_str(),
                    p.destination.as_str(),
                    p.summary.attempts,
                    p.summary.successes,
                )
            })
            .collect();
        assert!(pairs.contains(&("shop/web-0", "shop/db-0", 3, 2)));
        assert!(pairs.contains(&("pay/api-0", "203.0.113.9", 1, 0)));
        let labels: Vec<&str> = v.destinations.iter().map(|d| d.label.as_str()).collect();
        assert_eq!(
            labels,
            ["203.0.113.9:443", "shop/db-0:5432", "shop/db-0:9187"],
            "the most failing first (ties by name)"
        );
        assert_eq!(v.namespaces, ["pay", "shop"]);
        assert_eq!(v.nodes, ["n1", "n2"]);
    }

    #[test]
    fn filters_by_namespace_pod_node_and_time() {
        let s = store();
        let only = |f: Filter| -> Vec<String> {
            view(&s, &f)
                .pairs
                .iter()
                .map(|p| format!("{}>{}={}", p.source, p.destination, p.summary.attempts))
                .collect()
        };
        let ns = Filter {
            namespace: Some("pay".into()),
            ..Filter::default()
        };
        assert_eq!(only(ns), ["pay/api-0>203.0.113.9=1"]);
        let pod = Filter {
            pod: Some("db-0".into()),
            ..Filter::default()
        };
        assert_eq!(only(pod), ["shop/web-0>shop/db-0=3"]);
        let address = Filter {
            pod: Some("203.0.113.9".into()),
            ..Filter::default()
        };
        assert_eq!(only(address), ["pay/api-0>203.0.113.9=1"]);
        let node = Filter {
            node: Some("n1".into()),
            ..Filter::default()
        };
        assert_eq!(only(node), ["shop/web-0>shop/db-0=3"]);
        // The newest record is at 300 s: the last 150 s hold the records at 200 and 300.
        let recent = Filter {
            since: Some(150),
            ..Filter::default()
        };
        let mut got = only(recent);
        got.sort();
        assert_eq!(got, ["pay/api-0>203.0.113.9=1", "shop/web-0>shop/db-0=2"]);
    }

    #[test]
    fn a_pair_has_its_series_and_failures() {
        let d = pair(&store(), &Filter::default(), "shop/web-0", "shop/db-0");
        let series: Vec<(u64, u64, u64)> = d
            .series
            .iter()
            .map(|p| {
                (
                    p.start_ns / 1_000_000_000,
                    p.summary.attempts,
                    p.summary.successes,
                )
            })
            .collect();
        assert_eq!(series, [(100, 1, 1), (200, 2, 1)]);
        assert_eq!(d.failed.len(), 1);
        assert_eq!(d.failed[0].outcome, "unanswered");
        assert_eq!(d.failed[0].responder, "shop/db-0:5432");
    }

    /// The records of [`store`], and probes, split by a key as replicas split partitions.
    #[test]
    fn the_parts_of_split_stores_merge_into_the_view_of_one() {
        let records = [
            ("shop/web-0", "shop/db-0", "10.0.0.2", 5432, 100, true),
            ("shop/web-0", "shop/db-0", "10.0.0.2", 5432, 200, false),
            ("shop/web-1", "shop/db-0", "10.0.0.2", 5432, 210, true),
            ("shop/web-0", "shop/db-0", "10.0.0.2", 9187, 200, true),
            ("pay/api-0", "203.0.113.9", "203.0.113.9", 443, 300, false),
        ];
        let probe = |ok: bool| {
            let result = if ok {
                r#"{"ok":true,"latency_ns":3000000,"address":"10.0.0.2:5432"}"#
            } else {
                r#"{"ok":false,"reason":"refused","address":"10.0.0.2:5432"}"#
            };
            format!(r#"{{"type":"probe","check":"tcp","target":"db-0:5432","results":[{result}]}}"#)
        };
        let mut one = Store::new(Limits::default());
        let mut split = [Store::new(Limits::default()), Store::new(Limits::default())];
        for (i, (src, dst, ip, port, t, ok)) in records.into_iter().enumerate() {
            let origin = Origin {
                key: Some(src.into()),
                node: Some(format!("n{}", i % 2)),
                ..Origin::default()
            };
            let json = flow(src, dst, ip, port, t, ok);
            one.ingest(json.as_bytes(), &origin, 0);
            // Keyed by the source pod: web-0 on one replica, the others on the other.
            split[usize::from(src != "shop/web-0")].ingest(json.as_bytes(), &origin, 0);
        }
        for (t, ok, source) in [(150, true, "shop/web-0"), (250, false, "shop/web-1")] {
            let origin = Origin {
                key: Some(source.into()),
                ..Origin::default()
            };
            let at = t * 1_000_000_000;
            one.ingest(probe(ok).as_bytes(), &origin, at);
            split[usize::from(source != "shop/web-0")].ingest(probe(ok).as_bytes(), &origin, at);
        }
        let shown = |v: View| {
            let mut v = serde_json::to_value(v).unwrap();
            for k in ["version", "stats"] {
                v.as_object_mut().unwrap().remove(k);
            }
            v
        };
        for filter in [
            Filter::default(),
            Filter {
                namespace: Some("shop".into()),
                ..Filter::default()
            },
            Filter {
                since: Some(100),
                // The replicas cut at the newest record of both.
                now_ns: Some(one.now_ns()),
                ..Filter::default()
            },
        ] {
            let whole = view(&one, &filter);
            let parts = split.iter().map(|s| {
                // As between replicas: through JSON.
                let text = serde_json::to_string(&partial(s, &filter)).unwrap();
                serde_json::from_str::<Partial>(&text).unwrap()
            });
            let merged = finish(merge(parts));
            assert_eq!(merged.stats.flows, whole.stats.flows);
            assert_eq!(shown(merged), shown(whole), "{filter:?}");
        }
        let d = pair(&one, &Filter::default(), "shop/web-0", "shop/db-0");
        let parts = split
            .iter()
            .map(|s| pair_partial(s, &Filter::default(), "shop/web-0", "shop/db-0"));
        let merged = pair_finish("shop/web-0", "shop/db-0", parts);
        assert_eq!(
            serde_json::to_value(merged).unwrap(),
            serde_json::to_value(d).unwrap()
        );
    }

    #[test]
    fn probes_follow_the_time_range() {
        let mut store = store();
        let origin = Origin {
            key: Some("shop/web-0".into()),
            ..Origin::default()
        };
        let ok = br#"{"type":"probe","check":"tcp","target":"db:5432","results":[{"ok":true,"latency_ns":1000,"address":"10.0.0.2:5432"}]}"#;
        let refused = br#"{"type":"probe","check":"tcp","target":"db:5432","results":[{"ok":false,"reason":"refused","address":"10.0.0.2:5432"}]}"#;
        store.ingest(ok, &origin, 120_000_000_000);
        store.ingest(refused, &origin, 290_000_000_000);
        let counts = |f: Filter| -> Vec<(u64, u64)> {
            view(&store, &f)
                .probes
                .iter()
                .map(|p| (p.attempts, p.successes))
                .collect()
        };
        assert_eq!(counts(Filter::default()), [(2, 1)]);
        // The newest record is the flow at 300 s: the last 50 s hold the refusal only.
        let recent = Filter {
            since: Some(50),
            ..Filter::default()
        };
        assert_eq!(counts(recent.clone()), [(1, 0)]);
        let v = view(&store, &recent);
        let db = v.destinations.iter().find(|d| d.label == "shop/db-0:5432");
        assert!(db.is_none(), "no flows to db-0 in the last 50 s");
        let tiny = Filter {
            since: Some(5),
            ..Filter::default()
        };
        assert!(counts(tiny).is_empty(), "no probe in the last 5 s");
    }
}
