//! The live "packets / drops" counter on a terminal's stderr.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use snoopy_capture::afpacket::StatsHandle;

/// A thread that redraws one stderr line twice a second until dropped.
pub struct Progress {
    done: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Progress {
    /// Starts the counter; `captured` is updated by the capture loop.
    pub fn start(captured: Arc<AtomicU64>, stats: StatsHandle) -> Self {
        let done = Arc::new(AtomicBool::new(false));
        let stop = Arc::clone(&done);
        let thread = std::thread::spawn(move || {
            let mut stderr = std::io::stderr();
            while !stop.load(Ordering::Relaxed) {
                let dropped = stats.kernel_counters().map(|(_, d)| d).unwrap_or(0);
                let _ = write!(
                    stderr,
                    "\rpodtracer: {} packets captured, {} dropped by kernel ",
                    captured.load(Ordering::Relaxed),
                    dropped
                );
                let _ = stderr.flush();
                std::thread::sleep(Duration::from_millis(500));
            }
            let _ = writeln!(stderr);
        });
        Progress {
            done,
            thread: Some(thread),
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.done.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
