//! A Kafka-protocol broker of one test: tansu 0.6.0 (what `testbed/kafka.sh` builds into
//! the cache), in memory, on a free loopback port, with Snoopy's three topics (3 partitions
//! each); killed by its PID on drop.

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};

/// The topics every broker starts with.
pub const TOPICS: [&str; 4] = [
    "snoopy.packets",
    "snoopy.flows",
    "snoopy.probes",
    "snoopy.throughput",
];

/// The tansu binary: `$SNOOPY_TANSU`, else where `testbed/kafka.sh` caches it.
pub fn tansu() -> Result<PathBuf> {
    if let Ok(path) = std::env::var("SNOOPY_TANSU") {
        return Ok(path.into());
    }
    let cache = std::env::var("SNOOPY_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(std::env::var("HOME").unwrap_or_else(|_| "/root".into()))
                .join(".cache/snoopy")
        });
    let path = cache.join("tansu-0.6.0/bin/tansu");
    ensure!(
        path.is_file(),
        "the Kafka test broker is missing: {} — build it with `testbed/kafka.sh up` (cargo install tansu --version 0.6.0 --locked --features dynostore --root {})",
        path.display(),
        cache.join("tansu-0.6.0").display()
    );
    Ok(path)
}

/// A tansu broker of this test, in memory, on 127.0.0.1:`port`; killed (by PID) on drop.
pub struct Broker {
    port: u16,
    child: Option<Child>,
}

impl Broker {
    /// Starts a broker on a free port, with [`TOPICS`].
    pub fn start() -> Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let mut broker = Broker { port, child: None };
        broker.launch()?;
        Ok(broker)
    }

    /// `127.0.0.1:PORT`.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `kafka://127.0.0.1:PORT/TOPIC`.
    pub fn url(&self, topic: &str) -> String {
        format!("kafka://{}/{topic}", self.address())
    }

    /// Starts (or restarts, empty) the broker process and creates the topics.
    pub fn launch(&mut self) -> Result<()> {
        let listener = format!("tcp://127.0.0.1:{}", self.port);
        let child = Command::new(tansu()?)
            .args(["broker", "--storage-engine", "memory://tansu/"])
            .args(["--listener-url", &listener])
            .args(["--advertised-listener-url", &listener])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting tansu")?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            ensure!(
                Instant::now() < deadline,
                "tansu does not answer on {listener}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        for topic in TOPICS {
            let out = Command::new(tansu()?)
                .args(["topic", "create", topic, "--broker", &listener])
                .args(["--partitions", "3"])
                .output()?;
            ensure!(out.status.success(), "tansu topic create {topic}: {out:?}");
        }
        Ok(())
    }

    /// Kills the broker (its in-memory topics go with it).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGSTOP / SIGCONT: a broker that stops answering, then answers again with its data.
    pub fn pause(&self, paused: bool) -> Result<()> {
        let pid = self.child.as_ref().context("broker not running")?.id();
        let sig = if paused { "-STOP" } else { "-CONT" };
        ensure!(
            Command::new("kill")
                .args([sig, &pid.to_string()])
                .status()?
                .success(),
            "kill {sig} {pid}"
        );
        Ok(())
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some(child) = &self.child {
            // A paused broker would not die from SIGTERM; SIGKILL works either way.
            let _ = Command::new("kill")
                .args(["-CONT", &child.id().to_string()])
                .status();
        }
        self.kill();
    }
}
