//! The crate's error type.

use std::path::PathBuf;
use std::time::Duration;

use crate::selector::SelectorError;

/// A `Result` whose error is this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong while talking to the container runtime.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No endpoint was given and none of the usual sockets answered as a CRI runtime.
    #[error(
        "no CRI runtime found; tried:\n{}\npass --runtime-endpoint unix:///PATH or set {} (as root, on the node, with the runtime's socket visible)",
        format_tried(tried),
        crate::endpoint::ENDPOINT_ENV
    )]
    NoRuntime {
        /// Every socket tried, with why it did not do.
        tried: Vec<(PathBuf, String)>,
    },

    /// The endpoint string cannot be used.
    #[error(
        "bad runtime endpoint {endpoint:?}: {reason}; use unix:///path/to/socket or an absolute path"
    )]
    BadEndpoint {
        /// The endpoint as given.
        endpoint: String,
        /// Why it was refused.
        reason: &'static str,
    },

    /// Connecting to the socket failed (no such file, permission denied, nobody listening…).
    #[error("connect({}): {}; is the runtime running, and are you root?", path.display(), source_chain(source))]
    Connect {
        /// The socket path.
        path: PathBuf,
        /// The transport error.
        #[source]
        source: tonic::transport::Error,
    },

    /// Something listens on the socket, but it does not speak CRI v1 `RuntimeService`.
    #[error("{} is not a CRI v1 runtime socket: Version failed: {reason}", path.display())]
    NotCri {
        /// The socket path.
        path: PathBuf,
        /// What the Version call returned.
        reason: String,
    },

    /// A CRI call returned an error status.
    #[error("CRI {call} on {}: {}: {}", path.display(), source.code(), source.message())]
    Rpc {
        /// The RPC, e.g. `ListPodSandbox`.
        call: &'static str,
        /// The socket path.
        path: PathBuf,
        /// The gRPC status.
        #[source]
        source: tonic::Status,
    },

    /// A CRI call did not answer in time.
    #[error("CRI {call} on {}: no answer within {after:?}; is the runtime hung or overloaded?", path.display())]
    Timeout {
        /// The RPC.
        call: &'static str,
        /// The socket path.
        path: PathBuf,
        /// The time allowed.
        after: Duration,
    },

    /// A label selector could not be parsed.
    #[error(transparent)]
    Selector(#[from] SelectorError),

    /// The runtime's verbose `info` could not be read.
    #[error("CRI {call} verbose info of {id}: not the expected JSON: {source}")]
    BadInfo {
        /// The RPC whose info it was.
        call: &'static str,
        /// The sandbox or container id.
        id: String,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },

    /// The blocking facade could not build its tokio runtime.
    #[error("building a tokio runtime for the blocking CRI client: {0}")]
    Runtime(#[source] std::io::Error),
}

fn format_tried(tried: &[(PathBuf, String)]) -> String {
    tried
        .iter()
        .map(|(path, why)| format!("  {}: {why}", path.display()))
        .collect::<Vec<_>>()
        .join("\n")
}

/// tonic's transport errors say little at the top ("transport error"); the cause is deeper.
pub(crate) fn source_chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut next = err.source();
    while let Some(cause) = next {
        let text = cause.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        next = cause.source();
    }
    out
}
