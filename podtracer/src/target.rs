//! Which network namespace(s) to work in: `--pid`, `--netns`, `--pod NAME -n NS`, or
//! `-l SELECTOR [-n NS | -A]` (pods found through the node's container runtime).

use std::collections::HashSet;
use std::net::IpAddr;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;
use snoopy_cri::blocking::RuntimeClient;
use snoopy_cri::{ContainerState, Pod};
use snoopy_netns::{Namespace, NamespaceKind};

use crate::runtime::{self, PodChoice};

/// Where to look: exactly one of `--pid`, `--netns`, `--pod`, `-l`.
#[derive(Debug, Clone, Default, Args)]
#[group(skip)]
#[command(group(
    clap::ArgGroup::new("target")
        .required(true)
        .multiple(false)
        .args(["pid", "netns", "pod", "selector"])
))]
pub struct TargetArgs {
    /// Use the network namespace of this process (a host PID, e.g. a container's).
    #[arg(long, value_name = "PID")]
    pub pid: Option<u32>,

    /// Use this network namespace file (e.g. /var/run/netns/NAME or /proc/PID/ns/net).
    #[arg(long, value_name = "PATH")]
    pub netns: Option<PathBuf>,

    /// The pod with this name, found through the node's container runtime (CRI). Repeat it,
    /// or write NS/NAME, to capture several pods at once (one pcapng interface each).
    #[arg(long, value_name = "NAME")]
    pub pod: Vec<String>,

    /// Every pod whose labels match (kubectl syntax: a=b,c!=d,e,!f,g in (h,i)); pods that
    /// start matching later are picked up too.
    #[arg(short = 'l', long = "selector", value_name = "SELECTOR")]
    pub selector: Option<String>,

    /// Kubernetes namespace of --pod / -l (as in kubectl; podtracer prints addresses, never
    /// names, so tcpdump's -n is not needed).
    /// With -l, repeat it for pods of several namespaces.
    #[arg(
        short = 'n',
        long = "namespace",
        value_name = "NS",
        default_value = "default"
    )]
    pub namespace: Vec<String>,

    /// With -l: pods of every namespace.
    #[arg(short = 'A', long = "all-namespaces", requires = "selector")]
    pub all_namespaces: bool,

    /// With -l: pods that use the node's network (hostNetwork) are not targets (their
    /// traffic is the whole node's).
    #[arg(long, requires = "selector")]
    pub skip_host_network: bool,

    /// With -l: capture at most this many pods in all, counting those picked up later.
    #[arg(long, value_name = "N", requires = "selector")]
    pub max_pods: Option<u32>,

    /// With --pod: enter through this container (all containers of a pod share its network).
    #[arg(long, value_name = "NAME", requires = "pod")]
    pub container: Option<String>,

    /// The container runtime's CRI socket (default: $CONTAINER_RUNTIME_ENDPOINT, else
    /// containerd's, k3s's, CRI-O's or cri-dockerd's usual socket).
    #[arg(long, value_name = "unix:///PATH", env = "CONTAINER_RUNTIME_ENDPOINT")]
    pub runtime_endpoint: Option<String>,
}

impl TargetArgs {
    /// Whether any of `--pid`, `--netns`, `--pod`, `-l` was given.
    pub fn is_given(&self) -> bool {
        self.pid.is_some()
            || self.netns.is_some()
            || !self.pod.is_empty()
            || self.selector.is_some()
    }

    /// The (first) `-n` namespace: where `--pod NAME` is looked up.
    pub fn namespace(&self) -> &str {
        self.namespace.first().map_or("default", String::as_str)
    }

    /// The one pod `--pod` names, if it names exactly one.
    pub fn one_pod(&self) -> Option<&str> {
        match self.pod.as_slice() {
            [one] => Some(one),
            _ => None,
        }
    }
}

/// A pod as podtracer names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodIdentity {
    /// Kubernetes namespace.
    pub namespace: String,
    /// Pod name.
    pub name: String,
    /// Pod UID.
    pub uid: String,
    /// The pod's IP.
    pub ip: Option<IpAddr>,
}

/// A resolved target: its namespace and how to name it to the user.
#[derive(Debug)]
pub struct Target {
    /// The network namespace.
    pub namespace: Namespace,
    /// `pid:4242`, the namespace path, or `NS/POD`.
    pub label: String,
    /// The pod, for pod targets.
    pub pod: Option<PodIdentity>,
}

/// What `-l` needs to pick up pods that start matching later, and to notice those that go.
pub struct Follower {
    client: RuntimeClient,
    choice: PodChoice,
    rules: Rules,
    seen: HashSet<String>,
    /// Pods taken in all (the `--max-pods` budget counts pods that went away too).
    taken: u32,
    /// Matching pods left out by `--max-pods`, by UID (each counted once).
    over_limit: HashSet<String>,
}

/// What `-l` leaves out besides the selector.
#[derive(Debug, Clone, Copy, Default)]
struct Rules {
    skip_host_network: bool,
    max_pods: Option<u32>,
}

impl Rules {
    /// The pods of `pods` that are targets: not on the node's network when so asked.
    fn admit(self, pods: Vec<Pod>) -> Vec<Pod> {
        pods.into_iter()
            .filter(|p| !(self.skip_host_network && p.host_network))
            .collect()
    }
}

impl Follower {
    /// The pods that match now and were not seen before (as targets), and the UIDs of seen
    /// pods that no longer match or are no longer ready.
    pub fn poll(&mut self) -> Result<(Vec<Target>, Vec<String>)> {
        let pods = self.rules.admit(runtime::find(&self.client, &self.choice)?);
        let current: HashSet<String> = pods.iter().map(|p| p.uid.clone()).collect();
        let gone: Vec<String> = self.seen.difference(&current).cloned().collect();
        let mut fresh = Vec::new();
        for pod in pods.iter().filter(|p| !self.seen.contains(&p.uid)) {
            if self.rules.max_pods.is_some_and(|max| self.taken >= max) {
                if self.over_limit.insert(pod.uid.clone()) {
                    eprintln!(
                        "podtracer: {} matches but is not captured: --max-pods {} reached",
                        pod.qualified_name(),
                        self.taken
                    );
                }
                continue;
            }
            // A pod that is half set up now is picked up at the next poll.
            if let Ok(target) = pod_target(&self.client, pod, None) {
                self.taken += 1;
                fresh.push(target);
            }
        }
        for uid in &gone {
            self.seen.remove(uid);
        }
        self.seen.extend(
            fresh
                .iter()
                .filter_map(|t| t.pod.as_ref().map(|p| p.uid.clone())),
        );
        Ok((fresh, gone))
    }
}

/// The targets the options name; for `-l`, also the [`Follower`] that finds later pods.
pub struct Resolved {
    /// The targets now.
    pub targets: Vec<Target>,
    /// Several pods were asked for (`-l`, or `--pod NS/NAME`): each is captured on its own,
    /// with an interface and a report entry of its own, however many there are now.
    pub many: bool,
    /// Present for `-l`.
    pub follower: Option<Follower>,
}

impl TargetArgs {
    fn choice(&self) -> Option<PodChoice> {
        if let Some(selector) = &self.selector {
            return Some(PodChoice::Selected {
                namespaces: (!self.all_namespaces).then(|| self.namespace.clone()),
                selector: selector.clone(),
            });
        }
        match self.pod.as_slice() {
            [] => None,
            [name] if !name.contains('/') => Some(PodChoice::Named {
                namespace: self.namespace().to_owned(),
                name: name.clone(),
            }),
            names => Some(PodChoice::Listed(
                names
                    .iter()
                    .map(|n| match n.split_once('/') {
                        Some((ns, name)) => (ns.to_owned(), name.to_owned()),
                        None => (self.namespace().to_owned(), n.clone()),
                    })
                    .collect(),
            )),
        }
    }

    fn rules(&self) -> Rules {
        Rules {
            skip_host_network: self.skip_host_network,
            max_pods: self.max_pods,
        }
    }

    /// Opens the target namespaces.
    pub fn resolve(&self) -> Result<Resolved> {
        if let Some(pid) = self.pid {
            return Ok(Resolved {
                targets: vec![Target {
                    namespace: Namespace::from_pid(pid, NamespaceKind::Net)?,
                    label: format!("pid:{pid}"),
                    pod: None,
                }],
                many: false,
                follower: None,
            });
        }
        if let Some(path) = &self.netns {
            return Ok(Resolved {
                targets: vec![Target {
                    namespace: Namespace::from_path(path, NamespaceKind::Net)?,
                    label: path.display().to_string(),
                    pod: None,
                }],
                many: false,
                follower: None,
            });
        }
        let choice = self.choice().expect("clap requires one target");
        let client = runtime::connect(self.runtime_endpoint.as_deref())?;
        let rules = self.rules();
        let mut pods = rules.admit(runtime::find(&client, &choice)?);
        let following = matches!(choice, PodChoice::Selected { .. });
        // Several pods are named or selected: those here are the targets (a per-node Job's
        // list, or a selector that may match nothing yet and pick pods up later).
        let many = following || matches!(choice, PodChoice::Listed(_));
        if pods.is_empty() && !following {
            return Err(runtime::nothing_matched(&client, &choice));
        }
        let mut over_limit = HashSet::new();
        if let Some(max) = rules.max_pods {
            for pod in pods.iter().skip(max as usize) {
                eprintln!(
                    "podtracer: {} matches but is not captured: --max-pods {max} reached",
                    pod.qualified_name()
                );
                over_limit.insert(pod.uid.clone());
            }
            pods.truncate(max as usize);
        }
        let mut targets = Vec::new();
        for pod in &pods {
            match pod_target(&client, pod, self.container.as_deref()) {
                Ok(target) => targets.push(target),
                // One of several pods that is not ready is skipped (a follower picks it up
                // later); a pod named alone is an error.
                Err(e) if many => eprintln!("podtracer: {}: {e:#}", pod.qualified_name()),
                Err(e) => return Err(e),
            }
        }
        let follower = following.then(|| Follower {
            seen: targets
                .iter()
                .filter_map(|t| t.pod.as_ref().map(|p| p.uid.clone()))
                .collect(),
            taken: u32::try_from(targets.len()).unwrap_or(u32::MAX),
            over_limit,
            rules,
            client,
            choice,
        });
        Ok(Resolved {
            targets,
            many,
            follower,
        })
    }
}

impl TargetArgs {
    /// The one target of options that name one (`--pid`, `--netns`, `--pod`).
    pub fn resolve_one(&self) -> Result<Target> {
        if self.selector.is_some() || self.pod.len() > 1 {
            bail!(
                "this command takes one target: use one --pod, --pid or --netns, not -l or several pods"
            );
        }
        self.resolve()?
            .targets
            .into_iter()
            .next()
            .context("the pod is not ready on this node")
    }

    /// A process of the target whose root file system is the pod's (for its /etc/hosts and
    /// /etc/resolv.conf): `--pid` itself, or for `--pod` its `--container` or first running
    /// container. `None` for `--netns`, which names no process.
    pub fn process(&self) -> Result<Option<u32>> {
        if let Some(pid) = self.pid {
            return Ok(Some(pid));
        }
        let (namespace, name) = match self.choice() {
            Some(PodChoice::Named { namespace, name }) => (namespace, name),
            Some(PodChoice::Listed(mut pods)) if pods.len() == 1 => pods.remove(0),
            _ => return Ok(None),
        };
        let client = runtime::connect(self.runtime_endpoint.as_deref())?;
        let query = snoopy_cri::PodQuery::named(&namespace, &name).with_container_pids();
        let pods = client.list_pods(&query)?;
        let pod = pods
            .first()
            .with_context(|| format!("no pod {namespace}/{name} on this node"))?;
        Ok(match &self.container {
            Some(c) => pod.container(c).and_then(|c| c.pid),
            None => pod.running().find_map(|c| c.pid),
        })
    }
}

/// The network namespace of a pod: through `container` if named, else the sandbox's.
fn pod_target(client: &RuntimeClient, pod: &Pod, container: Option<&str>) -> Result<Target> {
    let label = pod.qualified_name();
    let namespace = if let Some(name) = container {
        let found = pod.container(name).with_context(|| {
            let names: Vec<&str> = pod.containers.iter().map(|c| c.name.as_str()).collect();
            format!(
                "pod {label} has no container {name:?}; containers: {}",
                names.join(", ")
            )
        })?;
        if found.state != ContainerState::Running {
            bail!(
                "container {name:?} of pod {label} is not running ({:?})",
                found.state
            );
        }
        let pid = match found.pid {
            Some(pid) => pid,
            None => client.container_pid(&found.id)?.with_context(|| {
                format!("the runtime gives no PID for container {name:?} of {label}")
            })?,
        };
        Namespace::from_pid(pid, NamespaceKind::Net)?
    } else if pod.host_network {
        // hostNetwork pods share the node's namespace: capture there.
        Namespace::from_pid(1, NamespaceKind::Net)?
    } else if let Some(pid) = pod.sandbox_pid {
        // The sandbox's PID first: /proc/PID/ns/net works from any mount namespace that sees
        // the node's PIDs (a Job with hostPID), while the runtime's netns path
        // (/var/run/netns/cni-…) exists only in the node's mount namespace.
        Namespace::from_pid(pid, NamespaceKind::Net)?
    } else if let Some(path) = &pod.netns_path {
        Namespace::from_path(path, NamespaceKind::Net)?
    } else {
        bail!("pod {label} has no network namespace the runtime reports (is it ready?)");
    };
    Ok(Target {
        namespace,
        label,
        pod: Some(PodIdentity {
            namespace: pod.namespace.clone(),
            name: pod.name.clone(),
            uid: pod.uid.clone(),
            ip: pod.ip,
        }),
    })
}
