//! Capturing one target: its socket read on this thread, packets written as they come.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use anyhow::{Context, Result};
use snoopy_capture::afpacket::{Capture, Event};
use snoopy_capture::{PacketSink, PacketSource};

use super::{Pipeline, Totals};
use crate::output::Opened;
use crate::progress::Progress;
use crate::target::Target;

/// Runs the capture of `target` to its end (count, stop handle, or the interface
/// vanishing) and prints tcpdump's closing statistics.
pub(super) fn run(pipeline: Pipeline, target: Target) -> Result<ExitCode> {
    let label = target.label.clone();
    let mut capture = pipeline
        .settings
        .open(target.namespace)
        .with_context(|| format!("cannot capture in {label}"))?;
    capture.set_stop_handle(pipeline.stop.clone());

    let interface = capture.interfaces()[0].clone();
    if !pipeline.quiet {
        eprintln!(
            "podtracer: listening on {} in {label}, link-type {}, snapshot length {} bytes",
            interface.name, interface.link_type, interface.snaplen
        );
    }
    let output = &pipeline.output;
    let Opened {
        mut sink,
        deliveries,
    } = output.open(pipeline.look)?;
    let mut described = interface.clone();
    described.description = Some(format!("{} in {label}", interface.name));
    let sink_interface = sink.add_interface(&described)?;

    let captured = Arc::new(AtomicU64::new(0));
    let show_progress = !pipeline.quiet
        && std::io::stderr().is_terminal()
        && !(output.is_text_on_stdout() && std::io::stdout().is_terminal());
    let progress =
        show_progress.then(|| Progress::start(Arc::clone(&captured), capture.stats_handle()));

    let outcome = pump(
        &mut capture,
        sink.as_mut(),
        sink_interface,
        pipeline.count,
        pipeline.packet_buffered,
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
    pipeline.close(&totals, &[], &deliveries);
    if !pipeline.quiet {
        if totals.target_gone {
            eprintln!(
                "podtracer: {} went away (pod deleted?); capture ended, everything captured was written",
                interface.name
            );
        }
        totals.print();
    }
    crate::exit::status(outcome.and(flushed.map_err(anyhow::Error::from)))
}

/// Moves packets from the capture to the sink until the capture ends or `count` is reached.
fn pump(
    capture: &mut Capture,
    sink: &mut dyn PacketSink,
    sink_interface: u32,
    count: Option<u64>,
    packet_buffered: bool,
    captured: &AtomicU64,
    limit_reached: &AtomicBool,
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
