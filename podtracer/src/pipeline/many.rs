//! Capturing many pods at once (`-l SELECTOR`): one capture thread per pod, one writer.
//!
//! Each pod's socket is opened in its own namespace and read on its own thread; packets
//! come to the writer (this thread) over a bounded channel, so a slow writer slows the
//! readers and the kernel counts the drops, as it would for tcpdump. Pods that start
//! matching are picked up by polling the runtime once a second (CRI has no watch); a pod
//! that goes away ends its own capture, with everything it captured kept.

use std::process::ExitCode;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, sync_channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Result;
use snoopy_capture::afpacket::{EndReason, StopHandle};
use snoopy_capture::{Interface, OwnedPacket, PacketSource};

use super::{CaptureSettings, Pipeline, Totals};
use crate::output::Format;
use crate::target::{Resolved, Target};

/// How often the runtime is asked for pods that started matching.
const FOLLOW_INTERVAL: Duration = Duration::from_secs(1);
/// Packets in flight between the capture threads and the writer.
const CHANNEL_DEPTH: usize = 16_384;

/// What capture threads tell the writer.
enum Message {
    Started { slot: usize, interface: Interface },
    Packet { slot: usize, packet: OwnedPacket },
    Ended { slot: usize, outcome: PodOutcome },
}

/// How one pod's capture ended.
struct PodOutcome {
    reason: Option<EndReason>,
    received: u64,
    dropped: u64,
    error: Option<String>,
}

/// One pod's capture, as the writer tracks it.
struct Slot {
    label: String,
    uid: Option<String>,
    stop: StopHandle,
    sink_interface: Option<u32>,
    written: u64,
    /// The runtime stopped reporting it as a ready, matching pod (deleted, most likely)
    /// before its interface went.
    vanished: bool,
    outcome: Option<PodOutcome>,
    thread: Option<JoinHandle<()>>,
}

/// Runs the capture of every target (and of pods that appear later) until the count, the
/// duration or a signal ends it, or every pod is gone.
pub(super) fn run(pipeline: Pipeline, resolved: Resolved) -> Result<ExitCode> {
    let settings = &pipeline.settings;
    let output = &pipeline.output;
    let stop = &pipeline.stop;
    let Resolved {
        targets,
        mut follower,
        ..
    } = resolved;
    let (tx, rx) = sync_channel(CHANNEL_DEPTH);
    let mut slots: Vec<Slot> = Vec::new();
    for target in targets {
        slots.push(spawn(slots.len(), target, settings, tx.clone()));
    }
    let crate::output::Opened {
        mut sink,
        deliveries,
    } = output.open(pipeline.look)?;
    let limit = pipeline.count.unwrap_or(u64::MAX);
    let per_pod = pipeline.count_per_pod.unwrap_or(u64::MAX);
    let mut written = 0u64;
    // -G -W wrote its last file.
    let mut full = false;
    let mut last_poll = Instant::now();
    let mut stopping = false;
    let outcome: Result<()> = (|| {
        loop {
            if !stopping && (stop.is_stopped() || written >= limit || full) {
                stopping = true;
                slots.iter().for_each(|s| s.stop.stop());
            }
            if slots.iter().all(|s| s.outcome.is_some()) && (stopping || follower.is_none()) {
                return Ok(());
            }
            if let Some(f) = follower.as_mut().filter(|_| !stopping)
                && last_poll.elapsed() >= FOLLOW_INTERVAL
            {
                last_poll = Instant::now();
                follow(f, &mut slots, settings, &tx, pipeline.quiet);
            }
            match receive(&rx) {
                Received::Message(Message::Packet { slot, packet }) => {
                    if written >= limit || full || slots[slot].written >= per_pod {
                        continue; // over the count: stragglers are dropped
                    }
                    if let Some(id) = slots[slot].sink_interface {
                        sink.write_packet(id, &packet.as_packet())?;
                        if output
                            .limit_reached
                            .load(std::sync::atomic::Ordering::Relaxed)
                        {
                            // -G -W wrote its last file: this packet and later ones are not
                            // written, so they are not counted.
                            full = true;
                            continue;
                        }
                        written += 1;
                        slots[slot].written += 1;
                        if slots[slot].written >= per_pod {
                            slots[slot].stop.stop();
                        }
                        if pipeline.packet_buffered {
                            sink.flush()?;
                        }
                    }
                }
                Received::Message(Message::Started { slot, interface }) => {
                    let label = slots[slot].label.clone();
                    let mut named = interface.clone();
                    // pcapng names each interface NS/POD/IFACE so Wireshark attributes every
                    // packet; text lines are prefixed with NS/POD.
                    // With --sink, always NS/POD/IFACE: the Kafka sink keys messages by the
                    // part before the last '/'.
                    named.name = match output.format {
                        Format::Text | Format::Json if !output.has_sinks() => label.clone(),
                        _ => format!("{label}/{}", interface.name),
                    };
                    named.description = Some(format!("pod {label}, interface {}", interface.name));
                    slots[slot].sink_interface = Some(sink.add_interface(&named)?);
                    if !pipeline.quiet {
                        eprintln!(
                            "podtracer: listening on {} in {label}, link-type {}, snapshot length {} bytes",
                            interface.name, interface.link_type, interface.snaplen
                        );
                    }
                }
                Received::Message(Message::Ended { slot, outcome }) => {
                    let s = &mut slots[slot];
                    if let Some(thread) = s.thread.take() {
                        let _ = thread.join();
                    }
                    if !pipeline.quiet {
                        report_end(s, &outcome);
                    }
                    s.outcome = Some(outcome);
                }
                Received::Idle => sink.flush()?,
            }
        }
    })();
    slots.iter().for_each(|s| s.stop.stop());
    let flushed = sink.flush();
    for slot in &mut slots {
        if let Some(thread) = slot.thread.take() {
            let _ = thread.join();
        }
    }
    let mut received = 0;
    let mut dropped = 0;
    let mut pods = Vec::new();
    for slot in &slots {
        let (r, d) = slot
            .outcome
            .as_ref()
            .map_or((0, 0), |o| (o.received, o.dropped));
        received += r;
        dropped += d;
        if let Some(uid) = &slot.uid {
            pods.push(pod_count(uid, slot, d));
        }
        if !pipeline.quiet {
            eprintln!(
                "podtracer: {}: {} packets captured, {r} received by filter, {d} dropped by kernel",
                slot.label, slot.written
            );
        }
    }
    // Several pods: one going away is part of following them, not the end of the run.
    let totals = Totals {
        captured: written,
        received,
        dropped,
        target_gone: false,
    };
    pipeline.close(&totals, &pods, &deliveries);
    if !pipeline.quiet {
        totals.print();
    }
    // A selector that never matched here is not an error (a per-node Job in follow mode
    // waits for pods that may not come); pods that all failed are.
    if !slots.is_empty()
        && slots
            .iter()
            .all(|s| s.outcome.as_ref().is_some_and(|o| o.error.is_some()))
    {
        anyhow::bail!("no pod could be captured");
    }
    crate::exit::status(outcome.and(flushed.map_err(anyhow::Error::from)))
}

/// A pod's line in the termination report: what was written for it, and whether it went
/// away or could not be captured.
fn pod_count(uid: &str, slot: &Slot, dropped: u64) -> snoopy_job::PodCount {
    let mut count = snoopy_job::PodCount::new(uid, slot.written, dropped);
    if let Some(outcome) = &slot.outcome {
        count.gone = slot.vanished || outcome.reason == Some(EndReason::InterfaceGone);
        count.failed = outcome.error.is_some();
    }
    count
}

enum Received {
    Message(Message),
    Idle,
}

fn receive(rx: &Receiver<Message>) -> Received {
    match rx.recv_timeout(Duration::from_millis(100)) {
        Ok(message) => Received::Message(message),
        Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => Received::Idle,
    }
}

fn report_end(slot: &Slot, outcome: &PodOutcome) {
    if let Some(error) = &outcome.error {
        eprintln!("podtracer: {}: {error}", slot.label);
    } else if outcome.reason == Some(EndReason::InterfaceGone) {
        eprintln!(
            "podtracer: {}: pod gone; its capture ended with {} packets written",
            slot.label, slot.written
        );
    }
}

/// Starts the pods that began matching; stops those that no longer match or are gone.
fn follow(
    follower: &mut crate::target::Follower,
    slots: &mut Vec<Slot>,
    settings: &CaptureSettings,
    tx: &SyncSender<Message>,
    quiet: bool,
) {
    match follower.poll() {
        Ok((fresh, gone)) => {
            for uid in gone {
                for slot in slots
                    .iter_mut()
                    .filter(|s| s.uid.as_deref() == Some(uid.as_str()))
                {
                    slot.vanished = slot.outcome.is_none();
                    slot.stop.stop();
                }
            }
            for target in fresh {
                let slot = spawn(slots.len(), target, settings, tx.clone());
                slots.push(slot);
            }
        }
        Err(e) if !quiet => eprintln!("podtracer: looking for new pods: {e:#}"),
        Err(_) => {}
    }
}

/// Starts one pod's capture thread.
fn spawn(slot: usize, target: Target, settings: &CaptureSettings, tx: SyncSender<Message>) -> Slot {
    let stop = StopHandle::new();
    let label = target.label.clone();
    let uid = target.pod.as_ref().map(|p| p.uid.clone());
    let settings = settings.clone();
    let namespace = target.namespace;
    let thread_stop = stop.clone();
    let thread = std::thread::Builder::new()
        .name(format!("capture {label}"))
        .spawn(move || {
            let outcome = match settings.open(namespace) {
                Err(e) => PodOutcome {
                    reason: None,
                    received: 0,
                    dropped: 0,
                    error: Some(format!("cannot capture: {e:#}")),
                },
                Ok(mut capture) => {
                    capture.set_stop_handle(thread_stop);
                    let interface = capture.interfaces()[0].clone();
                    let mut listening = tx.send(Message::Started { slot, interface }).is_ok();
                    let mut error = None;
                    while listening {
                        match capture.next_packet() {
                            Ok(Some(packet)) => {
                                let packet = packet.to_owned();
                                listening = tx.send(Message::Packet { slot, packet }).is_ok();
                            }
                            Ok(None) => break,
                            Err(e) => {
                                error = Some(e.to_string());
                                break;
                            }
                        }
                    }
                    let stats = capture.stats().unwrap_or_default();
                    PodOutcome {
                        reason: capture.end_reason(),
                        received: stats.received.unwrap_or(0),
                        dropped: stats.dropped.unwrap_or(0),
                        error,
                    }
                }
            };
            let _ = tx.send(Message::Ended { slot, outcome });
        })
        .expect("spawning a capture thread");
    Slot {
        label,
        uid,
        stop,
        sink_interface: None,
        written: 0,
        vanished: false,
        outcome: None,
        thread: Some(thread),
    }
}
