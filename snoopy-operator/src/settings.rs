//! What the operator is configured with (flags / environment of its Deployment).

/// Operator settings that shape every Job.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// The namespace the operator runs in; Jobs are created there.
    pub namespace: String,
    /// The image with `podtracer` (and the host tools `exec` may run).
    pub podtracer_image: String,
    /// `Always`, `IfNotPresent` or `Never` (the testbed imports images locally: `Never`).
    pub image_pull_policy: String,
    /// The node's container runtime socket, as a CRI endpoint (`unix:///…`).
    pub runtime_endpoint: String,
    /// Capabilities the capture container gets (every other one is dropped).
    pub capabilities: Vec<String>,
    /// Container resource requests: CPU, memory.
    pub requests: (String, String),
    /// Container resource limits: CPU, memory.
    pub limits: (String, String),
    /// How many runs of a scheduled SnoopyJob keep their Jobs and status entries.
    pub history_runs: usize,
    /// Only serve CRs in this namespace (all namespaces when `None`).
    pub watch_namespace: Option<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            namespace: "snoopy-operator".into(),
            podtracer_image: "localhost/snoopy/podtracer:latest".into(),
            image_pull_policy: "IfNotPresent".into(),
            runtime_endpoint: "unix:///run/containerd/containerd.sock".into(),
            // NET_RAW: the AF_PACKET socket. SYS_ADMIN: setns into the pod's namespace.
            // SYS_PTRACE: open /proc/PID/ns/net of a process owned by another user.
            capabilities: vec!["NET_RAW".into(), "SYS_ADMIN".into(), "SYS_PTRACE".into()],
            requests: ("50m".into(), "32Mi".into()),
            limits: ("1".into(), "256Mi".into()),
            history_runs: 3,
            watch_namespace: None,
        }
    }
}

impl Settings {
    /// The socket's path on the node (the endpoint without `unix://`).
    pub fn runtime_socket_path(&self) -> &str {
        self.runtime_endpoint
            .strip_prefix("unix://")
            .unwrap_or(&self.runtime_endpoint)
    }
}
