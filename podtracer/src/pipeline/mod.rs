//! A live capture as one pipeline: targets → sources → sinks → totals and report.
//!
//! `capture` plans a [`Pipeline`] from its flags (which sockets, which outputs, when to
//! stop, where to report) and [`Pipeline::run`] carries it out: for one target on this
//! thread, for a label selector with one capture thread per pod and pods picked up as they
//! start matching. Either way a run ends the same: the sinks deliver what they hold, the
//! [`Totals`] go into the termination report ([`Ending`], written in one place, also by
//! `flows`), and a closed pipe is a normal end.

mod many;
mod one;
mod report;
mod settings;
mod totals;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use snoopy_capture::afpacket::StopHandle;
use snoopy_capture::sink::kafka::DeliveryHandle;

pub use self::report::Ending;
pub use self::settings::CaptureSettings;
pub use self::totals::Totals;
use crate::output::{OutputSpec, TextLook};
use crate::target::Resolved;

/// A live capture, planned: how each target's socket is opened, where packets go, when to
/// stop and where to report.
pub struct Pipeline {
    /// How each target's socket is opened (interface, snapshot length, filter…).
    pub settings: CaptureSettings,
    /// Where packets go (`-w`, `--format`, `--print`, `--sink`, rotation).
    pub output: OutputSpec,
    /// How text lines look.
    pub look: TextLook,
    /// Stop after this many packets written (`-c`); `None`: no limit.
    pub count: Option<u64>,
    /// With several pods: each pod's capture ends after this many of its packets
    /// (`--count-per-pod`).
    pub count_per_pod: Option<u64>,
    /// Flush the output after every packet (`-U`).
    pub packet_buffered: bool,
    /// No "listening on" line, live counter or closing statistics on stderr (`-q`).
    pub quiet: bool,
    /// How long the Kafka sinks may keep sending once the capture is over.
    pub sink_timeout: Duration,
    /// Where the termination report goes (`--termination-log`), if anywhere.
    pub termination_log: Option<PathBuf>,
    /// Ends the capture (signals, `--duration`, `-G` with `-W`).
    pub stop: StopHandle,
}

impl Pipeline {
    /// Captures in the targets until the count, the stop handle, or the targets going away
    /// ends it; writes the report and prints the closing statistics (unless quiet). With several
    /// pods (`-l`, `--pod NS/NAME…`), every pod is captured on its own thread and pods that start
    /// matching later are added.
    pub fn run(self, resolved: Resolved) -> Result<ExitCode> {
        if resolved.many {
            return many::run(self, resolved);
        }
        let target = resolved.targets.into_iter().next().expect("one target");
        one::run(self, target)
    }

    /// The end of every capture, once no more packets are written: the Kafka sinks deliver
    /// what they hold (within the sink timeout), then the report is written.
    fn close(
        &self,
        totals: &Totals,
        pods: &[snoopy_job::PodCount],
        deliveries: &[(String, DeliveryHandle)],
    ) {
        let kafka = crate::sinks::finish_all(deliveries, self.sink_timeout, self.quiet);
        let files = self
            .output
            .written
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        Ending {
            totals,
            kafka: &kafka,
            files: &files,
            pods,
        }
        .write(self.termination_log.as_deref());
    }
}
