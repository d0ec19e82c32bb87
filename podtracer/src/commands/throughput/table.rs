//! The throughput table: one line per pair, then the spread across pairs.

use std::fmt::Write;

use snoopy_job::throughput::{Flow, PairResult, Spread};

/// The column titles.
pub const HEADER: &str = "CLIENT                  SERVER                  FORWARD    REVERSE    RETR  RTT ms   CONNECT ms  RR ms    RESULT";

fn gbits(flow: Option<&Flow>) -> String {
    flow.map_or_else(
        || "-".into(),
        |f| format!("{:.2}G", f.received_bits_per_second / 1e9),
    )
}

fn ms(us: Option<f64>) -> String {
    us.map_or_else(|| "-".into(), |us| format!("{:.3}", us / 1000.0))
}

/// What the RETR column shows: TCP retransmissions, or UDP loss in percent.
fn losses(r: &PairResult) -> String {
    let flows = [r.forward.as_ref(), r.reverse.as_ref()];
    let flows = flows.iter().flatten();
    if let Some(loss) = flows.clone().filter_map(|f| f.udp.as_ref()).next() {
        return format!("{:.1}%", loss.lost_percent);
    }
    let retransmits: Option<u64> = flows.filter_map(|f| f.retransmits).reduce(|a, b| a + b);
    retransmits.map_or_else(|| "-".into(), |n| n.to_string())
}

/// One pair's line.
pub fn row(r: &PairResult) -> String {
    let rtt = r.forward.as_ref().and_then(|f| f.rtt_us).map(|s| s.mid);
    let latency = r.latency.as_ref();
    let result = match (&r.reason, &r.error) {
        (None, _) => "ok".to_owned(),
        (Some(_), Some(e)) => format!("FAILED: {e}"),
        (Some(reason), None) => format!("FAILED: {reason:?}"),
    };
    format!(
        "{:<23} {:<23} {:<10} {:<10} {:<5} {:<8} {:<11} {:<8} {result}",
        r.client,
        r.server,
        gbits(r.forward.as_ref()),
        gbits(r.reverse.as_ref()),
        losses(r),
        ms(rtt),
        ms(latency.map(|l| l.connect_us.mid)),
        ms(latency.map(|l| l.round_trip_us.mid)),
    )
}

/// The lines under the table: received Gbit/s and round trips across the pairs that worked
/// (min / median / max), and how many failed.
pub fn spread(results: &[PairResult]) -> String {
    let ok: Vec<&PairResult> = results.iter().filter(|r| r.ok()).collect();
    let mut out = String::new();
    let rates: Vec<f64> = ok
        .iter()
        .flat_map(|r| [r.forward.as_ref(), r.reverse.as_ref()])
        .flatten()
        .map(|f| f.received_bits_per_second / 1e9)
        .collect();
    let trips: Vec<f64> = ok
        .iter()
        .filter_map(|r| r.latency.as_ref())
        .map(|l| l.round_trip_us.mid / 1000.0)
        .collect();
    if let Some(Spread { min, mid, max }) = Spread::of(&rates) {
        let _ = writeln!(out, "Gbit/s  min {min:.2}  median {mid:.2}  max {max:.2}");
    }
    if let Some(Spread { min, mid, max }) = Spread::of(&trips) {
        let _ = writeln!(out, "RR ms   min {min:.3}  median {mid:.3}  max {max:.3}");
    }
    let _ = writeln!(
        out,
        "{} pairs, {} failed",
        results.len(),
        results.len() - ok.len()
    );
    out
}
