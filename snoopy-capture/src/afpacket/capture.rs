//! Opening a capture (the builder) and reading it (the [`Capture`] packet source).

use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use snoopy_netns::caps::Capability;
use snoopy_netns::{Namespace, SyscallError};

use super::cooked::{self, LinkFacts, SLL2_HEADER_LEN};
use super::ring::{Frame, Ring, TPACKET3_HDR_LEN};
use super::sys::{self, LinkInfo, Readiness, TP_STATUS_VLAN_TPID_VALID, TP_STATUS_VLAN_VALID};
use crate::filter::{Instruction, Program};
use crate::{Error, Interface, LinkType, Packet, PacketSource, Result, SourceStats};

/// tcpdump's default snapshot length: whole packets.
pub const DEFAULT_SNAPLEN: u32 = snoopy_job::DEFAULT_SNAPLEN;
/// Default ring size: 4 MiB (tcpdump's default buffer is 2 MiB; `-B` changes both).
pub const DEFAULT_BUFFER_SIZE: usize = 4 << 20;
/// How long the kernel waits before handing over a partly filled block.
pub const DEFAULT_BLOCK_TIMEOUT: Duration = Duration::from_millis(100);

const ARPHRD_ETHER: u16 = 1;
const ARPHRD_LOOPBACK: u16 = 772;
const PACKET_OUTGOING: u8 = 4;
const VLAN_TAG_LEN: usize = 4;
const IFF_UP: u32 = libc::IFF_UP as u32;
const IFF_LOOPBACK: u32 = libc::IFF_LOOPBACK as u32;
/// How often a reader blocked in `poll` wakes to look at its stop flag.
const POLL_TIMEOUT_MS: u16 = 50;

/// A flag that stops a capture: `next_packet` returns `Ok(None)` soon after it is set.
///
/// Cheap to clone; register it with a signal handler (e.g. `signal_hook::flag::register`)
/// or set it from a timer.
#[derive(Debug, Clone, Default)]
pub struct StopHandle(Arc<AtomicBool>);

impl StopHandle {
    /// A new, unset flag.
    pub fn new() -> Self {
        StopHandle::default()
    }

    /// Asks the capture to stop.
    pub fn stop(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    /// Whether a stop was asked for.
    pub fn is_stopped(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    /// The flag itself, for `signal_hook::flag::register`.
    pub fn flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.0)
    }
}

/// What [`Capture::next_event_or_idle`] returns.
#[derive(Debug)]
pub enum Event<'a> {
    /// A packet, borrowed from the ring until the next call.
    Packet(Packet<'a>),
    /// Nothing arrived for a short while.
    Idle,
    /// The capture ended; [`Capture::end_reason`] says why.
    End,
}

/// Why a live capture ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// The [`StopHandle`] was set.
    Stopped,
    /// The interface disappeared (e.g. the pod and its network namespace were deleted).
    InterfaceGone,
}

/// Kernel counters of a capture socket, readable from another thread while it runs.
#[derive(Debug, Clone)]
pub struct StatsHandle(Arc<SharedStats>);

#[derive(Debug)]
struct SharedStats {
    fd: OwnedFd,
    totals: Mutex<(u64, u64)>,
}

impl StatsHandle {
    /// `(received by filter, dropped by kernel)` so far, as tcpdump reports them.
    pub fn kernel_counters(&self) -> Result<(u64, u64)> {
        let fresh = sys::packet_statistics(self.0.fd.as_fd()).map_err(|source| {
            SyscallError::new("getsockopt(PACKET_STATISTICS)", "capture socket", source)
        })?;
        // The kernel resets its counters on each read, so keep the running totals here.
        let mut totals = self.0.totals.lock().unwrap_or_else(|p| p.into_inner());
        totals.0 += u64::from(fresh.tp_packets);
        totals.1 += u64::from(fresh.tp_drops);
        Ok(*totals)
    }
}

/// Which packets a capture keeps by direction (tcpdump's `-Q`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Direction {
    /// Sent and received (the default).
    #[default]
    InOut,
    /// Only packets the host received: `PACKET_IGNORE_OUTGOING` (Linux 4.20+), so outgoing
    /// ones are never handed to the socket; on older kernels the BPF program drops them.
    In,
    /// Only packets the host sent: the BPF program checks the packet type first, so
    /// received ones are never copied out.
    Out,
}

/// `SKF_AD_OFF + SKF_AD_PKTTYPE`: the ancillary load of the packet type.
const LOAD_PKTTYPE: u32 = 0xffff_f000 + 4;

/// `program` run only on packets whose type is (`outgoing`) or is not (`!outgoing`)
/// `PACKET_OUTGOING`; others are rejected before it. Its jumps are relative and only
/// forward, so they stay right after the three instructions put before it.
fn only_direction(program: &Program, outgoing: bool) -> Program {
    // ld [pkttype]; jeq #OUTGOING, then skip the reject (out) or take it (in); ret #0.
    let (jt, jf) = if outgoing { (1, 0) } else { (0, 1) };
    let mut instructions = vec![
        Instruction::new(0x20, 0, 0, LOAD_PKTTYPE),
        Instruction::new(0x15, jt, jf, u32::from(PACKET_OUTGOING)),
        Instruction::new(0x06, 0, 0, 0),
    ];
    instructions.extend_from_slice(&program.instructions);
    Program::new(instructions)
}

/// How to open a live capture; [`CaptureBuilder::open`] makes the [`Capture`].
#[derive(Debug)]
pub struct CaptureBuilder {
    interface: Option<String>,
    snaplen: u32,
    promiscuous: bool,
    buffer_size: usize,
    block_timeout: Duration,
    filter: Option<Program>,
    namespace: Option<Namespace>,
    direction: Direction,
}

impl Default for CaptureBuilder {
    fn default() -> Self {
        CaptureBuilder {
            interface: None,
            snaplen: DEFAULT_SNAPLEN,
            promiscuous: true,
            buffer_size: DEFAULT_BUFFER_SIZE,
            block_timeout: DEFAULT_BLOCK_TIMEOUT,
            filter: None,
            namespace: None,
            direction: Direction::InOut,
        }
    }
}

impl CaptureBuilder {
    /// A capture on the default interface, whole packets, promiscuous, no filter.
    pub fn new() -> Self {
        Self::default()
    }

    /// The interface to capture on: a name, or `any` for every interface (Linux cooked
    /// SLL2 headers). Without one, the first interface that is up and not loopback.
    pub fn interface(mut self, name: impl Into<String>) -> Self {
        self.interface = Some(name.into());
        self
    }

    /// Bytes kept of each packet (`-s`); 0 means the default, 262144.
    pub fn snaplen(mut self, snaplen: u32) -> Self {
        self.snaplen = if snaplen == 0 {
            DEFAULT_SNAPLEN
        } else {
            snaplen
        };
        self
    }

    /// Promiscuous mode on the interface (on by default; `-p` turns it off).
    pub fn promiscuous(mut self, on: bool) -> Self {
        self.promiscuous = on;
        self
    }

    /// Size of the kernel ring in bytes (`-B` in KiB in tcpdump).
    pub fn buffer_size(mut self, bytes: usize) -> Self {
        self.buffer_size = bytes;
        self
    }

    /// How long the kernel may hold a partly filled block before handing it over: the
    /// worst-case delay before a packet is seen.
    pub fn block_timeout(mut self, timeout: Duration) -> Self {
        self.block_timeout = timeout;
        self
    }

    /// A classic BPF program run by the kernel on every packet, compiled for this capture's
    /// link type in live-socket mode (for `any`: `LINUX_SLL2`).
    pub fn filter(mut self, program: Program) -> Self {
        self.filter = Some(program);
        self
    }

    /// Keeps only received or only sent packets (`-Q in|out`), decided in the kernel.
    pub fn direction(mut self, direction: Direction) -> Self {
        self.direction = direction;
        self
    }

    /// Opens the socket inside this network namespace (a pod's) instead of the caller's.
    pub fn namespace(mut self, namespace: Namespace) -> Self {
        self.namespace = Some(namespace);
        self
    }

    /// Opens the socket, maps the ring, attaches the filter and binds. Only this happens
    /// inside the target namespace (on a short-lived thread); reading works from any thread.
    pub fn open(mut self) -> Result<Capture> {
        match self.namespace.take() {
            Some(ns) => snoopy_netns::in_namespace(&ns, || self.open_here())?,
            None => self.open_here(),
        }
    }

    fn open_here(&self) -> Result<Capture> {
        let links = sys::links().map_err(|source| {
            SyscallError::new("getifaddrs", "current network namespace", source)
        })?;
        let target = resolve_interface(self.interface.as_deref(), &links)?;
        let cooked = match &target {
            Target::Any => true,
            Target::Link(l) => !matches!(l.hatype, ARPHRD_ETHER | ARPHRD_LOOPBACK),
        };
        let (name, ifindex) = match &target {
            Target::Any => ("any".to_string(), 0),
            Target::Link(l) => (l.name.clone(), l.index),
        };
        let loopback_index = links
            .iter()
            .find(|l| l.flags & IFF_LOOPBACK != 0)
            .map(|l| l.index);
        let fail = |call: &'static str, source: std::io::Error| {
            Error::from(SyscallError::new(call, name.clone(), source))
        };

        let fd = sys::packet_socket(cooked).map_err(|source| {
            // EPERM only: an EACCES here comes from a security module, which no capability
            // lifts.
            let needs: &[Capability] = if source.raw_os_error() == Some(libc::EPERM) {
                &[Capability::NetRaw]
            } else {
                &[]
            };
            SyscallError::new("socket(AF_PACKET)", name.clone(), source).needing(needs)
        })?;
        sys::set_tpacket_v3(fd.as_fd())
            .map_err(|e| fail("setsockopt(PACKET_VERSION, TPACKET_V3)", e))?;
        let reserve = if cooked {
            SLL2_HEADER_LEN + VLAN_TAG_LEN
        } else {
            VLAN_TAG_LEN
        };
        sys::set_reserve(fd.as_fd(), reserve as u32)
            .map_err(|e| fail("setsockopt(PACKET_RESERVE)", e))?;

        let geometry = RingGeometry::new(self.snaplen, reserve, self.buffer_size);
        let req = sys::TpacketReq3 {
            tp_block_size: geometry.block_size as u32,
            tp_block_nr: geometry.block_count as u32,
            tp_frame_size: geometry.frame_size as u32,
            tp_frame_nr: geometry.frame_count() as u32,
            tp_retire_blk_tov: self.block_timeout.as_millis().clamp(1, u32::MAX as u128) as u32,
            tp_sizeof_priv: 0,
            tp_feature_req_word: 0,
        };
        sys::set_rx_ring(fd.as_fd(), &req).map_err(|source| {
            SyscallError::new("setsockopt(PACKET_RX_RING)", name.clone(), source)
                .with_hint("the ring could not be allocated; try a smaller buffer (-B)")
        })?;
        let map = sys::RingMap::new(fd.as_fd(), geometry.block_size * geometry.block_count)
            .map_err(|e| fail("mmap(PACKET_RX_RING)", e))?;

        let link_type = if cooked {
            LinkType::LinuxSll2
        } else {
            LinkType::Ethernet
        };
        let mut program = self.kernel_program(cooked)?;
        match self.direction {
            Direction::InOut => {}
            Direction::Out => program = only_direction(&program, true),
            Direction::In => match sys::set_ignore_outgoing(fd.as_fd()) {
                Ok(()) => {}
                // Before Linux 4.20: the filter drops them instead.
                Err(e) if e.raw_os_error() == Some(libc::ENOPROTOOPT) => {
                    program = only_direction(&program, false)
                }
                Err(e) => return Err(fail("setsockopt(PACKET_IGNORE_OUTGOING)", e)),
            },
        }
        sys::attach_filter(fd.as_fd(), &program.instructions).map_err(|source| {
            SyscallError::new("setsockopt(SO_ATTACH_FILTER)", name.clone(), source)
                .with_hint("the kernel rejected the BPF program")
        })?;
        sys::bind(fd.as_fd(), ifindex).map_err(|e| fail("bind(AF_PACKET)", e))?;
        if self.promiscuous && ifindex != 0 {
            sys::add_promiscuous(fd.as_fd(), ifindex)
                .map_err(|e| fail("setsockopt(PACKET_ADD_MEMBERSHIP, PACKET_MR_PROMISC)", e))?;
        }

        let stats_fd = fd.try_clone().map_err(|e| fail("dup", e))?;
        Ok(Capture {
            ring: Ring::new(map, geometry.block_size, geometry.block_count),
            fd,
            interfaces: vec![Interface::new(name, link_type, self.snaplen)],
            shaper: Shaper {
                cooked,
                snaplen: self.snaplen as usize,
                skip_outgoing_on: loopback_index,
                block_timeout: self.block_timeout,
            },
            stop: StopHandle::new(),
            stats: StatsHandle(Arc::new(SharedStats {
                fd: stats_fd,
                totals: Mutex::new((0, 0)),
            })),
            captured: 0,
            ended: None,
        })
    }

    /// The program the kernel runs: the user's filter (fixed up for cooked sockets) with its
    /// returns capped at the snaplen, or just the snaplen.
    fn kernel_program(&self, cooked: bool) -> Result<Program> {
        let Some(filter) = &self.filter else {
            return Ok(cooked::snaplen_only(self.snaplen));
        };
        let runnable = if cooked {
            cooked::fix_for_cooked_socket(filter, true).ok_or(Error::FilterNotRunnable(
                "this filter reads cooked-header bytes the kernel does not expose on `any`; capture on a named interface",
            ))?
        } else {
            filter.clone()
        };
        Ok(cooked::cap_returns(&runnable, self.snaplen))
    }
}

enum Target {
    Any,
    Link(LinkInfo),
}

fn resolve_interface(wanted: Option<&str>, links: &[LinkInfo]) -> Result<Target> {
    let names = || links.iter().map(|l| l.name.clone()).collect::<Vec<_>>();
    match wanted {
        Some("any") => Ok(Target::Any),
        Some(name) => links
            .iter()
            .find(|l| l.name == name)
            .cloned()
            .map(Target::Link)
            .ok_or_else(|| Error::NoSuchInterface {
                name: name.to_string(),
                available: names(),
            }),
        // Like pcap_lookupdev: the first interface that is up and is not loopback.
        None => links
            .iter()
            .find(|l| l.flags & IFF_UP != 0 && l.flags & IFF_LOOPBACK == 0)
            .cloned()
            .map(Target::Link)
            .ok_or_else(|| Error::NoDefaultInterface { available: names() }),
    }
}

/// Sizes of the ring: blocks of a power-of-two size that hold at least one maximal frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct RingGeometry {
    block_size: usize,
    block_count: usize,
    frame_size: usize,
}

impl RingGeometry {
    fn new(snaplen: u32, reserve: usize, buffer_size: usize) -> Self {
        // Headers before the packet: tpacket3_hdr + sockaddr_ll, aligned, plus the reserve;
        // a packet larger than 64 KiB (GSO) is truncated to the frame, as in libpcap.
        let headers = 128 + reserve;
        let payload = (snaplen as usize).min(65_536);
        let frame_size = (headers + payload).next_multiple_of(16);
        let block_size = frame_size.next_power_of_two().max(256 << 10);
        let block_count = (buffer_size / block_size).max(4);
        RingGeometry {
            block_size,
            block_count,
            frame_size,
        }
    }

    fn frame_count(&self) -> usize {
        (self.block_size / self.frame_size) * self.block_count
    }
}

/// A live capture: an AF_PACKET socket with a TPACKET_V3 ring, read as a [`PacketSource`].
pub struct Capture {
    ring: Ring,
    fd: OwnedFd,
    interfaces: Vec<Interface>,
    shaper: Shaper,
    stop: StopHandle,
    stats: StatsHandle,
    captured: u64,
    ended: Option<EndReason>,
}

impl std::fmt::Debug for Capture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Capture")
            .field("interface", &self.interfaces[0].name)
            .field("captured", &self.captured)
            .finish_non_exhaustive()
    }
}

impl Capture {
    /// The handle that stops this capture.
    pub fn stop_handle(&self) -> StopHandle {
        self.stop.clone()
    }

    /// Makes this capture stop when `handle` is set (e.g. one handle shared by the captures
    /// of several pods and a signal handler).
    pub fn set_stop_handle(&mut self, handle: StopHandle) {
        self.stop = handle;
    }

    /// A handle to read the kernel counters from another thread.
    pub fn stats_handle(&self) -> StatsHandle {
        self.stats.clone()
    }

    /// The link type of the packets this capture returns.
    pub fn link_type(&self) -> LinkType {
        self.interfaces[0].link_type
    }

    /// Why the capture ended, once `next_packet` has returned `Ok(None)`.
    pub fn end_reason(&self) -> Option<EndReason> {
        self.ended
    }
}

/// What turning ring frames into packets depends on.
#[derive(Debug, Clone, Copy)]
struct Shaper {
    cooked: bool,
    snaplen: usize,
    /// libpcap drops the outgoing copy of packets on loopback, which the kernel delivers
    /// twice (once leaving, once arriving); so do we.
    skip_outgoing_on: Option<u32>,
    block_timeout: Duration,
}

impl Shaper {
    /// Turns the frame into a packet in place: re-inserts a VLAN tag the kernel stripped
    /// into metadata and, on cooked sockets, writes the SLL2 header in front. Returns the
    /// data's range in `frame.bytes`, the wire length, and whether to skip the packet.
    fn shape(&self, frame: &mut Frame<'_>) -> Option<(usize, usize, u32)> {
        let h = frame.header;
        let mac = usize::from(h.mac);
        let mut caplen = h.snaplen as usize;
        let mut wire = h.len;
        if mac + caplen > frame.bytes.len() || mac < TPACKET3_HDR_LEN + 20 {
            return None;
        }
        let facts = LinkFacts::from_sockaddr_ll(&frame.bytes[TPACKET3_HDR_LEN..])?;
        if facts.pkttype == PACKET_OUTGOING && Some(facts.ifindex) == self.skip_outgoing_on {
            return None;
        }
        let vlan = (h.status & TP_STATUS_VLAN_VALID != 0).then(|| {
            let tpid = if h.status & TP_STATUS_VLAN_TPID_VALID != 0 {
                h.vlan_tpid
            } else {
                0x8100
            };
            (tpid, h.vlan_tci as u16)
        });
        let mut start = mac;
        if self.cooked {
            // Layout written: SLL2 header [+ TCI and the inner protocol when tagged].
            if let Some((tpid, tci)) = vlan {
                start -= VLAN_TAG_LEN;
                frame.bytes[start..start + 2].copy_from_slice(&tci.to_be_bytes());
                frame.bytes[start + 2..start + 4].copy_from_slice(&facts.protocol.to_be_bytes());
                caplen += VLAN_TAG_LEN;
                wire += VLAN_TAG_LEN as u32;
                start -= SLL2_HEADER_LEN;
                facts.write_sll2(tpid, &mut frame.bytes[start..start + SLL2_HEADER_LEN]);
            } else {
                start -= SLL2_HEADER_LEN;
                facts.write_sll2(
                    facts.protocol,
                    &mut frame.bytes[start..start + SLL2_HEADER_LEN],
                );
            }
            caplen += SLL2_HEADER_LEN;
            wire += SLL2_HEADER_LEN as u32;
        } else if let Some((tpid, tci)) = vlan
            && caplen >= 12
        {
            // Put the tag back between the MAC addresses and the ethertype, as libpcap does.
            start -= VLAN_TAG_LEN;
            frame.bytes.copy_within(mac..mac + 12, start);
            frame.bytes[start + 12..start + 14].copy_from_slice(&tpid.to_be_bytes());
            frame.bytes[start + 14..start + 16].copy_from_slice(&tci.to_be_bytes());
            caplen += VLAN_TAG_LEN;
            wire += VLAN_TAG_LEN as u32;
        }
        Some((start, caplen.min(self.snaplen), wire))
    }
}

impl Capture {
    /// The next packet, or [`Event::Idle`] when nothing arrived for a short while (time to
    /// flush output), or [`Event::End`].
    pub fn next_event_or_idle(&mut self) -> Result<Event<'_>> {
        self.next_event(true)
    }

    fn next_event(&mut self, idle_returns: bool) -> Result<Event<'_>> {
        let mut drained_after_gone = false;
        // Phase one finds and shapes the next wanted frame; phase two borrows it again to
        // return it (a borrow returned from inside the loop would outlive the loop).
        let (start, caplen, wire, header) = loop {
            if self.stop.is_stopped() {
                self.ended.get_or_insert(EndReason::Stopped);
                return Ok(Event::End);
            }
            if let Some(mut frame) = self.ring.next_frame() {
                let header = frame.header;
                if let Some((start, caplen, wire)) = self.shaper.shape(&mut frame) {
                    break (start, caplen, wire, header);
                }
                continue;
            }
            if self.ended == Some(EndReason::InterfaceGone) {
                if drained_after_gone {
                    return Ok(Event::End);
                }
                drained_after_gone = true;
                std::thread::sleep(self.shaper.block_timeout + Duration::from_millis(50));
                continue;
            }
            let readiness = sys::poll_in(self.fd.as_fd(), POLL_TIMEOUT_MS).map_err(|source| {
                SyscallError::new("poll", self.interfaces[0].name.clone(), source)
            })?;
            match readiness {
                Readiness::Error => self.socket_error()?,
                Readiness::Timeout if idle_returns => return Ok(Event::Idle),
                Readiness::Timeout | Readiness::Readable => {}
            }
        };
        self.captured += 1;
        let bytes = self.ring.last_frame().unwrap_or_default();
        Ok(Event::Packet(Packet {
            timestamp: Duration::new(u64::from(header.sec), header.nsec),
            orig_len: wire,
            data: bytes.get(start..start + caplen).unwrap_or_default(),
            interface: 0,
        }))
    }

    /// Called when the socket reports an error: the interface is gone. Packets already in
    /// the ring are still returned; the kernel hands over the last partly filled block when
    /// its timeout expires, so wait for that once before ending.
    fn socket_error(&mut self) -> Result<()> {
        let err = sys::take_socket_error(self.fd.as_fd()).map_err(|source| {
            SyscallError::new(
                "getsockopt(SO_ERROR)",
                self.interfaces[0].name.clone(),
                source,
            )
        })?;
        match err {
            Some(e) if e.raw_os_error() == Some(libc::ENETDOWN) => {
                self.ended = Some(EndReason::InterfaceGone);
                Ok(())
            }
            Some(source) => Err(SyscallError::new(
                "poll(capture socket)",
                self.interfaces[0].name.clone(),
                source,
            )
            .into()),
            None => Ok(()),
        }
    }
}

impl PacketSource for Capture {
    fn interfaces(&self) -> &[Interface] {
        &self.interfaces
    }

    fn next_packet(&mut self) -> Result<Option<Packet<'_>>> {
        match self.next_event(false)? {
            Event::Packet(packet) => Ok(Some(packet)),
            Event::Idle | Event::End => Ok(None),
        }
    }

    fn stats(&mut self) -> Result<SourceStats> {
        let (received, dropped) = self.stats.kernel_counters()?;
        Ok(SourceStats {
            captured: self.captured,
            received: Some(received),
            dropped: Some(dropped),
        })
    }
}
