//! The closing counts of a capture, and tcpdump's closing statistics.

use anyhow::Result;
use snoopy_capture::PacketSource;
use snoopy_capture::afpacket::{Capture, EndReason};

/// The closing counts of a capture, for the termination report.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    /// Packets written.
    pub captured: u64,
    /// Packets the filter accepted.
    pub received: u64,
    /// Packets the kernel dropped.
    pub dropped: u64,
    /// The capture ended because the target's interface went away (its pod was deleted).
    pub target_gone: bool,
}

impl Totals {
    /// The totals of a finished capture: its counters and why it ended.
    pub fn of(capture: &mut Capture) -> Result<Totals> {
        let stats = capture.stats()?;
        Ok(Totals {
            captured: stats.captured,
            received: stats.received.unwrap_or(0),
            dropped: stats.dropped.unwrap_or(0),
            target_gone: capture.end_reason() == Some(EndReason::InterfaceGone),
        })
    }

    /// Prints tcpdump's closing statistics on stderr.
    pub fn print(&self) {
        eprintln!("{} packets captured", self.captured);
        eprintln!("{} packets received by filter", self.received);
        eprintln!("{} packets dropped by kernel", self.dropped);
    }
}
