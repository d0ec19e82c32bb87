//! Benchmark: a SnoopyJob selecting N pods (N = 50, 200) → time until all N Jobs exist, API
//! requests the operator made, operator RSS.
//!
//! Needs the testbed apiserver (`testbed/k8s/control-plane.sh up`, `KUBECONFIG`). One kubelet
//! cannot host 200 pods, so a Node object with no kubelet behind it is registered and the
//! pods are bound to it with `nodeName` and marked Running, as a kubelet would: the operator
//! (a separate process, the real binary) cannot tell the difference.
//! Run: `cargo bench -p snoopy-operator --bench targets`.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Namespace, Node, Pod};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::json;
use snoopy_operator::crd::SnoopyJob;

mod common;

use common::{
    create_namespaces, install_crds, metric, rss_kib, scrape, start_operator, wait_ready,
};

const NODE: &str = "snoopy-bench-node";

struct Result {
    targets: usize,
    seconds: f64,
    requests: f64,
    rss_mb: f64,
}

fn main() -> ExitCode {
    common::run(bench)
}

async fn bench() -> anyhow::Result<bool> {
    let client = Client::try_default().await?;
    install_crds(&client).await?;
    let nodes: Api<Node> = Api::all(client.clone());
    let node: Node = serde_json::from_value(
        json!({"metadata": {"name": NODE, "labels": {"snoopy-bench": "true"}}}),
    )?;
    nodes
        .patch(
            NODE,
            &PatchParams::apply("snoopy-bench").force(),
            &Patch::Apply(&json!({
                "apiVersion": "v1", "kind": "Node", "metadata": node.metadata,
            })),
        )
        .await?;
    let mut results = Vec::new();
    for n in [50, 200] {
        results.push(run(&client, n).await?);
    }
    let _ = nodes.delete(NODE, &DeleteParams::default()).await;
    println!(
        "\n{:>8} {:>12} {:>14} {:>16} {:>10}",
        "targets", "all Jobs (s)", "API requests", "requests/target", "RSS (MB)"
    );
    for r in &results {
        println!(
            "{:>8} {:>12.3} {:>14} {:>16.2} {:>10.1}",
            r.targets,
            r.seconds,
            r.requests,
            r.requests / r.targets as f64,
            r.rss_mb
        );
    }
    let big = results.last().expect("two runs");
    let ok = big.seconds <= 2.0 && big.rss_mb <= 50.0;
    println!(
        "targets: 200 Jobs in <= 2 s: {}; RSS <= 50 MB: {}",
        big.seconds <= 2.0,
        big.rss_mb <= 50.0
    );
    Ok(ok)
}

async fn run(client: &Client, n: usize) -> anyhow::Result<Result> {
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis()
        % 1_000_000;
    let ns = format!("bench-t-{n}-{stamp}");
    let op = format!("bench-op-{n}-{stamp}");
    create_namespaces(client, &[&ns, &op]).await?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    futures::stream::iter(0..n)
        .map(|i| {
            let pods = pods.clone();
            async move {
                let name = format!("web-{i}");
                let pod: Pod = serde_json::from_value(json!({
                    "metadata": {"name": name, "labels": {"app": "web"}},
                    "spec": {"nodeName": NODE, "containers": [{"name": "app", "image": "localhost/snoopy/busybox:1"}]},
                }))?;
                pods.create(&PostParams::default(), &pod).await?;
                let ip = format!("10.213.{}.{}", 100 + i / 250, 1 + i % 250);
                let status = json!({"status": {"phase": "Running", "podIP": ip}});
                pods.patch_status(&name, &PatchParams::default(), &Patch::Merge(&status)).await?;
                anyhow::Ok(())
            }
        })
        .buffer_unordered(16)
        .try_collect::<Vec<()>>()
        .await?;

    let mut operator = start_operator(&op, &ns, &[])?;
    wait_ready(&mut operator).await?;
    let before = metric(&scrape()?, "snoopy_operator_api_requests_total");

    let sj: SnoopyJob = serde_json::from_value(json!({
        "apiVersion": "snoopy.fennecproject.io/v1alpha1", "kind": "SnoopyJob",
        "metadata": {"name": "bench", "namespace": ns},
        "spec": {"targetNamespace": ns, "podSelector": {"matchLabels": {"app": "web"}},
                 "tool": {"capture": {"packetCount": 10}}},
    }))?;
    let sjs: Api<SnoopyJob> = Api::namespaced(client.clone(), &ns);
    let jobs: Api<Job> = Api::namespaced(client.clone(), &op);
    let start = Instant::now();
    sjs.create(&PostParams::default(), &sj).await?;
    loop {
        let have = jobs
            .list_metadata(&ListParams::default())
            .await?
            .items
            .len();
        if have >= n {
            break;
        }
        anyhow::ensure!(
            start.elapsed() < Duration::from_secs(60),
            "only {have} of {n} Jobs after 60 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let seconds = start.elapsed().as_secs_f64();
    // Let the status settle, then count everything this CR cost.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let requests = metric(&scrape()?, "snoopy_operator_api_requests_total") - before;
    let rss_mb = rss_kib(operator.id())? as f64 / 1024.0;

    // Cleanup: the operator deletes the Jobs; pods on the kubelet-less node are removed at once.
    sjs.delete("bench", &DeleteParams::default()).await?;
    let job_pods: Api<Pod> = Api::namespaced(client.clone(), &op);
    let deadline = Instant::now() + Duration::from_secs(60);
    while sjs.get_opt("bench").await?.is_some() && Instant::now() < deadline {
        for p in job_pods.list(&ListParams::default()).await?.items {
            if p.metadata.deletion_timestamp.is_some() {
                let _ = job_pods
                    .delete(
                        &p.name_any(),
                        &DeleteParams {
                            grace_period_seconds: Some(0),
                            ..Default::default()
                        },
                    )
                    .await;
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    operator.kill()?;
    operator.wait()?;
    let namespaces: Api<Namespace> = Api::all(client.clone());
    for name in [&ns, &op] {
        let _ = namespaces.delete(name, &DeleteParams::default()).await;
    }
    for p in pods.list(&ListParams::default()).await?.items {
        let _ = pods
            .delete(
                &p.name_any(),
                &DeleteParams {
                    grace_period_seconds: Some(0),
                    ..Default::default()
                },
            )
            .await;
    }
    Ok(Result {
        targets: n,
        seconds,
        requests,
        rss_mb,
    })
}
