//! The page in a real headless Chromium.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use serde::Deserialize;
use snoopy_testkit::NetnsPair;

use crate::traffic::{Dashboard, flows_of, ipv4_only, podtracer, servers};
use crate::webdriver::Browser;

#[derive(Debug, Deserialize, PartialEq)]
struct Edge {
    source: String,
    destination: String,
    rate: String,
    attempts: String,
}

#[derive(Debug, Deserialize, PartialEq)]
struct Row {
    attempts: u64,
    successes: u64,
    failures: BTreeMap<String, u64>,
}

const EDGES: &str = "return [...document.querySelectorAll('#map .edge')].map(e => ({source: e.dataset.source, destination: e.dataset.destination, rate: e.dataset.successRate, attempts: e.dataset.attempts}))";
const ROWS: &str = "return Object.fromEntries([...document.querySelectorAll('#destinations tbody tr')].map(r => [r.dataset.destination, {attempts: +r.dataset.attempts, successes: +r.dataset.successes, failures: JSON.parse(r.querySelector('[data-failures]').dataset.failures)}]))";

fn row(attempts: u64, successes: u64, refused: u64, unanswered: u64) -> Row {
    let failures = [
        ("refused", refused),
        ("unanswered", unanswered),
        ("reset", 0),
        ("no_reply", 0),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    Row {
        attempts,
        successes,
        failures,
    }
}

fn edge(destination: &str, successes: u32, attempts: u32) -> Edge {
    let rate = f64::from(successes) / f64::from(attempts);
    Edge {
        source: "198.18.0.1".into(),
        destination: destination.into(),
        rate: rate.to_string(),
        attempts: attempts.to_string(),
    }
}

/// The metric samples with these label values.
fn sample(metrics: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    metrics
        .samples
        .iter()
        .filter(|s| s.metric == name)
        .find(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            _ => f64::NAN,
        })
}

fn scrape(url: &str) -> Result<prometheus_parse::Scrape> {
    let text = ureq::get(&format!("{url}metrics"))
        .call()?
        .body_mut()
        .read_to_string()?;
    let lines = text.lines().map(|l| Ok(l.to_string()));
    Ok(prometheus_parse::Scrape::parse(lines)?)
}

#[test]
fn the_page_shows_each_pair_and_destination_as_the_traffic_went_and_updates_live() -> Result<()> {
    snoopy_testkit::require_root()?;
    snoopy_testkit::require_tool("python3")?;
    snoopy_testkit::require_tool("nft")?;
    let podtracer_binary = podtracer()?;
    assert!(podtracer_binary.exists());
    let pair = NetnsPair::new()?;
    ipv4_only(&pair.a)?;
    ipv4_only(&pair.b)?;
    pair.b
        .run(&["ip", "addr", "add", "198.18.0.3/24", "dev", "veth-b"])?;
    let _servers = servers(&pair.b)?;
    pair.a.wait_for_port("198.18.0.2", 8080)?;
    pair.a.wait_for_port("198.18.0.3", 8080)?;

    // Round one: to .2, 3 accepted, 2 refused, 2 dropped; to .3, 2 accepted, 1 refused.
    let first = flows_of(
        &pair,
        &[("198.18.0.2", 3, 2, 2), ("198.18.0.3", 2, 1, 0)],
        &[],
    )?;
    let mut dashboard = Dashboard::start(&["-", "--node", "node-1"])?;
    dashboard.feed(&first)?;
    dashboard.feed(b"this line is not JSON\n{\"type\":\"alert\"}\n")?;

    let browser = Browser::start(1400, 1600)?;
    browser.goto(&dashboard.url)?;
    browser.wait_until(
        "return document.querySelectorAll('#map .edge').length === 2 && document.querySelectorAll('#destinations tbody tr').length === 5",
        Duration::from_secs(10),
    )?;
    let mut edges: Vec<Edge> = browser.eval(EDGES)?;
    edges.sort_by(|a, b| a.destination.cmp(&b.destination));
    assert_eq!(
        edges,
        vec![edge("198.18.0.2", 3, 7), edge("198.18.0.3", 2, 3)]
    );
    let rows: BTreeMap<String, Row> = browser.eval(ROWS)?;
    let expected: BTreeMap<String, Row> = [
        ("198.18.0.2:8080", row(3, 3, 0, 0)),
        ("198.18.0.2:8081", row(2, 0, 2, 0)),
        ("198.18.0.2:8082", row(2, 0, 0, 2)),
        ("198.18.0.3:8080", row(2, 2, 0, 0)),
        ("198.18.0.3:8081", row(1, 0, 1, 0)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    assert_eq!(rows, expected);
    // The bad lines are counted and shown, not fatal.
    let (malformed, unknown): (String, String) = browser.eval(
        "const s = document.querySelector('#stats').dataset; return [s.malformed, s.unknownType]",
    )?;
    assert_eq!((malformed.as_str(), unknown.as_str()), ("1", "1"));

    // By keyboard: focus the failing edge, Enter opens its detail with each failure.
    browser.eval::<serde_json::Value>(
        "document.querySelector('#map .edge[data-destination=\"198.18.0.2\"]').focus()",
    )?;
    browser.press("\u{E007}")?;
    browser.wait_until(
        "return !document.querySelector('#pair').hidden && document.querySelectorAll('#failed tbody tr').length === 4",
        Duration::from_secs(5),
    )?;
    let outcomes: Vec<String> = browser.eval(
        "return [...document.querySelectorAll('#failed tbody tr')].map(r => r.dataset.outcome).sort()",
    )?;
    assert_eq!(outcomes, ["refused", "refused", "unanswered", "unanswered"]);
    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    browser.screenshot(&shots.join("dashboard-light.png"))?;

    // Live: a new refused connection shows within 2 s of its record, without a reload.
    browser.eval::<serde_json::Value>("window.notReloaded = true")?;
    let second = flows_of(&pair, &[("198.18.0.3", 0, 1, 0)], &[])?;
    dashboard.feed(&second)?;
    let took = browser.wait_until(
        "const r = document.querySelector('#destinations tr[data-destination=\"198.18.0.3:8081\"]'); return r !== null && r.dataset.attempts === '2' && window.notReloaded === true",
        Duration::from_secs(2),
    )?;
    eprintln!("the new failure showed {took:?} after its record was written");

    // The metrics carry the same numbers, in Prometheus' text format.
    let metrics = scrape(&dashboard.url)?;
    let handshakes = |dst: &str, result: &str| {
        sample(
            &metrics,
            "snoopy_tcp_handshakes_total",
            &[
                ("source_pod", "198.18.0.1"),
                ("destination_pod", dst),
                ("result", result),
            ],
        )
    };
    assert_eq!(handshakes("198.18.0.2", "success"), Some(3.0));
    assert_eq!(handshakes("198.18.0.2", "refused"), Some(2.0));
    assert_eq!(handshakes("198.18.0.2", "unanswered"), Some(2.0));
    assert_eq!(handshakes("198.18.0.3", "success"), Some(2.0));
    assert_eq!(handshakes("198.18.0.3", "refused"), Some(2.0));
    let rtt_count = metrics
        .samples
        .iter()
        .find(|s| {
            s.metric == "snoopy_tcp_handshake_duration_seconds"
                && s.labels.get("destination_pod") == Some("198.18.0.2")
        })
        .map(|s| match &s.value {
            prometheus_parse::Value::Histogram(buckets) => {
                buckets.iter().map(|b| b.count).fold(0.0, f64::max)
            }
            _ => f64::NAN,
        });
    assert_eq!(
        rtt_count,
        Some(3.0),
        "one handshake RTT per accepted connection"
    );
    assert_eq!(
        sample(
            &metrics,
            "snoopy_dashboard_records_total",
            &[("kind", "malformed")]
        ),
        Some(1.0)
    );

    // The dark scheme, for the README.
    browser.eval::<serde_json::Value>("document.querySelector('#scheme').click()")?;
    browser.wait_until(
        "return document.documentElement.dataset.scheme === 'dark'",
        Duration::from_secs(2),
    )?;
    browser.screenshot(&shots.join("dashboard-dark.png"))?;
    eprintln!("screenshots in {}", shots.display());
    Ok(())
}
