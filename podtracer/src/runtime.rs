//! The node's container runtime, through CRI: which pods run here and their namespaces.

use anyhow::{Context, Result};
use snoopy_cri::blocking::RuntimeClient;
use snoopy_cri::{Endpoint, LabelSelector, Pod, PodQuery};

/// Connects to `--runtime-endpoint` (or `CONTAINER_RUNTIME_ENDPOINT`, or the usual sockets).
pub fn connect(endpoint: Option<&str>) -> Result<RuntimeClient> {
    let endpoint = endpoint.map(Endpoint::parse).transpose()?;
    Ok(RuntimeClient::connect_or_detect(endpoint)?)
}

/// Which pods: one by name, or those a selector matches, in one namespace or all.
#[derive(Debug, Clone)]
pub enum PodChoice {
    /// `--pod NAME -n NS`.
    Named {
        /// Kubernetes namespace.
        namespace: String,
        /// Pod name.
        name: String,
    },
    /// `-l SELECTOR [-n NS | -A]`.
    Selected {
        /// `None` = every namespace.
        namespace: Option<String>,
        /// The selector as typed.
        selector: String,
    },
}

impl PodChoice {
    /// The CRI query for this choice.
    pub fn query(&self) -> Result<PodQuery> {
        Ok(match self {
            PodChoice::Named { namespace, name } => PodQuery::named(namespace, name),
            PodChoice::Selected {
                namespace,
                selector,
            } => PodQuery::selected(
                namespace.clone(),
                LabelSelector::parse(selector).with_context(|| format!("selector {selector:?}"))?,
            ),
        })
    }

    /// How to name the choice in messages.
    pub fn describe(&self) -> String {
        match self {
            PodChoice::Named { namespace, name } => format!("pod {namespace}/{name}"),
            PodChoice::Selected {
                namespace: Some(ns),
                selector,
            } => format!("pods matching {selector:?} in namespace {ns}"),
            PodChoice::Selected {
                namespace: None,
                selector,
            } => format!("pods matching {selector:?} in any namespace"),
        }
    }
}

/// The ready pods of the choice, in name order.
pub fn find(client: &RuntimeClient, choice: &PodChoice) -> Result<Vec<Pod>> {
    let mut pods = client
        .list_pods(&choice.query()?)
        .with_context(|| format!("looking up {}", choice.describe()))?;
    pods.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    Ok(pods)
}

/// The error for a choice that matched nothing, naming what does run in that namespace.
pub fn nothing_matched(client: &RuntimeClient, choice: &PodChoice) -> anyhow::Error {
    let namespace = match choice {
        PodChoice::Named { namespace, .. } => Some(namespace.clone()),
        PodChoice::Selected { namespace, .. } => namespace.clone(),
    };
    let query = PodQuery {
        namespace: namespace.clone(),
        ..PodQuery::all()
    };
    let here: Vec<String> = client
        .list_pods(&query)
        .map(|pods| pods.iter().map(Pod::qualified_name).collect())
        .unwrap_or_default();
    let place = namespace
        .map(|ns| format!("in namespace {ns}"))
        .unwrap_or_else(|| "here".into());
    let listing = if here.is_empty() {
        format!("no ready pods {place}")
    } else {
        format!("ready pods {place}: {}", here.join(", "))
    };
    anyhow::anyhow!(
        "no {} on this node (runtime {}); {listing}",
        choice.describe(),
        client.endpoint()
    )
}
