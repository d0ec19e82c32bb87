//! Test helper (feature `testing`): create pods through CRI the way kubelet does, so tests
//! get "Kubernetes pods" from a bare containerd without a cluster.
//!
//! The sandbox carries kubelet's `io.kubernetes.pod.{name,namespace,uid}` labels plus the pod's
//! own labels; each container carries `io.kubernetes.container.name` and the pod labels, as
//! kubelet sets them. Images must already be in the runtime (`testbed/images.sh import`):
//! nothing is pulled.
//!
//! ```no_run
//! # async fn demo(client: &snoopy_cri::RuntimeClient) -> snoopy_cri::Result<()> {
//! use snoopy_cri::testing::{PodCleanup, PodSpec};
//! let cleanup = PodCleanup::new(client.endpoint().clone());
//! let pod = client
//!     .create_pod(&PodSpec::new("shop", "web").labeled("app", "web").sleeper("main"))
//!     .await?;
//! cleanup.track(&pod.sandbox_id); // removed when `cleanup` drops, even on panic
//! # Ok(()) }
//! ```

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use k8s_cri::v1 as cri;

use crate::client::RuntimeClient;
use crate::endpoint::Endpoint;
use crate::error::Result;
use crate::pod::{CONTAINER_NAME_LABEL, POD_NAME_LABEL, POD_NAMESPACE_LABEL, POD_UID_LABEL};

/// The busybox image `testbed/images.sh` builds and imports.
pub const BUSYBOX_IMAGE: &str = "localhost/snoopy/busybox:1";

/// The TLS sidecar image `testbed/images.sh` builds and imports: busybox plus socat, with a
/// self-signed certificate and key in `/etc/tls/proxy.pem`.
pub const TLS_PROXY_IMAGE: &str = "localhost/snoopy/tls-proxy:1";

/// The cgroup parent of test pods: one subtree the testbed teardown knows to remove.
pub const CGROUP_PARENT: &str = "/snoopy-testbed";

/// A pod to create.
#[derive(Debug, Clone)]
pub struct PodSpec {
    /// Kubernetes namespace.
    pub namespace: String,
    /// Pod name.
    pub name: String,
    /// Pod UID (a fresh random-looking one by default).
    pub uid: String,
    /// The pod's own labels (kubelet's are added on top).
    pub labels: HashMap<String, String>,
    /// Containers, started in order.
    pub containers: Vec<ContainerSpec>,
}

/// A container of a [`PodSpec`].
#[derive(Debug, Clone)]
pub struct ContainerSpec {
    /// Container name.
    pub name: String,
    /// Image reference (must be present in the runtime).
    pub image: String,
    /// Command (argv); empty = the image's default.
    pub command: Vec<String>,
}

impl PodSpec {
    /// A pod with no containers yet.
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        PodSpec {
            namespace: namespace.into(),
            name: name.into(),
            uid: fresh_uid(),
            labels: HashMap::new(),
            containers: Vec::new(),
        }
    }

    /// Adds a label of the pod.
    pub fn labeled(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.insert(key.into(), value.into());
        self
    }

    /// Adds a container.
    pub fn container(
        mut self,
        name: impl Into<String>,
        image: impl Into<String>,
        command: &[&str],
    ) -> Self {
        self.containers.push(ContainerSpec {
            name: name.into(),
            image: image.into(),
            command: command.iter().map(|s| s.to_string()).collect(),
        });
        self
    }

    /// Adds a busybox container that just sleeps.
    pub fn sleeper(self, name: impl Into<String>) -> Self {
        self.container(name, BUSYBOX_IMAGE, &["/bin/sleep", "3600"])
    }

    fn kubelet_labels(&self) -> HashMap<String, String> {
        HashMap::from([
            (POD_NAME_LABEL.to_owned(), self.name.clone()),
            (POD_NAMESPACE_LABEL.to_owned(), self.namespace.clone()),
            (POD_UID_LABEL.to_owned(), self.uid.clone()),
        ])
    }

    /// The sandbox config kubelet would send for this pod.
    pub fn sandbox_config(&self) -> cri::PodSandboxConfig {
        let mut labels = self.labels.clone();
        labels.extend(self.kubelet_labels());
        cri::PodSandboxConfig {
            metadata: Some(cri::PodSandboxMetadata {
                name: self.name.clone(),
                uid: self.uid.clone(),
                namespace: self.namespace.clone(),
                attempt: 0,
            }),
            hostname: self.name.clone(),
            labels,
            linux: Some(cri::LinuxPodSandboxConfig {
                cgroup_parent: format!("{CGROUP_PARENT}/pod{}", self.uid),
                security_context: Some(cri::LinuxSandboxSecurityContext {
                    namespace_options: Some(cri::NamespaceOption {
                        network: cri::NamespaceMode::Pod as i32,
                        pid: cri::NamespaceMode::Container as i32,
                        ipc: cri::NamespaceMode::Pod as i32,
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn container_config(&self, spec: &ContainerSpec) -> cri::ContainerConfig {
        let mut labels = self.kubelet_labels();
        labels.insert(CONTAINER_NAME_LABEL.to_owned(), spec.name.clone());
        cri::ContainerConfig {
            metadata: Some(cri::ContainerMetadata {
                name: spec.name.clone(),
                attempt: 0,
            }),
            image: Some(cri::ImageSpec {
                image: spec.image.clone(),
                ..Default::default()
            }),
            command: spec.command.clone(),
            labels,
            linux: Some(cri::LinuxContainerConfig {
                // kubelet's default: the pod's network and IPC, a PID namespace of its own.
                security_context: Some(cri::LinuxContainerSecurityContext {
                    namespace_options: Some(cri::NamespaceOption {
                        network: cri::NamespaceMode::Pod as i32,
                        pid: cri::NamespaceMode::Container as i32,
                        ipc: cri::NamespaceMode::Pod as i32,
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }
}

/// Ids of a created pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedPod {
    /// The sandbox id.
    pub sandbox_id: String,
    /// `(container name, container id)`, in spec order.
    pub containers: Vec<(String, String)>,
}

impl RuntimeClient {
    /// Creates and starts a pod: `RunPodSandbox`, then `CreateContainer` + `StartContainer`
    /// for each container. On failure the half-made sandbox is removed again.
    pub async fn create_pod(&self, spec: &PodSpec) -> Result<CreatedPod> {
        let config = spec.sandbox_config();
        let mut rpc = self.rpc();
        let sandbox_id = self
            .call(
                "RunPodSandbox",
                rpc.run_pod_sandbox(cri::RunPodSandboxRequest {
                    config: Some(config.clone()),
                    runtime_handler: String::new(),
                }),
            )
            .await?
            .pod_sandbox_id;
        match self.start_containers(spec, &sandbox_id, &config).await {
            Ok(containers) => Ok(CreatedPod {
                sandbox_id,
                containers,
            }),
            Err(e) => {
                // Best effort: the error that matters is the one that made us clean up.
                let _ = self.remove_pod(&sandbox_id).await;
                Err(e)
            }
        }
    }

    async fn start_containers(
        &self,
        spec: &PodSpec,
        sandbox_id: &str,
        config: &cri::PodSandboxConfig,
    ) -> Result<Vec<(String, String)>> {
        let mut rpc = self.rpc();
        let mut out = Vec::new();
        for container in &spec.containers {
            let id = self
                .call(
                    "CreateContainer",
                    rpc.create_container(cri::CreateContainerRequest {
                        pod_sandbox_id: sandbox_id.to_owned(),
                        config: Some(spec.container_config(container)),
                        sandbox_config: Some(config.clone()),
                    }),
                )
                .await?
                .container_id;
            self.call(
                "StartContainer",
                rpc.start_container(cri::StartContainerRequest {
                    container_id: id.clone(),
                }),
            )
            .await?;
            out.push((container.name.clone(), id));
        }
        Ok(out)
    }

    /// Stops and removes a pod sandbox with its containers. A sandbox that is already gone
    /// is not an error.
    pub async fn remove_pod(&self, sandbox_id: &str) -> Result<()> {
        let mut rpc = self.rpc();
        let stop = self
            .call(
                "StopPodSandbox",
                rpc.stop_pod_sandbox(cri::StopPodSandboxRequest {
                    pod_sandbox_id: sandbox_id.to_owned(),
                }),
            )
            .await;
        match stop {
            Err(e) if e.is_not_found() => return Ok(()),
            other => other.map(drop)?,
        }
        match self
            .call(
                "RemovePodSandbox",
                rpc.remove_pod_sandbox(cri::RemovePodSandboxRequest {
                    pod_sandbox_id: sandbox_id.to_owned(),
                }),
            )
            .await
        {
            Err(e) if e.is_not_found() => Ok(()),
            other => other.map(drop),
        }
    }

    /// Stops a pod sandbox without removing it: it stays listed as not ready, as a pod that
    /// kubelet is tearing down or restarting.
    pub async fn stop_pod(&self, sandbox_id: &str) -> Result<()> {
        let mut rpc = self.rpc();
        self.call(
            "StopPodSandbox",
            rpc.stop_pod_sandbox(cri::StopPodSandboxRequest {
                pod_sandbox_id: sandbox_id.to_owned(),
            }),
        )
        .await
        .map(drop)
    }

    /// Stops and removes one container (the pod stays).
    pub async fn remove_container(&self, container_id: &str) -> Result<()> {
        let mut rpc = self.rpc();
        self.call(
            "StopContainer",
            rpc.stop_container(cri::StopContainerRequest {
                container_id: container_id.to_owned(),
                timeout: 0,
            }),
        )
        .await?;
        self.call(
            "RemoveContainer",
            rpc.remove_container(cri::RemoveContainerRequest {
                container_id: container_id.to_owned(),
            }),
        )
        .await
        .map(drop)
    }
}

/// Removes the tracked pods when dropped — also when a test panics. Removal runs on a
/// thread of its own with its own runtime and connection, so it works from inside or
/// outside an async context.
#[derive(Debug)]
pub struct PodCleanup {
    endpoint: Endpoint,
    sandboxes: Mutex<Vec<String>>,
}

impl PodCleanup {
    /// A cleanup for pods of the runtime at `endpoint`.
    pub fn new(endpoint: Endpoint) -> Self {
        PodCleanup {
            endpoint,
            sandboxes: Mutex::new(Vec::new()),
        }
    }

    /// Removes this sandbox on drop.
    pub fn track(&self, sandbox_id: &str) {
        self.sandboxes
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(sandbox_id.to_owned());
    }
}

impl Drop for PodCleanup {
    fn drop(&mut self) {
        let ids = std::mem::take(self.sandboxes.get_mut().unwrap_or_else(|p| p.into_inner()));
        if ids.is_empty() {
            return;
        }
        let endpoint = self.endpoint.clone();
        let result = std::thread::spawn(move || -> Result<()> {
            let client = crate::blocking::RuntimeClient::connect(endpoint)?;
            let mut first_error = None;
            for id in &ids {
                if let Err(e) = client.block_on(client.inner().remove_pod(id)) {
                    eprintln!("snoopy-cri testing: removing pod sandbox {id}: {e}");
                    first_error.get_or_insert(e);
                }
            }
            first_error.map_or(Ok(()), Err)
        })
        .join();
        match result {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("snoopy-cri testing: pod cleanup failed: {e}"),
            Err(_) => eprintln!("snoopy-cri testing: pod cleanup thread panicked"),
        }
    }
}

/// A UUID-shaped id that differs between calls and processes (no `uuid` dependency for a
/// test helper).
fn fresh_uid() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0) as u64;
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let a = nanos ^ (u64::from(std::process::id()) << 32);
    let b = n.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ nanos.rotate_left(17);
    format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        (a >> 32) as u32,
        (a >> 16) as u16,
        (a & 0xfff) as u16,
        (b >> 52) as u16 & 0xfff,
        b & 0xffff_ffff_ffff
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sandbox_config_has_kubelet_labels() {
        let spec = PodSpec::new("shop", "web")
            .labeled("app", "web")
            .sleeper("main");
        let config = spec.sandbox_config();
        assert_eq!(config.labels[POD_NAME_LABEL], "web");
        assert_eq!(config.labels[POD_NAMESPACE_LABEL], "shop");
        assert_eq!(config.labels[POD_UID_LABEL], spec.uid);
        assert_eq!(config.labels["app"], "web");
        let container = spec.container_config(&spec.containers[0]);
        assert_eq!(container.labels[CONTAINER_NAME_LABEL], "main");
        assert_eq!(container.image.unwrap().image, BUSYBOX_IMAGE);
    }

    #[test]
    fn uids_differ() {
        let a = fresh_uid();
        let b = fresh_uid();
        assert_ne!(a, b);
        assert_eq!(a.len(), 36, "{a}");
    }
}
