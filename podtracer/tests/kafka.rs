//! `--sink kafka://…` and `podtracer collect` against a real Kafka-protocol broker (tansu
//! 0.6.0, started per test on a free loopback port), on real network namespaces (root).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use snoopy_capture::sink::kafka::{ConsumeOptions, KafkaSettings, Message, consume};
use snoopy_testkit::NetnsPair;
use snoopy_testkit::kafka::Broker;

use crate::support::*;

/// Every message of `topic` on `broker`.
fn messages(broker: &Broker, topic: &str) -> Result<Vec<Message>> {
    let settings = KafkaSettings::from_url(&broker.url(topic))?;
    let mut all = Vec::new();
    consume(
        &settings,
        &ConsumeOptions::default(),
        &Arc::new(AtomicBool::new(false)),
        |batch| {
            all.extend(batch);
            Ok::<(), ()>(())
        },
    )?
    .map_err(|()| anyhow::anyhow!("consume"))?;
    Ok(all)
}

/// Pings and a TCP exchange from a to b.
fn traffic(pair: &NetnsPair, pings: usize) -> Result<()> {
    pair.a.run(&[
        "ping",
        "-c",
        &pings.to_string(),
        "-i",
        "0.05",
        &pair.b.ip.to_string(),
    ])?;
    Ok(())
}

/// (interface name, frame length, epoch time) of every packet, by tshark.
fn frames(file: &Path) -> Result<Vec<(String, String, String)>> {
    Ok(tshark_fields(
        file,
        &["frame.interface_name", "frame.len", "frame.time_epoch"],
    )?
    .into_iter()
    .map(|r| (r[0].clone(), r[1].clone(), r[2].clone()))
    .collect())
}

/// The packets of each interface, in order: (length, time).
fn per_interface(rows: &[(String, String, String)]) -> BTreeMap<String, Vec<(String, String)>> {
    let mut map: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for (name, len, time) in rows {
        map.entry(name.clone())
            .or_default()
            .push((len.clone(), time.clone()));
    }
    map
}

#[test]
fn kafka_two_namespaces_collect_equals_the_file_capture() -> Result<()> {
    let broker = Broker::start()?;
    let pair = NetnsPair::new()?;
    let dir = tempfile::tempdir()?;
    let mut captures = Vec::new();
    for end in [&pair.a, &pair.b] {
        let netns = end.netns_path();
        let file = dir.path().join(format!("{}.pcapng", end.interface));
        let child = start_capture(&[
            "--netns",
            netns.to_str().unwrap(),
            "-i",
            &end.interface,
            "-w",
            file.to_str().unwrap(),
            "--sink",
            &broker.url("snoopy.packets"),
        ])?;
        captures.push((child, file, netns));
    }
    traffic(&pair, 40)?;
    std::thread::sleep(Duration::from_millis(300));
    let mut direct = Vec::new();
    for (child, file, netns) in captures {
        signal(&child, "INT")?;
        let out = wait_with_timeout(child, Duration::from_secs(20))?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        let captured = captured_count(&stderr)?;
        assert!(
            stderr.contains(&format!(": {captured} sent in"))
                && stderr.contains("0 buffered (unsent), 0 dropped"),
            "every packet reached the broker: {stderr}"
        );
        direct.push((file, netns, captured));
    }

    let merged = dir.path().join("merged.pcapng");
    let out = podtracer()
        .args(["collect", &broker.url("snoopy.packets"), "-w"])
        .arg(&merged)
        .output()?;
    assert!(out.status.success(), "{out:?}");
    let collected = frames(&merged)?;
    let collected_by_if = per_interface(&collected);
    assert_eq!(
        collected_by_if.len(),
        2,
        "one interface per namespace: {collected_by_if:?}"
    );
    let mut total = 0;
    for (file, netns, captured) in &direct {
        let rows = frames(file)?;
        assert_eq!(rows.len() as u64, *captured);
        assert!(*captured >= 80, "pings both ways were captured: {captured}");
        total += rows.len();
        let name = format!("{}/{}", netns.display(), rows[0].0);
        let want: Vec<(String, String)> = rows.iter().map(|r| (r.1.clone(), r.2.clone())).collect();
        assert_eq!(
            collected_by_if.get(&name),
            Some(&want),
            "interface {name}: same packets, bytes, times and order as the direct capture"
        );
    }
    assert_eq!(collected.len(), total);
    let times: Vec<f64> = collected.iter().map(|r| r.2.parse().unwrap()).collect();
    assert!(
        times.windows(2).all(|w| w[0] <= w[1]),
        "merged file is time-ordered across namespaces"
    );

    // Every message alone is a valid pcapng; one key's messages concatenated are one too.
    let messages = messages(&broker, "snoopy.packets")?;
    assert!(!messages.is_empty());
    let mut by_key: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut packets_in_messages = 0;
    for (i, m) in messages.iter().enumerate() {
        let file = dir.path().join(format!("message-{i}.pcapng"));
        std::fs::write(&file, &m.value)?;
        let n = tshark_fields(&file, &["frame.number"])?.len();
        let header: usize = String::from_utf8_lossy(&m.headers["packets"]).parse()?;
        assert_eq!(n, header, "message {i}: tshark reads every packet it holds");
        for h in ["node", "run", "interface", "linktype"] {
            assert!(m.headers.contains_key(h), "header {h}");
        }
        packets_in_messages += n;
        by_key
            .entry(m.key.clone().unwrap_or_default())
            .or_default()
            .extend_from_slice(&m.value);
    }
    assert_eq!(packets_in_messages, total);
    assert_eq!(
        by_key.len(),
        2,
        "one key per namespace: {:?}",
        by_key.keys()
    );
    for (key, bytes) in by_key {
        let file = dir.path().join("concatenated.pcapng");
        std::fs::write(&file, bytes)?;
        let direct_file = &direct
            .iter()
            .find(|d| d.1.display().to_string() == key)
            .with_context(|| format!("key {key} names a captured namespace"))?
            .0;
        assert_eq!(
            tshark_fields(&file, &["frame.len"])?,
            tshark_fields(direct_file, &["frame.len"])?,
            "{key}: concatenated messages = the direct capture"
        );
    }
    Ok(())
}

#[test]
fn kafka_broker_paused_then_back_loses_nothing() -> Result<()> {
    let broker = Broker::start()?;
    let pair = NetnsPair::new()?;
    let netns = pair.a.netns_path();
    let capture = start_capture(&[
        "--netns",
        netns.to_str().unwrap(),
        "-i",
        "veth-a",
        "--sink",
        &broker.url("snoopy.packets"),
        "--sink-timeout",
        "30s",
    ])?;
    traffic(&pair, 10)?;
    broker.pause(true)?;
    // The capture goes on while the broker does not answer.
    traffic(&pair, 30)?;
    std::thread::sleep(Duration::from_secs(6));
    broker.pause(false)?;
    traffic(&pair, 10)?;
    std::thread::sleep(Duration::from_millis(500));
    signal(&capture, "INT")?;
    let out = wait_with_timeout(capture, Duration::from_secs(40))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let captured = captured_count(&stderr)?;
    assert!(captured >= 100, "{stderr}");
    assert!(
        stderr.contains(&format!(": {captured} sent in"))
            && stderr.contains("0 buffered (unsent), 0 dropped"),
        "{stderr}"
    );
    assert!(
        stderr.contains("failed attempts"),
        "the pause was noticed: {stderr}"
    );
    let on_topic: usize = messages(&broker, "snoopy.packets")?
        .iter()
        .map(|m| {
            String::from_utf8_lossy(&m.headers["packets"])
                .parse::<usize>()
                .unwrap()
        })
        .sum();
    assert!(
        on_topic as u64 >= captured,
        "at least once: {on_topic} of {captured}"
    );
    Ok(())
}

#[test]
fn kafka_broker_gone_counts_drops_and_exits_cleanly() -> Result<()> {
    let mut broker = Broker::start()?;
    let pair = NetnsPair::new()?;
    let netns = pair.a.netns_path();
    let dir = tempfile::tempdir()?;
    let log = dir.path().join("termination-log");
    let capture = start_capture(&[
        "--netns",
        netns.to_str().unwrap(),
        "-i",
        "veth-a",
        "--sink",
        &broker.url("snoopy.packets"),
        "--sink-timeout",
        "2s",
        // Small: a few messages fill it.
        "--sink-buffer",
        "2000",
        "--termination-log",
        log.to_str().unwrap(),
    ])?;
    traffic(&pair, 5)?;
    std::thread::sleep(Duration::from_millis(500));
    broker.kill();
    let started = Instant::now();
    traffic(&pair, 60)?;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the pings were not slowed"
    );
    signal(&capture, "INT")?;
    let out = wait_with_timeout(capture, Duration::from_secs(30))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "exits cleanly: {stderr}");
    let captured = captured_count(&stderr)?;
    assert!(captured >= 120, "the capture went on: {stderr}");
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&log)?)?;
    let k = &json["kafka"];
    let (sent, buffered, dropped) = (
        k["sent"].as_u64().unwrap(),
        k["buffered"].as_u64().unwrap(),
        k["dropped"].as_u64().unwrap(),
    );
    assert!(dropped > 0 && buffered > 0, "{json}");
    assert_eq!(
        sent + buffered + dropped,
        captured,
        "every packet accounted for: {json}"
    );
    Ok(())
}

#[test]
fn kafka_flow_and_probe_records_are_json_with_the_documented_fields() -> Result<()> {
    let broker = Broker::start()?;
    let pair = NetnsPair::new()?;
    let server = tcp_server(&pair.b)?;
    let netns = pair.a.netns_path();
    let flows = podtracer()
        .args(["flows", "--netns", netns.to_str().unwrap(), "-i", "veth-a"])
        .args(["--duration", "3s", "-o", "json", "--idle-timeout", "1s"])
        .args(["--sink", &broker.url("snoopy.flows")])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    std::thread::sleep(Duration::from_millis(500));
    let probe = podtracer()
        .args(["probe", "--netns", netns.to_str().unwrap()])
        .args(["--tcp", "198.18.0.2:8080", "--tcp", "198.18.0.2:8081"])
        .args(["--sink", &broker.url("snoopy.probes")])
        .output()?;
    assert!(!probe.stderr.is_empty() || probe.status.code().is_some());
    let out = wait_with_timeout(flows, Duration::from_secs(20))?;
    assert!(out.status.success(), "{out:?}");
    drop(server);

    let probes = messages(&broker, "snoopy.probes")?;
    assert_eq!(probes.len(), 2, "one record per check");
    for m in &probes {
        let v: serde_json::Value = serde_json::from_slice(&m.value)?;
        assert_eq!(v["type"], "probe");
        assert_eq!(v["check"], "tcp");
        assert_eq!(m.key.as_deref(), Some(netns.to_str().unwrap()));
        for field in [
            "target",
            "attempts",
            "successes",
            "success_rate",
            "failures",
            "latency_ns",
        ] {
            assert!(v.get(field).is_some(), "probe record has {field}: {v}");
        }
        let ok = v["successes"].as_u64().unwrap();
        match v["target"].as_str().unwrap() {
            "198.18.0.2:8080" => assert!(ok > 0),
            "198.18.0.2:8081" => assert_eq!(ok, 0, "refused"),
            t => bail!("unexpected target {t}"),
        }
    }
    let flows = messages(&broker, "snoopy.flows")?;
    let values: Vec<serde_json::Value> = flows
        .iter()
        .map(|m| serde_json::from_slice(&m.value))
        .collect::<Result<_, _>>()?;
    let kinds: Vec<&str> = values.iter().map(|v| v["type"].as_str().unwrap()).collect();
    assert!(
        kinds.contains(&"flow") && kinds.last() == Some(&"summary"),
        "{kinds:?}"
    );
    for v in values.iter().filter(|v| v["type"] == "flow") {
        for field in [
            "reason",
            "protocol",
            "initiator",
            "responder",
            "fwd",
            "rev",
            "answered",
        ] {
            assert!(v.get(field).is_some(), "flow record has {field}: {v}");
        }
        assert!(v["initiator"]["ip"].is_string() && v["fwd"]["bytes"].is_u64());
    }
    let summary = values.last().unwrap();
    assert!(summary["destinations"].is_array(), "{summary}");

    // collect shows them as a table, with the refused port at 0 %.
    let table = podtracer()
        .args(["collect", &broker.url("snoopy.probes"), "-o", "table"])
        .output()?;
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(table.status.success(), "{table:?}");
    assert!(
        text.lines()
            .any(|l| l.contains("tcp 198.18.0.2:8081") && l.trim_end().ends_with("0%")),
        "{text}"
    );
    Ok(())
}

#[test]
fn kafka_bad_settings_fail_fast_with_a_clear_error() -> Result<()> {
    let broker = Broker::start()?;
    let pair = NetnsPair::new()?;
    let netns = pair.a.netns_path();
    let closed = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    type Case<'a> = (String, Vec<(&'a str, &'a str)>, &'a str);
    let cases: [Case<'_>; 3] = [
        (
            format!("kafka://127.0.0.1:{closed}/snoopy.packets"),
            vec![],
            "127.0.0.1:",
        ),
        (
            broker.url("no.such.topic"),
            vec![],
            "no topic \"no.such.topic\"",
        ),
        (
            broker.url("snoopy.packets"),
            vec![("SNOOPY_KAFKA_TLS_CA_FILE", "/nonexistent/ca.pem")],
            "/nonexistent/ca.pem",
        ),
    ];
    for (url, env, expected) in cases {
        let started = Instant::now();
        let child = podtracer()
            .args([
                "capture",
                "--netns",
                netns.to_str().unwrap(),
                "-i",
                "veth-a",
            ])
            .args(["--sink", &url])
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()?;
        let out = wait_with_timeout(child, Duration::from_secs(30))?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{url}: fails");
        assert!(
            stderr.contains(expected),
            "{url}: error names {expected:?}: {stderr}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "{url}: fails at start, not after {:?}",
            started.elapsed()
        );
    }
    Ok(())
}
