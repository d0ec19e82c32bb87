//! The API client: from the kubeconfig / in-cluster config, counting every request.

use std::sync::Arc;

use kube::client::ClientBuilder;
use kube::runtime::events::Reporter;
use kube::{Client, Config};

use crate::metrics::Metrics;

/// A client from the environment (`KUBECONFIG`, `~/.kube/config`, or the in-cluster
/// ServiceAccount) whose requests are counted in `metrics.api_requests`.
pub async fn connect(metrics: Arc<Metrics>) -> Result<Client, kube::Error> {
    let config = Config::infer().await.map_err(kube::Error::InferConfig)?;
    let counter = metrics.api_requests.clone();
    let counting =
        tower::util::MapRequestLayer::new(move |req: http::Request<kube::client::Body>| {
            counter.inc();
            req
        });
    Ok(ClientBuilder::try_from(config)?
        .with_layer(&counting)
        .build())
}

/// Who the Events come from: the controller, and the pod (`POD_NAME`) when in a cluster.
pub fn reporter() -> Reporter {
    Reporter {
        controller: "snoopy-operator".into(),
        instance: std::env::var("POD_NAME").ok(),
    }
}
