//! Records on a real Kafka-protocol broker (tansu, per test) reach the dashboard, and a
//! broker that goes away is counted and shown, not fatal.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::Value;
use snoopy_testkit::NetnsPair;
use snoopy_testkit::kafka::Broker;

use crate::traffic::{Dashboard, flows_of, ipv4_only, podtracer, servers};

/// Polls `/api/view` until `check` accepts it.
fn view_until(
    dashboard: &Dashboard,
    timeout: Duration,
    check: impl Fn(&Value) -> bool,
) -> Result<Value> {
    let started = Instant::now();
    loop {
        let view = dashboard.get("/api/view")?;
        if check(&view) {
            return Ok(view);
        }
        if started.elapsed() > timeout {
            bail!("not there after {timeout:?}: {view:#}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn destination<'a>(view: &'a Value, label: &str) -> Option<&'a Value> {
    view["destinations"]
        .as_array()?
        .iter()
        .find(|d| d["label"] == label)
}

#[test]
fn flows_and_probes_on_kafka_reach_the_page_and_a_lost_broker_is_shown() -> Result<()> {
    snoopy_testkit::require_root()?;
    snoopy_testkit::require_tool("python3")?;
    snoopy_testkit::require_tool("nft")?;
    let mut broker = Broker::start()?;
    let pair = NetnsPair::new()?;
    ipv4_only(&pair.a)?;
    ipv4_only(&pair.b)?;
    let _servers = servers(&pair.b)?;
    pair.a.wait_for_port("198.18.0.2", 8080)?;

    // Two accepted connections and one refused, through snoopy.flows.
    flows_of(
        &pair,
        &[("198.18.0.2", 2, 1, 0)],
        &["--sink", &broker.url("snoopy.flows")],
    )?;
    // Probes from the same namespace, through snoopy.probes: 8080 answers, 8081 refuses.
    let probe = Command::new(podtracer()?)
        .args(["probe", "--netns"])
        .arg(pair.a.netns_path())
        .args(["--tcp", "198.18.0.2:8080", "--tcp", "198.18.0.2:8081"])
        .args(["--count", "2", "--interval", "50ms", "-o", "json"])
        .args(["--sink", &broker.url("snoopy.probes")])
        .output()
        .context("podtracer probe")?;
    assert_eq!(
        probe.status.code(),
        Some(1),
        "8081 never succeeds: {probe:?}"
    );
    // A capture run through snoopy.packets: 10 ICMP packets of a ping from a to b.
    let _ping = pair
        .a
        .spawn(&["ping", "-i", "0.05", "-c", "200", "198.18.0.2"])?;
    let capture = Command::new(podtracer()?)
        .args(["capture", "--netns"])
        .arg(pair.a.netns_path())
        .args(["-i", "veth-a", "-c", "10", "--run-id", "run-1"])
        .args(["--sink", &broker.url("snoopy.packets"), "icmp"])
        .stdout(Stdio::null())
        .output()
        .context("podtracer capture")?;
    assert!(capture.status.success(), "{capture:?}");

    let mut dashboard = Dashboard::start(&["--kafka", &format!("kafka://{}", broker.address())])?;
    let view = view_until(&dashboard, Duration::from_secs(20), |v| {
        destination(v, "198.18.0.2:8081").is_some()
            && v["probes"].as_array().is_some_and(|p| p.len() == 2)
            && v["runs"][0]["packets"] == 10
    })?;
    let ok = destination(&view, "198.18.0.2:8080").context("8080")?;
    assert_eq!(
        (ok["attempts"].as_u64(), ok["successes"].as_u64()),
        (Some(2), Some(2))
    );
    let refused = destination(&view, "198.18.0.2:8081").context("8081")?;
    assert_eq!(
        (refused["attempts"].as_u64(), refused["successes"].as_u64()),
        (Some(1), Some(0))
    );
    assert_eq!(refused["failures"]["refused"], 1);
    // The probe of each port sits beside the passive numbers of the same destination.
    assert_eq!(ok["probes"][0]["check"], "tcp");
    assert_eq!(ok["probes"][0]["successes"], 2);
    assert_eq!(refused["probes"][0]["successes"], 0);
    assert_eq!(refused["probes"][0]["failures"]["refused"], 2);
    // The node header of the messages names where it was seen.
    assert_eq!(view["pairs"][0]["nodes"], serde_json::json!(["node-1"]));
    assert_eq!(view["stats"]["malformed"], 0);
    assert_eq!(view["stats"]["input_errors"], 0);
    // The run, from its messages' headers; its packets on demand, as one pcapng tshark reads.
    let run = &view["runs"][0];
    assert_eq!(run["run"], "run-1", "{run}");
    let key = pair.a.netns_path().display().to_string();
    assert_eq!(run["keys"][&key], 10, "{run}");
    let pcapng = ureq::get(&format!("{}api/pcapng?run=run-1", dashboard.url))
        .call()?
        .body_mut()
        .with_config()
        .limit(64 << 20)
        .read_to_vec()?;
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("run-1.pcapng");
    std::fs::write(&file, &pcapng)?;
    let frames = Command::new("tshark")
        .args(["-n", "-r"])
        .arg(&file)
        .args([
            "-T",
            "fields",
            "-e",
            "frame.interface_name",
            "-e",
            "icmp.type",
        ])
        .output()?;
    let text = String::from_utf8_lossy(&frames.stdout);
    let rows: Vec<&str> = text.lines().collect();
    assert_eq!(rows.len(), 10, "tshark: {text}");
    for row in rows {
        assert!(
            row.starts_with(&format!("{key}/veth-a\t")),
            "one interface per pod: {row}"
        );
    }
    let missing = ureq::get(&format!("{}api/pcapng?run=no-such-run", dashboard.url))
        .config()
        .http_status_as_error(false)
        .build()
        .call()?;
    assert_eq!(missing.status(), 404);

    // The broker goes away: counted and shown, the dashboard keeps serving what it has.
    broker.kill();
    let view = view_until(&dashboard, Duration::from_secs(30), |v| {
        v["stats"]["input_errors"].as_u64().unwrap_or(0) > 0
    })?;
    let problem = view["stats"]["last_problem"].as_str().unwrap_or_default();
    assert!(problem.contains("kafka://"), "{problem}");
    assert!(dashboard.is_running());
    assert_eq!(
        destination(&view, "198.18.0.2:8080").context("8080 kept")?["attempts"],
        2
    );
    Ok(())
}
