//! `podtracer monitor`: every TCP connection of the target network namespaces with the
//! process behind it (connects, accepts, refusals, closes with bytes, resets,
//! retransmissions, listens), from eBPF programs (`snoopy-ebpf`) that filter in the kernel.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use snoopy_ebpf::{Monitor, netns_inode};

mod view;

use self::view::{JsonLines, Table, View};

/// Arguments of `podtracer monitor`.
#[derive(Debug, Args)]
#[command(group(
    clap::ArgGroup::new("target")
        .required(true)
        .multiple(true)
        .args(["pid", "netns"])
))]
pub struct MonitorArgs {
    /// Watch the network namespace of this process (a host PID, e.g. a container's); repeatable.
    #[arg(long, value_name = "PID")]
    pub pid: Vec<u32>,

    /// Watch this network namespace file (e.g. /var/run/netns/NAME or /proc/PID/ns/net);
    /// repeatable.
    #[arg(long, value_name = "PATH")]
    pub netns: Vec<PathBuf>,

    /// Output: a table (default on a terminal) or JSON lines (default otherwise).
    #[arg(short = 'o', long = "output", value_enum, value_name = "FORMAT")]
    pub output: Option<MonitorOutput>,

    /// Stop after this many events.
    #[arg(short = 'c', long = "count", value_name = "COUNT")]
    pub count: Option<u64>,

    /// Stop after this long (e.g. 30, 30s, 5m).
    #[arg(long, value_name = "DURATION", value_parser = snoopy_job::duration::parse)]
    pub duration: Option<Duration>,
}

/// Output formats of `podtracer monitor`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MonitorOutput {
    /// One aligned row per event.
    Table,
    /// One JSON object per line (`snoopy_ebpf::Event`).
    Json,
}

/// A watched namespace: its inode and how the user named it.
struct Watched {
    inode: u32,
    label: String,
}

fn targets(args: &MonitorArgs) -> Result<Vec<Watched>> {
    let mut watched: Vec<Watched> = Vec::new();
    let named = args
        .pid
        .iter()
        .map(|pid| {
            (
                PathBuf::from(format!("/proc/{pid}/ns/net")),
                format!("pid {pid}"),
            )
        })
        .chain(
            args.netns
                .iter()
                .map(|p| (p.clone(), p.display().to_string())),
        );
    for (path, label) in named {
        let inode = inode_of(&path)?;
        if !watched.iter().any(|w| w.inode == inode) {
            watched.push(Watched { inode, label });
        }
    }
    Ok(watched)
}

fn inode_of(path: &Path) -> Result<u32> {
    netns_inode(path).with_context(|| format!("finding the network namespace {}", path.display()))
}

/// Runs the monitor until SIGINT/SIGTERM, `--count` or `--duration`.
pub fn run(args: MonitorArgs) -> Result<ExitCode> {
    let watched = targets(&args)?;
    let stop = crate::signals::stop_on_signals()?;
    let mut monitor = Monitor::load().context("starting the eBPF connection monitor")?;
    for w in &watched {
        monitor
            .watch(w.inode)
            .with_context(|| format!("watching {}", w.label))?;
    }
    let table = match args.output {
        Some(MonitorOutput::Table) => true,
        Some(MonitorOutput::Json) => false,
        None => std::io::stdout().is_terminal(),
    };
    let stdout = std::io::stdout();
    let mut view: Box<dyn View> = if table {
        Box::new(Table::new(
            stdout.lock(),
            watched.iter().map(|w| (w.inode, w.label.clone())).collect(),
        ))
    } else {
        Box::new(JsonLines::new(stdout.lock()))
    };
    eprintln!(
        "podtracer: listening on {} network namespace{} ({}): TCP connection events (eBPF)",
        watched.len(),
        if watched.len() == 1 { "" } else { "s" },
        watched
            .iter()
            .map(|w| format!("{} = netns {}", w.label, w.inode))
            .collect::<Vec<_>>()
            .join(", ")
    );
    view.start()?;
    let deadline = args.duration.map(|d| Instant::now() + d);
    let mut seen = 0u64;
    let mut failure = None;
    let mut last_round = false;
    loop {
        let ending = stop.is_stopped() || deadline.is_some_and(|d| Instant::now() >= d);
        // One more round without waiting once stopped: what the kernel queued before the
        // signal is still printed (and counted).
        let wait = if ending {
            Duration::ZERO
        } else {
            Duration::from_millis(100)
        };
        let mut written = Ok(());
        monitor.poll(wait, |event| {
            if written.is_ok() && args.count.is_none_or(|c| seen < c) {
                seen += 1;
                written = view.event(&event);
            }
        })?;
        if let Err(e) = written {
            failure = Some(e);
            break;
        }
        if last_round || args.count.is_some_and(|c| seen >= c) {
            break;
        }
        last_round = ending;
    }
    let lost = monitor.lost()?;
    let missed = monitor.missed_runs()?;
    drop(view);
    let _ = std::io::stdout().flush();
    // Missed runs: the kernel skipped a program nested in itself on a CPU; each may have been
    // an event (of any namespace), so they are an upper bound, reported apart.
    eprintln!("{seen} events, {lost} lost, {missed} missed runs");
    match failure {
        Some(e) if crate::exit::is_broken_pipe(&e) => Ok(ExitCode::SUCCESS),
        Some(e) => Err(e),
        None if lost > 0 => {
            bail!("{lost} events were lost (the ring buffer was full: the reader fell behind)")
        }
        None => Ok(ExitCode::SUCCESS),
    }
}
