//! Building commands that run inside namespaces.

use std::ffi::OsStr;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::Command;

use crate::{Namespace, NamespaceKind, sys};

/// A [`Command`] for `program` that enters `namespaces` between `fork` and `exec`.
///
/// This is how a host tool (`tcpdump`, `ip`, `ss`, `iperf3`) runs "as the pod": same binary
/// from the host, the pod's network (and, if given, other) namespaces. Arguments are added
/// with [`Command::arg`]/[`Command::args`] and reach the program as argv — nothing goes
/// through a shell.
///
/// The namespace fds are duplicated into the command, so the handles may be dropped before
/// it is spawned. A user namespace is entered first, a mount namespace last. If entering
/// fails, `spawn`/`status`/`output` return that error (`EPERM`: the caller lacks
/// `CAP_SYS_ADMIN`, see [`crate::caps::explain`]).
///
/// Entering a PID namespace affects the program's children, not the program itself.
pub fn command_in(namespaces: &[&Namespace], program: impl AsRef<OsStr>) -> Command {
    let mut ordered: Vec<&Namespace> = namespaces.to_vec();
    ordered.sort_by_key(|ns| match ns.kind() {
        NamespaceKind::User => 0,
        NamespaceKind::Mnt => 2,
        _ => 1,
    });
    let mut command = Command::new(program);
    let fds: std::io::Result<Vec<(OwnedFd, libc::c_int)>> = ordered
        .iter()
        .map(|ns| Ok((ns.as_fd().try_clone_to_owned()?, ns.kind().clone_flag())))
        .collect();
    match fds {
        Ok(fds) => {
            let enter = move || -> std::io::Result<()> {
                for (fd, flag) in &fds {
                    sys::setns(fd.as_fd(), *flag)?;
                }
                Ok(())
            };
            // SAFETY: the closure runs in the forked child before exec. It only calls setns
            // (async-signal-safe) on fds it owns, and allocates nothing.
            unsafe { command.pre_exec(enter) };
        }
        Err(e) => {
            // Duplicating an fd failed (fd limit): make spawning fail with that error rather
            // than running the program in the wrong namespace.
            let errno = e.raw_os_error().unwrap_or(libc::EMFILE);
            // SAFETY: the closure only builds an io::Error from an integer in the child.
            unsafe { command.pre_exec(move || Err(std::io::Error::from_raw_os_error(errno))) };
        }
    }
    command
}
