//! Running podtracer and the reference tools, and making test traffic.

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use snoopy_testkit::End;

/// The podtracer binary under test.
pub fn podtracer() -> Command {
    Command::new(env!("CARGO_BIN_EXE_podtracer"))
}

/// Starts a podtracer capture with stderr captured, and waits until it says it is listening.
pub fn start_capture(args: &[&str]) -> Result<Child> {
    let mut child = podtracer()
        .arg("capture")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("spawning podtracer")?;
    let mut reader = until_listening(&mut child, "podtracer")?;
    // Hand the rest of stderr back to the caller through a thread-fed pipe.
    let (rx, mut tx) = std::io::pipe()?;
    std::thread::spawn(move || std::io::copy(&mut reader, &mut tx));
    child.stderr = Some(std::process::ChildStderr::from(std::os::fd::OwnedFd::from(
        rx,
    )));
    Ok(child)
}

/// Reads a capture tool's stderr up to its first line, which must say it is listening (the
/// socket is bound); the reader holds the rest. Kills the child otherwise.
pub fn until_listening(
    child: &mut Child,
    what: &str,
) -> Result<std::io::BufReader<std::process::ChildStderr>> {
    let stderr = child.stderr.take().expect("piped");
    let mut reader = std::io::BufReader::new(stderr);
    let mut line = String::new();
    std::io::BufRead::read_line(&mut reader, &mut line)?;
    if !line.contains("listening on") {
        let _ = child.kill();
        let mut rest = String::new();
        let _ = std::io::Read::read_to_string(&mut reader, &mut rest);
        bail!("{what} did not start: {line}{rest}");
    }
    Ok(reader)
}

/// Waits for a child with a deadline, killing it if it overstays.
pub fn wait_with_timeout(child: Child, timeout: Duration) -> Result<Output> {
    let pid = child.id();
    let deadline = Instant::now() + timeout;
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = done.clone();
    let watchdog = std::thread::spawn(move || {
        while Instant::now() < deadline {
            if flag.load(std::sync::atomic::Ordering::Relaxed) {
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        // Kill by the PID we started, never by name.
        let _ = Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status();
        true
    });
    let out = child.wait_with_output()?;
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    if watchdog.join().unwrap_or(false) {
        bail!("process {pid} did not finish within {timeout:?}: {out:?}");
    }
    Ok(out)
}

/// Sends SIGINT or SIGTERM to a child we started.
pub fn signal(child: &Child, name: &str) -> Result<()> {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()?;
    if !status.success() {
        bail!("kill -{name} failed");
    }
    Ok(())
}

/// The "N packets captured" number podtracer printed on stderr.
pub fn captured_count(stderr: &str) -> Result<u64> {
    stderr
        .lines()
        .find_map(|l| l.strip_suffix(" packets captured"))
        .and_then(|n| n.trim().parse().ok())
        .with_context(|| format!("no 'packets captured' line in: {stderr}"))
}

/// `tshark -r FILE -T fields -e FIELD...`: one Vec per packet.
pub fn tshark_fields(file: &Path, fields: &[&str]) -> Result<Vec<Vec<String>>> {
    snoopy_testkit::require_tool("tshark")?;
    let mut cmd = Command::new("tshark");
    cmd.arg("-n")
        .arg("-r")
        .arg(file)
        .args(["-T", "fields", "-E", "separator=|"]);
    for f in fields {
        cmd.args(["-e", f]);
    }
    let out = cmd.output()?;
    if !out.status.success() {
        bail!(
            "tshark -r {} failed: {}",
            file.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    if stderr.contains("cut short") || stderr.contains("appears to be damaged") {
        bail!("tshark says {} is damaged: {stderr}", file.display());
    }
    Ok(String::from_utf8(out.stdout)?
        .lines()
        .map(|l| l.split('|').map(str::to_string).collect())
        .collect())
}

/// `tcpdump -r FILE` packet count (from its lines; -q for one line per packet).
pub fn tcpdump_count(file: &Path) -> Result<usize> {
    snoopy_testkit::require_tool("tcpdump")?;
    let out = Command::new("tcpdump")
        .args(["-n", "-q", "-r"])
        .arg(file)
        .output()?;
    if !out.status.success() {
        bail!(
            "tcpdump -r {} failed: {}",
            file.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8(out.stdout)?.lines().count())
}

/// A TCP server on `end` port 8080 that accepts one connection and reads it; a UDP
/// receiver is not needed (the datagrams are captured whether anyone listens or not).
pub fn tcp_server(end: &End) -> Result<snoopy_testkit::ChildGuard> {
    end.spawn(&[
        "python3",
        "-c",
        "import socket\ns=socket.socket()\ns.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\ns.bind(('0.0.0.0',8080))\ns.listen(1)\nc,_=s.accept()\nc.recv(100)\nc.close()",
    ])
}

/// From `end`: one TCP connection to `to`:8080 sending "hello", then UDP datagrams of
/// 100, 200 and 300 bytes to `to`:9999.
pub fn tcp_and_udp_client(end: &End, to: &str) -> Result<()> {
    let script = format!(
        "import socket,time\nfor i in range(50):\n  try:\n    c=socket.create_connection(('{to}',8080),timeout=1); break\n  except OSError: time.sleep(0.1)\nc.sendall(b'hello'); time.sleep(0.2); c.close()\nu=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\nfor n in (100,200,300): u.sendto(b'x'*n,('{to}',9999))\ntime.sleep(0.3)"
    );
    end.run(&["python3", "-c", &script])?;
    Ok(())
}

/// Asserts that `file` holds exactly the `captured` packets podtracer counted (tshark reads it).
pub fn assert_file_holds(file: &Path, captured: u64) -> Result<()> {
    let rows = tshark_fields(file, &["frame.number"])?;
    assert_eq!(
        rows.len() as u64,
        captured,
        "every counted packet is in {}",
        file.display()
    );
    Ok(())
}

/// stdout of a program that must succeed.
pub fn stdout_of(mut command: Command) -> Result<String> {
    let out = command
        .output()
        .with_context(|| format!("spawning {command:?}"))?;
    if !out.status.success() {
        bail!(
            "{command:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8(out.stdout)?)
}

/// Packet count of `tcpdump -r FILE EXPR`.
pub fn tcpdump_keeps(file: &Path, expr: &str) -> Result<usize> {
    snoopy_testkit::require_tool("tcpdump")?;
    let out = Command::new("tcpdump")
        .args(["-n", "-q", "-r"])
        .arg(file)
        .arg(expr)
        .output()?;
    if !out.status.success() {
        bail!(
            "tcpdump -r failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8(out.stdout)?.lines().count())
}
