//! What the end-to-end tests share: real traffic between network namespaces, watched by a
//! real `podtracer flows`, and the dashboard binary.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};

use anyhow::{Context, Result, bail};
use snoopy_testkit::{End, NetnsPair};

/// The podtracer binary of this build (the workspace test run builds it beside ours).
pub fn podtracer() -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .context("the target directory")?;
    let path = dir.join("podtracer");
    if !path.exists() {
        bail!(
            "{} is missing: build it first (cargo build -p podtracer; `make test` does)",
            path.display()
        );
    }
    Ok(path)
}

/// IPv6 off in both namespaces, so neighbour discovery adds no flows: the map must show
/// exactly the connections the test made.
pub fn ipv4_only(end: &End) -> Result<()> {
    end.run(&[
        "python3",
        "-c",
        "open('/proc/sys/net/ipv6/conf/all/disable_ipv6','w').write('1')",
    ])?;
    Ok(())
}

/// Server side: 8080 accepts and reads; 8081 is closed; nftables drops 8082.
pub fn servers(end: &End) -> Result<snoopy_testkit::ChildGuard> {
    end.nft("table inet dashtest {\n  chain input {\n    type filter hook input priority 0; policy accept;\n    tcp dport 8082 drop\n  }\n}\n")?;
    end.spawn(&[
        "python3",
        "-c",
        "import socket,threading\ns=socket.socket()\ns.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\ns.bind(('0.0.0.0',8080))\ns.listen(64)\ndef h(c):\n  while c.recv(4096): pass\n  c.close()\nwhile True:\n  c,_=s.accept(); threading.Thread(target=h,args=(c,),daemon=True).start()",
    ])
}

/// Connections to make: (address, accepted, refused, dropped).
pub type Plan<'a> = &'a [(&'a str, u32, u32, u32)];

/// Runs `podtracer flows EXTRA` in `pair.a` while it makes the connections of `plan`; its
/// JSON lines.
pub fn flows_of(pair: &NetnsPair, plan: Plan<'_>, extra: &[&str]) -> Result<Vec<u8>> {
    let mut flows = Command::new(podtracer()?)
        .args(["flows", "--netns"])
        .arg(pair.a.netns_path())
        .args(["-i", "veth-a", "-o", "json", "--duration", "60s"])
        .args(extra)
        // What a Job's downward API sets: the node header of every Kafka message.
        .env("NODE_NAME", "node-1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting podtracer flows")?;
    let mut err = BufReader::new(flows.stderr.take().expect("piped"));
    let mut line = String::new();
    err.read_line(&mut line)?;
    if !line.contains("watching flows") {
        let _ = flows.kill();
        bail!("podtracer flows did not start: {line}");
    }
    std::thread::spawn(move || std::io::copy(&mut err, &mut std::io::sink()));
    let mut threads = String::new();
    for (ip, good, refused, dropped) in plan {
        threads.push_str(&format!(
            "fs += [lambda: good('{ip}')] * {good} + [lambda: refused('{ip}')] * {refused} + [lambda: dropped('{ip}')] * {dropped}\n"
        ));
    }
    let script = format!(
        r#"
import socket, threading, time
def good(ip):
    c = socket.create_connection((ip, 8080), timeout=5); c.sendall(b'x' * 3000); c.close()
def refused(ip):
    try: socket.create_connection((ip, 8081), timeout=5)
    except ConnectionRefusedError: pass
def dropped(ip):
    try: socket.create_connection((ip, 8082), timeout=1.5)
    except OSError: pass
fs = []
{threads}
ts = [threading.Thread(target=f) for f in fs]
for t in ts: t.start()
for t in ts: t.join()
time.sleep(0.3)
"#
    );
    pair.a.run(&["python3", "-c", &script])?;
    let status = Command::new("kill")
        .args(["-INT", &flows.id().to_string()])
        .status()?;
    anyhow::ensure!(status.success(), "kill -INT podtracer");
    let out = flows.wait_with_output()?;
    anyhow::ensure!(out.status.success(), "podtracer flows: {out:?}");
    Ok(out.stdout)
}

/// The dashboard binary, its stdin held by the test; stopped by its PID on drop.
pub struct Dashboard {
    child: Child,
    stdin: Option<ChildStdin>,
    /// `http://127.0.0.1:PORT/`.
    pub url: String,
}

impl Dashboard {
    /// `snoopy-dashboard ARGS --listen 127.0.0.1:0` (unless ARGS say where), once it serves.
    pub fn start(args: &[&str]) -> Result<Self> {
        let listen: &[&str] = if args.contains(&"--listen") {
            &[]
        } else {
            &["--listen", "127.0.0.1:0"]
        };
        let mut child = Command::new(env!("CARGO_BIN_EXE_snoopy-dashboard"))
            .args(args)
            .args(listen)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()?;
        let mut err = BufReader::new(child.stderr.take().expect("piped"));
        let mut line = String::new();
        err.read_line(&mut line)?;
        let url = line
            .trim()
            .strip_prefix("snoopy-dashboard: serving ")
            .with_context(|| format!("unexpected first line: {line}"))?
            .to_string();
        std::thread::spawn(move || std::io::copy(&mut err, &mut std::io::stderr()));
        let stdin = child.stdin.take();
        Ok(Dashboard { child, stdin, url })
    }

    /// Writes to its stdin (read when it was started with `-`).
    pub fn feed(&mut self, bytes: &[u8]) -> Result<()> {
        let stdin = self.stdin.as_mut().context("stdin")?;
        stdin.write_all(bytes)?;
        stdin.flush()?;
        Ok(())
    }

    /// GETs a path of its API as JSON.
    pub fn get(&self, path: &str) -> Result<serde_json::Value> {
        Ok(
            ureq::get(&format!("{}{}", self.url, path.trim_start_matches('/')))
                .call()?
                .body_mut()
                .read_json()?,
        )
    }

    /// Stops it (by its PID), as a replica that goes away.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Dashboard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
