//! The reconciler against a real kube-apiserver + controller-manager (no kubelet: the tests
//! mark pods Running and finish Job pods the way a kubelet and podtracer would).

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use kube::api::{Api, DeleteParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::json;
use snoopy_operator::crd::{Phase, SnoopyJob, TargetPhase, Tcpdump};
use snoopy_operator::naming;
use snoopy_operator::settings::Settings;
use snoopy_operator::stamp::StampKey;

use crate::support::*;

const T: Duration = Duration::from_secs(30);

async fn setup(prefix: &str) -> (Client, String, String) {
    let client = client().await;
    let targets = namespace(&client, &format!("{prefix}-t")).await;
    let op = namespace(&client, &format!("{prefix}-op")).await;
    (client, targets, op)
}

async fn teardown<K>(client: &Client, ns: &str, op: &str, crs: &[&str], operator: Operator)
where
    K: kube::Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    let _kubelet = Reaper::start(client, op);
    let api: Api<K> = Api::namespaced(client.clone(), ns);
    for cr in crs {
        let _ = api.delete(cr, &DeleteParams::default()).await;
    }
    for cr in crs {
        let api = api.clone();
        wait_for(T, &format!("{cr} deleted (finalizer done)"), || {
            let api = api.clone();
            async move { api.get_opt(cr).await.ok()?.is_none().then_some(()) }
        })
        .await;
    }
    drop(operator);
    delete_namespace(client, ns).await;
    delete_namespace(client, op).await;
}

fn tcpdump(name: &str, ns: &str, count: i64) -> Tcpdump {
    serde_json::from_value(json!({
        "apiVersion": "pcap.fennecproject.io/v1alpha1", "kind": "Tcpdump",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"name": "test-pcap", "targetNamespace": ns, "podLabel": {"networkMonitor": "true"},
                 "interfaceName": "eth0", "packetCount": count},
    }))
    .unwrap()
}

/// The proof of concept: a Tcpdump CR → one Job per labelled pod, on its node; Jobs finish
/// with podtracer's counters → the CR shows both targets Succeeded with 50 packets.
#[tokio::test]
async fn tcpdump_makes_one_job_per_labelled_pod_and_reports_counts() {
    let (client, ns, op) = setup("poc").await;
    running_pod(
        &client,
        &ns,
        "cnf-a",
        &[("networkMonitor", "true")],
        "node-a",
        "10.213.77.10",
    )
    .await;
    running_pod(
        &client,
        &ns,
        "cnf-b",
        &[("networkMonitor", "true")],
        "node-b",
        "10.213.77.11",
    )
    .await;
    running_pod(
        &client,
        &ns,
        "other",
        &[("app", "x")],
        "node-a",
        "10.213.77.12",
    )
    .await;
    let operator = Operator::start(&client, &op, &ns);
    let api: Api<Tcpdump> = Api::namespaced(client.clone(), &ns);
    let cr = api
        .create(&PostParams::default(), &tcpdump("tcpdump-sample", &ns, 50))
        .await
        .unwrap();
    let uid = cr.uid().unwrap();

    let jobs = wait_for(T, "two Jobs", || {
        let client = client.clone();
        let (op, uid) = (op.clone(), uid.clone());
        async move {
            let jobs = jobs_of(&client, &op, &uid).await;
            (jobs.len() == 2).then_some(jobs)
        }
    })
    .await;
    let mut placed: Vec<(String, String)> = jobs
        .iter()
        .map(|j| {
            let pod = j.spec.as_ref().unwrap().template.spec.as_ref().unwrap();
            let args = pod.containers[0].args.clone().unwrap();
            let target = args[args.iter().position(|a| a == "--pod").unwrap() + 1].clone();
            assert!(args.windows(2).any(|w| w == ["-c", "50"]), "{args:?}");
            assert_eq!(pod.host_pid, Some(true));
            (target, pod.node_name.clone().unwrap())
        })
        .collect();
    placed.sort();
    assert_eq!(
        placed,
        [
            ("cnf-a".into(), "node-a".into()),
            ("cnf-b".into(), "node-b".into())
        ]
    );
    for j in &jobs {
        assert!(j.name_any().starts_with("tcpdump-cnf-"), "{}", j.name_any());
    }

    for (j, n) in jobs.iter().zip([50, 50]) {
        let msg = format!(r#"{{"captured":{n},"received":{n},"dropped":0}}"#);
        finish_job_pods(&client, &op, &j.name_any(), true, &msg).await;
    }
    let status = wait_for(T, "CR Succeeded", || {
        let api = api.clone();
        async move {
            status_of(&api, "tcpdump-sample")
                .await
                .filter(|s| s.phase == Some(Phase::Succeeded))
        }
    })
    .await;
    assert_eq!(
        (status.target_count, status.succeeded, status.failed),
        (2, 2, 0)
    );
    for t in &status.targets {
        assert_eq!(
            (t.phase, t.packets_captured, t.packets_dropped),
            (TargetPhase::Succeeded, Some(50), Some(0)),
            "{t:?}"
        );
        assert!(t.completion_time.is_some());
    }
    let ready = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .unwrap();
    assert_eq!(ready.reason, "JobsCreated");
    teardown::<Tcpdump>(&client, &ns, &op, &["tcpdump-sample"], operator).await;
}

/// Two operators racing, then a restart: still exactly one Job per target.
#[tokio::test]
async fn racing_and_restarted_operators_create_no_duplicates() {
    let (client, ns, op) = setup("dup").await;
    for i in 0..5 {
        running_pod(
            &client,
            &ns,
            &format!("p{i}"),
            &[("networkMonitor", "true")],
            "node-a",
            &format!("10.213.77.{}", 20 + i),
        )
        .await;
    }
    let a = Operator::start(&client, &op, &ns);
    let b = Operator::start(&client, &op, &ns);
    let api: Api<Tcpdump> = Api::namespaced(client.clone(), &ns);
    let uid = api
        .create(&PostParams::default(), &tcpdump("dup", &ns, 5))
        .await
        .unwrap()
        .uid()
        .unwrap();
    wait_for(T, "five Jobs", || {
        let (client, op, uid) = (client.clone(), op.clone(), uid.clone());
        async move { (jobs_of(&client, &op, &uid).await.len() == 5).then_some(()) }
    })
    .await;
    // Between them, exactly five creations succeeded (the loser of each race got 409).
    let created = |o: &Operator| {
        let kind = snoopy_operator::metrics::KindLabels {
            kind: "Tcpdump".into(),
        };
        o.metrics.jobs_created.get_or_create(&kind).get()
    };
    // The counters move when each operator's batch of creates returns, a moment after the
    // Jobs are visible: wait for five, then check that no more come.
    wait_for(T, "five creations counted", || {
        let n = created(&a) + created(&b);
        async move { (n >= 5).then_some(()) }
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(created(&a) + created(&b), 5);
    // Stop both mid-flight and start a fresh one: it adopts the existing Jobs.
    drop(a);
    drop(b);
    let c = Operator::start(&client, &op, &ns);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let jobs: Api<Job> = Api::namespaced(client.clone(), &op);
    let all = jobs.list(&Default::default()).await.unwrap().items;
    assert_eq!(
        all.len(),
        5,
        "{:?}",
        all.iter().map(ResourceExt::name_any).collect::<Vec<_>>()
    );
    let status = status_of(&api, "dup").await.unwrap();
    assert_eq!(status.target_count, 5);
    teardown::<Tcpdump>(&client, &ns, &op, &["dup"], c).await;
}

/// Deleting the CR deletes its Jobs and their pods, then the CR itself goes.
#[tokio::test]
async fn deleting_the_cr_leaves_nothing_behind() {
    let (client, ns, op) = setup("del").await;
    running_pod(
        &client,
        &ns,
        "a",
        &[("networkMonitor", "true")],
        "node-a",
        "10.213.77.30",
    )
    .await;
    running_pod(
        &client,
        &ns,
        "b",
        &[("networkMonitor", "true")],
        "node-a",
        "10.213.77.31",
    )
    .await;
    let operator = Operator::start(&client, &op, &ns);
    let api: Api<Tcpdump> = Api::namespaced(client.clone(), &ns);
    let cr = api
        .create(&PostParams::default(), &tcpdump("gone", &ns, 5))
        .await
        .unwrap();
    let uid = cr.uid().unwrap();
    let pods: Api<k8s_openapi::api::core::v1::Pod> = Api::namespaced(client.clone(), &op);
    wait_for(T, "Jobs and their pods", || {
        let (client, op, uid, pods) = (client.clone(), op.clone(), uid.clone(), pods.clone());
        async move {
            let jobs = jobs_of(&client, &op, &uid).await.len();
            let p = pods.list(&Default::default()).await.ok()?.items.len();
            (jobs == 2 && p == 2).then_some(())
        }
    })
    .await;
    let finalizers = api.get("gone").await.unwrap().finalizers().to_vec();
    assert_eq!(finalizers, [naming::FINALIZER]);
    let _kubelet = Reaper::start(&client, &op);
    api.delete("gone", &DeleteParams::default()).await.unwrap();
    wait_for(T, "CR, Jobs and Job pods all gone", || {
        let (client, op, uid, pods, api) = (
            client.clone(),
            op.clone(),
            uid.clone(),
            pods.clone(),
            api.clone(),
        );
        async move {
            let jobs = jobs_of(&client, &op, &uid).await.len();
            let p = pods.list(&Default::default()).await.ok()?.items.len();
            let cr = api.get_opt("gone").await.ok()?;
            (jobs == 0 && p == 0 && cr.is_none()).then_some(())
        }
    })
    .await;
    drop(operator);
    delete_namespace(&client, &ns).await;
    delete_namespace(&client, &op).await;
}

/// An invalid filter: Degraded with the reason, and no Job at all.
#[tokio::test]
async fn an_invalid_filter_degrades_and_creates_nothing() {
    let (client, ns, op) = setup("bad").await;
    running_pod(
        &client,
        &ns,
        "a",
        &[("networkMonitor", "true")],
        "node-a",
        "10.213.77.40",
    )
    .await;
    let operator = Operator::start(&client, &op, &ns);
    let api: Api<SnoopyJob> = Api::namespaced(client.clone(), &ns);
    let cr = snoopyjob(
        "bad-filter",
        &ns,
        json!({"tool": {"capture": {"filter": "tcp port", "packetCount": 5}}}),
    );
    let uid = api
        .create(&PostParams::default(), &cr)
        .await
        .unwrap()
        .uid()
        .unwrap();
    let status = wait_for(T, "Degraded", || {
        let api = api.clone();
        async move {
            status_of(&api, "bad-filter")
                .await
                .filter(|s| s.phase == Some(Phase::Invalid))
        }
    })
    .await;
    let degraded = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Degraded")
        .unwrap();
    assert_eq!(degraded.reason, "InvalidFilter");
    assert!(
        degraded.message.contains("tcp port"),
        "{}",
        degraded.message
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(jobs_of(&client, &op, &uid).await.is_empty());
    teardown::<SnoopyJob>(&client, &ns, &op, &["bad-filter"], operator).await;
}

/// No matching pod: a condition says so. A missing namespace: another one (the CR is
/// stamped as the webhook would, or the fail-closed rules would refuse it first).
#[tokio::test]
async fn no_matching_pods_and_missing_namespace_are_conditions() {
    let (client, ns, op) = setup("none").await;
    let (key, _) = StampKey::generate().unwrap();
    let operator = Operator::start_full(&client, &op, &ns, Settings::default(), Some(key.clone()));
    let api: Api<SnoopyJob> = Api::namespaced(client.clone(), &ns);
    api.create(&PostParams::default(), &snoopyjob("empty", &ns, json!({})))
        .await
        .unwrap();
    let mut missing = snoopyjob(
        "missing",
        &ns,
        json!({"targetNamespace": "snoopy-no-such-namespace"}),
    );
    stamp_as(&mut missing, &key, "admin");
    api.create(&PostParams::default(), &missing).await.unwrap();
    let status = wait_for(T, "NoMatchingPods", || {
        let api = api.clone();
        async move {
            status_of(&api, "empty")
                .await
                .filter(|s| !s.conditions.is_empty())
        }
    })
    .await;
    let ready = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .unwrap();
    assert_eq!(
        (ready.reason.as_str(), format!("{:?}", ready.status)),
        ("NoMatchingPods", "False".into())
    );
    assert!(
        ready.message.contains("networkMonitor=true"),
        "{}",
        ready.message
    );
    let status = wait_for(T, "NamespaceNotFound", || {
        let api = api.clone();
        async move {
            status_of(&api, "missing")
                .await
                .filter(|s| !s.conditions.is_empty())
        }
    })
    .await;
    let degraded = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Degraded")
        .unwrap();
    assert_eq!(degraded.reason, "NamespaceNotFound");
    assert!(degraded.message.contains("snoopy-no-such-namespace"));
    teardown::<SnoopyJob>(&client, &ns, &op, &["empty", "missing"], operator).await;
}

/// A target pod deleted while its Job runs ends Gone with a reason; the other is unaffected.
/// With `follow`, a pod that starts matching later gets its own Job.
#[tokio::test]
async fn vanished_targets_are_gone_and_followed_pods_are_added() {
    let (client, ns, op) = setup("follow").await;
    running_pod(
        &client,
        &ns,
        "a",
        &[("networkMonitor", "true")],
        "node-a",
        "10.213.77.50",
    )
    .await;
    running_pod(
        &client,
        &ns,
        "b",
        &[("networkMonitor", "true")],
        "node-a",
        "10.213.77.51",
    )
    .await;
    let operator = Operator::start(&client, &op, &ns);
    let api: Api<SnoopyJob> = Api::namespaced(client.clone(), &ns);
    let uid = api
        .create(
            &PostParams::default(),
            &snoopyjob("f", &ns, json!({"targets": "follow"})),
        )
        .await
        .unwrap()
        .uid()
        .unwrap();
    let wait_jobs = |n: usize| {
        let (client, op, uid) = (client.clone(), op.clone(), uid.clone());
        async move {
            wait_for(T, &format!("{n} Jobs"), || {
                let (client, op, uid) = (client.clone(), op.clone(), uid.clone());
                async move { (jobs_of(&client, &op, &uid).await.len() == n).then_some(()) }
            })
            .await
        }
    };
    wait_jobs(2).await;
    delete_pod_now(&client, &ns, "a").await;
    let status = wait_for(T, "target a Gone", || {
        let api = api.clone();
        async move {
            status_of(&api, "f").await.filter(|s| {
                s.targets
                    .iter()
                    .any(|t| t.pod == "a" && t.phase == TargetPhase::Gone)
            })
        }
    })
    .await;
    let a = status.targets.iter().find(|t| t.pod == "a").unwrap();
    assert_eq!(a.reason.as_deref(), Some("TargetPodDeleted"));
    let b = status.targets.iter().find(|t| t.pod == "b").unwrap();
    assert!(!b.phase.is_final(), "{b:?}");
    let degraded = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Degraded")
        .unwrap();
    assert_eq!(degraded.reason, "TargetsFailed");

    running_pod(
        &client,
        &ns,
        "c",
        &[("networkMonitor", "true")],
        "node-c",
        "10.213.77.52",
    )
    .await;
    wait_jobs(3).await;
    let jobs = jobs_of(&client, &op, &uid).await;
    assert!(
        jobs.iter()
            .any(|j| j.labels().get(naming::TARGET_POD).map(String::as_str) == Some("c"))
    );
    teardown::<SnoopyJob>(&client, &ns, &op, &["f"], operator).await;
}

/// A schedule: nothing before the first tick, then one Job per target labelled with the
/// tick, and the next tick announced.
#[tokio::test]
async fn a_schedule_starts_a_run_at_each_tick() {
    let (client, ns, op) = setup("cron").await;
    running_pod(
        &client,
        &ns,
        "a",
        &[("networkMonitor", "true")],
        "node-a",
        "10.213.77.60",
    )
    .await;
    let operator = Operator::start(&client, &op, &ns);
    let api: Api<SnoopyJob> = Api::namespaced(client.clone(), &ns);
    let cr = api
        .create(
            &PostParams::default(),
            &snoopyjob("cron", &ns, json!({"schedule": "* * * * *"})),
        )
        .await
        .unwrap();
    let uid = cr.uid().unwrap();
    // The operator counts ticks from the server's creationTimestamp (whole seconds), not from
    // this process's clock: near a minute boundary the two name different first ticks.
    let created = cr.metadata.creation_timestamp.clone().unwrap().0;
    let tick = snoopy_operator::schedule::Schedule::parse("* * * * *")
        .unwrap()
        .next_after(created)
        .unwrap();
    if (tick.as_second() - jiff::Timestamp::now().as_second()) > 3 {
        let status = wait_for(T, "Scheduled", || {
            let api = api.clone();
            async move {
                status_of(&api, "cron")
                    .await
                    .filter(|s| s.phase == Some(Phase::Scheduled))
            }
        })
        .await;
        assert_eq!(status.next_schedule_time, Some(tick.to_string()));
        assert!(
            jobs_of(&client, &op, &uid).await.is_empty(),
            "a Job before the first tick"
        );
    }
    let jobs = wait_for(Duration::from_secs(90), "the first tick's Job", || {
        let (client, op, uid, api) = (client.clone(), op.clone(), uid.clone(), api.clone());
        async move {
            let jobs = jobs_of(&client, &op, &uid).await;
            if jobs.is_empty() {
                eprintln!("{:?}", status_of(&api, "cron").await);
            }
            (!jobs.is_empty()).then_some(jobs)
        }
    })
    .await;
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].labels()[naming::RUN], tick.as_second().to_string());
    // The Job appears within seconds of the tick, not at some later poll.
    let late = jiff::Timestamp::now().as_second() - tick.as_second();
    assert!(late <= 5, "the run started {late} s after its tick");
    let status = wait_for(T, "lastScheduleTime", || {
        let api = api.clone();
        async move {
            status_of(&api, "cron")
                .await
                .filter(|s| s.last_schedule_time.is_some() && s.target_count == 1)
        }
    })
    .await;
    assert_eq!(status.last_schedule_time, Some(tick.to_string()));
    assert_eq!(
        status.next_schedule_time,
        Some(
            jiff::Timestamp::from_second(tick.as_second() + 60)
                .unwrap()
                .to_string()
        )
    );
    teardown::<SnoopyJob>(&client, &ns, &op, &["cron"], operator).await;
}

/// The Degraded condition of CR `name`, once it has one with `reason`.
async fn degraded_with(api: &Api<SnoopyJob>, name: &str, reason: &str) -> String {
    let status = wait_for(T, &format!("{name} Degraded {reason}"), || {
        let api = api.clone();
        async move {
            status_of(&api, name).await.filter(|s| {
                s.conditions
                    .iter()
                    .any(|c| c.type_ == "Degraded" && c.reason == reason)
            })
        }
    })
    .await;
    status
        .conditions
        .into_iter()
        .find(|c| c.type_ == "Degraded")
        .unwrap()
        .message
}

/// Without the admission webhook's stamp the operator fails closed: a CR that targets
/// another namespace, selects namespaces or runs exec — unstamped, or with a stamp signed by
/// another key — or writes to hostPath `/etc` gets a condition naming the rule and no Job.
/// With the admin's target limit at 1, one of two matching pods gets a Job and the CR says
/// why the other did not.
#[tokio::test]
async fn the_default_policy_refuses_with_conditions_and_caps_targets() {
    let (client, ns, op) = setup("policy").await;
    for (pod, ip) in [("a", "10.213.77.50"), ("b", "10.213.77.51")] {
        running_pod(
            &client,
            &ns,
            pod,
            &[("networkMonitor", "true")],
            "node-a",
            ip,
        )
        .await;
    }
    let mut settings = Settings::default();
    settings.bounds.max_targets = 1;
    let (key, _) = StampKey::generate().unwrap();
    let (forger, _) = StampKey::generate().unwrap();
    let operator = Operator::start_full(&client, &op, &ns, settings, Some(key));
    let api: Api<SnoopyJob> = Api::namespaced(client.clone(), &ns);
    let refused = [
        (
            "other-ns",
            json!({"targetNamespace": "kube-system"}),
            "NotAuthorized",
            "targetNamespace kube-system",
        ),
        (
            "any-ns",
            json!({"targetNamespace": null, "namespaceSelector": {}}),
            "NotAuthorized",
            "namespaceSelector",
        ),
        (
            "exec-ip",
            json!({"tool": {"exec": {"command": "ip", "args": ["addr"]}}}),
            "NotAuthorized",
            "tool.exec",
        ),
        (
            "forged",
            json!({"targetNamespace": "kube-system"}),
            "NotAuthorized",
            "signature is not this operator's",
        ),
        (
            "to-etc",
            json!({"tool": {"capture": {"packetCount": 1, "format": "pcapng"}},
                   "output": {"volume": {"hostPath": {"path": "/etc"}}}}),
            "InvalidHostPath",
            "\"/etc\"",
        ),
    ];
    let mut uids = Vec::new();
    for (name, extra, _, _) in &refused {
        let mut cr = snoopyjob(name, &ns, extra.clone());
        if *name == "forged" {
            stamp_as(&mut cr, &forger, "admin");
        }
        uids.push(
            api.create(&PostParams::default(), &cr)
                .await
                .unwrap()
                .uid()
                .unwrap(),
        );
    }
    for (name, _, reason, says) in &refused {
        let message = degraded_with(&api, name, reason).await;
        assert!(message.contains(says), "{name}: {message}");
    }

    let capped = api
        .create(&PostParams::default(), &snoopyjob("capped", &ns, json!({})))
        .await
        .unwrap()
        .uid()
        .unwrap();
    let message = degraded_with(&api, "capped", "TargetLimitReached").await;
    assert!(
        message.contains("1 more matching pods") && message.contains("at most 1"),
        "{message}"
    );
    let status = status_of(&api, "capped").await.unwrap();
    assert_eq!(status.target_count, 1, "{status:#?}");
    assert_eq!(jobs_of(&client, &op, &capped).await.len(), 1);
    for uid in &uids {
        assert!(jobs_of(&client, &op, uid).await.is_empty());
    }
    let mut names: Vec<&str> = refused.iter().map(|r| r.0).collect();
    names.push("capped");
    teardown::<SnoopyJob>(&client, &ns, &op, &names, operator).await;
}

/// Even for a CR the webhook authorized, the allowlist holds: `sh`, `nsenter` and `perl` are
/// refused naming the list; `iperf3` gets a Job whose podtracer is given the same list.
#[tokio::test]
async fn exec_is_refused_off_the_allowlist() {
    let (client, ns, op) = setup("allow").await;
    running_pod(
        &client,
        &ns,
        "a",
        &[("networkMonitor", "true")],
        "node-a",
        "10.213.77.52",
    )
    .await;
    let (key, _) = StampKey::generate().unwrap();
    let operator = Operator::start_full(&client, &op, &ns, Settings::default(), Some(key.clone()));
    let api: Api<SnoopyJob> = Api::namespaced(client.clone(), &ns);
    for program in ["sh", "nsenter", "perl", "iperf3"] {
        let mut cr = snoopyjob(
            &format!("exec-{program}"),
            &ns,
            json!({"tool": {"exec": {"command": program, "args": ["-c", "id"]}}}),
        );
        stamp_as(&mut cr, &key, "admin");
        api.create(&PostParams::default(), &cr).await.unwrap();
    }
    for program in ["sh", "nsenter", "perl"] {
        let message = degraded_with(&api, &format!("exec-{program}"), "ProgramNotAllowed").await;
        assert!(
            message.contains(&format!("{program:?}"))
                && message.contains("iperf3, ping, ip, ss, nslookup, dig"),
            "{message}"
        );
    }
    let uid = api.get("exec-iperf3").await.unwrap().uid().unwrap();
    let job = wait_for(T, "the iperf3 Job", || {
        let client = client.clone();
        let (op, uid) = (op.clone(), uid.clone());
        async move { jobs_of(&client, &op, &uid).await.pop() }
    })
    .await;
    let spec = job.spec.unwrap();
    assert_eq!(
        spec.active_deadline_seconds,
        Some(3600),
        "the default deadline"
    );
    let args = spec.template.spec.unwrap().containers[0]
        .args
        .clone()
        .unwrap();
    let allow = args.iter().position(|a| a == "--allow").unwrap();
    assert_eq!(args[allow + 1], "iperf3,ping=NET_RAW,ip,ss,nslookup,dig");
    teardown::<SnoopyJob>(
        &client,
        &ns,
        &op,
        &["exec-sh", "exec-nsenter", "exec-perl", "exec-iperf3"],
        operator,
    )
    .await;
}

/// `jobsPer` left to the operator, 100 target pods on one node and 2 on another: one Job
/// per node (not 102), each listing its node's pods; node-a's Job names all 100 pods on
/// podtracer's command line. When the Jobs end, each pod's count comes from its node Job's
/// report — 100 entries in one 4 KiB termination message — into `status.targets`, bounded
/// to the admin's 100 entries with the problems (a pod that went away) first.
#[tokio::test]
async fn one_job_per_node_reports_each_of_a_hundred_pods() {
    let (client, ns, op) = setup("pernode").await;
    let monitored = [("networkMonitor", "true")];
    let mut uids = BTreeMap::new();
    for n in 0..100 {
        let name = format!("a-{n:03}");
        let ip = format!("10.213.78.{}", n + 10);
        let pod = running_pod(&client, &ns, &name, &monitored, "node-a", &ip).await;
        uids.insert(name, pod.uid().unwrap());
    }
    for (name, ip) in [("b-0", "10.213.79.10"), ("b-1", "10.213.79.11")] {
        let pod = running_pod(&client, &ns, name, &monitored, "node-b", ip).await;
        uids.insert(name.to_owned(), pod.uid().unwrap());
    }
    let operator = Operator::start(&client, &op, &ns);
    let api: Api<SnoopyJob> = Api::namespaced(client.clone(), &ns);
    let uid = api
        .create(&PostParams::default(), &snoopyjob("pn", &ns, json!({})))
        .await
        .unwrap()
        .uid()
        .unwrap();
    let jobs = wait_for(T, "two node Jobs", || {
        let (client, op, uid) = (client.clone(), op.clone(), uid.clone());
        async move {
            let jobs = jobs_of(&client, &op, &uid).await;
            (jobs.len() == 2).then_some(jobs)
        }
    })
    .await;
    // No more Jobs come: one per node, whatever the number of pods.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(jobs_of(&client, &op, &uid).await.len(), 2);
    let by_node = |node: &str| {
        jobs.iter()
            .find(|j| {
                j.spec
                    .as_ref()
                    .unwrap()
                    .template
                    .spec
                    .as_ref()
                    .unwrap()
                    .node_name
                    .as_deref()
                    == Some(node)
            })
            .unwrap_or_else(|| panic!("a Job on {node}"))
            .clone()
    };
    let (job_a, job_b) = (by_node("node-a"), by_node("node-b"));
    let args = job_a
        .spec
        .as_ref()
        .unwrap()
        .template
        .spec
        .as_ref()
        .unwrap()
        .containers[0]
        .args
        .clone()
        .unwrap();
    let named: Vec<&String> = args
        .windows(2)
        .filter(|w| w[0] == "--pod")
        .map(|w| &w[1])
        .collect();
    assert_eq!(named.len(), 100, "{args:?}");
    assert!(named.contains(&&format!("{ns}/a-042")), "{named:?}");
    assert!(
        args.windows(2).any(|w| w == ["--count-per-pod", "10"]) && !args.contains(&"-c".into()),
        "packetCount is each pod's, not shared by 100: {args:?}"
    );
    assert_eq!(
        job_a.labels().get(naming::JOB_NODE).map(String::as_str),
        Some("node-a")
    );

    // node-a's Job: every pod counted, a-007 gone mid-run. node-b's: both counted.
    let count = |name: &str, n: u64| snoopy_job::PodCount::new(&uids[name], n, 0);
    let mut counts: Vec<snoopy_job::PodCount> = (0..100)
        .map(|n| count(&format!("a-{n:03}"), 1_000_000 + n))
        .collect();
    counts[7].gone = true;
    let report_a = snoopy_job::Report {
        captured: Some(counts.iter().map(|c| c.captured).sum()),
        received: Some(0),
        dropped: Some(0),
        ..Default::default()
    }
    .with_files((0..10).map(|n| format!("node-node-a_once.pcapng{n}")))
    .with_pods(counts);
    assert_eq!(report_a.pods.len(), 100, "all fit");
    let report_b = snoopy_job::Report::default().with_pods([count("b-0", 5), count("b-1", 6)]);
    finish_job_pods(&client, &op, &job_a.name_any(), true, &report_a.to_json()).await;
    finish_job_pods(&client, &op, &job_b.name_any(), true, &report_b.to_json()).await;
    let status = wait_for(T, "every target final", || {
        let api = api.clone();
        async move {
            status_of(&api, "pn")
                .await
                .filter(|s| s.succeeded + s.failed == 102)
        }
    })
    .await;
    assert_eq!(
        (status.target_count, status.succeeded, status.failed),
        (102, 101, 1),
        "{:?}",
        status.conditions
    );
    assert_eq!((status.targets.len(), status.targets_omitted), (100, 2));
    let gone = status.targets.iter().find(|t| t.pod == "a-007").unwrap();
    assert_eq!(
        (gone.phase, gone.packets_captured),
        (TargetPhase::Gone, Some(1_000_007))
    );
    for t in status.targets.iter().filter(|t| t.pod != "a-007") {
        let want = match t.pod.as_str() {
            "b-0" => 5,
            "b-1" => 6,
            a => 1_000_000 + a[2..].parse::<u64>().unwrap(),
        };
        assert_eq!(
            (t.phase, t.packets_captured),
            (TargetPhase::Succeeded, Some(want)),
            "{t:?}"
        );
        let job = if t.node == "node-a" { &job_a } else { &job_b };
        assert_eq!(t.job, job.name_any());
    }
    teardown::<SnoopyJob>(&client, &ns, &op, &["pn"], operator).await;
}
