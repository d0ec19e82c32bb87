//! What the page shows, computed from the store for one filter: pod pairs (the map's
//! edges), destinations (the table), probe checks, and one pair's time series and
//! failures.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};

use serde::{Deserialize, Serialize};
use snoopy_capture::flow::{Percentiles, Protocol, Summary, Tally};

use crate::store::{
    Conversation, FailedFlow, IngestStats, ProbeKey, RunTally, Store, ThroughputCell,
};

/// Which part of the data to show; every member is optional and they combine with AND.
/// These are the page's URL query parameters, so a view can be shared.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Filter {
    /// Only conversations with an end in this namespace.
    #[serde(default, deserialize_with = "non_empty")]
    pub namespace: Option<String>,
    /// Only conversations with this pod (`POD` or `NAMESPACE/POD`) or address at an end.
    #[serde(default, deserialize_with = "non_empty")]
    pub pod: Option<String>,
    /// Only what this node reported.
    #[serde(default, deserialize_with = "non_empty")]
    pub node: Option<String>,
    /// Only the last this many seconds (of data time).
    #[serde(default)]
    pub since: Option<u64>,
}

fn non_empty<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let s = Option::<String>::deserialize(d)?;
    Ok(s.map(|s| s.trim().to_string()).filter(|s| !s.is_empty()))
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
            Some(s) => store
                .now_ns()
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

/// A probe check.
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
#[derive(Debug, Clone, Serialize)]
pub struct RunView {
    /// The run id (the messages' `run` header: `NS/NAME/once` for an operator Job).
    pub run: String,
    /// What its messages said.
    #[serde(flatten)]
    pub tally: RunTally,
}

/// The latest throughput test of an ordered pair: one cell of the matrix.
#[derive(Debug, Clone, Serialize)]
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
    /// The store's version this was computed at.
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
}

/// A destination being summed: its label, its counts, the sources that tried it.
type Rollup<'a> = (String, Tally, BTreeSet<&'a str>);

fn sum_windows(c: &Conversation, from_ns: u64) -> Option<Tally> {
    let mut total: Option<Tally> = None;
    for (_, t) in c.windows.iter().filter(|(s, _)| *s >= from_ns) {
        total.get_or_insert_with(Tally::default).merge(t);
    }
    total
}

fn probe_view(key: &ProbeKey, p: &crate::store::ProbeTally) -> ProbeView {
    ProbeView {
        source: key.source.clone(),
        check: key.check.clone(),
        target: key.target.clone(),
        attempts: p.attempts,
        successes: p.successes,
        success_rate: (p.attempts > 0).then(|| p.successes as f64 / p.attempts as f64),
        failures: p.failures.clone(),
        latency_ns: p.latency.summary(),
        addresses: p.addresses.clone(),
    }
}

fn label(host: &str, ip: IpAddr, port: u16) -> String {
    if host.parse::<IpAddr>().is_ok() {
        SocketAddr::new(ip, port).to_string()
    } else {
        format!("{host}:{port}")
    }
}

/// Computes the view of `filter`.
pub fn view(store: &Store, filter: &Filter) -> View {
    let from_ns = filter.oldest_ns(store);
    let mut pairs: BTreeMap<(&str, &str), (Tally, BTreeSet<&str>)> = BTreeMap::new();
    let mut destinations: BTreeMap<(Protocol, IpAddr, u16), Rollup<'_>> = BTreeMap::new();
    let mut namespaces = BTreeSet::new();
    let mut nodes = BTreeSet::new();
    for (key, c) in store.conversations() {
        for host in [&key.source, &key.destination] {
            if let Some((ns, _)) = host.split_once('/') {
                namespaces.insert(ns.to_string());
            }
        }
        nodes.extend(c.nodes.iter().cloned());
        if !filter.matches(
            [key.source.as_str(), &key.destination].into_iter(),
            &c.nodes,
        ) {
            continue;
        }
        let Some(total) = sum_windows(c, from_ns) else {
            continue;
        };
        let pair = pairs.entry((&key.source, &key.destination)).or_default();
        pair.0.merge(&total);
        pair.1.extend(c.nodes.iter().map(String::as_str));
        let dest = destinations
            .entry((key.protocol, key.ip, key.port))
            .or_insert_with(|| {
                (
                    label(&key.destination, key.ip, key.port),
                    Tally::default(),
                    BTreeSet::new(),
                )
            });
        dest.1.merge(&total);
        dest.2.insert(&key.source);
    }
    let probes: Vec<ProbeView> = store
        .probes()
        .filter(|(k, p)| filter.matches(std::iter::once(k.source.as_str()), &p.nodes))
        .map(|(k, p)| probe_view(k, p))
        .collect();
    let mut pairs: Vec<PairView> = pairs
        .into_iter()
        .map(|((source, destination), (tally, nodes))| PairView {
            source: source.to_string(),
            destination: destination.to_string(),
            nodes: nodes.into_iter().map(str::to_string).collect(),
            summary: Summary::from(&tally),
        })
        .collect();
    pairs.sort_by(|a, b| {
        b.summary
            .bytes
            .cmp(&a.summary.bytes)
            .then_with(|| (&a.source, &a.destination).cmp(&(&b.source, &b.destination)))
    });
    let mut destinations: Vec<DestinationView> = destinations
        .into_iter()
        .map(|((protocol, ip, port), (label, tally, sources))| {
            let address = SocketAddr::new(ip, port).to_string();
            DestinationView {
                label,
                protocol,
                ip,
                port,
                sources: sources.into_iter().map(str::to_string).collect(),
                summary: Summary::from(&tally),
                probes: probes
                    .iter()
                    .filter(|p| p.addresses.contains(&address))
                    .cloned()
                    .collect(),
            }
        })
        .collect();
    destinations.sort_by(|a, b| {
        let failed = |d: &DestinationView| d.summary.attempts - d.summary.successes;
        failed(b)
            .cmp(&failed(a))
            .then_with(|| a.label.cmp(&b.label))
    });
    let mut runs: Vec<RunView> = store
        .runs()
        .filter(|(_, r)| filter.matches(r.keys.keys().map(String::as_str), &r.nodes))
        .map(|(run, r)| RunView {
            run: run.clone(),
            tally: r.clone(),
        })
        .collect();
    runs.sort_by(|a, b| (b.tally.last_ns.cmp(&a.tally.last_ns)).then_with(|| a.run.cmp(&b.run)));
    let mut throughput: Vec<ThroughputView> = store
        .throughput()
        .filter(|c| {
            for pod in [&c.result.client, &c.result.server] {
                if let Some((ns, _)) = pod.split_once('/') {
                    namespaces.insert(ns.to_string());
                }
            }
            nodes.extend(c.node.iter().cloned());
            let node: Vec<String> = c.node.iter().cloned().collect();
            filter.matches(
                [c.result.client.as_str(), &c.result.server].into_iter(),
                &node,
            )
        })
        .map(throughput_view)
        .collect();
    throughput.sort_by(|a, b| (&a.client, &a.server).cmp(&(&b.client, &b.server)));
    let mut probes = probes;
    probes.sort_by(|a, b| (&a.source, &a.check, &a.target).cmp(&(&b.source, &b.check, &b.target)));
    View {
        version: store.version(),
        now_ns: store.now_ns(),
        window_seconds: store.limits().window.as_secs_f64(),
        stats: store.stats().clone(),
        pairs,
        destinations,
        probes,
        runs,
        throughput,
        namespaces: namespaces.into_iter().collect(),
        nodes: nodes.into_iter().collect(),
    }
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
}

/// The detail of the pair `source` → `destination` under `filter` (node and time range).
pub fn pair(store: &Store, filter: &Filter, source: &str, destination: &str) -> PairDetail {
    let from_ns = filter.oldest_ns(store);
    let mut windows: BTreeMap<u64, Tally> = BTreeMap::new();
    let mut failed = Vec::new();
    for (key, c) in store.conversations() {
        if key.source != source || key.destination != destination {
            continue;
        }
        if !filter.node_matches(&c.nodes) {
            continue;
        }
        for (start, t) in c.windows.iter().filter(|(s, _)| *s >= from_ns) {
            windows.entry(*start).or_default().merge(t);
        }
        failed.extend(c.failed.iter().filter(|f| f.time_ns >= from_ns).cloned());
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
    }
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
}
