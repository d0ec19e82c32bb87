//! The subcommands, one module each. A subcommand turns its flags into work and leaves
//! what it shares with others (targets, outputs, sinks, the capture pipeline, filters) to
//! the crate's shared modules: no subcommand module imports another.

pub mod capture;
pub mod collect;
pub mod exec;
pub mod flows;
pub mod monitor;
pub mod pods;
pub mod probe;
pub mod read;
pub mod throughput;
