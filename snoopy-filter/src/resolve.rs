//! The hook through which the compiler learns what names mean.
//!
//! libpcap resolves names while it compiles: `host NAME` through `getaddrinfo` (every
//! address, IPv4 and IPv6), `ether host NAME` through `/etc/ethers`, `net NAME` through
//! `/etc/networks`. This crate does no lookups itself — which view of the world a name
//! belongs to is the caller's business (a pod's `/etc/hosts` and nameservers are not the
//! node's) — so [`crate::compile_with`] asks a [`Resolve`] implementation. [`NoNames`], what
//! [`crate::compile`] uses, knows no names, and every name is then libpcap's "unknown"
//! error; [`crate::files::Files`] answers from hosts, ethers and networks files, as glibc's
//! `files` service does.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

/// Why a lookup could not be answered (not "the name does not exist": that is an empty
/// answer). The text says what was tried, for the user: it ends the compile error
/// (`unknown host 'web' (DNS 10.96.0.10: timed out after 2 s)`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct LookupError(pub String);

/// What names mean to the compiler. Each method answers one of libpcap's lookups; the
/// default methods know no names.
///
/// `Sync`: the parser may move to another thread on deeply nested expressions, with the
/// resolver. Answers are cached for one compile, so a name is looked up once even when the
/// parser backtracks over it.
pub trait Resolve: Sync {
    /// The addresses of host `name`, in the order `host NAME` should test them (libpcap
    /// keeps `getaddrinfo`'s order; [`crate::files::getaddrinfo_order`] gives it). Empty:
    /// no such host (libpcap's `unknown host 'NAME'`).
    fn host(&self, name: &str) -> Result<Vec<IpAddr>, LookupError> {
        let _ = name;
        Ok(Vec::new())
    }

    /// The MAC address of Ethernet host `name` (`/etc/ethers`, `pcap_ether_hostton`);
    /// `None`: unknown.
    fn ether(&self, name: &str) -> Result<Option<[u8; 6]>, LookupError> {
        let _ = name;
        Ok(None)
    }

    /// The network number of `name` as `getnetbyname` gives it (`n_net`, host order, as
    /// `inet_network` reads `/etc/networks`: `loopback 127` is 127); `None`: unknown.
    fn network(&self, name: &str) -> Result<Option<u32>, LookupError> {
        let _ = name;
        Ok(None)
    }
}

/// Knows no names: every host, Ethernet host and network name is unknown, with libpcap's
/// error. What [`crate::compile`] uses.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoNames;

impl Resolve for NoNames {}

type Answers<T> = Mutex<HashMap<String, Result<T, LookupError>>>;

/// One compile's answers, so that a name the parser reads twice (it backtracks) is looked
/// up once: a DNS query is slow, and two answers could differ.
pub(crate) struct Cached<'r> {
    inner: &'r dyn Resolve,
    hosts: Answers<Vec<IpAddr>>,
    ethers: Answers<Option<[u8; 6]>>,
    networks: Answers<Option<u32>>,
}

impl<'r> Cached<'r> {
    pub(crate) fn new(inner: &'r dyn Resolve) -> Self {
        Cached {
            inner,
            hosts: Mutex::default(),
            ethers: Mutex::default(),
            networks: Mutex::default(),
        }
    }
}

fn cached<T: Clone>(
    answers: &Answers<T>,
    name: &str,
    ask: impl FnOnce() -> Result<T, LookupError>,
) -> Result<T, LookupError> {
    // A poisoned lock only means another lookup panicked; the map is still sound.
    let mut map = answers.lock().unwrap_or_else(|p| p.into_inner());
    map.entry(name.to_string()).or_insert_with(ask).clone()
}

impl Resolve for Cached<'_> {
    fn host(&self, name: &str) -> Result<Vec<IpAddr>, LookupError> {
        cached(&self.hosts, name, || self.inner.host(name))
    }

    fn ether(&self, name: &str) -> Result<Option<[u8; 6]>, LookupError> {
        cached(&self.ethers, name, || self.inner.ether(name))
    }

    fn network(&self, name: &str) -> Result<Option<u32>, LookupError> {
        cached(&self.networks, name, || self.inner.network(name))
    }
}

impl std::fmt::Debug for Cached<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Cached(..)")
    }
}

/// The resolver as the code generator holds it (a shared reference, copied when the parser
/// clones the generator to backtrack).
#[derive(Clone, Copy)]
pub(crate) struct Names<'r>(pub(crate) &'r dyn Resolve);

impl std::fmt::Debug for Names<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Names(..)")
    }
}
