//! `podtracer probe` from inside a namespace against a listening port, a closed port
//! (RST) and a port nftables drops; HTTP and DNS with names resolved through the pod's own
//! resolv.conf (needs root, python3, nft).

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde_json::Value;
use snoopy_testkit::{End, NetnsPair};

use crate::support::{podtracer, wait_with_timeout};

/// Runs probe and returns (exit success, reports by target, stderr).
fn probe(args: &[&str]) -> Result<(bool, HashMap<String, Value>, String)> {
    let child = podtracer()
        .arg("probe")
        .args(args)
        .args(["-o", "json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    let out = wait_with_timeout(child, Duration::from_secs(20))?;
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let mut reports = HashMap::new();
    for line in String::from_utf8(out.stdout)?.lines() {
        let v: Value = serde_json::from_str(line).with_context(|| format!("not JSON: {line}"))?;
        assert_eq!(v["type"], "probe", "{v}");
        reports.insert(v["target"].as_str().unwrap().to_string(), v);
    }
    Ok((out.status.success(), reports, stderr))
}

/// A TCP server on 8080 in `end` that accepts connections forever.
fn listener(end: &End) -> Result<snoopy_testkit::ChildGuard> {
    end.spawn(&[
        "python3",
        "-c",
        "import socket\ns=socket.socket()\ns.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\ns.bind(('0.0.0.0',8080))\ns.listen(64)\nwhile True:\n  c,_=s.accept(); c.close()",
    ])
}

#[test]
fn open_refusing_and_dropping_ports_give_100_0_0_with_reasons() -> Result<()> {
    let pair = NetnsPair::new()?;
    snoopy_testkit::require_tool("python3")?;
    pair.b
        .nft("table inet probetest {\n  chain input {\n    type filter hook input priority 0; policy accept;\n    tcp dport 8082 drop\n  }\n}\n")?;
    let _server = listener(&pair.b)?;
    pair.a.wait_for_port(&pair.b.ip.to_string(), 8080)?;
    let client = pair.a.resident()?;
    let b = pair.b.ip.to_string();
    let (open, refused, dropped) = (
        format!("{b}:8080"),
        format!("{b}:8081"),
        format!("{b}:8082"),
    );
    let started = Instant::now();
    let (ok, reports, stderr) = probe(&[
        "--pid",
        &client.pid().to_string(),
        "--tcp",
        &open,
        "--tcp",
        &refused,
        "--tcp",
        &dropped,
        "--count",
        "3",
        "--interval",
        "100ms",
        "--timeout",
        "1s",
    ])?;
    // Checks run concurrently: three 1 s timeouts in a row, not nine.
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
    assert!(!ok, "some check never succeeded: exit 1; {stderr}");
    let r = &reports[&open];
    assert_eq!(
        (r["attempts"].as_u64(), r["successes"].as_u64()),
        (Some(3), Some(3)),
        "{r}"
    );
    assert_eq!(r["success_rate"], 1.0);
    assert_eq!(r["latency_ns"]["samples"], 3);
    assert!(r["latency_ns"]["p50"].as_u64().unwrap() > 0);
    let r = &reports[&refused];
    assert_eq!(r["success_rate"], 0.0, "{r}");
    assert_eq!(r["failures"], serde_json::json!({"refused": 3}), "{r}");
    let r = &reports[&dropped];
    assert_eq!(r["success_rate"], 0.0, "{r}");
    assert_eq!(r["failures"], serde_json::json!({"timeout": 3}), "{r}");
    assert!(r["latency_ns"]["p50"].is_null());
    Ok(())
}

/// iproute2 bind-mounts `/etc/netns/NAME/*` over `/etc/*` for processes started with
/// `ip netns exec NAME`: the way to give a "pod" its own resolv.conf. Removed on drop.
struct PodEtc(PathBuf);

impl PodEtc {
    fn new(end: &End, resolv: &str, hosts: &str) -> Result<Self> {
        let dir = PathBuf::from(format!("/etc/netns/{}", end.netns));
        std::fs::create_dir_all(&dir)?;
        let guard = PodEtc(dir);
        std::fs::write(guard.0.join("resolv.conf"), resolv)?;
        std::fs::write(guard.0.join("hosts"), hosts)?;
        Ok(guard)
    }
}

impl Drop for PodEtc {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
        // /etc/netns itself only if this left it empty (remove_dir refuses otherwise).
        if let Some(parent) = self.0.parent() {
            let _ = std::fs::remove_dir(parent);
        }
    }
}

/// A DNS server for the zone `shop.test`: `web.shop.test` is namespace b's address,
/// everything else NXDOMAIN.
const DNS_SERVER: &str = r#"
import socket, sys
ip = bytes(int(x) for x in sys.argv[1].split('.'))
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], 53))
while True:
    q, peer = s.recvfrom(512)
    i, labels = 12, []
    while q[i]:
        labels.append(q[i+1:i+1+q[i]].decode()); i += 1 + q[i]
    name, qtype = '.'.join(labels).lower(), q[i+1:i+3]
    question = q[12:i+5]
    if name == 'web.shop.test' and qtype == b'\x00\x01':
        r = q[:2] + b'\x81\x80\x00\x01\x00\x01\x00\x00\x00\x00' + question + b'\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04' + ip
    elif name == 'web.shop.test':
        r = q[:2] + b'\x81\x80\x00\x01\x00\x00\x00\x00\x00\x00' + question
    else:
        r = q[:2] + b'\x81\x83\x00\x01\x00\x00\x00\x00\x00\x00' + question
    s.sendto(r, peer)
"#;

#[test]
fn http_and_dns_resolve_names_through_the_pods_resolv_conf() -> Result<()> {
    let pair = NetnsPair::new()?;
    snoopy_testkit::require_tool("python3")?;
    let b = pair.b.ip.to_string();
    // Only the "pod" (namespace a) knows this nameserver and search domain; the host's
    // resolv.conf does not, so success proves the pod's file was used.
    let _etc = PodEtc::new(
        &pair.a,
        &format!("nameserver {b}\nsearch shop.test\noptions ndots:2\n"),
        "127.0.0.1 localhost\n198.18.0.2 db-by-hosts\n",
    )?;
    let docs = tempfile::tempdir()?;
    std::fs::write(docs.path().join("index.html"), "hello")?;
    let _dns = pair.b.spawn(&["python3", "-c", DNS_SERVER, &b])?;
    let _http = pair.b.spawn(&[
        "python3",
        "-m",
        "http.server",
        "8080",
        "--bind",
        &b,
        "--directory",
        docs.path().to_str().unwrap(),
    ])?;
    pair.a.wait_for_port(&b, 8080)?;
    // The DNS server must be bound too (UDP: nothing to connect to, so ask ss).
    let deadline = Instant::now() + Duration::from_secs(10);
    while pair
        .b
        .run(&["ss", "-Hlun", "sport = :53"])?
        .stdout
        .is_empty()
    {
        anyhow::ensure!(
            Instant::now() < deadline,
            "the test DNS server never bound :53"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let pod = pair.a.resident()?;
    let pid = pod.pid().to_string();
    // `ip netns exec` enters the network namespace before it mounts the pod's /etc files.
    let seen = PathBuf::from(format!("/proc/{pid}/root/etc/resolv.conf"));
    let deadline = Instant::now() + Duration::from_secs(5);
    while !std::fs::read_to_string(&seen).is_ok_and(|t| t.contains("shop.test")) {
        anyhow::ensure!(
            Instant::now() < deadline,
            "the pod's resolv.conf never appeared"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let (ok, reports, stderr) = probe(&[
        "--pid",
        &pid,
        "--dns",
        "web",
        "--dns",
        "nosuch",
        "--http",
        "http://web:8080/",
        "--http",
        &format!("http://{b}:8080/missing"),
        "--tcp",
        "db-by-hosts:8080",
        "--count",
        "2",
        "--interval",
        "50ms",
        "--timeout",
        "2s",
    ])?;
    assert!(!ok, "nosuch and /missing fail: {stderr}");
    let resolv = format!("/proc/{pid}/root/etc/resolv.conf");
    assert!(stderr.contains(&resolv), "says which resolv.conf: {stderr}");

    let r = &reports["web"];
    assert_eq!(r["success_rate"], 1.0, "{r}");
    assert_eq!(r["results"][0]["answers"], serde_json::json!([b]), "{r}");
    assert_eq!(r["results"][0]["address"], format!("{b}:53"));
    assert_eq!(r["resolv_conf"], resolv);
    let r = &reports["nosuch"];
    assert_eq!(r["failures"], serde_json::json!({"nxdomain": 2}), "{r}");

    let r = &reports["http://web:8080/"];
    assert_eq!(r["success_rate"], 1.0, "{r}");
    assert_eq!(r["results"][0]["status"], 200);
    assert_eq!(r["results"][0]["address"], format!("{b}:8080"));
    assert!(r["latency_ns"]["p50"].as_u64().unwrap() > 0);
    let missing = format!("http://{b}:8080/missing");
    let r = &reports[&missing];
    assert_eq!(r["failures"], serde_json::json!({"http_status": 2}), "{r}");
    assert_eq!(r["results"][1]["status"], 404);

    let r = &reports["db-by-hosts:8080"];
    assert_eq!(r["success_rate"], 1.0, "the pod's /etc/hosts: {r}");

    Ok(())
}

#[test]
fn text_output_is_a_table() -> Result<()> {
    let pair = NetnsPair::new()?;
    let _server = listener(&pair.b)?;
    pair.a.wait_for_port(&pair.b.ip.to_string(), 8080)?;
    let target = format!("{}:8080", pair.b.ip);
    let out = podtracer()
        .args([
            "probe",
            "--netns",
            pair.a.netns_path().to_str().unwrap(),
            "--tcp",
            &target,
        ])
        .output()?;
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout)?;
    let row = text
        .lines()
        .find(|l| l.contains(&target))
        .with_context(|| format!("no row for {target}: {text}"))?;
    let words: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(
        &words[..5],
        &["tcp", target.as_str(), "1", "1", "100%"],
        "{row}"
    );
    Ok(())
}
