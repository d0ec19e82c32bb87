//! End to end on a real node: the operator deployed in-cluster from its manifests (under its
//! own ServiceAccount), real target pods on the testbed kubelet, real podtracer Jobs.
//!
//! Needs `testbed/k8s/node.sh up` and the images (`make images`); `make test-cluster` does
//! both. These tests fail (never skip) when the node or the images are missing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, DeleteParams, ListParams, LogParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::json;
use snoopy_operator::controller::CaptureResource;
use snoopy_operator::crd::{CaptureStatus, Phase, SnoopyJob, TargetPhase, TargetStatus, Tcpdump};

use snoopy_testkit::kafka::Broker;

use crate::support::{client, delete_namespace, jobs_of, namespace, status_of, wait_for};

/// The operator's namespace in its manifests.
const OPERATOR_NS: &str = "snoopy-operator";
/// Where real Jobs take their time: image already local, but pods start in 1–3 s each.
const T: Duration = Duration::from_secs(120);
const NODE_HINT: &str = "run `testbed/k8s/node.sh up` and `make images` (or `make test-cluster`)";

fn manifests(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// Runs kubectl (the testbed's, from PATH) with an argv; panics with its stderr on failure.
fn kubectl(args: &[&str]) -> String {
    let out = Command::new("kubectl")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("kubectl {args:?}: {e}: {NODE_HINT}"));
    assert!(
        out.status.success(),
        "kubectl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The Ready node of the testbed, labelled as the samples and the manager expect.
async fn ready_node(client: &Client) -> String {
    let nodes: Api<Node> = Api::all(client.clone());
    let ready = nodes
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .find(|n| {
            n.status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
        })
        .unwrap_or_else(|| panic!("no Ready node: {NODE_HINT}"));
    let name = ready.name_any();
    kubectl(&[
        "label",
        "node",
        &name,
        "cnf-telco=true",
        "management=true",
        "--overwrite",
    ]);
    name
}

/// Deploys the operator from `config/testbed` (the default manifests plus the testbed's host
/// network patch) and waits until it is available. Idempotent: every test calls it.
///
/// nextest runs each test in its own process, and two `kubectl apply` at once can both find
/// the Deployment missing and both create it (one fails with AlreadyExists), so the apply
/// holds an exclusive lock on a file shared by the test processes.
async fn deploy_operator(client: &Client) -> String {
    let node = ready_node(client).await;
    {
        let lock_path = std::env::temp_dir().join("snoopy-node-tests-deploy.lock");
        let lock = std::fs::File::create(&lock_path)
            .unwrap_or_else(|e| panic!("create {}: {e}", lock_path.display()));
        lock.lock()
            .unwrap_or_else(|e| panic!("flock {}: {e}", lock_path.display()));
        kubectl(&["apply", "-k", manifests("config/testbed").to_str().unwrap()]);
    }
    let api: Api<Deployment> = Api::namespaced(client.clone(), OPERATOR_NS);
    wait_for(T, "the operator Deployment available", || {
        let api = api.clone();
        async move {
            let d = api.get_opt("snoopy-operator").await.ok()??;
            let status = d.status?;
            (status.available_replicas? >= 1 && status.updated_replicas? >= 1).then_some(())
        }
    })
    .await;
    node
}

/// A fresh namespace with two pods labelled `networkMonitor: "true"`: `b` sleeping and `a`
/// pinging `b` five times a second. Returns the namespace and the IPs of a and b.
async fn pinging_pair(client: &Client, prefix: &str) -> (String, String, String) {
    let ns = namespace(client, prefix).await;
    let labels = [("networkMonitor", "true")];
    let ip_b = busybox_pod(client, &ns, "b", &labels, &["sleep", "3600"]).await;
    let ip_a = busybox_pod(client, &ns, "a", &labels, &["ping", "-i", "0.2", &ip_b]).await;
    (ns, ip_a, ip_b)
}

/// A busybox pod running `command` (argv); waits until Running and returns its IP.
async fn busybox_pod(
    client: &Client,
    ns: &str,
    name: &str,
    labels: &[(&str, &str)],
    command: &[&str],
) -> String {
    let labels: BTreeMap<&str, &str> = labels.iter().copied().collect();
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "terminationGracePeriodSeconds": 1,
            "containers": [{"name": "main", "image": "localhost/snoopy/busybox:1",
                "imagePullPolicy": "Never", "command": command}],
        },
    }))
    .unwrap();
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    api.create(&PostParams::default(), &pod).await.unwrap();
    wait_for(T, &format!("pod {ns}/{name} Running"), || {
        let api = api.clone();
        async move {
            let status = api.get(name).await.ok()?.status?;
            (status.phase.as_deref() == Some("Running"))
                .then_some(status.pod_ip)
                .flatten()
        }
    })
    .await
}

/// Waits until the CR's phase is final and returns its status.
async fn finished<K: CaptureResource>(api: &Api<K>, name: &str) -> CaptureStatus {
    wait_for(T, &format!("{name} finished"), || async {
        status_of(api, name)
            .await
            .filter(|s| matches!(s.phase, Some(Phase::Succeeded | Phase::Failed)))
    })
    .await
}

/// The log of the (one) pod of a Job, once it has a pod with a log.
async fn try_job_log(client: &Client, job: &str) -> Option<String> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), OPERATOR_NS);
    let pod = pods
        .list(&ListParams::default().labels(&format!("job-name={job}")))
        .await
        .ok()?
        .items
        .pop()?;
    pods.logs(&pod.name_any(), &LogParams::default()).await.ok()
}

/// The log of the (one) pod of a finished Job.
async fn job_log(client: &Client, job: &str) -> String {
    try_job_log(client, job)
        .await
        .unwrap_or_else(|| panic!("Job {job} has no pod with a log"))
}

/// The hostPath prefix `config/testbed` sets (`SNOOPY_HOST_PATH_PREFIX`), read from the
/// overlay itself so the two cannot drift apart.
fn host_path_prefix() -> PathBuf {
    let patch = std::fs::read_to_string(manifests("config/testbed/manager_patch.yaml")).unwrap();
    let value: serde_yaml::Value = serde_yaml::from_str(&patch).unwrap();
    let env = &value["spec"]["template"]["spec"]["containers"][0]["env"];
    let prefix = env
        .as_sequence()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "SNOOPY_HOST_PATH_PREFIX")
        .and_then(|e| e["value"].as_str())
        .expect("config/testbed sets SNOOPY_HOST_PATH_PREFIX");
    PathBuf::from(prefix)
}

/// The node directory of CR `ns/name`'s hostPath output (`PREFIX/NS/NAME`: the operator
/// chooses it, not the CR), empty.
fn output_dir(ns: &str, name: &str) -> PathBuf {
    let dir = host_path_prefix().join(ns).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Creates SnoopyJob `name` in `ns` with `spec` (its JSON form) and returns its uid.
async fn create_snoopyjob(
    api: &Api<SnoopyJob>,
    ns: &str,
    name: &str,
    spec: serde_json::Value,
) -> String {
    let cr: SnoopyJob = serde_json::from_value(json!({
        "apiVersion": "snoopy.fennecproject.io/v1alpha1", "kind": "SnoopyJob",
        "metadata": {"name": name, "namespace": ns},
        "spec": spec,
    }))
    .unwrap();
    api.create(&PostParams::default(), &cr)
        .await
        .unwrap()
        .uid()
        .unwrap()
}

/// Deletes a CR and waits until it, its Jobs and their pods are gone.
async fn delete_and_check_nothing_left<K: CaptureResource>(
    client: &Client,
    api: &Api<K>,
    name: &str,
    uid: &str,
) {
    api.delete(name, &DeleteParams::default()).await.unwrap();
    let selector = snoopy_operator::job::owner_selector(uid);
    wait_for(T, &format!("{name}, its Jobs and their pods gone"), || {
        let (api, client, selector) = (api.clone(), client.clone(), selector.clone());
        async move {
            let cr_gone = api.get_opt(name).await.ok()?.is_none();
            let jobs: Api<Job> = Api::namespaced(client.clone(), OPERATOR_NS);
            let pods: Api<Pod> = Api::namespaced(client, OPERATOR_NS);
            let lp = ListParams::default().labels(&selector);
            let left =
                jobs.list(&lp).await.ok()?.items.len() + pods.list(&lp).await.ok()?.items.len();
            (cr_gone && left == 0).then_some(())
        }
    })
    .await;
}

/// Packet lines of a podtracer text log: everything but its own `podtracer:` messages and
/// the closing counters.
fn packet_lines(log: &str) -> Vec<&str> {
    log.lines()
        .filter(|l| !l.starts_with("podtracer:") && !l.contains(" packets ") && !l.is_empty())
        .collect()
}

/// The proof of concept, as its README tells it: the sample Deployment (two pods pinging each
/// other) and the sample Tcpdump → one Job per pod on the pod's node, 50 packets each in the
/// Job logs with the ICMP exchange between the two pod IPs, the CR Succeeded with the counts.
/// Then the Job's capabilities are shown to be the minimum: its pod with any one of them
/// removed fails, naming the missing capability.
#[tokio::test]
async fn the_poc_sample_captures_icmp_between_its_two_pods_with_three_capabilities() {
    let client = client().await;
    let node = deploy_operator(&client).await;
    let deployment = manifests("config/samples/sample-deployment.yaml");
    let sample = manifests("config/samples/pcap_v1alpha1_tcpdump.yaml");
    kubectl(&["apply", "-f", deployment.to_str().unwrap()]);
    let pods: Api<Pod> = Api::namespaced(client.clone(), "cnf-telco");
    let targets: Vec<Pod> = wait_for(T, "both sample pods Running", || {
        let pods = pods.clone();
        async move {
            let list = pods
                .list(&ListParams::default().labels("networkMonitor=true"))
                .await
                .ok()?
                .items;
            let running = list.iter().filter(|p| {
                p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
                    && p.metadata.deletion_timestamp.is_none()
            });
            (running.count() == 2).then_some(list)
        }
    })
    .await;
    // Captured from the start, the pods' first seconds are their search for each other:
    // begin once both ping.
    for pod in &targets {
        let name = pod.name_any();
        wait_for(T, &format!("{name} pinging its sibling"), || {
            let (pods, name) = (pods.clone(), name.clone());
            async move {
                let log = pods.logs(&name, &LogParams::default()).await.ok()?;
                log.contains("pinging ").then_some(())
            }
        })
        .await;
    }
    let ips: BTreeMap<String, String> = targets
        .iter()
        .map(|p| {
            let ip = p.status.as_ref().unwrap().pod_ip.clone().unwrap();
            (p.name_any(), ip)
        })
        .collect();

    // A CR left by an earlier run would already show its old status: start from none.
    kubectl(&[
        "delete",
        "-f",
        sample.to_str().unwrap(),
        "--ignore-not-found",
    ]);
    kubectl(&["apply", "-f", sample.to_str().unwrap()]);
    let api: Api<Tcpdump> = Api::namespaced(client.clone(), "cnf-telco");
    let uid = api.get("tcpdump-sample").await.unwrap().uid().unwrap();
    let status = finished(&api, "tcpdump-sample").await;
    assert_eq!(status.phase, Some(Phase::Succeeded), "{status:#?}");
    assert_eq!((status.target_count, status.succeeded), (2, 2));

    let jobs = jobs_of(&client, OPERATOR_NS, &uid).await;
    assert_eq!(jobs.len(), 2, "exactly one Job per labelled pod");
    let mut seen = Vec::new();
    for job in &jobs {
        let spec = job.spec.as_ref().unwrap().template.spec.clone().unwrap();
        assert_eq!(spec.node_name.as_deref(), Some(node.as_str()));
        let args = spec.containers[0].args.clone().unwrap();
        let target = args[args.iter().position(|a| a == "--pod").unwrap() + 1].clone();
        let target_node = pods.get(&target).await.unwrap().spec.unwrap().node_name;
        assert_eq!(
            spec.node_name,
            target_node,
            "Job {} on its pod's node",
            job.name_any()
        );
        let complete = job.status.as_ref().and_then(|s| s.conditions.as_ref());
        assert!(
            complete.is_some_and(|c| c
                .iter()
                .any(|c| c.type_ == "Complete" && c.status == "True")),
            "{job:?}"
        );

        let log = job_log(&client, &job.name_any()).await;
        let lines = packet_lines(&log);
        assert_eq!(lines.len(), 50, "50 packet lines in {log}");
        assert!(log.contains("50 packets captured"), "{log}");
        let me = &ips[&target];
        let peer = ips.values().find(|ip| *ip != me).unwrap();
        for (from, to, what) in [(me, peer, "echo request"), (peer, me, "echo reply")]
            .into_iter()
            .chain([(peer, me, "echo request"), (me, peer, "echo reply")])
        {
            let want = format!("IP {from} > {to}: ICMP {what}");
            assert!(
                log.contains(&want),
                "no {want:?} in the log of {target}:\n{log}"
            );
        }
        seen.push(target);
    }
    seen.sort();
    assert_eq!(seen, ips.keys().cloned().collect::<Vec<_>>());
    for t in &status.targets {
        assert_eq!(t.phase, TargetPhase::Succeeded, "{t:?}");
        assert_eq!(t.packets_captured, Some(50), "{t:?}");
        assert_eq!(t.node, node);
        assert!(
            t.start_time.is_some() && t.completion_time.is_some(),
            "{t:?}"
        );
    }

    minimal_capabilities(&client, &jobs[0]).await;

    delete_and_check_nothing_left(&client, &api, "tcpdump-sample", &uid).await;
    kubectl(&["delete", "-f", deployment.to_str().unwrap(), "--wait=false"]);
}

/// The Job's pod template with one capability removed at a time, run as plain pods: each
/// fails and says which capability is missing. The full set is the one that just succeeded.
async fn minimal_capabilities(client: &Client, job: &Job) {
    let template = job.spec.as_ref().unwrap().template.clone();
    let spec = template.spec.unwrap();
    let caps = spec.containers[0]
        .security_context
        .as_ref()
        .and_then(|s| s.capabilities.as_ref())
        .and_then(|c| c.add.clone())
        .unwrap();
    let mut sorted = caps.clone();
    sorted.sort();
    assert_eq!(sorted, ["NET_RAW", "SYS_ADMIN", "SYS_PTRACE"]);
    let privileged = spec.containers[0]
        .security_context
        .as_ref()
        .and_then(|s| s.privileged);
    assert_ne!(privileged, Some(true), "the Job must not be privileged");

    let pods: Api<Pod> = Api::namespaced(client.clone(), OPERATOR_NS);
    let mut names = Vec::new();
    for cap in &caps {
        let mut spec = spec.clone();
        let ctx = spec.containers[0].security_context.as_mut().unwrap();
        let add = ctx.capabilities.as_mut().unwrap().add.as_mut().unwrap();
        add.retain(|c| c != cap);
        let name = format!("caps-without-{}", cap.to_lowercase().replace('_', "-"));
        let pod = Pod {
            metadata: kube::api::ObjectMeta {
                name: Some(name.clone()),
                labels: Some([("snoopy-test".to_string(), "caps".to_string())].into()),
                ..Default::default()
            },
            spec: Some(spec),
            status: None,
        };
        let _ = pods.delete(&name, &DeleteParams::default()).await;
        wait_for(T, &format!("old {name} gone"), || {
            let pods = pods.clone();
            let name = name.clone();
            async move { pods.get_opt(&name).await.ok()?.is_none().then_some(()) }
        })
        .await;
        pods.create(&PostParams::default(), &pod).await.unwrap();
        names.push((cap.clone(), name));
    }
    for (cap, name) in &names {
        wait_for(T, &format!("{name} Failed"), || {
            let pods = pods.clone();
            async move {
                let phase = pods.get(name).await.ok()?.status?.phase?;
                assert_ne!(phase, "Succeeded", "{name} succeeded without {cap}");
                (phase == "Failed").then_some(())
            }
        })
        .await;
        let log = pods.logs(name, &LogParams::default()).await.unwrap();
        assert!(
            log.contains(&format!("CAP_{cap}")),
            "the pod without {cap} must name it: {log}"
        );
        pods.delete(name, &DeleteParams::default()).await.unwrap();
    }
}

/// A SnoopyJob capture with a filter and a hostPath output: each target's pcapng file on
/// the node holds only the packets the filter keeps (read by tshark), as many as asked.
#[tokio::test]
async fn a_filtered_capture_writes_pcapng_files_tshark_reads() {
    let client = client().await;
    deploy_operator(&client).await;
    let (ns, _, ip_b) = pinging_pair(&client, "e2e-volume").await;
    let dir = output_dir(&ns, "echo-requests");

    let api: Api<SnoopyJob> = Api::namespaced(client.clone(), &ns);
    let uid = create_snoopyjob(
        &api,
        &ns,
        "echo-requests",
        json!({
            "targetNamespace": ns,
            "podSelector": {"matchLabels": {"networkMonitor": "true"}},
            "tool": {"capture": {"interface": "eth0", "filter": "icmp[icmptype] == icmp-echo",
                                 "packetCount": 10, "format": "pcapng"}},
            "output": {"volume": {"hostPath": {}}},
            "activeDeadlineSeconds": 60,
        }),
    )
    .await;
    let status = finished(&api, "echo-requests").await;
    assert_eq!(status.phase, Some(Phase::Succeeded), "{status:#?}");

    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert_eq!(files.len(), 2, "{files:?}");
    for (file, pod) in files.iter().zip(["a", "b"]) {
        let name = file.file_name().unwrap().to_str().unwrap();
        assert!(
            // The first file of the bounded ring every volume capture writes (-C/-W: FILE0…).
            name.starts_with(&format!("{ns}_{pod}_")) && name.ends_with(".pcapng0"),
            "{name}"
        );
        let rows = tshark_rows(file, &["icmp.type", "ip.dst"]);
        assert_eq!(rows.len(), 10, "{name}: {rows:?}");
        for row in rows {
            assert_eq!(row, format!("8\t{ip_b}"), "{name}: only echo requests to b");
        }
    }
    for t in &status.targets {
        assert_eq!(t.packets_captured, Some(10), "{t:?}");
        // The status names the file each Job wrote, as it is in the CR's directory.
        let file = format!("{ns}_{}_once.pcapng0", t.pod);
        assert_eq!(t.files.as_deref(), Some(&[file.clone()][..]), "{t:?}");
        assert!(dir.join(&file).exists(), "{file}");
    }
    delete_and_check_nothing_left(&client, &api, "echo-requests", &uid).await;
    delete_namespace(&client, &ns).await;
    let _ = std::fs::remove_dir_all(dir.parent().unwrap());
}

/// The targets of a CR whose pod is named `pod`.
fn target<'a>(status: &'a CaptureStatus, pod: &str) -> Option<&'a TargetStatus> {
    status.targets.iter().find(|t| t.pod == pod)
}

/// `tshark -n -r FILE -T fields -e F1 -e F2 …`: one tab-separated row per packet.
fn tshark_rows(file: &Path, fields: &[&str]) -> Vec<String> {
    let mut cmd = Command::new("tshark");
    cmd.args(["-n", "-r"]).arg(file).args(["-T", "fields"]);
    for field in fields {
        cmd.args(["-e", field]);
    }
    let out = cmd.output().expect("tshark (apt-get install tshark)");
    assert!(
        out.status.success(),
        "tshark -r {}: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

/// `ip.src`, `ip.dst` and `icmp.type` of each packet.
fn icmp_rows(file: &Path) -> Vec<String> {
    tshark_rows(file, &["ip.src", "ip.dst", "icmp.type"])
}

/// `targets: follow` on a real Deployment: a pod scaled up later gets its own Job; a target
/// pod deleted while its Job captures ends `Gone` with a reason, and the packets captured
/// until then are in a valid pcapng on the volume, while the other target's capture goes on
/// to `Succeeded`; the replacement pod the Deployment starts is followed too.
#[tokio::test]
async fn follow_picks_up_a_scaled_up_pod_and_a_deleted_target_ends_gone() {
    let client = client().await;
    deploy_operator(&client).await;
    let ns = namespace(&client, "e2e-follow").await;
    let peer = busybox_pod(&client, &ns, "peer", &[], &["sleep", "3600"]).await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    let deployment: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "pinger"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "pinger"}},
            "template": {
                "metadata": {"labels": {"app": "pinger"}},
                "spec": {
                    "terminationGracePeriodSeconds": 1,
                    "containers": [{"name": "main", "image": "localhost/snoopy/busybox:1",
                        "imagePullPolicy": "Never", "command": ["ping", "-i", "0.2", peer]}],
                },
            },
        },
    }))
    .unwrap();
    deployments
        .create(&PostParams::default(), &deployment)
        .await
        .unwrap();
    let dir = output_dir(&ns, "follow");
    let api: Api<SnoopyJob> = Api::namespaced(client.clone(), &ns);
    let uid = create_snoopyjob(
        &api,
        &ns,
        "follow",
        json!({
            "targetNamespace": ns,
            "podSelector": {"matchLabels": {"app": "pinger"}},
            "targets": "follow",
            "tool": {"capture": {"interface": "eth0", "filter": "icmp", "duration": "20s",
                                 "format": "pcapng"}},
            "output": {"volume": {"hostPath": {}}},
            "activeDeadlineSeconds": 120,
        }),
    )
    .await;

    // A Job is capturing once its log says so.
    let capturing = |exclude: Vec<String>| {
        let (api, client) = (api.clone(), client.clone());
        async move {
            wait_for(
                T,
                &format!("a target other than {exclude:?} capturing"),
                || {
                    let (api, client, exclude) = (api.clone(), client.clone(), exclude.clone());
                    async move {
                        let status = status_of(&api, "follow").await?;
                        for t in &status.targets {
                            if t.phase == TargetPhase::Running && !exclude.contains(&t.pod) {
                                let log = try_job_log(&client, &t.job).await?;
                                if log.contains("listening on") {
                                    return Some(t.clone());
                                }
                            }
                        }
                        None
                    }
                },
            )
            .await
        }
    };
    let first = capturing(vec![]).await;
    deployments
        .patch(
            "pinger",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 2}})),
        )
        .await
        .unwrap();
    let second = capturing(vec![first.pod.clone()]).await;
    assert_ne!(first.job, second.job, "one Job per target");
    // Let the first capture see some pings, then delete its pod.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    pods.delete(&first.pod, &DeleteParams::default())
        .await
        .unwrap();

    let status = wait_for(T, "the first target Gone, the second Succeeded", || async {
        let status = status_of(&api, "follow").await?;
        let a = target(&status, &first.pod)?;
        let b = target(&status, &second.pod)?;
        (a.phase == TargetPhase::Gone && a.completion_time.is_some() && b.phase.is_final())
            .then_some(status)
    })
    .await;
    let gone = target(&status, &first.pod).unwrap();
    assert_eq!(gone.reason.as_deref(), Some("TargetPodDeleted"), "{gone:?}");
    let captured = gone.packets_captured.expect("the Gone target's count");
    assert!(captured >= 5, "pings before the pod went: {gone:?}");
    let log = job_log(&client, &gone.job).await;
    assert!(
        log.contains("went away"),
        "the capture ended because the pod went, not by its duration:\n{log}"
    );
    let other = target(&status, &second.pod).unwrap();
    assert_eq!(other.phase, TargetPhase::Succeeded, "unaffected: {other:?}");
    // The Deployment replaced the deleted pod: followed too, captured to its end. (Waiting
    // for it also keeps the clean-up quick: kubelet 1.20 leaves the pod of a Job deleted
    // while running Terminating for about a minute.)
    let third = wait_for(T, "the replacement pod followed and captured", || async {
        let status = status_of(&api, "follow").await?;
        status
            .targets
            .into_iter()
            .find(|t| t.pod != first.pod && t.pod != second.pod && t.phase.is_final())
    })
    .await;
    assert_eq!(third.phase, TargetPhase::Succeeded, "{third:?}");

    for t in [gone, other, &third] {
        // The first (here the only) file of the bounded ring: FILE0.
        let file = dir.join(format!("{ns}_{}_{}.pcapng0", t.pod, t.run));
        assert!(file.exists(), "{} missing", file.display());
        assert_eq!(
            Some(tshark_rows(&file, &["frame.number"]).len() as u64),
            t.packets_captured,
            "{}: every counted packet is in the file",
            t.pod
        );
    }

    delete_and_check_nothing_left(&client, &api, "follow", &uid).await;
    delete_namespace(&client, &ns).await;
    let _ = std::fs::remove_dir_all(dir.parent().unwrap());
}

/// `jobsPer: node` on a real node: one Job captures both pinging pods into one pcapng with
/// an interface per pod; a third pod scaled up during the run is picked up by that same Job
/// (no second Job); a target deleted mid-run ends Gone with what it captured while the
/// others run to the end; each target's count in the status equals its interface's
/// packets in the file.
#[tokio::test]
async fn one_job_per_node_captures_every_pod_and_follows_them() {
    let client = client().await;
    deploy_operator(&client).await;
    let node = ready_node(&client).await;
    let ns = namespace(&client, "e2e-pernode").await;
    let peer = busybox_pod(&client, &ns, "peer", &[], &["sleep", "3600"]).await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    let deployment: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "pinger"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "pinger"}},
            "template": {
                "metadata": {"labels": {"app": "pinger"}},
                "spec": {
                    "terminationGracePeriodSeconds": 1,
                    "containers": [{"name": "main", "image": "localhost/snoopy/busybox:1",
                        "imagePullPolicy": "Never", "command": ["ping", "-i", "0.2", peer]}],
                },
            },
        },
    }))
    .unwrap();
    deployments
        .create(&PostParams::default(), &deployment)
        .await
        .unwrap();
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let running_pingers = || {
        let pods = pods.clone();
        async move {
            let list = pods
                .list(&ListParams::default().labels("app=pinger"))
                .await
                .ok()?;
            let names: Vec<String> = list
                .items
                .iter()
                .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
                .filter(|p| p.metadata.deletion_timestamp.is_none())
                .map(ResourceExt::name_any)
                .collect();
            Some(names)
        }
    };
    wait_for(T, "two pingers running", || async {
        running_pingers().await.filter(|n| n.len() == 2)
    })
    .await;
    let dir = output_dir(&ns, "pernode");
    let api: Api<SnoopyJob> = Api::namespaced(client.clone(), &ns);
    let uid = create_snoopyjob(
        &api,
        &ns,
        "pernode",
        json!({
            "targetNamespace": ns,
            "podSelector": {"matchLabels": {"app": "pinger"}},
            "targets": "follow",
            "jobsPer": "node",
            "tool": {"capture": {"interface": "eth0", "filter": "icmp", "duration": "25s",
                                 "format": "pcapng"}},
            "output": {"volume": {"hostPath": {}}},
            "activeDeadlineSeconds": 120,
        }),
    )
    .await;

    // The node's Job captures a pod once its log says it listens in that pod.
    let listening = |pod: String| {
        let (api, client) = (api.clone(), client.clone());
        async move {
            wait_for(T, &format!("the node Job listening in {pod}"), || {
                let (api, client, pod) = (api.clone(), client.clone(), pod.clone());
                async move {
                    let status = status_of(&api, "pernode").await?;
                    let t = status.targets.iter().find(|t| t.pod == pod)?;
                    let log = try_job_log(&client, &t.job).await?;
                    log.contains(&format!("in {}/{pod},", t.namespace))
                        .then(|| t.job.clone())
                }
            })
            .await
        }
    };
    let first_two = running_pingers().await.unwrap();
    let job = listening(first_two[0].clone()).await;
    assert_eq!(
        listening(first_two[1].clone()).await,
        job,
        "one Job for the node"
    );
    deployments
        .patch(
            "pinger",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 3}})),
        )
        .await
        .unwrap();
    let third = wait_for(T, "a third pinger running", || async {
        running_pingers()
            .await?
            .into_iter()
            .find(|n| !first_two.contains(n))
    })
    .await;
    assert_eq!(
        listening(third.clone()).await,
        job,
        "the running Job picked the new pod up"
    );
    // Let the first pod's capture see some pings, then delete it.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let deleted = first_two[0].clone();
    pods.delete(&deleted, &DeleteParams::default())
        .await
        .unwrap();

    let status = wait_for(T, "every target final", || async {
        let status = status_of(&api, "pernode").await?;
        (status.targets.len() >= 3 && status.targets.iter().all(|t| t.phase.is_final()))
            .then_some(status)
    })
    .await;
    let jobs = jobs_of(&client, OPERATOR_NS, &uid).await;
    assert_eq!(
        jobs.len(),
        1,
        "one Job for the node, whatever came and went"
    );
    let gone = target(&status, &deleted).unwrap();
    assert_eq!(gone.phase, TargetPhase::Gone, "{gone:?}");
    assert!(
        gone.packets_captured.unwrap_or(0) >= 5,
        "pings before the pod went: {gone:?}"
    );
    for name in [&first_two[1], &third] {
        let t = target(&status, name).unwrap();
        assert_eq!(t.phase, TargetPhase::Succeeded, "unaffected: {t:?}");
    }
    let file = dir.join(format!("node-{node}_once.pcapng0"));
    assert!(file.exists(), "{} missing", file.display());
    let rows = tshark_rows(&file, &["frame.interface_name"]);
    for t in &status.targets {
        let in_file = rows
            .iter()
            .filter(|r| **r == format!("{ns}/{}/eth0", t.pod))
            .count() as u64;
        assert_eq!(
            Some(in_file),
            t.packets_captured,
            "{}: every counted packet is in the node's file",
            t.pod
        );
    }

    delete_and_check_nothing_left(&client, &api, "pernode", &uid).await;
    delete_namespace(&client, &ns).await;
    let _ = std::fs::remove_dir_all(dir.parent().unwrap());
}

/// `flows` as Jobs: each target's log holds JSON flow records — the ICMP conversation a → b,
/// with both ends named `NS/POD` through the runtime — and a closing summary; the status
/// has each Job's packet count (its termination message).
#[tokio::test]
async fn flows_jobs_log_the_pods_conversation_with_pod_names() {
    let client = client().await;
    deploy_operator(&client).await;
    let (ns, ip_a, ip_b) = pinging_pair(&client, "e2e-flows").await;
    let api: Api<SnoopyJob> = Api::namespaced(client.clone(), &ns);
    let uid = create_snoopyjob(
        &api,
        &ns,
        "flows",
        json!({
            "targetNamespace": ns,
            "podSelector": {"matchLabels": {"networkMonitor": "true"}},
            "tool": {"flows": {"duration": "4s", "interval": "2s"}},
            "activeDeadlineSeconds": 60,
        }),
    )
    .await;
    let status = finished(&api, "flows").await;
    assert_eq!(status.phase, Some(Phase::Succeeded), "{status:#?}");
    assert_eq!((status.target_count, status.succeeded), (2, 2));
    for t in &status.targets {
        // 5 pings a second for 4 s, request and reply.
        assert!(
            t.packets_captured.is_some_and(|n| n >= 20),
            "the flows Job's count: {t:?}"
        );
    }
    for job in jobs_of(&client, OPERATOR_NS, &uid).await {
        let log = job_log(&client, &job.name_any()).await;
        let records: Vec<serde_json::Value> = log
            .lines()
            .filter(|l| l.starts_with('{'))
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect();
        assert!(
            records.iter().any(|r| r["type"] == "summary"),
            "a closing summary in:\n{log}"
        );
        let icmp = records
            .iter()
            .find(|r| r["type"] == "flow" && r["protocol"] == "icmp")
            .unwrap_or_else(|| panic!("no ICMP flow record in:\n{log}"));
        assert_eq!(icmp["initiator"]["ip"], ip_a.as_str(), "{icmp}");
        assert_eq!(icmp["responder"]["ip"], ip_b.as_str(), "{icmp}");
        assert_eq!(icmp["initiator"]["name"], format!("{ns}/a"), "{icmp}");
        assert_eq!(icmp["responder"]["name"], format!("{ns}/b"), "{icmp}");
    }
    delete_and_check_nothing_left(&client, &api, "flows", &uid).await;
    delete_namespace(&client, &ns).await;
}

/// The `/proc/PID/status` of the (one) iperf3 process on this node whose parent is podtracer:
/// the server an exec Job runs.
fn iperf3_under_podtracer() -> String {
    let name_of = |pid: &str| {
        std::fs::read_to_string(format!("/proc/{pid}/comm"))
            .map(|s| s.trim().to_owned())
            .unwrap_or_default()
    };
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(status) = std::fs::read_to_string(entry.path().join("status")) else {
            continue;
        };
        let ppid = status
            .lines()
            .find_map(|l| l.strip_prefix("PPid:"))
            .map(|p| p.trim().to_owned())
            .unwrap_or_default();
        if status.starts_with("Name:\tiperf3\n") && name_of(&ppid) == "podtracer" {
            found.push(status);
        }
    }
    assert_eq!(
        found.len(),
        1,
        "iperf3 processes under podtracer: {found:#?}"
    );
    found.pop().unwrap()
}

/// `exec` runs iperf3 "as" two pods: a server in one, a client in the other, through the pod
/// network; the client's Job log holds the iperf3 result. The server, seen from the node, runs
/// as nobody without capabilities.
#[tokio::test]
async fn exec_runs_iperf3_between_two_pods() {
    let client = client().await;
    deploy_operator(&client).await;
    let ns = namespace(&client, "e2e-iperf").await;
    let server_ip = busybox_pod(
        &client,
        &ns,
        "server",
        &[("role", "iperf-server")],
        &["sleep", "3600"],
    )
    .await;
    busybox_pod(
        &client,
        &ns,
        "client",
        &[("role", "iperf-client")],
        &["sleep", "3600"],
    )
    .await;
    let exec = |name: &str, role: &str, args: serde_json::Value| -> SnoopyJob {
        serde_json::from_value(json!({
            "apiVersion": "snoopy.fennecproject.io/v1alpha1", "kind": "SnoopyJob",
            "metadata": {"name": name, "namespace": ns},
            "spec": {
                "targetNamespace": ns,
                "podSelector": {"matchLabels": {"role": role}},
                "tool": {"exec": {"command": "iperf3", "args": args}},
                "activeDeadlineSeconds": 90,
            },
        }))
        .unwrap()
    };
    let api: Api<SnoopyJob> = Api::namespaced(client.clone(), &ns);
    let server = api
        .create(
            &PostParams::default(),
            &exec(
                "iperf3-server",
                "iperf-server",
                json!(["-s", "-1", "--forceflush"]),
            ),
        )
        .await
        .unwrap();
    // The client may only start once the server listens: wait for its banner.
    let server_uid = server.uid().unwrap();
    wait_for(T, "the iperf3 server listening", || {
        let client = client.clone();
        let uid = server_uid.clone();
        async move {
            let job = jobs_of(&client, OPERATOR_NS, &uid).await.pop()?;
            let log = try_job_log(&client, &job.name_any()).await?;
            log.contains("Server listening").then_some(())
        }
    })
    .await;
    // The server waits for its client: look at it from the node. podtracer runs it as
    // nobody with no capability in any set and no_new_privs, inside the Job.
    let status = iperf3_under_podtracer();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
            .unwrap_or_else(|| panic!("no {name} in {status}"))
            .trim()
            .to_owned()
    };
    assert_eq!(field("Uid"), "65534\t65534\t65534\t65534", "{status}");
    assert_eq!(field("Gid"), "65534\t65534\t65534\t65534", "{status}");
    for set in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] {
        assert_eq!(field(set), "0000000000000000", "{set}: {status}");
    }
    assert_eq!(field("NoNewPrivs"), "1", "{status}");
    let client_cr = api
        .create(
            &PostParams::default(),
            &exec(
                "iperf3-client",
                "iperf-client",
                json!(["-c", server_ip, "-t", "2"]),
            ),
        )
        .await
        .unwrap();
    for name in ["iperf3-client", "iperf3-server"] {
        let status = finished(&api, name).await;
        assert_eq!(status.phase, Some(Phase::Succeeded), "{name}: {status:#?}");
    }
    let job = jobs_of(&client, OPERATOR_NS, &client_cr.uid().unwrap())
        .await
        .pop()
        .unwrap();
    let log = job_log(&client, &job.name_any()).await;
    assert!(
        log.contains(&format!("connected to {server_ip} port 5201")),
        "{log}"
    );
    for want in ["sender", "receiver", "iperf Done."] {
        assert!(
            log.contains(want),
            "no {want:?} in the client's log:\n{log}"
        );
    }
    for (name, uid) in [
        ("iperf3-client", client_cr.uid().unwrap()),
        ("iperf3-server", server_uid),
    ] {
        delete_and_check_nothing_left(&client, &api, name, &uid).await;
    }
    delete_namespace(&client, &ns).await;
}

/// Every message of `topic`, as `podtracer collect` reads them (the consumer runs a runtime
/// of its own: off the test's).
async fn messages(broker: &Broker, topic: &str) -> Vec<snoopy_capture::sink::kafka::Message> {
    let url = broker.url(topic);
    tokio::task::spawn_blocking(move || read_topic(&url))
        .await
        .unwrap()
}

/// Every message of the topic `url` names.
fn read_topic(url: &str) -> Vec<snoopy_capture::sink::kafka::Message> {
    use snoopy_capture::sink::kafka::{ConsumeOptions, KafkaSettings, consume};
    let settings = KafkaSettings::from_url(url).unwrap();
    let mut all = Vec::new();
    consume(
        &settings,
        &ConsumeOptions::default(),
        &std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false)),
        |batch| {
            all.extend(batch);
            Ok::<(), ()>(())
        },
    )
    .unwrap_or_else(|e| panic!("reading {url}: {e}"))
    .unwrap();
    all
}

/// `output.kafka`: each capture Job (on the node's network) sends its pod's packets to a
/// broker on the node's loopback — only reachable because the producer stays in the node's
/// network namespace — while the socket captures inside the pod (the packets are the ICMP
/// exchange between the two pod IPs). The topic holds 10 packets under each key `NS/POD`,
/// with the Job's node and run in the headers; tshark reads them; the status counts them.
#[tokio::test]
async fn kafka_output_lands_both_targets_packets_on_the_topic() {
    let broker = Broker::start().expect("a tansu broker (testbed/kafka.sh up builds it)");
    let client = client().await;
    let node = deploy_operator(&client).await;
    let (ns, ip_a, ip_b) = pinging_pair(&client, "e2e-kafka").await;

    let api: Api<SnoopyJob> = Api::namespaced(client.clone(), &ns);
    let uid = create_snoopyjob(
        &api,
        &ns,
        "to-kafka",
        json!({
            "targetNamespace": ns,
            "podSelector": {"matchLabels": {"networkMonitor": "true"}},
            "tool": {"capture": {"interface": "eth0", "filter": "icmp", "packetCount": 10}},
            "output": {"kafka": {"brokers": [broker.address()]}},
            "activeDeadlineSeconds": 90,
        }),
    )
    .await;
    let status = finished(&api, "to-kafka").await;
    assert_eq!(status.phase, Some(Phase::Succeeded), "{status:#?}");
    assert_eq!((status.target_count, status.succeeded), (2, 2));
    for t in &status.targets {
        assert_eq!(t.packets_captured, Some(10), "{t:?}");
        assert_eq!(t.kafka_sent, Some(10), "{t:?}");
        assert_eq!(t.kafka_dropped, Some(0), "{t:?}");
    }
    for job in jobs_of(&client, OPERATOR_NS, &uid).await {
        let pod = job.spec.unwrap().template.spec.unwrap();
        assert_eq!(pod.host_network, Some(true));
        let args = pod.containers[0].args.clone().unwrap();
        let sink = args.iter().position(|a| a == "--sink").unwrap();
        assert_eq!(
            args[sink + 1],
            format!("kafka://{}/snoopy.packets", broker.address())
        );
    }

    let messages = messages(&broker, "snoopy.packets").await;
    let dir = tempfile::tempdir().unwrap();
    let merged_path = dir.path().join("merged.pcapng");
    let mut merged = Vec::new();
    for (pod, me, peer) in [("a", &ip_a, &ip_b), ("b", &ip_b, &ip_a)] {
        let key = format!("{ns}/{pod}");
        let mine: Vec<_> = messages
            .iter()
            .filter(|m| m.key.as_deref() == Some(key.as_str()))
            .collect();
        assert!(
            !mine.is_empty(),
            "no message keyed {key} among {:?}",
            messages.iter().map(|m| &m.key).collect::<Vec<_>>()
        );
        let mut file = Vec::new();
        for m in &mine {
            let header = |h: &str| String::from_utf8_lossy(&m.headers[h]).into_owned();
            assert_eq!(header("node"), node, "{key}: the Job's NODE_NAME");
            assert_eq!(header("run"), format!("{ns}/to-kafka/once"), "{key}");
            // Each message is a complete pcapng section; sections concatenate.
            file.extend_from_slice(&m.value);
        }
        merged.extend_from_slice(&file);
        let path = dir.path().join(format!("{pod}.pcapng"));
        std::fs::write(&path, &file).unwrap();
        let rows = icmp_rows(&path);
        assert_eq!(rows.len(), 10, "{key}: {rows:?}");
        for row in &rows {
            // Only the exchange between the two pods, seen from inside pod `pod`.
            assert!(
                *row == format!("{me}\t{peer}\t8")
                    || *row == format!("{me}\t{peer}\t0")
                    || *row == format!("{peer}\t{me}\t8")
                    || *row == format!("{peer}\t{me}\t0"),
                "{key}: {row:?}"
            );
        }
    }
    std::fs::write(&merged_path, &merged).unwrap();
    assert_eq!(icmp_rows(&merged_path).len(), 20, "both pods' packets");

    delete_and_check_nothing_left(&client, &api, "to-kafka", &uid).await;
    delete_namespace(&client, &ns).await;
}

/// The deployed operator's own webhook (as `make deploy` installs it): its certificate and
/// stamp key are in its Secret and in both configurations' caBundle; a CR is stamped at
/// create; a 5,000-deep filter (10 KB) and a 2,000-deep one are refused at apply naming why,
/// and the operator keeps serving without a restart.
#[tokio::test]
async fn the_deployed_webhook_stamps_and_refuses_at_apply() {
    use k8s_openapi::api::admissionregistration::v1::{
        MutatingWebhookConfiguration, ValidatingWebhookConfiguration,
    };
    use k8s_openapi::api::core::v1::Secret;
    let client = client().await;
    deploy_operator(&client).await;
    let secret = Api::<Secret>::namespaced(client.clone(), OPERATOR_NS)
        .get("snoopy-operator-webhook")
        .await
        .unwrap();
    let data = secret.data.unwrap();
    assert!(data["stamp.key"].0.len() >= 32);
    let cert = data["tls.crt"].clone();
    let mutating = Api::<MutatingWebhookConfiguration>::all(client.clone())
        .get("snoopy-operator")
        .await
        .unwrap();
    let validating = Api::<ValidatingWebhookConfiguration>::all(client.clone())
        .get("snoopy-operator")
        .await
        .unwrap();
    assert_eq!(
        mutating.webhooks.unwrap()[0].client_config.ca_bundle,
        Some(cert.clone())
    );
    assert_eq!(
        validating.webhooks.unwrap()[0].client_config.ca_bundle,
        Some(cert)
    );

    let ns = namespace(&client, "webhook").await;
    let api: Api<SnoopyJob> = Api::namespaced(client.clone(), &ns);
    let spec = |filter: &str| {
        json!({"targetNamespace": ns, "podSelector": {"matchLabels": {"app": "none"}},
               "tool": {"capture": {"packetCount": 1, "filter": filter}}})
    };
    for (depth, says) in [(5000, "at most 4096"), (2000, "InvalidFilter")] {
        let filter = format!("{}tcp{}", "(".repeat(depth), ")".repeat(depth));
        let cr: SnoopyJob = serde_json::from_value(json!({
            "apiVersion": "snoopy.fennecproject.io/v1alpha1", "kind": "SnoopyJob",
            "metadata": {"name": format!("deep-{depth}"), "namespace": ns}, "spec": spec(&filter),
        }))
        .unwrap();
        let err = api.create(&PostParams::default(), &cr).await.unwrap_err();
        let message = err.to_string();
        assert!(
            message.contains("denied the request") && message.contains(says),
            "{depth}: {message}"
        );
    }
    let uid = create_snoopyjob(&api, &ns, "fine", spec("icmp")).await;
    let fine = api.get("fine").await.unwrap();
    assert!(
        fine.annotations()
            .contains_key(snoopy_operator::stamp::ANNOTATION),
        "stamped at create"
    );
    let pods: Api<Pod> = Api::namespaced(client.clone(), OPERATOR_NS);
    let operator = pods
        .list(&ListParams::default().labels("app.kubernetes.io/name=snoopy-operator"))
        .await
        .unwrap()
        .items;
    for pod in &operator {
        let restarts = pod
            .status
            .as_ref()
            .unwrap()
            .container_statuses
            .as_ref()
            .unwrap()[0]
            .restart_count;
        assert_eq!(restarts, 0, "the operator restarted: {}", pod.name_any());
    }
    delete_and_check_nothing_left(&client, &api, "fine", &uid).await;
    delete_namespace(&client, &ns).await;
}

/// A GET of the deployed dashboard's API (on the testbed it listens on the node's loopback,
/// config/testbed/dashboard_patch.yaml): the JSON body, or None while it does not answer.
fn dashboard_get(path: &str) -> Option<serde_json::Value> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect("127.0.0.1:18480").ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.0 200")
        .then(|| serde_json::from_str(body).ok())
        .flatten()
}

/// `make deploy` brings the dashboard up beside the operator. Pointed (through its
/// ConfigMap, as a user would) at the broker a flows SnoopyJob sends to, it shows the two
/// pods' conversation by pod name, as seen on this node.
#[tokio::test]
async fn the_deployed_dashboard_shows_the_pods_of_a_flows_job() {
    use k8s_openapi::api::core::v1::ConfigMap;
    let broker = Broker::start().expect("a tansu broker (testbed/kafka.sh up builds it)");
    let client = client().await;
    let node = deploy_operator(&client).await;
    let config: Api<ConfigMap> = Api::namespaced(client.clone(), OPERATOR_NS);
    config
        .patch(
            "snoopy-dashboard",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"kafka": format!("kafka://{}", broker.address())}})),
        )
        .await
        .expect("patch the dashboard's ConfigMap");
    // The variable is read at start: restart it, as `kubectl rollout restart` does.
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), OPERATOR_NS);
    let now = jiff::Timestamp::now().to_string();
    deployments
        .patch(
            "snoopy-dashboard",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"template": {"metadata": {"annotations": {
                "kubectl.kubernetes.io/restartedAt": now
            }}}}})),
        )
        .await
        .expect("restart the dashboard");

    let (ns, _, _) = pinging_pair(&client, "e2e-dash").await;
    let api: Api<SnoopyJob> = Api::namespaced(client.clone(), &ns);
    let uid = create_snoopyjob(
        &api,
        &ns,
        "flows",
        json!({
            "targetNamespace": ns,
            "podSelector": {"matchLabels": {"networkMonitor": "true"}},
            "tool": {"flows": {"duration": "4s", "interval": "2s"}},
            "output": {"kafka": {"brokers": [broker.address()]}},
            "activeDeadlineSeconds": 60,
        }),
    )
    .await;
    let status = finished(&api, "flows").await;
    assert_eq!(status.phase, Some(Phase::Succeeded), "{status:#?}");

    let (source, destination) = (format!("{ns}/a"), format!("{ns}/b"));
    let pair = wait_for(T, "the pods' pair on the deployed dashboard", || {
        let (source, destination) = (source.clone(), destination.clone());
        async move {
            let view = tokio::task::spawn_blocking(|| dashboard_get("/api/view"))
                .await
                .ok()??;
            view["pairs"]
                .as_array()?
                .iter()
                .find(|p| {
                    p["source"] == source.as_str() && p["destination"] == destination.as_str()
                })
                .cloned()
        }
    })
    .await;
    // a pings b (one echo flow, seen by both pods' Jobs): every echo answered.
    assert!(pair["attempts"].as_u64().is_some_and(|n| n >= 1), "{pair}");
    assert_eq!(pair["success_rate"], 1.0, "{pair}");
    assert_eq!(pair["nodes"], json!([node]), "{pair}");

    config
        .patch(
            "snoopy-dashboard",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"kafka": ""}})),
        )
        .await
        .expect("reset the dashboard's ConfigMap");
    delete_and_check_nothing_left(&client, &api, "flows", &uid).await;
    delete_namespace(&client, &ns).await;
}
