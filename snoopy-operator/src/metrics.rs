//! Prometheus metrics of the operator, served on `/metrics`.

use std::sync::atomic::AtomicI64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Labels: the CR kind.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    /// `Tcpdump` or `SnoopyJob`.
    pub kind: String,
}

/// Labels: one CR.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CrLabels {
    /// Kind.
    pub kind: String,
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
}

/// Labels: an error.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    /// Kind.
    pub kind: String,
    /// The error's short name.
    pub error: String,
}

/// Everything the operator counts.
#[derive(Debug)]
pub struct Metrics {
    /// Reconciles started.
    pub reconciles: Family<KindLabels, Counter>,
    /// Reconciles that failed.
    pub errors: Family<ErrorLabels, Counter>,
    /// Jobs created.
    pub jobs_created: Family<KindLabels, Counter>,
    /// Targets per CR.
    pub targets: Family<CrLabels, Gauge<i64, AtomicI64>>,
    /// Reconcile duration.
    pub duration: Family<KindLabels, Histogram>,
    /// Requests this process sent to the API server.
    pub api_requests: Counter,
    registry: Registry,
}

impl Default for Metrics {
    fn default() -> Self {
        let reconciles = Family::<KindLabels, Counter>::default();
        let errors = Family::<ErrorLabels, Counter>::default();
        let jobs_created = Family::<KindLabels, Counter>::default();
        let targets = Family::<CrLabels, Gauge<i64, AtomicI64>>::default();
        let duration = Family::<KindLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.001, 2.0, 14))
        });
        let api_requests = Counter::default();
        let mut registry = Registry::with_prefix("snoopy_operator");
        registry.register("reconciles", "Reconciles started", reconciles.clone());
        registry.register("reconcile_errors", "Reconciles that failed", errors.clone());
        registry.register("jobs_created", "Jobs created", jobs_created.clone());
        registry.register(
            "targets",
            "Target pods per custom resource",
            targets.clone(),
        );
        registry.register(
            "reconcile_duration_seconds",
            "Reconcile duration",
            duration.clone(),
        );
        registry.register(
            "api_requests",
            "Requests sent to the Kubernetes API server",
            api_requests.clone(),
        );
        Self {
            reconciles,
            errors,
            jobs_created,
            targets,
            duration,
            api_requests,
            registry,
        }
    }
}

impl Metrics {
    /// The OpenMetrics text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}
