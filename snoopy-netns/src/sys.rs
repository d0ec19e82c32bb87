//! The only place in this crate that makes raw system calls.
//!
//! Every function here takes and returns owned/borrowed fds, never bare integers, and turns
//! `-1` into an [`std::io::Error`] so the callers can name the failed call.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

/// `NS_GET_NSTYPE` from `<linux/nsfs.h>`: `_IO(0xb7, 0x3)`.
const NS_GET_NSTYPE: libc::c_ulong = 0xb703;

/// `NSFS_MAGIC` from `<linux/magic.h>`: the file-system type of `/proc/PID/ns/*` and of
/// bind-mounted namespace files such as `/var/run/netns/NAME`.
const NSFS_MAGIC: i64 = 0x6e73_6673;

/// `setns(fd, nstype)`: moves the calling thread into the namespace referred to by `fd`.
pub(crate) fn setns(fd: BorrowedFd<'_>, nstype: libc::c_int) -> io::Result<()> {
    // SAFETY: `fd` is a valid open descriptor for the duration of the call (BorrowedFd
    // guarantees it) and setns reads no memory of ours.
    let rc = unsafe { libc::setns(fd.as_raw_fd(), nstype) };
    if rc == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `unshare(flags)` for the calling thread.
pub(crate) fn unshare(flags: libc::c_int) -> io::Result<()> {
    // SAFETY: unshare takes only an integer and changes kernel-side state of this thread.
    let rc = unsafe { libc::unshare(flags) };
    if rc == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Whether `fd` is a namespace file (its file system is nsfs).
pub(crate) fn is_nsfs(fd: BorrowedFd<'_>) -> io::Result<bool> {
    let mut st = std::mem::MaybeUninit::<libc::statfs>::uninit();
    // SAFETY: `st` points to writable memory of the size fstatfs expects; fd is valid.
    let rc = unsafe { libc::fstatfs(fd.as_raw_fd(), st.as_mut_ptr()) };
    if rc == -1 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fstatfs returned 0, so it initialised the whole struct.
    let st = unsafe { st.assume_init() };
    #[allow(clippy::unnecessary_cast)] // f_type's width differs between architectures
    Ok(st.f_type as i64 == NSFS_MAGIC)
}

/// The `CLONE_NEW*` type of the namespace behind `fd` (`ioctl(NS_GET_NSTYPE)`).
pub(crate) fn namespace_type(fd: BorrowedFd<'_>) -> io::Result<libc::c_int> {
    // SAFETY: NS_GET_NSTYPE takes no argument and returns the type as the result; fd is valid.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), NS_GET_NSTYPE as _) };
    if rc == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(rc)
}
