//! The dashboard end to end: real connections between network namespaces (accepted,
//! refused, dropped by nftables), watched by a real `podtracer flows`, piped into
//! `snoopy-dashboard`, and the page read back in a real headless Chromium. The expected
//! numbers come from what the test did, not from the dashboard's code. Needs root, python3,
//! nft, chromium and chromedriver (`make setup` installs them), and podtracer built (the
//! workspace test run builds it).

mod webdriver;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde::Deserialize;
use snoopy_testkit::{End, NetnsPair};

use webdriver::Browser;

/// The podtracer binary of this build (the workspace test run builds it beside ours).
fn podtracer() -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .context("the target directory")?;
    let path = dir.join("podtracer");
    if !path.exists() {
        bail!(
            "{} is missing: build it first (cargo build -p podtracer; `make test` does)",
            path.display()
        );
    }
    Ok(path)
}

/// IPv6 off in both namespaces, so neighbour discovery adds no flows: the map must show
/// exactly the connections the test made.
fn ipv4_only(end: &End) -> Result<()> {
    end.run(&[
        "python3",
        "-c",
        "open('/proc/sys/net/ipv6/conf/all/disable_ipv6','w').write('1')",
    ])?;
    Ok(())
}

/// Server side: 8080 accepts and reads; 8081 is closed; nftables drops 8082.
fn servers(end: &End) -> Result<snoopy_testkit::ChildGuard> {
    end.nft("table inet dashtest {\n  chain input {\n    type filter hook input priority 0; policy accept;\n    tcp dport 8082 drop\n  }\n}\n")?;
    end.spawn(&[
        "python3",
        "-c",
        "import socket,threading\ns=socket.socket()\ns.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\ns.bind(('0.0.0.0',8080))\ns.listen(64)\ndef h(c):\n  while c.recv(4096): pass\n  c.close()\nwhile True:\n  c,_=s.accept(); threading.Thread(target=h,args=(c,),daemon=True).start()",
    ])
}

fn wait_for_port(from: &End, ip: &str, port: u16) -> Result<()> {
    from.run(&[
        "python3",
        "-c",
        &format!(
            "import socket,time\nfor _ in range(200):\n  try:\n    socket.create_connection(('{ip}',{port}),timeout=1).close(); break\n  except OSError: time.sleep(0.05)\nelse: raise SystemExit('port {port} never opened')"
        ),
    ])?;
    Ok(())
}

/// Connections to make: (address, accepted, refused, dropped).
type Plan<'a> = &'a [(&'a str, u32, u32, u32)];

/// Runs `podtracer flows` in `pair.a` while it makes the connections of `plan`; its JSON
/// lines.
fn flows_of(pair: &NetnsPair, plan: Plan<'_>) -> Result<Vec<u8>> {
    let mut flows = Command::new(podtracer()?)
        .args(["flows", "--netns"])
        .arg(pair.a.netns_path())
        .args(["-i", "veth-a", "-o", "json", "--duration", "60s"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting podtracer flows")?;
    let mut err = BufReader::new(flows.stderr.take().expect("piped"));
    let mut line = String::new();
    err.read_line(&mut line)?;
    if !line.contains("watching flows") {
        let _ = flows.kill();
        bail!("podtracer flows did not start: {line}");
    }
    std::thread::spawn(move || std::io::copy(&mut err, &mut std::io::sink()));
    let mut threads = String::new();
    for (ip, good, refused, dropped) in plan {
        threads.push_str(&format!(
            "fs += [lambda: good('{ip}')] * {good} + [lambda: refused('{ip}')] * {refused} + [lambda: dropped('{ip}')] * {dropped}\n"
        ));
    }
    let script = format!(
        r#"
import socket, threading, time
def good(ip):
    c = socket.create_connection((ip, 8080), timeout=5); c.sendall(b'x' * 3000); c.close()
def refused(ip):
    try: socket.create_connection((ip, 8081), timeout=5)
    except ConnectionRefusedError: pass
def dropped(ip):
    try: socket.create_connection((ip, 8082), timeout=1.5)
    except OSError: pass
fs = []
{threads}
ts = [threading.Thread(target=f) for f in fs]
for t in ts: t.start()
for t in ts: t.join()
time.sleep(0.3)
"#
    );
    pair.a.run(&["python3", "-c", &script])?;
    let status = Command::new("kill")
        .args(["-INT", &flows.id().to_string()])
        .status()?;
    anyhow::ensure!(status.success(), "kill -INT podtracer");
    let out = flows.wait_with_output()?;
    anyhow::ensure!(out.status.success(), "podtracer flows: {out:?}");
    Ok(out.stdout)
}

/// `snoopy-dashboard -` with its stdin held by the test; stopped by its PID on drop.
struct Dashboard {
    child: Child,
    stdin: ChildStdin,
    url: String,
}

impl Dashboard {
    fn start() -> Result<Self> {
        let mut child = Command::new(env!("CARGO_BIN_EXE_snoopy-dashboard"))
            .args(["-", "--listen", "127.0.0.1:0", "--node", "node-1"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()?;
        let mut err = BufReader::new(child.stderr.take().expect("piped"));
        let mut line = String::new();
        err.read_line(&mut line)?;
        let url = line
            .trim()
            .strip_prefix("snoopy-dashboard: serving ")
            .with_context(|| format!("unexpected first line: {line}"))?
            .to_string();
        std::thread::spawn(move || std::io::copy(&mut err, &mut std::io::stderr()));
        let stdin = child.stdin.take().expect("piped");
        Ok(Dashboard { child, stdin, url })
    }

    fn feed(&mut self, bytes: &[u8]) -> Result<()> {
        self.stdin.write_all(bytes)?;
        self.stdin.flush()?;
        Ok(())
    }
}

impl Drop for Dashboard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

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
    wait_for_port(&pair.a, "198.18.0.2", 8080)?;
    wait_for_port(&pair.a, "198.18.0.3", 8080)?;

    // Round one: to .2, 3 accepted, 2 refused, 2 dropped; to .3, 2 accepted, 1 refused.
    let first = flows_of(&pair, &[("198.18.0.2", 3, 2, 2), ("198.18.0.3", 2, 1, 0)])?;
    let mut dashboard = Dashboard::start()?;
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
    let second = flows_of(&pair, &[("198.18.0.3", 0, 1, 0)])?;
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
