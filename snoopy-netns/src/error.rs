//! The crate's error type, and [`SyscallError`], the failed-system-call error that
//! snoopy-capture shares.

use std::fmt;
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

    /// A system call failed: for lack of a capability (see
    /// [`SyscallError::missing_capabilities`]) or for another reason.
    #[error(transparent)]
    Syscall(#[from] SyscallError),

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

/// A failed system call: which call, on what, the kernel's error, and how to fix it.
///
/// Shown as `setns(/proc/4242/ns/net): permission denied — needs CAP_SYS_ADMIN; …` when
/// the kernel refused for lack of a capability, else as `call(target): kernel error`,
/// followed by a hint when one is known. The kernel's error stays the
/// [`source`](std::error::Error::source).
///
/// Both snoopy-netns (namespaces, privileges) and snoopy-capture (packet sockets) report
/// failed calls with it, so callers handle one type and users read one format.
#[derive(Debug, thiserror::Error)]
pub struct SyscallError {
    call: &'static str,
    target: String,
    missing: Vec<Capability>,
    hint: Option<&'static str>,
    #[source]
    source: io::Error,
}

impl SyscallError {
    /// `call` (e.g. `setns`, `setsockopt(PACKET_RX_RING)`) failed on `target` (a path, an
    /// interface) with `source`.
    pub fn new(call: &'static str, target: impl Into<String>, source: io::Error) -> Self {
        SyscallError {
            call,
            target: target.into(),
            missing: Vec::new(),
            hint: None,
            source,
        }
    }

    /// The call needs `caps`: a permission error (`EPERM`, `EACCES`) names those of them
    /// this process lacks (all of them when it seems to have every one — the kernel refused
    /// anyway, e.g. at a user namespace boundary) and how to grant them.
    pub fn needing(mut self, caps: &[Capability]) -> Self {
        if !caps.is_empty()
            && matches!(self.source.raw_os_error(), Some(libc::EPERM | libc::EACCES))
        {
            self.missing = crate::caps::missing_of(caps);
        }
        self
    }

    /// How to fix the failure, shown after the kernel's error.
    pub fn with_hint(mut self, hint: &'static str) -> Self {
        self.hint = Some(hint);
        self
    }

    /// The refusal of a check made before any call: this process lacks `missing` for
    /// `what` (shown as `capability check(what): permission denied — …`).
    pub(crate) fn missing_capabilities_for(what: &str, missing: Vec<Capability>) -> Self {
        SyscallError {
            missing,
            ..SyscallError::new(
                "capability check",
                what,
                io::Error::from_raw_os_error(libc::EPERM),
            )
        }
    }

    /// The system call that failed, e.g. `setns`.
    pub fn call(&self) -> &'static str {
        self.call
    }

    /// What it was called on, e.g. `/proc/4242/ns/net`.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// The capabilities that would have allowed the call; empty when the failure was not
    /// a permission error (or the call's needs are not known).
    pub fn missing_capabilities(&self) -> &[Capability] {
        &self.missing
    }

    /// The error the kernel returned.
    pub fn io_error(&self) -> &io::Error {
        &self.source
    }
}

impl fmt::Display for SyscallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}({}): ", self.call, self.target)?;
        if !self.missing.is_empty() {
            return write!(
                f,
                "permission denied — {}",
                crate::caps::explain(&self.missing)
            );
        }
        write!(f, "{}", self.source)?;
        if let Some(hint) = self.hint {
            write!(f, " — {hint}")?;
        }
        Ok(())
    }
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
        Error::Syscall(SyscallError::new(call, target, source).needing(needs))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_call_names_the_call_the_target_and_the_fix() {
        let eperm = || io::Error::from_raw_os_error(libc::EPERM);
        let plain = SyscallError::new("bind(AF_PACKET)", "eth0", eperm());
        assert_eq!(
            plain.to_string(),
            format!("bind(AF_PACKET)(eth0): {}", eperm())
        );
        let hinted = SyscallError::new("setsockopt(PACKET_RX_RING)", "eth0", eperm())
            .with_hint("try a smaller buffer (-B)");
        assert!(
            hinted.to_string().ends_with(" — try a smaller buffer (-B)"),
            "{hinted}"
        );
        let denied =
            SyscallError::new("setns", "/proc/1/ns/net", eperm()).needing(&[Capability::SysAdmin]);
        assert_eq!(denied.missing_capabilities(), [Capability::SysAdmin]);
        assert!(
            denied
                .to_string()
                .starts_with("setns(/proc/1/ns/net): permission denied — needs CAP_SYS_ADMIN"),
            "{denied}"
        );
        // The kernel's error stays reachable as the source.
        let err = Error::from(denied);
        let source = std::error::Error::source(&err).expect("a source");
        assert_eq!(
            source
                .downcast_ref::<io::Error>()
                .and_then(io::Error::raw_os_error),
            Some(libc::EPERM)
        );
        // Anything but a permission error names no capability.
        let enoent = SyscallError::new("open", "/x", io::Error::from_raw_os_error(libc::ENOENT))
            .needing(&[Capability::SysPtrace]);
        assert!(enoent.missing_capabilities().is_empty());
    }
}
