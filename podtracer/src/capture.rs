//! `podtracer capture`: tcpdump inside a pod's network namespace, without tcpdump.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{ArgAction, Args, CommandFactory};
use snoopy_capture::afpacket::{
    Capture, CaptureBuilder, DEFAULT_SNAPLEN, Direction, EndReason, Event, StopHandle,
};
use snoopy_capture::filter::{Instruction, Mode, Program};
use snoopy_capture::{LinkType, PacketSink, PacketSource};

use snoopy_capture::sink::kafka::{CaptureIdentity, DEFAULT_PACKETS_TOPIC, DeliveryReport};

use crate::output::{Format, Opened, OutputSpec, TextLook};
use crate::progress::Progress;
use crate::target::TargetArgs;

/// Arguments of `podtracer capture`, named as in tcpdump where tcpdump has them.
#[derive(Debug, Args)]
// With -r no target is needed: the group TargetArgs declares is made optional here and
// checked in `run` (clap has no "required unless" for groups).
#[command(mut_group("target", |group| group.required(false)))]
pub struct CaptureArgs {
    #[command(flatten)]
    pub target: TargetArgs,

    /// Read packets from FILE (pcap or pcapng; `-` is stdin) instead of capturing: the same
    /// as `podtracer read FILE`, for people who type tcpdump's `-r`.
    #[arg(
        short = 'r',
        value_name = "FILE",
        conflicts_with_all = ["target", "interface", "duration", "no_promiscuous", "print", "buffer_kib", "termination_log", "line_buffered", "direction"]
    )]
    pub read: Option<PathBuf>,

    /// Interface inside the pod; `any` for all of them (Linux cooked headers).
    /// Default: the first interface that is up and not loopback, as tcpdump picks.
    #[arg(short = 'i', long = "interface", value_name = "IFACE")]
    pub interface: Option<String>,

    /// Exit after receiving COUNT packets.
    #[arg(short = 'c', long = "count", value_name = "COUNT")]
    pub count: Option<u64>,

    /// Exit after this long (e.g. 30, 30s, 500ms, 5m, 1h).
    #[arg(long, value_name = "DURATION", value_parser = snoopy_job::duration::parse)]
    pub duration: Option<Duration>,

    /// Snapshot length: bytes kept of each packet (0 = 262144, the default).
    #[arg(
        short = 's',
        long = "snapshot-length",
        value_name = "SNAPLEN",
        default_value_t = snoopy_job::DEFAULT_SNAPLEN
    )]
    pub snaplen: u32,

    /// Don't put the interface into promiscuous mode.
    #[arg(short = 'p', long = "no-promiscuous-mode")]
    pub no_promiscuous: bool,

    /// Write packets to FILE instead of printing them; `-` is stdout
    /// (`podtracer capture … -w - | tshark -r -`). pcap by default, pcapng for *.pcapng.
    #[arg(short = 'w', value_name = "FILE")]
    pub write: Option<PathBuf>,

    /// With -w or --sink, also print the packets as text on stdout.
    #[arg(long)]
    pub print: bool,

    #[command(flatten)]
    pub sinks: crate::sinks::SinkArgs,

    /// Output format (default: text without -w, pcap with -w).
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub format: Option<Format>,

    /// Quiet: no "listening on" line, live counter or final statistics on stderr.
    #[arg(short = 'q')]
    pub quiet: bool,

    /// Flush the output after every packet (for pipes read live).
    #[arg(short = 'U', long = "packet-buffered")]
    pub packet_buffered: bool,

    /// Keep only packets received (`in`) or sent (`out`) by the pod's interface, decided in
    /// the kernel (`in`: PACKET_IGNORE_OUTGOING, as libpcap; `out`: the packet type is
    /// checked first by the BPF program), so the others are never copied out.
    #[arg(
        short = 'Q',
        long = "direction",
        value_enum,
        value_name = "DIRECTION",
        default_value = "inout"
    )]
    pub direction: DirectionArg,

    /// Kernel ring size in KiB (default 4096).
    #[arg(short = 'B', long = "buffer-size", value_name = "KiB")]
    pub buffer_kib: Option<usize>,

    /// Print the link-level header on each text line.
    #[arg(short = 'e')]
    pub link_header: bool,

    /// When the capture ends, write `{"captured":N,"received":M,"dropped":K}` to this file
    /// (a Kubernetes Job's /dev/termination-log carries the counts to the operator).
    #[arg(long, value_name = "PATH")]
    pub termination_log: Option<std::path::PathBuf>,

    /// Print absolute TCP sequence numbers.
    #[arg(short = 'S', long = "absolute-tcp-sequence-numbers")]
    pub absolute_seq: bool,

    #[command(flatten)]
    pub look: crate::output::LookArgs,

    #[command(flatten)]
    pub rotate: crate::output::RotateArgs,

    /// Line-buffered text output (tcpdump's -l; automatic when stdout is a terminal; -l
    /// itself is the label selector, as in kubectl).
    #[arg(long = "line-buffered")]
    pub line_buffered: bool,

    /// Print the compiled filter program (kernel dialect) and exit; -dd and -ddd as in
    /// tcpdump. The link type is Ethernet, or Linux cooked v2 for `-i any`.
    #[arg(short = 'd', action = ArgAction::Count)]
    pub dump: u8,

    /// Filter expression (pcap-filter syntax); words are joined like tcpdump's. It runs in
    /// the kernel: packets it rejects are never copied out.
    #[arg(value_name = "FILTER", trailing_var_arg = true)]
    pub filter: Vec<String>,
}

/// tcpdump's `-Q` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DirectionArg {
    /// Received packets only.
    In,
    /// Sent packets only.
    Out,
    /// Both (the default).
    Inout,
}

impl From<DirectionArg> for Direction {
    fn from(arg: DirectionArg) -> Self {
        match arg {
            DirectionArg::In => Direction::In,
            DirectionArg::Out => Direction::Out,
            DirectionArg::Inout => Direction::InOut,
        }
    }
}

/// How to open each capture socket: the options shared by every target.
#[derive(Debug, Clone)]
pub struct CaptureSettings {
    interface: Option<String>,
    /// The snapshot length, 0 already replaced by the default.
    snaplen: u32,
    promiscuous: bool,
    buffer_kib: Option<usize>,
    direction: Direction,
    block_timeout: Option<Duration>,
    /// The filter, compiled for the link type the capture is expected to have.
    filter: Option<Program>,
    /// The filter words, to compile again for a socket whose link type was not the one
    /// expected (a tunnel interface gives cooked headers, not Ethernet).
    filter_words: Vec<String>,
    /// The link type `filter` was compiled for.
    link_guess: LinkType,
}

impl CaptureSettings {
    /// A builder for one target's capture.
    pub fn builder(&self, namespace: snoopy_netns::Namespace) -> CaptureBuilder {
        let mut builder = CaptureBuilder::new()
            .snaplen(self.snaplen)
            .promiscuous(self.promiscuous)
            .direction(self.direction)
            .namespace(namespace);
        if let Some(interface) = &self.interface {
            builder = builder.interface(interface);
        }
        if let Some(kib) = self.buffer_kib {
            builder = builder.buffer_size(kib << 10);
        }
        if let Some(timeout) = self.block_timeout {
            builder = builder.block_timeout(timeout);
        }
        if let Some(program) = &self.filter {
            builder = builder.filter(program.clone());
        }
        builder
    }

    /// Opens the capture in `namespace`; when the socket's link type is not the one the
    /// filter was compiled for, compiles it again for the actual one and reopens.
    pub fn open(&self, namespace: snoopy_netns::Namespace) -> Result<Capture> {
        let again = namespace
            .try_clone()
            .context("duplicating the namespace handle")?;
        let capture = self.builder(namespace).open()?;
        if self.filter.is_none() || capture.link_type() == self.link_guess {
            return Ok(capture);
        }
        let actual = capture.link_type();
        drop(capture);
        let mut recompiled = self.clone();
        recompiled.filter =
            crate::filter::compile(&self.filter_words, actual, Mode::Live, self.snaplen)?;
        recompiled.link_guess = actual;
        Ok(recompiled.builder(again).open()?)
    }
}

/// Runs a capture to its end (count, duration, SIGINT/SIGTERM, or the interface vanishing)
/// and prints tcpdump's closing statistics.
pub fn run(args: CaptureArgs) -> Result<ExitCode> {
    if let Some(file) = args.read {
        return crate::read::run(crate::read::ReadArgs {
            file,
            write: args.write,
            format: args.format,
            count: args.count,
            dump: args.dump,
            link_header: args.link_header,
            absolute_seq: args.absolute_seq,
            look: args.look,
            rotate: args.rotate,
            numeric: 0,
            filter: args.filter,
        });
    }
    if !args.target.is_given() {
        let cli = crate::cli::Cli::command();
        let mut command = cli.find_subcommand("capture").cloned().unwrap_or(cli);
        command = command.bin_name("podtracer capture");
        command
            .error(
                clap::error::ErrorKind::MissingRequiredArgument,
                "podtracer capture needs a target (--pid, --netns, --pod or -l) or a file to read (-r FILE)",
            )
            .exit();
    }
    // The kernel runs the filter, so it is compiled before the socket exists: for `any`
    // the link type is Linux cooked v2, otherwise Ethernet (checked once open).
    let snaplen = if args.snaplen == 0 {
        DEFAULT_SNAPLEN
    } else {
        args.snaplen
    };
    let link_guess = if args.interface.as_deref() == Some("any") {
        LinkType::LinuxSll2
    } else {
        LinkType::Ethernet
    };
    let filter = crate::filter::compile(&args.filter, link_guess, Mode::Live, snaplen)?;
    if args.dump > 0 {
        let program =
            filter.unwrap_or_else(|| Program::new(vec![Instruction::new(0x06, 0, 0, snaplen)]));
        print!("{}", crate::filter::listing(&program, args.dump));
        return Ok(ExitCode::SUCCESS);
    }
    if args.print && args.write.as_deref() == Some(std::path::Path::new("-")) {
        bail!("--print with -w - would mix text and packets on stdout; write to a file");
    }
    if args.print && args.write.is_none() && args.sinks.sinks.is_empty() {
        bail!("--print needs -w FILE or --sink URL (without them packets are printed anyway)");
    }
    // Bad rotation flags fail before any target is looked up.
    OutputSpec::resolve(args.write.as_deref(), args.format, false, args.print)
        .with_rotation(&args.rotate)?;
    let kafka = args.sinks.kafka(DEFAULT_PACKETS_TOPIC)?;
    let resolved = args.target.resolve()?;
    let many = resolved.follower.is_some();
    let default_key = resolved
        .targets
        .first()
        .map(|t| t.label.clone())
        .unwrap_or_default();
    let output = OutputSpec::resolve(args.write.as_deref(), args.format, many, args.print)
        .with_sinks(
            args.write.as_deref(),
            args.print,
            kafka,
            args.sinks.files(),
            CaptureIdentity {
                node: crate::sinks::node_name(),
                run: args.sinks.run(),
                default_key,
            },
        );
    let output = OutputSpec {
        kafka_buffer: args.sinks.sink_buffer,
        ..output
    }
    .with_rotation(&args.rotate)?;
    let settings = CaptureSettings {
        interface: args.interface.clone(),
        snaplen,
        promiscuous: !args.no_promiscuous,
        buffer_kib: args.buffer_kib,
        direction: args.direction.into(),
        // People watch text output: hand packets over sooner.
        block_timeout: output
            .is_text_on_stdout()
            .then_some(Duration::from_millis(20)),
        filter,
        filter_words: args.filter.clone(),
        link_guess,
    };
    let stop = StopHandle::new();
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, stop.flag())
            .context("installing the SIGINT/SIGTERM handler")?;
    }
    let output = OutputSpec {
        stop_on_limit: Some(stop.flag()),
        ..output
    };
    if let Some(duration) = args.duration {
        let timer = stop.clone();
        std::thread::spawn(move || {
            std::thread::sleep(duration);
            timer.stop();
        });
    }
    let look = TextLook {
        link_header: args.link_header,
        absolute_seq: args.absolute_seq,
        prefix_interface: many,
        line_buffered: args.line_buffered || std::io::stdout().is_terminal(),
        summary: args.look.options(args.link_header, args.absolute_seq),
    };
    if many {
        return crate::multi::run(&args, resolved, &settings, &output, look, stop);
    }
    let target = resolved.targets.into_iter().next().expect("one target");
    let label = target.label.clone();
    let mut capture = settings
        .open(target.namespace)
        .with_context(|| format!("cannot capture in {label}"))?;
    capture.set_stop_handle(stop.clone());

    let interface = capture.interfaces()[0].clone();
    if !args.quiet {
        eprintln!(
            "podtracer: listening on {} in {label}, link-type {}, snapshot length {} bytes",
            interface.name, interface.link_type, interface.snaplen
        );
    }
    let Opened {
        mut sink,
        deliveries,
    } = output.open(look)?;
    let mut described = interface.clone();
    described.description = Some(format!("{} in {label}", interface.name));
    let sink_interface = sink.add_interface(&described)?;

    let captured = Arc::new(AtomicU64::new(0));
    let show_progress = !args.quiet
        && std::io::stderr().is_terminal()
        && !(output.is_text_on_stdout() && std::io::stdout().is_terminal());
    let progress =
        show_progress.then(|| Progress::start(Arc::clone(&captured), capture.stats_handle()));

    let outcome = pump(
        &mut capture,
        sink.as_mut(),
        sink_interface,
        args.count,
        args.packet_buffered,
        &captured,
        &output.limit_reached,
    );
    let flushed = sink.flush();
    drop(progress);
    let mut totals = Totals::of(&mut capture)?;
    if output.limit_reached.load(Ordering::Relaxed) {
        // The packet that found the last -G -W file full was read but not written.
        totals.captured = captured.load(Ordering::Relaxed);
    }
    let reports = crate::sinks::finish_all(&deliveries, args.sinks.sink_timeout, args.quiet);
    write_termination_log(
        args.termination_log.as_deref(),
        &totals,
        crate::sinks::total(&reports).as_ref(),
        &output.written.lock().unwrap_or_else(|p| p.into_inner()),
    );
    if !args.quiet {
        if totals.target_gone {
            eprintln!(
                "podtracer: {} went away (pod deleted?); capture ended, everything captured was written",
                interface.name
            );
        }
        print_totals(&totals);
    }
    finish(outcome.and(flushed.map_err(anyhow::Error::from)))
}

/// The closing counts of a capture, for the termination log.
pub struct Totals {
    /// Packets written.
    pub captured: u64,
    /// Packets the filter accepted.
    pub received: u64,
    /// Packets the kernel dropped.
    pub dropped: u64,
    /// The capture ended because the target's interface went away (its pod was deleted).
    pub target_gone: bool,
}

impl Totals {
    /// The totals of a finished capture: its counters and why it ended.
    pub fn of(capture: &mut Capture) -> Result<Totals> {
        let stats = capture.stats()?;
        Ok(Totals {
            captured: stats.captured,
            received: stats.received.unwrap_or(0),
            dropped: stats.dropped.unwrap_or(0),
            target_gone: capture.end_reason() == Some(EndReason::InterfaceGone),
        })
    }
}

/// Writes the counts for whoever started us (the operator reads a Job's termination
/// message): the contract's [`snoopy_job::Report`]. A failure to write is reported but does
/// not fail a capture that worked.
pub fn write_termination_log(
    path: Option<&std::path::Path>,
    totals: &Totals,
    kafka: Option<&DeliveryReport>,
    files: &[std::path::PathBuf],
) {
    let Some(path) = path else { return };
    // The termination message is small (4 KiB): a Kafka error's text stays in the log.
    let report = snoopy_job::Report {
        captured: Some(totals.captured),
        received: Some(totals.received),
        dropped: Some(totals.dropped),
        target_gone: totals.target_gone,
        kafka: kafka.map(|k| snoopy_job::KafkaReport {
            sent: k.sent,
            sent_messages: k.sent_messages,
            buffered: k.buffered,
            dropped: k.dropped,
            failed_attempts: k.failed_attempts,
        }),
        ..snoopy_job::Report::default()
    }
    .with_files(
        files
            .iter()
            .filter_map(|f| f.file_name())
            .map(|n| n.to_string_lossy().into_owned()),
    );
    if let Err(e) = std::fs::write(path, report.to_json()) {
        eprintln!("podtracer: writing {}: {e}", path.display());
    }
}

/// tcpdump's closing statistics.
pub fn print_totals(totals: &Totals) {
    eprintln!("{} packets captured", totals.captured);
    eprintln!("{} packets received by filter", totals.received);
    eprintln!("{} packets dropped by kernel", totals.dropped);
}

/// A closed pipe at the end is a normal end (`podtracer … | head`).
pub fn finish(outcome: Result<()>) -> Result<ExitCode> {
    match outcome {
        Err(e) if crate::is_broken_pipe(&e) => Ok(ExitCode::SUCCESS),
        Err(e) => Err(e),
        Ok(()) => Ok(ExitCode::SUCCESS),
    }
}

/// Moves packets from the capture to the sink until the capture ends or `count` is reached.
fn pump(
    capture: &mut Capture,
    sink: &mut dyn PacketSink,
    sink_interface: u32,
    count: Option<u64>,
    packet_buffered: bool,
    captured: &AtomicU64,
    limit_reached: &std::sync::atomic::AtomicBool,
) -> Result<()> {
    let limit = count.unwrap_or(u64::MAX);
    let mut written = 0u64;
    while written < limit {
        match capture.next_event_or_idle()? {
            Event::Packet(packet) => {
                sink.write_packet(sink_interface, &packet)?;
                if limit_reached.load(Ordering::Relaxed) {
                    break; // -G -W wrote its last file; this packet was not written
                }
                written += 1;
                captured.store(written, Ordering::Relaxed);
                if packet_buffered {
                    sink.flush()?;
                }
            }
            Event::Idle => sink.flush()?,
            Event::End => break,
        }
    }
    Ok(())
}
