//! `podtracer capture`: tcpdump inside a pod's network namespace, without tcpdump.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Result, bail};
use clap::{ArgAction, Args, CommandFactory};
use snoopy_capture::afpacket::{DEFAULT_SNAPLEN, Direction};
use snoopy_capture::filter::{Instruction, Program};
use snoopy_capture::sink::kafka::{CaptureIdentity, DEFAULT_PACKETS_TOPIC};

use crate::offline::FileRead;
use crate::output::{Format, LookArgs, OutputSpec, RotateArgs, TextLook};
use crate::pipeline::{CaptureSettings, Pipeline};
use crate::sinks::SinkArgs;
use crate::target::TargetArgs;

/// Arguments of `podtracer capture`, named as in tcpdump where tcpdump has them.
#[derive(Debug, Args)]
// With -r no target is needed: the group TargetArgs declares is made optional here and
// checked in `run` (clap has no "required unless" for groups).
#[command(mut_group("target", |group| group.required(false)))]
pub struct CaptureArgs {
    /// Which pod(s) or network namespace to work in.
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

    /// With several pods: end each pod's capture after COUNT packets of its own (the run
    /// ends when every pod's has, or by -c, --duration or a signal).
    #[arg(long, value_name = "COUNT")]
    pub count_per_pod: Option<u64>,

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

    /// Where results go besides the terminal (`--sink`).
    #[command(flatten)]
    pub sinks: SinkArgs,

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

    /// How text lines look (`-t`, `-x`, `-X`, `--ascii`, `--nano`, `-v`).
    #[command(flatten)]
    pub look: LookArgs,

    /// Rotation of the `-w` file (`-C`, `-G`, `-W`, `-z`).
    #[command(flatten)]
    pub rotate: RotateArgs,

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

/// Runs a capture to its end (count, duration, SIGINT/SIGTERM, or the interface vanishing)
/// and prints tcpdump's closing statistics.
pub fn run(args: CaptureArgs) -> Result<ExitCode> {
    if let Some(file) = args.read {
        return FileRead {
            file,
            write: args.write,
            format: args.format,
            count: args.count,
            dump: args.dump,
            link_header: args.link_header,
            absolute_seq: args.absolute_seq,
            look: args.look,
            rotate: args.rotate,
            filter: args.filter,
        }
        .run();
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
    let snaplen = if args.snaplen == 0 {
        DEFAULT_SNAPLEN
    } else {
        args.snaplen
    };
    // Names in the filter mean what they mean to the pod.
    let names = std::sync::Arc::new(crate::names::Names::of_target(&args.target));
    let settings = CaptureSettings::new(args.interface.clone(), snaplen, &args.filter, names)?;
    if args.dump > 0 {
        let program = settings
            .filter()
            .cloned()
            .unwrap_or_else(|| Program::new(vec![Instruction::new(0x06, 0, 0, snaplen)]));
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
    let many = resolved.many;
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
    let settings = settings
        .promiscuous(!args.no_promiscuous)
        .buffer_kib(args.buffer_kib)
        .direction(args.direction.into())
        // People watch text output: hand packets over sooner.
        .block_timeout(
            output
                .is_text_on_stdout()
                .then_some(Duration::from_millis(20)),
        );
    let stop = crate::signals::stop_on_signals()?;
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
    Pipeline {
        settings,
        output,
        look,
        count: args.count,
        count_per_pod: args.count_per_pod,
        packet_buffered: args.packet_buffered,
        quiet: args.quiet,
        sink_timeout: args.sinks.sink_timeout,
        termination_log: args.termination_log,
        stop,
    }
    .run(resolved)
}
