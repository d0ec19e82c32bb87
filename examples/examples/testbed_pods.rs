//! Creates and deletes "Kubernetes pods" on a bare containerd through CRI, as kubelet would
//! (sandbox labels `io.kubernetes.pod.*` plus the pod's own), for the demo and for trying
//! podtracer without a cluster.
//!
//! ```text
//! testbed_pods create NAMESPACE NAME [--label KEY=VALUE]... [-- COMMAND ARGS...]
//! testbed_pods ip NAMESPACE NAME
//! testbed_pods delete NAMESPACE NAME
//! ```
//! The endpoint comes from `CONTAINER_RUNTIME_ENDPOINT` (`testbed/containerd.sh env`).

use anyhow::{Context, Result, bail};
use snoopy_cri::testing::{BUSYBOX_IMAGE, PodSpec};
use snoopy_cri::{Endpoint, PodQuery, RuntimeClient};

fn usage() -> anyhow::Error {
    anyhow::anyhow!(
        "usage: testbed_pods create NS NAME [--label K=V]... [-- CMD ARGS...] | ip NS NAME | delete NS NAME"
    )
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let endpoint = Endpoint::from_env()?
        .context("set CONTAINER_RUNTIME_ENDPOINT (eval \"$(testbed/containerd.sh env)\")")?;
    let client = RuntimeClient::connect(endpoint).await?;
    let [verb, namespace, name, rest @ ..] = args.as_slice() else {
        return Err(usage());
    };
    match verb.as_str() {
        "create" => {
            let mut spec = PodSpec::new(namespace, name);
            let mut rest = rest.iter();
            let mut command: Vec<&str> = Vec::new();
            while let Some(arg) = rest.next() {
                match arg.as_str() {
                    "--label" => {
                        let pair = rest.next().ok_or_else(usage)?;
                        let (k, v) = pair.split_once('=').ok_or_else(usage)?;
                        spec = spec.labeled(k, v);
                    }
                    "--" => {
                        command = rest.by_ref().map(String::as_str).collect();
                    }
                    _ => return Err(usage()),
                }
            }
            spec = if command.is_empty() {
                spec.sleeper("main")
            } else {
                spec.container("main", BUSYBOX_IMAGE, &command)
            };
            client.create_pod(&spec).await?;
            println!("{}", ip(&client, namespace, name).await?);
        }
        "ip" => println!("{}", ip(&client, namespace, name).await?),
        "delete" => {
            for pod in client
                .list_pods(&PodQuery::named(namespace, name).include_not_ready())
                .await?
            {
                client.remove_pod(&pod.sandbox_id).await?;
            }
        }
        _ => return Err(usage()),
    }
    Ok(())
}

async fn ip(client: &RuntimeClient, namespace: &str, name: &str) -> Result<String> {
    let pods = client.list_pods(&PodQuery::named(namespace, name)).await?;
    match pods.first().and_then(|p| p.ip) {
        Some(ip) => Ok(ip.to_string()),
        None => bail!("pod {namespace}/{name} is not running or has no IP"),
    }
}
