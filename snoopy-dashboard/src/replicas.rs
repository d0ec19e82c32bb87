//! Several dashboards as one: each replica reads a fixed share of the Kafka partitions
//! (partition `p` goes to replica `p % N`; records are keyed by pod, so one pod's records,
//! and with them its pairs as that pod saw them, stay on one replica), and whichever replica
//! serves a page asks the others for their part and merges it with its own.
//!
//! Why the replicas merge and not the browser: a part carries histograms, which add up
//! exactly where percentiles do not; the page keeps one URL (the Service's); and a replica
//! that does not answer is named on the page while the others' data still shows.
//!
//! Replicas learn of each other's changes by following each other's local update streams
//! (`/api/events?scope=local`), so a live page updates whichever replica a record reached.

use std::io::BufRead;
use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use snoopy_capture::sink::kafka::Share;

use crate::shared::Shared;
use crate::view::{self, Filter, PairDetail, PairPartial, Partial, View};

/// Why a replica could not be set up from the command line.
#[derive(Debug, thiserror::Error)]
pub enum ReplicasError {
    /// The ordinal is not one of the replicas listed.
    #[error(
        "--ordinal {ordinal} is not one of the {count} replicas given with --replicas (0..{count})"
    )]
    OrdinalOutOfRange {
        /// The ordinal given or found.
        ordinal: u32,
        /// The replicas listed.
        count: usize,
    },
    /// No ordinal was given and the host name does not end in one.
    #[error(
        "--replicas lists {0} replicas but this one's ordinal is unknown: give --ordinal N, or run it as a StatefulSet pod (host name NAME-N)"
    )]
    NoOrdinal(usize),
}

/// The replicas this dashboard is one of.
#[derive(Debug, Clone, Default)]
pub struct Replicas {
    /// This replica's ordinal.
    pub ordinal: u32,
    /// Every replica's base URL (`http://HOST:PORT/`), in ordinal order; empty when alone.
    pub urls: Vec<String>,
    agent: Option<ureq::Agent>,
}

/// How long a replica waits for another's part before showing the page without it.
const ASK_TIMEOUT: Duration = Duration::from_secs(5);
/// How long to wait before following a replica's updates again after it went away.
const RETRY: Duration = Duration::from_secs(1);

/// The ordinal a StatefulSet pod's host name ends in (`snoopy-dashboard-1` → 1).
pub fn ordinal_of_host(host: &str) -> Option<u32> {
    host.rsplit_once('-')?.1.parse().ok()
}

impl Replicas {
    /// This dashboard alone: it reads every partition.
    pub fn alone() -> Self {
        Replicas::default()
    }

    /// Replica `ordinal` of the replicas at `urls` (ordinal order; the list includes this
    /// one). The ordinal, when not given, is the host name's (`$HOSTNAME`, as a StatefulSet
    /// sets it).
    pub fn new(urls: Vec<String>, ordinal: Option<u32>) -> Result<Self, ReplicasError> {
        let urls: Vec<String> = urls
            .into_iter()
            .filter(|u| !u.trim().is_empty())
            .map(|u| format!("{}/", u.trim().trim_end_matches('/')))
            .collect();
        if urls.len() <= 1 {
            return Ok(Replicas::alone());
        }
        let ordinal = match ordinal {
            Some(o) => o,
            None => std::env::var("HOSTNAME")
                .ok()
                .as_deref()
                .and_then(ordinal_of_host)
                .ok_or(ReplicasError::NoOrdinal(urls.len()))?,
        };
        if ordinal as usize >= urls.len() {
            return Err(ReplicasError::OrdinalOutOfRange {
                ordinal,
                count: urls.len(),
            });
        }
        let agent = ureq::Agent::config_builder()
            .timeout_connect(Some(Duration::from_secs(2)))
            .http_status_as_error(true)
            .build()
            .into();
        Ok(Replicas {
            ordinal,
            urls,
            agent: Some(agent),
        })
    }

    /// This replica's share of the partitions (`None`: all of them).
    pub fn share(&self) -> Option<Share> {
        (self.urls.len() > 1).then_some(Share {
            index: self.ordinal,
            of: self.urls.len() as u32,
        })
    }

    /// The other replicas: (ordinal, base URL).
    fn others(&self) -> Vec<(u32, String)> {
        self.urls
            .iter()
            .enumerate()
            .filter(|(i, _)| *i as u32 != self.ordinal)
            .map(|(i, u)| (i as u32, u.clone()))
            .collect()
    }

    /// GETs `path` with `query` from every other replica, at once; each answer or why not.
    async fn ask_all<T: DeserializeOwned + Send + 'static>(
        &self,
        path: &str,
        query: &[(String, String)],
    ) -> Vec<Result<T, String>> {
        let Some(agent) = &self.agent else {
            return Vec::new();
        };
        let asks = self.others().into_iter().map(|(ordinal, base)| {
            let agent = agent.clone();
            let url = format!("{base}{path}");
            let query = query.to_vec();
            tokio::task::spawn_blocking(move || {
                let answer = agent
                    .get(&url)
                    .query_pairs(query.iter().map(|(k, v)| (k.as_str(), v.as_str())))
                    .config()
                    .timeout_global(Some(ASK_TIMEOUT))
                    .build()
                    .call()
                    .and_then(|mut r| r.body_mut().with_config().limit(256 << 20).read_json());
                answer.map_err(|e| format!("replica {ordinal} ({url}): {e}"))
            })
        });
        let mut answers = Vec::new();
        for ask in asks.collect::<Vec<_>>() {
            answers.push(
                ask.await
                    .unwrap_or_else(|e| Err(format!("asking a replica: {e}"))),
            );
        }
        answers
    }

    /// The filter with `now_ns` set to the newest record of all replicas, so that every
    /// part of a time range ends at the same time.
    async fn common_now(&self, shared: &Shared, mut filter: Filter) -> (Filter, Vec<String>) {
        let mut missing = Vec::new();
        if filter.since.is_some() && filter.now_ns.is_none() {
            let mut now = shared.lock().now_ns();
            for answer in self.ask_all::<u64>("api/now", &[]).await {
                match answer {
                    Ok(n) => now = now.max(n),
                    Err(e) => missing.push(e),
                }
            }
            filter.now_ns = Some(now);
        }
        (filter, missing)
    }

    /// The view of `filter`: this replica's part and every other's, merged.
    pub async fn view(&self, shared: &Shared, filter: Filter) -> View {
        if self.agent.is_none() {
            return view::view(&shared.lock(), &filter);
        }
        let (filter, mut missing) = self.common_now(shared, filter).await;
        let mine = view::partial(&shared.lock(), &filter);
        let mut parts = vec![mine];
        for answer in self
            .ask_all::<Partial>("api/partial", &query_of(&filter, &[]))
            .await
        {
            match answer {
                Ok(part) => parts.push(part),
                Err(e) => missing.push(e),
            }
        }
        let mut v = view::finish(view::merge(parts));
        v.missing = missing;
        v
    }

    /// The detail of a pair: this replica's part and every other's, merged.
    pub async fn pair(
        &self,
        shared: &Shared,
        filter: Filter,
        source: &str,
        destination: &str,
    ) -> PairDetail {
        if self.agent.is_none() {
            return view::pair(&shared.lock(), &filter, source, destination);
        }
        let (filter, mut missing) = self.common_now(shared, filter).await;
        let mine = view::pair_partial(&shared.lock(), &filter, source, destination);
        let mut parts = vec![mine];
        let extra = [("source", source), ("destination", destination)];
        for answer in self
            .ask_all::<PairPartial>("api/pair-partial", &query_of(&filter, &extra))
            .await
        {
            match answer {
                Ok(part) => parts.push(part),
                Err(e) => missing.push(e),
            }
        }
        let mut d = view::pair_finish(source, destination, parts);
        d.missing = missing;
        d
    }

    /// Follows every other replica's local updates on threads of their own: each one wakes
    /// this replica's live pages. A replica that goes away is followed again when it is back.
    pub fn follow_others(&self, shared: Arc<Shared>) {
        let Some(agent) = &self.agent else {
            return;
        };
        for (_, base) in self.others() {
            let agent = agent.clone();
            let shared = shared.clone();
            std::thread::spawn(move || {
                let url = format!("{base}api/events?scope=local");
                loop {
                    if let Ok(response) = agent.get(&url).call() {
                        // Whatever changed while this one was away shows now.
                        shared.peer_changed();
                        let reader = std::io::BufReader::new(response.into_body().into_reader());
                        for line in reader.lines() {
                            match line {
                                Ok(l) if l.starts_with("data:") => shared.peer_changed(),
                                Ok(_) => {}
                                Err(_) => break,
                            }
                        }
                    }
                    std::thread::sleep(RETRY);
                }
            });
        }
    }
}

/// A filter (and more) as query pairs.
fn query_of(filter: &Filter, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut pairs: Vec<(String, String)> = match serde_json::to_value(filter) {
        Ok(serde_json::Value::Object(map)) => map
            .into_iter()
            .map(|(k, v)| match v {
                serde_json::Value::String(s) => (k, s),
                other => (k, other.to_string()),
            })
            .collect(),
        _ => Vec::new(),
    };
    pairs.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    pairs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinals_and_shares() {
        assert_eq!(ordinal_of_host("snoopy-dashboard-1"), Some(1));
        assert_eq!(ordinal_of_host("snoopy-dashboard"), None);
        assert_eq!(ordinal_of_host("host"), None);
        let urls = vec!["http://a:8080".to_string(), "http://b:8080/".to_string()];
        let r = Replicas::new(urls.clone(), Some(1)).unwrap();
        assert_eq!(r.urls, ["http://a:8080/", "http://b:8080/"]);
        assert_eq!(r.share(), Some(Share { index: 1, of: 2 }));
        assert_eq!(r.others(), [(0, "http://a:8080/".to_string())]);
        assert!(matches!(
            Replicas::new(urls, Some(2)),
            Err(ReplicasError::OrdinalOutOfRange {
                ordinal: 2,
                count: 2
            })
        ));
        let alone = Replicas::new(vec!["http://a:8080".into()], None).unwrap();
        assert_eq!(alone.share(), None);
    }

    #[test]
    fn a_filter_crosses_as_the_query_it_came_from() {
        let filter = Filter {
            namespace: Some("shop".into()),
            since: Some(300),
            now_ns: Some(42),
            ..Filter::default()
        };
        let pairs = query_of(&filter, &[("source", "a b")]);
        let text: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
        assert_eq!(
            text,
            ["namespace=shop", "now_ns=42", "since=300", "source=a b"]
        );
    }
}
