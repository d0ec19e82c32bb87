//! Reading a pcap or pcapng file through a filter into an output, like `tcpdump -r`:
//! `podtracer read FILE`, and `podtracer capture -r FILE` for people who type tcpdump's
//! flags.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use snoopy_capture::filter::{Matcher, Mode, Program};
use snoopy_capture::source::FileSource;
use snoopy_capture::{Packet, PacketSource};

use crate::output::{Format, LookArgs, OutputSpec, RotateArgs, TextLook};

/// One file to read: where from, what to keep, where to write it and how.
pub struct FileRead {
    /// The pcap or pcapng file; `-` is stdin.
    pub file: PathBuf,
    /// Where the kept packets go (`-w`); `None` prints them, `-` is stdout.
    pub write: Option<PathBuf>,
    /// Output format (default: text without `write`, pcap with it).
    pub format: Option<Format>,
    /// Stop after this many kept packets.
    pub count: Option<u64>,
    /// Print the compiled filter (`-d`, `-dd`, `-ddd`) instead of reading.
    pub dump: u8,
    /// Print the link-level header on each text line (`-e`).
    pub link_header: bool,
    /// Absolute TCP sequence numbers (`-S`).
    pub absolute_seq: bool,
    /// How text lines look (`-t`, `-x`, `-X`, `--ascii`, `--nano`, `-v`).
    pub look: LookArgs,
    /// Rotation of the written file (`-C`, `-G`, `-W`, `-z`).
    pub rotate: RotateArgs,
    /// The filter's words (pcap-filter syntax), joined like tcpdump's.
    pub filter: Vec<String>,
}

/// Whether the filter (none: keep everything) accepts the packet.
fn keep(matcher: Option<&Matcher>, packet: &Packet<'_>) -> bool {
    matcher.is_none_or(|m| m.matches(packet.data, packet.orig_len, None) != 0)
}

impl FileRead {
    /// Reads the file, keeps the packets the filter accepts, writes them out.
    pub fn run(self) -> Result<ExitCode> {
        let args = self;
        // Names in the filter: this machine's files and nameservers (no pod to ask).
        let names = crate::names::Names::of_host();
        let mut source = if args.file.as_os_str() == "-" {
            FileSource::from_reader(std::io::stdin(), "stdin")
        } else {
            FileSource::open(&args.file)
        }
        .with_context(|| format!("cannot read {}", args.file.display()))?;
        let output = OutputSpec::resolve(args.write.as_deref(), args.format, false, false)
            .with_rotation(&args.rotate)?;
        let mut sink = output
            .open(TextLook {
                link_header: args.link_header,
                absolute_seq: args.absolute_seq,
                line_buffered: false,
                prefix_interface: false,
                summary: args.look.options(args.link_header, args.absolute_seq),
            })?
            .sink;
        // Per source interface: the sink's interface and the filter compiled for its link type.
        let mut interfaces: Vec<Option<(u32, Option<Matcher>)>> = Vec::new();
        let limit = args.count.unwrap_or(u64::MAX);
        let mut written = 0u64;
        let mut dumped = false;
        let outcome: Result<()> = (|| {
            while written < limit {
                let Some(packet) = source.next_packet()? else {
                    break;
                };
                let index = packet.interface;
                if let Some(Some((id, matcher))) = interfaces.get(index as usize) {
                    if keep(matcher.as_ref(), &packet) {
                        sink.write_packet(*id, &packet)?;
                        written += 1;
                    }
                    continue;
                }
                // A new interface: set it up, then handle this packet (copied, since the
                // source must be asked about the interface).
                let packet = packet.to_owned();
                let interface = source
                    .interfaces()
                    .get(index as usize)
                    .cloned()
                    .with_context(|| format!("packet on unknown interface {index}"))?;
                let program = crate::filter::compile(
                    &args.filter,
                    interface.link_type,
                    Mode::File,
                    interface.snaplen.max(1),
                    &names,
                )?;
                if args.dump > 0 {
                    let program = program.unwrap_or_else(Program::accept_all);
                    print!("{}", crate::filter::listing(&program, args.dump));
                    dumped = true;
                    return Ok(());
                }
                let id = sink.add_interface(&interface)?;
                let matcher = program.as_ref().map(Program::matcher);
                if keep(matcher.as_ref(), &packet.as_packet()) {
                    sink.write_packet(id, &packet.as_packet())?;
                    written += 1;
                }
                if interfaces.len() <= index as usize {
                    interfaces.resize(index as usize + 1, None);
                }
                interfaces[index as usize] = Some((id, matcher));
            }
            Ok(())
        })();
        if outcome.is_ok() && args.dump == 0 && interfaces.iter().all(Option::is_none) {
            // No packet came (or none reached a sink interface): the output is still a valid,
            // empty capture, with the input's first interface, as tcpdump -w writes it.
            if let Some(interface) = source.interfaces().first() {
                // The filter is still checked, as tcpdump checks it before reading.
                crate::filter::compile(
                    &args.filter,
                    interface.link_type,
                    Mode::File,
                    interface.snaplen.max(1),
                    &names,
                )?;
                sink.add_interface(interface)?;
            }
        }
        if source.invalid_fractions() > 0 {
            eprintln!(
                "podtracer: warning: {} record(s) with a timestamp fraction of a second or more; kept, as tcpdump keeps them",
                source.invalid_fractions()
            );
        }
        if args.dump > 0 && !dumped {
            // An empty file: still show the program, for Ethernet as tcpdump -d would.
            let program = crate::filter::compile(
                &args.filter,
                snoopy_capture::LinkType::Ethernet,
                Mode::File,
                262_144,
                &names,
            )?
            .unwrap_or_else(Program::accept_all);
            print!("{}", crate::filter::listing(&program, args.dump));
        }
        let flushed = sink.flush();
        crate::exit::status(outcome.and(flushed.map_err(anyhow::Error::from)))
    }
}
