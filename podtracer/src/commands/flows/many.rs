//! `flows` over several pods (`-l`, `--pod NS/NAME…`, what a per-node Job runs): each pod's
//! packets are metered on a thread of its own, in a flow table of its own — a connection
//! between two target pods is that connection seen from each side, never one flow fed its
//! packets twice. Finished records, each keyed by the pod that saw it, and the periodic
//! snapshot (every pod's open flows) go through the one view. Pods that start matching are
//! picked up, pods that go away end their part with everything recorded.

use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use snoopy_capture::PacketSource;
use snoopy_capture::afpacket::{CaptureBuilder, EndReason, Event, StopHandle};
use snoopy_capture::flow::{FlowConfig, FlowRecord, FlowTable, TableStats};
use snoopy_job::PodCount;

use super::view::View;
use super::{FlowsArgs, wall_clock};
use crate::pipeline::Totals;
use crate::target::{Follower, Resolved, Target};

/// How often the runtime is asked for pods that started matching.
const FOLLOW_INTERVAL: Duration = Duration::from_secs(1);
/// Messages in flight from the pods' threads.
const CHANNEL_DEPTH: usize = 4096;

/// What a pod's thread tells the view.
enum Message {
    Finished {
        slot: usize,
        record: Box<FlowRecord>,
    },
    Open {
        slot: usize,
        open: Vec<FlowRecord>,
        stats: TableStats,
    },
    Ended {
        slot: usize,
        end: PodEnd,
    },
}

/// How one pod's metering ended.
struct PodEnd {
    totals: Totals,
    stats: TableStats,
    error: Option<String>,
}

/// One pod's metering, as the view tracks it.
struct Slot {
    label: String,
    uid: Option<String>,
    stop: StopHandle,
    open: Vec<FlowRecord>,
    stats: TableStats,
    vanished: bool,
    end: Option<PodEnd>,
    thread: Option<JoinHandle<()>>,
}

/// What the pods' threads share.
#[derive(Clone)]
struct PodSettings {
    interface: Option<String>,
    config: FlowConfig,
    interval: Duration,
    count: Option<u64>,
}

/// Meters every target (and pods that appear later) until the duration or a signal ends
/// it, or every pod is gone with no follower; the summed totals and each pod's counts.
pub(super) fn run(
    args: &FlowsArgs,
    resolved: Resolved,
    config: FlowConfig,
    view: &mut View,
) -> Result<(Totals, Vec<PodCount>)> {
    let Resolved {
        targets,
        mut follower,
        ..
    } = resolved;
    let settings = PodSettings {
        interface: args.interface.clone(),
        config,
        interval: args.interval,
        count: args.count,
    };
    let stop = crate::signals::stop_on_signals()?;
    let (tx, rx) = sync_channel(CHANNEL_DEPTH);
    let mut slots: Vec<Slot> = Vec::new();
    for target in targets {
        slots.push(spawn(slots.len(), target, &settings, tx.clone()));
    }
    let label = format!("the target pods on {}", crate::sinks::node_name());
    let started = Instant::now();
    let deadline = args.duration.map(|d| started + d);
    let mut next_snapshot = started + args.interval;
    let mut last_poll = Instant::now();
    let mut stopping = false;
    loop {
        if !stopping && (stop.is_stopped() || deadline.is_some_and(|d| Instant::now() >= d)) {
            stopping = true;
            slots.iter().for_each(|s| s.stop.stop());
        }
        if slots.iter().all(|s| s.end.is_some()) && (stopping || follower.is_none()) {
            break;
        }
        if let Some(f) = follower.as_mut().filter(|_| !stopping)
            && last_poll.elapsed() >= FOLLOW_INTERVAL
        {
            last_poll = Instant::now();
            follow(f, &mut slots, &settings, &tx);
        }
        match receive(&rx) {
            Some(Message::Finished { slot, record }) => {
                view.finished_as(Some(&slots[slot].label), *record);
            }
            Some(Message::Open { slot, open, stats }) => {
                slots[slot].open = open;
                slots[slot].stats = stats;
            }
            Some(Message::Ended { slot, end }) => {
                let s = &mut slots[slot];
                if let Some(thread) = s.thread.take() {
                    let _ = thread.join();
                }
                report_end(s, &end);
                s.open.clear();
                s.stats = end.stats;
                s.end = Some(end);
            }
            None => view.flush_records()?,
        }
        if Instant::now() >= next_snapshot {
            next_snapshot = Instant::now() + args.interval;
            view.flush_records()?;
            let open = slots.iter().flat_map(|s| s.open.iter().cloned()).collect();
            view.snapshot(
                open,
                summed(&slots),
                &label,
                started.elapsed(),
                wall_clock(),
            )?;
        }
    }
    // Records sent before the threads ended are all in the channel: drain it.
    while let Ok(message) = rx.try_recv() {
        if let Message::Finished { slot, record } = message {
            view.finished_as(Some(&slots[slot].label), *record);
        }
    }
    view.flush_records()?;
    view.summary(
        summed(&slots),
        &label,
        Some(started.elapsed()),
        wall_clock(),
    )?;
    let mut totals = Totals::default();
    let mut pods = Vec::new();
    for slot in &slots {
        let end = slot.end.as_ref().expect("every pod's thread ended");
        totals.captured += end.totals.captured;
        totals.received += end.totals.received;
        totals.dropped += end.totals.dropped;
        if let Some(uid) = &slot.uid {
            let mut count = PodCount::new(uid, end.totals.captured, end.totals.dropped);
            count.gone = slot.vanished || end.totals.target_gone;
            count.failed = end.error.is_some();
            pods.push(count);
        }
    }
    eprintln!(
        "podtracer: {} pods, {} packets captured, {} dropped by kernel",
        slots.len(),
        totals.captured,
        totals.dropped
    );
    if !slots.is_empty()
        && slots
            .iter()
            .all(|s| s.end.as_ref().is_some_and(|e| e.error.is_some()))
    {
        anyhow::bail!("no pod could be metered");
    }
    Ok((totals, pods))
}

fn receive(rx: &Receiver<Message>) -> Option<Message> {
    // A timeout (or every sender gone) is an idle turn of the loop.
    rx.recv_timeout(Duration::from_millis(100)).ok()
}

/// The pods' tables' counters, summed.
fn summed(slots: &[Slot]) -> TableStats {
    let mut sum = TableStats::default();
    for s in slots.iter().map(|s| &s.stats) {
        sum.packets += s.packets;
        sum.skipped += s.skipped;
        sum.flows += s.flows;
        sum.records += s.records;
        sum.evicted += s.evicted;
        sum.active += s.active;
    }
    sum
}

fn report_end(slot: &Slot, end: &PodEnd) {
    if let Some(error) = &end.error {
        eprintln!("podtracer: {}: {error}", slot.label);
    } else if slot.vanished || end.totals.target_gone {
        eprintln!(
            "podtracer: {}: pod gone; its flows ended with {} packets",
            slot.label, end.totals.captured
        );
    }
}

/// Starts the pods that began matching; stops those that no longer match or are gone.
fn follow(
    follower: &mut Follower,
    slots: &mut Vec<Slot>,
    settings: &PodSettings,
    tx: &SyncSender<Message>,
) {
    match follower.poll() {
        Ok((fresh, gone)) => {
            for uid in gone {
                for slot in slots
                    .iter_mut()
                    .filter(|s| s.uid.as_deref() == Some(uid.as_str()))
                {
                    slot.vanished = slot.end.is_none();
                    slot.stop.stop();
                }
            }
            for target in fresh {
                let slot = spawn(slots.len(), target, settings, tx.clone());
                slots.push(slot);
            }
        }
        Err(e) => eprintln!("podtracer: looking for new pods: {e:#}"),
    }
}

/// Starts one pod's metering thread.
fn spawn(slot: usize, target: Target, settings: &PodSettings, tx: SyncSender<Message>) -> Slot {
    let stop = StopHandle::new();
    let label = target.label.clone();
    let uid = target.pod.as_ref().map(|p| p.uid.clone());
    let settings = settings.clone();
    let thread_stop = stop.clone();
    let thread = std::thread::Builder::new()
        .name(format!("flows {label}"))
        .spawn(move || {
            let end = meter(target, &settings, thread_stop, slot, &tx).unwrap_or_else(|e| PodEnd {
                totals: Totals::default(),
                stats: TableStats::default(),
                error: Some(format!("{e:#}")),
            });
            let _ = tx.send(Message::Ended { slot, end });
        })
        .expect("spawning a flows thread");
    Slot {
        label,
        uid,
        stop,
        open: Vec::new(),
        stats: TableStats::default(),
        vanished: false,
        end: None,
        thread: Some(thread),
    }
}

/// One pod's loop: its packets into its flow table, finished records and a periodic view
/// of its open flows to the view's thread, until stopped or the pod's interface goes.
fn meter(
    target: Target,
    settings: &PodSettings,
    stop: StopHandle,
    slot: usize,
    tx: &SyncSender<Message>,
) -> Result<PodEnd> {
    let mut builder = CaptureBuilder::new()
        .namespace(target.namespace)
        .block_timeout(Duration::from_millis(100));
    if let Some(interface) = &settings.interface {
        builder = builder.interface(interface);
    }
    let mut capture = builder
        .open()
        .with_context(|| format!("cannot capture in {}", target.label))?;
    capture.set_stop_handle(stop);
    let link_type = capture.link_type();
    eprintln!(
        "podtracer: watching flows on {} in {}, link-type {link_type}",
        capture
            .interfaces()
            .first()
            .map(|i| i.name.as_str())
            .unwrap_or_default(),
        target.label
    );
    let mut table = FlowTable::new(settings.config);
    let limit = settings.count.unwrap_or(u64::MAX);
    let mut packets = 0u64;
    let mut next_open = Instant::now() + settings.interval;
    let send_finished = |table: &mut FlowTable| {
        table.drain_finished().into_iter().all(|record| {
            let record = Box::new(record);
            tx.send(Message::Finished { slot, record }).is_ok()
        })
    };
    let mut listening = true;
    while listening && packets < limit {
        match capture.next_event_or_idle()? {
            Event::Packet(packet) => {
                table.observe(link_type, &packet);
                packets += 1;
                listening = send_finished(&mut table);
            }
            Event::Idle => {
                table.expire(wall_clock());
                listening = send_finished(&mut table);
            }
            Event::End => break,
        }
        if Instant::now() >= next_open {
            next_open = Instant::now() + settings.interval;
            let open = Message::Open {
                slot,
                open: table.snapshot(),
                stats: table.stats(),
            };
            listening = listening && tx.send(open).is_ok();
        }
    }
    table.finish();
    send_finished(&mut table);
    let mut totals = Totals::of(&mut capture)?;
    totals.target_gone = capture.end_reason() == Some(EndReason::InterfaceGone);
    Ok(PodEnd {
        totals,
        stats: table.stats(),
        error: None,
    })
}
