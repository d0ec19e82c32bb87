//! Open and enter the Linux namespaces of a process.
//!
//! Snoopy looks at a pod's traffic *as the pod*: it opens capture sockets inside the pod's
//! network namespace and runs host tools (`tcpdump`, `ip`, `ss`, `iperf3`) there, without
//! changing the pod. This crate is that one step, usable on its own:
//!
//! * [`Namespace`] — an owned handle on `/proc/PID/ns/KIND` or on a namespace file such as
//!   `/var/run/netns/NAME`, checked to really be a namespace of the expected kind.
//! * [`in_namespace`] — runs a closure on a dedicated thread that enters the namespace first
//!   and then exits, so no thread ever goes back into a pool in the wrong namespace. Sockets
//!   opened inside stay bound to the namespace after the thread is gone, which is all a
//!   packet capture needs.
//! * [`command_in`] — a [`std::process::Command`] that enters the namespaces just before
//!   `exec`, so any program runs inside them with its arguments passed as argv.
//! * [`privileges`] — what a program run there keeps: an unprivileged user, only the
//!   capabilities it needs, no new privileges; and the allowlist of programs that may run.
//! * [`caps`] — turns `EPERM` into a sentence naming the missing capability and how to
//!   grant it.
//!
//! ```no_run
//! use snoopy_netns::{Namespace, NamespaceKind, in_namespace, command_in};
//!
//! # fn main() -> Result<(), snoopy_netns::Error> {
//! let net = Namespace::from_pid(4242, NamespaceKind::Net)?;
//! // Read the pod's interfaces from inside its namespace.
//! let links = in_namespace(&net, || std::fs::read_to_string("/proc/net/dev"))??;
//! println!("{links}");
//! // Run a host tool as the pod.
//! let status = command_in(&[&net], "ip").args(["-o", "addr"]).status()
//!     .expect("ip runs");
//! assert!(status.success());
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

pub mod caps;
mod command;
mod error;
mod namespace;
pub mod privileges;
mod sys;
mod thread;

pub use command::command_in;
pub use error::{Error, Result, SyscallError};
pub use namespace::{Namespace, NamespaceKind};
pub use thread::in_namespace;
