//! `podtracer probe`: active checks from inside a pod's network namespace — TCP connect,
//! HTTP GET, DNS lookups — with names resolved as the pod resolves them.
//!
//! Every check runs on its own thread that enters the namespace (so sockets are the pod's)
//! and makes its attempts one after another; checks run concurrently.
//!
//! Names are resolved as the pod would: `/proc/PID/root/etc/hosts`, then DNS through
//! `/proc/PID/root/etc/resolv.conf` (nameservers, `search`, `ndots`), A then AAAA. With
//! `--netns` there is no pod filesystem, so the host's files are used (and said so).
//!
//! With `-o json`, one record per check (`"type": "probe"`):
//!
//! ```json
//! {"type": "probe", "check": "tcp | http | dns", "target": "db.shop:5432",
//!  "attempts": 3, "successes": 2, "success_rate": 0.6666666666666666,
//!  "failures": {"timeout": 1},
//!  "latency_ns": {"samples": 2, "p50": 181000, "p90": 250000, "p99": 250000},
//!  "resolv_conf": "/proc/4242/root/etc/resolv.conf",
//!  "results": [
//!    {"ok": true, "latency_ns": 181000, "address": "10.96.3.7:5432"},
//!    {"ok": false, "reason": "timeout", "address": "10.96.3.7:5432", "error": "connect(10.96.3.7:5432): connection timed out"},
//!    {"ok": true, "latency_ns": 250000, "address": "10.96.3.7:5432", "status": 200, "answers": ["10.96.3.7"]}]}
//! ```
//!
//! `latency_ns` is the connect time (tcp), connect start to the first response byte (http),
//! or query to answer (dns); `status` is the HTTP status, `answers` the DNS addresses;
//! `reason` is one of `refused`, `timeout`, `unreachable`, `reset`, `nxdomain`,
//! `no_answer`, `servfail`, `dns_refused`, `dns_port_closed`, `http_status`,
//! `bad_response`, `error`. HTTP statuses of 400 and above count as failures.

mod http;

use std::collections::BTreeMap;
use std::io::Write;
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::{ArgGroup, Args, ValueEnum};
use serde::Serialize;
use snoopy_capture::flow::{Histogram, Percentiles};

use self::http::{HttpError, Url};
use crate::names::dns::{self, Answer, QueryError, QueryType};
use crate::names::resolv::ResolvConf;
use crate::target::TargetArgs;

/// Arguments of `podtracer probe`.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("checks").required(true).multiple(true).args(["tcp", "http", "dns"])))]
pub struct ProbeArgs {
    /// Which pod(s) or network namespace to work in.
    #[command(flatten)]
    pub target: TargetArgs,

    /// Where results go besides the terminal (`--sink`).
    #[command(flatten)]
    pub sinks: crate::sinks::SinkArgs,

    /// Connect to HOST:PORT (repeatable).
    #[arg(long = "tcp", value_name = "HOST:PORT")]
    pub tcp: Vec<String>,

    /// GET an http:// URL: status and time to first byte (repeatable).
    #[arg(long = "http", value_name = "URL")]
    pub http: Vec<String>,

    /// Look NAME up (A record) through the pod's resolv.conf (repeatable).
    #[arg(long = "dns", value_name = "NAME")]
    pub dns: Vec<String>,

    /// Attempts per check.
    #[arg(short = 'c', long = "count", value_name = "N", default_value_t = 1)]
    pub count: u32,

    /// Pause between the attempts of one check.
    #[arg(long, value_name = "DURATION", value_parser = snoopy_job::duration::parse, default_value = "1s")]
    pub interval: Duration,

    /// Give up on an attempt after this long (name resolution included).
    #[arg(long, value_name = "DURATION", value_parser = snoopy_job::duration::parse, default_value = "2s")]
    pub timeout: Duration,

    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = ProbeOutput::Text)]
    pub output: ProbeOutput,
}

/// Output formats of `probe`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProbeOutput {
    /// A table.
    Text,
    /// One JSON object per check.
    Json,
}

/// One check as asked on the command line.
#[derive(Debug, Clone)]
enum Check {
    Tcp { host: String, port: u16 },
    Http(Url),
    Dns(String),
}

impl Check {
    fn kind(&self) -> &'static str {
        match self {
            Check::Tcp { .. } => "tcp",
            Check::Http(_) => "http",
            Check::Dns(_) => "dns",
        }
    }
}

/// Why an attempt failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// The connection was refused (RST: nothing listens, or a firewall rejects).
    Refused,
    /// No answer before the timeout (dropped packets, a silent firewall).
    Timeout,
    /// No route to the host or network.
    Unreachable,
    /// The server closed or reset the connection before answering (HTTP).
    Reset,
    /// The name does not exist (NXDOMAIN for every search candidate).
    Nxdomain,
    /// The name exists but has no address of the type asked.
    NoAnswer,
    /// The nameserver failed (SERVFAIL).
    Servfail,
    /// The nameserver refused the query (REFUSED).
    DnsRefused,
    /// The nameserver's port is closed (ICMP port unreachable).
    DnsPortClosed,
    /// An HTTP status of 400 or more.
    HttpStatus,
    /// An answer that is not HTTP or DNS.
    BadResponse,
    /// Any other error (see `error`).
    Error,
}

impl Reason {
    fn as_str(self) -> &'static str {
        match self {
            Reason::Refused => "refused",
            Reason::Timeout => "timeout",
            Reason::Unreachable => "unreachable",
            Reason::Reset => "reset",
            Reason::Nxdomain => "nxdomain",
            Reason::NoAnswer => "no_answer",
            Reason::Servfail => "servfail",
            Reason::DnsRefused => "dns_refused",
            Reason::DnsPortClosed => "dns_port_closed",
            Reason::HttpStatus => "http_status",
            Reason::BadResponse => "bad_response",
            Reason::Error => "error",
        }
    }
}

/// One attempt's result.
#[derive(Debug, Clone, Serialize)]
pub struct Attempt {
    /// Whether it succeeded.
    pub ok: bool,
    /// Why not, if it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<Reason>,
    /// TCP: connect time; HTTP: connect start to the first response byte; DNS: query to
    /// answer. Nanoseconds; absent when it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_ns: Option<u64>,
    /// The address connected to or asked (`ip:port`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// HTTP status code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// DNS: the addresses in the answer.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub answers: Vec<IpAddr>,
    /// Details of a failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Attempt {
    fn failed(reason: Reason, error: impl Into<String>) -> Self {
        Attempt {
            ok: false,
            reason: Some(reason),
            latency_ns: None,
            address: None,
            status: None,
            answers: Vec::new(),
            error: Some(error.into()),
        }
    }

    fn succeeded(latency: Duration) -> Self {
        Attempt {
            ok: true,
            reason: None,
            latency_ns: Some(nanos(latency)),
            address: None,
            status: None,
            answers: Vec::new(),
            error: None,
        }
    }
}

/// The report of one check (JSON `"type": "probe"`).
#[derive(Debug, Serialize)]
pub struct CheckReport {
    /// Always `"probe"`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// `tcp`, `http` or `dns`.
    pub check: &'static str,
    /// The target as given.
    pub target: String,
    /// Attempts made.
    pub attempts: u32,
    /// Successful attempts.
    pub successes: u32,
    /// `successes / attempts`.
    pub success_rate: f64,
    /// Failed attempts by reason.
    pub failures: BTreeMap<&'static str, u32>,
    /// Latency percentiles of the successful attempts, nanoseconds.
    pub latency_ns: Percentiles,
    /// The resolv.conf names were resolved with (absent for address targets).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolv_conf: Option<PathBuf>,
    /// Every attempt, in order.
    pub results: Vec<Attempt>,
}

/// Runs the checks and prints their reports; exits 1 if some check never succeeded.
pub fn run(args: ProbeArgs) -> Result<ExitCode> {
    let mut checks = Vec::new();
    for t in &args.tcp {
        let (host, port) = http::split_host_port(t, 0).map_err(anyhow::Error::msg)?;
        anyhow::ensure!(port != 0, "--tcp {t}: give a port (HOST:PORT)");
        checks.push((t.clone(), Check::Tcp { host, port }));
    }
    for u in &args.http {
        checks.push((
            u.clone(),
            Check::Http(Url::parse(u).map_err(anyhow::Error::msg)?),
        ));
    }
    for d in &args.dns {
        checks.push((d.clone(), Check::Dns(d.clone())));
    }
    let (root, note) = resolver_root(&args.target);
    let conf = ResolvConf::read(&root);
    let needs_names = checks.iter().any(|(_, c)| match c {
        Check::Tcp { host, .. } => host.parse::<IpAddr>().is_err(),
        Check::Http(url) => url.host.parse::<IpAddr>().is_err(),
        Check::Dns(_) => true,
    });
    if needs_names {
        eprintln!(
            "podtracer: resolving names with {} (nameservers {}){}",
            conf.source.display(),
            conf.nameservers
                .iter()
                .map(|s| s.ip().to_string())
                .collect::<Vec<_>>()
                .join(", "),
            note.unwrap_or_default()
        );
    }
    let target = args.target.resolve_one()?;
    let mut sinks = crate::sinks::RecordSinks::open(
        &args.sinks,
        snoopy_capture::sink::kafka::DEFAULT_PROBES_TOPIC,
        &target.label,
    )?;
    let namespace = &target.namespace;
    let conf = &conf;
    let settings = Settings {
        count: args.count.max(1),
        interval: args.interval,
        timeout: args.timeout,
    };
    let reports: Vec<CheckReport> = std::thread::scope(|scope| {
        let handles: Vec<_> = checks
            .iter()
            .map(|(label, check)| {
                scope.spawn(move || {
                    snoopy_netns::in_namespace(namespace, || {
                        run_check(label, check, conf, settings, needs_names)
                    })
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("probe thread panicked"))
            .collect::<Result<Vec<_>, _>>()
    })
    .with_context(|| format!("entering {}", target.label))?;

    let mut out = std::io::BufWriter::new(std::io::stdout());
    match args.output {
        ProbeOutput::Json => {
            for report in &reports {
                serde_json::to_writer(&mut out, report)?;
                out.write_all(b"\n")?;
            }
        }
        ProbeOutput::Text => out.write_all(render(&reports, &target.label).as_bytes())?,
    }
    out.flush()?;
    for report in &reports {
        sinks.send("probe", report)?;
    }
    sinks.finish(false)?;
    Ok(if reports.iter().all(|r| r.successes > 0) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The filesystem root whose `/etc/resolv.conf` the pod uses: its mount namespace's root
/// through `/proc/PID/root`; with only a network namespace there is none, so the host's.
fn resolver_root(target: &TargetArgs) -> (PathBuf, Option<String>) {
    match target.process() {
        Ok(Some(pid)) => (PathBuf::from(format!("/proc/{pid}/root")), None),
        Ok(None) => (
            PathBuf::from("/"),
            Some(
                " — the host's: --netns names no mount namespace; use --pid or --pod for the pod's own"
                    .to_string(),
            ),
        ),
        Err(e) => (
            PathBuf::from("/"),
            Some(format!(" — the host's: the pod's files could not be found ({e:#})")),
        ),
    }
}

#[derive(Debug, Clone, Copy)]
struct Settings {
    count: u32,
    interval: Duration,
    timeout: Duration,
}

/// All attempts of one check (runs inside the namespace).
fn run_check(
    label: &str,
    check: &Check,
    conf: &ResolvConf,
    settings: Settings,
    names_used: bool,
) -> CheckReport {
    let mut results = Vec::new();
    for i in 0..settings.count {
        if i > 0 {
            std::thread::sleep(settings.interval);
        }
        let deadline = Instant::now() + settings.timeout;
        results.push(match check {
            Check::Tcp { host, port } => tcp_attempt(host, *port, conf, deadline),
            Check::Http(url) => http_attempt(url, conf, deadline),
            Check::Dns(name) => dns_attempt(name, conf, deadline),
        });
    }
    let mut latency = Histogram::default();
    let mut failures = BTreeMap::new();
    for r in &results {
        if let Some(ns) = r.latency_ns.filter(|_| r.ok) {
            latency.record(Duration::from_nanos(ns));
        }
        if let Some(reason) = r.reason {
            *failures.entry(reason.as_str()).or_insert(0) += 1;
        }
    }
    let successes = results.iter().filter(|r| r.ok).count() as u32;
    let uses_names = match check {
        Check::Tcp { host, .. } => host.parse::<IpAddr>().is_err(),
        Check::Http(url) => url.host.parse::<IpAddr>().is_err(),
        Check::Dns(_) => true,
    };
    CheckReport {
        kind: "probe",
        check: check.kind(),
        target: label.to_string(),
        attempts: settings.count,
        successes,
        success_rate: f64::from(successes) / f64::from(settings.count),
        failures,
        latency_ns: latency.summary(),
        resolv_conf: (names_used && uses_names).then(|| conf.source.clone()),
        results,
    }
}

/// An address for `host`: a literal, `/etc/hosts`, then DNS (A, then AAAA).
fn resolve_host(host: &str, conf: &ResolvConf, deadline: Instant) -> Result<IpAddr, Attempt> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(ip);
    }
    if let Some(ip) = conf.in_hosts(host).first() {
        return Ok(*ip);
    }
    match lookup(host, conf, QueryType::A, deadline) {
        Ok((addresses, _)) => Ok(addresses[0]),
        Err(a) if a.reason == Some(Reason::NoAnswer) => {
            lookup(host, conf, QueryType::Aaaa, deadline).map(|(addresses, _)| addresses[0])
        }
        Err(a) => Err(a),
    }
}

/// DNS lookup of `name` through the search list and nameservers; the addresses and the
/// nameserver that answered.
fn lookup(
    name: &str,
    conf: &ResolvConf,
    qtype: QueryType,
    deadline: Instant,
) -> Result<(Vec<IpAddr>, SocketAddr), Attempt> {
    let mut last = Attempt::failed(
        Reason::Timeout,
        format!("no nameserver answered for {name}"),
    );
    for candidate in conf.candidates(name) {
        let servers = conf.nameservers.len();
        for (i, &server) in conf.nameservers.iter().enumerate() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(last);
            }
            // Share what is left among the servers not yet tried.
            let this = Instant::now() + left / (servers - i) as u32;
            match dns::query(server, &candidate, qtype, this) {
                Ok(Answer::Addresses(addresses)) => return Ok((addresses, server)),
                Ok(Answer::NxDomain) => {
                    last = Attempt::failed(Reason::Nxdomain, format!("{candidate}: NXDOMAIN"));
                    break; // next search candidate
                }
                Ok(Answer::Empty) => {
                    last = Attempt::failed(Reason::NoAnswer, format!("{candidate}: no address"));
                    break;
                }
                Ok(Answer::ServFail) => {
                    last = Attempt::failed(
                        Reason::Servfail,
                        format!("{server}: SERVFAIL for {candidate}"),
                    )
                }
                Ok(Answer::Refused) => {
                    last = Attempt::failed(
                        Reason::DnsRefused,
                        format!("{server}: REFUSED {candidate}"),
                    )
                }
                Ok(Answer::Other(code)) => {
                    last = Attempt::failed(Reason::BadResponse, format!("{server}: rcode {code}"))
                }
                Err(QueryError::Timeout) => {
                    last = Attempt::failed(Reason::Timeout, format!("{server}: no answer"))
                }
                Err(QueryError::PortClosed) => {
                    last = Attempt::failed(
                        Reason::DnsPortClosed,
                        format!("{server}: port closed (ICMP port unreachable)"),
                    )
                }
                Err(QueryError::Unreachable) => {
                    last = Attempt::failed(Reason::Unreachable, format!("{server}: unreachable"))
                }
                Err(QueryError::Malformed(why)) => {
                    last = Attempt::failed(Reason::BadResponse, format!("{server}: {why}"))
                }
                Err(QueryError::Io(e)) => {
                    last = Attempt::failed(Reason::Error, format!("{server}: {e}"))
                }
            }
        }
    }
    Err(last)
}

fn connect_error(e: &std::io::Error) -> Reason {
    match e.kind() {
        std::io::ErrorKind::ConnectionRefused => Reason::Refused,
        std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => Reason::Timeout,
        std::io::ErrorKind::HostUnreachable | std::io::ErrorKind::NetworkUnreachable => {
            Reason::Unreachable
        }
        std::io::ErrorKind::ConnectionReset => Reason::Reset,
        _ => Reason::Error,
    }
}

/// Connects until `deadline`; the stream and the connect time.
fn connect(address: SocketAddr, deadline: Instant) -> Result<(TcpStream, Duration), Attempt> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        let mut a = Attempt::failed(Reason::Timeout, "name resolution used up the timeout");
        a.address = Some(address.to_string());
        return Err(a);
    }
    let start = Instant::now();
    match TcpStream::connect_timeout(&address, left) {
        Ok(stream) => Ok((stream, start.elapsed())),
        Err(e) => {
            let mut a = Attempt::failed(connect_error(&e), format!("connect({address}): {e}"));
            a.address = Some(address.to_string());
            Err(a)
        }
    }
}

fn tcp_attempt(host: &str, port: u16, conf: &ResolvConf, deadline: Instant) -> Attempt {
    let ip = match resolve_host(host, conf, deadline) {
        Ok(ip) => ip,
        Err(a) => return a,
    };
    let address = SocketAddr::new(ip, port);
    match connect(address, deadline) {
        Ok((_stream, took)) => {
            let mut a = Attempt::succeeded(took);
            a.address = Some(address.to_string());
            a
        }
        Err(a) => a,
    }
}

fn http_attempt(url: &Url, conf: &ResolvConf, deadline: Instant) -> Attempt {
    let ip = match resolve_host(&url.host, conf, deadline) {
        Ok(ip) => ip,
        Err(a) => return a,
    };
    let address = SocketAddr::new(ip, url.port);
    let (mut stream, connected) = match connect(address, deadline) {
        Ok(c) => c,
        Err(a) => return a,
    };
    let mut attempt = match http::get(&mut stream, url, deadline) {
        Ok(response) => {
            let mut a = Attempt::succeeded(connected + response.first_byte);
            a.status = Some(response.status);
            if response.status >= 400 {
                a.ok = false;
                a.reason = Some(Reason::HttpStatus);
                a.error = Some(format!("HTTP {}", response.status));
            }
            a
        }
        Err(HttpError::Timeout) => {
            Attempt::failed(Reason::Timeout, "no response before the timeout")
        }
        Err(HttpError::Closed) => {
            Attempt::failed(Reason::Reset, "connection closed before a status line")
        }
        Err(HttpError::BadResponse) => {
            Attempt::failed(Reason::BadResponse, "not an HTTP/1.x response")
        }
        Err(HttpError::Io(e)) => Attempt::failed(Reason::Error, e.to_string()),
    };
    attempt.address = Some(address.to_string());
    attempt
}

fn dns_attempt(name: &str, conf: &ResolvConf, deadline: Instant) -> Attempt {
    let start = Instant::now();
    match lookup(name, conf, QueryType::A, deadline) {
        Ok((answers, server)) => {
            let mut a = Attempt::succeeded(start.elapsed());
            a.address = Some(server.to_string());
            a.answers = answers;
            a
        }
        Err(a) => a,
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

fn ms(ns: Option<u64>) -> String {
    ns.map(|ns| format!("{:.3}ms", ns as f64 / 1e6))
        .unwrap_or_else(|| "-".to_string())
}

fn render(reports: &[CheckReport], label: &str) -> String {
    let mut s = format!("podtracer probe from {label}\n");
    s.push_str(&format!(
        "{:<5} {:<32} {:>8} {:>4} {:>5} {:>10} {:>10} {:>10}  {}\n",
        "CHECK", "TARGET", "ATTEMPTS", "OK", "RATE", "P50", "P90", "P99", "FAILURES"
    ));
    for r in reports {
        let failures = if r.failures.is_empty() {
            "-".to_string()
        } else {
            r.failures
                .iter()
                .map(|(reason, n)| format!("{reason} {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        s.push_str(&format!(
            "{:<5} {:<32} {:>8} {:>4} {:>4.0}% {:>10} {:>10} {:>10}  {}\n",
            r.check,
            r.target,
            r.attempts,
            r.successes,
            r.success_rate * 100.0,
            ms(r.latency_ns.p50),
            ms(r.latency_ns.p90),
            ms(r.latency_ns.p99),
            failures
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pods_resolv_conf_comes_from_its_root_and_netns_falls_back_to_the_hosts() {
        let by_pid = TargetArgs {
            pid: Some(4242),
            ..TargetArgs::default()
        };
        assert_eq!(
            resolver_root(&by_pid),
            (PathBuf::from("/proc/4242/root"), None)
        );
        let by_netns = TargetArgs {
            netns: Some(PathBuf::from("/var/run/netns/x")),
            ..TargetArgs::default()
        };
        let (root, note) = resolver_root(&by_netns);
        assert_eq!(root, PathBuf::from("/"));
        assert!(note.unwrap().contains("the host's"));
    }
}
