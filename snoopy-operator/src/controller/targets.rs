//! Finding target pods: namespaces, the pod selector, the node selector.

use std::collections::{BTreeSet, HashSet};

use k8s_openapi::api::core::v1::{Namespace, Node, Pod};
use kube::api::{Api, ListParams};
use kube::{Client, ResourceExt};

use super::{Error, kube_err, paged};
use crate::job::Target;
use crate::plan::{Namespaces, Plan};
use crate::selector;

/// What the cluster holds for a plan.
#[derive(Debug, Default)]
pub(crate) struct Found {
    /// Pods that can be targets now: Running, scheduled, not being deleted.
    pub running: BTreeSet<Target>,
    /// uids of every selected pod that still exists (to tell a vanished target).
    pub alive: HashSet<String>,
    /// The namespaces searched.
    pub namespaces: Vec<String>,
    /// Namespaces that were asked for by name and do not exist.
    pub missing_namespace: Option<String>,
    /// Running hostNetwork pods that match but may not be targets (the plan does not
    /// allow them): `namespace/name` each.
    pub host_network_refused: BTreeSet<String>,
}

/// The pods `plan` selects now (the webhook asks too: for hostNetwork pods).
pub(crate) async fn find(client: &Client, plan: &Plan) -> Result<Found, Error> {
    let mut found = Found::default();
    let namespaces: Vec<String> = match &plan.namespaces {
        Namespaces::Named(ns) => {
            let api: Api<Namespace> = Api::all(client.clone());
            if api
                .get_opt(ns)
                .await
                .map_err(kube_err(format!("get namespace {ns}")))?
                .is_none()
            {
                found.missing_namespace = Some(ns.clone());
                return Ok(found);
            }
            vec![ns.clone()]
        }
        Namespaces::Selector(sel) => {
            let query = selector::to_query(sel).unwrap_or_default();
            let api: Api<Namespace> = Api::all(client.clone());
            let list = api
                .list_metadata(&ListParams::default().labels(&query))
                .await
                .map_err(kube_err(format!("list namespaces matching {query:?}")))?;
            list.items.iter().map(ResourceExt::name_any).collect()
        }
    };
    let nodes: Option<HashSet<String>> = if plan.node_selector.is_empty() {
        None
    } else {
        let query =
            selector::to_query(&selector::from_map(&plan.node_selector)).unwrap_or_default();
        let api: Api<Node> = Api::all(client.clone());
        let list = api
            .list_metadata(&ListParams::default().labels(&query))
            .await
            .map_err(kube_err(format!("list nodes matching {query:?}")))?;
        Some(list.items.iter().map(ResourceExt::name_any).collect())
    };
    let query = selector::to_query(&plan.pod_selector).unwrap_or_default();
    found.namespaces = namespaces.clone();
    for ns in namespaces {
        let api: Api<Pod> = Api::namespaced(client.clone(), &ns);
        // Target pods are read as they arrive, a page at a time (paged.rs).
        let pods = paged::list(
            &api,
            &ListParams::default().labels(&query),
            paged::trim_target_pod,
        )
        .await
        .map_err(kube_err(format!("list pods in {ns} matching {query:?}")))?;
        for pod in pods {
            let phase = pod
                .status
                .as_ref()
                .and_then(|s| s.phase.clone())
                .unwrap_or_default();
            let Some(uid) = pod.uid() else { continue };
            if phase == "Succeeded" || phase == "Failed" {
                continue;
            }
            found.alive.insert(uid.clone());
            let node = pod.spec.as_ref().and_then(|s| s.node_name.clone());
            let Some(node) = node else { continue };
            let on_node = nodes.as_ref().is_none_or(|n| n.contains(&node));
            let host_network = pod
                .spec
                .as_ref()
                .and_then(|s| s.host_network)
                .unwrap_or(false);
            if phase == "Running" && pod.metadata.deletion_timestamp.is_none() && on_node {
                if host_network && !plan.host_network {
                    found
                        .host_network_refused
                        .insert(format!("{ns}/{}", pod.name_any()));
                    continue;
                }
                found.running.insert(Target {
                    namespace: ns.clone(),
                    name: pod.name_any(),
                    uid,
                    node,
                });
            }
        }
    }
    Ok(found)
}

/// A sentence describing what was looked for, for the NoMatchingPods condition.
pub(super) fn describe(plan: &Plan) -> String {
    let pods = selector::to_query(&plan.pod_selector).unwrap_or_default();
    let pods = if pods.is_empty() {
        "any labels".to_owned()
    } else {
        pods
    };
    let ns = match &plan.namespaces {
        Namespaces::Named(ns) => format!("namespace {ns}"),
        Namespaces::Selector(sel) => format!(
            "namespaces matching {:?}",
            selector::to_query(sel).unwrap_or_default()
        ),
    };
    let nodes = if plan.node_selector.is_empty() {
        String::new()
    } else {
        format!(
            " on nodes labelled {}",
            selector::to_query(&selector::from_map(&plan.node_selector)).unwrap_or_default()
        )
    };
    format!("no running pod in {ns} matches {pods}{nodes}")
}
