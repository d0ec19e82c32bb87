//! The contract between Snoopy's operator and `podtracer`: the node job's [`Request`] (as
//! podtracer's command line), its environment ([`mod@env`]), the default Kafka [`topics`], and
//! the [`Report`] podtracer writes back, and the record of a throughput test between two pods
//! ([`throughput::PairResult`]).
//!
//! Both sides compile against this crate: the operator builds a [`Request`] and runs
//! [`Request::to_args`]; podtracer parses its command line and turns it back into the same
//! [`Request`] (its test runs every shape of request through its real clap definition). No
//! podtracer flag or variable name is written anywhere else.

#![forbid(unsafe_code)]

pub mod duration;
pub mod env;
mod report;
mod request;
pub mod throughput;
pub mod topics;

pub use report::{KafkaReport, PodCount, Report};
pub use request::{
    CaptureFormat, CaptureRequest, DEFAULT_SNAPLEN, ExecRequest, FlowsRequest, Pods, Request, Ring,
    Target,
};
