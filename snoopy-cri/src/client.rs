//! The CRI v1 client: one HTTP/2 connection over the runtime's unix socket.

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use hyper_util::rt::TokioIo;
use k8s_cri::v1 as cri;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use tokio::net::UnixStream;
use tokio::task::JoinSet;
use tonic::transport::{Channel, Uri};

use crate::endpoint::{DEFAULT_SOCKETS, Endpoint};
use crate::error::{Error, Result, source_chain};
use crate::info::{self, NetworkNs, VerboseInfo};
use crate::pod::{
    CONTAINER_NAME_LABEL, Container, ContainerState, POD_NAME_LABEL, POD_NAMESPACE_LABEL,
    POD_UID_LABEL, Pod, PodQuery,
};
use crate::procfs;

/// How long one call may take before it is an error. A healthy runtime answers in
/// milliseconds; a hung one must not hang podtracer.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long auto-detection waits for each candidate socket.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// What the runtime says it is (CRI `Version`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeVersion {
    /// e.g. `containerd`, `cri-o`.
    pub runtime_name: String,
    /// e.g. `1.6.20~ds1`.
    pub runtime_version: String,
    /// The CRI API version it speaks, e.g. `v1`.
    pub runtime_api_version: String,
}

/// A connected CRI v1 runtime client. Cheap to clone: clones share the connection.
#[derive(Debug, Clone)]
pub struct RuntimeClient {
    rpc: RuntimeServiceClient<Channel>,
    endpoint: Endpoint,
    version: RuntimeVersion,
    timeout: Duration,
    proc_root: PathBuf,
}

impl RuntimeClient {
    /// Connects to the runtime at `endpoint` and checks with `Version` that it speaks CRI v1.
    pub async fn connect(endpoint: Endpoint) -> Result<Self> {
        Self::connect_timeout(endpoint, DEFAULT_TIMEOUT).await
    }

    /// Connects to the given endpoint, else to the one in [`crate::ENDPOINT_ENV`], else to
    /// the first of [`DEFAULT_SOCKETS`] that answers. This is what a CLI's
    /// `--runtime-endpoint` option maps to.
    pub async fn connect_or_detect(endpoint: Option<Endpoint>) -> Result<Self> {
        match endpoint {
            Some(endpoint) => Self::connect(endpoint).await,
            None => Self::connect_auto().await,
        }
    }

    /// Connects to the endpoint in [`crate::ENDPOINT_ENV`] if set (and fails if that one does
    /// not answer: an explicit choice is never silently replaced), else probes
    /// [`DEFAULT_SOCKETS`].
    pub async fn connect_auto() -> Result<Self> {
        if let Some(endpoint) = Endpoint::from_env()? {
            return Self::connect(endpoint).await;
        }
        Self::probe(DEFAULT_SOCKETS.iter().map(PathBuf::from)).await
    }

    /// Tries each socket in turn and returns the first that answers as a CRI v1 runtime;
    /// when none does, the error lists every path with the reason it was passed over.
    pub async fn probe(paths: impl IntoIterator<Item = PathBuf>) -> Result<Self> {
        let mut tried = Vec::new();
        for path in paths {
            // A missing socket is the common case: say so without a connect attempt.
            match std::fs::metadata(&path) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    tried.push((path, "no such file".to_owned()));
                    continue;
                }
                Err(e) => {
                    tried.push((path, e.to_string()));
                    continue;
                }
                Ok(_) => {}
            }
            match Self::connect_timeout(Endpoint::from_path(path.clone()), PROBE_TIMEOUT).await {
                Ok(client) => return Ok(client),
                Err(e) => tried.push((path, e.to_string())),
            }
        }
        Err(Error::NoRuntime { tried })
    }

    /// Like [`RuntimeClient::connect`], with `timeout` for the connection and for every call.
    pub async fn connect_timeout(endpoint: Endpoint, timeout: Duration) -> Result<Self> {
        let path = endpoint.path().to_path_buf();
        let socket = path.clone();
        // The URI is required by tonic but never used: the connector below dials the socket.
        let uri =
            tonic::transport::Endpoint::from_static("http://localhost").connect_timeout(timeout);
        let channel = uri.connect_with_connector(tower::service_fn(move |_: Uri| {
            let socket = socket.clone();
            async move { UnixStream::connect(socket).await.map(TokioIo::new) }
        }));
        let channel = match tokio::time::timeout(timeout, channel).await {
            Ok(Ok(channel)) => channel,
            Ok(Err(source)) => return Err(Error::Connect { path, source }),
            Err(_) => {
                return Err(Error::Timeout {
                    call: "connect",
                    path,
                    after: timeout,
                });
            }
        };
        let mut rpc = RuntimeServiceClient::new(channel);
        let request = cri::VersionRequest {
            version: "v1".to_owned(),
        };
        let version = match tokio::time::timeout(timeout, rpc.version(request)).await {
            Ok(Ok(response)) => response.into_inner(),
            Ok(Err(status)) => {
                return Err(Error::NotCri {
                    path,
                    reason: describe_status(&status),
                });
            }
            Err(_) => {
                return Err(Error::NotCri {
                    path,
                    reason: format!("no answer within {timeout:?}"),
                });
            }
        };
        Ok(RuntimeClient {
            rpc,
            endpoint,
            version: RuntimeVersion {
                runtime_name: version.runtime_name,
                runtime_version: version.runtime_version,
                runtime_api_version: version.runtime_api_version,
            },
            timeout,
            proc_root: PathBuf::from("/proc"),
        })
    }

    /// The endpoint this client talks to.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// What the runtime said it is when the client connected.
    pub fn version(&self) -> &RuntimeVersion {
        &self.version
    }

    /// Uses another procfs root for the PID fallback (a node's `/proc` mounted elsewhere,
    /// e.g. `/host/proc` in a pod).
    pub fn with_proc_root(mut self, proc_root: impl Into<PathBuf>) -> Self {
        self.proc_root = proc_root.into();
        self
    }

    /// Runs one call with the client's timeout, turning failures into errors naming the call.
    pub(crate) async fn call<T>(
        &self,
        call: &'static str,
        fut: impl Future<Output = std::result::Result<tonic::Response<T>, tonic::Status>>,
    ) -> Result<T> {
        match tokio::time::timeout(self.timeout, fut).await {
            Ok(Ok(response)) => Ok(response.into_inner()),
            Ok(Err(source)) => Err(Error::Rpc {
                call,
                path: self.endpoint.path().to_path_buf(),
                source,
            }),
            Err(_) => Err(Error::Timeout {
                call,
                path: self.endpoint.path().to_path_buf(),
                after: self.timeout,
            }),
        }
    }

    /// A handle for raw CRI calls (shares the connection).
    pub(crate) fn rpc(&self) -> RuntimeServiceClient<Channel> {
        self.rpc.clone()
    }

    /// Finds pods. Costs one `ListPodSandbox`; when any pod matches, one `ListContainers`
    /// and one verbose `PodSandboxStatus` per pod (all concurrent on the one connection);
    /// with [`PodQuery::container_pids`], one verbose `ContainerStatus` per running container.
    pub async fn list_pods(&self, query: &PodQuery) -> Result<Vec<Pod>> {
        let sandboxes = self.matching_sandboxes(query).await?;
        if sandboxes.is_empty() {
            return Ok(Vec::new());
        }

        let containers = {
            // One pod (the common `--pod NAME` case): let the runtime filter.
            let filter = match sandboxes.as_slice() {
                [only] => Some(cri::ContainerFilter {
                    pod_sandbox_id: only.id.clone(),
                    ..Default::default()
                }),
                _ => None,
            };
            let mut rpc = self.rpc();
            let this = self.clone();
            async move {
                this.call(
                    "ListContainers",
                    rpc.list_containers(cri::ListContainersRequest { filter }),
                )
                .await
            }
        };
        let statuses = {
            let mut set = JoinSet::new();
            for sandbox in &sandboxes {
                let this = self.clone();
                let id = sandbox.id.clone();
                set.spawn(async move {
                    let status = this.sandbox_status(&id).await;
                    (id, status)
                });
            }
            async move {
                let mut out = HashMap::new();
                while let Some(joined) = set.join_next().await {
                    let (id, status) = joined.expect("sandbox status task does not panic");
                    out.insert(id, status?);
                }
                Ok::<_, Error>(out)
            }
        };
        let (containers, statuses) = tokio::join!(containers, statuses);
        let mut containers = containers?.containers;
        let mut statuses = statuses?;

        let mut pods: Vec<Pod> = sandboxes
            .into_iter()
            .filter_map(|sandbox| {
                // A sandbox removed between the list and its status: it is gone, skip it.
                let status = statuses.remove(&sandbox.id)?;
                Some(self.assemble(sandbox, status, &mut containers))
            })
            .collect();

        if query.container_pids {
            self.resolve_pids(&mut pods).await?;
        }
        pods.sort_by(|a, b| {
            (
                a.namespace.as_str(),
                a.name.as_str(),
                std::cmp::Reverse(a.created_at),
            )
                .cmp(&(
                    b.namespace.as_str(),
                    b.name.as_str(),
                    std::cmp::Reverse(b.created_at),
                ))
        });
        Ok(pods)
    }

    /// The host PID of a running container: `pid` of the verbose `ContainerStatus`, or, when
    /// the runtime gives no verbose info, the process whose cgroup carries the container id.
    pub async fn container_pid(&self, container_id: &str) -> Result<Option<u32>> {
        let mut rpc = self.rpc();
        let response = self
            .call(
                "ContainerStatus",
                rpc.container_status(cri::ContainerStatusRequest {
                    container_id: container_id.to_owned(),
                    verbose: true,
                }),
            )
            .await?;
        let verbose = info::parse(&response.info).map_err(|source| Error::BadInfo {
            call: "ContainerStatus",
            id: container_id.to_owned(),
            source,
        })?;
        Ok(match verbose.and_then(|v| v.pid) {
            Some(pid) => Some(pid),
            None => procfs::pid_of_container(&self.proc_root, container_id),
        })
    }

    /// Fills in `pid` of every running container of the pods, concurrently.
    pub async fn resolve_pids(&self, pods: &mut [Pod]) -> Result<()> {
        let mut set = JoinSet::new();
        for (p, pod) in pods.iter().enumerate() {
            for (c, container) in pod.containers.iter().enumerate() {
                if container.state == ContainerState::Running && container.pid.is_none() {
                    let this = self.clone();
                    let id = container.id.clone();
                    set.spawn(async move { (p, c, this.container_pid(&id).await) });
                }
            }
        }
        while let Some(joined) = set.join_next().await {
            let (p, c, pid) = joined.expect("container status task does not panic");
            match pid {
                Ok(pid) => pods[p].containers[c].pid = pid,
                // Exited between the list and the status: it has no PID, which is the truth.
                Err(Error::Rpc { source, .. }) if source.code() == tonic::Code::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    async fn matching_sandboxes(&self, query: &PodQuery) -> Result<Vec<cri::PodSandbox>> {
        // The runtime filters on exact labels and on state; everything else is checked here.
        let mut labels = HashMap::new();
        if let Some(ns) = &query.namespace {
            labels.insert(POD_NAMESPACE_LABEL.to_owned(), ns.clone());
        }
        if let Some(name) = &query.name {
            labels.insert(POD_NAME_LABEL.to_owned(), name.clone());
        }
        if let Some(selector) = &query.selector {
            for (k, v) in selector.exact_matches() {
                labels.insert(k.to_owned(), v.to_owned());
            }
        }
        let state = (!query.include_not_ready).then_some(cri::PodSandboxStateValue {
            state: cri::PodSandboxState::SandboxReady as i32,
        });
        let filter = cri::PodSandboxFilter {
            state,
            label_selector: labels,
            ..Default::default()
        };
        let mut rpc = self.rpc();
        let items = self
            .call(
                "ListPodSandbox",
                rpc.list_pod_sandbox(cri::ListPodSandboxRequest {
                    filter: Some(filter),
                }),
            )
            .await?
            .items;
        Ok(items
            .into_iter()
            .filter(|s| {
                let (ns, name) = sandbox_identity(s.metadata.as_ref(), &s.labels);
                query.accepts(ns, name, &s.labels)
                    && (query.include_not_ready
                        || s.state == cri::PodSandboxState::SandboxReady as i32)
            })
            .collect())
    }

    async fn sandbox_status(
        &self,
        id: &str,
    ) -> Result<Option<(cri::PodSandboxStatus, Option<VerboseInfo>)>> {
        let mut rpc = self.rpc();
        let response = self
            .call(
                "PodSandboxStatus",
                rpc.pod_sandbox_status(cri::PodSandboxStatusRequest {
                    pod_sandbox_id: id.to_owned(),
                    verbose: true,
                }),
            )
            .await;
        let response = match response {
            Ok(response) => response,
            Err(Error::Rpc { source, .. }) if source.code() == tonic::Code::NotFound => {
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        let verbose = info::parse(&response.info).map_err(|source| Error::BadInfo {
            call: "PodSandboxStatus",
            id: id.to_owned(),
            source,
        })?;
        Ok(response.status.map(|status| (status, verbose)))
    }

    fn assemble(
        &self,
        sandbox: cri::PodSandbox,
        status: Option<(cri::PodSandboxStatus, Option<VerboseInfo>)>,
        containers: &mut Vec<cri::Container>,
    ) -> Pod {
        let (namespace, name) = sandbox_identity(sandbox.metadata.as_ref(), &sandbox.labels);
        let (namespace, name) = (namespace.to_owned(), name.to_owned());
        let meta = sandbox.metadata.clone().unwrap_or_default();
        let uid = if meta.uid.is_empty() {
            sandbox
                .labels
                .get(POD_UID_LABEL)
                .cloned()
                .unwrap_or_default()
        } else {
            meta.uid
        };

        let (status, verbose) = match status {
            Some((status, verbose)) => (Some(status), verbose),
            None => (None, None),
        };
        let network = status.as_ref().and_then(|s| s.network.as_ref());
        let ip = network.and_then(|n| n.ip.parse::<IpAddr>().ok());
        let additional_ips = network
            .map(|n| {
                n.additional_ips
                    .iter()
                    .filter_map(|ip| ip.ip.parse().ok())
                    .collect()
            })
            .unwrap_or_default();
        let node_network = status
            .as_ref()
            .and_then(|s| s.linux.as_ref())
            .and_then(|l| l.namespaces.as_ref())
            .and_then(|n| n.options.as_ref())
            .is_some_and(|o| o.network == cri::NamespaceMode::Node as i32);

        let ready = sandbox.state == cri::PodSandboxState::SandboxReady as i32;
        let verbose = verbose.unwrap_or_default();
        // No verbose PID: find the pause process by the sandbox id in its cgroup (the infra
        // container's id is the sandbox id in containerd and CRI-O). Only for ready sandboxes:
        // a stopped one has no process to find.
        let sandbox_pid = verbose.pid.or_else(|| {
            (ready && !node_network)
                .then(|| procfs::pid_of_container(&self.proc_root, &sandbox.id))
                .flatten()
        });
        let proc_netns = |pid: Option<u32>| pid.map(|p| PathBuf::from(format!("/proc/{p}/ns/net")));
        let (host_network, netns_path) = match verbose.network {
            NetworkNs::Path(path) => (false, Some(path)),
            NetworkNs::New => (false, proc_netns(sandbox_pid)),
            NetworkNs::Host => (true, None),
            NetworkNs::Unknown if node_network => (true, None),
            NetworkNs::Unknown => (false, proc_netns(sandbox_pid)),
        };

        let mut mine: Vec<Container> = Vec::new();
        containers.retain(|c| {
            if c.pod_sandbox_id != sandbox.id {
                return true;
            }
            let meta = c.metadata.clone().unwrap_or_default();
            mine.push(Container {
                name: if meta.name.is_empty() {
                    c.labels
                        .get(CONTAINER_NAME_LABEL)
                        .cloned()
                        .unwrap_or_default()
                } else {
                    meta.name
                },
                id: c.id.clone(),
                state: ContainerState::from_cri(c.state),
                pid: None,
                image: c
                    .image
                    .as_ref()
                    .map(|i| i.image.clone())
                    .unwrap_or_default(),
                attempt: meta.attempt,
                created_at: c.created_at,
            });
            false
        });
        mine.sort_by(|a, b| {
            (a.name.as_str(), std::cmp::Reverse(a.created_at))
                .cmp(&(b.name.as_str(), std::cmp::Reverse(b.created_at)))
        });

        Pod {
            namespace,
            name,
            uid,
            attempt: meta.attempt,
            labels: sandbox.labels,
            sandbox_id: sandbox.id,
            ready,
            created_at: sandbox.created_at,
            ip,
            additional_ips,
            host_network,
            netns_path,
            sandbox_pid,
            containers: mine,
        }
    }
}

/// A sandbox's namespace and name: CRI metadata first, kubelet's labels when it is empty.
fn sandbox_identity<'a>(
    meta: Option<&'a cri::PodSandboxMetadata>,
    labels: &'a HashMap<String, String>,
) -> (&'a str, &'a str) {
    let label = |key| labels.get(key).map(String::as_str).unwrap_or("");
    let ns = meta
        .map(|m| m.namespace.as_str())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| label(POD_NAMESPACE_LABEL));
    let name = meta
        .map(|m| m.name.as_str())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| label(POD_NAME_LABEL));
    (ns, name)
}

/// A status from the Version probe in words: a gRPC "unimplemented" means another gRPC
/// service; transport errors mean the peer does not speak HTTP/2 gRPC at all.
fn describe_status(status: &tonic::Status) -> String {
    let mut text = format!("{}: {}", status.code(), status.message());
    if let Some(source) = std::error::Error::source(status) {
        text.push_str(": ");
        text.push_str(&source_chain(source));
    }
    if status.code() == tonic::Code::Unimplemented {
        text.push_str(" (a gRPC server without the CRI v1 RuntimeService; is the runtime's CRI plugin enabled?)");
    }
    text
}

/// Fails to compile if the lookup future stops being `Send` (callers spawn it on tokio).
#[allow(dead_code)]
fn _assert_send<'a>(c: &'a RuntimeClient, q: &'a PodQuery) -> impl Send + 'a {
    c.list_pods(q)
}
