//! Test fixtures shared by the crates' integration tests.
//!
//! [`NetnsPair`] builds two fresh network namespaces joined by a veth pair, with IPv4 and
//! IPv6 addresses, and deletes them on drop (also when the test fails). Addresses come from
//! 198.18.0.0/15 (RFC 2544, benchmarking) and a ULA prefix, and exist only inside these
//! namespaces, so test traffic never leaves them.
//!
//! Everything here needs root; [`require_root`] fails the test with a clear message otherwise
//! (tests never silently pass without the environment they need).

pub mod kafka;

use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use anyhow::{Context, Result, bail};

/// Fails with a clear message unless running as root.
pub fn require_root() -> Result<()> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        bail!(
            "this test needs root (network namespaces, packet sockets); run it through `make test` as root"
        );
    }
    Ok(())
}

/// Fails with a clear message unless `program` is on the PATH.
pub fn require_tool(program: &str) -> Result<()> {
    let found = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
        .unwrap_or(false);
    if !found {
        bail!("this test needs `{program}`; install it (see .ci/run) and run again");
    }
    Ok(())
}

/// Runs a fixed command and fails with its stderr if it fails.
pub fn run(argv: &[&str]) -> Result<Output> {
    let out = Command::new(argv[0])
        .args(&argv[1..])
        .output()
        .with_context(|| format!("spawning {argv:?}"))?;
    if !out.status.success() {
        bail!(
            "{argv:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(out)
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// One end of a [`NetnsPair`].
#[derive(Debug, Clone)]
pub struct End {
    /// The namespace name (`ip netns` name); its file is `/var/run/netns/NAME`.
    pub netns: String,
    /// The veth interface name inside the namespace.
    pub interface: String,
    /// The end's IPv4 address.
    pub ip: Ipv4Addr,
    /// The end's IPv6 address.
    pub ip6: Ipv6Addr,
    /// The end's MAC address, as `ip` prints it.
    pub mac: String,
}

impl End {
    /// The namespace file, for `--netns`.
    pub fn netns_path(&self) -> PathBuf {
        PathBuf::from(format!("/var/run/netns/{}", self.netns))
    }

    /// A command that runs `argv` inside this end's namespace (`ip netns exec`).
    pub fn command(&self, argv: &[&str]) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.netns]).args(argv);
        cmd
    }

    /// Runs `argv` inside the namespace to completion and fails on a non-zero exit.
    pub fn run(&self, argv: &[&str]) -> Result<Output> {
        let out = self
            .command(argv)
            .output()
            .with_context(|| format!("spawning {argv:?} in {}", self.netns))?;
        if !out.status.success() {
            bail!(
                "{argv:?} in {} failed ({}): {}",
                self.netns,
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(out)
    }

    /// Loads an nftables ruleset (the text `nft -f` reads) inside this namespace only, e.g.
    /// a DROP rule or random loss (`numgen random mod 5 0 drop`); it goes away with the
    /// namespace. Needs the `nft` tool.
    pub fn nft(&self, ruleset: &str) -> Result<()> {
        use std::io::Write;
        require_tool("nft")?;
        let mut child = self
            .command(&["nft", "-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("spawning nft in {}", self.netns))?;
        child
            .stdin
            .take()
            .expect("piped")
            .write_all(ruleset.as_bytes())?;
        let out = child.wait_with_output()?;
        if !out.status.success() {
            bail!(
                "nft -f in {} failed ({}): {}\nruleset:\n{ruleset}",
                self.netns,
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(())
    }

    /// Starts a long sleep inside the namespace and returns once the process is in it, so its
    /// PID names the namespace (as a container's PID does on a node).
    pub fn resident(&self) -> Result<ChildGuard> {
        use std::os::unix::fs::MetadataExt;
        let guard = self.spawn(&["sleep", "300"])?;
        let want = std::fs::metadata(self.netns_path())?.ino();
        let path = format!("/proc/{}/ns/net", guard.pid());
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        // `ip netns exec` enters the namespace after it starts: wait for it.
        while std::fs::metadata(&path).map(|m| m.ino()).ok() != Some(want) {
            if std::time::Instant::now() > deadline {
                bail!("process {} never entered {}", guard.pid(), self.netns);
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        Ok(guard)
    }

    /// Sends raw Ethernet frames out of this end's veth from an AF_PACKET socket (how test
    /// frames the kernel would never build itself, e.g. VLAN-tagged ones, are made).
    pub fn send_raw_frames(&self, frames: &[Vec<u8>]) -> Result<()> {
        let hex: Vec<String> = frames
            .iter()
            .map(|f| f.iter().map(|b| format!("{b:02x}")).collect())
            .collect();
        let mut argv = vec![
            "python3",
            "-c",
            "import socket,sys\ns=socket.socket(socket.AF_PACKET,socket.SOCK_RAW)\ns.bind((sys.argv[1],0))\nfor h in sys.argv[2:]: s.send(bytes.fromhex(h))",
            &self.interface,
        ];
        argv.extend(hex.iter().map(String::as_str));
        self.run(&argv)?;
        Ok(())
    }

    /// Waits until a TCP connection from this namespace to `ip:port` succeeds (at most
    /// 10 s): a server started in another namespace is listening. Call it before any capture
    /// starts, so the retries are not part of what is measured.
    pub fn wait_for_port(&self, ip: &str, port: u16) -> Result<()> {
        self.run(&[
            "python3",
            "-c",
            &format!(
                "import socket,time\nfor _ in range(200):\n  try:\n    socket.create_connection(('{ip}',{port}),timeout=1).close(); break\n  except OSError: time.sleep(0.05)\nelse: raise SystemExit('port {port} never opened')"
            ),
        ])?;
        Ok(())
    }

    /// Starts `argv` inside the namespace; the process is killed when the guard drops.
    pub fn spawn(&self, argv: &[&str]) -> Result<ChildGuard> {
        let child = self
            .command(argv)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("spawning {argv:?} in {}", self.netns))?;
        Ok(ChildGuard(Some(child)))
    }
}

/// A child process killed (by its PID) and reaped when dropped.
#[derive(Debug)]
pub struct ChildGuard(Option<Child>);

impl ChildGuard {
    /// The child's PID (inside the namespace, `/proc/PID/ns/net` is the namespace).
    pub fn pid(&self) -> u32 {
        self.0.as_ref().map(Child::id).unwrap_or(0)
    }

    /// The child itself.
    pub fn child(&mut self) -> &mut Child {
        self.0.as_mut().expect("child present until drop")
    }

    /// Waits for the child to exit and returns its output.
    pub fn wait_output(mut self) -> Result<Output> {
        let child = self.0.take().expect("child present until drop");
        Ok(child.wait_with_output()?)
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Two network namespaces joined by a veth pair, deleted on drop.
///
/// `a` is 198.18.0.1 / fd53:6e6f::1 on interface `veth-a`; `b` is 198.18.0.2 / fd53:6e6f::2
/// on `veth-b`. Loopback is up in both.
#[derive(Debug)]
pub struct NetnsPair {
    /// The first namespace.
    pub a: End,
    /// The second namespace.
    pub b: End,
}

impl NetnsPair {
    /// Creates the namespaces, the veth pair and the addresses; waits until IPv6 duplicate
    /// address detection is done so the addresses are usable at once.
    pub fn new() -> Result<Self> {
        require_root()?;
        require_tool("ip")?;
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let base = format!("snp{}x{n}", std::process::id());
        let mut pair = NetnsPair {
            a: End {
                netns: format!("{base}a"),
                interface: "veth-a".into(),
                ip: Ipv4Addr::new(198, 18, 0, 1),
                ip6: "fd53:6e6f::1".parse()?,
                mac: "02:53:6e:00:00:01".into(),
            },
            b: End {
                netns: format!("{base}b"),
                interface: "veth-b".into(),
                ip: Ipv4Addr::new(198, 18, 0, 2),
                ip6: "fd53:6e6f::2".parse()?,
                mac: "02:53:6e:00:00:02".into(),
            },
        };
        run(&["ip", "netns", "add", &pair.a.netns])?;
        // From here on, Drop cleans up whatever was made.
        let guard = PairGuard(&mut pair);
        run(&["ip", "netns", "add", &guard.0.b.netns])?;
        let (a, b) = (&guard.0.a, &guard.0.b);
        run(&[
            "ip",
            "link",
            "add",
            "snp-tmp-a",
            "netns",
            &a.netns,
            "type",
            "veth",
            "peer",
            "name",
            "snp-tmp-b",
            "netns",
            &b.netns,
        ])
        .or_else(|_| {
            // Older iproute2: create in this namespace and move both ends.
            let tmp_a = format!("sa{}x{n}", std::process::id() % 100_000);
            let tmp_b = format!("sb{}x{n}", std::process::id() % 100_000);
            run(&[
                "ip", "link", "add", &tmp_a, "type", "veth", "peer", "name", &tmp_b,
            ])?;
            run(&[
                "ip",
                "link",
                "set",
                &tmp_a,
                "netns",
                &a.netns,
                "name",
                "snp-tmp-a",
            ])?;
            run(&[
                "ip",
                "link",
                "set",
                &tmp_b,
                "netns",
                &b.netns,
                "name",
                "snp-tmp-b",
            ])
        })?;
        for (end, tmp) in [(a, "snp-tmp-a"), (b, "snp-tmp-b")] {
            end.run(&["ip", "link", "set", tmp, "name", &end.interface])?;
            end.run(&["ip", "link", "set", &end.interface, "address", &end.mac])?;
            end.run(&[
                "ip",
                "addr",
                "add",
                &format!("{}/24", end.ip),
                "dev",
                &end.interface,
            ])?;
            end.run(&[
                "ip",
                "-6",
                "addr",
                "add",
                &format!("{}/64", end.ip6),
                "dev",
                &end.interface,
                "nodad",
            ])?;
            end.run(&["ip", "link", "set", "lo", "up"])?;
            end.run(&["ip", "link", "set", &end.interface, "up"])?;
        }
        std::mem::forget(guard);
        Ok(pair)
    }
}

struct PairGuard<'a>(&'a mut NetnsPair);

impl Drop for PairGuard<'_> {
    fn drop(&mut self) {
        delete_netns(&self.0.a.netns);
        delete_netns(&self.0.b.netns);
    }
}

fn delete_netns(name: &str) {
    let _ = Command::new("ip")
        .args(["netns", "del", name])
        .stderr(Stdio::null())
        .status();
}

impl Drop for NetnsPair {
    fn drop(&mut self) {
        delete_netns(&self.a.netns);
        delete_netns(&self.b.netns);
    }
}
