//! One Job per node (`jobsPer: node`): whether a run uses it, which Job serves which target,
//! and the Jobs still to create — without I/O, for [`super::decide`].
//!
//! A per-node Job lists the targets it was created for in an annotation; with `targets:
//! follow` it also picks up, itself, pods that start matching on its node while it runs, so
//! such a pod is assigned to the node's running Job instead of getting one of its own. A
//! pod that appears on a node whose Jobs have all ended gets the node's next Job (`seq`).

use std::collections::{BTreeMap, HashSet};

use k8s_openapi::api::batch::v1::Job;
use kube::ResourceExt;

use crate::crd::{TargetMode, TargetStatus};
use crate::job::{Listed, NodeJob, Owner, Target};
use crate::naming;
use crate::plan::{JobsPer, Namespaces, Plan};
use crate::settings::Settings;

/// Whether `job` serves the targets of a node.
pub(crate) fn is_node_job(job: &Job) -> bool {
    job.labels().contains_key(naming::JOB_NODE)
}

/// The node a Job runs on (its pod spec's `nodeName`).
pub(crate) fn node_of(job: &Job) -> String {
    job.spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .and_then(|p| p.node_name.clone())
        .unwrap_or_default()
}

/// Whether a Job has ended (completed or failed).
pub(crate) fn finished(job: &Job) -> bool {
    let Some(status) = &job.status else {
        return false;
    };
    status.succeeded.unwrap_or(0) > 0
        || status.failed.unwrap_or(0) > 0
        || status
            .conditions
            .iter()
            .flatten()
            .any(|c| (c.type_ == "Complete" || c.type_ == "Failed") && c.status == "True")
}

/// Whether a follow-mode node Job picks up pods of `namespace` (the namespaces it was
/// given; a namespace selected later is not among them).
fn follows_in(job: &Job, namespace: &str) -> bool {
    job.annotations()
        .get(naming::FOLLOW_NAMESPACES_ANNOTATION)
        .is_some_and(|list| list.split(',').any(|ns| ns == namespace))
}

/// The targets a per-node Job was created for (its annotation).
pub(crate) fn listed(job: &Job) -> Vec<Target> {
    let node = node_of(job);
    job.annotations()
        .get(naming::TARGETS_ANNOTATION)
        .and_then(|a| serde_json::from_str::<Vec<Listed>>(a).ok())
        .unwrap_or_default()
        .into_iter()
        .map(|l| Target {
            namespace: l.namespace,
            name: l.name,
            uid: l.uid,
            node: node.clone(),
        })
        .collect()
}

/// Whether the run whose Jobs are `run_jobs` and whose targets are `targets` uses one Job
/// per node. A run that has Jobs keeps the cut it started with; a new one follows the
/// plan, `Auto` choosing per node once a node holds the admin's threshold of targets.
pub(crate) fn chosen<'a>(
    plan: &Plan,
    settings: &Settings,
    run_jobs: &[&Job],
    targets: impl Iterator<Item = &'a Target>,
) -> bool {
    if let Some(job) = run_jobs.first() {
        return is_node_job(job);
    }
    match plan.jobs_per {
        JobsPer::Pod => false,
        JobsPer::Node => true,
        JobsPer::Auto => {
            let mut per_node: BTreeMap<&str, usize> = BTreeMap::new();
            for t in targets {
                *per_node.entry(t.node.as_str()).or_default() += 1;
            }
            per_node
                .values()
                .any(|&n| n >= settings.bounds.node_job_threshold.max(1))
        }
    }
}

/// Which targets each existing per-node Job of the run serves, and the Jobs to create for
/// the targets no Job serves.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Assignment {
    /// Job name → its targets (listed, recorded in the previous status, or picked up by a
    /// running follow-mode Job).
    pub served: BTreeMap<String, Vec<Target>>,
    /// New Jobs, one per node with unserved targets.
    pub create: Vec<NodeJob>,
}

/// The inputs of [`assign`].
pub(crate) struct RunState<'a> {
    /// The CR.
    pub owner: &'a Owner,
    /// The run.
    pub run: &'a str,
    /// The run's per-node Jobs, with whether each is still active (not finished).
    pub jobs: &'a [(&'a Job, bool)],
    /// The run's targets (uid → target).
    pub current: &'a BTreeMap<String, Target>,
    /// uids of target pods that still exist.
    pub alive: &'a HashSet<String>,
    /// The status written last time (which Job each target was assigned to).
    pub previous: &'a [TargetStatus],
    /// The namespaces searched (follow-mode Jobs pick up pods there).
    pub namespaces: &'a [String],
    /// The admin's cap on targets per CR and run.
    pub max_targets: usize,
}

/// Assigns the run's targets to per-node Jobs: those a Job lists or was assigned before;
/// with `follow`, new targets on a node with an active Job to that Job; the rest, alive,
/// grouped by node into new Jobs (unless `suspend`).
pub(crate) fn assign(state: &RunState<'_>, plan: &Plan, suspend: bool) -> Assignment {
    let mut served = Served::default();
    for (job, _) in state.jobs {
        let name = job.name_any();
        for t in listed(job) {
            served.add(&name, &t);
        }
    }
    for p in state.previous.iter().filter(|p| p.run == state.run) {
        if state.jobs.iter().any(|(j, _)| j.name_any() == p.job) {
            let t = Target {
                namespace: p.namespace.clone(),
                name: p.pod.clone(),
                uid: p.pod_uid.clone(),
                node: p.node.clone(),
            };
            served.add(&p.job, &t);
        }
    }
    let follow = plan.mode == TargetMode::Follow;
    let mut unserved: BTreeMap<String, Vec<Target>> = BTreeMap::new();
    let unassigned: Vec<&Target> = state
        .current
        .values()
        .filter(|t| !served.taken.contains(&t.uid))
        .collect();
    for t in unassigned {
        let active = state
            .jobs
            .iter()
            .find(|(j, active)| *active && node_of(j) == t.node && follows_in(j, &t.namespace));
        match active {
            Some((job, _)) if follow => served.add(&job.name_any(), t),
            _ if state.alive.contains(&t.uid) && !suspend => {
                unserved.entry(t.node.clone()).or_default().push(t.clone());
            }
            _ => {}
        }
    }
    let follow_namespaces = follow.then(|| match &plan.namespaces {
        Namespaces::Named(ns) => vec![ns.clone()],
        Namespaces::Selector(_) => state.namespaces.to_vec(),
    });
    // Follow-mode Jobs pick pods up without the operator: each may take its own targets and
    // what is left of the CR's budget when it is created.
    let budget = state.max_targets.saturating_sub(state.current.len());
    let create = unserved
        .into_iter()
        .map(|(node, targets)| {
            let seq = state
                .jobs
                .iter()
                .filter(|(j, _)| node_of(j) == node)
                .count();
            NodeJob {
                name: naming::node_job_name(
                    state.owner.job_prefix(),
                    &node,
                    &state.owner.uid,
                    state.run,
                    seq,
                ),
                node,
                seq,
                max_pods: u32::try_from(targets.len() + budget).unwrap_or(u32::MAX),
                targets,
                follow_namespaces: follow_namespaces.clone(),
            }
        })
        .collect();
    Assignment {
        served: served.by_job,
        create,
    }
}

/// Targets by serving Job, each target once.
#[derive(Default)]
struct Served {
    by_job: BTreeMap<String, Vec<Target>>,
    taken: HashSet<String>,
}

impl Served {
    fn add(&mut self, job: &str, t: &Target) {
        if self.taken.insert(t.uid.clone()) {
            self.by_job
                .entry(job.to_owned())
                .or_default()
                .push(t.clone());
        }
    }
}
