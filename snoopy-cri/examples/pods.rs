//! List the pods the node's runtime knows, like `kubectl get pods -o wide` without an API
//! server: `cargo run -p snoopy-cri --example pods -- [--runtime-endpoint unix:///PATH]
//! [-n NAMESPACE] [-l SELECTOR] [--all] [--pids] [NAME]`.
//!
//! Exits 1 with the library's error (which lists every socket tried) when no runtime answers.

use std::process::ExitCode;

use anyhow::{Context, bail};
use snoopy_cri::{Endpoint, LabelSelector, PodQuery, blocking::RuntimeClient};

fn run() -> anyhow::Result<()> {
    let mut endpoint = None;
    let mut query = PodQuery::all();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |what: &str| args.next().with_context(|| format!("{arg} needs {what}"));
        match arg.as_str() {
            "--runtime-endpoint" => endpoint = Some(Endpoint::parse(&value("an endpoint")?)?),
            "-n" | "--namespace" => query.namespace = Some(value("a namespace")?),
            "-l" | "--selector" => {
                query.selector = Some(LabelSelector::parse(&value("a selector")?)?)
            }
            "--all" => query.include_not_ready = true,
            "--pids" => query.container_pids = true,
            "-h" | "--help" => {
                println!(
                    "usage: pods [--runtime-endpoint E] [-n NS] [-l SELECTOR] [--all] [--pids] [NAME]"
                );
                return Ok(());
            }
            flag if flag.starts_with('-') => bail!("unknown option {flag}"),
            name => query.name = Some(name.to_owned()),
        }
    }
    let client = RuntimeClient::connect_or_detect(endpoint)?;
    let version = client.version();
    eprintln!(
        "{} {} (CRI {}) at {}",
        version.runtime_name,
        version.runtime_version,
        version.runtime_api_version,
        client.endpoint()
    );
    for pod in client.list_pods(&query)? {
        let ip = pod
            .ip
            .map(|ip| ip.to_string())
            .unwrap_or_else(|| "-".into());
        let netns = match (&pod.netns_path, pod.host_network) {
            (_, true) => "host".to_owned(),
            (Some(p), _) => p.display().to_string(),
            (None, _) => "-".to_owned(),
        };
        let ready = if pod.ready { "ready" } else { "notready" };
        println!("{} {ready} {ip} {netns}", pod.qualified_name());
        for c in &pod.containers {
            let pid = c.pid.map(|p| p.to_string()).unwrap_or_else(|| "-".into());
            println!(
                "  {} {} pid={pid} {}",
                c.name,
                c.state,
                &c.id[..c.id.len().min(13)]
            );
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
