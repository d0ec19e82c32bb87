//! `podtracer flows` live in a namespace (--pid) and offline (-r) on a tcpdump capture,
//! checked against what was done and against tshark's conversation statistics (needs root,
//! python3, nft, tcpdump, tshark).

use std::io::BufRead;
use std::process::{Child, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::Value;
use snoopy_testkit::{End, NetnsPair};

use crate::support::{podtracer, signal, wait_with_timeout};

/// Server side in `end`: 8080 accepts and reads; 8081 closed; nftables drops 8082.
fn servers(end: &End) -> Result<snoopy_testkit::ChildGuard> {
    end.nft("table inet flowtest {\n  chain input {\n    type filter hook input priority 0; policy accept;\n    tcp dport 8082 drop\n  }\n}\n")?;
    end.spawn(&[
        "python3",
        "-c",
        "import socket,threading\ns=socket.socket()\ns.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\ns.bind(('0.0.0.0',8080))\ns.listen(64)\ndef h(c):\n  while c.recv(4096): pass\n  c.close()\nwhile True:\n  c,_=s.accept(); threading.Thread(target=h,args=(c,),daemon=True).start()",
    ])
}

/// Client side: 3 good, 2 refused, 2 dropped (1.5 s timeout: one SYN retry) connections
/// and one unanswered UDP datagram.
fn clients(end: &End, to: &str) -> Result<()> {
    let script = format!(
        r#"
import socket, threading, time
def good():
    c = socket.create_connection(('{to}', 8080), timeout=5); c.sendall(b'x' * 3000); c.close()
def refused():
    try: socket.create_connection(('{to}', 8081), timeout=5)
    except ConnectionRefusedError: pass
def dropped():
    try: socket.create_connection(('{to}', 8082), timeout=1.5)
    except OSError: pass
ts = [threading.Thread(target=f) for f in [good, good, good, refused, refused, dropped, dropped]]
for t in ts: t.start()
for t in ts: t.join()
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.sendto(b'q' * 50, ('{to}', 9999))
time.sleep(0.3)
"#
    );
    end.run(&["python3", "-c", &script])?;
    Ok(())
}

/// Starts `podtracer flows ARGS` and waits until it says it is watching.
fn start_flows(args: &[&str]) -> Result<Child> {
    let mut child = podtracer()
        .arg("flows")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let mut reader = std::io::BufReader::new(child.stderr.take().expect("piped"));
    let mut line = String::new();
    reader.read_line(&mut line)?;
    if !line.contains("watching flows") {
        let _ = child.kill();
        bail!("podtracer flows did not start: {line}");
    }
    std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));
    Ok(child)
}

fn json_lines(stdout: &[u8]) -> Result<Vec<Value>> {
    String::from_utf8_lossy(stdout)
        .lines()
        .map(|l| serde_json::from_str(l).with_context(|| format!("not JSON: {l}")))
        .collect()
}

fn tcp_flows_to(lines: &[Value], port: u64) -> Vec<&Value> {
    lines
        .iter()
        .filter(|v| v["type"] == "flow" && v["protocol"] == "tcp" && v["responder"]["port"] == port)
        .collect()
}

fn destination(summary: &Value, port: u64) -> Result<&Value> {
    summary["destinations"]
        .as_array()
        .context("destinations")?
        .iter()
        .find(|d| d["port"] == port && d["protocol"] == "tcp")
        .with_context(|| format!("no destination with port {port}: {summary}"))
}

fn check_outcomes(lines: &[Value]) -> Result<()> {
    let outcomes = |port| -> Vec<String> {
        tcp_flows_to(lines, port)
            .iter()
            .map(|v| v["tcp"]["outcome"].as_str().unwrap_or("?").to_string())
            .collect()
    };
    assert_eq!(outcomes(8080), vec!["closed"; 3], "{lines:#?}");
    assert_eq!(outcomes(8081), vec!["refused"; 2]);
    assert_eq!(outcomes(8082), vec!["unanswered"; 2]);
    for v in tcp_flows_to(lines, 8080) {
        assert!(v["tcp"]["handshake"]["rtt_ns"].as_u64().unwrap() > 0, "{v}");
        assert!(v["fwd"]["bytes"].as_u64().unwrap() > 0);
    }
    let summary = lines
        .iter()
        .find(|v| v["type"] == "summary")
        .context("a summary line")?;
    let ok = destination(summary, 8080)?;
    assert_eq!(
        (ok["attempts"].as_u64(), ok["successes"].as_u64()),
        (Some(3), Some(3))
    );
    assert_eq!(ok["success_rate"], 1.0);
    assert_eq!(ok["rtt_ns"]["samples"], 3);
    let refused = destination(summary, 8081)?;
    assert_eq!(refused["success_rate"], 0.0);
    assert_eq!(refused["failures"]["refused"], 2);
    let dropped = destination(summary, 8082)?;
    assert_eq!(dropped["success_rate"], 0.0);
    assert_eq!(dropped["failures"]["unanswered"], 2);
    Ok(())
}

#[test]
fn live_flows_by_pid_report_established_refused_and_unanswered() -> Result<()> {
    let pair = NetnsPair::new()?;
    snoopy_testkit::require_tool("python3")?;
    let _server = servers(&pair.b)?;
    pair.a.wait_for_port(&pair.b.ip.to_string(), 8080)?;
    let pod = pair.a.resident()?;
    let dir = tempfile::tempdir()?;
    let termination_log = dir.path().join("termination-log");
    let flows = start_flows(&[
        "--pid",
        &pod.pid().to_string(),
        "-i",
        "veth-a",
        "-o",
        "json",
        "--interval",
        "500ms",
        "--duration",
        "20s",
        "--termination-log",
        termination_log.to_str().unwrap(),
    ])?;
    clients(&pair.a, &pair.b.ip.to_string())?;
    std::thread::sleep(Duration::from_millis(300));
    signal(&flows, "INT")?;
    let out = wait_with_timeout(flows, Duration::from_secs(10))?;
    assert!(out.status.success(), "{out:?}");
    let lines = json_lines(&out.stdout)?;
    assert!(
        lines.iter().any(|v| v["type"] == "snapshot"),
        "periodic snapshots"
    );
    check_outcomes(&lines)?;
    let udp: Vec<&Value> = lines
        .iter()
        .filter(|v| v["type"] == "flow" && v["protocol"] == "udp" && v["responder"]["port"] == 9999)
        .collect();
    assert_eq!(udp.len(), 1);
    assert_eq!(udp[0]["answered"], false);
    // The counts a Job's termination message carries to the operator: at least every
    // packet the flow records account for.
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&termination_log)?)?;
    let in_flows: u64 = lines
        .iter()
        .filter(|v| v["type"] == "flow")
        .map(|v| v["fwd"]["packets"].as_u64().unwrap() + v["rev"]["packets"].as_u64().unwrap())
        .sum();
    let captured = report["captured"].as_u64().context("captured")?;
    assert!(
        in_flows > 0 && captured >= in_flows,
        "{report} vs {in_flows}"
    );
    assert_eq!(report["dropped"], 0, "{report}");
    assert_eq!(report.get("target_gone"), None, "{report}");
    Ok(())
}

#[test]
fn offline_flows_of_a_tcpdump_file_match_tshark_conversations() -> Result<()> {
    let pair = NetnsPair::new()?;
    snoopy_testkit::require_tool("tcpdump")?;
    let _server = servers(&pair.b)?;
    pair.a.wait_for_port(&pair.b.ip.to_string(), 8080)?;
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("trace.pcap");
    let mut tcpdump = pair.a.spawn(&[
        "tcpdump",
        "-i",
        "veth-a",
        "-U",
        "-w",
        file.to_str().unwrap(),
    ])?;
    // tcpdump says "listening on" once its socket is bound.
    let mut err = std::io::BufReader::new(tcpdump.child().stderr.take().expect("piped"));
    let mut line = String::new();
    err.read_line(&mut line)?;
    assert!(line.contains("listening on"), "{line}");
    clients(&pair.a, &pair.b.ip.to_string())?;
    std::thread::sleep(Duration::from_millis(300));
    drop(tcpdump);

    let out = podtracer()
        .args(["flows", "-r", file.to_str().unwrap(), "-o", "json"])
        .output()?;
    assert!(out.status.success(), "{out:?}");
    let lines = json_lines(&out.stdout)?;
    check_outcomes(&lines)?;

    // Oracle: tshark's per-conversation frame counts, both directions.
    let conv = std::process::Command::new("tshark")
        .args(["-n", "-q", "-z", "conv,tcp", "-r", file.to_str().unwrap()])
        .output()?;
    let text = String::from_utf8(conv.stdout)?;
    let rows: Vec<Vec<&str>> = text
        .lines()
        .filter(|l| l.contains("<->"))
        .map(|l| l.split_whitespace().collect())
        .collect();
    let flows: Vec<&Value> = lines
        .iter()
        .filter(|v| v["type"] == "flow" && v["protocol"] == "tcp")
        .collect();
    assert_eq!(rows.len(), flows.len(), "{text}");
    for row in rows {
        let (a, b) = (row[0], row[2]);
        let (to_a, to_b): (u64, u64) = (row[3].parse()?, row[6].parse()?);
        let endpoint = |v: &Value| format!("{}:{}", v["ip"].as_str().unwrap(), v["port"]);
        let flow = flows
            .iter()
            .find(|v| {
                let (i, r) = (endpoint(&v["initiator"]), endpoint(&v["responder"]));
                (i == a && r == b) || (i == b && r == a)
            })
            .with_context(|| format!("no flow for {a} <-> {b}"))?;
        let (fwd, rev) = (
            flow["fwd"]["packets"].as_u64().unwrap(),
            flow["rev"]["packets"].as_u64().unwrap(),
        );
        if endpoint(&flow["initiator"]) == a {
            assert_eq!((to_b, to_a), (fwd, rev), "{a} <-> {b}");
        } else {
            assert_eq!((to_a, to_b), (fwd, rev), "{a} <-> {b}");
        }
    }

    // The table view of the same file.
    let out = podtracer()
        .args(["flows", "-r", file.to_str().unwrap(), "-o", "table"])
        .output()?;
    assert!(out.status.success(), "{out:?}");
    let table = String::from_utf8(out.stdout)?;
    let row = table
        .lines()
        .find(|l| l.starts_with(&format!("{}:8081", pair.b.ip)))
        .with_context(|| format!("no 8081 row: {table}"))?;
    let words: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(&words[1..6], &["tcp", "2", "0", "0%", "2"], "{row}");
    Ok(())
}

#[test]
fn a_quiet_namespace_ends_after_the_duration_with_an_empty_summary() -> Result<()> {
    let pair = NetnsPair::new()?;
    let started = std::time::Instant::now();
    let out = podtracer()
        .args([
            "flows",
            "--netns",
            pair.a.netns_path().to_str().unwrap(),
            "--duration",
            "1s",
            "-o",
            "json",
        ])
        .output()?;
    assert!(out.status.success(), "{out:?}");
    assert!(started.elapsed() < Duration::from_secs(8));
    let lines = json_lines(&out.stdout)?;
    let summary = lines.last().context("a summary")?;
    assert_eq!(summary["type"], "summary", "{lines:?}");
    // Possibly IPv6 neighbour chatter, never a TCP flow.
    assert!(tcp_flows_to(&lines, 8080).is_empty());
    assert_eq!(summary["table"]["evicted"], 0);
    Ok(())
}
