//! A real kube-apiserver for the tests (from `testbed/k8s/control-plane.sh`), and helpers
//! that act as the parts that are not there: a kubelet marking pods Running, and podtracer
//! finishing a Job's pod with its termination message.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Namespace, Node, Pod};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::events::Reporter;
use kube::{Client, ResourceExt};
use serde_json::json;
use snoopy_operator::controller::{self, Context};
use snoopy_operator::metrics::Metrics;
use snoopy_operator::settings::Settings;
use snoopy_operator::stamp::{self, StampKey, Subject};

pub const HINT: &str =
    "run testbed/k8s/control-plane.sh up; eval $(testbed/k8s/control-plane.sh env)";

/// A client for the testbed apiserver; fails (never skips) when there is none.
pub async fn client() -> Client {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_test_writer()
        .try_init();
    assert!(
        std::env::var_os("KUBECONFIG").is_some(),
        "KUBECONFIG is not set: {HINT}"
    );
    let client = Client::try_default()
        .await
        .unwrap_or_else(|e| panic!("no Kubernetes client ({e}): {HINT}"));
    client
        .apiserver_version()
        .await
        .unwrap_or_else(|e| panic!("the API server does not answer ({e}): {HINT}"));
    install_crds(&client).await;
    client
}

/// Applies the committed CRDs (server-side apply) and waits until they are served.
pub async fn install_crds(client: &Client) {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    for (_, crd) in snoopy_operator::crd::all() {
        let name = crd.name_any();
        api.patch(
            &name,
            &PatchParams::apply("snoopy-tests").force(),
            &Patch::Apply(&crd),
        )
        .await
        .unwrap();
        wait_for(
            Duration::from_secs(20),
            &format!("CRD {name} established"),
            || {
                let api = api.clone();
                let name = name.clone();
                async move {
                    let crd = api.get(&name).await.ok()?;
                    crd.status?
                        .conditions?
                        .iter()
                        .any(|c| c.type_ == "Established" && c.status == "True")
                        .then_some(())
                }
            },
        )
        .await;
    }
}

/// A fresh namespace `PREFIX-<unique>`.
pub async fn namespace(client: &Client, prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let name = format!(
        "{prefix}-{:x}",
        (nanos ^ u128::from(std::process::id())) & 0xff_ffff_ffff
    );
    let api: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
    api.create(&PostParams::default(), &ns).await.unwrap();
    // Pods are admitted only once the namespace's default ServiceAccount has its token.
    let sas: Api<k8s_openapi::api::core::v1::ServiceAccount> =
        Api::namespaced(client.clone(), &name);
    wait_for(
        Duration::from_secs(30),
        &format!("ServiceAccount default in {name}"),
        || {
            let sas = sas.clone();
            async move {
                sas.get_opt("default")
                    .await
                    .ok()??
                    .secrets
                    .filter(|s| !s.is_empty())
                    .map(|_| ())
            }
        },
    )
    .await;
    name
}

/// Deletes a namespace (its CRs should be gone first: their finalizer needs the operator).
pub async fn delete_namespace(client: &Client, name: &str) {
    let api: Api<Namespace> = Api::all(client.clone());
    let _ = api.delete(name, &DeleteParams::default()).await;
}

/// The Node object `name`, created if absent. Without it the controller-manager's PodGC
/// force-deletes every pod bound to `name` as orphaned, 40-60 s after it was created: a
/// test that waits that long (a schedule's first tick) would see its target vanish.
pub async fn ensure_node(client: &Client, name: &str) {
    let api: Api<Node> = Api::all(client.clone());
    let node: Node = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
    match api.create(&PostParams::default(), &node).await {
        Ok(_) => {}
        Err(kube::Error::Api(e)) if e.code == 409 => {}
        Err(e) => panic!("creating Node {name}: {e}"),
    }
}

/// A pod bound to `node` (whose Node object exists) and marked Running, as a kubelet would.
pub async fn running_pod(
    client: &Client,
    ns: &str,
    name: &str,
    labels: &[(&str, &str)],
    node: &str,
    ip: &str,
) -> Pod {
    ensure_node(client, node).await;
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    let labels: BTreeMap<&str, &str> = labels.iter().copied().collect();
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "nodeName": node,
            "containers": [{"name": "app", "image": "localhost/snoopy/busybox:1", "command": ["sleep", "3600"]}],
        },
    }))
    .unwrap();
    api.create(&PostParams::default(), &pod).await.unwrap();
    let status = json!({"status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
        "conditions": [{"type": "Ready", "status": "True"}]}});
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
        .await
        .unwrap()
}

/// Deletes a pod at once (there is no kubelet to wait for).
pub async fn delete_pod_now(client: &Client, ns: &str, name: &str) {
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    api.delete(
        name,
        &DeleteParams {
            grace_period_seconds: Some(0),
            ..DeleteParams::default()
        },
    )
    .await
    .unwrap();
}

/// Ends every pod of `job` as podtracer would: Succeeded (or Failed), with `message` as the
/// container's termination message.
pub async fn finish_job_pods(
    client: &Client,
    op_ns: &str,
    job: &str,
    succeeded: bool,
    message: &str,
) {
    let api: Api<Pod> = Api::namespaced(client.clone(), op_ns);
    let pods = wait_for(
        Duration::from_secs(30),
        &format!("pods of Job {job}"),
        || {
            let api = api.clone();
            async move {
                let pods = api
                    .list(&ListParams::default().labels(&format!("job-name={job}")))
                    .await
                    .ok()?;
                (!pods.items.is_empty()).then_some(pods.items)
            }
        },
    )
    .await;
    let now = jiff::Timestamp::now().to_string();
    for pod in pods {
        let status = json!({"status": {
            "phase": if succeeded { "Succeeded" } else { "Failed" },
            "containerStatuses": [{
                "name": "podtracer", "ready": false, "restartCount": 0,
                "image": "localhost/snoopy/podtracer:latest", "imageID": "",
                "state": {"terminated": {"exitCode": if succeeded { 0 } else { 1 }, "reason": if succeeded { "Completed" } else { "Error" },
                    "message": message, "startedAt": now, "finishedAt": now}},
            }],
        }});
        api.patch_status(
            &pod.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&status),
        )
        .await
        .unwrap();
    }
}

/// Acts as the kubelet for pod deletion: a pod bound to a node is only removed once its
/// kubelet confirms, and there is none here, so pods marked for deletion in `ns` are removed
/// at once. Stops when dropped.
pub struct Reaper(tokio::task::JoinHandle<()>);

impl Reaper {
    pub fn start(client: &Client, ns: &str) -> Self {
        let api: Api<Pod> = Api::namespaced(client.clone(), ns);
        Self(tokio::spawn(async move {
            loop {
                if let Ok(pods) = api.list(&ListParams::default()).await {
                    for p in pods
                        .items
                        .iter()
                        .filter(|p| p.metadata.deletion_timestamp.is_some())
                    {
                        let dp = DeleteParams {
                            grace_period_seconds: Some(0),
                            ..DeleteParams::default()
                        };
                        let _ = api.delete(&p.name_any(), &dp).await;
                    }
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }))
    }
}

impl Drop for Reaper {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The Jobs of a CR in the operator's namespace.
/// The CR's status, if it exists and has one.
pub async fn status_of<K: controller::CaptureResource>(
    api: &Api<K>,
    name: &str,
) -> Option<snoopy_operator::crd::CaptureStatus> {
    api.get(name).await.ok()?.capture_status().cloned()
}

pub async fn jobs_of(client: &Client, op_ns: &str, cr_uid: &str) -> Vec<Job> {
    let api: Api<Job> = Api::namespaced(client.clone(), op_ns);
    let mut jobs = api
        .list(&ListParams::default().labels(&snoopy_operator::job::owner_selector(cr_uid)))
        .await
        .unwrap()
        .items;
    jobs.sort_by_key(ResourceExt::name_any);
    jobs
}

/// An operator running in this process, serving CRs of `watch_ns` and making Jobs in
/// `op_ns`; stopped when dropped.
pub struct Operator {
    task: tokio::task::JoinHandle<()>,
    /// Its metrics.
    pub metrics: Arc<Metrics>,
}

impl Operator {
    /// With the operator's default settings (the fail-closed policy).
    pub fn start(client: &Client, op_ns: &str, watch_ns: &str) -> Self {
        Self::start_with(client, op_ns, watch_ns, Settings::default())
    }

    /// With `settings` (namespace and watched namespace set from the arguments), and no
    /// webhook: every CR gets the fail-closed rules.
    pub fn start_with(client: &Client, op_ns: &str, watch_ns: &str, settings: Settings) -> Self {
        Self::start_full(client, op_ns, watch_ns, settings, None)
    }

    /// With `settings`, verifying stamps with `key` (the webhook's, or the test's own).
    pub fn start_full(
        client: &Client,
        op_ns: &str,
        watch_ns: &str,
        settings: Settings,
        key: Option<StampKey>,
    ) -> Self {
        let metrics = Arc::new(Metrics::default());
        let mut ctx = Context::new(
            client.clone(),
            Settings {
                namespace: op_ns.into(),
                watch_namespace: Some(watch_ns.into()),
                ..settings
            },
            metrics.clone(),
            Reporter {
                controller: "snoopy-operator-test".into(),
                instance: None,
            },
        );
        if let Some(key) = key {
            ctx = ctx.with_stamp_key(key);
        }
        let ctx = Arc::new(ctx);
        Self {
            task: tokio::spawn(controller::run(ctx)),
            metrics,
        }
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Polls `check` every 100 ms until it returns `Some`, or panics naming `what`.
pub async fn wait_for<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Stamps `cr` as the webhook would after checking `user` (for tests of the reconciler that
/// do not run the webhook; `tests/webhook.rs` runs the real one).
pub fn stamp_as<K: controller::CaptureResource>(cr: &mut K, key: &StampKey, user: &str) {
    let spec = cr.spec_json();
    let kind = K::kind(&()).to_string();
    let namespace = cr.namespace().unwrap();
    let value = key.sign(
        Subject {
            kind: &kind,
            namespace: &namespace,
            spec_json: &spec,
        },
        user,
        false,
        "2026-12-03T00:00:00Z",
    );
    cr.annotations_mut().insert(stamp::ANNOTATION.into(), value);
}

/// A SnoopyJob `ns/name` capturing 10 packets of the pods labelled `networkMonitor: "true"`
/// in `ns`, with the fields of `extra` set over that spec.
pub fn snoopyjob(
    name: &str,
    ns: &str,
    extra: serde_json::Value,
) -> snoopy_operator::crd::SnoopyJob {
    let mut spec = json!({"targetNamespace": ns, "podSelector": {"matchLabels": {"networkMonitor": "true"}},
        "tool": {"capture": {"packetCount": 10}}});
    for (k, v) in extra.as_object().unwrap() {
        spec[k] = v.clone();
    }
    serde_json::from_value(json!({
        "apiVersion": "snoopy.fennecproject.io/v1alpha1", "kind": "SnoopyJob",
        "metadata": {"name": name, "namespace": ns}, "spec": spec,
    }))
    .unwrap()
}
