//! Loading and attaching the kernel programs, the watched namespaces, reading events.

use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Duration;

use aya::maps::{HashMap, MapData, PerCpuArray, RingBuf};
use aya::programs::BtfTracePoint;
use aya::{Ebpf, EbpfLoader};
use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::time::{ClockId, clock_gettime};
use snoopy_ebpf_common::{LOST_SLOTS, MAX_TARGETS, RawEvent};

use crate::offsets::{self, VMLINUX_BTF};
use crate::{Error, Event, PROGRAMS};

/// The programs and their hooks: (program name, kind, kernel function or tracepoint).
/// BTF tracepoints only: fentry/fexit programs are refused (EPERM at BPF_PROG_LOAD) on this
/// project's machines, and their kernels have no kprobes.
const HOOKS: [(&str, &str); 3] = [
    ("snoopy_set_state", "inet_sock_set_state"),
    ("snoopy_receive_reset", "tcp_receive_reset"),
    ("snoopy_retransmit", "tcp_retransmit_skb"),
];

/// The attached programs: events of the watched network namespaces arrive through
/// [`Monitor::poll`] until the monitor is dropped (which detaches everything).
pub struct Monitor {
    // Owns the programs and their links; dropping it detaches them.
    ebpf: Ebpf,
    targets: HashMap<MapData, u32, u8>,
    events: RingBuf<MapData>,
    lost: PerCpuArray<MapData, u64>,
    watched: Vec<u32>,
    boot_offset_ns: i128,
}

impl std::fmt::Debug for Monitor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Monitor")
            .field("watched", &self.watched)
            .finish_non_exhaustive()
    }
}

impl Monitor {
    /// Loads the programs with the running kernel's BTF and attaches them. Nothing is
    /// reported until a namespace is [watched](Monitor::watch).
    pub fn load() -> Result<Monitor, Error> {
        let btf_path = Path::new(VMLINUX_BTF);
        let offsets = offsets::from_file(btf_path)?;
        let btf = aya::Btf::from_sys_fs().map_err(|err| Error::Btf {
            path: btf_path.to_path_buf(),
            reason: err.to_string(),
        })?;
        let mut ebpf = EbpfLoader::new()
            .btf(Some(&btf))
            .override_global("OFFSETS", &offsets, true)
            .load(PROGRAMS)
            .map_err(|source| Error::Load { source })?;
        for (program, tracepoint) in HOOKS {
            attach(&mut ebpf, &btf, program, tracepoint)?;
        }
        let targets = take(&mut ebpf, "TARGETS")?;
        let events = take(&mut ebpf, "EVENTS")?;
        let lost = take(&mut ebpf, "LOST")?;
        Ok(Monitor {
            ebpf,
            targets,
            events,
            lost,
            watched: Vec::new(),
            boot_offset_ns: boot_offset_ns(),
        })
    }

    /// Reports the sockets of the network namespace with this inode from now on.
    pub fn watch(&mut self, netns: u32) -> Result<(), Error> {
        if self.watched.contains(&netns) {
            return Ok(());
        }
        if self.watched.len() >= MAX_TARGETS as usize {
            return Err(Error::TooManyTargets { max: MAX_TARGETS });
        }
        self.targets
            .insert(netns, 1, 0)
            .map_err(|source| Error::Map {
                what: format!("adding network namespace {netns} to TARGETS"),
                source,
            })?;
        self.watched.push(netns);
        Ok(())
    }

    /// Stops reporting the namespace (e.g. its pod went away).
    pub fn unwatch(&mut self, netns: u32) -> Result<(), Error> {
        if let Some(i) = self.watched.iter().position(|&n| n == netns) {
            self.targets.remove(&netns).map_err(|source| Error::Map {
                what: format!("removing network namespace {netns} from TARGETS"),
                source,
            })?;
            self.watched.swap_remove(i);
        }
        Ok(())
    }

    /// The watched namespace inodes.
    pub fn watched(&self) -> &[u32] {
        &self.watched
    }

    /// Events the kernel dropped so far because the ring buffer was full.
    pub fn lost(&self) -> Result<u64, Error> {
        let mut lost = 0;
        for slot in 0..LOST_SLOTS {
            let values = self.lost.get(&slot, 0).map_err(|source| Error::Map {
                what: format!("reading the LOST counter {slot}"),
                source,
            })?;
            lost += values.iter().sum::<u64>();
        }
        Ok(lost)
    }

    /// Runs of the programs the kernel skipped because the same program was already running
    /// on that CPU (a softirq interrupted it and hit the same hook). Each may have been an
    /// event of a watched namespace, or of any other: an upper bound of events missed besides
    /// [`Monitor::lost`]. Seen here: none in most runs of this crate's overflow test
    /// (~15,000 events in 3 s), 194 in one.
    pub fn missed_runs(&self) -> Result<u64, Error> {
        let mut missed = 0;
        for (name, _) in HOOKS {
            let program = self.ebpf.program(name).ok_or(Error::Missing(name))?;
            let fd = program.fd().map_err(|source| Error::Attach {
                program: name,
                hook: "(reading its info)",
                source,
            })?;
            missed += crate::sys::recursion_misses(fd.as_fd()).map_err(|source| Error::Info {
                program: name,
                source,
            })?;
        }
        Ok(missed)
    }

    /// Waits up to `timeout` for events, then hands every queued one to `each`; returns how
    /// many it handed. A signal ends the wait early (with 0), so callers can check a stop flag.
    pub fn poll(&mut self, timeout: Duration, mut each: impl FnMut(Event)) -> Result<usize, Error> {
        let mut n = self.drain(&mut each)?;
        if n > 0 {
            return Ok(n);
        }
        let millis = u16::try_from(timeout.as_millis()).unwrap_or(u16::MAX);
        let mut fds = [PollFd::new(self.events.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(millis)) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(errno) => return Err(Error::Poll(errno.into())),
        }
        n += self.drain(&mut each)?;
        Ok(n)
    }

    fn drain(&mut self, each: &mut impl FnMut(Event)) -> Result<usize, Error> {
        let mut n = 0;
        while let Some(item) = self.events.next() {
            if item.len() < std::mem::size_of::<RawEvent>() {
                return Err(Error::Decode(format!(
                    "a record of {} bytes, expected {}",
                    item.len(),
                    std::mem::size_of::<RawEvent>()
                )));
            }
            // SAFETY: the record holds at least size_of::<RawEvent>() bytes (checked above),
            // RawEvent is plain integers (any bit pattern is valid), and read_unaligned does
            // not need the ring buffer's 8-byte alignment.
            let raw = unsafe { std::ptr::read_unaligned(item.as_ptr().cast::<RawEvent>()) };
            drop(item);
            each(Event::from_raw(&raw, self.boot_offset_ns)?);
            n += 1;
        }
        Ok(n)
    }
}

/// The inode of a network namespace file (`/proc/PID/ns/net`, `/var/run/netns/NAME`): the
/// key [`Monitor::watch`] takes.
pub fn netns_inode(path: &Path) -> Result<u32, Error> {
    let meta = std::fs::metadata(path).map_err(|source| Error::Netns {
        path: path.to_path_buf(),
        source,
    })?;
    u32::try_from(meta.ino()).map_err(|_| Error::Netns {
        path: path.to_path_buf(),
        source: std::io::Error::other(
            "the inode number does not fit 32 bits: not a namespace file",
        ),
    })
}

fn attach(
    ebpf: &mut Ebpf,
    btf: &aya::Btf,
    program: &'static str,
    tracepoint: &'static str,
) -> Result<(), Error> {
    let failed = |source| Error::Attach {
        program,
        hook: tracepoint,
        source,
    };
    let prog = ebpf.program_mut(program).ok_or(Error::Missing(program))?;
    let prog: &mut BtfTracePoint = prog.try_into().map_err(failed)?;
    prog.load(tracepoint, btf).map_err(failed)?;
    prog.attach().map_err(failed)?;
    Ok(())
}

fn take<M>(ebpf: &mut Ebpf, name: &'static str) -> Result<M, Error>
where
    M: TryFrom<aya::maps::Map, Error = aya::maps::MapError>,
{
    let map = ebpf.take_map(name).ok_or(Error::Missing(name))?;
    M::try_from(map).map_err(|source| Error::Map {
        what: format!("opening the map {name}"),
        source,
    })
}

/// CLOCK_REALTIME − CLOCK_MONOTONIC in nanoseconds (bpf_ktime_get_ns is monotonic).
fn boot_offset_ns() -> i128 {
    let ns = |id| {
        clock_gettime(id)
            .map(|t| i128::from(t.tv_sec()) * 1_000_000_000 + i128::from(t.tv_nsec()))
            .unwrap_or(0)
    };
    ns(ClockId::CLOCK_REALTIME) - ns(ClockId::CLOCK_MONOTONIC)
}
