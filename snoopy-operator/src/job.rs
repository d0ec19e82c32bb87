//! The Job for one target pod, or for the target pods of one node: a pure function of the
//! CR, the target(s) and the settings.

use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::{
    Capabilities, Container, EmptyDirVolumeSource, EnvVar, EnvVarSource, HostPathVolumeSource,
    ObjectFieldSelector, PersistentVolumeClaimVolumeSource, PodSpec, PodTemplateSpec,
    ResourceRequirements, SeccompProfile, SecretKeySelector, SecretVolumeSource, SecurityContext,
    Toleration, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::api::ObjectMeta;

use serde::{Deserialize, Serialize};
use snoopy_job::{CaptureRequest, ExecRequest, FlowsRequest, Pods, Request};

use crate::crd::CaptureFormat;
use crate::crd::TargetMode;
use crate::naming;
use crate::plan::{Kafka, Output, Plan, Tool};
use crate::settings::{EXEC_DROP_CAPABILITIES, Settings};

/// The CR a Job belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    /// `Tcpdump` or `SnoopyJob`.
    pub kind: String,
    /// CR name.
    pub name: String,
    /// CR namespace.
    pub namespace: String,
    /// CR uid.
    pub uid: String,
}

impl Owner {
    /// The readable start of Job names: `tcpdump` (as the proof of concept) or `snoopy`.
    pub fn job_prefix(&self) -> &'static str {
        if self.kind == "Tcpdump" {
            "tcpdump"
        } else {
            "snoopy"
        }
    }
}

/// The pod a Job works on.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Target {
    /// Pod namespace.
    pub namespace: String,
    /// Pod name.
    pub name: String,
    /// Pod uid.
    pub uid: String,
    /// The node the pod runs on.
    pub node: String,
}

/// A target as a per-node Job's annotation lists it (the node is the Job's).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Listed {
    /// Pod namespace.
    pub namespace: String,
    /// Pod name.
    pub name: String,
    /// Pod uid.
    pub uid: String,
}

/// One Job serving the target pods of one node (`jobsPer: node`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeJob {
    /// The Job's name ([`naming::node_job_name`]).
    pub name: String,
    /// The node.
    pub node: String,
    /// The node's earlier Jobs in this run (0 for the first).
    pub seq: usize,
    /// The target pods on the node when the Job is created.
    pub targets: Vec<Target>,
    /// With `targets: follow`: the namespaces whose matching pods the Job picks up itself.
    pub follow_namespaces: Option<Vec<String>>,
    /// With `targets: follow`: how many pods the Job may serve in all (its targets and the
    /// CR's target budget left when it is created: the admin's cap holds per CR).
    pub max_pods: u32,
}

impl NodeJob {
    /// The annotation that records the Job's targets.
    pub fn targets_annotation(&self) -> String {
        let listed: Vec<Listed> = self
            .targets
            .iter()
            .map(|t| Listed {
                namespace: t.namespace.clone(),
                name: t.name.clone(),
                uid: t.uid.clone(),
            })
            .collect();
        serde_json::to_string(&listed).expect("targets serialize")
    }
}

/// The Job's name for this target and run.
pub fn job_name(owner: &Owner, target: &Target, run: &str) -> String {
    naming::job_name(
        owner.job_prefix(),
        &target.name,
        &owner.uid,
        &target.uid,
        run,
    )
}

/// Labels that find every Job of one CR.
pub fn owner_selector(owner_uid: &str) -> String {
    format!(
        "{}={},{}={owner_uid}",
        naming::MANAGED_BY,
        naming::MANAGED_BY_VALUE,
        naming::OWNER_UID
    )
}

const OUTPUT_DIR: &str = "/output";
const CONTAINER: &str = "podtracer";
/// Where podtracer writes its counts; kubelet makes the file the container's termination
/// message, which the operator reads back (`report`).
const TERMINATION_LOG: &str = "/dev/termination-log";
/// Where the Kafka TLS Secret is mounted in the Job.
pub const KAFKA_TLS_DIR: &str = "/etc/snoopy/kafka-tls";
/// Where the Kafka SASL Secret is mounted in the Job.
pub const KAFKA_SASL_DIR: &str = "/etc/snoopy/kafka-sasl";

/// The run id podtracer puts into every Kafka message's `run` header: the CR and the run,
/// so a consumer can tell runs (and SnoopyJobs) apart on a shared topic.
pub fn kafka_run_id(owner: &Owner, run: &str) -> String {
    format!("{}/{}/{run}", owner.namespace, owner.name)
}

/// The Job that runs `plan`'s tool as `target`, on `target`'s node, in the operator's namespace.
pub fn build(owner: &Owner, target: &Target, run: &str, plan: &Plan, settings: &Settings) -> Job {
    let mut labels = labels(owner, run);
    labels.insert(
        naming::TARGET_NAMESPACE.to_owned(),
        target.namespace.clone(),
    );
    labels.insert(naming::TARGET_UID.to_owned(), target.uid.clone());
    if let Some(v) = naming::label_value(&target.name) {
        labels.insert(naming::TARGET_POD.to_owned(), v);
    }
    let mut annotations = annotations(owner);
    annotations.insert(
        naming::TARGET_ANNOTATION.to_owned(),
        format!("{}/{}", target.namespace, target.name),
    );
    assemble(
        owner,
        Shape {
            name: job_name(owner, target, run),
            node: &target.node,
            labels,
            annotations,
            args: podtracer_args(target, run, plan, settings),
        },
        run,
        plan,
        settings,
    )
}

/// The Job that runs `plan`'s capture for every target pod of one node (`jobsPer: node`).
pub fn build_for_node(
    owner: &Owner,
    job: &NodeJob,
    run: &str,
    plan: &Plan,
    settings: &Settings,
) -> Job {
    let mut labels = labels(owner, run);
    labels.insert(naming::JOB_NODE.to_owned(), naming::node_label(&job.node));
    let mut annotations = annotations(owner);
    annotations.insert(
        naming::TARGETS_ANNOTATION.to_owned(),
        job.targets_annotation(),
    );
    if let Some(namespaces) = job
        .follow_namespaces
        .as_ref()
        .filter(|_| plan.mode == TargetMode::Follow)
    {
        annotations.insert(
            naming::FOLLOW_NAMESPACES_ANNOTATION.to_owned(),
            namespaces.join(","),
        );
    }
    assemble(
        owner,
        Shape {
            name: job.name.clone(),
            node: &job.node,
            labels,
            annotations,
            args: node_request(job, run, plan, settings).to_args(),
        },
        run,
        plan,
        settings,
    )
}

/// What differs between a per-pod and a per-node Job.
struct Shape<'a> {
    name: String,
    node: &'a str,
    labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
    args: Vec<String>,
}

fn annotations(owner: &Owner) -> BTreeMap<String, String> {
    BTreeMap::from([(
        naming::OWNER_ANNOTATION.to_owned(),
        format!("{}/{}", owner.namespace, owner.name),
    )])
}

fn assemble(owner: &Owner, shape: Shape<'_>, run: &str, plan: &Plan, settings: &Settings) -> Job {
    let Shape {
        name,
        node,
        labels,
        annotations,
        args,
    } = shape;
    // No host /proc mount: with hostPID the container's own /proc shows the target's
    // processes, which is where podtracer opens /proc/PID/ns/net.
    let mut mounts = vec![VolumeMount {
        name: "runtime-socket".into(),
        mount_path: settings.runtime_socket_path().into(),
        read_only: Some(true),
        ..Default::default()
    }];
    // The root filesystem is read-only, but tools run by `exec` need scratch space (iperf3
    // creates its buffer file with mkstemp in /tmp): a small emptyDir.
    mounts.push(VolumeMount {
        name: "tmp".into(),
        mount_path: "/tmp".into(),
        ..Default::default()
    });
    let mut volumes = vec![
        host_path_volume("runtime-socket", settings.runtime_socket_path(), "Socket"),
        Volume {
            name: "tmp".into(),
            empty_dir: Some(EmptyDirVolumeSource {
                size_limit: Some(Quantity("64Mi".into())),
                ..Default::default()
            }),
            ..Default::default()
        },
    ];
    match &plan.output {
        Output::Logs => {}
        Output::Pvc(claim) => {
            volumes.push(Volume {
                name: "output".into(),
                persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                    claim_name: claim.clone(),
                    read_only: None,
                }),
                ..Default::default()
            });
            mounts.push(VolumeMount {
                name: "output".into(),
                mount_path: OUTPUT_DIR.into(),
                ..Default::default()
            });
        }
        Output::HostPath(path) => {
            volumes.push(host_path_volume("output", path, "DirectoryOrCreate"));
            mounts.push(VolumeMount {
                name: "output".into(),
                mount_path: OUTPUT_DIR.into(),
                ..Default::default()
            });
        }
    }
    let mut env = Vec::new();
    if let Some(kafka) = &plan.kafka {
        env = kafka_env(owner, run, kafka);
        let (v, m) = kafka_volumes(kafka);
        volumes.extend(v);
        mounts.extend(m);
    }
    // Kafka Jobs use the node's network so they reach brokers the pod network may not
    // (podtracer opens the capture socket in the pod's namespace on a thread of its own;
    // the producer threads stay in the node's). ClusterFirstWithHostNet keeps cluster DNS
    // names (`kafka.ns.svc`) resolvable there.
    let host_network = plan.kafka.is_some();
    let quantities = |(cpu, mem): &(String, String)| {
        BTreeMap::from([
            ("cpu".to_owned(), Quantity(cpu.clone())),
            ("memory".to_owned(), Quantity(mem.clone())),
        ])
    };
    let mut capabilities = settings.capabilities.clone();
    if matches!(plan.tool, Tool::Exec { .. }) {
        // podtracer drops the exec'd program to nobody with only its allowlist entry's
        // capabilities: changing ids and the bounding set takes these three.
        capabilities.extend(EXEC_DROP_CAPABILITIES.map(String::from));
    }
    let container = Container {
        name: CONTAINER.into(),
        image: Some(settings.podtracer_image.clone()),
        image_pull_policy: Some(settings.image_pull_policy.clone()),
        args: Some(args),
        env: (!env.is_empty()).then_some(env),
        resources: Some(ResourceRequirements {
            requests: Some(quantities(&settings.requests)),
            limits: Some(quantities(&settings.limits)),
            ..Default::default()
        }),
        security_context: Some(SecurityContext {
            privileged: Some(false),
            // Root in the container, but only with the capabilities podtracer needs.
            run_as_user: Some(0),
            capabilities: Some(Capabilities {
                add: Some(capabilities),
                drop: Some(vec!["ALL".into()]),
            }),
            // no_new_privs for podtracer and everything it runs: root's capabilities come
            // from the container's configuration, never from a set-uid or file-capability
            // program. (Kubernetes refuses this with `CAP_SYS_ADMIN` spelled that way, not
            // with `SYS_ADMIN`; the kernel grants the same.)
            allow_privilege_escalation: Some(false),
            read_only_root_filesystem: Some(true),
            seccomp_profile: Some(SeccompProfile {
                type_: "RuntimeDefault".into(),
                localhost_profile: None,
            }),
            ..Default::default()
        }),
        termination_message_path: Some(TERMINATION_LOG.into()),
        termination_message_policy: Some("FallbackToLogsOnError".into()),
        volume_mounts: Some(mounts),
        ..Default::default()
    };
    Job {
        metadata: ObjectMeta {
            name: Some(name),
            namespace: Some(settings.namespace.clone()),
            labels: Some(labels.clone()),
            annotations: Some(annotations.clone()),
            ..Default::default()
        },
        spec: Some(JobSpec {
            backoff_limit: Some(0),
            active_deadline_seconds: plan.active_deadline_seconds,
            ttl_seconds_after_finished: plan.ttl_seconds_after_finished,
            template: PodTemplateSpec {
                // The pod carries the owner too: its phase changes (Running) reach the CR's
                // status through the controller's pod watch, as the Job object does not
                // change when its pod starts.
                metadata: Some(ObjectMeta {
                    labels: Some(labels),
                    annotations: Some(annotations),
                    ..Default::default()
                }),
                spec: Some(PodSpec {
                    node_name: Some(node.to_owned()),
                    host_pid: Some(true),
                    host_network: host_network.then_some(true),
                    dns_policy: host_network.then(|| "ClusterFirstWithHostNet".into()),
                    restart_policy: Some("Never".into()),
                    // Jobs talk to the container runtime, never to the API server.
                    automount_service_account_token: Some(false),
                    enable_service_links: Some(false),
                    // The target may be on a tainted node (control plane, dedicated tenants).
                    tolerations: Some(vec![Toleration {
                        operator: Some("Exists".into()),
                        ..Default::default()
                    }]),
                    containers: vec![container],
                    volumes: Some(volumes),
                    ..Default::default()
                }),
            },
            ..Default::default()
        }),
        status: None,
    }
}

/// The node job for one target: the contract podtracer parses (`snoopy-job`).
pub fn request(target: &Target, run: &str, plan: &Plan, settings: &Settings) -> Request {
    let pod = snoopy_job::Target::pod(&target.name, &target.namespace, &settings.runtime_endpoint);
    let mut request = request_with(
        pod,
        &format!("{}_{}_{run}", target.namespace, target.name),
        plan,
    );
    if let Request::Exec(e) = &mut request {
        // Defense in depth: podtracer refuses anything off the admin's list too, and
        // drops the program to what its entry keeps.
        e.allow = Some(settings.policy.exec_allowlist.to_string());
    }
    request
}

/// The request for `pod`, its files named `STEM.EXT` in the output directory.
fn request_with(pod: snoopy_job::Target, stem: &str, plan: &Plan) -> Request {
    let sinks: Vec<String> = plan.kafka.iter().map(sink_url).collect();
    match &plan.tool {
        Tool::Capture(c) => {
            let format = match c.format {
                CaptureFormat::Text => snoopy_job::CaptureFormat::Text,
                CaptureFormat::Json => snoopy_job::CaptureFormat::Json,
                CaptureFormat::Pcap => snoopy_job::CaptureFormat::Pcap,
                CaptureFormat::Pcapng => snoopy_job::CaptureFormat::Pcapng,
            };
            // With only Kafka there is no log or file output: packets go to the topic.
            let format = (plan.kafka.is_none() || plan.output != Output::Logs).then_some(format);
            // Never unbounded on a volume: the plan always gives a ring that fits the
            // admin's bound (tcpdump's names: FILE0…FILE{N-1}).
            let (write, ring) = if plan.output == Output::Logs {
                (None, None)
            } else {
                let ext = format.map_or("pcapng", snoopy_job::CaptureFormat::as_str);
                let file = format!("{OUTPUT_DIR}/{stem}.{ext}");
                let ring = c.ring.map(|r| snoopy_job::Ring {
                    file_size_mb: r.file_size_mb,
                    file_count: r.file_count,
                    rotate_every_secs: r.rotate_every_secs,
                });
                (Some(file), ring)
            };
            Request::Capture(CaptureRequest {
                count: c.count.map(|n| n.unsigned_abs()),
                duration: c.duration,
                snaplen: c.snaplen,
                format,
                sinks,
                write,
                ring,
                // Line-buffered so `kubectl logs` shows packets as they come.
                line_buffered: true,
                termination_log: Some(TERMINATION_LOG.into()),
                filter: c.filter.clone(),
                ..CaptureRequest::new(pod, &c.interface)
            })
        }
        Tool::Flows { duration, interval } => Request::Flows(FlowsRequest {
            target: pod,
            duration: *duration,
            interval: *interval,
            sinks,
            termination_log: Some(TERMINATION_LOG.into()),
        }),
        Tool::Exec { command, args } => Request::Exec(ExecRequest {
            target: pod,
            allow: None,
            command: command.clone(),
            args: args.clone(),
        }),
    }
}

/// The node job for the target pods of one node: a capture of them all (one pcapng
/// interface per pod) or their flows, one report entry per pod (the plan allows `jobsPer:
/// node` for capture and flows only).
pub fn node_request(job: &NodeJob, run: &str, plan: &Plan, settings: &Settings) -> Request {
    let pods = match &job.follow_namespaces {
        Some(namespaces) if plan.mode == TargetMode::Follow => Pods::Selected {
            namespaces: namespaces.clone(),
            selector: crate::selector::to_query(&plan.pod_selector).unwrap_or_default(),
            skip_host_network: !plan.host_network,
            max_pods: Some(job.max_pods),
        },
        _ => Pods::Listed(
            job.targets
                .iter()
                .map(|t| (t.namespace.clone(), t.name.clone()))
                .collect(),
        ),
    };
    let stem = if job.seq == 0 {
        format!("node-{}_{run}", job.node)
    } else {
        format!("node-{}_{run}_{}", job.node, job.seq)
    };
    let mut request = request_with(
        snoopy_job::Target {
            pods,
            runtime_endpoint: settings.runtime_endpoint.clone(),
        },
        &stem,
        plan,
    );
    if let Request::Capture(c) = &mut request {
        // One process serves many pods: the count is each pod's, as with a Job per pod.
        c.count_per_pod = c.count.take();
    }
    request
}

/// The `podtracer` command line for one target.
pub fn podtracer_args(target: &Target, run: &str, plan: &Plan, settings: &Settings) -> Vec<String> {
    request(target, run, plan, settings).to_args()
}

/// `kafka://B1,B2/TOPIC`, or `kafkas://…` with TLS (brokers and topic are validated: no
/// character in them can change the URL's meaning).
pub fn sink_url(k: &Kafka) -> String {
    let scheme = if k.tls.is_some() { "kafkas" } else { "kafka" };
    format!("{scheme}://{}/{}", k.brokers.join(","), k.topic)
}

/// podtracer's `SNOOPY_KAFKA_*` settings: file paths into the mounted Secrets (secrets never
/// appear in the Job's spec or command line), plus the node name and the run id.
fn kafka_env(owner: &Owner, run: &str, k: &Kafka) -> Vec<EnvVar> {
    let value = |name: &str, value: String| EnvVar {
        name: name.into(),
        value: Some(value),
        value_from: None,
    };
    let mut env = vec![
        EnvVar {
            name: snoopy_job::env::NODE_NAME.into(),
            value: None,
            value_from: Some(EnvVarSource {
                field_ref: Some(ObjectFieldSelector {
                    field_path: "spec.nodeName".into(),
                    api_version: None,
                }),
                ..Default::default()
            }),
        },
        value(snoopy_job::env::RUN_ID, kafka_run_id(owner, run)),
    ];
    if let Some(tls) = &k.tls {
        env.push(value(
            snoopy_job::env::KAFKA_TLS_CA_FILE,
            format!("{KAFKA_TLS_DIR}/{}", tls.ca_key),
        ));
        if let Some((cert, key)) = &tls.client {
            env.push(value(
                snoopy_job::env::KAFKA_TLS_CERT_FILE,
                format!("{KAFKA_TLS_DIR}/{cert}"),
            ));
            env.push(value(
                snoopy_job::env::KAFKA_TLS_KEY_FILE,
                format!("{KAFKA_TLS_DIR}/{key}"),
            ));
        }
    }
    if let Some(sasl) = &k.sasl {
        env.push(value(
            snoopy_job::env::KAFKA_SASL_MECHANISM,
            sasl.mechanism.as_str().into(),
        ));
        // A reference, not a value: a missing Secret or key shows in the pod's status as
        // CreateContainerConfigError naming it, which the target's status repeats.
        env.push(EnvVar {
            name: snoopy_job::env::KAFKA_SASL_USERNAME.into(),
            value: None,
            value_from: Some(EnvVarSource {
                secret_key_ref: Some(SecretKeySelector {
                    name: sasl.secret_name.clone(),
                    key: sasl.username_key.clone(),
                    optional: Some(false),
                }),
                ..Default::default()
            }),
        });
        env.push(value(
            snoopy_job::env::KAFKA_SASL_PASSWORD_FILE,
            format!("{KAFKA_SASL_DIR}/{}", sasl.password_key),
        ));
    }
    env
}

/// The Secrets, mounted read-only (files mode 0400: only podtracer, root, reads them).
///
/// `optional`: a missing Secret would otherwise keep the pod in `ContainerCreating` until
/// the deadline, its reason only in events the operator does not read. Optional, the pod
/// starts and fails at once: podtracer names the missing file (TLS), or kubelet reports
/// `CreateContainerConfigError` naming the Secret (the SASL user name is a reference); both
/// reach the target's status.
fn kafka_volumes(k: &Kafka) -> (Vec<Volume>, Vec<VolumeMount>) {
    let mut volumes = Vec::new();
    let mut mounts = Vec::new();
    let secrets = [
        k.tls
            .as_ref()
            .map(|t| ("kafka-tls", KAFKA_TLS_DIR, &t.secret_name)),
        k.sasl
            .as_ref()
            .map(|s| ("kafka-sasl", KAFKA_SASL_DIR, &s.secret_name)),
    ];
    for (name, dir, secret) in secrets.into_iter().flatten() {
        volumes.push(Volume {
            name: name.into(),
            secret: Some(SecretVolumeSource {
                secret_name: Some(secret.clone()),
                default_mode: Some(0o400),
                optional: Some(true),
                items: None,
            }),
            ..Default::default()
        });
        mounts.push(VolumeMount {
            name: name.into(),
            mount_path: dir.into(),
            read_only: Some(true),
            ..Default::default()
        });
    }
    (volumes, mounts)
}

fn labels(owner: &Owner, run: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::from([
        (
            naming::MANAGED_BY.to_owned(),
            naming::MANAGED_BY_VALUE.to_owned(),
        ),
        (naming::OWNER_UID.to_owned(), owner.uid.clone()),
        (naming::OWNER_KIND.to_owned(), owner.kind.clone()),
        (naming::OWNER_NAMESPACE.to_owned(), owner.namespace.clone()),
        (naming::RUN.to_owned(), run.to_owned()),
    ]);
    if let Some(v) = naming::label_value(&owner.name) {
        labels.insert(naming::OWNER_NAME.to_owned(), v);
    }
    labels
}

fn host_path_volume(name: &str, path: &str, type_: &str) -> Volume {
    Volume {
        name: name.into(),
        host_path: Some(HostPathVolumeSource {
            path: path.into(),
            type_: Some(type_.into()),
        }),
        ..Default::default()
    }
}

/// The PoC's Tcpdump, one of its pods and its plan, for the tests of this crate.
#[cfg(test)]
pub(crate) mod fixtures {
    use super::{Owner, Target};
    use crate::crd::TcpdumpSpec;
    use crate::plan::{CrRef, Plan};
    use crate::settings::Settings;

    pub(crate) fn owner() -> Owner {
        Owner {
            kind: "Tcpdump".into(),
            name: "tcpdump-sample".into(),
            namespace: "cnf-telco".into(),
            uid: "cr-uid".into(),
        }
    }

    pub(crate) fn target() -> Target {
        Target {
            namespace: "cnf-telco".into(),
            name: "cnf-example-pod-1".into(),
            uid: "pod-uid".into(),
            node: "node-a".into(),
        }
    }

    pub(crate) fn poc_plan() -> Plan {
        Plan::for_tcpdump(
            &TcpdumpSpec {
                name: "test-pcap".into(),
                target_namespace: "cnf-telco".into(),
                pod_label: [("networkMonitor".to_owned(), "true".to_owned())].into(),
                interface_name: "eth0".into(),
                packet_count: 50,
            },
            CrRef {
                namespace: "cnf-telco",
                name: "tcpdump-sample",
                authorization: &crate::plan::CHECKED,
            },
            &Settings::default(),
        )
        .unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::{owner, poc_plan, target};
    use super::*;

    #[test]
    fn the_job_runs_on_the_pods_node_with_least_privilege() {
        let settings = Settings::default();
        let job = build(
            &owner(),
            &target(),
            naming::RUN_ONCE,
            &poc_plan(),
            &settings,
        );
        assert_eq!(job.metadata.namespace.as_deref(), Some("snoopy-operator"));
        let name = job.metadata.name.clone().unwrap();
        assert!(name.starts_with("tcpdump-cnf-example-pod-1-"), "{name}");
        let spec = job.spec.unwrap();
        assert_eq!(spec.backoff_limit, Some(0));
        let pod = spec.template.spec.unwrap();
        assert_eq!(pod.node_name.as_deref(), Some("node-a"));
        assert_eq!(pod.host_pid, Some(true));
        assert_eq!(pod.restart_policy.as_deref(), Some("Never"));
        assert_eq!(pod.automount_service_account_token, Some(false));
        assert_eq!(
            pod.tolerations.unwrap()[0].operator.as_deref(),
            Some("Exists")
        );
        let c = &pod.containers[0];
        let sc = c.security_context.as_ref().unwrap();
        assert_eq!(sc.privileged, Some(false));
        let caps = sc.capabilities.as_ref().unwrap();
        assert_eq!(caps.drop.as_deref(), Some(&["ALL".to_owned()][..]));
        assert_eq!(caps.add.as_ref().unwrap(), &settings.capabilities);
        assert!(
            c.resources
                .as_ref()
                .unwrap()
                .limits
                .as_ref()
                .unwrap()
                .contains_key("memory")
        );
        assert_eq!(
            c.termination_message_policy.as_deref(),
            Some("FallbackToLogsOnError")
        );
        let mounts = c.volume_mounts.as_ref().unwrap();
        // Every host mount is read-only; only the scratch emptyDir at /tmp is writable.
        assert!(
            mounts
                .iter()
                .all(|m| m.read_only == Some(true) || m.name == "tmp"),
            "{mounts:?}"
        );
        let tmp = pod
            .volumes
            .as_ref()
            .unwrap()
            .iter()
            .find(|v| v.name == "tmp");
        assert!(tmp.unwrap().empty_dir.is_some(), "{tmp:?}");
        let vols = pod.volumes.unwrap();
        let paths: Vec<_> = vols
            .iter()
            .filter_map(|v| v.host_path.as_ref().map(|h| h.path.as_str()))
            .collect();
        assert_eq!(paths, ["/run/containerd/containerd.sock"]);
        assert_eq!(sc.allow_privilege_escalation, Some(false));
        assert_eq!(
            sc.seccomp_profile.as_ref().map(|p| p.type_.as_str()),
            Some("RuntimeDefault")
        );
        assert_eq!(spec.ttl_seconds_after_finished, Some(86_400));
        assert_eq!(spec.active_deadline_seconds, None, "a counted capture ends");
        let args = c.args.clone().unwrap();
        assert_eq!(
            args,
            [
                "capture",
                "--pod",
                "cnf-example-pod-1",
                "--namespace",
                "cnf-telco",
                "--runtime-endpoint",
                "unix:///run/containerd/containerd.sock",
                "-i",
                "eth0",
                "-c",
                "50",
                "--format",
                "text",
                "--line-buffered",
                "--termination-log",
                "/dev/termination-log"
            ]
        );
        let labels = job.metadata.labels.unwrap();
        assert_eq!(labels[naming::OWNER_UID], "cr-uid");
        assert_eq!(labels[naming::TARGET_UID], "pod-uid");
        assert_eq!(labels[naming::TARGET_POD], "cnf-example-pod-1");
        assert_eq!(labels[naming::OWNER_KIND], "Tcpdump");
    }

    #[test]
    fn volume_output_filter_and_exec() {
        let mut plan = poc_plan();
        let Tool::Capture(c) = &mut plan.tool else {
            unreachable!()
        };
        c.filter = Some("icmp and host 10.0.0.2".into());
        c.format = CaptureFormat::Pcapng;
        plan.output = Output::HostPath("/var/lib/snoopy".into());
        let job = build(
            &owner(),
            &target(),
            "1700000000",
            &plan,
            &Settings::default(),
        );
        let pod = job.spec.unwrap().template.spec.unwrap();
        let args = pod.containers[0].args.clone().unwrap();
        let w = args.iter().position(|a| a == "-w").unwrap();
        assert_eq!(
            args[w + 1],
            "/output/cnf-telco_cnf-example-pod-1_1700000000.pcapng"
        );
        assert_eq!(&args[args.len() - 2..], ["--", "icmp and host 10.0.0.2"]);
        assert!(pod.volumes.unwrap().iter().any(|v| v.name == "output"));

        plan.tool = Tool::Exec {
            command: "iperf3".into(),
            args: vec!["-s".into(), "-1".into()],
        };
        let args = podtracer_args(&target(), "once", &plan, &Settings::default());
        assert_eq!(args[0], "exec");
        assert_eq!(
            &args[args.len() - 6..],
            [
                "--allow",
                "iperf3,ping=NET_RAW,ip,ss,nslookup,dig",
                "--",
                "iperf3",
                "-s",
                "-1"
            ]
        );
        // The exec Job may drop the program's privileges: three more capabilities.
        let job = build(&owner(), &target(), "once", &plan, &Settings::default());
        let caps = job.spec.unwrap().template.spec.unwrap().containers[0]
            .security_context
            .clone()
            .unwrap()
            .capabilities
            .unwrap()
            .add
            .unwrap();
        assert_eq!(
            caps,
            [
                "NET_RAW",
                "SYS_ADMIN",
                "SYS_PTRACE",
                "SETUID",
                "SETGID",
                "SETPCAP"
            ]
        );
    }

    #[test]
    fn volume_captures_write_a_bounded_ring() {
        use crate::plan::Ring;
        let mut plan = poc_plan();
        let Tool::Capture(c) = &mut plan.tool else {
            unreachable!()
        };
        c.format = CaptureFormat::Pcapng;
        c.ring = Some(Ring {
            file_size_mb: 107,
            file_count: 10,
            rotate_every_secs: None,
        });
        plan.output = Output::Pvc("captures".into());
        let args = podtracer_args(&target(), "once", &plan, &Settings::default());
        let w = args.iter().position(|a| a == "-w").unwrap();
        assert_eq!(
            &args[w..w + 6],
            [
                "-w",
                "/output/cnf-telco_cnf-example-pod-1_once.pcapng",
                "-C",
                "107",
                "-W",
                "10"
            ]
        );
        assert!(!args.contains(&"-G".to_owned()), "{args:?}");
        let Tool::Capture(c) = &mut plan.tool else {
            unreachable!()
        };
        c.ring.as_mut().unwrap().rotate_every_secs = Some(300);
        let args = podtracer_args(&target(), "once", &plan, &Settings::default());
        let g = args.iter().position(|a| a == "-G").unwrap();
        assert_eq!(args[g + 1], "300");
        // From a CR through the plan: defaults fill the admin's bound.
        let spec: crate::crd::SnoopyJobSpec = serde_json::from_value(serde_json::json!({
            "targetNamespace": "cnf-telco",
            "podSelector": {},
            "tool": {"capture": {"duration": "1h"}},
            "output": {"volume": {"hostPath": {}}},
        }))
        .unwrap();
        let settings = Settings::default();
        let plan = Plan::for_snoopyjob(
            &spec,
            crate::plan::CrRef {
                namespace: "cnf-telco",
                name: "cr",
                authorization: &crate::plan::CHECKED,
            },
            &settings,
        )
        .unwrap();
        let args = podtracer_args(&target(), "once", &plan, &settings);
        let c = args.iter().position(|a| a == "-C").unwrap();
        assert_eq!(&args[c..c + 4], ["-C", "107", "-W", "10"]);
    }

    fn kafka_plan(tls: bool, sasl: bool, output: Output) -> Plan {
        use crate::crd::SaslMechanism;
        use crate::plan::{KafkaSasl, KafkaTls};
        let mut plan = poc_plan();
        plan.output = output;
        if plan.output != Output::Logs {
            let Tool::Capture(c) = &mut plan.tool else {
                unreachable!()
            };
            c.format = CaptureFormat::Pcapng;
        }
        plan.kafka = Some(Kafka {
            brokers: vec!["10.0.0.5:9092".into(), "kafka.data.svc:9093".into()],
            topic: "snoopy.packets".into(),
            tls: tls.then(|| KafkaTls {
                secret_name: "kafka-tls".into(),
                ca_key: "ca.crt".into(),
                client: Some(("tls.crt".into(), "tls.key".into())),
            }),
            sasl: sasl.then(|| KafkaSasl {
                mechanism: SaslMechanism::ScramSha512,
                secret_name: "kafka-user".into(),
                username_key: "user".into(),
                password_key: "pass".into(),
            }),
        });
        plan
    }

    fn env_of(c: &Container) -> BTreeMap<String, EnvVar> {
        c.env
            .iter()
            .flatten()
            .map(|e| (e.name.clone(), e.clone()))
            .collect()
    }

    #[test]
    fn kafka_jobs_sink_to_the_topic_from_the_node_network() {
        let job = build(
            &owner(),
            &target(),
            "once",
            &kafka_plan(false, false, Output::Logs),
            &Settings::default(),
        );
        let pod = job.spec.unwrap().template.spec.unwrap();
        assert_eq!(pod.host_network, Some(true));
        assert_eq!(pod.dns_policy.as_deref(), Some("ClusterFirstWithHostNet"));
        assert_eq!(pod.host_pid, Some(true), "the pod's netns is found by PID");
        let c = &pod.containers[0];
        let args = c.args.clone().unwrap();
        let sink = args.iter().position(|a| a == "--sink").unwrap();
        assert_eq!(
            args[sink + 1],
            "kafka://10.0.0.5:9092,kafka.data.svc:9093/snoopy.packets"
        );
        assert!(
            !args.iter().any(|a| a == "-w" || a == "--format"),
            "only Kafka: no file, no log format: {args:?}"
        );
        assert!(args.contains(&"--termination-log".to_owned()));
        let env = env_of(c);
        assert_eq!(
            env["NODE_NAME"]
                .value_from
                .as_ref()
                .unwrap()
                .field_ref
                .as_ref()
                .unwrap()
                .field_path,
            "spec.nodeName"
        );
        assert_eq!(
            env["SNOOPY_RUN_ID"].value.as_deref(),
            Some("cnf-telco/tcpdump-sample/once")
        );
        assert!(
            !env.keys().any(|k| k.contains("TLS") || k.contains("SASL")),
            "{env:?}"
        );
        assert!(!pod.volumes.unwrap().iter().any(|v| v.secret.is_some()));

        // Without Kafka: the pod network, no environment.
        let plain = build(
            &owner(),
            &target(),
            "once",
            &poc_plan(),
            &Settings::default(),
        );
        let pod = plain.spec.unwrap().template.spec.unwrap();
        assert_eq!((pod.host_network, pod.dns_policy), (None, None));
        assert!(pod.containers[0].env.is_none());
    }

    #[test]
    fn kafka_tls_and_sasl_come_from_read_only_secrets() {
        let job = build(
            &owner(),
            &target(),
            "1700000000",
            &kafka_plan(true, true, Output::HostPath("/var/lib/snoopy".into())),
            &Settings::default(),
        );
        let pod = job.spec.unwrap().template.spec.unwrap();
        let c = &pod.containers[0];
        let args = c.args.clone().unwrap();
        let sink = args.iter().position(|a| a == "--sink").unwrap();
        assert!(args[sink + 1].starts_with("kafkas://"), "{args:?}");
        // The volume as well: the pcapng file, in the format asked.
        let w = args.iter().position(|a| a == "-w").unwrap();
        assert!(args[w + 1].ends_with("_1700000000.pcapng"));
        assert_eq!(
            args[args.iter().position(|a| a == "--format").unwrap() + 1],
            "pcapng"
        );
        let env = env_of(c);
        let value = |k: &str| env[k].value.clone().unwrap();
        assert_eq!(
            value("SNOOPY_KAFKA_TLS_CA_FILE"),
            format!("{KAFKA_TLS_DIR}/ca.crt")
        );
        assert_eq!(
            value("SNOOPY_KAFKA_TLS_CERT_FILE"),
            format!("{KAFKA_TLS_DIR}/tls.crt")
        );
        assert_eq!(
            value("SNOOPY_KAFKA_TLS_KEY_FILE"),
            format!("{KAFKA_TLS_DIR}/tls.key")
        );
        assert_eq!(value("SNOOPY_KAFKA_SASL_MECHANISM"), "SCRAM-SHA-512");
        assert_eq!(
            value("SNOOPY_KAFKA_SASL_PASSWORD_FILE"),
            format!("{KAFKA_SASL_DIR}/pass")
        );
        assert!(!env.contains_key("SNOOPY_KAFKA_SASL_PASSWORD"));
        let user = env["SNOOPY_KAFKA_SASL_USERNAME"]
            .value_from
            .as_ref()
            .unwrap()
            .secret_key_ref
            .clone()
            .unwrap();
        assert_eq!(
            (user.name.as_str(), user.key.as_str()),
            ("kafka-user", "user")
        );
        let volumes = pod.volumes.unwrap();
        for (name, secret, dir) in [
            ("kafka-tls", "kafka-tls", KAFKA_TLS_DIR),
            ("kafka-sasl", "kafka-user", KAFKA_SASL_DIR),
        ] {
            let v = volumes.iter().find(|v| v.name == name).unwrap();
            let s = v.secret.as_ref().unwrap();
            assert_eq!(s.secret_name.as_deref(), Some(secret));
            assert_eq!((s.default_mode, s.optional), (Some(0o400), Some(true)));
            let m = c
                .volume_mounts
                .iter()
                .flatten()
                .find(|m| m.name == name)
                .unwrap();
            assert_eq!((m.mount_path.as_str(), m.read_only), (dir, Some(true)));
        }
        // No secret value anywhere in the Job.
        let text = serde_json::to_string(&c).unwrap();
        assert!(!text.contains("SNOOPY_KAFKA_SASL_PASSWORD\""), "{text}");
    }

    #[test]
    fn flows_to_kafka() {
        let mut plan = kafka_plan(false, false, Output::Logs);
        plan.tool = Tool::Flows {
            duration: Some(std::time::Duration::from_secs(30)),
            interval: None,
        };
        plan.kafka.as_mut().unwrap().topic = "snoopy.flows".into();
        let args = podtracer_args(&target(), "once", &plan, &Settings::default());
        assert_eq!(
            &args[args.len() - 4..],
            [
                "--sink",
                "kafka://10.0.0.5:9092,kafka.data.svc:9093/snoopy.flows",
                "--termination-log",
                "/dev/termination-log"
            ]
        );
    }

    #[test]
    fn long_names_stay_valid() {
        let mut t = target();
        t.name = "p".repeat(200);
        let mut o = owner();
        o.name = "c".repeat(200);
        let job = build(&o, &t, "once", &poc_plan(), &Settings::default());
        assert!(job.metadata.name.unwrap().len() <= 63);
        let labels = job.metadata.labels.unwrap();
        assert!(
            !labels.contains_key(naming::OWNER_NAME) && !labels.contains_key(naming::TARGET_POD)
        );
        assert!(labels.values().all(|v| v.len() <= 63));
        assert!(
            job.metadata.annotations.unwrap()[naming::TARGET_ANNOTATION]
                .ends_with(&"p".repeat(200))
        );
    }

    /// A node's Job: the pods named NS/NAME (snapshot) or the selector over the namespaces
    /// (follow, hostNetwork pods skipped unless allowed, the target cap), the count each
    /// pod's, one file per node, and the Job labelled with its node and annotated with its
    /// targets.
    #[test]
    fn a_node_job_captures_its_nodes_targets() {
        let settings = Settings::default();
        let mut plan = crate::job::fixtures::poc_plan();
        let a = target();
        let b = Target {
            name: "cnf-example-pod-2".into(),
            uid: "pod-uid-2".into(),
            ..target()
        };
        let mut node_job = NodeJob {
            name: "snoopy-node-node-a-x".into(),
            node: "node-a".into(),
            seq: 0,
            targets: vec![a.clone(), b.clone()],
            follow_namespaces: None,
            max_pods: 500,
        };
        let args = node_request(&node_job, "once", &plan, &settings).to_args();
        let pods: Vec<&str> = args
            .windows(2)
            .filter(|w| w[0] == "--pod")
            .map(|w| w[1].as_str())
            .collect();
        assert_eq!(
            pods,
            ["cnf-telco/cnf-example-pod-1", "cnf-telco/cnf-example-pod-2"]
        );
        assert!(
            args.windows(2).any(|w| w == ["--count-per-pod", "50"]),
            "{args:?}"
        );
        assert!(!args.contains(&"-c".to_owned()), "{args:?}");

        plan.mode = TargetMode::Follow;
        plan.host_network = true;
        node_job.follow_namespaces = Some(vec!["cnf-telco".into()]);
        let args = node_request(&node_job, "once", &plan, &settings).to_args();
        assert!(
            !args.contains(&"--skip-host-network".to_owned()),
            "{args:?}"
        );
        plan.host_network = false;
        let args = node_request(&node_job, "once", &plan, &settings).to_args();
        let has = |flag: &str, value: &str| args.windows(2).any(|w| w == [flag, value]);
        assert!(has("--selector", "networkMonitor=true"), "{args:?}");
        assert!(has("--namespace", "cnf-telco"), "{args:?}");
        assert!(has("--max-pods", "500"), "{args:?}");
        assert!(args.contains(&"--skip-host-network".to_owned()), "{args:?}");
        assert!(!args.contains(&"--pod".to_owned()), "{args:?}");

        plan.output = Output::HostPath("/var/lib/snoopy/cnf-telco/t".into());
        node_job.seq = 2;
        let job = build_for_node(&fixtures::owner(), &node_job, "once", &plan, &settings);
        let spec = job.spec.as_ref().unwrap().template.spec.as_ref().unwrap();
        let args = spec.containers[0].args.clone().unwrap();
        assert!(
            args.windows(2)
                .any(|w| w[0] == "-w" && w[1].starts_with("/output/node-node-a_once_2.")),
            "{args:?}"
        );
        assert_eq!(spec.node_name.as_deref(), Some("node-a"));
        let labels = job.metadata.labels.as_ref().unwrap();
        assert_eq!(labels[naming::JOB_NODE], "node-a");
        assert!(!labels.contains_key(naming::TARGET_UID));
        let listed: Vec<Listed> = serde_json::from_str(
            &job.metadata.annotations.as_ref().unwrap()[naming::TARGETS_ANNOTATION],
        )
        .unwrap();
        assert_eq!(listed.len(), 2);
        assert_eq!(listed[1].uid, "pod-uid-2");

        // Flows: the same pods, each metered on its own side by one `podtracer flows`.
        plan.tool = Tool::Flows {
            duration: Some(std::time::Duration::from_secs(30)),
            interval: None,
        };
        plan.mode = TargetMode::Snapshot;
        let args = node_request(&node_job, "once", &plan, &settings).to_args();
        assert_eq!(args[0], "flows");
        assert!(
            args.windows(2)
                .any(|w| w == ["--pod", "cnf-telco/cnf-example-pod-2"]),
            "{args:?}"
        );
    }
}
