//! Integration tests of snoopy-operator (one binary; each module is one area).
//!
//! `crdgen` needs nothing; the `cluster` tests need a real kube-apiserver: they read
//! `KUBECONFIG` and fail with the command to start one when it is missing.

mod cluster;
mod crdgen;
mod manifests;
mod node;
mod rbac;
mod support;
mod webhook;
