//! Prints a pcap or pcapng file (or `-` for stdin) as tcpdump `-n` lines.
//!
//! `cargo run -p snoopy-capture --example read_pcap -- trace.pcapng`
//! `tcpdump -i lo -w - | cargo run -p snoopy-capture --example read_pcap -- -`

use std::io;
use std::process::ExitCode;

use snoopy_capture::sink::TextSink;
use snoopy_capture::source::FileSource;
use snoopy_capture::{PacketSink, PacketSource};

fn run() -> anyhow::Result<()> {
    let path = std::env::args().nth(1).unwrap_or_else(|| "-".into());
    let mut source = FileSource::open(&path)?;
    // Prefix lines with the interface name when the file has several (pcapng from many pods).
    let mut sink = TextSink::new(io::stdout().lock(), "stdout")
        .prefix_interface(source.interfaces().len() > 1);
    let mut ids = Vec::new();
    while let Some(packet) = source.next_packet()? {
        if (packet.interface as usize) < ids.len() {
            sink.write_packet(ids[packet.interface as usize], &packet)?;
            continue;
        }
        // A pcapng interface declared mid-file. The packet borrows the source, so copy it
        // (rare: once per new interface) before asking the source for its interfaces.
        let packet = packet.to_owned();
        for interface in &source.interfaces()[ids.len()..] {
            ids.push(sink.add_interface(interface)?);
        }
        sink.write_packet(ids[packet.interface as usize], &packet.as_packet())?;
    }
    sink.flush()?;
    let stats = sink.stats();
    eprintln!("{} packets, {} malformed", stats.packets, stats.malformed());
    if let Some(t) = source.truncated() {
        eprintln!(
            "the file ends with a partial record of {} bytes at byte {}",
            t.bytes, t.offset
        );
    }
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e)
            if e.downcast_ref::<snoopy_capture::Error>()
                .is_some_and(|e| e.is_broken_pipe()) =>
        {
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("read_pcap: {e:#}");
            ExitCode::FAILURE
        }
    }
}
