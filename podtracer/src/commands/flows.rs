//! `podtracer flows`: which connections a pod makes, which fail, to where, how slow —
//! live from the pod's network namespace, or from a pcap/pcapng file.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use snoopy_capture::PacketSource;
use snoopy_capture::afpacket::{CaptureBuilder, Event};
use snoopy_capture::flow::{self, FlowConfig, FlowTable, PodNames};
use snoopy_capture::source::FileSource;

mod many;
mod view;

use self::view::View;
use crate::pipeline::{Ending, Totals};
use crate::target::{Target, TargetArgs};

/// With pods named through the runtime (`--pod`, `-l`), every pod IP on this node is shown as
/// `NS/POD`; with `--pid`/`--netns`/`-r` nothing names the addresses.
fn pod_names(target: &TargetArgs) -> PodNames {
    let mut names = PodNames::new();
    if target.pod.is_empty() && target.selector.is_none() {
        return names;
    }
    let pods = crate::runtime::connect(target.runtime_endpoint.as_deref())
        .and_then(|client| Ok(client.list_pods(&snoopy_cri::PodQuery::all())?));
    for pod in pods.into_iter().flatten() {
        for ip in pod.ip.iter().chain(&pod.additional_ips) {
            names.insert(*ip, pod.qualified_name());
        }
    }
    names
}

/// Arguments of `podtracer flows`.
#[derive(Debug, Args)]
pub struct FlowsArgs {
    /// Which pod(s) or network namespace to work in.
    #[command(flatten)]
    pub target: TargetArgs,

    /// Where results go besides the terminal (`--sink`).
    #[command(flatten)]
    pub sinks: crate::sinks::SinkArgs,

    /// Read packets from a pcap or pcapng file instead of capturing (`-` for stdin).
    #[arg(short = 'r', value_name = "FILE", group = "target")]
    pub read: Option<PathBuf>,

    /// Interface inside the pod; `any` for all (default: the first up, non-loopback one).
    #[arg(short = 'i', long = "interface", value_name = "IFACE")]
    pub interface: Option<String>,

    /// Stop after this many packets.
    #[arg(short = 'c', long = "count", value_name = "COUNT")]
    pub count: Option<u64>,

    /// Stop after this long (e.g. 30, 30s, 5m).
    #[arg(long, value_name = "DURATION", value_parser = snoopy_job::duration::parse)]
    pub duration: Option<Duration>,

    /// Refresh the table / write a snapshot this often.
    #[arg(long, value_name = "DURATION", value_parser = snoopy_job::duration::parse, default_value = "2s")]
    pub interval: Duration,

    /// Output: a table (default on a terminal) or JSON lines (default otherwise).
    #[arg(short = 'o', long = "output", value_enum, value_name = "FORMAT")]
    pub output: Option<FlowsOutput>,

    /// Order of the table's rows.
    #[arg(long, value_enum, default_value_t = SortBy::Failures)]
    pub sort: SortBy,

    /// Rows per table section.
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub top: usize,

    /// A flow with no packet for this long is finished.
    #[arg(long, value_name = "DURATION", value_parser = snoopy_job::duration::parse, default_value = "60s")]
    pub idle_timeout: Duration,

    /// Long flows report every this long.
    #[arg(long, value_name = "DURATION", value_parser = snoopy_job::duration::parse, default_value = "5m")]
    pub active_timeout: Duration,

    /// Most flows tracked at once (the least recently seen is evicted and counted).
    #[arg(long, value_name = "N", default_value_t = 100_000)]
    pub max_flows: usize,

    /// At the end of a live run, write the packet and Kafka counts as JSON to this file, as
    /// `capture` does (a Kubernetes Job's /dev/termination-log carries them to the operator).
    #[arg(long, value_name = "PATH")]
    pub termination_log: Option<PathBuf>,
}

/// Output formats of `flows`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FlowsOutput {
    /// A top-like table, refreshed on a terminal.
    Table,
    /// JSON lines: one record per finished flow, periodic snapshots, a final summary.
    Json,
}

/// Table order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SortBy {
    /// Most bytes first.
    Bytes,
    /// Most failed attempts first, then most bytes.
    Failures,
}

/// Where `flows` reads packets from.
enum Input<'a> {
    /// A capture file (`-r`).
    File(&'a PathBuf),
    /// A live capture in the target's network namespace.
    Live(Target),
    /// Live captures in several pods' namespaces (`-l`, `--pod NS/NAME…`).
    Pods(Box<crate::target::Resolved>),
}

/// Runs `flows` to its end and prints the result.
pub fn run(args: FlowsArgs) -> Result<ExitCode> {
    let config = FlowConfig {
        idle_timeout: args.idle_timeout,
        active_timeout: args.active_timeout,
        max_flows: args.max_flows,
        ..FlowConfig::default()
    };
    let format = args.output.unwrap_or(if std::io::stdout().is_terminal() {
        FlowsOutput::Table
    } else {
        FlowsOutput::Json
    });
    let names = pod_names(&args.target);
    // The target is resolved once (a runtime query for --pod); the records' key is the pod
    // (NS/POD, pid:N, a netns path) or the file read.
    let input = match &args.read {
        Some(path) => Input::File(path),
        None => {
            let mut resolved = args.target.resolve()?;
            if resolved.many {
                Input::Pods(Box::new(resolved))
            } else {
                Input::Live(resolved.targets.remove(0))
            }
        }
    };
    let key = match &input {
        Input::File(path) => path.display().to_string(),
        Input::Live(target) => target.label.clone(),
        // Each record is keyed by the pod that saw it; snapshots by the node.
        Input::Pods(_) => crate::sinks::node_name(),
    };
    let sinks = crate::sinks::RecordSinks::open(
        &args.sinks,
        snoopy_capture::sink::kafka::DEFAULT_FLOWS_TOPIC,
        &key,
    )?;
    let mut view = View::new(format, args.sort, args.top, names, sinks);
    let result = match input {
        Input::File(path) => offline(path, config, args.count, &mut view).map(|()| None),
        Input::Live(target) => live(&args, target, config, &mut view).map(|t| Some((t, vec![]))),
        Input::Pods(resolved) => many::run(&args, *resolved, config, &mut view).map(Some),
    };
    let result = result.and_then(|ended| {
        let reports = view.sinks.finish(false)?;
        if let Some((totals, pods)) = ended {
            Ending {
                totals: &totals,
                kafka: &reports,
                files: &[],
                pods: &pods,
            }
            .write(args.termination_log.as_deref());
        }
        Ok(())
    });
    crate::exit::status(result)
}

fn offline(path: &PathBuf, config: FlowConfig, count: Option<u64>, view: &mut View) -> Result<()> {
    let mut source = if path.as_os_str() == "-" {
        FileSource::from_reader(std::io::stdin(), "stdin")
    } else {
        FileSource::open(path)
    }
    .with_context(|| format!("cannot read {}", path.display()))?;
    let mut table = FlowTable::new(config);
    match count {
        None => flow::feed(&mut source, &mut table, |r| view.finished(r))
            .with_context(|| format!("reading {}", path.display()))?,
        Some(limit) => {
            let mut limited = Limited {
                inner: &mut source,
                left: limit,
            };
            flow::feed(&mut limited, &mut table, |r| view.finished(r))
                .with_context(|| format!("reading {}", path.display()))?
        }
    }
    view.flush_records()?;
    table.finish();
    for record in table.drain_finished() {
        view.finished(record);
    }
    view.flush_records()?;
    let label = path.display().to_string();
    view.summary(table.stats(), &label, None, table.now())
}

/// A source that ends after `left` packets (`-c` on files).
struct Limited<'a, S: snoopy_capture::PacketSource> {
    inner: &'a mut S,
    left: u64,
}

impl<S: snoopy_capture::PacketSource> snoopy_capture::PacketSource for Limited<'_, S> {
    fn interfaces(&self) -> &[snoopy_capture::Interface] {
        self.inner.interfaces()
    }

    fn next_packet(&mut self) -> snoopy_capture::Result<Option<snoopy_capture::Packet<'_>>> {
        if self.left == 0 {
            return Ok(None);
        }
        self.left -= 1;
        self.inner.next_packet()
    }

    fn stats(&mut self) -> snoopy_capture::Result<snoopy_capture::SourceStats> {
        self.inner.stats()
    }
}

fn wall_clock() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

/// Meters the target's traffic until the count, the duration, a signal or the interface
/// going away ends it; returns the capture's totals.
fn live(args: &FlowsArgs, target: Target, config: FlowConfig, view: &mut View) -> Result<Totals> {
    let mut builder = CaptureBuilder::new()
        .namespace(target.namespace)
        // Idle events let the table expire flows and the view refresh with no traffic.
        .block_timeout(Duration::from_millis(100));
    if let Some(interface) = &args.interface {
        builder = builder.interface(interface);
    }
    let mut capture = builder
        .open()
        .with_context(|| format!("cannot capture in {}", target.label))?;
    capture.set_stop_handle(crate::signals::stop_on_signals()?);
    let link_type = capture.link_type();
    let interface = capture_interface_name(&capture);
    let label = format!("{interface} in {}", target.label);
    eprintln!("podtracer: watching flows on {label}, link-type {link_type}");
    let started = Instant::now();
    let deadline = args.duration.map(|d| started + d);
    let limit = args.count.unwrap_or(u64::MAX);
    let mut table = FlowTable::new(config);
    let mut packets = 0u64;
    let mut next_refresh = started + args.interval;
    while packets < limit {
        match capture.next_event_or_idle()? {
            Event::Packet(packet) => {
                table.observe(link_type, &packet);
                packets += 1;
                for record in table.drain_finished() {
                    view.finished(record);
                }
            }
            Event::Idle => {
                table.expire(wall_clock());
                for record in table.drain_finished() {
                    view.finished(record);
                }
                view.flush_records()?;
            }
            Event::End => break,
        }
        let now = Instant::now();
        if deadline.is_some_and(|d| now >= d) {
            break;
        }
        if now >= next_refresh {
            next_refresh = now + args.interval;
            view.flush_records()?;
            view.snapshot(
                table.snapshot(),
                table.stats(),
                &label,
                started.elapsed(),
                wall_clock(),
            )?;
        }
    }
    table.finish();
    for record in table.drain_finished() {
        view.finished(record);
    }
    view.flush_records()?;
    let totals = Totals::of(&mut capture)?;
    view.summary(table.stats(), &label, Some(started.elapsed()), wall_clock())?;
    if totals.target_gone {
        eprintln!("podtracer: {label} went away (pod deleted?); flows ended");
    }
    eprintln!(
        "podtracer: {} packets captured, {} dropped by kernel, {} flows, {} evicted",
        totals.captured,
        totals.dropped,
        table.stats().flows,
        table.stats().evicted
    );
    Ok(totals)
}

fn capture_interface_name(capture: &snoopy_capture::afpacket::Capture) -> String {
    capture
        .interfaces()
        .first()
        .map(|i| i.name.clone())
        .unwrap_or_default()
}
