//! Converge one CR (Apply) and remove everything it made (Cleanup).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use jiff::Timestamp;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, PropagationPolicy};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType, Recorder};
use serde_json::json;
use tracing::{debug, info};

use super::{CaptureResource, Context, Error, kube_err, targets};
use crate::aggregate;
use crate::crd::{
    CaptureStatus, Condition, ConditionStatus, Phase, TargetMode, TargetPhase, TargetStatus,
};
use crate::job::{self, Owner, Target};
use crate::metrics::{CrLabels, KindLabels};
use crate::naming;
use crate::plan::Plan;

/// How many Jobs are created at once (the API server handles these in parallel).
const CREATE_CONCURRENCY: usize = 48;

fn owner_of<K: CaptureResource>(cr: &K) -> Owner {
    Owner {
        kind: K::kind(&()).to_string(),
        name: cr.name_any(),
        namespace: cr.namespace().unwrap_or_default(),
        uid: cr.uid().unwrap_or_default(),
    }
}

async fn owned_jobs(ctx: &Context, owner: &Owner) -> Result<(Vec<Job>, Vec<Pod>), Error> {
    let ns = &ctx.settings.namespace;
    let selector = job::owner_selector(&owner.uid);
    let lp = ListParams::default().labels(&selector);
    let jobs: Api<Job> = Api::namespaced(ctx.client.clone(), ns);
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), ns);
    let jobs = jobs
        .list(&lp)
        .await
        .map_err(kube_err(format!("list Jobs in {ns}")))?
        .items;
    // Job pods carry the template's labels; only needed for the counters and Running.
    let pods = pods
        .list(&lp)
        .await
        .map_err(kube_err(format!("list Job pods in {ns}")))?
        .items;
    Ok((jobs, pods))
}

/// Deletes the CR's Jobs (and, by propagation, their pods); the finalizer stays until none is left.
pub(super) async fn cleanup<K: CaptureResource>(
    cr: Arc<K>,
    ctx: &Context,
) -> Result<Action, Error> {
    let owner = owner_of(cr.as_ref());
    let (jobs, _) = owned_jobs(ctx, &owner).await?;
    if jobs.is_empty() {
        info!("no Jobs left; finalizer removed");
        ctx.metrics.targets.remove(&CrLabels {
            kind: owner.kind,
            namespace: owner.namespace,
            name: owner.name,
        });
        return Ok(Action::await_change());
    }
    let api: Api<Job> = Api::namespaced(ctx.client.clone(), &ctx.settings.namespace);
    let dp = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Foreground),
        ..Default::default()
    };
    let pending = jobs
        .iter()
        .filter(|j| j.metadata.deletion_timestamp.is_none())
        .count();
    for j in jobs
        .iter()
        .filter(|j| j.metadata.deletion_timestamp.is_none())
    {
        let name = j.name_any();
        match api.delete(&name, &dp).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => return Err(kube_err(format!("delete Job {name}"))(e)),
        }
    }
    if pending > 0 {
        publish(
            ctx,
            cr.as_ref(),
            EventType::Normal,
            "DeletingJobs",
            format!("deleting {pending} Jobs"),
        )
        .await;
    }
    Err(Error::JobsRemain(jobs.len()))
}

/// Converges the CR: validate, find targets, create missing Jobs, derive the status.
pub(super) async fn apply<K: CaptureResource>(cr: Arc<K>, ctx: &Context) -> Result<Action, Error> {
    let owner = owner_of(cr.as_ref());
    let previous = cr.capture_status().cloned().unwrap_or_default();
    let generation = cr.meta().generation;
    let now = Timestamp::now();
    let (jobs, job_pods) = owned_jobs(ctx, &owner).await?;

    let stamp = cr.annotations().get(crate::stamp::ANNOTATION).cloned();
    let plan =
        match ctx
            .plans
            .get_or_make(cr.uid().as_deref(), generation, stamp.as_deref(), || {
                cr.plan(
                    &ctx.settings,
                    &super::authorization(cr.as_ref(), ctx.stamp_key.as_ref()),
                )
            }) {
            Ok(plan) => plan,
            Err(invalid) => {
                let mut status = CaptureStatus {
                    observed_generation: generation,
                    phase: Some(Phase::Invalid),
                    ..Default::default()
                };
                status.conditions = conditions(
                    &previous,
                    generation,
                    now,
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
                if status.conditions != previous.conditions || previous.phase != status.phase {
                    publish(
                        ctx,
                        cr.as_ref(),
                        EventType::Warning,
                        invalid.reason,
                        invalid.message,
                    )
                    .await;
                }
                write_status(ctx, cr.as_ref(), &previous, status).await?;
                return Ok(Action::await_change());
            }
        };

    // Which run is current.
    let created = cr
        .meta()
        .creation_timestamp
        .as_ref()
        .map(|t| t.0)
        .unwrap_or(now);
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

    let found = targets::find(&ctx.client, &plan).await?;

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
        .take(ctx.settings.history_runs.max(1))
        .cloned()
        .collect();
    let stale: Vec<&Job> = jobs
        .iter()
        .filter(|j| {
            j.labels()
                .get(naming::RUN)
                .is_some_and(|r| !keep.contains(r))
        })
        .collect();
    if !stale.is_empty() {
        let api: Api<Job> = Api::namespaced(ctx.client.clone(), &ctx.settings.namespace);
        let dp = DeleteParams {
            propagation_policy: Some(PropagationPolicy::Background),
            ..Default::default()
        };
        for j in &stale {
            if let Err(e) = api.delete(&j.name_any(), &dp).await
                && !matches!(&e, kube::Error::Api(s) if s.code == 404)
            {
                return Err(kube_err(format!("delete old Job {}", j.name_any()))(e));
            }
        }
    }

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
                if current.len() >= ctx.settings.bounds.max_targets {
                    over_limit += 1;
                    continue;
                }
                current.insert(t.uid.clone(), t.clone());
            }
        }
    }

    // Status entries: every kept Job, plus current targets without a Job.
    let jobs_by_name: HashMap<String, &Job> = jobs.iter().map(|j| (j.name_any(), j)).collect();
    let mut pods_by_job: HashMap<String, Vec<&Pod>> = HashMap::new();
    for p in &job_pods {
        if let Some(j) = p.labels().get("job-name") {
            pods_by_job.entry(j.clone()).or_default().push(p);
        }
    }
    let prev_by_job: HashMap<&str, &TargetStatus> = previous
        .targets
        .iter()
        .map(|t| (t.job.as_str(), t))
        .collect();
    let mut entries: Vec<TargetStatus> = Vec::new();
    for j in jobs.iter().filter(|j| {
        j.labels()
            .get(naming::RUN)
            .is_some_and(|r| keep.contains(r))
    }) {
        let name = j.name_any();
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
    if let Some(run) = &run {
        for t in current.values() {
            let name = job::job_name(&owner, t, run);
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
                targets::describe(&plan),
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
        let limit = ctx.settings.bounds.max_targets;
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
                targets::describe(&plan),
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
                format!("{} targets, one Job each", entries.len()),
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
        conditions: conditions(&previous, generation, now, ready, degraded),
        target_count: summary.total,
        succeeded: summary.succeeded,
        failed: summary.failed,
        last_schedule_time: last_schedule.map(|t| t.to_string()),
        next_schedule_time: next_schedule.map(|t| t.to_string()),
        targets_omitted: entries
            .len()
            .saturating_sub(ctx.settings.bounds.max_status_targets)
            .try_into()
            .unwrap_or(i32::MAX),
        targets: aggregate::bounded(entries, ctx.settings.bounds.max_status_targets),
    };
    let cr_labels = CrLabels {
        kind: owner.kind.clone(),
        namespace: owner.namespace.clone(),
        name: owner.name.clone(),
    };
    ctx.metrics
        .targets
        .get_or_create(&cr_labels)
        .set(i64::from(summary.total));
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
    if condition_changed {
        for c in &status.conditions {
            if (c.type_ == "Degraded" && c.status == ConditionStatus::True)
                || (c.type_ == "Ready" && c.status == ConditionStatus::False)
            {
                publish(
                    ctx,
                    cr.as_ref(),
                    EventType::Warning,
                    &c.reason.clone(),
                    c.message.clone(),
                )
                .await;
                break;
            }
        }
    }
    write_status(ctx, cr.as_ref(), &previous, status.clone()).await?;

    if let Some(run) = &run
        && !to_create.is_empty()
    {
        let created = create_jobs(ctx, &owner, &plan, run, &to_create).await?;
        if created > 0 {
            ctx.metrics
                .jobs_created
                .get_or_create(&KindLabels {
                    kind: owner.kind.clone(),
                })
                .inc_by(created);
            let names: Vec<&str> = to_create.iter().map(|(_, n)| n.as_str()).take(5).collect();
            let more = if to_create.len() > 5 {
                format!(" and {} more", to_create.len() - 5)
            } else {
                String::new()
            };
            publish(
                ctx,
                cr.as_ref(),
                EventType::Normal,
                "JobsCreated",
                format!(
                    "created {created} Jobs in {}: {}{more}",
                    ctx.settings.namespace,
                    names.join(", ")
                ),
            )
            .await;
        }
    }

    // Watches bring Job and pod changes; the requeue is a safety net, and the schedule's clock.
    let mut after = Duration::from_secs(300);
    if let Some(next) = next_schedule {
        let secs = (next.as_second() - Timestamp::now().as_second()).max(1);
        after = after.min(Duration::from_secs(u64::try_from(secs).unwrap_or(1)));
    }
    if matches!(status.phase, Some(Phase::Running | Phase::Pending)) {
        after = after.min(Duration::from_secs(30));
    }
    Ok(Action::requeue(after))
}

async fn create_jobs(
    ctx: &Context,
    owner: &Owner,
    plan: &Plan,
    run: &str,
    targets: &[(Target, String)],
) -> Result<u64, Error> {
    let api: Api<Job> = Api::namespaced(ctx.client.clone(), &ctx.settings.namespace);
    let work: Vec<(Job, String, String, String)> = targets
        .iter()
        .map(|(t, name)| {
            (
                job::build(owner, t, run, plan, &ctx.settings),
                name.clone(),
                owner.uid.clone(),
                ctx.settings.namespace.clone(),
            )
        })
        .collect();
    let results: Vec<bool> = futures::stream::iter(work)
        .map(|(job, name, uid, ns)| {
            let api = api.clone();
            async move {
                match api.create(&PostParams::default(), &job).await {
                    Ok(_) => {
                        debug!(job = %name, "Job created");
                        Ok(true)
                    }
                    Err(kube::Error::Api(s)) if s.code == 409 => {
                        // Already there: ours (a repeated reconcile) or a name collision.
                        let existing = api
                            .get(&name)
                            .await
                            .map_err(kube_err(format!("get Job {name}")))?;
                        if existing.labels().get(naming::OWNER_UID) == Some(&uid) {
                            Ok(false)
                        } else {
                            Err(Error::Conflict(name))
                        }
                    }
                    Err(e) => Err(kube_err(format!("create Job {name} in {ns}"))(e)),
                }
            }
        })
        .buffer_unordered(CREATE_CONCURRENCY)
        .try_collect()
        .await?;
    Ok(results.into_iter().filter(|c| *c).count() as u64)
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

/// Writes the whole status, skipped when nothing changed (so a reconcile triggered by our own
/// status write ends there). A JSON merge patch, not server-side apply: the 1.20 apiserver's
/// apply turns empty strings into nulls. Optional fields that are now unset are sent as
/// null so they are removed; arrays are replaced as a whole.
async fn write_status<K: CaptureResource>(
    ctx: &Context,
    cr: &K,
    previous: &CaptureStatus,
    status: CaptureStatus,
) -> Result<(), Error> {
    if *previous == status {
        return Ok(());
    }
    let api: Api<K> = Api::namespaced(ctx.client.clone(), &cr.namespace().unwrap_or_default());
    let mut body = serde_json::to_value(&status).unwrap_or_default();
    if let Some(fields) = body.as_object_mut() {
        for key in [
            "observedGeneration",
            "phase",
            "tool",
            "conditions",
            "lastScheduleTime",
            "nextScheduleTime",
            "targetsOmitted",
            "targets",
        ] {
            fields.entry(key).or_insert(serde_json::Value::Null);
        }
    }
    api.patch_status(
        &cr.name_any(),
        &PatchParams::default(),
        &Patch::Merge(json!({ "status": body })),
    )
    .await
    .map_err(kube_err(format!("update status of {}", cr.name_any())))?;
    Ok(())
}

/// Publishes an Event on the CR; a failure is logged, never fatal (Events are best effort).
async fn publish<K: CaptureResource>(
    ctx: &Context,
    cr: &K,
    type_: EventType,
    reason: &str,
    note: String,
) {
    let recorder = Recorder::new(ctx.client.clone(), ctx.reporter.clone());
    let event = Event {
        type_,
        reason: reason.to_owned(),
        note: Some(note.chars().take(1000).collect()),
        action: "Reconcile".into(),
        secondary: None,
    };
    if let Err(e) = recorder.publish(&event, &cr.object_ref(&())).await {
        info!(error = %e, "could not publish an Event");
    }
}
