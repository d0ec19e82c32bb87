//! The reconciler's decisions, without I/O: from what was observed (the CR's previous
//! status, its Jobs and their pods, the target pods found, the time) and the plan, what to
//! delete, what to create, which status to write, which Events to publish and when to look
//! again. [`super::apply`] reads the cluster, calls [`decide`] and carries the [`Decision`]
//! out; nothing here touches the API server, so every case is a table row in the tests.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;

use super::per_node::{self, RunState};
use super::targets::{self, Found};
use crate::aggregate;
use crate::crd::{
    CaptureStatus, Condition, ConditionStatus, Phase, TargetMode, TargetPhase, TargetStatus,
};
use crate::job::{self, NodeJob, Owner, Target};
use crate::naming;
use crate::plan::{Invalid, Plan};
use crate::settings::Settings;

/// What the reconciler read for one CR.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Observed<'a> {
    /// The CR, as its Jobs name it.
    pub owner: &'a Owner,
    /// `metadata.creationTimestamp` (a schedule's first tick counts from it).
    pub created: Option<Timestamp>,
    /// `metadata.generation`.
    pub generation: Option<i64>,
    /// The status written last time.
    pub previous: &'a CaptureStatus,
    /// The CR's Jobs (all runs).
    pub jobs: &'a [Job],
    /// Their pods.
    pub job_pods: &'a [Pod],
    /// Now.
    pub now: Timestamp,
}

/// An Event to publish on the CR.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Note {
    /// Warning (else Normal).
    pub warning: bool,
    /// CamelCase reason.
    pub reason: String,
    /// For humans.
    pub message: String,
}

/// What to do for one CR.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Decision {
    /// Jobs to delete (runs past the history), by name.
    pub delete: Vec<String>,
    /// The run Jobs are created for, and the targets without a Job yet (with their Job names).
    pub create: Option<(String, Vec<(Target, String)>)>,
    /// The run per-node Jobs are created for, and those Jobs (`jobsPer: node`).
    pub node_jobs: Option<(String, Vec<NodeJob>)>,
    /// The status to write (skipped when equal to the previous one).
    pub status: CaptureStatus,
    /// Events, in order.
    pub notes: Vec<Note>,
    /// When to reconcile again without a change (`None`: only on a change).
    pub requeue: Option<Duration>,
}

/// The decision for a CR whose spec is invalid: the condition, an Event when it is new, no
/// Jobs.
pub(crate) fn invalid(o: &Observed<'_>, invalid: &Invalid) -> Decision {
    let mut status = CaptureStatus {
        observed_generation: o.generation,
        phase: Some(Phase::Invalid),
        ..Default::default()
    };
    status.conditions = conditions(
        o.previous,
        o.generation,
        o.now,
        (
            ConditionStatus::False,
            "InvalidSpec",
            "no Jobs are created for an invalid spec".into(),
        ),
        (
            ConditionStatus::True,
            invalid.reason,
            invalid.message.clone(),
        ),
    );
    let mut notes = Vec::new();
    if status.conditions != o.previous.conditions || o.previous.phase != status.phase {
        notes.push(Note {
            warning: true,
            reason: invalid.reason.into(),
            message: invalid.message.clone(),
        });
    }
    Decision {
        delete: Vec::new(),
        create: None,
        node_jobs: None,
        status,
        notes,
        requeue: None,
    }
}

/// The decision for a valid CR: which run is current, which Jobs are stale, which targets
/// belong to the run, the status, and what to create.
pub(crate) fn decide(
    o: &Observed<'_>,
    plan: &Plan,
    found: &Found,
    settings: &Settings,
) -> Decision {
    let (previous, jobs, job_pods, now, generation) =
        (o.previous, o.jobs, o.job_pods, o.now, o.generation);
    // Which run is current.
    let created = o.created.unwrap_or(now);
    let (run, last_schedule, next_schedule) = match &plan.schedule {
        None => (Some(naming::RUN_ONCE.to_owned()), None, None),
        Some(schedule) => {
            let last: Option<Timestamp> = previous
                .last_schedule_time
                .as_deref()
                .and_then(|t| t.parse().ok());
            let due = if plan.suspend {
                None
            } else {
                schedule.due(last.unwrap_or(created), now)
            };
            let last = due.or(last);
            (
                last.map(|t| t.as_second().to_string()),
                last,
                schedule.next_after(now),
            )
        }
    };

    // Jobs by run, newest runs kept (scheduled CRs), older ones deleted.
    let mut runs: BTreeSet<String> = jobs
        .iter()
        .filter_map(|j| j.labels().get(naming::RUN).cloned())
        .collect();
    runs.extend(previous.targets.iter().map(|t| t.run.clone()));
    runs.extend(run.clone());
    let mut ordered: Vec<String> = runs.into_iter().collect();
    ordered.sort_by_key(|r| r.parse::<i64>().unwrap_or(i64::MAX));
    let keep: BTreeSet<String> = ordered
        .iter()
        .rev()
        .take(settings.history_runs.max(1))
        .cloned()
        .collect();
    let delete: Vec<String> = jobs
        .iter()
        .filter(|j| {
            j.labels()
                .get(naming::RUN)
                .is_some_and(|r| !keep.contains(r))
        })
        .map(ResourceExt::name_any)
        .collect();

    // Matching pods left without a Job because the CR reached the operator's target limit.
    let mut over_limit = 0usize;
    // The targets of the current run: those recorded (snapshot membership survives restarts),
    // those with Jobs, and — while the run has none yet, or always with `follow` — the pods
    // that match now.
    let mut current: BTreeMap<String, Target> = BTreeMap::new();
    if let Some(run) = &run {
        for t in previous.targets.iter().filter(|t| &t.run == run) {
            current.insert(
                t.pod_uid.clone(),
                Target {
                    namespace: t.namespace.clone(),
                    name: t.pod.clone(),
                    uid: t.pod_uid.clone(),
                    node: t.node.clone(),
                },
            );
        }
        for j in jobs
            .iter()
            .filter(|j| j.labels().get(naming::RUN) == Some(run))
        {
            if per_node::is_node_job(j) {
                for t in per_node::listed(j) {
                    current.entry(t.uid.clone()).or_insert(t);
                }
                continue;
            }
            let s = aggregate::from_job(j, &[], true, None);
            current.entry(s.pod_uid.clone()).or_insert(Target {
                namespace: s.namespace,
                name: s.pod,
                uid: s.pod_uid,
                node: s.node,
            });
        }
        let open = current.is_empty() || plan.mode == TargetMode::Follow;
        if open && !plan.suspend {
            for t in &found.running {
                if current.contains_key(&t.uid) {
                    continue;
                }
                if current.len() >= settings.bounds.max_targets {
                    over_limit += 1;
                    continue;
                }
                current.insert(t.uid.clone(), t.clone());
            }
        }
    }

    // One Job per node for this run? Then which Job serves which target, and what to create.
    let run_jobs: Vec<&Job> = jobs
        .iter()
        .filter(|j| run.is_some() && j.labels().get(naming::RUN) == run.as_ref())
        .collect();
    let node_mode = run.is_some() && per_node::chosen(plan, settings, &run_jobs, current.values());
    let assignment = match &run {
        Some(run) if node_mode => {
            let node_jobs: Vec<(&Job, bool)> = run_jobs
                .iter()
                .filter(|j| per_node::is_node_job(j))
                .map(|j| (*j, !per_node::finished(j)))
                .collect();
            per_node::assign(
                &RunState {
                    owner: o.owner,
                    run,
                    jobs: &node_jobs,
                    current: &current,
                    alive: &found.alive,
                    previous: &previous.targets,
                    namespaces: &found.namespaces,
                    max_targets: settings.bounds.max_targets,
                },
                plan,
                plan.suspend,
            )
        }
        _ => per_node::Assignment::default(),
    };

    // Status entries: every kept Job, plus current targets without a Job.
    let jobs_by_name: HashMap<String, &Job> = jobs.iter().map(|j| (j.name_any(), j)).collect();
    let mut pods_by_job: HashMap<String, Vec<&Pod>> = HashMap::new();
    for p in job_pods {
        if let Some(j) = p.labels().get("job-name") {
            pods_by_job.entry(j.clone()).or_default().push(p);
        }
    }
    let prev_by_job: HashMap<&str, &TargetStatus> = previous
        .targets
        .iter()
        .map(|t| (t.job.as_str(), t))
        .collect();
    let prev_by_target: HashMap<(&str, &str), &TargetStatus> = previous
        .targets
        .iter()
        .map(|t| ((t.job.as_str(), t.pod_uid.as_str()), t))
        .collect();
    let mut entries: Vec<TargetStatus> = Vec::new();
    for j in jobs.iter().filter(|j| {
        j.labels()
            .get(naming::RUN)
            .is_some_and(|r| keep.contains(r))
    }) {
        let name = j.name_any();
        if per_node::is_node_job(j) {
            let pods = pods_by_job.get(&name).cloned().unwrap_or_default();
            let served = if node_mode && j.labels().get(naming::RUN) == run.as_ref() {
                assignment.served.get(&name).cloned().unwrap_or_default()
            } else {
                // An earlier run's Job: what it listed, and what it picked up (recorded).
                let mut served = per_node::listed(j);
                for p in previous.targets.iter().filter(|p| p.job == name) {
                    if !served.iter().any(|t| t.uid == p.pod_uid) {
                        served.push(Target {
                            namespace: p.namespace.clone(),
                            name: p.pod.clone(),
                            uid: p.pod_uid.clone(),
                            node: p.node.clone(),
                        });
                    }
                }
                served
            };
            for t in &served {
                entries.push(aggregate::from_node_job(
                    j,
                    &pods,
                    t,
                    found.alive.contains(&t.uid),
                    prev_by_target
                        .get(&(name.as_str(), t.uid.as_str()))
                        .copied(),
                ));
            }
            continue;
        }
        let uid = j
            .labels()
            .get(naming::TARGET_UID)
            .cloned()
            .unwrap_or_default();
        let pods = pods_by_job.get(&name).cloned().unwrap_or_default();
        entries.push(aggregate::from_job(
            j,
            &pods,
            found.alive.contains(&uid),
            prev_by_job.get(name.as_str()).copied(),
        ));
    }
    let mut to_create: Vec<(Target, String)> = Vec::new();
    if let Some(run) = run.as_ref().filter(|_| node_mode) {
        let planned: HashMap<&str, &str> = assignment
            .create
            .iter()
            .flat_map(|nj| {
                nj.targets
                    .iter()
                    .map(|t| (t.uid.as_str(), nj.name.as_str()))
            })
            .collect();
        let served: std::collections::HashSet<&str> = assignment
            .served
            .values()
            .flatten()
            .map(|t| t.uid.as_str())
            .collect();
        for t in current
            .values()
            .filter(|t| !served.contains(t.uid.as_str()))
        {
            let job_name = planned.get(t.uid.as_str()).copied().unwrap_or_default();
            let mut entry = aggregate::without_job(t, run, job_name, found.alive.contains(&t.uid));
            if let Some(prev) = prev_by_target.get(&(job_name, t.uid.as_str()))
                && prev.phase.is_final()
            {
                entry = (*prev).clone();
            }
            entries.push(entry);
        }
    }
    if let Some(run) = run.as_ref().filter(|_| !node_mode) {
        for t in current.values() {
            let name = job::job_name(o.owner, t, run);
            if jobs_by_name.contains_key(&name) {
                continue;
            }
            let alive = found.alive.contains(&t.uid);
            let mut entry = aggregate::without_job(t, run, &name, alive);
            // A target that is gone stays gone (its pod will not come back with this uid).
            if let Some(prev) = prev_by_job.get(name.as_str())
                && prev.phase.is_final()
            {
                entry = (*prev).clone();
            }
            if alive && !plan.suspend && entry.phase == TargetPhase::Pending {
                to_create.push((t.clone(), name));
            }
            entries.push(entry);
        }
    }
    entries.sort_by(|a, b| {
        (
            a.run.parse::<i64>().unwrap_or(i64::MAX),
            &a.namespace,
            &a.pod,
        )
            .cmp(&(
                b.run.parse::<i64>().unwrap_or(i64::MAX),
                &b.namespace,
                &b.pod,
            ))
    });

    // Record the targets before creating their Jobs (so a snapshot is remembered even if the
    // operator stops half-way), then create what is missing.
    let summary = aggregate::summarize(&entries, plan.schedule.is_some());
    let degraded_targets: Vec<&TargetStatus> = entries
        .iter()
        .filter(|t| matches!(t.phase, TargetPhase::Failed | TargetPhase::Gone))
        .collect();
    let (ready, degraded) = if let Some(ns) = &found.missing_namespace {
        (
            (
                ConditionStatus::False,
                "NamespaceNotFound",
                format!("namespace {ns} does not exist"),
            ),
            (
                ConditionStatus::True,
                "NamespaceNotFound",
                format!("targetNamespace {ns} does not exist; create it or fix the spec"),
            ),
        )
    } else if let Some(first) = found.host_network_refused.iter().next() {
        let ready = if entries.is_empty() {
            (
                ConditionStatus::False,
                "NoMatchingPods",
                targets::describe(plan),
            )
        } else {
            (
                ConditionStatus::True,
                "JobsCreated",
                format!("{} targets", entries.len()),
            )
        };
        (
            ready,
            (
                ConditionStatus::True,
                "HostNetworkNotAuthorized",
                format!(
                    "{} matching pods use the node's network (first: {first}) and get no Job: their traffic is the whole node's, so targeting them needs create pods/exec in every namespace, which this CR's authorization stamp does not carry",
                    found.host_network_refused.len()
                ),
            ),
        )
    } else if over_limit > 0 {
        let limit = settings.bounds.max_targets;
        (
            (
                ConditionStatus::True,
                "JobsCreated",
                format!("{} targets", entries.len()),
            ),
            (
                ConditionStatus::True,
                "TargetLimitReached",
                format!(
                    "{} more matching pods get no Job: the operator's admin allows at most {limit} targets per CR and run (SNOOPY_MAX_TARGETS); narrow podSelector or nodeSelector",
                    over_limit
                ),
            ),
        )
    } else if plan.suspend {
        (
            (
                ConditionStatus::False,
                "Suspended",
                "spec.suspend is true: no new Jobs".into(),
            ),
            ok_degraded(),
        )
    } else if entries.is_empty() && run.is_none() {
        let next = next_schedule.map(|t| t.to_string()).unwrap_or_default();
        (
            (
                ConditionStatus::True,
                "Scheduled",
                format!("first run at {next}"),
            ),
            ok_degraded(),
        )
    } else if entries.is_empty() {
        (
            (
                ConditionStatus::False,
                "NoMatchingPods",
                targets::describe(plan),
            ),
            ok_degraded(),
        )
    } else if !degraded_targets.is_empty() {
        let first = degraded_targets[0];
        let why = first
            .message
            .clone()
            .or(first.reason.clone())
            .unwrap_or_default();
        (
            (
                ConditionStatus::True,
                "JobsCreated",
                format!("{} targets", entries.len()),
            ),
            (
                ConditionStatus::True,
                "TargetsFailed",
                format!(
                    "{} of {} targets failed; {}/{}: {why}",
                    degraded_targets.len(),
                    entries.len(),
                    first.namespace,
                    first.pod
                ),
            ),
        )
    } else {
        (
            (
                ConditionStatus::True,
                "JobsCreated",
                if node_mode {
                    let nodes: std::collections::BTreeSet<&str> =
                        entries.iter().map(|e| e.node.as_str()).collect();
                    format!(
                        "{} targets on {} nodes, one Job per node",
                        entries.len(),
                        nodes.len()
                    )
                } else {
                    format!("{} targets, one Job each", entries.len())
                },
            ),
            ok_degraded(),
        )
    };
    let status = CaptureStatus {
        observed_generation: generation,
        phase: Some(if found.missing_namespace.is_some() {
            Phase::Pending
        } else {
            summary.phase
        }),
        tool: Some(plan.tool.name().to_owned()),
        conditions: conditions(previous, generation, now, ready, degraded),
        target_count: summary.total,
        succeeded: summary.succeeded,
        failed: summary.failed,
        last_schedule_time: last_schedule.map(|t| t.to_string()),
        next_schedule_time: next_schedule.map(|t| t.to_string()),
        targets_omitted: entries
            .len()
            .saturating_sub(settings.bounds.max_status_targets)
            .try_into()
            .unwrap_or(i32::MAX),
        targets: aggregate::bounded(entries, settings.bounds.max_status_targets),
    };

    let mut notes = Vec::new();
    let condition_changed = status
        .conditions
        .iter()
        .map(|c| (&c.type_, c.status, &c.reason))
        .collect::<Vec<_>>()
        != previous
            .conditions
            .iter()
            .map(|c| (&c.type_, c.status, &c.reason))
            .collect::<Vec<_>>();
    if condition_changed
        && let Some(c) = status.conditions.iter().find(|c| {
            (c.type_ == "Degraded" && c.status == ConditionStatus::True)
                || (c.type_ == "Ready" && c.status == ConditionStatus::False)
        })
    {
        notes.push(Note {
            warning: true,
            reason: c.reason.clone(),
            message: c.message.clone(),
        });
    }

    // Watches bring Job and pod changes; the requeue is a safety net, and the schedule's clock.
    let mut after = Duration::from_secs(300);
    if let Some(next) = next_schedule {
        let secs = (next.as_second() - now.as_second()).max(1);
        after = after.min(Duration::from_secs(u64::try_from(secs).unwrap_or(1)));
    }
    if matches!(status.phase, Some(Phase::Running | Phase::Pending)) {
        after = after.min(Duration::from_secs(30));
    }
    Decision {
        delete,
        create: run
            .clone()
            .filter(|_| !to_create.is_empty())
            .map(|r| (r, to_create)),
        node_jobs: run
            .filter(|_| !assignment.create.is_empty())
            .map(|r| (r, assignment.create)),
        status,
        notes,
        requeue: Some(after),
    }
}

fn ok_degraded() -> (ConditionStatus, &'static str, String) {
    // Never an empty message: this 1.20 apiserver build reads "" in a custom resource as null.
    (
        ConditionStatus::False,
        "AsExpected",
        "no problem found".into(),
    )
}

/// Ready and Degraded, keeping `lastTransitionTime` while a status does not change.
fn conditions(
    previous: &CaptureStatus,
    generation: Option<i64>,
    now: Timestamp,
    ready: (ConditionStatus, &str, String),
    degraded: (ConditionStatus, &str, String),
) -> Vec<Condition> {
    [("Ready", ready), ("Degraded", degraded)]
        .into_iter()
        .map(|(type_, (status, reason, message))| {
            let since = previous
                .conditions
                .iter()
                .find(|c| c.type_ == type_ && c.status == status)
                .and_then(|c| c.last_transition_time.clone())
                .unwrap_or_else(|| now.to_string());
            Condition {
                type_: type_.into(),
                status,
                reason: reason.into(),
                message,
                last_transition_time: Some(since),
                observed_generation: generation,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::fixtures::{owner, poc_plan};
    use crate::schedule::Schedule;
    use std::collections::BTreeMap;

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    fn pod(name: &str, uid: &str) -> Target {
        Target {
            namespace: "cnf-telco".into(),
            name: name.into(),
            uid: uid.into(),
            node: "node-a".into(),
        }
    }

    fn found(pods: &[Target]) -> Found {
        Found {
            running: pods.iter().cloned().collect(),
            alive: pods.iter().map(|p| p.uid.clone()).collect(),
            ..Found::default()
        }
    }

    /// A Job of `run` for `target`, as the builder makes it (no status yet).
    fn job_of(target: &Target, run: &str, plan: &Plan) -> Job {
        job::build(&owner(), target, run, plan, &Settings::default())
    }

    struct Case<'a> {
        previous: CaptureStatus,
        jobs: Vec<Job>,
        job_pods: Vec<Pod>,
        found: Found,
        plan: Plan,
        settings: Settings,
        now: &'a str,
    }

    impl Case<'_> {
        fn decide(&self) -> Decision {
            let owner = owner();
            let observed = Observed {
                owner: &owner,
                created: Some(at("2026-12-03T12:00:00Z")),
                generation: Some(1),
                previous: &self.previous,
                jobs: &self.jobs,
                job_pods: &self.job_pods,
                now: at(self.now),
            };
            decide(&observed, &self.plan, &self.found, &self.settings)
        }
    }

    fn case(found: Found) -> Case<'static> {
        Case {
            previous: CaptureStatus::default(),
            jobs: Vec::new(),
            job_pods: Vec::new(),
            found,
            plan: poc_plan(),
            settings: Settings::default(),
            now: "2026-12-03T12:00:30Z",
        }
    }

    fn created(d: &Decision) -> Vec<String> {
        d.create
            .iter()
            .flat_map(|(_, targets)| targets.iter().map(|(t, _)| t.name.clone()))
            .collect()
    }

    fn condition<'a>(d: &'a Decision, type_: &str) -> &'a Condition {
        d.status
            .conditions
            .iter()
            .find(|c| c.type_ == type_)
            .unwrap()
    }

    /// A new CR: one Job per running target, each target Pending, the run `once`.
    fn on(node: &str, name: &str, uid: &str) -> Target {
        Target {
            node: node.into(),
            ..pod(name, uid)
        }
    }

    /// The node Jobs a decision creates: node → its targets' names.
    fn node_jobs(d: &Decision) -> BTreeMap<String, Vec<String>> {
        d.node_jobs
            .iter()
            .flat_map(|(_, jobs)| jobs.iter())
            .map(|nj| {
                (
                    nj.node.clone(),
                    nj.targets.iter().map(|t| t.name.clone()).collect(),
                )
            })
            .collect()
    }

    /// The Jobs a decision creates, as the API server would then hold them (with a status
    /// saying whether they still run).
    fn node_jobs_built(c: &Case<'_>, d: &Decision, running: bool) -> Vec<Job> {
        let (run, jobs) = d.node_jobs.as_ref().expect("node Jobs to create");
        jobs.iter()
            .map(|nj| {
                let mut job = job::build_for_node(&owner(), nj, run, &c.plan, &c.settings);
                job.status = Some(k8s_openapi::api::batch::v1::JobStatus {
                    active: running.then_some(1),
                    succeeded: (!running).then_some(1),
                    ..Default::default()
                });
                job
            })
            .collect()
    }

    /// The pod of a finished Job, its termination message `report`.
    fn finished_pod(job: &Job, report: &snoopy_job::Report) -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": format!("{}-x", job.name_any()),
                         "labels": {"job-name": job.name_any()}},
            "status": {"phase": "Succeeded", "containerStatuses": [{
                "name": "podtracer", "image": "", "imageID": "", "ready": false,
                "restartCount": 0,
                "state": {"terminated": {"exitCode": 0, "message": report.to_json(),
                                          "finishedAt": "2026-12-03T12:00:20Z"}}}]},
        }))
        .unwrap()
    }

    /// `jobsPer` unset: captures go per node once a node holds the threshold of targets
    /// (4), grouped by node; below it, one Job per pod as before.
    #[test]
    fn auto_groups_targets_by_node_from_the_threshold_on() {
        let mut pods: Vec<Target> = (0..4)
            .map(|n| on("node-a", &format!("a{n}"), &format!("ua{n}")))
            .collect();
        pods.push(on("node-b", "b0", "ub0"));
        let mut c = case(found(&pods));
        c.plan.jobs_per = crate::plan::JobsPer::Auto;
        let d = c.decide();
        assert!(d.create.is_none(), "{d:?}");
        assert_eq!(
            node_jobs(&d),
            BTreeMap::from([
                (
                    "node-a".to_owned(),
                    vec!["a0".into(), "a1".into(), "a2".into(), "a3".into()]
                ),
                ("node-b".to_owned(), vec!["b0".to_owned()]),
            ])
        );
        assert_eq!(d.status.target_count, 5);
        assert!(
            d.status
                .targets
                .iter()
                .all(|t| t.phase == TargetPhase::Pending)
        );
        let names: BTreeSet<&str> = d.status.targets.iter().map(|t| t.job.as_str()).collect();
        assert_eq!(names.len(), 2, "each target names its node's Job");
        assert!(condition(&d, "Ready").message.contains("one Job per node"));

        // Three on the busiest node: below the threshold, one Job per pod.
        let mut c = case(found(&pods[1..]));
        c.plan.jobs_per = crate::plan::JobsPer::Auto;
        let d = c.decide();
        assert!(d.node_jobs.is_none());
        assert_eq!(created(&d).len(), 4);
        // The admin's threshold; and `jobsPer: pod` wins over any count.
        c.settings.bounds.node_job_threshold = 3;
        assert!(c.decide().node_jobs.is_some());
        c.plan.jobs_per = crate::plan::JobsPer::Pod;
        assert!(c.decide().node_jobs.is_none());
    }

    /// A run keeps its cut: once its node Jobs exist, nothing is created again, and the
    /// targets the Jobs list stay theirs (a snapshot takes no pod that starts matching).
    #[test]
    fn a_snapshot_run_keeps_its_node_jobs_and_takes_no_new_pod() {
        let pods = [on("node-a", "a0", "ua0"), on("node-a", "a1", "ua1")];
        let mut c = case(found(&pods));
        c.plan.jobs_per = crate::plan::JobsPer::Node;
        let first = c.decide();
        c.jobs = node_jobs_built(&c, &first, true);
        c.previous = first.status;
        let mut more = pods.to_vec();
        more.push(on("node-b", "b0", "ub0"));
        c.found = found(&more);
        // Auto would now count differently: the run's Jobs decide.
        c.plan.jobs_per = crate::plan::JobsPer::Auto;
        let d = c.decide();
        assert!(d.create.is_none() && d.node_jobs.is_none(), "{d:?}");
        assert_eq!(d.status.target_count, 2);
    }

    /// `follow`: a pod that starts matching on a node whose Job runs is that Job's (it picks
    /// pods up itself); a pod on a new node gets that node's Job; a pod on a node whose Job
    /// has ended gets the node's next Job. A node that goes away takes its pods with it:
    /// their targets end Gone.
    #[test]
    fn follow_assigns_new_pods_to_their_nodes_running_job() {
        let mut c = case(found(&[on("node-a", "a0", "ua0")]));
        c.plan.jobs_per = crate::plan::JobsPer::Node;
        c.plan.mode = TargetMode::Follow;
        let first = c.decide();
        let a_job = first.node_jobs.as_ref().unwrap().1[0].name.clone();
        c.jobs = node_jobs_built(&c, &first, true);
        c.previous = first.status;

        c.found = found(&[
            on("node-a", "a0", "ua0"),
            on("node-a", "a1", "ua1"),
            on("node-b", "b0", "ub0"),
        ]);
        let d = c.decide();
        assert_eq!(
            node_jobs(&d),
            BTreeMap::from([("node-b".to_owned(), vec!["b0".to_owned()])])
        );
        let a1 = d.status.targets.iter().find(|t| t.pod == "a1").unwrap();
        assert_eq!(a1.job, a_job, "picked up by node-a's running Job");
        c.jobs.extend(node_jobs_built(&c, &d, true));
        c.previous = d.status;

        // node-a's Job ends; a2 appears there; node-b goes away with b0.
        c.jobs[0].status = Some(k8s_openapi::api::batch::v1::JobStatus {
            succeeded: Some(1),
            ..Default::default()
        });
        c.found = found(&[
            on("node-a", "a0", "ua0"),
            on("node-a", "a1", "ua1"),
            on("node-a", "a2", "ua2"),
        ]);
        let d = c.decide();
        let created = &d.node_jobs.as_ref().unwrap().1;
        assert_eq!(created.len(), 1);
        // The cap (500) less the run's 4 targets, plus the Job's own one.
        assert_eq!(created[0].max_pods, 497);
        assert_eq!((created[0].node.as_str(), created[0].seq), ("node-a", 1));
        assert_ne!(created[0].name, a_job);
        assert_eq!(created[0].targets.len(), 1);
        let b0 = d.status.targets.iter().find(|t| t.pod == "b0").unwrap();
        assert_eq!(b0.phase, TargetPhase::Gone, "{b0:?}");
        // a1, picked up by the ended Job, stays that Job's.
        let a1 = d.status.targets.iter().find(|t| t.pod == "a1").unwrap();
        assert_eq!(a1.job, a_job);
    }

    /// A follow-mode node Job picks pods up only in the namespaces it was given: a pod of a
    /// namespace selected later (a namespaceSelector) gets another Job on that node.
    #[test]
    fn follow_newcomers_of_another_namespace_get_their_own_job() {
        let mut c = case(found(&[on("node-a", "a0", "ua0")]));
        c.plan.jobs_per = crate::plan::JobsPer::Node;
        c.plan.mode = TargetMode::Follow;
        let first = c.decide();
        c.jobs = node_jobs_built(&c, &first, true);
        c.previous = first.status;
        let late = Target {
            namespace: "late-ns".into(),
            ..on("node-a", "l0", "ul0")
        };
        c.found = found(&[on("node-a", "a0", "ua0"), late]);
        let d = c.decide();
        let created = &d.node_jobs.as_ref().expect("a Job for late-ns").1;
        assert_eq!((created[0].node.as_str(), created[0].seq), ("node-a", 1));
        assert_eq!(created[0].targets[0].namespace, "late-ns");
    }

    /// Each target of a finished node Job gets its own count from the Job's report; a pod
    /// that went away mid-run is Gone with what it captured; a pod the report lacks while
    /// it still runs was not captured, and says so.
    #[test]
    fn a_node_jobs_report_gives_each_target_its_count() {
        let pods = [
            on("node-a", "a0", "ua0"),
            on("node-a", "a1", "ua1"),
            on("node-a", "a2", "ua2"),
        ];
        let mut c = case(found(&pods));
        c.plan.jobs_per = crate::plan::JobsPer::Node;
        let first = c.decide();
        c.jobs = node_jobs_built(&c, &first, false);
        c.previous = first.status;
        let mut gone = snoopy_job::PodCount::new("ua1", 7, 0);
        gone.gone = true;
        let report = snoopy_job::Report {
            captured: Some(19),
            received: Some(19),
            dropped: Some(1),
            ..Default::default()
        }
        .with_pods([snoopy_job::PodCount::new("ua0", 12, 1), gone]);
        c.job_pods = vec![finished_pod(&c.jobs[0], &report)];
        c.found = found(&[pods[0].clone(), pods[2].clone()]);
        let d = c.decide();
        let t = |name: &str| d.status.targets.iter().find(|t| t.pod == name).unwrap();
        assert_eq!(t("a0").phase, TargetPhase::Succeeded);
        assert_eq!(
            (t("a0").packets_captured, t("a0").packets_dropped),
            (Some(12), Some(1))
        );
        assert_eq!(t("a1").phase, TargetPhase::Gone);
        assert_eq!(t("a1").packets_captured, Some(7));
        assert!(
            t("a1")
                .message
                .as_deref()
                .unwrap()
                .contains("the 7 packets")
        );
        assert_eq!(t("a2").phase, TargetPhase::Failed);
        assert_eq!(t("a2").reason.as_deref(), Some("NotCaptured"));
        assert_eq!((d.status.succeeded, d.status.failed), (1, 2));
    }

    #[test]
    fn a_new_cr_creates_one_job_per_target() {
        let d = case(found(&[pod("a", "ua"), pod("b", "ub")])).decide();
        assert_eq!(created(&d), ["a", "b"]);
        assert_eq!(d.create.as_ref().unwrap().0, naming::RUN_ONCE);
        assert_eq!(d.status.target_count, 2);
        assert!(d.delete.is_empty() && d.notes.is_empty(), "{d:?}");
        assert_eq!(condition(&d, "Ready").reason, "JobsCreated");
        assert_eq!(
            d.requeue,
            Some(Duration::from_secs(30)),
            "Pending: look again soon"
        );
    }

    /// The admin's cap: the first targets get Jobs, the rest none, and a warning says so.
    #[test]
    fn targets_over_the_cap_get_no_job_and_a_warning() {
        let mut c = case(found(&[pod("a", "ua"), pod("b", "ub"), pod("c", "uc")]));
        c.settings.bounds.max_targets = 2;
        let d = c.decide();
        assert_eq!(created(&d).len(), 2);
        let degraded = condition(&d, "Degraded");
        assert_eq!(degraded.reason, "TargetLimitReached");
        assert!(
            degraded.message.starts_with("1 more matching pods"),
            "{degraded:?}"
        );
        assert_eq!(d.notes.len(), 1);
        assert!(d.notes[0].warning && d.notes[0].reason == "TargetLimitReached");
        // The next reconcile (status written) does not warn again.
        c.previous = d.status.clone();
        assert!(c.decide().notes.is_empty());
    }

    /// A Job deleted by hand while its target still runs is made again (same name: the
    /// level-triggered reconciler converges on one Job per target).
    #[test]
    fn a_job_deleted_by_hand_is_created_again() {
        let a = pod("a", "ua");
        let mut c = case(found(std::slice::from_ref(&a)));
        let first = c.decide();
        let name = first.create.as_ref().unwrap().1[0].1.clone();
        c.previous = first.status;
        c.jobs = vec![job_of(&a, naming::RUN_ONCE, &c.plan)];
        assert!(
            c.decide().create.is_none(),
            "the Job exists: nothing to create"
        );
        c.jobs.clear();
        let again = c.decide();
        assert_eq!(again.create.unwrap().1[0].1, name);
    }

    /// A pod deleted and created again under the same name is another pod (another uid):
    /// a snapshot keeps its recorded targets and makes no Job for it; `follow` adds it with
    /// a Job of its own.
    #[test]
    fn a_pod_recreated_with_the_same_name_is_a_new_target_only_when_following() {
        let old = pod("a", "old-uid");
        let mut c = case(found(std::slice::from_ref(&old)));
        let first = c.decide();
        let old_job = first.create.as_ref().unwrap().1[0].1.clone();
        c.previous = first.status;
        c.jobs = vec![job_of(&old, naming::RUN_ONCE, &c.plan)];
        c.found = found(&[pod("a", "new-uid")]);
        let snapshot = c.decide();
        assert!(snapshot.create.is_none(), "{snapshot:?}");
        c.plan.mode = TargetMode::Follow;
        let follow = c.decide();
        let (_, made) = follow.create.unwrap();
        assert_eq!(made.len(), 1);
        assert_eq!(made[0].0.uid, "new-uid");
        assert_ne!(made[0].1, old_job, "another pod, another Job name");
    }

    /// A schedule's clock going back (skew between operator replicas, NTP) does not start
    /// the same tick twice or an earlier one; the next reconcile is at the next tick.
    #[test]
    fn a_clock_going_back_at_a_tick_starts_no_run_twice() {
        let a = pod("a", "ua");
        let mut c = case(found(std::slice::from_ref(&a)));
        c.plan.schedule = Some(Schedule::parse("*/5 * * * *").unwrap());
        c.now = "2026-12-03T12:05:00.5Z";
        let tick = c.decide();
        let (run, _) = tick.create.clone().unwrap();
        assert_eq!(run, at("2026-12-03T12:05:00Z").as_second().to_string());
        c.previous = tick.status;
        c.jobs = vec![job_of(&a, &run, &c.plan)];
        for skewed in [
            "2026-12-03T12:04:59Z",
            "2026-12-03T12:05:00Z",
            "2026-12-03T12:09:59Z",
        ] {
            c.now = skewed;
            let d = c.decide();
            assert!(d.create.is_none(), "at {skewed}: {d:?}");
            assert_eq!(
                d.status.last_schedule_time.as_deref(),
                Some("2026-12-03T12:05:00Z"),
                "at {skewed}"
            );
        }
        c.now = "2026-12-03T12:09:59Z";
        assert_eq!(c.decide().requeue, Some(Duration::from_secs(1)));
        c.now = "2026-12-03T12:10:00Z";
        let next = c.decide();
        assert_eq!(
            next.create.unwrap().0,
            at("2026-12-03T12:10:00Z").as_second().to_string()
        );
    }

    /// Runs past the history are deleted, newest kept.
    #[test]
    fn runs_past_the_history_are_deleted() {
        let a = pod("a", "ua");
        let mut c = case(found(std::slice::from_ref(&a)));
        c.plan.schedule = Some(Schedule::parse("*/5 * * * *").unwrap());
        c.settings.history_runs = 2;
        let runs = [
            "2026-12-03T11:50:00Z",
            "2026-12-03T11:55:00Z",
            "2026-12-03T12:00:00Z",
        ]
        .map(|t| at(t).as_second().to_string());
        c.jobs = runs.iter().map(|r| job_of(&a, r, &c.plan)).collect();
        c.previous.last_schedule_time = Some("2026-12-03T12:00:00Z".into());
        c.now = "2026-12-03T12:01:00Z";
        let d = c.decide();
        assert_eq!(d.delete, [c.jobs[0].name_any()]);
        assert!(d.create.is_none());
    }

    /// A missing target namespace: Pending with its condition, no Job.
    #[test]
    fn a_missing_namespace_is_a_condition() {
        let none = Found {
            missing_namespace: Some("cnf-telco".into()),
            ..Found::default()
        };
        let d = case(none).decide();
        assert!(d.create.is_none());
        assert_eq!(d.status.phase, Some(Phase::Pending));
        assert_eq!(condition(&d, "Degraded").reason, "NamespaceNotFound");
    }

    /// An invalid spec: the condition and one Event, not repeated while nothing changes.
    #[test]
    fn an_invalid_spec_warns_once() {
        let owner = owner();
        let bad = Invalid {
            reason: "InvalidFilter",
            message: "filter \"tcp and\": syntax error".into(),
        };
        let previous = CaptureStatus::default();
        let observe = |previous| Observed {
            owner: &owner,
            created: None,
            generation: Some(2),
            previous,
            jobs: &[],
            job_pods: &[],
            now: at("2026-12-03T12:00:00Z"),
        };
        let d = invalid(&observe(&previous), &bad);
        assert_eq!(d.status.phase, Some(Phase::Invalid));
        assert_eq!(d.notes.len(), 1);
        assert_eq!((d.create, d.requeue), (None, None));
        let previous = d.status;
        assert!(invalid(&observe(&previous), &bad).notes.is_empty());
    }
}
