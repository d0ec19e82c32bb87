//! Running a closure inside a namespace on a dedicated thread.

use crate::{Error, Namespace, NamespaceKind, Result, sys};

/// Runs `f` on a new thread that first enters `ns`, and returns what `f` returned.
///
/// The thread exits when `f` returns, so no thread ever goes back into a pool (or back to
/// the caller) while in the wrong namespace. Resources created inside — above all sockets —
/// keep the namespace they were created in, which is how a capture socket is opened inside a
/// pod and then read from an ordinary thread.
///
/// Mount namespaces work too (the thread first unshares its file-system attributes); user
/// namespaces cannot be entered by one thread of a multi-threaded process: use
/// [`crate::command_in`] for those.
pub fn in_namespace<T, F>(ns: &Namespace, f: F) -> Result<T>
where
    F: FnOnce() -> T + Send,
    T: Send,
{
    if ns.kind() == NamespaceKind::User {
        return Err(Error::NotEnterableFromThread { kind: "user" });
    }
    std::thread::scope(|scope| {
        let handle = std::thread::Builder::new()
            .name(format!("netns-{}", ns.inode()))
            .spawn_scoped(scope, move || -> Result<T> {
                if ns.kind() == NamespaceKind::Mnt {
                    // setns(CLONE_NEWNS) refuses a thread that shares its fs struct with others.
                    sys::unshare(libc::CLONE_FS).map_err(|e| {
                        Error::syscall("unshare(CLONE_FS)", ns.path().display().to_string(), e, &[])
                    })?;
                }
                ns.enter_current_thread()?;
                Ok(f())
            })
            .map_err(|e| {
                Error::syscall(
                    "clone (spawn thread)",
                    ns.path().display().to_string(),
                    e,
                    &[],
                )
            })?;
        handle.join().map_err(|_| Error::Panicked {
            target: ns.path().display().to_string(),
        })?
    })
}
