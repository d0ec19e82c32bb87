//! Live capture from AF_PACKET sockets with a TPACKET_V3 ring.
//!
//! ```no_run
//! use snoopy_capture::afpacket::CaptureBuilder;
//! use snoopy_capture::PacketSource;
//! use snoopy_netns::{Namespace, NamespaceKind};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let pod = Namespace::from_pid(4242, NamespaceKind::Net)?;
//! let mut capture = CaptureBuilder::new().interface("eth0").namespace(pod).open()?;
//! while let Some(packet) = capture.next_packet()? {
//!     println!("{} bytes", packet.orig_len);
//! }
//! # Ok(()) }
//! ```
//!
//! The socket is opened inside the target namespace on a short-lived thread and stays
//! bound to it; reading happens on the caller's thread. Packets are returned straight from
//! the shared ring (no copy). Like libpcap, VLAN tags the kernel moved into metadata are put
//! back into the frame, `any` and non-Ethernet interfaces get Linux cooked SLL2 headers,
//! and the outgoing copy of loopback packets is skipped.

mod capture;
mod cooked;
mod ring;
mod sys;

pub use capture::{
    Capture, CaptureBuilder, DEFAULT_BLOCK_TIMEOUT, DEFAULT_BUFFER_SIZE, DEFAULT_SNAPLEN,
    Direction, EndReason, Event, StatsHandle, StopHandle,
};
