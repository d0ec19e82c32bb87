//! Find Kubernetes pods on a node through the container runtime's CRI v1 socket.
//!
//! On a node, users name pods, not PIDs. The runtime (containerd, CRI-O, cri-dockerd) knows
//! every pod through the CRI gRPC API — the socket kubelet uses — so Snoopy needs no API
//! server and no kubeconfig to go from `--pod web -n shop` to the pod's network namespace.
//! `podtracer` uses this crate for that step, then `snoopy-netns` to enter the namespace and
//! `snoopy-capture` to capture; this crate depends on neither.
//!
//! ```no_run
//! use snoopy_cri::{Endpoint, LabelSelector, PodQuery, RuntimeClient};
//!
//! # async fn demo() -> snoopy_cri::Result<()> {
//! // --runtime-endpoint, else $CONTAINER_RUNTIME_ENDPOINT, else the usual sockets.
//! let client = RuntimeClient::connect_or_detect(None).await?;
//! for pod in client.list_pods(&PodQuery::named("shop", "web").with_container_pids()).await? {
//!     println!("{} ip={:?} netns={:?}", pod.qualified_name(), pod.ip, pod.netns_path);
//!     for c in &pod.containers {
//!         println!("  {} {} pid={:?}", c.name, c.state, c.pid);
//!     }
//! }
//! let selector = LabelSelector::parse("app in (web,api),tier!=db")?;
//! let pods = client.list_pods(&PodQuery::selected(Some("shop".into()), selector)).await?;
//! # let _ = pods; Ok(()) }
//! ```
//!
//! A blocking facade is in [`blocking`].
//!
//! # How a lookup maps to CRI calls
//!
//! One connection; `Version` on connect (to tell a CRI runtime from any other socket), then
//! * `ListPodSandbox` with the runtime-side filter: state `READY` (unless
//!   [`PodQuery::include_not_ready`]) and the exact labels `io.kubernetes.pod.namespace`,
//!   `io.kubernetes.pod.name` and the selector's `key=value` terms; the rest of the selector
//!   is checked here;
//! * then, concurrently, `ListContainers` (filtered by sandbox when one pod matched) and one
//!   verbose `PodSandboxStatus` per pod (pod IP, network namespace path, pause PID);
//! * only with [`PodQuery::container_pids`], one verbose `ContainerStatus` per running container.
//!
//! # CRI facts this relies on (containerd 1.6/1.7, CRI-O 1.2x)
//!
//! * kubelet labels every sandbox `io.kubernetes.pod.name`, `io.kubernetes.pod.namespace`,
//!   `io.kubernetes.pod.uid` (plus the pod's own labels) and every container
//!   `io.kubernetes.container.name`; the sandbox metadata repeats name/namespace/uid.
//! * Pod IP: `PodSandboxStatus.status.network.ip` (more in `additional_ips`).
//! * `hostNetwork: true`: `status.linux.namespaces.options.network == NODE`, and the runtime
//!   spec has no network namespace entry.
//! * Verbose info: `info["info"]` is a JSON string in both runtimes, in both `ContainerStatus`
//!   and `PodSandboxStatus`; `pid` is a host PID (0 = none); the network namespace is
//!   `runtimeSpec.linux.namespaces[type == "network"].path` — for a containerd sandbox
//!   `/var/run/netns/cni-<uuid>`, in a containerd container `/proc/<pause pid>/ns/net`, for
//!   CRI-O `/var/run/netns/<uuid>` in both. CRI-O pods without an infra container report
//!   sandbox `pid: 0`. See the table in the `info` module source and the recorded examples in
//!   `tests/data/`. CRI-O is not packaged for Debian 12, so its shape is tested with those
//!   fixtures (written from CRI-O's `containerInfo` / sandbox info structs), not against a
//!   live CRI-O.
//! * When the runtime gives no verbose info (or no `pid`), the PID comes from procfs: the
//!   process whose `/proc/PID/cgroup` names the container id (the sandbox id for the pause
//!   process), and whose parent is outside that cgroup.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod blocking;
mod client;
mod endpoint;
mod error;
mod info;
mod pod;
mod procfs;
mod selector;
#[cfg(feature = "testing")]
pub mod testing;

pub use client::{DEFAULT_TIMEOUT, RuntimeClient, RuntimeVersion};
pub use endpoint::{DEFAULT_SOCKETS, ENDPOINT_ENV, Endpoint};
pub use error::{Error, Result};
pub use pod::{
    CONTAINER_NAME_LABEL, Container, ContainerState, POD_NAME_LABEL, POD_NAMESPACE_LABEL,
    POD_UID_LABEL, Pod, PodQuery,
};
pub use procfs::pid_of_container;
pub use selector::{LabelSelector, Requirement, SelectorError};
