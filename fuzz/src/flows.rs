//! `flows`: the flow table fed frames of the link type the first byte picks, with arbitrary
//! timestamps (out of order, equal, up to `u64::MAX` seconds) and limits and timeouts from
//! the next bytes; sometimes the wall clock moves on without packets (`expire`).

use std::time::Duration;

use snoopy_capture::Packet;
use snoopy_capture::decode::decode as decode_frame;
use snoopy_capture::flow::{EndReason, FlowConfig, FlowKey, FlowRecord, FlowTable};

use crate::{Bytes, Records, link_type};

/// The `flows` target.
pub fn flows(data: &[u8]) {
    let mut bytes = Bytes(data);
    let link = link_type(bytes.u8());
    let config = FlowConfig {
        max_flows: usize::from(bytes.u8() % 16),
        idle_timeout: Duration::from_millis(u64::from(bytes.u16()) * 10),
        closed_linger: Duration::from_millis(u64::from(bytes.u16()) * 10),
        active_timeout: Duration::from_millis(u64::from(bytes.u16()) * 10),
        syn_timeout: Duration::from_millis(u64::from(bytes.u16())),
    };
    let mut table = FlowTable::new(config);
    let max_flows = table.config().max_flows;
    let mut records: Vec<FlowRecord> = Vec::new();
    let (mut packets, mut counted, mut bytes_counted) = (0u64, 0u64, 0u64);
    for record in Records(bytes) {
        let packet = Packet {
            timestamp: record.timestamp,
            orig_len: record.orig_len,
            data: record.data,
            interface: 0,
        };
        if FlowKey::of(&decode_frame(link, record.data)).is_some() {
            counted += 1;
            bytes_counted += u64::from(record.orig_len);
        }
        table.observe(link, &packet);
        packets += 1;
        if record.flags & 1 != 0 {
            // The wall clock, some time after this packet (or before: clocks step).
            let now = record
                .timestamp
                .saturating_add(Duration::from_secs(u64::from(record.flags >> 1)));
            table.expire(now);
        }
        assert!(
            table.len() <= max_flows,
            "{} flows, max {max_flows}",
            table.len()
        );
        if record.flags & 0x80 != 0 {
            check_snapshot(&table.snapshot(), table.len());
        }
        records.extend(table.drain_finished());
    }
    table.finish();
    records.extend(table.drain_finished());
    assert!(table.is_empty(), "flows left after finish");
    let stats = table.stats();
    assert_eq!(stats.packets, packets);
    assert_eq!(stats.packets - stats.skipped, counted, "packets in flows");
    assert_eq!(stats.records, records.len() as u64);
    assert_eq!(stats.active, 0);
    // Every packet of a flow is in exactly one record, once.
    let total: u64 = records.iter().map(FlowRecord::packets).sum();
    assert_eq!(total, counted, "packets in records");
    let total_bytes: u64 = records.iter().map(FlowRecord::bytes).sum();
    assert_eq!(total_bytes, bytes_counted, "bytes in records");
    for r in &records {
        check_record(r);
        assert_ne!(r.reason, EndReason::Snapshot);
    }
}

fn check_snapshot(snapshot: &[FlowRecord], flows: usize) {
    assert_eq!(snapshot.len(), flows);
    for r in snapshot {
        check_record(r);
        assert_eq!(r.reason, EndReason::Snapshot);
    }
}

fn check_record(r: &FlowRecord) {
    assert!(r.packets() >= 1, "a record without packets: {r:?}");
    assert!(r.first <= r.last, "{r:?}");
    assert_eq!(r.answered, r.rev.packets > 0, "{r:?}");
    // Records go to Kafka and the dashboard as JSON, times in nanoseconds since 1970: they
    // must read back as they were, up to the year 2554 (after it they saturate, documented).
    if r.last.as_nanos() < u128::from(u64::MAX) {
        let json = serde_json::to_string(r).expect("a record serialises");
        let back: FlowRecord = serde_json::from_str(&json).expect("a record reads back");
        assert_eq!(&back, r, "{json}");
    }
}
