//! The flow table: packets in, flow records out.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use serde::Serialize;

use super::key::{FlowKey, FxBuildHasher, Protocol};
use super::record::{DirectionStats, EndReason, FlowRecord, FlowType, NamedEndpoint, TcpRecord};
use super::tcp::TcpTracker;
use crate::decode::{self, Decoded, TcpFlags};
use crate::{LinkType, Packet};

/// Limits and timeouts of a [`FlowTable`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowConfig {
    /// A flow with no packet for this long is finished (record reason `idle`).
    pub idle_timeout: Duration,
    /// A TCP connection that was closed, reset or refused is finished after this long
    /// without packets (it lingers to collect the last ACKs and retransmitted FINs).
    pub closed_linger: Duration,
    /// A flow older than this gets a record (reason `active_timeout`) and goes on with fresh
    /// counters, so long connections report periodically.
    pub active_timeout: Duration,
    /// At most this many flows are tracked; the least recently seen is evicted (reason
    /// `evicted`, counted in [`TableStats::evicted`]) to make room for a new one.
    pub max_flows: usize,
    /// An unanswered SYN is called `unanswered` (rather than `open`) at the end of a capture
    /// if it was sent at least this long before.
    pub syn_timeout: Duration,
}

impl Default for FlowConfig {
    fn default() -> Self {
        FlowConfig {
            idle_timeout: Duration::from_secs(60),
            closed_linger: Duration::from_secs(5),
            active_timeout: Duration::from_secs(300),
            max_flows: 100_000,
            syn_timeout: Duration::from_secs(1),
        }
    }
}

/// Counters of the table itself.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct TableStats {
    /// Packets given to the table.
    pub packets: u64,
    /// Packets that were not IP (ARP, ...) or whose headers were cut short: not in any flow.
    pub skipped: u64,
    /// Flows created.
    pub flows: u64,
    /// Flow records written (every reason but snapshots).
    pub records: u64,
    /// Flows evicted because the table was full.
    pub evicted: u64,
    /// Flows in the table now.
    pub active: u64,
}

#[derive(Debug, Clone)]
struct Flow {
    key: FlowKey,
    /// Whether `key.lo` started the flow.
    initiator_is_lo: bool,
    /// `[initiator → responder, responder → initiator]`.
    dirs: [DirectionStats; 2],
    first: Duration,
    last: Duration,
    first_answer: Option<Duration>,
    tcp: Option<TcpTracker>,
    /// A finished TCP connection waiting out `closed_linger`.
    lingering: bool,
    /// Records already written for this flow (active timeouts).
    slices: u32,
}

#[derive(Debug, Clone, Copy)]
struct QueueEntry {
    slot: u32,
    generation: u32,
    stamp: Duration,
}

#[derive(Debug, Default)]
struct Slot {
    generation: u32,
    flow: Option<Flow>,
}

/// A bidirectional flow table (sans-IO: it reads no clock and does no I/O).
///
/// Feed it packets in capture order with [`FlowTable::observe`]; it keeps one entry per
/// conversation and, as flows end (idle timeout, closed TCP connections, eviction, active
/// timeout), queues their [`FlowRecord`]s, which [`FlowTable::drain_finished`] hands out.
/// Time is the packets' own timestamps, so a pcap file gives the same records as the live
/// capture it was written from; live callers also call [`FlowTable::expire`] with the wall
/// clock when no packets come. [`FlowTable::finish`] ends every flow at the end of input.
///
/// Memory is bounded: at most [`FlowConfig::max_flows`] flows, and the internal queues are
/// compacted when stale entries pile up.
///
/// ```
/// use snoopy_capture::flow::{FlowConfig, FlowTable};
/// use snoopy_capture::{LinkType, MemorySource, PacketSource};
///
/// # fn main() -> snoopy_capture::Result<()> {
/// # let mut source = MemorySource::new(vec![snoopy_capture::Interface::new("eth0", LinkType::Ethernet, 65535)], vec![]);
/// let mut table = FlowTable::new(FlowConfig::default());
/// let link_type = source.interfaces()[0].link_type;
/// while let Some(packet) = source.next_packet()? {
///     table.observe(link_type, &packet);
///     for record in table.drain_finished() {
///         println!("{}", serde_json::to_string(&record).unwrap());
///     }
/// }
/// table.finish();
/// for record in table.drain_finished() {
///     println!("{}", serde_json::to_string(&record).unwrap());
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct FlowTable {
    config: FlowConfig,
    index: HashMap<FlowKey, u32, FxBuildHasher>,
    slots: Vec<Slot>,
    free: Vec<u32>,
    /// Flows in order of their last packet, approximately: entries are re-queued lazily
    /// when found to be fresher than their stamp.
    lru: VecDeque<QueueEntry>,
    /// Finished TCP connections in the order they finished.
    lingering: VecDeque<QueueEntry>,
    finished: Vec<FlowRecord>,
    stats: TableStats,
    now: Duration,
    next_expiry: Duration,
}

impl FlowTable {
    /// An empty table.
    pub fn new(config: FlowConfig) -> Self {
        FlowTable {
            config: FlowConfig {
                max_flows: config.max_flows.max(1),
                ..config
            },
            index: HashMap::default(),
            slots: Vec::new(),
            free: Vec::new(),
            lru: VecDeque::new(),
            lingering: VecDeque::new(),
            finished: Vec::new(),
            stats: TableStats::default(),
            now: Duration::ZERO,
            next_expiry: Duration::ZERO,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &FlowConfig {
        &self.config
    }

    /// The table's counters.
    pub fn stats(&self) -> TableStats {
        TableStats {
            active: self.index.len() as u64,
            ..self.stats
        }
    }

    /// Flows in the table now.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// Whether the table holds no flow.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// The latest packet time seen (or passed to [`FlowTable::expire`]).
    pub fn now(&self) -> Duration {
        self.now
    }

    /// Decodes a packet whose bytes start with a `link_type` header and accounts for it.
    pub fn observe(&mut self, link_type: LinkType, packet: &Packet<'_>) {
        let decoded = decode::decode(link_type, packet.data);
        self.observe_decoded(&decoded, packet.orig_len, packet.timestamp);
    }

    /// Accounts for an already decoded packet of `wire_len` bytes captured at `ts`.
    pub fn observe_decoded(&mut self, decoded: &Decoded<'_>, wire_len: u32, ts: Duration) {
        self.stats.packets += 1;
        let Some(oriented) = super::key::FlowKey::of(decoded) else {
            self.stats.skipped += 1;
            return;
        };
        if ts > self.now {
            self.now = ts;
        }
        if self.now >= self.next_expiry {
            // Amortised: look for idle flows once a second of capture time.
            self.expire(self.now);
            // Saturating: a file's timestamps may reach Duration's end (u64::MAX seconds).
            self.next_expiry = self.now.saturating_add(Duration::from_secs(1));
        }
        let tcp = decoded.tcp();
        let new_syn =
            tcp.is_some_and(|t| t.flags.has(TcpFlags::SYN) && !t.flags.has(TcpFlags::ACK));
        let mut slot = self.index.get(&oriented.key).copied();
        if let Some(id) = slot {
            let flow = self.flow_mut(id);
            let reused = new_syn && flow.tcp.as_ref().is_some_and(TcpTracker::is_finished);
            if reused {
                self.finish_slot(id, EndReason::PortReuse);
                slot = None;
            } else if ts.saturating_sub(flow.first) >= self.config.active_timeout {
                self.active_timeout(id, ts);
            }
        }
        let id = match slot {
            Some(id) => id,
            None => {
                // A SYN-ACK seen first means its receiver started the connection.
                let synack_first = tcp.is_some_and(|t| t.flags.has(TcpFlags::SYN | TcpFlags::ACK));
                let initiator_is_lo = oriented.from_lo != synack_first;
                self.create(oriented.key, initiator_is_lo, ts)
            }
        };
        let linger_entry;
        {
            let flow = self.flow_mut(id);
            let dir = usize::from(oriented.from_lo != flow.initiator_is_lo);
            flow.dirs[dir].add(wire_len, ts);
            if ts > flow.last {
                flow.last = ts;
            }
            if dir == 1 && flow.first_answer.is_none() {
                flow.first_answer = Some(ts);
            }
            if let (Some(tracker), Some(segment)) = (flow.tcp.as_mut(), tcp) {
                tracker.observe(dir, segment, ts);
            }
            linger_entry =
                !flow.lingering && flow.tcp.as_ref().is_some_and(TcpTracker::is_finished);
            if linger_entry {
                flow.lingering = true;
            }
        }
        if linger_entry {
            let generation = self.slots[id as usize].generation;
            self.lingering.push_back(QueueEntry {
                slot: id,
                generation,
                stamp: ts,
            });
        }
    }

    /// Finishes the flows idle at `now` (a wall-clock time for live captures with no
    /// traffic; packet times advance it otherwise).
    pub fn expire(&mut self, now: Duration) {
        if now > self.now {
            self.now = now;
        }
        while let Some(entry) = self.lingering.front().copied() {
            let Some(flow) = self.live(entry) else {
                self.lingering.pop_front();
                continue;
            };
            if now.saturating_sub(flow.last) < self.config.closed_linger {
                break;
            }
            self.lingering.pop_front();
            self.finish_slot(entry.slot, EndReason::Idle);
        }
        let mut requeued = 0usize;
        while let Some(entry) = self.lru.pop_front() {
            let Some(flow) = self.live(entry) else {
                continue;
            };
            if flow.last > entry.stamp {
                self.lru.push_back(QueueEntry {
                    stamp: flow.last,
                    ..entry
                });
                requeued += 1;
                if requeued > self.index.len() {
                    break; // every flow is fresh: nothing to expire
                }
                continue;
            }
            if now.saturating_sub(flow.last) < self.config.idle_timeout {
                self.lru.push_front(entry);
                break;
            }
            self.finish_slot(entry.slot, EndReason::Idle);
        }
        self.compact();
    }

    /// Finishes every flow (reason `end`): call at the end of the input.
    pub fn finish(&mut self) {
        let mut ids: Vec<u32> = self.index.values().copied().collect();
        ids.sort_by_key(|&id| {
            let flow = self.slots[id as usize].flow.as_ref().expect("indexed");
            (flow.first, id)
        });
        for id in ids {
            self.finish_slot(id, EndReason::End);
        }
        self.lru.clear();
        self.lingering.clear();
    }

    /// Records of the flows still in the table (reason `snapshot`), oldest first; the
    /// table is not changed.
    pub fn snapshot(&self) -> Vec<FlowRecord> {
        let mut records: Vec<FlowRecord> = self
            .index
            .values()
            .map(|&id| {
                let flow = self.slots[id as usize].flow.as_ref().expect("indexed");
                self.record(flow, EndReason::Snapshot)
            })
            .collect();
        records.sort_by_key(|r| r.first);
        records
    }

    /// The records written since the last call.
    pub fn drain_finished(&mut self) -> std::vec::Drain<'_, FlowRecord> {
        self.finished.drain(..)
    }

    fn flow_mut(&mut self, id: u32) -> &mut Flow {
        self.slots[id as usize]
            .flow
            .as_mut()
            .expect("indexed slot holds a flow")
    }

    fn live(&self, entry: QueueEntry) -> Option<&Flow> {
        let slot = self.slots.get(entry.slot as usize)?;
        if slot.generation != entry.generation {
            return None;
        }
        slot.flow.as_ref()
    }

    fn create(&mut self, key: FlowKey, initiator_is_lo: bool, ts: Duration) -> u32 {
        if self.index.len() >= self.config.max_flows {
            self.evict_one();
        }
        let flow = Flow {
            key,
            initiator_is_lo,
            dirs: [DirectionStats::default(); 2],
            first: ts,
            last: ts,
            first_answer: None,
            tcp: (key.protocol == Protocol::Tcp).then(TcpTracker::default),
            lingering: false,
            slices: 0,
        };
        let id = match self.free.pop() {
            Some(id) => id,
            None => {
                self.slots.push(Slot::default());
                u32::try_from(self.slots.len() - 1).expect("max_flows fits in u32")
            }
        };
        let slot = &mut self.slots[id as usize];
        slot.flow = Some(flow);
        self.index.insert(key, id);
        self.lru.push_back(QueueEntry {
            slot: id,
            generation: slot.generation,
            stamp: ts,
        });
        self.stats.flows += 1;
        id
    }

    /// Evicts the least recently seen flow.
    fn evict_one(&mut self) {
        while let Some(entry) = self.lru.pop_front() {
            let Some(flow) = self.live(entry) else {
                continue;
            };
            if flow.last > entry.stamp {
                self.lru.push_back(QueueEntry {
                    stamp: flow.last,
                    ..entry
                });
                continue;
            }
            self.stats.evicted += 1;
            self.finish_slot(entry.slot, EndReason::Evicted);
            return;
        }
    }

    fn active_timeout(&mut self, id: u32, ts: Duration) {
        let record = {
            let flow = self.slots[id as usize].flow.as_ref().expect("indexed");
            self.record(flow, EndReason::ActiveTimeout)
        };
        self.finished.push(record);
        self.stats.records += 1;
        let flow = self.flow_mut(id);
        flow.dirs = [DirectionStats::default(); 2];
        flow.first = ts;
        flow.slices += 1;
        if let Some(tracker) = flow.tcp.as_mut() {
            tracker.reset_counters();
        }
    }

    fn finish_slot(&mut self, id: u32, reason: EndReason) {
        let slot = &mut self.slots[id as usize];
        let Some(flow) = slot.flow.take() else {
            return;
        };
        slot.generation = slot.generation.wrapping_add(1);
        self.index.remove(&flow.key);
        self.free.push(id);
        let record = self.record(&flow, reason);
        self.finished.push(record);
        self.stats.records += 1;
    }

    fn record(&self, flow: &Flow, reason: EndReason) -> FlowRecord {
        let (initiator, responder) = if flow.initiator_is_lo {
            (flow.key.lo, flow.key.hi)
        } else {
            (flow.key.hi, flow.key.lo)
        };
        let end = if reason == EndReason::Idle {
            flow.last
        } else {
            self.now.max(flow.last)
        };
        let tcp = flow.tcp.as_ref().map(|t| TcpRecord {
            outcome: t.outcome(end, reason == EndReason::Idle, self.config.syn_timeout),
            syns: t.syns,
            handshake: t.handshake,
            fwd: t.counters(0),
            rev: t.counters(1),
        });
        FlowRecord {
            kind: FlowType::Flow,
            reason,
            protocol: flow.key.protocol,
            initiator: NamedEndpoint::new(initiator),
            responder: NamedEndpoint::new(responder),
            first: flow.first,
            last: flow.last,
            fwd: flow.dirs[0],
            rev: flow.dirs[1],
            continued: flow.slices > 0,
            answered: flow.dirs[1].packets > 0,
            response_time: flow.first_answer.map(|t| t.saturating_sub(flow.first)),
            tcp,
        }
    }

    /// Drops stale queue entries once they outnumber the flows, so the queues stay bounded
    /// by a small multiple of `max_flows`.
    fn compact(&mut self) {
        let limit = 2 * self.index.len() + 1024;
        if self.lru.len() > limit {
            let slots = &self.slots;
            self.lru.retain(|e| {
                slots[e.slot as usize].generation == e.generation
                    && slots[e.slot as usize].flow.is_some()
            });
        }
        if self.lingering.len() > limit {
            let slots = &self.slots;
            self.lingering.retain(|e| {
                slots[e.slot as usize].generation == e.generation
                    && slots[e.slot as usize].flow.is_some()
            });
        }
    }
}

/// Feeds every packet of `source` to `table`, calling `on_record` with each finished
/// record as it is written, until the source ends (the table is not finished: call
/// [`FlowTable::finish`] for the flows still open). Works with sources whose interfaces
/// (and link types) appear as they are read, such as pcapng files.
pub fn feed<S: crate::PacketSource + ?Sized>(
    source: &mut S,
    table: &mut FlowTable,
    mut on_record: impl FnMut(FlowRecord),
) -> crate::Result<()> {
    let mut link_types: Vec<LinkType> = source.interfaces().iter().map(|i| i.link_type).collect();
    loop {
        let late = match source.next_packet()? {
            None => break,
            Some(packet) => match link_types.get(packet.interface as usize) {
                Some(&link_type) => {
                    table.observe(link_type, &packet);
                    None
                }
                // An interface described after the last look: copy this one packet.
                None => Some(packet.to_owned()),
            },
        };
        if let Some(packet) = late {
            link_types = source.interfaces().iter().map(|i| i.link_type).collect();
            let link_type = link_types
                .get(packet.interface as usize)
                .copied()
                .unwrap_or(LinkType::Other(0));
            table.observe(link_type, &packet.as_packet());
        }
        for record in table.drain_finished() {
            on_record(record);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::TcpOutcome;

    fn udp(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16) -> Vec<u8> {
        let mut p = vec![0x45, 0, 0, 28, 0, 0, 0, 0, 64, 17, 0, 0];
        p.extend_from_slice(&src);
        p.extend_from_slice(&dst);
        p.extend_from_slice(&sport.to_be_bytes());
        p.extend_from_slice(&dport.to_be_bytes());
        p.extend_from_slice(&[0, 8, 0, 0]);
        p
    }

    fn tcp(
        src: [u8; 4],
        dst: [u8; 4],
        sport: u16,
        dport: u16,
        seq: u32,
        ack: u32,
        flags: u8,
    ) -> Vec<u8> {
        let mut p = vec![0x45, 0, 0, 40, 0, 0, 0, 0, 64, 6, 0, 0];
        p.extend_from_slice(&src);
        p.extend_from_slice(&dst);
        p.extend_from_slice(&sport.to_be_bytes());
        p.extend_from_slice(&dport.to_be_bytes());
        p.extend_from_slice(&seq.to_be_bytes());
        p.extend_from_slice(&ack.to_be_bytes());
        p.extend_from_slice(&[0x50, flags, 0x10, 0, 0, 0, 0, 0]);
        p
    }

    fn feed(table: &mut FlowTable, bytes: &[u8], ms: u64) {
        let packet = Packet {
            timestamp: Duration::from_millis(ms),
            orig_len: bytes.len() as u32,
            data: bytes,
            interface: 0,
        };
        table.observe(LinkType::RawIp, &packet);
    }

    const A: [u8; 4] = [10, 0, 0, 1];
    const B: [u8; 4] = [10, 0, 0, 2];

    #[test]
    fn times_at_the_end_of_duration_do_not_overflow() {
        // Found by the `flows` fuzz target (fuzz/regressions/flows/crash-aac2b724…): a packet
        // stamped u64::MAX seconds (a pcapng file can say so) overflowed the next expiry
        // time and panicked. Then an earlier packet, and the flows end normally.
        let mut table = FlowTable::new(FlowConfig::default());
        let end = Duration::new(u64::MAX, 999_999_999);
        for (ts, flags) in [(end, 0x02), (Duration::from_secs(1), 0x12), (end, 0x10)] {
            let bytes = tcp(A, B, 40000, 80, 7, 0, flags);
            let packet = Packet {
                timestamp: ts,
                orig_len: bytes.len() as u32,
                data: &bytes,
                interface: 0,
            };
            table.observe(LinkType::RawIp, &packet);
        }
        table.expire(end);
        table.finish();
        let records: Vec<FlowRecord> = table.drain_finished().collect();
        assert_eq!(records.iter().map(FlowRecord::packets).sum::<u64>(), 3);
        assert_eq!(table.now(), end);
    }

    #[test]
    fn records_read_back_as_they_were_written() {
        let mut table = FlowTable::new(FlowConfig::default());
        // A completed handshake with data, a refused SYN, an unanswered UDP query and a
        // protocol without a name (GRE, 47): every field kind of the schema.
        feed(&mut table, &tcp(A, B, 40000, 80, 7, 0, 0x02), 0);
        feed(&mut table, &tcp(B, A, 80, 40000, 100, 8, 0x12), 1);
        feed(&mut table, &tcp(A, B, 40000, 80, 8, 101, 0x10), 2);
        feed(&mut table, &tcp(A, B, 40001, 81, 7, 0, 0x02), 3);
        feed(&mut table, &tcp(B, A, 81, 40001, 0, 8, 0x14), 4);
        feed(&mut table, &udp(A, B, 5000, 53), 5);
        let mut gre = udp(A, B, 0, 0);
        gre[9] = 47;
        feed(&mut table, &gre, 6);
        table.finish();
        let mut records: Vec<_> = table.drain_finished().collect();
        records[0].initiator.name = Some("shop/web-0".into());
        assert_eq!(records.len(), 4);
        for record in records {
            let json = serde_json::to_string(&record).unwrap();
            let back: FlowRecord = serde_json::from_str(&json).unwrap();
            assert_eq!(back, record, "{json}");
        }
        let not_a_flow = r#"{"type":"destination"}"#;
        let err = serde_json::from_str::<FlowRecord>(not_a_flow).unwrap_err();
        assert!(err.to_string().contains("expected `flow`"), "{err}");
    }

    #[test]
    fn counts_each_direction_and_times_out() {
        let mut table = FlowTable::new(FlowConfig::default());
        feed(&mut table, &udp(A, B, 5000, 53), 1000);
        feed(&mut table, &udp(B, A, 53, 5000), 1002);
        feed(&mut table, &udp(A, B, 5000, 53), 1010);
        assert_eq!(table.len(), 1);
        assert_eq!(table.drain_finished().count(), 0);
        table.expire(Duration::from_millis(1010 + 60_000));
        let records: Vec<_> = table.drain_finished().collect();
        assert_eq!(records.len(), 1);
        let r = &records[0];
        assert_eq!(r.reason, EndReason::Idle);
        assert_eq!(r.initiator.port, 5000);
        assert_eq!((r.fwd.packets, r.rev.packets), (2, 1));
        assert_eq!((r.fwd.bytes, r.rev.bytes), (56, 28));
        assert_eq!(r.response_time, Some(Duration::from_millis(2)));
        assert!(r.is_success());
        assert!(table.is_empty());
    }

    #[test]
    fn multicast_and_non_echo_icmp_are_not_attempts() {
        let mut table = FlowTable::new(FlowConfig::default());
        feed(&mut table, &udp(A, [224, 0, 0, 251], 5353, 5353), 0);
        feed(&mut table, &udp(A, [255, 255, 255, 255], 68, 67), 1);
        feed(&mut table, &udp(A, B, 5000, 53), 2);
        table.finish();
        let records: Vec<_> = table.drain_finished().collect();
        let attempts: Vec<_> = records.iter().filter(|r| r.is_attempt()).collect();
        assert_eq!(attempts.len(), 1);
        assert_eq!(attempts[0].responder.port, 53);
        assert_eq!(attempts[0].failure(), Some("no_reply"));
    }

    #[test]
    fn refused_connection_lingers_then_reports() {
        let mut table = FlowTable::new(FlowConfig::default());
        feed(&mut table, &tcp(A, B, 40000, 81, 7, 0, 0x02), 0);
        feed(&mut table, &tcp(B, A, 81, 40000, 0, 8, 0x14), 1);
        table.expire(Duration::from_millis(2));
        assert_eq!(table.drain_finished().count(), 0, "still lingering");
        table.expire(Duration::from_secs(6));
        let records: Vec<_> = table.drain_finished().collect();
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].tcp.unwrap().outcome, TcpOutcome::Refused);
        assert_eq!(records[0].failure(), Some("refused"));
    }

    #[test]
    fn port_reuse_starts_a_new_flow() {
        let mut table = FlowTable::new(FlowConfig::default());
        feed(&mut table, &tcp(A, B, 40000, 81, 7, 0, 0x02), 0);
        feed(&mut table, &tcp(B, A, 81, 40000, 0, 8, 0x14), 1);
        feed(&mut table, &tcp(A, B, 40000, 81, 900, 0, 0x02), 100);
        let records: Vec<_> = table.drain_finished().collect();
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].reason, EndReason::PortReuse);
        assert_eq!(table.len(), 1);
    }

    #[test]
    fn a_full_table_evicts_the_least_recently_seen() {
        let mut table = FlowTable::new(FlowConfig {
            max_flows: 10,
            ..FlowConfig::default()
        });
        for port in 0..100u16 {
            feed(&mut table, &udp(A, B, 1000 + port, 53), u64::from(port));
            // Flow 1000 stays fresh, so it is never the one evicted.
            feed(&mut table, &udp(A, B, 1000, 53), u64::from(port));
        }
        assert_eq!(table.len(), 10);
        assert_eq!(table.stats().evicted, 90);
        let evicted: Vec<_> = table.drain_finished().collect();
        assert!(evicted.iter().all(|r| r.initiator.port != 1000));
        table.finish();
        let rest: Vec<_> = table.drain_finished().collect();
        let kept = rest.iter().find(|r| r.initiator.port == 1000).unwrap();
        assert_eq!(kept.fwd.packets, 101);
    }

    #[test]
    fn active_timeout_slices_long_flows() {
        let mut table = FlowTable::new(FlowConfig {
            active_timeout: Duration::from_secs(10),
            ..FlowConfig::default()
        });
        for s in 0..25u64 {
            feed(&mut table, &udp(A, B, 5000, 53), s * 1000);
        }
        table.finish();
        let records: Vec<_> = table.drain_finished().collect();
        let reasons: Vec<_> = records.iter().map(|r| r.reason).collect();
        assert_eq!(
            reasons,
            [
                EndReason::ActiveTimeout,
                EndReason::ActiveTimeout,
                EndReason::End
            ]
        );
        let total: u64 = records.iter().map(|r| r.fwd.packets).sum();
        assert_eq!(total, 25);
    }
}
