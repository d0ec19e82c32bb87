//! The status both custom resources share: derived from the Jobs on every reconcile.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Status of a Tcpdump or SnoopyJob.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CaptureStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Summary of all targets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,
    /// The tool the Jobs run (`capture`, `flows`, `exec`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool: Option<String>,
    /// `Ready` (Jobs created for every target) and `Degraded` (something is wrong with the
    /// spec or the targets: the reason says what).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// Number of targets (all runs).
    #[serde(default)]
    pub target_count: i32,
    /// Number of targets whose Job succeeded.
    #[serde(default)]
    pub succeeded: i32,
    /// Number of targets whose Job failed or whose pod went away.
    #[serde(default)]
    pub failed: i32,
    /// The start of the newest scheduled run (RFC 3339), for scheduled SnoopyJobs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_schedule_time: Option<String>,
    /// When the next scheduled run starts (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_schedule_time: Option<String>,
    /// How many targets have no entry in `targets` (the operator keeps at most a set number,
    /// problems first; the counts above cover every target).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub targets_omitted: i32,
    /// One entry per target pod and run (bounded: see `targetsOmitted`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<TargetStatus>,
}

fn is_zero(n: &i32) -> bool {
    *n == 0
}

/// Overall phase.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum Phase {
    /// Nothing started yet (no targets, suspended, or waiting for the first tick).
    Pending,
    /// At least one Job is running.
    Running,
    /// Every Job finished and succeeded.
    Succeeded,
    /// Every Job finished and at least one did not succeed.
    Failed,
    /// The spec cannot be run (see the `Degraded` condition).
    Invalid,
    /// Scheduled: waiting between runs.
    Scheduled,
}

/// A condition in the usual Kubernetes shape.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// `Ready` or `Degraded`.
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: ConditionStatus,
    /// A CamelCase word saying why.
    pub reason: String,
    /// A sentence for humans.
    pub message: String,
    /// When `status` last changed (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<String>,
    /// The generation this condition was computed for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

/// A condition's truth value.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum ConditionStatus {
    /// It holds.
    True,
    /// It does not hold.
    False,
    /// Not known yet.
    Unknown,
}

/// One target pod (in one run) and its Job.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TargetStatus {
    /// The target pod's namespace.
    pub namespace: String,
    /// The target pod's name.
    pub pod: String,
    /// The target pod's uid (a pod re-created under the same name is a new target).
    pub pod_uid: String,
    /// The node the pod (and so its Job) runs on.
    pub node: String,
    /// The run this entry belongs to (`once`, or the tick's Unix time for schedules).
    pub run: String,
    /// The Job's name, in the operator's namespace.
    pub job: String,
    /// Where the Job is.
    pub phase: TargetPhase,
    /// Why (for Failed and Gone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Details for humans.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Packets captured, as reported by podtracer when the Job ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub packets_captured: Option<u64>,
    /// Packets the kernel dropped, as reported by podtracer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub packets_dropped: Option<u64>,
    /// Packets (capture) or records (flows) the Kafka brokers acknowledged, as reported by
    /// podtracer when the Job ended (with `output.kafka`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kafka_sent: Option<u64>,
    /// Packets or records never sent to Kafka: dropped because the buffer was full while
    /// the brokers were slow or away, plus those still buffered when the Job had to end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kafka_dropped: Option<u64>,
    /// Produce attempts that failed and were retried (a broker unreachable for a while).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kafka_failed_attempts: Option<u64>,
    /// When the Job started (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<String>,
    /// When the Job finished (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_time: Option<String>,
    /// The files the Job wrote to its volume output (names in the CR's directory: hostPath
    /// `PREFIX/NAMESPACE/NAME/`, or the PVC's root), from podtracer's report; a ring's
    /// files each once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files: Option<Vec<String>>,
    /// Files written but not listed in `files` (the report that carries them is bounded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files_omitted: Option<u32>,
}

/// A target's phase.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema, Default)]
pub enum TargetPhase {
    /// The Job is not created yet or its pod has not started.
    #[default]
    Pending,
    /// The Job's pod is running.
    Running,
    /// The Job completed.
    Succeeded,
    /// The Job failed.
    Failed,
    /// The target pod went away before its Job finished.
    Gone,
}

impl TargetPhase {
    /// Whether this target will not change any more.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::Gone)
    }
}
