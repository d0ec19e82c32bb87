//! The one system call aya 0.14 does not wrap: reading a program's `recursion_misses`, the runs
//! the kernel skipped because the program was already running on that CPU (a softirq that
//! interrupted it hit the same hook). Each skipped run may have been an event.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

use aya_obj::generated::{bpf_attr, bpf_cmd, bpf_prog_info};

/// `bpf(BPF_OBJ_GET_INFO_BY_FD)` on a program: its recursion misses so far.
pub(crate) fn recursion_misses(program: BorrowedFd<'_>) -> io::Result<u64> {
    // SAFETY: bpf_prog_info is plain integers (bindgen of the kernel's struct): all-zero is a
    // valid value, and the kernel wants unset fields zeroed.
    let mut info: bpf_prog_info = unsafe { std::mem::zeroed() };
    // SAFETY: as above, bpf_attr is a union of plain-integer structs; zeroed is valid.
    let mut attr: bpf_attr = unsafe { std::mem::zeroed() };
    attr.info.bpf_fd = program.as_raw_fd() as u32;
    attr.info.info_len = std::mem::size_of::<bpf_prog_info>() as u32;
    attr.info.info = (&raw mut info) as u64;
    // SAFETY: `attr` is a valid bpf_attr for BPF_OBJ_GET_INFO_BY_FD whose `info` points at
    // `info`, which lives (and is writable, info_len bytes) for the duration of the call; the
    // fd is borrowed, so it stays open.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            bpf_cmd::BPF_OBJ_GET_INFO_BY_FD as libc::c_long,
            &raw mut attr,
            std::mem::size_of::<bpf_attr>(),
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(info.recursion_misses)
}
