//! A CR, validated and turned into what the reconciler acts on. Both kinds become a
//! [`Plan`]; everything that can be checked without the cluster is checked here, so an
//! invalid CR gets a condition and no Job is ever created for it.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use crate::crd::{
    CaptureFormat, KafkaOutput, SaslMechanism, SnoopyJobSpec, TargetMode, TcpdumpSpec,
};
use crate::schedule::Schedule;
// podtracer's default topics (the operator names them when the spec does not).
use crate::{filter, selector};
use snoopy_capture::sink::{DEFAULT_FLOWS_TOPIC, DEFAULT_PACKETS_TOPIC};

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
        duration: Option<String>,
        /// `--interval`.
        interval: Option<String>,
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
    /// Duration (`30s`).
    pub duration: Option<String>,
    /// Output format.
    pub format: CaptureFormat,
}

/// Where results go.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// The Job's log.
    Logs,
    /// A PVC (in the operator's namespace).
    Pvc(String),
    /// A directory on the node.
    HostPath(String),
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

impl TryFrom<&TcpdumpSpec> for Plan {
    type Error = Invalid;

    fn try_from(spec: &TcpdumpSpec) -> Result<Self, Invalid> {
        check_namespace(&spec.target_namespace)?;
        let capture = Capture {
            interface: check_interface(&spec.interface_name)?,
            filter: None,
            snaplen: None,
            count: Some(check_positive("packetCount", spec.packet_count)?),
            duration: None,
            format: CaptureFormat::Text,
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
            ttl_seconds_after_finished: None,
            suspend: false,
        })
    }
}

impl TryFrom<&SnoopyJobSpec> for Plan {
    type Error = Invalid;

    fn try_from(spec: &SnoopyJobSpec) -> Result<Self, Invalid> {
        let namespaces = match (&spec.target_namespace, &spec.namespace_selector) {
            (Some(ns), None) => {
                check_namespace(ns)?;
                Namespaces::Named(ns.clone())
            }
            (None, Some(sel)) => {
                selector::to_query(sel)
                    .map_err(|e| invalid("InvalidSpec", format!("namespaceSelector: {e}")))?;
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
                    Output::Pvc(pvc.claim_name.clone())
                }
                (None, Some(hp)) if hp.path.starts_with('/') => Output::HostPath(hp.path.clone()),
                (None, Some(hp)) => {
                    return Err(invalid(
                        "InvalidSpec",
                        format!("output.volume.hostPath.path {:?} is not absolute", hp.path),
                    ));
                }
                _ => {
                    return Err(invalid(
                        "InvalidSpec",
                        "output.volume: set exactly one of persistentVolumeClaim (with claimName) and hostPath",
                    ));
                }
            },
        };
        let kafka_spec = spec.output.as_ref().and_then(|o| o.kafka.as_ref());
        let tool = tool(spec, &output, kafka_spec.is_some())?;
        let kafka = kafka_spec.map(|k| kafka(k, &tool)).transpose()?;
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
            active_deadline_seconds: spec.active_deadline_seconds,
            ttl_seconds_after_finished: spec.ttl_seconds_after_finished,
            suspend: spec.suspend.unwrap_or(false),
        })
    }
}

fn tool(spec: &SnoopyJobSpec, output: &Output, kafka: bool) -> Result<Tool, Invalid> {
    let t = &spec.tool;
    match (&t.capture, &t.flows, &t.exec) {
        (Some(c), None, None) => {
            if let Some(f) = &c.filter {
                filter::check(f)
                    .map_err(|e| invalid("InvalidFilter", format!("filter {f:?}: {e}")))?;
            }
            if let Some(d) = &c.duration {
                check_duration(d)?;
            }
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
                duration: c.duration.clone(),
                format,
            }))
        }
        (None, Some(f), None) => {
            for d in [&f.duration, &f.interval].into_iter().flatten() {
                check_duration(d)?;
            }
            Ok(Tool::Flows {
                duration: f.duration.clone(),
                interval: f.interval.clone(),
            })
        }
        (None, None, Some(e)) => {
            if e.command.trim().is_empty() {
                return Err(invalid("InvalidSpec", "tool.exec.command is empty"));
            }
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

/// Kafka output: brokers, topic, Secret references.
fn kafka(k: &KafkaOutput, tool: &Tool) -> Result<Kafka, Invalid> {
    let default_topic = match tool {
        Tool::Capture(_) => DEFAULT_PACKETS_TOPIC,
        Tool::Flows { .. } => DEFAULT_FLOWS_TOPIC,
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

/// podtracer's duration syntax: a number and a unit (`500ms`, `30s`, `5m`, `1h`).
fn check_duration(text: &str) -> Result<(), Invalid> {
    let digits = text.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let unit = &text[digits.len()..];
    let ok = !digits.is_empty()
        && digits.parse::<f64>().is_ok_and(|v| v > 0.0)
        && matches!(unit, "ms" | "s" | "m" | "h" | "");
    if ok {
        Ok(())
    } else {
        Err(invalid(
            "InvalidSpec",
            format!("duration {text:?}: use a number and ms, s, m or h (e.g. 30s)"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::{CaptureTool, ExecTool, FlowsTool, KafkaOutput, OutputSpec, ToolSpec};

    fn snoopy(tool: ToolSpec) -> SnoopyJobSpec {
        SnoopyJobSpec {
            target_namespace: Some("shop".into()),
            namespace_selector: None,
            pod_selector: LabelSelector::default(),
            node_selector: None,
            tool,
            schedule: None,
            targets: None,
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

    #[test]
    fn tcpdump_becomes_a_capture_plan() {
        let spec = TcpdumpSpec {
            name: "test-pcap".into(),
            target_namespace: "cnf-telco".into(),
            pod_label: [("networkMonitor".to_owned(), "true".to_owned())].into(),
            interface_name: "eth0".into(),
            packet_count: 50,
        };
        let plan = Plan::try_from(&spec).unwrap();
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
        assert_eq!(Plan::try_from(&bad).unwrap_err().reason, "InvalidSpec");
        let bad = TcpdumpSpec {
            interface_name: "eth0 x".into(),
            ..spec
        };
        assert_eq!(Plan::try_from(&bad).unwrap_err().reason, "InvalidInterface");
    }

    #[test]
    fn snoopyjob_validation() {
        assert!(Plan::try_from(&snoopy(capture(Some("icmp")))).is_ok());
        let err = Plan::try_from(&snoopy(capture(Some("tcp port")))).unwrap_err();
        assert_eq!(err.reason, "InvalidFilter");
        assert!(err.message.contains("tcp port"), "{err}");
        assert_eq!(
            Plan::try_from(&snoopy(ToolSpec::default()))
                .unwrap_err()
                .reason,
            "InvalidSpec"
        );
        let two = ToolSpec {
            exec: Some(ExecTool {
                command: "ip".into(),
                args: vec![],
            }),
            ..capture(None)
        };
        assert_eq!(
            Plan::try_from(&snoopy(two)).unwrap_err().reason,
            "InvalidSpec"
        );
        let mut s = snoopy(capture(None));
        s.schedule = Some("61 * * * *".into());
        assert_eq!(Plan::try_from(&s).unwrap_err().reason, "InvalidSchedule");
        let mut s = snoopy(capture(None));
        s.target_namespace = None;
        assert!(
            Plan::try_from(&s)
                .unwrap_err()
                .message
                .contains("exactly one of targetNamespace")
        );
        let endless = ToolSpec {
            capture: Some(CaptureTool::default()),
            ..Default::default()
        };
        assert!(
            Plan::try_from(&snoopy(endless))
                .unwrap_err()
                .message
                .contains("needs an end")
        );
        let mut s = snoopy(capture(None));
        s.tool.capture.as_mut().unwrap().duration = Some("5 minutes".into());
        assert!(Plan::try_from(&s).unwrap_err().message.contains("duration"));
        let exec = ToolSpec {
            exec: Some(ExecTool {
                command: "iperf3".into(),
                args: vec!["-s".into()],
            }),
            ..Default::default()
        };
        assert_eq!(Plan::try_from(&snoopy(exec)).unwrap().tool.name(), "exec");
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
        Plan::try_from(&with_kafka(tool, kafka)).unwrap_err()
    }

    #[test]
    fn kafka_output_validation() {
        use serde_json::json;
        let plan = Plan::try_from(&with_kafka(
            capture(None),
            json!({"brokers": ["10.0.0.5:9092", "kafka-0.kafka.data.svc:9093", "[fd00::5]:9092"]}),
        ))
        .unwrap();
        let k = plan.kafka.unwrap();
        assert_eq!(k.topic, DEFAULT_PACKETS_TOPIC);
        assert_eq!((k.tls, k.sasl), (None, None));
        let flows = ToolSpec {
            flows: Some(FlowsTool::default()),
            ..Default::default()
        };
        let plan = Plan::try_from(&with_kafka(flows, json!({"brokers": ["k:9092"]}))).unwrap();
        assert_eq!(plan.kafka.unwrap().topic, DEFAULT_FLOWS_TOPIC);

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
            Some(serde_json::from_value(json!({"hostPath": {"path": "/var/lib/snoopy"}})).unwrap());
        let plan = Plan::try_from(&both).unwrap();
        assert_eq!(plan.output, Output::HostPath("/var/lib/snoopy".into()));
        assert!(plan.kafka.is_some());

        let plan = Plan::try_from(&with_kafka(
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
                json!({"brokers": ["k:1"], "sasl": {"mechanism": "PLAIN", "secretName": ""}}),
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
}
