//! What the operator is configured with (flags / environment of its Deployment).
//!
//! Besides how Jobs are built, this is the admin's policy: the ceiling of what users' CRs
//! may ask for. Within it, each CR gets what its author's own RBAC allows, checked by the
//! admission webhook ([`crate::webhook`], [`crate::access`]); a CR the webhook did not
//! check gets the fail-closed rules (own namespace, no exec, no Secret or PVC references).

use snoopy_netns::privileges::{DEFAULT_EXEC_ALLOWLIST, ExecAllowlist};

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
    /// Policy: what CRs may ask for.
    pub policy: Policy,
    /// Job defaults and bounds.
    pub bounds: Limits,
}

/// The admin's rules for CRs (checked when a CR is planned; a CR that breaks one gets a
/// `Degraded` condition naming the rule and creates no Job).
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// Whether a CR may target pods outside its own namespace (`targetNamespace` of another
    /// namespace, or any `namespaceSelector`), for authors who may `create pods/exec` there.
    /// Default true.
    pub allow_cross_namespace: bool,
    /// Whether `tool.exec` is allowed at all (for authors who may `create pods/exec` in the
    /// target namespace). Default true.
    pub allow_exec: bool,
    /// The programs `exec` may run and the capabilities each keeps; podtracer enforces the
    /// same list again in the Job (`--allow`).
    pub exec_allowlist: ExecAllowlist,
    /// Whether a CR may name Secrets of the operator's namespace (Kafka TLS / SASL) that
    /// its author may `get`. Default true.
    pub allow_secret_references: bool,
    /// Whether a CR may name PVCs of the operator's namespace that its author may `get`.
    /// Default true.
    pub allow_pvc: bool,
    /// hostPath outputs go to `PREFIX/NAMESPACE/NAME[/path]` on the node; `None` refuses
    /// hostPath outputs. Default `/var/lib/snoopy`.
    pub host_path_prefix: Option<String>,
    /// Kafka brokers CRs may send to, as `HOST:PORT` or `HOST` (any port); empty = any.
    pub kafka_brokers: Vec<String>,
}

/// Bounds and defaults for every CR's Jobs and status.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// At most this many targets (Jobs) per CR and run; more matching pods get no Job and
    /// the CR a `TargetLimitReached` condition. Default 500.
    pub max_targets: usize,
    /// At most this many entries in `status.targets` (the counts cover all). Default 100.
    pub max_status_targets: usize,
    /// A capture CR without `jobsPer` gets one Job per node when a run starts with at
    /// least this many targets on one node. Default 4.
    pub node_job_threshold: usize,
    /// `activeDeadlineSeconds` of exec and flows Jobs whose CR sets none (they need not end
    /// by themselves). Default 3600.
    pub default_deadline_seconds: i64,
    /// `ttlSecondsAfterFinished` of Jobs whose CR sets none. Default 86400.
    pub default_ttl_seconds: i32,
    /// At most this many bytes on disk per target of a volume capture: every such Job
    /// writes a ring of files (podtracer's `-C` and `-W`) that fits, and a CR asking for a
    /// larger ring gets a `CaptureTooLarge` condition and no Job. Default 1 GiB.
    pub max_capture_bytes: u64,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            allow_cross_namespace: true,
            allow_exec: true,
            exec_allowlist: DEFAULT_EXEC_ALLOWLIST
                .parse()
                .expect("the default allowlist parses"),
            allow_secret_references: true,
            allow_pvc: true,
            host_path_prefix: Some(DEFAULT_HOST_PATH_PREFIX.into()),
            kafka_brokers: Vec::new(),
        }
    }
}

impl Policy {
    /// The admin's switches all off: no CR may target other namespaces, use exec or name
    /// Secrets or PVCs, whoever wrote it (the allowlist and the hostPath prefix stay).
    pub fn closed() -> Self {
        Self {
            allow_cross_namespace: false,
            allow_exec: false,
            allow_secret_references: false,
            allow_pvc: false,
            ..Self::default()
        }
    }
}

/// The default [`Limits::max_capture_bytes`]: 1 GiB per target.
pub const DEFAULT_MAX_CAPTURE_BYTES: u64 = 1 << 30;

/// The default `Policy::host_path_prefix`.
pub const DEFAULT_HOST_PATH_PREFIX: &str = "/var/lib/snoopy";

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_targets: 500,
            node_job_threshold: 4,
            max_status_targets: 100,
            default_deadline_seconds: 3600,
            default_ttl_seconds: 86_400,
            max_capture_bytes: DEFAULT_MAX_CAPTURE_BYTES,
        }
    }
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
            policy: Policy::default(),
            bounds: Limits::default(),
        }
    }
}

/// Capabilities an exec Job has on top of [`Settings::capabilities`]: podtracer needs them
/// to drop the program to nobody with only its allowlist entry's capabilities
/// (`setgroups`/`setresgid`, `setresuid`, `PR_CAPBSET_DROP`).
pub const EXEC_DROP_CAPABILITIES: [&str; 3] = ["SETUID", "SETGID", "SETPCAP"];

impl Settings {
    /// The socket's path on the node (the endpoint without `unix://`).
    pub fn runtime_socket_path(&self) -> &str {
        self.runtime_endpoint
            .strip_prefix("unix://")
            .unwrap_or(&self.runtime_endpoint)
    }
}
