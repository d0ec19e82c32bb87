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

    /// The pod with this name, found through the node's container runtime (CRI).
    #[arg(long, value_name = "NAME")]
    pub pod: Option<String>,

    /// Every pod whose labels match (kubectl syntax: a=b,c!=d,e,!f,g in (h,i)); pods that
    /// start matching later are picked up too.
    #[arg(short = 'l', long = "selector", value_name = "SELECTOR")]
    pub selector: Option<String>,

    /// Kubernetes namespace of --pod / -l (as in kubectl; podtracer prints addresses, never
    /// names, so tcpdump's -n is not needed).
    #[arg(
        short = 'n',
        long = "namespace",
        value_name = "NS",
        default_value = "default"
    )]
    pub namespace: String,

    /// With -l: pods of every namespace.
    #[arg(short = 'A', long = "all-namespaces", requires = "selector")]
    pub all_namespaces: bool,

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
        self.pid.is_some() || self.netns.is_some() || self.pod.is_some() || self.selector.is_some()
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
    seen: HashSet<String>,
}

impl Follower {
    /// The pods that match now and were not seen before (as targets), and the UIDs of seen
    /// pods that no longer match or are no longer ready.
    pub fn poll(&mut self) -> Result<(Vec<Target>, Vec<String>)> {
        let pods = runtime::find(&self.client, &self.choice)?;
        let current: HashSet<String> = pods.iter().map(|p| p.uid.clone()).collect();
        let gone: Vec<String> = self.seen.difference(&current).cloned().collect();
        let mut fresh = Vec::new();
        for pod in pods.iter().filter(|p| !self.seen.contains(&p.uid)) {
            // A pod that is half set up now is picked up at the next poll.
            if let Ok(target) = pod_target(&self.client, pod, None) {
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
    /// Present for `-l`.
    pub follower: Option<Follower>,
}

impl TargetArgs {
    fn choice(&self) -> Option<PodChoice> {
        if let Some(name) = &self.pod {
            return Some(PodChoice::Named {
                namespace: self.namespace.clone(),
                name: name.clone(),
            });
        }
        self.selector.as_ref().map(|selector| PodChoice::Selected {
            namespace: (!self.all_namespaces).then(|| self.namespace.clone()),
            selector: selector.clone(),
        })
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
                follower: None,
            });
        }
        let choice = self.choice().expect("clap requires one target");
        let client = runtime::connect(self.runtime_endpoint.as_deref())?;
        let pods = runtime::find(&client, &choice)?;
        if pods.is_empty() {
            return Err(runtime::nothing_matched(&client, &choice));
        }
        let targets = pods
            .iter()
            .map(|pod| pod_target(&client, pod, self.container.as_deref()))
            .collect::<Result<Vec<_>>>()?;
        let follower = matches!(choice, PodChoice::Selected { .. }).then(|| Follower {
            seen: targets
                .iter()
                .filter_map(|t| t.pod.as_ref().map(|p| p.uid.clone()))
                .collect(),
            client,
            choice,
        });
        Ok(Resolved { targets, follower })
    }
}

impl TargetArgs {
    /// The one target of options that name one (`--pid`, `--netns`, `--pod`).
    pub fn resolve_one(&self) -> Result<Target> {
        if self.selector.is_some() {
            bail!("this command takes one target: use --pod, --pid or --netns, not -l");
        }
        Ok(self.resolve()?.targets.remove(0))
    }

    /// A process of the target whose root file system is the pod's (for its /etc/hosts and
    /// /etc/resolv.conf): `--pid` itself, or for `--pod` its `--container` or first running
    /// container. `None` for `--netns`, which names no process.
    pub fn process(&self) -> Result<Option<u32>> {
        if let Some(pid) = self.pid {
            return Ok(Some(pid));
        }
        let Some(PodChoice::Named { namespace, name }) = self.choice() else {
            return Ok(None);
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
