//! Two replicas on three partitions: each reads its share of a real broker's partitions,
//! and the page of either shows everything, live, in a real headless Chromium; a replica
//! that goes away is named on the page while the other's data stays.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use serde_json::Value;
use snoopy_capture::sink::kafka::{KafkaRecordSink, KafkaSettings, partition_of};
use snoopy_testkit::NetnsPair;
use snoopy_testkit::kafka::Broker;

use crate::traffic::{Dashboard, flows_of, ipv4_only, podtracer, servers};
use crate::webdriver::Browser;

/// A pod name whose records land on `partition` of 3 (the producer's own hash).
fn key_on(partition: usize) -> String {
    (0..)
        .map(|i| format!("shop/client-{i}"))
        .find(|k| partition_of(k, 3) == partition)
        .expect("some name hashes there")
}

/// Publishes JSON lines (real podtracer output) under `key`, as podtracer's sink would for
/// a pod of that name, and waits until the broker has them.
fn publish(broker: &Broker, topic: &str, key: &str, lines: &[u8]) -> Result<()> {
    let settings = KafkaSettings::from_url(&broker.url(topic))?;
    let sink = KafkaRecordSink::connect(&settings, "node-1", "", 8 << 20)?;
    let mut n = 0;
    for line in lines.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        let kind: Value = serde_json::from_slice(line)?;
        ensure!(
            sink.send(key, kind["type"].as_str().unwrap_or("?"), line.to_vec()),
            "buffer full"
        );
        n += 1;
    }
    let report = sink.delivery().finish(Duration::from_secs(10));
    ensure!(
        report.sent == n && report.buffered == 0,
        "not all sent: {report:?}"
    );
    Ok(())
}

/// Lines of `lines` whose responder is `ip`.
fn to(lines: &[u8], ip: &str) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    for line in lines.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        let record: Value = serde_json::from_slice(line)?;
        if record["responder"]["ip"] == ip {
            out.extend_from_slice(line);
            out.push(b'\n');
        }
    }
    Ok(out)
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Polls `path` of `dashboard` until `check` accepts it.
fn until(
    dashboard: &Dashboard,
    path: &str,
    timeout: Duration,
    check: impl Fn(&Value) -> bool,
) -> Result<Value> {
    let started = Instant::now();
    loop {
        let v = dashboard.get(path)?;
        if check(&v) {
            return Ok(v);
        }
        if started.elapsed() > timeout {
            bail!("{path} not there after {timeout:?}: {v:#}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `SOURCE\tDESTINATION` → attempts, of a replica's own part.
fn own_pairs(part: &Value) -> BTreeMap<String, u64> {
    part["pairs"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v["tally"]["attempts"].as_u64().unwrap_or(0)))
                .collect()
        })
        .unwrap_or_default()
}

const EDGES: &str = "return Object.fromEntries([...document.querySelectorAll('#map .edge')].map(e => [e.dataset.destination, [e.dataset.attempts, e.dataset.successRate]]))";

#[test]
fn two_replicas_split_three_partitions_and_either_page_shows_all_live() -> Result<()> {
    snoopy_testkit::require_root()?;
    snoopy_testkit::require_tool("python3")?;
    snoopy_testkit::require_tool("nft")?;
    let broker = Broker::start()?;
    let pair = NetnsPair::new()?;
    ipv4_only(&pair.a)?;
    ipv4_only(&pair.b)?;
    pair.b
        .run(&["ip", "addr", "add", "198.18.0.3/24", "dev", "veth-b"])?;
    let _servers = servers(&pair.b)?;
    pair.a.wait_for_port("198.18.0.2", 8080)?;
    pair.a.wait_for_port("198.18.0.3", 8080)?;

    // Real records: to .2, 3 accepted and 2 refused; to .3, 2 accepted and 1 refused; and a
    // probe of each (8080 answers on .2, 8081 refuses on .3).
    let flows = flows_of(
        &pair,
        &[("198.18.0.2", 3, 2, 0), ("198.18.0.3", 2, 1, 0)],
        &[],
    )?;
    let probes = std::process::Command::new(podtracer()?)
        .args(["probe", "--netns"])
        .arg(pair.a.netns_path())
        .args(["--tcp", "198.18.0.2:8080", "--tcp", "198.18.0.3:8081"])
        .args(["--count", "2", "--interval", "50ms", "-o", "json"])
        .output()
        .context("podtracer probe")?;
    assert_eq!(probes.status.code(), Some(1), "8081 refuses: {probes:?}");

    // Replica 0 reads partitions 0 and 2, replica 1 partition 1. The pods: web-a's records
    // on partition 0 (its flows to .2), web-b's on 1 (to .3), web-c's on 2 (its probes).
    let (web_a, web_b, web_c) = (key_on(0), key_on(1), key_on(2));
    publish(&broker, "snoopy.flows", &web_a, &to(&flows, "198.18.0.2")?)?;
    publish(&broker, "snoopy.flows", &web_b, &to(&flows, "198.18.0.3")?)?;
    publish(&broker, "snoopy.probes", &web_c, &probes.stdout)?;

    let ports = [free_port()?, free_port()?];
    let urls = ports.map(|p| format!("http://127.0.0.1:{p}/"));
    let replicas = format!("{} {}", urls[0], urls[1]);
    let kafka = format!("kafka://{}", broker.address());
    let mut replica: Vec<Dashboard> = Vec::new();
    for (ordinal, port) in ports.iter().enumerate() {
        let listen = format!("127.0.0.1:{port}");
        let ordinal = ordinal.to_string();
        replica.push(Dashboard::start(&[
            "--kafka",
            &kafka,
            "--listen",
            &listen,
            "--replicas",
            &replicas,
            "--ordinal",
            &ordinal,
        ])?);
    }

    // Each replica holds only its partitions: its own part.
    let part0 = until(&replica[0], "/api/partial", Duration::from_secs(20), |v| {
        v["stats"]["flows"].as_u64() > Some(0) && v["stats"]["probes"] == 2
    })?;
    let part1 = until(&replica[1], "/api/partial", Duration::from_secs(20), |v| {
        v["stats"]["flows"].as_u64() > Some(0)
    })?;
    assert_eq!(
        own_pairs(&part0),
        BTreeMap::from([("198.18.0.1\t198.18.0.2".to_string(), 5)])
    );
    assert_eq!(
        own_pairs(&part1),
        BTreeMap::from([("198.18.0.1\t198.18.0.3".to_string(), 3)])
    );
    assert_eq!(part1["stats"]["probes"], 0, "the probes are on partition 2");
    let probe_keys: Vec<&String> = part0["probes"]
        .as_object()
        .context("probes")?
        .keys()
        .collect();
    assert_eq!(probe_keys.len(), 2);
    assert!(
        probe_keys
            .iter()
            .all(|k| k.starts_with(&format!("{web_c}\t")))
    );

    // The page of replica 1 shows both replicas' pairs, and the probes beside them.
    let browser = Browser::start(1400, 1600)?;
    browser.goto(&replica[1].url)?;
    browser.wait_until(
        "return document.querySelectorAll('#map .edge').length === 2 && document.querySelectorAll('#probes tbody tr').length === 2",
        Duration::from_secs(10),
    )?;
    let edges: BTreeMap<String, (String, String)> = browser.eval(EDGES)?;
    let rate = |s: u32, a: u32| (a.to_string(), (f64::from(s) / f64::from(a)).to_string());
    assert_eq!(
        edges,
        BTreeMap::from([
            ("198.18.0.2".to_string(), rate(3, 5)),
            ("198.18.0.3".to_string(), rate(2, 3)),
        ])
    );
    let view = replica[1].get("/api/view")?;
    let probe_of = |dest: &str| -> Option<(u64, u64)> {
        let d = view["destinations"]
            .as_array()?
            .iter()
            .find(|d| d["label"] == dest)?;
        Some((
            d["probes"][0]["attempts"].as_u64()?,
            d["probes"][0]["successes"].as_u64()?,
        ))
    };
    assert_eq!(probe_of("198.18.0.2:8080"), Some((2, 2)));
    assert_eq!(probe_of("198.18.0.3:8081"), Some((2, 0)));
    assert_eq!(
        view["stats"]["flows"],
        part0["stats"]["flows"].as_u64().unwrap_or(0)
            + part1["stats"]["flows"].as_u64().unwrap_or(0)
    );
    // The same view from either replica.
    let view0 = replica[0].get("/api/view")?;
    assert_eq!(view0["pairs"], view["pairs"]);
    assert_eq!(view0["destinations"], view["destinations"]);

    // Live: a new refusal reaches replica 0 (web-a's partition) and shows on replica 1's
    // page within 2 s, without a reload.
    browser.eval::<Value>("window.notReloaded = true")?;
    let more = flows_of(&pair, &[("198.18.0.2", 0, 1, 0)], &[])?;
    publish(&broker, "snoopy.flows", &web_a, &more)?;
    let took = browser.wait_until(
        "const e = document.querySelector('#map .edge[data-destination=\"198.18.0.2\"]'); return e !== null && e.dataset.attempts === '6' && window.notReloaded === true",
        Duration::from_secs(2),
    )?;
    eprintln!(
        "a record read by replica 0 showed on replica 1's page {took:?} after it was written"
    );

    // Each replica's /metrics is its own (Prometheus scrapes both and sums).
    let metrics = ureq::get(&format!("{}metrics", replica[1].url))
        .call()?
        .body_mut()
        .read_to_string()?;
    assert!(metrics.contains("destination_pod=\"198.18.0.3\""));
    assert!(!metrics.contains("destination_pod=\"198.18.0.2\""));

    // Replica 0 goes away: replica 1's page names it and still shows its own pair.
    replica[0].stop();
    browser.goto(&replica[1].url)?;
    browser.wait_until(
        "return document.querySelector('#stats').dataset.missing === '1' && document.querySelectorAll('#map .edge').length === 1",
        Duration::from_secs(15),
    )?;
    let missing: String =
        browser.eval("return document.querySelector('#stats .missing').textContent")?;
    assert!(missing.contains(&urls[0]), "{missing}");
    let edges: BTreeMap<String, (String, String)> = browser.eval(EDGES)?;
    assert_eq!(
        edges,
        BTreeMap::from([("198.18.0.3".to_string(), rate(2, 3))])
    );
    assert!(replica[1].is_running());
    Ok(())
}
