//! Status from what exists: a target's phase from its Job (and the Job's pod), the CR's
//! phase and counters from its targets. Pure functions, so the reconciler's status is a
//! function of the cluster state and nothing else.

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;

use crate::crd::{Phase, TargetPhase, TargetStatus};
use crate::job::Target;
use crate::naming;
use crate::report;

/// The entry for a target whose Job does not exist (yet, or any more).
pub fn without_job(target: &Target, run: &str, job_name: &str, pod_alive: bool) -> TargetStatus {
    let mut status = TargetStatus {
        namespace: target.namespace.clone(),
        pod: target.name.clone(),
        pod_uid: target.uid.clone(),
        node: target.node.clone(),
        run: run.to_owned(),
        job: job_name.to_owned(),
        phase: TargetPhase::Pending,
        ..Default::default()
    };
    if !pod_alive {
        gone(&mut status);
    }
    status
}

/// The entry for a target from its Job, the Job's pods, and whether the target pod still
/// exists. `previous` keeps what only an earlier observation knew (the counters of a pod
/// that has since been garbage-collected).
pub fn from_job(
    job: &Job,
    pods: &[&Pod],
    pod_alive: bool,
    previous: Option<&TargetStatus>,
) -> TargetStatus {
    let labels = job.metadata.labels.clone().unwrap_or_default();
    let annotations = job.metadata.annotations.clone().unwrap_or_default();
    let target_name = annotations
        .get(naming::TARGET_ANNOTATION)
        .and_then(|t| t.split_once('/').map(|(_, n)| n.to_owned()))
        .or_else(|| labels.get(naming::TARGET_POD).cloned())
        .unwrap_or_default();
    let node = job
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .and_then(|p| p.node_name.clone())
        .unwrap_or_default();
    let mut status = TargetStatus {
        namespace: labels
            .get(naming::TARGET_NAMESPACE)
            .cloned()
            .unwrap_or_default(),
        pod: target_name,
        pod_uid: labels.get(naming::TARGET_UID).cloned().unwrap_or_default(),
        node,
        run: labels.get(naming::RUN).cloned().unwrap_or_default(),
        job: job.metadata.name.clone().unwrap_or_default(),
        ..Default::default()
    };
    let js = job.status.clone().unwrap_or_default();
    status.start_time = js.start_time.as_ref().map(|t| t.0.to_string());
    status.completion_time = js.completion_time.as_ref().map(|t| t.0.to_string());
    let condition = |type_: &str| {
        js.conditions
            .iter()
            .flatten()
            .find(|c| c.type_ == type_ && c.status == "True")
            .cloned()
    };
    let message = termination_message(pods);
    let counters = message.as_deref().map(report::parse).unwrap_or_default();
    status.packets_captured = counters.captured;
    status.packets_dropped = counters.dropped;
    if !counters.files.is_empty() {
        status.files = Some(counters.files.clone());
    }
    if counters.files_omitted > 0 {
        status.files_omitted = Some(counters.files_omitted);
    }
    if let Some(k) = counters.kafka {
        status.kafka_sent = Some(k.sent);
        status.kafka_dropped = Some(k.dropped + k.buffered);
        status.kafka_failed_attempts = Some(k.failed_attempts);
    }
    if status.packets_captured.is_none()
        && status.kafka_sent.is_none()
        && let Some(p) = previous
    {
        status.packets_captured = p.packets_captured;
        status.packets_dropped = p.packets_dropped;
        status.kafka_sent = p.kafka_sent;
        status.kafka_dropped = p.kafka_dropped;
        status.kafka_failed_attempts = p.kafka_failed_attempts;
        status.files = p.files.clone();
        status.files_omitted = p.files_omitted;
    }
    status.phase = if condition("Complete").is_some() || js.succeeded.unwrap_or(0) > 0 {
        TargetPhase::Succeeded
    } else if let Some(failed) = condition("Failed") {
        status.reason = failed.reason.clone().or_else(|| Some("JobFailed".into()));
        status.message = message
            .as_deref()
            .and_then(report::error_line)
            .or(failed.message.clone());
        TargetPhase::Failed
    } else if js.failed.unwrap_or(0) > 0 {
        status.reason = Some("JobFailed".into());
        status.message = message.as_deref().and_then(report::error_line);
        TargetPhase::Failed
    } else if pods
        .iter()
        .any(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
    {
        TargetPhase::Running
    } else {
        if let Some((reason, message)) = stuck(pods) {
            status.reason = Some(reason);
            status.message = Some(message);
        }
        TargetPhase::Pending
    };
    // Once gone, a target stays gone: the Job that then ends (its capture stopped by the
    // vanished interface, reported by podtracer) does not make it Succeeded.
    let was_gone = previous.is_some_and(|p| p.phase == TargetPhase::Gone);
    if counters.target_gone || was_gone || (!pod_alive && !status.phase.is_final()) {
        gone(&mut status);
    }
    status
}

/// The entry for `target`, one of the pods a per-node Job serves: the Job's phase and times
/// (as [`from_job`]), the pod's own counts from the Job's report, and Gone when the pod went
/// away (the report says so, or the pod no longer exists while the Job runs).
pub fn from_node_job(
    job: &Job,
    pods: &[&Pod],
    target: &Target,
    pod_alive: bool,
    previous: Option<&TargetStatus>,
) -> TargetStatus {
    let mut status = from_job(job, pods, pod_alive, previous);
    status.namespace = target.namespace.clone();
    status.pod = target.name.clone();
    status.pod_uid = target.uid.clone();
    status.node = target.node.clone();
    // Kafka counts are the Job's, for all its pods: they stay in its report and log.
    status.kafka_sent = None;
    status.kafka_dropped = None;
    status.kafka_failed_attempts = None;
    let Some(report) = termination_message(pods).map(|m| report::parse(&m)) else {
        // No report (yet): the Job's totals are not this pod's.
        if previous.is_none_or(|p| p.packets_captured.is_none()) {
            status.packets_captured = None;
            status.packets_dropped = None;
        }
        if status.phase == TargetPhase::Gone {
            gone(&mut status);
        }
        return status;
    };
    status.packets_captured = None;
    status.packets_dropped = None;
    match report.pods.iter().find(|p| p.is_pod(&target.uid)) {
        Some(count) => {
            status.packets_captured = Some(count.captured);
            status.packets_dropped = Some(count.dropped);
            if count.failed {
                status.phase = TargetPhase::Failed;
                status.reason = Some("CaptureFailed".into());
                status.message = Some(format!(
                    "podtracer could not capture pod {}/{}; its error is in Job {}'s log",
                    target.namespace, target.name, status.job
                ));
            } else if count.gone {
                status.phase = TargetPhase::Gone;
            }
        }
        None if status.phase == TargetPhase::Succeeded && report.pods_omitted > 0 => {
            status.message = Some(format!(
                "this pod's counts did not fit in the Job's 4 KiB report ({} pods' did not); they are in Job {}'s log",
                report.pods_omitted, status.job
            ));
        }
        None if status.phase == TargetPhase::Succeeded && pod_alive => {
            status.phase = TargetPhase::Failed;
            status.reason = Some("NotCaptured".into());
            status.message = Some(format!(
                "Job {} ended without capturing pod {}/{} (it was not ready on node {} while the Job ran)",
                status.job, target.namespace, target.name, target.node
            ));
        }
        None if status.phase == TargetPhase::Succeeded => status.phase = TargetPhase::Gone,
        None => {}
    }
    if status.phase == TargetPhase::Gone {
        gone(&mut status);
    }
    status
}

fn gone(status: &mut TargetStatus) {
    status.phase = TargetPhase::Gone;
    status.reason = Some("TargetPodDeleted".into());
    let mut message = format!(
        "pod {}/{} (uid {}) went away before its Job finished",
        status.namespace, status.pod, status.pod_uid
    );
    if let Some(n) = status.packets_captured {
        message.push_str(&format!(
            "; the {n} packets captured until then were written"
        ));
    }
    status.message = Some(message);
}

/// Why a Job's pod cannot start its container, when kubelet says so: a Secret or key the
/// Job refers to (Kafka SASL credentials) is missing — `CreateContainerConfigError` with
/// `secret "x" not found`. (A missing Secret *volume* only shows in events: the pod stays
/// `ContainerCreating`.)
fn stuck(pods: &[&Pod]) -> Option<(String, String)> {
    pods.iter()
        .flat_map(|p| {
            p.status
                .iter()
                .flat_map(|s| s.container_statuses.iter().flatten())
        })
        .filter_map(|cs| cs.state.as_ref()?.waiting.as_ref())
        .find(|w| {
            matches!(
                w.reason.as_deref(),
                Some("CreateContainerConfigError" | "CreateContainerError")
            )
        })
        .map(|w| {
            let reason = w.reason.clone().unwrap_or_default();
            let message = w.message.clone().unwrap_or_else(|| reason.clone());
            (
                reason,
                format!(
                    "{message} (Secrets must be in the operator's namespace, where the Jobs run)"
                ),
            )
        })
}

/// The newest terminated container message among the Job's pods.
fn termination_message(pods: &[&Pod]) -> Option<String> {
    let mut newest: Option<(String, String)> = None;
    for pod in pods {
        for cs in pod
            .status
            .iter()
            .flat_map(|s| s.container_statuses.iter().flatten())
        {
            if let Some(t) = cs.state.as_ref().and_then(|s| s.terminated.as_ref())
                && let Some(m) = t.message.clone().filter(|m| !m.trim().is_empty())
            {
                let when = t
                    .finished_at
                    .as_ref()
                    .map(|f| f.0.to_string())
                    .unwrap_or_default();
                if newest.as_ref().is_none_or(|(w, _)| when >= *w) {
                    newest = Some((when, m));
                }
            }
        }
    }
    newest.map(|(_, m)| m)
}

/// Counts and the overall phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// The CR's phase.
    pub phase: Phase,
    /// Targets in total.
    pub total: i32,
    /// Targets whose Job succeeded.
    pub succeeded: i32,
    /// Targets whose Job failed or whose pod went away.
    pub failed: i32,
}

/// Sums up the targets. `waiting` is true when more work is expected later (a schedule, or
/// `follow`): then finished targets make the CR `Scheduled`/`Running`, not final.
/// At most `max` of `entries`, problems first (Failed, Gone, then Running and Pending, then
/// Succeeded), in their original order: what `status.targets` keeps of a large CR.
pub fn bounded(entries: Vec<TargetStatus>, max: usize) -> Vec<TargetStatus> {
    if entries.len() <= max {
        return entries;
    }
    let rank = |p: TargetPhase| match p {
        TargetPhase::Failed | TargetPhase::Gone => 0,
        TargetPhase::Succeeded => 2,
        _ => 1,
    };
    let mut order: Vec<usize> = (0..entries.len()).collect();
    order.sort_by_key(|&i| rank(entries[i].phase));
    let mut keep: Vec<usize> = order.into_iter().take(max).collect();
    keep.sort_unstable();
    let mut keep = keep.into_iter().peekable();
    entries
        .into_iter()
        .enumerate()
        .filter(|(i, _)| keep.next_if_eq(i).is_some())
        .map(|(_, e)| e)
        .collect()
}

/// Counts and phase over every target.
pub fn summarize(targets: &[TargetStatus], scheduled: bool) -> Summary {
    let count = |f: fn(TargetPhase) -> bool| {
        i32::try_from(targets.iter().filter(|t| f(t.phase)).count()).unwrap_or(i32::MAX)
    };
    let total = count(|_| true);
    let succeeded = count(|p| p == TargetPhase::Succeeded);
    let failed = count(|p| matches!(p, TargetPhase::Failed | TargetPhase::Gone));
    let active = targets
        .iter()
        .any(|t| matches!(t.phase, TargetPhase::Running));
    let pending = targets.iter().any(|t| t.phase == TargetPhase::Pending);
    let phase = if active {
        Phase::Running
    } else if pending || total == 0 {
        if scheduled && !pending {
            Phase::Scheduled
        } else {
            Phase::Pending
        }
    } else if scheduled {
        Phase::Scheduled
    } else if failed > 0 {
        Phase::Failed
    } else {
        Phase::Succeeded
    };
    Summary {
        phase,
        total,
        succeeded,
        failed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::TcpdumpSpec;
    use crate::job::{Owner, build};
    use crate::plan::Plan;
    use crate::settings::Settings;
    use k8s_openapi::api::batch::v1::{JobCondition, JobStatus};
    use k8s_openapi::api::core::v1::{
        ContainerState, ContainerStateTerminated, ContainerStateWaiting, ContainerStatus, PodStatus,
    };

    fn job() -> Job {
        let owner = Owner {
            kind: "Tcpdump".into(),
            name: "t".into(),
            namespace: "ns".into(),
            uid: "u".into(),
        };
        let target = Target {
            namespace: "ns".into(),
            name: "web-1".into(),
            uid: "p1".into(),
            node: "n1".into(),
        };
        let plan = Plan::for_tcpdump(
            &TcpdumpSpec {
                name: "x".into(),
                target_namespace: "ns".into(),
                pod_label: Default::default(),
                interface_name: "eth0".into(),
                packet_count: 5,
            },
            crate::plan::CrRef {
                namespace: "ns",
                name: "x",
                authorization: &crate::plan::CHECKED,
            },
            &Settings::default(),
        )
        .unwrap();
        build(&owner, &target, "once", &plan, &Settings::default())
    }

    fn with_condition(mut job: Job, type_: &str, reason: Option<&str>) -> Job {
        job.status = Some(JobStatus {
            conditions: Some(vec![JobCondition {
                type_: type_.into(),
                status: "True".into(),
                reason: reason.map(Into::into),
                ..Default::default()
            }]),
            ..Default::default()
        });
        job
    }

    fn pod(phase: &str, message: Option<&str>) -> Pod {
        Pod {
            status: Some(PodStatus {
                phase: Some(phase.into()),
                container_statuses: message.map(|m| {
                    vec![ContainerStatus {
                        name: "podtracer".into(),
                        state: Some(ContainerState {
                            terminated: Some(ContainerStateTerminated {
                                message: Some(m.into()),
                                ..Default::default()
                            }),
                            ..Default::default()
                        }),
                        ..Default::default()
                    }]
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    /// The files a volume capture wrote come from podtracer's report into the target's
    /// status, and stay there when a later reconcile reads no message.
    #[test]
    fn the_files_written_are_in_the_status() {
        let done = with_condition(job(), "Complete", None);
        let ok = pod(
            "Succeeded",
            Some(
                r#"{"captured":5,"dropped":0,"files":["a.pcapng0","a.pcapng1"],"files_omitted":2}"#,
            ),
        );
        let s = from_job(&done, &[&ok], true, None);
        assert_eq!(
            s.files.as_deref(),
            Some(&["a.pcapng0".to_owned(), "a.pcapng1".to_owned()][..])
        );
        assert_eq!(s.files_omitted, Some(2));
        let later = from_job(&done, &[], true, Some(&s));
        assert_eq!(
            (later.files, later.files_omitted),
            (s.files.clone(), Some(2))
        );
        let log_only = pod("Succeeded", Some(r#"{"captured":5,"dropped":0}"#));
        assert_eq!(from_job(&done, &[&log_only], true, None).files, None);
    }

    #[test]
    fn target_phases_from_jobs() {
        let j = job();
        let s = from_job(&j, &[], true, None);
        assert_eq!(
            (s.phase, s.pod.as_str(), s.node.as_str(), s.run.as_str()),
            (TargetPhase::Pending, "web-1", "n1", "once")
        );
        let running = pod("Running", None);
        assert_eq!(
            from_job(&j, &[&running], true, None).phase,
            TargetPhase::Running
        );

        let done = with_condition(job(), "Complete", None);
        let ok = pod("Succeeded", Some(r#"{"captured":50,"dropped":1}"#));
        let s = from_job(&done, &[&ok], true, None);
        assert_eq!(
            (s.phase, s.packets_captured, s.packets_dropped),
            (TargetPhase::Succeeded, Some(50), Some(1))
        );
        // The pod is gone later: the counters are kept from the previous status.
        let again = from_job(&done, &[], false, Some(&s));
        assert_eq!(
            (again.phase, again.packets_captured),
            (TargetPhase::Succeeded, Some(50))
        );

        let failed = with_condition(job(), "Failed", Some("BackoffLimitExceeded"));
        let bad = pod(
            "Failed",
            Some("0 packets captured\npodtracer: no interface eth9 in the pod\n"),
        );
        let s = from_job(&failed, &[&bad], true, None);
        assert_eq!(s.phase, TargetPhase::Failed);
        assert_eq!(s.reason.as_deref(), Some("BackoffLimitExceeded"));
        assert_eq!(
            s.message.as_deref(),
            Some("podtracer: no interface eth9 in the pod")
        );
    }

    #[test]
    fn kafka_counters_and_a_missing_secret() {
        let done = with_condition(job(), "Complete", None);
        let ok = pod(
            "Succeeded",
            Some(
                r#"{"captured":10,"received":10,"dropped":0,"kafka":{"sent":10,"sent_messages":2,"buffered":1,"dropped":2,"failed_attempts":3}}"#,
            ),
        );
        let s = from_job(&done, &[&ok], true, None);
        assert_eq!(
            (
                s.packets_captured,
                s.kafka_sent,
                s.kafka_dropped,
                s.kafka_failed_attempts
            ),
            (Some(10), Some(10), Some(3), Some(3))
        );
        let again = from_job(&done, &[], true, Some(&s));
        assert_eq!((again.kafka_sent, again.kafka_dropped), (Some(10), Some(3)));

        let mut waiting = pod("Pending", None);
        waiting.status.as_mut().unwrap().container_statuses = Some(vec![ContainerStatus {
            name: "podtracer".into(),
            state: Some(ContainerState {
                waiting: Some(ContainerStateWaiting {
                    reason: Some("CreateContainerConfigError".into()),
                    message: Some(r#"secret "kafka-creds" not found"#.into()),
                }),
                ..Default::default()
            }),
            ..Default::default()
        }]);
        let s = from_job(&job(), &[&waiting], true, None);
        assert_eq!(s.phase, TargetPhase::Pending);
        assert_eq!(s.reason.as_deref(), Some("CreateContainerConfigError"));
        let message = s.message.unwrap();
        assert!(
            message.contains(r#"secret "kafka-creds" not found"#)
                && message.contains("operator's namespace"),
            "{message}"
        );
    }

    #[test]
    fn a_vanished_target_is_gone_unless_finished() {
        let s = from_job(&job(), &[&pod("Running", None)], false, None);
        assert_eq!(
            (s.phase, s.reason.as_deref()),
            (TargetPhase::Gone, Some("TargetPodDeleted"))
        );
        let t = Target {
            namespace: "ns".into(),
            name: "a".into(),
            uid: "u".into(),
            node: "n".into(),
        };
        assert_eq!(without_job(&t, "once", "j", false).phase, TargetPhase::Gone);
        // The Job then ends because the capture lost its interface: still Gone, with the
        // counts podtracer wrote.
        let done = with_condition(job(), "Complete", None);
        let cut = pod(
            "Succeeded",
            Some(r#"{"captured":7,"dropped":0,"target_gone":true}"#),
        );
        let s = from_job(&done, &[&cut], false, None);
        assert_eq!(
            (s.phase, s.reason.as_deref(), s.packets_captured),
            (TargetPhase::Gone, Some("TargetPodDeleted"), Some(7))
        );
        assert!(
            s.message.as_deref().unwrap().contains("the 7 packets"),
            "{s:?}"
        );
        // Seen gone while running, then complete without the report (its pod collected):
        // stays Gone.
        let running_gone = from_job(&job(), &[&pod("Running", None)], false, None);
        let s = from_job(&done, &[], false, Some(&running_gone));
        assert_eq!(s.phase, TargetPhase::Gone);
        assert_eq!(
            without_job(&t, "once", "j", true).phase,
            TargetPhase::Pending
        );
    }

    #[test]
    fn summaries() {
        let t = |phase| TargetStatus {
            phase,
            ..Default::default()
        };
        use TargetPhase::*;
        assert_eq!(summarize(&[], false).phase, Phase::Pending);
        assert_eq!(
            summarize(&[t(Succeeded), t(Running)], false).phase,
            Phase::Running
        );
        let s = summarize(&[t(Succeeded), t(Succeeded)], false);
        assert_eq!(
            (s.phase, s.total, s.succeeded, s.failed),
            (Phase::Succeeded, 2, 2, 0)
        );
        let s = summarize(&[t(Succeeded), t(Gone)], false);
        assert_eq!((s.phase, s.failed), (Phase::Failed, 1));
        assert_eq!(summarize(&[t(Succeeded)], true).phase, Phase::Scheduled);
        assert_eq!(summarize(&[], true).phase, Phase::Scheduled);
        assert_eq!(summarize(&[t(Pending)], false).phase, Phase::Pending);
    }

    #[test]
    fn status_keeps_problems_first_within_the_bound() {
        let entry = |pod: &str, phase: TargetPhase| {
            let mut t = without_job(
                &Target {
                    namespace: "ns".into(),
                    name: pod.into(),
                    uid: pod.into(),
                    node: "n".into(),
                },
                "once",
                "job",
                true,
            );
            t.phase = phase;
            t
        };
        let entries: Vec<TargetStatus> = (0..10)
            .map(|i| {
                let phase = match i {
                    3 => TargetPhase::Failed,
                    7 => TargetPhase::Gone,
                    8 => TargetPhase::Running,
                    _ => TargetPhase::Succeeded,
                };
                entry(&format!("p{i}"), phase)
            })
            .collect();
        assert_eq!(bounded(entries.clone(), 10), entries);
        let kept: Vec<String> = bounded(entries.clone(), 4)
            .into_iter()
            .map(|t| t.pod)
            .collect();
        assert_eq!(kept, ["p0", "p3", "p7", "p8"]);
        assert_eq!(summarize(&entries, false).total, 10);
        assert!(bounded(entries, 0).is_empty());
    }
}
