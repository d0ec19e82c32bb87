//! snoopy-ebpf's kernel programs: TCP connection events of the watched network namespaces.
//!
//! Every hook is a BTF tracepoint (tp_btf): no tracefs is needed, no kprobes (this
//! project's kernels have none), and no fentry/fexit (their BPF_PROG_LOAD is refused with
//! EPERM on these machines). A socket's events are reported only when its network
//! namespace's inode is a key of `TARGETS` (the loader keeps that map): the filter runs in
//! the kernel, so sockets of other namespaces cost one map lookup per state change.
//!
//! - `inet_sock_set_state`: CLOSE→SYN_SENT runs in connect(), in the process's context: the
//!   process is remembered, and CONNECT is sent once the source port is known (with the
//!   connect time) — just before ESTABLISHED, REFUSED, UNANSWERED or a SYN retransmission.
//!   →LISTEN (in listen()) remembers the listener per (namespace, port); an inbound
//!   connection's SYN_RECV→ESTABLISHED (softirq) is ACCEPT, named after that listener.
//!   →CLOSE is CLOSE with the byte counts (or REFUSED / UNANSWERED from SYN_SENT);
//! - `tcp_receive_reset`: RESET (or marks a SYN_SENT socket as refused);
//! - `tcp_retransmit_skb`: RETRANSMIT.
//!
//! Struct offsets come from the loader (`OFFSETS`, read from the running kernel's BTF).

#![no_std]
#![no_main]

use aya_ebpf::helpers::{
    bpf_get_current_cgroup_id, bpf_get_current_comm, bpf_get_current_pid_tgid,
    bpf_get_current_uid_gid, bpf_ktime_get_ns, bpf_probe_read_kernel,
};
use aya_ebpf::macros::{btf_tracepoint, map};
use aya_ebpf::maps::{HashMap, LruHashMap, PerCpuArray, RingBuf};
use aya_ebpf::programs::BtfTracePointContext;
use snoopy_ebpf_common::{
    LOST_SLOTS, MAX_LISTENERS, MAX_SOCKETS, MAX_TARGETS, OWNER_CONNECT_PENDING, OWNER_KNOWN,
    OWNER_RESET_SEEN, Offsets, RING_BYTES, RawEvent, SockOwner, kind,
};

/// Network namespace inodes to report (value unused).
#[map]
static TARGETS: HashMap<u32, u8> = HashMap::with_max_entries(MAX_TARGETS, 0);

/// The owning process of each socket (key: the `struct sock *`).
#[map]
static SOCKETS: LruHashMap<u64, SockOwner> = LruHashMap::with_max_entries(MAX_SOCKETS, 0);

/// The process listening on each (network namespace inode << 32 | port).
#[map]
static LISTENERS: LruHashMap<u64, SockOwner> = LruHashMap::with_max_entries(MAX_LISTENERS, 0);

/// Events for the loader.
#[map]
static EVENTS: RingBuf = RingBuf::with_byte_size(RING_BYTES, 0);

/// Events dropped because the ring buffer was full: per CPU, one slot per program.
#[map]
static LOST: PerCpuArray<u64> = PerCpuArray::with_max_entries(LOST_SLOTS, 0);

/// The programs' slots in LOST.
const SET_STATE: u32 = 0;
const RECEIVE_RESET: u32 = 1;
const RETRANSMIT: u32 = 2;

/// Filled by the loader from the kernel's BTF.
#[unsafe(no_mangle)]
static OFFSETS: Offsets = Offsets {
    family: 0,
    state: 0,
    num: 0,
    dport: 0,
    rcv_saddr: 0,
    daddr: 0,
    v6_rcv_saddr: 0,
    v6_daddr: 0,
    net: 0,
    net_inum: 0,
    protocol: 0,
    bytes_received: 0,
    bytes_sent: 0,
    bytes_retrans: 0,
    flags: 0,
    done_bit: 0,
};

const AF_INET: u16 = 2;
const AF_INET6: u16 = 10;
const IPPROTO_TCP: u16 = 6;

const TCP_ESTABLISHED: i32 = 1;
const TCP_SYN_SENT: i32 = 2;
const TCP_SYN_RECV: i32 = 3;
const TCP_CLOSE: i32 = 7;
const TCP_LISTEN: i32 = 10;
const TCP_NEW_SYN_RECV: i32 = 12;

/// An offset the loader set (volatile: the compiler must not fold the zero it was built with).
#[inline(always)]
fn offset(field: &u32) -> usize {
    // SAFETY: `field` is a reference into OFFSETS, valid for the program's lifetime.
    (unsafe { core::ptr::read_volatile(field) }) as usize
}

/// Reads a `T` at `base + off` from kernel memory.
#[inline(always)]
fn read<T>(base: *const u8, off: usize) -> Option<T> {
    // SAFETY: bpf_probe_read_kernel copies through the kernel's fault-safe accessor; a bad
    // address is an error, not a fault.
    unsafe { bpf_probe_read_kernel(base.wrapping_add(off) as *const T) }.ok()
}

/// The socket's network namespace inode, when it is a watched TCP socket.
#[inline(always)]
fn watched(sk: *const u8) -> Option<u32> {
    if sk.is_null() {
        return None;
    }
    let protocol: u16 = read(sk, offset(&OFFSETS.protocol))?;
    if protocol != IPPROTO_TCP {
        return None;
    }
    let net: *const u8 = read(sk, offset(&OFFSETS.net))?;
    let inum: u32 = read(net, offset(&OFFSETS.net_inum))?;
    // SAFETY: a lookup in a map this program owns; the value is only tested for presence.
    unsafe { TARGETS.get(inum) }?;
    Some(inum)
}

/// The current process, as a socket owner.
#[inline(always)]
fn current_owner() -> SockOwner {
    let pid_tgid = bpf_get_current_pid_tgid();
    SockOwner {
        // SAFETY: a helper with no arguments, valid in every program type used here.
        cgroup_id: unsafe { bpf_get_current_cgroup_id() },
        pid: (pid_tgid >> 32) as u32,
        tid: pid_tgid as u32,
        uid: bpf_get_current_uid_gid() as u32,
        flags: OWNER_KNOWN,
        // SAFETY: a helper with no arguments.
        since_ns: unsafe { bpf_ktime_get_ns() },
        comm: bpf_get_current_comm().unwrap_or_default(),
        sport: 0,
        _pad: [0; 6],
    }
}

/// The remembered owner of a socket, if any.
#[inline(always)]
fn owner_of(sk: *const u8) -> Option<SockOwner> {
    // SAFETY: a lookup in this program's map; the value is copied out at once.
    unsafe { SOCKETS.get(sk as u64) }.copied()
}

fn remember(sk: *const u8, owner: &SockOwner) {
    // A full LRU map evicts its oldest entry: insertion does not fail for lack of room.
    let _ = SOCKETS.insert(sk as u64, owner, 0);
}

fn forget(sk: *const u8) {
    let _ = SOCKETS.remove(sk as u64);
}

fn count_lost(program: u32) {
    if let Some(slot) = LOST.get_ptr_mut(program) {
        // SAFETY: `slot` is this CPU's u64 for this program, valid while it runs. The
        // raw-tracepoint runner does not nest a program within itself on one CPU (recent
        // kernels count such runs as misses) and each program has its own slot, so this
        // read-modify-write is not interleaved (Rust's core has no 64-bit atomics on BPF).
        unsafe { *slot += 1 };
    }
}

/// Builds the event for `sk` and puts it in the ring buffer (or counts it lost).
#[inline(always)]
fn emit(
    program: u32,
    event_kind: u8,
    sk: *const u8,
    netns: u32,
    owner: Option<&SockOwner>,
    with_bytes: bool,
) {
    emit_at(program, event_kind, sk, netns, owner, with_bytes, 0);
}

/// [`emit`] with a time stamp of the past (`at_ns`, or now when 0).
#[inline(always)]
fn emit_at(
    program: u32,
    event_kind: u8,
    sk: *const u8,
    netns: u32,
    owner: Option<&SockOwner>,
    with_bytes: bool,
    at_ns: u64,
) {
    let Some(mut entry) = EVENTS.reserve::<RawEvent>(0) else {
        count_lost(program);
        return;
    };
    let at_ns = if at_ns != 0 {
        at_ns
    } else {
        // SAFETY: a helper with no arguments.
        unsafe { bpf_ktime_get_ns() }
    };
    // Filled in place: a RawEvent on the stack, per inlined call site, overran the 512-byte
    // BPF stack.
    let event = entry.as_mut_ptr();
    // SAFETY: `event` points at the reserved, exclusively owned ring-buffer record of
    // size_of::<RawEvent>() bytes; zeroing first makes every field initialised.
    let event = unsafe {
        event.write_bytes(0, 1);
        &mut *event
    };
    event.timestamp_ns = at_ns;
    event.netns = netns;
    event.kind = event_kind;
    if let Some(owner) = owner
        && owner.flags & OWNER_KNOWN != 0
    {
        event.cgroup_id = owner.cgroup_id;
        event.pid = owner.pid;
        event.tid = owner.tid;
        event.uid = owner.uid;
        event.comm = owner.comm;
        event.process_known = 1;
    }
    let family: u16 = read(sk, offset(&OFFSETS.family)).unwrap_or(0);
    event.family = family;
    event.sport = read(sk, offset(&OFFSETS.num)).unwrap_or(0);
    if event.sport == 0
        && let Some(owner) = owner
    {
        // At CLOSE the port is already released: the one seen earlier.
        event.sport = owner.sport;
    }
    event.dport = u16::from_be(read(sk, offset(&OFFSETS.dport)).unwrap_or(0));
    if family == AF_INET {
        let s: [u8; 4] = read(sk, offset(&OFFSETS.rcv_saddr)).unwrap_or_default();
        let d: [u8; 4] = read(sk, offset(&OFFSETS.daddr)).unwrap_or_default();
        event.saddr[..4].copy_from_slice(&s);
        event.daddr[..4].copy_from_slice(&d);
    } else if family == AF_INET6 {
        event.saddr = read(sk, offset(&OFFSETS.v6_rcv_saddr)).unwrap_or_default();
        event.daddr = read(sk, offset(&OFFSETS.v6_daddr)).unwrap_or_default();
    }
    if with_bytes {
        let sent: u64 = read(sk, offset(&OFFSETS.bytes_sent)).unwrap_or(0);
        let retrans: u64 = read(sk, offset(&OFFSETS.bytes_retrans)).unwrap_or(0);
        let received: u64 = read(sk, offset(&OFFSETS.bytes_received)).unwrap_or(0);
        let flags: u64 = read(sk, offset(&OFFSETS.flags)).unwrap_or(0);
        // bytes_received counts a received FIN as one byte (it advances rcv_nxt).
        let fin = (flags >> (offset(&OFFSETS.done_bit) & 63)) & 1;
        event.bytes_sent = sent.saturating_sub(retrans);
        event.bytes_received = received.saturating_sub(fin);
    }
    entry.submit(0);
}

/// Sends the CONNECT a socket owes (its source port is known by now), at connect time.
#[inline(always)]
fn flush_connect(program: u32, sk: *const u8, netns: u32, owner: &mut Option<SockOwner>) {
    if let Some(o) = owner
        && o.flags & OWNER_CONNECT_PENDING != 0
    {
        o.flags &= !OWNER_CONNECT_PENDING;
        let port: u16 = read(sk, offset(&OFFSETS.num)).unwrap_or(0);
        if port != 0 {
            o.sport = port;
        }
        emit_at(
            program,
            kind::CONNECT,
            sk,
            netns,
            Some(o),
            false,
            o.since_ns,
        );
        remember(sk, o);
    }
}

#[inline(always)]
fn listener_key(sk: *const u8, netns: u32) -> u64 {
    let port: u16 = read(sk, offset(&OFFSETS.num)).unwrap_or(0);
    ((netns as u64) << 32) | port as u64
}

/// Every TCP state change: `(const struct sock *sk, int oldstate, int newstate)`.
#[btf_tracepoint(function = "inet_sock_set_state")]
pub fn snoopy_set_state(ctx: BtfTracePointContext) -> u32 {
    let sk: *const u8 = ctx.arg(0);
    let old: i32 = ctx.arg(1);
    let new: i32 = ctx.arg(2);
    let Some(netns) = watched(sk) else {
        return 0;
    };
    if new == TCP_SYN_SENT {
        // connect(), in the caller's context; the source port may not be chosen yet.
        let mut owner = current_owner();
        owner.flags |= OWNER_CONNECT_PENDING;
        remember(sk, &owner);
    } else if new == TCP_LISTEN {
        // listen(), in the caller's context.
        let owner = current_owner();
        let _ = LISTENERS.insert(listener_key(sk, netns), owner, 0);
        emit(SET_STATE, kind::LISTEN, sk, netns, Some(&owner), false);
    } else if old == TCP_SYN_SENT && new == TCP_ESTABLISHED {
        let mut owner = owner_of(sk);
        flush_connect(SET_STATE, sk, netns, &mut owner);
        emit(
            SET_STATE,
            kind::ESTABLISHED,
            sk,
            netns,
            owner.as_ref(),
            false,
        );
    } else if old == TCP_SYN_RECV && new == TCP_ESTABLISHED {
        // An inbound connection, ready for accept(): its process is the listener's.
        // SAFETY: a lookup in this program's map; the value is copied out at once.
        let mut owner = unsafe { LISTENERS.get(listener_key(sk, netns)) }.copied();
        if let Some(owner) = &mut owner {
            owner.sport = read(sk, offset(&OFFSETS.num)).unwrap_or(0);
            remember(sk, owner);
        }
        emit(SET_STATE, kind::ACCEPT, sk, netns, owner.as_ref(), false);
    } else if old == TCP_SYN_SENT && new == TCP_CLOSE {
        let mut owner = owner_of(sk);
        flush_connect(SET_STATE, sk, netns, &mut owner);
        let refused = owner.is_some_and(|o| o.flags & OWNER_RESET_SEEN != 0);
        let event_kind = if refused {
            kind::REFUSED
        } else {
            kind::UNANSWERED
        };
        emit(SET_STATE, event_kind, sk, netns, owner.as_ref(), false);
        forget(sk);
    } else if new == TCP_CLOSE {
        if old == TCP_LISTEN {
            let _ = LISTENERS.remove(listener_key(sk, netns));
        } else if old != TCP_SYN_RECV && old != TCP_NEW_SYN_RECV {
            emit(
                SET_STATE,
                kind::CLOSE,
                sk,
                netns,
                owner_of(sk).as_ref(),
                true,
            );
        }
        forget(sk);
    }
    0
}

/// A RST arrived: `(const struct sock *sk)`.
#[btf_tracepoint(function = "tcp_receive_reset")]
pub fn snoopy_receive_reset(ctx: BtfTracePointContext) -> u32 {
    let sk: *const u8 = ctx.arg(0);
    let Some(netns) = watched(sk) else {
        return 0;
    };
    let state: u8 = read(sk, offset(&OFFSETS.state)).unwrap_or(0);
    if state as i32 == TCP_SYN_SENT {
        // The close that follows reports it as REFUSED.
        let mut owner = owner_of(sk).unwrap_or_default();
        owner.flags |= OWNER_RESET_SEEN;
        // The port is released by the close that follows: keep it for REFUSED.
        let port: u16 = read(sk, offset(&OFFSETS.num)).unwrap_or(0);
        if port != 0 {
            owner.sport = port;
        }
        remember(sk, &owner);
    } else {
        emit(
            RECEIVE_RESET,
            kind::RESET,
            sk,
            netns,
            owner_of(sk).as_ref(),
            false,
        );
    }
    0
}

/// A segment was retransmitted: `(const struct sock *sk, const struct sk_buff *skb, ...)`.
#[btf_tracepoint(function = "tcp_retransmit_skb")]
pub fn snoopy_retransmit(ctx: BtfTracePointContext) -> u32 {
    let sk: *const u8 = ctx.arg(0);
    if let Some(netns) = watched(sk) {
        let mut owner = owner_of(sk);
        flush_connect(RETRANSMIT, sk, netns, &mut owner);
        emit(
            RETRANSMIT,
            kind::RETRANSMIT,
            sk,
            netns,
            owner.as_ref(),
            false,
        );
    }
    0
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo<'_>) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 4] = *b"GPL\0";
