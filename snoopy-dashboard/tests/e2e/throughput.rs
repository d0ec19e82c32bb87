//! The throughput matrix: real `podtracer throughput` results between two network
//! namespaces (one direction fast, the other blocked by nftables), shown in a real headless
//! Chromium and exported on /metrics.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result};
use serde::Deserialize;
use snoopy_testkit::NetnsPair;

use crate::traffic::{Dashboard, podtracer};
use crate::webdriver::Browser;

#[derive(Debug, Deserialize, PartialEq)]
struct Cell {
    client: String,
    server: String,
    gbps: Option<String>,
    reason: Option<String>,
}

const CELLS: &str = "return [...document.querySelectorAll('#throughput td[data-client]')].map(c => ({client: c.dataset.client, server: c.dataset.server, gbps: c.dataset.gbps ?? null, reason: c.dataset.reason ?? null}))";

/// One `podtracer throughput -o json` run between the pair's namespaces.
fn run(pair: &NetnsPair, reverse: bool, extra: &[&str]) -> Result<Vec<u8>> {
    let (from, to) = if reverse {
        (&pair.b, &pair.a)
    } else {
        (&pair.a, &pair.b)
    };
    let out = Command::new(podtracer()?)
        .args(["throughput", "--netns", from.netns_path().to_str().unwrap()])
        .args(["--to-netns", to.netns_path().to_str().unwrap()])
        .args(["--to-ip", &to.ip.to_string(), "-t", "1", "-o", "json"])
        .args(extra)
        .output()
        .context("running podtracer throughput")?;
    Ok(out.stdout)
}

#[test]
fn the_throughput_matrix_shows_each_pairs_latest_test() -> Result<()> {
    snoopy_testkit::require_root()?;
    snoopy_testkit::require_tool("iperf3")?;
    snoopy_testkit::require_tool("nft")?;
    let pair = NetnsPair::new()?;
    // a → b works; b → a's iperf3 port is dropped inside a.
    pair.a.nft(
        "table inet fw {\n  chain input {\n    type filter hook input priority 0;\n    tcp dport 5398 drop\n  }\n}\n",
    )?;
    let fast = run(&pair, false, &[])?;
    let blocked = run(&pair, true, &["-p", "5398", "--connect-timeout", "1s"])?;
    let fast_result: serde_json::Value = serde_json::from_slice(&fast)?;
    let want_bps = fast_result["forward"]["received_bits_per_second"]
        .as_f64()
        .context("a → b measured")?;
    let want_gbps = want_bps / 1e9;

    let mut dashboard = Dashboard::start(&["-", "--node", "node-1"])?;
    dashboard.feed(&fast)?;
    dashboard.feed(&blocked)?;
    let browser = Browser::start(1200, 900)?;
    browser.goto(&dashboard.url)?;
    browser.wait_until(
        "return document.querySelectorAll('#throughput td[data-client]').length === 2",
        Duration::from_secs(10),
    )?;
    let mut cells: Vec<Cell> = browser.eval(CELLS)?;
    cells.sort_by(|x, y| x.client.cmp(&y.client));
    let (a, b) = (
        pair.a.netns_path().display().to_string(),
        pair.b.netns_path().display().to_string(),
    );
    let mut want = vec![
        Cell {
            client: a.clone(),
            server: b.clone(),
            gbps: Some(format!("{want_gbps:.3}")),
            reason: None,
        },
        Cell {
            client: b.clone(),
            server: a.clone(),
            gbps: None,
            reason: Some("timeout".into()),
        },
    ];
    want.sort_by(|x, y| x.client.cmp(&y.client));
    assert_eq!(cells, want);
    // The matrix is 2 × 2 with the diagonal empty, and the failed cell says why.
    let shape: (u32, u32, String) = serde_json::from_value(browser.eval(
        "const t = document.querySelector('#throughput'); return [t.tHead.rows[0].cells.length - 1, t.tBodies[0].rows.length, t.querySelector('td.cell.bad').textContent]",
    )?)?;
    assert_eq!(shape, (2, 2, "✗ timeout".to_string()));

    // Prometheus: the working pair's gauge, and both records counted.
    let metrics = ureq::get(&format!("{}metrics", dashboard.url))
        .call()?
        .body_mut()
        .read_to_string()?;
    let gauges: Vec<f64> = metrics
        .lines()
        .filter(|l| {
            l.starts_with("snoopy_throughput_bits_per_second{")
                && l.contains(r#"direction="egress""#)
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse().ok())
        .collect();
    // The gauge is the record's bits per second as is (x / 1e9 * 1e9 need not be x).
    assert_eq!(gauges, [want_bps], "{metrics}");
    assert!(
        metrics
            .lines()
            .any(|l| l == r#"snoopy_dashboard_records_total{kind="throughput"} 2"#),
        "{metrics}"
    );
    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    browser.eval::<serde_json::Value>(
        "document.querySelector('#throughput-title').scrollIntoView(); return null",
    )?;
    browser.screenshot(&shots.join("dashboard-throughput.png"))?;
    Ok(())
}
