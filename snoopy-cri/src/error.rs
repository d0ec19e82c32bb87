//! The crate's error type.

use std::path::PathBuf;
use std::time::Duration;

use crate::selector::SelectorError;

/// A `Result` whose error is this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong while talking to the container runtime.
///
/// Every message is complete on its own — the call, the socket, the cause and what to do —
/// so the variants carry their causes as fields, not as `source`s that a reporter printing
/// the chain would repeat.
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
    #[error("connect({}): {reason}; is the runtime running there, and are you root?", path.display())]
    Connect {
        /// The socket path.
        path: PathBuf,
        /// Why, from the innermost cause (the transport's own layers say only "transport error").
        reason: String,
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
    #[error("CRI {call} on {}: {}: {}", path.display(), status.code(), status.message())]
    Rpc {
        /// The RPC, e.g. `ListPodSandbox`.
        call: &'static str,
        /// The socket path.
        path: PathBuf,
        /// The gRPC status (its text is in the message already, so it is not a `source`).
        status: tonic::Status,
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
    #[error("CRI {call} verbose info of {id}: not the expected JSON: {error}")]
    BadInfo {
        /// The RPC whose info it was.
        call: &'static str,
        /// The sandbox or container id.
        id: String,
        /// The JSON error (in the message, so not a `source`).
        error: serde_json::Error,
    },

    /// The blocking facade could not build its tokio runtime.
    #[error("building a tokio runtime for the blocking CRI client: {0}")]
    Runtime(std::io::Error),
}

impl Error {
    /// The gRPC status code, when the runtime answered a call with an error.
    pub fn code(&self) -> Option<tonic::Code> {
        match self {
            Error::Rpc { status, .. } => Some(status.code()),
            _ => None,
        }
    }

    /// Whether the runtime said the sandbox or container does not exist (any more).
    pub fn is_not_found(&self) -> bool {
        self.code() == Some(tonic::Code::NotFound)
    }
}

fn format_tried(tried: &[(PathBuf, String)]) -> String {
    tried
        .iter()
        .map(|(path, why)| format!("  {}: {why}", path.display()))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The innermost cause's text: tonic's outer layers say only "transport error".
pub(crate) fn root_cause(err: &dyn std::error::Error) -> String {
    let mut err = err;
    while let Some(next) = err.source() {
        err = next;
    }
    err.to_string()
}
