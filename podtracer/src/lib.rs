//! `podtracer`: see a pod's network traffic from its node.
//!
//! The node CLI of Snoopy, as a library under a thin binary (`src/main.rs` parses the
//! command line and calls one of [`commands`]). It enters a pod's network namespace (by PID,
//! namespace path, or pod name and labels through the container runtime) and either
//! captures there natively (`capture`), follows its connections (`flows`), watches every TCP
//! connection with the process behind it through eBPF (`monitor`), tries
//! connections from inside it (`probe`), measures bandwidth and latency between pods
//! (`throughput`), or runs any host tool there (`exec`).
//!
//! The parts, from the command line inward:
//! - [`cli`]: the clap definition, one variant per subcommand;
//! - [`commands`]: one module per subcommand, turning its flags into work; they share
//!   what they have in common through the modules below, never through each other;
//! - [`target`]: which network namespace(s) to work in;
//! - [`pipeline`]: a live capture from targets through sources and sinks to its totals and
//!   the termination report (`capture`, `capture -l`, `flows`);
//! - [`output`] and [`sinks`]: where packets and records go (files, stdout, Kafka);
//! - [`exit`]: how the end of a run becomes an exit status (a closed pipe is success).
//!
//! What the operator asks a node Job to run and what the Job reports back is the typed
//! contract of `snoopy-job`; podtracer parses into it and writes its `Report`.

#![forbid(unsafe_code)]

pub mod cli;
pub mod commands;
// The node-job contract read back from the command line (its round-trip test).
#[cfg(test)]
mod contract;
pub mod exit;
mod filter;
pub mod names;
mod offline;
pub mod output;
pub mod pipeline;
mod program;
mod progress;
mod runtime;
mod signals;
pub mod sinks;
pub mod target;
