//! `SnoopyJob` (`snoopy.fennecproject.io/v1alpha1`): the full API.

// Several `printcolumn(...)` entries share keys such as `type_`: that is the kube derive's
// syntax, not a duplicated attribute.
#![allow(clippy::duplicated_attributes)]

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::CaptureStatus;

/// Run a tool "as" every pod that matches the selectors: one Job per target pod, on that
/// pod's node, now or on a cron schedule.
#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "snoopy.fennecproject.io",
    version = "v1alpha1",
    kind = "SnoopyJob",
    namespaced,
    status = "CaptureStatus",
    shortname = "sj",
    category = "snoopy",
    printcolumn(name = "Tool", type_ = "string", json_path = ".status.tool"),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(name = "Targets", type_ = "integer", json_path = ".status.targetCount"),
    printcolumn(name = "Succeeded", type_ = "integer", json_path = ".status.succeeded"),
    printcolumn(
        name = "Schedule",
        type_ = "string",
        json_path = ".spec.schedule",
        priority = "1"
    ),
    printcolumn(
        name = "Last run",
        type_ = "date",
        json_path = ".status.lastScheduleTime",
        priority = "1"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct SnoopyJobSpec {
    /// The namespace of the target pods. Exactly one of `targetNamespace` and
    /// `namespaceSelector` is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_namespace: Option<String>,
    /// Namespaces (by label) whose pods are targets, instead of one `targetNamespace`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_selector: Option<LabelSelector>,
    /// Which pods are targets (a standard label selector; an empty one matches every pod).
    pub pod_selector: LabelSelector,
    /// Only pods running on nodes with all of these labels are targets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_selector: Option<BTreeMap<String, String>>,
    /// What runs in each Job: exactly one tool.
    pub tool: ToolSpec,
    /// A cron schedule (5 fields, UTC): the operator starts a run per tick. Without one the
    /// SnoopyJob runs once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    /// `snapshot` (default): the pods that match when a run starts. `follow`: pods that start
    /// matching later get their own Job too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub targets: Option<TargetMode>,
    /// `pod`: one Job per target pod. `node`: one Job per node, serving every target pod on
    /// it from one process (capture: one pcapng with an interface per pod; flows: each
    /// pod's flows metered on its own side; each pod's counts in `status.targets`; with
    /// `targets: follow` the node's Job picks up pods that start matching on its node
    /// itself; not for exec). Default: `node` for capture and flows once a node holds the
    /// operator's threshold of targets (4 unless the admin sets
    /// `SNOOPY_NODE_JOB_THRESHOLD`) when a run starts, else `pod`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jobs_per: Option<JobsPer>,
    /// Where results go: the Job logs (default), a volume, and/or a Kafka topic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<OutputSpec>,
    /// Passed to every Job: how long it may run before it is stopped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub active_deadline_seconds: Option<i64>,
    /// Passed to every Job: delete it this long after it finished (needs the
    /// TTLAfterFinished feature gate on Kubernetes 1.20).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub ttl_seconds_after_finished: Option<i32>,
    /// While true no new Jobs (or runs) are started; running ones go on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspend: Option<bool>,
}

/// The tool a SnoopyJob runs; exactly one field is set.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ToolSpec {
    /// Capture packets (podtracer capture).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capture: Option<CaptureTool>,
    /// Record flows (podtracer flows).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flows: Option<FlowsTool>,
    /// Run a host tool in the pod's network namespace (podtracer exec).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exec: Option<ExecTool>,
}

/// `podtracer capture` options.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CaptureTool {
    /// Interface inside the pod (default: `eth0`; `any` for all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<String>,
    /// A tcpdump filter expression (at most 4096 bytes); it is compiled before any Job is
    /// created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 4096))]
    pub filter: Option<String>,
    /// Bytes kept of each packet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 262144))]
    pub snaplen: Option<u32>,
    /// Stop after this many packets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub packet_count: Option<i64>,
    /// Stop after this long (`30s`, `5m`, `1h`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
    /// Output format (default: `text` for logs, `pcapng` for a volume).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<CaptureFormat>,
    /// Volume outputs only: start a new file when the current one is larger than this many
    /// megabytes (millions of bytes: podtracer's and tcpdump's `-C`). A file exceeds it by
    /// at most one packet. Default: the operator's bound per target (1 GiB unless the admin
    /// sets `SNOOPY_MAX_CAPTURE_BYTES`) divided by `fileCount`, less that one packet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_file_size: Option<u64>,
    /// Volume outputs only: also start a new file every this many seconds (`-G`). The files
    /// stay the ring's: each period starts again at the ring's first file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub rotate_every: Option<u64>,
    /// Volume outputs only: keep a ring of this many files, the oldest overwritten (`-W`;
    /// default 10). `maxFileSize` × `fileCount` must fit in the operator's bound per target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 1000))]
    pub file_count: Option<u32>,
}

/// Capture output formats, as podtracer's `--format`.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum CaptureFormat {
    /// tcpdump-style lines.
    Text,
    /// One JSON object per packet.
    Json,
    /// pcap file.
    Pcap,
    /// pcapng file.
    Pcapng,
}

/// `podtracer flows` options.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FlowsTool {
    /// Stop after this long (`30s`, `5m`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
    /// Print the flow table this often.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<String>,
}

/// `podtracer exec`: a host program run in the pod's network namespace.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExecTool {
    /// The program (e.g. `iperf3`, `ip`, `ss`), looked up in the podtracer image's PATH.
    pub command: String,
    /// Its arguments.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
}

/// Which pods a run targets.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema, Default)]
#[serde(rename_all = "lowercase")]
pub enum TargetMode {
    /// The pods that match when the run starts.
    #[default]
    Snapshot,
    /// Also pods that start matching later.
    Follow,
}

/// How many Jobs a run creates.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum JobsPer {
    /// One Job per target pod.
    Pod,
    /// One Job per node with target pods.
    Node,
}

/// Where a Job's results go.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OutputSpec {
    /// Write into a volume as `NS_POD_RUN.pcapng` instead of the log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume: Option<VolumeOutput>,
    /// Send packets (capture) or flow records (flows) to a Kafka topic, keyed by the target
    /// pod (`NS/POD`). Combines with `volume` (a local pcapng copy as well); not for exec.
    /// Capture and flows Jobs with Kafka output use the node's network (`hostNetwork`) so
    /// they reach brokers outside the pod network; the capture socket is still opened in
    /// the target pod's network namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kafka: Option<KafkaOutput>,
}

/// A Kafka topic for results (podtracer's `--sink kafka://…`).
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KafkaOutput {
    /// Bootstrap brokers as `HOST:PORT` (a DNS name, an IPv4 address or a bracketed IPv6
    /// address, and a port), as reachable from the node the Job runs on.
    pub brokers: Vec<String>,
    /// The topic (letters, digits, `.`, `_`, `-`; it must exist). Default:
    /// `snoopy.packets` for capture, `snoopy.flows` for flows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
    /// Connect with TLS (`kafkas://`), trusting the CA in a Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<KafkaTls>,
    /// Authenticate with SASL, credentials from a Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sasl: Option<KafkaSasl>,
}

/// TLS to the brokers; the PEM files come from a Secret mounted read-only into the Job.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KafkaTls {
    /// The Secret, in the operator's namespace (Jobs run there and can only mount Secrets
    /// of their own namespace).
    pub secret_name: String,
    /// The Secret's key holding the PEM CA certificate(s) that signed the brokers'
    /// certificates (default `ca.crt`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_key: Option<String>,
    /// For mutual TLS: the key holding the PEM client certificate (with `keyKey`; e.g.
    /// `tls.crt`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_key: Option<String>,
    /// For mutual TLS: the key holding the client certificate's PEM private key (with
    /// `certKey`; e.g. `tls.key`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_key: Option<String>,
}

/// SASL authentication; the user name and password come from a Secret.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KafkaSasl {
    /// The mechanism: `PLAIN` (use it only with TLS), `SCRAM-SHA-256` or `SCRAM-SHA-512`.
    pub mechanism: SaslMechanism,
    /// The Secret, in the operator's namespace (where the Jobs run).
    pub secret_name: String,
    /// The Secret's key holding the user name (default `username`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username_key: Option<String>,
    /// The Secret's key holding the password (default `password`); the Job reads it from
    /// a read-only file, never from its command line or spec.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_key: Option<String>,
}

/// SASL mechanisms podtracer speaks.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum SaslMechanism {
    /// RFC 4616 user name and password in clear (inside TLS).
    #[serde(rename = "PLAIN")]
    Plain,
    /// RFC 7677 SCRAM with SHA-256.
    #[serde(rename = "SCRAM-SHA-256")]
    ScramSha256,
    /// SCRAM with SHA-512.
    #[serde(rename = "SCRAM-SHA-512")]
    ScramSha512,
}

impl SaslMechanism {
    /// The name podtracer's `SNOOPY_KAFKA_SASL_MECHANISM` takes.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Plain => "PLAIN",
            Self::ScramSha256 => "SCRAM-SHA-256",
            Self::ScramSha512 => "SCRAM-SHA-512",
        }
    }
}

/// A volume for results; exactly one source is set.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VolumeOutput {
    /// A PersistentVolumeClaim in the operator's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persistent_volume_claim: Option<PvcOutput>,
    /// A directory on the target pod's node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_path: Option<HostPathOutput>,
}

/// A PVC for results.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PvcOutput {
    /// The claim's name (in the operator's namespace: Jobs run there).
    pub claim_name: String,
}

/// A node directory for results: always the CR's own, `PREFIX/NAMESPACE/NAME/` under the
/// prefix the operator's admin sets (default `/var/lib/snoopy`), created when missing.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HostPathOutput {
    /// An optional subdirectory of the CR's directory (relative: `captures`, `a/b`); an
    /// absolute path or `..` is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    pub path: Option<String>,
}
