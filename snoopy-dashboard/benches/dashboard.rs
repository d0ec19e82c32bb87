//! `make bench-dashboard`: how fast the dashboard takes records in and shows them.
//!
//! - ingest: flow records (JSON, as podtracer writes them) counted per second on one core,
//!   against the target of 200,000/s;
//! - memory: bytes held per 1,000 pod pairs, each with an hour of 10 s windows;
//! - worst case at 20,000 conversations (the default key cap), an hour of windows each: held
//!   without a memory limit (one record per window), and under the default `--max-memory`
//!   with several round trips per window (the peak held, the process's peak resident set,
//!   and how much history the limit left);
//! - page: a headless Chromium loading the page for 1,000 hosts and 10,000 pairs (edges),
//!   from navigation to the first complete render, against the target of 1 s.
//!
//! Needs chromium and chromedriver for the page part (`make setup` installs them).

// Shared with the end-to-end tests; the benchmark uses only part of it.
#[allow(dead_code)]
#[path = "../tests/e2e/webdriver.rs"]
mod webdriver;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use snoopy_dashboard::input::Origin;
use snoopy_dashboard::shared::Shared;
use snoopy_dashboard::store::{Limits, Store};

/// The system allocator, counting the bytes in use: what the store holds, exactly, whatever
/// the allocator keeps in reserve (resident memory would count that too).
struct Counting;

static IN_USE: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call goes to the system allocator with the caller's arguments unchanged; the
// counter only observes the sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        IN_USE.fetch_add(layout.size(), Ordering::Relaxed);
        // SAFETY: the caller upholds GlobalAlloc::alloc's contract, passed on as is.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        IN_USE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: `ptr` came from `System.alloc` with this layout (the contract of dealloc).
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        IN_USE.fetch_add(new_size, Ordering::Relaxed);
        IN_USE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: the caller upholds GlobalAlloc::realloc's contract, passed on as is.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const BASE_NS: u64 = 1_796_000_000_000_000_000;

/// One flow record of pair `(a, b)` at `t_ns`, in podtracer's schema.
fn record(a: usize, b: usize, t_ns: u64, ok: bool) -> String {
    record_rtt(a, b, t_ns, ok.then_some(500_000))
}

/// The same with its handshake round trip (`None`: refused).
fn record_rtt(a: usize, b: usize, t_ns: u64, rtt_ns: Option<u64>) -> String {
    let ok = rtt_ns.is_some();
    let handshake = match rtt_ns {
        Some(rtt) => format!(
            r#"{{"syn_to_synack_ns":{},"synack_to_ack_ns":{},"rtt_ns":{rtt}}}"#,
            rtt - rtt / 5,
            rtt / 5
        ),
        None => "null".to_string(),
    };
    let outcome = if ok { "closed" } else { "refused" };
    let end = t_ns + 5_000_000;
    format!(
        r#"{{"type":"flow","reason":"idle","protocol":"tcp","initiator":{{"ip":"10.{}.{}.{}","port":40000,"name":"ns{}/pod-{a}"}},"responder":{{"ip":"10.{}.{}.{}","port":8080,"name":"ns{}/pod-{b}"}},"first_ns":{t_ns},"last_ns":{end},"fwd":{{"packets":5,"bytes":1500,"first_ns":{t_ns},"last_ns":{end}}},"rev":{{"packets":4,"bytes":4500,"first_ns":{t_ns},"last_ns":{end}}},"continued":false,"answered":true,"tcp":{{"outcome":"{outcome}","syns":1,"handshake":{handshake},"fwd":{{"retransmissions":0,"out_of_order":0,"zero_window":0}},"rev":{{"retransmissions":0,"out_of_order":0,"zero_window":0}}}}}}"#,
        a >> 16 & 255,
        a >> 8 & 255,
        a & 255,
        a % 20,
        b >> 16 & 255,
        b >> 8 & 255,
        b & 255,
        b % 20,
    )
}

/// `pairs` distinct (source, destination) host pairs among `hosts`.
fn pairs(hosts: usize, pairs: usize) -> Vec<(usize, usize)> {
    let mut out = Vec::with_capacity(pairs);
    let mut i = 0usize;
    while out.len() < pairs {
        let a = i % hosts;
        let b = (i / hosts + 1 + a) % hosts;
        if a != b {
            out.push((a, b));
        }
        i += 1;
    }
    out
}

fn ingest_rate() {
    let chosen = pairs(2_000, 1_000);
    let lines: Vec<String> = (0..1_000_000usize)
        .map(|i| {
            let (a, b) = chosen[i % chosen.len()];
            record(a, b, BASE_NS + i as u64 * 3_600_000, i % 17 != 0)
        })
        .collect();
    let mut store = Store::new(Limits::default());
    let origin = Origin::default();
    let started = Instant::now();
    for line in &lines {
        store.ingest(line.as_bytes(), &origin, 0);
    }
    let took = started.elapsed();
    let rate = lines.len() as f64 / took.as_secs_f64();
    assert_eq!(store.stats().flows, lines.len() as u64);
    println!(
        "ingest: {} flow records in {:.2} s on one core = {:.0} records/s (target 200000: {:.2}x)",
        lines.len(),
        took.as_secs_f64(),
        rate,
        rate / 200_000.0
    );
}

fn memory_per_thousand_pairs() {
    // An hour of records, one per pair per 10 s window: every window of every pair is kept.
    let chosen = pairs(2_000, 1_000);
    let before = IN_USE.load(Ordering::Relaxed);
    let mut store = Store::new(Limits::default());
    let origin = Origin::default();
    for w in 0..360u64 {
        for (i, (a, b)) in chosen.iter().enumerate() {
            let line = record(*a, *b, BASE_NS + w * 10_000_000_000 + i as u64, w % 7 != 0);
            store.ingest(line.as_bytes(), &origin, 0);
        }
    }
    let after = IN_USE.load(Ordering::Relaxed);
    println!(
        "memory: 1000 pod pairs x 360 windows (1 h of 10 s) = {:.1} MiB held by the store ({} conversations)",
        (after.saturating_sub(before)) as f64 / f64::from(1 << 20),
        store.conversations().count()
    );
}

/// The process's peak resident set so far (VmHWM), bytes.
fn peak_resident() -> usize {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
            line.split_whitespace().nth(1)?.parse::<usize>().ok()
        })
        .map_or(0, |kib| kib << 10)
}

const MIB: f64 = (1 << 20) as f64;

/// 20,000 conversations (the default key cap), each with a record in every 10 s window of an
/// hour, `per_window` records a window with as many different round trips (each its own
/// histogram bucket), into a store with `limits`: (peak bytes held, peak estimate, store).
fn twenty_thousand(limits: Limits, per_window: u64) -> (usize, usize, Store) {
    let chosen = pairs(4_000, 20_000);
    let before = IN_USE.load(Ordering::Relaxed);
    let mut store = Store::new(limits);
    let origin = Origin::default();
    let (mut peak, mut peak_estimate) = (0, 0);
    for w in 0..360u64 {
        for k in 0..per_window {
            for (i, (a, b)) in chosen.iter().enumerate() {
                let t = BASE_NS + w * 10_000_000_000 + k * 1_000_000_000 + i as u64;
                // Round trips 100 µs apart: a bucket each (buckets are 0.8 % wide).
                let rtt = 200_000 + (k + 3 * (i as u64 % 7)) * 100_000;
                let line = record_rtt(*a, *b, t, Some(rtt));
                store.ingest(line.as_bytes(), &origin, 0);
            }
            peak = peak.max(IN_USE.load(Ordering::Relaxed).saturating_sub(before));
            peak_estimate = peak_estimate.max(store.memory_bytes());
        }
    }
    (peak, peak_estimate, store)
}

fn memory_at_twenty_thousand() {
    // First under the default limit (so the peak resident set read after it is this run's).
    let limits = Limits::default();
    let max = limits.max_bytes;
    let resident_before = peak_resident();
    let started = Instant::now();
    let (peak, estimate, store) = twenty_thousand(limits, 4);
    let stats = store.stats();
    let kept_s = stats.shortened_before_ns.map_or(3600.0, |cut| {
        (store.now_ns().saturating_sub(cut)) as f64 / 1e9
    });
    println!(
        "memory, 20000 conversations x 1 h, 4 round trips per 10 s window, --max-memory {:.0} MiB (default): peak held {:.1} MiB (estimate {:.1} MiB), peak resident {:.1} MiB (+{:.1}), {} windows dropped, last {:.0} s of history kept, {} conversations kept ({:.0} s)",
        max as f64 / MIB,
        peak as f64 / MIB,
        estimate as f64 / MIB,
        peak_resident() as f64 / MIB,
        peak_resident().saturating_sub(resident_before) as f64 / MIB,
        stats.evicted_windows,
        kept_s,
        store.conversations().count(),
        started.elapsed().as_secs_f64(),
    );
    assert!(estimate <= max, "the estimate stays within the limit");
    drop(store);
    // Then without a limit: what the worst case would hold with one record per window.
    let unlimited = Limits {
        max_bytes: usize::MAX,
        ..Limits::default()
    };
    let started = Instant::now();
    let (peak, estimate, store) = twenty_thousand(unlimited, 1);
    println!(
        "memory, 20000 conversations x 1 h, 1 record per 10 s window, no limit: held {:.1} MiB (estimate {:.1} MiB: {:+.1} %), {} conversations ({:.0} s)",
        peak as f64 / MIB,
        estimate as f64 / MIB,
        (estimate as f64 / peak as f64 - 1.0) * 100.0,
        store.conversations().count(),
        started.elapsed().as_secs_f64(),
    );
}

fn page_render() -> anyhow::Result<()> {
    let shared = Arc::new(Shared::new(Limits::default()));
    let chosen = pairs(1_000, 10_000);
    let lines: Vec<String> = chosen
        .iter()
        .enumerate()
        .map(|(i, (a, b))| record(*a, *b, BASE_NS + i as u64, i % 11 != 0))
        .collect();
    let origin = Origin::default();
    shared.ingest_batch(lines.iter().map(|l| (l.as_bytes(), &origin)));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
    let url = format!("http://{}/", listener.local_addr()?);
    let app = snoopy_dashboard::web::router(shared);
    runtime.spawn(async move { axum::serve(listener, app).await });
    let browser = webdriver::Browser::start(1400, 1000)?;
    let mut firsts = Vec::new();
    for _ in 0..5 {
        browser.goto(&format!("{url}?run={}", firsts.len()))?;
        browser.wait_until(
            "return window.snoopyFirstView !== undefined",
            Duration::from_secs(30),
        )?;
        let first: f64 = browser.eval("return window.snoopyFirstView")?;
        let edges: u64 = browser.eval("return document.querySelectorAll('#map .edge').length")?;
        assert_eq!(edges, 10_000);
        firsts.push(first);
    }
    firsts.sort_by(f64::total_cmp);
    let median = firsts[firsts.len() / 2];
    println!(
        "page: 1000 hosts, 10000 edges: first complete render {median:.0} ms after navigation (median of 5; target 1000 ms: {:.2}x)",
        median / 1000.0
    );
    Ok(())
}

fn main() -> anyhow::Result<()> {
    memory_at_twenty_thousand();
    memory_per_thousand_pairs();
    ingest_rate();
    page_render()
}
