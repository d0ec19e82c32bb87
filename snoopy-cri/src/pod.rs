//! What a lookup returns: pods with their containers, PIDs and network namespace.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;

use crate::selector::LabelSelector;

/// Label kubelet puts on every sandbox: the pod's name.
pub const POD_NAME_LABEL: &str = "io.kubernetes.pod.name";
/// Label kubelet puts on every sandbox: the pod's namespace.
pub const POD_NAMESPACE_LABEL: &str = "io.kubernetes.pod.namespace";
/// Label kubelet puts on every sandbox: the pod's UID.
pub const POD_UID_LABEL: &str = "io.kubernetes.pod.uid";
/// Label kubelet puts on every container: the container's name in the pod spec.
pub const CONTAINER_NAME_LABEL: &str = "io.kubernetes.container.name";

/// Which pods to look up.
#[derive(Debug, Clone, Default)]
pub struct PodQuery {
    /// Only pods of this namespace; `None` = every namespace.
    pub namespace: Option<String>,
    /// Only the pod with this name.
    pub name: Option<String>,
    /// Only pods whose labels match.
    pub selector: Option<LabelSelector>,
    /// Also return sandboxes that are not ready (stopped pods, earlier attempts).
    pub include_not_ready: bool,
    /// Also resolve each running container's host PID (one more call per container);
    /// capturing needs only the pod's network namespace, which is always resolved.
    pub container_pids: bool,
}

impl PodQuery {
    /// Every ready pod on the node.
    pub fn all() -> Self {
        Self::default()
    }

    /// The pod `name` in `namespace`.
    pub fn named(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        PodQuery {
            namespace: Some(namespace.into()),
            name: Some(name.into()),
            ..Self::default()
        }
    }

    /// The pods matching `selector`, in `namespace` (`None` = every namespace).
    pub fn selected(namespace: Option<String>, selector: LabelSelector) -> Self {
        PodQuery {
            namespace,
            selector: Some(selector),
            ..Self::default()
        }
    }

    /// Also return sandboxes that are not ready.
    pub fn include_not_ready(mut self) -> Self {
        self.include_not_ready = true;
        self
    }

    /// Also resolve the host PID of every running container.
    pub fn with_container_pids(mut self) -> Self {
        self.container_pids = true;
        self
    }

    /// Whether a sandbox's identity and labels satisfy the query (state is filtered apart).
    pub(crate) fn accepts(
        &self,
        namespace: &str,
        name: &str,
        labels: &HashMap<String, String>,
    ) -> bool {
        self.namespace.as_deref().is_none_or(|ns| ns == namespace)
            && self.name.as_deref().is_none_or(|n| n == name)
            && self.selector.as_ref().is_none_or(|s| s.matches(labels))
    }
}

/// A pod as the node's runtime knows it: one pod sandbox and its containers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pod {
    /// Kubernetes namespace.
    pub namespace: String,
    /// Pod name.
    pub name: String,
    /// Pod UID.
    pub uid: String,
    /// Sandbox attempt (kubelet makes a new sandbox when the old one dies).
    pub attempt: u32,
    /// The sandbox's labels: kubelet's `io.kubernetes.pod.*` ones plus the pod's own.
    pub labels: HashMap<String, String>,
    /// The sandbox id (CRI's `PodSandboxId`).
    pub sandbox_id: String,
    /// Whether the sandbox is ready (its network is set up and its infra process runs).
    pub ready: bool,
    /// Creation time, nanoseconds since the Unix epoch.
    pub created_at: i64,
    /// The pod's primary IP, when it has one.
    pub ip: Option<IpAddr>,
    /// Further IPs (dual stack).
    pub additional_ips: Vec<IpAddr>,
    /// The pod shares the node's network namespace (`hostNetwork: true`): capturing "as the
    /// pod" is capturing on the host.
    pub host_network: bool,
    /// The pod's network namespace file: a pinned path such as `/var/run/netns/cni-…`, or
    /// `/proc/<sandbox pid>/ns/net`. `None` for host-network pods or when unknown.
    pub netns_path: Option<PathBuf>,
    /// Host PID of the sandbox's infra ("pause") process, when it has one.
    pub sandbox_pid: Option<u32>,
    /// The pod's containers, all states, sorted by name then newest first.
    pub containers: Vec<Container>,
}

impl Pod {
    /// The newest container with this name (kubelet keeps exited earlier attempts).
    pub fn container(&self, name: &str) -> Option<&Container> {
        self.containers.iter().find(|c| c.name == name)
    }

    /// The running containers.
    pub fn running(&self) -> impl Iterator<Item = &Container> {
        self.containers
            .iter()
            .filter(|c| c.state == ContainerState::Running)
    }

    /// `namespace/name`, as kubectl prints it.
    pub fn qualified_name(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

/// One container of a pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Container {
    /// The container's name in the pod spec.
    pub name: String,
    /// The runtime's container id.
    pub id: String,
    /// Its state.
    pub state: ContainerState,
    /// Host PID of its init process: resolved for running containers when asked
    /// ([`PodQuery::container_pids`] or [`crate::RuntimeClient::container_pid`]).
    pub pid: Option<u32>,
    /// The image as the pod spec names it.
    pub image: String,
    /// Restart attempt.
    pub attempt: u32,
    /// Creation time, nanoseconds since the Unix epoch.
    pub created_at: i64,
}

/// The state of a container, as CRI reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ContainerState {
    /// Created, not started yet.
    Created,
    /// Running.
    Running,
    /// Exited.
    Exited,
    /// The runtime does not know.
    Unknown,
}

impl ContainerState {
    pub(crate) fn from_cri(value: i32) -> Self {
        use k8s_cri::v1::ContainerState as Cri;
        match Cri::try_from(value) {
            Ok(Cri::ContainerCreated) => ContainerState::Created,
            Ok(Cri::ContainerRunning) => ContainerState::Running,
            Ok(Cri::ContainerExited) => ContainerState::Exited,
            _ => ContainerState::Unknown,
        }
    }
}

impl std::fmt::Display for ContainerState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ContainerState::Created => "created",
            ContainerState::Running => "running",
            ContainerState::Exited => "exited",
            ContainerState::Unknown => "unknown",
        })
    }
}
