//! `podtracer pods`: what runs on this node, as the container runtime sees it.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Args, ValueEnum};
use serde::Serialize;
use snoopy_cri::{ContainerState, Pod, PodQuery};

use crate::runtime::{self, PodChoice};

/// Arguments of `podtracer pods`.
#[derive(Debug, Args)]
pub struct PodsArgs {
    /// Only pods of this namespace (default: every namespace).
    #[arg(short = 'n', long = "namespace", value_name = "NS")]
    pub namespace: Option<String>,

    /// Only pods whose labels match (kubectl syntax).
    #[arg(short = 'l', long = "selector", value_name = "SELECTOR")]
    pub selector: Option<String>,

    /// Also list pods whose sandbox is not ready.
    #[arg(short = 'a', long = "all")]
    pub all: bool,

    /// Output: a table (default), a wide table with PIDs and namespaces, or JSON.
    #[arg(short = 'o', long = "output", value_enum, value_name = "FORMAT")]
    pub output: Option<PodsFormat>,

    /// The container runtime's CRI socket.
    #[arg(long, value_name = "unix:///PATH", env = "CONTAINER_RUNTIME_ENDPOINT")]
    pub runtime_endpoint: Option<String>,
}

/// Output formats of `podtracer pods`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PodsFormat {
    /// Adds PID and NETNS columns.
    Wide,
    /// One JSON array.
    Json,
}

#[derive(Serialize)]
struct PodRow<'a> {
    namespace: &'a str,
    name: &'a str,
    uid: &'a str,
    ip: Option<String>,
    ready: bool,
    host_network: bool,
    netns: Option<String>,
    sandbox_pid: Option<u32>,
    containers: Vec<ContainerRow<'a>>,
}

#[derive(Serialize)]
struct ContainerRow<'a> {
    name: &'a str,
    id: &'a str,
    state: &'static str,
    pid: Option<u32>,
    image: &'a str,
}

fn state_name(state: ContainerState) -> &'static str {
    match state {
        ContainerState::Created => "created",
        ContainerState::Running => "running",
        ContainerState::Exited => "exited",
        ContainerState::Unknown => "unknown",
    }
}

fn row(pod: &Pod) -> PodRow<'_> {
    PodRow {
        namespace: &pod.namespace,
        name: &pod.name,
        uid: &pod.uid,
        ip: pod.ip.map(|ip| ip.to_string()),
        ready: pod.ready,
        host_network: pod.host_network,
        netns: pod.netns_path.as_ref().map(|p| p.display().to_string()),
        sandbox_pid: pod.sandbox_pid,
        containers: pod
            .containers
            .iter()
            .map(|c| ContainerRow {
                name: &c.name,
                id: &c.id,
                state: state_name(c.state),
                pid: c.pid,
                image: &c.image,
            })
            .collect(),
    }
}

/// Lists the pods.
pub fn run(args: PodsArgs) -> Result<ExitCode> {
    let client = runtime::connect(args.runtime_endpoint.as_deref())?;
    let mut query = match &args.selector {
        Some(selector) => PodChoice::Selected {
            namespaces: args.namespace.clone().map(|ns| vec![ns]),
            selector: selector.clone(),
        }
        .query()?,
        None => PodQuery {
            namespace: args.namespace.clone(),
            ..PodQuery::all()
        },
    };
    query.include_not_ready = args.all;
    query.container_pids = args.output.is_some();
    let mut pods = client.list_pods(&query)?;
    pods.sort_by(|a, b| {
        (&a.namespace, &a.name, b.created_at).cmp(&(&b.namespace, &b.name, a.created_at))
    });
    let rows: Vec<PodRow<'_>> = pods.iter().map(row).collect();
    let mut out = std::io::stdout().lock();
    if args.output == Some(PodsFormat::Json) {
        serde_json::to_writer_pretty(&mut out, &rows)?;
        writeln!(out)?;
        return Ok(ExitCode::SUCCESS);
    }
    let wide = args.output == Some(PodsFormat::Wide);
    let mut table: Vec<Vec<String>> = vec![
        ["NAMESPACE", "NAME", "IP", "STATE", "CONTAINERS"]
            .iter()
            .map(|s| s.to_string())
            .collect(),
    ];
    if wide {
        table[0].extend(["PID".to_string(), "NETNS".to_string()]);
    }
    for r in &rows {
        let running = r.containers.iter().filter(|c| c.state == "running").count();
        let mut line = vec![
            r.namespace.to_string(),
            r.name.to_string(),
            r.ip.clone().unwrap_or_else(|| "<none>".into()),
            if r.ready { "Ready" } else { "NotReady" }.to_string(),
            format!("{running}/{}", r.containers.len()),
        ];
        if wide {
            let pid = r
                .containers
                .iter()
                .find_map(|c| c.pid)
                .or(r.sandbox_pid)
                .map(|p| p.to_string())
                .unwrap_or_else(|| "<none>".into());
            let netns = if r.host_network {
                "<host>".to_string()
            } else {
                r.netns.clone().unwrap_or_else(|| "<none>".into())
            };
            line.extend([pid, netns]);
        }
        table.push(line);
    }
    let widths: Vec<usize> = (0..table[0].len())
        .map(|i| table.iter().map(|r| r[i].len()).max().unwrap_or(0))
        .collect();
    for line in &table {
        let cells: Vec<String> = line
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        writeln!(out, "{}", cells.join("   ").trim_end())?;
    }
    if rows.is_empty() {
        eprintln!("podtracer: no pods here (runtime {})", client.endpoint());
    }
    Ok(ExitCode::SUCCESS)
}
