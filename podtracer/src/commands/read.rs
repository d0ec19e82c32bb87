//! `podtracer read`: filter and convert a pcap or pcapng file offline, like `tcpdump -r`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{ArgAction, Args};

use crate::offline::FileRead;
use crate::output::{Format, LookArgs, RotateArgs};

/// Arguments of `podtracer read`.
#[derive(Debug, Args)]
pub struct ReadArgs {
    /// The pcap or pcapng file to read; `-` is stdin.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,

    /// Write the kept packets to OUT instead of printing them; `-` is stdout.
    /// pcap by default, pcapng for *.pcapng.
    #[arg(short = 'w', value_name = "OUT")]
    pub write: Option<PathBuf>,

    /// Output format (default: text without -w, pcap with -w).
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub format: Option<Format>,

    /// Stop after COUNT kept packets.
    #[arg(short = 'c', long = "count", value_name = "COUNT")]
    pub count: Option<u64>,

    /// Print the compiled filter program (for the file's first link type) and exit;
    /// -dd and -ddd as in tcpdump.
    #[arg(short = 'd', action = ArgAction::Count)]
    pub dump: u8,

    /// Print the link-level header on each text line.
    #[arg(short = 'e')]
    pub link_header: bool,

    /// Print absolute TCP sequence numbers.
    #[arg(short = 'S', long = "absolute-tcp-sequence-numbers")]
    pub absolute_seq: bool,

    /// How text lines look (`-t`, `-x`, `-X`, `--ascii`, `--nano`, `-v`).
    #[command(flatten)]
    pub look: LookArgs,

    /// Rotation of the `-w` file (`-C`, `-G`, `-W`, `-z`).
    #[command(flatten)]
    pub rotate: RotateArgs,

    /// Accepted for tcpdump habit: podtracer never resolves names.
    #[arg(short = 'n', action = ArgAction::Count)]
    pub numeric: u8,

    /// Filter expression (pcap-filter syntax); words are joined like tcpdump's.
    #[arg(value_name = "FILTER", trailing_var_arg = true)]
    pub filter: Vec<String>,
}

/// Reads the file, keeps the packets the filter accepts, writes them out.
pub fn run(args: ReadArgs) -> Result<ExitCode> {
    // `-n` (args.numeric) is only a habit: podtracer never resolves names.
    FileRead {
        file: args.file,
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
    .run()
}
