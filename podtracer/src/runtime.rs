//! The node's container runtime, through CRI: which pods run here and their namespaces.

use anyhow::{Context, Result};
use snoopy_cri::blocking::RuntimeClient;
use snoopy_cri::{Endpoint, LabelSelector, Pod, PodQuery};

/// Connects to `--runtime-endpoint` (or `CONTAINER_RUNTIME_ENDPOINT`, or the usual sockets).
pub fn connect(endpoint: Option<&str>) -> Result<RuntimeClient> {
    let endpoint = endpoint.map(Endpoint::parse).transpose()?;
    Ok(RuntimeClient::connect_or_detect(endpoint)?)
}

/// Which pods: one by name, several by name, or those a selector matches, in some
/// namespaces or all.
#[derive(Debug, Clone)]
pub enum PodChoice {
    /// `--pod NAME -n NS`.
    Named {
        /// Kubernetes namespace.
        namespace: String,
        /// Pod name.
        name: String,
    },
    /// `--pod NS/NAME…`: these pods, those of them that run here.
    Listed(Vec<(String, String)>),
    /// `-l SELECTOR [-n NS… | -A]`.
    Selected {
        /// `None` = every namespace.
        namespaces: Option<Vec<String>>,
        /// The selector as typed.
        selector: String,
    },
}

impl PodChoice {
    /// The CRI query for this choice.
    pub fn query(&self) -> Result<PodQuery> {
        Ok(match self {
            PodChoice::Named { namespace, name } => PodQuery::named(namespace, name),
            PodChoice::Listed(pods) => match pods.as_slice() {
                [(namespace, name)] => PodQuery::named(namespace, name),
                // The runtime filters by one namespace at most: several are filtered here.
                _ => PodQuery::all(),
            },
            PodChoice::Selected {
                namespaces,
                selector,
            } => PodQuery::selected(
                match namespaces.as_deref() {
                    Some([one]) => Some(one.clone()),
                    _ => None,
                },
                LabelSelector::parse(selector).with_context(|| format!("selector {selector:?}"))?,
            ),
        })
    }

    /// Whether `pod` is one of the choice's (after the runtime's own filtering).
    fn keeps(&self, pod: &Pod) -> bool {
        match self {
            PodChoice::Named { .. } => true,
            PodChoice::Listed(pods) => pods
                .iter()
                .any(|(ns, name)| *ns == pod.namespace && *name == pod.name),
            PodChoice::Selected { namespaces, .. } => namespaces
                .as_ref()
                .is_none_or(|list| list.contains(&pod.namespace)),
        }
    }

    /// How to name the choice in messages.
    pub fn describe(&self) -> String {
        match self {
            PodChoice::Named { namespace, name } => format!("pod {namespace}/{name}"),
            PodChoice::Listed(pods) => {
                let names: Vec<String> = pods.iter().map(|(ns, n)| format!("{ns}/{n}")).collect();
                format!("pods {}", names.join(", "))
            }
            PodChoice::Selected {
                namespaces: Some(list),
                selector,
            } => format!(
                "pods matching {selector:?} in namespace {}",
                list.join(", ")
            ),
            PodChoice::Selected {
                namespaces: None,
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
    pods.retain(|p| choice.keeps(p));
    pods.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    Ok(pods)
}

/// The error for a choice that matched nothing, naming what does run in that namespace.
pub fn nothing_matched(client: &RuntimeClient, choice: &PodChoice) -> anyhow::Error {
    let namespace = match choice {
        PodChoice::Named { namespace, .. } => Some(namespace.clone()),
        PodChoice::Listed(pods) => pods.first().map(|(ns, _)| ns.clone()),
        PodChoice::Selected { namespaces, .. } => {
            namespaces.as_ref().and_then(|l| l.first().cloned())
        }
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
