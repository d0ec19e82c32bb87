//! How text lines look: tcpdump's `-t`, `-x`, `-X`, `-A`, `--nano`, `-v` flags, and with
//! `-e`, `-S` and line buffering what a text sink is opened with.

use clap::{ArgAction, Args};
use snoopy_capture::decode::{Payload, SummaryOptions, TimeFormat, TimestampPrecision};

/// tcpdump's flags for how text lines look, shared by `capture` and `read`.
#[derive(Debug, Clone, Default, Args)]
pub struct LookArgs {
    /// Time format, as tcpdump: -t none, -tt seconds since the epoch, -ttt since the
    /// previous packet, -tttt date and time, -ttttt since the first packet (all UTC).
    #[arg(short = 't', action = ArgAction::Count)]
    pub time: u8,

    /// Print each packet's bytes in hex after its line, from the network layer on
    /// (-xx: from the link-level header on).
    #[arg(short = 'x', action = ArgAction::Count)]
    pub hex: u8,

    /// Print each packet's bytes in hex and ASCII after its line, from the network layer
    /// on (-XX: from the link-level header on).
    #[arg(short = 'X', action = ArgAction::Count)]
    pub hex_ascii: u8,

    /// Print each packet's bytes as ASCII after its line (tcpdump's -A; -A itself is
    /// --all-namespaces, as in kubectl). Given twice: from the link-level header on.
    #[arg(long = "ascii", action = ArgAction::Count)]
    pub ascii: u8,

    /// Timestamps with nanoseconds (tcpdump's --nano).
    #[arg(long = "nano")]
    pub nano: bool,

    /// Verbose lines, as tcpdump's -v, for IPv4 and IPv6 with TCP, UDP or ICMP echo (802.1Q
    /// tagged or not): the IP header (IPv4: tos, ttl, id, offset, flags, proto, length, then
    /// the packet on a second line; IPv6: class, flowlabel, hlim, next-header, payload
    /// length), the checksums tcpdump checks, DNS answers with their owner names and every
    /// text line of HTTP. Other packets keep their usual line; -vv prints what -v prints
    /// (not tcpdump's -vv DNS sections).
    #[arg(short = 'v', action = ArgAction::Count)]
    pub verbose: u8,
}

impl LookArgs {
    /// The summary options these flags ask for, on top of `-e` and `-S`. As in tcpdump,
    /// -X wins over -x, and either over the ASCII dump.
    pub fn options(&self, link_header: bool, absolute_seq: bool) -> SummaryOptions {
        let (payload, count) = if self.hex_ascii > 0 {
            (Payload::HexAscii, self.hex_ascii)
        } else if self.hex > 0 {
            (Payload::Hex, self.hex)
        } else if self.ascii > 0 {
            (Payload::Ascii, self.ascii)
        } else {
            (Payload::None, 0)
        };
        SummaryOptions {
            precision: if self.nano {
                TimestampPrecision::Nano
            } else {
                TimestampPrecision::Micro
            },
            time: TimeFormat::from_t_count(self.time),
            link_header,
            absolute_seq,
            payload,
            payload_link: count > 1,
            verbose: self.verbose,
        }
    }
}

/// How text lines look (tcpdump's `-e`, `-S`, `-l`, `-t`, `-x`, `-X`, `-A`, `-v`).
#[derive(Debug, Clone, Copy, Default)]
pub struct TextLook {
    /// Print the link-level header (`-e`).
    pub link_header: bool,
    /// Absolute TCP sequence numbers (`-S`).
    pub absolute_seq: bool,
    /// Start each line with the interface (pod) name.
    pub prefix_interface: bool,
    /// Flush after every line (`-l`, or stdout is a terminal).
    pub line_buffered: bool,
    /// Everything else about the lines (time format, payload dumps); its `link_header`
    /// and `absolute_seq` are replaced by the fields above.
    pub summary: SummaryOptions,
}
