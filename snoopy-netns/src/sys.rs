//! The only place in this crate that makes system calls.
//!
//! Every function here takes owned/borrowed fds, never bare integers, and returns
//! [`std::io::Error`] so the callers can name the failed call. Where nix has a safe wrapper
//! it is used (`setns`, `unshare`, `fstatfs`, `prctl(PR_SET_KEEPCAPS)`,
//! `prctl(PR_SET_NO_NEW_PRIVS)`); nix's errors are plain errno values, so converting them
//! allocates nothing, which matters for the steps that run between `fork` and `exec`.
//!
//! What stays `libc`, and why:
//!
//! * `ioctl(NS_GET_NSTYPE)`: nix has no wrapper for it; its `ioctl_none!` macro spells the
//!   request number, but the function it generates takes a raw fd and is `unsafe`.
//! * `prctl(PR_CAPBSET_DROP)` and `prctl(PR_CAP_AMBIENT, …)`: nix does not wrap them. The
//!   `caps` crate does, but it runs in the forked child here, where it must not allocate:
//!   `caps` builds `HashSet`s and `String` errors (which also lose the errno that
//!   `Command::spawn` reports), and it only knows the capabilities it was compiled with,
//!   whereas the bounding set must lose every number up to the kernel's `cap_last_cap`.
//!   The same holds for `capset`, which `caps` splits into one call per set.
//! * `setgroups`, `setresgid`, `setresuid`: nix (like glibc) calls the libc wrappers, which
//!   signal every thread of the process to change its ids too; between `fork` and `exec`
//!   the raw system calls, which change the calling thread only, are the ones to make.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

use nix::sched::CloneFlags;
use nix::sys::statfs;

nix::ioctl_none!(
    /// `NS_GET_NSTYPE` from `<linux/nsfs.h>`: `_IO(0xb7, 0x3)`.
    ns_get_nstype,
    0xb7,
    0x3
);

/// `setns(fd, nstype)`: moves the calling thread into the namespace referred to by `fd`.
pub(crate) fn setns(fd: BorrowedFd<'_>, nstype: libc::c_int) -> io::Result<()> {
    Ok(nix::sched::setns(fd, CloneFlags::from_bits_retain(nstype))?)
}

/// `unshare(flags)` for the calling thread.
pub(crate) fn unshare(flags: libc::c_int) -> io::Result<()> {
    Ok(nix::sched::unshare(CloneFlags::from_bits_retain(flags))?)
}

/// Whether `fd` is a namespace file (its file system is nsfs, like `/proc/PID/ns/*` and
/// bind-mounted namespace files such as `/var/run/netns/NAME`).
pub(crate) fn is_nsfs(fd: BorrowedFd<'_>) -> io::Result<bool> {
    Ok(statfs::fstatfs(fd)?.filesystem_type() == statfs::NSFS_MAGIC)
}

/// The `CLONE_NEW*` type of the namespace behind `fd` (`ioctl(NS_GET_NSTYPE)`).
pub(crate) fn namespace_type(fd: BorrowedFd<'_>) -> io::Result<libc::c_int> {
    // SAFETY: NS_GET_NSTYPE takes no argument and returns the type as the result; `fd` is
    // valid for the duration of the call (BorrowedFd guarantees it).
    Ok(unsafe { ns_get_nstype(fd.as_raw_fd()) }?)
}

/// `_LINUX_CAPABILITY_VERSION_3` from `<linux/capability.h>`: 64-bit sets in two words.
const CAPABILITY_VERSION_3: u32 = 0x2008_0522;

/// `struct __user_cap_header_struct`.
#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

/// `struct __user_cap_data_struct` (two of them for version 3: bits 0-31, then 32-63).
#[repr(C)]
#[derive(Clone, Copy)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// Returns `-1` as the last OS error, anything else as success. Builds no message (no
/// allocation), so it may run between `fork` and `exec`.
fn check(rc: libc::c_long) -> io::Result<()> {
    if rc == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// `prctl(PR_CAPBSET_DROP, cap)`: removes `cap` from the bounding set.
pub(crate) fn drop_bounding(cap: libc::c_ulong) -> io::Result<()> {
    // SAFETY: PR_CAPBSET_DROP takes integers only and reads no memory of ours.
    let rc = unsafe {
        libc::prctl(
            libc::PR_CAPBSET_DROP,
            cap,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
        )
    };
    check(libc::c_long::from(rc))
}

/// `prctl(PR_SET_KEEPCAPS, keep)`: whether the permitted set survives a change of user id.
pub(crate) fn set_keepcaps(keep: bool) -> io::Result<()> {
    Ok(nix::sys::prctl::set_keepcaps(keep)?)
}

/// `prctl(PR_SET_NO_NEW_PRIVS, 1)`: no later `exec` can gain privileges.
pub(crate) fn set_no_new_privs() -> io::Result<()> {
    Ok(nix::sys::prctl::set_no_new_privs()?)
}

/// `prctl(PR_CAP_AMBIENT, op, cap, 0, 0)`.
pub(crate) fn ambient(op: libc::c_ulong, cap: libc::c_ulong) -> io::Result<()> {
    // SAFETY: PR_CAP_AMBIENT takes integers only.
    let rc = unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            op,
            cap,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
        )
    };
    check(libc::c_long::from(rc))
}

/// `setgroups(0, NULL)`: no supplementary groups. The raw system call, which changes only
/// the calling thread (glibc's wrapper signals every thread, which a forked child must not
/// rely on); between `fork` and `exec` the calling thread is the only one.
pub(crate) fn clear_groups() -> io::Result<()> {
    // SAFETY: a size of 0 and a null list: the kernel reads no memory.
    check(unsafe { libc::syscall(libc::SYS_setgroups, 0, std::ptr::null::<libc::gid_t>()) })
}

/// `setresgid(gid, gid, gid)` (raw system call, calling thread only).
pub(crate) fn set_gid(gid: libc::gid_t) -> io::Result<()> {
    // SAFETY: integers only.
    check(unsafe { libc::syscall(libc::SYS_setresgid, gid, gid, gid) })
}

/// `setresuid(uid, uid, uid)` (raw system call, calling thread only).
pub(crate) fn set_uid(uid: libc::uid_t) -> io::Result<()> {
    // SAFETY: integers only.
    check(unsafe { libc::syscall(libc::SYS_setresuid, uid, uid, uid) })
}

/// `capset`: the calling thread's effective, permitted and inheritable sets all become
/// `set` (bit N = capability N).
pub(crate) fn set_capabilities(set: u64) -> io::Result<()> {
    let mut header = CapHeader {
        version: CAPABILITY_VERSION_3,
        pid: 0,
    };
    // Truncation intended: the two 32-bit halves of the 64-bit set.
    #[allow(clippy::cast_possible_truncation)]
    let word = |half: u64| {
        let bits = half as u32;
        CapData {
            effective: bits,
            permitted: bits,
            inheritable: bits,
        }
    };
    let data = [word(set & 0xffff_ffff), word(set >> 32)];
    // SAFETY: header and data point to live, properly laid out structs for the duration of
    // the call (version 3 reads exactly two CapData); pid 0 means the calling thread.
    check(unsafe { libc::syscall(libc::SYS_capset, &raw mut header, data.as_ptr()) })
}
