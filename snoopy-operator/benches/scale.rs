//! Benchmark at cluster scale: 100 Nodes and 5,000 pods, of which a SnoopyJob selects 2,000
//! spread over the nodes — once with one Job per node (`jobsPer: node`), once with one per
//! pod. Prints how long the Jobs take to exist, the API requests the operator made (and the
//! apiserver's own count for the same span), the operator's memory, and what 500 unrelated
//! pods, created and deleted while the SnoopyJob runs, cost it.
//!
//! Needs the testbed apiserver (`testbed/k8s/control-plane.sh up`, `KUBECONFIG`). The Nodes
//! have no kubelet behind them: pods are bound with `nodeName` and marked Running, as a
//! kubelet would; the operator (the real binary, a separate process) cannot tell.
//! Run: `make bench-operator-scale` (or `cargo bench -p snoopy-operator --bench scale`).
//! `SNOOPY_SCALE_PODS`, `SNOOPY_SCALE_NODES` and `SNOOPY_SCALE_SELECTED` shrink it;
//! `SNOOPY_OPERATOR_BIN` benchmarks another build of the operator (an older commit's).

mod common;

use std::process::ExitCode;
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Namespace, Node, Pod};
use kube::Client;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;
use snoopy_operator::crd::SnoopyJob;

use common::{
    cpu_seconds, create_namespaces, install_crds, metric, rss_kib, rss_now_kib, scrape,
    start_operator, wait_ready,
};

/// How many pods the bench creates at once.
const CONCURRENCY: usize = 32;
/// Unrelated pods created and deleted while the SnoopyJob runs.
const CHURN: usize = 500;
/// The operator's requests counter.
const REQUESTS: &str = "snoopy_operator_api_requests_total";

fn setting(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() -> ExitCode {
    common::run(bench)
}

/// The cluster the bench builds.
struct Shape {
    nodes: usize,
    pods: usize,
    selected: usize,
}

impl Shape {
    fn node(i: usize) -> String {
        format!("snoopy-scale-{i:04}")
    }
    /// The first `selected` pods: pod I is on node I mod `nodes`, so they spread evenly over
    /// all nodes (20 per node at the full size).
    fn is_selected(&self, i: usize) -> bool {
        i < self.selected
    }
}

async fn bench() -> anyhow::Result<bool> {
    let shape = Shape {
        nodes: setting("SNOOPY_SCALE_NODES", 100),
        pods: setting("SNOOPY_SCALE_PODS", 5_000),
        selected: setting("SNOOPY_SCALE_SELECTED", 2_000),
    };
    let client = Client::try_default().await?;
    install_crds(&client).await?;
    let started = Instant::now();
    let nodes: Api<Node> = Api::all(client.clone());
    for i in 0..shape.nodes {
        let node = json!({"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": Shape::node(i), "labels": {"snoopy-bench": "scale"}}});
        nodes
            .patch(
                &Shape::node(i),
                &PatchParams::apply("snoopy-bench").force(),
                &Patch::Apply(&node),
            )
            .await?;
    }
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis()
        % 1_000_000;
    let (ns, op) = (format!("scale-{stamp}"), format!("scale-op-{stamp}"));
    create_namespaces(&client, &[&ns, &op]).await?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    create_pods(&pods, &shape, "pod", 0..shape.pods).await?;
    println!(
        "cluster: {} Nodes, {} pods ({} selected) in {:.1} s",
        shape.nodes,
        shape.pods,
        shape.selected,
        started.elapsed().as_secs_f64()
    );

    // The operator's default cap (500 targets per CR) is the shared-cluster setting; a
    // cluster that runs 2,000-target captures raises it, as the bench does. Each mode gets
    // an operator of its own, so that each peak RSS is that mode's.
    let cap = shape.selected.to_string();
    let mut operator = start_operator(&op, &ns, &["--max-targets", &cap])?;
    let per_node = run_mode(&client, &shape, &ns, &op, &mut operator, Mode::Node).await;
    stop_between_modes(&client, &op, &ns, operator).await?;
    let per_node = per_node?;
    let mut operator = start_operator(&op, &ns, &["--max-targets", &cap])?;
    let result = per_pod_and_churn(&client, &shape, &ns, &op, &mut operator, per_node).await;
    cleanup(&client, &op, &ns, operator, &shape).await?;
    result
}

/// How the bench's SnoopyJob cuts its Jobs.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Node,
    Pod,
}

impl Mode {
    fn cr_name(self) -> &'static str {
        match self {
            Mode::Node => "scale-node",
            Mode::Pod => "scale",
        }
    }
    fn jobs(self, shape: &Shape) -> usize {
        match self {
            Mode::Node => (0..shape.pods)
                .filter(|&i| shape.is_selected(i))
                .map(|i| i % shape.nodes)
                .collect::<std::collections::HashSet<_>>()
                .len(),
            Mode::Pod => shape.selected,
        }
    }
}

/// One mode's row of the table.
struct Row {
    mode: &'static str,
    jobs: usize,
    seconds: f64,
    requests: f64,
    apiserver: f64,
    ours: usize,
    rss_mb: f64,
}

impl Row {
    fn print_header() {
        println!(
            "\n{:>10} {:>8} {:>12} {:>14} {:>16} {:>14} {:>20} {:>10}",
            "mode",
            "Jobs",
            "all Jobs (s)",
            "API requests",
            "requests/target",
            "requests/Job",
            "apiserver requests",
            "RSS (MB)"
        );
    }
    fn print(&self, targets: usize) {
        println!(
            "{:>10} {:>8} {:>12.2} {:>14} {:>16.2} {:>14.2} {:>20} {:>10.1}",
            self.mode,
            self.jobs,
            self.seconds,
            self.requests,
            self.requests / targets as f64,
            self.requests / self.jobs as f64,
            format!("{} ({} ours)", self.apiserver, self.ours),
            self.rss_mb
        );
    }
}

/// Creates the mode's SnoopyJob and waits for all its Jobs; the row of the table.
async fn run_mode(
    client: &Client,
    shape: &Shape,
    ns: &str,
    op: &str,
    operator: &mut std::process::Child,
    mode: Mode,
) -> anyhow::Result<Row> {
    wait_ready(operator).await?;
    let pid = operator.id();
    tokio::time::sleep(Duration::from_secs(2)).await; // the pod watch's first list
    let idle_mb = rss_now_kib(pid)? as f64 / 1024.0;
    println!(
        "operator before the SnoopyJob, watching {} pods: RSS {idle_mb:.1} MB",
        shape.pods
    );
    let before = Counts::now(client).await?;
    let sjs: Api<SnoopyJob> = Api::namespaced(client.clone(), ns);
    let jobs_per = if mode == Mode::Node { "node" } else { "pod" };
    let sj: SnoopyJob = serde_json::from_value(json!({
        "apiVersion": "snoopy.fennecproject.io/v1alpha1", "kind": "SnoopyJob",
        "metadata": {"name": mode.cr_name(), "namespace": ns},
        "spec": {"targetNamespace": ns, "podSelector": {"matchLabels": {"app": "web"}},
                 "jobsPer": jobs_per, "tool": {"capture": {"packetCount": 10}}},
    }))?;
    let jobs: Api<Job> = Api::namespaced(client.clone(), op);
    let expected = mode.jobs(shape);
    let start = Instant::now();
    sjs.create(&PostParams::default(), &sj).await?;
    let mut polls = 0;
    loop {
        polls += 1;
        let have = jobs
            .list_metadata(&ListParams::default())
            .await?
            .items
            .len();
        if have >= expected {
            break;
        }
        anyhow::ensure!(
            start.elapsed() < Duration::from_secs(300),
            "only {have} of {expected} Jobs after 300 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let seconds = start.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(3)).await; // the status settles
    let after = Counts::now(client).await?;
    Ok(Row {
        mode: if mode == Mode::Node {
            "per node"
        } else {
            "per pod"
        },
        jobs: expected,
        seconds,
        requests: after.operator - before.operator,
        apiserver: after.apiserver - before.apiserver,
        ours: polls + 2,
        rss_mb: rss_kib(pid)? as f64 / 1024.0,
    })
}

/// Stops the per-node mode's operator and removes its SnoopyJob, Jobs and their pods, so the
/// per-pod mode starts from the same cluster.
async fn stop_between_modes(
    client: &Client,
    op: &str,
    ns: &str,
    mut operator: std::process::Child,
) -> anyhow::Result<()> {
    operator.kill()?;
    operator.wait()?;
    let sjs: Api<SnoopyJob> = Api::namespaced(client.clone(), ns);
    let unfinalize = json!({"metadata": {"finalizers": null}});
    let name = Mode::Node.cr_name();
    let _ = sjs
        .patch(name, &PatchParams::default(), &Patch::Merge(&unfinalize))
        .await;
    let _ = sjs.delete(name, &DeleteParams::default()).await;
    let jobs: Api<Job> = Api::namespaced(client.clone(), op);
    jobs.delete_collection(&DeleteParams::background(), &ListParams::default())
        .await?;
    let job_pods: Api<Pod> = Api::namespaced(client.clone(), op);
    let start = Instant::now();
    loop {
        let _ = job_pods
            .delete_collection(&grace_0(), &ListParams::default())
            .await;
        let left = jobs
            .list_metadata(&ListParams::default())
            .await?
            .items
            .len()
            + job_pods
                .list_metadata(&ListParams::default())
                .await?
                .items
                .len();
        if left == 0 {
            return Ok(());
        }
        anyhow::ensure!(
            start.elapsed() < Duration::from_secs(120),
            "{left} Jobs and pods of the per-node run still there after 120 s"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The per-pod mode, then the churn; prints the table and the verdicts.
async fn per_pod_and_churn(
    client: &Client,
    shape: &Shape,
    ns: &str,
    op: &str,
    operator: &mut std::process::Child,
    per_node: Row,
) -> anyhow::Result<bool> {
    let client = client.clone();
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let per_pod = run_mode(&client, shape, ns, op, operator, Mode::Pod).await?;
    let pid = operator.id();

    // Churn: unrelated pods (other labels) come and go while the SnoopyJob runs. The window
    // must hold no reconcile of its own: it opens once the Jobs' pods all exist, the
    // operator has gone quiet, and its periodic requeue (every 30 s while the run is
    // Pending: no kubelet runs the Jobs) has just passed.
    let job_pods: Api<Pod> = Api::namespaced(client.clone(), op);
    settle(&job_pods, shape.selected).await?;
    let quiet = Counts::now(&client).await?;
    let (cpu0, rss0) = (cpu_seconds(pid)?, rss_now_kib(pid)?);
    create_pods(&pods, shape, "churn", 0..CHURN).await?;
    pods.delete_collection(&grace_0(), &ListParams::default().labels("app=churn"))
        .await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let churned = Counts::now(&client).await?;
    let (cpu1, rss1) = (cpu_seconds(pid)?, rss_now_kib(pid)?);

    Row::print_header();
    per_node.print(shape.selected);
    per_pod.print(shape.selected);
    let churn_requests = churned.operator - quiet.operator;
    let churn_rss_mb = (rss1 as f64 - rss0 as f64) / 1024.0;
    println!(
        "churn: {CHURN} unrelated pods created and deleted: operator API requests +{churn_requests}, \
         RSS {churn_rss_mb:+.1} MB, CPU {:.2} s",
        cpu1 - cpu0
    );
    let churn_ok = churn_requests == 0.0 && churn_rss_mb.abs() <= 5.0;
    println!("churn costs no API request and under 5 MB: {churn_ok}");
    // O(nodes): a create per Job, and a bounded number of list and status requests.
    let node_ok = per_node.seconds <= 3.0
        && per_node.rss_mb <= 64.0
        && per_node.requests <= 2.0 * per_node.jobs as f64 + 20.0;
    println!(
        "per node: all {} Jobs within 3 s, RSS within 64 MB, at most 2 requests per Job and 20 more: {node_ok}",
        per_node.jobs
    );
    Ok(churn_ok && node_ok)
}

/// Waits until the Jobs' `expected` pods exist, the operator has made no request for 5 s,
/// and then its next (periodic) reconcile has come and gone.
async fn settle(job_pods: &Api<Pod>, expected: usize) -> anyhow::Result<()> {
    let start = Instant::now();
    let within = |limit: u64, what: &str| {
        anyhow::ensure!(
            start.elapsed() < Duration::from_secs(limit),
            "{what} after {limit} s"
        );
        Ok(())
    };
    while job_pods
        .list_metadata(&ListParams::default())
        .await?
        .items
        .len()
        < expected
    {
        within(400, "the Jobs' pods are not all there")?;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let mut last = (metric(&scrape()?, REQUESTS), Instant::now());
    while last.1.elapsed() < Duration::from_secs(5) {
        within(460, "the operator is not quiet")?;
        tokio::time::sleep(Duration::from_millis(250)).await;
        let now = metric(&scrape()?, REQUESTS);
        if now != last.0 {
            last = (now, Instant::now());
        }
    }
    while metric(&scrape()?, REQUESTS) == last.0 {
        within(520, "no periodic reconcile")?;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    Ok(())
}

/// The operator's request count and the apiserver's (every client's, from its /metrics).
struct Counts {
    operator: f64,
    apiserver: f64,
}

impl Counts {
    async fn now(client: &Client) -> anyhow::Result<Self> {
        Ok(Self {
            operator: metric(&scrape()?, REQUESTS),
            apiserver: apiserver_requests(client).await?,
        })
    }
}

/// The sum of `apiserver_request_total` over all its series.
async fn apiserver_requests(client: &Client) -> anyhow::Result<f64> {
    let text = client
        .request_text(http::Request::get("/metrics").body(Vec::new())?)
        .await?;
    Ok(text
        .lines()
        .filter(|l| l.starts_with("apiserver_request_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum())
}

/// Creates pods `prefix-I` for I in `range`, bound round-robin to the Nodes and Running;
/// `pod` pods are labelled `app=web` when selected and `app=other` otherwise, `churn` pods
/// `app=churn`.
async fn create_pods(
    pods: &Api<Pod>,
    shape: &Shape,
    prefix: &str,
    range: std::ops::Range<usize>,
) -> anyhow::Result<()> {
    futures::stream::iter(range)
        .map(|i| async move {
            let name = format!("{prefix}-{i}");
            let app = match prefix {
                "pod" if shape.is_selected(i) => "web",
                "pod" => "other",
                other => other,
            };
            let pod: Pod = serde_json::from_value(json!({
                "metadata": {"name": name, "labels": {"app": app}},
                "spec": {"nodeName": Shape::node(i % shape.nodes),
                         "containers": [{"name": "app", "image": "localhost/snoopy/busybox:1"}]},
            }))?;
            pods.create(&PostParams::default(), &pod).await?;
            let ip = format!(
                "10.{}.{}.{}",
                100 + i / 62_500,
                (i / 250) % 250,
                1 + i % 250
            );
            let status = json!({"status": {"phase": "Running", "podIP": ip}});
            pods.patch_status(&name, &PatchParams::default(), &Patch::Merge(&status))
                .await?;
            anyhow::Ok(())
        })
        .buffer_unordered(CONCURRENCY)
        .try_collect::<Vec<()>>()
        .await?;
    Ok(())
}

fn grace_0() -> DeleteParams {
    DeleteParams {
        grace_period_seconds: Some(0),
        ..Default::default()
    }
}

/// Stops the operator and removes what the bench made. Pods on kubelet-less Nodes are
/// deleted with grace 0 (no kubelet would confirm a graceful end); the SnoopyJob's finalizer
/// is dropped, as the stopped operator cannot run it.
async fn cleanup(
    client: &Client,
    op: &str,
    ns: &str,
    mut operator: std::process::Child,
    shape: &Shape,
) -> anyhow::Result<()> {
    operator.kill()?;
    operator.wait()?;
    let sjs: Api<SnoopyJob> = Api::namespaced(client.clone(), ns);
    let unfinalize = json!({"metadata": {"finalizers": null}});
    for mode in [Mode::Node, Mode::Pod] {
        let _ = sjs
            .patch(
                mode.cr_name(),
                &PatchParams::default(),
                &Patch::Merge(&unfinalize),
            )
            .await;
        let _ = sjs.delete(mode.cr_name(), &DeleteParams::default()).await;
    }
    let jobs: Api<Job> = Api::namespaced(client.clone(), op);
    let _ = jobs
        .delete_collection(&DeleteParams::background(), &ListParams::default())
        .await;
    for namespace in [ns, op] {
        let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
        let _ = pods
            .delete_collection(&grace_0(), &ListParams::default())
            .await;
    }
    let namespaces: Api<Namespace> = Api::all(client.clone());
    for namespace in [ns, op] {
        let _ = namespaces.delete(namespace, &DeleteParams::default()).await;
    }
    let nodes: Api<Node> = Api::all(client.clone());
    for i in 0..shape.nodes {
        let _ = nodes
            .delete(&Shape::node(i), &DeleteParams::default())
            .await;
    }
    Ok(())
}
