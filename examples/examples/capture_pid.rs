//! Captures a few packets inside the network namespace of a process, as podtracer does.
//!
//! Needs root: `sudo target/debug/examples/capture_pid PID [IFACE] [COUNT]`.

use snoopy_capture::afpacket::CaptureBuilder;
use snoopy_capture::sink::TextSink;
use snoopy_capture::{PacketSink, PacketSource};
use snoopy_netns::{Namespace, NamespaceKind};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let pid: u32 = args
        .next()
        .ok_or_else(|| anyhow::anyhow!("usage: capture_pid PID [IFACE] [COUNT]"))?
        .parse()?;
    let interface = args.next();
    let count: usize = args.next().map(|c| c.parse()).transpose()?.unwrap_or(10);

    let namespace = Namespace::from_pid(pid, NamespaceKind::Net)?;
    let mut builder = CaptureBuilder::new().namespace(namespace);
    if let Some(interface) = interface {
        builder = builder.interface(interface);
    }
    let mut capture = builder.open()?;
    let mut text = TextSink::new(std::io::stdout(), "stdout").line_buffered(true);
    let id = text.add_interface(&capture.interfaces()[0])?;
    for _ in 0..count {
        let Some(packet) = capture.next_packet()? else {
            break;
        };
        text.write_packet(id, &packet)?;
    }
    text.flush()?;
    let stats = capture.stats()?;
    eprintln!(
        "{} captured, {:?} dropped by kernel",
        stats.captured, stats.dropped
    );
    Ok(())
}
