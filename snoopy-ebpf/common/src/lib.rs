//! The records that snoopy-ebpf's kernel programs and its loader share, laid out the same on
//! both sides (`repr(C)`, no padding holes): one owner for the contract between the eBPF
//! object and the library that reads it.
//!
//! The kernel programs (`snoopy-ebpf/ebpf`, built for the BPF target) write [`RawEvent`]s into
//! a ring buffer and keep a [`SockOwner`] per socket; the loader (`snoopy-ebpf`, feature
//! `user`) fills [`Offsets`] from the kernel's BTF before loading and turns raw events into
//! typed ones.

#![no_std]

/// Most network namespaces that can be watched at once (the size of the `TARGETS` map).
pub const MAX_TARGETS: u32 = 4096;
/// Most sockets whose owning process is remembered at once (the `SOCKETS` LRU map): the
/// oldest entry is evicted beyond it, and that socket's later events carry no process.
pub const MAX_SOCKETS: u32 = 65536;
/// Most listening sockets whose process is remembered at once (the `LISTENERS` LRU map).
pub const MAX_LISTENERS: u32 = 8192;
/// Slots of the `LOST` per-CPU array: one per program, summed by the loader.
pub const LOST_SLOTS: u32 = 3;
/// Size of the event ring buffer in bytes (a power of two multiple of the page size); at 104
/// bytes an event (+ 8 of ring header), 9,362 events fit before the reader must catch up.
pub const RING_BYTES: u32 = 1 << 20;

/// What happened to a connection ([`RawEvent::kind`]).
pub mod kind {
    /// A process called connect() (sent once the source port is known, stamped with the
    /// time of the call).
    pub const CONNECT: u8 = 1;
    /// An outbound connection completed its handshake.
    pub const ESTABLISHED: u8 = 2;
    /// An outbound connection was refused: a RST answered its SYN.
    pub const REFUSED: u8 = 3;
    /// An outbound connection closed while its SYN was unanswered (timeout or given up).
    pub const UNANSWERED: u8 = 4;
    /// An inbound connection completed its handshake on a listening socket (it is ready for
    /// accept()); the process is the one that listens.
    pub const ACCEPT: u8 = 5;
    /// A connection closed; the event carries its byte counts.
    pub const CLOSE: u8 = 6;
    /// A RST was received on an open connection.
    pub const RESET: u8 = 7;
    /// A segment was retransmitted.
    pub const RETRANSMIT: u8 = 8;
    /// A process started listening on a port.
    pub const LISTEN: u8 = 9;
}

/// [`SockOwner::flags`]: a RST arrived while the socket was in SYN_SENT.
pub const OWNER_RESET_SEEN: u32 = 1;
/// [`SockOwner::flags`]: the process fields are valid (the socket was seen at connect,
/// accept or listen time, in the process's own context).
pub const OWNER_KNOWN: u32 = 2;
/// [`SockOwner::flags`]: connect() was seen, its CONNECT event not sent yet (the source port
/// is chosen after the state change to SYN_SENT).
pub const OWNER_CONNECT_PENDING: u32 = 4;

/// One event, as the kernel writes it into the ring buffer.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RawEvent {
    /// `bpf_ktime_get_ns()`: CLOCK_MONOTONIC nanoseconds.
    pub timestamp_ns: u64,
    /// The process's cgroup (v2) id.
    pub cgroup_id: u64,
    /// Payload bytes sent, each once (`tcp_sock.bytes_sent - bytes_retrans`), on CLOSE only.
    pub bytes_sent: u64,
    /// Payload bytes received (`tcp_sock.bytes_received`, less the FIN it counts), on CLOSE only.
    pub bytes_received: u64,
    /// Process id (the kernel's tgid).
    pub pid: u32,
    /// Thread id (the kernel's pid).
    pub tid: u32,
    /// User id of the process.
    pub uid: u32,
    /// Inode number of the socket's network namespace.
    pub netns: u32,
    /// Local address: 4 bytes for IPv4, 16 for IPv6 (network order).
    pub saddr: [u8; 16],
    /// Remote address, as `saddr`.
    pub daddr: [u8; 16],
    /// The process's command name (NUL-padded).
    pub comm: [u8; 16],
    /// Local port (host order).
    pub sport: u16,
    /// Remote port (host order).
    pub dport: u16,
    /// Address family: 2 (AF_INET) or 10 (AF_INET6).
    pub family: u16,
    /// One of [`kind`].
    pub kind: u8,
    /// Whether the process fields are valid ([`OWNER_KNOWN`] was set).
    pub process_known: u8,
}

/// The process that owns a socket, remembered at connect/accept/listen time: the later
/// events of a connection (ESTABLISHED, CLOSE, retransmissions) run in softirq context, where
/// the current task is whichever one the interrupt hit.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SockOwner {
    /// See [`RawEvent::cgroup_id`].
    pub cgroup_id: u64,
    /// See [`RawEvent::pid`].
    pub pid: u32,
    /// See [`RawEvent::tid`].
    pub tid: u32,
    /// See [`RawEvent::uid`].
    pub uid: u32,
    /// [`OWNER_RESET_SEEN`], [`OWNER_KNOWN`], [`OWNER_CONNECT_PENDING`].
    pub flags: u32,
    /// When the process was seen (connect/listen time), `bpf_ktime_get_ns()`.
    pub since_ns: u64,
    /// See [`RawEvent::comm`].
    pub comm: [u8; 16],
    /// The socket's local port once known: at CLOSE the kernel has already released it.
    pub sport: u16,
    /// Keeps the size a multiple of 8.
    pub _pad: [u8; 6],
}

/// Byte offsets of the kernel fields the programs read, from the start of `struct sock`
/// (or of `struct net`), taken from the running kernel's BTF at load time: Rust eBPF has no
/// CO-RE relocations, and these layouts change between kernels.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Offsets {
    /// `sock.__sk_common.skc_family` (u16).
    pub family: u32,
    /// `sock.__sk_common.skc_state` (u8).
    pub state: u32,
    /// `sock.__sk_common.skc_num`: local port, host order (u16).
    pub num: u32,
    /// `sock.__sk_common.skc_dport`: remote port, network order (u16).
    pub dport: u32,
    /// `sock.__sk_common.skc_rcv_saddr` (IPv4, 4 bytes).
    pub rcv_saddr: u32,
    /// `sock.__sk_common.skc_daddr` (IPv4, 4 bytes).
    pub daddr: u32,
    /// `sock.__sk_common.skc_v6_rcv_saddr` (16 bytes).
    pub v6_rcv_saddr: u32,
    /// `sock.__sk_common.skc_v6_daddr` (16 bytes).
    pub v6_daddr: u32,
    /// `sock.__sk_common.skc_net.net`: the `struct net *`.
    pub net: u32,
    /// `net.ns.inum`: the namespace's inode number (u32).
    pub net_inum: u32,
    /// `sock.sk_protocol` (u16).
    pub protocol: u32,
    /// `tcp_sock.bytes_received` (u64): payload bytes received, plus one for a received FIN.
    pub bytes_received: u32,
    /// `tcp_sock.bytes_sent` (u64): payload bytes sent, retransmissions included.
    pub bytes_sent: u32,
    /// `tcp_sock.bytes_retrans` (u64): payload bytes retransmitted.
    pub bytes_retrans: u32,
    /// `sock.__sk_common.skc_flags` (`sk_flags`, unsigned long).
    pub flags: u32,
    /// The bit of `SOCK_DONE` in `sk_flags` (enum sock_flags): set when a FIN arrived.
    pub done_bit: u32,
}

#[cfg(feature = "user")]
// SAFETY: repr(C), only integer fields and integer arrays, no padding (sizes are multiples
// of 8 with every field aligned): every bit pattern is a valid value.
unsafe impl aya::Pod for RawEvent {}
#[cfg(feature = "user")]
// SAFETY: as RawEvent: repr(C), integers only, no padding.
unsafe impl aya::Pod for SockOwner {}
#[cfg(feature = "user")]
// SAFETY: as RawEvent: repr(C), u32 fields only, no padding.
unsafe impl aya::Pod for Offsets {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_layouts_have_no_padding() {
        assert_eq!(
            core::mem::size_of::<RawEvent>(),
            4 * 8 + 4 * 4 + 3 * 16 + 4 * 2
        );
        assert_eq!(core::mem::size_of::<SockOwner>(), 8 + 4 * 4 + 8 + 16 + 8);
        assert_eq!(core::mem::size_of::<Offsets>(), 16 * 4);
    }
}
