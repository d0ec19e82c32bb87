//! What the operator benchmarks share: the run against the testbed apiserver (its CRDs and
//! namespaces), the real operator binary started there, its /readyz and /metrics, its memory
//! and CPU time.

// Each benchmark binary compiles this module and uses a part of it.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, ExitCode};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::json;

/// A benchmark's `main`: runs `bench` on a tokio runtime against the testbed apiserver
/// (`KUBECONFIG`); success when it returns `Ok(true)` (its targets met).
pub fn run<F: Future<Output = anyhow::Result<bool>>>(bench: impl FnOnce() -> F) -> ExitCode {
    if std::env::var_os("KUBECONFIG").is_none() {
        eprintln!(
            "KUBECONFIG is not set: run testbed/k8s/control-plane.sh up; eval $(testbed/k8s/control-plane.sh env)"
        );
        return ExitCode::FAILURE;
    }
    let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
    match rt.block_on(bench()) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Applies the operator's CRDs and gives the apiserver 2 s to establish them.
pub async fn install_crds(client: &Client) -> anyhow::Result<()> {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for (_, crd) in snoopy_operator::crd::all() {
        crds.patch(
            &crd.name_any(),
            &PatchParams::apply("snoopy-bench").force(),
            &Patch::Apply(&crd),
        )
        .await?;
    }
    tokio::time::sleep(Duration::from_secs(2)).await; // established
    Ok(())
}

/// Creates namespaces `names`, then waits until the first one's default ServiceAccount has
/// its token: pods are admitted there only from then on.
pub async fn create_namespaces(client: &Client, names: &[&str]) -> anyhow::Result<()> {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    for name in names {
        namespaces
            .create(
                &PostParams::default(),
                &serde_json::from_value(json!({"metadata": {"name": name}}))?,
            )
            .await?;
    }
    let sas: Api<ServiceAccount> = Api::namespaced(client.clone(), names[0]);
    let waited = Instant::now();
    while sas
        .get_opt("default")
        .await?
        .and_then(|sa| sa.secrets)
        .is_none_or(|s| s.is_empty())
    {
        anyhow::ensure!(
            waited.elapsed() < Duration::from_secs(30),
            "no token for the default ServiceAccount in {}",
            names[0]
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

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
    status_kib(pid, "VmHWM")
}

/// Current resident memory of process `pid` (VmRSS), KiB.
pub fn rss_now_kib(pid: u32) -> anyhow::Result<u64> {
    status_kib(pid, "VmRSS")
}

/// Field `key` (a size in KiB) of `/proc/PID/status`.
fn status_kib(pid: u32, key: &str) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find(|l| l.strip_prefix(key).is_some_and(|r| r.starts_with(':')))
        .ok_or_else(|| anyhow::anyhow!("no {key} in /proc/{pid}/status"))?;
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
