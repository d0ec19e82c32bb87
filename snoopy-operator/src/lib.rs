//! `snoopy-operator`: Snoopy on a cluster.
//!
//! A `Tcpdump` (the proof-of-concept API) or `SnoopyJob` custom resource selects pods; the
//! operator creates one Job per target pod, in its own namespace, pinned to that pod's node,
//! running `podtracer` against the pod through the node's container runtime. It never links
//! the capture code: everything that touches packets happens in podtracer inside the Job.
//!
//! The pure parts (CRD types, validation, Job building, naming, status aggregation, cron
//! arithmetic) are plain functions tested without a cluster; [`controller`] is the thin
//! level-triggered layer that reads the cluster and creates, updates and deletes.

#![forbid(unsafe_code)]

pub mod access;
pub mod aggregate;
pub mod client;
pub mod controller;
pub mod crd;
pub mod filter;
pub mod http;
pub mod job;
pub mod metrics;
pub mod naming;
pub mod plan;
pub mod report;
pub mod schedule;
pub mod selector;
pub mod settings;
pub mod stamp;
pub mod webhook;
