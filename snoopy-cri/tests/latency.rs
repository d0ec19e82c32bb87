//! Timings: pod creation, and lookup of one pod by name with container PIDs (what
//! podtracer does before it can capture). Printed with `--nocapture`; the lookup median
//! must stay well inside podtracer's 50 ms start-to-capture budget.

use std::time::{Duration, Instant};

use snoopy_cri::testing::{PodCleanup, PodSpec};
use snoopy_cri::{PodQuery, RuntimeClient};

use crate::common::{client, endpoint, unique};

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[tokio::test]
async fn lookup_by_name_is_fast() {
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
    assert!(
        cold < Duration::from_millis(50),
        "lookup with connect median {cold:?} >= 50 ms"
    );
}
