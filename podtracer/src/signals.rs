//! SIGINT and SIGTERM end the work, as Ctrl-C ends tcpdump and as Kubernetes stops a Job:
//! whatever was captured or collected is still written out.

use anyhow::{Context, Result};
use snoopy_capture::afpacket::StopHandle;

/// A stop handle that SIGINT and SIGTERM stop.
pub fn stop_on_signals() -> Result<StopHandle> {
    let stop = StopHandle::new();
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, stop.flag())
            .context("installing the SIGINT/SIGTERM handler")?;
    }
    Ok(stop)
}
