//! The Kafka topics podtracer sends to when a `--sink` URL names none.

/// Packets (`capture`).
pub const PACKETS: &str = "snoopy.packets";
/// Flow records (`flows`).
pub const FLOWS: &str = "snoopy.flows";
/// Probe results (`probe`).
pub const PROBES: &str = "snoopy.probes";
/// Throughput test results (`throughput`).
pub const THROUGHPUT: &str = "snoopy.throughput";
