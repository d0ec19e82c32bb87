//! `snoopy-ebpf`: TCP connection monitoring of chosen network namespaces with eBPF — every
//! connect, accept, refusal, unanswered SYN, close (with its byte counts), reset,
//! retransmission and listen, each with the process behind it (pid, comm, uid, cgroup).
//!
//! Its place in Snoopy: packet capture (`snoopy-capture`) shows *what* crossed the wire, per
//! packet; this crate shows *which process* opened or accepted a connection, at a cost per
//! connection state change rather than per packet, so it can run all the time. `podtracer
//! monitor` is its command line.
//!
//! The parts:
//! - the kernel programs (`ebpf/`, Rust for the BPF target, built by `build.rs` with aya-build
//!   and bpf-linker) hook TCP's state changes through BTF tracepoints (tp_btf: no tracefs, no
//!   kprobes) and filter in the kernel: a socket is reported only when its network
//!   namespace's inode is in the `TARGETS` map;
//! - [`offsets`]: the kernel struct offsets the programs need, read from the running kernel's
//!   BTF (`/sys/kernel/btf/vmlinux`) at load time, since Rust eBPF has no CO-RE relocations;
//! - [`Monitor`]: loads and attaches the programs, keeps the watched namespaces
//!   ([`Monitor::watch`]), reads [`Event`]s from the ring buffer and counts the lost ones;
//! - [`event`]: the typed events (serde), decoded from the kernel's records.
//!
//! ```no_run
//! use std::time::Duration;
//! use snoopy_ebpf::{Monitor, netns_inode};
//!
//! let mut monitor = Monitor::load()?; // offsets from BTF, load, attach
//! monitor.watch(netns_inode("/proc/4242/ns/net".as_ref())?)?;
//! loop {
//!     monitor.poll(Duration::from_millis(100), |event| println!("{event:?}"))?;
//!     if monitor.lost()? > 0 {
//!         eprintln!("the reader fell behind");
//!     }
//! }
//! # Ok::<(), snoopy_ebpf::Error>(())
//! ```
//!
//! Needs a kernel with BTF (`CONFIG_DEBUG_INFO_BTF`, Linux ≥ 5.5 for tp_btf), and root (or
//! CAP_BPF + CAP_PERFMON + CAP_SYS_ADMIN).

pub mod error;
pub mod event;
mod monitor;
pub mod offsets;
mod sys;

pub use error::Error;
pub use event::{Event, EventKind, Process};
pub use monitor::{Monitor, netns_inode};
pub use snoopy_ebpf_common::{MAX_SOCKETS, MAX_TARGETS, RING_BYTES};

/// The kernel programs' object file, built by `build.rs`.
pub(crate) static PROGRAMS: &[u8] =
    aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/snoopy-ebpf-programs"));
