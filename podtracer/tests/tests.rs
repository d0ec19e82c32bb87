//! End-to-end tests of the podtracer binary on real network namespaces (need root).

mod capture;
mod errors;
mod exec;
mod filter;
mod flows;
mod kafka;
mod lines;
mod monitor;
mod names;
mod pod_lines;
mod pod_view;
mod pods;
mod probe;
mod rotate;
mod runtime;
mod support;
mod throughput;
mod times;
