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

/// `prctl(option, arg2, 0, 0, 0)`.
pub(crate) fn prctl(option: libc::c_int, arg2: libc::c_ulong) -> io::Result<()> {
    // SAFETY: the options used by this crate take integers only and read no memory of ours.
    let rc = unsafe { libc::prctl(option, arg2, 0 as libc::c_ulong, 0 as libc::c_ulong, 0) };
    check(libc::c_long::from(rc))
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
