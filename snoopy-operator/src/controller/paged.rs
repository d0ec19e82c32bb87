//! Lists in pages, each object trimmed to what the reconciler reads as its page arrives.
//!
//! A CR with thousands of targets owns as many Jobs, Job pods and target pods. Listed whole,
//! one reconcile held all of them at once as full objects, `managedFields` and pod templates
//! included (~200 MB at 2,000 targets: `make bench-operator-scale`). Paging bounds the
//! response held in memory to one page; trimming keeps only what `decide` and `aggregate`
//! read. Pages of one list are one consistent snapshot (the continue token pins the
//! resourceVersion).

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Pod, PodSpec, PodStatus, PodTemplateSpec};
use kube::api::{Api, ListParams};
use serde::de::DeserializeOwned;

/// Objects per page.
const PAGE: u32 = 500;

/// Every object `lp` selects, each passed through `trim` as its page arrives.
pub(crate) async fn list<K>(api: &Api<K>, lp: &ListParams, trim: fn(K) -> K) -> kube::Result<Vec<K>>
where
    K: Clone + DeserializeOwned + std::fmt::Debug,
{
    let mut out = Vec::new();
    let mut lp = lp.clone().limit(PAGE);
    loop {
        let page = api.list(&lp).await?;
        let next = page.metadata.continue_.clone().filter(|c| !c.is_empty());
        out.extend(page.items.into_iter().map(trim));
        match next {
            Some(token) => lp = lp.continue_token(&token),
            None => return Ok(out),
        }
    }
}

/// A Job as the reconciler reads it: metadata (without `managedFields`), status, and of its
/// spec only the node its pod is bound to.
pub(crate) fn trim_job(mut job: Job) -> Job {
    job.metadata.managed_fields = None;
    if let Some(spec) = job.spec.as_mut() {
        let node_name = spec
            .template
            .spec
            .as_ref()
            .and_then(|s| s.node_name.clone());
        spec.template = PodTemplateSpec {
            metadata: None,
            spec: Some(PodSpec {
                node_name,
                ..PodSpec::default()
            }),
        };
    }
    job
}

/// A Job's pod as the reconciler reads it: metadata (without `managedFields`) and status.
pub(crate) fn trim_job_pod(mut pod: Pod) -> Pod {
    pod.metadata.managed_fields = None;
    pod.spec = None;
    pod
}

/// A target pod as `targets` reads it: metadata (without `managedFields`), phase, and of
/// its spec the node and whether it uses the host's network.
pub(crate) fn trim_target_pod(mut pod: Pod) -> Pod {
    pod.metadata.managed_fields = None;
    pod.spec = pod.spec.map(|s| PodSpec {
        node_name: s.node_name,
        host_network: s.host_network,
        ..PodSpec::default()
    });
    pod.status = pod.status.map(|s| PodStatus {
        phase: s.phase,
        ..PodStatus::default()
    });
    pod
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::fixtures::{owner, poc_plan, target};

    /// What `aggregate` reads of a Job survives the trim; the pod template does not.
    #[test]
    fn a_trimmed_job_keeps_what_the_status_reads() {
        let job = crate::job::build(&owner(), &target(), "1", &poc_plan(), &Default::default());
        let full = serde_json::to_vec(&job).unwrap().len();
        let trimmed = trim_job(job.clone());
        assert_eq!(trimmed.metadata.labels, job.metadata.labels);
        assert_eq!(trimmed.metadata.annotations, job.metadata.annotations);
        assert_eq!(trimmed.metadata.name, job.metadata.name);
        let node = |j: &Job| j.spec.as_ref()?.template.spec.as_ref()?.node_name.clone();
        assert_eq!(node(&trimmed), node(&job));
        assert!(node(&job).is_some());
        let small = serde_json::to_vec(&trimmed).unwrap().len();
        assert!(small * 2 < full, "{small} bytes trimmed, {full} whole");
    }
}
