//! The kernel programs on real network namespaces and real TCP connections (need root, BPF,
//! BTF): every test makes its own namespaces (198.18.0.0/15, only inside them) and checks
//! the events against the processes it started.

mod connections;
mod support;
