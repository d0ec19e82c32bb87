//! The web server: the page (HTML, JS and CSS embedded in the binary), its JSON API, live
//! updates as server-sent events, and `/metrics`. The page's API answers for all replicas
//! (see [`crate::replicas`]); `/api/partial`, `/api/pair-partial`, `/api/now` and
//! `/api/events?scope=local` are what replicas ask each other, and `/metrics` is this
//! replica's alone (Prometheus scrapes each and sums).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use futures::Stream;
use serde::Deserialize;

use crate::shared::Shared;
use crate::view::{self, Filter, PairDetail, PairPartial, Partial, View};

const INDEX: &str = include_str!("../assets/index.html");
const SCRIPT: &str = include_str!("../assets/app.js");
const STYLE: &str = include_str!("../assets/style.css");

/// Updates are sent at most this often, however fast records arrive.
const UPDATE_EVERY: Duration = Duration::from_millis(250);

/// The routes.
pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/", get(|| async { Html(INDEX) }))
        .route(
            "/app.js",
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
                    SCRIPT,
                )
            }),
        )
        .route(
            "/style.css",
            get(|| async { ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], STYLE) }),
        )
        .route("/api/view", get(view_handler))
        .route("/api/pair", get(pair_handler))
        .route("/api/partial", get(partial_handler))
        .route("/api/pair-partial", get(pair_partial_handler))
        .route("/api/now", get(now_handler))
        .route("/api/events", get(events_handler))
        .route("/api/pcapng", get(pcapng_handler))
        .route("/metrics", get(metrics_handler))
        .route("/healthz", get(|| async { "ok\n" }))
        .with_state(shared)
}

async fn view_handler(
    State(shared): State<Arc<Shared>>,
    Query(filter): Query<Filter>,
) -> Json<View> {
    Json(shared.replicas().view(&shared, filter).await)
}

/// This replica's part of a view (what another replica asks for).
async fn partial_handler(
    State(shared): State<Arc<Shared>>,
    Query(filter): Query<Filter>,
) -> Json<Partial> {
    Json(view::partial(&shared.lock(), &filter))
}

/// This replica's newest record time, ns.
async fn now_handler(State(shared): State<Arc<Shared>>) -> Json<u64> {
    Json(shared.lock().now_ns())
}

/// `/api/pair`: the filter plus the pair.
#[derive(Debug, Deserialize)]
struct PairQuery {
    source: String,
    destination: String,
    #[serde(flatten)]
    filter: Filter,
}

async fn pair_handler(
    State(shared): State<Arc<Shared>>,
    Query(q): Query<PairQuery>,
) -> Json<PairDetail> {
    let replicas = shared.replicas();
    Json(
        replicas
            .pair(&shared, q.filter, &q.source, &q.destination)
            .await,
    )
}

/// This replica's part of a pair's detail.
async fn pair_partial_handler(
    State(shared): State<Arc<Shared>>,
    Query(q): Query<PairQuery>,
) -> Json<PairPartial> {
    Json(view::pair_partial(
        &shared.lock(),
        &q.filter,
        &q.source,
        &q.destination,
    ))
}

/// `/api/pcapng?run=RUN`.
#[derive(Debug, Deserialize)]
struct RunQuery {
    run: String,
}

/// Messages a download may read at most (the merge holds a run's packets in memory, as
/// `podtracer collect` does).
const DOWNLOAD_LIMIT: usize = 512 << 20;

/// A capture run's packets as one pcapng file.
async fn pcapng_handler(
    State(shared): State<Arc<Shared>>,
    Query(q): Query<RunQuery>,
) -> axum::response::Response {
    use crate::download::{DownloadError, run_pcapng};
    use axum::http::StatusCode;
    let run = q.run.clone();
    let result = tokio::task::spawn_blocking(move || {
        run_pcapng(shared.packet_topics(), &q.run, DOWNLOAD_LIMIT)
    })
    .await;
    let status = |e: &DownloadError| match e {
        DownloadError::NotFound(_) => StatusCode::NOT_FOUND,
        DownloadError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
        DownloadError::NoTopics => StatusCode::CONFLICT,
        DownloadError::Kafka(_) | DownloadError::Write(_) => StatusCode::BAD_GATEWAY,
    };
    match result {
        Ok(Ok(bytes)) => {
            let file: String = run
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                        c
                    } else {
                        '_'
                    }
                })
                .collect();
            (
                [
                    (header::CONTENT_TYPE, "application/x-pcapng".to_string()),
                    (
                        header::CONTENT_DISPOSITION,
                        format!("attachment; filename=\"{file}.pcapng\""),
                    ),
                ],
                bytes,
            )
                .into_response()
        }
        Ok(Err(e)) => (status(&e), format!("{e}\n")).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response(),
    }
}

async fn metrics_handler(State(shared): State<Arc<Shared>>) -> impl IntoResponse {
    let text = crate::metrics::render(&shared.lock());
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
}

/// `/api/events?scope=local`: only this replica's changes (what replicas follow of each
/// other; following each other's full streams would echo forever).
#[derive(Debug, Deserialize)]
struct EventsQuery {
    #[serde(default)]
    scope: Option<String>,
}

/// `update` events carrying a change counter (the store's version, for `scope=local`): the
/// page fetches its view again.
async fn events_handler(
    State(shared): State<Arc<Shared>>,
    Query(q): Query<EventsQuery>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let rx = if q.scope.as_deref() == Some("local") {
        shared.subscribe()
    } else {
        shared.subscribe_any()
    };
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.changed().await.ok()?;
        // Let a burst settle into one update.
        tokio::time::sleep(UPDATE_EVERY).await;
        let version = *rx.borrow_and_update();
        Some((
            Ok(Event::default().event("update").data(version.to_string())),
            rx,
        ))
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}
