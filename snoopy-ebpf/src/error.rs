//! What can go wrong, each variant naming the failed step and what to do about it.

use std::path::PathBuf;

/// An error of [`crate::Monitor`] or [`crate::offsets`].
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The kernel's BTF could not be read.
    #[error(
        "reading the kernel's BTF at {path} failed: {reason}; the monitor needs a kernel built with CONFIG_DEBUG_INFO_BTF=y (most distribution kernels since 5.4)"
    )]
    Btf {
        /// The BTF file.
        path: PathBuf,
        /// Why it could not be used.
        reason: String,
    },
    /// A struct member the programs read is not in the kernel's BTF.
    #[error(
        "the kernel's BTF has no {what}: this kernel's layout is not supported by snoopy-ebpf (please report it with `uname -r`)"
    )]
    MissingField {
        /// `struct.member.member…`.
        what: String,
    },
    /// The eBPF object could not be loaded (maps created, globals set).
    #[error(
        "loading the eBPF programs failed: {source}; run as root (or with CAP_BPF, CAP_PERFMON and CAP_SYS_ADMIN)"
    )]
    Load {
        /// aya's error.
        #[source]
        source: aya::EbpfError,
    },
    /// A program could not be verified, loaded or attached.
    #[error(
        "attaching the eBPF program {program} to {hook} failed: {source}; the kernel needs BTF tracepoints (tp_btf: Linux ≥ 5.5, CONFIG_DEBUG_INFO_BTF), and the process root"
    )]
    Attach {
        /// The program's name.
        program: &'static str,
        /// The kernel function or tracepoint.
        hook: &'static str,
        /// aya's error.
        #[source]
        source: aya::programs::ProgramError,
    },
    /// A map operation failed.
    #[error("{what} failed: {source}")]
    Map {
        /// The operation, e.g. "adding netns 4026531840 to TARGETS".
        what: String,
        /// aya's error.
        #[source]
        source: aya::maps::MapError,
    },
    /// Reading a program's statistics failed.
    #[error(
        "reading the statistics of the eBPF program {program} (bpf BPF_OBJ_GET_INFO_BY_FD) failed: {source}"
    )]
    Info {
        /// The program's name.
        program: &'static str,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The object lacks a map or program this crate expects (a build mismatch).
    #[error(
        "the eBPF object has no {0}: snoopy-ebpf was built from mismatched sources; rebuild it"
    )]
    Missing(&'static str),
    /// A network namespace file could not be read.
    #[error(
        "reading the network namespace {path} failed: {source}; give a /proc/PID/ns/net or /var/run/netns/NAME path of a live namespace"
    )]
    Netns {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// More namespaces than the kernel map holds.
    #[error("at most {max} network namespaces can be watched at once")]
    TooManyTargets {
        /// [`crate::MAX_TARGETS`].
        max: u32,
    },
    /// Waiting on the ring buffer failed.
    #[error("poll on the event ring buffer failed: {0}")]
    Poll(#[source] std::io::Error),
    /// A record from the kernel did not decode.
    #[error("an event record from the kernel did not decode: {0}")]
    Decode(String),
}
