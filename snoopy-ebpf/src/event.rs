//! Connection events, decoded from the kernel's records: what happened, in which network
//! namespace, between which addresses, and which process did it.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use serde::{Deserialize, Serialize};
use snoopy_ebpf_common::{RawEvent, kind};

use crate::Error;

/// What happened to a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    /// A process called connect() (stamped with the time of the call, sent once the source
    /// port is known).
    Connect,
    /// An outbound connection completed its handshake.
    Established,
    /// An outbound connection was refused (a RST answered the SYN).
    Refused,
    /// An outbound connection closed with its SYN unanswered (timed out or given up).
    Unanswered,
    /// An inbound connection completed its handshake on a listening socket (ready for
    /// accept()); the process is the one that called listen() on that port.
    Accept,
    /// A connection closed; [`Event::bytes_sent`] and [`Event::bytes_received`] are set.
    Close,
    /// A RST was received on an open connection.
    Reset,
    /// A segment was retransmitted.
    Retransmit,
    /// A process started listening (`local` is the listening address).
    Listen,
}

impl EventKind {
    /// The lowercase name (as in JSON).
    pub fn name(self) -> &'static str {
        match self {
            EventKind::Connect => "connect",
            EventKind::Established => "established",
            EventKind::Refused => "refused",
            EventKind::Unanswered => "unanswered",
            EventKind::Accept => "accept",
            EventKind::Close => "close",
            EventKind::Reset => "reset",
            EventKind::Retransmit => "retransmit",
            EventKind::Listen => "listen",
        }
    }

    fn from_raw(value: u8) -> Option<Self> {
        Some(match value {
            kind::CONNECT => EventKind::Connect,
            kind::ESTABLISHED => EventKind::Established,
            kind::REFUSED => EventKind::Refused,
            kind::UNANSWERED => EventKind::Unanswered,
            kind::ACCEPT => EventKind::Accept,
            kind::CLOSE => EventKind::Close,
            kind::RESET => EventKind::Reset,
            kind::RETRANSMIT => EventKind::Retransmit,
            kind::LISTEN => EventKind::Listen,
            _ => return None,
        })
    }
}

/// The process behind a connection: the one that connected, or listened on the port an inbound
/// connection arrived at (remembered per socket, so events raised in softirq context still
/// name it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Process {
    /// Process id (tgid).
    pub pid: u32,
    /// Thread id.
    pub tid: u32,
    /// User id.
    pub uid: u32,
    /// Command name (at most 15 bytes, as the kernel keeps it).
    pub comm: String,
    /// cgroup v2 id (the inode of the process's cgroup directory).
    pub cgroup_id: u64,
}

/// One connection event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// What happened.
    pub kind: EventKind,
    /// Wall-clock time, nanoseconds since the Unix epoch (from the kernel's monotonic stamp).
    pub time_ns: u64,
    /// Inode number of the network namespace (as `stat -L /proc/PID/ns/net` shows it).
    pub netns: u32,
    /// Local address and port.
    pub local: SocketAddr,
    /// Remote address and port (unspecified for `listen`).
    pub remote: SocketAddr,
    /// The process, when known: a socket opened before the monitor started, or evicted from
    /// the kernel's bounded socket table, has none.
    pub process: Option<Process>,
    /// Bytes sent and acknowledged (on `close`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub bytes_sent: Option<u64>,
    /// Bytes received (on `close`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub bytes_received: Option<u64>,
}

impl Event {
    /// Decodes a kernel record; `boot_offset_ns` turns its monotonic stamp into wall-clock time.
    pub fn from_raw(raw: &RawEvent, boot_offset_ns: i128) -> Result<Event, Error> {
        let kind = EventKind::from_raw(raw.kind)
            .ok_or_else(|| Error::Decode(format!("unknown event kind {}", raw.kind)))?;
        let (local, remote) = match raw.family {
            2 => (
                IpAddr::V4(Ipv4Addr::from(
                    <[u8; 4]>::try_from(&raw.saddr[..4]).expect("4"),
                )),
                IpAddr::V4(Ipv4Addr::from(
                    <[u8; 4]>::try_from(&raw.daddr[..4]).expect("4"),
                )),
            ),
            10 => (
                IpAddr::V6(Ipv6Addr::from(raw.saddr)),
                IpAddr::V6(Ipv6Addr::from(raw.daddr)),
            ),
            other => return Err(Error::Decode(format!("unknown address family {other}"))),
        };
        let process = (raw.process_known != 0).then(|| Process {
            pid: raw.pid,
            tid: raw.tid,
            uid: raw.uid,
            comm: comm(&raw.comm),
            cgroup_id: raw.cgroup_id,
        });
        let closed = kind == EventKind::Close;
        let time = i128::from(raw.timestamp_ns) + boot_offset_ns;
        Ok(Event {
            kind,
            time_ns: u64::try_from(time.max(0)).unwrap_or(u64::MAX),
            netns: raw.netns,
            local: SocketAddr::new(local, raw.sport),
            remote: SocketAddr::new(remote, raw.dport),
            process,
            bytes_sent: closed.then_some(raw.bytes_sent),
            bytes_received: closed.then_some(raw.bytes_received),
        })
    }
}

fn comm(bytes: &[u8; 16]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(kind: u8) -> RawEvent {
        let mut raw = RawEvent {
            timestamp_ns: 5,
            cgroup_id: 77,
            bytes_sent: 10,
            bytes_received: 20,
            pid: 42,
            tid: 43,
            uid: 1000,
            netns: 4026531840,
            family: 2,
            sport: 40000,
            dport: 8080,
            kind,
            process_known: 1,
            ..RawEvent::default()
        };
        raw.saddr[..4].copy_from_slice(&[198, 18, 0, 1]);
        raw.daddr[..4].copy_from_slice(&[198, 18, 0, 2]);
        raw.comm[..7].copy_from_slice(b"python3");
        raw
    }

    #[test]
    fn a_close_decodes_with_its_bytes_and_process() {
        let event = Event::from_raw(&raw(kind::CLOSE), 1_000).unwrap();
        assert_eq!(event.kind, EventKind::Close);
        assert_eq!(event.time_ns, 1_005);
        assert_eq!(event.local, "198.18.0.1:40000".parse().unwrap());
        assert_eq!(event.remote, "198.18.0.2:8080".parse().unwrap());
        assert_eq!(
            (event.bytes_sent, event.bytes_received),
            (Some(10), Some(20))
        );
        let process = event.process.unwrap();
        assert_eq!((process.pid, process.tid, process.uid), (42, 43, 1000));
        assert_eq!((process.comm.as_str(), process.cgroup_id), ("python3", 77));
    }

    #[test]
    fn only_a_close_carries_bytes_and_an_unknown_process_is_none() {
        let mut connect = raw(kind::CONNECT);
        connect.process_known = 0;
        let event = Event::from_raw(&connect, 0).unwrap();
        assert_eq!(event.bytes_sent, None);
        assert_eq!(event.process, None);
        let json = serde_json::to_string(&event).unwrap();
        assert!(!json.contains("bytes_sent"), "{json}");
        assert!(json.contains(r#""kind":"connect""#), "{json}");
    }

    #[test]
    fn ipv6_addresses_decode() {
        let mut r = raw(kind::ACCEPT);
        r.family = 10;
        r.saddr = "fd53:6e6f::2".parse::<Ipv6Addr>().unwrap().octets();
        r.daddr = "fd53:6e6f::1".parse::<Ipv6Addr>().unwrap().octets();
        let event = Event::from_raw(&r, 0).unwrap();
        assert_eq!(event.local, "[fd53:6e6f::2]:40000".parse().unwrap());
    }

    #[test]
    fn unknown_kinds_and_families_are_errors() {
        assert!(Event::from_raw(&raw(200), 0).is_err());
        let mut r = raw(kind::CLOSE);
        r.family = 1;
        assert!(
            Event::from_raw(&r, 0)
                .unwrap_err()
                .to_string()
                .contains("family 1")
        );
    }

    #[test]
    fn events_round_trip_through_json() {
        let event = Event::from_raw(&raw(kind::CLOSE), 0).unwrap();
        let back: Event = serde_json::from_str(&serde_json::to_string(&event).unwrap()).unwrap();
        assert_eq!(back, event);
    }
}
