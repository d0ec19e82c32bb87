//! Which network namespace to work in: `--pid PID` or `--netns PATH`.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use snoopy_netns::{Namespace, NamespaceKind};

/// Where to look: exactly one of the target options.
#[derive(Debug, Clone, Args)]
#[group(required = true, multiple = false)]
pub struct TargetArgs {
    /// Use the network namespace of this process (a host PID, e.g. a container's).
    #[arg(long, value_name = "PID")]
    pub pid: Option<u32>,

    /// Use this network namespace file (e.g. /var/run/netns/NAME or /proc/PID/ns/net).
    #[arg(long, value_name = "PATH")]
    pub netns: Option<PathBuf>,
}

/// A resolved target: its namespace and how to name it to the user.
#[derive(Debug)]
pub struct Target {
    /// The network namespace.
    pub namespace: Namespace,
    /// `pid:4242` or the namespace path.
    pub label: String,
}

impl TargetArgs {
    /// Opens the target's network namespace.
    pub fn resolve(&self) -> Result<Target> {
        if let Some(pid) = self.pid {
            return Ok(Target {
                namespace: Namespace::from_pid(pid, NamespaceKind::Net)?,
                label: format!("pid:{pid}"),
            });
        }
        let path = self.netns.as_ref().expect("clap requires one target");
        Ok(Target {
            namespace: Namespace::from_path(path, NamespaceKind::Net)?,
            label: path.display().to_string(),
        })
    }
}
