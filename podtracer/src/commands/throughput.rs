//! `podtracer throughput`: bandwidth and latency between pods on this node — iperf3 run as
//! a server in one pod's network namespace and as a client in another's, one pair at a time,
//! with connect and request–response latency measured first on the idle path.
//!
//! Output: one `snoopy_job::throughput::PairResult` per ordered pair, as a table or JSON
//! lines (and to `--sink`s, topic `snoopy.throughput`). A pair that fails (server not
//! listening, refused, timed out) is a result with its reason; the run goes on.

mod iperf;
mod latency;
mod table;

use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use snoopy_job::throughput::{Direction, FailureReason, PairResult, Protocol, TestSettings};
use snoopy_netns::privileges::Privileges;

use crate::target::{Target, TargetArgs};

/// Output formats of `throughput`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ThroughputOutput {
    /// A table, one line per pair, and the spread across pairs.
    Table,
    /// One JSON object per pair and line (with iperf3's own report).
    Json,
}

/// Arguments of `podtracer throughput`.
#[derive(Debug, Args)]
pub struct ThroughputArgs {
    /// The client(s): `--pod`, `--pid`, `--netns`, or `-l` (each matching pod in turn).
    #[command(flatten)]
    pub target: TargetArgs,

    /// The server: this pod (in `--to-namespace`, default the client's `-n`).
    #[arg(long, value_name = "NAME", group = "server")]
    pub to_pod: Option<String>,

    /// Namespace of `--to-pod`.
    #[arg(long, value_name = "NS", requires = "to_pod")]
    pub to_namespace: Option<String>,

    /// The server: the network namespace of this process (give `--to-ip`).
    #[arg(long, value_name = "PID", group = "server", requires = "to_ip")]
    pub to_pid: Option<u32>,

    /// The server: this network namespace file (give `--to-ip`).
    #[arg(long, value_name = "PATH", group = "server", requires = "to_ip")]
    pub to_netns: Option<std::path::PathBuf>,

    /// The server's address the client connects to (default: the server pod's IP).
    #[arg(long, value_name = "IP")]
    pub to_ip: Option<IpAddr>,

    /// With `-l`: every ordered pair of the matching pods (n × (n-1) tests), each pod a
    /// client and a server in turn.
    #[arg(long, group = "server")]
    pub mesh: bool,

    /// Most tests one run may make (a mesh of n pods makes n × (n-1)).
    #[arg(long, value_name = "N", default_value_t = 100)]
    pub max_pairs: usize,

    /// UDP instead of TCP (with `-b`).
    #[arg(short = 'u', long)]
    pub udp: bool,

    /// Target bitrate for UDP, in bits per second with iperf3's suffixes (K, M, G).
    #[arg(short = 'b', long, value_name = "RATE", value_parser = parse_rate, requires = "udp")]
    pub bitrate: Option<u64>,

    /// Seconds of traffic per test.
    #[arg(short = 't', long = "time", value_name = "SECS", default_value_t = 5,
          value_parser = clap::value_parser!(u32).range(1..=3600))]
    pub seconds: u32,

    /// Parallel streams per test.
    #[arg(short = 'P', long, value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..=128))]
    pub parallel: u32,

    /// Server to client instead (iperf3 -R).
    #[arg(short = 'R', long, conflicts_with = "bidir")]
    pub reverse: bool,

    /// Both ways at once (iperf3 --bidir).
    #[arg(long)]
    pub bidir: bool,

    /// The server's iperf3 port (default: a free port in the server's namespace).
    #[arg(short = 'p', long, value_name = "PORT")]
    pub port: Option<u16>,

    /// One-byte request–response round trips measured before each test (0: none).
    #[arg(long, value_name = "N", default_value_t = 20,
          value_parser = clap::value_parser!(u32).range(0..=10_000))]
    pub round_trips: u32,

    /// How long to wait for a connection (latency probes and iperf3's control connection).
    #[arg(long, value_name = "DURATION", value_parser = snoopy_job::duration::parse, default_value = "3s")]
    pub connect_timeout: Duration,

    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t = ThroughputOutput::Table)]
    pub output: ThroughputOutput,

    /// Where else results go (Kafka default topic snoopy.throughput).
    #[command(flatten)]
    pub sinks: crate::sinks::SinkArgs,
}

/// The tests to run: every namespace opened once, and the ordered pairs as indices into it
/// (client, server) with the server's address.
struct Plan {
    targets: Vec<Target>,
    pairs: Vec<(usize, usize, IpAddr)>,
}

/// Runs every pair in turn and prints the results. Exit status 0 when every test
/// succeeded, 1 when any failed (each failure is still a result).
pub fn run(args: ThroughputArgs) -> Result<ExitCode> {
    let iperf3 = crate::program::find("iperf3".as_ref()).context(
        "iperf3 is not on this host's PATH: install it (Debian: apt-get install iperf3); throughput runs the host's iperf3 inside the pods' namespaces",
    )?;
    let privileges = Privileges::nobody(&[]);
    privileges
        .check("running iperf3 as nobody with no capabilities")
        .context("podtracer throughput drops iperf3's privileges after entering the namespace")?;
    let plan = plan(&args)?;
    let settings = TestSettings {
        protocol: if args.udp {
            Protocol::Udp
        } else {
            Protocol::Tcp
        },
        direction: match (args.reverse, args.bidir) {
            (true, _) => Direction::Reverse,
            (_, true) => Direction::Both,
            _ => Direction::Forward,
        },
        streams: args.parallel,
        seconds: args.seconds,
        bitrate: args.bitrate,
        round_trips: args.round_trips,
    };
    let mut sinks = crate::sinks::RecordSinks::open(
        &args.sinks,
        snoopy_job::topics::THROUGHPUT,
        &args
            .target
            .selector
            .clone()
            .or_else(|| args.target.one_pod().map(str::to_owned))
            .unwrap_or_else(|| "throughput".into()),
    )?;
    let mut out = std::io::BufWriter::new(std::io::stdout());
    if args.output == ThroughputOutput::Table {
        writeln!(out, "{}", table::HEADER)?;
        out.flush()?;
    }
    let mut results = Vec::new();
    for &(client, server, address) in &plan.pairs {
        let (client, server) = (&plan.targets[client], &plan.targets[server]);
        let result = test_pair(
            client,
            server,
            address,
            &settings,
            &args,
            &iperf3,
            &privileges,
        );
        match args.output {
            ThroughputOutput::Json => {
                serde_json::to_writer(&mut out, &result)?;
                out.write_all(b"\n")?;
            }
            ThroughputOutput::Table => writeln!(out, "{}", table::row(&result))?,
        }
        out.flush()?;
        sinks.send_as(&result.client, "throughput", &result)?;
        results.push(result);
    }
    if args.output == ThroughputOutput::Table && results.len() > 1 {
        write!(out, "{}", table::spread(&results))?;
    }
    out.flush()?;
    sinks.finish(false)?;
    Ok(if results.iter().all(PairResult::ok) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The ordered (client, server) pairs the options name; the server options are checked
/// before any namespace is opened.
fn plan(args: &ThroughputArgs) -> Result<Plan> {
    if args.mesh {
        if args.target.selector.is_none() {
            bail!("--mesh needs -l SELECTOR: the pods that test each other");
        }
        let targets = args.target.resolve()?.targets;
        let n = targets.len();
        if n < 2 {
            bail!("--mesh needs at least two matching pods; {n} matched on this node");
        }
        check_pairs(n * (n - 1), args.max_pairs)?;
        let mut pairs = Vec::new();
        for client in 0..n {
            for server in (0..n).filter(|&s| s != client) {
                pairs.push((client, server, server_address(&targets[server], None)?));
            }
        }
        return Ok(Plan { targets, pairs });
    }
    let server = TargetArgs {
        pid: args.to_pid,
        netns: args.to_netns.clone(),
        pod: args.to_pod.iter().cloned().collect(),
        namespace: vec![
            args.to_namespace
                .clone()
                .unwrap_or_else(|| args.target.namespace().to_owned()),
        ],
        runtime_endpoint: args.target.runtime_endpoint.clone(),
        ..TargetArgs::default()
    };
    if !server.is_given() {
        bail!(
            "name the server: --to-pod NAME, --to-pid PID or --to-netns PATH (with --to-ip), or --mesh with -l"
        );
    }
    let mut targets = args.target.resolve()?.targets;
    check_pairs(targets.len(), args.max_pairs)?;
    let server = server.resolve_one()?;
    let address = server_address(&server, args.to_ip)?;
    let pairs = (0..targets.len())
        .map(|c| (c, targets.len(), address))
        .collect();
    targets.push(server);
    Ok(Plan { targets, pairs })
}

fn check_pairs(n: usize, max: usize) -> Result<()> {
    if n > max {
        bail!("{n} tests exceed --max-pairs {max}: select fewer pods or raise --max-pairs");
    }
    Ok(())
}

/// Where a server is reached: `--to-ip`, else its pod's IP.
fn server_address(target: &Target, to_ip: Option<IpAddr>) -> Result<IpAddr> {
    to_ip
        .or_else(|| target.pod.as_ref().and_then(|p| p.ip))
        .with_context(|| {
            format!(
                "{} has no IP the runtime reports: give the server's address with --to-ip",
                target.label
            )
        })
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// One test: latency first (idle path), then iperf3. Never an `Err`: what fails is the
/// result's `reason` and `error`.
fn test_pair(
    client: &Target,
    server: &Target,
    address: IpAddr,
    settings: &TestSettings,
    args: &ThroughputArgs,
    iperf3: &std::path::Path,
    privileges: &Privileges,
) -> PairResult {
    let started_ms = now_ms();
    let mut result = PairResult {
        client: client.label.clone(),
        server: server.label.clone(),
        server_address: address.to_string(),
        port: args.port.unwrap_or(0),
        settings: settings.clone(),
        started_ms,
        ended_ms: started_ms,
        forward: None,
        reverse: None,
        latency: None,
        reason: None,
        error: None,
        iperf3: None,
    };
    let outcome = (|| -> Result<(), (FailureReason, String)> {
        if settings.round_trips > 0 {
            result.latency = Some(latency::measure(
                client,
                server,
                address,
                settings.round_trips,
                args.connect_timeout,
            )?);
        }
        let port = match args.port {
            Some(p) => p,
            None => latency::free_port(server, address)
                .map_err(|e| (FailureReason::Error, format!("{e:#}")))?,
        };
        result.port = port;
        let test = iperf::Test {
            iperf3,
            privileges,
            server: &server.namespace,
            client: &client.namespace,
            address: SocketAddr::new(address, port),
            settings,
            connect_timeout: args.connect_timeout,
        };
        let report = test.run()?;
        result.forward = report.forward;
        result.reverse = report.reverse;
        result.iperf3 = Some(report.raw);
        Ok(())
    })();
    if let Err((reason, error)) = outcome {
        result.reason = Some(reason);
        result.error = Some(error);
    }
    result.ended_ms = now_ms();
    result
}

/// iperf3's rate syntax: a number with an optional K, M, G or T suffix (powers of 1000 for
/// bit rates, as iperf3 takes them).
fn parse_rate(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (digits, scale) = match s.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let scale: u64 = match c.to_ascii_uppercase() {
                'K' => 1_000,
                'M' => 1_000_000,
                'G' => 1_000_000_000,
                'T' => 1_000_000_000_000,
                _ => return Err(format!("{s:?}: the suffix must be K, M, G or T")),
            };
            (&s[..i], scale)
        }
        _ => (s, 1),
    };
    let value: f64 = digits
        .parse()
        .map_err(|_| format!("{s:?} is not a rate (e.g. 100M, 2.5G, 500000)"))?;
    if !(value.is_finite() && value > 0.0) {
        return Err(format!("{s:?}: the rate must be positive"));
    }
    Ok((value * scale as f64).round() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_take_iperf3s_suffixes() {
        assert_eq!(parse_rate("500000"), Ok(500_000));
        assert_eq!(parse_rate("100M"), Ok(100_000_000));
        assert_eq!(parse_rate("2.5g"), Ok(2_500_000_000));
        assert_eq!(parse_rate("10K"), Ok(10_000));
        assert!(parse_rate("10X").is_err());
        assert!(parse_rate("-1M").is_err());
        assert!(parse_rate("fast").is_err());
    }
}
