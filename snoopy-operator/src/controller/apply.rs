//! Converge one CR (Apply) and remove everything it made (Cleanup).

use std::sync::Arc;

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

use super::decide::{self, Observed};
use super::{CaptureResource, Context, Error, kube_err, paged, targets};
use crate::crd::CaptureStatus;
use crate::job::{self, Owner};
use crate::metrics::{CrLabels, KindLabels};
use crate::naming;

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
    let jobs = paged::list(&jobs, &lp, paged::trim_job)
        .await
        .map_err(kube_err(format!("list Jobs in {ns}")))?;
    // Job pods carry the template's labels; only needed for the counters and Running.
    let pods = paged::list(&pods, &lp, paged::trim_job_pod)
        .await
        .map_err(kube_err(format!("list Job pods in {ns}")))?;
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

/// Converges the CR: reads what is there, lets [`decide`](super::decide) choose, and carries
/// the decision out — stale Jobs deleted, Events published, the status written, missing Jobs
/// created.
pub(super) async fn apply<K: CaptureResource>(cr: Arc<K>, ctx: &Context) -> Result<Action, Error> {
    let owner = owner_of(cr.as_ref());
    let previous = cr.capture_status().cloned().unwrap_or_default();
    let (jobs, job_pods) = owned_jobs(ctx, &owner).await?;
    let stamp = cr.annotations().get(crate::stamp::ANNOTATION).cloned();
    let plan = ctx.plans.get_or_make(
        cr.uid().as_deref(),
        cr.meta().generation,
        stamp.as_deref(),
        || {
            cr.plan(
                &ctx.settings,
                &super::authorization(cr.as_ref(), ctx.stamp_key.as_ref()),
            )
        },
    );
    let observed = Observed {
        owner: &owner,
        created: cr.meta().creation_timestamp.as_ref().map(|t| t.0),
        generation: cr.meta().generation,
        previous: &previous,
        jobs: &jobs,
        job_pods: &job_pods,
        now: Timestamp::now(),
    };
    let decision = match &plan {
        Err(invalid) => decide::invalid(&observed, invalid),
        Ok(plan) => {
            let found = targets::find(&ctx.client, plan).await?;
            decide::decide(&observed, plan, &found, &ctx.settings)
        }
    };
    delete_jobs(ctx, &decision.delete).await?;
    if plan.is_ok() {
        ctx.metrics
            .targets
            .get_or_create(&CrLabels {
                kind: owner.kind.clone(),
                namespace: owner.namespace.clone(),
                name: owner.name.clone(),
            })
            .set(i64::from(decision.status.target_count));
    }
    for note in &decision.notes {
        let type_ = if note.warning {
            EventType::Warning
        } else {
            EventType::Normal
        };
        publish(ctx, cr.as_ref(), type_, &note.reason, note.message.clone()).await;
    }
    write_status(ctx, cr.as_ref(), &previous, decision.status).await?;
    if let Ok(plan) = &plan {
        let mut to_create: Vec<(Job, String)> = Vec::new();
        if let Some((run, targets)) = &decision.create {
            to_create.extend(targets.iter().map(|(t, name)| {
                (
                    job::build(&owner, t, run, plan, &ctx.settings),
                    name.clone(),
                )
            }));
        }
        if let Some((run, node_jobs)) = &decision.node_jobs {
            to_create.extend(node_jobs.iter().map(|nj| {
                (
                    job::build_for_node(&owner, nj, run, plan, &ctx.settings),
                    nj.name.clone(),
                )
            }));
        }
        let created = create_jobs(ctx, &owner, to_create.iter().cloned()).await?;
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
            let note = format!(
                "created {created} Jobs in {}: {}{more}",
                ctx.settings.namespace,
                names.join(", ")
            );
            publish(ctx, cr.as_ref(), EventType::Normal, "JobsCreated", note).await;
        }
    }
    Ok(decision
        .requeue
        .map_or_else(Action::await_change, Action::requeue))
}

/// Deletes Jobs of runs past the history (their pods by propagation); one already gone is
/// fine.
async fn delete_jobs(ctx: &Context, names: &[String]) -> Result<(), Error> {
    let api: Api<Job> = Api::namespaced(ctx.client.clone(), &ctx.settings.namespace);
    let dp = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Background),
        ..Default::default()
    };
    for name in names {
        if let Err(e) = api.delete(name, &dp).await
            && !matches!(&e, kube::Error::Api(s) if s.code == 404)
        {
            return Err(kube_err(format!("delete old Job {name}"))(e));
        }
    }
    Ok(())
}

async fn create_jobs(
    ctx: &Context,
    owner: &Owner,
    jobs: impl Iterator<Item = (Job, String)>,
) -> Result<u64, Error> {
    let api: Api<Job> = Api::namespaced(ctx.client.clone(), &ctx.settings.namespace);
    let work: Vec<(Job, String, String, String)> = jobs
        .map(|(job, name)| (job, name, owner.uid.clone(), ctx.settings.namespace.clone()))
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
