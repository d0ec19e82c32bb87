//! Starting the monitor, servers and clients, and collecting events.

use std::io::BufRead;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use snoopy_ebpf::{Event, Monitor, netns_inode};
use snoopy_testkit::{ChildGuard, End};

/// A monitor watching `ends` (their namespace inodes returned in the same order).
pub fn monitor(ends: &[&End]) -> Result<(Monitor, Vec<u32>)> {
    snoopy_testkit::require_root()?;
    let mut monitor = Monitor::load()
        .context("loading the eBPF monitor (this test needs root, BTF and BPF trampolines)")?;
    let mut inodes = Vec::new();
    for end in ends {
        let inode = netns_inode(&end.netns_path())?;
        monitor.watch(inode)?;
        inodes.push(inode);
    }
    Ok((monitor, inodes))
}

/// A TCP server in `end` on `bind`:`port` that accepts one connection, reads up to 100 bytes,
/// answers `reply`, waits for the client to close, then closes. Returns once it listens.
pub fn server(end: &End, bind: &str, port: u16, reply: &str) -> Result<ChildGuard> {
    let script = format!(
        "import socket\ns=socket.socket()\ns.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\ns.bind(('{bind}',{port}))\ns.listen(8)\nprint('ready',flush=True)\nc,_=s.accept()\nc.recv(100)\nc.sendall(b'{reply}')\nc.recv(100)\nc.close()"
    );
    let mut guard = end.spawn(&["python3", "-c", &script])?;
    let stdout = guard.child().stdout.take().context("server stdout")?;
    let mut line = String::new();
    std::io::BufReader::new(stdout).read_line(&mut line)?;
    if line.trim() != "ready" {
        bail!("the server in {} did not start: {line:?}", end.netns);
    }
    Ok(guard)
}

/// A client in `end`: connects to `to`:`port`, sends `message`, reads the reply, closes.
/// `refused_ok`: a refused connection is the expected outcome.
pub fn client(
    end: &End,
    to: &str,
    port: u16,
    message: &str,
    refused_ok: bool,
) -> Result<ChildGuard> {
    let script = if refused_ok {
        format!(
            "import socket\ntry:\n  socket.create_connection(('{to}',{port}),timeout=3)\n  raise SystemExit('connected')\nexcept ConnectionRefusedError:\n  pass"
        )
    } else {
        format!(
            "import socket\nc=socket.create_connection(('{to}',{port}),timeout=3)\nc.sendall(b'{message}')\nc.recv(100)\nc.close()"
        )
    };
    end.spawn(&["python3", "-c", &script])
}

/// Waits for a child to exit successfully (at most 10 s).
pub fn finish(mut guard: ChildGuard, what: &str) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = guard.child().try_wait()? {
            if !status.success() {
                let out = guard.wait_output()?;
                bail!(
                    "{what} failed ({status}): {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{what} did not finish within 10 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Collects events until `done` says the expected ones are in, or `limit` passes; then
/// 300 ms more, so stray events that should not exist have a chance to show up.
pub fn collect(
    monitor: &mut Monitor,
    limit: Duration,
    done: impl Fn(&[Event]) -> bool,
) -> Result<Vec<Event>> {
    let deadline = Instant::now() + limit;
    let mut events = Vec::new();
    while Instant::now() < deadline && !done(&events) {
        monitor.poll(Duration::from_millis(50), |e| events.push(e))?;
    }
    let settle = Instant::now() + Duration::from_millis(300);
    while Instant::now() < settle {
        monitor.poll(Duration::from_millis(50), |e| events.push(e))?;
    }
    Ok(events)
}
