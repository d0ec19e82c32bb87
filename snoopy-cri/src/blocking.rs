//! A blocking facade over [`crate::RuntimeClient`], for programs without an async runtime.
//!
//! It owns a single-threaded tokio runtime; every method blocks the calling thread until
//! the runtime answers. Do not call it from inside an async task.

use std::time::Duration;

use crate::client::RuntimeVersion;
use crate::endpoint::Endpoint;
use crate::error::{Error, Result};
use crate::pod::{Pod, PodQuery};

/// A blocking CRI client.
#[derive(Debug)]
pub struct RuntimeClient {
    runtime: tokio::runtime::Runtime,
    inner: crate::RuntimeClient,
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .map_err(Error::Runtime)
}

impl RuntimeClient {
    /// See [`crate::RuntimeClient::connect`].
    pub fn connect(endpoint: Endpoint) -> Result<Self> {
        let runtime = runtime()?;
        let inner = runtime.block_on(crate::RuntimeClient::connect(endpoint))?;
        Ok(RuntimeClient { runtime, inner })
    }

    /// See [`crate::RuntimeClient::connect_timeout`].
    pub fn connect_timeout(endpoint: Endpoint, timeout: Duration) -> Result<Self> {
        let runtime = runtime()?;
        let inner = runtime.block_on(crate::RuntimeClient::connect_timeout(endpoint, timeout))?;
        Ok(RuntimeClient { runtime, inner })
    }

    /// See [`crate::RuntimeClient::connect_or_detect`].
    pub fn connect_or_detect(endpoint: Option<Endpoint>) -> Result<Self> {
        let runtime = runtime()?;
        let inner = runtime.block_on(crate::RuntimeClient::connect_or_detect(endpoint))?;
        Ok(RuntimeClient { runtime, inner })
    }

    /// See [`crate::RuntimeClient::list_pods`].
    pub fn list_pods(&self, query: &PodQuery) -> Result<Vec<Pod>> {
        self.runtime.block_on(self.inner.list_pods(query))
    }

    /// See [`crate::RuntimeClient::container_pid`].
    pub fn container_pid(&self, container_id: &str) -> Result<Option<u32>> {
        self.runtime
            .block_on(self.inner.container_pid(container_id))
    }

    /// See [`crate::RuntimeClient::endpoint`].
    pub fn endpoint(&self) -> &Endpoint {
        self.inner.endpoint()
    }

    /// See [`crate::RuntimeClient::version`].
    pub fn version(&self) -> &RuntimeVersion {
        self.inner.version()
    }

    /// The async client inside, for calls this facade does not wrap.
    pub fn inner(&self) -> &crate::RuntimeClient {
        &self.inner
    }

    /// Runs a future on this client's runtime (for example a call of [`Self::inner`]).
    pub fn block_on<F: std::future::Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }
}
