//! Pods for the tests: the containerd testbed, pods made through CRI as kubelet would.

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

use anyhow::{Context, Result, anyhow};
use snoopy_cri::testing::{BUSYBOX_IMAGE, PodCleanup, PodSpec};
use snoopy_cri::{Endpoint, PodQuery, RuntimeClient};

/// The testbed's CRI endpoint (`testbed/containerd.sh up`, idempotent, once per process).
pub fn endpoint() -> Result<Endpoint> {
    static ENDPOINT: OnceLock<Result<Endpoint, String>> = OnceLock::new();
    snoopy_testkit::require_root()?;
    ENDPOINT
        .get_or_init(|| {
            let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../testbed/containerd.sh");
            let out = Command::new(&script)
                .arg("up")
                .output()
                .map_err(|e| format!("running {}: {e}", script.display()))?;
            if !out.status.success() {
                return Err(format!(
                    "{} up failed: {}",
                    script.display(),
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
            let socket = String::from_utf8_lossy(&out.stdout)
                .lines()
                .last()
                .unwrap_or("")
                .trim()
                .to_string();
            Endpoint::parse(&socket).map_err(|e| e.to_string())
        })
        .clone()
        .map_err(|e| anyhow!("the containerd testbed is not available: {e}"))
}

/// A Kubernetes namespace name unique to this test.
pub fn unique_namespace(tag: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Pods made for one test, removed when it ends (pass or fail).
pub struct TestPods {
    pub runtime: tokio::runtime::Runtime,
    pub client: RuntimeClient,
    pub cleanup: PodCleanup,
    pub endpoint: Endpoint,
}

impl TestPods {
    pub fn new() -> Result<Self> {
        let endpoint = endpoint()?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let client = runtime.block_on(RuntimeClient::connect(endpoint.clone()))?;
        Ok(TestPods {
            cleanup: PodCleanup::new(endpoint.clone()),
            runtime,
            client,
            endpoint,
        })
    }

    /// The `--runtime-endpoint` argument for podtracer.
    pub fn endpoint_arg(&self) -> String {
        self.endpoint.to_string()
    }

    /// Creates a pod and returns its sandbox id and IP.
    pub fn create(&self, spec: PodSpec) -> Result<(String, IpAddr)> {
        let created = self.runtime.block_on(self.client.create_pod(&spec))?;
        self.cleanup.track(&created.sandbox_id);
        let pods = self.runtime.block_on(
            self.client
                .list_pods(&PodQuery::named(&spec.namespace, &spec.name)),
        )?;
        let ip = pods
            .first()
            .and_then(|p| p.ip)
            .with_context(|| format!("pod {}/{} has no IP", spec.namespace, spec.name))?;
        Ok((created.sandbox_id, ip))
    }

    /// A busybox pod that sleeps.
    pub fn sleeper(
        &self,
        namespace: &str,
        name: &str,
        labels: &[(&str, &str)],
    ) -> Result<(String, IpAddr)> {
        let mut spec = PodSpec::new(namespace, name).sleeper("main");
        for (k, v) in labels {
            spec = spec.labeled(*k, *v);
        }
        self.create(spec)
    }

    /// A busybox pod that pings `target` five times a second until removed.
    pub fn pinger(
        &self,
        namespace: &str,
        name: &str,
        labels: &[(&str, &str)],
        target: IpAddr,
    ) -> Result<(String, IpAddr)> {
        let target = target.to_string();
        let mut spec = PodSpec::new(namespace, name).container(
            "main",
            BUSYBOX_IMAGE,
            &["/bin/ping", "-i", "0.2", &target],
        );
        for (k, v) in labels {
            spec = spec.labeled(*k, *v);
        }
        self.create(spec)
    }

    /// Deletes a pod as kubelet would (stop, then remove the sandbox).
    pub fn delete(&self, sandbox_id: &str) -> Result<()> {
        Ok(self.runtime.block_on(self.client.remove_pod(sandbox_id))?)
    }
}
