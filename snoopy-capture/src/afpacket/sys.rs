//! The only place in this crate that makes system calls or touches the mapped ring.
//!
//! Constants and structures come from `<linux/if_packet.h>` and `<linux/filter.h>`; they are
//! part of the kernel ABI and spelled out here so the crate does not depend on which of them
//! a given `libc` release exports. Every function returns `io::Result` so the caller can name
//! the failed call; fds are `OwnedFd`/`BorrowedFd`, never bare integers.
//!
//! Where nix has a safe wrapper it is used: `socket`, `getsockopt(SO_ERROR)`, `poll`,
//! `getifaddrs`. What stays `libc`, and why:
//!
//! * the `SOL_PACKET` options (`PACKET_VERSION`, `PACKET_RX_RING`, `PACKET_STATISTICS`, …)
//!   and `SO_ATTACH_FILTER`: nix wraps none of them. Its `sockopt_impl!` macro could
//!   declare them, but the `setsockopt` call it expands to lands in this crate just the same
//!   (so nothing gets safer), and `sock_fprog` holds a pointer to the program, which no
//!   safe signature can vouch for.
//! * `bind` with a `sockaddr_ll`: nix's `LinkAddr` can only be built from a raw pointer.
//! * the ring: `mmap`/`munmap` are `unsafe` in nix too, and reading blocks the kernel
//!   writes concurrently is the part no crate can make safe; it is confined to [`RingMap`].

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};

use nix::errno::Errno;
use nix::ifaddrs::getifaddrs;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::socket::{self, AddressFamily, SockFlag, SockType, sockopt};

use crate::filter::Instruction;

pub(crate) const SOL_PACKET: libc::c_int = 263;
pub(crate) const PACKET_ADD_MEMBERSHIP: libc::c_int = 1;
pub(crate) const PACKET_STATISTICS: libc::c_int = 6;
pub(crate) const PACKET_VERSION: libc::c_int = 10;
pub(crate) const PACKET_RX_RING: libc::c_int = 5;
pub(crate) const PACKET_RESERVE: libc::c_int = 12;
/// Linux 4.20+: the socket is not handed packets the host sends.
pub(crate) const PACKET_IGNORE_OUTGOING: libc::c_int = 23;
pub(crate) const TPACKET_V3: libc::c_int = 2;
pub(crate) const PACKET_MR_PROMISC: libc::c_ushort = 1;
pub(crate) const TP_STATUS_KERNEL: u32 = 0;
pub(crate) const TP_STATUS_USER: u32 = 1;
pub(crate) const TP_STATUS_VLAN_VALID: u32 = 1 << 4;
pub(crate) const TP_STATUS_VLAN_TPID_VALID: u32 = 1 << 6;
pub(crate) const ETH_P_ALL: u16 = 0x0003;
const SO_ATTACH_FILTER: libc::c_int = 26;

/// `struct tpacket_req3`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct TpacketReq3 {
    pub(crate) tp_block_size: u32,
    pub(crate) tp_block_nr: u32,
    pub(crate) tp_frame_size: u32,
    pub(crate) tp_frame_nr: u32,
    pub(crate) tp_retire_blk_tov: u32,
    pub(crate) tp_sizeof_priv: u32,
    pub(crate) tp_feature_req_word: u32,
}

/// `struct tpacket_stats_v3`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct TpacketStatsV3 {
    pub(crate) tp_packets: u32,
    pub(crate) tp_drops: u32,
    pub(crate) tp_freeze_q_cnt: u32,
}

/// `struct packet_mreq`.
#[repr(C)]
struct PacketMreq {
    mr_ifindex: libc::c_int,
    mr_type: libc::c_ushort,
    mr_alen: libc::c_ushort,
    mr_address: [u8; 8],
}

/// `struct sock_filter`.
#[repr(C)]
#[derive(Clone, Copy)]
struct SockFilter {
    code: u16,
    jt: u8,
    jf: u8,
    k: u32,
}

/// `struct sock_fprog`.
#[repr(C)]
struct SockFprog {
    len: libc::c_ushort,
    filter: *const SockFilter,
}

fn check(rc: libc::c_int) -> io::Result<libc::c_int> {
    if rc == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

/// `socket(AF_PACKET, SOCK_DGRAM or SOCK_RAW, 0)`: cooked (the kernel strips the link-layer
/// header) or raw. Protocol 0 so that nothing is queued before `bind`, which happens only once
/// the ring and the filter are in place.
pub(crate) fn packet_socket(cooked: bool) -> io::Result<OwnedFd> {
    let kind = if cooked {
        SockType::Datagram
    } else {
        SockType::Raw
    };
    Ok(socket::socket(
        AddressFamily::Packet,
        kind,
        SockFlag::SOCK_CLOEXEC,
        None,
    )?)
}

fn setsockopt<T>(
    fd: BorrowedFd<'_>,
    level: libc::c_int,
    name: libc::c_int,
    value: &T,
) -> io::Result<()> {
    // SAFETY: `value` points to a live T of the size passed; the kernel copies it.
    check(unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (value as *const T).cast(),
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    })
    .map(drop)
}

/// `setsockopt(SOL_PACKET, PACKET_VERSION, TPACKET_V3)`.
pub(crate) fn set_tpacket_v3(fd: BorrowedFd<'_>) -> io::Result<()> {
    setsockopt(fd, SOL_PACKET, PACKET_VERSION, &TPACKET_V3)
}

/// `setsockopt(SOL_PACKET, PACKET_RESERVE, n)`: room before each packet in the ring, used to
/// re-insert a VLAN tag or to build a cooked header in place.
pub(crate) fn set_reserve(fd: BorrowedFd<'_>, bytes: u32) -> io::Result<()> {
    setsockopt(fd, SOL_PACKET, PACKET_RESERVE, &bytes)
}

/// `setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)`: outgoing packets never reach the
/// socket (its filter does not even run on them), as libpcap does for `-Q in`.
pub(crate) fn set_ignore_outgoing(fd: BorrowedFd<'_>) -> io::Result<()> {
    setsockopt(fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &1 as &libc::c_int)
}

/// `setsockopt(SOL_PACKET, PACKET_RX_RING, req)`.
pub(crate) fn set_rx_ring(fd: BorrowedFd<'_>, req: &TpacketReq3) -> io::Result<()> {
    setsockopt(fd, SOL_PACKET, PACKET_RX_RING, req)
}

/// `setsockopt(SOL_PACKET, PACKET_ADD_MEMBERSHIP, PACKET_MR_PROMISC)`; the membership goes away
/// with the socket, so the interface leaves promiscuous mode when the capture ends.
pub(crate) fn add_promiscuous(fd: BorrowedFd<'_>, ifindex: u32) -> io::Result<()> {
    let mreq = PacketMreq {
        mr_ifindex: ifindex as libc::c_int,
        mr_type: PACKET_MR_PROMISC,
        mr_alen: 0,
        mr_address: [0; 8],
    };
    setsockopt(fd, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mreq)
}

/// `setsockopt(SOL_SOCKET, SO_ATTACH_FILTER, program)`.
pub(crate) fn attach_filter(fd: BorrowedFd<'_>, program: &[Instruction]) -> io::Result<()> {
    let insns: Vec<SockFilter> = program
        .iter()
        .map(|i| SockFilter {
            code: i.code,
            jt: i.jt,
            jf: i.jf,
            k: i.k,
        })
        .collect();
    let len = libc::c_ushort::try_from(insns.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "more than 65535 instructions"))?;
    let prog = SockFprog {
        len,
        filter: insns.as_ptr(),
    };
    // `insns` outlives the call; the kernel copies the program.
    setsockopt(fd, libc::SOL_SOCKET, SO_ATTACH_FILTER, &prog)
}

/// `bind(fd, sockaddr_ll { ETH_P_ALL, ifindex })`; ifindex 0 means every interface.
pub(crate) fn bind(fd: BorrowedFd<'_>, ifindex: u32) -> io::Result<()> {
    let addr = libc::sockaddr_ll {
        sll_family: libc::AF_PACKET as u16,
        sll_protocol: ETH_P_ALL.to_be(),
        sll_ifindex: ifindex as i32,
        sll_hatype: 0,
        sll_pkttype: 0,
        sll_halen: 0,
        sll_addr: [0; 8],
    };
    // SAFETY: `addr` is a valid sockaddr_ll and the length passed is its size.
    check(unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&addr as *const libc::sockaddr_ll).cast(),
            std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    })
    .map(drop)
}

/// `getsockopt(SOL_PACKET, PACKET_STATISTICS)`. The kernel resets its counters on every read
/// and already counts drops in `tp_packets`.
pub(crate) fn packet_statistics(fd: BorrowedFd<'_>) -> io::Result<TpacketStatsV3> {
    let mut stats = TpacketStatsV3::default();
    let mut len = std::mem::size_of::<TpacketStatsV3>() as libc::socklen_t;
    // SAFETY: `stats` is writable memory of `len` bytes; the kernel writes at most `len`.
    check(unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            SOL_PACKET,
            PACKET_STATISTICS,
            (&mut stats as *mut TpacketStatsV3).cast(),
            &mut len,
        )
    })?;
    Ok(stats)
}

/// `getsockopt(SOL_SOCKET, SO_ERROR)`: the pending socket error, cleared by reading it.
pub(crate) fn take_socket_error(fd: BorrowedFd<'_>) -> io::Result<Option<io::Error>> {
    let err = socket::getsockopt(&fd, sockopt::SocketError)?;
    Ok((err != 0).then(|| io::Error::from_raw_os_error(err)))
}

/// What `poll` saw on the socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Readiness {
    /// A block may be ready.
    Readable,
    /// The socket has an error pending (the interface went away).
    Error,
    /// Nothing happened within the timeout.
    Timeout,
}

/// `poll(fd, POLLIN | POLLERR, timeout_ms)`; `EINTR` counts as a timeout so the caller
/// re-checks its stop flag after a signal.
pub(crate) fn poll_in(fd: BorrowedFd<'_>, timeout_ms: u16) -> io::Result<Readiness> {
    let mut fds = [PollFd::new(fd, PollFlags::POLLIN | PollFlags::POLLERR)];
    match poll(&mut fds, PollTimeout::from(timeout_ms)) {
        Err(Errno::EINTR) | Ok(0) => Ok(Readiness::Timeout),
        Err(e) => Err(e.into()),
        // `None`: a bit nix does not know. Checking for an error costs one getsockopt and
        // finds none when there is none, whereas taking it for readable could miss one.
        Ok(_) => match fds[0].revents() {
            Some(revents)
                if !revents
                    .intersects(PollFlags::POLLERR | PollFlags::POLLNVAL | PollFlags::POLLHUP) =>
            {
                Ok(Readiness::Readable)
            }
            _ => Ok(Readiness::Error),
        },
    }
}

/// One interface of the current network namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LinkInfo {
    pub(crate) name: String,
    pub(crate) index: u32,
    pub(crate) flags: u32,
    pub(crate) hatype: u16,
}

/// The interfaces of the calling thread's network namespace (getifaddrs asks the kernel over
/// netlink, so unlike `/sys/class/net` it answers for the namespace the thread is in).
pub(crate) fn links() -> io::Result<Vec<LinkInfo>> {
    let mut links: Vec<LinkInfo> = getifaddrs()?
        .filter_map(|entry| {
            let (index, hatype) = entry
                .address
                .as_ref()
                .and_then(|a| a.as_link_addr())
                .map(|ll| (ll.ifindex(), ll.hatype()))?;
            Some(LinkInfo {
                name: entry.interface_name,
                index: index as u32,
                flags: entry.flags.bits() as u32,
                hatype,
            })
        })
        .collect();
    links.sort_by_key(|l| l.index);
    Ok(links)
}

/// A shared read-write mapping of the packet ring, unmapped on drop.
#[derive(Debug)]
pub(crate) struct RingMap {
    base: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is plain memory; access to blocks is coordinated with the kernel through
// the block status word, and `RingMap` is only used by the one `Capture` that owns it.
unsafe impl Send for RingMap {}

impl RingMap {
    /// `mmap(NULL, len, PROT_READ|PROT_WRITE, MAP_SHARED, fd, 0)` of the RX ring.
    pub(crate) fn new(fd: BorrowedFd<'_>, len: usize) -> io::Result<Self> {
        // SAFETY: a fresh mapping at an address the kernel chooses; fd is a packet socket
        // with an RX ring of exactly `len` bytes.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_POPULATE,
                fd.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let base =
            NonNull::new(ptr.cast()).ok_or_else(|| io::Error::other("mmap returned NULL"))?;
        Ok(RingMap { base, len })
    }

    fn status_word(&self, offset: usize) -> &AtomicU32 {
        assert!(offset + 4 <= self.len && offset.is_multiple_of(4));
        // SAFETY: in bounds and 4-aligned (checked above; the mapping is page-aligned); the
        // kernel and we both access the status word atomically, as the ring protocol requires.
        unsafe { AtomicU32::from_ptr(self.base.as_ptr().add(offset).cast()) }
    }

    /// The block status word at `offset` (Acquire, so the block's contents are visible once
    /// `TP_STATUS_USER` is seen).
    pub(crate) fn load_status(&self, offset: usize) -> u32 {
        self.status_word(offset).load(Ordering::Acquire)
    }

    /// Hands a block back to the kernel (Release, so our reads of it happen before).
    pub(crate) fn store_status(&self, offset: usize, value: u32) {
        self.status_word(offset).store(value, Ordering::Release);
    }

    /// The bytes of one block that the kernel has handed to user space.
    ///
    /// # Safety
    /// The block at `offset` must have `TP_STATUS_USER` set and must not be handed back to
    /// the kernel while the returned slice is alive; no other slice of it may exist.
    pub(crate) unsafe fn user_block(&mut self, offset: usize, len: usize) -> &mut [u8] {
        assert!(offset + len <= self.len);
        // SAFETY: in bounds (checked); the caller guarantees the kernel does not write this
        // block and that the slice is unique.
        unsafe { std::slice::from_raw_parts_mut(self.base.as_ptr().add(offset), len) }
    }
}

impl Drop for RingMap {
    fn drop(&mut self) {
        // SAFETY: base/len describe a mapping made by `new` and not unmapped before.
        unsafe { libc::munmap(self.base.as_ptr().cast(), self.len) };
    }
}
