//! Timings against the containerd testbed (root): pod creation, and lookup of one pod by
//! name with container PIDs (what podtracer does before it can capture), on an open
//! connection and with connect + Version. A benchmark, not a test: it prints, and says
//! whether the median with connect is inside podtracer's 50 ms start-to-capture budget
//! (`make bench-startup` measures the whole start against tcpdump's).
//!
//!     sudo cargo bench -p snoopy-cri --bench lookup

use std::time::{Duration, Instant};

use snoopy_cri::testing::{PodCleanup, PodSpec};
use snoopy_cri::{PodQuery, RuntimeClient};

#[path = "../tests/common.rs"]
#[allow(dead_code)]
mod common;

use common::{client, endpoint, unique};

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[tokio::main]
async fn main() {
    let client = client().await;
    let cleanup = PodCleanup::new(endpoint());
    let ns = unique("latency");

    let start = Instant::now();
    let created = client
        .create_pod(&PodSpec::new(&ns, "web").sleeper("main"))
        .await
        .unwrap();
    let create = start.elapsed();
    cleanup.track(&created.sandbox_id);

    let query = PodQuery::named(&ns, "web").with_container_pids();
    let mut lookups = Vec::new();
    for _ in 0..20 {
        let start = Instant::now();
        let pods = client.list_pods(&query).await.unwrap();
        lookups.push(start.elapsed());
        assert!(pods[0].containers[0].pid.is_some());
    }
    // Including the connection (what a fresh podtracer pays).
    let mut cold = Vec::new();
    for _ in 0..20 {
        let start = Instant::now();
        let fresh = RuntimeClient::connect(endpoint()).await.unwrap();
        let pods = fresh.list_pods(&query).await.unwrap();
        cold.push(start.elapsed());
        assert!(pods[0].containers[0].pid.is_some());
    }
    let (warm, cold) = (median(lookups), median(cold));
    println!(
        "snoopy-cri timings: create pod (1 container) {create:?}; lookup by name + PIDs median of 20: {warm:?} on an open connection, {cold:?} with connect + Version"
    );
    let budget = Duration::from_millis(50);
    println!(
        "lookup with connect: median {cold:?} is {} podtracer's {budget:?} start-to-capture budget",
        if cold < budget { "inside" } else { "OVER" }
    );
}
