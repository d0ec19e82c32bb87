//! # snoopy-dashboard
//!
//! Connection health of every pod pair at a glance. The dashboard reads the records
//! Snoopy's node jobs already produce — flow records (`podtracer flows`) and probe reports
//! (`podtracer probe`), from Kafka topics or JSON lines — keeps bounded aggregates per
//! conversation and time window, and serves them as a live web page (a service map, a
//! table of destinations with success rates, failure kinds and RTT percentiles, a pair's
//! time series and failed flows, probe checks beside the passive numbers) and as
//! Prometheus metrics with Hubble's label names.
//!
//! The library is the dashboard without its command line: [`store::Store`] aggregates,
//! [`view`] computes what a filter shows, [`metrics::render`] the Prometheus text,
//! [`web::router`] the HTTP routes, [`sources`] the inputs, [`replicas`] several
//! dashboards splitting the Kafka partitions and serving one page.
//!
//! ```
//! use snoopy_dashboard::input::Origin;
//! use snoopy_dashboard::store::{Limits, Store};
//! use snoopy_dashboard::view::{self, Filter};
//!
//! let mut store = Store::new(Limits::default());
//! let probe = br#"{"type":"probe","check":"tcp","target":"10.0.0.2:80",
//!                  "results":[{"ok":true,"latency_ns":120000,"address":"10.0.0.2:80"}]}"#;
//! store.ingest(probe, &Origin::default(), 0);
//! store.ingest(b"not json", &Origin::default(), 0);
//! let shown = view::view(&store, &Filter::default());
//! assert_eq!(shown.probes[0].successes, 1);
//! assert_eq!(shown.stats.malformed, 1);
//! ```

pub mod download;
pub mod input;
pub mod metrics;
pub mod replicas;
pub mod shared;
pub mod sources;
pub mod store;
pub mod view;
pub mod web;
