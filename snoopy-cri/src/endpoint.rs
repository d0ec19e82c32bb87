//! Where the runtime's CRI socket is: given, from the environment, or one of the usual paths.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The environment variable naming the runtime endpoint; crictl reads the same one, so a
/// node already set up for crictl works unchanged.
pub const ENDPOINT_ENV: &str = "CONTAINER_RUNTIME_ENDPOINT";

/// The sockets tried, in order, when no endpoint is given: containerd, k3s/RKE2's embedded
/// containerd, MicroK8s's containerd, CRI-O, cri-dockerd.
pub const DEFAULT_SOCKETS: &[&str] = &[
    "/run/containerd/containerd.sock",
    "/run/k3s/containerd/containerd.sock",
    "/var/snap/microk8s/common/run/containerd.sock",
    "/run/crio/crio.sock",
    "/run/cri-dockerd.sock",
];

/// A CRI runtime endpoint: a unix socket path.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Endpoint {
    path: PathBuf,
}

impl Endpoint {
    /// Parses `unix:///path/to/sock` (kubelet's and crictl's form) or a plain absolute path.
    ///
    /// Other schemes (`tcp://`, `npipe://`) are refused: CRI runtimes on Linux nodes listen
    /// on unix sockets, and a TCP CRI endpoint would be an unauthenticated root shell.
    pub fn parse(endpoint: &str) -> Result<Self> {
        let bad = |reason| Error::BadEndpoint {
            endpoint: endpoint.to_owned(),
            reason,
        };
        let path = if let Some(rest) = endpoint.strip_prefix("unix://") {
            rest
        } else if endpoint.contains("://") {
            return Err(bad("only unix sockets are supported"));
        } else {
            endpoint
        };
        if path.is_empty() {
            return Err(bad("the socket path is empty"));
        }
        if !path.starts_with('/') {
            return Err(bad("the socket path must be absolute"));
        }
        Ok(Endpoint {
            path: PathBuf::from(path),
        })
    }

    /// An endpoint for a socket path.
    pub fn from_path(path: impl Into<PathBuf>) -> Self {
        Endpoint { path: path.into() }
    }

    /// The endpoint named by [`ENDPOINT_ENV`], if that variable is set and not empty.
    pub fn from_env() -> Result<Option<Self>> {
        match std::env::var(ENDPOINT_ENV) {
            Ok(value) if !value.trim().is_empty() => Self::parse(value.trim()).map(Some),
            _ => Ok(None),
        }
    }

    /// The socket path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unix://{}", self.path.display())
    }
}

impl std::str::FromStr for Endpoint {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_unix_urls_and_paths() {
        let e = Endpoint::parse("unix:///run/containerd/containerd.sock").unwrap();
        assert_eq!(e.path(), Path::new("/run/containerd/containerd.sock"));
        assert_eq!(e.to_string(), "unix:///run/containerd/containerd.sock");
        let e: Endpoint = "/run/crio/crio.sock".parse().unwrap();
        assert_eq!(e.path(), Path::new("/run/crio/crio.sock"));
    }

    #[test]
    fn refuses_other_schemes_and_relative_paths() {
        for bad in [
            "tcp://127.0.0.1:1234",
            "unix://",
            "",
            "run/x.sock",
            "unix://x.sock",
        ] {
            let err = Endpoint::parse(bad).unwrap_err();
            assert!(
                matches!(err, Error::BadEndpoint { .. }),
                "{bad:?} gave {err:?}"
            );
            assert!(err.to_string().contains("unix:///"), "{err}");
        }
    }
}
