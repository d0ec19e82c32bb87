//! A CR, validated and turned into what the reconciler acts on. Both kinds become a
//! [`Plan`]; everything that can be checked without the cluster is checked here, so an
//! invalid CR gets a condition and no Job is ever created for it.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use crate::crd::{
    CaptureFormat, CaptureTool, KafkaOutput, SaslMechanism, SnoopyJobSpec, TargetMode, TcpdumpSpec,
};
use crate::schedule::Schedule;
use crate::settings::{Policy, Settings};
use crate::{filter, selector};

/// Which namespaces hold the targets.
#[derive(Debug, Clone, PartialEq)]
pub enum Namespaces {
    /// One namespace, by name.
    Named(String),
    /// Every namespace whose labels match.
    Selector(LabelSelector),
}

/// What each Job runs.
#[derive(Debug, Clone, PartialEq)]
pub enum Tool {
    /// `podtracer capture`.
    Capture(Capture),
    /// `podtracer flows`.
    Flows {
        /// `--duration`.
        duration: Option<Duration>,
        /// `--interval`.
        interval: Option<Duration>,
    },
    /// `podtracer exec -- command args…`.
    Exec {
        /// The program.
        command: String,
        /// Its arguments.
        args: Vec<String>,
    },
}

impl Tool {
    /// `capture`, `flows` or `exec`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Capture(_) => "capture",
            Self::Flows { .. } => "flows",
            Self::Exec { .. } => "exec",
        }
    }
}

/// Capture options, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Capture {
    /// Interface in the pod.
    pub interface: String,
    /// Filter expression (checked).
    pub filter: Option<String>,
    /// Snapshot length.
    pub snaplen: Option<u32>,
    /// Packet count.
    pub count: Option<i64>,
    /// Duration.
    pub duration: Option<Duration>,
    /// Output format.
    pub format: CaptureFormat,
    /// The ring of files of a volume output (always set for one: no capture the operator
    /// starts grows past the admin's bound); `None` for the log and Kafka.
    pub ring: Option<Ring>,
}

/// A volume capture's files: podtracer's `-C SIZE -W N` (and `-G SECS`), sized so that
/// `N × (SIZE MB + one packet)` fits in [`Limits::max_capture_bytes`](crate::settings::Limits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ring {
    /// `-C`: a new file once the current one is larger than this many millions of bytes.
    pub file_size_mb: u64,
    /// `-W`: files in the ring, the oldest overwritten.
    pub file_count: u32,
    /// `-G`: a new file every this many seconds as well.
    pub rotate_every_secs: Option<u64>,
}

/// Files in a ring whose CR sets no `fileCount`.
pub const DEFAULT_FILE_COUNT: u32 = 10;

/// podtracer's snapshot length when the CR sets none (its `-s 0`).
const DEFAULT_SNAPLEN: u32 = snoopy_job::DEFAULT_SNAPLEN;

/// What a file may hold past `-C` besides one packet's data: podtracer checks the size
/// before each packet, so the last one's record (framing, options, padding) goes over, and
/// an interface block may be added later (`-i any`).
const RECORD_SLACK: u64 = 4096;

/// The smallest `SNOOPY_MAX_CAPTURE_BYTES`: one file of 1 MB plus a maximal packet.
pub const MIN_CAPTURE_BYTES: u64 = 1_000_000 + DEFAULT_SNAPLEN as u64 + RECORD_SLACK;

impl Ring {
    /// The most bytes this ring can leave on disk with packets of at most `snaplen` bytes.
    pub fn max_bytes(&self, snaplen: u32) -> u64 {
        u64::from(self.file_count).saturating_mul(
            self.file_size_mb
                .saturating_mul(1_000_000)
                .saturating_add(u64::from(snaplen) + RECORD_SLACK),
        )
    }
}

/// Where results go.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// The Job's log.
    Logs,
    /// A PVC (in the operator's namespace).
    Pvc(String),
    /// A directory on the node: always `PREFIX/NAMESPACE/NAME[/SUBPATH]` (the admin's prefix,
    /// the CR's own directory).
    HostPath(String),
}

/// The longest filter expression a CR may carry (also the CRD's `maxLength`).
pub const MAX_FILTER_LEN: usize = 4096;

/// The CR being planned: the namespace it lives in, its name (its hostPath directory), and
/// whether the admission webhook checked its author's permissions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CrRef<'a> {
    /// `metadata.namespace`.
    pub namespace: &'a str,
    /// `metadata.name`.
    pub name: &'a str,
    /// What the webhook's stamp says (or why there is none).
    pub authorization: &'a Authorization,
}

/// Whether the admission webhook checked, as the CR's author, everything the CR asks for
/// (the stamp in [`crate::stamp`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Authorization {
    /// A valid stamp: the author may `create pods/exec` in every target namespace other
    /// than the CR's own and, for `exec`, in the CR's own; may `get` every Secret and PVC
    /// the CR names.
    Checked {
        /// Who was checked.
        user: String,
        /// Whether they may `create pods/exec` in every namespace (hostNetwork targets).
        cluster_wide_exec: bool,
    },
    /// No valid stamp: the fail-closed rules (targets in the CR's own namespace only, no
    /// exec, no Secret or PVC references, no hostNetwork targets).
    Unchecked {
        /// Why (no annotation, forged, spec changed, webhook disabled).
        why: String,
    },
}

impl Authorization {
    /// Whether hostNetwork pods may be targets (they expose the whole node's traffic).
    pub fn allows_host_network(&self) -> bool {
        matches!(
            self,
            Self::Checked {
                cluster_wide_exec: true,
                ..
            }
        )
    }
}

/// A CR checked by the webhook for a user with every permission (for tests).
#[cfg(test)]
pub(crate) const CHECKED: Authorization = Authorization::Checked {
    user: String::new(),
    cluster_wide_exec: true,
};

/// Refuses `what` for a CR the webhook did not check.
fn needs_authorization(cr: CrRef<'_>, what: &str) -> Result<(), Invalid> {
    match cr.authorization {
        Authorization::Checked { .. } => Ok(()),
        Authorization::Unchecked { why } => Err(invalid(
            "NotAuthorized",
            format!(
                "{what} needs the permission check of Snoopy's admission webhook, and this CR has none ({why}); without it a CR may only capture or run flows on pods of its own namespace, with no exec and no Secret or PVC references. Apply it again while the webhook is installed"
            ),
        )),
    }
}

/// Kafka output, validated: what the Job's `--sink` and environment are made of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kafka {
    /// `HOST:PORT` each.
    pub brokers: Vec<String>,
    /// The topic (the tool's default when the spec names none).
    pub topic: String,
    /// TLS settings from a Secret.
    pub tls: Option<KafkaTls>,
    /// SASL settings from a Secret.
    pub sasl: Option<KafkaSasl>,
}

/// TLS files in a Secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaTls {
    /// The Secret (operator's namespace).
    pub secret_name: String,
    /// Key of the CA PEM.
    pub ca_key: String,
    /// Keys of the client certificate and its private key (mutual TLS).
    pub client: Option<(String, String)>,
}

/// SASL credentials in a Secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaSasl {
    /// The mechanism.
    pub mechanism: SaslMechanism,
    /// The Secret (operator's namespace).
    pub secret_name: String,
    /// Key of the user name.
    pub username_key: String,
    /// Key of the password.
    pub password_key: String,
}

/// A validated CR.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// Target namespaces.
    pub namespaces: Namespaces,
    /// Target pods.
    pub pod_selector: LabelSelector,
    /// Only pods on nodes with these labels.
    pub node_selector: BTreeMap<String, String>,
    /// The tool.
    pub tool: Tool,
    /// Cron schedule, if any.
    pub schedule: Option<Schedule>,
    /// Snapshot or follow.
    pub mode: TargetMode,
    /// Output.
    pub output: Output,
    /// Kafka output (besides the logs or the volume).
    pub kafka: Option<Kafka>,
    /// Job deadline.
    pub active_deadline_seconds: Option<i64>,
    /// Job TTL.
    pub ttl_seconds_after_finished: Option<i32>,
    /// No new Jobs while set.
    pub suspend: bool,
    /// Whether hostNetwork pods may be targets (their traffic is the node's): only when the
    /// webhook found that the author may `create pods/exec` in every namespace.
    pub host_network: bool,
    /// One Job per pod, per node, or chosen when a run starts.
    pub jobs_per: JobsPer,
}

/// How a run's Jobs are cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobsPer {
    /// One per target pod (the Tcpdump CR's, and exec's).
    Pod,
    /// One per node with targets.
    Node,
    /// Per node once a node holds the operator's threshold of targets, else per pod.
    Auto,
}

/// Why a CR cannot run; becomes the `Degraded` condition.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}: {message}")]
pub struct Invalid {
    /// CamelCase reason (`InvalidFilter`, `InvalidSchedule`, `InvalidSpec`).
    pub reason: &'static str,
    /// For humans.
    pub message: String,
}

fn invalid(reason: &'static str, message: impl Into<String>) -> Invalid {
    Invalid {
        reason,
        message: message.into(),
    }
}

impl Plan {
    /// Validates a `Tcpdump` against the admin's settings.
    pub fn for_tcpdump(
        spec: &TcpdumpSpec,
        cr: CrRef<'_>,
        settings: &Settings,
    ) -> Result<Self, Invalid> {
        check_namespace(&spec.target_namespace)?;
        check_same_namespace(&spec.target_namespace, cr, &settings.policy)?;
        let capture = Capture {
            interface: check_interface(&spec.interface_name)?,
            filter: None,
            snaplen: None,
            count: Some(check_positive("packetCount", spec.packet_count)?),
            duration: None,
            format: CaptureFormat::Text,
            ring: None,
        };
        Ok(Self {
            namespaces: Namespaces::Named(spec.target_namespace.clone()),
            pod_selector: selector::from_map(&spec.pod_label),
            node_selector: BTreeMap::new(),
            tool: Tool::Capture(capture),
            schedule: None,
            mode: TargetMode::Snapshot,
            output: Output::Logs,
            kafka: None,
            active_deadline_seconds: None,
            ttl_seconds_after_finished: Some(settings.bounds.default_ttl_seconds),
            suspend: false,
            host_network: cr.authorization.allows_host_network(),
            jobs_per: JobsPer::Pod,
        })
    }

    /// Validates a `SnoopyJob` against the admin's settings.
    pub fn for_snoopyjob(
        spec: &SnoopyJobSpec,
        cr: CrRef<'_>,
        settings: &Settings,
    ) -> Result<Self, Invalid> {
        let policy = &settings.policy;
        let namespaces = match (&spec.target_namespace, &spec.namespace_selector) {
            (Some(ns), None) => {
                check_namespace(ns)?;
                check_same_namespace(ns, cr, policy)?;
                Namespaces::Named(ns.clone())
            }
            (None, Some(sel)) => {
                selector::to_query(sel)
                    .map_err(|e| invalid("InvalidSpec", format!("namespaceSelector: {e}")))?;
                if !policy.allow_cross_namespace {
                    return Err(invalid(
                        "CrossNamespaceNotAllowed",
                        format!(
                            "namespaceSelector may select other namespaces than this CR's ({}); the operator's admin allows only targetNamespace: {} (SNOOPY_ALLOW_CROSS_NAMESPACE is false)",
                            cr.namespace, cr.namespace
                        ),
                    ));
                }
                needs_authorization(cr, "namespaceSelector")?;
                Namespaces::Selector(sel.clone())
            }
            _ => {
                return Err(invalid(
                    "InvalidSpec",
                    "set exactly one of targetNamespace and namespaceSelector",
                ));
            }
        };
        selector::to_query(&spec.pod_selector)
            .map_err(|e| invalid("InvalidSpec", format!("podSelector: {e}")))?;
        let output = match &spec.output.as_ref().and_then(|o| o.volume.clone()) {
            None => Output::Logs,
            Some(v) => match (&v.persistent_volume_claim, &v.host_path) {
                (Some(pvc), None) if !pvc.claim_name.is_empty() => {
                    if !policy.allow_pvc {
                        return Err(invalid(
                            "PvcNotAllowed",
                            format!(
                                "output.volume.persistentVolumeClaim {:?}: the operator's admin does not allow PVC references (SNOOPY_ALLOW_PVC is false); use hostPath or the log",
                                pvc.claim_name
                            ),
                        ));
                    }
                    needs_authorization(cr, "output.volume.persistentVolumeClaim")?;
                    Output::Pvc(pvc.claim_name.clone())
                }
                (None, Some(hp)) => Output::HostPath(host_path(hp.path.as_deref(), cr, policy)?),
                _ => {
                    return Err(invalid(
                        "InvalidSpec",
                        "output.volume: set exactly one of persistentVolumeClaim (with claimName) and hostPath",
                    ));
                }
            },
        };
        let kafka_spec = spec.output.as_ref().and_then(|o| o.kafka.as_ref());
        let tool = tool(spec, &output, kafka_spec.is_some(), cr, settings)?;
        let kafka = kafka_spec
            .map(|k| kafka(k, &tool, cr, policy))
            .transpose()?;
        let jobs_per = match (spec.jobs_per, &tool) {
            (Some(crate::crd::JobsPer::Pod), _) => JobsPer::Pod,
            (Some(crate::crd::JobsPer::Node), Tool::Capture(_) | Tool::Flows { .. }) => {
                JobsPer::Node
            }
            (Some(crate::crd::JobsPer::Node), other) => {
                return Err(invalid(
                    "InvalidSpec",
                    format!(
                        "jobsPer: node serves several pods from one process, which capture and flows do; {} runs one Job per pod (remove jobsPer or set it to pod)",
                        other.name()
                    ),
                ));
            }
            (None, Tool::Capture(_) | Tool::Flows { .. }) => JobsPer::Auto,
            (None, _) => JobsPer::Pod,
        };
        let default_deadline = matches!(tool, Tool::Exec { .. } | Tool::Flows { .. })
            .then_some(settings.bounds.default_deadline_seconds);
        let schedule = spec
            .schedule
            .as_deref()
            .map(Schedule::parse)
            .transpose()
            .map_err(|e| invalid("InvalidSchedule", e.to_string()))?;
        Ok(Self {
            namespaces,
            pod_selector: spec.pod_selector.clone(),
            node_selector: spec.node_selector.clone().unwrap_or_default(),
            tool,
            schedule,
            mode: spec.targets.unwrap_or_default(),
            output,
            kafka,
            active_deadline_seconds: spec.active_deadline_seconds.or(default_deadline),
            ttl_seconds_after_finished: spec
                .ttl_seconds_after_finished
                .or(Some(settings.bounds.default_ttl_seconds)),
            suspend: spec.suspend.unwrap_or(false),
            host_network: cr.authorization.allows_host_network(),
            jobs_per,
        })
    }
}

/// A target namespace other than the CR's own, unless the admin allows it.
fn check_same_namespace(target: &str, cr: CrRef<'_>, policy: &Policy) -> Result<(), Invalid> {
    if target == cr.namespace {
        return Ok(());
    }
    if policy.allow_cross_namespace {
        return needs_authorization(
            cr,
            &format!(
                "targetNamespace {target} (not this CR's namespace, {})",
                cr.namespace
            ),
        );
    }
    Err(invalid(
        "CrossNamespaceNotAllowed",
        format!(
            "targetNamespace {target} is not this CR's namespace ({}): the operator's admin allows only targets in the CR's own namespace (SNOOPY_ALLOW_CROSS_NAMESPACE is false); create the CR in {target}",
            cr.namespace
        ),
    ))
}

/// The node directory of a hostPath output: `PREFIX/NAMESPACE/NAME`, plus the spec's
/// relative `path` if any. Never a directory the user chooses outside the CR's own.
fn host_path(sub: Option<&str>, cr: CrRef<'_>, policy: &Policy) -> Result<String, Invalid> {
    let Some(prefix) = &policy.host_path_prefix else {
        return Err(invalid(
            "HostPathNotAllowed",
            "output.volume.hostPath: the operator's admin does not allow hostPath outputs (no SNOOPY_HOST_PATH_PREFIX)",
        ));
    };
    let mut dir = format!(
        "{}/{}/{}",
        prefix.trim_end_matches('/'),
        cr.namespace,
        cr.name
    );
    let asked = sub.unwrap_or("");
    let absolute = asked.starts_with('/');
    let sub = asked.trim_end_matches('/');
    if sub.is_empty() && !absolute {
        return Ok(dir);
    }
    let components_ok = sub.split('/').all(|c| {
        !c.is_empty()
            && c != "."
            && c != ".."
            && c.chars()
                .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '.' | '_' | '-'))
    });
    if absolute || !components_ok || sub.len() > 253 {
        return Err(invalid(
            "InvalidHostPath",
            format!(
                "output.volume.hostPath.path {asked:?}: hostPath outputs always go to {dir}/ on the node; path may only name a subdirectory in it (relative, letters, digits, '.', '_', '-', no '..'), not an absolute path"
            ),
        ));
    }
    dir.push('/');
    dir.push_str(sub);
    Ok(dir)
}

fn tool(
    spec: &SnoopyJobSpec,
    output: &Output,
    kafka: bool,
    cr: CrRef<'_>,
    settings: &Settings,
) -> Result<Tool, Invalid> {
    let policy = &settings.policy;
    let t = &spec.tool;
    match (&t.capture, &t.flows, &t.exec) {
        (Some(c), None, None) => {
            if let Some(f) = &c.filter
                && f.len() > MAX_FILTER_LEN
            {
                return Err(invalid(
                    "InvalidFilter",
                    format!("filter is {} bytes long; at most {MAX_FILTER_LEN}", f.len()),
                ));
            }
            if let Some(f) = &c.filter {
                filter::check(f)
                    .map_err(|e| invalid("InvalidFilter", format!("filter {f:?}: {e}")))?;
            }
            let duration = c.duration.as_deref().map(parse_duration).transpose()?;
            let format = c.format.unwrap_or(if *output == Output::Logs {
                CaptureFormat::Text
            } else {
                CaptureFormat::Pcapng
            });
            if *output != Output::Logs
                && matches!(format, CaptureFormat::Text | CaptureFormat::Json)
            {
                return Err(invalid(
                    "InvalidSpec",
                    "a volume output needs format pcap or pcapng",
                ));
            }
            // With only Kafka, packets go to the topic as pcapng messages: a log format
            // would print nothing and a file format has no file to go to.
            if kafka && *output == Output::Logs && c.format.is_some() {
                return Err(invalid(
                    "InvalidSpec",
                    "tool.capture.format applies to the log or a volume; with only output.kafka leave it unset (Kafka messages are pcapng)",
                ));
            }
            if c.packet_count.is_none()
                && c.duration.is_none()
                && spec.active_deadline_seconds.is_none()
            {
                return Err(invalid(
                    "InvalidSpec",
                    "capture needs an end: set packetCount, duration or activeDeadlineSeconds",
                ));
            }
            Ok(Tool::Capture(Capture {
                interface: check_interface(c.interface.as_deref().unwrap_or("eth0"))?,
                filter: c.filter.clone().filter(|f| !f.trim().is_empty()),
                snaplen: c.snaplen,
                count: c
                    .packet_count
                    .map(|n| check_positive("packetCount", n))
                    .transpose()?,
                duration,
                format,
                ring: ring(c, output, settings.bounds.max_capture_bytes)?,
            }))
        }
        (None, Some(f), None) => Ok(Tool::Flows {
            duration: f.duration.as_deref().map(parse_duration).transpose()?,
            interval: f.interval.as_deref().map(parse_duration).transpose()?,
        }),
        (None, None, Some(e)) => {
            if e.command.trim().is_empty() {
                return Err(invalid("InvalidSpec", "tool.exec.command is empty"));
            }
            if !policy.allow_exec {
                return Err(invalid(
                    "ExecNotAllowed",
                    "tool.exec: the operator's admin does not allow exec (SNOOPY_ALLOW_EXEC is false)",
                ));
            }
            if policy
                .exec_allowlist
                .rule_for(std::ffi::OsStr::new(&e.command))
                .is_none()
            {
                return Err(invalid(
                    "ProgramNotAllowed",
                    format!(
                        "tool.exec.command {:?} is not on the operator's exec allowlist ({}); the admin sets it (SNOOPY_EXEC_ALLOWLIST)",
                        e.command,
                        policy.exec_allowlist.names()
                    ),
                ));
            }
            needs_authorization(cr, "tool.exec")?;
            Ok(Tool::Exec {
                command: e.command.clone(),
                args: e.args.clone(),
            })
        }
        _ => Err(invalid(
            "InvalidSpec",
            "set exactly one of tool.capture, tool.flows and tool.exec",
        )),
    }
}

/// The ring of files a volume capture writes: the CR's `maxFileSize`, `fileCount` and
/// `rotateEvery`, or defaults that fill the admin's bound; refused when it would not fit.
fn ring(c: &CaptureTool, output: &Output, bound: u64) -> Result<Option<Ring>, Invalid> {
    if *output == Output::Logs {
        if c.max_file_size.is_some() || c.rotate_every.is_some() || c.file_count.is_some() {
            return Err(invalid(
                "InvalidSpec",
                "tool.capture.maxFileSize, rotateEvery and fileCount rotate the files of a volume output; set output.volume or leave them unset",
            ));
        }
        return Ok(None);
    }
    let file_count = c.file_count.unwrap_or(DEFAULT_FILE_COUNT);
    if file_count == 0 {
        return Err(invalid(
            "InvalidSpec",
            "tool.capture.fileCount must be at least 1",
        ));
    }
    if c.max_file_size == Some(0) || c.rotate_every == Some(0) {
        return Err(invalid(
            "InvalidSpec",
            "tool.capture.maxFileSize and rotateEvery must be at least 1",
        ));
    }
    let snaplen = c.snaplen.unwrap_or(DEFAULT_SNAPLEN);
    let slack = u64::from(snaplen) + RECORD_SLACK;
    let file_size_mb = match c.max_file_size {
        Some(mb) => mb,
        None => (bound / u64::from(file_count)).saturating_sub(slack) / 1_000_000,
    };
    let ring = Ring {
        file_size_mb,
        file_count,
        rotate_every_secs: c.rotate_every,
    };
    if file_size_mb == 0 || ring.max_bytes(snaplen) > bound {
        return Err(invalid(
            "CaptureTooLarge",
            format!(
                "tool.capture: a ring of {file_count} files of {} MB (each may exceed it by one packet, up to {slack} bytes) can hold {} bytes; the operator's admin allows at most {bound} bytes per target (SNOOPY_MAX_CAPTURE_BYTES): lower maxFileSize or fileCount",
                file_size_mb.max(1),
                Ring {
                    file_size_mb: file_size_mb.max(1),
                    ..ring
                }
                .max_bytes(snaplen)
            ),
        ));
    }
    Ok(Some(ring))
}

/// Kafka output: brokers, topic, Secret references.
fn kafka(k: &KafkaOutput, tool: &Tool, cr: CrRef<'_>, policy: &Policy) -> Result<Kafka, Invalid> {
    let default_topic = match tool {
        Tool::Capture(_) => snoopy_job::topics::PACKETS,
        Tool::Flows { .. } => snoopy_job::topics::FLOWS,
        Tool::Exec { .. } => {
            return Err(invalid(
                "InvalidSpec",
                "output.kafka is for capture and flows; exec output goes to the Job log",
            ));
        }
    };
    if k.brokers.is_empty() {
        return Err(invalid(
            "InvalidSpec",
            "output.kafka.brokers is empty: list at least one HOST:PORT",
        ));
    }
    for b in &k.brokers {
        check_broker(b)?;
        if !broker_allowed(b, &policy.kafka_brokers) {
            return Err(invalid(
                "BrokerNotAllowed",
                format!(
                    "output.kafka.brokers: {b:?} is not on the operator's broker allowlist ({}); the admin sets it (SNOOPY_KAFKA_BROKERS)",
                    policy.kafka_brokers.join(", ")
                ),
            ));
        }
    }
    if (k.tls.is_some() || k.sasl.is_some()) && !policy.allow_secret_references {
        return Err(invalid(
            "SecretReferenceNotAllowed",
            "output.kafka.tls / sasl name Secrets of the operator's namespace, which the operator's admin does not allow (SNOOPY_ALLOW_SECRET_REFERENCES is false)",
        ));
    }
    if k.tls.is_some() || k.sasl.is_some() {
        needs_authorization(
            cr,
            "output.kafka.tls / sasl (Secrets of the operator's namespace)",
        )?;
    }
    if let Some(s) = &k.sasl
        && s.mechanism == SaslMechanism::Plain
        && k.tls.is_none()
    {
        return Err(invalid(
            "InsecureSasl",
            "output.kafka.sasl: PLAIN sends the password in clear; use it only with output.kafka.tls (or use SCRAM-SHA-256/512)",
        ));
    }
    let topic = k.topic.clone().unwrap_or_else(|| default_topic.to_owned());
    let topic_ok = !topic.is_empty()
        && topic.len() <= 249
        && topic
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if !topic_ok {
        return Err(invalid(
            "InvalidSpec",
            format!(
                "output.kafka.topic {topic:?}: a topic name is 1-249 letters, digits, '.', '_' and '-'"
            ),
        ));
    }
    let tls = k
        .tls
        .as_ref()
        .map(|t| -> Result<KafkaTls, Invalid> {
            let secret_name = check_secret_name("output.kafka.tls.secretName", &t.secret_name)?;
            let ca_key = check_secret_key("output.kafka.tls.caKey", t.ca_key.as_deref(), "ca.crt")?;
            let client = match (&t.cert_key, &t.key_key) {
                (None, None) => None,
                (Some(c), Some(k)) => Some((
                    check_secret_key("output.kafka.tls.certKey", Some(c), "")?,
                    check_secret_key("output.kafka.tls.keyKey", Some(k), "")?,
                )),
                _ => {
                    return Err(invalid(
                        "InvalidSpec",
                        "output.kafka.tls: set both certKey and keyKey (mutual TLS) or neither",
                    ));
                }
            };
            Ok(KafkaTls {
                secret_name,
                ca_key,
                client,
            })
        })
        .transpose()?;
    let sasl = k
        .sasl
        .as_ref()
        .map(|s| -> Result<KafkaSasl, Invalid> {
            Ok(KafkaSasl {
                mechanism: s.mechanism,
                secret_name: check_secret_name("output.kafka.sasl.secretName", &s.secret_name)?,
                username_key: check_secret_key(
                    "output.kafka.sasl.usernameKey",
                    s.username_key.as_deref(),
                    "username",
                )?,
                password_key: check_secret_key(
                    "output.kafka.sasl.passwordKey",
                    s.password_key.as_deref(),
                    "password",
                )?,
            })
        })
        .transpose()?;
    Ok(Kafka {
        brokers: k.brokers.clone(),
        topic,
        tls,
        sasl,
    })
}

/// `HOST:PORT`: a DNS name or IPv4 address, or `[IPv6]`, and a port 1-65535. Nothing that
/// could change the meaning of the `kafka://` URL it goes into (`,`, `/`, spaces).
fn check_broker(b: &str) -> Result<(), Invalid> {
    let bad = |why: &str| {
        invalid(
            "InvalidSpec",
            format!(
                "output.kafka.brokers: {b:?} {why}; expected HOST:PORT (e.g. kafka.example:9092, 10.0.0.5:9092, [fd00::5]:9092)"
            ),
        )
    };
    let (host, port) = b.rsplit_once(':').ok_or_else(|| bad("has no port"))?;
    match port.parse::<u16>() {
        Ok(p) if p > 0 => {}
        _ => return Err(bad("has no valid port")),
    }
    let host_ok = if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        v6.parse::<std::net::Ipv6Addr>().is_ok()
    } else {
        !host.is_empty()
            && host.len() <= 253
            && host.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                    && !label.starts_with('-')
                    && !label.ends_with('-')
            })
    };
    if host_ok {
        Ok(())
    } else {
        Err(bad("is not a host name or IP address"))
    }
}

/// Whether `broker` (`HOST:PORT`, validated) is on `allowed` (entries `HOST:PORT` or
/// `HOST`, compared without case); an empty list allows any.
fn broker_allowed(broker: &str, allowed: &[String]) -> bool {
    if allowed.is_empty() {
        return true;
    }
    let host = broker.rsplit_once(':').map_or(broker, |(h, _)| h);
    allowed
        .iter()
        .any(|a| a.eq_ignore_ascii_case(broker) || a.eq_ignore_ascii_case(host))
}

/// A Secret's name: a DNS subdomain.
fn check_secret_name(field: &str, name: &str) -> Result<String, Invalid> {
    let ok = !name.is_empty()
        && name.len() <= 253
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric());
    if ok {
        Ok(name.to_owned())
    } else {
        Err(invalid(
            "InvalidSpec",
            format!(
                "{field} {name:?} is not a Secret name (lowercase letters, digits, '-', '.'); the Secret must be in the operator's namespace"
            ),
        ))
    }
}

/// A key of a Secret (it becomes a file name in the Job): letters, digits, `-`, `_`, `.`.
fn check_secret_key(field: &str, key: Option<&str>, default: &str) -> Result<String, Invalid> {
    let key = key.unwrap_or(default);
    let ok = !key.is_empty()
        && key.len() <= 253
        && key != "."
        && key != ".."
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(key.to_owned())
    } else {
        Err(invalid(
            "InvalidSpec",
            format!("{field} {key:?} is not a Secret key (letters, digits, '-', '_', '.')"),
        ))
    }
}

fn check_namespace(ns: &str) -> Result<(), Invalid> {
    let ok = !ns.is_empty()
        && ns.len() <= 63
        && ns
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !ns.starts_with('-')
        && !ns.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(invalid(
            "InvalidSpec",
            format!("targetNamespace {ns:?} is not a valid namespace name"),
        ))
    }
}

/// Linux interface names: 1–15 bytes, no `/`, no whitespace (`any` means all).
fn check_interface(name: &str) -> Result<String, Invalid> {
    let ok = !name.is_empty()
        && name.len() <= 15
        && !name.contains('/')
        && !name.chars().any(char::is_whitespace);
    if ok {
        Ok(name.to_owned())
    } else {
        Err(invalid(
            "InvalidInterface",
            format!(
                "interface {name:?} is not a Linux interface name (1-15 characters, no '/' or spaces)"
            ),
        ))
    }
}

fn check_positive(field: &str, n: i64) -> Result<i64, Invalid> {
    if n > 0 {
        Ok(n)
    } else {
        Err(invalid(
            "InvalidSpec",
            format!("{field} must be at least 1, not {n}"),
        ))
    }
}

/// A duration in podtracer's syntax (the node-job contract's parser: `500ms`, `30s`, `5m`,
/// `1h`, `1m30s`), more than zero.
fn parse_duration(text: &str) -> Result<Duration, Invalid> {
    match snoopy_job::duration::parse(text) {
        Ok(d) if !d.is_zero() => Ok(d),
        _ => Err(invalid(
            "InvalidSpec",
            format!("duration {text:?}: use a number and ms, s, m or h (e.g. 30s)"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::{CaptureTool, ExecTool, FlowsTool, KafkaOutput, OutputSpec, ToolSpec};

    const CR: CrRef<'static> = CrRef {
        namespace: "shop",
        name: "cr",
        authorization: &CHECKED,
    };

    /// The default settings: the admin allows what each author's RBAC allows.
    fn open() -> Settings {
        Settings::default()
    }

    /// The admin's switches all off.
    fn closed() -> Settings {
        Settings {
            policy: Policy::closed(),
            ..Settings::default()
        }
    }

    trait Spec {
        fn plan_with(&self, settings: &Settings) -> Result<Plan, Invalid>;
    }
    impl Spec for SnoopyJobSpec {
        fn plan_with(&self, settings: &Settings) -> Result<Plan, Invalid> {
            Plan::for_snoopyjob(self, CR, settings)
        }
    }
    impl Spec for TcpdumpSpec {
        fn plan_with(&self, settings: &Settings) -> Result<Plan, Invalid> {
            Plan::for_tcpdump(self, CR, settings)
        }
    }

    /// Planned under [`open`] settings, as CR `shop/cr`.
    fn planned(spec: &impl Spec) -> Result<Plan, Invalid> {
        spec.plan_with(&open())
    }

    /// A Tcpdump (in `shop`) of pods in `target`.
    fn tcpdump_of(target: &str) -> TcpdumpSpec {
        TcpdumpSpec {
            name: "t".into(),
            target_namespace: target.into(),
            pod_label: Default::default(),
            interface_name: "eth0".into(),
            packet_count: 1,
        }
    }

    fn snoopy(tool: ToolSpec) -> SnoopyJobSpec {
        SnoopyJobSpec {
            target_namespace: Some("shop".into()),
            namespace_selector: None,
            pod_selector: LabelSelector::default(),
            node_selector: None,
            tool,
            schedule: None,
            targets: None,
            jobs_per: None,
            output: None,
            active_deadline_seconds: None,
            ttl_seconds_after_finished: None,
            suspend: None,
        }
    }

    fn capture(filter: Option<&str>) -> ToolSpec {
        ToolSpec {
            capture: Some(CaptureTool {
                filter: filter.map(Into::into),
                packet_count: Some(10),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    /// A capture to the CR's hostPath directory with these rotation fields.
    fn volume_capture(
        max_file_size: Option<u64>,
        file_count: Option<u32>,
        rotate_every: Option<u64>,
    ) -> SnoopyJobSpec {
        let mut spec = snoopy(ToolSpec {
            capture: Some(CaptureTool {
                packet_count: Some(10),
                max_file_size,
                file_count,
                rotate_every,
                ..Default::default()
            }),
            ..Default::default()
        });
        spec.output = Some(OutputSpec {
            volume: Some(crate::crd::VolumeOutput {
                host_path: Some(crate::crd::HostPathOutput::default()),
                ..Default::default()
            }),
            ..Default::default()
        });
        spec
    }

    fn ring_of(plan: &Plan) -> Option<Ring> {
        let Tool::Capture(c) = &plan.tool else {
            panic!("not a capture")
        };
        c.ring
    }

    #[test]
    fn every_volume_capture_gets_a_ring_within_the_bound() {
        let bound = open().bounds.max_capture_bytes;
        assert_eq!(bound, 1 << 30);
        // Nothing asked: 10 files filling the bound, less one maximal packet each.
        let ring = ring_of(&planned(&volume_capture(None, None, None)).unwrap()).unwrap();
        assert_eq!(
            ring,
            Ring {
                file_size_mb: 107,
                file_count: DEFAULT_FILE_COUNT,
                rotate_every_secs: None,
            }
        );
        assert!(ring.max_bytes(DEFAULT_SNAPLEN) <= bound);
        // Only fileCount: the size follows; only maxFileSize: 10 files.
        let ring = ring_of(&planned(&volume_capture(None, Some(4), Some(60))).unwrap()).unwrap();
        assert_eq!(
            (ring.file_size_mb, ring.file_count, ring.rotate_every_secs),
            (268, 4, Some(60))
        );
        assert!(ring.max_bytes(DEFAULT_SNAPLEN) <= bound);
        let ring = ring_of(&planned(&volume_capture(Some(100), None, None)).unwrap()).unwrap();
        assert_eq!((ring.file_size_mb, ring.file_count), (100, 10));
        // A smaller bound from the admin shrinks the default files.
        let mut settings = open();
        settings.bounds.max_capture_bytes = 50_000_000;
        let ring = ring_of(
            &volume_capture(None, Some(5), None)
                .plan_with(&settings)
                .unwrap(),
        )
        .unwrap();
        assert_eq!(ring.file_size_mb, 9);
        assert!(ring.max_bytes(DEFAULT_SNAPLEN) <= 50_000_000);
        // The log keeps no files: no ring, and the fields are refused there.
        assert_eq!(ring_of(&planned(&snoopy(capture(None))).unwrap()), None);
        let mut logs = volume_capture(None, Some(3), None);
        logs.output = None;
        assert_eq!(planned(&logs).unwrap_err().reason, "InvalidSpec");
    }

    #[test]
    fn a_ring_larger_than_the_bound_is_refused() {
        // 11 × 100 MB > 1 GiB.
        let err = planned(&volume_capture(Some(100), Some(11), None)).unwrap_err();
        assert_eq!(err.reason, "CaptureTooLarge");
        assert!(err.message.contains("SNOOPY_MAX_CAPTURE_BYTES"), "{err}");
        // Exactly at the limit the packet slack counts: 10 × 107.4 MB would not fit.
        assert_eq!(
            planned(&volume_capture(Some(107), Some(10), None))
                .unwrap()
                .tool
                .name(),
            "capture"
        );
        assert_eq!(
            planned(&volume_capture(Some(1074), Some(1), None))
                .unwrap_err()
                .reason,
            "CaptureTooLarge"
        );
        // So many files that not even 1 MB each fits.
        let err = planned(&volume_capture(None, Some(1000), None)).unwrap_err();
        assert_eq!(err.reason, "CaptureTooLarge", "{err}");
        assert_eq!(
            planned(&volume_capture(Some(0), None, None))
                .unwrap_err()
                .reason,
            "InvalidSpec"
        );
    }

    #[test]
    fn tcpdump_becomes_a_capture_plan() {
        let spec = TcpdumpSpec {
            name: "test-pcap".into(),
            target_namespace: "cnf-telco".into(),
            pod_label: [("networkMonitor".to_owned(), "true".to_owned())].into(),
            interface_name: "eth0".into(),
            packet_count: 50,
        };
        let plan = planned(&spec).unwrap();
        assert_eq!(plan.namespaces, Namespaces::Named("cnf-telco".into()));
        assert_eq!(
            selector::to_query(&plan.pod_selector).unwrap(),
            "networkMonitor=true"
        );
        let Tool::Capture(c) = plan.tool else {
            panic!("not a capture")
        };
        assert_eq!(
            (c.interface.as_str(), c.count, c.format),
            ("eth0", Some(50), CaptureFormat::Text)
        );
        let bad = TcpdumpSpec {
            packet_count: 0,
            ..spec.clone()
        };
        assert_eq!(planned(&bad).unwrap_err().reason, "InvalidSpec");
        let bad = TcpdumpSpec {
            interface_name: "eth0 x".into(),
            ..spec
        };
        assert_eq!(planned(&bad).unwrap_err().reason, "InvalidInterface");
    }

    #[test]
    fn snoopyjob_validation() {
        assert!(planned(&snoopy(capture(Some("icmp")))).is_ok());
        let err = planned(&snoopy(capture(Some("tcp port")))).unwrap_err();
        assert_eq!(err.reason, "InvalidFilter");
        assert!(err.message.contains("tcp port"), "{err}");
        assert_eq!(
            planned(&snoopy(ToolSpec::default())).unwrap_err().reason,
            "InvalidSpec"
        );
        let two = ToolSpec {
            exec: Some(ExecTool {
                command: "ip".into(),
                args: vec![],
            }),
            ..capture(None)
        };
        assert_eq!(planned(&snoopy(two)).unwrap_err().reason, "InvalidSpec");
        let mut s = snoopy(capture(None));
        s.schedule = Some("61 * * * *".into());
        assert_eq!(planned(&s).unwrap_err().reason, "InvalidSchedule");
        let mut s = snoopy(capture(None));
        s.target_namespace = None;
        assert!(
            planned(&s)
                .unwrap_err()
                .message
                .contains("exactly one of targetNamespace")
        );
        let endless = ToolSpec {
            capture: Some(CaptureTool::default()),
            ..Default::default()
        };
        assert!(
            planned(&snoopy(endless))
                .unwrap_err()
                .message
                .contains("needs an end")
        );
        let mut s = snoopy(capture(None));
        s.tool.capture.as_mut().unwrap().duration = Some("5 minutes".into());
        assert!(planned(&s).unwrap_err().message.contains("duration"));
        let exec = ToolSpec {
            exec: Some(ExecTool {
                command: "iperf3".into(),
                args: vec!["-s".into()],
            }),
            ..Default::default()
        };
        assert_eq!(planned(&snoopy(exec)).unwrap().tool.name(), "exec");
    }

    /// `jobsPer`: node for the tools that serve several pods from one process, refused for
    /// exec; unset, capture and flows choose when a run starts; the Tcpdump CR stays per pod.
    #[test]
    fn jobs_per_node_is_for_capture_and_flows() {
        let mut spec = snoopy(capture(None));
        assert_eq!(planned(&spec).unwrap().jobs_per, JobsPer::Auto);
        spec.jobs_per = Some(crate::crd::JobsPer::Node);
        assert_eq!(planned(&spec).unwrap().jobs_per, JobsPer::Node);
        spec.jobs_per = Some(crate::crd::JobsPer::Pod);
        assert_eq!(planned(&spec).unwrap().jobs_per, JobsPer::Pod);
        let mut flows = snoopy(ToolSpec {
            flows: Some(Default::default()),
            ..Default::default()
        });
        assert_eq!(planned(&flows).unwrap().jobs_per, JobsPer::Auto);
        flows.jobs_per = Some(crate::crd::JobsPer::Node);
        assert_eq!(planned(&flows).unwrap().jobs_per, JobsPer::Node);
        let mut exec = exec("iperf3");
        assert_eq!(planned(&exec).unwrap().jobs_per, JobsPer::Pod);
        exec.jobs_per = Some(crate::crd::JobsPer::Node);
        let refused = planned(&exec).unwrap_err();
        assert_eq!(refused.reason, "InvalidSpec");
        assert!(refused.message.contains("jobsPer: node"), "{refused}");
        assert_eq!(planned(&tcpdump_of("shop")).unwrap().jobs_per, JobsPer::Pod);
    }

    fn with_kafka(tool: ToolSpec, kafka: serde_json::Value) -> SnoopyJobSpec {
        let mut s = snoopy(tool);
        s.output = Some(OutputSpec {
            volume: None,
            kafka: Some(serde_json::from_value::<KafkaOutput>(kafka).unwrap()),
        });
        s
    }

    fn kafka_err(tool: ToolSpec, kafka: serde_json::Value) -> Invalid {
        planned(&with_kafka(tool, kafka)).unwrap_err()
    }

    #[test]
    fn kafka_output_validation() {
        use serde_json::json;
        let plan = planned(&with_kafka(
            capture(None),
            json!({"brokers": ["10.0.0.5:9092", "kafka-0.kafka.data.svc:9093", "[fd00::5]:9092"]}),
        ))
        .unwrap();
        let k = plan.kafka.unwrap();
        assert_eq!(k.topic, "snoopy.packets");
        assert_eq!((k.tls, k.sasl), (None, None));
        let flows = ToolSpec {
            flows: Some(FlowsTool::default()),
            ..Default::default()
        };
        let plan = planned(&with_kafka(flows, json!({"brokers": ["k:9092"]}))).unwrap();
        assert_eq!(plan.kafka.unwrap().topic, "snoopy.flows");

        let err = kafka_err(capture(None), json!({"brokers": []}));
        assert_eq!(err.reason, "InvalidSpec");
        assert!(err.message.contains("brokers is empty"), "{err}");
        for bad in [
            "kafka",
            "kafka:",
            "kafka:0",
            "kafka:99999",
            ":9092",
            "a,b:9092",
            "a/b:9092",
            "a b:9092",
            "-a:9092",
            "[zz::1]:9092",
            "fd00::5:9092",
        ] {
            let err = kafka_err(capture(None), json!({"brokers": ["ok:9092", bad]}));
            assert!(
                err.message.contains(&format!("{bad:?}")) && err.message.contains("HOST:PORT"),
                "{bad}: {err}"
            );
        }
        let err = kafka_err(
            capture(None),
            json!({"brokers": ["k:9092"], "topic": "a/b"}),
        );
        assert!(err.message.contains("topic"), "{err}");

        let exec = ToolSpec {
            exec: Some(ExecTool {
                command: "ip".into(),
                args: vec![],
            }),
            ..Default::default()
        };
        let err = kafka_err(exec, json!({"brokers": ["k:9092"]}));
        assert!(err.message.contains("exec"), "{err}");

        // Only Kafka: a log/file format means nothing.
        let mut text = capture(None);
        text.capture.as_mut().unwrap().format = Some(CaptureFormat::Text);
        let err = kafka_err(text, json!({"brokers": ["k:9092"]}));
        assert!(err.message.contains("format"), "{err}");
        // Kafka and a volume: both, the file in pcapng.
        let mut both = with_kafka(capture(None), json!({"brokers": ["k:9092"]}));
        both.output.as_mut().unwrap().volume =
            Some(serde_json::from_value(json!({"hostPath": {"path": "captures"}})).unwrap());
        let plan = planned(&both).unwrap();
        assert_eq!(
            plan.output,
            Output::HostPath("/var/lib/snoopy/shop/cr/captures".into())
        );
        assert!(plan.kafka.is_some());

        let plan = planned(&with_kafka(
            capture(None),
            json!({"brokers": ["k:9093"],
                   "tls": {"secretName": "kafka-ca"},
                   "sasl": {"mechanism": "SCRAM-SHA-256", "secretName": "kafka-user"}}),
        ))
        .unwrap();
        let k = plan.kafka.unwrap();
        let tls = k.tls.unwrap();
        assert_eq!((tls.ca_key.as_str(), tls.client), ("ca.crt", None));
        let sasl = k.sasl.unwrap();
        assert_eq!(sasl.mechanism, SaslMechanism::ScramSha256);
        assert_eq!(
            (sasl.username_key.as_str(), sasl.password_key.as_str()),
            ("username", "password")
        );
        for (kafka, want) in [
            (
                json!({"brokers": ["k:1"], "tls": {"secretName": "s", "certKey": "tls.crt"}}),
                "both certKey and keyKey",
            ),
            (
                json!({"brokers": ["k:1"], "tls": {"secretName": "Bad_Name"}}),
                "operator's namespace",
            ),
            (
                json!({"brokers": ["k:1"], "tls": {"secretName": "s", "caKey": "../ca"}}),
                "caKey",
            ),
            (
                json!({"brokers": ["k:1"], "sasl": {"mechanism": "SCRAM-SHA-256", "secretName": ""}}),
                "sasl.secretName",
            ),
        ] {
            let err = kafka_err(capture(None), kafka);
            assert!(err.message.contains(want), "{want}: {err}");
        }
        // The mechanism is an enum in the schema: an unknown one does not even parse.
        assert!(
            serde_json::from_value::<KafkaOutput>(
                json!({"brokers": ["k:1"], "sasl": {"mechanism": "GSSAPI", "secretName": "s"}})
            )
            .is_err()
        );
    }

    fn exec(command: &str) -> SnoopyJobSpec {
        snoopy(ToolSpec {
            exec: Some(ExecTool {
                command: command.into(),
                args: vec!["-c".into(), "id".into()],
            }),
            ..Default::default()
        })
    }

    /// exec runs only what the admin's allowlist names, and only when exec is allowed at all;
    /// exec and flows Jobs get the default deadline, a counted capture does not.
    #[test]
    fn exec_is_limited_to_the_allowlist() {
        for refused in ["sh", "nsenter", "perl", "/bin/sh", "bash", "python3"] {
            let err = planned(&exec(refused)).unwrap_err();
            assert_eq!(err.reason, "ProgramNotAllowed", "{refused}: {err}");
            assert!(
                err.message.contains(&format!("{refused:?}"))
                    && err.message.contains("iperf3, ping, ip, ss, nslookup, dig"),
                "{err}"
            );
        }
        for allowed in ["iperf3", "ping", "ip", "ss", "nslookup", "dig"] {
            let plan = planned(&exec(allowed)).unwrap();
            assert_eq!(plan.active_deadline_seconds, Some(3600), "{allowed}");
        }
        let err = exec("ip").plan_with(&closed()).unwrap_err();
        assert_eq!(err.reason, "ExecNotAllowed", "{err}");
        let mut settings = open();
        settings.policy.exec_allowlist = "tcpdump=NET_RAW".parse().unwrap();
        assert_eq!(
            exec("ip").plan_with(&settings).unwrap_err().reason,
            "ProgramNotAllowed"
        );
        assert!(exec("tcpdump").plan_with(&settings).is_ok());
        let mut own = exec("ip");
        own.active_deadline_seconds = Some(30);
        assert_eq!(planned(&own).unwrap().active_deadline_seconds, Some(30));
        let flows = snoopy(ToolSpec {
            flows: Some(FlowsTool::default()),
            ..Default::default()
        });
        assert_eq!(planned(&flows).unwrap().active_deadline_seconds, Some(3600));
        let counted = planned(&snoopy(capture(None))).unwrap();
        assert_eq!(counted.active_deadline_seconds, None);
        assert_eq!(counted.ttl_seconds_after_finished, Some(86_400));
    }

    fn with_host_path(path: Option<&str>) -> SnoopyJobSpec {
        let mut s = snoopy(ToolSpec {
            capture: Some(CaptureTool {
                packet_count: Some(1),
                format: Some(CaptureFormat::Pcapng),
                ..Default::default()
            }),
            ..Default::default()
        });
        s.output = Some(OutputSpec {
            volume: Some(
                serde_json::from_value(serde_json::json!({"hostPath": {"path": path}})).unwrap(),
            ),
            kafka: None,
        });
        s
    }

    /// hostPath outputs land in PREFIX/NAMESPACE/NAME, never where the user says.
    #[test]
    fn host_paths_stay_in_the_crs_own_directory() {
        let settings = closed();
        let dir = |p: Option<&str>| with_host_path(p).plan_with(&settings).map(|p| p.output);
        assert_eq!(
            dir(None),
            Ok(Output::HostPath("/var/lib/snoopy/shop/cr".into()))
        );
        assert_eq!(
            dir(Some("captures/a")),
            Ok(Output::HostPath(
                "/var/lib/snoopy/shop/cr/captures/a".into()
            ))
        );
        for bad in [
            "/",
            "/etc",
            "/var/lib/snoopy",
            "../x",
            "a/../../b",
            "a//b",
            "./a",
            "a b",
        ] {
            let err = dir(Some(bad)).unwrap_err();
            assert_eq!(err.reason, "InvalidHostPath", "{bad}: {err}");
            assert!(err.message.contains(&format!("{bad:?}")), "{err}");
            assert!(err.message.contains("/var/lib/snoopy/shop/cr/"), "{err}");
        }
        let mut none = closed();
        none.policy.host_path_prefix = None;
        assert_eq!(
            with_host_path(None).plan_with(&none).unwrap_err().reason,
            "HostPathNotAllowed"
        );
        let mut pvc = snoopy(capture(None));
        pvc.output = Some(OutputSpec {
            volume: Some(
                serde_json::from_value(
                    serde_json::json!({"persistentVolumeClaim": {"claimName": "c"}}),
                )
                .unwrap(),
            ),
            kafka: None,
        });
        pvc.tool.capture.as_mut().unwrap().format = Some(CaptureFormat::Pcapng);
        assert_eq!(
            pvc.plan_with(&settings).unwrap_err().reason,
            "PvcNotAllowed"
        );
        assert_eq!(planned(&pvc).unwrap().output, Output::Pvc("c".into()));
    }

    /// A CR the webhook did not check (no valid stamp) keeps to its own namespace, with no
    /// exec and no Secret or PVC references, whatever the admin allows; each refusal says
    /// why, and hostNetwork targets need a cluster-wide check.
    #[test]
    fn unchecked_crs_get_the_fail_closed_rules() {
        use serde_json::json;
        let unchecked = Authorization::Unchecked {
            why: "it has no stamp".into(),
        };
        let cr = CrRef {
            authorization: &unchecked,
            ..CR
        };
        let plan = |spec: &SnoopyJobSpec| Plan::for_snoopyjob(spec, cr, &open());
        let own = plan(&snoopy(capture(Some("tcp")))).unwrap();
        assert!(!own.host_network);
        assert!(planned(&snoopy(capture(None))).unwrap().host_network);
        let mut other = snoopy(capture(None));
        other.target_namespace = Some("bank".into());
        let mut any = snoopy(capture(None));
        any.target_namespace = None;
        any.namespace_selector = Some(LabelSelector::default());
        let mut pvc = snoopy(capture(None));
        pvc.output = Some(OutputSpec {
            volume: Some(
                serde_json::from_value(json!({"persistentVolumeClaim": {"claimName": "c"}}))
                    .unwrap(),
            ),
            kafka: None,
        });
        pvc.tool.capture.as_mut().unwrap().format = Some(CaptureFormat::Pcapng);
        let secret = with_kafka(
            capture(None),
            json!({"brokers": ["k:9093"], "tls": {"secretName": "ca"}}),
        );
        for (what, spec) in [
            ("targetNamespace bank", other),
            ("namespaceSelector", any),
            ("tool.exec", exec("iperf3")),
            ("persistentVolumeClaim", pvc),
            ("output.kafka.tls", secret),
        ] {
            let err = plan(&spec).unwrap_err();
            assert_eq!(err.reason, "NotAuthorized", "{what}: {err}");
            assert!(
                err.message.contains(what) && err.message.contains("it has no stamp"),
                "{err}"
            );
            assert!(planned(&spec).is_ok(), "{what} with a stamp");
        }
        let tcpdump = tcpdump_of("bank");
        assert_eq!(
            Plan::for_tcpdump(&tcpdump, cr, &open()).unwrap_err().reason,
            "NotAuthorized"
        );
        let narrow = Authorization::Checked {
            user: "alice".into(),
            cluster_wide_exec: false,
        };
        let cr = CrRef {
            authorization: &narrow,
            ..CR
        };
        assert!(
            !Plan::for_snoopyjob(&snoopy(capture(None)), cr, &open())
                .unwrap()
                .host_network
        );
    }

    /// Without the admin's leave, a CR targets its own namespace only.
    #[test]
    fn other_namespaces_need_the_admins_leave() {
        let closed = closed();
        let mut other = snoopy(capture(None));
        other.target_namespace = Some("bank".into());
        let err = other.plan_with(&closed).unwrap_err();
        assert_eq!(err.reason, "CrossNamespaceNotAllowed");
        assert!(
            err.message.contains("bank") && err.message.contains("shop"),
            "{err}"
        );
        assert!(planned(&other).is_ok());
        let mut any = snoopy(capture(None));
        any.target_namespace = None;
        any.namespace_selector = Some(LabelSelector::default());
        assert_eq!(
            any.plan_with(&closed).unwrap_err().reason,
            "CrossNamespaceNotAllowed"
        );
        assert!(planned(&any).is_ok());
        assert!(snoopy(capture(None)).plan_with(&closed).is_ok());
        let tcpdump = tcpdump_of("bank");
        assert_eq!(
            tcpdump.plan_with(&closed).unwrap_err().reason,
            "CrossNamespaceNotAllowed"
        );
    }

    /// SASL PLAIN only inside TLS, Secrets only with the admin's leave, brokers from the
    /// admin's list when there is one.
    #[test]
    fn kafka_policy() {
        use serde_json::json;
        let err = kafka_err(
            capture(None),
            json!({"brokers": ["k:9092"], "sasl": {"mechanism": "PLAIN", "secretName": "u"}}),
        );
        assert_eq!(err.reason, "InsecureSasl", "{err}");
        let tls_plain = with_kafka(
            capture(None),
            json!({"brokers": ["k:9093"], "tls": {"secretName": "ca"},
                   "sasl": {"mechanism": "PLAIN", "secretName": "u"}}),
        );
        assert!(planned(&tls_plain).is_ok());
        assert_eq!(
            tls_plain.plan_with(&closed()).unwrap_err().reason,
            "SecretReferenceNotAllowed"
        );
        let plain = with_kafka(capture(None), json!({"brokers": ["k:9092"]}));
        assert!(plain.plan_with(&closed()).is_ok(), "no Secret named");

        let mut settings = open();
        settings.policy.kafka_brokers = vec!["kafka.data.svc:9093".into(), "10.0.0.5".into()];
        for ok in ["kafka.data.svc:9093", "KAFKA.data.svc:9093", "10.0.0.5:1"] {
            let spec = with_kafka(capture(None), json!({"brokers": [ok]}));
            assert!(spec.plan_with(&settings).is_ok(), "{ok}");
        }
        for refused in ["kafka.data.svc:9092", "evil.example:9093", "10.0.0.6:9092"] {
            let spec = with_kafka(
                capture(None),
                json!({"brokers": ["10.0.0.5:9092", refused]}),
            );
            let err = spec.plan_with(&settings).unwrap_err();
            assert_eq!(err.reason, "BrokerNotAllowed", "{refused}: {err}");
            assert!(err.message.contains(refused), "{err}");
        }
    }

    /// A filter longer than the CRD's maxLength is refused before it is compiled.
    #[test]
    fn long_filters_are_refused_unparsed() {
        let long = "tcp or ".repeat(700) + "udp";
        assert!(long.len() > MAX_FILTER_LEN);
        let err = planned(&snoopy(capture(Some(&long)))).unwrap_err();
        assert_eq!(err.reason, "InvalidFilter");
        assert!(err.message.contains("at most 4096"), "{err}");
        let fits = "tcp or ".repeat(500) + "udp";
        assert!(planned(&snoopy(capture(Some(&fits)))).is_ok());
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        /// Validation never panics on any text in the fields a user controls, and whatever it
        /// accepts keeps the policy: the hostPath stays in the CR's directory, exec runs only
        /// an allowlisted program, the target namespace is the CR's own.
        #[test]
        fn validation_never_panics_and_keeps_the_policy(
            path in "\\PC{0,40}",
            command in "\\PC{0,12}",
            namespace in "[a-z/.-]{0,12}",
            broker in "\\PC{0,30}",
            filter in "[a-z0-9 ()!&|]{0,60}",
        ) {
            let settings = closed();
            let mut spec = with_host_path(Some(&path));
            spec.target_namespace = Some(namespace.clone());
            if let Ok(plan) = spec.plan_with(&settings) {
                let Output::HostPath(dir) = plan.output else { panic!("not a hostPath") };
                proptest::prop_assert!(dir.starts_with("/var/lib/snoopy/shop/cr"), "{dir}");
                proptest::prop_assert!(!dir.contains("/../"), "{dir}");
                proptest::prop_assert_eq!(namespace.as_str(), "shop");
            }
            let mut open_exec = open();
            open_exec.policy.allow_exec = true;
            if let Ok(plan) = exec(&command).plan_with(&open_exec) {
                let Tool::Exec { command: c, .. } = plan.tool else { panic!("not exec") };
                proptest::prop_assert!(
                    ["iperf3", "ping", "ip", "ss", "nslookup", "dig"].contains(&c.as_str()),
                    "{c}"
                );
            }
            let _ = with_kafka(capture(None), serde_json::json!({"brokers": [broker]}))
                .plan_with(&settings);
            let _ = snoopy(capture(Some(&filter))).plan_with(&settings);
        }
    }
}
