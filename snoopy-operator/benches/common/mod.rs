//! What the operator benchmarks share: the real operator binary started against the testbed
//! apiserver, its /readyz and /metrics, and its memory.

// Each benchmark binary compiles this module and uses a part of it.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// Where the benchmarked operator serves /metrics and /readyz.
pub const LISTEN: &str = "127.0.0.1:18191";

/// Starts the operator binary: Jobs in `op`, CRs watched in `ns`, quiet logs.
pub fn start_operator(op: &str, ns: &str, extra: &[&str]) -> anyhow::Result<Child> {
    // An operator left over from an interrupted run would answer /readyz and /metrics in
    // this one's place.
    anyhow::ensure!(
        TcpStream::connect(LISTEN).is_err(),
        "something already listens on {LISTEN}: an operator left over from an earlier run?"
    );
    // SNOOPY_OPERATOR_BIN runs another build (an older commit's) through the same bench.
    let binary = std::env::var_os("SNOOPY_OPERATOR_BIN")
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_snoopy-operator").into());
    Ok(Command::new(binary)
        .args([
            "--namespace",
            op,
            "--watch-namespace",
            ns,
            "--listen",
            LISTEN,
        ])
        .args(extra)
        .env("RUST_LOG", "warn")
        .spawn()?)
}

/// Waits until the operator answers /readyz (30 s at most), failing if it exits.
pub async fn wait_ready(child: &mut Child) -> anyhow::Result<()> {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait()? {
            anyhow::bail!("the operator exited: {status}");
        }
        if get("/readyz").is_ok_and(|r| r.starts_with("HTTP/1.1 200")) {
            return Ok(());
        }
        anyhow::ensure!(
            start.elapsed() < Duration::from_secs(30),
            "the operator did not become ready"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One plain HTTP GET to the operator's listener: the whole response.
pub fn get(path: &str) -> std::io::Result<String> {
    let mut stream = TcpStream::connect(LISTEN)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )?;
    let mut out = String::new();
    stream.read_to_string(&mut out)?;
    Ok(out)
}

/// The operator's /metrics response.
pub fn scrape() -> anyhow::Result<String> {
    Ok(get("/metrics")?)
}

/// The value of the first sample of metric `name` in a Prometheus text page (0 without).
pub fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(name))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

/// Peak resident memory of process `pid` (VmHWM), KiB.
pub fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .ok_or_else(|| anyhow::anyhow!("no VmHWM"))?;
    Ok(line.split_whitespace().nth(1).unwrap_or("0").parse()?)
}

/// CPU time (user + system) process `pid` has used, seconds.
pub fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name (which may hold spaces) start at state, field 3;
    // utime and stime are fields 14 and 15, in clock ticks of 1/100 s on Linux.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    Ok((ticks(11) + ticks(12)) / 100.0)
}

/// Current resident memory of process `pid` (VmRSS), KiB.
pub fn rss_now_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .ok_or_else(|| anyhow::anyhow!("no VmRSS"))?;
    Ok(line.split_whitespace().nth(1).unwrap_or("0").parse()?)
}
