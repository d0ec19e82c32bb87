//! One watch of the cluster's pods, metadata only, shared by both controllers.
//!
//! The pod → CR mapping reads a pod's namespace, labels and annotations, nothing of its spec
//! or status, so the watch asks for metadata only: the API server sends a fraction of each
//! pod's bytes and the operator parses a fraction. Nothing is stored: each event is mapped
//! to the CRs it concerns and dropped, so the operator's memory does not grow with the
//! cluster's pods. Before, each controller (Tcpdump, SnoopyJob) opened its own full watch;
//! now one watch feeds both.

use futures::channel::mpsc;
use futures::{SinkExt, Stream, StreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube::Client;
use kube::api::{Api, PartialObjectMeta};
use kube::runtime::{WatchStreamExt, watcher};
use tracing::warn;

/// What the pod watch delivers: a pod's metadata.
pub type PodMeta = PartialObjectMeta<Pod>;

/// What a controller reads: pod metadata, as `Controller::watches_stream` takes it.
pub type PodEvents = mpsc::Receiver<Result<PodMeta, watcher::Error>>;

/// Events a controller may fall behind the watch before the watch waits for it.
const BUFFER: usize = 1024;

/// The watch, and `N` streams that each see every event. The watch runs while the returned
/// future is polled, and ends when every reader is gone.
pub fn shared<const N: usize>(client: Client) -> (impl Future<Output = ()>, [PodEvents; N]) {
    let mut senders = Vec::with_capacity(N);
    let readers = std::array::from_fn(|_| {
        let (tx, rx) = mpsc::channel(BUFFER);
        senders.push(tx);
        rx
    });
    // An Api over PartialObjectMeta makes the watcher ask for metadata only.
    let api: Api<PodMeta> = Api::all(client);
    let events = watcher(api, watcher::Config::default().any_semantic())
        .default_backoff()
        .touched_objects();
    (forward(events, senders), readers)
}

/// Sends each pod to every reader; a watch error (the watcher retries with backoff) is
/// logged, not passed on: it would only make each controller log it again.
async fn forward(
    events: impl Stream<Item = Result<PodMeta, watcher::Error>>,
    mut senders: Vec<mpsc::Sender<Result<PodMeta, watcher::Error>>>,
) {
    let mut events = std::pin::pin!(events);
    while let Some(event) = events.next().await {
        match event {
            Ok(pod) => {
                let mut open = Vec::with_capacity(senders.len());
                for mut tx in senders {
                    if tx.send(Ok(pod.clone())).await.is_ok() {
                        open.push(tx);
                    }
                }
                senders = open;
                if senders.is_empty() {
                    return;
                }
            }
            Err(e) => warn!(error = %e, "pod watch"),
        }
    }
}
