//! `podtracer capture`: tcpdump inside a pod's network namespace, without tcpdump.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{ArgAction, Args};
use snoopy_capture::afpacket::{Capture, CaptureBuilder, EndReason, Event, StopHandle};
use snoopy_capture::filter::{Instruction, Mode, Program};
use snoopy_capture::{LinkType, PacketSink, PacketSource};

use crate::output::{Format, OutputSpec, TextLook};
use crate::progress::Progress;
use crate::target::TargetArgs;

/// Arguments of `podtracer capture`, named as in tcpdump where tcpdump has them.
#[derive(Debug, Args)]
pub struct CaptureArgs {
    #[command(flatten)]
    pub target: TargetArgs,

    /// Interface inside the pod; `any` for all of them (Linux cooked headers).
    /// Default: the first interface that is up and not loopback, as tcpdump picks.
    #[arg(short = 'i', long = "interface", value_name = "IFACE")]
    pub interface: Option<String>,

    /// Exit after receiving COUNT packets.
    #[arg(short = 'c', long = "count", value_name = "COUNT")]
    pub count: Option<u64>,

    /// Exit after this long (e.g. 30, 30s, 500ms, 5m, 1h).
    #[arg(long, value_name = "DURATION", value_parser = crate::duration::parse)]
    pub duration: Option<Duration>,

    /// Snapshot length: bytes kept of each packet (0 = 262144, the default).
    #[arg(
        short = 's',
        long = "snapshot-length",
        value_name = "SNAPLEN",
        default_value_t = 262_144
    )]
    pub snaplen: u32,

    /// Don't put the interface into promiscuous mode.
    #[arg(short = 'p', long = "no-promiscuous-mode")]
    pub no_promiscuous: bool,

    /// Write packets to FILE instead of printing them; `-` is stdout
    /// (`podtracer capture … -w - | tshark -r -`). pcap by default, pcapng for *.pcapng.
    #[arg(short = 'w', value_name = "FILE")]
    pub write: Option<PathBuf>,

    /// Output format (default: text without -w, pcap with -w).
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub format: Option<Format>,

    /// Quiet: no "listening on" line, live counter or final statistics on stderr.
    #[arg(short = 'q')]
    pub quiet: bool,

    /// Flush the output after every packet (for pipes read live).
    #[arg(short = 'U', long = "packet-buffered")]
    pub packet_buffered: bool,

    /// Kernel ring size in KiB (default 4096).
    #[arg(short = 'B', long = "buffer-size", value_name = "KiB")]
    pub buffer_kib: Option<usize>,

    /// Print the link-level header on each text line.
    #[arg(short = 'e')]
    pub link_header: bool,

    /// Print absolute TCP sequence numbers.
    #[arg(short = 'S', long = "absolute-tcp-sequence-numbers")]
    pub absolute_seq: bool,

    /// Line-buffered text output (automatic when stdout is a terminal).
    #[arg(short = 'l')]
    pub line_buffered: bool,

    /// Accepted for tcpdump habit: podtracer never resolves names.
    #[arg(short = 'n', action = ArgAction::Count)]
    pub numeric: u8,

    /// Print the compiled filter program (kernel dialect) and exit; -dd and -ddd as in
    /// tcpdump. The link type is Ethernet, or Linux cooked v2 for `-i any`.
    #[arg(short = 'd', action = ArgAction::Count)]
    pub dump: u8,

    /// Filter expression (pcap-filter syntax); words are joined like tcpdump's. It runs in
    /// the kernel: packets it rejects are never copied out.
    #[arg(value_name = "FILTER", trailing_var_arg = true)]
    pub filter: Vec<String>,
}

/// Runs a capture to its end (count, duration, SIGINT/SIGTERM, or the interface vanishing)
/// and prints tcpdump's closing statistics.
pub fn run(args: CaptureArgs) -> Result<ExitCode> {
    // The kernel runs the filter, so it is compiled before the socket exists: for `any`
    // the link type is Linux cooked v2, otherwise Ethernet (checked once open).
    let snaplen = if args.snaplen == 0 {
        262_144
    } else {
        args.snaplen
    };
    let guess = if args.interface.as_deref() == Some("any") {
        LinkType::LinuxSll2
    } else {
        LinkType::Ethernet
    };
    let program = crate::filter::compile(&args.filter, guess, Mode::Live, snaplen)?;
    if args.dump > 0 {
        let program =
            program.unwrap_or_else(|| Program::new(vec![Instruction::new(0x06, 0, 0, snaplen)]));
        print!("{}", crate::filter::listing(&program, args.dump));
        return Ok(ExitCode::SUCCESS);
    }
    let target = args.target.resolve()?;
    let output = OutputSpec::resolve(args.write.as_deref(), args.format);
    let open = |program: Option<Program>| -> Result<Capture> {
        let namespace = target
            .namespace
            .try_clone()
            .context("duplicating the namespace handle")?;
        let mut builder = CaptureBuilder::new()
            .snaplen(args.snaplen)
            .promiscuous(!args.no_promiscuous)
            .namespace(namespace);
        if let Some(interface) = &args.interface {
            builder = builder.interface(interface);
        }
        if let Some(kib) = args.buffer_kib {
            builder = builder.buffer_size(kib << 10);
        }
        if output.is_text_on_stdout() {
            // People watch text output: hand packets over sooner.
            builder = builder.block_timeout(Duration::from_millis(20));
        }
        if let Some(p) = program {
            builder = builder.filter(p);
        }
        builder
            .open()
            .with_context(|| format!("cannot capture in {}", target.label))
    };
    let mut capture = open(program.clone())?;
    if program.is_some() && capture.link_type() != guess {
        // A named interface without Ethernet headers (a tunnel): the capture is cooked.
        let actual = capture.link_type();
        drop(capture);
        let program = crate::filter::compile(&args.filter, actual, Mode::Live, snaplen)?;
        capture = open(program)?;
    }
    let stop = StopHandle::new();
    capture.set_stop_handle(stop.clone());
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, stop.flag())
            .context("installing the SIGINT/SIGTERM handler")?;
    }
    if let Some(duration) = args.duration {
        let timer = stop.clone();
        std::thread::spawn(move || {
            std::thread::sleep(duration);
            timer.stop();
        });
    }

    let interface = capture.interfaces()[0].clone();
    if !args.quiet {
        eprintln!(
            "podtracer: listening on {} in {}, link-type {}, snapshot length {} bytes",
            interface.name, target.label, interface.link_type, interface.snaplen
        );
    }
    let mut sink = output.open(TextLook {
        link_header: args.link_header,
        absolute_seq: args.absolute_seq,
        prefix_interface: false,
        line_buffered: args.line_buffered || std::io::stdout().is_terminal(),
    })?;
    let mut described = interface.clone();
    described.description = Some(format!("{} in {}", interface.name, target.label));
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
    );
    let flushed = sink.flush();
    drop(progress);
    let stats = capture.stats()?;
    if !args.quiet {
        if capture.end_reason() == Some(EndReason::InterfaceGone) {
            eprintln!(
                "podtracer: {} went away (pod deleted?); capture ended, everything captured was written",
                interface.name
            );
        }
        eprintln!("{} packets captured", stats.captured);
        eprintln!("{} packets received by filter", stats.received.unwrap_or(0));
        eprintln!("{} packets dropped by kernel", stats.dropped.unwrap_or(0));
    }
    match outcome.and(flushed.map_err(anyhow::Error::from)) {
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
) -> Result<()> {
    let limit = count.unwrap_or(u64::MAX);
    let mut written = 0u64;
    while written < limit {
        match capture.next_event_or_idle()? {
            Event::Packet(packet) => {
                sink.write_packet(sink_interface, &packet)?;
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
