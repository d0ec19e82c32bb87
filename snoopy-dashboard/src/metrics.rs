//! `/metrics`: the aggregates in Prometheus' text format, with Hubble's and Retina's label
//! names (`source_namespace`, `source_pod`, `destination_namespace`, `destination_pod`) so
//! existing Grafana setups work. An end that is not a known pod has an empty namespace and
//! its address as the pod label (Hubble would fold every such end into one `world`; the
//! address is what a user debugging a failing destination needs). The number of series is
//! bounded by the store's conversation limit; series of pods that stop appearing go when
//! their last window leaves the retention.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::time::Duration;

use snoopy_capture::flow::Histogram;

use crate::store::{ProbeKey, Store};

/// Upper bounds (seconds) of the duration histograms' buckets.
const BUCKETS: [f64; 16] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// `NAMESPACE/POD` → (namespace, pod); an address → ("", address).
fn split_host(host: &str) -> (&str, &str) {
    host.split_once('/').unwrap_or(("", host))
}

fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn labels(pairs: &[(&str, &str)]) -> String {
    let inner: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
        .collect();
    format!("{{{}}}", inner.join(","))
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// One sample line: `NAME{LABELS} VALUE`.
fn sample(
    out: &mut String,
    name: &str,
    with_labels: &[(&str, &str)],
    value: impl std::fmt::Display,
) {
    let _ = writeln!(out, "{name}{} {value}", labels(with_labels));
}

fn histogram(out: &mut String, name: &str, base: &[(&str, &str)], h: &Histogram, sum_ns: u64) {
    for le in BUCKETS {
        let le_text = le.to_string();
        let mut with_le = base.to_vec();
        with_le.push(("le", &le_text));
        let n = h.count_at_most(Duration::from_secs_f64(le));
        sample(out, &format!("{name}_bucket"), &with_le, n);
    }
    let mut inf = base.to_vec();
    inf.push(("le", "+Inf"));
    sample(out, &format!("{name}_bucket"), &inf, h.count());
    sample(out, &format!("{name}_sum"), base, sum_ns as f64 / 1e9);
    sample(out, &format!("{name}_count"), base, h.count());
}

/// The pod pair labels of a conversation's ends.
fn pair_labels(source: &str, destination: &str) -> Vec<(&'static str, String)> {
    let (sn, sp) = split_host(source);
    let (dn, dp) = split_host(destination);
    vec![
        ("source_namespace", sn.to_string()),
        ("source_pod", sp.to_string()),
        ("destination_namespace", dn.to_string()),
        ("destination_pod", dp.to_string()),
    ]
}

/// Owned labels as the borrowed pairs [`labels`] takes, plus `extra`.
fn with<'a>(
    owned: &'a [(&'static str, String)],
    extra: &[(&'a str, &'a str)],
) -> Vec<(&'a str, &'a str)> {
    owned
        .iter()
        .map(|(k, v)| (*k, v.as_str()))
        .chain(extra.iter().copied())
        .collect()
}

/// A probe check's labels.
fn probe_labels(key: &ProbeKey) -> [(&'static str, &str); 4] {
    let (ns, pod) = split_host(&key.source);
    [
        ("source_namespace", ns),
        ("source_pod", pod),
        ("type", key.check.as_str()),
        ("target", key.target.as_str()),
    ]
}

/// Borrowed labels plus one more.
fn with_refs<'a>(
    base: &[(&'a str, &'a str)],
    extra: (&'a str, &'a str),
) -> Vec<(&'a str, &'a str)> {
    base.iter().copied().chain(std::iter::once(extra)).collect()
}

/// Per pod pair, summed over its conversations.
#[derive(Default)]
struct PairSeries {
    handshakes: BTreeMap<&'static str, u64>,
    rtt: Histogram,
    rtt_sum_ns: u64,
    retransmissions: u64,
    egress: u64,
    ingress: u64,
}

/// The metrics text.
pub fn render(store: &Store) -> String {
    let mut pairs: BTreeMap<(&str, &str), PairSeries> = BTreeMap::new();
    for (key, c) in store.conversations() {
        let s = pairs.entry((&key.source, &key.destination)).or_default();
        for (result, n) in &c.lifetime.handshakes {
            *s.handshakes.entry(result).or_default() += n;
        }
        s.rtt.merge(&c.lifetime.handshake_rtt);
        s.rtt_sum_ns += c.lifetime.handshake_rtt_sum_ns;
        s.retransmissions += c.lifetime.retransmissions;
        s.egress += c.lifetime.bytes_egress;
        s.ingress += c.lifetime.bytes_ingress;
    }
    // Each pair's labels, made once for the four families below.
    let pairs: Vec<(Vec<(&'static str, String)>, PairSeries)> = pairs
        .into_iter()
        .map(|((source, destination), s)| (pair_labels(source, destination), s))
        .collect();
    let mut out = String::new();

    header(
        &mut out,
        "snoopy_tcp_handshakes_total",
        "counter",
        "TCP connection attempts by result (success, refused, unanswered, reset).",
    );
    for (base, s) in &pairs {
        for (result, n) in &s.handshakes {
            sample(
                &mut out,
                "snoopy_tcp_handshakes_total",
                &with(base, &[("result", result)]),
                n,
            );
        }
    }
    header(
        &mut out,
        "snoopy_tcp_handshake_duration_seconds",
        "histogram",
        "TCP handshake round trip (SYN to the ACK completing it), seconds.",
    );
    for (base, s) in &pairs {
        if s.rtt.count() == 0 {
            continue;
        }
        let l = with(base, &[]);
        histogram(
            &mut out,
            "snoopy_tcp_handshake_duration_seconds",
            &l,
            &s.rtt,
            s.rtt_sum_ns,
        );
    }
    header(
        &mut out,
        "snoopy_tcp_retransmissions_total",
        "counter",
        "TCP segments retransmitted, both ways.",
    );
    for (base, s) in &pairs {
        sample(
            &mut out,
            "snoopy_tcp_retransmissions_total",
            &with(base, &[]),
            s.retransmissions,
        );
    }
    header(
        &mut out,
        "snoopy_flow_bytes_total",
        "counter",
        "Bytes on the wire; direction egress is source to destination, ingress the answers.",
    );
    for (base, s) in &pairs {
        for (direction, n) in [("egress", s.egress), ("ingress", s.ingress)] {
            let l = with(base, &[("direction", direction)]);
            sample(&mut out, "snoopy_flow_bytes_total", &l, n);
        }
    }

    header(
        &mut out,
        "snoopy_probe_attempts_total",
        "counter",
        "Probe attempts by check type, target and result (success or the failure reason).",
    );
    for (key, p) in store.probes() {
        let base = probe_labels(key);
        let ok = with_refs(&base, ("result", "success"));
        sample(
            &mut out,
            "snoopy_probe_attempts_total",
            &ok,
            p.lifetime.successes,
        );
        for (reason, n) in &p.lifetime.failures {
            let l = with_refs(&base, ("result", reason));
            sample(&mut out, "snoopy_probe_attempts_total", &l, n);
        }
    }
    header(
        &mut out,
        "snoopy_probe_duration_seconds",
        "histogram",
        "Latency of successful probe attempts (TCP connect, HTTP first byte, DNS answer), seconds.",
    );
    for (key, p) in store.probes() {
        if p.lifetime.latency.count() == 0 {
            continue;
        }
        let l = with_refs(&probe_labels(key), ("result", "success"));
        histogram(
            &mut out,
            "snoopy_probe_duration_seconds",
            &l,
            &p.lifetime.latency,
            p.lifetime.latency_sum_ns,
        );
    }

    header(
        &mut out,
        "snoopy_throughput_bits_per_second",
        "gauge",
        "Received bits per second of the latest throughput test of each pod pair (client is source), by direction (egress: client to server).",
    );
    for cell in store.throughput() {
        let r = &cell.result;
        let base = pair_labels(&r.client, &r.server);
        for (direction, flow) in [("egress", &r.forward), ("ingress", &r.reverse)] {
            if let Some(f) = flow {
                let l = with(&base, &[("direction", direction)]);
                sample(
                    &mut out,
                    "snoopy_throughput_bits_per_second",
                    &l,
                    f.received_bits_per_second,
                );
            }
        }
    }

    let stats = store.stats();
    header(
        &mut out,
        "snoopy_dashboard_records_total",
        "counter",
        "Lines and messages read, by what they were.",
    );
    for (kind, n) in [
        ("flow", stats.flows),
        ("probe", stats.probes),
        ("malformed", stats.malformed),
        ("unknown_type", stats.unknown_type),
        ("summary", stats.summaries),
        ("packet_message", stats.packet_messages),
        ("throughput", stats.throughput),
    ] {
        sample(
            &mut out,
            "snoopy_dashboard_records_total",
            &[("kind", kind)],
            n,
        );
    }
    header(
        &mut out,
        "snoopy_dashboard_evicted_total",
        "counter",
        "Keys (and, for memory, time windows) dropped to stay within the limits.",
    );
    for (what, n) in [
        ("conversation", stats.evicted_conversations),
        ("probe", stats.evicted_probes),
        ("run", stats.evicted_runs),
        ("throughput_pair", stats.evicted_throughput),
        ("window", stats.evicted_windows),
    ] {
        sample(
            &mut out,
            "snoopy_dashboard_evicted_total",
            &[("what", what)],
            n,
        );
    }
    header(
        &mut out,
        "snoopy_dashboard_memory_bytes",
        "gauge",
        "Bytes the conversation and probe aggregates hold (estimated), and the most they may (limit).",
    );
    sample(
        &mut out,
        "snoopy_dashboard_memory_bytes",
        &[("of", "aggregates")],
        stats.memory_bytes,
    );
    sample(
        &mut out,
        "snoopy_dashboard_memory_bytes",
        &[("of", "limit")],
        stats.max_memory_bytes,
    );
    header(
        &mut out,
        "snoopy_dashboard_input_errors_total",
        "counter",
        "Errors of the inputs (an unreadable file, a broker that went away).",
    );
    let _ = writeln!(
        out,
        "snoopy_dashboard_input_errors_total {}",
        stats.input_errors
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::Origin;
    use crate::store::Limits;

    /// The Grafana dashboard shipped beside the binary.
    const GRAFANA: &str = include_str!("../grafana/snoopy.json");

    #[test]
    fn the_grafana_dashboard_queries_only_metrics_that_exist() {
        let mut store = Store::new(Limits::default());
        let probe = br#"{"type":"probe","check":"tcp","target":"a:1","results":[{"ok":true,"latency_ns":5}]}"#;
        store.ingest(probe, &Origin::default(), 0);
        let text = render(&store);
        let families: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .map(|l| l.split_whitespace().next().unwrap())
            .collect();
        let exported = |name: &str| {
            families.iter().any(|f| {
                name == *f
                    || ["_bucket", "_sum", "_count"]
                        .iter()
                        .any(|suffix| name == format!("{f}{suffix}"))
            })
        };
        let dashboard: serde_json::Value = serde_json::from_str(GRAFANA).unwrap();
        let mut queried = Vec::new();
        for panel in dashboard["panels"].as_array().unwrap() {
            for target in panel["targets"].as_array().unwrap() {
                let expr = target["expr"].as_str().unwrap();
                let mut rest = expr;
                while let Some(at) = rest.find("snoopy_") {
                    let name: String = rest[at..]
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect();
                    rest = &rest[at + name.len()..];
                    queried.push(name);
                }
            }
        }
        assert!(queried.len() >= 8, "{queried:?}");
        for name in &queried {
            assert!(
                exported(name),
                "the Grafana dashboard queries {name}, which /metrics does not export"
            );
        }
    }

    #[test]
    fn every_input_count_and_eviction_is_exported() {
        let mut store = Store::new(Limits {
            max_runs: 1,
            ..Limits::default()
        });
        let run = |name: &str| Origin {
            run: Some(name.into()),
            ..Origin::default()
        };
        store.add_packets(&run("a"), 3, 1);
        store.add_packets(&run("b"), 4, 2);
        store.ingest(br#"{"type":"summary"}"#, &Origin::default(), 0);
        let pair = |client: &str, ended: u64| {
            format!(
                r#"{{"type":"throughput","client":"shop/{client}","server":"shop/db","server_address":"10.0.0.2","port":5201,"settings":{{"protocol":"tcp","direction":"forward","streams":1,"seconds":1,"round_trips":0}},"started_ms":1,"ended_ms":{ended},"forward":{{"sent_bits_per_second":2e9,"received_bits_per_second":1.5e9}}}}"#
            )
        };
        let limited = Limits {
            max_throughput_pairs: 1,
            ..Limits::default()
        };
        let mut pairs = Store::new(limited);
        pairs.ingest(pair("a", 5).as_bytes(), &Origin::default(), 0);
        pairs.ingest(pair("b", 6).as_bytes(), &Origin::default(), 0);
        let text = render(&pairs);
        for line in [
            r#"snoopy_dashboard_records_total{kind="throughput"} 2"#,
            r#"snoopy_dashboard_evicted_total{what="throughput_pair"} 1"#,
            r#"snoopy_throughput_bits_per_second{source_namespace="shop",source_pod="b",destination_namespace="shop",destination_pod="db",direction="egress"} 1500000000"#,
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in:\n{text}");
        }
        let text = render(&store);
        for line in [
            r#"snoopy_dashboard_records_total{kind="packet_message"} 2"#,
            r#"snoopy_dashboard_records_total{kind="summary"} 1"#,
            r#"snoopy_dashboard_evicted_total{what="run"} 1"#,
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in:\n{text}");
        }
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(
            labels(&[("target", "a\"b\\c\nd")]),
            r#"{target="a\"b\\c\nd"}"#
        );
        assert_eq!(split_host("shop/web-0"), ("shop", "web-0"));
        assert_eq!(split_host("10.0.0.1"), ("", "10.0.0.1"));
    }
}
