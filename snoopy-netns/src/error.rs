//! The crate's error type.

use std::io;
use std::path::PathBuf;

use crate::caps::Capability;

/// A `Result` whose error is this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong while opening or entering a namespace.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The process whose namespace was asked for does not exist (or is not visible from
    /// this PID namespace).
    #[error(
        "no process with PID {pid} (looked for /proc/{pid}); is it running, and is this the host PID namespace (hostPID: true in a pod)?"
    )]
    NoSuchProcess {
        /// The PID that was asked for.
        pid: u32,
    },

    /// The path exists but is not a namespace file of the expected kind.
    #[error(
        "{path} is not a {expected} namespace ({found}); pass /proc/PID/ns/{expected} or a file bind-mounted by `ip netns add`"
    )]
    NotANamespace {
        /// The path that was opened.
        path: PathBuf,
        /// The kind that was expected.
        expected: &'static str,
        /// What was found instead, in words.
        found: String,
    },

    /// A system call failed because a capability is missing.
    #[error(
        "{call}({target}): permission denied — {}",
        crate::caps::explain(missing)
    )]
    MissingCapability {
        /// The system call that failed, e.g. `setns`.
        call: &'static str,
        /// What it was called on, e.g. `/proc/4242/ns/net`.
        target: String,
        /// The capabilities that would have allowed it.
        missing: Vec<Capability>,
        /// The error the kernel returned.
        #[source]
        source: io::Error,
    },

    /// Any other failed system call.
    #[error("{call}({target}): {source}")]
    Syscall {
        /// The system call that failed, e.g. `open`.
        call: &'static str,
        /// What it was called on.
        target: String,
        /// The error the kernel returned.
        #[source]
        source: io::Error,
    },

    /// This kind of namespace cannot be entered from a thread of a multi-threaded process.
    #[error(
        "a {kind} namespace cannot be entered by one thread of a multi-threaded process; use command_in to run a program in it instead"
    )]
    NotEnterableFromThread {
        /// The namespace kind.
        kind: &'static str,
    },

    /// The closure run inside the namespace panicked.
    #[error("the closure run inside {target} panicked")]
    Panicked {
        /// The namespace it ran in.
        target: String,
    },
}

impl Error {
    /// Builds the error for a failed call, recognising permission errors and naming the
    /// capabilities that would have allowed the call.
    pub(crate) fn syscall(
        call: &'static str,
        target: impl Into<String>,
        source: io::Error,
        needs: &[Capability],
    ) -> Self {
        let target = target.into();
        match source.raw_os_error() {
            Some(libc::EPERM) | Some(libc::EACCES) if !needs.is_empty() => {
                Error::MissingCapability {
                    call,
                    target,
                    missing: crate::caps::missing_of(needs),
                    source,
                }
            }
            _ => Error::Syscall {
                call,
                target,
                source,
            },
        }
    }
}
