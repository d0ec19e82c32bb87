//! `podtracer monitor` on real namespaces: JSON lines of the connections the test makes,
//! named by process, and a clean end on SIGINT with the event count.

use std::io::{BufRead, Read};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use snoopy_testkit::NetnsPair;

use crate::support::{podtracer, signal, until_listening, wait_with_timeout};

#[test]
fn monitor_reports_the_connections_of_the_watched_namespaces_as_json_lines() -> Result<()> {
    let pair = NetnsPair::new()?;
    let resident_b = pair.b.resident()?;
    let mut monitor = podtracer()
        .args(["monitor", "--netns"])
        .arg(pair.a.netns_path())
        .args(["--pid", &resident_b.pid().to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("spawning podtracer monitor")?;
    let mut stderr = until_listening(&mut monitor, "podtracer monitor")?;

    let mut server = pair.b.spawn(&[
        "python3",
        "-c",
        "import socket\ns=socket.socket()\ns.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\ns.bind(('0.0.0.0',8080))\ns.listen(1)\nprint('ready',flush=True)\nc,_=s.accept()\nc.recv(100)\nc.sendall(b'pong')\nc.recv(100)\nc.close()",
    ])?;
    let mut ready = String::new();
    std::io::BufReader::new(server.child().stdout.take().context("server stdout")?)
        .read_line(&mut ready)?;
    if ready.trim() != "ready" {
        bail!("the server did not start: {ready:?}");
    }
    let client = pair.a.spawn(&[
        "python3",
        "-c",
        "import socket\nc=socket.create_connection(('198.18.0.2',8080),timeout=3)\nc.sendall(b'ping!!')\nc.recv(100)\nc.close()\ntry:\n  socket.create_connection(('198.18.0.2',9),timeout=3)\nexcept ConnectionRefusedError:\n  pass",
    ])?;
    let client_pid = client.pid();
    let out = client.wait_output()?;
    assert!(
        out.status.success(),
        "client: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = server.wait_output()?;
    assert!(
        out.status.success(),
        "server: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The closes come with the FIN exchange; give the monitor a moment to print them.
    std::thread::sleep(Duration::from_millis(500));

    signal(&monitor, "INT")?;
    let mut rest = String::new();
    stderr.read_to_string(&mut rest)?;
    let output = wait_with_timeout(monitor, Duration::from_secs(10))?;
    assert!(output.status.success(), "monitor exit: {rest}");
    let events: Vec<serde_json::Value> = String::from_utf8(output.stdout)?
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    let summary = format!("{} events, 0 lost, ", events.len());
    assert!(rest.contains(&summary), "'{summary}' in {rest}");

    let kinds_of_client: Vec<&str> = events
        .iter()
        .filter(|e| e["process"]["pid"] == client_pid)
        .map(|e| e["kind"].as_str().unwrap_or("?"))
        .collect();
    for kind in ["connect", "established", "close", "refused"] {
        assert!(
            kinds_of_client.contains(&kind),
            "{kind} in {kinds_of_client:?}: {events:#?}"
        );
    }
    let close = events
        .iter()
        .find(|e| e["kind"] == "close" && e["process"]["pid"] == client_pid)
        .expect("the client's close");
    assert_eq!(
        (
            close["bytes_sent"].as_u64(),
            close["bytes_received"].as_u64()
        ),
        (Some(6), Some(4))
    );
    assert_eq!(close["process"]["comm"], "python3");
    let accept = events
        .iter()
        .find(|e| e["kind"] == "accept")
        .expect("the server's accept");
    assert_eq!(accept["local"], "198.18.0.2:8080");
    Ok(())
}

#[test]
fn monitor_refuses_a_missing_namespace_by_name() -> Result<()> {
    let out = podtracer()
        .args([
            "monitor",
            "--netns",
            "/var/run/netns/snoopy-no-such-namespace",
        ])
        .output()?;
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("snoopy-no-such-namespace"), "{stderr}");
    Ok(())
}
